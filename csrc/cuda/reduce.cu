// CUDA reductions and fills.
#include "common.cuh"
#include "kernels.cuh"

namespace deepcore {
namespace cuda {
namespace {

constexpr int kTileCols = 32, kTileRows = 8;

// One block per 32 columns: 8 threads per column stride the rows, each summing in double,
// then their 8 partial sums are added in a fixed order (no atomics: the same result on
// every run).
__global__ void col_sum_kernel(const float* __restrict__ x, int64_t rows, int64_t cols,
                               float* out) {
  __shared__ double part[kTileRows][kTileCols];
  const int64_t c = blockIdx.x * int64_t(kTileCols) + threadIdx.x;
  double s = 0.0;
  if (c < cols)
    for (int64_t r = threadIdx.y; r < rows; r += kTileRows) s += x[r * cols + c];
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    for (int i = 1; i < kTileRows; ++i) s += part[i][threadIdx.x];
    out[c] = static_cast<float>(s);
  }
}

__global__ void fill_kernel(float* dst, float value, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = value;
}

}  // namespace

void col_sum(cudaStream_t stream, const float* x, int64_t rows, int64_t cols, float* out) {
  if (cols == 0) return;
  const unsigned blocks = static_cast<unsigned>((cols + kTileCols - 1) / kTileCols);
  col_sum_kernel<<<blocks, dim3(kTileCols, kTileRows), 0, stream>>>(x, rows, cols, out);
  check_launch("col_sum");
}

void fill(cudaStream_t stream, float* dst, float value, int64_t n) {
  if (n <= 0) return;
  fill_kernel<<<blocks_for(n), kThreads, 0, stream>>>(dst, value, n);
  check_launch("fill");
}

}  // namespace cuda
}  // namespace deepcore
