// The resampler's FIR loops (codecs/resample.ts keeps the filter design and the state); the native
// twin of its #upsample/#downsample loops. Each output sample sums its taps in the same order as the
// TypeScript loop, in doubles, and rounds the same way (Math.round: half up), so both paths produce
// identical samples — test/unit/codecs/resample-native.test.ts compares them. Speed comes from
// computing several independent outputs at once (instruction-level parallelism) and from skipping
// the filter's exactly-zero taps (adding a zero product never changes a sum), never from reordering
// one output's sum.
#pragma once

#include <cstddef>
#include <cstdint>

namespace botedge {

// Upsampling by F: phase p has lengths[p] coefficients, back to back in `coefs`, at tap offsets
// `taps` (ascending within a phase; offset i reads the input i samples before the newest). `work`
// holds `history` past inputs then `n` new ones. Writes n * F samples to dst; returns that count.
size_t FirUp(const double* coefs, const uint32_t* taps, const uint32_t* lengths, uint32_t factor,
             const double* work, size_t history, size_t n, int16_t* dst);

// Downsampling by F with one filter of `count` coefficients at tap offsets `taps`: outputs at input
// offsets start, start + F, ... < n. Returns the number written.
size_t FirDown(const double* coefs, const uint32_t* taps, size_t count, uint32_t factor,
               const double* work, size_t history, size_t start, size_t n, int16_t* dst);

}  // namespace botedge
