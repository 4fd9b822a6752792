// CUDA kernels of deepcore.ops (Backend: unary, binary, reduce and their backwards).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "deepcore/op_maths.h"

namespace deepcore {
namespace cuda {

void unary(cudaStream_t stream, UnaryOp op, float p0, float p1, const float* x, float* y,
           int64_t n);
void unary_backward(cudaStream_t stream, UnaryOp op, float p0, float p1, const float* x,
                    const float* y, const float* dy, float* dx, int64_t n);
void binary(cudaStream_t stream, BinaryOp op, const Strided& s, const float* a, const float* b,
            float* y);
void binary_backward(cudaStream_t stream, BinaryOp op, const Strided& s, const float* a,
                     const float* b, const float* y, const float* dy, float* da, float* db);
void chain(cudaStream_t stream, const Chain& c, const float* a, const float* b, float* y);
void chain_backward(cudaStream_t stream, const Chain& c, const float* a, const float* b,
                    const float* dy, float* da, float* db);
void reduce(cudaStream_t stream, ReduceOp op, const Reduction& r, const float* x, float* y);
void reduce_backward(cudaStream_t stream, ReduceOp op, const Reduction& r, const float* x,
                     const float* y, const float* dy, float* dx);

}  // namespace cuda
}  // namespace deepcore
