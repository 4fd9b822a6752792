// The CUDA Embedding kernels (embedding.cu). The launchers run on `stream` and return without
// synchronizing.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "losses.cuh"

namespace deepcore {
namespace cuda {

// out[i, :] = table[idx[i], :] (kernels.h). A kernel cannot throw: the first invalid index
// (not an integer in [0, input_dim)) is recorded in *error (value, and input_dim as
// `classes`), its output row written as zeros, and the backend throws at its next copy.
void embedding_forward(cudaStream_t stream, const float* table, const float* idx, int64_t n,
                       int64_t dim, int64_t input_dim, float* out, LabelError* error);

// The whole table gradient dtable (input_dim x dim), in the CPU's order: one thread per
// column of a block of table rows zeroes its values, then walks the positions in order and
// adds those whose index falls in its rows (the same float sums as the CPU: same bits). Each
// thread reads every index: the work grows with n times the number of row blocks.
void embedding_backward(cudaStream_t stream, const float* idx, const float* dy, int64_t n,
                        int64_t dim, int64_t input_dim, float* dtable);

}  // namespace cuda
}  // namespace deepcore
