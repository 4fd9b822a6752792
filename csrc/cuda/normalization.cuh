// CUDA batch normalization over the last axis of an m x channels matrix, with the contract
// of kernels.h. Every launcher runs on `stream` and returns without synchronizing; the
// pointers are device memory (gamma, beta, dgamma, dbeta, dx may be null).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "deepcore/kernels.h"

namespace deepcore {
namespace cuda {

// Training: the batch's mean and biased variance per channel (in double), the moving
// statistics updated; inference: the moving statistics. Then xhat, inv_std and y.
// scratch: 3 * channels doubles (the means).
void batchnorm_forward(cudaStream_t stream, const BatchNormSpec& b, const float* x, float* y,
                       int64_t m, const float* gamma, const float* beta, float* moving_mean,
                       float* moving_var, bool training, float* xhat, float* inv_std,
                       double* scratch);
// dgamma = sum(dy * xhat), dbeta = sum(dy) per channel (in double), when not null; dx
// when not null. scratch: 3 * channels doubles (the sums and dx's factor).
void batchnorm_backward(cudaStream_t stream, const BatchNormSpec& b, const float* dy, float* dx,
                        int64_t m, const float* gamma, const float* xhat, const float* inv_std,
                        float* dgamma, float* dbeta, double* scratch);

}  // namespace cuda
}  // namespace deepcore
