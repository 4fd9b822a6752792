// Image layers: Conv2D, pooling, Flatten/Reshape, GlobalAveragePooling2D (NHWC).
#include <cstring>
#include <stdexcept>
#include <string>

#include "layers.h"

namespace deepcore {
namespace {

std::string shape_str(const Shape& s) {
  std::string r = "(None";
  for (int64_t d : s) r += ", " + std::to_string(d);
  return r + ")";
}

void check_image(const char* layer, const Shape& in) {
  if (in.size() != 3)
    throw std::invalid_argument(std::string(layer) +
                                " expects inputs of shape (batch, height, width, channels), "
                                "received " + shape_str(in));
}

}  // namespace

// --------------------------------------------------------------------- Conv2D
void Conv2D::build(const Shape& in) {
  check_image("Conv2D", in);
  try {
    g_ = make_window(in[0], in[1], in[2], kh_, kw_, sh_, sw_, same_);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("Conv2D: kernel ") + e.what() + ", input shape " +
                                shape_str(in));
  }
  in_shape = in;
  out_shape = {g_.oh, g_.ow, filters_};
}

std::vector<Shape> Conv2D::param_shapes() const {
  std::vector<Shape> s{{kh_, kw_, g_.c, filters_}};
  if (use_bias_) s.push_back({filters_});
  return s;
}

void Conv2D::reserve(int64_t rows) {
  const int64_t m = rows * g_.oh * g_.ow;
  cols_.resize(static_cast<size_t>(m * kh_ * kw_ * g_.c));
  reserve_affine(m, filters_);
}

void Conv2D::forward(Backend& be, const float* x, float* y, int64_t rows, bool, uint64_t) {
  be.im2col(g_, x, rows, cols_.data());
  forward_affine(be, cols_.data(), rows * g_.oh * g_.ow, kh_ * kw_ * g_.c, filters_, y);
}

void Conv2D::backward(Backend& be, const float*, const float* y, const float* dy, float* dx,
                      int64_t rows, bool dy_is_preact) {
  // cols_ holds this batch's im2col from the forward pass; the input gradient of the
  // matrix product goes back into it, then col2im scatters it onto the image.
  backward_affine(be, cols_.data(), y, dy, dx ? cols_.data() : nullptr, rows * g_.oh * g_.ow,
                  kh_ * kw_ * g_.c, filters_, dy_is_preact);
  if (dx) be.col2im(g_, cols_.data(), rows, dx);
}

// --------------------------------------------------------------------- Pool2D
void Pool2D::build(const Shape& in) {
  check_image(name(), in);
  try {
    g_ = make_window(in[0], in[1], in[2], ph_, pw_, sh_, sw_, same_);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(name()) + ": pool " + e.what() + ", input shape " +
                                shape_str(in));
  }
  in_shape = in;
  out_shape = {g_.oh, g_.ow, g_.c};
}

void Pool2D::reserve(int64_t rows) {
  if (max_) argmax_.resize(static_cast<size_t>(rows * shape_size(out_shape)));
}

void Pool2D::forward(Backend& be, const float* x, float* y, int64_t rows, bool, uint64_t) {
  if (max_)
    be.maxpool_forward(g_, x, rows, y, argmax_.data());
  else
    be.avgpool_forward(g_, x, rows, y);
}

void Pool2D::backward(Backend& be, const float*, const float*, const float* dy, float* dx,
                      int64_t rows, bool) {
  if (!dx) return;
  if (max_)
    be.maxpool_backward(g_, dy, argmax_.data(), rows, dx);
  else
    be.avgpool_backward(g_, dy, rows, dx);
}

// -------------------------------------------------------------------- Reshape
void Reshape::build(const Shape& in) {
  in_shape = in;
  const int64_t n = shape_size(in);
  if (target_.empty()) {
    out_shape = {n};
    return;
  }
  Shape t = target_;
  int64_t known = 1, unknown = -1;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == -1) {
      if (unknown >= 0) throw std::invalid_argument("Reshape: at most one dimension may be -1");
      unknown = static_cast<int64_t>(i);
    } else {
      known *= t[i];
    }
  }
  if (unknown >= 0 && known > 0 && n % known == 0) t[unknown] = n / known;
  if (shape_size(t) != n)
    throw std::invalid_argument("Reshape: cannot reshape input " + shape_str(in) + " (" +
                                std::to_string(n) + " values) to " + shape_str(target_));
  out_shape = t;
}

void Reshape::forward(Backend&, const float* x, float* y, int64_t rows, bool, uint64_t) {
  std::memcpy(y, x, sizeof(float) * rows * shape_size(in_shape));
}

void Reshape::backward(Backend&, const float*, const float*, const float* dy, float* dx,
                       int64_t rows, bool) {
  if (dx) std::memcpy(dx, dy, sizeof(float) * rows * shape_size(in_shape));
}

// ------------------------------------------------------ GlobalAveragePooling2D
void GlobalAveragePooling2D::build(const Shape& in) {
  check_image("GlobalAveragePooling2D", in);
  in_shape = in;
  out_shape = {in[2]};
}

void GlobalAveragePooling2D::forward(Backend&, const float* x, float* y, int64_t rows, bool,
                                     uint64_t) {
  const int64_t hw = in_shape[0] * in_shape[1], c = in_shape[2];
  const float inv = 1.f / static_cast<float>(hw);
  for (int64_t n = 0; n < rows; ++n) {
    float* yn = y + n * c;
    std::fill(yn, yn + c, 0.f);
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t ci = 0; ci < c; ++ci) yn[ci] += x[(n * hw + p) * c + ci];
    for (int64_t ci = 0; ci < c; ++ci) yn[ci] *= inv;
  }
}

void GlobalAveragePooling2D::backward(Backend&, const float*, const float*, const float* dy,
                                      float* dx, int64_t rows, bool) {
  if (!dx) return;
  const int64_t hw = in_shape[0] * in_shape[1], c = in_shape[2];
  const float inv = 1.f / static_cast<float>(hw);
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t ci = 0; ci < c; ++ci) dx[(n * hw + p) * c + ci] = dy[n * c + ci] * inv;
}

}  // namespace deepcore
