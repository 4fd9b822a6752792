// CPU losses (value and gradient in one pass) and metrics. The per-entry formulas live in
// deepcore/loss_terms.h (shared with the CUDA kernels); here the loops over rows and
// entries.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "deepcore/kernels.h"
#include "deepcore/loss_terms.h"

namespace deepcore {

int64_t checked_label(double v, int64_t classes) {
  if (!lt::valid_label(v, classes))
    throw std::invalid_argument(lt::invalid_label_message(v, classes));
  return static_cast<int64_t>(v);
}

namespace {

// log(sum(exp(z))) of one row, and softmax into p.
template <class T>
T log_softmax_row(const T* z, T* p, int64_t cols) {
  T m = z[0];
  for (int64_t c = 1; c < cols; ++c) m = std::max(m, z[c]);
  T s = 0;
  for (int64_t c = 0; c < cols; ++c) {
    p[c] = std::exp(z[c] - m);
    s += p[c];
  }
  for (int64_t c = 0; c < cols; ++c) p[c] /= s;
  return lt::logsumexp(m, s);
}

// Row loss (mean over entries) of an element-wise loss: term(c, loss) adds entry c's term
// to loss and returns its derivative, written to g[c].
template <class T, class F>
T mean_row(F&& term, T* g, int64_t cols, T inv_cols) {
  T loss = 0;
  for (int64_t c = 0; c < cols; ++c) g[c] = term(c, loss);
  return loss * inv_cols;
}

// Row loss and d(row loss)/d pred_row written to g (g has cols entries, scratch p too).
template <class T>
T row_loss(const LossSpec& l, const T* z, const T* probs, const T* y, T* g, T* p, int64_t cols) {
  const T eps = T(kProbEpsilon);
  const T inv_cols = T(1) / T(cols);
  switch (l.kind) {
    case Loss::MeanSquaredError:
      return mean_row(
          [&](int64_t c, T& loss) { return lt::squared_error(z[c], y[c], inv_cols, loss); }, g,
          cols, inv_cols);
    case Loss::MeanAbsoluteError:
      return mean_row(
          [&](int64_t c, T& loss) { return lt::absolute_error(z[c], y[c], inv_cols, loss); }, g,
          cols, inv_cols);
    case Loss::Huber: {
      const T d = T(l.delta);
      return mean_row([&](int64_t c, T& loss) { return lt::huber(z[c], y[c], d, inv_cols, loss); },
                      g, cols, inv_cols);
    }
    case Loss::Hinge:
      return mean_row([&](int64_t c, T& loss) { return lt::hinge(z[c], y[c], inv_cols, loss); }, g,
                      cols, inv_cols);
    case Loss::Given:
      return mean_row([&](int64_t c, T& loss) { return lt::given(z[c], inv_cols, loss); }, g,
                      cols, inv_cols);
    case Loss::BinaryCrossentropy:
      if (!l.from_logits)
        return mean_row(
            [&](int64_t c, T& loss) {
              return lt::binary_crossentropy(z[c], y[c], eps, inv_cols, loss);
            },
            g, cols, inv_cols);
      if (probs)
        return mean_row(
            [&](int64_t c, T& loss) {
              return lt::binary_crossentropy_logits(z[c], probs[c], y[c], inv_cols, loss);
            },
            g, cols, inv_cols);
      return mean_row(
          [&](int64_t c, T& loss) {
            return lt::binary_crossentropy_logits(z[c], y[c], inv_cols, loss);
          },
          g, cols, inv_cols);
    case Loss::CategoricalCrossentropy:
    case Loss::SparseCategoricalCrossentropy: {
      const bool sparse = l.kind == Loss::SparseCategoricalCrossentropy;
      const int64_t label = sparse ? checked_label(y[0], cols) : -1;
      auto target = [&](int64_t c) { return sparse ? lt::sparse_target<T>(c, label) : y[c]; };
      T loss = 0;
      if (l.from_logits) {
        // softmax: the layer's output when given, else computed into p
        const T* sm = probs ? probs : p;
        T lse;
        if (probs) {
          const int64_t a = static_cast<int64_t>(std::max_element(probs, probs + cols) - probs);
          lse = lt::logsumexp_from_softmax(z[a], probs[a]);
        } else {
          lse = log_softmax_row(z, p, cols);
        }
        T ysum = 0;
        for (int64_t c = 0; c < cols; ++c) {
          T t = target(c);
          ysum += t;
          lt::crossentropy_logit(t, lse, z[c], loss);
        }
        for (int64_t c = 0; c < cols; ++c)
          g[c] = lt::crossentropy_logit_grad(sm[c], ysum, target(c));
        return loss;
      }
      // Probabilities (Keras): q = pred / sum(pred), clipped to [eps, 1 - eps].
      T s = 0;
      for (int64_t c = 0; c < cols; ++c) s += z[c];
      T dot = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const T q = z[c] / s;
        p[c] = lt::crossentropy_prob(q, target(c), eps, loss);  // dL/dq
        dot += p[c] * q;
      }
      for (int64_t c = 0; c < cols; ++c) g[c] = lt::crossentropy_prob_grad(p[c], dot, s);
      return loss;
    }
  }
  throw std::invalid_argument("unknown loss");
}

}  // namespace

template <class T>
double loss_forward_backward(const LossSpec& l, const T* pred, const T* probs, const T* y,
                             const T* w, T* grad, T* row_losses, int64_t rows, int64_t cols,
                             int64_t ycols, T grad_scale) {
  lt::check_loss_labels(l, cols, ycols);
  // Scratch kept per thread: no allocation once the first batch has run.
  thread_local std::vector<T> buf;
  if (static_cast<int64_t>(buf.size()) < 2 * cols) buf.resize(2 * cols);
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    T* g = grad ? grad + r * cols : buf.data() + cols;
    T lr = row_loss(l, pred + r * cols, probs ? probs + r * cols : nullptr, y + r * ycols, g,
                    buf.data(), cols);
    const T wr = w ? w[r] : T(1);
    if (row_losses) row_losses[r] = lr;
    total += double(wr) * double(lr);
    if (grad) {
      const T s = wr * grad_scale;
      for (int64_t c = 0; c < cols; ++c) g[c] *= s;
    }
  }
  return total;
}

template double loss_forward_backward<float>(const LossSpec&, const float*, const float*,
                                             const float*, const float*, float*, float*, int64_t,
                                             int64_t, int64_t, float);
template double loss_forward_backward<double>(const LossSpec&, const double*, const double*,
                                              const double*, const double*, double*, double*,
                                              int64_t, int64_t, int64_t, double);

bool all_finite(const float* x, int64_t n) {
  // x - x is 0 for finite values and NaN otherwise; the sum stays 0 only if all are finite.
  float acc = 0.f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += x[i] - x[i];
  return acc == 0.f;
}

}  // namespace deepcore
