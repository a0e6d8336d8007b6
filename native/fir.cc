#include "fir.h"

#include <cmath>

namespace botedge {
namespace {

// Math.round: the nearest integer, ties towards +infinity; then clamped to 16 bits.
inline int16_t Round16(double v) {
  double r = std::floor(v);
  if (v - r >= 0.5) r += 1;
  if (r > 32767) return 32767;
  if (r < -32768) return -32768;
  return static_cast<int16_t>(r);
}

// Outputs at input positions x[0], x[step], x[2 step], x[3 step] (each the newest input of its sum),
// four sums in flight; `out` is written at out[0], out[stride], ...
inline void Four(const double* c, const uint32_t* t, size_t count, const double* x, size_t step,
                 int16_t* out, size_t stride) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  const double* x1 = x + step;
  const double* x2 = x1 + step;
  const double* x3 = x2 + step;
  for (size_t k = 0; k < count; k++) {
    const double ck = c[k];
    const size_t i = t[k];
    a0 += ck * *(x - i);
    a1 += ck * *(x1 - i);
    a2 += ck * *(x2 - i);
    a3 += ck * *(x3 - i);
  }
  out[0] = Round16(a0);
  out[stride] = Round16(a1);
  out[2 * stride] = Round16(a2);
  out[3 * stride] = Round16(a3);
}

inline int16_t One(const double* c, const uint32_t* t, size_t count, const double* x) {
  double acc = 0;
  for (size_t k = 0; k < count; k++) acc += c[k] * *(x - t[k]);
  return Round16(acc);
}

}  // namespace

size_t FirUp(const double* coefs, const uint32_t* taps, const uint32_t* lengths, uint32_t factor,
             const double* work, size_t history, size_t n, int16_t* dst) {
  const double* x = work + history;  // x[m] is input m of this call
  size_t at = 0;
  for (uint32_t p = 0; p < factor; p++) {
    const double* c = coefs + at;
    const uint32_t* t = taps + at;
    const size_t count = lengths[p];
    at += count;
    size_t m = 0;
    for (; m + 3 < n; m += 4) Four(c, t, count, x + m, 1, dst + m * factor + p, factor);
    for (; m < n; m++) dst[m * factor + p] = One(c, t, count, x + m);
  }
  return n * factor;
}

size_t FirDown(const double* coefs, const uint32_t* taps, size_t count, uint32_t factor,
               const double* work, size_t history, size_t start, size_t n, int16_t* dst) {
  const double* x = work + history;
  size_t o = 0;
  size_t i = start;
  for (; i + 3 * factor < n; i += 4 * factor, o += 4) Four(coefs, taps, count, x + i, factor, dst + o, 1);
  for (; i < n; i += factor) dst[o++] = One(coefs, taps, count, x + i);
  return o;
}

}  // namespace botedge
