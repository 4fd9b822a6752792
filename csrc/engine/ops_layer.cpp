// OpLayer: a program of deepcore.ops (a Lambda layer, or ops called on a model's tensors)
// run step by step on the backend, and backward in reverse, each step's gradient summed
// over the axes its operands are broadcast along.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "layers.h"

namespace deepcore {

namespace {

std::string step_name(const OpStep& s) {
  static const char* kinds[] = {"unary", "binary", "reduce", "activation", "reshape",
                                "transpose"};
  return std::string(kinds[int(s.kind)]) + " step";
}

}  // namespace

void OpLayer::build_inputs(const std::vector<Shape>& ins) {
  inputs_ = static_cast<int>(ins.size());
  shapes_ = ins;
  batched_.assign(ins.size(), true);
  for (const OpConstant& c : constants_) {
    if (int64_t(c.values.size()) != bounded_size(c.shape) || c.shape.size() > kMaxOpRank)
      throw std::invalid_argument("ops: a constant of shape " + shape_str(c.shape) + " holds " +
                                  std::to_string(c.values.size()) + " values");
    shapes_.push_back(c.shape);
    batched_.push_back(false);
  }
  if (steps_.empty()) throw std::invalid_argument("ops: a program has at least one step");
  largest_ = 1;
  for (const Shape& s : ins) largest_ = std::max(largest_, shape_size(s));
  for (const OpStep& s : steps_) {
    const int n = static_cast<int>(shapes_.size());
    const bool binary = s.kind == OpKind::Binary;
    if (s.a < 0 || s.a >= n || (binary && (s.b < 0 || s.b >= n)))
      throw std::invalid_argument("ops: a " + step_name(s) + " reads a register not yet made");
    if (!batched_[size_t(s.a)] && !(binary && batched_[size_t(s.b)]))
      throw std::invalid_argument("ops: a " + step_name(s) +
                                  " of constants alone (deepcore computes those in NumPy)");
    const Shape& a = shapes_[size_t(s.a)];
    Shape out = a;
    if (binary) {
      // Full shapes, with the batch axis first (a constant's aligned to the right).
      const Shape& b = shapes_[size_t(s.b)];
      auto full = [&](int r) {
        Shape f = shapes_[size_t(r)];
        if (batched_[size_t(r)]) f.insert(f.begin(), 1);  // (the rows: any number)
        return f;
      };
      const Shape fa = full(s.a), fb = full(s.b);
      if (batched_[size_t(s.a)] && batched_[size_t(s.b)] && a.size() != b.size())
        throw std::invalid_argument("ops: operands of shapes " + shape_str(a, true) + " and " +
                                    shape_str(b, true) +
                                    " have different ranks (expand_dims one of them)");
      const size_t rank = std::max(fa.size(), fb.size());
      if (rank > size_t(kMaxOpRank))
        throw std::invalid_argument("ops: operands of more than 8 axes");
      if (rank > (batched_[size_t(s.a)] ? fa.size() : fb.size()))
        throw std::invalid_argument("ops: a constant of shape " +
                                    shape_str(batched_[size_t(s.a)] ? b : a) +
                                    " has more axes than the samples it meets, " +
                                    shape_str(batched_[size_t(s.a)] ? a : b, true));
      Shape f(rank, 1);
      for (size_t i = 0; i < rank; ++i) {
        const int64_t da = i + fa.size() >= rank ? fa[i + fa.size() - rank] : 1;
        const int64_t db = i + fb.size() >= rank ? fb[i + fb.size() - rank] : 1;
        if (da != db && da != 1 && db != 1)
          throw std::invalid_argument("ops: operands of shapes " +
                                      shape_str(a, batched_[size_t(s.a)]) + " and " +
                                      shape_str(b, batched_[size_t(s.b)]) + " do not broadcast");
        f[i] = std::max(da, db);
      }
      if (f[0] != 1)
        throw std::invalid_argument("ops: a constant of shape " +
                                    shape_str(batched_[size_t(s.a)] ? b : a) +
                                    " has a first axis along the samples of more than 1");
      out.assign(f.begin() + 1, f.end());
    } else if (s.kind == OpKind::Reduce) {
      std::vector<bool> along(a.size(), false);
      for (int64_t ax : s.axes) {
        if (ax < 0 || ax >= int64_t(a.size()) || along[size_t(ax)])
          throw std::invalid_argument("ops: reduction axes " + shape_str(s.axes) +
                                      " of a sample of shape " + shape_str(a, true));
        along[size_t(ax)] = true;
      }
      out.clear();
      for (size_t i = 0; i < a.size(); ++i)
        if (!along[i] || s.keepdims) out.push_back(along[i] ? 1 : a[i]);
    } else if (s.kind == OpKind::Reshape) {
      if (bounded_size(s.axes) != shape_size(a))
        throw std::invalid_argument("ops: cannot reshape " + shape_str(a, true) + " to " +
                                    shape_str(s.axes, true));
      out = s.axes;
    } else if (s.kind == OpKind::Transpose) {
      std::vector<bool> seen(a.size(), false);
      bool ok = s.axes.size() == a.size();
      for (int64_t ax : s.axes) {
        ok = ok && ax >= 0 && ax < int64_t(a.size()) && !seen[size_t(ax)];
        if (ok) seen[size_t(ax)] = true;
      }
      if (!ok)
        throw std::invalid_argument("ops: " + shape_str(s.axes) +
                                    " is not an order of the axes of samples of shape " +
                                    shape_str(a, true));
      out.clear();
      for (int64_t ax : s.axes) out.push_back(a[size_t(ax)]);
    }
    if (out.empty()) out = {1};  // one value per sample: shape (1,), as the engine's layers
    if (out.size() + 1 > size_t(kMaxOpRank))
      throw std::invalid_argument("ops: a result of more than 7 axes per sample");
    shapes_.push_back(out);
    batched_.push_back(true);
    largest_ = std::max(largest_, shape_size(out));
  }
  in_shape = ins.empty() ? Shape{} : ins[0];
  out_shape = shapes_.back();
  std::vector<int> reads(shapes_.size(), 0);
  written_.assign(shapes_.size(), false);
  for (size_t i = 0; i < steps_.size(); ++i) {
    const OpStep& s = steps_[i];
    const bool binary = s.kind == OpKind::Binary;
    for (int r : {s.a, binary ? s.b : -1}) {
      if (r < 0) continue;
      // (the size of the gradient the step writes: its output's for a binary step)
      const Shape& wrote = binary ? shapes_[size_t(inputs_) + constants_.size() + i]
                                  : shapes_[size_t(r)];
      written_[size_t(r)] = ++reads[size_t(r)] == 1 && batched_[size_t(r)] &&
                            shape_size(wrote) == shape_size(shapes_[size_t(r)]);
    }
  }
  const size_t first = size_t(inputs_) + constants_.size();
  chain_len_.assign(steps_.size(), 1);
  for (size_t i = 0; i < steps_.size();) {
    size_t j = i + 1;
    if (steps_[i].kind == OpKind::Unary || steps_[i].kind == OpKind::Binary)
      while (j < steps_.size() && j - i < size_t(kMaxChain) && steps_[j].kind == OpKind::Unary &&
             steps_[j].a == int(first + j - 1) && reads[first + j - 1] == 1)
        ++j;
    chain_len_[i] = int(j - i);
    for (size_t k = i + 1; k < j; ++k) chain_len_[k] = 0;
    i = j;
  }
  values_.resize(steps_.size());
  grads_.resize(steps_.size());
}

std::vector<Shape> OpLayer::scratch_shapes() const { return {Shape{2, largest_}}; }

void OpLayer::reserve(Backend& be, int64_t rows) {
  const size_t first = size_t(inputs_) + constants_.size();
  for (size_t i = 0; i < steps_.size(); ++i) {
    values_[i].reserve(be, rows * shape_size(shapes_[first + i]));
    grads_[i].reserve(be, rows * shape_size(shapes_[first + i]));
  }
  scratch_.reserve(be, 2 * rows * largest_);
  summed_.reserve(be, rows * largest_);
  if (consts_.size() != constants_.size()) {
    for (const OpConstant& c : constants_) {
      consts_.emplace_back(be, std::max<int64_t>(1, int64_t(c.values.size())));
      consts_.back().upload(c.values.data(), int64_t(c.values.size()));
    }
  }
}

const float* OpLayer::reg(int r, const std::vector<const float*>& xs) const {
  if (r < inputs_) return xs[size_t(r)];
  const int c = r - inputs_;
  if (c < int(consts_.size())) return consts_[size_t(c)].data();
  return values_[size_t(c) - consts_.size()].data();
}

// The step's full shape (rows first) and each operand's strides in it.
Strided OpLayer::strided(const OpStep& s, int64_t rows) const {
  const Shape& out = shapes_[size_t(inputs_) + constants_.size() + size_t(&s - steps_.data())];
  Strided st;
  st.rank = int(out.size()) + 1;
  st.dims[0] = rows;
  for (size_t i = 0; i < out.size(); ++i) st.dims[i + 1] = out[i];
  for (int k = 0; k < 2; ++k) {  // the operand's full shape: (rows, its own) if batched
    const int r = k == 0 ? s.a : s.b;
    const Shape& own = shapes_[size_t(r)];
    const int rank = int(own.size()) + (batched_[size_t(r)] ? 1 : 0);
    auto dim = [&](int j) {
      return batched_[size_t(r)] ? (j == 0 ? rows : own[size_t(j - 1)]) : own[size_t(j)];
    };
    int64_t* strides = k == 0 ? st.sa : st.sb;
    int64_t stride = 1;
    for (int i = st.rank - 1; i >= 0; --i) {
      const int j = i - (st.rank - rank);
      const int64_t d = j >= 0 ? dim(j) : 1;
      strides[i] = d == 1 && st.dims[i] != 1 ? 0 : stride;
      stride *= d;
    }
  }
  return st;
}

Chain OpLayer::chain_at(size_t head, int64_t rows) const {
  const OpStep& s = steps_[head];
  Chain c;
  if (s.kind == OpKind::Binary) {
    c.head = BinaryOp(s.code);
    c.s = strided(s, rows);
  } else {  // a unary head: First(a, a), then the step itself
    const Shape& shape = shapes_[size_t(s.a)];
    c.s.rank = int(shape.size()) + 1;
    c.s.dims[0] = rows;
    for (size_t k = 0; k < shape.size(); ++k) c.s.dims[k + 1] = shape[k];
    int64_t stride = 1;
    for (int k = c.s.rank - 1; k >= 0; --k) {
      c.s.sa[k] = c.s.sb[k] = stride;
      stride *= c.s.dims[k];
    }
    c.ops[c.count] = UnaryOp(s.code);
    c.p0[c.count] = s.p0;
    c.p1[c.count++] = s.p1;
  }
  for (size_t k = head + 1; k < head + size_t(chain_len_[head]); ++k) {
    c.ops[c.count] = UnaryOp(steps_[k].code);
    c.p0[c.count] = steps_[k].p0;
    c.p1[c.count++] = steps_[k].p1;
  }
  return c;
}

void OpLayer::forward_inputs(Backend& be, const std::vector<const float*>& xs, float* y,
                             int64_t rows, bool, const uint64_t*) {
  const size_t first = size_t(inputs_) + constants_.size();
  for (size_t i = 0; i < steps_.size(); i += size_t(std::max(1, chain_len_[i]))) {
    const OpStep& s = steps_[i];
    if (chain_len_[i] > 1) {  // the chain's values in one pass, into its last step's
      const size_t end = i + size_t(chain_len_[i]) - 1;
      const float* a = reg(s.a, xs);
      be.chain(chain_at(i, rows), a, s.kind == OpKind::Binary ? reg(s.b, xs) : a,
               end + 1 == steps_.size() ? y : values_[end].data());
      continue;
    }
    float* out = i + 1 == steps_.size() ? y : values_[i].data();
    const Shape& shape = shapes_[first + i];
    const int64_t n = rows * shape_size(shape);
    const float* a = reg(s.a, xs);
    switch (s.kind) {
      case OpKind::Unary: be.unary(UnaryOp(s.code), s.p0, s.p1, a, out, n); break;
      case OpKind::Binary:
        be.binary(BinaryOp(s.code), strided(s, rows), a, reg(s.b, xs), out);
        break;
      case OpKind::Activation: {
        const int64_t cols = shape.empty() ? 1 : shape.back();
        be.copy(out, a, sizeof(float) * size_t(n));
        be.bias_act(s.act, nullptr, out, out, n / cols, cols);
        break;
      }
      case OpKind::Reduce: {
        const Shape& in = shapes_[size_t(s.a)];
        Reduction r;
        r.rank = int(in.size()) + 1;
        r.dims[0] = rows;
        for (size_t k = 0; k < in.size(); ++k) r.dims[k + 1] = in[k];
        for (int64_t ax : s.axes) r.reduced[ax + 1] = true;
        be.reduce(ReduceOp(s.code), r, a, out);
        break;
      }
      case OpKind::Reshape: be.copy(out, a, sizeof(float) * size_t(n)); break;
      case OpKind::Transpose:
        be.binary(BinaryOp::First, permuted(shapes_[size_t(s.a)], s.axes, rows, false), a, a,
                  out);
        break;
    }
  }
}

// A transpose of x (sample shape `in`) by `perm` as an elementwise op: over the output's
// axes, reading x at permuted strides; `inverse`: over x's axes, reading the output (the
// gradient's way back).
Strided OpLayer::permuted(const Shape& in, const std::vector<int64_t>& perm, int64_t rows,
                          bool inverse) const {
  const int rank = int(in.size()) + 1;
  int64_t stride[kMaxOpRank] = {};  // x's strides, row-major, rows first
  stride[rank - 1] = 1;
  for (int i = rank - 2; i >= 0; --i) stride[i] = stride[i + 1] * in[size_t(i)];
  Shape out;
  for (int64_t ax : perm) out.push_back(in[size_t(ax)]);
  int64_t ostride[kMaxOpRank] = {};  // the output's
  ostride[rank - 1] = 1;
  for (int i = rank - 2; i >= 0; --i) ostride[i] = ostride[i + 1] * out[size_t(i)];
  Strided st;
  st.rank = rank;
  st.dims[0] = rows;
  st.sa[0] = inverse ? ostride[0] : stride[0];
  for (int i = 1; i < rank; ++i) {
    if (!inverse) {  // output axis i reads x's axis perm[i - 1]
      st.dims[i] = out[size_t(i - 1)];
      st.sa[i] = stride[perm[size_t(i - 1)] + 1];
    } else {  // x's axis perm[j] is the output's axis j
      st.dims[i] = in[size_t(i - 1)];
      for (size_t j = 0; j < perm.size(); ++j)
        if (perm[j] == i - 1) st.sa[i] = ostride[j + 1];
    }
  }
  for (int i = 0; i < rank; ++i) st.sb[i] = st.sa[i];
  return st;
}

void OpLayer::add_grad(Backend& be, int r, const float* g, const Shape& out, float* into,
                       int64_t rows) {
  const int64_t n = rows * shape_size(out);
  const int64_t size = batched_[size_t(r)] ? rows * shape_size(shapes_[size_t(r)]) : 0;
  if (size != n) {  // broadcast along some axes: summed over them
    const Shape& own = shapes_[size_t(r)];  // (rows, own): the operand's full shape
    Reduction red;
    red.rank = int(out.size()) + 1;
    red.dims[0] = rows;
    for (size_t i = 0; i < out.size(); ++i) red.dims[i + 1] = out[i];
    for (int i = 0; i < red.rank; ++i) {
      const int j = i - (red.rank - int(own.size()) - 1);
      const int64_t d = j < 0 ? 1 : j == 0 ? rows : own[size_t(j - 1)];
      red.reduced[i] = d == 1 && red.dims[i] != 1;
    }
    be.reduce(ReduceOp::Sum, red, g, summed_.data());
    g = summed_.data();
  }
  MergeInputs in;
  in.count = 2;
  in.x[0] = into;
  in.x[1] = g;
  be.merge_forward(MergeOp::Add, in, into, size);
}

void OpLayer::backward_inputs(Backend& be, const std::vector<const float*>& xs, const float* y,
                              const float* dy, const std::vector<float*>& dxs, int64_t rows,
                              bool) {
  const size_t first = size_t(inputs_) + constants_.size();
  const size_t last = steps_.size() - 1;
  // Each register's gradient: written by its one reader's step, or summed over its readers
  // (zero first).
  auto grad_of = [&](int r) -> float* {
    if (r < inputs_) return dxs[size_t(r)];
    if (!batched_[size_t(r)]) return nullptr;  // a constant
    return grads_[size_t(r) - first].data();
  };
  for (int r = 0; r < int(first + last); ++r)
    if (float* g = grad_of(r); g && !written_[size_t(r)])
      be.zero(g, sizeof(float) * size_t(rows * shape_size(shapes_[size_t(r)])));
  float* const scratch_a = scratch_.data();
  float* const scratch_b = scratch_.data() + rows * largest_;
  for (size_t i = last + 1; i-- > 0;) {
    if (chain_len_[i] == 0) continue;  // (inside a chain: its head's pass)
    const OpStep& s = steps_[i];
    const size_t end = i + size_t(chain_len_[i]) - 1;  // a chain's last step
    const float* g = end == last ? dy : grads_[end].data();
    const float* out = i == last ? y : values_[i].data();
    const Shape& shape = shapes_[first + i];
    const int64_t n = rows * shape_size(shape);
    const float* a = reg(s.a, xs);
    float* into_a = grad_of(s.a);
    float* into_b = s.kind == OpKind::Binary ? grad_of(s.b) : nullptr;
    if (!into_a && !into_b) continue;
    // Where the step writes an operand's gradient: into it (its one reader, not broadcast),
    // else into scratch, then added (summed over its broadcast axes).
    const Shape& in = shapes_[size_t(s.a)];
    const Shape& out_a = s.kind == OpKind::Binary ? shape : in;  // the size the step writes
    const bool da_direct = into_a && written_[size_t(s.a)];
    float* ga = da_direct ? into_a : scratch_a;
    if (end > i) {  // a chain: its head's operands' gradients in one pass
      const bool binary = s.kind == OpKind::Binary;
      const bool db_direct = into_b && written_[size_t(s.b)];
      float* gb = db_direct ? into_b : scratch_b;
      be.chain_backward(chain_at(i, rows), a, binary ? reg(s.b, xs) : a, g,
                        into_a ? ga : nullptr, into_b ? gb : nullptr);
      if (into_b && !db_direct) add_grad(be, s.b, gb, shape, into_b, rows);
      if (into_a && !da_direct) add_grad(be, s.a, ga, out_a, into_a, rows);
      continue;
    }
    switch (s.kind) {
      case OpKind::Unary: be.unary_backward(UnaryOp(s.code), s.p0, s.p1, a, out, g, ga, n); break;
      case OpKind::Binary: {
        const bool db_direct = into_b && written_[size_t(s.b)];
        float* gb = db_direct ? into_b : scratch_b;
        be.binary_backward(BinaryOp(s.code), strided(s, rows), a, reg(s.b, xs), out, g,
                           into_a ? ga : nullptr, into_b ? gb : nullptr);
        if (into_b && !db_direct) add_grad(be, s.b, gb, shape, into_b, rows);
        break;
      }
      case OpKind::Activation: {
        const int64_t cols = shape.empty() ? 1 : shape.back();
        be.act_backward(s.act, a, out, g, ga, n / cols, cols);
        break;
      }
      case OpKind::Reduce: {
        Reduction r;
        r.rank = int(in.size()) + 1;
        r.dims[0] = rows;
        for (size_t k = 0; k < in.size(); ++k) r.dims[k + 1] = in[k];
        for (int64_t ax : s.axes) r.reduced[ax + 1] = true;
        be.reduce_backward(ReduceOp(s.code), r, a, out, g, ga);
        break;
      }
      case OpKind::Reshape:
        if (da_direct) be.copy(ga, g, sizeof(float) * size_t(n));
        else ga = const_cast<float*>(g);  // (added below)
        break;
      case OpKind::Transpose:
        be.binary(BinaryOp::First, permuted(in, s.axes, rows, true), g, g, ga);
        break;
    }
    if (into_a && !da_direct) add_grad(be, s.a, ga, out_a, into_a, rows);
  }
}

}  // namespace deepcore
