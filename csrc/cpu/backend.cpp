// The CPU backend: OpenBLAS for large GEMMs, our own kernels for the rest.
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <stdexcept>

#include "deepcore/backend.h"
#include "deepcore/rng.h"

namespace deepcore {
namespace {

// Below this many multiply-adds the call overhead of the BLAS library dominates,
// and a plain loop the compiler vectorises is faster.
constexpr int64_t kSmallGemm = 32 * 32 * 32;

void small_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    if (beta == 0.f)
      std::fill(ci, ci + n, 0.f);
    else if (beta != 1.f)
      for (int64_t j = 0; j < n; ++j) ci[j] *= beta;
    if (!tb) {
      for (int64_t p = 0; p < k; ++p) {
        const float av = alpha * (ta ? a[p * lda + i] : a[i * lda + p]);
        const float* bp = b + p * ldb;
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) ci[j] += av * bp[j];
      }
    } else {
      for (int64_t j = 0; j < n; ++j) {
        const float* bj = b + j * ldb;
        float s = 0.f;
        if (!ta) {
          const float* ai = a + i * lda;
#pragma omp simd reduction(+ : s)
          for (int64_t p = 0; p < k; ++p) s += ai[p] * bj[p];
        } else {
          for (int64_t p = 0; p < k; ++p) s += a[p * lda + i] * bj[p];
        }
        ci[j] += alpha * s;
      }
    }
  }
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

  double loss(const LossSpec& l, const float* pred, const float* y, const float* w, float* grad,
              int64_t rows, int64_t cols, int64_t ycols, float grad_scale) override {
    return loss_forward_backward<float>(l, pred, y, w, grad, nullptr, rows, cols, ycols,
                                        grad_scale);
  }

  double metric(Metric m, const float* pred, const float* y, const float* w, int64_t rows,
                int64_t cols, int64_t ycols) override {
    return metric_sum(m, pred, y, w, rows, cols, ycols);
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
