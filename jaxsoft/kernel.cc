// The softmax over the last axis as XLA FFI custom calls on CPU (jaxsoft/kernel.py builds and
// registers them; jaxsoft/softmax.py calls them). Every row is read from memory once, for its
// max m; then e^{x - m} is computed with the rounding error of x - m folded in, stored, and
// summed in a wider format (float64 for float32, x87 long double for float64); then the stored
// row, still in cache, is scaled by 1 / sum in that wider format and rounded once.
// bfloat16/float16 rows are read and written in their format and computed in float32, whose
// error stays far below half a unit of the 8- or 11-bit result (softmax_rows_half).
//
// Conventions (those of jaxsoft.softmax): m is at least -max (a row of all -inf sums to 0 and
// gives 0, not 0/0); e^{x - m} is 0 where x - m is below the smallest subnormal's exponent
// (-inf included); a NaN or +inf anywhere in a row makes the whole row NaN. XLA's threads run
// with subnormals flushed to zero, so there the subnormal results below are 0 as well.
//
// The soft-label cross-entropy's kernel (SoftCrossEntropy) forms the loss beside the row's
// statistics, in the same wider format, reading x and the labels y once.
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <memory>
#include <type_traits>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// ------------------------------------------------------------------------------- float32

// e^{d + err} for d = fl(x - m) <= 0 and its rounding error err: Cody-Waite reduction
// r = d - n·ln2 (ln2 in two parts), err added to r, a degree-7 polynomial (Cephes expf), and
// the scaling by 2^n with scalef (exact, subnormal results rounded once). NaN stays NaN: max
// returns its second operand when either is NaN.
inline __m512 exp_below(__m512 d, __m512 err) {
  d = _mm512_max_ps(_mm512_set1_ps(-104.0f), d);
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(d, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693359375f), d);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
  r = _mm512_add_ps(r, err);
  __m512 p = _mm512_set1_ps(1.9875691500E-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
  __m512 e = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(e, n);
}

inline __mmask16 tail(int64_t left) {
  return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

// f(j, k) over a row of c entries, 16 at a time: the whole chunks with k all ones known at
// compile time (plain loads and stores), then the tail's mask. A mask computed in the loop
// cost 3.5x on this CPU (AMD EPYC; the integer-label gradient's pass, measured).
template <typename F>
inline __attribute__((always_inline)) void chunks(int64_t c, F f) {
  int64_t j = 0;
  for (; j + 16 <= c; j += 16) f(j, (__mmask16)0xFFFF);
  if (j < c) f(j, tail(c - j));
}

// 16 float32 entries as a vector and back (the 16-bit formats BF16 and F16 below alike).
struct F32 {
  static __m512 load(const float* p, __mmask16 k) { return _mm512_maskz_loadu_ps(k, p); }
  static void store(float* p, __mmask16 k, __m512 v) { _mm512_mask_storeu_ps(p, k, v); }
};

// Four accumulators: one max chain is latency-bound (measured 4x slower). H loads x's format.
template <typename H = F32, typename E>
inline float row_max(const E* x, int64_t c) {
  const __mmask16 all = 0xFFFF;
  __m512 a0 = _mm512_set1_ps(-FLT_MAX), a1 = a0, a2 = a0, a3 = a0;
  int64_t j = 0;
  for (; j + 64 <= c; j += 64) {
    a0 = _mm512_max_ps(a0, H::load(x + j, all));
    a1 = _mm512_max_ps(a1, H::load(x + j + 16, all));
    a2 = _mm512_max_ps(a2, H::load(x + j + 32, all));
    a3 = _mm512_max_ps(a3, H::load(x + j + 48, all));
  }
  for (; j < c; j += 16) {
    __mmask16 k = tail(c - j);
    a0 = _mm512_mask_max_ps(a0, k, a0, H::load(x + j, k));
  }
  return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(a0, a1), _mm512_max_ps(a2, a3)));
}

inline __m512d lo_pd(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
inline __m512d hi_pd(__m512 v) {
  return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

inline __m512 join(__m256 lo, __m256 hi) {
  return _mm512_castpd_ps(
      _mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
}

// e^{x - m} for the entries of k (0 elsewhere and where x - m is below -104, -inf included),
// the rounding error of d = fl(x - m) folded in: the Fast2Sum of min(x, -m) and max(x, -m)
// gives x - m = d + err exactly (jaxsoft.softmax.diff_below).
inline __m512 exp_diff(__m512 v, __mmask16 k, __m512 m, __m512 neg_m) {
  __m512 d = _mm512_sub_ps(v, m);
  __m512 err = _mm512_sub_ps(_mm512_max_ps(v, neg_m), _mm512_sub_ps(d, _mm512_min_ps(v, neg_m)));
  __mmask16 kept = _mm512_mask_cmp_ps_mask(k, d, _mm512_set1_ps(-104.0f), _CMP_NLE_UQ);
  return _mm512_maskz_mov_ps(kept, exp_below(d, err));
}

int64_t softmax_narrow_f32(const float*, float*, int64_t, int64_t, int64_t);
int64_t log_softmax_narrow_f32(const float*, float*, int64_t, int64_t, int64_t);
int64_t stats_narrow_f32(const float*, float*, float*, float*, int64_t, int64_t, int64_t);
int64_t int_grad_narrow_f32(const float*, const int32_t*, const float*, const float*,
                            const float*, const float*, const float*, float*, int64_t, int64_t,
                            int64_t);
int64_t soft_grad_narrow_f32(const float*, const float*, const float*, const float*, const float*,
                             const float*, float*, int64_t, int64_t, int64_t);
int64_t log_softmax_grad_narrow_f32(const float*, const float*, float*, int64_t, int64_t,
                                   int64_t);

void softmax_rows_f32(const float* x, float* y, int64_t r0, int64_t r1, int64_t c) {
  if (c <= 16) r0 = softmax_narrow_f32(x, y, r0, r1, c);
  for (int64_t i = r0; i < r1; ++i) {
    const float* xi = x + i * c;
    float* yi = y + i * c;
    __m512 m = _mm512_set1_ps(row_max(xi, c)), neg_m = _mm512_sub_ps(_mm512_setzero_ps(), m);
    __m512d s0 = _mm512_setzero_pd(), s1 = s0;
    chunks(c, [&](int64_t j, __mmask16 k) {
      __m512 e = exp_diff(_mm512_maskz_loadu_ps(k, xi + j), k, m, neg_m);
      _mm512_mask_storeu_ps(yi + j, k, e);
      s0 = _mm512_add_pd(s0, lo_pd(e));
      s1 = _mm512_add_pd(s1, hi_pd(e));
    });
    double s = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    double inv = 1.0 / (s < 1.0 ? 1.0 : s);  // < 1 only for an empty row
    // 1/s as a float32 pair hi + lo (48 bits), both times 2^64: 2^64·y = e·hi + fl(e·lo) in
    // one FMA, rounded once (lo's product errs by ~2^-48 of y), then the exact 2^-64. The 2^64
    // keeps e·lo out of the subnormals, which XLA's threads flush to zero (a tiny y lost up to
    // an ulp without it). As exact as the float64 product rounded to float32, in 3 operations.
    float inv_hi = (float)inv;
    __m512 hi = _mm512_set1_ps(0x1p64f * inv_hi),
           lo = _mm512_set1_ps(0x1p64f * (float)(inv - inv_hi)), down = _mm512_set1_ps(0x1p-64f);
    chunks(c, [&](int64_t j, __mmask16 k) {
      __m512 e = _mm512_maskz_loadu_ps(k, yi + j);
      __m512 y2 = _mm512_fmadd_ps(e, hi, _mm512_mul_ps(e, lo));
      _mm512_mask_storeu_ps(yi + j, k, _mm512_mul_ps(y2, down));
    });
  }
}

// log_softmax = (x - m) - log1p(s), s = (ties - 1) + Σ_{x < m} e^{x - m} summed in float64: the
// maxima count exactly, so a confident row's tiny s keeps its digits; (x - m) - log1p(s) in
// float64, rounded once. An empty row has s = -1 and l = 0 (its entries stay -inf).
// One 16-entry chunk of s: e^{v - m} for the entries below the max (the Fast2Sum err folded
// in) added to s0/s1 in float64, the maxima counted in ties.
inline void add_s(__m512 v, __mmask16 k, __m512 m, __m512 neg_m, __m512d& s0, __m512d& s1,
                  int64_t& ties) {
  __mmask16 tie = _mm512_mask_cmp_ps_mask(k, v, m, _CMP_EQ_OQ);
  __m512 e = exp_diff(v, k & ~tie, m, neg_m);
  s0 = _mm512_add_pd(s0, lo_pd(e));
  s1 = _mm512_add_pd(s1, hi_pd(e));
  ties += __builtin_popcount(tie);
}

// s = (ties - 1) + Σ_{x < m} e^{x - m} for a row with max m, summed in float64: the maxima
// count exactly, so a confident row's tiny s keeps its digits. -1 for an empty row, NaN if
// the row holds a NaN or m = +inf.
template <typename H = F32, typename E>
inline double row_s(const E* xi, int64_t c, float mf) {
  __m512 m = _mm512_set1_ps(mf), neg_m = _mm512_sub_ps(_mm512_setzero_ps(), m);
  __m512d s0 = _mm512_setzero_pd(), s1 = s0;
  int64_t ties = 0;
  chunks(c, [&](int64_t j, __mmask16 k) {
    add_s(H::load(xi + j, k), k, m, neg_m, s0, s1, ties);
  });
  double s = (double)(ties - 1) + _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
  return mf == INFINITY ? NAN : s;
}

// log_softmax = (x - m) - log1p(s) in float64, rounded once (an empty row: log1p(0), -inf
// entries).
void log_softmax_rows_f32(const float* x, float* y, int64_t r0, int64_t r1, int64_t c) {
  if (c <= 16) r0 = log_softmax_narrow_f32(x, y, r0, r1, c);
  for (int64_t i = r0; i < r1; ++i) {
    const float* xi = x + i * c;
    float* yi = y + i * c;
    float mf = row_max(xi, c);
    double s = row_s(xi, c, mf);
    __m512d md = _mm512_set1_pd(mf), ld = _mm512_set1_pd(std::log1p(s < 0 ? 0.0 : s));
    chunks(c, [&](int64_t j, __mmask16 k) {
      __m512 v = _mm512_maskz_loadu_ps(k, xi + j);
      __m256 lo = _mm512_cvtpd_ps(_mm512_sub_pd(_mm512_sub_pd(lo_pd(v), md), ld));
      __m256 hi = _mm512_cvtpd_ps(_mm512_sub_pd(_mm512_sub_pd(hi_pd(v), md), ld));
      _mm512_mask_storeu_ps(yi + j, k, join(lo, hi));
    });
  }
}

// Per row: m, log1p(s) (0 for an empty row) and logsumexp m + log1p(s) (-inf for it); H loads
// x's format (float32, or bfloat16/float16 for half_stats).
template <typename H = F32, typename E>
void stats_rows(const E* x, float* m, float* l, float* lse, int64_t r0, int64_t r1, int64_t c) {
  for (int64_t i = r0; i < r1; ++i) {
    float mf = row_max<H>(x + i * c, c);
    double s = row_s<H>(x + i * c, c, mf);
    m[i] = mf;
    l[i] = (float)std::log1p(s < 0 ? 0.0 : s);
    lse[i] = (float)((double)mf + std::log1p(s));
  }
}

void stats_rows_f32(const float* x, float* m, float* l, float* lse, int64_t r0, int64_t r1,
                    int64_t c) {
  if (c <= 16) r0 = stats_narrow_f32(x, m, l, lse, r0, r1, c);
  stats_rows(x, m, l, lse, r0, r1, c);
}

// Soft-label cross-entropy per row, the loss Σ_j y_j·(log1p(s) + (m - x_j)) as
// mass·log1p(s) + Σ_{y_j != 0} y_j·(m - x_j), mass = Σ_j y_j, all in float64 and rounded once
// (every term >= 0: no cancellation). 0·log 0 = 0: an entry with y_j = 0 adds nothing, also
// at x_j = -inf, where y_j > 0 adds +inf. A label outside [0, 1] (or NaN) makes the row's
// loss NaN, and its l = log1p(s) too (so its gradient is NaN). The s pass and the loss pass
// are one loop over x and y. H reads their format (float32, or bfloat16/float16 as they are).
template <typename H = F32, typename E>
void soft_ce_rows(const E* x, const E* y, float* loss, float* m, float* l, float* lse,
                  float* mass, int64_t r0, int64_t r1, int64_t c) {
  const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
  for (int64_t i = r0; i < r1; ++i) {
    const E *xi = x + i * c, *yi = y + i * c;
    float mf = row_max<H>(xi, c);
    __m512 mv = _mm512_set1_ps(mf), neg_m = _mm512_sub_ps(zero, mv);
    __m512d md = _mm512_set1_pd(mf), s0 = _mm512_setzero_pd(), s1 = s0, t0 = s0, t1 = s0,
            w0 = s0, w1 = s0;
    __mmask16 bad = 0;
    int64_t ties = 0;
    chunks(c, [&](int64_t j, __mmask16 k) {
      __m512 v = H::load(xi + j, k), w = H::load(yi + j, k);
      add_s(v, k, mv, neg_m, s0, s1, ties);
      bad |= _mm512_mask_cmp_ps_mask(k, w, zero, _CMP_NGE_UQ) |
             _mm512_mask_cmp_ps_mask(k, w, one, _CMP_NLE_UQ);
      __mmask16 nz = _mm512_mask_cmp_ps_mask(k, w, zero, _CMP_NEQ_UQ);
      __m512d wl = lo_pd(w), wh = hi_pd(w);
      t0 = _mm512_mask3_fmadd_pd(wl, _mm512_sub_pd(md, lo_pd(v)), t0, (__mmask8)nz);
      t1 = _mm512_mask3_fmadd_pd(wh, _mm512_sub_pd(md, hi_pd(v)), t1, (__mmask8)(nz >> 8));
      w0 = _mm512_add_pd(w0, wl);
      w1 = _mm512_add_pd(w1, wh);
    });
    double s = (double)(ties - 1) + _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    if (mf == INFINITY) s = NAN;
    double lp = std::log1p(s < 0 ? 0.0 : s), ms = _mm512_reduce_add_pd(_mm512_add_pd(w0, w1));
    double total = bad ? NAN : ms * lp + _mm512_reduce_add_pd(_mm512_add_pd(t0, t1));
    loss[i] = (float)total;
    m[i] = mf;
    l[i] = std::isnan(total) ? NAN : (float)lp;
    lse[i] = s < 0 ? -INFINITY : (float)((double)mf + lp);  // an empty row: s = -1
    mass[i] = (float)ms;
  }
}

// The cross-entropies' gradients, a·p - (the label term), p_j = e^{(x_j - m) - l} the
// softmax recomputed from the forward's row max m and l = log1p(s) (jaxsoft.softmax.probs);
// 0 where (x_j - m) - l is below -104 (-inf included), NaN where l is (a poisoned row).
// Integer labels: g_j = a·p_j - c - b·[j = y]; soft labels: g_j = a·p_j - b·y_j. a, b, c
// are per row (jaxsoft.losses.cross_entropy). The output is written once.
inline __m512 probs(__m512 v, __m512 m, __m512 l) {
  __m512 t = _mm512_sub_ps(_mm512_sub_ps(v, m), l);
  __mmask16 kept = _mm512_cmp_ps_mask(t, _mm512_set1_ps(-104.0f), _CMP_NLE_UQ);
  return _mm512_maskz_mov_ps(kept, exp_below(t, _mm512_setzero_ps()));
}

// H reads x's and writes g's format (float32, or bfloat16/float16 rounded once: half_int_grad).
template <typename H = F32, typename E>
void int_grad_rows(const E* x, const int32_t* y, const float* m, const float* l, const float* a,
                   const float* b, const float* c, E* g, int64_t r0, int64_t r1, int64_t cols) {
  for (int64_t i = r0; i < r1; ++i) {
    const E* xi = x + i * cols;
    E* gi = g + i * cols;
    __m512 mv = _mm512_set1_ps(m[i]), lv = _mm512_set1_ps(l[i]), av = _mm512_set1_ps(a[i]),
           bv = _mm512_set1_ps(b[i]), cv = _mm512_set1_ps(c[i]);
    int64_t label = std::min<int64_t>(std::max<int32_t>(y[i], 0), cols - 1);
    chunks(cols, [&](int64_t j, __mmask16 k) {
      __m512 gj = _mm512_fmsub_ps(av, probs(H::load(xi + j, k), mv, lv), cv);
      if ((uint64_t)(label - j) < 16) gj = _mm512_mask_sub_ps(gj, 1u << (label - j), gj, bv);
      H::store(gi + j, k, gj);
    });
  }
}

void int_grad_rows_f32(const float* x, const int32_t* y, const float* m, const float* l,
                       const float* a, const float* b, const float* c, float* g, int64_t r0,
                       int64_t r1, int64_t cols) {
  if (cols <= 16) r0 = int_grad_narrow_f32(x, y, m, l, a, b, c, g, r0, r1, cols);
  int_grad_rows(x, y, m, l, a, b, c, g, r0, r1, cols);
}

template <typename H = F32, typename E>
void soft_grad_rows(const E* x, const E* y, const float* m, const float* l, const float* a,
                    const float* b, E* g, int64_t r0, int64_t r1, int64_t cols) {
  for (int64_t i = r0; i < r1; ++i) {
    const E *xi = x + i * cols, *yi = y + i * cols;
    E* gi = g + i * cols;
    __m512 mv = _mm512_set1_ps(m[i]), lv = _mm512_set1_ps(l[i]), av = _mm512_set1_ps(a[i]),
           bv = _mm512_set1_ps(b[i]);
    chunks(cols, [&](int64_t j, __mmask16 k) {
      __m512 p = probs(H::load(xi + j, k), mv, lv);
      __m512 by = _mm512_mul_ps(bv, H::load(yi + j, k));
      H::store(gi + j, k, _mm512_fmsub_ps(av, p, by));
    });
  }
}

void soft_grad_rows_f32(const float* x, const float* y, const float* m, const float* l,
                        const float* a, const float* b, float* g, int64_t r0, int64_t r1,
                        int64_t cols) {
  if (cols <= 16) r0 = soft_grad_narrow_f32(x, y, m, l, a, b, g, r0, r1, cols);
  soft_grad_rows(x, y, m, l, a, b, g, r0, r1, cols);
}

// The log_softmax gradient ct - p·Σ_j ct_j from its output y: p = e^{y} (y ≤ 0; 0 below
// e^{-104}, as `probs`), the row sum of the cotangent taken in float64. H reads y's and ct's
// format (float32, or bfloat16/float16 as they are, rounded once into g's).
template <typename H = F32, typename E>
void log_softmax_grad_rows(const E* y, const E* ct, E* g, int64_t r0, int64_t r1, int64_t cols) {
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t i = r0; i < r1; ++i) {
    const E *yi = y + i * cols, *ci = ct + i * cols;
    E* gi = g + i * cols;
    __m512d s0 = _mm512_setzero_pd(), s1 = s0;
    chunks(cols, [&](int64_t j, __mmask16 k) {
      __m512 v = H::load(ci + j, k);
      s0 = _mm512_add_pd(s0, lo_pd(v));
      s1 = _mm512_add_pd(s1, hi_pd(v));
    });
    __m512 s = _mm512_set1_ps((float)_mm512_reduce_add_pd(_mm512_add_pd(s0, s1)));
    chunks(cols, [&](int64_t j, __mmask16 k) {
      __m512 p = probs(H::load(yi + j, k), zero, zero);
      H::store(gi + j, k, _mm512_fnmadd_ps(p, s, H::load(ci + j, k)));
    });
  }
}

void log_softmax_grad_rows_f32(const float* y, const float* ct, float* g, int64_t r0, int64_t r1,
                               int64_t cols) {
  if (cols <= 16) r0 = log_softmax_grad_narrow_f32(y, ct, g, r0, r1, cols);
  log_softmax_grad_rows(y, ct, g, r0, r1, cols);
}

// Rows of at most 16 entries, 16 rows at a time with one row per lane: no per-row reductions
// across lanes. The 16 rows are loaded (masked to their c entries; rows of <= 8 two to a vector)
// and transposed in registers into columns, the j-th entries of the 16 rows in one vector; the
// softmax's outputs, formed in that layout, are transposed back and stored a row at a time.
// Gathering the columns from memory and recomputing the exponentials in memory order instead
// took up to twice as long (one thread, 65536 rows of 10: softmax 0.54 -> 0.31 ms, log_softmax
// 0.47 -> 0.34, the statistics 0.42 -> 0.27, the log_softmax gradient 0.35 -> 0.14; of 2: 0.15
// -> 0.10, 0.19 -> 0.12, 0.18 -> 0.15, 0.06 -> 0.03), bit for bit the same. (The statistics
// kept the 16-row transposition for rows of <= 8 too: as a second instantiation they ran
// 10-30 % slower at every width, not understood.) Same arithmetic as the row functions above.
// Each returns the first row it left (fewer than 16 remain).

// The first two stages of both transpositions below: 4×4 transposes within each 128-bit lane
// of every group of 4 vectors (n a multiple of 4).
inline void transpose_lanes4(__m512* v, int n) {
  __m512 t[16];
  for (int i = 0; i < n / 2; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
  }
  for (int i = 0; i < n / 4; ++i) {
    v[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    v[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    v[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    v[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
}

// In: v[i] lane j = M[i][j]; out: v[j] lane i = M[i][j] (16×16, 64 shuffles).
inline void transpose16(__m512* v) {
  __m512 t[16];
  transpose_lanes4(v, 16);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_shuffle_f32x4(v[8 * i + j], v[8 * i + 4 + j], 0x88);
      t[8 * i + 4 + j] = _mm512_shuffle_f32x4(v[8 * i + j], v[8 * i + 4 + j], 0xDD);
    }
  for (int j = 0; j < 8; ++j) {
    v[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
    v[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xDD);
  }
}

// The same for two 8×8 matrices side by side, one in each 256-bit half (24 shuffles): rows of
// at most 8 entries go two to a vector, row r beside row r + 8.
inline void transpose8x2(__m512* v) {
  __m512 t[8];
  transpose_lanes4(v, 8);
  // 128-bit blocks: (a0 b0 a2 b2) and (a1 b1 a3 b3) of a = v[j], b = v[j + 4]
  const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
  const __m512i hi = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm512_permutex2var_ps(v[j], lo, v[j + 4]);
    t[j + 4] = _mm512_permutex2var_ps(v[j], hi, v[j + 4]);
  }
  for (int j = 0; j < 8; ++j) v[j] = t[j];
}

// v[j] = the j-th entries of the 16 rows of c entries at xb (0 for j >= c). half (c <= 8) is a
// template parameter, chosen once a call (`narrow`): as a branch in the loop it cost the rows of
// 9-16 entries 3-6 % (one thread, measured).
template <bool half>
inline void load_columns(const float* xb, int64_t c, __m512* v) {
  if (half) {
    __mmask8 k = (__mmask8)tail(c);
    for (int r = 0; r < 8; ++r)
      v[r] = join(_mm256_maskz_loadu_ps(k, xb + r * c),
                  _mm256_maskz_loadu_ps(k, xb + (r + 8) * c));
    transpose8x2(v);
    return;
  }
  for (int r = 0; r < 16; ++r) v[r] = _mm512_maskz_loadu_ps(tail(c), xb + r * c);
  transpose16(v);
}

// The inverse: columns v (transposed in place) stored as the 16 rows of c entries at yb.
template <bool half>
inline void store_columns(float* yb, int64_t c, __m512* v) {
  if (half) {
    __mmask8 k = (__mmask8)tail(c);
    transpose8x2(v);
    for (int r = 0; r < 8; ++r) {
      _mm256_mask_storeu_ps(yb + r * c, k, _mm512_castps512_ps256(v[r]));
      _mm256_mask_storeu_ps(yb + (r + 8) * c, k,
                            _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v[r]), 1)));
    }
    return;
  }
  transpose16(v);
  for (int r = 0; r < 16; ++r) _mm512_mask_storeu_ps(yb + r * c, tail(c), v[r]);
}

struct Block {
  __m512 v[16];     // the columns
  __m512 m;         // the row maxima
  __m512d lo, hi;   // s for rows 0-7 and 8-15
};

// softmax = true: s = Σ_j e^{x_j - m} and v[j] = e^{x_j - m}; else s = (ties - 1) + Σ_{x < m}
// and v[j] = x_j.
template <bool half>
inline void narrow_block(const float* xb, int64_t c, bool softmax, Block& b) {
  load_columns<half>(xb, c, b.v);
  b.m = _mm512_set1_ps(-FLT_MAX);
  for (int64_t j = 0; j < c; ++j) b.m = _mm512_max_ps(b.m, b.v[j]);
  __m512 neg_m = _mm512_sub_ps(_mm512_setzero_ps(), b.m), ties = _mm512_setzero_ps();
  b.lo = b.hi = _mm512_setzero_pd();
  for (int64_t j = 0; j < c; ++j) {
    __m512 v = b.v[j], d = _mm512_sub_ps(v, b.m);
    __m512 err = _mm512_sub_ps(_mm512_max_ps(v, neg_m), _mm512_sub_ps(d, _mm512_min_ps(v, neg_m)));
    __mmask16 kept = _mm512_cmp_ps_mask(d, _mm512_set1_ps(-104.0f), _CMP_NLE_UQ);
    if (!softmax) {
      __mmask16 tie = _mm512_cmp_ps_mask(v, b.m, _CMP_EQ_OQ);
      ties = _mm512_mask_add_ps(ties, tie, ties, _mm512_set1_ps(1.0f));
      kept &= ~tie;
    }
    __m512 e = _mm512_maskz_mov_ps(kept, exp_below(d, err));
    if (softmax) b.v[j] = e;
    b.lo = _mm512_add_pd(b.lo, lo_pd(e));
    b.hi = _mm512_add_pd(b.hi, hi_pd(e));
  }
  if (!softmax) {
    __m512 t = _mm512_sub_ps(ties, _mm512_set1_ps(1.0f));  // exact: small integers
    b.lo = _mm512_add_pd(b.lo, lo_pd(t));
    b.hi = _mm512_add_pd(b.hi, hi_pd(t));
  }
}

// A block of 16 rows of c entries is also c contiguous vectors: lane t of vector k holds
// entry e = 16k + t, of row e / c. These index vectors fetch each lane's row value by a
// permute, so results formed in memory order (log_softmax, the gradients: cheaper so than the
// transposition back) are stored as whole vectors.
struct RowOf {
  __m512i r[16];           // e / c (for 16 floats, `_mm512_permutexvar_ps`)
  __m512i lo[16], hi[16];  // the same as 64-bit indices, lanes 0-7 and 8-15 (16 doubles)
};

inline void row_of(int64_t c, RowOf& o) {
  for (int64_t k = 0; k < c; ++k) {
    alignas(64) int32_t r[16];
    for (int t = 0; t < 16; ++t) r[t] = (int32_t)((16 * k + t) / c);
    o.r[k] = _mm512_load_si512(r);
    o.lo[k] = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(o.r[k]));
    o.hi[k] = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(o.r[k], 1));
  }
}

template <bool half>
int64_t softmax_narrow(const float* x, float* y, int64_t r0, int64_t r1, int64_t c) {
  Block b;
  for (; r0 + 16 <= r1; r0 += 16) {
    narrow_block<half>(x + r0 * c, c, true, b);
    __m512d one = _mm512_set1_pd(1.0);  // max returns its second operand for NaN
    __m512d inv_lo = _mm512_div_pd(one, _mm512_max_pd(one, b.lo));
    __m512d inv_hi = _mm512_div_pd(one, _mm512_max_pd(one, b.hi));
    for (int64_t j = 0; j < c; ++j)  // e^{x - m} / s in float64, rounded once
      b.v[j] = join(_mm512_cvtpd_ps(_mm512_mul_pd(lo_pd(b.v[j]), inv_lo)),
                    _mm512_cvtpd_ps(_mm512_mul_pd(hi_pd(b.v[j]), inv_hi)));
    store_columns<half>(y + r0 * c, c, b.v);
  }
  return r0;
}

// kernel(std::true_type) for rows of at most 8 entries, kernel(std::false_type) for 9 to 16.
template <typename F>
inline int64_t narrow(int64_t c, F kernel) {
  return c <= 8 ? kernel(std::true_type{}) : kernel(std::false_type{});
}

int64_t softmax_narrow_f32(const float* x, float* y, int64_t r0, int64_t r1, int64_t c) {
  return narrow(c, [=](auto half) { return softmax_narrow<half()>(x, y, r0, r1, c); });
}

// log1p(s) for s >= 0 (NaN stays NaN), 8 lanes, to ~1e-11 relative (float32 results need
// ~1e-8): log u for u = 1 + s from its exponent k and u = 2^k·f, f in [0.75, 1.5), with
// log f = 2·atanh(z), z = (f - 1)/(f + 1) in [-1/7, 1/5], to z^13; times s / (u - 1) for the
// rounding of u (Goldberg), s itself where u rounds to 1. A scalar log1p a row cost as much as
// the rest of a 10-wide row (measured).
inline __m512d log1p_pd(__m512d s) {
  __m512d one = _mm512_set1_pd(1.0), u = _mm512_add_pd(one, s);
  __m512d f = _mm512_getmant_pd(u, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_src);
  __m512d k = _mm512_getexp_pd(u);
  k = _mm512_mask_add_pd(k, _mm512_cmp_pd_mask(f, one, _CMP_LT_OQ), k, one);
  __m512d z = _mm512_div_pd(_mm512_sub_pd(f, one), _mm512_add_pd(f, one));
  __m512d z2 = _mm512_mul_pd(z, z), p = _mm512_set1_pd(1.0 / 13);
  for (double c : {1.0 / 11, 1.0 / 9, 1.0 / 7, 1.0 / 5, 1.0 / 3, 1.0})
    p = _mm512_fmadd_pd(p, z2, _mm512_set1_pd(c));
  __m512d log_u = _mm512_fmadd_pd(k, _mm512_set1_pd(0.69314718055994530942),
                                  _mm512_mul_pd(_mm512_add_pd(z, z), p));
  __m512d um1 = _mm512_sub_pd(u, one);  // exact (Sterbenz) for u in [1, 2]
  __mmask8 rounds_to_one = _mm512_cmp_pd_mask(um1, _mm512_setzero_pd(), _CMP_EQ_OQ);
  __m512d out = _mm512_mul_pd(log_u, _mm512_div_pd(s, um1));
  return _mm512_mask_mov_pd(out, rounds_to_one, s);
}

// log1p(max(s, 0)) and log1p(s) (-inf for an empty row's s = -1) per lane; NaN for m = +inf.
inline void narrow_logs(const Block& b, double* l, double* lse_m) {
  const __m512d s_half[2] = {b.lo, b.hi}, m_half[2] = {lo_pd(b.m), hi_pd(b.m)};
  const __m512d zero = _mm512_setzero_pd();
  for (int h = 0; h < 2; ++h) {
    __mmask8 inf = _mm512_cmp_pd_mask(m_half[h], _mm512_set1_pd(INFINITY), _CMP_EQ_OQ);
    __m512d s = _mm512_mask_mov_pd(s_half[h], inf, _mm512_set1_pd(NAN));
    __m512d lh = log1p_pd(_mm512_max_pd(zero, s));  // max returns its second operand for NaN
    _mm512_store_pd(l + 8 * h, lh);
    if (lse_m) {
      __mmask8 empty = _mm512_cmp_pd_mask(s, zero, _CMP_LT_OQ);
      _mm512_store_pd(lse_m + 8 * h, _mm512_mask_mov_pd(lh, empty, _mm512_set1_pd(-INFINITY)));
    }
  }
}

template <bool half>
int64_t log_softmax_narrow(const float* x, float* y, int64_t r0, int64_t r1, int64_t c) {
  RowOf row;
  row_of(c, row);
  Block b;
  alignas(64) double l[16];
  for (; r0 + 16 <= r1; r0 += 16) {
    narrow_block<half>(x + r0 * c, c, false, b);
    narrow_logs(b, l, nullptr);
    __m512d l_lo = _mm512_load_pd(l), l_hi = _mm512_load_pd(l + 8);
    const float* xb = x + r0 * c;
    float* yb = y + r0 * c;
    for (int64_t k = 0; k < c; ++k) {  // (x - m) - log1p(s), entry by entry in memory order
      __m512 v = _mm512_loadu_ps(xb + 16 * k), m = _mm512_permutexvar_ps(row.r[k], b.m);
      __m512d l0 = _mm512_permutex2var_pd(l_lo, row.lo[k], l_hi);
      __m512d l1 = _mm512_permutex2var_pd(l_lo, row.hi[k], l_hi);
      __m256 lo = _mm512_cvtpd_ps(_mm512_sub_pd(_mm512_sub_pd(lo_pd(v), lo_pd(m)), l0));
      __m256 hi = _mm512_cvtpd_ps(_mm512_sub_pd(_mm512_sub_pd(hi_pd(v), hi_pd(m)), l1));
      _mm512_storeu_ps(yb + 16 * k, join(lo, hi));
    }
  }
  return r0;
}

int64_t log_softmax_narrow_f32(const float* x, float* y, int64_t r0, int64_t r1, int64_t c) {
  return narrow(c, [=](auto half) { return log_softmax_narrow<half()>(x, y, r0, r1, c); });
}

// The gradients a·p - c - b·onehot(y) and a·p - b·y of int_grad_rows_f32 and
// soft_grad_rows_f32 (the same operations in the same order), 16 rows a block in memory order.
int64_t int_grad_narrow_f32(const float* x, const int32_t* y, const float* m, const float* l,
                            const float* a, const float* b, const float* c, float* g, int64_t r0,
                            int64_t r1, int64_t cols) {
  RowOf row;
  row_of(cols, row);
  __m512i col[16];  // the column of each lane: e % cols
  for (int64_t k = 0; k < cols; ++k)
    col[k] = _mm512_sub_epi32(
        _mm512_add_epi32(_mm512_set1_epi32((int)(16 * k)),
                         _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)),
        _mm512_mullo_epi32(row.r[k], _mm512_set1_epi32((int)cols)));
  for (; r0 + 16 <= r1; r0 += 16) {
    __m512 mr = _mm512_loadu_ps(m + r0), lr = _mm512_loadu_ps(l + r0), ar = _mm512_loadu_ps(a + r0),
           br = _mm512_loadu_ps(b + r0), cr = _mm512_loadu_ps(c + r0);
    __m512i yr = _mm512_min_epi32(_mm512_max_epi32(_mm512_loadu_si512(y + r0), _mm512_setzero_si512()),
                                  _mm512_set1_epi32((int)cols - 1));
    const float* xb = x + r0 * cols;
    float* gb = g + r0 * cols;
    for (int64_t k = 0; k < cols; ++k) {
      __m512i rk = row.r[k];
      __m512 p = probs(_mm512_loadu_ps(xb + 16 * k), _mm512_permutexvar_ps(rk, mr),
                       _mm512_permutexvar_ps(rk, lr));
      __m512 gk = _mm512_fmsub_ps(_mm512_permutexvar_ps(rk, ar), p, _mm512_permutexvar_ps(rk, cr));
      __mmask16 label = _mm512_cmpeq_epi32_mask(col[k], _mm512_permutexvar_epi32(rk, yr));
      gk = _mm512_mask_sub_ps(gk, label, gk, _mm512_permutexvar_ps(rk, br));
      _mm512_storeu_ps(gb + 16 * k, gk);
    }
  }
  return r0;
}

int64_t soft_grad_narrow_f32(const float* x, const float* y, const float* m, const float* l,
                             const float* a, const float* b, float* g, int64_t r0, int64_t r1,
                             int64_t cols) {
  RowOf row;
  row_of(cols, row);
  for (; r0 + 16 <= r1; r0 += 16) {
    __m512 mr = _mm512_loadu_ps(m + r0), lr = _mm512_loadu_ps(l + r0), ar = _mm512_loadu_ps(a + r0),
           br = _mm512_loadu_ps(b + r0);
    const float *xb = x + r0 * cols, *yb = y + r0 * cols;
    float* gb = g + r0 * cols;
    for (int64_t k = 0; k < cols; ++k) {
      __m512i rk = row.r[k];
      __m512 p = probs(_mm512_loadu_ps(xb + 16 * k), _mm512_permutexvar_ps(rk, mr),
                       _mm512_permutexvar_ps(rk, lr));
      __m512 by = _mm512_mul_ps(_mm512_permutexvar_ps(rk, br), _mm512_loadu_ps(yb + 16 * k));
      _mm512_storeu_ps(gb + 16 * k, _mm512_fmsub_ps(_mm512_permutexvar_ps(rk, ar), p, by));
    }
  }
  return r0;
}

template <bool half>
int64_t log_softmax_grad_narrow(const float* y, const float* ct, float* g, int64_t r0, int64_t r1,
                                int64_t cols) {
  RowOf row;
  row_of(cols, row);
  const __m512 zero = _mm512_setzero_ps();
  __m512 v[16];
  for (; r0 + 16 <= r1; r0 += 16) {
    const float *yb = y + r0 * cols, *cb = ct + r0 * cols;
    float* gb = g + r0 * cols;
    load_columns<half>(cb, cols, v);
    __m512d lo = _mm512_setzero_pd(), hi = lo;  // Σ_j ct_j, one row a lane
    for (int64_t j = 0; j < cols; ++j) {
      lo = _mm512_add_pd(lo, lo_pd(v[j]));
      hi = _mm512_add_pd(hi, hi_pd(v[j]));
    }
    __m512 s = join(_mm512_cvtpd_ps(lo), _mm512_cvtpd_ps(hi));
    for (int64_t k = 0; k < cols; ++k) {
      __m512 p = probs(_mm512_loadu_ps(yb + 16 * k), zero, zero);
      _mm512_storeu_ps(gb + 16 * k, _mm512_fnmadd_ps(p, _mm512_permutexvar_ps(row.r[k], s),
                                                     _mm512_loadu_ps(cb + 16 * k)));
    }
  }
  return r0;
}

int64_t log_softmax_grad_narrow_f32(const float* y, const float* ct, float* g, int64_t r0,
                                    int64_t r1, int64_t cols) {
  return narrow(cols, [=](auto half) {
    return log_softmax_grad_narrow<half()>(y, ct, g, r0, r1, cols);
  });
}

int64_t stats_narrow_f32(const float* x, float* m, float* l, float* lse, int64_t r0, int64_t r1,
                         int64_t c) {
  Block b;
  alignas(64) double lk[16], lse_m[16];
  alignas(64) float mk[16];
  for (; r0 + 16 <= r1; r0 += 16) {
    narrow_block<false>(x + r0 * c, c, false, b);
    narrow_logs(b, lk, lse_m);
    _mm512_store_ps(mk, b.m);
    for (int k = 0; k < 16; ++k) {
      m[r0 + k] = mk[k];
      l[r0 + k] = (float)lk[k];
      lse[r0 + k] = (float)((double)mk[k] + lse_m[k]);
    }
  }
  return r0;
}

// ------------------------------------------------------------------------------- float64

inline long double row_s(const double* xi, int64_t c, double m) {
  long double rest = 0;
  int64_t ties = 0;
  for (int64_t j = 0; j < c; ++j) {
    double v = xi[j], d = v - m;
    if (v == m) {
      ++ties;
    } else if (!(d <= -746.0)) {  // NaN included
      double err = std::max(v, -m) - (d - std::min(v, -m));
      double t = std::exp(d);
      rest += std::fma(t, err, t);
    }
  }
  return m == INFINITY ? NAN : (long double)(ties - 1) + rest;
}

inline double row_max(const double* xi, int64_t c) {
  double m = -DBL_MAX;
  for (int64_t j = 0; j < c; ++j) m = xi[j] > m ? xi[j] : m;
  return m;
}

// glibc's exp (< 1 ulp), the same Fast2Sum err as e^{d}(1 + err), a long double sum.
void softmax_rows_f64(const double* x, double* y, int64_t r0, int64_t r1, int64_t c) {
  for (int64_t i = r0; i < r1; ++i) {
    const double* xi = x + i * c;
    double* yi = y + i * c;
    double m = row_max(xi, c);
    long double s = 0;
    for (int64_t j = 0; j < c; ++j) {
      double v = xi[j], d = v - m, e = 0;
      if (!(d <= -746.0)) {  // NaN included
        double err = std::max(v, -m) - (d - std::min(v, -m));
        double t = std::exp(d);
        e = std::fma(t, err, t);
      }
      yi[j] = e;
      s += e;
    }
    long double inv = 1.0L / (s < 1.0L ? 1.0L : s);
    for (int64_t j = 0; j < c; ++j) yi[j] = (double)(yi[j] * inv);
  }
}

void log_softmax_rows_f64(const double* x, double* y, int64_t r0, int64_t r1, int64_t c) {
  for (int64_t i = r0; i < r1; ++i) {
    const double* xi = x + i * c;
    double m = row_max(xi, c);
    long double s = row_s(xi, c, m), l = std::log1p(s < 0 ? 0.0L : s);
    for (int64_t j = 0; j < c; ++j) y[i * c + j] = (double)(((long double)xi[j] - m) - l);
  }
}

void stats_rows_f64(const double* x, double* m, double* l, double* lse, int64_t r0, int64_t r1,
                    int64_t c) {
  for (int64_t i = r0; i < r1; ++i) {
    double mi = row_max(x + i * c, c);
    long double s = row_s(x + i * c, c, mi);
    m[i] = mi;
    l[i] = (double)std::log1p(s < 0 ? 0.0L : s);
    lse[i] = (double)(mi + std::log1p(s));
  }
}

// As soft_ce_rows, in long double.
void soft_ce_rows_f64(const double* x, const double* y, double* loss, double* m, double* l,
                      double* lse, double* mass, int64_t r0, int64_t r1, int64_t c) {
  for (int64_t i = r0; i < r1; ++i) {
    const double *xi = x + i * c, *yi = y + i * c;
    double mi = row_max(xi, c);
    long double s = row_s(xi, c, mi), ms = 0, rest = 0;
    bool bad = false;
    for (int64_t j = 0; j < c; ++j) {
      double w = yi[j];
      bad |= !(w >= 0 && w <= 1);
      ms += w;
      if (w != 0) rest += (long double)w * ((long double)mi - xi[j]);
    }
    long double lp = std::log1p(s < 0 ? 0.0L : s), total = bad ? NAN : ms * lp + rest;
    loss[i] = (double)total;
    m[i] = mi;
    l[i] = std::isnan(total) ? NAN : (double)lp;
    lse[i] = s < 0 ? -INFINITY : (double)(mi + lp);  // an empty row: s = -1
    mass[i] = (double)ms;
  }
}

// As int_grad_rows_f32 and soft_grad_rows_f32, with glibc's exp.
inline double probs(double v, double m, double l) {
  double t = (v - m) - l;
  return t <= -746.0 ? 0.0 : std::exp(t);  // NaN stays NaN
}

void int_grad_rows_f64(const double* x, const int32_t* y, const double* m, const double* l,
                       const double* a, const double* b, const double* c, double* g, int64_t r0,
                       int64_t r1, int64_t cols) {
  for (int64_t i = r0; i < r1; ++i) {
    for (int64_t j = 0; j < cols; ++j)
      g[i * cols + j] = std::fma(a[i], probs(x[i * cols + j], m[i], l[i]), -c[i]);
    g[i * cols + std::min<int64_t>(std::max<int32_t>(y[i], 0), cols - 1)] -= b[i];
  }
}

void soft_grad_rows_f64(const double* x, const double* y, const double* m, const double* l,
                        const double* a, const double* b, double* g, int64_t r0, int64_t r1,
                        int64_t cols) {
  for (int64_t i = r0; i < r1; ++i)
    for (int64_t j = 0; j < cols; ++j)
      g[i * cols + j] = std::fma(a[i], probs(x[i * cols + j], m[i], l[i]),
                                 -(b[i] * y[i * cols + j]));
}

// ------------------------------------------------------------------- bfloat16 and float16

// 16 entries of a 16-bit format to float32 (exact) and back, rounded to nearest even.
struct BF16 {
  static __m512 load(const uint16_t* p, __mmask16 k) {
    __m512i u = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
  }
  static void store(uint16_t* p, __mmask16 k, __m512 v) {
    __m512i u = _mm512_castps_si512(v), hi = _mm512_srli_epi32(u, 16);
    __m512i odd = _mm512_and_si512(hi, _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF))), 16);
    __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);  // stays a (quiet) NaN
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
    _mm512_mask_cvtepi32_storeu_epi16(p, k, r);
  }
};

struct F16 {
  static __m512 load(const uint16_t* p, __mmask16 k) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, p));
  }
  static void store(uint16_t* p, __mmask16 k, __m512 v) {
    _mm256_mask_storeu_epi16(p, k, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
};

// 16-bit rows in blocks (about 64 KiB of float32, a multiple of 16 rows where that many fit,
// for the narrow rows' 16 at a time): each block of x (and of a second input y, where given)
// converted into a float32 buffer, computed by f(xs, ys, outs, b, n) (its rows b .. b + n, n
// of them) and, where out is given, outs rounded once into out.
template <typename H, typename F>
void half_blocks(const uint16_t* x, const uint16_t* y, uint16_t* out, int64_t r0, int64_t r1,
                 int64_t c, F f) {
  int64_t block = std::max<int64_t>(1, 16384 / std::max<int64_t>(c, 1));
  if (block >= 16) block -= block % 16;
  std::unique_ptr<float[]> xs(new float[block * c]), ys(new float[y ? block * c : 0]),
      outs(new float[out ? block * c : 0]);
  auto load = [](const uint16_t* from, float* to, int64_t size) {
    chunks(size, [&](int64_t j, __mmask16 k) {
      _mm512_mask_storeu_ps(to + j, k, H::load(from + j, k));
    });
  };
  for (int64_t b = r0; b < r1; b += block) {
    int64_t n = std::min(block, r1 - b), size = n * c;
    load(x + b * c, xs.get(), size);
    if (y) load(y + b * c, ys.get(), size);
    f(xs.get(), ys.get(), outs.get(), b, n);
    if (!out) continue;
    uint16_t* ob = out + b * c;
    chunks(size, [&](int64_t j, __mmask16 k) {
      H::store(ob + j, k, _mm512_maskz_loadu_ps(k, outs.get() + j));
    });
  }
}

// A float32 row function over 16-bit rows, rounded once into the 16-bit output.
template <typename H, void (*rows_fn)(const float*, float*, int64_t, int64_t, int64_t)>
void half_rows(const uint16_t* x, uint16_t* y, int64_t r0, int64_t r1, int64_t c) {
  half_blocks<H>(x, nullptr, y, r0, r1, c,
                 [c](const float* xs, const float*, float* ys, int64_t, int64_t n) {
                   rows_fn(xs, ys, 0, n, c);
                 });
}

// A row sum for a 16-bit result (rounded to 8 or 11 bits): 16 lanes summed in float32 four
// vectors at a time (three roundings, at most 1.8e-7 relative: the terms are >= 0), each group
// added in float64.
struct GroupSum {
  __m512 t = _mm512_setzero_ps();
  __m512d s0 = _mm512_setzero_pd(), s1 = s0;
  int n = 0;
  void add(__m512 e) {
    t = _mm512_add_ps(t, e);
    if (++n == 4) flush();
  }
  void flush() {
    s0 = _mm512_add_pd(s0, lo_pd(t));
    s1 = _mm512_add_pd(s1, hi_pd(t));
    t = _mm512_setzero_ps();
    n = 0;
  }
  double total() {
    flush();
    return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
  }
};

// softmax and log_softmax of 16-bit rows (wider than 16; narrower ones by half_rows) read and
// written in their format, in float32: the result is rounded into 8 or 11 bits, so the
// float32 rows' float64 arithmetic is not needed. softmax: e^{x - m} as softmax_rows_f32
// (the rounding error of x - m folded in), kept in a float32 row buffer, summed by GroupSum,
// scaled by 1/s rounded to float32. log_softmax: s as row_s, summed by GroupSum, then
// fl(fl(x - m) - log1p(s)) (|result| >= |x - m|: two roundings of the result). Before the
// rounding into 16 bits, within 6e-7 of the exact value (tests/test_kernel.py allows 8e-7).
template <typename H>
void softmax_rows_half(const uint16_t* x, uint16_t* y, int64_t r0, int64_t r1, int64_t c) {
  if (c <= 16) return half_rows<H, softmax_rows_f32>(x, y, r0, r1, c);
  std::unique_ptr<float[]> buf(new float[c]);
  float* e = buf.get();
  for (int64_t i = r0; i < r1; ++i) {
    const uint16_t* xi = x + i * c;
    uint16_t* yi = y + i * c;
    __m512 m = _mm512_set1_ps(row_max<H>(xi, c)), neg_m = _mm512_sub_ps(_mm512_setzero_ps(), m);
    GroupSum sum;
    chunks(c, [&](int64_t j, __mmask16 k) {
      __m512 ej = exp_diff(H::load(xi + j, k), k, m, neg_m);
      _mm512_mask_storeu_ps(e + j, k, ej);
      sum.add(ej);
    });
    double s = sum.total();
    __m512 inv = _mm512_set1_ps((float)(1.0 / (s < 1.0 ? 1.0 : s)));  // < 1: an empty row
    chunks(c, [&](int64_t j, __mmask16 k) {
      H::store(yi + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, e + j), inv));
    });
  }
}

template <typename H>
void log_softmax_rows_half(const uint16_t* x, uint16_t* y, int64_t r0, int64_t r1, int64_t c) {
  if (c <= 16) return half_rows<H, log_softmax_rows_f32>(x, y, r0, r1, c);
  for (int64_t i = r0; i < r1; ++i) {
    const uint16_t* xi = x + i * c;
    uint16_t* yi = y + i * c;
    float mf = row_max<H>(xi, c);
    __m512 m = _mm512_set1_ps(mf), neg_m = _mm512_sub_ps(_mm512_setzero_ps(), m);
    GroupSum sum;
    int64_t ties = 0;
    chunks(c, [&](int64_t j, __mmask16 k) {
      __m512 v = H::load(xi + j, k);
      __mmask16 tie = _mm512_mask_cmp_ps_mask(k, v, m, _CMP_EQ_OQ);
      sum.add(exp_diff(v, k & ~tie, m, neg_m));
      ties += __builtin_popcount(tie);
    });
    double s = mf == INFINITY ? NAN : (double)(ties - 1) + sum.total();
    __m512 l = _mm512_set1_ps((float)std::log1p(s < 0 ? 0.0 : s));
    chunks(c, [&](int64_t j, __mmask16 k) {
      H::store(yi + j, k, _mm512_sub_ps(_mm512_sub_ps(H::load(xi + j, k), m), l));
    });
  }
}

// The cross-entropies' row functions over 16-bit logits (and labels), computed in float32 with
// float32 row values, the gradients rounded once into the 16-bit output: rows wider than 16 read
// and written in their format, narrower ones through float32 buffers (the narrow kernels).
template <typename H>
void half_stats(const uint16_t* x, float* m, float* l, float* lse, int64_t r0, int64_t r1,
                int64_t c) {
  if (c > 16) return stats_rows<H>(x, m, l, lse, r0, r1, c);  // read as they are
  half_blocks<H>(x, nullptr, nullptr, r0, r1, c,
                 [=](const float* xs, const float*, float*, int64_t b, int64_t n) {
                   stats_rows_f32(xs, m + b, l + b, lse + b, 0, n, c);
                 });
}

template <typename H>
void half_int_grad(const uint16_t* x, const int32_t* y, const float* m, const float* l,
                   const float* a, const float* b, const float* c, uint16_t* g, int64_t r0,
                   int64_t r1, int64_t cols) {
  if (cols > 16) return int_grad_rows<H>(x, y, m, l, a, b, c, g, r0, r1, cols);
  half_blocks<H>(x, nullptr, g, r0, r1, cols,
                 [=](const float* xs, const float*, float* gs, int64_t i, int64_t n) {
                   int_grad_rows_f32(xs, y + i, m + i, l + i, a + i, b + i, c + i, gs, 0, n,
                                     cols);
                 });
}

template <typename H>
void half_soft_grad(const uint16_t* x, const uint16_t* y, const float* m, const float* l,
                    const float* a, const float* b, uint16_t* g, int64_t r0, int64_t r1,
                    int64_t cols) {
  if (cols > 16) return soft_grad_rows<H>(x, y, m, l, a, b, g, r0, r1, cols);
  half_blocks<H>(x, y, g, r0, r1, cols,
                 [=](const float* xs, const float* ys, float* gs, int64_t i, int64_t n) {
                   soft_grad_rows_f32(xs, ys, m + i, l + i, a + i, b + i, gs, 0, n, cols);
                 });
}

template <typename H>
void half_log_softmax_grad(const uint16_t* y, const uint16_t* ct, uint16_t* g, int64_t r0,
                           int64_t r1, int64_t cols) {
  if (cols > 16) return log_softmax_grad_rows<H>(y, ct, g, r0, r1, cols);
  half_blocks<H>(y, ct, g, r0, r1, cols,
                 [=](const float* ys, const float* cs, float* gs, int64_t, int64_t n) {
                   log_softmax_grad_rows_f32(ys, cs, gs, 0, n, cols);
                 });
}

// ------------------------------------------------------------------------------ threading

// Rows in chunks over XLA's intra-op pool. The calling thread takes chunks too and waits only
// for chunks another thread has started: a task that starts late finds none left and returns,
// so a busy pool delays nothing and cannot deadlock. As many workers as the pool has threads
// (the caller one of them: one more was measured 2-20 % slower on 2 cores).
template <typename F>
void parallel_rows(ffi::ThreadPool& pool, int64_t rows, int64_t c, F f) {
  int64_t workers = std::max<int64_t>(pool.num_threads(), 1);
  int64_t threads = std::min<int64_t>(workers, rows * c / 65536);
  if (threads <= 1) {
    f(0, rows);
    return;
  }
  struct Work {
    std::atomic<int64_t> next{0}, done{0};
  };
  auto work = std::make_shared<Work>();
  int64_t chunks = std::min<int64_t>(rows, 4 * threads), size = (rows + chunks - 1) / chunks;
  chunks = (rows + size - 1) / size;
  auto run = [work, f, rows, chunks, size] {
    for (int64_t k; (k = work->next.fetch_add(1)) < chunks;) {
      f(k * size, std::min(rows, (k + 1) * size));
      work->done.fetch_add(1, std::memory_order_release);
    }
  };
  for (int64_t t = 1; t < threads; ++t) pool.Schedule(decltype(run)(run));  // a copy each
  run();
  while (work->done.load(std::memory_order_acquire) < chunks) _mm_pause();
}

// Ask for transparent huge pages for a large output before its first write: a fresh output's
// page faults (one per 4 KiB page) otherwise cost more than the kernel's arithmetic.
inline void advise_huge_pages(void* p, int64_t bytes) {
  const uintptr_t huge = uintptr_t(2) << 20;
  if (bytes < int64_t(2 * huge)) return;
  uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + bytes) & ~(huge - 1);
  madvise((void*)a, e - a, MADV_HUGEPAGE);  // advice only: a failure changes nothing
}

template <ffi::DataType D>
using T = ffi::NativeType<D>;

int64_t row_width(const ffi::Buffer<ffi::F32>::Dimensions& dims) {
  return dims.size() ? dims.back() : 1;
}

// x's entries as the row function reads them: its native type, or uint16_t for bfloat16 and
// float16 (whose native types the row functions do not use; BF16 and F16 convert them).
template <ffi::DataType D>
using In = std::conditional_t<D == ffi::BF16 || D == ffi::F16, uint16_t, T<D>>;

// The row values' type (m, log1p(s), the gradients' coefficients): x's, float32 for 16-bit x.
template <ffi::DataType D>
constexpr ffi::DataType Row = D == ffi::BF16 || D == ffi::F16 ? ffi::F32 : D;
template <ffi::DataType D>
using RowT = T<Row<D>>;

template <ffi::DataType D, typename B>
In<D>* entries(B& buffer) {
  return reinterpret_cast<In<D>*>(buffer.untyped_data());
}

// y = rows_fn(x) row by row (softmax, log_softmax; 16-bit formats by half_rows).
template <ffi::DataType D, void (*rows_fn)(const In<D>*, In<D>*, int64_t, int64_t, int64_t)>
ffi::Error Rows(ffi::ThreadPool pool, ffi::Buffer<D> x, ffi::ResultBuffer<D> y) {
  int64_t c = row_width(x.dimensions());
  const In<D>* xp = entries<D>(x);
  In<D>* yp = entries<D>(*y);
  advise_huge_pages(yp, x.element_count() * sizeof(In<D>));
  parallel_rows(pool, c ? x.element_count() / c : 0, c,
                [=](int64_t r0, int64_t r1) { rows_fn(xp, yp, r0, r1, c); });
  return ffi::Error::Success();
}

// (m, log1p(s), logsumexp) of every row, each of the leading shape with a trailing 1, in
// Row<D>.
template <ffi::DataType D,
          void (*rows_fn)(const In<D>*, RowT<D>*, RowT<D>*, RowT<D>*, int64_t, int64_t,
                          int64_t)>
ffi::Error Stats(ffi::ThreadPool pool, ffi::Buffer<D> x, ffi::ResultBuffer<Row<D>> m,
                 ffi::ResultBuffer<Row<D>> l, ffi::ResultBuffer<Row<D>> lse) {
  int64_t c = row_width(x.dimensions());
  const In<D>* xp = entries<D>(x);
  RowT<D>*mp = m->typed_data(), *lp = l->typed_data(), *sp = lse->typed_data();
  parallel_rows(pool, c ? x.element_count() / c : 0, c,
                [=](int64_t r0, int64_t r1) { rows_fn(xp, mp, lp, sp, r0, r1, c); });
  return ffi::Error::Success();
}

// (loss, m, log1p(s), logsumexp, mass) of every row of x with soft labels y (x's shape and
// type), in Row<D>.
template <ffi::DataType D,
          void (*rows_fn)(const In<D>*, const In<D>*, RowT<D>*, RowT<D>*, RowT<D>*, RowT<D>*,
                          RowT<D>*, int64_t, int64_t, int64_t)>
ffi::Error SoftCrossEntropy(ffi::ThreadPool pool, ffi::Buffer<D> x, ffi::Buffer<D> y,
                            ffi::ResultBuffer<Row<D>> loss, ffi::ResultBuffer<Row<D>> m,
                            ffi::ResultBuffer<Row<D>> l, ffi::ResultBuffer<Row<D>> lse,
                            ffi::ResultBuffer<Row<D>> mass) {
  int64_t c = row_width(x.dimensions());
  const In<D>*xp = entries<D>(x), *yp = entries<D>(y);
  RowT<D>*out[5] = {loss->typed_data(), m->typed_data(), l->typed_data(), lse->typed_data(),
                    mass->typed_data()};
  parallel_rows(pool, c ? x.element_count() / c : 0, 2 * c, [=](int64_t r0, int64_t r1) {
    rows_fn(xp, yp, out[0], out[1], out[2], out[3], out[4], r0, r1, c);
  });
  return ffi::Error::Success();
}

// The integer-label gradient: x, labels (int32, one a row), then m, l, a, b, c (one a row, in
// Row<D>); the gradient in x's type.
template <ffi::DataType D,
          void (*rows_fn)(const In<D>*, const int32_t*, const RowT<D>*, const RowT<D>*,
                          const RowT<D>*, const RowT<D>*, const RowT<D>*, In<D>*, int64_t,
                          int64_t, int64_t)>
ffi::Error IntGrad(ffi::ThreadPool pool, ffi::Buffer<D> x, ffi::Buffer<ffi::S32> y,
                   ffi::Buffer<Row<D>> m, ffi::Buffer<Row<D>> l, ffi::Buffer<Row<D>> a,
                   ffi::Buffer<Row<D>> b, ffi::Buffer<Row<D>> c, ffi::ResultBuffer<D> g) {
  int64_t cols = row_width(x.dimensions());
  const In<D>* xp = entries<D>(x);
  const RowT<D>*mp = m.typed_data(), *lp = l.typed_data(), *ap = a.typed_data(),
                *bp = b.typed_data(), *cp = c.typed_data();
  const int32_t* yp = y.typed_data();
  In<D>* gp = entries<D>(*g);
  advise_huge_pages(gp, x.element_count() * sizeof(In<D>));
  parallel_rows(pool, cols ? x.element_count() / cols : 0, cols, [=](int64_t r0, int64_t r1) {
    rows_fn(xp, yp, mp, lp, ap, bp, cp, gp, r0, r1, cols);
  });
  return ffi::Error::Success();
}

// The soft-label gradient: x, y (x's shape and type), then m, l, a, b (one a row, in Row<D>);
// the gradient in x's type.
template <ffi::DataType D,
          void (*rows_fn)(const In<D>*, const In<D>*, const RowT<D>*, const RowT<D>*,
                          const RowT<D>*, const RowT<D>*, In<D>*, int64_t, int64_t, int64_t)>
ffi::Error SoftGrad(ffi::ThreadPool pool, ffi::Buffer<D> x, ffi::Buffer<D> y,
                    ffi::Buffer<Row<D>> m, ffi::Buffer<Row<D>> l, ffi::Buffer<Row<D>> a,
                    ffi::Buffer<Row<D>> b, ffi::ResultBuffer<D> g) {
  int64_t cols = row_width(x.dimensions());
  const In<D>*xp = entries<D>(x), *yp = entries<D>(y);
  const RowT<D>*mp = m.typed_data(), *lp = l.typed_data(), *ap = a.typed_data(),
                *bp = b.typed_data();
  In<D>* gp = entries<D>(*g);
  advise_huge_pages(gp, x.element_count() * sizeof(In<D>));
  parallel_rows(pool, cols ? x.element_count() / cols : 0, 2 * cols, [=](int64_t r0, int64_t r1) {
    rows_fn(xp, yp, mp, lp, ap, bp, gp, r0, r1, cols);
  });
  return ffi::Error::Success();
}

// The log_softmax gradient: y (its output), ct (x's shape); float32 and the 16-bit formats
// (`jaxsoft.kernel`).
template <ffi::DataType D,
          void (*rows_fn)(const In<D>*, const In<D>*, In<D>*, int64_t, int64_t, int64_t)>
ffi::Error LogSoftmaxGrad(ffi::ThreadPool pool, ffi::Buffer<D> y, ffi::Buffer<D> ct,
                          ffi::ResultBuffer<D> g) {
  int64_t cols = row_width(y.dimensions());
  const In<D>*yp = entries<D>(y), *cp = entries<D>(ct);
  In<D>* gp = entries<D>(*g);
  advise_huge_pages(gp, y.element_count() * sizeof(In<D>));
  parallel_rows(pool, cols ? y.element_count() / cols : 0, 2 * cols, [=](int64_t r0, int64_t r1) {
    rows_fn(yp, cp, gp, r0, r1, cols);
  });
  return ffi::Error::Success();
}

constexpr auto SoftmaxF32Impl = Rows<ffi::F32, softmax_rows_f32>;
constexpr auto SoftmaxF64Impl = Rows<ffi::F64, softmax_rows_f64>;
constexpr auto LogSoftmaxF32Impl = Rows<ffi::F32, log_softmax_rows_f32>;
constexpr auto LogSoftmaxF64Impl = Rows<ffi::F64, log_softmax_rows_f64>;
constexpr auto SoftmaxBF16Impl = Rows<ffi::BF16, softmax_rows_half<BF16>>;
constexpr auto SoftmaxF16Impl = Rows<ffi::F16, softmax_rows_half<F16>>;
constexpr auto LogSoftmaxBF16Impl = Rows<ffi::BF16, log_softmax_rows_half<BF16>>;
constexpr auto LogSoftmaxF16Impl = Rows<ffi::F16, log_softmax_rows_half<F16>>;
constexpr auto StatsF32Impl = Stats<ffi::F32, stats_rows_f32>;
constexpr auto StatsF64Impl = Stats<ffi::F64, stats_rows_f64>;
constexpr auto StatsBF16Impl = Stats<ffi::BF16, half_stats<BF16>>;
constexpr auto StatsF16Impl = Stats<ffi::F16, half_stats<F16>>;
constexpr auto SoftCrossEntropyF32Impl = SoftCrossEntropy<ffi::F32, soft_ce_rows<F32, float>>;
constexpr auto SoftCrossEntropyF64Impl = SoftCrossEntropy<ffi::F64, soft_ce_rows_f64>;
constexpr auto SoftCrossEntropyBF16Impl = SoftCrossEntropy<ffi::BF16, soft_ce_rows<BF16, uint16_t>>;
constexpr auto SoftCrossEntropyF16Impl = SoftCrossEntropy<ffi::F16, soft_ce_rows<F16, uint16_t>>;
constexpr auto IntGradF32Impl = IntGrad<ffi::F32, int_grad_rows_f32>;
constexpr auto IntGradF64Impl = IntGrad<ffi::F64, int_grad_rows_f64>;
constexpr auto IntGradBF16Impl = IntGrad<ffi::BF16, half_int_grad<BF16>>;
constexpr auto IntGradF16Impl = IntGrad<ffi::F16, half_int_grad<F16>>;
constexpr auto SoftGradF32Impl = SoftGrad<ffi::F32, soft_grad_rows_f32>;
constexpr auto SoftGradF64Impl = SoftGrad<ffi::F64, soft_grad_rows_f64>;
constexpr auto SoftGradBF16Impl = SoftGrad<ffi::BF16, half_soft_grad<BF16>>;
constexpr auto SoftGradF16Impl = SoftGrad<ffi::F16, half_soft_grad<F16>>;
constexpr auto LogSoftmaxGradF32Impl = LogSoftmaxGrad<ffi::F32, log_softmax_grad_rows_f32>;
constexpr auto LogSoftmaxGradBF16Impl = LogSoftmaxGrad<ffi::BF16, half_log_softmax_grad<BF16>>;
constexpr auto LogSoftmaxGradF16Impl = LogSoftmaxGrad<ffi::F16, half_log_softmax_grad<F16>>;

}  // namespace

#define ROWS(D) ffi::Ffi::Bind().Ctx<ffi::ThreadPool>().Arg<ffi::Buffer<D>>().Ret<ffi::Buffer<D>>()
#define ROW(D) ffi::Buffer<Row<D>>
#define STATS(D)                                                                          \
  ffi::Ffi::Bind().Ctx<ffi::ThreadPool>().Arg<ffi::Buffer<D>>().Ret<ROW(D)>().Ret<ROW(D)>() \
      .Ret<ROW(D)>()
#define SOFT_CE(D)                                                                        \
  ffi::Ffi::Bind().Ctx<ffi::ThreadPool>().Arg<ffi::Buffer<D>>().Arg<ffi::Buffer<D>>()      \
      .Ret<ROW(D)>().Ret<ROW(D)>().Ret<ROW(D)>().Ret<ROW(D)>().Ret<ROW(D)>()
#define INT_GRAD(D)                                                                       \
  ffi::Ffi::Bind().Ctx<ffi::ThreadPool>().Arg<ffi::Buffer<D>>().Arg<ffi::Buffer<ffi::S32>>() \
      .Arg<ROW(D)>().Arg<ROW(D)>().Arg<ROW(D)>().Arg<ROW(D)>().Arg<ROW(D)>()              \
      .Ret<ffi::Buffer<D>>()
#define SOFT_GRAD(D)                                                                      \
  ffi::Ffi::Bind().Ctx<ffi::ThreadPool>().Arg<ffi::Buffer<D>>().Arg<ffi::Buffer<D>>()      \
      .Arg<ROW(D)>().Arg<ROW(D)>().Arg<ROW(D)>().Arg<ROW(D)>().Ret<ffi::Buffer<D>>()
#define LSM_GRAD(D)                                                                       \
  ffi::Ffi::Bind().Ctx<ffi::ThreadPool>().Arg<ffi::Buffer<D>>().Arg<ffi::Buffer<D>>()      \
      .Ret<ffi::Buffer<D>>()

XLA_FFI_DEFINE_HANDLER_SYMBOL(SoftmaxF32, SoftmaxF32Impl, ROWS(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(SoftmaxF64, SoftmaxF64Impl, ROWS(ffi::F64));
XLA_FFI_DEFINE_HANDLER_SYMBOL(LogSoftmaxF32, LogSoftmaxF32Impl, ROWS(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(LogSoftmaxF64, LogSoftmaxF64Impl, ROWS(ffi::F64));
XLA_FFI_DEFINE_HANDLER_SYMBOL(SoftmaxBF16, SoftmaxBF16Impl, ROWS(ffi::BF16));
XLA_FFI_DEFINE_HANDLER_SYMBOL(SoftmaxF16, SoftmaxF16Impl, ROWS(ffi::F16));
XLA_FFI_DEFINE_HANDLER_SYMBOL(LogSoftmaxBF16, LogSoftmaxBF16Impl, ROWS(ffi::BF16));
XLA_FFI_DEFINE_HANDLER_SYMBOL(LogSoftmaxF16, LogSoftmaxF16Impl, ROWS(ffi::F16));
XLA_FFI_DEFINE_HANDLER_SYMBOL(StatsF32, StatsF32Impl, STATS(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(StatsF64, StatsF64Impl, STATS(ffi::F64));
XLA_FFI_DEFINE_HANDLER_SYMBOL(StatsBF16, StatsBF16Impl, STATS(ffi::BF16));
XLA_FFI_DEFINE_HANDLER_SYMBOL(StatsF16, StatsF16Impl, STATS(ffi::F16));
XLA_FFI_DEFINE_HANDLER_SYMBOL(SoftCrossEntropyF32, SoftCrossEntropyF32Impl, SOFT_CE(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(SoftCrossEntropyF64, SoftCrossEntropyF64Impl, SOFT_CE(ffi::F64));
XLA_FFI_DEFINE_HANDLER_SYMBOL(SoftCrossEntropyBF16, SoftCrossEntropyBF16Impl, SOFT_CE(ffi::BF16));
XLA_FFI_DEFINE_HANDLER_SYMBOL(SoftCrossEntropyF16, SoftCrossEntropyF16Impl, SOFT_CE(ffi::F16));
XLA_FFI_DEFINE_HANDLER_SYMBOL(IntGradF32, IntGradF32Impl, INT_GRAD(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(IntGradF64, IntGradF64Impl, INT_GRAD(ffi::F64));
XLA_FFI_DEFINE_HANDLER_SYMBOL(IntGradBF16, IntGradBF16Impl, INT_GRAD(ffi::BF16));
XLA_FFI_DEFINE_HANDLER_SYMBOL(IntGradF16, IntGradF16Impl, INT_GRAD(ffi::F16));
XLA_FFI_DEFINE_HANDLER_SYMBOL(SoftGradF32, SoftGradF32Impl, SOFT_GRAD(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(SoftGradF64, SoftGradF64Impl, SOFT_GRAD(ffi::F64));
XLA_FFI_DEFINE_HANDLER_SYMBOL(SoftGradBF16, SoftGradBF16Impl, SOFT_GRAD(ffi::BF16));
XLA_FFI_DEFINE_HANDLER_SYMBOL(SoftGradF16, SoftGradF16Impl, SOFT_GRAD(ffi::F16));
XLA_FFI_DEFINE_HANDLER_SYMBOL(LogSoftmaxGradF32, LogSoftmaxGradF32Impl, LSM_GRAD(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(LogSoftmaxGradBF16, LogSoftmaxGradBF16Impl, LSM_GRAD(ffi::BF16));
XLA_FFI_DEFINE_HANDLER_SYMBOL(LogSoftmaxGradF16, LogSoftmaxGradF16Impl, LSM_GRAD(ffi::F16));
