// The per-element maths of Keras' sequence masks, shared by the CPU and CUDA kernels. A mask
// holds one value per position (sample, step): 1 for a step to use, 0 for padding.
#pragma once

#include <cstdint>

#include "deepcore/hd.h"

namespace deepcore {

// 1 when any of the `width` values at x differs from `value` (a NaN differs from all), else 0:
// Keras' Masking (width: the features) and Embedding(mask_zero=True) (width 1, value 0).
DC_HD inline float mask_of(const float* x, int64_t width, float value) {
  bool any = false;
  for (int64_t j = 0; j < width; ++j) any = any || !(x[j] == value);
  return any ? 1.f : 0.f;
}

// x where the mask is 1, 0 where it is 0 (Keras' where(mask, x, 0): no 0 * inf).
DC_HD inline float mask_select(float m, float x) { return m != 0.f ? x : 0.f; }

// The number of steps to use in one sample's mask row.
DC_HD inline float mask_count(const float* m, int64_t steps) {
  float n = 0.f;
  for (int64_t t = 0; t < steps; ++t) n += m[t] != 0.f ? 1.f : 0.f;
  return n;
}

// GlobalAveragePooling1D with a mask: feature j of sample b = the sum of x[b, t, j] over the
// steps to use, divided by their number (Keras' sum(where(mask, x, 0)) / sum(mask): 0 / 0 is
// NaN for a sample with no step to use, as in Keras).
DC_HD inline float masked_mean(const float* x, const float* m, int64_t steps, int64_t width,
                               int64_t j) {
  float s = 0.f;
  for (int64_t t = 0; t < steps; ++t) s += mask_select(m[t], x[t * width + j]);
  return s / mask_count(m, steps);
}

// Where a mask reaches a model's output, Keras leaves the masked positions out of the loss
// and the metrics (losses/loss.py apply_mask): the metrics weigh position p of sample b by
// mask * w_b (w: the sample weights, or 1), the loss by that times positions / unmasked
// positions of the batch (0 when none is unmasked), so that its mean over all positions is
// the mean over the unmasked ones.
DC_HD inline float mask_metric_weight(float m, const float* w, int64_t b) {
  return mask_select(m, w ? w[b] : 1.f);
}
DC_HD inline float mask_loss_scale(int64_t positions, float unmasked) {
  return unmasked > 0.f ? static_cast<float>(positions) / unmasked : 0.f;
}

}  // namespace deepcore
