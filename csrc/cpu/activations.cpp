// CPU activations: forward and backward side by side, for float and double.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "deepcore/kernels.h"

namespace deepcore {
namespace {

constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

template <class T>
inline T sigmoid(T x) {
  // Stable for large |x|: exp of a non-positive number only.
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}

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

}  // namespace

template <class T>
void act_forward(ActSpec a, const T* x, T* y, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  const T alpha = T(a.alpha);
  switch (a.kind) {
    case Act::Linear:
      if (x != y) std::copy(x, x + n, y);
      return;
    case Act::Relu:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
      return;
    case Act::LeakyRelu:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : alpha * x[i];
      return;
    case Act::Elu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : alpha * std::expm1(x[i]);
      return;
    case Act::Selu:
      for (int64_t i = 0; i < n; ++i)
        y[i] = T(kSeluScale) * (x[i] > T(0) ? x[i] : T(kSeluAlpha) * std::expm1(x[i]));
      return;
    case Act::Sigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = sigmoid(x[i]);
      return;
    case Act::HardSigmoid:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(x[i] / T(6) + T(0.5), T(0)), T(1));
      return;
    case Act::Tanh:
      for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
      return;
    case Act::Softmax:
      softmax_rows(x, y, rows, cols);
      return;
    case Act::Softplus:
      for (int64_t i = 0; i < n; ++i)
        y[i] = std::max(x[i], T(0)) + std::log1p(std::exp(-std::abs(x[i])));
      return;
    case Act::Softsign:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (std::abs(x[i]) + T(1));
      return;
    case Act::Swish:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid(x[i]);
      return;
    case Act::Gelu:
      for (int64_t i = 0; i < n; ++i)
        y[i] = T(0.5) * x[i] * (T(1) + std::erf(x[i] * T(M_SQRT1_2)));
      return;
    case Act::Exponential:
      for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
      return;
    case Act::Step:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] >= T(0) ? T(1) : T(0);
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
    case Act::Relu:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > T(0) ? dy[i] : T(0);
      return;
    case Act::LeakyRelu:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > T(0) ? dy[i] : alpha * dy[i];
      return;
    case Act::Elu:
      for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > T(0) ? dy[i] : dy[i] * (y[i] + alpha);
      return;
    case Act::Selu:
      for (int64_t i = 0; i < n; ++i)
        dx[i] = x[i] > T(0) ? T(kSeluScale) * dy[i] : dy[i] * (y[i] + T(kSeluScale * kSeluAlpha));
      return;
    case Act::Sigmoid:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (T(1) - y[i]);
      return;
    case Act::HardSigmoid:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i)
        dx[i] = (x[i] > T(-3) && x[i] < T(3)) ? dy[i] / T(6) : T(0);
      return;
    case Act::Tanh:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (T(1) - y[i] * y[i]);
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
    case Act::Softplus:
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * sigmoid(x[i]);
      return;
    case Act::Softsign:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        T d = std::abs(x[i]) + T(1);
        dx[i] = dy[i] / (d * d);
      }
      return;
    case Act::Swish:
      for (int64_t i = 0; i < n; ++i) {
        T s = sigmoid(x[i]);
        dx[i] = dy[i] * (s + x[i] * s * (T(1) - s));
      }
      return;
    case Act::Gelu:
      for (int64_t i = 0; i < n; ++i) {
        T cdf = T(0.5) * (T(1) + std::erf(x[i] * T(M_SQRT1_2)));
        T pdf = std::exp(T(-0.5) * x[i] * x[i]) * T(0.3989422804014327);
        dx[i] = dy[i] * (cdf + x[i] * pdf);
      }
      return;
    case Act::Exponential:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i];
      return;
    case Act::Step:
      throw std::invalid_argument(
          "activation 'step' has no gradient: use it for inference (Perceptron), not in a "
          "layer trained with backpropagation");
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
