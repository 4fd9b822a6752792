// BatchNormalization's kernels over the last axis: forward and backward side by side.
#include <algorithm>

#include "deepcore/batchnorm_maths.h"
#include "deepcore/kernels.h"

namespace deepcore {

void batchnorm_forward(const BatchNormSpec& bn, const float* x, float* y, int64_t m,
                       const float* gamma, const float* beta, float* moving_mean,
                       float* moving_var, bool training, float* xhat, float* inv_std,
                       double* scratch) {
  const int64_t C = bn.channels;
  double* const mean = scratch;
  double* const var = scratch + C;
  std::fill(mean, mean + C, 0.0);
  std::fill(var, var + C, 0.0);
  if (training) {
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < C; ++c) mean[c] += x[r * C + c];
    for (int64_t c = 0; c < C; ++c) mean[c] /= double(m);
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < C; ++c) {
        const double d = x[r * C + c] - mean[c];
        var[c] += d * d;
      }
    for (int64_t c = 0; c < C; ++c) {
      var[c] /= double(m);
      moving_mean[c] = bn::moving_update(moving_mean[c], mean[c], bn.momentum);
      moving_var[c] = bn::moving_update(moving_var[c], var[c], bn.momentum);
    }
  } else {
    for (int64_t c = 0; c < C; ++c) {
      mean[c] = moving_mean[c];
      var[c] = moving_var[c];
    }
  }
  // per channel, once: 1/std, and gamma and beta (1 and 0 when the layer has none)
  double* const g = var;  // gamma per channel (1 without)
  double* const b0 = scratch + 2 * C;  // beta per channel (0 without)
  for (int64_t c = 0; c < C; ++c) {
    inv_std[c] = bn::inv_std(var[c], bn.epsilon);
    g[c] = gamma ? gamma[c] : 1.f;
    b0[c] = beta ? beta[c] : 0.f;
  }
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = r * C + c;
      xhat[i] = bn::normalize(x[i], mean[c], inv_std[c]);
      y[i] = bn::scale_shift(xhat[i], static_cast<float>(g[c]), static_cast<float>(b0[c]));
    }
}

void batchnorm_backward(const BatchNormSpec& bn, const float* dy, float* dx, int64_t m,
                        const float* gamma, const float* xhat, const float* inv_std,
                        float* dgamma, float* dbeta, double* scratch) {
  const int64_t C = bn.channels;
  double* const sum_dy = scratch;
  double* const sum_dy_xhat = scratch + C;
  std::fill(sum_dy, sum_dy + C, 0.0);
  std::fill(sum_dy_xhat, sum_dy_xhat + C, 0.0);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < C; ++c) {
      sum_dy[c] += dy[r * C + c];
      sum_dy_xhat[c] += double(dy[r * C + c]) * xhat[r * C + c];
    }
  for (int64_t c = 0; c < C; ++c) {
    if (dgamma) dgamma[c] = static_cast<float>(sum_dy_xhat[c]);
    if (dbeta) dbeta[c] = static_cast<float>(sum_dy[c]);
  }
  if (!dx) return;
  // dx = gamma * inv_std / m * (m * dy - sum(dy) - xhat * sum(dy * xhat)), the factor
  // computed once per channel
  double* const k = scratch + 2 * C;
  for (int64_t c = 0; c < C; ++c)
    k[c] = bn::dx_factor(gamma ? gamma[c] : 1.f, inv_std[c], double(m));
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = r * C + c;
      dx[i] = bn::dx(dy[i], xhat[i], k[c], double(m), sum_dy[c], sum_dy_xhat[c], bn.batch_stats);
    }
}

}  // namespace deepcore
