// See g722.h. The tables and block names are the Recommendation's (ITU-T G.722); the comments on
// what each block does are in codecs/g722.ts.
#include "g722.h"

#include <cstring>

namespace botedge {
namespace {

const int32_t kQmf[12] = {3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11};
const int32_t kWl[8] = {-60, -30, 58, 172, 334, 538, 1198, 3042};
const int32_t kRl42[16] = {0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0};
const int32_t kIlb[32] = {2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
                          2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008};
const int32_t kQ6[32] = {0,    35,   72,   110,  150,  190,  233,  276,  323,  370,  422,  473,  530,  587,  650,  714,
                         786,  858,  940,  1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0,    0};
const int32_t kIln[32] = {0,  63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19,
                          18, 17, 16, 15, 14, 13, 12, 11, 10, 9,  8,  7,  6,  5,  4,  0};
const int32_t kIlp[32] = {0,  61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47,
                          46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 0};
const int32_t kQm4[16] = {0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0};
const int32_t kQm6[64] = {-136,  -136,  -136,  -136,  -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
                          -9360, -8576, -7856, -7192, -6576,  -6000,  -5456,  -4944,  -4464,  -4008,  -3576,  -3168,  -2776,
                          -2400, -2032, -1688, -1360, -1040,  -728,   24808,  21904,  19008,  16704,  14984,  13512,  12280,
                          11192, 10232, 9360,  8576,  7856,   7192,   6576,   6000,   5456,   4944,   4464,   4008,   3576,
                          3168,  2776,  2400,  2032,  1688,   1360,   1040,   728,    432,    136,    -432,   -136};
const int32_t kQm2[4] = {-7408, -1616, 7408, 1616};
const int32_t kWh[3] = {0, -214, 798};
const int32_t kRh2[4] = {2, 1, 2, 1};
const int32_t kIhn[3] = {0, 1, 0};
const int32_t kIhp[3] = {0, 3, 2};

inline int32_t Sat16(int32_t x) { return x > 32767 ? 32767 : x < -32768 ? -32768 : x; }

void Scale(G722Band* b, int32_t step, int32_t max, int32_t shift) {
  int32_t nb = ((b->nb * 127) >> 7) + step;
  if (nb < 0) nb = 0;
  else if (nb > max) nb = max;
  b->nb = nb;
  int32_t i = (nb >> 6) & 31;
  int32_t e = shift - (nb >> 11);
  b->det = (e < 0 ? kIlb[i] << -e : kIlb[i] >> e) << 2;
}

void Update(G722Band* b, int32_t dx) {
  int32_t r0 = Sat16(b->s + dx);
  int32_t p0 = Sat16(b->sz + dx);
  int32_t sg0 = p0 >> 15, sg1 = b->p[1] >> 15, sg2 = b->p[2] >> 15;
  int32_t wd1 = Sat16(b->a[1] << 2);
  int32_t wd2 = sg0 == sg1 ? -wd1 : wd1;
  if (wd2 > 32767) wd2 = 32767;
  int32_t a2 = (sg0 == sg2 ? 128 : -128) + (wd2 >> 7) + ((b->a[2] * 32512) >> 15);
  if (a2 > 12288) a2 = 12288;
  else if (a2 < -12288) a2 = -12288;
  int32_t a1 = Sat16((sg0 == sg1 ? 192 : -192) + ((b->a[1] * 32640) >> 15));
  int32_t lim = Sat16(15360 - a2);
  if (a1 > lim) a1 = lim;
  else if (a1 < -lim) a1 = -lim;
  int32_t step = dx == 0 ? 0 : 128;
  int32_t sgd = dx >> 15;
  for (int i = 6; i > 0; i--) {
    b->b[i] = Sat16(((b->d[i] >> 15) == sgd ? step : -step) + ((b->b[i] * 32640) >> 15));
    b->d[i] = i == 1 ? dx : b->d[i - 1];
  }
  b->r[2] = b->r[1];
  b->r[1] = r0;
  b->p[2] = b->p[1];
  b->p[1] = p0;
  b->a[1] = a1;
  b->a[2] = a2;
  int32_t sp = Sat16(((a1 * Sat16(r0 + r0)) >> 15) + ((a2 * Sat16(b->r[2] + b->r[2])) >> 15));
  int32_t sz = 0;
  for (int i = 6; i > 0; i--) sz += (b->b[i] * Sat16(b->d[i] + b->d[i])) >> 15;
  b->sz = Sat16(sz);
  b->s = Sat16(sp + b->sz);
}

inline int32_t Push(G722State* st, int32_t a, int32_t b) {
  int32_t h = st->h;
  st->qmf[h] = st->qmf[h + 24] = a;
  st->qmf[h + 1] = st->qmf[h + 25] = b;
  st->h = h == 22 ? 0 : h + 2;
  return st->h;
}

}  // namespace

void G722Reset(G722State* st) {
  std::memset(st, 0, sizeof *st);
  st->band[0].det = 32;
  st->band[1].det = 8;
}

void G722Encode(G722State* st, const int16_t* pcm, size_t n, uint8_t* out) {
  G722Band* low = &st->band[0];
  G722Band* high = &st->band[1];
  for (size_t j = 0; j < n / 2; j++) {
    int32_t h = Push(st, pcm[2 * j], pcm[2 * j + 1]);
    const int32_t* x = st->qmf + h;
    int32_t sum_odd = 0, sum_even = 0;
    for (int i = 0; i < 12; i++) {
      sum_odd += x[2 * i] * kQmf[i];
      sum_even += x[2 * i + 1] * kQmf[11 - i];
    }
    int32_t xlow = (sum_even + sum_odd) >> 14;
    int32_t xhigh = (sum_even - sum_odd) >> 14;

    int32_t el = Sat16(xlow - low->s);
    int32_t wdl = el >= 0 ? el : -(el + 1);
    int lo = 1, hi = 30;
    while (lo < hi) {
      int mid = (lo + hi) >> 1;
      if (wdl < ((kQ6[mid] * low->det) >> 12)) hi = mid;
      else lo = mid + 1;
    }
    int32_t ilow = el < 0 ? kIln[lo] : kIlp[lo];
    int32_t ril = ilow >> 2;
    int32_t dlow = (low->det * kQm4[ril]) >> 15;
    Scale(low, kWl[kRl42[ril]], 18432, 8);
    Update(low, dlow);

    int32_t eh = Sat16(xhigh - high->s);
    int32_t wdh = eh >= 0 ? eh : -(eh + 1);
    int32_t mih = wdh >= ((564 * high->det) >> 12) ? 2 : 1;
    int32_t ihigh = eh < 0 ? kIhn[mih] : kIhp[mih];
    int32_t dhigh = (high->det * kQm2[ihigh]) >> 15;
    Scale(high, kWh[kRh2[ihigh]], 22528, 10);
    Update(high, dhigh);

    out[j] = static_cast<uint8_t>((ihigh << 6) | ilow);
  }
}

void G722Decode(G722State* st, const uint8_t* codes, size_t n, int16_t* out) {
  G722Band* low = &st->band[0];
  G722Band* high = &st->band[1];
  for (size_t j = 0; j < n; j++) {
    int32_t code = codes[j];
    int32_t ilow = code & 0x3f;
    int32_t ihigh = (code >> 6) & 0x03;

    int32_t rlow = low->s + ((low->det * kQm6[ilow]) >> 15);
    if (rlow > 16383) rlow = 16383;
    else if (rlow < -16384) rlow = -16384;
    int32_t ril = ilow >> 2;
    int32_t dlow = (low->det * kQm4[ril]) >> 15;
    Scale(low, kWl[kRl42[ril]], 18432, 8);
    Update(low, dlow);

    int32_t dhigh = (high->det * kQm2[ihigh]) >> 15;
    int32_t rhigh = dhigh + high->s;
    if (rhigh > 16383) rhigh = 16383;
    else if (rhigh < -16384) rhigh = -16384;
    Scale(high, kWh[kRh2[ihigh]], 22528, 10);
    Update(high, dhigh);

    int32_t h = Push(st, rlow + rhigh, rlow - rhigh);
    const int32_t* x = st->qmf + h;
    int32_t out1 = 0, out2 = 0;
    for (int i = 0; i < 12; i++) {
      out2 += x[2 * i] * kQmf[i];
      out1 += x[2 * i + 1] * kQmf[11 - i];
    }
    out[2 * j] = static_cast<int16_t>(Sat16(out1 >> 11));
    out[2 * j + 1] = static_cast<int16_t>(Sat16(out2 >> 11));
  }
}

}  // namespace botedge
