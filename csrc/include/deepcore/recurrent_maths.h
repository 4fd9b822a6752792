// The per-element maths of one time step of SimpleRNN, LSTM and GRU (Keras 3's equations),
// shared by the CPU kernels (cpu/recurrent.cpp) and the CUDA ones (cuda/recurrent.cu). Each
// function computes unit u of one sample's row; the buffers' layouts are RnnStep's (kernels.h).
// Gates follow Keras' order: LSTM i, f, c, o; GRU z, r, h.
#pragma once

#include <cmath>
#include <cstdint>

#include "deepcore/hd.h"
#include "deepcore/kernels.h"

namespace deepcore {

// exp, expm1, tanh and sigmoid in float without a libm call, so that a CPU loop over them
// vectorizes (the gate maths of every step is much of a recurrent layer's time).

DC_HD_INLINE float rnn_bits_to_float(int32_t bits) {
#ifdef __CUDA_ARCH__
  return __int_as_float(bits);
#else
  return __builtin_bit_cast(float, bits);
#endif
}

// exp(r) - 1 for |r| <= ln 2 / 2 by its Taylor series to r^7 (error under 2e-9 relative).
DC_HD_INLINE float rnn_expm1_reduced(float r) {
  return r * (1.f + r * (0.5f + r * (1.f / 6 + r * (1.f / 24 + r * (1.f / 120 + r * (1.f / 720 +
                                                                             r * (1.f / 5040)))))));
}

// exp(x) - 1 = 2^k (expm1(r) + 1) - 1 = 2^k expm1(r) + (2^k - 1), with x = k ln 2 + r and
// |r| <= ln 2 / 2 (ln 2 split in two for exactness): no cancellation near 0, where k = 0,
// and 2^k - 1 is exact. x is clamped to [-87, 88] (2^k neither overflows nor is subnormal;
// exp(-87) ~ 1.6e-38). Within 2 ulp of libm's expm1 and exp.
DC_HD_INLINE float rnn_expm1(float x) {
  x = x < -87.f ? -87.f : (x > 88.f ? 88.f : x);
  // k = round(x / ln 2) by adding and removing 1.5 * 2^23 (floorf does not vectorize)
  const float k = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
  const float r = (x - k * 0.693145751953125f) - k * 1.42860682030941723e-6f;
  const float scale = rnn_bits_to_float((static_cast<int32_t>(k) + 127) << 23);
  return scale * rnn_expm1_reduced(r) + (scale - 1.f);
}

DC_HD_INLINE float rnn_exp(float x) { return rnn_expm1(x) + 1.f; }

// tanh(x) = sign(x) u / (u + 2) with u = expm1(2|x|).
DC_HD_INLINE float rnn_tanh(float x) {
  const float a = x < 0.f ? -x : x;
  const float u = rnn_expm1(2.f * a);
  const float t = u / (u + 2.f);
  return x < 0.f ? -t : t;
}

DC_HD_INLINE float rnn_sigmoid(float x) { return 1.f / (1.f + rnn_exp(-x)); }

// act(x) for the activations a recurrent cell may use (recurrent_act_supported).
DC_HD_INLINE float rnn_act(Act a, float x) {
  switch (a) {
    case Act::Tanh:
      return rnn_tanh(x);
    case Act::Sigmoid:
      return rnn_sigmoid(x);
    case Act::HardSigmoid: {
      const float y = (x + 3.f) / 6.f;
      return y < 0.f ? 0.f : (y > 1.f ? 1.f : y);
    }
    case Act::Relu:
      return x > 0.f ? x : 0.f;
    default:  // Linear
      return x;
  }
}

// act'(x) from the output y = act(x).
DC_HD_INLINE float rnn_act_grad(Act a, float y) {
  switch (a) {
    case Act::Tanh:
      return 1.f - y * y;
    case Act::Sigmoid:
      return y * (1.f - y);
    case Act::HardSigmoid:
      return (y > 0.f && y < 1.f) ? 1.f / 6.f : 0.f;
    case Act::Relu:
      return y > 0.f ? 1.f : 0.f;
    default:
      return 1.f;
  }
}

// Whether a cell's activation may be `a` (those rnn_act computes and differentiates from y).
inline bool recurrent_act_supported(Act a) {
  return a == Act::Tanh || a == Act::Sigmoid || a == Act::HardSigmoid || a == Act::Relu ||
         a == Act::Linear;
}

// The cells below take and return values: the kernels load and store them (a CPU loop over
// units with no null pointer to test vectorizes; a CUDA thread per element), so that both
// compute each value by the same expressions.

// ------------------------------------------------------------------ SimpleRNN
// h = act(x W + b + h_{t-1} U), from that sum.
template <class A>
DC_HD_INLINE float rnn_cell(A act, float pre) {
  return rnn_act(act, pre);
}

// dL/d(pre) from dL/dh_t (g) and h_t; h_{t-1} reaches h_t only through the recurrent GEMM.
template <class A>
DC_HD_INLINE float rnn_cell_grad(A act, float h, float g) {
  return g * rnn_act_grad(act, h);
}

// ----------------------------------------------------------------------- LSTM
// The gates (i, f, act(c~), o) from their pre-activations (x W + b + h_{t-1} U), the cell
// state c = f c_{t-1} + i act(c~) and h = o act(c).
struct LstmCell {
  float i, f, g, o, c, h;
};

template <class A, class R>
DC_HD_INLINE LstmCell lstm_cell(A act, R rec, float zi, float zf, float zg, float zo,
                                float c_prev) {
  LstmCell s;
  s.i = rnn_act(rec, zi);
  s.f = rnn_act(rec, zf);
  s.g = rnn_act(act, zg);
  s.o = rnn_act(rec, zo);
  s.c = s.f * c_prev + s.i * s.g;
  s.h = s.o * rnn_act(act, s.c);
  return s;
}

// The pre-activations' gradients and dL/dc_{t-1}, from the gates, c_{t-1}, c_t, dL/dh_t (gh)
// and the cell-state carry dL/dc_t from step t+1 (dc).
struct LstmGrad {
  float i, f, g, o, c_prev;
};

template <class A, class R>
DC_HD_INLINE LstmGrad lstm_cell_grad(A act, R rec, float i, float f, float g, float o,
                                     float c_prev, float c, float gh, float dc) {
  const float ac = rnn_act(act, c);
  const float gc = dc + gh * o * rnn_act_grad(act, ac);
  LstmGrad d;
  d.i = gc * g * rnn_act_grad(rec, i);
  d.f = gc * c_prev * rnn_act_grad(rec, f);
  d.g = gc * i * rnn_act_grad(act, g);
  d.o = gh * ac * rnn_act_grad(rec, o);
  d.c_prev = gc * f;
  return d;
}

// ------------------------------------------------------------------------ GRU
// Keras' reset_after form, from x W + b_in (xz, xr, xh) and h_{t-1} U + b_rec (rz, rr, rc):
// the gates z, r, h~ = act(xh + r rc) and h = z h_{t-1} + (1 - z) h~.
struct GruCell {
  float z, r, hh, h;
};

template <class A, class R>
DC_HD_INLINE GruCell gru_cell(A act, R rec, float xz, float xr, float xh, float rz, float rr,
                              float rc, float h_prev) {
  GruCell s;
  s.z = rnn_act(rec, xz + rz);
  s.r = rnn_act(rec, xr + rr);
  s.hh = rnn_act(act, xh + s.r * rc);
  s.h = s.z * h_prev + (1.f - s.z) * s.hh;
  return s;
}

// From the gates, rc, h_{t-1} and dL/dh_t (g): the gradients of x W + b_in (z, r, h) and of
// h_{t-1} U + b_rec (z, r, and rh for its third part), and the direct part of dL/dh_{t-1}.
struct GruGrad {
  float z, r, h, rh, h_prev;
};

template <class A, class R>
DC_HD_INLINE GruGrad gru_cell_grad(A act, R rec, float zg, float r, float hh, float rc,
                                   float h_prev, float g) {
  GruGrad d;
  d.z = g * (h_prev - hh) * rnn_act_grad(rec, zg);
  d.h = g * (1.f - zg) * rnn_act_grad(act, hh);
  d.r = d.h * rc * rnn_act_grad(rec, r);
  d.rh = d.h * r;
  d.h_prev = g * zg;
  return d;
}

// -------------------------------------------------------------- Bidirectional
// Output element j of position p = (sample, step t) of the merge (kernels.h: BidirMerge): b is
// read at the same sample's step T-1-t.
DC_HD inline void bidir_merge_elem(const BidirMerge& m, const float* a, const float* b, float* y,
                                   int64_t p, int64_t j) {
  const int64_t t = p % m.steps, pb = p + m.steps - 1 - 2 * t;
  if (m.mode == Merge::Concat) {
    y[p * (m.ua + m.ub) + j] = j < m.ua ? a[p * m.ua + j] : b[pb * m.ub + j - m.ua];
    return;
  }
  const float va = a[p * m.ua + j], vb = b[pb * m.ua + j];
  y[p * m.ua + j] = m.mode == Merge::Sum   ? va + vb
                    : m.mode == Merge::Mul ? va * vb
                                           : (va + vb) * 0.5f;
}

// The gradients of a and b that output element j of position p receives (dy's element); each
// element of da and db comes from exactly one output element.
DC_HD inline void bidir_merge_grad_elem(const BidirMerge& m, const float* a, const float* b,
                                        const float* dy, float* da, float* db, int64_t p,
                                        int64_t j) {
  const int64_t t = p % m.steps, pb = p + m.steps - 1 - 2 * t;
  if (m.mode == Merge::Concat) {
    const float g = dy[p * (m.ua + m.ub) + j];
    if (j < m.ua)
      da[p * m.ua + j] = g;
    else
      db[pb * m.ub + j - m.ua] = g;
    return;
  }
  const float g = dy[p * m.ua + j];
  if (m.mode == Merge::Mul) {
    da[p * m.ua + j] = g * b[pb * m.ua + j];
    db[pb * m.ua + j] = g * a[p * m.ua + j];
  } else {
    const float s = m.mode == Merge::Ave ? 0.5f * g : g;
    da[p * m.ua + j] = s;
    db[pb * m.ua + j] = s;
  }
}

}  // namespace deepcore
