// The CPU kernels of deepcore.ops: loops over the per-element maths of op_maths.h, cut
// among the worker threads by elements (unary, binary) or outputs (reductions), each
// written by one thread: the same bits for any thread count.
#include "ops.h"

#include "parallel.h"

namespace deepcore {
namespace cpu {

void unary(UnaryOp op, float p0, float p1, const float* x, float* y, int64_t n) {
  parallel_for(n, grain_for(2), [&](int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; ++e) y[e] = unary_value(op, x[e], p0, p1);
  });
}

void unary_backward(UnaryOp op, float p0, float p1, const float* x, const float* y,
                    const float* dy, float* dx, int64_t n) {
  parallel_for(n, grain_for(4), [&](int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; ++e) dx[e] = unary_grad(op, x[e], y[e], dy[e], p0, p1);
  });
}

// f(e, offset of a, offset of b) over [e0, e1): the offsets without divisions where an
// operand is read as the output (at e) or is one value (at 0).
template <class F>
void over_elements(const Strided& s, int64_t e0, int64_t e1, F&& f) {
  const Strided::Read ra = s.read(s.sa), rb = s.read(s.sb);
  if (ra != Strided::Read::Strided && rb != Strided::Read::Strided) {
    const bool a_same = ra == Strided::Read::Same, b_same = rb == Strided::Read::Same;
    for (int64_t e = e0; e < e1; ++e) f(e, a_same ? e : 0, b_same ? e : 0);
    return;
  }
  int64_t oa, ob;
  for (int64_t e = e0; e < e1; ++e) {
    s.offsets(e, &oa, &ob);
    f(e, oa, ob);
  }
}

void binary(BinaryOp op, const Strided& s, const float* a, const float* b, float* y) {
  parallel_for(s.size(), grain_for(3), [&](int64_t e0, int64_t e1) {
    over_elements(s, e0, e1, [&](int64_t e, int64_t oa, int64_t ob) {
      y[e] = binary_value(op, a[oa], b[ob]);
    });
  });
}

void binary_backward(BinaryOp op, const Strided& s, const float* a, const float* b,
                     const float* y, const float* dy, float* da, float* db) {
  parallel_for(s.size(), grain_for(5), [&](int64_t e0, int64_t e1) {
    over_elements(s, e0, e1, [&](int64_t e, int64_t oa, int64_t ob) {
      if (da) da[e] = binary_grad(op, true, a[oa], b[ob], y[e], dy[e]);
      if (db) db[e] = binary_grad(op, false, a[oa], b[ob], y[e], dy[e]);
    });
  });
}

void chain(const Chain& c, const float* a, const float* b, float* y) {
  parallel_for(c.s.size(), grain_for(3 + c.count), [&](int64_t e0, int64_t e1) {
    over_elements(c.s, e0, e1, [&](int64_t e, int64_t oa, int64_t ob) {
      y[e] = chain_value(c, a[oa], b[ob]);
    });
  });
}

void chain_backward(const Chain& c, const float* a, const float* b, const float* dy, float* da,
                    float* db) {
  parallel_for(c.s.size(), grain_for(5 + 2 * c.count), [&](int64_t e0, int64_t e1) {
    over_elements(c.s, e0, e1, [&](int64_t e, int64_t oa, int64_t ob) {
      float ga, gb;
      chain_grad(c, a[oa], b[ob], dy[e], &ga, &gb);
      if (da) da[e] = ga;
      if (db) db[e] = gb;
    });
  });
}

void reduce(ReduceOp op, const Reduction& r, const float* x, float* y) {
  parallel_for(r.outputs(), grain_for(r.count() + 1), [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) y[o] = reduce_value(op, r, x, o);
  });
}

void reduce_backward(ReduceOp op, const Reduction& r, const float* x, const float* y,
                     const float* dy, float* dx) {
  parallel_for(r.outputs(), grain_for(2 * r.count() + 2), [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) reduce_grad(op, r, x, y[o], dy[o], o, dx);
  });
}

}  // namespace cpu
}  // namespace deepcore
