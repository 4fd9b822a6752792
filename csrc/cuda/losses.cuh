// The CUDA losses and metrics (losses.cu). Every launcher runs on `stream` and returns
// without synchronizing. Their sums are deterministic: each block adds its rows or entries
// in a fixed order into a partial sum, and one more kernel adds the partial sums in a fixed
// order (no floating-point atomics), so a launch of the same shape gives the same bits.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "deepcore/kernels.h"

namespace deepcore {
namespace cuda {

// The first invalid sparse label a kernel met (not an integer in [0, classes)), in device
// memory, all zero while there is none. A kernel cannot throw: it records the label here
// (the first to claim `set` writes value and classes), and the backend throws
// checked_label's std::invalid_argument when it next synchronizes with the host
// (backend.cu).
struct LabelError {
  unsigned int set;  // 1 once value and classes hold a label
  double value;
  int64_t classes;
};

// Partial sums a launch may use: at most kMaxPartialBlocks blocks, each with up to 3 sums.
constexpr int kMaxPartialBlocks = 1024;
// Doubles of device memory the launchers below take as `scratch`.
constexpr int64_t kLossScratch = 3 * int64_t(kMaxPartialBlocks);

// loss_forward_backward (kernels.h) on float data: *sum = sum_r w_r loss_r (one double in
// device memory, overwritten) and, when grad is not null, grad = d(grad_scale * sum)/d pred.
// Element-wise losses run one thread per entry; cross-entropies one group of threads per
// row (8 or 32 lanes of a warp, or a whole block for rows of more than 2048 classes).
// Throws std::invalid_argument (before any launch) when ycols does not fit the loss.
void loss(cudaStream_t stream, const LossSpec& l, const float* pred, const float* probs,
          const float* y, const float* w, float* grad, int64_t rows, int64_t cols, int64_t ycols,
          float grad_scale, double* sum, double* scratch, LabelError* error);

// metric_update (kernels.h): state (device memory) += the batch's weighted counts or sums.
// Per-row metrics run one group of threads per row; precision and recall one thread per
// entry; AUC one block per threshold. Throws std::invalid_argument (before any launch) for
// the arguments the CPU refuses.
void metric_update(cudaStream_t stream, const MetricSpec& m, const float* pred, const float* y,
                   const float* w, int64_t rows, int64_t cols, int64_t ycols, double* state,
                   double* scratch, LabelError* error);

}  // namespace cuda
}  // namespace deepcore
