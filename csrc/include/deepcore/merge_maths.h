// The per-element maths of Keras' merge layers (Add, Subtract, Multiply, Average, Maximum,
// Minimum) over inputs of one shape, shared by the CPU and CUDA kernels.
#pragma once

#include <cmath>
#include <cstdint>

#include "deepcore/hd.h"
#include "deepcore/kernels.h"

namespace deepcore {

// One step of the fold: the value so far v joined with the next input's x (Average sums).
DC_HD inline float merge_step(MergeOp op, float v, float x) {
  switch (op) {
    case MergeOp::Add:
    case MergeOp::Average: return v + x;
    case MergeOp::Subtract: return v - x;
    case MergeOp::Multiply: return v * x;
    case MergeOp::Maximum: return (x > v || x != x) ? x : v;
    case MergeOp::Minimum: return (x < v || x != x) ? x : v;
  }
  return v;
}

// Element e of the merge, folding the inputs in order as Keras does (Average: their sum over
// their count; Maximum and Minimum: a NaN wins, as ops.maximum's).
DC_HD inline float merge_value(MergeOp op, const MergeInputs& in, int64_t e) {
  float v = in.x[0][e];
  for (int k = 1; k < in.count; ++k) v = merge_step(op, v, in.x[k][e]);
  return op == MergeOp::Average ? v / static_cast<float>(in.count) : v;
}

// d(element e of the merge)/d(input k) times dy, y the merge's value there. Maximum and
// Minimum: the first input equal to y takes dy (ties are measure zero in practice).
DC_HD inline float merge_grad(MergeOp op, const MergeInputs& in, int k, int64_t e, float y,
                              float dy) {
  switch (op) {
    case MergeOp::Add: return dy;
    case MergeOp::Average: return dy / static_cast<float>(in.count);
    case MergeOp::Subtract: return k == 0 ? dy : -dy;
    case MergeOp::Multiply: {
      float g = dy;
      for (int j = 0; j < in.count; ++j)
        if (j != k) g *= in.x[j][e];
      return g;
    }
    case MergeOp::Maximum:
    case MergeOp::Minimum:
      for (int j = 0; j < k; ++j)
        if (in.x[j][e] == y) return 0.f;
      return in.x[k][e] == y ? dy : 0.f;
  }
  return 0.f;
}

// Keras' L2 normalization (ops.normalize, order 2; Dot(normalize=True)) of a group of n
// values `stride` apart: y = x * min(rsqrt(sum x^2), 1 / kNormalizeEpsilon).
constexpr double kNormalizeEpsilon = 1e-7;

DC_HD inline double l2_inverse_norm(const float* x, int64_t n, int64_t stride, bool* clamped) {
  double s = 0;
  for (int64_t j = 0; j < n; ++j) s += double(x[j * stride]) * x[j * stride];
  const double r = 1.0 / sqrt(s);  // (inf for a zero group: clamped)
  *clamped = !(r < 1.0 / kNormalizeEpsilon);
  return *clamped ? 1.0 / kNormalizeEpsilon : r;
}

DC_HD inline void l2_normalize_group(const float* x, float* y, int64_t n, int64_t stride) {
  bool clamped;
  const double inv = l2_inverse_norm(x, n, stride, &clamped);
  for (int64_t j = 0; j < n; ++j) y[j * stride] = static_cast<float>(x[j * stride] * inv);
}

// Its backward: dx = dy * inv - x * inv^3 * (x . dy), or dy * inv where the norm is clamped.
DC_HD inline void l2_normalize_group_backward(const float* x, const float* dy, float* dx,
                                              int64_t n, int64_t stride) {
  bool clamped;
  const double inv = l2_inverse_norm(x, n, stride, &clamped);
  double d = 0;
  for (int64_t j = 0; j < n; ++j) d += double(x[j * stride]) * dy[j * stride];
  const double c = clamped ? 0.0 : d * inv * inv * inv;
  for (int64_t j = 0; j < n; ++j)
    dx[j * stride] = static_cast<float>(dy[j * stride] * inv - x[j * stride] * c);
}

}  // namespace deepcore
