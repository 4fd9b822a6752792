// CUDA kernels of Keras' merge layers (Backend: merge_forward, merge_backward).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "deepcore/kernels.h"

namespace deepcore {
namespace cuda {

void merge_forward(cudaStream_t stream, MergeOp op, const MergeInputs& in, float* y, int64_t n);
void merge_backward(cudaStream_t stream, MergeOp op, const MergeInputs& in, const float* y,
                    const float* dy, const MergeGrads& dx, int64_t n);

}  // namespace cuda
}  // namespace deepcore
