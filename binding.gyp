{
  "targets": [
    {
      "target_name": "botedge_native",
      "sources": ["native/addon.cc", "native/g711.cc", "native/g722.cc", "native/fir.cc"],
      "conditions": [["OS=='linux'", { "sources": ["native/rtp_io.cc", "native/rx_lane.cc", "native/ws_writer.cc"] }]],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags": ["-O3"],
      "cflags_cc": ["-O3", "-ffp-contract=off"],
      "xcode_settings": {
        "GCC_OPTIMIZATION_LEVEL": "3",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "11.0"
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "Optimization": 2 }
      }
    }
  ]
}
