// The harness's memory, GEMM, affine, activation and column-sum ops (see harness.h).
#include <algorithm>
#include <chrono>
#include <optional>

#include "harness.h"

namespace deepcore {
namespace harness {

void add_dense_ops(py::module_& m) {
  m.def("device_name", [](int device) { return device_name(static_cast<Device>(device)); });
  // upload, copy into a second array, download
  m.def("device_roundtrip", [](int device, Arr<float> x) {
    Dev d(device);
    DeviceArray<float> a = d.put(x), b(d.be, x.size());
    released([&] {
      d.be.copy(b.data(), a.data(), a.bytes());
      return true;
    });
    return d.get(b, shape_of(x));
  });
  m.def("device_fill", [](int device, int64_t n, float value) {
    Dev d(device);
    DeviceArray<float> a(d.be, n);
    released([&] {
      d.be.fill(a.data(), value, n);
      return true;
    });
    return d.get(a, {static_cast<py::ssize_t>(n)});
  });
  // alpha op(a) op(b) + beta c
  m.def(
      "device_gemm",
      [](int device, Arr<float> a, Arr<float> b, bool ta, bool tb, float alpha, float beta,
          std::optional<Arr<float>> c) {
        matrix(a, "a");
        matrix(b, "b");
        const int64_t m = ta ? a.shape(1) : a.shape(0), k = ta ? a.shape(0) : a.shape(1);
        const int64_t n = tb ? b.shape(0) : b.shape(1);
        if ((tb ? b.shape(1) : b.shape(0)) != k)
          throw std::invalid_argument("gemm: op(a) and op(b) do not fit");
        if (c && (c->ndim() != 2 || c->shape(0) != m || c->shape(1) != n))
          throw std::invalid_argument("gemm: c must be (m, n)");
        Dev d(device);
        DeviceArray<float> da = d.put(a), db = d.put(b), dc(d.be, m * n);
        if (c) dc.upload(c->data(), m * n);
        else d.be.fill(dc.data(), 0.f, m * n);
        released([&] {
          d.be.gemm(ta, tb, m, n, k, alpha, da.data(), a.shape(1), db.data(), b.shape(1), beta,
                    dc.data(), n);
          return true;
        });
        return d.get(dc, {m, n});
      },
      py::arg("device"), py::arg("a"), py::arg("b"), py::arg("trans_a") = false,
      py::arg("trans_b") = false, py::arg("alpha") = 1.f, py::arg("beta") = 0.f,
      py::arg("c") = py::none());
  // Seconds per GEMM (m x k)(k x n) over `iters` calls on device memory (no copies):
  // the first call (plan, warm-up) is not counted; the clock stops after a download.
  m.def("device_gemm_seconds", [](int device, int64_t m, int64_t n, int64_t k, int iters) {
    Dev d(device);
    DeviceArray<float> a(d.be, m * k), b(d.be, k * n), c(d.be, m * n);
    d.be.fill(a.data(), 0.5f, m * k);
    d.be.fill(b.data(), 0.25f, k * n);
    return released([&] {
      float probe = 0.f;
      d.be.gemm(false, false, m, n, k, 1.f, a.data(), k, b.data(), n, 0.f, c.data(), n);
      c.download(&probe, 1);
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < iters; ++i)
        d.be.gemm(false, false, m, n, k, 1.f, a.data(), k, b.data(), n, 0.f, c.data(), n);
      c.download(&probe, 1);
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
             std::max(iters, 1);
    });
  });
  // z = a w + bias, y = act(z) through affine_forward; returns (z, y). in_place: y is z
  // (the fused epilogue path), and z is returned as y.
  m.def(
      "device_affine",
      [](int device, ActSpec act, Arr<float> a, Arr<float> w, std::optional<Arr<float>> bias,
          bool in_place) {
        matrix(a, "a");
        matrix(w, "w");
        const int64_t mm = a.shape(0), k = a.shape(1), n = w.shape(1);
        if (w.shape(0) != k) throw std::invalid_argument("affine: a and w do not fit");
        if (bias && bias->size() != n) throw std::invalid_argument("affine: bias must have n values");
        Dev d(device);
        DeviceArray<float> da = d.put(a), dw = d.put(w), dz(d.be, mm * n), dy;
        DeviceArray<float> db = bias ? d.put(*bias) : DeviceArray<float>();
        if (!in_place) dy = DeviceArray<float>(d.be, mm * n);
        float* y = in_place ? dz.data() : dy.data();
        released([&] {
          d.be.affine_forward(act, da.data(), dw.data(), bias ? db.data() : nullptr, dz.data(),
                              y, mm, k, n);
          return true;
        });
        py::array_t<float> z_out = d.get(dz, {mm, n});
        return py::make_tuple(z_out, in_place ? z_out : d.get(dy, {mm, n}));
      },
      py::arg("device"), py::arg("act"), py::arg("a"), py::arg("w"), py::arg("bias"),
      py::arg("in_place") = false);
  // z += bias (or not), y = act(z) on a (rows, cols) matrix; returns (z, y).
  m.def(
      "device_bias_act",
      [](int device, ActSpec act, Arr<float> z, std::optional<Arr<float>> bias, bool in_place) {
        matrix(z, "z");
        const int64_t rows = z.shape(0), cols = z.shape(1);
        if (bias && bias->size() != cols) throw std::invalid_argument("bias must have cols values");
        Dev d(device);
        DeviceArray<float> dz = d.put(z), dy;
        DeviceArray<float> db = bias ? d.put(*bias) : DeviceArray<float>();
        if (!in_place) dy = DeviceArray<float>(d.be, rows * cols);
        float* y = in_place ? dz.data() : dy.data();
        released([&] {
          d.be.bias_act(act, bias ? db.data() : nullptr, dz.data(), y, rows, cols);
          return true;
        });
        py::array_t<float> z_out = d.get(dz, {rows, cols});
        return py::make_tuple(z_out, in_place ? z_out : d.get(dy, {rows, cols}));
      },
      py::arg("device"), py::arg("act"), py::arg("z"), py::arg("bias"),
      py::arg("in_place") = false);
  m.def("device_act_backward", [](int device, ActSpec act, Arr<float> x, Arr<float> y,
                                   Arr<float> dy) {
    matrix(x, "x");
    if (y.size() != x.size() || dy.size() != x.size())
      throw std::invalid_argument("x, y and dy must have the same size");
    const int64_t rows = x.shape(0), cols = x.shape(1);
    Dev d(device);
    DeviceArray<float> dx_ = d.put(x), dy_ = d.put(y), ddy = d.put(dy), out(d.be, x.size());
    released([&] {
      d.be.act_backward(act, dx_.data(), dy_.data(), ddy.data(), out.data(), rows, cols);
      return true;
    });
    return d.get(out, {rows, cols});
  });
  m.def("device_col_sum", [](int device, Arr<float> x) {
    matrix(x, "x");
    const int64_t rows = x.shape(0), cols = x.shape(1);
    Dev d(device);
    DeviceArray<float> dx = d.put(x), out(d.be, cols);
    released([&] {
      d.be.col_sum(dx.data(), rows, cols, out.data());
      return true;
    });
    return d.get(out, {static_cast<py::ssize_t>(cols)});
  });
  // A case the CUDA backend does not have yet (a GEMM with k = 0 and beta != 0: C = beta C),
  // to test that it says so; returns C on the other devices.
  m.def("device_not_implemented", [](int device) {
    Dev d(device);
    DeviceArray<float> c(d.be, 1);
    d.be.fill(c.data(), 1.f, 1);
    d.be.gemm(false, false, 1, 1, 0, 1.f, nullptr, 1, nullptr, 1, 2.f, c.data(), 1);
    return d.get(c, {1});
  });
}

void add_all(py::module_& m) {
  add_dense_ops(m);
  add_update(m);
  add_losses(m);
  add_conv(m);
  add_embedding(m);
  add_recurrent(m);
  add_masking(m);
  add_conv1d(m);
}

}  // namespace harness
}  // namespace deepcore
