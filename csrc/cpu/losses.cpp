// CPU losses (value and gradient in one pass) and metrics.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "deepcore/kernels.h"

namespace deepcore {

int64_t checked_label(double v, int64_t classes) {
  const auto k = static_cast<int64_t>(v);
  if (!(v >= 0.0) || k >= classes || double(k) != v)
    throw std::invalid_argument("sparse label must be an integer in [0, " +
                                std::to_string(classes) + "), received: " + std::to_string(v));
  return k;
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
  return m + std::log(s);
}

// Row loss and d(row loss)/d pred_row written to g (g has cols entries, scratch p too).
template <class T>
T row_loss(const LossSpec& l, const T* z, const T* probs, const T* y, T* g, T* p, int64_t cols) {
  const T eps = T(kProbEpsilon);
  const T inv_cols = T(1) / T(cols);
  T loss = 0;
  switch (l.kind) {
    case Loss::MeanSquaredError:
      for (int64_t c = 0; c < cols; ++c) {
        T e = z[c] - y[c];
        loss += e * e;
        g[c] = T(2) * e * inv_cols;
      }
      return loss * inv_cols;
    case Loss::MeanAbsoluteError:
      for (int64_t c = 0; c < cols; ++c) {
        T e = z[c] - y[c];
        loss += std::abs(e);
        g[c] = (e > 0 ? T(1) : (e < 0 ? T(-1) : T(0))) * inv_cols;
      }
      return loss * inv_cols;
    case Loss::Huber: {
      const T d = T(l.delta);
      for (int64_t c = 0; c < cols; ++c) {
        T e = z[c] - y[c];
        T ae = std::abs(e);
        if (ae <= d) {
          loss += T(0.5) * e * e;
          g[c] = e * inv_cols;
        } else {
          loss += d * ae - T(0.5) * d * d;
          g[c] = (e > 0 ? d : -d) * inv_cols;
        }
      }
      return loss * inv_cols;
    }
    case Loss::Hinge:
      for (int64_t c = 0; c < cols; ++c) {
        T m = T(1) - y[c] * z[c];
        loss += std::max(m, T(0));
        g[c] = m > 0 ? -y[c] * inv_cols : T(0);
      }
      return loss * inv_cols;
    case Loss::BinaryCrossentropy:
      for (int64_t c = 0; c < cols; ++c) {
        if (l.from_logits) {
          // log1p(exp(-|x|)) = -log(max(s, 1 - s)) with s = sigmoid(x).
          const T x = z[c];
          T s, soft;
          if (probs) {
            s = probs[c];
            soft = -std::log(std::max(s, T(1) - s));
          } else {
            const T e = std::exp(-std::abs(x));
            s = x >= 0 ? T(1) / (T(1) + e) : e / (T(1) + e);
            soft = std::log1p(e);
          }
          loss += std::max(x, T(0)) - x * y[c] + soft;
          g[c] = (s - y[c]) * inv_cols;
        } else {
          T pc = std::min(std::max(z[c], eps), T(1) - eps);
          loss -= y[c] * std::log(pc) + (T(1) - y[c]) * std::log(T(1) - pc);
          bool inside = z[c] > eps && z[c] < T(1) - eps;
          g[c] = inside ? (-(y[c] / pc) + (T(1) - y[c]) / (T(1) - pc)) * inv_cols : T(0);
        }
      }
      return loss * inv_cols;
    case Loss::CategoricalCrossentropy:
    case Loss::SparseCategoricalCrossentropy: {
      const bool sparse = l.kind == Loss::SparseCategoricalCrossentropy;
      const int64_t label = sparse ? checked_label(y[0], cols) : -1;
      auto target = [&](int64_t c) { return sparse ? T(c == label) : y[c]; };
      if (l.from_logits) {
        // softmax: the layer's output when given, else computed into p
        const T* sm = probs ? probs : p;
        T lse;
        if (probs) {  // lse = z_a - log(p_a), exact for the largest p_a (>= 1/cols)
          const int64_t a = static_cast<int64_t>(std::max_element(probs, probs + cols) - probs);
          lse = z[a] - std::log(probs[a]);
        } else {
          lse = log_softmax_row(z, p, cols);
        }
        T ysum = 0;
        for (int64_t c = 0; c < cols; ++c) {
          T t = target(c);
          ysum += t;
          loss += t * (lse - z[c]);
        }
        for (int64_t c = 0; c < cols; ++c) g[c] = sm[c] * ysum - target(c);
        return loss;
      }
      // Probabilities (Keras): q = pred / sum(pred), clipped to [eps, 1 - eps].
      T s = 0;
      for (int64_t c = 0; c < cols; ++c) s += z[c];
      T dot = 0;
      for (int64_t c = 0; c < cols; ++c) {
        T q = z[c] / s;
        T qc = std::min(std::max(q, eps), T(1) - eps);
        T t = target(c);
        loss -= t * std::log(qc);
        p[c] = (q > eps && q < T(1) - eps) ? -t / qc : T(0);  // dL/dq
        dot += p[c] * q;
      }
      for (int64_t c = 0; c < cols; ++c) g[c] = (p[c] - dot) / s;
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
  const bool sparse = l.kind == Loss::SparseCategoricalCrossentropy;
  if ((sparse && ycols != 1) || (!sparse && ycols != cols))
    throw std::invalid_argument("labels have " + std::to_string(ycols) +
                                " columns, predictions " + std::to_string(cols));
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
