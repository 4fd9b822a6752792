// BatchNormalization over the last axis: forward and backward side by side.
#include <algorithm>
#include <cmath>
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
  sum_a_.resize(static_cast<size_t>(c_));
  sum_b_.resize(static_cast<size_t>(c_));
  sum_c_.resize(static_cast<size_t>(c_));
}

void BatchNormalization::forward(Backend&, const float* x, float* y, int64_t rows, bool training,
                                 uint64_t) {
  const int64_t m = rows * shape_size(in_shape) / c_;  // values per channel
  used_batch_stats_ = training;
  float* const xhat = xhat_.data();
  float* const inv_std = inv_std_.data();
  std::vector<double>& mean = sum_a_;
  std::vector<double>& var = sum_b_;
  std::fill(mean.begin(), mean.end(), 0.0);
  std::fill(var.begin(), var.end(), 0.0);
  if (training) {
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < c_; ++c) mean[c] += x[r * c_ + c];
    for (int64_t c = 0; c < c_; ++c) mean[c] /= double(m);
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < c_; ++c) {
        const double d = x[r * c_ + c] - mean[c];
        var[c] += d * d;
      }
    for (int64_t c = 0; c < c_; ++c) {
      var[c] /= double(m);
      moving_mean_[c] = static_cast<float>(moving_mean_[c] * momentum_ + mean[c] * (1 - momentum_));
      moving_var_[c] = static_cast<float>(moving_var_[c] * momentum_ + var[c] * (1 - momentum_));
    }
  } else {
    for (int64_t c = 0; c < c_; ++c) {
      mean[c] = moving_mean_[c];
      var[c] = moving_var_[c];
    }
  }
  // per channel, once: 1/std, and gamma and beta (1 and 0 when the layer has none)
  std::vector<double>& gamma = var;
  std::vector<double>& beta = sum_c_;
  for (int64_t c = 0; c < c_; ++c) {
    inv_std[c] = static_cast<float>(1.0 / std::sqrt(var[c] + epsilon_));
    gamma[c] = gamma_ ? gamma_[c] : 1.f;
    beta[c] = beta_ ? beta_[c] : 0.f;
  }
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < c_; ++c) {
      const int64_t i = r * c_ + c;
      xhat[i] = static_cast<float>((x[i] - mean[c]) * inv_std[c]);
      y[i] = static_cast<float>(gamma[c]) * xhat[i] + static_cast<float>(beta[c]);
    }
}

void BatchNormalization::backward(Backend&, const float*, const float*, const float* dy,
                                  float* dx, int64_t rows, bool) {
  if (!used_batch_stats_)
    throw std::invalid_argument("BatchNormalization backward needs a training-mode forward");
  const int64_t m = rows * shape_size(in_shape) / c_;
  const float* const xhat = xhat_.data();
  const float* const inv_std = inv_std_.data();
  std::vector<double>& sum_dy = sum_a_;
  std::vector<double>& sum_dy_xhat = sum_b_;
  std::fill(sum_dy.begin(), sum_dy.end(), 0.0);
  std::fill(sum_dy_xhat.begin(), sum_dy_xhat.end(), 0.0);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < c_; ++c) {
      sum_dy[c] += dy[r * c_ + c];
      sum_dy_xhat[c] += double(dy[r * c_ + c]) * xhat[r * c_ + c];
    }
  for (int64_t c = 0; c < c_; ++c) {
    if (ggamma_) ggamma_[c] = static_cast<float>(sum_dy_xhat[c]);
    if (gbeta_) gbeta_[c] = static_cast<float>(sum_dy[c]);
  }
  if (!dx) return;
  // dx = gamma * inv_std / m * (m * dy - sum(dy) - xhat * sum(dy * xhat)), the factor
  // computed once per channel
  std::vector<double>& k = sum_c_;
  for (int64_t c = 0; c < c_; ++c) k[c] = (gamma_ ? gamma_[c] : 1.f) * inv_std[c] / double(m);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < c_; ++c) {
      const int64_t i = r * c_ + c;
      dx[i] = static_cast<float>(k[c] * (double(m) * dy[i] - sum_dy[c] - xhat[i] * sum_dy_xhat[c]));
    }
}

}  // namespace deepcore
