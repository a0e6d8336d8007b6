// botedge_native: the Node-API surface of the native codecs. Loaded by codecs/native.ts, which falls
// back to the TypeScript implementation when this addon is missing. Each function takes the same
// (src, dst) typed arrays as its TypeScript twin, checks them as strictly, and throws the same
// TypeError/RangeError, so callers cannot tell the two apart except by speed.
#include <napi.h>

#include <string>

#include "fir.h"
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

template <typename T>
bool Typed(Napi::Env env, const Napi::Value& v, napi_typedarray_type type, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    Napi::TypeError::New(env, std::string("resampler: ") + what).ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

bool RangeFail(Napi::Env env, const char* what) {
  Napi::RangeError::New(env, std::string("resampler: ") + what).ThrowAsJavaScriptException();
  return false;
}

// firUp(coefs: Float64Array, taps: Uint32Array, lengths: Uint32Array, factor, work: Float64Array, history, n, dst: Int16Array)
Napi::Value FirUpJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 8 || !Typed<double>(env, info[0], napi_float64_array, "coefs must be a Float64Array") ||
      !Typed<uint32_t>(env, info[1], napi_uint32_array, "taps must be a Uint32Array") ||
      !Typed<uint32_t>(env, info[2], napi_uint32_array, "lengths must be a Uint32Array") ||
      !Typed<double>(env, info[4], napi_float64_array, "work must be a Float64Array") ||
      !Typed<int16_t>(env, info[7], napi_int16_array, "dst must be an Int16Array")) {
    return env.Undefined();
  }
  auto coefs = info[0].As<Napi::Float64Array>();
  auto taps = info[1].As<Napi::Uint32Array>();
  auto lengths = info[2].As<Napi::Uint32Array>();
  uint32_t factor = info[3].As<Napi::Number>().Uint32Value();
  auto work = info[4].As<Napi::Float64Array>();
  size_t history = info[5].As<Napi::Number>().Uint32Value();
  size_t n = info[6].As<Napi::Number>().Uint32Value();
  auto dst = info[7].As<Napi::Int16Array>();
  if (factor < 2 || factor > 6 || lengths.ElementLength() != factor) return RangeFail(env, "factor 2-6 with one length per phase"), env.Undefined();
  size_t total = 0;
  for (uint32_t p = 0; p < factor; p++) total += lengths[p];
  if (total != coefs.ElementLength() || total != taps.ElementLength()) return RangeFail(env, "coefs, taps and lengths disagree"), env.Undefined();
  for (size_t k = 0; k < total; k++) {
    if (taps[k] > history) return RangeFail(env, "a tap reaches past the history"), env.Undefined();
  }
  if (work.ElementLength() < history + n) return RangeFail(env, "work shorter than history + n"), env.Undefined();
  if (dst.ElementLength() < n * factor) return RangeFail(env, "dst too short"), env.Undefined();
  size_t w = botedge::FirUp(coefs.Data(), taps.Data(), lengths.Data(), factor, work.Data(), history, n, dst.Data());
  return Napi::Number::New(env, static_cast<double>(w));
}

// firDown(coefs: Float64Array, taps: Uint32Array, factor, work: Float64Array, history, start, n, dst: Int16Array)
Napi::Value FirDownJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 8 || !Typed<double>(env, info[0], napi_float64_array, "coefs must be a Float64Array") ||
      !Typed<uint32_t>(env, info[1], napi_uint32_array, "taps must be a Uint32Array") ||
      !Typed<double>(env, info[3], napi_float64_array, "work must be a Float64Array") ||
      !Typed<int16_t>(env, info[7], napi_int16_array, "dst must be an Int16Array")) {
    return env.Undefined();
  }
  auto coefs = info[0].As<Napi::Float64Array>();
  auto taps = info[1].As<Napi::Uint32Array>();
  uint32_t factor = info[2].As<Napi::Number>().Uint32Value();
  auto work = info[3].As<Napi::Float64Array>();
  size_t history = info[4].As<Napi::Number>().Uint32Value();
  size_t start = info[5].As<Napi::Number>().Uint32Value();
  size_t n = info[6].As<Napi::Number>().Uint32Value();
  auto dst = info[7].As<Napi::Int16Array>();
  if (factor < 2 || factor > 6) return RangeFail(env, "factor 2-6"), env.Undefined();
  if (coefs.ElementLength() != taps.ElementLength() || coefs.ElementLength() == 0) return RangeFail(env, "coefs, taps and lengths disagree"), env.Undefined();
  for (size_t k = 0; k < taps.ElementLength(); k++) {
    if (taps[k] > history) return RangeFail(env, "a tap reaches past the history"), env.Undefined();
  }
  if (work.ElementLength() < history + n) return RangeFail(env, "work shorter than history + n"), env.Undefined();
  size_t outputs = start < n ? (n - start + factor - 1) / factor : 0;
  if (dst.ElementLength() < outputs) return RangeFail(env, "dst too short"), env.Undefined();
  size_t w = botedge::FirDown(coefs.Data(), taps.Data(), coefs.ElementLength(), factor, work.Data(), history, start, n, dst.Data());
  return Napi::Number::New(env, static_cast<double>(w));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("firUp", Napi::Function::New(env, FirUpJs, "firUp"));
  exports.Set("firDown", Napi::Function::New(env, FirDownJs, "firDown"));
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
