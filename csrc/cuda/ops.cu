// CUDA kernels of deepcore.ops: grid-stride loops over elements (unary, binary) or outputs
// (reductions), each calling the per-element maths the CPU calls (deepcore/op_maths.h).
#include "common.cuh"
#include "deepcore/op_maths.h"
#include "ops.cuh"

namespace deepcore {
namespace cuda {
namespace {

#define DC_GRID_LOOP(i, n)                                                      \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x)

__global__ void unary_kernel(UnaryOp op, float p0, float p1, const float* x, const float* y,
                             const float* dy, float* out, int64_t n) {
  DC_GRID_LOOP(e, n) {
    out[e] = dy ? unary_grad(op, x[e], y[e], dy[e], p0, p1) : unary_value(op, x[e], p0, p1);
  }
}

__global__ void binary_kernel(BinaryOp op, Strided s, const float* a, const float* b, float* y) {
  DC_GRID_LOOP(e, s.size()) {
    int64_t oa, ob;
    s.offsets(e, &oa, &ob);
    y[e] = binary_value(op, a[oa], b[ob]);
  }
}

__global__ void binary_backward_kernel(BinaryOp op, Strided s, const float* a, const float* b,
                                       const float* y, const float* dy, float* da, float* db) {
  DC_GRID_LOOP(e, s.size()) {
    int64_t oa, ob;
    s.offsets(e, &oa, &ob);
    if (da) da[e] = binary_grad(op, true, a[oa], b[ob], y[e], dy[e]);
    if (db) db[e] = binary_grad(op, false, a[oa], b[ob], y[e], dy[e]);
  }
}

__global__ void chain_kernel(Chain c, const float* a, const float* b, const float* dy, float* y,
                             float* db) {
  DC_GRID_LOOP(e, c.s.size()) {
    int64_t oa, ob;
    c.s.offsets(e, &oa, &ob);
    if (!dy) {
      y[e] = chain_value(c, a[oa], b[ob]);
      continue;
    }
    float ga, gb;
    chain_grad(c, a[oa], b[ob], dy[e], &ga, &gb);
    if (y) y[e] = ga;  // (the backward pass: y is da)
    if (db) db[e] = gb;
  }
}

__global__ void reduce_kernel(ReduceOp op, Reduction r, const float* x, const float* y,
                              const float* dy, float* out) {
  DC_GRID_LOOP(o, r.outputs()) {
    if (dy)
      reduce_grad(op, r, x, y[o], dy[o], o, out);
    else
      out[o] = reduce_value(op, r, x, o);
  }
}

}  // namespace

void unary(cudaStream_t stream, UnaryOp op, float p0, float p1, const float* x, float* y,
           int64_t n) {
  if (n <= 0) return;
  unary_kernel<<<blocks_for(n), kThreads, 0, stream>>>(op, p0, p1, x, nullptr, nullptr, y, n);
  check_launch("unary");
}

void unary_backward(cudaStream_t stream, UnaryOp op, float p0, float p1, const float* x,
                    const float* y, const float* dy, float* dx, int64_t n) {
  if (n <= 0) return;
  unary_kernel<<<blocks_for(n), kThreads, 0, stream>>>(op, p0, p1, x, y, dy, dx, n);
  check_launch("unary_backward");
}

void binary(cudaStream_t stream, BinaryOp op, const Strided& s, const float* a, const float* b,
            float* y) {
  if (s.size() <= 0) return;
  binary_kernel<<<blocks_for(s.size()), kThreads, 0, stream>>>(op, s, a, b, y);
  check_launch("binary");
}

void binary_backward(cudaStream_t stream, BinaryOp op, const Strided& s, const float* a,
                     const float* b, const float* y, const float* dy, float* da, float* db) {
  if (s.size() <= 0) return;
  binary_backward_kernel<<<blocks_for(s.size()), kThreads, 0, stream>>>(op, s, a, b, y, dy, da,
                                                                        db);
  check_launch("binary_backward");
}

void chain(cudaStream_t stream, const Chain& c, const float* a, const float* b, float* y) {
  if (c.s.size() <= 0) return;
  chain_kernel<<<blocks_for(c.s.size()), kThreads, 0, stream>>>(c, a, b, nullptr, y, nullptr);
  check_launch("chain");
}

void chain_backward(cudaStream_t stream, const Chain& c, const float* a, const float* b,
                    const float* dy, float* da, float* db) {
  if (c.s.size() <= 0) return;
  chain_kernel<<<blocks_for(c.s.size()), kThreads, 0, stream>>>(c, a, b, dy, da, db);
  check_launch("chain_backward");
}

void reduce(cudaStream_t stream, ReduceOp op, const Reduction& r, const float* x, float* y) {
  if (r.outputs() <= 0) return;
  reduce_kernel<<<blocks_for(r.outputs()), kThreads, 0, stream>>>(op, r, x, nullptr, nullptr, y);
  check_launch("reduce");
}

void reduce_backward(cudaStream_t stream, ReduceOp op, const Reduction& r, const float* x,
                     const float* y, const float* dy, float* dx) {
  if (r.outputs() <= 0) return;
  reduce_kernel<<<blocks_for(r.outputs()), kThreads, 0, stream>>>(op, r, x, y, dy, dx);
  check_launch("reduce_backward");
}

}  // namespace cuda
}  // namespace deepcore
