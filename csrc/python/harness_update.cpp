// The harness's training-step update ops (see harness.h): optimizer updates, L1/L2
// penalties, clipping, multiply, broadcast multiply, dropout, row gathers and the loss total.
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "harness.h"

namespace deepcore {
namespace harness {
namespace {

// Throws unless a and b hold as many values.
void same_size(const py::array& a, const py::array& b, const char* what) {
  if (a.size() != b.size())
    throw std::invalid_argument(std::string(what) + " must have the same size");
}

// Runs f() without the GIL (the op only: uploads and downloads stay outside).
template <class F>
void run_op(F&& f) {
  released([&] {
    f();
    return true;
  });
}

}  // namespace

void add_update(py::module_& m) {
  // One optimizer update of w with gradient g at learning rate lr and 1-based step `step`,
  // from the given slots (as many as optimizer_slots(spec), each w's size); returns
  // (w, [slots]) after the update.
  m.def(
      "device_optimizer_update",
      [](int device, const OptSpec& spec, float lr, int64_t step, Arr<float> w, Arr<float> g,
         std::vector<Arr<float>> slots) {
        same_size(w, g, "w and g");
        if (step < 1)
          throw std::invalid_argument("step must be >= 1, received: " + std::to_string(step));
        const int want = optimizer_slots(spec);
        if (static_cast<int>(slots.size()) != want)
          throw std::invalid_argument("this optimizer needs " + std::to_string(want) +
                                      " slot arrays, received: " + std::to_string(slots.size()));
        for (const auto& s : slots) same_size(w, s, "slots and w");
        const int64_t n = w.size();
        Dev d(device);
        DeviceArray<float> dw = d.put(w), dg = d.put(g);
        std::vector<DeviceArray<float>> ds;
        for (const auto& s : slots) ds.push_back(d.put(s));
        DeviceArray<StepValues> dstep(d.be, 1);
        const StepValues sv{lr, step};
        dstep.upload(&sv, 1);
        float* p[3] = {nullptr, nullptr, nullptr};
        for (size_t k = 0; k < ds.size(); ++k) p[k] = ds[k].data();
        run_op([&] {
          d.be.optimizer_update(spec, dstep.data(), dw.data(), dg.data(), p[0], p[1], p[2], n);
        });
        py::list out_slots;
        for (size_t k = 0; k < ds.size(); ++k) out_slots.append(d.get(ds[k], shape_of(slots[k])));
        return py::make_tuple(d.get(dw, shape_of(w)), out_slots);
      },
      py::arg("device"), py::arg("spec"), py::arg("lr"), py::arg("step"), py::arg("w"),
      py::arg("g"), py::arg("slots"));
  // `steps` training steps of the update ops on fixed device addresses, as the engine runs
  // them: g = grads[t] + the L1/L2 penalty's gradient (the penalty summed into acc), g
  // clipped to max_norm, the optimizer update with lrs[t] at step t + 1, then dropout of
  // w with seeds[t] into (y, mask). The per-step values (the StepValues, the seed, the
  // gradient) are copied to their fixed addresses before each step; with `captured` and a
  // backend that can capture, the step is captured once and replayed. Returns (w, [slots],
  // acc, y, mask) after the last step.
  m.def(
      "device_update_steps",
      [](int device, const OptSpec& spec, std::vector<float> lrs, Arr<float> grads, Arr<float> w,
         std::vector<Arr<float>> slots, float l1, float l2, double max_norm, float rate,
         std::vector<uint64_t> seeds, bool captured) {
        matrix(grads, "grads");
        const int64_t steps = grads.shape(0), n = grads.shape(1);
        if (steps < 1) throw std::invalid_argument("grads must hold at least one step");
        const auto count = [](const auto& v) { return static_cast<int64_t>(v.size()); };
        if (count(lrs) != steps || count(seeds) != steps)
          throw std::invalid_argument("lrs and seeds must hold one value per step (grads' rows)");
        if (w.size() != n) throw std::invalid_argument("w must have grads' columns");
        const int want = optimizer_slots(spec);
        if (static_cast<int>(slots.size()) != want)
          throw std::invalid_argument("this optimizer needs " + std::to_string(want) +
                                      " slot arrays, received: " + std::to_string(slots.size()));
        for (const auto& s : slots) same_size(w, s, "slots and w");
        if (!(max_norm > 0) || !std::isfinite(max_norm))
          throw std::invalid_argument("max_norm must be positive and finite");
        if (!(rate >= 0.f && rate < 1.f)) throw std::invalid_argument("rate must be in [0, 1)");
        Dev d(device);
        std::vector<StepValues> table(static_cast<size_t>(steps));
        for (int64_t t = 0; t < steps; ++t) table[t] = StepValues{lrs[t], t + 1};
        DeviceArray<StepValues> dtable(d.be, steps), dstep(d.be, 1);
        dtable.upload(table.data(), steps);
        DeviceArray<uint64_t> dseeds(d.be, steps), dseed(d.be, 1);
        dseeds.upload(seeds.data(), steps);
        DeviceArray<float> dgrads = d.put(grads), dw = d.put(w), dg(d.be, n), y(d.be, n),
                           mask(d.be, n);
        std::vector<DeviceArray<float>> ds;
        for (const auto& s : slots) ds.push_back(d.put(s));
        float* p[3] = {nullptr, nullptr, nullptr};
        for (size_t k = 0; k < ds.size(); ++k) p[k] = ds[k].data();
        DeviceArray<double> acc(d.be, 1);
        d.be.zero(acc.data(), sizeof(double));
        run_op([&] {
          auto step = [&] {
            d.be.l1l2_penalty(dw.data(), dg.data(), n, l1, l2, acc.data());
            d.be.clip_by_norm(dg.data(), n, max_norm);
            d.be.optimizer_update(spec, dstep.data(), dw.data(), dg.data(), p[0], p[1], p[2], n);
            d.be.dropout(rate, dseed.data(), dw.data(), y.data(), mask.data(), n);
          };
          std::unique_ptr<Graph> graph;
          if (captured && d.be.can_capture()) graph = d.be.capture(step);
          for (int64_t t = 0; t < steps; ++t) {
            d.be.copy(dstep.data(), dtable.data() + t, sizeof(StepValues));
            d.be.copy(dseed.data(), dseeds.data() + t, sizeof(uint64_t));
            d.be.copy(dg.data(), dgrads.data() + t * n, sizeof(float) * n);
            if (graph)
              graph->replay();
            else
              step();
          }
        });
        py::list out_slots;
        for (size_t k = 0; k < ds.size(); ++k) out_slots.append(d.get(ds[k], shape_of(slots[k])));
        double total = 0;
        acc.download(&total, 1);
        return py::make_tuple(d.get(dw, shape_of(w)), out_slots, total, d.get(y, shape_of(w)),
                              d.get(mask, shape_of(w)));
      },
      py::arg("device"), py::arg("spec"), py::arg("lrs"), py::arg("grads"), py::arg("w"),
      py::arg("slots"), py::arg("l1"), py::arg("l2"), py::arg("max_norm"), py::arg("rate"),
      py::arg("seeds"), py::arg("captured"));
  // acc + sum l1 |w| + l2 w^2 and, when g is given, g + l1 sign(w) + 2 l2 w: (acc, g or None).
  m.def(
      "device_l1l2",
      [](int device, Arr<float> w, std::optional<Arr<float>> g, float l1, float l2, double acc) {
        if (g) same_size(w, *g, "w and g");
        const int64_t n = w.size();
        Dev d(device);
        DeviceArray<float> dw = d.put(w);
        DeviceArray<float> dg = g ? d.put(*g) : DeviceArray<float>();
        DeviceArray<double> dacc(d.be, 1);
        dacc.upload(&acc, 1);
        run_op([&] {
          d.be.l1l2_penalty(dw.data(), g ? dg.data() : nullptr, n, l1, l2, dacc.data());
        });
        double total = 0;
        dacc.download(&total, 1);
        py::object g_out = g ? py::object(d.get(dg, shape_of(*g))) : py::object(py::none());
        return py::make_tuple(total, g_out);
      },
      py::arg("device"), py::arg("w"), py::arg("g"), py::arg("l1"), py::arg("l2"),
      py::arg("acc") = 0.0);
  // min(max(g, -v), v)
  m.def("device_clip_by_value", [](int device, Arr<float> g, float v) {
    if (!(v >= 0)) throw std::invalid_argument("v must be >= 0, received: " + std::to_string(v));
    Dev d(device);
    DeviceArray<float> dg = d.put(g);
    run_op([&] { d.be.clip_by_value(dg.data(), g.size(), v); });
    return d.get(dg, shape_of(g));
  });
  // g * max_norm / ||g|| when ||g|| > max_norm, else g
  m.def("device_clip_by_norm", [](int device, Arr<float> g, double max_norm) {
    if (!(max_norm > 0) || !std::isfinite(max_norm))
      throw std::invalid_argument("max_norm must be positive and finite, received: " +
                                  std::to_string(max_norm));
    Dev d(device);
    DeviceArray<float> dg = d.put(g);
    run_op([&] { d.be.clip_by_norm(dg.data(), g.size(), max_norm); });
    return d.get(dg, shape_of(g));
  });
  // a * b, value by value
  m.def("device_multiply", [](int device, Arr<float> a, Arr<float> b) {
    same_size(a, b, "a and b");
    Dev d(device);
    DeviceArray<float> da = d.put(a), db = d.put(b), out(d.be, a.size());
    run_op([&] { d.be.multiply(da.data(), db.data(), out.data(), a.size()); });
    return d.get(out, shape_of(a));
  });
  // a^T for a 2-D a
  m.def("device_transpose", [](int device, Arr<float> a) {
    if (a.ndim() != 2)
      throw std::invalid_argument("transpose expects a 2-D array, received " +
                                  std::to_string(a.ndim()) + " dimensions");
    const int64_t rows = a.shape(0), cols = a.shape(1);
    Dev d(device);
    DeviceArray<float> da = d.put(a), out(d.be, a.size());
    run_op([&] { d.be.transpose(da.data(), rows, cols, out.data()); });
    return d.get(out, {cols, rows});
  });
  // out (n0, n1, n2) = a * m (+ out0 when given), the operands read with strides (a0, a1)
  // and (m0, m1) (Backend::broadcast_multiply); a and m are 1-D buffers.
  m.def(
      "device_broadcast_multiply",
      [](int device, Arr<float> a, Arr<float> mk, std::vector<int64_t> shape,
         std::vector<int64_t> a_strides, std::vector<int64_t> m_strides,
         std::optional<Arr<float>> out0) {
        if (shape.size() != 3 || a_strides.size() != 2 || m_strides.size() != 2)
          throw std::invalid_argument("shape takes 3 sizes, a_strides and m_strides 2 each");
        Broadcast3 s{shape[0], shape[1], shape[2], a_strides[0], a_strides[1],
                     m_strides[0], m_strides[1], out0.has_value()};
        for (int64_t v : {s.n0, s.n1, s.n2, s.a0, s.a1, s.m0, s.m1})
          if (v < 0) throw std::invalid_argument("sizes and strides must be >= 0");
        // The last element each operand reads must lie inside it.
        auto last = [&](int64_t x0, int64_t x1) {
          return s.size() ? (s.n0 - 1) * x0 + (s.n1 - 1) * x1 + s.n2 - 1 : -1;
        };
        if (last(s.a0, s.a1) >= a.size() || last(s.m0, s.m1) >= mk.size())
          throw std::invalid_argument("a stride reads past the end of a or m");
        if (out0 && out0->size() != s.size())
          throw std::invalid_argument("out0 must hold n0 * n1 * n2 values");
        Dev d(device);
        DeviceArray<float> da = d.put(a), dm = d.put(mk),
                           out = out0 ? d.put(*out0) : DeviceArray<float>(d.be, s.size());
        run_op([&] { d.be.broadcast_multiply(s, da.data(), dm.data(), out.data()); });
        return d.get(out, {static_cast<py::ssize_t>(s.n0), static_cast<py::ssize_t>(s.n1),
                           static_cast<py::ssize_t>(s.n2)});
      },
      py::arg("device"), py::arg("a"), py::arg("m"), py::arg("shape"), py::arg("a_strides"),
      py::arg("m_strides"), py::arg("out0") = py::none());
  // (y, mask) of dropout at `rate` with the seed `seed` (placed in device memory).
  m.def("device_dropout", [](int device, float rate, uint64_t seed, Arr<float> x) {
    if (!(rate >= 0.f && rate < 1.f))
      throw std::invalid_argument("rate must be in [0, 1), received: " + std::to_string(rate));
    const int64_t n = x.size();
    Dev d(device);
    DeviceArray<float> dx = d.put(x), y(d.be, n), mask(d.be, n);
    DeviceArray<uint64_t> dseed(d.be, 1);
    dseed.upload(&seed, 1);
    run_op([&] { d.be.dropout(rate, dseed.data(), dx.data(), y.data(), mask.data(), n); });
    return py::make_tuple(d.get(y, shape_of(x)), d.get(mask, shape_of(x)));
  });
  // src[idx] for a matrix src and 1-D indices into its rows.
  m.def("device_gather_rows", [](int device, Arr<float> src, Arr<int64_t> idx) {
    matrix(src, "src");
    if (idx.ndim() != 1) throw std::invalid_argument("idx must be a 1-D array");
    const int64_t rows = idx.size(), cols = src.shape(1), src_rows = src.shape(0);
    for (int64_t i = 0; i < rows; ++i)
      if (idx.data()[i] < 0 || idx.data()[i] >= src_rows)
        throw std::invalid_argument("idx[" + std::to_string(i) + "] = " +
                                    std::to_string(idx.data()[i]) + " is not a row of src (" +
                                    std::to_string(src_rows) + " rows)");
    Dev d(device);
    DeviceArray<float> dsrc = d.put(src), dst(d.be, rows * cols);
    DeviceArray<int64_t> didx = d.put(idx);
    run_op([&] { d.be.gather_rows(dsrc.data(), didx.data(), rows, cols, dst.data()); });
    return d.get(dst, {static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)});
  });
  // totals + ((batch[0] * scale + batch[1]) * rows, rows): the 2 totals after one batch.
  m.def("device_add_batch_loss", [](int device, Arr<double> batch, double scale, int64_t rows,
                                    Arr<double> totals) {
    if (batch.size() != 2 || totals.size() != 2)
      throw std::invalid_argument("batch and totals must hold 2 values each");
    if (rows < 0)
      throw std::invalid_argument("rows must be >= 0, received: " + std::to_string(rows));
    Dev d(device);
    DeviceArray<double> db = d.put(batch), dt = d.put(totals);
    run_op([&] { d.be.add_batch_loss(db.data(), scale, rows, dt.data()); });
    return d.get(dt, {2});
  });
}

}  // namespace harness
}  // namespace deepcore
