// The harness's sequence-mask ops (see harness.h): Keras' masks from values, rows selected by
// a mask, and the masked mean over steps with its backward pass.
#include <optional>
#include <tuple>

#include "harness.h"

namespace deepcore {
namespace harness {

void add_masking(py::module_& m) {
  m.def(
      "device_sequence_mask",
      [](int device, const Arr<float>& x, float value) {
        if (x.ndim() < 1 || x.shape(x.ndim() - 1) < 1)
          throw std::invalid_argument("x must have a last axis of at least one value");
        const int64_t width = x.shape(x.ndim() - 1), positions = x.size() / width;
        Dev d(device);
        DeviceArray<float> dx = d.put(x), mask(d.be, positions);
        released([&] { d.be.sequence_mask(dx.data(), positions, width, value, mask.data()); });
        std::vector<py::ssize_t> shape = shape_of(x);
        shape.pop_back();
        return d.get(mask, shape);
      },
      py::arg("device"), py::arg("x"), py::arg("value"),
      "The mask of x's positions (all axes but the last): 1 where any value differs from value.");
  m.def(
      "device_mask_rows",
      [](int device, const Arr<float>& x, const Arr<float>& mask) {
        if (x.ndim() != 2 || mask.size() != x.shape(0))
          throw std::invalid_argument("x must have shape (rows, width) and mask (rows,)");
        Dev d(device);
        DeviceArray<float> dx = d.put(x), dm = d.put(mask), y(d.be, x.size());
        const int64_t w = x.shape(1);
        released([&] { d.be.mask_rows(dx.data(), w, dm.data(), 1, x.shape(0), w, y.data(), w); });
        return d.get(y, shape_of(x));
      },
      py::arg("device"), py::arg("x"), py::arg("mask"), "x's rows where mask is 1, zeros elsewhere.");
  m.def(
      "device_masked_mean_steps",
      [](int device, const Arr<float>& x, const Arr<float>& mask, const Arr<float>& dy) {
        const std::vector<int64_t> s = shape_with_rank(x, 3, "(rows, steps, width)", "x");
        if (mask.size() != s[0] * s[1] || dy.size() != s[0] * s[2])
          throw std::invalid_argument("mask must have shape (rows, steps) and dy (rows, width)");
        Dev d(device);
        DeviceArray<float> dx = d.put(x), dm = d.put(mask), ddy = d.put(dy), y(d.be, s[0] * s[2]),
                           gx(d.be, x.size());
        released([&] {
          d.be.masked_mean_steps(dx.data(), dm.data(), s[0], s[1], s[2], y.data());
          d.be.masked_mean_steps_backward(ddy.data(), dm.data(), s[0], s[1], s[2], gx.data());
        });
        return std::make_tuple(d.get(y, {s[0], s[2]}), d.get(gx, shape_of(x)));
      },
      py::arg("device"), py::arg("x"), py::arg("mask"), py::arg("dy"),
      "(y, dx): the mean over the steps to use of x (rows, steps, width) and its gradient.");
  m.def(
      "device_mask_weights",
      [](int device, const Arr<float>& mask, std::optional<Arr<float>> w) {
        if (mask.ndim() != 2 || (w && w->size() != mask.shape(0)))
          throw std::invalid_argument("mask must have shape (rows, steps) and w (rows,)");
        Dev d(device);
        DeviceArray<float> dm = d.put(mask), mw(d.be, mask.size()), lw(d.be, mask.size());
        DeviceArray<float> dw = w ? d.put(*w) : DeviceArray<float>();
        released([&] {
          d.be.mask_weights(dm.data(), w ? dw.data() : nullptr, mask.shape(0), mask.shape(1),
                            mw.data(), lw.data());
        });
        return std::make_tuple(d.get(mw, shape_of(mask)), d.get(lw, shape_of(mask)));
      },
      py::arg("device"), py::arg("mask"), py::arg("w") = py::none(),
      "(metric weights, loss weights) where the mask (rows, steps) reaches the loss.");
}

}  // namespace harness
}  // namespace deepcore
