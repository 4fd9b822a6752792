// The per-element maths of deepcore.ops (the operations a Lambda layer, or an op called on
// a model's tensors, runs in the engine): unary functions, binary functions of two
// broadcast operands, and reductions over axes, forward and derivative side by side,
// shared by the CPU and CUDA kernels.
#pragma once

#include <cmath>
#include <cstdint>

#include "deepcore/hd.h"

namespace deepcore {

enum class UnaryOp : int {
  Negative,
  Abs,
  Square,
  Sqrt,
  Exp,
  Log,
  Log1p,
  Sign,
  Reciprocal,
  Clip,  // to [p0, p1]
  Sin,
  Cos,
  Floor,
  Round,
  Copy,
};

enum class BinaryOp : int {
  Add,
  Subtract,
  Multiply,
  Divide,
  Maximum,
  Minimum,
  Power,
  Greater,
  GreaterEqual,
  Less,
  LessEqual,
  Equal,
  NotEqual,
  First,  // a itself (a transpose: a read at permuted strides)
};

enum class ReduceOp : int { Sum, Mean, Max, Min };

constexpr int kMaxOpRank = 8;

// An elementwise op over `rank` axes of sizes dims (row-major), its operands read at their
// strides (0 along an axis they are broadcast over).
struct Strided {
  int rank = 0;
  int64_t dims[kMaxOpRank] = {};
  int64_t sa[kMaxOpRank] = {}, sb[kMaxOpRank] = {};
  DC_HD int64_t size() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= dims[i];
    return n;
  }
  // How an operand is read: element e at e (as the output), at 0 (one value), or else.
  enum class Read { Same, One, Strided };
  DC_HD Read read(const int64_t* st) const {
    bool same = true, one = true;
    int64_t stride = 1;
    for (int i = rank - 1; i >= 0; --i) {
      same = same && (st[i] == stride || dims[i] == 1);
      one = one && (st[i] == 0 || dims[i] == 1);
      stride *= dims[i];
    }
    return same ? Read::Same : one ? Read::One : Read::Strided;
  }
  // The operands' offsets of element e.
  DC_HD void offsets(int64_t e, int64_t* oa, int64_t* ob) const {
    int64_t a = 0, b = 0;
    for (int i = rank - 1; i >= 0; --i) {
      const int64_t k = e % dims[i];
      e /= dims[i];
      a += k * sa[i];
      b += k * sb[i];
    }
    *oa = a;
    *ob = b;
  }
};

// A reduction of x (`rank` axes of sizes dims, row-major) over the axes where `reduced`;
// its output holds the other axes, row-major.
struct Reduction {
  int rank = 0;
  int64_t dims[kMaxOpRank] = {};
  bool reduced[kMaxOpRank] = {};
  DC_HD int64_t outputs() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= reduced[i] ? 1 : dims[i];
    return n;
  }
  DC_HD int64_t count() const {  // values per output
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= reduced[i] ? dims[i] : 1;
    return n;
  }
  // Whether the reduced axes are the last ones: output o's values are x[o * count() ...].
  DC_HD bool trailing() const {
    bool seen = false;
    for (int i = 0; i < rank; ++i) {
      if (reduced[i]) seen = true;
      else if (seen && dims[i] != 1) return false;
    }
    return true;
  }
  // x's offset of value m (of count()) of output o.
  DC_HD int64_t at(int64_t o, int64_t m) const {
    int64_t off = 0, stride = 1;
    for (int i = rank - 1; i >= 0; --i) {
      int64_t& from = reduced[i] ? m : o;
      off += (from % dims[i]) * stride;
      from /= dims[i];
      stride *= dims[i];
    }
    return off;
  }
};

DC_HD inline float unary_value(UnaryOp op, float x, float p0, float p1) {
  switch (op) {
    case UnaryOp::Negative: return -x;
    case UnaryOp::Abs: return fabsf(x);
    case UnaryOp::Square: return x * x;
    case UnaryOp::Sqrt: return sqrtf(x);
    case UnaryOp::Exp: return expf(x);
    case UnaryOp::Log: return logf(x);
    case UnaryOp::Log1p: return log1pf(x);
    case UnaryOp::Sign: return x > 0.f ? 1.f : x < 0.f ? -1.f : x;  // (NaN stays NaN)
    case UnaryOp::Reciprocal: return 1.f / x;
    case UnaryOp::Clip: return x < p0 ? p0 : x > p1 ? p1 : x;  // (NaN stays NaN)
    case UnaryOp::Sin: return sinf(x);
    case UnaryOp::Cos: return cosf(x);
    case UnaryOp::Floor: return floorf(x);
    case UnaryOp::Round: return rintf(x);  // half to even, as NumPy and Keras
    case UnaryOp::Copy: return x;
  }
  return x;
}

// dy * f'(x), given y = f(x).
DC_HD inline float unary_grad(UnaryOp op, float x, float y, float dy, float p0, float p1) {
  switch (op) {
    case UnaryOp::Negative: return -dy;
    case UnaryOp::Abs: return x > 0.f ? dy : x < 0.f ? -dy : 0.f;
    case UnaryOp::Square: return 2.f * x * dy;
    case UnaryOp::Sqrt: return dy * 0.5f / y;
    case UnaryOp::Exp: return dy * y;
    case UnaryOp::Log: return dy / x;
    case UnaryOp::Log1p: return dy / (1.f + x);
    case UnaryOp::Reciprocal: return -dy * y * y;
    case UnaryOp::Clip: return x >= p0 && x <= p1 ? dy : 0.f;
    case UnaryOp::Sin: return dy * cosf(x);
    case UnaryOp::Cos: return -dy * sinf(x);
    case UnaryOp::Copy: return dy;
    case UnaryOp::Sign:
    case UnaryOp::Floor:
    case UnaryOp::Round: return 0.f;
  }
  return 0.f;
}

DC_HD inline float binary_value(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Subtract: return a - b;
    case BinaryOp::Multiply: return a * b;
    case BinaryOp::Divide: return a / b;
    case BinaryOp::Maximum: return (a >= b || a != a) ? a : b;  // (a NaN wins)
    case BinaryOp::Minimum: return (a <= b || a != a) ? a : b;
    case BinaryOp::Power: return powf(a, b);
    case BinaryOp::Greater: return a > b ? 1.f : 0.f;
    case BinaryOp::GreaterEqual: return a >= b ? 1.f : 0.f;
    case BinaryOp::Less: return a < b ? 1.f : 0.f;
    case BinaryOp::LessEqual: return a <= b ? 1.f : 0.f;
    case BinaryOp::Equal: return a == b ? 1.f : 0.f;
    case BinaryOp::NotEqual: return a != b ? 1.f : 0.f;
    case BinaryOp::First: return a;
  }
  return 0.f;
}

// dy * d(a op b)/da (first) or /db, given y = a op b. Maximum and Minimum: a takes the
// gradient where a == b, as Keras' (TensorFlow's) do; comparisons have none.
DC_HD inline float binary_grad(BinaryOp op, bool first, float a, float b, float y, float dy) {
  switch (op) {
    case BinaryOp::Add: return dy;
    case BinaryOp::First: return first ? dy : 0.f;
    case BinaryOp::Subtract: return first ? dy : -dy;
    case BinaryOp::Multiply: return dy * (first ? b : a);
    case BinaryOp::Divide: return first ? dy / b : -dy * y / b;
    case BinaryOp::Maximum: return (first == (a >= b)) ? dy : 0.f;
    case BinaryOp::Minimum: return (first == (a <= b)) ? dy : 0.f;
    case BinaryOp::Power:
      if (first) return b == 0.f ? 0.f : dy * b * powf(a, b - 1.f);
      return a > 0.f ? dy * y * logf(a) : 0.f;
    default: return 0.f;
  }
}

// A binary step followed by unary steps, each reading the one before: computed in one pass
// per element (the values in between are recomputed by the backward pass, not kept).
constexpr int kMaxChain = 8;
struct Chain {
  BinaryOp head = BinaryOp::First;  // (First: a unary chain, b unused)
  Strided s;                        // the head's operands
  int count = 0;                    // unary steps after the head
  UnaryOp ops[kMaxChain] = {};
  float p0[kMaxChain] = {}, p1[kMaxChain] = {};
};

DC_HD inline float chain_value(const Chain& c, float a, float b) {
  float v = binary_value(c.head, a, b);
  for (int k = 0; k < c.count; ++k) v = unary_value(c.ops[k], v, c.p0[k], c.p1[k]);
  return v;
}

// The head's operands' gradients (ga, gb) from dy, the chain's output's.
DC_HD inline void chain_grad(const Chain& c, float a, float b, float dy, float* ga, float* gb) {
  float v[kMaxChain + 1];
  v[0] = binary_value(c.head, a, b);
  for (int k = 0; k < c.count; ++k) v[k + 1] = unary_value(c.ops[k], v[k], c.p0[k], c.p1[k]);
  float g = dy;
  for (int k = c.count; k-- > 0;) g = unary_grad(c.ops[k], v[k], v[k + 1], g, c.p0[k], c.p1[k]);
  *ga = binary_grad(c.head, true, a, b, v[0], g);
  *gb = binary_grad(c.head, false, a, b, v[0], g);
}

// Output o of a reduction of x; Max and Min: a NaN wins. (Over trailing axes, each output's
// values lie one after the other: no index arithmetic.)
DC_HD inline float reduce_value(ReduceOp op, const Reduction& r, const float* x, int64_t o) {
  const int64_t n = r.count();
  const bool span = r.trailing();
  auto at = [&](int64_t m) { return span ? o * n + m : r.at(o, m); };
  float v = x[at(0)];
  double sum = v;
  for (int64_t m = 1; m < n; ++m) {
    const float e = x[at(m)];
    sum += e;
    if (op == ReduceOp::Max) v = (e > v || e != e) ? e : v;
    if (op == ReduceOp::Min) v = (e < v || e != e) ? e : v;
  }
  if (op == ReduceOp::Sum) return static_cast<float>(sum);
  if (op == ReduceOp::Mean) return static_cast<float>(sum / double(n));
  return v;
}

// The gradient of output o's values: dy over them (Sum), dy / n (Mean), or dy shared
// equally among the values equal to the output (Max, Min), as JAX shares it.
DC_HD inline void reduce_grad(ReduceOp op, const Reduction& r, const float* x, float y, float dy,
                              int64_t o, float* dx) {
  const int64_t n = r.count();
  const bool span = r.trailing();
  auto at = [&](int64_t m) { return span ? o * n + m : r.at(o, m); };
  if (op == ReduceOp::Sum || op == ReduceOp::Mean) {
    const float g = op == ReduceOp::Sum ? dy : dy / static_cast<float>(n);
    for (int64_t m = 0; m < n; ++m) dx[at(m)] = g;
    return;
  }
  int64_t ties = 0;
  for (int64_t m = 0; m < n; ++m) ties += x[at(m)] == y;
  const float g = ties ? dy / static_cast<float>(ties) : 0.f;
  for (int64_t m = 0; m < n; ++m) {
    const int64_t k = at(m);
    dx[k] = x[k] == y ? g : 0.f;
  }
}

}  // namespace deepcore
