// The harness's sequence ops (see harness.h): im2col / col2im of 1-D windows (dilated,
// padded "valid", "same" or "causal") over (batch, steps, channels) float32 arrays, and
// the row repetition of UpSampling1D.
#include "harness.h"

namespace deepcore {
namespace harness {
namespace {

// x's (batch, steps, channels), or ValueError.
std::vector<int64_t> sequence_shape(const py::array& x, const char* name) {
  return shape_with_rank(x, 3, "(batch, steps, channels)", name);
}

// The 1-D window over (steps, c) sequences; ValueError for a bad size or a window longer
// than the input with padding="valid".
Window2D window_1d(int64_t steps, int64_t c, int64_t k, int64_t stride, int64_t dilation,
                   Padding padding) {
  check_size(steps, "steps");
  check_size(c, "channels");
  check_size(k, "kernel_size");
  check_size(stride, "stride");
  check_size(dilation, "dilation");
  if (bounded_mul(steps, c) < 0 || bounded_mul(k - 1, dilation) < 0)
    throw std::invalid_argument("the sequence or the window is too large");
  return make_window_1d(steps, c, k, stride, dilation, padding);
}

}  // namespace

void add_conv1d(py::module_& m) {
  // cols (batch * out_steps, k * c) of sequences x (batch, steps, c).
  m.def(
      "device_im2col_1d",
      [](int device, Arr<float> x, int64_t k, int64_t stride, int64_t dilation,
         Padding padding) {
        const std::vector<int64_t> s = sequence_shape(x, "x");
        const Window2D g = window_1d(s[1], s[2], k, stride, dilation, padding);
        const int64_t rows = count(s[0], {g.ow}, "cols");
        const int64_t n = count(rows, {k, g.c}, "cols");
        Dev d(device);
        DeviceArray<float> dx = d.put(x), cols(d.be, n);
        released([&] {
          d.be.im2col(g, dx.data(), s[0], cols.data());
          return true;
        });
        return d.get(cols, {rows, k * g.c});
      },
      py::arg("device"), py::arg("x"), py::arg("kernel_size"), py::arg("stride") = 1,
      py::arg("dilation") = 1, py::arg("padding") = Padding::Valid);
  // dx (batch, steps, c): the adjoint of device_im2col_1d applied to cols.
  m.def(
      "device_col2im_1d",
      [](int device, Arr<float> cols, int64_t batch, int64_t steps, int64_t c, int64_t k,
         int64_t stride, int64_t dilation, Padding padding) {
        check_size(batch, "batch");
        const Window2D g = window_1d(steps, c, k, stride, dilation, padding);
        const int64_t rows = count(batch, {g.ow}, "cols");
        count(rows, {k, c}, "cols");
        const int64_t in = count(batch, {steps, c}, "dx");
        if (cols.ndim() != 2 || cols.shape(0) != rows || cols.shape(1) != k * c)
          throw std::invalid_argument("cols must have shape (" + std::to_string(rows) + ", " +
                                      std::to_string(k * c) + ") for this window");
        Dev d(device);
        DeviceArray<float> dc = d.put(cols), dx(d.be, in);
        released([&] {
          d.be.col2im(g, dc.data(), batch, dx.data());
          return true;
        });
        return d.get(dx, {batch, steps, c});
      },
      py::arg("device"), py::arg("cols"), py::arg("batch"), py::arg("steps"),
      py::arg("channels"), py::arg("kernel_size"), py::arg("stride") = 1,
      py::arg("dilation") = 1, py::arg("padding") = Padding::Valid);
  // y (rows * size, cols): each row of x (rows, cols) repeated `size` times.
  m.def(
      "device_repeat_rows",
      [](int device, Arr<float> x, int64_t size) {
        matrix(x, "x");
        check_size(size, "size");
        const int64_t rows = x.shape(0), cols = x.shape(1);
        const int64_t n = count(rows, {size, cols}, "y");
        Dev d(device);
        DeviceArray<float> dx = d.put(x), y(d.be, n);
        released([&] {
          d.be.repeat_rows(dx.data(), rows, size, cols, y.data());
          return true;
        });
        return d.get(y, {rows * size, cols});
      },
      py::arg("device"), py::arg("x"), py::arg("size"));
  // dx (rows, cols): the sums of each `size` consecutive rows of dy (rows * size, cols).
  m.def(
      "device_repeat_rows_backward",
      [](int device, Arr<float> dy, int64_t size) {
        matrix(dy, "dy");
        check_size(size, "size");
        if (dy.shape(0) % size != 0)
          throw std::invalid_argument("dy's rows must be a multiple of size");
        const int64_t rows = dy.shape(0) / size, cols = dy.shape(1);
        Dev d(device);
        DeviceArray<float> ddy = d.put(dy), dx(d.be, rows * cols);
        released([&] {
          d.be.repeat_rows_backward(ddy.data(), rows, size, cols, dx.data());
          return true;
        });
        return d.get(dx, {rows, cols});
      },
      py::arg("device"), py::arg("dy"), py::arg("size"));
}

}  // namespace harness
}  // namespace deepcore
