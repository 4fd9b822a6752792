// Keras' merge layers: the element-wise ones (Add, Subtract, Multiply, Average, Maximum,
// Minimum; maths in merge_maths.h) and Concatenate (strided copies of each input's blocks).
#include <stdexcept>
#include <string>

#include "layers.h"

namespace deepcore {

namespace {

std::string shapes_str(const std::vector<Shape>& ins) {
  std::string s;
  for (const Shape& in : ins) s += (s.empty() ? "" : ", ") + shape_str(in, true);
  return s;
}

}  // namespace

void MultiInputLayer::forward(Backend&, const float*, float*, int64_t, bool, const uint64_t*) {
  throw std::logic_error(std::string(name()) + " takes several inputs (forward_inputs)");
}
void MultiInputLayer::backward(Backend&, const float*, const float*, const float*, float*,
                               int64_t, bool) {
  throw std::logic_error(std::string(name()) + " takes several inputs (backward_inputs)");
}

const char* MergeLayer::name() const {
  switch (op_) {
    case MergeOp::Add: return "Add";
    case MergeOp::Subtract: return "Subtract";
    case MergeOp::Multiply: return "Multiply";
    case MergeOp::Average: return "Average";
    case MergeOp::Maximum: return "Maximum";
    case MergeOp::Minimum: return "Minimum";
  }
  return "Merge";
}

void MergeLayer::build_inputs(const std::vector<Shape>& ins) {
  const size_t n = ins.size();
  if (op_ == MergeOp::Subtract ? n != 2 : (n < 2 || n > size_t(kMaxMergeInputs)))
    throw std::invalid_argument(
        std::string(name()) + " takes " +
        (op_ == MergeOp::Subtract ? std::string("exactly 2 inputs")
                                  : "2 to " + std::to_string(kMaxMergeInputs) + " inputs") +
        ", received " + std::to_string(n));
  for (const Shape& in : ins)
    if (in != ins[0])
      throw std::invalid_argument(std::string(name()) +
                                  " needs inputs of one shape, received " + shapes_str(ins));
  in_shape = out_shape = ins[0];
  count_ = static_cast<int>(n);
}

void MergeLayer::forward_inputs(Backend& be, const std::vector<const float*>& xs, float* y,
                                int64_t rows, bool, const uint64_t*) {
  MergeInputs in;
  in.count = count_;
  for (int k = 0; k < count_; ++k) in.x[k] = xs[size_t(k)];
  be.merge_forward(op_, in, y, rows * shape_size(out_shape));
}

void MergeLayer::backward_inputs(Backend& be, const std::vector<const float*>& xs,
                                 const float* y, const float* dy,
                                 const std::vector<float*>& dxs, int64_t rows, bool) {
  MergeInputs in;
  MergeGrads d;
  in.count = d.count = count_;
  for (int k = 0; k < count_; ++k) {
    in.x[k] = xs[size_t(k)];
    d.dx[k] = dxs[size_t(k)];
  }
  be.merge_backward(op_, in, y, dy, d, rows * shape_size(out_shape));
}

void Concatenate::build_inputs(const std::vector<Shape>& ins) {
  if (ins.size() < 2)
    throw std::invalid_argument("Concatenate takes at least 2 inputs, received " +
                                std::to_string(ins.size()));
  const int64_t rank = static_cast<int64_t>(ins[0].size());
  const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
  if (axis < 0 || axis >= rank)
    throw std::invalid_argument("Concatenate: axis " + std::to_string(axis_) +
                                " is out of range for inputs " + shapes_str(ins));
  Shape out = ins[0];
  out[size_t(axis)] = 0;
  widths_.clear();
  for (const Shape& in : ins) {
    bool same = in.size() == ins[0].size();
    for (size_t d = 0; same && d < in.size(); ++d) same = int64_t(d) == axis || in[d] == ins[0][d];
    if (!same)
      throw std::invalid_argument(
          "Concatenate needs inputs of one shape except along the concatenation axis " +
          std::to_string(axis_) + ", received " + shapes_str(ins));
    out[size_t(axis)] += in[size_t(axis)];
    widths_.push_back(shape_size(in) / shape_size(Shape(in.begin(), in.begin() + axis)));
  }
  outer_ = shape_size(Shape(ins[0].begin(), ins[0].begin() + axis));
  total_ = 0;
  for (int64_t w : widths_) total_ += w;
  in_shape = ins[0];
  out_shape = out;
}

// Each input's block of every (sample, outer index) row goes to its columns of y's row.
void Concatenate::forward_inputs(Backend& be, const std::vector<const float*>& xs, float* y,
                                 int64_t rows, bool, const uint64_t*) {
  int64_t at = 0;
  for (size_t k = 0; k < widths_.size(); ++k) {
    be.mask_rows(xs[k], widths_[k], nullptr, 0, rows * outer_, widths_[k], y + at, total_);
    at += widths_[k];
  }
}

void Concatenate::backward_inputs(Backend& be, const std::vector<const float*>&, const float*,
                                  const float* dy, const std::vector<float*>& dxs, int64_t rows,
                                  bool) {
  int64_t at = 0;
  for (size_t k = 0; k < widths_.size(); ++k) {
    if (dxs[k])
      be.mask_rows(dy + at, total_, nullptr, 0, rows * outer_, widths_[k], dxs[k], widths_[k]);
    at += widths_[k];
  }
}

void DotLayer::build_inputs(const std::vector<Shape>& ins) {
  if (ins.size() != 2)
    throw std::invalid_argument("Dot takes 2 inputs, received " + std::to_string(ins.size()));
  const Shape &x = ins[0], &y = ins[1];
  const int64_t rank = static_cast<int64_t>(x.size());
  if (rank != int64_t(y.size()) || rank < 1 || rank > 2)
    throw std::invalid_argument("Dot takes two inputs of one rank, 1 or 2 per sample, received " +
                                shapes_str(ins));
  const int64_t ax = ax_ < 0 ? ax_ + rank : ax_, ay = ay_ < 0 ? ay_ + rank : ay_;
  if (ax < 0 || ax >= rank || ay < 0 || ay >= rank || x[size_t(ax)] != y[size_t(ay)])
    throw std::invalid_argument("Dot: the axes " + std::to_string(ax_) + " and " +
                                std::to_string(ay_) + " do not pair inputs " + shapes_str(ins) +
                                " (they must have one size)");
  xr_ = rank == 1 ? 1 : x[0];
  xc_ = x.back();
  yr_ = rank == 1 ? 1 : y[0];
  yc_ = y.back();
  ta_ = rank == 2 && ax == 0;
  tb_ = rank == 1 || ay == 1;
  m_ = ta_ ? xc_ : xr_;
  k_ = ta_ ? xr_ : xc_;
  n_ = tb_ ? yr_ : yc_;
  // A sample's groups along the axis: (rows, columns) contracted along its columns are rows
  // of groups of columns; along its rows, one group of rows per column.
  auto groups = [](int64_t r, int64_t c, bool along_rows, int64_t* g) {
    g[0] = along_rows ? 1 : r;
    g[1] = along_rows ? r : c;
    g[2] = along_rows ? c : 1;
  };
  groups(xr_, xc_, ta_, gx_);
  groups(yr_, yc_, rank == 2 && ay == 0, gy_);
  in_shape = x;
  out_shape = rank == 1 ? Shape{1} : Shape{m_, n_};
}

void DotLayer::reserve(Backend& be, int64_t rows) {
  if (normalize_)
    for (auto* a : {&nx_, &dnx_}) a->reserve(be, rows * xr_ * xc_);
  if (normalize_)
    for (auto* a : {&ny_, &dny_}) a->reserve(be, rows * yr_ * yc_);
  if (!vectors()) return;
  prod_.reserve(be, rows * k_);
  ones_.reserve(be, k_);
  be.fill(ones_.data(), 1.f, k_);
}

// normalize: the product of the normalized inputs (Keras' Dot).
void DotLayer::forward_inputs(Backend& be, const std::vector<const float*>& xs, float* out,
                              int64_t rows, bool, const uint64_t*) {
  if (!normalize_) return product(be, xs[0], xs[1], out, rows);
  be.l2_normalize(xs[0], nx_.data(), rows * gx_[0], gx_[1], gx_[2]);
  be.l2_normalize(xs[1], ny_.data(), rows * gy_[0], gy_[1], gy_[2]);
  product(be, nx_.data(), ny_.data(), out, rows);
}

void DotLayer::backward_inputs(Backend& be, const std::vector<const float*>& xs, const float*,
                               const float* dy, const std::vector<float*>& dxs, int64_t rows,
                               bool) {
  if (!normalize_) return product_backward(be, xs[0], xs[1], dy, dxs[0], dxs[1], rows);
  // (the normalized inputs of this batch are still in nx_ and ny_)
  product_backward(be, nx_.data(), ny_.data(), dy, dxs[0] ? dnx_.data() : nullptr,
                   dxs[1] ? dny_.data() : nullptr, rows);
  if (dxs[0]) be.l2_normalize_backward(xs[0], dnx_.data(), dxs[0], rows * gx_[0], gx_[1], gx_[2]);
  if (dxs[1]) be.l2_normalize_backward(xs[1], dny_.data(), dxs[1], rows * gy_[0], gy_[1], gy_[2]);
}

// Two vectors: out = (x * y) 1 over all rows at once. Matrices: out_b = op(x_b) op(y_b), one
// product per sample.
void DotLayer::product(Backend& be, const float* x, const float* y, float* out, int64_t rows) {
  if (vectors()) {
    MergeInputs in;
    in.count = 2;
    in.x[0] = x;
    in.x[1] = y;
    be.merge_forward(MergeOp::Multiply, in, prod_.data(), rows * k_);
    be.gemm(false, false, rows, 1, k_, 1.f, prod_.data(), k_, ones_.data(), 1, 0.f, out, 1);
    return;
  }
  for (int64_t b = 0; b < rows; ++b)
    be.gemm(ta_, tb_, m_, n_, k_, 1.f, x + b * xr_ * xc_, xc_, y + b * yr_ * yc_, yc_, 0.f,
            out + b * m_ * n_, n_);
}

// With A = op(x), B = op(y) and G the output's gradient: dA = G B^T and dB = A^T G, then
// dx = dA (or dA^T when A = x^T) and dy = dB (or dB^T when B = y^T).
void DotLayer::product_backward(Backend& be, const float* xs, const float* ys, const float* dy,
                                float* dx_all, float* dy_all, int64_t rows) {
  if (vectors()) {  // dx = dy (one per row, over its k values) * y, and dy_in = dy * x
    const Broadcast3 s{rows, k_, 1, k_, 1, 1, 0, false};
    if (dx_all) be.broadcast_multiply(s, ys, dy, dx_all);
    if (dy_all) be.broadcast_multiply(s, xs, dy, dy_all);
    return;
  }
  for (int64_t b = 0; b < rows; ++b) {
    const float *x = xs + b * xr_ * xc_, *y = ys + b * yr_ * yc_, *g = dy + b * m_ * n_;
    if (float* dx = dx_all ? dx_all + b * xr_ * xc_ : nullptr) {
      if (!ta_)  // dx (m x k) = G B^T
        be.gemm(false, !tb_, m_, k_, n_, 1.f, g, n_, y, yc_, 0.f, dx, xc_);
      else  // dx (k x m) = B G^T
        be.gemm(tb_, true, k_, m_, n_, 1.f, y, yc_, g, n_, 0.f, dx, xc_);
    }
    if (float* dyb = dy_all ? dy_all + b * yr_ * yc_ : nullptr) {
      if (!tb_)  // dy (k x n) = A^T G
        be.gemm(!ta_, false, k_, n_, m_, 1.f, x, xc_, g, n_, 0.f, dyb, yc_);
      else  // dy (n x k) = G^T A
        be.gemm(true, ta_, n_, k_, m_, 1.f, g, n_, x, xc_, 0.f, dyb, yc_);
    }
  }
}

}  // namespace deepcore
