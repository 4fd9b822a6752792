// The per-position maths of the Embedding layer, shared by the CPU kernels (cpu/embedding.cpp)
// and the CUDA ones (cuda/embedding.cu). Indices arrive as float32 values (the engine's data
// path): an index is valid when it is an integer in [0, input_dim), and float32 holds every
// integer up to 2**24 exactly, the most rows a table may have (kMaxEmbeddingRows).
#pragma once

#include <cstdint>
#include <string>

#include "deepcore/hd.h"

namespace deepcore {

// The most rows (input_dim) of an embedding table whose indices travel as float32.
constexpr int64_t kMaxEmbeddingRows = int64_t(1) << 24;

// Whether v is an integer in [0, input_dim) (false for NaN and inf).
DC_HD inline bool valid_embedding_index(double v, int64_t input_dim) {
  return v >= 0.0 && v < double(input_dim) && double(static_cast<int64_t>(v)) == v;
}

// The message of the std::invalid_argument for an invalid index v.
inline std::string invalid_embedding_index_message(double v, int64_t input_dim) {
  return "Embedding: indices must be integers in [0, input_dim=" + std::to_string(input_dim) +
         "), received: " + std::to_string(v);
}

}  // namespace deepcore
