// CUDA step kernels of SimpleRNN, LSTM and GRU: grid-stride loops over the batch x units
// elements of one step, each calling the per-element maths the CPU kernels call
// (deepcore/recurrent_maths.h): the same values, no sums across threads.
#include "common.cuh"
#include "deepcore/recurrent_maths.h"
#include "recurrent.cuh"

namespace deepcore {
namespace cuda {
namespace {

// p's row b (rows ld apart), or null for null.
template <class T>
__device__ T* row(T* p, int64_t b, int64_t ld) {
  return p ? p + b * ld : nullptr;
}

// h = act(z + hr), element e = (b, u).
__global__ void rnn_forward_kernel(RnnStep s, const float* z, const float* hr, float* h) {
  const int64_t n = s.batch * s.units;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = e / s.units, u = e - b * s.units;
    rnn_cell_forward(s.act, z + b * s.zld, row(hr, b, s.units), h + b * s.hld, u);
  }
}

// dz into z, dh = 0.
__global__ void rnn_backward_kernel(RnnStep s, float* z, const float* h, const float* dy,
                                    float* dh) {
  const int64_t n = s.batch * s.units;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = e / s.units, u = e - b * s.units;
    rnn_cell_backward(s.act, z + b * s.zld, h + b * s.hld, row(dy, b, s.hld), dh + b * s.units,
                      u);
  }
}

// The LSTM gates, c and h.
__global__ void lstm_forward_kernel(RnnStep s, float* z, const float* hr, const float* c_prev,
                                    float* c, float* h) {
  const int64_t n = s.batch * s.units;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = e / s.units, u = e - b * s.units;
    lstm_cell_forward(s.act, s.rec, s.units, z + b * s.zld, row(hr, b, 4 * s.units),
                      row(c_prev, b, s.ld), c + b * s.ld, h + b * s.hld, u);
  }
}

// The LSTM gates' gradients into z, the carries dh and dc.
__global__ void lstm_backward_kernel(RnnStep s, float* z, const float* c_prev, const float* c,
                                     const float* dy, float* dh, float* dc) {
  const int64_t n = s.batch * s.units;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = e / s.units, u = e - b * s.units;
    lstm_cell_backward(s.act, s.rec, s.units, z + b * s.zld, row(c_prev, b, s.ld), c + b * s.ld,
                       row(dy, b, s.hld), dh + b * s.units, dc + b * s.units, u);
  }
}

// The GRU gates, rh and h.
__global__ void gru_forward_kernel(RnnStep s, float* z, const float* hr, const float* rbias,
                                   const float* h_prev, float* rh, float* h) {
  const int64_t n = s.batch * s.units;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = e / s.units, u = e - b * s.units;
    gru_cell_forward(s.act, s.rec, s.units, z + b * s.zld, row(hr, b, 3 * s.units), rbias,
                     row(h_prev, b, s.ld), rh + b * s.ld, h + b * s.hld, u);
  }
}

// The GRU gradients into z and dr, the carry dh.
__global__ void gru_backward_kernel(RnnStep s, float* z, float* dr, const float* rh,
                                    const float* h_prev, const float* dy, float* dh) {
  const int64_t n = s.batch * s.units;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = e / s.units, u = e - b * s.units;
    gru_cell_backward(s.act, s.rec, s.units, z + b * s.zld, dr + b * s.zld, rh + b * s.ld,
                      row(h_prev, b, s.ld), row(dy, b, s.hld), dh + b * s.units, u);
  }
}

// Bidirectional's merge, element e = (position, j).
__global__ void bidir_merge_kernel(BidirMerge m, const float* a, const float* b, float* y) {
  const int64_t w = m.width(), n = m.rows * m.steps * w;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x)
    bidir_merge_elem(m, a, b, y, e / w, e % w);
}

// Its gradients, element e = (position, j) of dy.
__global__ void bidir_merge_backward_kernel(BidirMerge m, const float* a, const float* b,
                                            const float* dy, float* da, float* db) {
  const int64_t w = m.width(), n = m.rows * m.steps * w;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x)
    bidir_merge_grad_elem(m, a, b, dy, da, db, e / w, e % w);
}

}  // namespace

void rnn_step_forward(cudaStream_t stream, const RnnStep& s, const float* z, const float* hr,
                      float* h) {
  rnn_forward_kernel<<<blocks_for(s.batch * s.units), kThreads, 0, stream>>>(s, z, hr, h);
  check_launch("rnn_step_forward");
}

void rnn_step_backward(cudaStream_t stream, const RnnStep& s, float* z, const float* h,
                       const float* dy, float* dh) {
  rnn_backward_kernel<<<blocks_for(s.batch * s.units), kThreads, 0, stream>>>(s, z, h, dy, dh);
  check_launch("rnn_step_backward");
}

void lstm_step_forward(cudaStream_t stream, const RnnStep& s, float* z, const float* hr,
                       const float* c_prev, float* c, float* h) {
  lstm_forward_kernel<<<blocks_for(s.batch * s.units), kThreads, 0, stream>>>(s, z, hr, c_prev,
                                                                                c, h);
  check_launch("lstm_step_forward");
}

void lstm_step_backward(cudaStream_t stream, const RnnStep& s, float* z, const float* c_prev,
                        const float* c, const float* dy, float* dh, float* dc) {
  lstm_backward_kernel<<<blocks_for(s.batch * s.units), kThreads, 0, stream>>>(s, z, c_prev, c,
                                                                                 dy, dh, dc);
  check_launch("lstm_step_backward");
}

void gru_step_forward(cudaStream_t stream, const RnnStep& s, float* z, const float* hr,
                      const float* rbias, const float* h_prev, float* rh, float* h) {
  gru_forward_kernel<<<blocks_for(s.batch * s.units), kThreads, 0, stream>>>(s, z, hr, rbias,
                                                                               h_prev, rh, h);
  check_launch("gru_step_forward");
}

void gru_step_backward(cudaStream_t stream, const RnnStep& s, float* z, float* dr,
                       const float* rh, const float* h_prev, const float* dy, float* dh) {
  gru_backward_kernel<<<blocks_for(s.batch * s.units), kThreads, 0, stream>>>(s, z, dr, rh,
                                                                                h_prev, dy, dh);
  check_launch("gru_step_backward");
}

void bidir_merge(cudaStream_t stream, const BidirMerge& m, const float* a, const float* b,
                 float* y) {
  bidir_merge_kernel<<<blocks_for(m.rows * m.steps * m.width()), kThreads, 0, stream>>>(m, a, b,
                                                                                        y);
  check_launch("bidir_merge");
}

void bidir_merge_backward(cudaStream_t stream, const BidirMerge& m, const float* a,
                          const float* b, const float* dy, float* da, float* db) {
  bidir_merge_backward_kernel<<<blocks_for(m.rows * m.steps * m.width()), kThreads, 0,
                                stream>>>(m, a, b, dy, da, db);
  check_launch("bidir_merge_backward");
}

}  // namespace cuda
}  // namespace deepcore
