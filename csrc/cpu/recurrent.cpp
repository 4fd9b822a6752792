// The recurrent layers' step kernels on the CPU (kernels.h: RnnStep): rows [b0, b1) of the
// batch, each unit by the per-element maths of recurrent_maths.h.
#include <type_traits>

#include "deepcore/kernels.h"
#include "deepcore/recurrent_maths.h"

namespace deepcore {

namespace {

// p's row b (rows ld apart), or null for null.
template <class T>
T* row(T* p, int64_t b, int64_t ld) {
  return p ? p + b * ld : nullptr;
}

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

}  // namespace

// h = act(z + hr) for rows [b0, b1).
void rnn_step_forward(const RnnStep& s, const float* z, const float* hr, float* h, int64_t b0,
                      int64_t b1) {
  for (int64_t b = b0; b < b1; ++b) {
    const float *zb = z + b * s.zld, *hb = row(hr, b, s.units);
    float* out = h + b * s.hld;
    with_acts(s, [&](auto act, auto rec) {
      (void)rec;
#pragma omp simd
      for (int64_t u = 0; u < s.units; ++u) rnn_cell_forward(act, zb, hb, out, u);
    });
  }
}

// dz into z and dh = 0, for rows [b0, b1).
void rnn_step_backward(const RnnStep& s, float* z, const float* h, const float* dy, float* dh,
                       int64_t b0, int64_t b1) {
  for (int64_t b = b0; b < b1; ++b) {
    float *zb = z + b * s.zld, *dhb = dh + b * s.units;
    const float *hb = h + b * s.hld, *dyb = row(dy, b, s.hld);
    with_acts(s, [&](auto act, auto rec) {
      (void)rec;
#pragma omp simd
      for (int64_t u = 0; u < s.units; ++u) rnn_cell_backward(act, zb, hb, dyb, dhb, u);
    });
  }
}

// The LSTM gates, c and h for rows [b0, b1).
void lstm_step_forward(const RnnStep& s, float* z, const float* hr, const float* c_prev,
                       float* c, float* h, int64_t b0, int64_t b1) {
  for (int64_t b = b0; b < b1; ++b) {
    float *zb = z + b * s.zld, *cb = c + b * s.ld, *out = h + b * s.hld;
    const float *hb = row(hr, b, 4 * s.units), *cp = row(c_prev, b, s.ld);
    with_acts(s, [&](auto act, auto rec) {
      (void)rec;
#pragma omp simd
      for (int64_t u = 0; u < s.units; ++u) lstm_cell_forward(act, rec, s.units, zb, hb, cp, cb, out, u);
    });
  }
}

// The LSTM gates' gradients into z, the carries dh and dc, for rows [b0, b1).
void lstm_step_backward(const RnnStep& s, float* z, const float* c_prev, const float* c,
                        const float* dy, float* dh, float* dc, int64_t b0, int64_t b1) {
  for (int64_t b = b0; b < b1; ++b) {
    float *zb = z + b * s.zld, *dhb = dh + b * s.units, *dcb = dc + b * s.units;
    const float *cp = row(c_prev, b, s.ld), *cb = c + b * s.ld, *dyb = row(dy, b, s.hld);
    with_acts(s, [&](auto act, auto rec) {
      (void)rec;
#pragma omp simd
      for (int64_t u = 0; u < s.units; ++u) lstm_cell_backward(act, rec, s.units, zb, cp, cb, dyb, dhb, dcb, u);
    });
  }
}

// The GRU gates, rh and h for rows [b0, b1).
void gru_step_forward(const RnnStep& s, float* z, const float* hr, const float* rbias,
                      const float* h_prev, float* rh, float* h, int64_t b0, int64_t b1) {
  for (int64_t b = b0; b < b1; ++b) {
    float *zb = z + b * s.zld, *rhb = rh + b * s.ld, *out = h + b * s.hld;
    const float *hb = row(hr, b, 3 * s.units), *hp = row(h_prev, b, s.ld);
    with_acts(s, [&](auto act, auto rec) {
      (void)rec;
#pragma omp simd
      for (int64_t u = 0; u < s.units; ++u) gru_cell_forward(act, rec, s.units, zb, hb, rbias, hp, rhb, out, u);
    });
  }
}

// The GRU gradients into z and dr, the carry dh, for rows [b0, b1).
void gru_step_backward(const RnnStep& s, float* z, float* dr, const float* rh,
                       const float* h_prev, const float* dy, float* dh, int64_t b0, int64_t b1) {
  for (int64_t b = b0; b < b1; ++b) {
    float *zb = z + b * s.zld, *drb = dr + b * s.zld, *dhb = dh + b * s.units;
    const float *rhb = rh + b * s.ld, *hp = row(h_prev, b, s.ld), *dyb = row(dy, b, s.hld);
    with_acts(s, [&](auto act, auto rec) {
      (void)rec;
#pragma omp simd
      for (int64_t u = 0; u < s.units; ++u) gru_cell_backward(act, rec, s.units, zb, drb, rhb, hp, dyb, dhb, u);
    });
  }
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
