// CUDA kernels for convolutions (im2col / col2im around the GEMM) and pooling, NHWC, with
// the contract of kernels.h. Every launcher runs on `stream` and returns without
// synchronizing; the pointers are device memory.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "deepcore/kernels.h"

namespace deepcore {
namespace cuda {

// cols[(n, oy, ox), (ky, kx, ci)] = x[n, oy*sh + ky*dh - pad_top, ox*sw + kx*dw - pad_left, ci]
// (0 in the padding).
void im2col(cudaStream_t stream, const Window2D& g, const float* x, int64_t batch, float* cols);
// dx = the sum of the cols entries that im2col reads from each input element, added in
// the CPU's order (no atomics: the same result on every run).
void col2im(cudaStream_t stream, const Window2D& g, const float* cols, int64_t batch, float* dx);
// y = the maximum over each window's valid part, argmax the index in its image of the first
// maximum (row-major), as the CPU resolves ties.
void maxpool_forward(cudaStream_t stream, const Window2D& g, const float* x, int64_t batch,
                     float* y, int32_t* argmax);
// dx = the sum of the dy whose argmax is that element (argmax from maxpool_forward with
// the same geometry).
void maxpool_backward(cudaStream_t stream, const Window2D& g, const float* dy,
                      const int32_t* argmax, int64_t batch, float* dx);
// y = the mean over each window's valid part, and its adjoint.
void avgpool_forward(cudaStream_t stream, const Window2D& g, const float* x, int64_t batch,
                     float* y);
void avgpool_backward(cudaStream_t stream, const Window2D& g, const float* dy, int64_t batch,
                      float* dx);
// Resampling (resample_maths.h): one thread per output value, gathering its taps.
void resample(cudaStream_t stream, const Resample& r, const float* x, int64_t batch, float* y);
// Augmentation (augment_maths.h): one thread per output value, *seed read on the device.
void augment(cudaStream_t stream, const Augment& a, const uint64_t* seed, const float* x,
             const float* means, int64_t batch, float* y);

// y[r, k, :] = x[r, :] for k < size, and its adjoint (kernels.h's repeat_rows).
void repeat_rows(cudaStream_t stream, const float* x, int64_t rows, int64_t size, int64_t cols,
                 float* y);
void repeat_rows_backward(cudaStream_t stream, const float* dy, int64_t rows, int64_t size,
                          int64_t cols, float* dx);

}  // namespace cuda
}  // namespace deepcore
