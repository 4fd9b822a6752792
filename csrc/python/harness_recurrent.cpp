// The harness's recurrent step ops (see harness.h): one step of SimpleRNN, LSTM or GRU over a
// batch, every buffer contiguous ((batch, G units) gate rows, (batch, units) state rows).
#include <optional>
#include <tuple>

#include "harness.h"

namespace deepcore {
namespace harness {
namespace {

using Opt = std::optional<Arr<float>>;

// The step's sizes from z (batch, G units); checks that `a`, when given, has n values.
RnnStep step_of(Cell cell, Act act, Act rec, const Arr<float>& z) {
  matrix(z, "z");
  const int64_t g = cell == Cell::LSTM ? 4 : cell == Cell::GRU ? 3 : 1;
  if (z.shape(1) % g || z.shape(0) < 1 || z.shape(1) < g)
    throw std::invalid_argument("z must have shape (batch, G * units)");
  const int64_t units = z.shape(1) / g;
  return RnnStep{z.shape(0), units, g * units, units, units, act, rec};
}

void check_size(const Opt& a, int64_t n, const char* name) {
  if (a && a->size() != n) throw std::invalid_argument(std::string(name) + " has a wrong size");
}

// A device copy of `a`, or an empty array for none.
DeviceArray<float> put_opt(Dev& d, const Opt& a) {
  return a ? d.put(*a) : DeviceArray<float>();
}

}  // namespace

void add_recurrent(py::module_& m) {
  m.def(
      "device_recurrent_step_forward",
      [](int device, Cell cell, Act act, Act rec, const Arr<float>& z, const Opt& hr,
         const Opt& prev, const Opt& rbias, const Opt& hprev, const Opt& mask) {
        const RnnStep s = step_of(cell, act, rec, z);
        const int64_t bu = s.batch * s.units;
        check_size(hr, s.batch * s.zld, "hr");
        check_size(prev, bu, "prev");
        check_size(rbias, s.zld, "rbias");
        check_size(hprev, bu, "hprev");
        check_size(mask, s.batch, "mask");
        Dev d(device);
        DeviceArray<float> dz = d.put(z), dhr = put_opt(d, hr), dp = put_opt(d, prev),
                           db = put_opt(d, rbias), dhp = put_opt(d, hprev),
                           dm = put_opt(d, mask), h(d.be, bu), state(d.be, bu);
        d.be.zero(state.data(), state.bytes());  // SimpleRNN has no state: zeros come back
        released([&] {
          if (cell == Cell::SimpleRNN)
            d.be.rnn_step_forward(s, dz.data(), dhr.data(), dhp.data(), dm.data(), h.data());
          else if (cell == Cell::LSTM)
            d.be.lstm_step_forward(s, dz.data(), dhr.data(), dhp.data(), dp.data(), dm.data(),
                                   state.data(), h.data());
          else
            d.be.gru_step_forward(s, dz.data(), dhr.data(), db.data(), dp.data(), dm.data(),
                                  state.data(), h.data());
        });
        const py::ssize_t b = s.batch, u = s.units;
        return std::make_tuple(d.get(dz, {b, s.zld}), d.get(h, {b, u}), d.get(state, {b, u}));
      },
      py::arg("device"), py::arg("cell"), py::arg("act"), py::arg("rec"), py::arg("z"),
      py::arg("hr") = py::none(), py::arg("prev") = py::none(), py::arg("rbias") = py::none(),
      py::arg("hprev") = py::none(), py::arg("mask") = py::none(),
      "One forward step: (z after the step (the gates), h, state (LSTM's c, GRU's rh)); prev "
      "is LSTM's c_{t-1} or GRU's h_{t-1}, rbias GRU's recurrent bias, hprev SimpleRNN's and "
      "LSTM's h_{t-1} (what a masked sample keeps), mask one value per sample.");
  m.def(
      "device_recurrent_step_backward",
      [](int device, Cell cell, Act act, Act rec, const Arr<float>& z, const Arr<float>& dh,
         const Opt& dy, const Opt& h, const Opt& prev, const Opt& state, const Opt& dc,
         const Opt& mask) {
        const RnnStep s = step_of(cell, act, rec, z);
        const int64_t bu = s.batch * s.units;
        if (dh.size() != bu) throw std::invalid_argument("dh must have shape (batch, units)");
        for (const Opt* a : {&dy, &h, &prev, &state, &dc}) check_size(*a, bu, "a state");
        check_size(mask, s.batch, "mask");
        if ((cell == Cell::SimpleRNN && !h) || (cell == Cell::LSTM && (!state || !dc)) ||
            (cell == Cell::GRU && !state))
          throw std::invalid_argument("missing state for this cell");
        Dev d(device);
        DeviceArray<float> dz = d.put(z), ddh = d.put(dh), ddy = put_opt(d, dy),
                           dhh = put_opt(d, h), dp = put_opt(d, prev), ds = put_opt(d, state),
                           ddc = put_opt(d, dc), dm = put_opt(d, mask),
                           dr(d.be, s.batch * s.zld);
        d.be.zero(dr.data(), dr.bytes());
        released([&] {
          if (cell == Cell::SimpleRNN)
            d.be.rnn_step_backward(s, dz.data(), dhh.data(), ddy.data(), dm.data(), ddh.data());
          else if (cell == Cell::LSTM)
            d.be.lstm_step_backward(s, dz.data(), dp.data(), ds.data(), ddy.data(), dm.data(),
                                    ddh.data(), ddc.data());
          else
            d.be.gru_step_backward(s, dz.data(), dr.data(), ds.data(), dp.data(), ddy.data(),
                                   dm.data(), ddh.data());
        });
        const py::ssize_t b = s.batch, u = s.units;
        return std::make_tuple(d.get(dz, {b, s.zld}), d.get(dr, {b, s.zld}), d.get(ddh, {b, u}),
                               cell == Cell::LSTM ? d.get(ddc, {b, u}) : d.get(ddh, {b, u}));
      },
      py::arg("device"), py::arg("cell"), py::arg("act"), py::arg("rec"), py::arg("z"),
      py::arg("dh"), py::arg("dy") = py::none(), py::arg("h") = py::none(),
      py::arg("prev") = py::none(), py::arg("state") = py::none(), py::arg("dc") = py::none(),
      py::arg("mask") = py::none(),
      "One backward step: (dz, dr (GRU's recurrent side, else zeros), dh, dc (LSTM; else dh)); "
      "z holds the forward's gates, h SimpleRNN's output, prev LSTM's c_{t-1} or GRU's "
      "h_{t-1}, state LSTM's c or GRU's rh.");
  m.def(
      "device_bidir_merge",
      [](int device, Merge mode, const Arr<float>& a, const Arr<float>& b, const Arr<float>& dy) {
        if (a.ndim() != 3 || b.ndim() != 3 || a.shape(0) != b.shape(0) ||
            a.shape(1) != b.shape(1) || (mode != Merge::Concat && a.shape(2) != b.shape(2)))
          throw std::invalid_argument("a and b must have shapes (rows, steps, ua), (rows, steps, ub)");
        const BidirMerge bm{mode, a.shape(0), a.shape(1), a.shape(2), b.shape(2)};
        const py::ssize_t r = bm.rows, t = bm.steps, w = bm.width();
        if (dy.size() != r * t * w) throw std::invalid_argument("dy must have the output's shape");
        Dev d(device);
        DeviceArray<float> da = d.put(a), db = d.put(b), ddy = d.put(dy), y(d.be, r * t * w),
                           ga(d.be, a.size()), gb(d.be, b.size());
        released([&] {
          d.be.bidir_merge(bm, da.data(), db.data(), y.data());
          d.be.bidir_merge_backward(bm, da.data(), db.data(), ddy.data(), ga.data(), gb.data());
        });
        return std::make_tuple(d.get(y, {r, t, w}), d.get(ga, {r, t, bm.ua}),
                               d.get(gb, {r, t, bm.ub}));
      },
      py::arg("device"), py::arg("mode"), py::arg("a"), py::arg("b"), py::arg("dy"),
      "Bidirectional's merge of a (rows, steps, ua) and b (rows, steps, ub; steps reversed) and "
      "its gradients for dy: (y, da, db).");
}

}  // namespace harness
}  // namespace deepcore
