// The CPU backend: OpenBLAS for large GEMMs, our own kernels for the rest.
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>
#include <stdexcept>

#include "deepcore/backend.h"
#include "deepcore/rng.h"

namespace deepcore {
namespace {

// Below this many multiply-adds the call overhead of the BLAS library dominates,
// and the register-blocked kernel below is faster (measured by bench_engine).
constexpr int64_t kSmallGemm = 48 * 48 * 48;

#if defined(__AVX512F__)
#include <immintrin.h>

// C[i0:i0+MR, j0:j0+16*NV] = alpha * op(A) B + beta * C, with B row-major (k x n).
// MR * NV accumulators stay in registers for the whole k loop; masked loads and
// stores handle the last columns without reading or writing past the row.
template <bool TA, int MR, int NV>
void small_block(int64_t i0, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int64_t j0) {
  __mmask16 mask[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const int64_t left = std::min<int64_t>(16, std::max<int64_t>(0, n - j0 - 16 * v));
    mask[v] = static_cast<__mmask16>((1u << left) - 1u);
  }
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t p = 0; p < k; ++p) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_maskz_loadu_ps(mask[v], b + p * ldb + j0 + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 s = _mm512_set1_ps(TA ? a[p * lda + i0 + r] : a[(i0 + r) * lda + p]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(s, bv[v], acc[r][v]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float* cr = c + (i0 + r) * ldc + j0;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      __m512 out = _mm512_mul_ps(va, acc[r][v]);
      if (beta != 0.f)
        out = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask[v], cr + 16 * v), out);
      _mm512_mask_storeu_ps(cr + 16 * v, mask[v], out);
    }
  }
}

template <bool TA, int NV>
void small_cols(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int64_t j0) {
  constexpr int MR = NV == 1 ? 8 : (NV == 2 ? 6 : 4);
  int64_t i = 0;
  for (; i + MR <= m; i += MR)
    small_block<TA, MR, NV>(i, n, k, alpha, a, lda, b, ldb, beta, c, ldc, j0);
  for (; i < m; ++i) small_block<TA, 1, NV>(i, n, k, alpha, a, lda, b, ldb, beta, c, ldc, j0);
}

template <bool TA>
void small_gemm_nn(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                   const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  for (int64_t j0 = 0; j0 < n; j0 += 64) {
    switch (std::min<int64_t>(4, (n - j0 + 15) / 16)) {
      case 1: small_cols<TA, 1>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, j0); break;
      case 2: small_cols<TA, 2>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, j0); break;
      case 3: small_cols<TA, 3>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, j0); break;
      default: small_cols<TA, 4>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, j0); break;
    }
  }
}
#else
template <bool TA>
void small_gemm_nn(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                   const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    for (int64_t j = 0; j < n; ++j) ci[j] = beta == 0.f ? 0.f : beta * ci[j];
    for (int64_t p = 0; p < k; ++p) {
      const float s = alpha * (TA ? a[p * lda + i] : a[i * lda + p]);
      const float* bp = b + p * ldb;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) ci[j] += s * bp[j];
    }
  }
}
#endif

// Small GEMMs: op(B) transposed into a per-thread scratch when needed (no
// allocation once the first step has run), then the register-blocked kernel.
void small_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (tb) {
    thread_local std::vector<float> bt;
    if (static_cast<int64_t>(bt.size()) < k * n) bt.resize(k * n);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p) bt[p * n + j] = b[j * ldb + p];
    b = bt.data();
    ldb = n;
  }
  if (ta)
    small_gemm_nn<true>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    small_gemm_nn<false>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }

  void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
            int64_t lda, const float* b, int64_t ldb, float beta, float* c,
            int64_t ldc) override {
    if (m == 0 || n == 0) return;
    if (m * n * k <= kSmallGemm) {
      small_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    }
    scipy_cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha,
                a, static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
                static_cast<blasint>(ldc));
  }

  void bias_act(ActSpec act, const float* bias, float* z, float* y, int64_t rows,
                int64_t cols) override {
    if (bias) {
      for (int64_t r = 0; r < rows; ++r) {
        float* zr = z + r * cols;
#pragma omp simd
        for (int64_t c = 0; c < cols; ++c) zr[c] += bias[c];
      }
    }
    act_forward<float>(act, z, y, rows, cols);
  }

  void act_backward(ActSpec act, const float* x, const float* y, const float* dy, float* dx,
                    int64_t rows, int64_t cols) override {
    deepcore::act_backward<float>(act, x, y, dy, dx, rows, cols);
  }

  void col_sum(const float* x, int64_t rows, int64_t cols, float* out) override {
    std::fill(out, out + cols, 0.f);
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * cols;
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) out[c] += xr[c];
    }
  }

  double loss(const LossSpec& l, const float* pred, const float* probs, const float* y,
              const float* w, float* grad, int64_t rows, int64_t cols, int64_t ycols,
              float grad_scale) override {
    return loss_forward_backward<float>(l, pred, probs, y, w, grad, nullptr, rows, cols, ycols,
                                        grad_scale);
  }

  void metric_update(const MetricSpec& m, const float* pred, const float* y, const float* w,
                     int64_t rows, int64_t cols, int64_t ycols, double* state) override {
    deepcore::metric_update(m, pred, y, w, rows, cols, ycols, state);
  }

  void optimizer_update(const OptSpec& o, float lr, int64_t step, float* w, const float* g,
                        float* s0, float* s1, float* s2, int64_t n) override {
    deepcore::optimizer_update<float>(o, lr, step, w, g, s0, s1, s2, n);
  }

  void dropout(float rate, uint64_t seed, const float* x, float* y, float* mask,
               int64_t n) override {
    const float keep = 1.f - rate, scale = 1.f / keep;
    for (int64_t i = 0; i < n; ++i) {
      mask[i] = uniform01(seed, static_cast<uint64_t>(i)) < keep ? scale : 0.f;
      y[i] = x[i] * mask[i];
    }
  }

  void im2col(const Window2D& g, const float* x, int64_t batch, float* cols) override {
    deepcore::im2col(g, x, batch, cols);
  }
  void col2im(const Window2D& g, const float* cols, int64_t batch, float* dx) override {
    deepcore::col2im(g, cols, batch, dx);
  }
  void maxpool_forward(const Window2D& g, const float* x, int64_t batch, float* y,
                       int32_t* argmax) override {
    deepcore::maxpool_forward(g, x, batch, y, argmax);
  }
  void maxpool_backward(const Window2D& g, const float* dy, const int32_t* argmax,
                        int64_t batch, float* dx) override {
    deepcore::maxpool_backward(g, dy, argmax, batch, dx);
  }
  void avgpool_forward(const Window2D& g, const float* x, int64_t batch, float* y) override {
    deepcore::avgpool_forward(g, x, batch, y);
  }
  void avgpool_backward(const Window2D& g, const float* dy, int64_t batch, float* dx) override {
    deepcore::avgpool_backward(g, dy, batch, dx);
  }

  void gather_rows(const float* src, const int64_t* idx, int64_t rows, int64_t cols,
                   float* dst) override {
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(dst + r * cols, src + idx[r] * cols, sizeof(float) * cols);
  }
};

}  // namespace

Backend& get_backend(Device d) {
  static CpuBackend cpu;
  if (d == Device::CPU) return cpu;
  throw std::invalid_argument(
      "device 'cuda' is not available: this build of deepcore has no CUDA backend");
}

void set_num_threads(int n) {
  if (n < 0) throw std::invalid_argument("num_threads must be >= 0, received: " + std::to_string(n));
  scipy_openblas_set_num_threads(n == 0 ? scipy_openblas_get_num_procs() : n);
}

int get_num_threads() { return scipy_openblas_get_num_threads(); }

}  // namespace deepcore
