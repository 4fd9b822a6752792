// Keras' image augmentation layers (RandomFlip, RandomRotation, RandomTranslation, RandomZoom,
// RandomCrop, RandomContrast, RandomBrightness) per sample and per value, shared by the CPU
// kernel (cpu/conv.cpp) and the CUDA kernel (cuda/conv.cu). Each sample's random factors are
// drawn from the counter-based stream (rng.h) at (the step's seed, 4 * sample + k): the same
// on every backend and thread count. The geometric layers map each output pixel (x, y) to
// input coordinates as Keras' transforms do and sample there as scipy's map_coordinates
// (JAX's, which Keras' JAX backend calls): linear or nearest (half away from zero), with
// Keras' fill modes for coordinates outside the image.
#pragma once

#include <cmath>
#include <cstdint>

#include "deepcore/hd.h"
#include "deepcore/rng.h"

namespace deepcore {

enum class FillMode : int { Reflect = 0, Wrap = 1, Constant = 2, Nearest = 3, Mirror = 4 };
enum class AugmentKind : int { Flip, Rotation, Translation, Zoom, Crop, Contrast, Brightness };

struct Augment {
  AugmentKind kind = AugmentKind::Flip;
  int64_t h = 0, w = 0, c = 0, oh = 0, ow = 0;  // input and output image sizes
  // The factors' ranges: [0] the height's (or the rotation's, contrast's, brightness's),
  // [1] the width's; a zoom whose width follows its height (`same_zoom`) draws one.
  float lo[2] = {0.f, 0.f}, hi[2] = {0.f, 0.f};
  bool same_zoom = false;
  int flips = 0;  // RandomFlip: 1 horizontal, 2 vertical, 3 both
  FillMode fill = FillMode::Reflect;
  float fill_value = 0.f;
  bool bilinear = true;
  float value_lo = 0.f, value_hi = 255.f;  // contrast and brightness clip to this range
};

// Draw k (< 4) of sample n: uniform in [lo, hi).
DC_HD inline float augment_draw(uint64_t seed, int64_t n, int k, float lo, float hi) {
  return lo + (hi - lo) * uniform01(seed, uint64_t(n) * 4u + uint64_t(k));
}

// Sample n's map from output pixel (x, y) to input coordinates:
// x_in = t[0] x + t[1] y + t[2], y_in = t[3] x + t[4] y + t[5] (Keras' transform rows).
DC_HD inline void augment_transform(const Augment& a, uint64_t seed, int64_t n, float t[6]) {
  t[0] = 1.f, t[1] = 0.f, t[2] = 0.f, t[3] = 0.f, t[4] = 1.f, t[5] = 0.f;
  const float cx = 0.5f * float(a.w - 1), cy = 0.5f * float(a.h - 1);
  switch (a.kind) {
    case AugmentKind::Flip: {
      const bool flip = augment_draw(seed, n, 0, 0.f, 1.f) <= 0.5f;
      if (flip && (a.flips & 1)) t[0] = -1.f, t[2] = float(a.w - 1);
      if (flip && (a.flips & 2)) t[4] = -1.f, t[5] = float(a.h - 1);
      break;
    }
    case AugmentKind::Rotation: {  // about the centre, by degrees drawn in 360 * [lo, hi)
      const float degrees = augment_draw(seed, n, 0, a.lo[0] * 360.f, a.hi[0] * 360.f);
      const float angle = degrees * float(3.14159265358979323846 / 180.0);
      const float cs = cosf(angle), sn = sinf(angle);
      t[0] = cs, t[1] = -sn, t[2] = cx - cx * t[0] - cy * t[1];
      t[3] = sn, t[4] = cs, t[5] = cy - cx * t[3] - cy * t[4];
      break;
    }
    case AugmentKind::Translation:  // by fractions of the height and width
      t[5] = -augment_draw(seed, n, 0, a.lo[0], a.hi[0]) * float(a.h);
      t[2] = -augment_draw(seed, n, 1, a.lo[1], a.hi[1]) * float(a.w);
      break;
    case AugmentKind::Zoom: {  // 1 + the factor: above 1 zooms out
      const float zy = 1.f + augment_draw(seed, n, 0, a.lo[0], a.hi[0]);
      const float zx = a.same_zoom ? zy : 1.f + augment_draw(seed, n, 1, a.lo[1], a.hi[1]);
      t[0] = zx, t[2] = cx * (1.f - zx);
      t[4] = zy, t[5] = cy * (1.f - zy);
      break;
    }
    case AugmentKind::Crop:  // a window at a random whole offset
      t[5] = floorf(augment_draw(seed, n, 0, 0.f, float(a.h - a.oh + 1)));
      t[2] = floorf(augment_draw(seed, n, 1, 0.f, float(a.w - a.ow + 1)));
      break;
    default: break;
  }
}

// A position outside [0, size) moved inside by the fill mode (constant: left as it is).
DC_HD inline int64_t floor_mod(int64_t a, int64_t b) { return ((a % b) + b) % b; }
DC_HD inline int64_t mirror_index(int64_t i, int64_t size) {
  const int64_t s = size - 1;
  if (s == 0) return 0;
  const int64_t m = floor_mod(i + s, 2 * s) - s;
  return m < 0 ? -m : m;
}
DC_HD inline int64_t fill_index(FillMode mode, int64_t i, int64_t size) {
  switch (mode) {
    case FillMode::Nearest: return i < 0 ? 0 : i >= size ? size - 1 : i;
    case FillMode::Wrap: return floor_mod(i, size);
    case FillMode::Mirror: return mirror_index(i, size);
    case FillMode::Reflect: {
      const int64_t m = mirror_index(2 * i + 1, 2 * size + 1) - 1;
      return m >= 0 ? m / 2 : -((-m + 1) / 2);  // (floor division)
    }
    default: return i;
  }
}

// The value of channel ci at input coordinates (yin, xin) of an image (h, w, c).
DC_HD inline float augment_sample(const Augment& a, const float* image, float yin, float xin,
                                  int64_t ci) {
  int64_t ys[2], xs[2];
  float wy[2], wx[2];
  int count;
  if (a.bilinear) {
    const float y0 = floorf(yin), x0 = floorf(xin);
    ys[0] = int64_t(y0), ys[1] = ys[0] + 1, wy[1] = yin - y0, wy[0] = 1.f - wy[1];
    xs[0] = int64_t(x0), xs[1] = xs[0] + 1, wx[1] = xin - x0, wx[0] = 1.f - wx[1];
    count = 2;
  } else {  // nearest: rounded half away from zero
    ys[0] = int64_t(roundf(yin)), xs[0] = int64_t(roundf(xin)), wy[0] = wx[0] = 1.f;
    count = 1;
  }
  // Each row and column read, moved inside by the fill mode when it lies outside (the
  // modulo arithmetic only there: most reads lie inside).
  bool y_ok[2], x_ok[2];
  for (int i = 0; i < count; ++i) {
    y_ok[i] = ys[i] >= 0 && ys[i] < a.h;
    x_ok[i] = xs[i] >= 0 && xs[i] < a.w;
    if (!y_ok[i]) ys[i] = fill_index(a.fill, ys[i], a.h);
    if (!x_ok[i]) xs[i] = fill_index(a.fill, xs[i], a.w);
  }
  const bool constant = a.fill == FillMode::Constant;
  float s = 0.f;
  for (int i = 0; i < count; ++i)
    for (int j = 0; j < count; ++j) {
      const float v = constant && !(y_ok[i] && x_ok[j])
                          ? a.fill_value
                          : image[(ys[i] * a.w + xs[j]) * a.c + ci];
      s += wy[i] * wx[j] * v;
    }
  return s;
}

// Output value (oy, ox, ci) of a geometric layer, t the sample's transform.
DC_HD inline float augment_geometric(const Augment& a, const float* image, const float t[6],
                                     int64_t oy, int64_t ox, int64_t ci) {
  const float x = float(ox), y = float(oy);
  return augment_sample(a, image, t[3] * x + t[4] * y + t[5], t[0] * x + t[1] * y + t[2], ci);
}

// Contrast and brightness: sample n's factor (contrast) or offset (brightness: the drawn
// fraction of the value range).
DC_HD inline float augment_factor(const Augment& a, uint64_t seed, int64_t n) {
  const float f = augment_draw(seed, n, 0, a.lo[0], a.hi[0]);
  return a.kind == AugmentKind::Contrast ? f : f * (a.value_hi - a.value_lo);
}
// x's new value, `mean` its image's mean in its channel (contrast), clipped to the range.
DC_HD inline float augment_value(const Augment& a, float x, float mean, float f) {
  const float v = a.kind == AugmentKind::Contrast ? (x - mean) * f + mean : x + f;
  return v < a.value_lo ? a.value_lo : v > a.value_hi ? a.value_hi : v;
}

DC_HD inline bool augment_is_geometric(AugmentKind k) {
  return k != AugmentKind::Contrast && k != AugmentKind::Brightness;
}

}  // namespace deepcore
