// CUDA kernels of Keras' merge layers: grid-stride loops over the elements, each calling the
// per-element maths the CPU calls (deepcore/merge_maths.h). The inputs' pointers travel in
// the kernels' arguments.
#include "common.cuh"
#include "deepcore/merge_maths.h"
#include "merge.cuh"

namespace deepcore {
namespace cuda {
namespace {

__global__ void merge_kernel(MergeOp op, MergeInputs in, float* y, int64_t n) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x)
    y[e] = merge_value(op, in, e);
}

__global__ void merge_backward_kernel(MergeOp op, MergeInputs in, const float* y,
                                      const float* dy, MergeGrads dx, int64_t n) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x)
    for (int k = 0; k < dx.count; ++k)
      if (dx.dx[k]) dx.dx[k][e] = merge_grad(op, in, k, e, y[e], dy[e]);
}

// One thread per group of (outer, inner), along n.
__global__ void l2_normalize_kernel(const float* x, const float* dy, float* y, int64_t outer,
                                    int64_t n, int64_t inner) {
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < outer * inner;
       g += int64_t(gridDim.x) * blockDim.x) {
    const int64_t at = (g / inner) * n * inner + g % inner;
    if (dy)
      l2_normalize_group_backward(x + at, dy + at, y + at, n, inner);
    else
      l2_normalize_group(x + at, y + at, n, inner);
  }
}

}  // namespace

void l2_normalize(cudaStream_t stream, const float* x, float* y, int64_t outer, int64_t n,
                  int64_t inner) {
  if (outer * inner <= 0) return;
  l2_normalize_kernel<<<blocks_for(outer * inner), kThreads, 0, stream>>>(x, nullptr, y, outer,
                                                                          n, inner);
  check_launch("l2_normalize");
}

void l2_normalize_backward(cudaStream_t stream, const float* x, const float* dy, float* dx,
                           int64_t outer, int64_t n, int64_t inner) {
  if (outer * inner <= 0) return;
  l2_normalize_kernel<<<blocks_for(outer * inner), kThreads, 0, stream>>>(x, dy, dx, outer, n,
                                                                          inner);
  check_launch("l2_normalize_backward");
}

void merge_forward(cudaStream_t stream, MergeOp op, const MergeInputs& in, float* y, int64_t n) {
  if (n <= 0) return;
  merge_kernel<<<blocks_for(n), kThreads, 0, stream>>>(op, in, y, n);
  check_launch("merge_forward");
}

void merge_backward(cudaStream_t stream, MergeOp op, const MergeInputs& in, const float* y,
                    const float* dy, const MergeGrads& dx, int64_t n) {
  if (n <= 0) return;
  merge_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(op, in, y, dy, dx, n);
  check_launch("merge_backward");
}

}  // namespace cuda
}  // namespace deepcore
