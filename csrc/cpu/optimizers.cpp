// CPU optimizer updates with Keras 3's update rules (the per-element formulas of
// deepcore/optimizer_rules.h, which the CUDA kernels share). One pass over all parameters
// per rule; bias corrections are computed once per call on the host.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "deepcore/kernels.h"
#include "deepcore/optimizer_rules.h"

namespace deepcore {

void l1l2_penalty(const float* w, float* g, int64_t n, float l1, float l2, double* acc) {
  double r = *acc;
  for (int64_t i = 0; i < n; ++i) {
    r += opt::l1l2_value(w[i], l1, l2);
    if (g) opt::l1l2_grad(g[i], w[i], l1, l2);
  }
  *acc = r;
}

void clip_by_value(float* g, int64_t n, float v) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) g[i] = opt::clip_value(g[i], v);
}

void clip_by_norm(float* g, int64_t n, double max_norm) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += opt::squared(g[i]);
  const double norm = std::sqrt(ss);
  if (norm > max_norm) {
    const float s = static_cast<float>(max_norm / norm);
    for (int64_t i = 0; i < n; ++i) g[i] *= s;
  }
}

double schedule_value(const ScheduleSpec& s, int64_t step_count) {
  const double step = static_cast<double>(step_count);
  switch (s.kind) {
    case Schedule::Constant:
      return s.initial_learning_rate;
    case Schedule::ExponentialDecay: {
      double p = step / s.decay_steps;
      if (s.staircase) p = std::floor(p);
      return s.initial_learning_rate * std::pow(s.decay_rate, p);
    }
    case Schedule::PiecewiseConstantDecay: {
      size_t i = 0;
      while (i < s.boundaries.size() && step > s.boundaries[i]) ++i;
      return s.values.at(i);
    }
    case Schedule::CosineDecay: {
      double start = s.initial_learning_rate, t = step;
      if (s.warmup) {
        if (step < s.warmup_steps)
          return start + (s.warmup_target - start) * step / s.warmup_steps;
        start = s.warmup_target;
        t = step - s.warmup_steps;
      }
      const double frac = std::min(t, s.decay_steps) / s.decay_steps;
      const double cosine = 0.5 * (1.0 + std::cos(M_PI * frac));
      return start * ((1.0 - s.alpha) * cosine + s.alpha);
    }
  }
  throw std::invalid_argument("unknown learning-rate schedule");
}

int optimizer_slots(const OptSpec& o) {
  switch (o.kind) {
    case Opt::SGD:
      return o.momentum > 0 ? 1 : 0;
    case Opt::Adam:
    case Opt::AdamW:
      return 2;
    case Opt::RMSprop:
      return 3;  // velocity, momentum, average gradient (the last two may stay unused)
    case Opt::Adagrad:
      return 1;
  }
  return 0;
}

double optimizer_slot_init(const OptSpec& o, int slot) {
  return (o.kind == Opt::Adagrad && slot == 0) ? o.initial_accumulator_value : 0.0;
}

template <class T>
void optimizer_update(const OptSpec& o, T lr, int64_t step, T* w, const T* g, T* s0, T* s1,
                      T* s2, int64_t n) {
  // Decoupled weight decay (AdamW, or any optimizer given weight_decay), applied first.
  if (o.weight_decay > 0) {
    const T f = opt::decay_factor(lr, o.weight_decay);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) opt::decay(w[i], f);
  }
  const T eps = T(o.epsilon);
  switch (o.kind) {
    case Opt::SGD: {
      const T mom = T(o.momentum);
      if (mom <= 0) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) opt::sgd(w[i], g[i], lr);
      } else if (o.nesterov) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) opt::sgd_nesterov(w[i], g[i], s0[i], lr, mom);
      } else {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) opt::sgd_momentum(w[i], g[i], s0[i], lr, mom);
      }
      return;
    }
    case Opt::Adam:
    case Opt::AdamW: {
      const T alpha = opt::adam_alpha(lr, step, o.beta_1, o.beta_2);
      const T c1 = T(1) - T(o.beta_1), c2 = T(1) - T(o.beta_2);
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) opt::adam(w[i], g[i], s0[i], s1[i], alpha, c1, c2, eps);
      return;
    }
    case Opt::RMSprop: {
      const T rho = T(o.rho), mom = T(o.momentum);
      const bool centered = o.centered;
      for (int64_t i = 0; i < n; ++i)
        opt::rmsprop(w[i], g[i], s0[i], s1[i], s2[i], lr, rho, mom, eps, centered);
      return;
    }
    case Opt::Adagrad:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) opt::adagrad(w[i], g[i], s0[i], lr, eps);
      return;
  }
  throw std::invalid_argument("unknown optimizer");
}

template void optimizer_update<float>(const OptSpec&, float, int64_t, float*, const float*,
                                      float*, float*, float*, int64_t);
template void optimizer_update<double>(const OptSpec&, double, int64_t, double*, const double*,
                                       double*, double*, double*, int64_t);

}  // namespace deepcore
