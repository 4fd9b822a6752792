// Image layers: Conv2D, pooling, Flatten/Reshape, GlobalAveragePooling2D (NHWC).
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "layers.h"

namespace deepcore {
namespace {

void check_image(const char* layer, const Shape& in) {
  if (in.size() != 3)
    throw std::invalid_argument(std::string(layer) +
                                " expects inputs of shape (batch, height, width, channels), "
                                "received " + shape_str(in, true));
}

// The window of a convolution or pooling layer over image input `in`; a window that
// does not fit raises an error naming the layer (`what`: "kernel" or "pool").
Window2D build_window(const char* layer, const char* what, const Shape& in, int64_t kh,
                      int64_t kw, int64_t sh, int64_t sw, bool same) {
  check_image(layer, in);
  try {
    return make_window(in[0], in[1], in[2], kh, kw, sh, sw, same);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(layer) + ": " + what + " " + e.what() +
                                ", input shape " + shape_str(in, true));
  }
}

// Images per tile of a convolution's inference on the CPU: a tile's columns (k values per
// output pixel) and outputs within kConvTileBytes (the LeNet CNN's batch of 1,024 in one
// piece: 120 ms untiled, 86 ms in tiles of 512 KB, on one core with 2 MB of L2).
constexpr int64_t kConvTileBytes = int64_t(512) << 10;

int64_t conv_tile(int64_t per_image, int64_t k, int64_t filters) {
  return std::max<int64_t>(1, kConvTileBytes / (int64_t(sizeof(float)) * per_image * (k + filters)));
}

}  // namespace

// The window of a 1-D layer over sequence input `in` (steps, channels); a window that
// does not fit raises an error naming the layer.
Window2D build_window_1d(const char* layer, const char* what, const Shape& in, int64_t k,
                         int64_t stride, int64_t dilation, Padding padding) {
  if (in.size() != 2)
    throw std::invalid_argument(std::string(layer) +
                                " expects inputs of shape (batch, steps, channels), received " +
                                shape_str(in, true));
  try {
    return make_window_1d(in[0], in[1], k, stride, dilation, padding);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(layer) + ": " + what + " " + e.what() +
                                ", input shape " + shape_str(in, true));
  }
}

// --------------------------------------------------------------------- Conv2D
void Conv2D::build(const Shape& in) {
  g_ = build_window("Conv2D", "kernel", in, kh_, kw_, sh_, sw_, same_);
  in_shape = in;
  out_shape = {g_.oh, g_.ow, filters_};
}

std::vector<Shape> Conv2D::param_shapes() const {
  std::vector<Shape> s{{kh_, kw_, g_.c, filters_}};
  if (use_bias_) s.push_back({filters_});
  return s;
}

void Conv2D::reserve(Backend& be, int64_t rows) {
  const int64_t m = rows * g_.oh * g_.ow;
  cols_.reserve(be, rows * conv_pool_scratch(g_, each_position()));  // (im2col's or more)
  reserve_affine(be, m, filters_);
}

Window2D Conv2D::each_position() const {
  Window2D each;
  each.h = each.oh = g_.oh;
  each.w = each.ow = g_.ow;
  each.c = filters_;
  return each;
}

void Conv2D::forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
                     const uint64_t*) {
  const int64_t per = g_.oh * g_.ow, k = kh_ * kw_ * g_.c;
  // Inference where the backend has the fused kernel: as max pooling over windows of one
  // position, whose maximum is that position's value.
  if (!training && be.fuses_conv_maxpool(pooled(each_position())))
    return forward_pooled(be, x, y, rows, each_position());
  // Else on the CPU a tile of images at a time, its columns still in cache for the product;
  // training keeps the whole batch's columns for the backward pass.
  const int64_t tile = training || !be.host_memory() ? rows : conv_tile(per, k, filters_);
  for (int64_t r0 = 0; r0 < rows; r0 += tile) {
    const int64_t n = std::min(tile, rows - r0);
    be.im2col(g_, x + r0 * shape_size(in_shape), n, cols_.data());
    forward_affine(be, cols_.data(), n * per, k, filters_, y, r0 * per);
  }
}

void Conv2D::forward_pooled(Backend& be, const float* x, float* y, int64_t rows,
                            const Window2D& pool) {
  // Tiles of images whose im2col rows (those the pooling reads) and products stay within
  // the tile budget, as forward's.
  const int64_t per = pool.oh * pool.ow * pool.kh * pool.kw;
  be.conv_maxpool_forward(pooled(pool), x, rows, conv_tile(per, kh_ * kw_ * g_.c, filters_),
                          cols_.data(), y);
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
  in_shape = in;
  if (kind_ == Kind::GlobalSequence) {
    if (in.size() != 2)
      throw std::invalid_argument(std::string(name()) +
                                  " expects inputs of shape (batch, steps, features), received " +
                                  shape_str(in, true));
    g_ = make_window(in[0], 1, in[1], in[0], 1, 1, 1, false);  // one window: always fits
    out_shape = keepdims_ ? Shape{1, in[1]} : Shape{in[1]};
    return;
  }
  if (kind_ == Kind::Sequence) {
    g_ = build_window_1d(name(), "pool", in, pw_, sw_, 1,
                         same_ ? Padding::Same : Padding::Valid);
    out_shape = {g_.ow, g_.c};
    return;
  }
  g_ = build_window(name(), "pool", in, ph_, pw_, sh_, sw_, same_);
  out_shape = {g_.oh, g_.ow, g_.c};
}

void Pool2D::reserve(Backend& be, int64_t rows) {
  if (max_) argmax_.reserve(be, rows * shape_size(out_shape));
}

void Pool2D::forward(Backend& be, const float* x, float* y, int64_t rows, bool, const uint64_t*) {
  if (const float* mask = input_mask())  // GlobalAveragePooling1D given a mask
    be.masked_mean_steps(x, mask, rows, in_shape[0], in_shape[1], y);
  else if (max_)
    be.maxpool_forward(g_, x, rows, y, argmax_.data());
  else
    be.avgpool_forward(g_, x, rows, y);
}

void Pool2D::backward(Backend& be, const float*, const float*, const float* dy, float* dx,
                      int64_t rows, bool) {
  if (!dx) return;
  if (const float* mask = input_mask())
    be.masked_mean_steps_backward(dy, mask, rows, in_shape[0], in_shape[1], dx);
  else if (max_)
    be.maxpool_backward(g_, dy, argmax_.data(), rows, dx);
  else
    be.avgpool_backward(g_, dy, rows, dx);
}

// -------------------------------------------------------------------- Reshape
void Reshape::build(const Shape& in) {
  in_shape = in;
  const int64_t n = shape_size(in);  // the model checked the input's size
  if (target_.empty()) {
    out_shape = {n};
    return;
  }
  Shape t = target_;
  int64_t known = 1, unknown = -1;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == -1 && unknown < 0) {
      unknown = static_cast<int64_t>(i);
    } else if (t[i] == -1) {
      throw std::invalid_argument("Reshape: at most one dimension may be -1, received " +
                                  shape_str(target_));
    } else if (t[i] <= 0) {
      throw std::invalid_argument("Reshape: target sizes must be positive (or one -1), received " +
                                  shape_str(target_));
    } else {
      known = known < 0 ? -1 : bounded_mul(known, t[i]);
    }
  }
  if (unknown >= 0 && known > 0 && n % known == 0) t[unknown] = n / known;
  if (known < 0 || bounded_size(t) != n)
    throw std::invalid_argument("Reshape: cannot reshape input " + shape_str(in, true) + " (" +
                                std::to_string(n) + " values) to " + shape_str(target_, true));
  out_shape = t;
}

void Reshape::forward(Backend& be, const float* x, float* y, int64_t rows, bool, const uint64_t*) {
  be.copy(y, x, sizeof(float) * rows * shape_size(in_shape));
}

void Reshape::backward(Backend& be, const float*, const float*, const float* dy, float* dx,
                       int64_t rows, bool) {
  if (dx) be.copy(dx, dy, sizeof(float) * rows * shape_size(in_shape));
}

// ------------------------------------------------------ GlobalAveragePooling2D
// Average pooling with one window as large as the image: (h, w, c) -> (c).
void GlobalAveragePooling2D::build(const Shape& in) {
  check_image(name(), in);
  g_ = make_window(in[0], in[1], in[2], in[0], in[1], 1, 1, false);  // always fits
  in_shape = in;
  out_shape = {in[2]};
}

void GlobalAveragePooling2D::forward(Backend& be, const float* x, float* y, int64_t rows, bool,
                                     const uint64_t*) {
  be.avgpool_forward(g_, x, rows, y);
}

void GlobalAveragePooling2D::backward(Backend& be, const float*, const float*, const float* dy,
                                      float* dx, int64_t rows, bool) {
  if (dx) be.avgpool_backward(g_, dy, rows, dx);
}

}  // namespace deepcore
