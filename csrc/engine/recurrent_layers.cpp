// Recurrent layers: SimpleRNN, LSTM and GRU (layers.h: Recurrent). Sequences stay in the
// engine's (batch, steps, width) layout: one step's rows are a strided matrix, which the
// GEMMs (leading dimensions) and the step kernels (RnnStep's strides) read in place.
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

void Recurrent::reserve(Backend& be, int64_t rows) {
  const int64_t gu = gates() * units_, n = rows * steps_;
  z_.reserve(be, n * gu);
  if (!return_sequences_) h_.reserve(be, n * units_);
  if (cell_ != Cell::SimpleRNN) c_.reserve(be, n * units_);
  if (cell_ == Cell::GRU) dr_.reserve(be, n * gu);
  hr_.reserve(be, rows * gu);
  dh_.reserve(be, rows * units_);
  if (cell_ == Cell::LSTM) dc_.reserve(be, rows * units_);
}

// z = x W + b over all steps (one GEMM), then per step: hr = h_{t-1} U (a GEMM but at the
// first step, where h_{t-1} = 0) and the step kernel, which writes h (and c, rh, the gates).
void Recurrent::forward(Backend& be, const float* x, float* y, int64_t rows, bool,
                        const uint64_t*) {
  const int64_t T = steps_, U = units_, gu = gates() * U;
  float* z = z_.data();
  be.affine_forward({}, x, w_, b_, z, z, rows * T, in_, gu);
  float* H = return_sequences_ ? y : h_.data();
  const float* rbias = b_ ? b_ + gu : nullptr;  // GRU's recurrent bias
  RnnStep s{rows, U, T * gu, T * U, T * U, act_, rec_};
  for (int64_t i = 0; i < T; ++i) {
    float* zt = z + (go_backwards_ ? T - 1 - i : i) * gu;
    const float* hp = i ? H + (i - 1) * U : nullptr;
    const float* hr = nullptr;
    if (i) {
      be.gemm(false, false, rows, gu, U, 1.f, hp, T * U, wr_, gu, 0.f, hr_.data(), gu);
      hr = hr_.data();
    }
    const bool last_only = !return_sequences_ && i == T - 1;
    float* h = last_only ? y : H + i * U;
    s.hld = last_only ? U : T * U;
    switch (cell_) {
      case Cell::SimpleRNN:
        be.rnn_step_forward(s, zt, hr, h);
        break;
      case Cell::LSTM:
        be.lstm_step_forward(s, zt, hr, i ? c_.data() + (i - 1) * U : nullptr,
                             c_.data() + i * U, h);
        break;
      case Cell::GRU:
        be.gru_step_forward(s, zt, hr, rbias, hp, c_.data() + i * U, h);
        break;
    }
  }
}

// Per step, last to first: the step kernel turns the gates into the gradients of the
// projections (in z; GRU's recurrent side in dr), then dh += dr U^T and dU += h_{t-1}^T dr.
// At the end dW = x^T dz and dx = dz W^T over all steps, and the biases' column sums.
void Recurrent::backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                         int64_t rows, bool) {
  const int64_t T = steps_, U = units_, gu = gates() * U;
  float* z = z_.data();
  const float* H = return_sequences_ ? y : h_.data();
  be.zero(dh_.data(), sizeof(float) * rows * U);
  if (cell_ == Cell::LSTM) be.zero(dc_.data(), sizeof(float) * rows * U);
  be.zero(gwr_, sizeof(float) * U * gu);
  RnnStep s{rows, U, T * gu, T * U, T * U, act_, rec_};
  for (int64_t i = T - 1; i >= 0; --i) {
    float* zt = z + (go_backwards_ ? T - 1 - i : i) * gu;
    const bool last_only = !return_sequences_ && i == T - 1;
    s.hld = last_only ? U : T * U;
    const float* dyi = return_sequences_ ? dy + i * U : (i == T - 1 ? dy : nullptr);
    const float* hp = i ? H + (i - 1) * U : nullptr;
    float* dr = zt;
    switch (cell_) {
      case Cell::SimpleRNN:
        be.rnn_step_backward(s, zt, last_only ? y : H + i * U, dyi, dh_.data());
        break;
      case Cell::LSTM:
        be.lstm_step_backward(s, zt, i ? c_.data() + (i - 1) * U : nullptr, c_.data() + i * U,
                              dyi, dh_.data(), dc_.data());
        break;
      case Cell::GRU:
        dr = dr_.data() + i * gu;
        be.gru_step_backward(s, zt, dr, c_.data() + i * U, hp, dyi, dh_.data());
        break;
    }
    if (i) {
      be.gemm(false, true, rows, U, gu, 1.f, dr, T * gu, wr_, gu, 1.f, dh_.data(), U);
      be.gemm(true, false, U, gu, rows, 1.f, hp, T * U, dr, T * gu, 1.f, gwr_, gu);
    }
  }
  be.gemm(true, false, in_, gu, rows * T, 1.f, x, in_, z, gu, 0.f, gw_, gu);
  if (use_bias_) {
    be.col_sum(z, rows * T, gu, gb_);
    if (cell_ == Cell::GRU) be.col_sum(dr_.data(), rows * T, gu, gb_ + gu);
  }
  if (dx) be.gemm(false, true, rows * T, in_, gu, 1.f, z, gu, w_, gu, 0.f, dx, in_);
}

}  // namespace deepcore
