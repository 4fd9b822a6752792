// CUDA kernels of Keras' sequence masks: grid-stride loops over positions or elements, each
// calling the per-element maths the CPU calls (deepcore/mask_maths.h).
#include "common.cuh"
#include "deepcore/mask_maths.h"
#include "masking.cuh"

namespace deepcore {
namespace cuda {
namespace {

__global__ void sequence_mask_kernel(const float* x, int64_t positions, int64_t width,
                                     float value, float* mask) {
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < positions;
       p += int64_t(gridDim.x) * blockDim.x)
    mask[p] = mask_of(x + p * width, width, value);
}

// Element e = (r, j).
__global__ void mask_rows_kernel(const float* x, int64_t xld, const float* mask, int64_t mld,
                                 int64_t rows, int64_t width, float* y, int64_t yld) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < rows * width;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = e / width, j = e - r * width;
    y[r * yld + j] = mask_select(mask ? mask[r * mld] : 1.f, x[r * xld + j]);
  }
}

// Element e = (b, j) of y.
__global__ void masked_mean_kernel(const float* x, const float* mask, int64_t rows,
                                   int64_t steps, int64_t width, float* y) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < rows * width;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = e / width, j = e - b * width;
    y[e] = masked_mean(x + b * steps * width, mask + b * steps, steps, width, j);
  }
}

// Feature e = (b, j): its gradient at every step (the kept steps' count once per feature).
__global__ void masked_mean_backward_kernel(const float* dy, const float* mask, int64_t rows,
                                            int64_t steps, int64_t width, float* dx) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < rows * width;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = e / width, j = e - b * width;
    const float* m = mask + b * steps;
    const float g = dy[e] / mask_count(m, steps);
    for (int64_t t = 0; t < steps; ++t) dx[(b * steps + t) * width + j] = mask_select(m[t], g);
  }
}

// One block: the unmasked positions counted by its threads (a shared-memory tree sum of
// whole numbers, exact in float below 2^24), then every position's two weights.
__global__ void mask_weights_kernel(const float* mask, const float* w, int64_t rows,
                                    int64_t steps, float* mw, float* lw) {
  __shared__ float part[kThreads];
  const int64_t n = rows * steps;
  float c = 0.f;
  for (int64_t p = threadIdx.x; p < n; p += blockDim.x) c += mask[p] != 0.f ? 1.f : 0.f;
  part[threadIdx.x] = c;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  const float scale = mask_loss_scale(n, part[0]);
  for (int64_t p = threadIdx.x; p < n; p += blockDim.x) {
    mw[p] = mask_metric_weight(mask[p], w, p / steps);
    lw[p] = mw[p] * scale;
  }
}

}  // namespace

void mask_weights(cudaStream_t stream, const float* mask, const float* w, int64_t rows,
                  int64_t steps, float* mw, float* lw) {
  if (rows <= 0 || steps <= 0) return;
  mask_weights_kernel<<<1, kThreads, 0, stream>>>(mask, w, rows, steps, mw, lw);
  check_launch("mask_weights");
}

void sequence_mask(cudaStream_t stream, const float* x, int64_t positions, int64_t width,
                   float value, float* mask) {
  if (positions <= 0) return;
  sequence_mask_kernel<<<blocks_for(positions), kThreads, 0, stream>>>(x, positions, width,
                                                                        value, mask);
  check_launch("sequence_mask");
}

void mask_rows(cudaStream_t stream, const float* x, int64_t xld, const float* mask, int64_t mld,
               int64_t rows, int64_t width, float* y, int64_t yld) {
  if (rows <= 0 || width <= 0) return;
  mask_rows_kernel<<<blocks_for(rows * width), kThreads, 0, stream>>>(x, xld, mask, mld, rows,
                                                                       width, y, yld);
  check_launch("mask_rows");
}

void masked_mean_steps(cudaStream_t stream, const float* x, const float* mask, int64_t rows,
                       int64_t steps, int64_t width, float* y) {
  if (rows <= 0 || width <= 0) return;
  masked_mean_kernel<<<blocks_for(rows * width), kThreads, 0, stream>>>(x, mask, rows, steps,
                                                                         width, y);
  check_launch("masked_mean_steps");
}

void masked_mean_steps_backward(cudaStream_t stream, const float* dy, const float* mask,
                                int64_t rows, int64_t steps, int64_t width, float* dx) {
  if (rows <= 0 || steps <= 0 || width <= 0) return;
  masked_mean_backward_kernel<<<blocks_for(rows * width), kThreads, 0, stream>>>(
      dy, mask, rows, steps, width, dx);
  check_launch("masked_mean_steps_backward");
}

}  // namespace cuda
}  // namespace deepcore
