// CUDA batch normalization: per-channel sums in double by one block per group of channels
// (a fixed tree over the block's row lanes: no atomics, the same result on every run),
// then grid-stride loops around the per-element formulas of deepcore/batchnorm_maths.h
// (the CPU's).
#include <cstdint>

#include "common.cuh"
#include "deepcore/batchnorm_maths.h"
#include "normalization.cuh"

namespace deepcore {
namespace cuda {
namespace {

// Threads of a per-channel reduction block: tc channels (threadIdx.x) x kReduce / tc row
// lanes (threadIdx.y), with tc the smallest power of two >= min(channels, 32).
constexpr int kReduce = 512;

int group_width(int64_t channels) {
  int tc = 1;
  while (tc < 32 && tc < channels) tc *= 2;
  return tc;
}

// The sum of v over the block's row lanes, for the thread's channel lane, added in a fixed
// tree order; every thread of the channel gets it. part: blockDim.x * blockDim.y doubles.
__device__ double lane_sum(double v, double* part) {
  const int tc = blockDim.x, at = threadIdx.y * tc + threadIdx.x;
  __syncthreads();  // part may still be read after a previous sum
  part[at] = v;
  __syncthreads();
  for (int s = blockDim.y / 2; s > 0; s /= 2) {
    if (threadIdx.y < s) part[at] += part[at + s * tc];
    __syncthreads();
  }
  return part[threadIdx.x];
}

// Training statistics of channels [blockIdx.x * tc, +tc): mean (sum / m) and biased variance
// (sum of squared deviations / m, a second pass), in double. Writes mean_out (scratch),
// inv_std and the moving statistics.
__global__ void __launch_bounds__(kReduce)
    batch_stats_kernel(const float* __restrict__ x, int64_t m, int64_t channels,
                       double momentum, double epsilon, float* __restrict__ moving_mean,
                       float* __restrict__ moving_var, float* __restrict__ inv_std,
                       double* __restrict__ mean_out) {
  __shared__ double part[kReduce];
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const bool active = c < channels;
  double s = 0.0;
  if (active)
    for (int64_t r = threadIdx.y; r < m; r += blockDim.y) s += x[r * channels + c];
  const double mean = lane_sum(s, part) / double(m);
  double q = 0.0;
  if (active)
    for (int64_t r = threadIdx.y; r < m; r += blockDim.y) {
      const double d = x[r * channels + c] - mean;
      q += d * d;
    }
  const double var = lane_sum(q, part) / double(m);
  if (active && threadIdx.y == 0) {
    mean_out[c] = mean;
    inv_std[c] = bn::inv_std(var, epsilon);
    moving_mean[c] = bn::moving_update(moving_mean[c], mean, momentum);
    moving_var[c] = bn::moving_update(moving_var[c], var, momentum);
  }
}

// Inference statistics: the moving ones (mean_out: scratch).
__global__ void moving_stats_kernel(const float* __restrict__ moving_mean,
                                    const float* __restrict__ moving_var, int64_t channels,
                                    double epsilon, float* __restrict__ inv_std,
                                    double* __restrict__ mean_out) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < channels;
       c += int64_t(gridDim.x) * blockDim.x) {
    mean_out[c] = moving_mean[c];
    inv_std[c] = bn::inv_std(moving_var[c], epsilon);
  }
}

// xhat = (x - mean) * inv_std, y = gamma * xhat + beta, element by element (y may be x).
template <class I>
__global__ void normalize_kernel(const float* x, I n, I channels, const double* __restrict__ mean,
                                 const float* __restrict__ inv_std,
                                 const float* __restrict__ gamma, const float* __restrict__ beta,
                                 float* __restrict__ xhat, float* y) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n;
       t += int64_t(gridDim.x) * blockDim.x) {
    const I i = static_cast<I>(t), c = i % channels;
    const float xh = bn::normalize(x[i], mean[c], inv_std[c]);
    xhat[i] = xh;
    y[i] = bn::scale_shift(xh, gamma ? gamma[c] : 1.f, beta ? beta[c] : 0.f);
  }
}

// Per channel, in double: sums[c] = sum(dy), sums[C + c] = sum(dy * xhat), and dx's factor
// sums[2C + c] = gamma * inv_std / m; dgamma and dbeta (when not null) as floats.
__global__ void __launch_bounds__(kReduce)
    grad_sums_kernel(const float* __restrict__ dy, const float* __restrict__ xhat, int64_t m,
                     int64_t channels, const float* __restrict__ gamma,
                     const float* __restrict__ inv_std, float* __restrict__ dgamma,
                     float* __restrict__ dbeta, double* __restrict__ sums) {
  __shared__ double part[kReduce];
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const bool active = c < channels;
  double s = 0.0, q = 0.0;
  if (active)
    for (int64_t r = threadIdx.y; r < m; r += blockDim.y) {
      const float d = dy[r * channels + c];
      s += d;
      q += double(d) * xhat[r * channels + c];
    }
  s = lane_sum(s, part);
  q = lane_sum(q, part);
  if (active && threadIdx.y == 0) {
    if (dgamma) dgamma[c] = static_cast<float>(q);
    if (dbeta) dbeta[c] = static_cast<float>(s);
    sums[c] = s;
    sums[channels + c] = q;
    sums[2 * channels + c] = bn::dx_factor(gamma ? gamma[c] : 1.f, inv_std[c], double(m));
  }
}

// dx = k * (m * dy - sum(dy) - xhat * sum(dy * xhat)) element by element (dx may be dy).
template <class I>
__global__ void grad_input_kernel(const float* dy, const float* __restrict__ xhat, I n,
                                  I channels, int64_t m, const double* __restrict__ sums,
                                  bool batch_stats, float* dx) {
  const double* sum_dy = sums;
  const double* sum_dy_xhat = sums + channels;
  const double* k = sums + 2 * int64_t(channels);
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n;
       t += int64_t(gridDim.x) * blockDim.x) {
    const I i = static_cast<I>(t), c = i % channels;
    dx[i] = bn::dx(dy[i], xhat[i], k[c], double(m), sum_dy[c], sum_dy_xhat[c], batch_stats);
  }
}

// Launches a per-channel reduction kernel: one block per group of tc channels.
template <class Kernel, class... Args>
void per_channel(cudaStream_t stream, int64_t channels, Kernel kernel, Args... args) {
  const int tc = group_width(channels);
  const unsigned blocks = static_cast<unsigned>((channels + tc - 1) / tc);
  kernel<<<blocks, dim3(tc, kReduce / tc), 0, stream>>>(args...);
}

}  // namespace

void batchnorm_forward(cudaStream_t stream, const BatchNormSpec& b, const float* x, float* y,
                       int64_t m, const float* gamma, const float* beta, float* moving_mean,
                       float* moving_var, bool training, float* xhat, float* inv_std,
                       double* scratch) {
  const int64_t channels = b.channels, n = m * channels;
  if (n <= 0) return;
  if (training)
    per_channel(stream, channels, batch_stats_kernel, x, m, channels, b.momentum, b.epsilon,
                moving_mean, moving_var, inv_std, scratch);
  else
    moving_stats_kernel<<<blocks_for(channels), kThreads, 0, stream>>>(
        moving_mean, moving_var, channels, b.epsilon, inv_std, scratch);
  check_launch("batchnorm_forward (statistics)");
  if (n <= INT32_MAX)
    normalize_kernel<int32_t><<<blocks_for(n), kThreads, 0, stream>>>(
        x, static_cast<int32_t>(n), static_cast<int32_t>(channels), scratch, inv_std, gamma,
        beta, xhat, y);
  else
    normalize_kernel<int64_t><<<blocks_for(n), kThreads, 0, stream>>>(
        x, n, channels, scratch, inv_std, gamma, beta, xhat, y);
  check_launch("batchnorm_forward");
}

void batchnorm_backward(cudaStream_t stream, const BatchNormSpec& b, const float* dy, float* dx,
                        int64_t m, const float* gamma, const float* xhat, const float* inv_std,
                        float* dgamma, float* dbeta, double* scratch) {
  const int64_t channels = b.channels, n = m * channels;
  if (n <= 0) return;
  per_channel(stream, channels, grad_sums_kernel, dy, xhat, m, channels, gamma, inv_std, dgamma,
              dbeta, scratch);
  check_launch("batchnorm_backward (sums)");
  if (!dx) return;
  if (n <= INT32_MAX)
    grad_input_kernel<int32_t><<<blocks_for(n), kThreads, 0, stream>>>(
        dy, xhat, static_cast<int32_t>(n), static_cast<int32_t>(channels), m, scratch,
        b.batch_stats, dx);
  else
    grad_input_kernel<int64_t><<<blocks_for(n), kThreads, 0, stream>>>(
        dy, xhat, n, channels, m, scratch, b.batch_stats, dx);
  check_launch("batchnorm_backward");
}

}  // namespace cuda
}  // namespace deepcore
