#include "fir.h"

#include <cstdlib>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BOTEDGE_FIR_AVX2 1
#endif

namespace botedge {
namespace {

// (acc + 2^(shift−1)) >> shift: rounds half up, as JavaScript's `(acc + half) >> shift` does. `>>` of
// a negative int32 is an arithmetic shift on every compiler we build with (and by definition from
// C++20). The sum cannot overflow (kMaxAbsSum). Then clamped to 16 bits.
inline int16_t Round16(int32_t acc, uint32_t shift) {
  const int32_t v = (acc + (int32_t{1} << (shift - 1))) >> shift;
  return static_cast<int16_t>(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
}

// The one loop that matters: a dot product of contiguous Int16 arrays into an int32. Plain C++, no
// intrinsics and no target flags, so it builds for any x86-64 and for arm64; GCC 12 -O3 vectorises it
// for baseline x86-64 (SSE2 pmaddwd, 8 products per instruction; `objdump -d` of fir.o shows them).
// The int32 sum cannot overflow in any order (kMaxAbsSum), so reassociating it is exact. `L` is the
// length when known at compile time (0: `len`).
template <size_t L>
inline int32_t Dot(const int16_t* __restrict c, const int16_t* __restrict x, size_t len) {
  const size_t count = L ? L : len;
  int32_t acc = 0;
  for (size_t k = 0; k < count; k++) acc += int32_t{c[k]} * int32_t{x[k]};
  return acc;
}

template <size_t L>
void UpPhase(const int16_t* c, size_t len, const int16_t* x, size_t n, size_t F, uint32_t shift,
             int16_t* dst) {
  for (size_t m = 0; m < n; m++) dst[m * F] = Round16(Dot<L>(c, x + m, len), shift);
}

// Downsampling deinterleaves each sub-filter's every-F-th inputs into a stack buffer, a block of
// outputs at a time, so its taps are a contiguous dot product too. The block bounds the stack; each
// block re-copies only len − 1 inputs of the previous one.
constexpr size_t kBlock = 256;
template <size_t S>
inline void Gather(const int16_t* __restrict from, int16_t* __restrict to, size_t n, size_t stride) {
  const size_t step = S ? S : stride;
  for (size_t v = 0; v < n; v++) to[v] = from[v * step];
}
constexpr size_t kMaxFactor = 6;
using Stream = int16_t[kBlock + kMaxPhaseLength];

// Down's usual shape (sub-filter 0 the centre tap, the others 24 taps each), outputs [from, count)
// of a block: each one product plus F − 1 unrolled dot products (0.42 µs per 20 ms frame at
// 16 → 8 kHz in a standalone probe, against 0.59 for one sub-filter at a time over the whole block,
// which GCC vectorised across outputs instead of across taps). The AVX2 loops' remainder too.
inline void DownNyquist(int16_t centre, const int16_t* c, const Stream* streams, size_t F, size_t from,
                        size_t count, uint32_t shift, int16_t* dst) {
  for (size_t k = from; k < count; k++) {
    int32_t acc = int32_t{centre} * streams[0][k];
    for (size_t q = 1; q < F; q++) acc += Dot<24>(c + 24 * (q - 1), streams[q] + k, 24);
    dst[k] = Round16(acc, shift);
  }
}

// Up and Down are built twice, for baseline x86-64 and for AVX2 (16 products per vpmaddwd instead
// of 8), and the loader picks one for the CPU it runs on (GCC's target_clones, a glibc ifunc): the
// filters are a large share of the receive lane's work (perf, 400 mux calls). Integer sums in any
// order are exact (kMaxAbsSum), so both give the same samples; test/unit/codecs checks the addon
// against the TypeScript filters on whichever the machine runs. Elsewhere (arm64, macOS) one build.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
#define BOTEDGE_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define BOTEDGE_SIMD_CLONES
#endif

#ifdef BOTEDGE_FIR_AVX2
// Sixteen outputs of a 24-tap phase at once, across outputs rather than across taps: the loops
// above reduce each output's 24 products horizontally (three vpmaddwd, then a shuffle-and-add
// tree, a round and a clamp — per sample), and perf put the resampler at 16 % of a media node's
// CPU at 1,000 calls. Here each pair of taps (j, j+1) is one vpmaddwd over the inputs of 16
// outputs interleaved with their neighbours: out[k] += c[j]·x[k+j] + c[j+1]·x[k+j+1]. `pairs[i]`
// holds c[2i] in its low half and c[2i+1] in its high half. Integer sums in any order are exact
// (kMaxAbsSum), so the samples are the scalar loops' bit for bit. It reads x[0, 39) — no further
// than the scalar loop does for its 16th output. `lo` gets outputs 0–3 and 8–11, `hi` 4–7 and
// 12–15 (vpunpck works within 128-bit lanes); Pack16 puts them back in order.
__attribute__((target("avx2"))) inline void Dot24x16(const int32_t* pairs, const int16_t* x, __m256i* lo, __m256i* hi) {
  for (int i = 0; i < 12; i++) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 2 * i));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 2 * i + 1));
    const __m256i cc = _mm256_set1_epi32(pairs[i]);
    *lo = _mm256_add_epi32(*lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), cc));
    *hi = _mm256_add_epi32(*hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), cc));
  }
}

// Round16 of sixteen sums in Dot24x16's layout, stored in order: vpackssdw interleaves its two
// sources per 128-bit lane, which undoes the unpack's split, and saturates as Round16 clamps.
__attribute__((target("avx2"))) inline void Pack16(__m256i lo, __m256i hi, uint32_t shift, int16_t* out) {
  const __m256i half = _mm256_set1_epi32(int32_t{1} << (shift - 1));
  const __m128i count = _mm_cvtsi32_si128(static_cast<int>(shift));
  lo = _mm256_sra_epi32(_mm256_add_epi32(lo, half), count);
  hi = _mm256_sra_epi32(_mm256_add_epi32(hi, half), count);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_packs_epi32(lo, hi));
}

// c·x[k] for sixteen k, in Dot24x16's layout (the Nyquist filter's centre tap).
__attribute__((target("avx2"))) inline void Centre16(int16_t c, const int16_t* x, __m256i* lo, __m256i* hi) {
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
  const __m256i zero = _mm256_setzero_si256();
  const __m256i cc = _mm256_set1_epi32(static_cast<uint16_t>(c));
  *lo = _mm256_add_epi32(*lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, zero), cc));
  *hi = _mm256_add_epi32(*hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, zero), cc));
}

// Up's 24-tap phase, sixteen outputs at a time; the rest (n mod 16) as the scalar loop.
__attribute__((target("avx2"))) void UpPhase24Avx2(const int32_t* pairs, const int16_t* c, const int16_t* x,
                                                   size_t n, size_t F, uint32_t shift, int16_t* dst) {
  size_t m = 0;
  alignas(32) int16_t out[16];
  for (; m + 16 <= n; m += 16) {
    __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
    Dot24x16(pairs, x + m, &lo, &hi);
    Pack16(lo, hi, shift, out);
    for (size_t k = 0; k < 16; k++) dst[(m + k) * F] = out[k];
  }
  UpPhase<24>(c, 24, x + m, n - m, F, shift, dst + m * F);
}

// Up by 2 (8 → 16 kHz, the common case) in one pass: both phases of sixteen inputs — the centre
// tap's and the 24-tap one's — then interleaved into 32 outputs stored in order, instead of one
// phase at a time with a scalar loop for the centre and a strided store for both. vpunpck works
// within 128-bit lanes, so the two halves are put back in order across lanes before storing.
__attribute__((target("avx2"))) void Up2NyquistAvx2(const int32_t* pairs, const int16_t* c, const int16_t* x0,
                                                    const int16_t* x1, size_t n, uint32_t shift, int16_t* dst) {
  const int16_t centre = c[0];
  alignas(32) int16_t even[16];
  alignas(32) int16_t odd[16];
  size_t m = 0;
  for (; m + 16 <= n; m += 16) {
    __m256i lo0 = _mm256_setzero_si256(), hi0 = _mm256_setzero_si256();
    __m256i lo1 = _mm256_setzero_si256(), hi1 = _mm256_setzero_si256();
    Centre16(centre, x0 + m, &lo0, &hi0);
    Dot24x16(pairs, x1 + m, &lo1, &hi1);
    Pack16(lo0, hi0, shift, even);
    Pack16(lo1, hi1, shift, odd);
    const __m256i e = _mm256_load_si256(reinterpret_cast<const __m256i*>(even));
    const __m256i o = _mm256_load_si256(reinterpret_cast<const __m256i*>(odd));
    const __m256i a = _mm256_unpacklo_epi16(e, o);  // outputs of inputs 0–3 | 8–11
    const __m256i b = _mm256_unpackhi_epi16(e, o);  // 4–7 | 12–15
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 2 * m), _mm256_permute2x128_si256(a, b, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 2 * m + 16), _mm256_permute2x128_si256(a, b, 0x31));
  }
  UpPhase<1>(c, 1, x0 + m, n - m, 2, shift, dst + 2 * m);
  UpPhase<24>(c + 1, 24, x1 + m, n - m, 2, shift, dst + 2 * m + 1);
}

// Down's Nyquist shape over one block: out[k] = centre·s0[k] + Σ_q Dot24(c_q, s_q + k).
__attribute__((target("avx2"))) void DownNyquistAvx2(const int32_t* pairs, int16_t centre, const int16_t* c,
                                                     const Stream* streams, size_t F, size_t count, uint32_t shift,
                                                     int16_t* dst) {
  size_t k = 0;
  for (; k + 16 <= count; k += 16) {
    __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
    Centre16(centre, streams[0] + k, &lo, &hi);
    for (size_t q = 1; q < F; q++) Dot24x16(pairs + 12 * (q - 1), streams[q] + k, &lo, &hi);
    Pack16(lo, hi, shift, dst + k);
  }
  DownNyquist(centre, c, streams, F, k, count, shift, dst);
}

bool CpuHasAvx2() {
  // BOTEDGE_FIR_SIMD=0 keeps the portable loops (tests run both; see resample-native.test.ts).
  const char* env = std::getenv("BOTEDGE_FIR_SIMD");
  if (env && env[0] == '0') return false;
  return __builtin_cpu_supports("avx2");
}
#endif

}  // namespace

std::unique_ptr<FirPlan> FirPlan::Make(bool up, const int16_t* coefs, size_t count,
                                       const uint32_t* lengths, const uint32_t* reach,
                                       size_t factor, uint32_t shift, size_t history,
                                       const char** error) {
  if (factor < 2 || factor > kMaxFactor) return *error = "factor 2-6", nullptr;
  if (shift < 1 || shift > 15) return *error = "shift 1-15", nullptr;
  size_t total = 0;
  int64_t sum_all = 0;
  int64_t sum_worst = 0;
  for (size_t p = 0; p < factor; p++) {
    const size_t len = lengths[p];
    const uint64_t back = up ? uint64_t{reach[p]} : p + uint64_t{factor} * reach[p];
    if (len > kMaxPhaseLength) return *error = "a phase is longer than 256 coefficients", nullptr;
    if (len > 0 && len - 1 > reach[p]) return *error = "a phase reads past the newest input", nullptr;
    if (back > history) return *error = "a tap reaches past the history", nullptr;
    if (total + len > count) return *error = "coefs, lengths and reach disagree", nullptr;
    int64_t sum = 0;
    for (size_t k = 0; k < len; k++) sum += std::abs(int32_t{coefs[total + k]});
    sum_all += sum;
    if (sum > sum_worst) sum_worst = sum;
    total += len;
  }
  if (total != count) return *error = "coefs, lengths and reach disagree", nullptr;
  // Upsampling: each output is one phase's sum; downsampling: all sub-filters' together.
  if ((up ? sum_worst : sum_all) > kMaxAbsSum) {
    return *error = "coefficients whose sum could overflow int32", nullptr;
  }
  std::unique_ptr<FirPlan> plan(new FirPlan());
  plan->up_ = up;
  plan->factor_ = factor;
  plan->shift_ = shift;
  plan->history_ = history;
  plan->coefs_.assign(coefs, coefs + count);
  plan->lengths_.assign(lengths, lengths + factor);
  plan->reach_.assign(reach, reach + factor);
  plan->nyquist_ = lengths[0] == 1;
  for (size_t p = 1; p < factor; p++) plan->nyquist_ = plan->nyquist_ && lengths[p] == 24;
#ifdef BOTEDGE_FIR_AVX2
  plan->avx2_ = plan->nyquist_ && CpuHasAvx2();
#endif
  if (plan->avx2_) {
    // Each 24-tap phase as 12 pairs (c[2i] low, c[2i+1] high) for vpmaddwd.
    const int16_t* c = coefs + 1;
    for (size_t p = 1; p < factor; p++, c += 24) {
      for (size_t i = 0; i < 12; i++) {
        plan->pairs_.push_back(static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint16_t>(c[2 * i])) |
                                                    (static_cast<uint32_t>(static_cast<uint16_t>(c[2 * i + 1])) << 16)));
      }
    }
  }
  return plan;
}

const char* FirPlan::Kernel() {
#ifdef BOTEDGE_FIR_AVX2
  if (CpuHasAvx2()) return "avx2";
#endif
  return "portable";
}

// Our filters have 24-tap phases and one 1-tap phase (the Nyquist filter's centre); a length known
// at compile time lets GCC unroll the 24 into three pmaddwd with no loop and no remainder.
BOTEDGE_SIMD_CLONES size_t FirPlan::Up(const int16_t* work, size_t n, int16_t* dst) const {
  const size_t F = factor_;
  const int16_t* c = coefs_.data();
#ifdef BOTEDGE_FIR_AVX2
  if (avx2_ && F == 2) {
    Up2NyquistAvx2(pairs_.data(), c, work + history_ - reach_[0], work + history_ - reach_[1], n, shift_, dst);
    return n * F;
  }
#endif
  for (size_t p = 0; p < F; p++) {
    const size_t len = lengths_[p];
    const int16_t* x = work + history_ - reach_[p];  // phase p's oldest input for m = 0
    if (len == 24 && avx2_) {
#ifdef BOTEDGE_FIR_AVX2
      UpPhase24Avx2(pairs_.data() + 12 * (p - 1), c, x, n, F, shift_, dst + p);
#endif
    } else if (len == 24) {
      UpPhase<24>(c, len, x, n, F, shift_, dst + p);
    } else if (len == 1) {
      UpPhase<1>(c, len, x, n, F, shift_, dst + p);
    } else {
      UpPhase<0>(c, len, x, n, F, shift_, dst + p);
    }
    c += len;
  }
  return n * F;
}

BOTEDGE_SIMD_CLONES size_t FirPlan::Down(const int16_t* work, size_t start, size_t n, int16_t* dst) const {
  const size_t F = factor_;
  const size_t outputs = DownOutputs(start, n);
  const int16_t* x = work + history_ + start;  // the first output's newest input
  Stream streams[kMaxFactor];
  for (size_t k0 = 0; k0 < outputs; k0 += kBlock) {
    const size_t count = outputs - k0 < kBlock ? outputs - k0 : kBlock;
    for (size_t q = 0; q < F; q++) {
      const size_t len = lengths_[q];
      if (len == 0) continue;
      // stream[v] = x[F·(k0 + v − reach_q) − q]: tap j of output k0 + k reads stream[k + j].
      const int16_t* from = x + F * k0 - q - F * reach_[q];
      int16_t* stream = streams[q];
      // Every F-th input. A stride known at compile time (2: 16 → 8 kHz, the common case) lets
      // GCC load whole vectors and pick the lanes; a runtime stride is one load per sample.
      if (F == 2) Gather<2>(from, stream, count + len - 1, F);
      else Gather<0>(from, stream, count + len - 1, F);
    }
#ifdef BOTEDGE_FIR_AVX2
    if (avx2_) {
      DownNyquistAvx2(pairs_.data(), coefs_[0], coefs_.data() + 1, streams, F, count, shift_, dst + k0);
      continue;
    }
#endif
    if (nyquist_) {
      DownNyquist(coefs_[0], coefs_.data() + 1, streams, F, 0, count, shift_, dst + k0);
      continue;
    }
    for (size_t k = 0; k < count; k++) {
      int32_t acc = 0;
      const int16_t* c = coefs_.data();
      for (size_t q = 0; q < F; q++) {
        acc += Dot<0>(c, streams[q] + k, lengths_[q]);
        c += lengths_[q];
      }
      dst[k0 + k] = Round16(acc, shift_);
    }
  }
  return outputs;
}

}  // namespace botedge
