// CUDA kernels of Keras' merge layers (Backend: merge_forward, merge_backward) and of the L2
// normalization of Dot(normalize=True) (l2_normalize, l2_normalize_backward).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "deepcore/kernels.h"

namespace deepcore {
namespace cuda {

void merge_forward(cudaStream_t stream, MergeOp op, const MergeInputs& in, float* y, int64_t n);
void merge_backward(cudaStream_t stream, MergeOp op, const MergeInputs& in, const float* y,
                    const float* dy, const MergeGrads& dx, int64_t n);
void l2_normalize(cudaStream_t stream, const float* x, float* y, int64_t outer, int64_t n,
                  int64_t inner);
void l2_normalize_backward(cudaStream_t stream, const float* x, const float* dy, float* dx,
                           int64_t outer, int64_t n, int64_t inner);

}  // namespace cuda
}  // namespace deepcore
