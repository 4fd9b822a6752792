// BatchNormalization over the last axis (its maths are the backend's, kernels.h), and
// Keras' Normalization (preprocessing: fixed or adapted statistics, the backend's ops).
#include <algorithm>
#include <cmath>
#include <limits>
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

namespace deepcore {

namespace {

constexpr float kNormalizationEpsilon = 1e-7f;  // Keras' backend.epsilon()

float denominator(float variance) {
  return std::max(std::sqrt(variance), kNormalizationEpsilon);
}

// A fixed statistic of shape `given` broadcast to `stats` (aligned to the right, as Keras
// aligns it to the kept axes), or invalid_argument naming it.
std::vector<float> broadcast_to(const OpConstant& given, const Shape& stats, const char* what) {
  const Shape& g = given.shape;
  bool ok = g.size() <= stats.size();
  for (size_t i = 0; ok && i < g.size(); ++i) {
    const int64_t d = g[g.size() - 1 - i];
    ok = d == 1 || d == stats[stats.size() - 1 - i];
  }
  if (!ok)
    throw std::invalid_argument(std::string("Normalization: the ") + what + " of shape " +
                                shape_str(g) + " does not broadcast to the kept axes' shape " +
                                shape_str(stats));
  const int64_t n = shape_size(stats);
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t e = 0; e < n; ++e) {  // e's index along each kept axis, read in `given`
    int64_t rest = e, at = 0, stride = 1;
    for (size_t i = 0; i < stats.size(); ++i) {
      const size_t axis = stats.size() - 1 - i;
      const int64_t k = rest % stats[axis];
      rest /= stats[axis];
      if (i < g.size()) {
        const int64_t d = g[g.size() - 1 - i];
        at += (d == 1 ? 0 : k) * stride;
        stride *= d;
      }
    }
    out[size_t(e)] = given.values[size_t(at)];
  }
  return out;
}

}  // namespace

void NormalizationLayer::build(const Shape& in) {
  const int64_t rank = int64_t(in.size());
  if (rank + 1 > kMaxOpRank)
    throw std::invalid_argument("Normalization takes samples of at most 7 axes, received " +
                                shape_str(in, true));
  std::vector<bool> kept(size_t(rank), false);
  for (int64_t a : axes_) {
    const int64_t k = a < 0 ? a + rank : a;
    if (k < 0 || k >= rank)
      throw std::invalid_argument("Normalization: axis " + std::to_string(a < 0 ? a : a + 1) +
                                  " is outside inputs of shape " + shape_str(in, true));
    kept[size_t(k)] = true;
  }
  stats_.clear();
  broadcast_.assign(size_t(rank), 1);
  for (int64_t k = 0; k < rank; ++k)
    if (kept[size_t(k)]) stats_.push_back(broadcast_[size_t(k)] = in[size_t(k)]);
  if (fixed_mean_) {
    host_mean_ = broadcast_to(*fixed_mean_, stats_, "mean");
    host_denominator_ = broadcast_to(*fixed_var_, stats_, "variance");
    for (float& v : host_denominator_) v = denominator(v);
  }
  uploaded_ = nullptr;
  in_shape = out_shape = in;
}

std::vector<Shape> NormalizationLayer::state_shapes() const {
  if (fixed_mean_) return {};
  return {stats_, stats_, {}};  // mean, variance, count (Keras' weights)
}

void NormalizationLayer::bind_state(float* s) {
  mean_ = s;
  var_ = s + shape_size(stats_);
}

void NormalizationLayer::reserve(Backend& be, int64_t) {
  if (uploaded_ == &be) return;
  const int64_t n = shape_size(stats_);
  denominator_.reserve(be, n);
  if (fixed_mean_) {
    mean_values_.reserve(be, n);
    mean_values_.upload(host_mean_.data(), n);
    denominator_.upload(host_denominator_.data(), n);
    mean_ = mean_values_.data();
  }
  uploaded_ = &be;
}

// (rows, the sample's axes): x read in order, the statistics along the kept axes only.
Strided NormalizationLayer::strided(int64_t rows) const {
  Strided s;
  s.rank = int(in_shape.size()) + 1;
  s.dims[0] = rows;
  for (size_t i = 0; i < in_shape.size(); ++i) s.dims[i + 1] = in_shape[i];
  int64_t sa = 1, sb = 1;
  for (int i = s.rank - 1; i >= 0; --i) {
    s.sa[i] = sa;
    sa *= s.dims[i];
    const bool along = i > 0 && broadcast_[size_t(i - 1)] != 1;
    s.sb[i] = along ? sb : 0;
    if (along) sb *= s.dims[i];
  }
  return s;
}

// max(sqrt(variance), epsilon) of the states, computed on the backend before each use.
void NormalizationLayer::compute_denominator(Backend& be) {
  if (fixed_mean_) return;
  const int64_t n = shape_size(stats_);
  be.unary(UnaryOp::Sqrt, 0.f, 0.f, var_, denominator_.data(), n);
  be.unary(UnaryOp::Clip, kNormalizationEpsilon, std::numeric_limits<float>::infinity(),
           denominator_.data(), denominator_.data(), n);
}

void NormalizationLayer::forward(Backend& be, const float* x, float* y, int64_t rows, bool,
                                 const uint64_t*) {
  compute_denominator(be);
  const Strided s = strided(rows);
  if (invert_) {
    be.binary(BinaryOp::Multiply, s, x, denominator_.data(), y);
    be.binary(BinaryOp::Add, s, y, mean_, y);
  } else {
    be.binary(BinaryOp::Subtract, s, x, mean_, y);
    be.binary(BinaryOp::Divide, s, y, denominator_.data(), y);
  }
}

void NormalizationLayer::backward(Backend& be, const float*, const float*, const float* dy,
                                  float* dx, int64_t rows, bool) {
  if (!dx) return;
  be.binary(invert_ ? BinaryOp::Multiply : BinaryOp::Divide, strided(rows), dy,
            denominator_.data(), dx);
}

}  // namespace deepcore
