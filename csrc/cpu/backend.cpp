// The CPU backend: OpenBLAS for large GEMMs, our own kernels for the rest.
#include <cblas.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>
#include <stdexcept>

#include "deepcore/backend.h"
#include "deepcore/mask_maths.h"
#include "deepcore/merge_maths.h"
#include "deepcore/optimizer_rules.h"
#include "conv_pool.h"
#include "ops.h"
#include "parallel.h"
#include "small_gemm.h"

#ifndef DEEPCORE_KERNEL_SET  // (CMake names the set it compiles)
#define DEEPCORE_KERNEL_SET "native"
#endif

namespace deepcore {
namespace {

// A recurrent step's rows in blocks of kRnnRows, f(b0, b1) on each in turn, blocks shared
// among the threads in parts of at least kRnnMacs multiply-adds (of the recurrent product).
constexpr int64_t kRnnRows = 8;
constexpr int64_t kRnnMacs = int64_t(1) << 18;

template <class F>
void for_row_blocks(const RnnStep& s, int64_t gu, F&& f) {
  const int64_t blocks = (s.batch + kRnnRows - 1) / kRnnRows;
  const int64_t grain = std::max<int64_t>(1, kRnnMacs / (kRnnRows * gu * s.units));
  parallel_for(blocks, grain, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) f(k * kRnnRows, std::min(s.batch, (k + 1) * kRnnRows));
  });
}

// Multiply-adds from which a BLAS product is cut into 2 or 4 blocks for the threads.
constexpr int64_t kSplit2 = int64_t(4) << 20;
constexpr int64_t kSplit4 = int64_t(64) << 20;

void blas_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
               int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  scipy_cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k),
                    alpha, a, static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
                    static_cast<blasint>(ldc));
}

// Whether bias + act can be applied in one pass over z, in place: y is z and act is
// relu or linear (the Epilogue's operations).
bool in_place_relu(ActSpec act, const float* z, const float* y) {
  return z == y && (act.kind == Act::Relu || act.kind == Act::Linear);
}

// z += bias (per column, may be null); y = act(z), in one pass when y is z.
void bias_act_rows(ActSpec act, const float* bias, float* z, float* y, int64_t rows,
                   int64_t cols) {
  if (bias && in_place_relu(act, z, y)) {
    const bool relu = act.kind == Act::Relu;
    for (int64_t r = 0; r < rows; ++r) {
      float* yr = y + r * cols;
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) {
        const float v = yr[c] + bias[c];
        yr[c] = !relu || v > 0.f ? v : 0.f;
      }
    }
    return;
  }
  if (bias) {
    for (int64_t r = 0; r < rows; ++r) {
      float* zr = z + r * cols;
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) zr[c] += bias[c];
    }
  }
  act_forward<float>(act, z, y, rows, cols);
}

// out[c] = sum_r x[r, c], adding the rows in order.
void sum_rows(const float* x, int64_t rows, int64_t cols, float* out) {
  std::fill(out, out + cols, 0.f);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) out[c] += xr[c];
  }
}

// Images are independent: calls f(n0, count, in, out) for each part of a batch, with
// `in` the floats of one input image and `out` those of one output (an im2col block
// when `cols`, else a pooled image).
template <class F>
void by_images(const Window2D& g, int64_t batch, bool cols, F&& f) {
  const int64_t in = g.h * g.w * g.c, out = g.oh * g.ow * g.c * (cols ? g.kh * g.kw : 1);
  parallel_for(batch, grain_for(in + out),
               [&](int64_t n0, int64_t n1) { f(n0, n1 - n0, in, out); });
}

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }

  bool host_memory() const override { return true; }
  void* allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    // 64-byte aligned: whole cache lines, and the widest vector loads
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    return p;
  }
  void deallocate(void* p) override { std::free(p); }
  void upload(void* dst, const void* src, size_t bytes) override { copy(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) override { copy(dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) override {
    if (bytes && dst != src) std::memmove(dst, src, bytes);
  }
  void fill(float* dst, float value, int64_t n) override { std::fill(dst, dst + n, value); }
  void zero(void* dst, size_t bytes) override {
    if (bytes) std::memset(dst, 0, bytes);
  }
  void batchnorm_forward(const BatchNormSpec& b, const float* x, float* y, int64_t m,
                         const float* gamma, const float* beta, float* moving_mean,
                         float* moving_var, bool training, float* xhat, float* inv_std,
                         double* scratch) override {
    deepcore::batchnorm_forward(b, x, y, m, gamma, beta, moving_mean, moving_var, training, xhat,
                                inv_std, scratch);
  }
  void batchnorm_backward(const BatchNormSpec& b, const float* dy, float* dx, int64_t m,
                          const float* gamma, const float* xhat, const float* inv_std,
                          float* dgamma, float* dbeta, double* scratch) override {
    deepcore::batchnorm_backward(b, dy, dx, m, gamma, xhat, inv_std, dgamma, dbeta, scratch);
  }
  void l1l2_penalty(const float* w, float* g, int64_t n, float l1, float l2,
                    double* acc) override {
    deepcore::l1l2_penalty(w, g, n, l1, l2, acc);
  }
  void clip_by_value(float* g, int64_t n, float v) override { deepcore::clip_by_value(g, n, v); }
  void clip_by_norm(float* g, int64_t n, double max_norm) override {
    deepcore::clip_by_norm(g, n, max_norm);
  }
  void multiply(const float* a, const float* b, float* out, int64_t n) override {
    parallel_for(n, grain_for(3), [&](int64_t i0, int64_t i1) {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) out[i] = a[i] * b[i];
    });
  }

  void broadcast_multiply(const Broadcast3& s, const float* a, const float* m,
                          float* out) override {
    // By rows of n2 values: the inner loop reads both operands contiguously.
    parallel_for(s.n0 * s.n1, grain_for(3 * s.n2), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t i = r / s.n1, j = r % s.n1;
        const float* ar = a + i * s.a0 + j * s.a1;
        const float* mr = m + i * s.m0 + j * s.m1;
        float* o = out + r * s.n2;
        if (s.accumulate) {
#pragma omp simd
          for (int64_t k = 0; k < s.n2; ++k) o[k] += ar[k] * mr[k];
        } else {
#pragma omp simd
          for (int64_t k = 0; k < s.n2; ++k) o[k] = ar[k] * mr[k];
        }
      }
    });
  }

  void transpose(const float* a, int64_t rows, int64_t cols, float* out) override {
    transpose_into(a, rows, cols, cols, out);
  }

  void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
            int64_t lda, const float* b, int64_t ldb, float beta, float* c,
            int64_t ldc) override {
    if (m == 0 || n == 0) return;
    if (use_small_gemm(ta, tb, m, n, k)) {
      small_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    }
    // The BLAS library, single-threaded, on blocks of columns (or rows, when A is the
    // larger operand) that the pool's threads share. The blocks depend on the shape
    // alone, so the result is the same for any thread count.
    const int64_t macs = m * n * k;
    const int64_t parts = macs >= kSplit4 ? 4 : (macs >= kSplit2 ? 2 : 1);
    const bool by_cols = n >= m;
    const int64_t len = by_cols ? n : m;
    const int64_t block = ((len + parts - 1) / parts + 15) / 16 * 16;
    parallel_for((len + block - 1) / block, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t i = b0 * block; i < std::min(b1 * block, len); i += block) {
        const int64_t w = std::min(block, len - i);
        if (by_cols)
          blas_gemm(ta, tb, m, w, k, alpha, a, lda, tb ? b + i * ldb : b + i, ldb, beta, c + i,
                    ldc);
        else
          blas_gemm(ta, tb, w, n, k, alpha, ta ? a + i : a + i * lda, lda, b, ldb, beta,
                    c + i * ldc, ldc);
      }
    });
  }

  void affine_forward(ActSpec act, const float* a, const float* w, const float* bias, float* z,
                      float* y, int64_t m, int64_t k, int64_t n) override {
    // On our kernel, bias and relu go onto each tile as it is stored: no second pass over
    // an output that may be far larger than the caches (a first convolution's).
    if (in_place_relu(act, z, y) && use_small_gemm(false, false, m, n, k))
      small_gemm(false, false, m, n, k, 1.f, a, k, w, n, 0.f, y, n, {bias, act.kind == Act::Relu});
    else
      Backend::affine_forward(act, a, w, bias, z, y, m, k, n);
  }

  void bias_act(ActSpec act, const float* bias, float* z, float* y, int64_t rows,
                int64_t cols) override {
    parallel_for(rows, grain_for(cols), [&](int64_t r0, int64_t r1) {
      bias_act_rows(act, bias, z + r0 * cols, y + r0 * cols, r1 - r0, cols);
    });
  }

  void act_backward(ActSpec act, const float* x, const float* y, const float* dy, float* dx,
                    int64_t rows, int64_t cols) override {
    parallel_for(rows, grain_for(3 * cols), [&](int64_t r0, int64_t r1) {
      const int64_t o = r0 * cols;
      deepcore::act_backward<float>(act, x + o, y + o, dy + o, dx + o, r1 - r0, cols);
    });
  }

  void col_sum(const float* x, int64_t rows, int64_t cols, float* out) override {
    // Partial sums over fixed chunks of rows (the same for any thread count), then
    // their sum in chunk order; one chunk is summed straight into out.
    constexpr int64_t kChunk = 512;
    const int64_t chunks = (rows + kChunk - 1) / kChunk;
    if (chunks <= 1) return sum_rows(x, rows, cols, out);
    thread_local std::vector<float> partial;
    if (static_cast<int64_t>(partial.size()) < chunks * cols) partial.resize(chunks * cols);
    float* part = partial.data();
    parallel_for(chunks, grain_for(kChunk * cols), [&](int64_t c0, int64_t c1) {
      for (int64_t ch = c0; ch < c1; ++ch)
        sum_rows(x + ch * kChunk * cols, std::min(kChunk, rows - ch * kChunk), cols,
                 part + ch * cols);
    });
    sum_rows(part, chunks, cols, out);
  }

  void loss(const LossSpec& l, const float* pred, const float* probs, const float* y,
            const float* w, float* grad, int64_t rows, int64_t cols, int64_t ycols,
            float grad_scale, double* sum) override {
    *sum = loss_forward_backward<float>(l, pred, probs, y, w, grad, nullptr, rows, cols, ycols,
                                        grad_scale);
  }

  void add_batch_loss(const double* batch, double scale, int64_t rows, double* totals) override {
    opt::add_batch_loss(batch, scale, rows, totals);
  }

  void metric_update(const MetricSpec& m, const float* pred, const float* y, const float* w,
                     int64_t rows, int64_t cols, int64_t ycols, double* state) override {
    deepcore::metric_update(m, pred, y, w, rows, cols, ycols, state);
  }

  void optimizer_update(const OptSpec& o, const StepValues* step, float* w, const float* g,
                        float* s0, float* s1, float* s2, int64_t n) override {
    auto at = [](float* p, int64_t i) { return p ? p + i : nullptr; };
    const float lr = step->lr;
    const int64_t count = step->step;
    parallel_for(n, int64_t(1) << 14, [&](int64_t i0, int64_t i1) {
      deepcore::optimizer_update<float>(o, lr, count, w + i0, g + i0, at(s0, i0), at(s1, i0),
                                        at(s2, i0), i1 - i0);
    });
  }

  void dropout(float rate, const uint64_t* seed_in, const float* x, float* y, float* mask,
               int64_t n) override {
    const uint64_t seed = *seed_in;
    const float keep = 1.f - rate, scale = 1.f / keep;
    parallel_for(n, grain_for(3), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        mask[i] = opt::dropout_mask(seed, i, keep, scale);
        y[i] = x[i] * mask[i];
      }
    });
  }

  void im2col(const Window2D& g, const float* x, int64_t batch, float* cols) override {
    by_images(g, batch, true, [&](int64_t n, int64_t count, int64_t in, int64_t out) {
      deepcore::im2col(g, x + n * in, count, cols + n * out);
    });
  }
  void col2im(const Window2D& g, const float* cols, int64_t batch, float* dx) override {
    by_images(g, batch, true, [&](int64_t n, int64_t count, int64_t in, int64_t out) {
      deepcore::col2im(g, cols + n * out, count, dx + n * in);
    });
  }
  void maxpool_forward(const Window2D& g, const float* x, int64_t batch, float* y,
                       int32_t* argmax) override {
    by_images(g, batch, false, [&](int64_t n, int64_t count, int64_t in, int64_t out) {
      deepcore::maxpool_forward(g, x + n * in, count, y + n * out, argmax + n * out);
    });
  }
  void maxpool_backward(const Window2D& g, const float* dy, const int32_t* argmax,
                        int64_t batch, float* dx) override {
    by_images(g, batch, false, [&](int64_t n, int64_t count, int64_t in, int64_t out) {
      deepcore::maxpool_backward(g, dy + n * out, argmax + n * out, count, dx + n * in);
    });
  }
  void avgpool_forward(const Window2D& g, const float* x, int64_t batch, float* y) override {
    by_images(g, batch, false, [&](int64_t n, int64_t count, int64_t in, int64_t out) {
      deepcore::avgpool_forward(g, x + n * in, count, y + n * out);
    });
  }
  void avgpool_backward(const Window2D& g, const float* dy, int64_t batch, float* dx) override {
    by_images(g, batch, false, [&](int64_t n, int64_t count, int64_t in, int64_t out) {
      deepcore::avgpool_backward(g, dy + n * out, count, dx + n * in);
    });
  }

  bool fuses_conv_maxpool(const ConvPool& s) const override {
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
    // Where affine_forward runs our kernel for any number of rows, bias and relu in its stores
    // (Winograd's tiles take any weights: their products are c x filters, one per position)
    const int64_t k = s.conv.kh * s.conv.kw * s.conv.c;
    return (s.act.kind == Act::Relu || s.act.kind == Act::Linear) &&
           (k * s.filters <= kL2Panel || winograd_fits(s));
#else
    return false;
#endif
  }
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
  void conv_maxpool_forward(const ConvPool& s, const float* x, int64_t batch, int64_t tile,
                            float* cols, float* y) override {
    conv_maxpool(s, x, batch, tile, cols, y);
  }
#endif

  void resample(const Resample& r, const float* x, int64_t batch, float* y) override {
    const int64_t in = r.h * r.w * r.c, out = r.oh * r.ow * r.c;
    parallel_for(batch, grain_for(4 * out), [&](int64_t n0, int64_t n1) {
      deepcore::resample(r, x + n0 * in, n1 - n0, y + n0 * out);
    });
  }

  void augment(const Augment& a, const uint64_t* seed, const float* x, const float* means,
               int64_t batch, float* y) override {
    parallel_for(batch, grain_for(8 * a.oh * a.ow * a.c), [&](int64_t n0, int64_t n1) {
      deepcore::augment(a, *seed, x, means, n0, n1, y);
    });
  }

  void embedding_forward(const float* table, const float* idx, int64_t n, int64_t dim,
                         int64_t input_dim, float* out) override {
    check_embedding_indices(idx, n, input_dim);  // before any thread writes
    parallel_for(n, grain_for(2 * dim), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        std::memcpy(out + i * dim, table + static_cast<int64_t>(idx[i]) * dim,
                    sizeof(float) * dim);
    });
  }
  // Each part owns a range of the table's rows and walks every position in order: the
  // same sums, in the same order, for any thread count.
  void embedding_backward(const float* idx, const float* dy, int64_t n, int64_t dim,
                          int64_t input_dim, float* dtable) override {
    const int64_t grain = std::max<int64_t>(1, grain_for(dim) * std::max<int64_t>(n, 1) / 4096);
    parallel_for(input_dim, std::min(grain, input_dim), [&](int64_t r0, int64_t r1) {
      deepcore::embedding_backward(idx, dy, n, dim, r0, r1, dtable);
    });
  }
  void repeat_rows(const float* x, int64_t rows, int64_t size, int64_t cols,
                   float* y) override {
    parallel_for(rows, grain_for((size + 1) * cols), [&](int64_t r0, int64_t r1) {
      deepcore::repeat_rows(x + r0 * cols, r1 - r0, size, cols, y + r0 * size * cols);
    });
  }
  void repeat_rows_backward(const float* dy, int64_t rows, int64_t size, int64_t cols,
                            float* dx) override {
    parallel_for(rows, grain_for((size + 1) * cols), [&](int64_t r0, int64_t r1) {
      deepcore::repeat_rows_backward(dy + r0 * size * cols, r1 - r0, size, cols, dx + r0 * cols);
    });
  }

  // The recurrent steps (recurrent.cpp): the batch split over threads.
  void bidir_merge(const BidirMerge& m, const float* a, const float* b, float* y) override {
    parallel_for(m.rows * m.steps, grain_for(m.width()), [&](int64_t p0, int64_t p1) {
      deepcore::bidir_merge_forward(m, a, b, y, p0, p1);
    });
  }
  void bidir_merge_backward(const BidirMerge& m, const float* a, const float* b, const float* dy,
                            float* da, float* db) override {
    parallel_for(m.rows * m.steps, grain_for(m.width()), [&](int64_t p0, int64_t p1) {
      deepcore::bidir_merge_backward(m, a, b, dy, da, db, p0, p1);
    });
  }
  void sequence_mask(const float* x, int64_t positions, int64_t width, float value,
                     float* mask) override {
    parallel_for(positions, grain_for(width), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) mask[p] = mask_of(x + p * width, width, value);
    });
  }
  void mask_rows(const float* x, int64_t xld, const float* mask, int64_t mld, int64_t rows,
                 int64_t width, float* y, int64_t yld) override {
    parallel_for(rows, grain_for(2 * width), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float m = mask ? mask[r * mld] : 1.f;
        const float* xr = x + r * xld;
        float* yr = y + r * yld;
#pragma omp simd
        for (int64_t j = 0; j < width; ++j) yr[j] = mask_select(m, xr[j]);
      }
    });
  }
  void masked_mean_steps(const float* x, const float* mask, int64_t rows, int64_t steps,
                         int64_t width, float* y) override {
    parallel_for(rows, grain_for(steps * width), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        for (int64_t j = 0; j < width; ++j)
          y[b * width + j] = masked_mean(x + b * steps * width, mask + b * steps, steps, width, j);
    });
  }
  void mask_weights(const float* mask, const float* w, int64_t rows, int64_t steps, float* mw,
                    float* lw) override {
    const float unmasked = mask_count(mask, rows * steps);
    const float scale = mask_loss_scale(rows * steps, unmasked);
    for (int64_t b = 0; b < rows; ++b)
      for (int64_t t = 0; t < steps; ++t) {
        const int64_t p = b * steps + t;
        mw[p] = mask_metric_weight(mask[p], w, b);
        lw[p] = mw[p] * scale;
      }
  }
  void masked_mean_steps_backward(const float* dy, const float* mask, int64_t rows,
                                  int64_t steps, int64_t width, float* dx) override {
    parallel_for(rows, grain_for(steps * width), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const float* m = mask + b * steps;
        const float n = mask_count(m, steps);
        for (int64_t t = 0; t < steps; ++t) {
          float* dxt = dx + (b * steps + t) * width;
          for (int64_t j = 0; j < width; ++j) dxt[j] = mask_select(m[t], dy[b * width + j] / n);
        }
      }
    });
  }
  void rnn_step_forward(const RnnStep& s, const float* z, const float* hr, const float* h_prev,
                        const float* mask, float* h) override {
    parallel_for(s.batch, grain_for(4 * s.units), [&](int64_t b0, int64_t b1) {
      deepcore::rnn_step_forward(s, z, hr, h_prev, mask, h, b0, b1);
    });
  }
  void rnn_step_backward(const RnnStep& s, float* z, const float* h, const float* dy,
                         const float* mask, float* dh) override {
    parallel_for(s.batch, grain_for(4 * s.units), [&](int64_t b0, int64_t b1) {
      deepcore::rnn_step_backward(s, z, h, dy, mask, dh, b0, b1);
    });
  }
  void lstm_step_forward(const RnnStep& s, float* z, const float* hr, const float* h_prev,
                         const float* c_prev, const float* mask, float* c, float* h) override {
    parallel_for(s.batch, grain_for(16 * s.units), [&](int64_t b0, int64_t b1) {
      deepcore::lstm_step_forward(s, z, hr, h_prev, c_prev, mask, c, h, b0, b1);
    });
  }
  void lstm_step_backward(const RnnStep& s, float* z, const float* c_prev, const float* c,
                          const float* dy, const float* mask, float* dh, float* dc) override {
    parallel_for(s.batch, grain_for(16 * s.units), [&](int64_t b0, int64_t b1) {
      deepcore::lstm_step_backward(s, z, c_prev, c, dy, mask, dh, dc, b0, b1);
    });
  }
  void gru_step_forward(const RnnStep& s, float* z, const float* hr, const float* rbias,
                        const float* h_prev, const float* mask, float* rh, float* h) override {
    parallel_for(s.batch, grain_for(12 * s.units), [&](int64_t b0, int64_t b1) {
      deepcore::gru_step_forward(s, z, hr, rbias, h_prev, mask, rh, h, b0, b1);
    });
  }
  void gru_step_backward(const RnnStep& s, float* z, float* dr, const float* rh,
                         const float* h_prev, const float* dy, const float* mask,
                         float* dh) override {
    parallel_for(s.batch, grain_for(12 * s.units), [&](int64_t b0, int64_t b1) {
      deepcore::gru_step_backward(s, z, dr, rh, h_prev, dy, mask, dh, b0, b1);
    });
  }

  // A recurrent step in blocks of kRnnRows rows: each block's product and cell one after the
  // other (its rows of z still in cache), the blocks shared among the threads (the cells were
  // a serial pass before). Backward, dU's columns in fixed blocks shared likewise. A value
  // never depends on the blocks or the threads.
  void recurrent_step_forward(Cell cell, const RnnStep& s, const float* wr, const float* rbias,
                              float* z, float* hr, const float* h_prev, const float* c_prev,
                              const float* mask, float* c, float* h) override {
    const int64_t U = s.units, gu = gates_of(cell) * U;
    const bool gru = cell == Cell::GRU;
    for_row_blocks(s, gu, [&](int64_t b0, int64_t b1) {
      if (wr)
        gemm(false, false, b1 - b0, gu, U, 1.f, h_prev + b0 * s.ld, s.ld, wr, gu, gru ? 0.f : 1.f,
             gru ? hr + b0 * gu : z + b0 * s.zld, gru ? gu : s.zld);
      switch (cell) {
        case Cell::SimpleRNN:
          deepcore::rnn_step_forward(s, z, hr, h_prev, mask, h, b0, b1);
          break;
        case Cell::LSTM:
          deepcore::lstm_step_forward(s, z, hr, h_prev, c_prev, mask, c, h, b0, b1);
          break;
        case Cell::GRU:
          deepcore::gru_step_forward(s, z, hr, rbias, h_prev, mask, c, h, b0, b1);
          break;
      }
    });
  }
  void recurrent_step_backward(Cell cell, const RnnStep& s, const float* ut, float* gwr, float* z,
                               float* dr, const float* c_prev, const float* c, const float* h,
                               const float* h_prev, const float* dy, const float* mask, float* dh,
                               float* dc) override {
    const int64_t U = s.units, gu = gates_of(cell) * U;
    for_row_blocks(s, gu, [&](int64_t b0, int64_t b1) {
      switch (cell) {
        case Cell::SimpleRNN:
          deepcore::rnn_step_backward(s, z, h, dy, mask, dh, b0, b1);
          break;
        case Cell::LSTM:
          deepcore::lstm_step_backward(s, z, c_prev, c, dy, mask, dh, dc, b0, b1);
          break;
        case Cell::GRU:
          deepcore::gru_step_backward(s, z, dr, c, h_prev, dy, mask, dh, b0, b1);
          break;
      }
      if (ut)
        gemm(false, false, b1 - b0, U, gu, 1.f, dr + b0 * s.zld, s.zld, ut, U, 1.f, dh + b0 * U, U);
    });
    if (!ut) return;
    constexpr int64_t kCols = 64;
    const int64_t col_blocks = (gu + kCols - 1) / kCols;
    parallel_for(col_blocks, std::max<int64_t>(1, kRnnMacs / (kCols * U * s.batch)),
                 [&](int64_t j0, int64_t j1) {
                   for (int64_t j = j0 * kCols; j < std::min(gu, j1 * kCols); j += kCols)
                     gemm(true, false, U, std::min(kCols, gu - j), s.batch, 1.f, h_prev, s.ld,
                          dr + j, s.zld, 1.f, gwr + j, gu);
                 });
  }

  void merge_forward(MergeOp op, const MergeInputs& in, float* y, int64_t n) override {
    cpu::merge(op, in, y, n);
  }
  void merge_backward(MergeOp op, const MergeInputs& in, const float* y, const float* dy,
                      const MergeGrads& dx, int64_t n) override {
    cpu::merge_backward(op, in, y, dy, dx, n);
  }

  void l2_normalize(const float* x, float* y, int64_t outer, int64_t n,
                    int64_t inner) override {
    parallel_for(outer * inner, grain_for(2 * n), [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g) {
        const int64_t at = (g / inner) * n * inner + g % inner;
        l2_normalize_group(x + at, y + at, n, inner);
      }
    });
  }
  void l2_normalize_backward(const float* x, const float* dy, float* dx, int64_t outer,
                             int64_t n, int64_t inner) override {
    parallel_for(outer * inner, grain_for(4 * n), [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g) {
        const int64_t at = (g / inner) * n * inner + g % inner;
        l2_normalize_group_backward(x + at, dy + at, dx + at, n, inner);
      }
    });
  }

  void unary(UnaryOp op, float p0, float p1, const float* x, float* y, int64_t n) override {
    cpu::unary(op, p0, p1, x, y, n);
  }
  void unary_backward(UnaryOp op, float p0, float p1, const float* x, const float* y,
                      const float* dy, float* dx, int64_t n) override {
    cpu::unary_backward(op, p0, p1, x, y, dy, dx, n);
  }
  void binary(BinaryOp op, const Strided& s, const float* a, const float* b, float* y) override {
    cpu::binary(op, s, a, b, y);
  }
  void binary_backward(BinaryOp op, const Strided& s, const float* a, const float* b,
                       const float* y, const float* dy, float* da, float* db) override {
    cpu::binary_backward(op, s, a, b, y, dy, da, db);
  }
  void chain(const Chain& c, const float* a, const float* b, float* y) override {
    cpu::chain(c, a, b, y);
  }
  void chain_backward(const Chain& c, const float* a, const float* b, const float* dy, float* da,
                      float* db) override {
    cpu::chain_backward(c, a, b, dy, da, db);
  }
  void reduce(ReduceOp op, const Reduction& r, const float* x, float* y) override {
    cpu::reduce(op, r, x, y);
  }
  void reduce_backward(ReduceOp op, const Reduction& r, const float* x, const float* y,
                       const float* dy, float* dx) override {
    cpu::reduce_backward(op, r, x, y, dy, dx);
  }

  void gather_rows(const float* src, const int64_t* idx, int64_t rows, int64_t cols,
                   float* dst) override {
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(dst + r * cols, src + idx[r] * cols, sizeof(float) * cols);
  }
};

}  // namespace

namespace {

// The CUDA backend is a plugin (libdeepcore_cuda.so, next to the library or program that
// holds this code), loaded on first use so that a CPU-only run never maps CUDA (cuBLASLt
// alone is ~190 MB). Loading is tried once; its error is kept and thrown on every call.
struct CudaPlugin {
  Backend* backend = nullptr;
  std::string device_name;  // the GPU's, or why there is no backend
};

#ifdef DEEPCORE_WITH_CUDA
CudaPlugin load_cuda_plugin() {
  Dl_info info{};
  if (!dladdr(reinterpret_cast<void*>(&get_backend), &info) || !info.dli_fname)
    return {nullptr, "could not find the deepcore library's own path (dladdr)"};
  std::string path = info.dli_fname;
  path = path.substr(0, path.find_last_of('/') + 1) + "libdeepcore_cuda.so";
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    return {nullptr, std::string("the CUDA plugin could not be loaded (cuBLASLt comes with "
                                 "pip install \"deepcore[cuda]\"): ") + dlerror()};
  using Create = Backend* (*)(char*, size_t);
  auto create = reinterpret_cast<Create>(dlsym(lib, "deepcore_cuda_create"));
  if (!create) return {nullptr, path + " has no deepcore_cuda_create"};
  char message[512] = {0};
  Backend* be = create(message, sizeof(message));
  // The plugin stays loaded either way: unloading CUDA's runtime is not worth the risk.
  return {be, message};
}
#endif

std::atomic<bool> g_tf32{false};
std::atomic<Backend*> g_cuda{nullptr};  // the CUDA backend once loaded

const CudaPlugin& cuda_plugin() {
#ifdef DEEPCORE_WITH_CUDA
  static const CudaPlugin plugin = [] {
    CudaPlugin p = load_cuda_plugin();
    if (p.backend) {
      p.backend->set_tf32(g_tf32.load());
      g_cuda.store(p.backend);
    }
    return p;
  }();
#else
  static const CudaPlugin plugin{nullptr, "this build of deepcore has no CUDA backend (build it "
                                          "with -Ccmake.define.DEEPCORE_CUDA=ON)"};
#endif
  return plugin;
}

}  // namespace

Backend& get_backend(Device d) {
  // One set of threads: ours. The BLAS library runs single-threaded inside them; we
  // start with as many as it would have used (its default honours
  // OPENBLAS_NUM_THREADS and OMP_NUM_THREADS).
  static CpuBackend& cpu = *[] {
    set_pool_threads(scipy_openblas_get_num_threads());
    scipy_openblas_set_num_threads(1);
    return new CpuBackend;
  }();
  if (d == Device::CPU) return cpu;
  if (d == Device::Guarded) return guarded_backend();
  if (d == Device::CUDA) {
    const CudaPlugin& p = cuda_plugin();
    if (p.backend) return *p.backend;
    throw std::invalid_argument("device 'cuda' is not available: " + p.device_name);
  }
  throw std::invalid_argument("unknown device " + std::to_string(static_cast<int>(d)));
}

std::string device_name(Device d) {
  if (d == Device::CUDA) {
    get_backend(d);  // throws when there is none
    return cuda_plugin().device_name;
  }
  get_backend(d);
  return "cpu";
}

void set_allow_tf32(bool allow) {
  g_tf32.store(allow);
  if (Backend* cuda = g_cuda.load()) cuda->set_tf32(allow);
}

bool allow_tf32() { return g_tf32.load(); }

void set_num_threads(int n) {
  if (n < 0) throw std::invalid_argument("num_threads must be >= 0, received: " + std::to_string(n));
  get_backend(Device::CPU);  // sets the default first
  set_pool_threads(n == 0 ? scipy_openblas_get_num_procs() : n);
}

}  // namespace deepcore

extern "C" const char* deepcore_kernel_set() { return DEEPCORE_KERNEL_SET; }

namespace deepcore {

int get_num_threads() {
  get_backend(Device::CPU);
  return pool_threads();
}

}  // namespace deepcore
