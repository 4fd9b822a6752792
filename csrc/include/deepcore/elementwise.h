// Per-element maths of the activations, shared by the CPU kernels (cpu/activations.cpp)
// and the CUDA kernels (cuda/activations.cu): one formula per activation, forward and
// derivative side by side. Each activation is a struct with
//   f(x, alpha)         -> act(x)
//   df(x, y, dy, alpha) -> dy * act'(x), given y = act(x)
// and simd_f / simd_df, whether a CPU loop over f / df vectorizes (no libm call inside).
// Softmax works on rows, Linear is a copy and Step has no derivative: the kernels handle
// those three themselves.
#pragma once

#include <cmath>

#include "deepcore/hd.h"
#include "deepcore/kernels.h"


namespace deepcore {
namespace ew {

constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSqrt1_2 = 0.70710678118654752440084436210485;
constexpr double kInvSqrt2Pi = 0.39894228040143267793994605993438;

// Stable for large |x|: exp of a non-positive number only.
template <class T>
DC_HD inline T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

struct Relu {
  static constexpr bool simd_f = true, simd_df = true;
  template <class T>
  DC_HD static T f(T x, T) { return x > T(0) ? x : T(0); }
  template <class T>
  DC_HD static T df(T x, T, T dy, T) { return x > T(0) ? dy : T(0); }
};

struct LeakyRelu {
  static constexpr bool simd_f = true, simd_df = true;
  template <class T>
  DC_HD static T f(T x, T a) { return x > T(0) ? x : a * x; }
  template <class T>
  DC_HD static T df(T x, T, T dy, T a) { return x > T(0) ? dy : a * dy; }
};

struct Elu {
  static constexpr bool simd_f = false, simd_df = false;
  template <class T>
  DC_HD static T f(T x, T a) { return x > T(0) ? x : a * std::expm1(x); }
  template <class T>
  DC_HD static T df(T x, T y, T dy, T a) { return x > T(0) ? dy : dy * (y + a); }
};

struct Selu {
  static constexpr bool simd_f = false, simd_df = false;
  template <class T>
  DC_HD static T f(T x, T) {
    return T(kSeluScale) * (x > T(0) ? x : T(kSeluAlpha) * std::expm1(x));
  }
  template <class T>
  DC_HD static T df(T x, T y, T dy, T) {
    return x > T(0) ? T(kSeluScale) * dy : dy * (y + T(kSeluScale * kSeluAlpha));
  }
};

struct Sigmoid {
  static constexpr bool simd_f = false, simd_df = true;
  template <class T>
  DC_HD static T f(T x, T) { return sigmoid(x); }
  template <class T>
  DC_HD static T df(T, T y, T dy, T) { return dy * y * (T(1) - y); }
};

struct HardSigmoid {
  static constexpr bool simd_f = true, simd_df = true;
  template <class T>
  DC_HD static T f(T x, T) {
    const T v = x / T(6) + T(0.5);
    return v < T(0) ? T(0) : (v > T(1) ? T(1) : v);
  }
  template <class T>
  DC_HD static T df(T x, T, T dy, T) { return (x > T(-3) && x < T(3)) ? dy / T(6) : T(0); }
};

struct Tanh {
  static constexpr bool simd_f = false, simd_df = true;
  template <class T>
  DC_HD static T f(T x, T) { return std::tanh(x); }
  template <class T>
  DC_HD static T df(T, T y, T dy, T) { return dy * (T(1) - y * y); }
};

struct Softplus {
  static constexpr bool simd_f = false, simd_df = false;
  template <class T>
  DC_HD static T f(T x, T) {
    return (x > T(0) ? x : T(0)) + std::log1p(std::exp(-std::abs(x)));
  }
  template <class T>
  DC_HD static T df(T x, T, T dy, T) { return dy * sigmoid(x); }
};

struct Softsign {
  static constexpr bool simd_f = true, simd_df = true;
  template <class T>
  DC_HD static T f(T x, T) { return x / (std::abs(x) + T(1)); }
  template <class T>
  DC_HD static T df(T x, T, T dy, T) {
    const T d = std::abs(x) + T(1);
    return dy / (d * d);
  }
};

struct Swish {
  static constexpr bool simd_f = false, simd_df = false;
  template <class T>
  DC_HD static T f(T x, T) { return x * sigmoid(x); }
  template <class T>
  DC_HD static T df(T x, T, T dy, T) {
    const T s = sigmoid(x);
    return dy * (s + x * s * (T(1) - s));
  }
};

// The exact (erf) form, Keras' default approximate=False.
struct Gelu {
  static constexpr bool simd_f = false, simd_df = false;
  template <class T>
  DC_HD static T f(T x, T) { return T(0.5) * x * (T(1) + std::erf(x * T(kSqrt1_2))); }
  template <class T>
  DC_HD static T df(T x, T, T dy, T) {
    const T cdf = T(0.5) * (T(1) + std::erf(x * T(kSqrt1_2)));
    const T pdf = std::exp(T(-0.5) * x * x) * T(kInvSqrt2Pi);
    return dy * (cdf + x * pdf);
  }
};

struct Exponential {
  static constexpr bool simd_f = false, simd_df = true;
  template <class T>
  DC_HD static T f(T x, T) { return std::exp(x); }
  template <class T>
  DC_HD static T df(T, T y, T dy, T) { return dy * y; }
};

// Heaviside: forward only.
struct Step {
  static constexpr bool simd_f = true, simd_df = false;
  template <class T>
  DC_HD static T f(T x, T) { return x >= T(0) ? T(1) : T(0); }
};

// Calls fn(Op{}) with the struct of a per-element activation and returns true, or returns
// false for Linear, Softmax and Step (and an unknown kind), which the caller handles.
template <class F>
inline bool visit_elementwise(Act kind, F&& fn) {
  switch (kind) {
    case Act::Relu: fn(Relu{}); return true;
    case Act::LeakyRelu: fn(LeakyRelu{}); return true;
    case Act::Elu: fn(Elu{}); return true;
    case Act::Selu: fn(Selu{}); return true;
    case Act::Sigmoid: fn(Sigmoid{}); return true;
    case Act::HardSigmoid: fn(HardSigmoid{}); return true;
    case Act::Tanh: fn(Tanh{}); return true;
    case Act::Softplus: fn(Softplus{}); return true;
    case Act::Softsign: fn(Softsign{}); return true;
    case Act::Swish: fn(Swish{}); return true;
    case Act::Gelu: fn(Gelu{}); return true;
    case Act::Exponential: fn(Exponential{}); return true;
    default: return false;
  }
}

}  // namespace ew
}  // namespace deepcore
