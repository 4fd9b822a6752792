// The CUDA backend's own kernels (launchers), one file per family like csrc/cpu.
// Every launcher runs on `stream` and returns without synchronizing.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "deepcore/kernels.h"

namespace deepcore {
namespace cuda {

// activations.cu: z += bias (per column, bias may be null); y = act(z). y may alias z.
void bias_act(cudaStream_t stream, ActSpec act, const float* bias, float* z, float* y,
              int64_t rows, int64_t cols);
// dx = dL/dx from x, y = act(x), dy. dx may alias dy. Throws for Step.
void act_backward(cudaStream_t stream, ActSpec act, const float* x, const float* y,
                  const float* dy, float* dx, int64_t rows, int64_t cols);

// reduce.cu: out[c] = sum_r x[r, c] (accumulated in double, in a fixed order).
void col_sum(cudaStream_t stream, const float* x, int64_t rows, int64_t cols, float* out);
// dst[i] = value for i < n.
void fill(cudaStream_t stream, float* dst, float value, int64_t n);

}  // namespace cuda
}  // namespace deepcore
