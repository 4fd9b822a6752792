// Sequence layers (batch, steps, channels): Conv1D and UpSampling1D. Both run on the 2-D
// kernels' layout: a sequence is an image of height 1.
#include <stdexcept>
#include <string>

#include "layers.h"

namespace deepcore {

// --------------------------------------------------------------------- Conv1D
void Conv1D::build(const Shape& in) {
  g_ = build_window_1d("Conv1D", "kernel", in, k_, stride_, dilation_, padding_);
  in_shape = in;
  out_shape = {g_.ow, filters_};
}

std::vector<Shape> Conv1D::param_shapes() const {
  std::vector<Shape> s{{k_, g_.c, filters_}};
  if (use_bias_) s.push_back({filters_});
  return s;
}

void Conv1D::reserve(Backend& be, int64_t rows) {
  const int64_t m = rows * g_.ow;
  cols_.reserve(be, m * k_ * g_.c);
  reserve_affine(be, m, filters_);
}

void Conv1D::forward(Backend& be, const float* x, float* y, int64_t rows, bool, const uint64_t*) {
  be.im2col(g_, x, rows, cols_.data());
  forward_affine(be, cols_.data(), rows * g_.ow, k_ * g_.c, filters_, y);
}

void Conv1D::backward(Backend& be, const float*, const float* y, const float* dy, float* dx,
                      int64_t rows, bool dy_is_preact) {
  // As Conv2D: the input gradient of the product goes into cols_, then col2im.
  backward_affine(be, cols_.data(), y, dy, dx ? cols_.data() : nullptr, rows * g_.ow,
                  k_ * g_.c, filters_, dy_is_preact);
  if (dx) be.col2im(g_, cols_.data(), rows, dx);
}

// --------------------------------------------------------------- UpSampling1D
void UpSampling1D::build(const Shape& in) {
  if (in.size() != 2)
    throw std::invalid_argument(
        "UpSampling1D expects inputs of shape (batch, steps, channels), received " +
        shape_str(in, true));
  const int64_t steps = bounded_mul(in[0], size_);
  if (steps < 0 || bounded_mul(steps, in[1]) < 0)
    throw std::invalid_argument("UpSampling1D: the output of " + std::to_string(in[0]) +
                                " steps repeated " + std::to_string(size_) +
                                " times would be too large");
  in_shape = in;
  out_shape = {steps, in[1]};
}

void UpSampling1D::forward(Backend& be, const float* x, float* y, int64_t rows, bool,
                           const uint64_t*) {
  be.repeat_rows(x, rows * in_shape[0], size_, in_shape[1], y);
}

void UpSampling1D::backward(Backend& be, const float*, const float*, const float* dy, float* dx,
                            int64_t rows, bool) {
  if (dx) be.repeat_rows_backward(dy, rows * in_shape[0], size_, in_shape[1], dx);
}

}  // namespace deepcore
