// CUDA kernels of a training step's updates: grid-stride loops around the per-element
// formulas of deepcore/optimizer_rules.h (the CPU's), and deterministic reductions in
// double for the penalty and the gradient norm (a fixed number of blocks for a given n,
// each summing its part with a fixed-order tree, then one block adding the partial sums in
// order: the same bits on every run, no atomics).
#include <stdexcept>
#include <type_traits>

#include "common.cuh"
#include "deepcore/optimizer_rules.h"
#include "update.cuh"

namespace deepcore {
namespace cuda {
namespace {

// ------------------------------------------------------------------ reductions
// The most blocks of a reduction's first pass, and so the most partial sums.
constexpr int kReduceBlocks = 1024;

// The partial sums of the reduction in flight, and the scale clip_by_norm computed. Device
// globals, so that an op allocates nothing: the backend's one stream orders the ops that
// use them.
__device__ double g_partial[kReduceBlocks];
struct ClipScale {
  float scale;
  int on;  // 1 when the norm exceeded max_norm
};
__device__ ClipScale g_clip;

// Blocks of a reduction's first pass over n values: a function of n alone.
unsigned reduce_blocks(int64_t n) {
  const unsigned b = blocks_for(n);
  return b < unsigned(kReduceBlocks) ? b : unsigned(kReduceBlocks);
}

// The sum of v over the block (blockDim.x == kThreads) in a fixed order: a tree in shared
// memory. Every thread gets it.
__device__ double block_sum(double v) {
  __shared__ double part[kThreads];
  part[threadIdx.x] = v;
  __syncthreads();
  for (int o = kThreads / 2; o > 0; o /= 2) {
    if (threadIdx.x < o) part[threadIdx.x] += part[threadIdx.x + o];
    __syncthreads();
  }
  return part[0];
}

// The sum of the first `count` partial sums, in a fixed order (run by one block).
__device__ double partial_total(int count) {
  double s = 0.0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) s += g_partial[i];
  return block_sum(s);
}

// First pass of l1l2_penalty: each block's part of the penalty into g_partial[block], and
// the penalty's gradient added to g (when not null) on the way.
__global__ void l1l2_kernel(const float* w, float* g, int64_t n, float l1, float l2) {
  double s = 0.0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float wi = w[i];
    s += opt::l1l2_value(wi, l1, l2);
    if (g) opt::l1l2_grad(g[i], wi, l1, l2);
  }
  s = block_sum(s);
  if (threadIdx.x == 0) g_partial[blockIdx.x] = s;
}

// *acc += the sum of the first pass's `count` partial sums (one block).
__global__ void add_partials_kernel(int count, double* acc) {
  const double s = partial_total(count);
  if (threadIdx.x == 0) *acc += s;
}

// First pass of clip_by_norm: each block's part of sum_i g_i^2 into g_partial[block].
__global__ void sum_squares_kernel(const float* g, int64_t n) {
  double s = 0.0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    s += opt::squared(g[i]);
  s = block_sum(s);
  if (threadIdx.x == 0) g_partial[blockIdx.x] = s;
}

// The norm from the first pass's partial sums (one block), and g_clip: whether it exceeds
// max_norm and the scale max_norm / norm, as float (the CPU's).
__global__ void clip_scale_kernel(int count, double max_norm) {
  const double norm = sqrt(partial_total(count));
  if (threadIdx.x == 0) {
    const bool on = norm > max_norm;
    g_clip = ClipScale{on ? static_cast<float>(max_norm / norm) : 1.f, on ? 1 : 0};
  }
}

// g *= g_clip.scale when g_clip.on.
__global__ void clip_apply_kernel(float* g, int64_t n) {
  const ClipScale c = g_clip;
  if (!c.on) return;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    g[i] *= c.scale;
}

// ------------------------------------------------------------------ optimizers
// The update rule of a call, chosen on the host from the OptSpec.
enum class Rule : int { Sgd, SgdMomentum, SgdNesterov, Adam, RMSprop, Adagrad };

// The hyper-parameters in the types the rules take (as cpu/optimizers.cpp casts them).
struct Hyper {
  double weight_decay;  // decoupled decay when > 0
  double beta_1, beta_2;
  float momentum, epsilon, rho, c1, c2;  // c1 = 1 - beta_1, c2 = 1 - beta_2
  bool centered;
};

// One pass over the parameters with rule R. The learning rate and the step count come from
// *step; Adam's alpha (pow in double) is computed once per block by its first thread.
template <Rule R>
__global__ void optimizer_kernel(Hyper h, const StepValues* step, float* w, const float* g,
                                 float* s0, float* s1, float* s2, int64_t n) {
  const float lr = step->lr;
  float alpha = 0.f;
  if constexpr (R == Rule::Adam) {
    __shared__ float block_alpha;
    if (threadIdx.x == 0) block_alpha = opt::adam_alpha(lr, step->step, h.beta_1, h.beta_2);
    __syncthreads();
    alpha = block_alpha;
  }
  const bool decays = h.weight_decay > 0;
  const float f = opt::decay_factor(lr, h.weight_decay);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    float wi = w[i];
    if (decays) opt::decay(wi, f);
    const float gi = g[i];
    if constexpr (R == Rule::Sgd) {
      opt::sgd(wi, gi, lr);
    } else if constexpr (R == Rule::SgdMomentum || R == Rule::SgdNesterov) {
      float m = s0[i];
      if constexpr (R == Rule::SgdNesterov)
        opt::sgd_nesterov(wi, gi, m, lr, h.momentum);
      else
        opt::sgd_momentum(wi, gi, m, lr, h.momentum);
      s0[i] = m;
    } else if constexpr (R == Rule::Adam) {
      float m = s0[i], v = s1[i];
      opt::adam(wi, gi, m, v, alpha, h.c1, h.c2, h.epsilon);
      s0[i] = m;
      s1[i] = v;
    } else if constexpr (R == Rule::RMSprop) {
      // the momentum and average slots are read and written only when the rule uses them
      const bool momentum = h.momentum > 0;
      float v = s0[i], mom = momentum ? s1[i] : 0.f, a = h.centered ? s2[i] : 0.f;
      opt::rmsprop(wi, gi, v, mom, a, lr, h.rho, h.momentum, h.epsilon, h.centered);
      s0[i] = v;
      if (momentum) s1[i] = mom;
      if (h.centered) s2[i] = a;
    } else {
      float acc = s0[i];
      opt::adagrad(wi, gi, acc, lr, h.epsilon);
      s0[i] = acc;
    }
    w[i] = wi;
  }
}

// ------------------------------------------------------------------ element ops
__global__ void clip_value_kernel(float* g, int64_t n, float v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    g[i] = opt::clip_value(g[i], v);
}

__global__ void multiply_kernel(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = a[i] * b[i];
}

__global__ void broadcast_multiply_kernel(Broadcast3 s, const float* a, const float* m,
                                          float* out) {
  const int64_t n = s.size();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    broadcast_multiply_at(s, a, m, out, i);
}

// Element i of out (cols x rows) = a[r, c] with (c, r) = i's position: writes coalesced.
__global__ void transpose_kernel(const float* a, int64_t rows, int64_t cols, float* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows * cols;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i / rows, r = i - c * rows;
    out[i] = a[r * cols + c];
  }
}

// mask[i] from the seed at *seed and the element's index, y[i] = x[i] * mask[i].
__global__ void dropout_kernel(const uint64_t* seed_in, float keep, float scale, const float* x,
                               float* y, float* mask, int64_t n) {
  const uint64_t seed = *seed_in;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float m = opt::dropout_mask(seed, i, keep, scale);
    mask[i] = m;
    y[i] = x[i] * m;
  }
}

// dst[e] for e = r * cols + c is src[idx[r] * cols + c]: consecutive threads copy
// consecutive values of a row.
__global__ void gather_rows_kernel(const float* src, const int64_t* idx, int64_t rows,
                                   int64_t cols, float* dst) {
  const int64_t n = rows * cols;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = e / cols, c = e - r * cols;
    dst[e] = src[idx[r] * cols + c];
  }
}

__global__ void add_batch_loss_kernel(const double* batch, double scale, int64_t rows,
                                      double* totals) {
  opt::add_batch_loss(batch, scale, rows, totals);
}

}  // namespace

void optimizer_update(cudaStream_t stream, const OptSpec& o, const StepValues* step, float* w,
                      const float* g, float* s0, float* s1, float* s2, int64_t n) {
  if (n <= 0) return;
  Hyper h{};
  h.weight_decay = o.weight_decay;
  h.beta_1 = o.beta_1;
  h.beta_2 = o.beta_2;
  h.momentum = static_cast<float>(o.momentum);
  h.epsilon = static_cast<float>(o.epsilon);
  h.rho = static_cast<float>(o.rho);
  h.c1 = 1.f - static_cast<float>(o.beta_1);
  h.c2 = 1.f - static_cast<float>(o.beta_2);
  h.centered = o.centered;
  auto launch = [&](auto rule) {
    optimizer_kernel<decltype(rule)::value>
        <<<blocks_for(n), kThreads, 0, stream>>>(h, step, w, g, s0, s1, s2, n);
  };
  using std::integral_constant;
  switch (o.kind) {
    case Opt::SGD:
      if (h.momentum <= 0)
        launch(integral_constant<Rule, Rule::Sgd>{});
      else if (o.nesterov)
        launch(integral_constant<Rule, Rule::SgdNesterov>{});
      else
        launch(integral_constant<Rule, Rule::SgdMomentum>{});
      break;
    case Opt::Adam:
    case Opt::AdamW:
      launch(integral_constant<Rule, Rule::Adam>{});
      break;
    case Opt::RMSprop:
      launch(integral_constant<Rule, Rule::RMSprop>{});
      break;
    case Opt::Adagrad:
      launch(integral_constant<Rule, Rule::Adagrad>{});
      break;
    default:
      throw std::invalid_argument("unknown optimizer");
  }
  check_launch("optimizer_update");
}

void l1l2_penalty(cudaStream_t stream, const float* w, float* g, int64_t n, float l1, float l2,
                  double* acc) {
  if (n <= 0) return;
  const unsigned blocks = reduce_blocks(n);
  l1l2_kernel<<<blocks, kThreads, 0, stream>>>(w, g, n, l1, l2);
  check_launch("l1l2_penalty");
  add_partials_kernel<<<1, kThreads, 0, stream>>>(static_cast<int>(blocks), acc);
  check_launch("l1l2_penalty (sum)");
}

void clip_by_value(cudaStream_t stream, float* g, int64_t n, float v) {
  if (n <= 0) return;
  clip_value_kernel<<<blocks_for(n), kThreads, 0, stream>>>(g, n, v);
  check_launch("clip_by_value");
}

void clip_by_norm(cudaStream_t stream, float* g, int64_t n, double max_norm) {
  if (n <= 0) return;
  const unsigned blocks = reduce_blocks(n);
  sum_squares_kernel<<<blocks, kThreads, 0, stream>>>(g, n);
  check_launch("clip_by_norm (squares)");
  clip_scale_kernel<<<1, kThreads, 0, stream>>>(static_cast<int>(blocks), max_norm);
  check_launch("clip_by_norm (norm)");
  clip_apply_kernel<<<blocks_for(n), kThreads, 0, stream>>>(g, n);
  check_launch("clip_by_norm");
}

void multiply(cudaStream_t stream, const float* a, const float* b, float* out, int64_t n) {
  if (n <= 0) return;
  multiply_kernel<<<blocks_for(n), kThreads, 0, stream>>>(a, b, out, n);
  check_launch("multiply");
}

void broadcast_multiply(cudaStream_t stream, const Broadcast3& s, const float* a, const float* m,
                        float* out) {
  if (s.n0 <= 0 || s.n1 <= 0 || s.n2 <= 0) return;
  broadcast_multiply_kernel<<<blocks_for(s.size()), kThreads, 0, stream>>>(s, a, m, out);
  check_launch("broadcast_multiply");
}

void transpose(cudaStream_t stream, const float* a, int64_t rows, int64_t cols, float* out) {
  if (rows <= 0 || cols <= 0) return;
  transpose_kernel<<<blocks_for(rows * cols), kThreads, 0, stream>>>(a, rows, cols, out);
  check_launch("transpose");
}

void dropout(cudaStream_t stream, float rate, const uint64_t* seed, const float* x, float* y,
             float* mask, int64_t n) {
  if (n <= 0) return;
  const float keep = 1.f - rate, scale = 1.f / keep;  // as the CPU computes them
  dropout_kernel<<<blocks_for(n), kThreads, 0, stream>>>(seed, keep, scale, x, y, mask, n);
  check_launch("dropout");
}

void gather_rows(cudaStream_t stream, const float* src, const int64_t* idx, int64_t rows,
                 int64_t cols, float* dst) {
  if (rows <= 0 || cols <= 0) return;
  gather_rows_kernel<<<blocks_for(rows * cols), kThreads, 0, stream>>>(src, idx, rows, cols,
                                                                       dst);
  check_launch("gather_rows");
}

void add_batch_loss(cudaStream_t stream, const double* batch, double scale, int64_t rows,
                    double* totals) {
  add_batch_loss_kernel<<<1, 1, 0, stream>>>(batch, scale, rows, totals);
  check_launch("add_batch_loss");
}

}  // namespace cuda
}  // namespace deepcore
