#include "layers.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace deepcore {
namespace {

// A tensor of shape (rows, *shape) seen as a matrix over its last axis.
struct Mat {
  int64_t rows, cols;
};
Mat last_axis(const Shape& s, int64_t rows) {
  const int64_t cols = s.empty() ? 1 : s.back();
  return {rows * (cols ? shape_size(s) / cols : 0), cols};
}

}  // namespace

std::string shape_str(const Shape& s, bool with_batch) {
  std::string r = with_batch ? "(None" : "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i || with_batch ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 && !with_batch ? ",)" : ")");
}

// ---------------------------------------------------------------- AffineLayer
void AffineLayer::bind_affine(float* w, float* g, int64_t kernel_size) {
  w_ = w;
  gw_ = g;
  b_ = use_bias_ ? w + kernel_size : nullptr;
  gb_ = use_bias_ ? g + kernel_size : nullptr;
}

void AffineLayer::reserve_affine(Backend& be, int64_t m, int64_t n) {
  if (act_.kind == Act::Linear) return;
  if (keeps_z()) z_.reserve(be, m * n);
  dz_.reserve(be, m * n);
}

void AffineLayer::forward_affine(Backend& be, const float* a, int64_t m, int64_t k, int64_t n,
                                 float* y, int64_t row0) {
  y += row0 * n;
  be.affine_forward(act_, a, w_, b_, keeps_z() ? z_.data() + row0 * n : y, y, m, k, n);
}

void AffineLayer::backward_affine(Backend& be, const float* a, const float* y, const float* dy,
                                  float* da, int64_t m, int64_t k, int64_t n, bool dy_is_preact) {
  const float* dz = dy;
  if (!dy_is_preact && act_.kind != Act::Linear) {
    be.act_backward(act_, keeps_z() ? z_.data() : y, y, dy, dz_.data(), m, n);
    dz = dz_.data();
  }
  if (!frozen_) {  // a frozen layer's weight gradients are not used: not computed
    be.gemm(true, false, k, n, m, 1.f, a, k, dz, n, 0.f, gw_, n);
    if (use_bias_) be.col_sum(dz, m, n, gb_);
  }
  if (da) be.gemm(false, true, m, k, n, 1.f, dz, n, w_, n, 0.f, da, k);
}

// ---------------------------------------------------------------------- Dense
void Dense::build(const Shape& in) {
  if (in.empty())
    throw std::invalid_argument("Dense expects inputs with at least one feature axis");
  in_shape = in;
  in_ = in.back();
  out_shape = in;
  out_shape.back() = units_;
  rows_per_sample_ = shape_size(in) / std::max<int64_t>(in_, 1);
}

std::vector<Shape> Dense::param_shapes() const {
  std::vector<Shape> s{{in_, units_}};
  if (use_bias_) s.push_back({units_});
  return s;
}

void Dense::forward(Backend& be, const float* x, float* y, int64_t rows, bool, const uint64_t*) {
  forward_affine(be, x, rows * rows_per_sample_, in_, units_, y);
}

void Dense::backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                     int64_t rows, bool dy_is_preact) {
  backward_affine(be, x, y, dy, dx, rows * rows_per_sample_, in_, units_, dy_is_preact);
}

// ----------------------------------------------------------------- Activation
void Activation::forward(Backend& be, const float* x, float* y, int64_t rows, bool, const uint64_t*) {
  const Mat mt = last_axis(out_shape, rows);
  be.copy(y, x, sizeof(float) * mt.rows * mt.cols);
  be.bias_act(act_, nullptr, y, y, mt.rows, mt.cols);
}

void Activation::backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                          int64_t rows, bool dy_is_preact) {
  if (!dx) return;
  const Mat mt = last_axis(out_shape, rows);
  if (dy_is_preact)
    be.copy(dx, dy, sizeof(float) * mt.rows * mt.cols);
  else
    be.act_backward(act_, x, y, dy, dx, mt.rows, mt.cols);
}

// -------------------------------------------------------------------- Dropout
void Dropout::reserve(Backend& be, int64_t rows) { mask_.reserve(be, rows * shape_size(in_shape)); }

void Dropout::forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
                      const uint64_t* seed) {
  const int64_t n = rows * shape_size(in_shape);
  active_ = training && rate_ > 0.f;
  if (active_)
    be.dropout(rate_, seed, x, y, mask_.data(), n);
  else
    be.copy(y, x, sizeof(float) * n);
}

void Dropout::backward(Backend& be, const float*, const float*, const float* dy, float* dx,
                       int64_t rows, bool) {
  if (!dx) return;
  const int64_t n = rows * shape_size(in_shape);
  if (active_)
    be.multiply(dy, mask_.data(), dx, n);
  else
    be.copy(dx, dy, sizeof(float) * n);
}

}  // namespace deepcore
