// The CUDA kernels of a training step's updates: the optimizer rules, regularisation,
// clipping, dropout, row gathers and the loss total (update.cu). Every launcher runs on
// `stream` and returns without synchronizing; every pointer is device memory, the scalars
// passed by pointer (StepValues, the seed, the double accumulators) included.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "deepcore/kernels.h"

namespace deepcore {
namespace cuda {

// One optimizer update of n parameters (kernels.h's optimizer_update, with the learning
// rate and the step count read from *step on the device): one fused pass.
void optimizer_update(cudaStream_t stream, const OptSpec& o, const StepValues* step, float* w,
                      const float* g, float* s0, float* s1, float* s2, int64_t n);
// *acc += sum_i l1 |w_i| + l2 w_i^2 (in double, a fixed-order tree); g_i += l1 sign(w_i) +
// 2 l2 w_i when g is not null.
void l1l2_penalty(cudaStream_t stream, const float* w, float* g, int64_t n, float l1, float l2,
                  double* acc);
// g_i = min(max(g_i, -v), v)
void clip_by_value(cudaStream_t stream, float* g, int64_t n, float v);
// g *= max_norm / ||g|| when the norm (reduced on the device, in double) exceeds max_norm.
void clip_by_norm(cudaStream_t stream, float* g, int64_t n, double max_norm);
// out = a * b, value by value.
void multiply(cudaStream_t stream, const float* a, const float* b, float* out, int64_t n);
// out (cols x rows) = a^T.
// out = a * m (+ out) with broadcasting (kernels.h: Broadcast3).
void broadcast_multiply(cudaStream_t stream, const Broadcast3& s, const float* a, const float* m,
                        float* out);
void transpose(cudaStream_t stream, const float* a, int64_t rows, int64_t cols, float* out);
// y = x * mask, mask drawn from *seed with the CPU's counter-based stream (the same bits).
void dropout(cudaStream_t stream, float rate, const uint64_t* seed, const float* x, float* y,
             float* mask, int64_t n);
// dst[i, :] = src[idx[i], :] for i < rows.
void gather_rows(cudaStream_t stream, const float* src, const int64_t* idx, int64_t rows,
                 int64_t cols, float* dst);
// totals[0] += (batch[0] * scale + batch[1]) * rows; totals[1] += rows (one thread).
void add_batch_loss(cudaStream_t stream, const double* batch, double scale, int64_t rows,
                    double* totals);

}  // namespace cuda
}  // namespace deepcore
