// Sequence layers: Embedding (the global 1-D poolings are Pool2D windows).
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

}  // namespace deepcore
