// botedge_native: the Node-API surface of the native codecs. Loaded by codecs/native.ts, which falls
// back to the TypeScript implementation when this addon is missing. Each function takes the same
// (src, dst) typed arrays as its TypeScript twin, checks them as strictly, and throws the same
// TypeError/RangeError, so callers cannot tell the two apart except by speed.
#include <napi.h>

#include <string>

#include "g711.h"
#include "rtp_io.h"

namespace {

// Returns false (with a pending JS exception) unless `value` is a typed array of `type`.
bool CheckTypedArray(Napi::Env env, const Napi::Value& value, napi_typedarray_type type,
                     const char* what) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
    Napi::TypeError::New(env, std::string("G.711: ") + what).ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

template <typename Src, typename Dst, napi_typedarray_type SrcType, napi_typedarray_type DstType,
          void (*Convert)(const Src*, Dst*, size_t)>
Napi::Value Batch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2) {
    Napi::TypeError::New(env, "G.711: expected (src, dst)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!CheckTypedArray(env, info[0], SrcType, "src has the wrong typed array type")) {
    return env.Undefined();
  }
  if (!CheckTypedArray(env, info[1], DstType, "dst has the wrong typed array type")) {
    return env.Undefined();
  }
  auto src = info[0].As<Napi::TypedArrayOf<Src>>();
  auto dst = info[1].As<Napi::TypedArrayOf<Dst>>();
  if (dst.ElementLength() < src.ElementLength()) {
    Napi::RangeError::New(env, "G.711: destination holds " + std::to_string(dst.ElementLength()) +
                                   " samples, source has " + std::to_string(src.ElementLength()))
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Convert(src.Data(), dst.Data(), src.ElementLength());
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  botedge::G711Init();
  exports.Set("ulawDecode",
              Napi::Function::New(env, Batch<uint8_t, int16_t, napi_uint8_array, napi_int16_array,
                                             botedge::UlawDecode>,
                                  "ulawDecode"));
  exports.Set("ulawEncode",
              Napi::Function::New(env, Batch<int16_t, uint8_t, napi_int16_array, napi_uint8_array,
                                             botedge::UlawEncode>,
                                  "ulawEncode"));
  exports.Set("alawDecode",
              Napi::Function::New(env, Batch<uint8_t, int16_t, napi_uint8_array, napi_int16_array,
                                             botedge::AlawDecode>,
                                  "alawDecode"));
  exports.Set("alawEncode",
              Napi::Function::New(env, Batch<int16_t, uint8_t, napi_int16_array, napi_uint8_array,
                                             botedge::AlawEncode>,
                                  "alawEncode"));
#if defined(__linux__)
  botedge::InitRtpIo(env, exports);
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(botedge_native, Init)
