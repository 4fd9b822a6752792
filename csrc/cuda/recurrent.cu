// CUDA step kernels of SimpleRNN, LSTM and GRU: grid-stride loops over the batch x units
// elements of one step, each calling the per-element maths the CPU kernels call
// (deepcore/recurrent_maths.h): the same values, no sums across threads.
#include "common.cuh"
#include "deepcore/recurrent_maths.h"
#include "recurrent.cuh"

namespace deepcore {
namespace cuda {
namespace {

// p[i], or 0 for a buffer not given (p null).
__device__ float at(const float* p, int64_t i) { return p ? p[i] : 0.f; }

// Whether sample b is masked at this step (its mask value 0).
__device__ bool masked(const RnnStep& s, const float* mask, int64_t b) {
  return mask && mask[b * s.mld] == 0.f;
}

// Element e = (b, u) of a step's batch x units: each kernel below is a grid-stride loop over
// them. A masked sample keeps its states in forward and carries dh + dy in backward.
#define DC_CELL_LOOP(s)                                                                  \
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < (s).batch * (s).units; \
       e += int64_t(gridDim.x) * blockDim.x)

// h = act(z + hr).
__global__ void rnn_forward_kernel(RnnStep s, const float* z, const float* hr,
                                   const float* h_prev, const float* mask, float* h) {
  DC_CELL_LOOP(s) {
    const int64_t b = e / s.units, u = e - b * s.units;
    h[b * s.hld + u] = masked(s, mask, b)
                           ? at(h_prev, b * s.ld + u)
                           : rnn_cell(s.act, z[b * s.zld + u] + at(hr, b * s.units + u));
  }
}

// dz = (dy + dh) act'(h) into z, dh = 0.
__global__ void rnn_backward_kernel(RnnStep s, float* z, const float* h, const float* dy,
                                    const float* mask, float* dh) {
  DC_CELL_LOOP(s) {
    const int64_t b = e / s.units, u = e - b * s.units;
    float& d = dh[b * s.units + u];
    const float g = d + at(dy, b * s.hld + u);
    const bool m = masked(s, mask, b);
    z[b * s.zld + u] = m ? 0.f : rnn_cell_grad(s.act, h[b * s.hld + u], g);
    d = m ? g : 0.f;
  }
}

// The LSTM gates (in place of their pre-activations in z), c and h.
__global__ void lstm_forward_kernel(RnnStep s, float* z, const float* hr, const float* h_prev,
                                    const float* c_prev, const float* mask, float* c, float* h) {
  const int64_t U = s.units;
  DC_CELL_LOOP(s) {
    const int64_t b = e / U, u = e - b * U;
    const float cp = at(c_prev, b * s.ld + u);
    if (masked(s, mask, b)) {
      c[b * s.ld + u] = cp;
      h[b * s.hld + u] = at(h_prev, b * s.ld + u);
      continue;
    }
    float* zb = z + b * s.zld + u;
    const float* hb = hr ? hr + b * 4 * U + u : nullptr;
    const LstmCell r = lstm_cell(s.act, s.rec, zb[0] + at(hb, 0), zb[U] + at(hb, U),
                                 zb[2 * U] + at(hb, 2 * U), zb[3 * U] + at(hb, 3 * U), cp);
    zb[0] = r.i;
    zb[U] = r.f;
    zb[2 * U] = r.g;
    zb[3 * U] = r.o;
    c[b * s.ld + u] = r.c;
    h[b * s.hld + u] = r.h;
  }
}

// The LSTM gates' gradients into z, the carries dh (then 0) and dc.
__global__ void lstm_backward_kernel(RnnStep s, float* z, const float* c_prev, const float* c,
                                     const float* dy, const float* mask, float* dh, float* dc) {
  const int64_t U = s.units;
  DC_CELL_LOOP(s) {
    const int64_t b = e / U, u = e - b * U;
    float* zb = z + b * s.zld + u;
    float &dhe = dh[b * U + u], &dce = dc[b * U + u];
    const float gh = dhe + at(dy, b * s.hld + u);
    if (masked(s, mask, b)) {
      zb[0] = zb[U] = zb[2 * U] = zb[3 * U] = 0.f;
      dhe = gh;
      continue;
    }
    const LstmGrad d = lstm_cell_grad(s.act, s.rec, zb[0], zb[U], zb[2 * U], zb[3 * U],
                                      at(c_prev, b * s.ld + u), c[b * s.ld + u], gh, dce);
    zb[0] = d.i;
    zb[U] = d.f;
    zb[2 * U] = d.g;
    zb[3 * U] = d.o;
    dce = d.c_prev;
    dhe = 0.f;
  }
}

// The GRU gates (in place of x W + b_in in z), rh and h.
__global__ void gru_forward_kernel(RnnStep s, float* z, const float* hr, const float* rbias,
                                   const float* h_prev, const float* mask, float* rh, float* h) {
  const int64_t U = s.units;
  DC_CELL_LOOP(s) {
    const int64_t b = e / U, u = e - b * U;
    const float hp = at(h_prev, b * s.ld + u);
    if (masked(s, mask, b)) {
      h[b * s.hld + u] = hp;
      rh[b * s.ld + u] = 0.f;  // unread; written so that every output is defined
      continue;
    }
    float* zb = z + b * s.zld + u;
    const float* hb = hr ? hr + b * 3 * U + u : nullptr;
    const float* rb = rbias ? rbias + u : nullptr;
    const float rc = at(hb, 2 * U) + at(rb, 2 * U);
    const GruCell r = gru_cell(s.act, s.rec, zb[0], zb[U], zb[2 * U], at(hb, 0) + at(rb, 0),
                               at(hb, U) + at(rb, U), rc, hp);
    zb[0] = r.z;
    zb[U] = r.r;
    zb[2 * U] = r.hh;
    rh[b * s.ld + u] = rc;
    h[b * s.hld + u] = r.h;
  }
}

// The GRU gradients into z and dr, the carry dh.
__global__ void gru_backward_kernel(RnnStep s, float* z, float* dr, const float* rh,
                                    const float* h_prev, const float* dy, const float* mask,
                                    float* dh) {
  const int64_t U = s.units;
  DC_CELL_LOOP(s) {
    const int64_t b = e / U, u = e - b * U;
    float *zb = z + b * s.zld + u, *drb = dr + b * s.zld + u;
    float& dhe = dh[b * U + u];
    const float g = dhe + at(dy, b * s.hld + u);
    if (masked(s, mask, b)) {
      zb[0] = zb[U] = zb[2 * U] = 0.f;
      drb[0] = drb[U] = drb[2 * U] = 0.f;
      dhe = g;
      continue;
    }
    const GruGrad d = gru_cell_grad(s.act, s.rec, zb[0], zb[U], zb[2 * U], rh[b * s.ld + u],
                                    at(h_prev, b * s.ld + u), g);
    zb[0] = d.z;
    zb[U] = d.r;
    zb[2 * U] = d.h;
    drb[0] = d.z;
    drb[U] = d.r;
    drb[2 * U] = d.rh;
    dhe = d.h_prev;
  }
}

#undef DC_CELL_LOOP

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
                      const float* h_prev, const float* mask, float* h) {
  rnn_forward_kernel<<<blocks_for(s.batch * s.units), kThreads, 0, stream>>>(s, z, hr, h_prev,
                                                                               mask, h);
  check_launch("rnn_step_forward");
}

void rnn_step_backward(cudaStream_t stream, const RnnStep& s, float* z, const float* h,
                       const float* dy, const float* mask, float* dh) {
  rnn_backward_kernel<<<blocks_for(s.batch * s.units), kThreads, 0, stream>>>(s, z, h, dy, mask,
                                                                                dh);
  check_launch("rnn_step_backward");
}

void lstm_step_forward(cudaStream_t stream, const RnnStep& s, float* z, const float* hr,
                       const float* h_prev, const float* c_prev, const float* mask, float* c,
                       float* h) {
  lstm_forward_kernel<<<blocks_for(s.batch * s.units), kThreads, 0, stream>>>(
      s, z, hr, h_prev, c_prev, mask, c, h);
  check_launch("lstm_step_forward");
}

void lstm_step_backward(cudaStream_t stream, const RnnStep& s, float* z, const float* c_prev,
                        const float* c, const float* dy, const float* mask, float* dh,
                        float* dc) {
  lstm_backward_kernel<<<blocks_for(s.batch * s.units), kThreads, 0, stream>>>(
      s, z, c_prev, c, dy, mask, dh, dc);
  check_launch("lstm_step_backward");
}

void gru_step_forward(cudaStream_t stream, const RnnStep& s, float* z, const float* hr,
                      const float* rbias, const float* h_prev, const float* mask, float* rh,
                      float* h) {
  gru_forward_kernel<<<blocks_for(s.batch * s.units), kThreads, 0, stream>>>(
      s, z, hr, rbias, h_prev, mask, rh, h);
  check_launch("gru_step_forward");
}

void gru_step_backward(cudaStream_t stream, const RnnStep& s, float* z, float* dr,
                       const float* rh, const float* h_prev, const float* dy, const float* mask,
                       float* dh) {
  gru_backward_kernel<<<blocks_for(s.batch * s.units), kThreads, 0, stream>>>(
      s, z, dr, rh, h_prev, dy, mask, dh);
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
