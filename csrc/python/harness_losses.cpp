// The harness's loss and metric ops (see harness.h): Backend::loss and
// Backend::metric_update on predictions of any shape (..., cols), whose rows are the
// vectors along the last axis.
#include <optional>
#include <utility>

#include "harness.h"

namespace deepcore {
namespace harness {
namespace {

// (rows, cols) of predictions shaped (..., cols).
std::pair<int64_t, int64_t> rows_cols(const py::array& pred) {
  if (pred.ndim() < 1) throw std::invalid_argument("pred must have at least one axis");
  const int64_t cols = pred.shape(pred.ndim() - 1);
  if (cols < 1) throw std::invalid_argument("pred's last axis must not be empty");
  return {static_cast<int64_t>(pred.size()) / cols, cols};
}

// The label columns of y for predictions pred: y is shaped like pred but for the size of
// its last axis (ycols), or like pred without its last axis (one label per row).
int64_t label_cols(const py::array& pred, const py::array& y) {
  const py::ssize_t lead = pred.ndim() - 1;
  bool same = y.ndim() == lead || y.ndim() == lead + 1;
  for (py::ssize_t i = 0; same && i < lead; ++i) same = y.shape(i) == pred.shape(i);
  if (!same)
    throw std::invalid_argument(
        "y must be shaped like pred, but for the size of its last axis, or like pred without "
        "its last axis");
  return y.ndim() == lead ? 1 : static_cast<int64_t>(y.shape(lead));
}

void check_weights(const std::optional<Arr<float>>& w, int64_t rows) {
  if (w && static_cast<int64_t>(w->size()) != rows)
    throw std::invalid_argument("w must have one value per row of pred (" +
                                std::to_string(rows) + "), received " +
                                std::to_string(w->size()));
}

}  // namespace

void add_losses(py::module_& m) {
  // Backend::loss: returns (the weighted loss sum, the gradient d(grad_scale * sum)/d pred
  // shaped like pred, or None without want_grad). probs: the softmax / sigmoid of pred for
  // the fused cross-entropies from logits, or None.
  m.def(
      "device_loss",
      [](int device, const LossSpec& spec, Arr<float> pred, std::optional<Arr<float>> probs,
         Arr<float> y, std::optional<Arr<float>> w, float grad_scale, bool want_grad) {
        const auto [rows, cols] = rows_cols(pred);
        const int64_t ycols = label_cols(pred, y);
        if (probs && shape_of(*probs) != shape_of(pred))
          throw std::invalid_argument("probs must be shaped like pred");
        check_weights(w, rows);
        Dev d(device);
        DeviceArray<float> dpred = d.put(pred), dy = d.put(y), dprobs, dw, dgrad;
        if (probs) dprobs = d.put(*probs);
        if (w) dw = d.put(*w);
        if (want_grad) dgrad = DeviceArray<float>(d.be, pred.size());
        DeviceArray<double> dsum(d.be, 1);
        released([&] {
          d.be.loss(spec, dpred.data(), probs ? dprobs.data() : nullptr, dy.data(),
                    w ? dw.data() : nullptr, want_grad ? dgrad.data() : nullptr, rows, cols,
                    ycols, grad_scale, dsum.data());
          return true;
        });
        double sum = 0.0;
        dsum.download(&sum, 1);
        py::object grad = py::none();
        if (want_grad) grad = d.get(dgrad, shape_of(pred));
        return py::make_tuple(sum, grad);
      },
      py::arg("device"), py::arg("spec"), py::arg("pred"), py::arg("probs"), py::arg("y"),
      py::arg("w"), py::arg("grad_scale") = 1.f, py::arg("want_grad") = true);
  // Backend::metric_update: returns the state (float64, metric_state_size values) after the
  // batch (pred, y, w) was added to it.
  m.def(
      "device_metric_update",
      [](int device, const MetricSpec& spec, Arr<float> pred, Arr<float> y,
         std::optional<Arr<float>> w, Arr<double> state) {
        const auto [rows, cols] = rows_cols(pred);
        const int64_t ycols = label_cols(pred, y);
        check_weights(w, rows);
        const int64_t size = metric_state_size(spec);
        if (state.ndim() != 1 || static_cast<int64_t>(state.size()) != size)
          throw std::invalid_argument("state must be a vector of the metric's " +
                                      std::to_string(size) + " values");
        Dev d(device);
        DeviceArray<float> dpred = d.put(pred), dy = d.put(y), dw;
        if (w) dw = d.put(*w);
        DeviceArray<double> dstate = d.put(state);
        released([&] {
          d.be.metric_update(spec, dpred.data(), dy.data(), w ? dw.data() : nullptr, rows, cols,
                             ycols, dstate.data());
          return true;
        });
        return d.get(dstate, {static_cast<py::ssize_t>(size)});
      },
      py::arg("device"), py::arg("spec"), py::arg("pred"), py::arg("y"), py::arg("w"),
      py::arg("state"));
}

}  // namespace harness
}  // namespace deepcore
