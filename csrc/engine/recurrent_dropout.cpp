// Recurrent layers' dropout (layers.h: Recurrent): the masks, and the masked GEMMs of the
// forward and backward passes. A layer with Mi input masks splits its kernel's G units
// columns in Mi groups, one per mask (all of them for one mask, a gate's for one per gate),
// and likewise the recurrent kernel's in Mr groups for its state masks.
#include "layers.h"

namespace deepcore {

// Two draws of the layer's stream (seed at `seed`), both from index 0 with x = 1 so that
// y is the mask: one at `dropout` for the input masks, one at `recurrent_dropout` for the
// state masks, each keeping only its own part of the stream (layers.h).
void Recurrent::draw_masks(Backend& be, int64_t rows, const uint64_t* seed) {
  const int64_t skip = rows * stream_skip_, n_in = rows * in_masks() * in_,
                n = skip + n_in + rows * rec_masks() * units_;
  float *ones = drop_.data(), *unused = ones + n, *in = unused + n, *rec = in + n;
  be.fill(ones, 1.f, n);
  if (drop_in_) {
    be.dropout(dropout_, seed, ones, in, unused, skip + n_in);
    in_mask_ = in + skip;
  }
  if (drop_rec_) {
    be.dropout(rdropout_, seed, ones, rec, unused, n);
    rec_mask_ = rec + skip + n_in;
  }
}

// z = (x * mask_g) W_g per mask g (into its columns of z), then + b.
void Recurrent::dropout_input_forward(Backend& be, const float* x, int64_t rows) {
  const int64_t T = steps_, F = in_, gu = gates() * units_, M = in_masks(), gw = gu / M;
  for (int64_t g = 0; g < M; ++g) {
    be.broadcast_multiply({rows, T, F, T * F, F, M * F, 0}, x, in_mask_ + g * F, xd_.data());
    be.gemm(false, false, rows * T, gw, F, 1.f, xd_.data(), F, w_ + g * gw, gu, 0.f,
            z_.data() + g * gw, gu);
  }
  if (b_) be.bias_act({}, b_, z_.data(), z_.data(), rows * T, gu);
}

// out = beta out + (h_{t-1} * mask_g) U_g per state mask g (into its columns of out), h_{t-1}
// rows T units apart.
void Recurrent::dropout_recurrent_gemm(Backend& be, const float* hp, int64_t rows, float* out,
                                       int64_t ldc, float beta) {
  const int64_t U = units_, gu = gates() * U, M = rec_masks(), gw = gu / M;
  be.broadcast_multiply({rows, M, U, steps_ * U, 0, M * U, U}, hp, rec_mask_, hd_.data());
  for (int64_t g = 0; g < M; ++g)
    be.gemm(false, false, rows, gw, U, 1.f, hd_.data() + g * U, M * U, wr_ + g * gw, gu, beta,
            out + g * gw, ldc);
}

// Per state mask g: dh += (dr_g U_g^T) * mask_g and dU_g += (h_{t-1} * mask_g)^T dr_g, with dr
// the step's recurrent-side gradients (rows T G units apart).
void Recurrent::dropout_recurrent_backward(Backend& be, const float* hp, const float* dr,
                                           int64_t rows) {
  const int64_t T = steps_, U = units_, gu = gates() * U, M = rec_masks(), gw = gu / M;
  be.broadcast_multiply({rows, M, U, T * U, 0, M * U, U}, hp, rec_mask_, hd_.data());
  for (int64_t g = 0; g < M; ++g) {
    be.gemm(false, false, rows, U, gw, 1.f, dr + g * gw, T * gu, ut_.data() + g * gw * U, U,
            0.f, hg_.data(), U);
    be.broadcast_multiply({rows, 1, U, U, 0, M * U, 0, true}, hg_.data(), rec_mask_ + g * U,
                          dh_.data());
    be.gemm(true, false, U, gw, rows, 1.f, hd_.data() + g * U, M * U, dr + g * gw, T * gu, 1.f,
            gwr_ + g * gw, gu);
  }
}

// Per input mask g: dW_g = (x * mask_g)^T dz_g, and dx (+)= (dz_g W_g^T) * mask_g. With one
// mask, xd still holds x * mask from the forward pass.
void Recurrent::dropout_input_backward(Backend& be, const float* x, float* dx, int64_t rows) {
  const int64_t T = steps_, F = in_, gu = gates() * units_, M = in_masks(), gw = gu / M;
  const float* z = z_.data();
  for (int64_t g = 0; g < M; ++g) {
    if (M > 1)
      be.broadcast_multiply({rows, T, F, T * F, F, M * F, 0}, x, in_mask_ + g * F, xd_.data());
    be.gemm(true, false, F, gw, rows * T, 1.f, xd_.data(), F, z + g * gw, gu, 0.f, gw_ + g * gw,
            gu);
  }
  if (!dx) return;
  for (int64_t g = 0; g < M; ++g) {
    be.gemm(false, true, rows * T, F, gw, 1.f, z + g * gw, gu, w_ + g * gw, gu, 0.f, xd_.data(),
            F);
    be.broadcast_multiply({rows, T, F, T * F, F, M * F, 0, accumulate_dx_ || g > 0}, xd_.data(),
                          in_mask_ + g * F, dx);
  }
}

}  // namespace deepcore
