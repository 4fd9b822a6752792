// CategoryEncoding and Discretization on the backend's ops: a comparison of every value with
// every class (or boundary) along a new last axis, then a reduction over an axis.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "layers.h"

namespace deepcore {

void EncodingLayer::build(const Shape& in) {
  if (in.empty() || in.size() + 2 > size_t(kMaxOpRank))
    throw std::invalid_argument(std::string(name()) + " takes samples of 1 to 6 axes, received " +
                                shape_str(in, true));
  in_shape = in;
  switch (mode_) {
    case OutputMode::Int: out_shape = in; break;
    case OutputMode::OneHot:
      out_shape = in;
      if (out_shape.back() == 1) out_shape.pop_back();
      out_shape.push_back(depth_);
      break;
    default:  // multi-hot and count: over the last axis
      out_shape = in;
      out_shape.back() = depth_;
  }
  if (bounded_size(out_shape) < 0)
    throw std::invalid_argument(std::string(name()) + ": outputs of shape " +
                                shape_str(out_shape, true) + " are too large");
  uploaded_ = nullptr;
}

std::vector<Shape> EncodingLayer::scratch_shapes() const {
  std::vector<Shape> s;
  if (!boundaries_.empty()) {  // the comparisons with the boundaries, then the buckets
    Shape c = in_shape;
    c.push_back(int64_t(boundaries_.size()));
    s.push_back(c);
    s.push_back(in_shape);
  }
  if (mode_ == OutputMode::MultiHot || mode_ == OutputMode::Count) {
    Shape c = in_shape;
    c.push_back(depth_);
    s.push_back(c);
  }
  return s;
}

void EncodingLayer::reserve(Backend& be, int64_t rows) {
  const int64_t n = shape_size(in_shape), b = int64_t(boundaries_.size());
  const bool reduces = mode_ == OutputMode::MultiHot || mode_ == OutputMode::Count;
  if (b) buckets_.reserve(be, rows * n);
  if (b || reduces) cube_.reserve(be, rows * n * std::max(reduces ? depth_ : 0, b));
  if (uploaded_ == &be) return;
  std::vector<float> classes(static_cast<size_t>(depth_));
  for (int64_t k = 0; k < depth_; ++k) classes[size_t(k)] = float(k);
  classes_.reserve(be, depth_);
  classes_.upload(classes.data(), depth_);
  if (b) {
    bounds_.reserve(be, b);
    bounds_.upload(boundaries_.data(), b);
  }
  uploaded_ = &be;
}

Strided EncodingLayer::against(int64_t rows, int64_t n) const {
  Strided s;
  s.rank = int(in_shape.size()) + 2;
  s.dims[0] = rows;
  for (size_t i = 0; i < in_shape.size(); ++i) s.dims[i + 1] = in_shape[i];
  s.dims[s.rank - 1] = n;
  int64_t stride = 1;
  for (int i = s.rank - 2; i >= 0; --i) {
    s.sa[i] = stride;
    stride *= s.dims[i];
    s.sb[i] = 0;
  }
  s.sa[s.rank - 1] = 0;
  s.sb[s.rank - 1] = 1;
  return s;
}

void EncodingLayer::forward(Backend& be, const float* x, float* y, int64_t rows, bool,
                            const uint64_t*) {
  const int rank = int(in_shape.size()) + 2;
  const auto over_last = [&](int64_t n, int axis) {  // the cube (rows, sample, n), one axis
    Reduction r;
    r.rank = rank;
    r.dims[0] = rows;
    for (size_t i = 0; i < in_shape.size(); ++i) r.dims[i + 1] = in_shape[i];
    r.dims[rank - 1] = n;
    r.reduced[axis] = true;
    return r;
  };
  const float* v = x;
  if (!boundaries_.empty()) {  // the bucket: how many boundaries are at or below the value
    const int64_t b = int64_t(boundaries_.size());
    float* buckets = mode_ == OutputMode::Int ? y : buckets_.data();
    be.binary(BinaryOp::GreaterEqual, against(rows, b), x, bounds_.data(), cube_.data());
    be.reduce(ReduceOp::Sum, over_last(b, rank - 1), cube_.data(), buckets);
    v = buckets;
  }
  if (mode_ == OutputMode::Int) {
    if (v != y) be.copy(y, v, sizeof(float) * size_t(rows * shape_size(in_shape)));
    return;
  }
  if (mode_ == OutputMode::OneHot) {  // (rows, sample, depth) is the output's layout
    be.binary(BinaryOp::Equal, against(rows, depth_), v, classes_.data(), y);
    return;
  }
  be.binary(BinaryOp::Equal, against(rows, depth_), v, classes_.data(), cube_.data());
  be.reduce(mode_ == OutputMode::Count ? ReduceOp::Sum : ReduceOp::Max, over_last(depth_, rank - 2),
            cube_.data(), y);
}

void EncodingLayer::backward(Backend& be, const float*, const float*, const float*, float* dx,
                             int64_t rows, bool) {
  if (dx) be.fill(dx, 0.f, rows * shape_size(in_shape));
}

}  // namespace deepcore
