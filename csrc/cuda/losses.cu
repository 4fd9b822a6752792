// CUDA losses and metrics: the loops and sums around the per-entry formulas of
// deepcore/loss_terms.h (the CPU's). Element-wise losses, precision and recall run a
// grid-stride loop over the entries; cross-entropies and per-row metrics one group of G
// threads per row (G = 8 or 32 lanes of a warp, or the whole block); AUC one block per
// threshold. Sums are in double and deterministic: each block adds its values in a fixed
// order into partial sums (scratch), and finish_kernel adds those in a fixed order.
#include <cmath>
#include <stdexcept>
#include <type_traits>

#include "common.cuh"
#include "deepcore/loss_terms.h"
#include "losses.cuh"

namespace deepcore {
namespace cuda {
namespace {

struct Add {
  template <class T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};
struct Larger {  // std::max's order
  __device__ float operator()(float a, float b) const { return a < b ? b : a; }
};

// The reduction of v over each group of G consecutive threads (G <= 32 divides a warp, or
// G == kThreads: the block), every thread of the group getting the same result: the
// xor butterfly hands both partners op(a, b) and op(b, a), equal for the commutative ops
// here. Every thread of the warp (of the block when G == kThreads) must call it.
template <int G, class T, class Op>
__device__ T group_reduce(T v, Op op) {
  static_assert(G == kThreads || (G <= 32 && 32 % G == 0), "a group is part of a warp or a block");
  constexpr int kWarpPart = G < 32 ? G : 32;
  for (int o = kWarpPart / 2; o > 0; o /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  if constexpr (G > 32) {
    __shared__ T part[kThreads / 32];
    __syncthreads();  // part may still be read by the previous reduction
    if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
    __syncthreads();
    v = part[0];
    for (int i = 1; i < kThreads / 32; ++i) v = op(v, part[i]);
  }
  return v;
}

// A candidate for a row's argmax: value and index, index -1 for none.
struct ArgMax {
  float v;
  int64_t i;
};

// The winner of two candidates in std::max_element's order: the larger value, the earlier
// index on ties. A NaN is only ever a candidate at index 0 (see scan_argmax), where
// max_element starts and keeps it.
__device__ ArgMax better(ArgMax a, ArgMax b) {
  if (a.i < 0) return b;
  if (b.i < 0) return a;
  const ArgMax first = a.i < b.i ? a : b, second = a.i < b.i ? b : a;
  return first.v < second.v ? second : first;
}

// The argmax of x[0, n) over a group of G threads (n = 0: index -1), as std::max_element.
template <int G>
__device__ ArgMax group_argmax(const float* x, int64_t n, int lane) {
  ArgMax best{0.f, -1};
  for (int64_t c = lane; c < n; c += G)
    if (c == 0 || !isnan(x[c])) best = better(best, ArgMax{x[c], c});
  constexpr int kWarpPart = G < 32 ? G : 32;
  for (int o = kWarpPart / 2; o > 0; o /= 2) {
    const ArgMax other{__shfl_xor_sync(0xffffffffu, best.v, o),
                       __shfl_xor_sync(0xffffffffu, best.i, o)};
    best = better(best, other);
  }
  if constexpr (G > 32) {
    __shared__ float part_v[kThreads / 32];
    __shared__ int64_t part_i[kThreads / 32];
    __syncthreads();
    if (threadIdx.x % 32 == 0) {
      part_v[threadIdx.x / 32] = best.v;
      part_i[threadIdx.x / 32] = best.i;
    }
    __syncthreads();
    best = ArgMax{part_v[0], part_i[0]};
    for (int i = 1; i < kThreads / 32; ++i) best = better(best, ArgMax{part_v[i], part_i[i]});
  }
  return best;
}

// Records an invalid sparse label unless one is recorded already.
__device__ void report_label(LabelError* e, double v, int64_t classes) {
  if (atomicCAS(&e->set, 0u, 1u) == 0u) {
    e->value = v;
    e->classes = classes;
  }
}

// The label of row r of a sparse target y (one value per row) when it is valid; otherwise
// reports it and returns -1. Called by every lane of the row's group: one reports.
__device__ int64_t row_label(const float* y, int64_t r, int64_t classes, int lane,
                             LabelError* error) {
  const double v = y[r];
  if (lt::valid_label(v, classes)) return static_cast<int64_t>(v);
  if (lane == 0) report_label(error, v, classes);
  return -1;
}

// The K sums of each thread of the block, added over the block (groups in a fixed order),
// written to partials[blockIdx.x * K + k]. Every thread of the block must call it.
template <int K>
__device__ void block_partials(const double (&v)[K], double* partials) {
  for (int k = 0; k < K; ++k) {
    const double s = group_reduce<kThreads>(v[k], Add{});
    if (threadIdx.x == 0) partials[blockIdx.x * K + k] = s;
  }
}

// out[k] = scale * (the sum over blocks b of partials[b * sums + k]), or out[k] += that
// when `add`; block k adds column k in a fixed order.
__global__ void finish_kernel(const double* __restrict__ partials, int blocks, int sums,
                              double scale, double* out, bool add) {
  const int k = blockIdx.x;
  double s = 0.0;
  for (int b = threadIdx.x; b < blocks; b += blockDim.x) s += partials[int64_t(b) * sums + k];
  s = group_reduce<kThreads>(s, Add{}) * scale;
  if (threadIdx.x == 0) out[k] = add ? out[k] + s : s;
}

// ------------------------------------------------------------------ element-wise losses
// Each term: loss term of entry (z, its sigmoid s when given, y) added to `loss`, its
// derivative returned (the formulas of loss_terms.h).
struct SquaredError {
  float inv_cols;
  __device__ float operator()(float z, float, float y, double& loss) const {
    return lt::squared_error(z, y, inv_cols, loss);
  }
};
struct Given {
  float inv_cols;
  __device__ float operator()(float z, float, float, double& loss) const {
    return lt::given(z, inv_cols, loss);
  }
};
struct AbsoluteError {
  float inv_cols;
  __device__ float operator()(float z, float, float y, double& loss) const {
    return lt::absolute_error(z, y, inv_cols, loss);
  }
};
struct Huber {
  float inv_cols, delta;
  __device__ float operator()(float z, float, float y, double& loss) const {
    return lt::huber(z, y, delta, inv_cols, loss);
  }
};
struct Hinge {
  float inv_cols;
  __device__ float operator()(float z, float, float y, double& loss) const {
    return lt::hinge(z, y, inv_cols, loss);
  }
};
struct BinaryCrossentropy {
  float inv_cols, eps;
  __device__ float operator()(float p, float, float y, double& loss) const {
    return lt::binary_crossentropy(p, y, eps, inv_cols, loss);
  }
};
struct BinaryCrossentropyLogits {
  float inv_cols;
  __device__ float operator()(float x, float, float y, double& loss) const {
    return lt::binary_crossentropy_logits(x, y, inv_cols, loss);
  }
};
struct BinaryCrossentropyLogitsFused {  // s = sigmoid(x) given
  float inv_cols;
  __device__ float operator()(float x, float s, float y, double& loss) const {
    return lt::binary_crossentropy_logits(x, s, y, inv_cols, loss);
  }
};

// One thread per entry i of the rows x cols batch (n entries): adds w_r * term_i into the
// block's partial sum (the row means' 1/cols is applied by finish_kernel) and writes
// grad_i = d term_i * w_r * grad_scale.
template <class Term>
__global__ void __launch_bounds__(kThreads)
    elementwise_loss_kernel(Term term, const float* __restrict__ pred,
                            const float* __restrict__ probs, const float* __restrict__ y,
                            const float* __restrict__ w, float* grad, int64_t n, int64_t cols,
                            float grad_scale, double* partials) {
  double acc[1] = {0.0};
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float wr = w ? w[i / cols] : 1.f;
    double v = 0.0;
    const float g = term(pred[i], probs ? probs[i] : 0.f, y[i], v);
    acc[0] += double(wr) * v;
    if (grad) grad[i] = g * (wr * grad_scale);
  }
  block_partials<1>(acc, partials);
}

// ------------------------------------------------------------------ cross-entropies
struct CrossentropyArgs {
  const float* pred;
  const float* probs;  // the softmax of pred (from logits), or null
  const float* y;
  const float* w;
  float* grad;
  int64_t rows, cols;
  float grad_scale;
  bool sparse, from_logits;
  LabelError* error;
  double* partials;
};

// One group of G threads per row: the row's loss (a sum over classes, in double) and its
// gradient, as row_loss in cpu/losses.cpp. Lane 0 of each group keeps the sum of its rows'
// w_r * loss_r; the block adds them into its partial sum. A row with an invalid sparse
// label is reported, its loss is NaN and its gradient 0. Every group runs the same number
// of passes (inactive past the last row), so that the group reductions see whole warps.
template <int G>
__global__ void __launch_bounds__(kThreads) crossentropy_kernel(CrossentropyArgs a) {
  constexpr int kGroups = kThreads / G;
  const int lane = threadIdx.x % G, group = threadIdx.x / G;
  const float eps = float(kProbEpsilon);
  double acc = 0.0;
  for (int64_t base = blockIdx.x * int64_t(kGroups); base < a.rows;
       base += int64_t(gridDim.x) * kGroups) {
    const int64_t r = base + group;
    const bool active = r < a.rows;
    const int64_t label = active && a.sparse ? row_label(a.y, r, a.cols, lane, a.error) : -1;
    const bool bad = a.sparse && label < 0;
    const int64_t n = active && !bad ? a.cols : 0;  // the entries this group reads
    const int64_t off = active ? r * a.cols : 0;
    const float* z = a.pred + off;
    const float* p = a.probs ? a.probs + off : nullptr;
    const float* yr = a.sparse ? a.y : a.y + off;
    auto target = [&](int64_t c) { return a.sparse ? lt::sparse_target<float>(c, label) : yr[c]; };

    double loss = 0.0;
    float m = 0.f, s = 1.f, target_sum = 0.f, dot = 0.f;
    if (a.from_logits) {
      float lse = 0.f;
      if (p) {  // lse from the largest probability, as the CPU
        const ArgMax best = group_argmax<G>(p, n, lane);
        if (best.i >= 0) lse = lt::logsumexp_from_softmax(z[best.i], p[best.i]);
      } else {
        float mx = -INFINITY;
        for (int64_t c = lane; c < n; c += G) mx = Larger{}(mx, z[c]);
        m = group_reduce<G>(mx, Larger{});
        float se = 0.f;
        for (int64_t c = lane; c < n; c += G) se += expf(z[c] - m);
        s = group_reduce<G>(se, Add{});
        lse = lt::logsumexp(m, s);
      }
      float ts = 0.f;
      for (int64_t c = lane; c < n; c += G) {
        const float t = target(c);
        ts += t;
        lt::crossentropy_logit(t, lse, z[c], loss);
      }
      target_sum = group_reduce<G>(ts, Add{});
    } else {  // probabilities: q = pred / sum(pred)
      float sp = 0.f;
      for (int64_t c = lane; c < n; c += G) sp += z[c];
      s = group_reduce<G>(sp, Add{});
      float d = 0.f;
      for (int64_t c = lane; c < n; c += G) {
        const float q = z[c] / s;
        d += lt::crossentropy_prob(q, target(c), eps, loss) * q;
      }
      dot = group_reduce<G>(d, Add{});
    }
    loss = group_reduce<G>(loss, Add{});

    const float wr = active && a.w ? a.w[r] : 1.f;
    if (a.grad && active) {
      float* g = a.grad + off;
      const float scale = wr * a.grad_scale;
      for (int64_t c = lane; c < a.cols; c += G) {
        float gc = 0.f;
        if (!bad) {
          const float t = target(c);
          if (a.from_logits) {
            gc = lt::crossentropy_logit_grad(p ? p[c] : expf(z[c] - m) / s, target_sum, t);
          } else {
            double unused = 0.0;
            const float q = z[c] / s;
            gc = lt::crossentropy_prob_grad(lt::crossentropy_prob(q, t, eps, unused), dot, s);
          }
        }
        g[c] = gc * scale;
      }
    }
    if (lane == 0 && active) acc += bad ? double(NAN) : double(wr) * loss;
  }
  __shared__ double sums[kGroups];
  if (lane == 0) sums[group] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0.0;
    for (int i = 0; i < kGroups; ++i) t += sums[i];
    a.partials[blockIdx.x] = t;
  }
}

// ---------------------------------------------------------------------------- metrics
struct MetricArgs {
  const float* pred;
  const float* y;
  const float* w;
  int64_t rows, cols, ycols;
  MetricSpec m;
  bool sparse;
  LabelError* error;
  double* partials;
};

// Binary, categorical, sparse categorical and top-k accuracy, mean squared and absolute
// error: one group of G threads per row computes the row's value v_r as cpu/metrics.cpp;
// lane 0 keeps the sums of w_r v_r and of w_r, the block adds them into its two partial
// sums. A row with an invalid sparse label is reported and its value is NaN.
template <int G>
__global__ void __launch_bounds__(kThreads) row_metric_kernel(MetricArgs a) {
  constexpr int kGroups = kThreads / G;
  const int lane = threadIdx.x % G, group = threadIdx.x / G;
  double acc_v = 0.0, acc_w = 0.0;
  for (int64_t base = blockIdx.x * int64_t(kGroups); base < a.rows;
       base += int64_t(gridDim.x) * kGroups) {
    const int64_t r = base + group;
    const bool active = r < a.rows;
    const int64_t n = active ? a.cols : 0;
    const float* p = a.pred + (active ? r * a.cols : 0);
    const float* t = a.y + (active ? r * a.ycols : 0);
    const int64_t label = active && a.sparse ? row_label(a.y, r, a.cols, lane, a.error) : -1;
    const bool bad = a.sparse && label < 0;
    double v = 0.0;
    switch (a.m.kind) {
      case Metric::BinaryAccuracy:
      case Metric::MeanSquaredError:
      case Metric::MeanAbsoluteError:
      case Metric::Mean: {
        for (int64_t c = lane; c < n; c += G)
          v += a.m.kind == Metric::BinaryAccuracy ? lt::binary_match(p[c], t[c], a.m.threshold)
               : a.m.kind == Metric::MeanSquaredError ? lt::squared_diff(p[c], t[c])
               : a.m.kind == Metric::Mean             ? double(p[c])
                                                      : lt::absolute_diff(p[c], t[c]);
        v = group_reduce<G>(v, Add{}) / double(a.cols);
        break;
      }
      case Metric::CategoricalAccuracy: {
        const ArgMax bp = group_argmax<G>(p, n, lane), bt = group_argmax<G>(t, n, lane);
        v = bp.i == bt.i;
        break;
      }
      case Metric::SparseCategoricalAccuracy:
        v = group_argmax<G>(p, n, lane).i == label;
        break;
      case Metric::TopKCategoricalAccuracy: {
        const int64_t truth = a.sparse ? label : group_argmax<G>(t, n, lane).i;
        const int64_t count = truth >= 0 ? n : 0;
        const float p_true = count ? p[truth] : 0.f;
        int64_t above = 0;
        for (int64_t c = lane; c < count; c += G) above += lt::outranks(p[c], p_true);
        v = lt::top_k_hit(group_reduce<G>(above, Add{}), a.m.k);
        break;
      }
      default:
        break;
    }
    if (lane == 0 && active) {
      const double wr = a.w ? double(a.w[r]) : 1.0;
      acc_v += bad ? double(NAN) : wr * v;
      acc_w += wr;
    }
  }
  __shared__ double sums[2][kGroups];
  if (lane == 0) {
    sums[0][group] = acc_v;
    sums[1][group] = acc_w;
  }
  __syncthreads();
  if (threadIdx.x < 2) {
    double s = 0.0;
    for (int i = 0; i < kGroups; ++i) s += sums[threadIdx.x][i];
    a.partials[blockIdx.x * 2 + threadIdx.x] = s;
  }
}

// Precision and recall: one thread per entry adds w_r to the true positives, false
// positives or false negatives (three partial sums per block).
__global__ void __launch_bounds__(kThreads)
    precision_recall_kernel(const float* __restrict__ pred, const float* __restrict__ y,
                            const float* __restrict__ w, int64_t n, int64_t cols,
                            float threshold, double* partials) {
  double acc[3] = {0.0, 0.0, 0.0};
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const double wr = w ? double(w[i / cols]) : 1.0;
    const bool pos = lt::predicted_positive(pred[i], threshold);
    const bool truth = lt::truly_positive(y[i]);
    acc[0] += wr * (pos && truth);
    acc[1] += wr * (pos && !truth);
    acc[2] += wr * (!pos && truth);
  }
  block_partials<3>(acc, partials);
}

// AUC: one block per threshold i (striding when there are more thresholds than blocks)
// counts every entry at that threshold, adding w_r to one of the true positives, false
// positives, true negatives and false negatives; thread 0 adds the four block sums to
// state[block * num_thresholds + i].
__global__ void __launch_bounds__(kThreads)
    auc_kernel(const float* __restrict__ pred, const float* __restrict__ y,
               const float* __restrict__ w, int64_t n, int64_t cols, int num_thresholds,
               double* state) {
  for (int i = blockIdx.x; i < num_thresholds; i += gridDim.x) {
    const double threshold = lt::auc_threshold(i, num_thresholds);
    double count[4] = {0.0, 0.0, 0.0, 0.0};
    for (int64_t e = threadIdx.x; e < n; e += blockDim.x) {
      const double wr = w ? double(w[e / cols]) : 1.0;
      const int b =
          lt::auc_block(lt::truly_positive(y[e]), lt::predicted_positive(pred[e], threshold));
#pragma unroll
      for (int k = 0; k < 4; ++k) count[k] += k == b ? wr : 0.0;
    }
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const double s = group_reduce<kThreads>(count[k], Add{});
      if (threadIdx.x == 0) state[int64_t(k) * num_thresholds + i] += s;
    }
  }
}

// ---------------------------------------------------------------------------- launches
// Blocks for `units` of work done `per_block` at a time, at most kMaxPartialBlocks.
int partial_blocks(int64_t units, int64_t per_block) {
  const int64_t b = (units + per_block - 1) / per_block;
  return static_cast<int>(b < 1 ? 1 : (b < kMaxPartialBlocks ? b : kMaxPartialBlocks));
}

void finish(cudaStream_t stream, const double* partials, int blocks, int sums, double scale,
            double* out, bool add) {
  finish_kernel<<<sums, kThreads, 0, stream>>>(partials, blocks, sums, scale, out, add);
  check_launch("loss/metric sums");
}

// Calls f(std::integral_constant<int, G>) with the group size for rows of `cols` entries.
template <class F>
void by_group(int64_t cols, F&& f) {
  if (cols <= 8)
    f(std::integral_constant<int, 8>{});
  else if (cols <= 2048)
    f(std::integral_constant<int, 32>{});
  else
    f(std::integral_constant<int, kThreads>{});
}

}  // namespace

void loss(cudaStream_t stream, const LossSpec& l, const float* pred, const float* probs,
          const float* y, const float* w, float* grad, int64_t rows, int64_t cols, int64_t ycols,
          float grad_scale, double* sum, double* scratch, LabelError* error) {
  lt::check_loss_labels(l, cols, ycols);
  const int64_t n = rows * cols;
  if (n == 0) {  // no rows: the sum is 0
    finish(stream, scratch, 0, 1, 1.0, sum, false);
    return;
  }
  if (l.kind == Loss::CategoricalCrossentropy || l.kind == Loss::SparseCategoricalCrossentropy) {
    const CrossentropyArgs a{pred, l.from_logits ? probs : nullptr, y, w, grad, rows, cols,
                             grad_scale, l.kind == Loss::SparseCategoricalCrossentropy,
                             l.from_logits, error, scratch};
    int blocks = 0;
    by_group(cols, [&](auto g) {
      constexpr int G = decltype(g)::value;
      blocks = partial_blocks(rows, kThreads / G);
      crossentropy_kernel<G><<<blocks, kThreads, 0, stream>>>(a);
    });
    check_launch("loss (cross-entropy)");
    finish(stream, scratch, blocks, 1, 1.0, sum, false);
    return;
  }
  const float inv_cols = 1.f / float(cols);
  const int blocks = partial_blocks(n, kThreads);
  auto launch = [&](auto term) {
    elementwise_loss_kernel<<<blocks, kThreads, 0, stream>>>(term, pred, probs, y, w, grad, n,
                                                             cols, grad_scale, scratch);
  };
  switch (l.kind) {
    case Loss::MeanSquaredError: launch(SquaredError{inv_cols}); break;
    case Loss::MeanAbsoluteError: launch(AbsoluteError{inv_cols}); break;
    case Loss::Huber: launch(Huber{inv_cols, float(l.delta)}); break;
    case Loss::Hinge: launch(Hinge{inv_cols}); break;
    case Loss::Given: launch(Given{inv_cols}); break;
    case Loss::BinaryCrossentropy:
      if (!l.from_logits)
        launch(BinaryCrossentropy{inv_cols, float(kProbEpsilon)});
      else if (probs)
        launch(BinaryCrossentropyLogitsFused{inv_cols});
      else
        launch(BinaryCrossentropyLogits{inv_cols});
      break;
    default:
      throw std::invalid_argument("unknown loss");
  }
  check_launch("loss");
  finish(stream, scratch, blocks, 1, 1.0 / double(cols), sum, false);
}

void metric_update(cudaStream_t stream, const MetricSpec& m, const float* pred, const float* y,
                   const float* w, int64_t rows, int64_t cols, int64_t ycols, double* state,
                   double* scratch, LabelError* error) {
  lt::check_metric(m, cols, ycols);
  const int64_t n = rows * cols;
  if (n == 0) return;
  switch (m.kind) {
    case Metric::Precision:
    case Metric::Recall: {
      const int blocks = partial_blocks(n, kThreads);
      precision_recall_kernel<<<blocks, kThreads, 0, stream>>>(pred, y, w, n, cols, m.threshold,
                                                               scratch);
      check_launch("metric_update (precision, recall)");
      finish(stream, scratch, blocks, 3, 1.0, state, true);
      return;
    }
    case Metric::AUC: {
      const int blocks = m.num_thresholds < 4096 ? m.num_thresholds : 4096;
      auc_kernel<<<blocks, kThreads, 0, stream>>>(pred, y, w, n, cols, m.num_thresholds, state);
      check_launch("metric_update (AUC)");
      return;
    }
    default: {
      const MetricArgs a{pred, y, w, rows, cols, ycols, m, lt::metric_sparse(m, ycols), error,
                         scratch};
      int blocks = 0;
      by_group(cols, [&](auto g) {
        constexpr int G = decltype(g)::value;
        blocks = partial_blocks(rows, kThreads / G);
        row_metric_kernel<G><<<blocks, kThreads, 0, stream>>>(a);
      });
      check_launch("metric_update");
      finish(stream, scratch, blocks, 2, 1.0, state, true);
    }
  }
}

}  // namespace cuda
}  // namespace deepcore
