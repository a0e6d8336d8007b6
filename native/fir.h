// The resampler's FIR loops in fixed point, the native twin of codecs/fir.ts's `jsFir` (which also
// builds the filter and proves its bound). Int16 coefficients times Int16 inputs summed in Int32:
// exact, so the order of the sum does not matter and the loops vectorise (SSE2 pmaddwd: eight
// products, summed in pairs, per instruction) while giving the TypeScript loops' samples bit for
// bit — test/unit/codecs/resample-native.test.ts compares them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace botedge {

// The largest sum of |c| over the coefficients of one output for which no partial sum, in any order,
// leaves int32 (codecs/fir.ts MAX_ABS_SUM has the proof).
constexpr int64_t kMaxAbsSum = 65535;

// The most coefficients one phase may have (FirDown deinterleaves into a stack buffer); ours have 24.
constexpr size_t kMaxPhaseLength = 256;

// A polyphase filter, checked once and copied (so the caller cannot change it after the check):
// `factor` phases; phase p has lengths[p] coefficients, back to back, oldest input first, and its
// oldest input lies reach[p] inputs back (upsampling) or reach[p] steps of `factor` inputs back
// (downsampling). A coefficient c stands for c / 2^shift. Every call reads `history` past inputs,
// then the new ones, from one work buffer: x[i] = work[history + i].
class FirPlan {
 public:
  // The plan, or nullptr with `*error` set: a reach beyond `history`, a phase that reads past the
  // newest input, or coefficients that could overflow int32 (sum of |c| per output > kMaxAbsSum).
  static std::unique_ptr<FirPlan> Make(bool up, const int16_t* coefs, size_t count,
                                       const uint32_t* lengths, const uint32_t* reach,
                                       size_t factor, uint32_t shift, size_t history,
                                       const char** error);

  bool up() const { return up_; }
  size_t factor() const { return factor_; }
  size_t history() const { return history_; }

  // Upsampling: output mF + p = round(Σ_j c_p[j] · x[m − reach_p + j]) for m < n. Writes n · F
  // samples to dst; returns that count.
  size_t Up(const int16_t* work, size_t n, int16_t* dst) const;

  // Downsampling: outputs whose newest input is x[start], x[start + F], … (before x[n]); the one
  // for newest input i = round(Σ_q Σ_j c_q[j] · x[i − q − F·(reach_q − j)]). Returns how many
  // (DownOutputs).
  size_t Down(const int16_t* work, size_t start, size_t n, int16_t* dst) const;

  // Which loops plans of the usual shape (a centre tap and 24-tap phases) run on this CPU:
  // "avx2" (across outputs, sixteen at a time) or "portable".
  static const char* Kernel();

  size_t DownOutputs(size_t start, size_t n) const {
    return start < n ? (n - start + factor_ - 1) / factor_ : 0;
  }

 private:
  FirPlan() = default;

  bool up_ = false;
  size_t factor_ = 0;
  uint32_t shift_ = 0;
  size_t history_ = 0;
  std::vector<int16_t> coefs_;
  std::vector<uint32_t> lengths_;
  std::vector<uint32_t> reach_;
  // The shape codecs/fir.ts gives every ratio: phase 0 one tap (the Nyquist filter's centre), every
  // other phase 24. Downsampling has a loop for it; any other shape takes the generic one.
  bool nyquist_ = false;
  // That shape on a CPU with AVX2: the loops run across outputs, sixteen at a time (fir.cc), with
  // each phase's taps paired for vpmaddwd in `pairs_`.
  bool avx2_ = false;
  std::vector<int32_t> pairs_;
};

}  // namespace botedge
