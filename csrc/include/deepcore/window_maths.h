// Index arithmetic of 2-D windows (convolutions and pooling) over NHWC images, shared by
// the CPU kernels (cpu/conv.cpp) and the CUDA kernels (cuda/conv.cu). Along one axis, the
// window of output position o starts at input position o * stride - pad and spans k
// positions (a dilated window, d > 1, reads every d-th of (k - 1) * d + 1 positions);
// those outside [0, size) are padding. The integer type T is the caller's:
// int64_t on the CPU, int32_t or int64_t on the GPU (whichever the sizes allow).
#pragma once

#include <cstdint>

#include "deepcore/hd.h"

namespace deepcore {
namespace window {

// Positions begin <= p < end (none when end <= begin).
template <class T>
struct Range {
  T begin, end;
  DC_HD T size() const { return end > begin ? end - begin : T(0); }
};

// The input position that output o's window reads at offset k (padding outside [0, size)).
template <class T>
DC_HD inline T input_at(T o, T k, T stride, T pad) {
  return o * stride + k - pad;
}

// The offset at which output o's window reads input position i (the inverse of input_at).
template <class T>
DC_HD inline T offset_of(T i, T o, T stride, T pad) {
  return i + pad - o * stride;
}

// The window offsets of output o whose input positions lie in [0, size).
template <class T>
DC_HD inline Range<T> offsets_inside(T o, T k, T stride, T pad, T size) {
  const T start = o * stride - pad;
  return {start < 0 ? -start : T(0), size - start < k ? size - start : k};
}

// The input positions of output o's window that lie in [0, size).
template <class T>
DC_HD inline Range<T> window_inside(T o, T k, T stride, T pad, T size) {
  const T start = o * stride - pad;
  return {start > 0 ? start : T(0), start + k < size ? start + k : size};
}

// The outputs (of `count`) whose windows contain input position i >= 0: those o with
// o * stride - pad <= i < o * stride - pad + k, in increasing order.
template <class T>
DC_HD inline Range<T> windows_covering(T i, T k, T stride, T pad, T count) {
  const T t = i + pad;
  const T last = t / stride + 1;
  return {t >= k ? (t - k) / stride + 1 : T(0), last < count ? last : count};
}

// Dilated windows (dilation d > 1: offset k reads input_at(o, k * d, stride, pad)): the
// output whose window reads input position i at offset k, or -1 when that output would
// not be one of the `count`. Each window reads i at one offset at most, and a larger k
// belongs to an earlier window.
template <class T>
DC_HD inline T window_reading(T i, T k, T stride, T dilation, T pad, T count) {
  const T t = i + pad - k * dilation;
  if (t < 0 || t % stride != 0) return T(-1);
  return t / stride < count ? t / stride : T(-1);
}

// Max pooling: whether value v replaces the window's running maximum `best`. Only a
// strictly larger value does, so the first maximum in row-major order wins, a NaN never
// replaces one, and a NaN met first stays.
DC_HD inline bool beats(float v, float best) { return v > best; }

// Average pooling: the weight of each of the `count` valid positions of a window.
DC_HD inline float average_weight(int64_t count) { return 1.f / static_cast<float>(count); }

}  // namespace window
}  // namespace deepcore
