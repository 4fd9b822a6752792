// The CUDA step kernels of the recurrent layers (recurrent.cu): one thread per (sample, unit)
// of one time step, the maths of deepcore/recurrent_maths.h (the CPU's). The launchers run on
// `stream` and return without synchronizing.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "deepcore/kernels.h"

namespace deepcore {
namespace cuda {

void rnn_step_forward(cudaStream_t stream, const RnnStep& s, const float* z, const float* hr,
                      const float* h_prev, const float* mask, float* h);
void rnn_step_backward(cudaStream_t stream, const RnnStep& s, float* z, const float* h,
                       const float* dy, const float* mask, float* dh);
void lstm_step_forward(cudaStream_t stream, const RnnStep& s, float* z, const float* hr,
                       const float* h_prev, const float* c_prev, const float* mask, float* c,
                       float* h);
void lstm_step_backward(cudaStream_t stream, const RnnStep& s, float* z, const float* c_prev,
                        const float* c, const float* dy, const float* mask, float* dh,
                        float* dc);
void gru_step_forward(cudaStream_t stream, const RnnStep& s, float* z, const float* hr,
                      const float* rbias, const float* h_prev, const float* mask, float* rh,
                      float* h);
void gru_step_backward(cudaStream_t stream, const RnnStep& s, float* z, float* dr,
                       const float* rh, const float* h_prev, const float* dy, const float* mask,
                       float* dh);

// Bidirectional's merge and its gradients: one thread per output element.
void bidir_merge(cudaStream_t stream, const BidirMerge& m, const float* a, const float* b,
                 float* y);
void bidir_merge_backward(cudaStream_t stream, const BidirMerge& m, const float* a,
                          const float* b, const float* dy, float* da, float* db);

}  // namespace cuda
}  // namespace deepcore
