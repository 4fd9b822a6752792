// CPU metrics: per-batch state updates, value from the accumulated state. The per-entry
// tests live in deepcore/loss_terms.h (shared with the CUDA kernels).
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "deepcore/kernels.h"
#include "deepcore/loss_terms.h"

namespace deepcore {
namespace {

int64_t argmax(const float* v, int64_t n) {
  return static_cast<int64_t>(std::max_element(v, v + n) - v);
}

}  // namespace

int64_t metric_state_size(const MetricSpec& m) {
  switch (m.kind) {
    case Metric::Precision:
    case Metric::Recall:
      return 3;  // true positives, false positives, false negatives
    case Metric::AUC:
      return 4 * int64_t(m.num_thresholds);  // tp, fp, tn, fn per threshold
    default:
      return 2;  // weighted sum, total weight
  }
}

void metric_update(const MetricSpec& m, const float* pred, const float* y, const float* w,
                   int64_t rows, int64_t cols, int64_t ycols, double* state) {
  lt::check_metric(m, cols, ycols);
  const bool sparse = lt::metric_sparse(m, ycols);
  for (int64_t r = 0; r < rows; ++r) {
    const float* p = pred + r * cols;
    const float* t = y + r * ycols;
    const double wr = w ? double(w[r]) : 1.0;
    double v = 0;
    switch (m.kind) {
      case Metric::BinaryAccuracy:
        for (int64_t c = 0; c < cols; ++c) v += lt::binary_match(p[c], t[c], m.threshold);
        v /= double(cols);
        break;
      case Metric::CategoricalAccuracy:
        v = argmax(p, cols) == argmax(t, ycols);
        break;
      case Metric::SparseCategoricalAccuracy:
        v = argmax(p, cols) == checked_label(t[0], cols);
        break;
      case Metric::TopKCategoricalAccuracy: {
        // the true class ranks among the k largest predictions (ties counted in its favour)
        const int64_t label = sparse ? checked_label(t[0], cols) : argmax(t, ycols);
        int64_t above = 0;
        for (int64_t c = 0; c < cols; ++c) above += lt::outranks(p[c], p[label]);
        v = lt::top_k_hit(above, m.k);
        break;
      }
      case Metric::MeanSquaredError:
        for (int64_t c = 0; c < cols; ++c) v += lt::squared_diff(p[c], t[c]);
        v /= double(cols);
        break;
      case Metric::MeanAbsoluteError:
        for (int64_t c = 0; c < cols; ++c) v += lt::absolute_diff(p[c], t[c]);
        v /= double(cols);
        break;
      case Metric::Mean:
        for (int64_t c = 0; c < cols; ++c) v += double(p[c]);
        v /= double(cols);
        break;
      case Metric::Precision:
      case Metric::Recall:
        for (int64_t c = 0; c < cols; ++c) {
          const bool pos = lt::predicted_positive(p[c], m.threshold);
          const bool truth = lt::truly_positive(t[c]);
          state[0] += wr * (pos && truth);
          state[1] += wr * (pos && !truth);
          state[2] += wr * (!pos && truth);
        }
        continue;
      case Metric::AUC: {
        const int n = m.num_thresholds;
        for (int64_t c = 0; c < cols; ++c) {
          const bool truth = lt::truly_positive(t[c]);
          for (int i = 0; i < n; ++i) {
            const bool pos = lt::predicted_positive(p[c], lt::auc_threshold(i, n));
            state[lt::auc_block(truth, pos) * n + i] += wr;
          }
        }
        continue;
      }
    }
    state[0] += wr * v;
    state[1] += wr;
  }
}

double metric_result(const MetricSpec& m, const double* s) {
  switch (m.kind) {
    case Metric::Precision:
      return s[0] + s[1] > 0 ? s[0] / (s[0] + s[1]) : 0.0;
    case Metric::Recall:
      return s[0] + s[2] > 0 ? s[0] / (s[0] + s[2]) : 0.0;
    case Metric::AUC: {
      const int n = m.num_thresholds;
      const double *tp = s, *fp = s + n, *tn = s + 2 * n, *fn = s + 3 * n;
      double area = 0;
      for (int i = 0; i + 1 < n; ++i) {
        auto tpr = [&](int j) { return tp[j] + fn[j] > 0 ? tp[j] / (tp[j] + fn[j]) : 0.0; };
        auto fpr = [&](int j) { return fp[j] + tn[j] > 0 ? fp[j] / (fp[j] + tn[j]) : 0.0; };
        area += (fpr(i) - fpr(i + 1)) * (tpr(i) + tpr(i + 1)) / 2;
      }
      return area;
    }
    default:
      return s[1] > 0 ? s[0] / s[1] : 0.0;
  }
}

}  // namespace deepcore
