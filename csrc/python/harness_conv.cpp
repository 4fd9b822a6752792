// The harness's convolution, pooling and batch-normalization ops (see harness.h). Images are
// NHWC float32 arrays; a window is given as plain ints (its size and strides) and `same`
// (Keras' padding="same", else "valid").
#include <optional>

#include "deepcore/window_maths.h"
#include "harness.h"

namespace deepcore {
namespace harness {
namespace {

// x's (batch, height, width, channels), or ValueError.
std::vector<int64_t> image_shape(const py::array& x, const char* name) {
  return shape_with_rank(x, 4, "(batch, height, width, channels)", name);
}

// The window of kernels.h over (h, w, c) images; ValueError for a bad size or a window
// larger than the image with padding="valid".
Window2D window_of(int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh,
                   int64_t sw, bool same) {
  check_size(h, "height");
  check_size(w, "width");
  check_size(c, "channels");
  check_size(kh, "window height");
  check_size(kw, "window width");
  check_size(sh, "stride height");
  check_size(sw, "stride width");
  if (bounded_size({h, w, c}) < 0) throw std::invalid_argument("the image is too large");
  return make_window(h, w, c, kh, kw, sh, sw, same);
}

// A pooled image (batch, oh, ow, c) given as `name`: ValueError unless it has that shape.
void check_pooled(const py::array& a, const char* name, int64_t batch, const Window2D& g) {
  const std::vector<int64_t> s = image_shape(a, name);
  if (s != std::vector<int64_t>{batch, g.oh, g.ow, g.c})
    throw std::invalid_argument(std::string(name) + " must have shape (batch, " +
                                std::to_string(g.oh) + ", " + std::to_string(g.ow) + ", " +
                                std::to_string(g.c) + ") for this window");
}

// ValueError unless each argmax[n, oy, ox, ci] is the index, in image n, of a channel-ci
// element of window (oy, ox): what maxpool_forward gives, and all a backward may be given.
void check_argmax(const Arr<int32_t>& argmax, const Window2D& g, int64_t batch) {
  const int32_t* a = argmax.data();
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      const window::Range<int64_t> ys = window::window_inside(oy, g.kh, g.sh, g.pad_top, g.h);
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        const window::Range<int64_t> xs =
            window::window_inside(ox, g.kw, g.sw, g.pad_left, g.w);
        for (int64_t ci = 0; ci < g.c; ++ci) {
          const int64_t v = *a++, pixel = v / g.c, iy = pixel / g.w, ix = pixel % g.w;
          if (v < 0 || v % g.c != ci || iy < ys.begin || iy >= ys.end || ix < xs.begin ||
              ix >= xs.end)
            throw std::invalid_argument(
                "argmax must hold, for each output, the index of an element of its window "
                "(as maxpool returns it); received " + std::to_string(v) + " at (" +
                std::to_string(n) + ", " + std::to_string(oy) + ", " + std::to_string(ox) +
                ", " + std::to_string(ci) + ")");
        }
      }
    }
}

// A vector of `channels` floats given as `name` (or ValueError).
void check_channels(const py::array& a, const char* name, int64_t channels) {
  if (a.ndim() != 1 || a.shape(0) != channels)
    throw std::invalid_argument(std::string(name) + " must have one value per channel (" +
                                std::to_string(channels) + ")");
}

// An (m, channels) matrix with m, channels >= 1 (or ValueError).
void check_rows(const py::array& a, const char* name) {
  matrix(a, name);
  if (a.shape(0) < 1 || a.shape(1) < 1)
    throw std::invalid_argument(std::string(name) + " must not be empty");
}

template <class T>
const T* data_or_null(const std::optional<DeviceArray<T>>& a) {
  return a ? a->data() : nullptr;
}

}  // namespace

void add_conv(py::module_& m) {
  // cols (batch * oh * ow, kh * kw * c) of images x (batch, h, w, c).
  m.def(
      "device_im2col",
      [](int device, Arr<float> x, int64_t kh, int64_t kw, int64_t sh, int64_t sw, bool same) {
        const std::vector<int64_t> s = image_shape(x, "x");
        const Window2D g = window_of(s[1], s[2], s[3], kh, kw, sh, sw, same);
        const int64_t rows = count(s[0], {g.oh, g.ow}, "cols");
        const int64_t n = count(rows, {kh, kw, g.c}, "cols");
        Dev d(device);
        DeviceArray<float> dx = d.put(x), cols(d.be, n);
        released([&] {
          d.be.im2col(g, dx.data(), s[0], cols.data());
          return true;
        });
        return d.get(cols, {rows, kh * kw * g.c});
      },
      py::arg("device"), py::arg("x"), py::arg("kernel_h"), py::arg("kernel_w"),
      py::arg("stride_h") = 1, py::arg("stride_w") = 1, py::arg("same") = false);
  // dx (batch, h, w, c): the adjoint of im2col applied to cols.
  m.def(
      "device_col2im",
      [](int device, Arr<float> cols, int64_t batch, int64_t h, int64_t w, int64_t c, int64_t kh,
         int64_t kw, int64_t sh, int64_t sw, bool same) {
        check_size(batch, "batch");
        const Window2D g = window_of(h, w, c, kh, kw, sh, sw, same);
        const int64_t rows = count(batch, {g.oh, g.ow}, "cols");
        count(rows, {kh, kw, c}, "cols");
        const int64_t in = count(batch, {h, w, c}, "dx");
        if (cols.ndim() != 2 || cols.shape(0) != rows || cols.shape(1) != kh * kw * c)
          throw std::invalid_argument("cols must have shape (" + std::to_string(rows) + ", " +
                                      std::to_string(kh * kw * c) + ") for this window");
        Dev d(device);
        DeviceArray<float> dc = d.put(cols), dx(d.be, in);
        released([&] {
          d.be.col2im(g, dc.data(), batch, dx.data());
          return true;
        });
        return d.get(dx, {batch, h, w, c});
      },
      py::arg("device"), py::arg("cols"), py::arg("batch"), py::arg("height"), py::arg("width"),
      py::arg("channels"), py::arg("kernel_h"), py::arg("kernel_w"), py::arg("stride_h") = 1,
      py::arg("stride_w") = 1, py::arg("same") = false);
  // y (batch, poh, pow, filters): a convolution of x (batch, h, w, c) by kernel (kh, kw, c,
  // filters) plus bias, relu or linear, then max pooling over non-overlapping pool_h x pool_w
  // windows, in the backend's one pass (conv_maxpool_forward, `tile` images at a time); None
  // where the backend does not fuse them for these shapes.
  m.def(
      "device_conv_maxpool",
      [](int device, Arr<float> x, Arr<float> kernel, std::optional<Arr<float>> bias, bool relu,
         int64_t sh, int64_t sw, bool same, int64_t ph, int64_t pw, int64_t tile) -> py::object {
        const std::vector<int64_t> s = image_shape(x, "x");
        const std::vector<int64_t> k = image_shape(kernel, "kernel");
        if (k[2] != s[3])
          throw std::invalid_argument("kernel must have the input's " + std::to_string(s[3]) +
                                      " channels");
        const Window2D g = window_of(s[1], s[2], s[3], k[0], k[1], sh, sw, same);
        const Window2D p = window_of(g.oh, g.ow, k[3], ph, pw, ph, pw, false);
        if (bias) check_channels(*bias, "bias", k[3]);
        check_size(tile, "tile");
        ActSpec act;
        act.kind = relu ? Act::Relu : Act::Linear;
        count(count(s[0], {p.oh, p.ow, ph, pw}, "cols"), {k[0], k[1], s[3]}, "cols");
        const int64_t out = count(s[0], {p.oh, p.ow, k[3]}, "y");
        Dev d(device);
        DeviceArray<float> dx = d.put(x), dw = d.put(kernel), y(d.be, out);
        DeviceArray<float> cols(d.be, count(s[0], {conv_pool_scratch(g, p)}, "cols"));
        std::optional<DeviceArray<float>> db;
        if (bias) db = d.put(*bias);
        const ConvPool spec{g, p, k[3], act, dw.data(), data_or_null(db)};
        if (!d.be.fuses_conv_maxpool(spec)) return py::none();
        released([&] {
          d.be.conv_maxpool_forward(spec, dx.data(), s[0], tile, cols.data(), y.data());
          return true;
        });
        return d.get(y, {s[0], p.oh, p.ow, k[3]});
      },
      py::arg("device"), py::arg("x"), py::arg("kernel"), py::arg("bias"), py::arg("relu"),
      py::arg("stride_h"), py::arg("stride_w"), py::arg("same"), py::arg("pool_h"),
      py::arg("pool_w"), py::arg("tile") = 1);
  // (y, argmax), both (batch, oh, ow, c): max pooling of x (batch, h, w, c).
  m.def(
      "device_maxpool",
      [](int device, Arr<float> x, int64_t ph, int64_t pw, int64_t sh, int64_t sw, bool same) {
        const std::vector<int64_t> s = image_shape(x, "x");
        const Window2D g = window_of(s[1], s[2], s[3], ph, pw, sh, sw, same);
        const int64_t out = count(s[0], {g.oh, g.ow, g.c}, "y");
        Dev d(device);
        DeviceArray<float> dx = d.put(x), y(d.be, out);
        DeviceArray<int32_t> argmax(d.be, out);
        released([&] {
          d.be.maxpool_forward(g, dx.data(), s[0], y.data(), argmax.data());
          return true;
        });
        return py::make_tuple(d.get(y, {s[0], g.oh, g.ow, g.c}),
                              d.get(argmax, {s[0], g.oh, g.ow, g.c}));
      },
      py::arg("device"), py::arg("x"), py::arg("pool_h"), py::arg("pool_w"),
      py::arg("stride_h"), py::arg("stride_w"), py::arg("same") = false);
  // dx (batch, h, w, c) from dy and the argmax of device_maxpool.
  m.def(
      "device_maxpool_backward",
      [](int device, Arr<float> dy, Arr<int32_t> argmax, int64_t h, int64_t w, int64_t ph,
         int64_t pw, int64_t sh, int64_t sw, bool same) {
        const std::vector<int64_t> s = image_shape(dy, "dy");
        const Window2D g = window_of(h, w, s[3], ph, pw, sh, sw, same);
        check_pooled(dy, "dy", s[0], g);
        check_pooled(argmax, "argmax", s[0], g);
        check_argmax(argmax, g, s[0]);
        const int64_t in = count(s[0], {h, w, g.c}, "dx");
        Dev d(device);
        DeviceArray<float> ddy = d.put(dy), dx(d.be, in);
        DeviceArray<int32_t> da = d.put(argmax);
        released([&] {
          d.be.maxpool_backward(g, ddy.data(), da.data(), s[0], dx.data());
          return true;
        });
        return d.get(dx, {s[0], h, w, g.c});
      },
      py::arg("device"), py::arg("dy"), py::arg("argmax"), py::arg("height"), py::arg("width"),
      py::arg("pool_h"), py::arg("pool_w"), py::arg("stride_h"), py::arg("stride_w"),
      py::arg("same") = false);
  // y (batch, oh, ow, c): average pooling of x over each window's valid part.
  m.def(
      "device_avgpool",
      [](int device, Arr<float> x, int64_t ph, int64_t pw, int64_t sh, int64_t sw, bool same) {
        const std::vector<int64_t> s = image_shape(x, "x");
        const Window2D g = window_of(s[1], s[2], s[3], ph, pw, sh, sw, same);
        const int64_t out = count(s[0], {g.oh, g.ow, g.c}, "y");
        Dev d(device);
        DeviceArray<float> dx = d.put(x), y(d.be, out);
        released([&] {
          d.be.avgpool_forward(g, dx.data(), s[0], y.data());
          return true;
        });
        return d.get(y, {s[0], g.oh, g.ow, g.c});
      },
      py::arg("device"), py::arg("x"), py::arg("pool_h"), py::arg("pool_w"),
      py::arg("stride_h"), py::arg("stride_w"), py::arg("same") = false);
  // dx (batch, h, w, c): the adjoint of device_avgpool applied to dy.
  m.def(
      "device_avgpool_backward",
      [](int device, Arr<float> dy, int64_t h, int64_t w, int64_t ph, int64_t pw, int64_t sh,
         int64_t sw, bool same) {
        const std::vector<int64_t> s = image_shape(dy, "dy");
        const Window2D g = window_of(h, w, s[3], ph, pw, sh, sw, same);
        check_pooled(dy, "dy", s[0], g);
        const int64_t in = count(s[0], {h, w, g.c}, "dx");
        Dev d(device);
        DeviceArray<float> ddy = d.put(dy), dx(d.be, in);
        released([&] {
          d.be.avgpool_backward(g, ddy.data(), s[0], dx.data());
          return true;
        });
        return d.get(dx, {s[0], h, w, g.c});
      },
      py::arg("device"), py::arg("dy"), py::arg("height"), py::arg("width"), py::arg("pool_h"),
      py::arg("pool_w"), py::arg("stride_h"), py::arg("stride_w"), py::arg("same") = false);
  // Batch normalization of x (m, channels); returns (y, xhat, inv_std, moving_mean,
  // moving_var), the moving statistics after the call.
  m.def(
      "device_batchnorm_forward",
      [](int device, Arr<float> x, std::optional<Arr<float>> gamma,
         std::optional<Arr<float>> beta, Arr<float> moving_mean, Arr<float> moving_var,
         bool training, double momentum, double epsilon) {
        check_rows(x, "x");
        const int64_t rows = x.shape(0), channels = x.shape(1);
        if (gamma) check_channels(*gamma, "gamma", channels);
        if (beta) check_channels(*beta, "beta", channels);
        check_channels(moving_mean, "moving_mean", channels);
        check_channels(moving_var, "moving_var", channels);
        const BatchNormSpec spec{channels, momentum, epsilon};
        Dev d(device);
        DeviceArray<float> dx = d.put(x), y(d.be, x.size()), xhat(d.be, x.size());
        DeviceArray<float> inv_std(d.be, channels);
        DeviceArray<float> mean = d.put(moving_mean), var = d.put(moving_var);
        DeviceArray<double> scratch(d.be, 3 * channels);
        std::optional<DeviceArray<float>> dg, db;
        if (gamma) dg = d.put(*gamma);
        if (beta) db = d.put(*beta);
        released([&] {
          d.be.batchnorm_forward(spec, dx.data(), y.data(), rows, data_or_null(dg),
                                 data_or_null(db), mean.data(), var.data(), training,
                                 xhat.data(), inv_std.data(), scratch.data());
          return true;
        });
        const std::vector<py::ssize_t> shape{rows, channels}, per_channel{channels};
        return py::make_tuple(d.get(y, shape), d.get(xhat, shape), d.get(inv_std, per_channel),
                              d.get(mean, per_channel), d.get(var, per_channel));
      },
      py::arg("device"), py::arg("x"), py::arg("gamma"), py::arg("beta"),
      py::arg("moving_mean"), py::arg("moving_var"), py::arg("training"),
      py::arg("momentum") = 0.99, py::arg("epsilon") = 1e-3);
  // Batch normalization's backward from dy (m, channels) and the forward's xhat and inv_std;
  // returns (dx, dgamma, dbeta), each None unless asked for.
  m.def(
      "device_batchnorm_backward",
      [](int device, Arr<float> dy, Arr<float> xhat, Arr<float> inv_std,
         std::optional<Arr<float>> gamma, bool want_dx, bool want_dgamma, bool want_dbeta) {
        check_rows(dy, "dy");
        const int64_t rows = dy.shape(0), channels = dy.shape(1);
        if (xhat.ndim() != 2 || xhat.shape(0) != rows || xhat.shape(1) != channels)
          throw std::invalid_argument("xhat must have dy's shape");
        check_channels(inv_std, "inv_std", channels);
        if (gamma) check_channels(*gamma, "gamma", channels);
        const BatchNormSpec spec{channels, 0.99, 1e-3};
        Dev d(device);
        DeviceArray<float> ddy = d.put(dy), dxh = d.put(xhat), dinv = d.put(inv_std);
        DeviceArray<double> scratch(d.be, 3 * channels);
        std::optional<DeviceArray<float>> dg, dx, dgamma, dbeta;
        if (gamma) dg = d.put(*gamma);
        if (want_dx) dx.emplace(d.be, dy.size());
        if (want_dgamma) dgamma.emplace(d.be, channels);
        if (want_dbeta) dbeta.emplace(d.be, channels);
        auto ptr = [](std::optional<DeviceArray<float>>& a) { return a ? a->data() : nullptr; };
        released([&] {
          d.be.batchnorm_backward(spec, ddy.data(), ptr(dx), rows, data_or_null(dg), dxh.data(),
                                  dinv.data(), ptr(dgamma), ptr(dbeta), scratch.data());
          return true;
        });
        auto out = [&](std::optional<DeviceArray<float>>& a,
                       std::vector<py::ssize_t> shape) -> py::object {
          if (!a) return py::none();
          return d.get(*a, std::move(shape));
        };
        return py::make_tuple(out(dx, {rows, channels}), out(dgamma, {channels}),
                              out(dbeta, {channels}));
      },
      py::arg("device"), py::arg("dy"), py::arg("xhat"), py::arg("inv_std"), py::arg("gamma"),
      py::arg("dx") = true, py::arg("dgamma") = true, py::arg("dbeta") = true);
}

}  // namespace harness
}  // namespace deepcore
