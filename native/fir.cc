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

}  // namespace

namespace {

// One instantiation per factor, so the 2 * F running sums live in registers.
template <uint32_t F>
size_t FirUpFixed(const double* phases, const uint32_t* lengths, const double* work, size_t history,
                  size_t n, int16_t* dst) {
  const double* g[F];
  uint32_t common = lengths[0];
  const double* at = phases;
  for (uint32_t p = 0; p < F; p++) {
    g[p] = at;
    at += lengths[p];
    if (lengths[p] < common) common = lengths[p];
  }
  size_t o = 0;
  size_t m = 0;
  // Two input samples at a time: 2 * F independent sums in flight.
  for (; m + 1 < n; m += 2) {
    const double* x0 = work + history + m;  // the newest input of output group m
    const double* x1 = x0 + 1;
    double a0[F] = {0};
    double a1[F] = {0};
    for (uint32_t i = 0; i < common; i++) {
      const double w0 = *(x0 - i);
      const double w1 = *(x1 - i);
      for (uint32_t p = 0; p < F; p++) {
        a0[p] += g[p][i] * w0;
        a1[p] += g[p][i] * w1;
      }
    }
    for (uint32_t p = 0; p < F; p++) {
      for (uint32_t i = common; i < lengths[p]; i++) {
        a0[p] += g[p][i] * *(x0 - i);
        a1[p] += g[p][i] * *(x1 - i);
      }
    }
    for (uint32_t p = 0; p < F; p++) dst[o + p] = Round16(a0[p]);
    for (uint32_t p = 0; p < F; p++) dst[o + F + p] = Round16(a1[p]);
    o += 2 * F;
  }
  for (; m < n; m++) {
    const double* x0 = work + history + m;
    for (uint32_t p = 0; p < F; p++) {
      double acc = 0;
      for (uint32_t i = 0; i < lengths[p]; i++) acc += g[p][i] * *(x0 - i);
      dst[o++] = Round16(acc);
    }
  }
  return o;
}

}  // namespace

size_t FirUp(const double* phases, const uint32_t* lengths, uint32_t factor, const double* work,
             size_t history, size_t n, int16_t* dst) {
  switch (factor) {
    case 2: return FirUpFixed<2>(phases, lengths, work, history, n, dst);
    case 3: return FirUpFixed<3>(phases, lengths, work, history, n, dst);
    case 4: return FirUpFixed<4>(phases, lengths, work, history, n, dst);
    case 5: return FirUpFixed<5>(phases, lengths, work, history, n, dst);
    case 6: return FirUpFixed<6>(phases, lengths, work, history, n, dst);
    default: return 0;
  }
}

size_t FirDown(const double* h, size_t taps, uint32_t factor, const double* work, size_t history,
               size_t start, size_t n, int16_t* dst) {
  if (factor == 0) return 0;
  size_t o = 0;
  size_t i = start;
  // Four outputs at a time: four independent sums in flight.
  for (; i + 3 * factor < n; i += 4 * factor) {
    const double* x0 = work + history + i;
    const double* x1 = x0 + factor;
    const double* x2 = x1 + factor;
    const double* x3 = x2 + factor;
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (size_t k = 0; k < taps; k++) {
      const double c = h[k];
      a0 += c * *(x0 - k);
      a1 += c * *(x1 - k);
      a2 += c * *(x2 - k);
      a3 += c * *(x3 - k);
    }
    dst[o++] = Round16(a0);
    dst[o++] = Round16(a1);
    dst[o++] = Round16(a2);
    dst[o++] = Round16(a3);
  }
  for (; i < n; i += factor) {
    const double* x0 = work + history + i;
    double acc = 0;
    for (size_t k = 0; k < taps; k++) acc += h[k] * *(x0 - k);
    dst[o++] = Round16(acc);
  }
  return o;
}

}  // namespace botedge
