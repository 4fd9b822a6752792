// The recurrent layers' step kernels on the CPU (kernels.h: RnnStep): rows [b0, b1) of the
// batch, each unit by the per-element maths of recurrent_maths.h.
#include <algorithm>
#include <type_traits>

#include "deepcore/kernels.h"
#include "deepcore/recurrent_maths.h"

namespace deepcore {

namespace {

// f(act, rec) with the activations as compile-time constants where they are Keras' defaults
// (tanh and sigmoid), so that the unit loop inlines them and vectorizes; as given otherwise.
template <Act A>
using ActConst = std::integral_constant<Act, A>;

template <class F>
void with_acts(const RnnStep& s, F&& f) {
  if (s.act == Act::Tanh && s.rec == Act::Sigmoid)
    f(ActConst<Act::Tanh>{}, ActConst<Act::Sigmoid>{});
  else if (s.act == Act::Tanh)  // (SimpleRNN's default)
    f(ActConst<Act::Tanh>{}, s.rec);
  else
    f(s.act, s.rec);
}

// f(given...) with, for each optional buffer, whether it is given (not null) as a
// compile-time constant: a unit loop that tests a pointer for null per element does not
// vectorize.
template <class F>
void with_given(F&& f) {
  f();
}

template <class F, class... P>
void with_given(F&& f, const void* p, P... rest) {
  if (p)
    with_given([&](auto... g) { f(std::true_type{}, g...); }, rest...);
  else
    with_given([&](auto... g) { f(std::false_type{}, g...); }, rest...);
}

// p[i], or 0 when the buffer is not given (p null).
template <class Given>
float at(Given, const float* p, int64_t i) {
  if constexpr (Given::value)
    return p[i];
  else
    return 0.f;
}

// p's row b (rows ld apart), or null for null.
template <class T>
T* row(T* p, int64_t b, int64_t ld) {
  return p ? p + b * ld : nullptr;
}

// Whether sample b is masked at this step (its mask value 0): it keeps its states.
bool masked(const RnnStep& s, const float* mask, int64_t b) {
  return mask && mask[b * s.mld] == 0.f;
}

// out[0, n) = p[0, n), or zeros for p null.
void carry(const float* p, float* out, int64_t n) {
  if (p)
    std::copy(p, p + n, out);
  else
    std::fill(out, out + n, 0.f);
}

// A masked sample's backward step: no gradient for its projections (z's g units), dh + dy
// passed on to step t-1.
template <class Given>
void carry_back(Given has_dy, float* zb, int64_t g, const float* dyb, float* dhb, int64_t n) {
  std::fill(zb, zb + g, 0.f);
  for (int64_t u = 0; u < n; ++u) dhb[u] += at(has_dy, dyb, u);
}

}  // namespace

// h = act(z + hr) for rows [b0, b1).
void rnn_step_forward(const RnnStep& s, const float* z, const float* hr, const float* h_prev,
                      const float* mask, float* h, int64_t b0, int64_t b1) {
  const int64_t U = s.units;
  with_acts(s, [&](auto act, auto) {
    with_given([&](auto has_hr) {
      for (int64_t b = b0; b < b1; ++b) {
        const float *zb = z + b * s.zld, *hb = row(hr, b, U);
        float* out = h + b * s.hld;
        if (masked(s, mask, b)) {
          carry(row(h_prev, b, s.ld), out, U);
          continue;
        }
#pragma omp simd
        for (int64_t u = 0; u < U; ++u) out[u] = rnn_cell(act, zb[u] + at(has_hr, hb, u));
      }
    }, hr);
  });
}

// dz = (dy + dh) act'(h) into z and dh = 0, for rows [b0, b1).
void rnn_step_backward(const RnnStep& s, float* z, const float* h, const float* dy,
                       const float* mask, float* dh, int64_t b0, int64_t b1) {
  const int64_t U = s.units;
  with_acts(s, [&](auto act, auto) {
    with_given([&](auto has_dy) {
      for (int64_t b = b0; b < b1; ++b) {
        float *zb = z + b * s.zld, *dhb = dh + b * U;
        const float *hb = h + b * s.hld, *dyb = row(dy, b, s.hld);
        if (masked(s, mask, b)) {
          carry_back(has_dy, zb, U, dyb, dhb, U);
          continue;
        }
#pragma omp simd
        for (int64_t u = 0; u < U; ++u) {
          zb[u] = rnn_cell_grad(act, hb[u], dhb[u] + at(has_dy, dyb, u));
          dhb[u] = 0.f;
        }
      }
    }, dy);
  });
}

// The LSTM gates (in place of their pre-activations in z), c and h for rows [b0, b1).
void lstm_step_forward(const RnnStep& s, float* z, const float* hr, const float* h_prev,
                       const float* c_prev, const float* mask, float* c, float* h, int64_t b0,
                       int64_t b1) {
  const int64_t U = s.units;
  with_acts(s, [&](auto act, auto rec) {
    with_given([&](auto has_hr, auto has_c) {
      for (int64_t b = b0; b < b1; ++b) {
        float *zb = z + b * s.zld, *cb = c + b * s.ld, *out = h + b * s.hld;
        const float *hb = row(hr, b, 4 * U), *cp = row(c_prev, b, s.ld);
        if (masked(s, mask, b)) {
          carry(cp, cb, U);
          carry(row(h_prev, b, s.ld), out, U);
          continue;
        }
#pragma omp simd
        for (int64_t u = 0; u < U; ++u) {
          const LstmCell r = lstm_cell(
              act, rec, zb[u] + at(has_hr, hb, u), zb[U + u] + at(has_hr, hb, U + u),
              zb[2 * U + u] + at(has_hr, hb, 2 * U + u), zb[3 * U + u] + at(has_hr, hb, 3 * U + u),
              at(has_c, cp, u));
          zb[u] = r.i;
          zb[U + u] = r.f;
          zb[2 * U + u] = r.g;
          zb[3 * U + u] = r.o;
          cb[u] = r.c;
          out[u] = r.h;
        }
      }
    }, hr, c_prev);
  });
}

// The LSTM gates' gradients into z, the carries dh (then 0) and dc, for rows [b0, b1).
void lstm_step_backward(const RnnStep& s, float* z, const float* c_prev, const float* c,
                        const float* dy, const float* mask, float* dh, float* dc, int64_t b0,
                        int64_t b1) {
  const int64_t U = s.units;
  with_acts(s, [&](auto act, auto rec) {
    with_given([&](auto has_c, auto has_dy) {
      for (int64_t b = b0; b < b1; ++b) {
        float *zb = z + b * s.zld, *dhb = dh + b * U, *dcb = dc + b * U;
        const float *cp = row(c_prev, b, s.ld), *cb = c + b * s.ld, *dyb = row(dy, b, s.hld);
        if (masked(s, mask, b)) {
          carry_back(has_dy, zb, 4 * U, dyb, dhb, U);
          continue;
        }
#pragma omp simd
        for (int64_t u = 0; u < U; ++u) {
          const LstmGrad d =
              lstm_cell_grad(act, rec, zb[u], zb[U + u], zb[2 * U + u], zb[3 * U + u],
                             at(has_c, cp, u), cb[u], dhb[u] + at(has_dy, dyb, u), dcb[u]);
          zb[u] = d.i;
          zb[U + u] = d.f;
          zb[2 * U + u] = d.g;
          zb[3 * U + u] = d.o;
          dcb[u] = d.c_prev;
          dhb[u] = 0.f;
        }
      }
    }, c_prev, dy);
  });
}

// The GRU gates (in place of x W + b_in in z), rh and h for rows [b0, b1).
void gru_step_forward(const RnnStep& s, float* z, const float* hr, const float* rbias,
                      const float* h_prev, const float* mask, float* rh, float* h, int64_t b0,
                      int64_t b1) {
  const int64_t U = s.units;
  with_acts(s, [&](auto act, auto rec) {
    with_given([&](auto has_hr, auto has_rb, auto has_hp) {
      for (int64_t b = b0; b < b1; ++b) {
        float *zb = z + b * s.zld, *rhb = rh + b * s.ld, *out = h + b * s.hld;
        const float *hb = row(hr, b, 3 * U), *hp = row(h_prev, b, s.ld);
        if (masked(s, mask, b)) {
          carry(hp, out, U);
          std::fill(rhb, rhb + U, 0.f);  // unread; written so that every output is defined
          continue;
        }
#pragma omp simd
        for (int64_t u = 0; u < U; ++u) {
          const float rc = at(has_hr, hb, 2 * U + u) + at(has_rb, rbias, 2 * U + u);
          const GruCell r = gru_cell(act, rec, zb[u], zb[U + u], zb[2 * U + u],
                                     at(has_hr, hb, u) + at(has_rb, rbias, u),
                                     at(has_hr, hb, U + u) + at(has_rb, rbias, U + u), rc,
                                     at(has_hp, hp, u));
          zb[u] = r.z;
          zb[U + u] = r.r;
          zb[2 * U + u] = r.hh;
          rhb[u] = rc;
          out[u] = r.h;
        }
      }
    }, hr, rbias, h_prev);
  });
}

// The GRU gradients into z and dr, the carry dh, for rows [b0, b1).
void gru_step_backward(const RnnStep& s, float* z, float* dr, const float* rh,
                       const float* h_prev, const float* dy, const float* mask, float* dh,
                       int64_t b0, int64_t b1) {
  const int64_t U = s.units;
  with_acts(s, [&](auto act, auto rec) {
    with_given([&](auto has_hp, auto has_dy) {
      for (int64_t b = b0; b < b1; ++b) {
        float *zb = z + b * s.zld, *drb = dr + b * s.zld, *dhb = dh + b * U;
        const float *rhb = rh + b * s.ld, *hp = row(h_prev, b, s.ld), *dyb = row(dy, b, s.hld);
        if (masked(s, mask, b)) {
          std::fill(drb, drb + 3 * U, 0.f);
          carry_back(has_dy, zb, 3 * U, dyb, dhb, U);
          continue;
        }
#pragma omp simd
        for (int64_t u = 0; u < U; ++u) {
          const GruGrad d = gru_cell_grad(act, rec, zb[u], zb[U + u], zb[2 * U + u], rhb[u],
                                          at(has_hp, hp, u), dhb[u] + at(has_dy, dyb, u));
          zb[u] = d.z;
          zb[U + u] = d.r;
          zb[2 * U + u] = d.h;
          drb[u] = d.z;
          drb[U + u] = d.r;
          drb[2 * U + u] = d.rh;
          dhb[u] = d.h_prev;
        }
      }
    }, h_prev, dy);
  });
}

// Bidirectional's merge for positions [p0, p1).
void bidir_merge_forward(const BidirMerge& m, const float* a, const float* b, float* y,
                         int64_t p0, int64_t p1) {
  const int64_t w = m.width();
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t j = 0; j < w; ++j) bidir_merge_elem(m, a, b, y, p, j);
}

// Its gradients da, db for positions [p0, p1).
void bidir_merge_backward(const BidirMerge& m, const float* a, const float* b, const float* dy,
                          float* da, float* db, int64_t p0, int64_t p1) {
  const int64_t w = m.width();
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t j = 0; j < w; ++j) bidir_merge_grad_elem(m, a, b, dy, da, db, p, j);
}

}  // namespace deepcore
