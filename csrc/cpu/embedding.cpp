// The Embedding layer's CPU kernels (kernels.h): a gather of table rows, and its gradient
// added into the rows in the order of the positions.
#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "deepcore/embedding_maths.h"
#include "deepcore/kernels.h"

namespace deepcore {

// std::invalid_argument for the first index that is not an integer in [0, input_dim).
void check_embedding_indices(const float* idx, int64_t n, int64_t input_dim) {
  for (int64_t i = 0; i < n; ++i)
    if (!valid_embedding_index(idx[i], input_dim))
      throw std::invalid_argument(invalid_embedding_index_message(idx[i], input_dim));
}

// out[i, :] = table[idx[i], :], after checking every index.
void embedding_forward(const float* table, const float* idx, int64_t n, int64_t dim,
                       int64_t input_dim, float* out) {
  check_embedding_indices(idx, n, input_dim);
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(out + i * dim, table + static_cast<int64_t>(idx[i]) * dim, sizeof(float) * dim);
}

// dtable rows [row0, row1) = 0, then dy's rows added into those their index names, in order.
void embedding_backward(const float* idx, const float* dy, int64_t n, int64_t dim,
                        int64_t row0, int64_t row1, float* dtable) {
  std::fill(dtable + row0 * dim, dtable + row1 * dim, 0.f);
  const double lo = static_cast<double>(row0), hi = static_cast<double>(row1);
  for (int64_t i = 0; i < n; ++i) {
    const double v = idx[i];
    if (!(v >= lo && v < hi) || !valid_embedding_index(v, row1)) continue;
    float* d = dtable + static_cast<int64_t>(v) * dim;
    const float* g = dy + i * dim;
#pragma omp simd
    for (int64_t c = 0; c < dim; ++c) d[c] += g[c];
  }
}

}  // namespace deepcore
