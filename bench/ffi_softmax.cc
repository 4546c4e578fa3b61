// A prototype row kernel for float32 softmax over the last axis, as an XLA FFI custom call
// (bench/ffi_softmax.py builds and measures it; the library does not use it). One read of each
// row from memory (the max), then e^{x - m} with x - m's rounding error folded into the
// exponent's reduced argument, stored and summed in float64, then scaled in cache. AVX-512.
#include <immintrin.h>
#include <atomic>
#include <cstdint>
#include <algorithm>
#include "xla/ffi/api/ffi.h"
namespace ffi = xla::ffi;

// e^{d + err} for d = fl(x - m) <= 0 and err its rounding error.
static inline __m512 exp_below(__m512 d, __m512 err) {
  d = _mm512_max_ps(d, _mm512_set1_ps(-104.0f));
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

static inline float row_max(const float* x, int64_t c) {
  __m512 a0 = _mm512_set1_ps(-3.4028235e38f), a1 = a0, a2 = a0, a3 = a0;
  int64_t j = 0;
  for (; j + 64 <= c; j += 64) {
    a0 = _mm512_max_ps(a0, _mm512_loadu_ps(x + j));
    a1 = _mm512_max_ps(a1, _mm512_loadu_ps(x + j + 16));
    a2 = _mm512_max_ps(a2, _mm512_loadu_ps(x + j + 32));
    a3 = _mm512_max_ps(a3, _mm512_loadu_ps(x + j + 48));
  }
  for (; j < c; j += 16) {
    __mmask16 k = c - j >= 16 ? 0xFFFF : (__mmask16)((1u << (c - j)) - 1);
    a0 = _mm512_mask_max_ps(a0, k, a0, _mm512_maskz_loadu_ps(k, x + j));
  }
  return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(a0, a1), _mm512_max_ps(a2, a3)));
}

static void softmax_rows(const float* x, float* y, int64_t r0, int64_t r1, int64_t c) {
  for (int64_t i = r0; i < r1; ++i) {
    const float* xi = x + i * c;
    float* yi = y + i * c;
    __m512 m = _mm512_set1_ps(row_max(xi, c)), neg_m = _mm512_sub_ps(_mm512_setzero_ps(), m);
    __m512d s0 = _mm512_setzero_pd(), s1 = s0;
    for (int64_t j = 0; j < c; j += 16) {
      __mmask16 k = c - j >= 16 ? 0xFFFF : (__mmask16)((1u << (c - j)) - 1);
      __m512 v = _mm512_maskz_loadu_ps(k, xi + j);
      __m512 d = _mm512_sub_ps(v, m);
      __m512 err = _mm512_sub_ps(_mm512_max_ps(v, neg_m), _mm512_sub_ps(d, _mm512_min_ps(v, neg_m)));
      __m512 e = _mm512_maskz_mov_ps(k, exp_below(d, err));
      _mm512_mask_storeu_ps(yi + j, k, e);
      s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
      s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    __m512 inv = _mm512_set1_ps((float)(1.0 / _mm512_reduce_add_pd(_mm512_add_pd(s0, s1))));
    for (int64_t j = 0; j < c; j += 16) {
      __mmask16 k = c - j >= 16 ? 0xFFFF : (__mmask16)((1u << (c - j)) - 1);
      _mm512_mask_storeu_ps(yi + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, yi + j), inv));
    }
  }
}

template <typename F>
static void parallel_rows(ffi::ThreadPool& pool, int64_t rows, int64_t c, F f) {
  int64_t nt = std::max<int64_t>(1, std::min<int64_t>(pool.num_threads(), rows * c / 65536));
  if (nt <= 1) { f(0, rows); return; }
  std::atomic<int64_t> left(nt - 1);
  int64_t chunk = (rows + nt - 1) / nt;
  for (int64_t t = 1; t < nt; ++t) {
    int64_t r0 = std::min(rows, t * chunk), r1 = std::min(rows, r0 + chunk);
    pool.Schedule([=, &left, &f] { f(r0, r1); left.fetch_sub(1, std::memory_order_release); });
  }
  f(0, std::min(rows, chunk));
  while (left.load(std::memory_order_acquire) > 0) _mm_pause();
}

static ffi::Error SoftmaxImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                              ffi::ResultBuffer<ffi::F32> y) {
  int64_t c = x.dimensions().back();
  int64_t rows = c ? x.element_count() / c : 0;
  const float* xp = x.typed_data();
  float* yp = y->typed_data();
  parallel_rows(pool, rows, c, [=](int64_t r0, int64_t r1) { softmax_rows(xp, yp, r0, r1, c); });
  return ffi::Error::Success();
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(Softmax, SoftmaxImpl,
    ffi::Ffi::Bind().Ctx<ffi::ThreadPool>().Arg<ffi::Buffer<ffi::F32>>().Ret<ffi::Buffer<ffi::F32>>());
