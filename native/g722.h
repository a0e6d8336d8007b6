// ITU-T G.722 at 64 kbit/s, the native twin of codecs/g722.ts: the same blocks in the same order,
// so both produce identical bytes and samples (test/unit/codecs/native.test.ts compares them).
#pragma once

#include <cstddef>
#include <cstdint>

namespace botedge {

struct G722Band {
  int32_t s, sz, nb, det;
  int32_t r[3], p[3], a[3];
  int32_t d[7], b[7];
};

// One direction of one call. Plain int32 fields only: it lives in a JavaScript Int32Array.
struct G722State {
  G722Band band[2];  // low, high
  int32_t qmf[48];   // the QMF's last 24 samples, each stored twice 24 apart
  int32_t h;         // where the window of the last 24 starts
};

constexpr size_t kG722StateWords = sizeof(G722State) / sizeof(int32_t);

void G722Reset(G722State* st);
// pcm: n samples (n even) -> n / 2 bytes.
void G722Encode(G722State* st, const int16_t* pcm, size_t n, uint8_t* out);
// codes: n bytes -> 2n samples.
void G722Decode(G722State* st, const uint8_t* codes, size_t n, int16_t* out);

}  // namespace botedge
