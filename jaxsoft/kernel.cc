// The softmax over the last axis as XLA FFI custom calls on CPU (jaxsoft/kernel.py builds and
// registers them; jaxsoft/softmax.py calls them). Every row is read from memory once, for its
// max m; then e^{x - m} is computed with the rounding error of x - m folded in, stored, and
// summed in a wider format (float64 for float32, x87 long double for float64); then the stored
// row, still in cache, is scaled by 1 / sum in that wider format and rounded once.
//
// Conventions (those of jaxsoft.softmax): m is at least -max (a row of all -inf sums to 0 and
// gives 0, not 0/0); e^{x - m} is 0 where x - m is below the smallest subnormal's exponent
// (-inf included); a NaN or +inf anywhere in a row makes the whole row NaN.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <memory>

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

// Four accumulators: one max chain is latency-bound (measured 4x slower).
inline float row_max(const float* x, int64_t c) {
  __m512 a0 = _mm512_set1_ps(-FLT_MAX), a1 = a0, a2 = a0, a3 = a0;
  int64_t j = 0;
  for (; j + 64 <= c; j += 64) {
    a0 = _mm512_max_ps(a0, _mm512_loadu_ps(x + j));
    a1 = _mm512_max_ps(a1, _mm512_loadu_ps(x + j + 16));
    a2 = _mm512_max_ps(a2, _mm512_loadu_ps(x + j + 32));
    a3 = _mm512_max_ps(a3, _mm512_loadu_ps(x + j + 48));
  }
  for (; j < c; j += 16) {
    __mmask16 k = tail(c - j);
    a0 = _mm512_mask_max_ps(a0, k, a0, _mm512_maskz_loadu_ps(k, x + j));
  }
  return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(a0, a1), _mm512_max_ps(a2, a3)));
}

inline __m512d lo_pd(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
inline __m512d hi_pd(__m512 v) {
  return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

void softmax_rows_f32(const float* x, float* y, int64_t r0, int64_t r1, int64_t c) {
  for (int64_t i = r0; i < r1; ++i) {
    const float* xi = x + i * c;
    float* yi = y + i * c;
    __m512 m = _mm512_set1_ps(row_max(xi, c)), neg_m = _mm512_sub_ps(_mm512_setzero_ps(), m);
    __m512d s0 = _mm512_setzero_pd(), s1 = s0;
    for (int64_t j = 0; j < c; j += 16) {
      __mmask16 k = tail(c - j);
      __m512 v = _mm512_maskz_loadu_ps(k, xi + j);
      __m512 d = _mm512_sub_ps(v, m);
      // Fast2Sum of min(v, -m) and max(v, -m): x - m = d + err exactly (jaxsoft.softmax.diff_below).
      __m512 err = _mm512_sub_ps(_mm512_max_ps(v, neg_m),
                                 _mm512_sub_ps(d, _mm512_min_ps(v, neg_m)));
      __mmask16 kept = _mm512_mask_cmp_ps_mask(k, d, _mm512_set1_ps(-104.0f), _CMP_NLE_UQ);
      __m512 e = _mm512_maskz_mov_ps(kept, exp_below(d, err));
      _mm512_mask_storeu_ps(yi + j, k, e);
      s0 = _mm512_add_pd(s0, lo_pd(e));
      s1 = _mm512_add_pd(s1, hi_pd(e));
    }
    double s = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    __m512d inv = _mm512_set1_pd(1.0 / (s < 1.0 ? 1.0 : s));  // < 1 only for an empty row
    for (int64_t j = 0; j < c; j += 16) {
      __mmask16 k = tail(c - j);
      __m512 e = _mm512_maskz_loadu_ps(k, yi + j);
      __m256 lo = _mm512_cvtpd_ps(_mm512_mul_pd(lo_pd(e), inv));
      __m256 hi = _mm512_cvtpd_ps(_mm512_mul_pd(hi_pd(e), inv));
      __m512 out = _mm512_castpd_ps(_mm512_insertf64x4(
          _mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
      _mm512_mask_storeu_ps(yi + j, k, out);
    }
  }
}

// ------------------------------------------------------------------------------- float64

// glibc's exp (< 1 ulp), the same Fast2Sum err as e^{d}(1 + err), a long double sum.
void softmax_rows_f64(const double* x, double* y, int64_t r0, int64_t r1, int64_t c) {
  for (int64_t i = r0; i < r1; ++i) {
    const double* xi = x + i * c;
    double* yi = y + i * c;
    double m = -DBL_MAX;
    for (int64_t j = 0; j < c; ++j) m = xi[j] > m ? xi[j] : m;
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

// ------------------------------------------------------------------------------ threading

// Rows in chunks over XLA's intra-op pool. The calling thread takes chunks too and waits only
// for chunks another thread has started: a task that starts late finds none left and returns,
// so a busy pool delays nothing and cannot deadlock.
template <typename F>
void parallel_rows(ffi::ThreadPool& pool, int64_t rows, int64_t c, F f) {
  int64_t threads = std::min<int64_t>(pool.num_threads() + 1, rows * c / 65536);
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

template <typename T, ffi::DataType D, typename Rows>
ffi::Error softmax(ffi::ThreadPool pool, ffi::Buffer<D> x, ffi::ResultBuffer<D> y, Rows rows_fn) {
  auto dims = x.dimensions();
  int64_t c = dims.size() ? dims.back() : 1;
  int64_t rows = c ? x.element_count() / c : 0;
  const T* xp = x.typed_data();
  T* yp = y->typed_data();
  parallel_rows(pool, rows, c, [=](int64_t r0, int64_t r1) { rows_fn(xp, yp, r0, r1, c); });
  return ffi::Error::Success();
}

ffi::Error SoftmaxF32Impl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                          ffi::ResultBuffer<ffi::F32> y) {
  return softmax<float>(pool, x, y, softmax_rows_f32);
}

ffi::Error SoftmaxF64Impl(ffi::ThreadPool pool, ffi::Buffer<ffi::F64> x,
                          ffi::ResultBuffer<ffi::F64> y) {
  return softmax<double>(pool, x, y, softmax_rows_f64);
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(SoftmaxF32, SoftmaxF32Impl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(SoftmaxF64, SoftmaxF64Impl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>());
