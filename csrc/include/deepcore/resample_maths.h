// Separable resampling of NHWC images (Resizing, CenterCrop), shared by the CPU kernel
// (cpu/conv.cpp) and the CUDA kernel (cuda/conv.cu). Along each axis, output position o reads
// the input positions index[k] with weights weight[k] for k in [start[o], start[o + 1]) (taps
// in compressed rows, so that no tap reads a pixel it does not weigh). The gradient is the
// same sum with the transposed taps (for each input position, the outputs that read it), so
// both directions gather: no atomics, the same result on every backend and run.
#pragma once

#include <cstdint>

#include "deepcore/hd.h"

namespace deepcore {

// The taps of one axis (device memory on a device backend).
struct AxisTaps {
  const int32_t* start = nullptr;  // size + 1 offsets
  const int32_t* index = nullptr;
  const float* weight = nullptr;
};

// (batch, h, w, c) -> (batch, oh, ow, c).
struct Resample {
  int64_t h = 0, w = 0, c = 0, oh = 0, ow = 0;
  AxisTaps y, x;
};

// One output value: the sum over the row taps of the row weight times the sum over the
// column taps of the column weight times the pixel, each sum in increasing tap order.
DC_HD inline float resample_value(const Resample& r, const float* image, int64_t oy, int64_t ox,
                                  int64_t ci) {
  float s = 0.f;
  for (int32_t a = r.y.start[oy]; a < r.y.start[oy + 1]; ++a) {
    const float* row = image + int64_t(r.y.index[a]) * r.w * r.c + ci;
    float t = 0.f;
    for (int32_t b = r.x.start[ox]; b < r.x.start[ox + 1]; ++b)
      t += r.x.weight[b] * row[int64_t(r.x.index[b]) * r.c];
    s += r.y.weight[a] * t;
  }
  return s;
}

}  // namespace deepcore
