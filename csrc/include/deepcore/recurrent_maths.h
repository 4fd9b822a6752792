// The per-element maths of one time step of SimpleRNN, LSTM and GRU (Keras 3's equations),
// shared by the CPU kernels (cpu/recurrent.cpp) and the CUDA ones (cuda/recurrent.cu). Each
// function computes unit u of one sample's row; the buffers' layouts are RnnStep's (kernels.h).
// Gates follow Keras' order: LSTM i, f, c, o; GRU z, r, h.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "deepcore/hd.h"
#include "deepcore/kernels.h"

namespace deepcore {

// exp and expm1 in float without a libm call, so that a CPU loop over them vectorizes (the
// gate maths of every step is most of a recurrent layer's time): x = k ln 2 + r with |r| <=
// ln 2 / 2 (ln 2 split in two for exactness), exp(r) - 1 by its Taylor series to r^7 (error
// under 2e-9 relative), times 2^k built in the exponent bits. Within 2 ulp of libm's.
DC_HD inline float rnn_expm1_reduced(float r) {
  return r * (1.f + r * (0.5f + r * (1.f / 6 + r * (1.f / 24 + r * (1.f / 120 + r * (1.f / 720 +
                                                                             r * (1.f / 5040)))))));
}

DC_HD inline float rnn_exp(float x) {
  x = x < -87.f ? -87.f : (x > 88.f ? 88.f : x);  // no overflow of 2^k; exp(-87) ~ 1.6e-38
  const float k = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = (x - k * 0.693145751953125f) - k * 1.42860682030941723e-6f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return (1.f + rnn_expm1_reduced(r)) * scale;
}

// tanh(x) = sign(x) u / (u + 2) with u = expm1(2|x|): near 0 from the series (no
// cancellation), else from rnn_exp.
DC_HD inline float rnn_tanh(float x) {
  const float a = 2.f * (x < 0.f ? -x : x);
  const float u = a < 0.34657359f ? rnn_expm1_reduced(a) : rnn_exp(a) - 1.f;
  const float t = u / (u + 2.f);
  return x < 0.f ? -t : t;
}

DC_HD inline float rnn_sigmoid(float x) { return 1.f / (1.f + rnn_exp(-x)); }

// act(x) for the activations a recurrent cell may use (recurrent_act_supported).
DC_HD inline float rnn_act(Act a, float x) {
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
DC_HD inline float rnn_act_grad(Act a, float y) {
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

// ------------------------------------------------------------------ SimpleRNN
// h = act(xp + hr), xp holding x W + b and hr h_{t-1} U (null at the first step).
DC_HD inline void rnn_cell_forward(Act act, const float* xp, const float* hr, float* h, int64_t u) {
  h[u] = rnn_act(act, xp[u] + (hr ? hr[u] : 0.f));
}

// dz = (dy + dh) act'(h) into z[u]; dh (the recurrence's part of dL/dh_t) becomes 0: h_{t-1}
// reaches h_t only through the recurrent GEMM.
DC_HD inline void rnn_cell_backward(Act act, float* z, const float* h, const float* dy, float* dh,
                                    int64_t u) {
  const float g = dh[u] + (dy ? dy[u] : 0.f);
  z[u] = g * rnn_act_grad(act, h[u]);
  dh[u] = 0.f;
}

// ----------------------------------------------------------------------- LSTM
// z (4 units wide): x W + b in, the gates (i, f, act(c~), o) out; c = f c_{t-1} + i act(c~),
// h = o act(c).
DC_HD inline void lstm_cell_forward(Act act, Act rec, int64_t units, float* z, const float* hr,
                                    const float* c_prev, float* c, float* h, int64_t u) {
  float* zi = z + u;
  const float i = rnn_act(rec, zi[0] + (hr ? hr[u] : 0.f));
  const float f = rnn_act(rec, zi[units] + (hr ? hr[units + u] : 0.f));
  const float g = rnn_act(act, zi[2 * units] + (hr ? hr[2 * units + u] : 0.f));
  const float o = rnn_act(rec, zi[3 * units] + (hr ? hr[3 * units + u] : 0.f));
  const float cv = f * (c_prev ? c_prev[u] : 0.f) + i * g;
  zi[0] = i;
  zi[units] = f;
  zi[2 * units] = g;
  zi[3 * units] = o;
  c[u] = cv;
  h[u] = o * rnn_act(act, cv);
}

// The gates' pre-activation gradients into z (in place of the gates), given dL/dh_t = dy + dh
// and the cell-state carry dc (dL/dc_t from step t+1, replaced by dL/dc_{t-1}); dh becomes 0.
DC_HD inline void lstm_cell_backward(Act act, Act rec, int64_t units, float* z,
                                     const float* c_prev, const float* c, const float* dy,
                                     float* dh, float* dc, int64_t u) {
  float* zi = z + u;
  const float i = zi[0], f = zi[units], g = zi[2 * units], o = zi[3 * units];
  const float gh = dh[u] + (dy ? dy[u] : 0.f);
  const float ac = rnn_act(act, c[u]);
  const float gc = dc[u] + gh * o * rnn_act_grad(act, ac);
  const float cp = c_prev ? c_prev[u] : 0.f;
  zi[0] = gc * g * rnn_act_grad(rec, i);
  zi[units] = gc * cp * rnn_act_grad(rec, f);
  zi[2 * units] = gc * i * rnn_act_grad(act, g);
  zi[3 * units] = gh * ac * rnn_act_grad(rec, o);
  dc[u] = gc * f;
  dh[u] = 0.f;
}

// ------------------------------------------------------------------------ GRU
// Keras' reset_after form. z (3 units wide): x W + b_in in, the gates (z, r, h~) out;
// rh = (h_{t-1} U + b_rec)'s third part, kept for the backward pass;
// h = z h_{t-1} + (1 - z) h~ with h~ = act(x_h + r rh).
DC_HD inline void gru_cell_forward(Act act, Act rec, int64_t units, float* z, const float* hr,
                                   const float* rbias, const float* h_prev, float* rh, float* h,
                                   int64_t u) {
  float* zi = z + u;
  float rz = rbias ? rbias[u] : 0.f, rr = rbias ? rbias[units + u] : 0.f,
        rc = rbias ? rbias[2 * units + u] : 0.f;
  if (hr) {
    rz += hr[u];
    rr += hr[units + u];
    rc += hr[2 * units + u];
  }
  const float zg = rnn_act(rec, zi[0] + rz);
  const float r = rnn_act(rec, zi[units] + rr);
  const float hh = rnn_act(act, zi[2 * units] + r * rc);
  const float hp = h_prev ? h_prev[u] : 0.f;
  zi[0] = zg;
  zi[units] = r;
  zi[2 * units] = hh;
  rh[u] = rc;
  h[u] = zg * hp + (1.f - zg) * hh;
}

// The gradients of x W + b_in into z (in place of the gates) and of h_{t-1} U + b_rec into
// dr, given dL/dh_t = dy + dh; dh becomes the direct part of dL/dh_{t-1} (g z).
DC_HD inline void gru_cell_backward(Act act, Act rec, int64_t units, float* z, float* dr,
                                    const float* rh, const float* h_prev, const float* dy,
                                    float* dh, int64_t u) {
  float* zi = z + u;
  const float zg = zi[0], r = zi[units], hh = zi[2 * units];
  const float g = dh[u] + (dy ? dy[u] : 0.f);
  const float hp = h_prev ? h_prev[u] : 0.f;
  const float dzp = g * (hp - hh) * rnn_act_grad(rec, zg);
  const float dhp = g * (1.f - zg) * rnn_act_grad(act, hh);
  const float drp = dhp * rh[u] * rnn_act_grad(rec, r);
  zi[0] = dzp;
  zi[units] = drp;
  zi[2 * units] = dhp;
  dr[u] = dzp;
  dr[units + u] = drp;
  dr[2 * units + u] = dhp * r;
  dh[u] = g * zg;
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
