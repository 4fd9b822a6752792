// CUDA activations: grid-stride loops around the per-element formulas of
// deepcore/elementwise.h (the CPU's), and a block per row for softmax.
#include <cfloat>
#include <stdexcept>

#include "common.cuh"
#include "deepcore/elementwise.h"
#include "kernels.cuh"

namespace deepcore {
namespace cuda {
namespace {

// Identity for Linear, Heaviside for Step, as CPU act_forward.
struct Identity {
  template <class T>
  __device__ static T f(T x, T) { return x; }
};

template <class Op>
__global__ void bias_act_kernel(const float* __restrict__ bias, float* z, float* y, int64_t n,
                                int64_t cols, float alpha) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    float v = z[i];
    if (bias) {
      v += bias[i % cols];
      if (z != y) z[i] = v;
    }
    y[i] = Op::f(v, alpha);
  }
}

template <class Op>
__global__ void act_backward_kernel(const float* __restrict__ x, const float* __restrict__ y,
                                    const float* dy, float* dx, int64_t n, float alpha) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = Op::df(x[i], y[i], dy[i], alpha);
}

// The sum (or max) of v over the block; every thread gets it. blockDim.x == kThreads.
template <bool Max>
__device__ float block_reduce(float v) {
  __shared__ float part[kThreads / 32];
  for (int o = 16; o > 0; o /= 2) {
    const float w = __shfl_xor_sync(0xffffffffu, v, o);
    v = Max ? fmaxf(v, w) : v + w;
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();  // part may still be read by a previous reduction
  if (lane == 0) part[warp] = v;
  __syncthreads();
  v = part[0];
  for (int w = 1; w < kThreads / 32; ++w) v = Max ? fmaxf(v, part[w]) : v + part[w];
  return v;
}

// y[r, :] = softmax(z[r, :] + bias) for each row r, one block per row.
__global__ void softmax_kernel(const float* __restrict__ bias, float* z, float* y, int64_t rows,
                               int64_t cols) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    float* zr = z + r * cols;
    float* yr = y + r * cols;
    float m = -FLT_MAX;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      float v = zr[c];
      if (bias) {
        v += bias[c];
        zr[c] = v;  // z += bias; y's row is written below, after every thread read z's
      }
      m = fmaxf(m, v);
    }
    m = block_reduce<true>(m);
    float s = 0.f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += expf(zr[c] - m);
    s = block_reduce<false>(s);
    const float inv = 1.f / s;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = expf(zr[c] - m) * inv;
  }
}

// dx[r, :] = y[r, :] * (dy[r, :] - <dy[r, :], y[r, :]>), one block per row.
__global__ void softmax_backward_kernel(const float* __restrict__ y, const float* dy, float* dx,
                                        int64_t rows, int64_t cols) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* yr = y + r * cols;
    const float* dyr = dy + r * cols;
    float* dxr = dx + r * cols;
    float dot = 0.f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dot += dyr[c] * yr[c];
    dot = block_reduce<false>(dot);
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dxr[c] = yr[c] * (dyr[c] - dot);
  }
}

unsigned row_blocks(int64_t rows) { return static_cast<unsigned>(rows < 65535 ? rows : 65535); }

}  // namespace

void bias_act(cudaStream_t stream, ActSpec act, const float* bias, float* z, float* y,
              int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  if (n == 0) return;
  const float alpha = static_cast<float>(act.alpha);
  auto launch = [&](auto op) {
    bias_act_kernel<decltype(op)><<<blocks_for(n), kThreads, 0, stream>>>(bias, z, y, n, cols,
                                                                         alpha);
  };
  switch (act.kind) {
    case Act::Softmax:
      softmax_kernel<<<row_blocks(rows), kThreads, 0, stream>>>(bias, z, y, rows, cols);
      break;
    case Act::Linear:
      if (!bias && z == y) return;
      launch(Identity{});
      break;
    case Act::Step:
      launch(ew::Step{});
      break;
    default:
      if (!ew::visit_elementwise(act.kind, launch)) throw std::invalid_argument("unknown activation");
  }
  check_launch("bias_act");
}

void act_backward(cudaStream_t stream, ActSpec act, const float* x, const float* y,
                  const float* dy, float* dx, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  const float alpha = static_cast<float>(act.alpha);
  switch (act.kind) {
    case Act::Linear:
      if (n && dx != dy)
        check(cudaMemcpyAsync(dx, dy, sizeof(float) * n, cudaMemcpyDeviceToDevice, stream),
              "cudaMemcpyAsync");
      return;
    case Act::Softmax:
      if (n) softmax_backward_kernel<<<row_blocks(rows), kThreads, 0, stream>>>(y, dy, dx, rows, cols);
      break;
    case Act::Step:
      throw std::invalid_argument(
          "activation 'step' has no gradient: use it for inference (Perceptron), not in a "
          "layer trained with backpropagation");
    default:
      if (!ew::visit_elementwise(act.kind, [&](auto op) {
            if (n)
              act_backward_kernel<decltype(op)>
                  <<<blocks_for(n), kThreads, 0, stream>>>(x, y, dy, dx, n, alpha);
          }))
        throw std::invalid_argument("unknown activation");
  }
  check_launch("act_backward");
}

}  // namespace cuda
}  // namespace deepcore
