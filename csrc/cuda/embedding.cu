// CUDA Embedding kernels: the gather of table rows and its deterministic gradient (no
// atomics on floats), around the index test of deepcore/embedding_maths.h (the CPU's).
#include "common.cuh"
#include "deepcore/embedding_maths.h"
#include "embedding.cuh"

namespace deepcore {
namespace cuda {
namespace {

// out[e] for e = i * dim + c is table[idx[i] * dim + c], or 0 for an invalid index (which
// the thread of column 0 records).
__global__ void embedding_forward_kernel(const float* __restrict__ table,
                                         const float* __restrict__ idx, int64_t n, int64_t dim,
                                         int64_t input_dim, float* __restrict__ out,
                                         LabelError* error) {
  const int64_t total = n * dim;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e / dim, c = e - i * dim;
    const float v = idx[i];
    if (valid_embedding_index(v, input_dim)) {
      out[e] = table[static_cast<int64_t>(v) * dim + c];
    } else {
      out[e] = 0.f;
      if (c == 0 && atomicCAS(&error->set, 0u, 1u) == 0u) {
        error->value = v;
        error->classes = input_dim;
      }
    }
  }
}

// Thread t owns column c = t % dim of table rows [b * rows_per, (b + 1) * rows_per) with
// b = t / dim: it zeroes them, then adds dy[i, c] for i = 0, 1, ..., n - 1 in order into the
// row idx[i] names when that row is its own (consecutive threads: consecutive columns).
__global__ void embedding_backward_kernel(const float* __restrict__ idx,
                                          const float* __restrict__ dy, int64_t n, int64_t dim,
                                          int64_t input_dim, int64_t rows_per,
                                          float* __restrict__ dtable) {
  const int64_t blocks = (input_dim + rows_per - 1) / rows_per, threads = blocks * dim;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < threads;
       t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = t / dim, c = t - b * dim;
    const int64_t r0 = b * rows_per, r1 = r0 + rows_per < input_dim ? r0 + rows_per : input_dim;
    for (int64_t r = r0; r < r1; ++r) dtable[r * dim + c] = 0.f;
    const double lo = static_cast<double>(r0), hi = static_cast<double>(r1);
    for (int64_t i = 0; i < n; ++i) {
      const double v = idx[i];
      if (v >= lo && v < hi && valid_embedding_index(v, input_dim))
        dtable[static_cast<int64_t>(v) * dim + c] += dy[i * dim + c];
    }
  }
}

}  // namespace

void embedding_forward(cudaStream_t stream, const float* table, const float* idx, int64_t n,
                       int64_t dim, int64_t input_dim, float* out, LabelError* error) {
  if (n <= 0 || dim <= 0) return;
  embedding_forward_kernel<<<blocks_for(n * dim), kThreads, 0, stream>>>(table, idx, n, dim,
                                                                         input_dim, out, error);
  check_launch("embedding_forward");
}

void embedding_backward(cudaStream_t stream, const float* idx, const float* dy, int64_t n,
                        int64_t dim, int64_t input_dim, float* dtable) {
  if (dim <= 0 || input_dim <= 0) return;
  // About 16K threads (or one per table value when the table is smaller).
  constexpr int64_t kTargetThreads = int64_t(1) << 14;
  int64_t blocks = (kTargetThreads + dim - 1) / dim;
  if (blocks > input_dim) blocks = input_dim;
  const int64_t rows_per = (input_dim + blocks - 1) / blocks;
  const int64_t threads = (input_dim + rows_per - 1) / rows_per * dim;
  embedding_backward_kernel<<<blocks_for(threads), kThreads, 0, stream>>>(idx, dy, n, dim,
                                                                          input_dim, rows_per,
                                                                          dtable);
  check_launch("embedding_backward");
}

}  // namespace cuda
}  // namespace deepcore
