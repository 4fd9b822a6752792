// Sequence layers: Embedding, GlobalAveragePooling1D and GlobalMaxPooling1D.
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

void Embedding::forward(Backend& be, const float* x, float* y, int64_t rows, bool,
                        const uint64_t*) {
  be.embedding_forward(table_, x, rows * shape_size(in_shape), dim_, input_dim_, y);
}

void Embedding::backward(Backend& be, const float* x, const float*, const float* dy, float* dx,
                         int64_t rows, bool) {
  const int64_t n = rows * shape_size(in_shape);
  be.embedding_backward(x, dy, n, dim_, input_dim_, gtable_);
  if (dx) be.zero(dx, sizeof(float) * n);
}

// ------------------------------------------------------------- GlobalPool1D
void GlobalPool1D::build(const Shape& in) {
  if (in.size() != 2)
    throw std::invalid_argument(std::string(name()) +
                                " expects inputs of shape (batch, steps, features), received " +
                                shape_str(in, true));
  g_ = make_window(in[0], 1, in[1], in[0], 1, 1, 1, false);  // one window: always fits
  in_shape = in;
  out_shape = keepdims_ ? Shape{1, in[1]} : Shape{in[1]};
}

void GlobalPool1D::reserve(Backend& be, int64_t rows) {
  if (max_) argmax_.reserve(be, rows * g_.c);
}

void GlobalPool1D::forward(Backend& be, const float* x, float* y, int64_t rows, bool,
                           const uint64_t*) {
  if (max_)
    be.maxpool_forward(g_, x, rows, y, argmax_.data());
  else
    be.avgpool_forward(g_, x, rows, y);
}

void GlobalPool1D::backward(Backend& be, const float*, const float*, const float* dy, float* dx,
                            int64_t rows, bool) {
  if (!dx) return;
  if (max_)
    be.maxpool_backward(g_, dy, argmax_.data(), rows, dx);
  else
    be.avgpool_backward(g_, dy, rows, dx);
}

}  // namespace deepcore
