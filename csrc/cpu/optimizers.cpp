// CPU optimizer updates with Keras 3's update rules. One fused pass over all
// parameters; bias corrections are computed once per call on the host.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "deepcore/kernels.h"

namespace deepcore {

void l1l2_penalty(const float* w, float* g, int64_t n, float l1, float l2, double* acc) {
  double r = *acc;
  for (int64_t i = 0; i < n; ++i) {
    r += double(l1) * std::abs(w[i]) + double(l2) * w[i] * w[i];
    if (g) g[i] += l1 * ((w[i] > 0) - (w[i] < 0)) + 2.f * l2 * w[i];
  }
  *acc = r;
}

void clip_by_value(float* g, int64_t n, float v) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) g[i] = std::min(std::max(g[i], -v), v);
}

void clip_by_norm(float* g, int64_t n, double max_norm) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(g[i]) * g[i];
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
    const T f = T(1) - lr * T(o.weight_decay);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) w[i] *= f;
  }
  const T eps = T(o.epsilon);
  switch (o.kind) {
    case Opt::SGD: {
      const T mom = T(o.momentum);
      if (mom <= 0) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) w[i] -= lr * g[i];
      } else if (o.nesterov) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) {
          s0[i] = s0[i] * mom - g[i] * lr;
          w[i] += s0[i] * mom - g[i] * lr;
        }
      } else {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) {
          s0[i] = s0[i] * mom - g[i] * lr;
          w[i] += s0[i];
        }
      }
      return;
    }
    case Opt::Adam:
    case Opt::AdamW: {
      const double b1 = o.beta_1, b2 = o.beta_2;
      const T alpha = T(double(lr) * std::sqrt(1.0 - std::pow(b2, double(step))) /
                        (1.0 - std::pow(b1, double(step))));
      const T c1 = T(1) - T(b1), c2 = T(1) - T(b2);
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        s0[i] += (g[i] - s0[i]) * c1;
        s1[i] += (g[i] * g[i] - s1[i]) * c2;
        w[i] -= alpha * s0[i] / (std::sqrt(s1[i]) + eps);
      }
      return;
    }
    case Opt::RMSprop: {
      const T rho = T(o.rho), mom = T(o.momentum);
      for (int64_t i = 0; i < n; ++i) {
        s0[i] = rho * s0[i] + (T(1) - rho) * g[i] * g[i];
        T denom = s0[i] + eps;
        if (o.centered) {
          s2[i] = rho * s2[i] + (T(1) - rho) * g[i];
          denom = s0[i] - s2[i] * s2[i] + eps;
        }
        T inc = lr * g[i] / std::sqrt(denom);
        if (mom > 0) {
          s1[i] = mom * s1[i] + inc;
          w[i] -= s1[i];
        } else {
          w[i] -= inc;
        }
      }
      return;
    }
    case Opt::Adagrad:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        s0[i] += g[i] * g[i];
        w[i] -= lr * g[i] / std::sqrt(s0[i] + eps);
      }
      return;
  }
  throw std::invalid_argument("unknown optimizer");
}

template void optimizer_update<float>(const OptSpec&, float, int64_t, float*, const float*,
                                      float*, float*, float*, int64_t);
template void optimizer_update<double>(const OptSpec&, double, int64_t, double*, const double*,
                                       double*, double*, double*, int64_t);

}  // namespace deepcore
