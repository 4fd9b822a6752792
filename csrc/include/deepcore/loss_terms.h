// Per-element maths of the losses and metrics, shared by the CPU kernels (cpu/losses.cpp,
// cpu/metrics.cpp) and the CUDA kernels (cuda/losses.cu): each loss term with its
// derivative, the stable pieces of the cross-entropies from logits, the sparse labels'
// check, the per-entry tests of the metrics and Keras' AUC thresholds. The loops over rows
// and entries, and the sums, belong to each backend. No libm call hides in the functions
// that a CPU loop could vectorize (the squared, absolute, Huber and hinge terms).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "deepcore/hd.h"
#include "deepcore/kernels.h"

namespace deepcore {
namespace lt {

// -1, 0 or 1.
template <class T>
DC_HD inline T sign_of(T e) {
  return e > T(0) ? T(1) : (e < T(0) ? T(-1) : T(0));
}

// ------------------------------------------------------------ element-wise losses
// One entry of a row whose loss is a mean over its `cols` entries: each function adds the
// entry's term to `loss` (the row loss is inv_cols times their sum; `loss` may be wider
// than T) and returns d(row loss)/d(pred entry), inv_cols included. z: the prediction,
// y: the target. (Entries come by reference, as the CPU loops read them: GCC then makes the
// same choices as for the loops written out, e.g. which clipped branch it folds to a
// constant, and the CPU's results stay the same to the bit.)

// (z - y)^2
template <class T, class A>
DC_HD inline T squared_error(const T& z, const T& y, T inv_cols, A& loss) {
  const T e = z - y;
  loss += e * e;
  return T(2) * e * inv_cols;
}

// |z - y|
template <class T, class A>
DC_HD inline T absolute_error(const T& z, const T& y, T inv_cols, A& loss) {
  const T e = z - y;
  loss += std::abs(e);
  return sign_of(e) * inv_cols;
}

// e^2 / 2 for |e| <= delta, else delta |e| - delta^2 / 2, with e = z - y.
template <class T, class A>
DC_HD inline T huber(const T& z, const T& y, T delta, T inv_cols, A& loss) {
  const T e = z - y;
  const T ae = std::abs(e);
  if (ae <= delta) {
    loss += T(0.5) * e * e;
    return e * inv_cols;
  }
  loss += delta * ae - T(0.5) * delta * delta;
  return (e > T(0) ? delta : -delta) * inv_cols;
}

// z itself: a custom loss's value (the label is not read).
template <class T, class A>
DC_HD inline T given(const T& z, T inv_cols, A& loss) {
  loss += z;
  return inv_cols;
}

// max(1 - y z, 0) (y in {-1, 1}; the front end maps {0, 1} labels there).
template <class T, class A>
DC_HD inline T hinge(const T& z, const T& y, T inv_cols, A& loss) {
  const T m = T(1) - y * z;
  loss += std::max(m, T(0));
  return m > T(0) ? -y * inv_cols : T(0);
}

// Keras' binary cross-entropy of a probability p: -(y log pc + (1 - y) log(1 - pc)) with
// pc = clip(p, eps, 1 - eps); no gradient where the clip holds p.
template <class T, class A>
DC_HD inline T binary_crossentropy(const T& p, const T& y, T eps, T inv_cols, A& loss) {
  const T pc = std::min(std::max(p, eps), T(1) - eps);
  loss -= y * std::log(pc) + (T(1) - y) * std::log(T(1) - pc);
  const bool inside = p > eps && p < T(1) - eps;
  return inside ? (-(y / pc) + (T(1) - y) / (T(1) - pc)) * inv_cols : T(0);
}

// The binary cross-entropy of a logit x, stable for any x: max(x, 0) - x y + log1p(exp(-|x|)),
// given s = sigmoid(x) and soft = log1p(exp(-|x|)); d/dx = s - y.
template <class T, class A>
DC_HD inline T binary_crossentropy_logit(const T& x, T s, T soft, const T& y, T inv_cols, A& loss) {
  loss += std::max(x, T(0)) - x * y + soft;
  return (s - y) * inv_cols;
}

// The same from x alone: exp of a non-positive number only.
template <class T, class A>
DC_HD inline T binary_crossentropy_logits(const T& x, const T& y, T inv_cols, A& loss) {
  const T e = std::exp(-std::abs(x));
  const T s = x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
  return binary_crossentropy_logit(x, s, std::log1p(e), y, inv_cols, loss);
}

// The same with s = sigmoid(x) already computed (a sigmoid output layer fused with the
// loss): log1p(exp(-|x|)) = -log(max(s, 1 - s)).
template <class T, class A>
DC_HD inline T binary_crossentropy_logits(const T& x, const T& s, const T& y, T inv_cols, A& loss) {
  return binary_crossentropy_logit(x, s, -std::log(std::max(s, T(1) - s)), y, inv_cols, loss);
}

// ------------------------------------------------------------------ cross-entropies
// A row's loss is a sum over its classes. Targets t: the label row, or for the sparse loss
// sparse_target(c, label).
template <class T>
DC_HD inline T sparse_target(int64_t c, int64_t label) {
  return T(c == label);
}

// From logits z (stable): lse = log(sum_c exp(z_c)) = m + log(sum_c exp(z_c - m)) with m
// the row's largest logit; the loss is sum_c t_c (lse - z_c), its gradient
// softmax_c * sum(t) - t_c.
template <class T>
DC_HD inline T logsumexp(T max, T sum_exp) {
  return max + std::log(sum_exp);
}
// lse from a softmax p already computed: z_a - log(p_a), exact enough for the largest p_a
// (>= 1 / classes).
template <class T>
DC_HD inline T logsumexp_from_softmax(T z_a, T p_a) {
  return z_a - std::log(p_a);
}
// Adds class c's term t (lse - z) to `loss`.
template <class T, class A>
DC_HD inline void crossentropy_logit(T t, T lse, T z, A& loss) {
  loss += t * (lse - z);
}
template <class T>
DC_HD inline T crossentropy_logit_grad(T softmax, T target_sum, T t) {
  return softmax * target_sum - t;
}

// From probabilities (Keras): q = pred / sum(pred), the loss -sum_c t_c log(clip(q_c, eps,
// 1 - eps)). Adds class c's term to `loss` and returns dL/dq_c (0 where the clip holds
// q_c); the row's gradient is then crossentropy_prob_grad(dL/dq_c, sum_c dL/dq_c q_c, sum).
template <class T, class A>
DC_HD inline T crossentropy_prob(T q, T t, T eps, A& loss) {
  const T qc = std::min(std::max(q, eps), T(1) - eps);
  loss -= t * std::log(qc);
  return (q > eps && q < T(1) - eps) ? -t / qc : T(0);
}
template <class T>
DC_HD inline T crossentropy_prob_grad(T dq, T dot, T sum) {
  return (dq - dot) / sum;
}

// ------------------------------------------------------------------ sparse labels
// A sparse label is an integer in [0, classes): what checked_label accepts.
DC_HD inline bool valid_label(double v, int64_t classes) {
  return v >= 0.0 && v < double(classes) && double(static_cast<int64_t>(v)) == v;
}

// checked_label's message for an invalid label v.
inline std::string invalid_label_message(double v, int64_t classes) {
  return "sparse label must be an integer in [0, " + std::to_string(classes) +
         "), received: " + std::to_string(v);
}

// The columns of the labels a loss takes: 1 (a class index per row) for the sparse
// cross-entropy, `cols` for every other loss; invalid_argument otherwise.
inline void check_loss_labels(const LossSpec& l, int64_t cols, int64_t ycols) {
  const bool sparse = l.kind == Loss::SparseCategoricalCrossentropy;
  if ((sparse && ycols != 1) || (!sparse && ycols != cols))
    throw std::invalid_argument("labels have " + std::to_string(ycols) +
                                " columns, predictions " + std::to_string(cols));
}

// ----------------------------------------------------------------------- metrics
// Whether a metric takes one class index per row: sparse categorical accuracy, and top-k
// accuracy given one label column.
inline bool metric_sparse(const MetricSpec& m, int64_t ycols) {
  return m.kind == Metric::SparseCategoricalAccuracy ||
         (m.kind == Metric::TopKCategoricalAccuracy && ycols == 1);
}

// A metric's arguments: AUC needs two thresholds, sparse metrics one label per row, every
// other metric a label row like the predictions; invalid_argument otherwise.
inline void check_metric(const MetricSpec& m, int64_t cols, int64_t ycols) {
  if (m.kind == Metric::AUC && m.num_thresholds < 2)
    throw std::invalid_argument("AUC needs num_thresholds >= 2");
  if (metric_sparse(m, ycols) ? ycols != 1 : ycols != cols)
    throw std::invalid_argument("metric labels have " + std::to_string(ycols) +
                                " columns, predictions " + std::to_string(cols));
}

// Binary accuracy of one entry: 1 when (p > threshold) == (t > 0.5).
DC_HD inline double binary_match(float p, float t, float threshold) {
  return (p > threshold) == (t > 0.5f);
}
// Squared error of one entry (the difference in float, squared in double).
DC_HD inline double squared_diff(float p, float t) {
  return double(p - t) * double(p - t);
}
// Absolute error of one entry, in double.
DC_HD inline double absolute_diff(float p, float t) {
  return std::abs(double(p) - double(t));
}
// Top-k accuracy of a row: its true class ranks among the k largest predictions, `above`
// being how many predictions outrank the true class's (ties count in its favour).
DC_HD inline bool outranks(float p, float p_true) {
  return p > p_true;
}
DC_HD inline double top_k_hit(int64_t above, int k) {
  return above < k;
}
// Precision, recall and AUC: an entry is predicted positive above the threshold, and truly
// positive when its label is not 0.
DC_HD inline bool predicted_positive(float p, double threshold) {
  return p > threshold;
}
DC_HD inline bool truly_positive(float t) {
  return t != 0.f;
}

// Keras' AUC thresholds: -eps, 1/(n-1), ..., (n-2)/(n-1), 1 + eps.
DC_HD inline double auc_threshold(int i, int n) {
  if (i == 0) return -1e-7;
  if (i == n - 1) return 1.0 + 1e-7;
  return double(i) / double(n - 1);
}

// The AUC state is 4 blocks of num_thresholds counts: true positives, false positives,
// true negatives, false negatives; the block an entry counts in at one threshold.
DC_HD inline int auc_block(bool truth, bool positive) {
  return truth ? (positive ? 0 : 3) : (positive ? 1 : 2);
}

}  // namespace lt
}  // namespace deepcore
