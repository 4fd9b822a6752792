// Sequence layers: Embedding and Masking (the global 1-D poolings are Pool2D windows).
#include <stdexcept>
#include <string>

#include "deepcore/embedding_maths.h"
#include "layers.h"

namespace deepcore {

// ------------------------------------------------------------------ Embedding
void Embedding::build(const Shape& in) {
  in_shape = in;
  out_shape = in;
  out_shape.push_back(dim_);
}

void Embedding::reserve(Backend& be, int64_t rows) {
  if (mask_zero_) mask_.reserve(be, rows * shape_size(in_shape));
}

void Embedding::forward(Backend& be, const float* x, float* y, int64_t rows, bool,
                        const uint64_t*) {
  const int64_t n = rows * shape_size(in_shape);
  be.embedding_forward(table_, x, n, dim_, input_dim_, y);
  if (mask_zero_) be.sequence_mask(x, n, 1, 0.f, mask_.data());
}

void Embedding::backward(Backend& be, const float* x, const float*, const float* dy, float* dx,
                         int64_t rows, bool) {
  const int64_t n = rows * shape_size(in_shape);
  be.embedding_backward(x, dy, n, dim_, input_dim_, gtable_);
  if (dx) be.zero(dx, sizeof(float) * n);
}

// -------------------------------------------------------------------- Masking
void Masking::reserve(Backend& be, int64_t rows) { mask_.reserve(be, rows * positions()); }

void Masking::forward(Backend& be, const float* x, float* y, int64_t rows, bool,
                      const uint64_t*) {
  const int64_t n = rows * positions(), w = in_shape.back();
  be.sequence_mask(x, n, w, value_, mask_.data());
  be.mask_rows(x, w, mask_.data(), 1, n, w, y, w);
}

void Masking::backward(Backend& be, const float*, const float*, const float* dy, float* dx,
                       int64_t rows, bool) {
  const int64_t n = rows * positions(), w = in_shape.back();
  if (dx) be.mask_rows(dy, w, mask_.data(), 1, n, w, dx, w);
}

}  // namespace deepcore
