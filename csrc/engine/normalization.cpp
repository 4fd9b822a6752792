// BatchNormalization over the last axis; its maths are the backend's (kernels.h).
#include <stdexcept>
#include <string>

#include "layers.h"

namespace deepcore {

void BatchNormalization::build(const Shape& in) {
  if (in.empty())
    throw std::invalid_argument("BatchNormalization expects inputs with a feature axis");
  in_shape = out_shape = in;
  c_ = in.back();
}

std::vector<Shape> BatchNormalization::param_shapes() const {
  std::vector<Shape> s;
  if (scale_) s.push_back({c_});
  if (center_) s.push_back({c_});
  return s;
}

void BatchNormalization::bind(float* w, float* g) {
  gamma_ = scale_ ? w : nullptr;
  ggamma_ = scale_ ? g : nullptr;
  beta_ = center_ ? w + (scale_ ? c_ : 0) : nullptr;
  gbeta_ = center_ ? g + (scale_ ? c_ : 0) : nullptr;
}

void BatchNormalization::bind_state(float* s) {
  moving_mean_ = s;
  moving_var_ = s + c_;
}

void BatchNormalization::reserve(Backend& be, int64_t rows) {
  xhat_.reserve(be, rows * shape_size(in_shape));
  inv_std_.reserve(be, c_);
  scratch_.reserve(be, 3 * c_);
}

void BatchNormalization::forward(Backend& be, const float* x, float* y, int64_t rows,
                                 bool training, const uint64_t*) {
  used_batch_stats_ = training && !frozen_;
  be.batchnorm_forward(spec(), x, y, rows * shape_size(in_shape) / c_, gamma_, beta_,
                       moving_mean_, moving_var_, used_batch_stats_, xhat_.data(),
                       inv_std_.data(), scratch_.data());
}

// After a forward pass with the moving statistics (frozen), spec() says so: dx without the
// terms through the batch's statistics.
void BatchNormalization::backward(Backend& be, const float*, const float*, const float* dy,
                                  float* dx, int64_t rows, bool) {
  be.batchnorm_backward(spec(), dy, dx, rows * shape_size(in_shape) / c_, gamma_, xhat_.data(),
                        inv_std_.data(), ggamma_, gbeta_, scratch_.data());
}

}  // namespace deepcore
