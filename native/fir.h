// The resampler's FIR loops (codecs/resample.ts keeps the filter design and the state); the native
// twin of its #upsample/#downsample loops. Each output sample sums its taps in the same order as the
// TypeScript loop, in doubles, and rounds the same way (Math.round: half up), so both paths produce
// identical samples — test/unit/codecs/resample-native.test.ts compares them. Speed comes from
// computing several independent outputs at once (instruction-level parallelism), never from
// reordering one output's sum.
#pragma once

#include <cstddef>
#include <cstdint>

namespace botedge {

// Upsampling by F: `phases` holds F phases of `lengths[p]` taps each, back to back; `work` holds
// `history` past inputs then `n` new ones. Writes n * F samples to dst; returns that count.
size_t FirUp(const double* phases, const uint32_t* lengths, uint32_t factor, const double* work,
             size_t history, size_t n, int16_t* dst);

// Downsampling by F with one filter `h` of `taps`: outputs at input offsets start, start + F, ... < n.
// Returns the number written.
size_t FirDown(const double* h, size_t taps, uint32_t factor, const double* work, size_t history,
               size_t start, size_t n, int16_t* dst);

}  // namespace botedge
