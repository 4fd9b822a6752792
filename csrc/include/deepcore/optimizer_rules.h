// Per-element maths of the optimizer updates (Keras 3's rules) and of the other element
// ops of a training step (penalties, clipping, dropout, the loss total), shared by the CPU kernels
// (cpu/optimizers.cpp, cpu/backend.cpp) and the CUDA kernels (cuda/update.cu). Each rule
// updates one parameter w, given its gradient g, in place along with its slots, from
// scalars that the kernel computes once per call (the learning rate, Adam's bias-corrected
// step alpha, 1 - beta). No libm call but sqrt inside the per-element functions, so that
// CPU loops over them vectorize.
#pragma once

#include <cmath>
#include <cstdint>

#include "deepcore/hd.h"
#include "deepcore/rng.h"

namespace deepcore {
namespace opt {

// ------------------------------------------------------------------ per-call scalars
// The factor of decoupled weight decay: w *= 1 - lr * weight_decay.
template <class T>
DC_HD inline T decay_factor(T lr, double weight_decay) {
  return T(1) - lr * T(weight_decay);
}

// Adam's step with Keras 3's bias correction: lr * sqrt(1 - b2^t) / (1 - b1^t), computed in
// double for the update that is the step-th (1-based).
template <class T>
DC_HD inline T adam_alpha(T lr, int64_t step, double beta_1, double beta_2) {
  return T(double(lr) * std::sqrt(1.0 - std::pow(beta_2, double(step))) /
           (1.0 - std::pow(beta_1, double(step))));
}

// ----------------------------------------------------------------- per-element rules
// Decoupled weight decay, applied before any optimizer's update: w *= f (decay_factor).
template <class T>
DC_HD inline void decay(T& w, T f) {
  w *= f;
}

// SGD without momentum: w -= lr g.
template <class T>
DC_HD inline void sgd(T& w, T g, T lr) {
  w -= lr * g;
}

// SGD with momentum: m = momentum m - lr g; w += m.
template <class T>
DC_HD inline void sgd_momentum(T& w, T g, T& m, T lr, T momentum) {
  m = m * momentum - g * lr;
  w += m;
}

// Nesterov momentum: m = momentum m - lr g; w += momentum m - lr g.
template <class T>
DC_HD inline void sgd_nesterov(T& w, T g, T& m, T lr, T momentum) {
  m = m * momentum - g * lr;
  w += m * momentum - g * lr;
}

// Adam (and AdamW, whose decay is decay() above): m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
// w -= alpha m / (sqrt(v) + eps), with alpha = adam_alpha, c1 = 1 - b1, c2 = 1 - b2.
template <class T>
DC_HD inline void adam(T& w, T g, T& m, T& v, T alpha, T c1, T c2, T eps) {
  m += (g - m) * c1;
  v += (g * g - v) * c2;
  w -= alpha * m / (std::sqrt(v) + eps);
}

// RMSprop: v = rho v + (1 - rho) g^2; centered: a = rho a + (1 - rho) g and the denominator
// is v - a^2 + eps, else v + eps; inc = lr g / sqrt(denominator); with momentum > 0,
// mom = momentum mom + inc and w -= mom, else w -= inc. mom and a are read only when used.
template <class T>
DC_HD inline void rmsprop(T& w, T g, T& v, T& mom, T& a, T lr, T rho, T momentum, T eps,
                          bool centered) {
  v = rho * v + (T(1) - rho) * g * g;
  T denom = v + eps;
  if (centered) {
    a = rho * a + (T(1) - rho) * g;
    denom = v - a * a + eps;
  }
  T inc = lr * g / std::sqrt(denom);
  if (momentum > 0) {
    mom = momentum * mom + inc;
    w -= mom;
  } else {
    w -= inc;
  }
}

// Adagrad: acc += g^2; w -= lr g / sqrt(acc + eps).
template <class T>
DC_HD inline void adagrad(T& w, T g, T& acc, T lr, T eps) {
  acc += g * g;
  w -= lr * g / std::sqrt(acc + eps);
}

// ------------------------------------------------ regularisation, clipping, dropout
// One weight's L1/L2 penalty l1 |w| + l2 w^2, in double.
DC_HD inline double l1l2_value(float w, float l1, float l2) {
  return double(l1) * std::abs(w) + double(l2) * w * w;
}

// Its gradient added to g: g += l1 sign(w) + 2 l2 w.
DC_HD inline void l1l2_grad(float& g, float w, float l1, float l2) {
  g += l1 * ((w > 0) - (w < 0)) + 2.f * l2 * w;
}

// One gradient value's part of the squared norm, in double.
DC_HD inline double squared(float g) { return double(g) * g; }

// min(max(g, -v), v), as std::min(std::max(g, -v), v) (a NaN stays NaN).
DC_HD inline float clip_value(float g, float v) {
  const float lo = g < -v ? -v : g;
  return v < lo ? v : lo;
}

// Dropout's mask value for element i: 1 / keep (`scale`) with probability keep, else 0,
// from the counter-based stream of rng.h (the same bits on every device).
DC_HD inline float dropout_mask(uint64_t seed, int64_t i, float keep, float scale) {
  return uniform01(seed, static_cast<uint64_t>(i)) < keep ? scale : 0.f;
}

// A run's loss total after one batch: totals[0] += (batch[0] * scale + batch[1]) * rows and
// totals[1] += rows, with batch = {the batch's loss sum, its regularisation penalty}.
DC_HD inline void add_batch_loss(const double* batch, double scale, int64_t rows,
                                 double* totals) {
  totals[0] += (batch[0] * scale + batch[1]) * static_cast<double>(rows);
  totals[1] += static_cast<double>(rows);
}

}  // namespace opt
}  // namespace deepcore
