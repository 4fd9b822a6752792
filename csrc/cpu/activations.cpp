// CPU activations: the loops over rows and elements; the per-element formulas, forward
// and derivative side by side, live in deepcore/elementwise.h (shared with the CUDA
// kernels).
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "deepcore/elementwise.h"
#include "deepcore/kernels.h"

namespace deepcore {
namespace {

template <class T>
void softmax_rows(const T* x, T* y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T m = xr[0];
    for (int64_t c = 1; c < cols; ++c) m = std::max(m, xr[c]);
    T s = 0;
    for (int64_t c = 0; c < cols; ++c) {
      yr[c] = std::exp(xr[c] - m);
      s += yr[c];
    }
    T inv = T(1) / s;
    for (int64_t c = 0; c < cols; ++c) yr[c] *= inv;
  }
}

// One loop per activation; `omp simd` where the formula has no libm call.
template <class Op, class T>
void map_forward(const T* x, T* y, int64_t n, T alpha) {
  if constexpr (Op::simd_f) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = Op::f(x[i], alpha);
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = Op::f(x[i], alpha);
  }
}

template <class Op, class T>
void map_backward(const T* x, const T* y, const T* dy, T* dx, int64_t n, T alpha) {
  if constexpr (Op::simd_df) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dx[i] = Op::df(x[i], y[i], dy[i], alpha);
  } else {
    for (int64_t i = 0; i < n; ++i) dx[i] = Op::df(x[i], y[i], dy[i], alpha);
  }
}

}  // namespace

template <class T>
void act_forward(ActSpec a, const T* x, T* y, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  const T alpha = T(a.alpha);
  switch (a.kind) {
    case Act::Linear:
      if (x != y) std::copy(x, x + n, y);
      return;
    case Act::Softmax:
      softmax_rows(x, y, rows, cols);
      return;
    case Act::Step:
      map_forward<ew::Step>(x, y, n, alpha);
      return;
    default:
      if (ew::visit_elementwise(a.kind, [&](auto op) { map_forward<decltype(op)>(x, y, n, alpha); }))
        return;
  }
  throw std::invalid_argument("unknown activation");
}

template <class T>
void act_backward(ActSpec a, const T* x, const T* y, const T* dy, T* dx, int64_t rows,
                  int64_t cols) {
  const int64_t n = rows * cols;
  const T alpha = T(a.alpha);
  switch (a.kind) {
    case Act::Linear:
      if (dx != dy) std::copy(dy, dy + n, dx);
      return;
    case Act::Softmax:
      for (int64_t r = 0; r < rows; ++r) {
        const T* yr = y + r * cols;
        const T* dyr = dy + r * cols;
        T* dxr = dx + r * cols;
        T dot = 0;
        for (int64_t c = 0; c < cols; ++c) dot += dyr[c] * yr[c];
        for (int64_t c = 0; c < cols; ++c) dxr[c] = yr[c] * (dyr[c] - dot);
      }
      return;
    case Act::Step:
      throw std::invalid_argument(
          "activation 'step' has no gradient: use it for inference (Perceptron), not in a "
          "layer trained with backpropagation");
    default:
      if (ew::visit_elementwise(a.kind, [&](auto op) {
            map_backward<decltype(op)>(x, y, dy, dx, n, alpha);
          }))
        return;
  }
  throw std::invalid_argument("unknown activation");
}

template void act_forward<float>(ActSpec, const float*, float*, int64_t, int64_t);
template void act_forward<double>(ActSpec, const double*, double*, int64_t, int64_t);
template void act_backward<float>(ActSpec, const float*, const float*, const float*, float*,
                                  int64_t, int64_t);
template void act_backward<double>(ActSpec, const double*, const double*, const double*,
                                   double*, int64_t, int64_t);

}  // namespace deepcore
