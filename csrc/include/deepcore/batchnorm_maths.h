// Per-element maths of batch normalization (kernels.h), shared by the CPU kernels
// (cpu/normalization.cpp) and the CUDA kernels (cuda/normalization.cu). The per-channel
// sums that feed them are each backend's own (in double on both).
#pragma once

#include <cmath>

#include "deepcore/hd.h"

namespace deepcore {
namespace bn {

// inv_std = 1 / sqrt(var + epsilon), kept as a float.
DC_HD inline float inv_std(double var, double epsilon) {
  return static_cast<float>(1.0 / std::sqrt(var + epsilon));
}

// A moving statistic after a training batch: moving * momentum + batch * (1 - momentum).
DC_HD inline float moving_update(float moving, double batch, double momentum) {
  return static_cast<float>(moving * momentum + batch * (1 - momentum));
}

// xhat = (x - mean) * inv_std.
DC_HD inline float normalize(float x, double mean, float inv_std) {
  return static_cast<float>((x - mean) * inv_std);
}

// y = gamma * xhat + beta (gamma 1 and beta 0 for a layer without them).
DC_HD inline float scale_shift(float xhat, float gamma, float beta) { return gamma * xhat + beta; }

// The per-channel factor of dx: gamma * inv_std / m.
DC_HD inline double dx_factor(float gamma, float inv_std, double m) { return gamma * inv_std / m; }

// dx = k * (m * dy - sum(dy) - xhat * sum(dy * xhat)), k = dx_factor(...), the sums over
// the channel's m values; k * m * dy with the moving statistics (batch_stats false), which
// do not depend on x.
DC_HD inline float dx(float dy, float xhat, double k, double m, double sum_dy,
                      double sum_dy_xhat, bool batch_stats = true) {
  if (!batch_stats) return static_cast<float>(k * (m * dy));
  return static_cast<float>(k * (m * dy - sum_dy - xhat * sum_dy_xhat));
}

}  // namespace bn
}  // namespace deepcore
