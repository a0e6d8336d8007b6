#include "g711.h"

namespace botedge {
namespace {

constexpr int kUlawBias = 0x84;
constexpr int kUlawClip = 32635;

int16_t ulaw_decode_table[256];
int16_t alaw_decode_table[256];
// Indexed by sample + 32768: one 64 KiB table per law, exact for every 16-bit input.
uint8_t ulaw_encode_table[65536];
uint8_t alaw_encode_table[65536];

int UlawDecodeOne(int code) {
  const int u = ~code & 0xff;
  const int exponent = (u >> 4) & 0x07;
  const int mantissa = u & 0x0f;
  const int magnitude = (((mantissa << 3) + kUlawBias) << exponent) - kUlawBias;
  return (u & 0x80) ? -magnitude : magnitude;
}

int UlawEncodeOne(int sample) {
  int s = sample;
  const int sign = s < 0 ? 0x80 : 0;
  if (sign) s = -s;
  if (s > kUlawClip) s = kUlawClip;
  s += kUlawBias;
  int exponent = 7;
  for (int mask = 0x4000; (s & mask) == 0 && exponent > 0; mask >>= 1) exponent--;
  const int mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

int AlawDecodeOne(int code) {
  const int a = code ^ 0x55;
  const int segment = (a & 0x70) >> 4;
  int t = (a & 0x0f) << 4;
  if (segment == 0) {
    t += 8;
  } else {
    t = (t + 0x108) << (segment - 1);
  }
  return (a & 0x80) ? t : -t;
}

constexpr int kAlawSegmentEnd[8] = {0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff};

int AlawEncodeOne(int sample) {
  int s = sample >> 3;  // arithmetic shift, as in JavaScript
  int mask;
  if (s >= 0) {
    mask = 0xd5;
  } else {
    mask = 0x55;
    s = -s - 1;
  }
  int segment = 0;
  while (segment < 8 && s > kAlawSegmentEnd[segment]) segment++;
  if (segment >= 8) return 0x7f ^ mask;
  const int aval = (segment << 4) | (((segment < 2) ? (s >> 1) : (s >> segment)) & 0x0f);
  return aval ^ mask;
}

}  // namespace

void G711Init() {
  for (int code = 0; code < 256; code++) {
    ulaw_decode_table[code] = static_cast<int16_t>(UlawDecodeOne(code));
    alaw_decode_table[code] = static_cast<int16_t>(AlawDecodeOne(code));
  }
  for (int i = 0; i < 65536; i++) {
    ulaw_encode_table[i] = static_cast<uint8_t>(UlawEncodeOne(i - 32768));
    alaw_encode_table[i] = static_cast<uint8_t>(AlawEncodeOne(i - 32768));
  }
}

void UlawDecode(const uint8_t* src, int16_t* dst, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = ulaw_decode_table[src[i]];
}

void UlawEncode(const int16_t* src, uint8_t* dst, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = ulaw_encode_table[src[i] + 32768];
}

void AlawDecode(const uint8_t* src, int16_t* dst, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = alaw_decode_table[src[i]];
}

void AlawEncode(const int16_t* src, uint8_t* dst, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = alaw_encode_table[src[i] + 32768];
}

}  // namespace botedge
