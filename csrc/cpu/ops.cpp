// The CPU kernels of deepcore.ops: loops over the per-element maths of op_maths.h, cut
// among the worker threads by elements (unary, binary) or outputs (reductions), each
// written by one thread: the same bits for any thread count.
#include "ops.h"

#include <algorithm>
#include <type_traits>

#include "parallel.h"

namespace deepcore {
namespace cpu {

namespace {

// f(K) with K the operation as a constant: the maths' switch then folds away and the loop
// over elements in f can vectorize.
template <class F>
void with_unary(UnaryOp op, F&& f) {
  using U = UnaryOp;
#define DC_UNARY(X) \
  case U::X: return f(std::integral_constant<U, U::X>{});
  switch (op) {
    DC_UNARY(Negative) DC_UNARY(Abs) DC_UNARY(Square) DC_UNARY(Sqrt) DC_UNARY(Exp)
    DC_UNARY(Log) DC_UNARY(Log1p) DC_UNARY(Sign) DC_UNARY(Reciprocal) DC_UNARY(Clip)
    DC_UNARY(Sin) DC_UNARY(Cos) DC_UNARY(Floor) DC_UNARY(Round) DC_UNARY(Copy)
  }
#undef DC_UNARY
}

template <class F>
void with_binary(BinaryOp op, F&& f) {
  using B = BinaryOp;
#define DC_BINARY(X) \
  case B::X: return f(std::integral_constant<B, B::X>{});
  switch (op) {
    DC_BINARY(Add) DC_BINARY(Subtract) DC_BINARY(Multiply) DC_BINARY(Divide)
    DC_BINARY(Maximum) DC_BINARY(Minimum) DC_BINARY(Power) DC_BINARY(Greater)
    DC_BINARY(GreaterEqual) DC_BINARY(Less) DC_BINARY(LessEqual) DC_BINARY(Equal)
    DC_BINARY(NotEqual) DC_BINARY(First)
  }
#undef DC_BINARY
}

template <class F>
void with_merge(MergeOp op, F&& f) {
  using M = MergeOp;
#define DC_MERGE(X) \
  case M::X: return f(std::integral_constant<M, M::X>{});
  switch (op) {
    DC_MERGE(Add) DC_MERGE(Subtract) DC_MERGE(Multiply) DC_MERGE(Average) DC_MERGE(Maximum)
    DC_MERGE(Minimum)
  }
#undef DC_MERGE
}

}  // namespace

void unary(UnaryOp op, float p0, float p1, const float* x, float* y, int64_t n) {
  with_unary(op, [&](auto k) {
    parallel_for(n, grain_for(2), [&](int64_t e0, int64_t e1) {
      for (int64_t e = e0; e < e1; ++e) y[e] = unary_value(k.value, x[e], p0, p1);
    });
  });
}

void unary_backward(UnaryOp op, float p0, float p1, const float* x, const float* y,
                    const float* dy, float* dx, int64_t n) {
  with_unary(op, [&](auto k) {
    parallel_for(n, grain_for(4), [&](int64_t e0, int64_t e1) {
      for (int64_t e = e0; e < e1; ++e) dx[e] = unary_grad(k.value, x[e], y[e], dy[e], p0, p1);
    });
  });
}

// Merge layers: an input at a time over a block of elements (the fold in Keras' order, the
// same bits as merge_value), a gradient at a time backward.
void merge(MergeOp op, const MergeInputs& in, float* y, int64_t n) {
  with_merge(op, [&](auto k) {
    parallel_for(n, grain_for(in.count + 1), [&](int64_t e0, int64_t e1) {
      const float* x0 = in.x[0];
      for (int64_t e = e0; e < e1; ++e) y[e] = x0[e];
      for (int i = 1; i < in.count; ++i) {
        const float* x = in.x[i];
        for (int64_t e = e0; e < e1; ++e) y[e] = merge_step(k.value, y[e], x[e]);
      }
      if constexpr (k.value == MergeOp::Average) {
        const float count = static_cast<float>(in.count);
        for (int64_t e = e0; e < e1; ++e) y[e] = y[e] / count;
      }
    });
  });
}

void merge_backward(MergeOp op, const MergeInputs& in, const float* y, const float* dy,
                    const MergeGrads& dx, int64_t n) {
  with_merge(op, [&](auto k) {
    parallel_for(n, grain_for(2 * in.count + 2), [&](int64_t e0, int64_t e1) {
      for (int i = 0; i < dx.count; ++i) {
        float* d = dx.dx[i];
        if (!d) continue;
        for (int64_t e = e0; e < e1; ++e) d[e] = merge_grad(k.value, in, i, e, y[e], dy[e]);
      }
    });
  });
}

// f(e, offset of a, offset of b) over [e0, e1): the offsets without divisions where an
// operand is read as the output (at e) or is one value (at 0).
template <class F>
void over_elements(const Strided& s, int64_t e0, int64_t e1, F&& f) {
  const Strided::Read ra = s.read(s.sa), rb = s.read(s.sb);
  using R = Strided::Read;
  if (ra != R::Strided && rb != R::Strided) {  // a loop of its own for each (they vectorize)
    if (ra == R::Same && rb == R::Same)
      for (int64_t e = e0; e < e1; ++e) f(e, e, int64_t(e));
    else if (ra == R::Same)
      for (int64_t e = e0; e < e1; ++e) f(e, e, int64_t(0));
    else if (rb == R::Same)
      for (int64_t e = e0; e < e1; ++e) f(e, int64_t(0), e);
    else
      for (int64_t e = e0; e < e1; ++e) f(e, int64_t(0), int64_t(0));
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

// A chain over blocks of elements, an operation at a time over each block (loops that
// vectorize), the values of every step kept in the block: the same maths as chain_value and
// chain_grad, element by element.
constexpr int64_t kChainBlock = 256;

// v[0][i] = head(a, b) for elements e0 + i of the block, then v[k + 1] = op_k(v[k]).
static void chain_block(const Chain& c, const float* a, const float* b, int64_t e0, int64_t m,
                        float (*v)[kChainBlock]) {
  with_binary(c.head, [&](auto k) {
    over_elements(c.s, e0, e0 + m, [&](int64_t e, int64_t oa, int64_t ob) {
      v[0][e - e0] = binary_value(k.value, a[oa], b[ob]);
    });
  });
  for (int j = 0; j < c.count; ++j)
    with_unary(c.ops[j], [&](auto k) {
      for (int64_t i = 0; i < m; ++i) v[j + 1][i] = unary_value(k.value, v[j][i], c.p0[j], c.p1[j]);
    });
}

void chain(const Chain& c, const float* a, const float* b, float* y) {
  const int64_t n = c.s.size(), blocks = (n + kChainBlock - 1) / kChainBlock;
  parallel_for(blocks, std::max<int64_t>(1, grain_for((3 + c.count) * kChainBlock)),
               [&](int64_t k0, int64_t k1) {
                 float v[kMaxChain + 1][kChainBlock];
                 for (int64_t k = k0; k < k1; ++k) {
                   const int64_t e0 = k * kChainBlock, m = std::min(kChainBlock, n - e0);
                   chain_block(c, a, b, e0, m, v);
                   for (int64_t i = 0; i < m; ++i) y[e0 + i] = v[c.count][i];
                 }
               });
}

void chain_backward(const Chain& c, const float* a, const float* b, const float* dy, float* da,
                    float* db) {
  const int64_t n = c.s.size(), blocks = (n + kChainBlock - 1) / kChainBlock;
  parallel_for(blocks, std::max<int64_t>(1, grain_for((5 + 2 * c.count) * kChainBlock)),
               [&](int64_t k0, int64_t k1) {
                 float v[kMaxChain + 1][kChainBlock], g[kChainBlock];
                 for (int64_t k = k0; k < k1; ++k) {
                   const int64_t e0 = k * kChainBlock, m = std::min(kChainBlock, n - e0);
                   chain_block(c, a, b, e0, m, v);
                   for (int64_t i = 0; i < m; ++i) g[i] = dy[e0 + i];
                   for (int j = c.count; j-- > 0;)
                     with_unary(c.ops[j], [&](auto op) {
                       for (int64_t i = 0; i < m; ++i)
                         g[i] = unary_grad(op.value, v[j][i], v[j + 1][i], g[i], c.p0[j], c.p1[j]);
                     });
                   with_binary(c.head, [&](auto op) {
                     over_elements(c.s, e0, e0 + m, [&](int64_t e, int64_t oa, int64_t ob) {
                       const int64_t i = e - e0;
                       if (da) da[e] = binary_grad(op.value, true, a[oa], b[ob], v[0][i], g[i]);
                       if (db) db[e] = binary_grad(op.value, false, a[oa], b[ob], v[0][i], g[i]);
                     });
                   });
                 }
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
