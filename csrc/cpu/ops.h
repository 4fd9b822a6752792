// The CPU kernels of deepcore.ops (op_maths.h), run on the worker threads. Internal header.
#pragma once

#include <cstdint>

#include "deepcore/merge_maths.h"
#include "deepcore/op_maths.h"

namespace deepcore {
namespace cpu {

void unary(UnaryOp op, float p0, float p1, const float* x, float* y, int64_t n);
void unary_backward(UnaryOp op, float p0, float p1, const float* x, const float* y,
                    const float* dy, float* dx, int64_t n);
void binary(BinaryOp op, const Strided& s, const float* a, const float* b, float* y);
void binary_backward(BinaryOp op, const Strided& s, const float* a, const float* b,
                     const float* y, const float* dy, float* da, float* db);
void chain(const Chain& c, const float* a, const float* b, float* y);
void chain_backward(const Chain& c, const float* a, const float* b, const float* dy, float* da,
                    float* db);
void merge(MergeOp op, const MergeInputs& in, float* y, int64_t n);
void merge_backward(MergeOp op, const MergeInputs& in, const float* y, const float* dy,
                    const MergeGrads& dx, int64_t n);
void reduce(ReduceOp op, const Reduction& r, const float* x, float* y);
void reduce_backward(ReduceOp op, const Reduction& r, const float* x, const float* y,
                     const float* dy, float* dx);

}  // namespace cpu
}  // namespace deepcore
