// CUDA kernels of Keras' sequence masks (Backend: sequence_mask, mask_rows, masked_mean_steps,
// mask_weights).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace deepcore {
namespace cuda {

void sequence_mask(cudaStream_t stream, const float* x, int64_t positions, int64_t width,
                   float value, float* mask);
void mask_rows(cudaStream_t stream, const float* x, int64_t xld, const float* mask, int64_t mld,
               int64_t rows, int64_t width, float* y, int64_t yld);
void masked_mean_steps(cudaStream_t stream, const float* x, const float* mask, int64_t rows,
                       int64_t steps, int64_t width, float* y);
void masked_mean_steps_backward(cudaStream_t stream, const float* dy, const float* mask,
                                int64_t rows, int64_t steps, int64_t width, float* dx);
void mask_weights(cudaStream_t stream, const float* mask, const float* w, int64_t rows,
                  int64_t steps, float* mw, float* lw);

}  // namespace cuda
}  // namespace deepcore
