// Recurrent layers: SimpleRNN, LSTM and GRU (layers.h: Recurrent). Sequences stay in the
// engine's (batch, steps, width) layout: one step's rows are a strided matrix, which the
// GEMMs (leading dimensions) and the step kernels (RnnStep's strides) read in place.
#include <numeric>
#include <stdexcept>
#include <string>

#include "layers.h"

namespace deepcore {

void Recurrent::build(const Shape& in) {
  if (in.size() != 2)
    throw std::invalid_argument(std::string(name()) +
                                " expects inputs of shape (batch, steps, features), received " +
                                shape_str(in, true));
  const int64_t gu = bounded_mul(gates(), units_);
  if (gu < 0 || bounded_mul(in[1], gu) < 0 || bounded_mul(units_, gu) < 0 ||
      bounded_mul(in[0], gu) < 0)
    throw std::invalid_argument(std::string(name()) + ": units=" + std::to_string(units_) +
                                " is too large for inputs " + shape_str(in, true));
  in_shape = in;
  steps_ = in[0];
  in_ = in[1];
  out_shape = return_sequences_ ? Shape{steps_, units_} : Shape{units_};
}

std::vector<Shape> Recurrent::param_shapes() const {
  const int64_t gu = gates() * units_;
  std::vector<Shape> s{{in_, gu}, {units_, gu}};
  if (use_bias_) s.push_back(cell_ == Cell::GRU ? Shape{2, gu} : Shape{gu});
  return s;
}

std::vector<Shape> Recurrent::scratch_shapes() const {
  std::vector<Shape> s{{steps_, gates() * units_}, {steps_, units_}};
  if (cell_ != Cell::SimpleRNN) s.push_back({steps_, units_});
  if (cell_ == Cell::GRU) s.push_back({steps_, gates() * units_});
  if (zero_output_ && return_sequences_) s.push_back({steps_, units_});
  if (dropout_ > 0 || rdropout_ > 0) {  // dropout: the draws, xd, hd, hg
    s.push_back({4, stream_skip_ + mask_width()});
    if (dropout_ > 0) s.push_back({steps_, in_});
    if (rdropout_ > 0) s.push_back({rec_masks() + 1, units_});
  }
  return s;
}

void Recurrent::bind(float* w, float* g) {
  const int64_t gu = gates() * units_;
  w_ = w;
  gw_ = g;
  wr_ = w + in_ * gu;
  gwr_ = g + in_ * gu;
  b_ = use_bias_ ? wr_ + units_ * gu : nullptr;
  gb_ = use_bias_ ? gwr_ + units_ * gu : nullptr;
}

// Whether the outputs are not the states: the states then live in h_ (all of them when the
// output holds the last only; the output is the masked states with zero_output_for_mask).
bool Recurrent::states_apart() const { return !return_sequences_ || zero_output_; }

void Recurrent::reserve(Backend& be, int64_t rows) {
  const int64_t gu = gates() * units_, n = rows * steps_;
  z_.reserve(be, n * gu);
  if (states_apart()) h_.reserve(be, n * units_);
  if (cell_ != Cell::SimpleRNN) c_.reserve(be, n * units_);
  if (cell_ == Cell::GRU) {
    dr_.reserve(be, n * gu);
    hr_.reserve(be, rows * gu);
  }
  dh_.reserve(be, rows * units_);
  if (cell_ == Cell::LSTM) dc_.reserve(be, rows * units_);
  ut_.reserve(be, units_ * gu);
  if (zero_output_ && return_sequences_) dym_.reserve(be, n * units_);
  if (dropout_ > 0 || rdropout_ > 0) {
    drop_.reserve(be, 4 * rows * (stream_skip_ + mask_width()));
    if (dropout_ > 0) xd_.reserve(be, n * in_);
    if (rdropout_ > 0) {
      hd_.reserve(be, rows * rec_masks() * units_);
      hg_.reserve(be, rows * units_);
    }
  }
}

// z = x W + b over all steps (one GEMM), then per step the recurrent GEMM h_{t-1} U (none at
// the first step, where h_{t-1} = 0), added to z_t (into hr for GRU, whose reset gate
// multiplies a part of it), and the step kernel, which writes h (and c, rh, the gates). With
// a mask, step i reads the mask of the input step it processes (T-1-i going backwards).
void Recurrent::forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
                        const uint64_t* seed) {
  const int64_t T = steps_, U = units_, gu = gates() * U;
  float* z = z_.data();
  drop_in_ = training && dropout_ > 0;
  drop_rec_ = training && rdropout_ > 0;
  if (drop_in_ || drop_rec_) draw_masks(be, rows, seed);
  if (drop_in_)  // dropout: z = (x * mask) W + b
    dropout_input_forward(be, x, rows);
  else
    be.affine_forward({}, x, w_, b_, z, z, rows * T, in_, gu);
  const float* mask = input_mask();
  const bool masked_out = mask && zero_output_ && return_sequences_;
  float* H = return_sequences_ && !masked_out ? y : h_.data();
  const float* rbias = b_ ? b_ + gu : nullptr;  // GRU's recurrent bias
  RnnStep s{rows, U, T * gu, T * U, T * U, act_, rec_, T};
  for (int64_t i = 0; i < T; ++i) {
    const int64_t t = go_backwards_ ? T - 1 - i : i;
    float* zt = z + t * gu;
    const float* mt = mask ? mask + t : nullptr;
    const float* hp = i ? H + (i - 1) * U : nullptr;
    const bool gru = cell_ == Cell::GRU;
    if (i && drop_rec_)  // dropout: the recurrent GEMM on the masked h_{t-1}
      dropout_recurrent_gemm(be, hp, rows, gru ? hr_.data() : zt, gru ? gu : T * gu,
                             gru ? 0.f : 1.f);
    const bool last_only = !return_sequences_ && i == T - 1;
    float* h = last_only ? y : H + i * U;
    s.hld = last_only ? U : T * U;
    be.recurrent_step_forward(cell_, s, i && !drop_rec_ ? wr_ : nullptr, rbias, zt,
                              i && gru ? hr_.data() : nullptr, hp,
                              i && c_.size() ? c_.data() + (i - 1) * U : nullptr, mt,
                              c_.size() ? c_.data() + i * U : nullptr, h);
    if (masked_out) be.mask_rows(h, T * U, mt, T, rows, U, y + i * U, T * U);
  }
}

// Per step, last to first: the step kernel turns the gates into the gradients of the
// projections (in z; GRU's recurrent side in dr), then dh += dr U^T (U^T transposed once)
// and dU += h_{t-1}^T dr. At the end dW = x^T dz and dx = dz W^T over all steps, and the
// biases' column sums. A masked sample's step has zero gradients and passes dh + dy on (dy
// of its zeroed output dropped with zero_output_for_mask). With dropout in the last forward
// pass, x and h_{t-1} are their masked values and dx, dh_{t-1} go through the masks.
void Recurrent::backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                         int64_t rows, bool) {
  const int64_t T = steps_, U = units_, gu = gates() * U;
  float* z = z_.data();
  const float* mask = input_mask();
  const bool masked_out = mask && zero_output_ && return_sequences_;
  const float* H = return_sequences_ && !masked_out ? y : h_.data();
  be.zero(dh_.data(), sizeof(float) * rows * U);
  if (cell_ == Cell::LSTM) be.zero(dc_.data(), sizeof(float) * rows * U);
  be.zero(gwr_, sizeof(float) * U * gu);
  be.transpose(wr_, U, gu, ut_.data());
  RnnStep s{rows, U, T * gu, T * U, T * U, act_, rec_, T};
  for (int64_t i = T - 1; i >= 0; --i) {
    const int64_t t = go_backwards_ ? T - 1 - i : i;
    float* zt = z + t * gu;
    const float* mt = mask ? mask + t : nullptr;
    const bool last_only = !return_sequences_ && i == T - 1;
    s.hld = last_only ? U : T * U;
    const float* dyi = return_sequences_ ? dy + i * U : (i == T - 1 ? dy : nullptr);
    if (masked_out) {
      be.mask_rows(dyi, T * U, mt, T, rows, U, dym_.data() + i * U, T * U);
      dyi = dym_.data() + i * U;
    }
    const float* hp = i ? H + (i - 1) * U : nullptr;
    const float* hi = last_only ? y : H + i * U;
    float* dr = cell_ == Cell::GRU ? dr_.data() + i * gu : zt;
    be.recurrent_step_backward(cell_, s, i && !drop_rec_ ? ut_.data() : nullptr, gwr_, zt, dr,
                               i && c_.size() ? c_.data() + (i - 1) * U : nullptr,
                               c_.size() ? c_.data() + i * U : nullptr, hi, hp, dyi, mt,
                               dh_.data(), dc_.size() ? dc_.data() : nullptr);
    if (i && drop_rec_)  // dropout: through the masked h_{t-1}
      dropout_recurrent_backward(be, hp, dr, rows);
  }
  if (use_bias_) {
    be.col_sum(z, rows * T, gu, gb_);
    if (cell_ == Cell::GRU) be.col_sum(dr_.data(), rows * T, gu, gb_ + gu);
  }
  if (drop_in_) {  // dropout: dW and dx through the input masks
    dropout_input_backward(be, x, dx, rows);
    return;
  }
  be.gemm(true, false, in_, gu, rows * T, 1.f, x, in_, z, gu, 0.f, gw_, gu);
  if (dx)
    be.gemm(false, true, rows * T, in_, gu, 1.f, z, gu, w_, gu, accumulate_dx_ ? 1.f : 0.f, dx,
            in_);
}

namespace {

// The number of values in `shapes`.
int64_t total_size(const std::vector<Shape>& shapes) {
  int64_t n = 0;
  for (const Shape& s : shapes)
    n += std::accumulate(s.begin(), s.end(), int64_t{1}, std::multiplies<int64_t>());
  return n;
}

}  // namespace

void Bidirectional::build(const Shape& in) {
  fwd_->build(in);
  bwd_->build(in);
  bwd_->set_stream_skip(fwd_->mask_width());  // the two directions' dropout masks differ
  if (merge_ != Merge::Concat && fwd_->units() != bwd_->units())
    throw std::invalid_argument(
        "Bidirectional: merge_mode sum, mul and ave need the same units in both directions, "
        "received " +
        std::to_string(fwd_->units()) + " and " + std::to_string(bwd_->units()));
  in_shape = in;
  out_shape = fwd_->out_shape;
  out_shape.back() = spec(1).width();
}

std::vector<Shape> Bidirectional::param_shapes() const {
  std::vector<Shape> s = fwd_->param_shapes(), b = bwd_->param_shapes();
  s.insert(s.end(), b.begin(), b.end());
  return s;
}

std::vector<Shape> Bidirectional::scratch_shapes() const {
  std::vector<Shape> s = fwd_->scratch_shapes(), b = bwd_->scratch_shapes();
  s.insert(s.end(), b.begin(), b.end());
  s.push_back(fwd_->out_shape);
  s.push_back(bwd_->out_shape);
  return s;
}

void Bidirectional::bind(float* w, float* g) {
  fwd_->bind(w, g);
  const int64_t n = total_size(fwd_->param_shapes());
  bwd_->bind(w + n, g + n);
}

// Positions: (sample, step) pairs when the outputs are sequences, samples otherwise.
BidirMerge Bidirectional::spec(int64_t rows) const {
  const bool seq = fwd_->out_shape.size() == 2;
  return {merge_, rows, seq ? fwd_->out_shape[0] : 1, fwd_->units(), bwd_->units()};
}

void Bidirectional::reserve(Backend& be, int64_t rows) {
  fwd_->reserve(be, rows);
  bwd_->reserve(be, rows);
  const int64_t na = rows * total_size({fwd_->out_shape}),
                nb = rows * total_size({bwd_->out_shape});
  ya_.reserve(be, na);
  yb_.reserve(be, nb);
  da_.reserve(be, na);
  db_.reserve(be, nb);
}

// Both directions on x, then the merge.
void Bidirectional::forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
                            const uint64_t* seed) {
  fwd_->forward(be, x, ya_.data(), rows, training, seed);
  bwd_->forward(be, x, yb_.data(), rows, training, seed);
  be.bidir_merge(spec(rows), ya_.data(), yb_.data(), y);
}

// The merge's gradients, then each direction's backward pass, the second adding its dx.
void Bidirectional::backward(Backend& be, const float* x, const float*, const float* dy,
                             float* dx, int64_t rows, bool) {
  be.bidir_merge_backward(spec(rows), ya_.data(), yb_.data(), dy, da_.data(), db_.data());
  fwd_->backward(be, x, ya_.data(), da_.data(), dx, rows, false);
  bwd_->backward(be, x, yb_.data(), db_.data(), dx, rows, false);
}

}  // namespace deepcore
