// The engine's module: NumPy arrays <-> engine pointers, C++ exceptions -> Python
// exceptions. No logic lives here beyond checking array sizes. The specs (enums and the
// structs that describe layers, losses, metrics, optimizers) and the single kernels are
// bound in bindings_specs.cpp, the backend test harness in harness*.cpp.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>

#include "deepcore/backend.h"
#include "deepcore/calls.h"
#include "deepcore/kernels.h"
#include "deepcore/model.h"
#include "harness.h"

namespace py = pybind11;
using namespace deepcore;

namespace deepcore {
void add_spec_bindings(py::module_& m);  // bindings_specs.cpp
}

namespace {

template <class T>
using Arr = py::array_t<T, py::array::c_style | py::array::forcecast>;

// Number of rows of `a` when each row holds `row_size` values; checks the total.
int64_t rows_of(const py::array& a, int64_t row_size, const char* name) {
  if (a.ndim() == 0 || a.shape(0) == 0)
    throw std::invalid_argument(std::string(name) + " is empty");
  const int64_t n = a.shape(0);
  if (a.size() != n * row_size)
    throw std::invalid_argument(std::string(name) + " has " + std::to_string(a.size() / n) +
                                " values per sample, expected " + std::to_string(row_size));
  return n;
}

// y (and w) must describe the same n samples as x; returns w's values per sample (one, or
// one per output).
int64_t check_labels(const py::array& y, const std::optional<Arr<float>>& w, int64_t n) {
  if (y.ndim() == 0 || y.shape(0) != n)
    throw std::invalid_argument("x and y must have the same number of samples");
  if (w && (w->ndim() == 0 || w->ndim() > 2 || w->shape(0) != n))
    throw std::invalid_argument(
        "sample_weight must have one value per sample (or per sample and output)");
  return w && w->ndim() == 2 ? w->shape(1) : 1;
}

// (loss, metrics, each output's loss)
py::tuple result(const RunResult& r) { return py::make_tuple(r.loss, r.metrics, r.output_losses); }

// Training results with the states to continue from and the batches run: (loss,
// metrics, states, batches, each output's loss).
py::tuple train_result(const RunResult& r) {
  return py::make_tuple(r.loss, r.metrics,
                        py::array_t<double>(static_cast<py::ssize_t>(r.states.size()),
                                            r.states.data()),
                        r.batches, r.output_losses);
}

// The states an epoch trained in pieces goes on from (None: start from zero); the
// engine checks their number.
std::optional<std::vector<double>> carried(const std::optional<Arr<double>>& carry) {
  if (!carry) return std::nullopt;
  if (carry->ndim() != 1) throw std::invalid_argument("carry must be a 1-D array");
  return std::vector<double>(carry->data(), carry->data() + carry->size());
}

const std::vector<double>* ptr(const std::optional<std::vector<double>>& v) {
  return v ? &*v : nullptr;
}

// ------------------------------------------------------------ engine calls
// Engine calls run without the GIL. Between batches the engine polls: in the main
// thread for signals (Ctrl-C raises KeyboardInterrupt within a batch), in the others
// for interpreter exit. At exit, `_exiting` (run by atexit) stops the calls of other
// threads and waits for them; those threads then never take the GIL again. The GIL
// is taken back by a plain call, never in a destructor: a thread that asks for it
// while the interpreter finalizes is ended by Python (pthread_exit), and that must
// not unwind through a noexcept destructor (std::terminate).
std::atomic<bool> g_exiting{false};
std::atomic<int> g_calls{0};
std::atomic<unsigned long> g_main_thread{0};
// The exception a signal handler raised during the poll, until the call returns.
thread_local PyObject *t_error_type = nullptr, *t_error_value = nullptr, *t_error_tb = nullptr;

bool poll_signals() {
  const PyGILState_STATE gil = PyGILState_Ensure();
  const bool stop = PyErr_CheckSignals() != 0;
  if (stop) PyErr_Fetch(&t_error_type, &t_error_value, &t_error_tb);
  PyGILState_Release(gil);
  return stop;
}

bool poll_exit() { return g_exiting.load(); }

[[noreturn]] void park() {
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

template <class F>
auto without_gil(F&& f) -> decltype(f()) {
  const bool main = PyThread_get_thread_ident() == g_main_thread.load();
  std::optional<decltype(f())> result;
  std::exception_ptr error;
  PyThreadState* state = PyEval_SaveThread();
  g_calls.fetch_add(1);
  if (g_exiting.load() && !main) park();
  try {
    ScopedPoll poll(main ? poll_signals : poll_exit);
    result.emplace(f());
  } catch (...) {
    error = std::current_exception();
  }
  g_calls.fetch_sub(1);
  if (g_exiting.load() && !main) park();
  PyEval_RestoreThread(state);
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const Interrupted&) {
      if (!t_error_type) throw;
      PyErr_Restore(std::exchange(t_error_type, nullptr), std::exchange(t_error_value, nullptr),
                    std::exchange(t_error_tb, nullptr));
      throw py::error_already_set();
    }
  }
  return std::move(*result);
}

// Copies of a model's buffer out to NumPy and in from it.
py::array_t<float> read_buffer(const Model& md, Model::Buffer b) {
  const std::vector<float> v = without_gil([&] { return md.read(b); });
  return py::array_t<float>(static_cast<py::ssize_t>(v.size()), v.data());
}

void write_buffer(Model& md, Model::Buffer b, const Arr<float>& values) {
  without_gil([&] {
    md.write(b, values.data(), values.size());
    return true;
  });
}

// A Model member called through without_gil: members take the model's lock, which a
// call in another thread may hold while its poll waits for the GIL.
template <class M, class R, class... A>
auto unlocked(R (M::*f)(A...)) {
  return [f](M& md, A... a) {
    if constexpr (std::is_void_v<R>)
      without_gil([&] {
        (md.*f)(a...);
        return true;
      });
    else
      return without_gil([&] { return (md.*f)(a...); });
  };
}

template <class M, class R, class... A>
auto unlocked(R (M::*f)(A...) const) {
  return [f](const M& md, A... a) { return without_gil([&] { return (md.*f)(a...); }); };
}

// A NumPy view of engine memory that keeps the model alive: only where that memory is
// the host's (the CPU backend).
py::array_t<float> view(Model& md, float* data, int64_t n, py::handle owner) {
  if (!md.backend().host_memory())
    throw std::logic_error(std::string("live views of weights need host memory; the ") +
                           md.backend().name() + " backend's are copied instead");
  return py::array_t<float>({static_cast<py::ssize_t>(n)}, {sizeof(float)}, data, owner);
}

}  // namespace

// A Dataset and the NumPy arrays it may point at (kept alive with it).
// A model's inputs for the engine: one array of them side by side, or (a model of several
// inputs) a list of one array per input, each checked against its input's size.
struct Inputs {
  std::vector<Arr<float>> arrays;
  std::vector<const float*> data;
  std::vector<int64_t> sizes;
  int64_t rows = 0;
};

Inputs inputs_of(const Model& md, py::object x) {
  Inputs in;
  const auto& shapes = md.input_shapes();
  if (py::hasattr(x, "_arrays")) x = x.attr("_arrays");  // (deepcore's InputArrays)
  if (py::isinstance<py::list>(x) || py::isinstance<py::tuple>(x)) {
    const auto seq = x.cast<py::sequence>();
    if (shapes.size() < 2 || seq.size() != shapes.size())
      throw std::invalid_argument("x holds " + std::to_string(seq.size()) +
                                  " arrays; the model takes " +
                                  std::to_string(std::max<size_t>(1, shapes.size())) + " inputs");
    for (size_t j = 0; j < seq.size(); ++j) {
      in.arrays.push_back(seq[j].cast<Arr<float>>());
      in.sizes.push_back(shape_size(shapes[j]));
      const int64_t n = rows_of(in.arrays.back(), in.sizes.back(), "x");
      if (j > 0 && n != in.rows)
        throw std::invalid_argument("the inputs' arrays have different numbers of samples");
      in.rows = n;
    }
  } else {
    in.arrays.push_back(x.cast<Arr<float>>());
    in.sizes.push_back(shape_size(md.input_shape()));
    in.rows = rows_of(in.arrays.back(), in.sizes.back(), "x");
  }
  for (const auto& a : in.arrays) in.data.push_back(a.data());
  return in;
}

struct Data {
  std::vector<Arr<float>> x;
  std::optional<Arr<float>> y, w;
  std::unique_ptr<Dataset> data;
};

// The thread pool as threadpoolctl sees it (deepcore/_threadpool.py finds the extension by
// these exported symbols): threadpool_limits() and joblib reach deepcore's threads.
extern "C" __attribute__((visibility("default"))) int deepcore_get_num_threads() {
  return deepcore::get_num_threads();
}
extern "C" __attribute__((visibility("default"))) void deepcore_set_num_threads(int n) {
  deepcore::set_num_threads(n < 0 ? 0 : n);
}

PYBIND11_MODULE(_core, m) {
  m.doc() = "deepcore engine (private; use the deepcore package)";

  g_main_thread = py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
  // os.fork() from any thread makes that thread the child's main thread.
  pthread_atfork(nullptr, nullptr, [] {
    g_main_thread = PyThread_get_thread_ident();
    g_calls = 0;  // the calls of the parent's other threads do not exist here
  });
  // Run by atexit: stops the engine calls of other threads (daemon threads inside fit)
  // and waits up to 5 s for them to leave the engine.
  m.def("_exiting", [] {
    g_exiting = true;
    py::gil_scoped_release release;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (g_calls.load() > 0 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  });

  add_spec_bindings(m);
  // C = A @ B through the CPU backend's GEMM (tests and the sgemm-peak benchmark).
  m.def("gemm", [](Arr<float> a, Arr<float> b) {
    if (a.ndim() != 2 || b.ndim() != 2 || a.shape(1) != b.shape(0))
      throw std::invalid_argument("gemm expects matrices (m, k) and (k, n)");
    const int64_t m = a.shape(0), k = a.shape(1), n = b.shape(1);
    py::array_t<float> c({m, n});
    float* cp = c.mutable_data();
    without_gil([&] {
      get_backend(Device::CPU).gemm(false, false, m, n, k, 1.f, a.data(), k, b.data(), n, 0.f, cp, n);
      return true;
    });
    return c;
  });
  m.def("all_finite", [](Arr<float> x) { return all_finite(x.data(), x.size()); });
  m.def("set_num_threads", &set_num_threads);
  m.def("set_allow_tf32", &set_allow_tf32);
  m.def("allow_tf32", &allow_tf32);
  m.def("device_copies", [](int device) { return get_backend(static_cast<Device>(device)).copies(); });
  m.def("get_num_threads", &get_num_threads);
  m.def("kernel_set", &deepcore_kernel_set);

  py::class_<Data>(m, "Dataset")
      .def_property_readonly("rows", [](const Data& d) { return d.data->rows(); });
  py::class_<Model>(m, "Model")
      .def(py::init([](int device) { return new Model(static_cast<Device>(device)); }),
           py::arg("device") = 0)
      .def("add_dense", &Model::add_dense)
      .def("add_activation", &Model::add_activation)
      .def("add_dropout", &Model::add_dropout, py::arg("rate"), py::arg("seed") = py::none())
      .def("add_conv2d", &Model::add_conv2d)
      .def("add_pool2d", &Model::add_pool2d)
      .def("add_conv1d", &Model::add_conv1d)
      .def("add_pool1d", &Model::add_pool1d)
      .def("add_upsampling1d", &Model::add_upsampling1d)
      .def("add_reshape", &Model::add_reshape)
      .def("add_global_average_pooling2d", &Model::add_global_average_pooling2d)
      .def("add_batch_normalization", &Model::add_batch_normalization)
      .def("add_normalization", &Model::add_normalization)
      .def("add_resizing", &Model::add_resizing)
      .def("add_center_crop", &Model::add_center_crop)
      .def("add_encoding", &Model::add_encoding)
      .def("add_augment", &Model::add_augment, py::arg("spec"), py::arg("seed") = py::none())
      .def("add_embedding", &Model::add_embedding, py::arg("input_dim"), py::arg("output_dim"),
           py::arg("mask_zero") = false)
      .def("add_masking", &Model::add_masking)
      .def("set_mask_source", &Model::set_mask_source)
      .def("set_output_mask_source", &Model::set_output_mask_source)
      .def("set_trainable", &Model::set_trainable)
      .def("add_merge", &Model::add_merge)
      .def("add_concatenate", &Model::add_concatenate)
      .def("add_ops", &Model::add_ops)
      .def("add_dot", &Model::add_dot, py::arg("ax"), py::arg("ay"), py::arg("normalize") = false)
      .def("set_inputs", &Model::set_inputs)
      .def("set_input_shapes", &Model::set_input_shapes)
      .def("set_weight_source", &Model::set_weight_source)
      .def("set_outputs", &Model::set_outputs)
      .def_property_readonly("gradient_buffers", &Model::gradient_buffers)
      .def_property_readonly("num_outputs", &Model::num_outputs)
      .def("output_layer", &Model::output_layer)
      .def("set_label_columns", unlocked(&Model::set_label_columns))
      .def("add_global_pooling1d", &Model::add_global_pooling1d)
      .def("add_recurrent", &Model::add_recurrent, py::arg("cell"), py::arg("units"),
           py::arg("act"), py::arg("rec"), py::arg("use_bias"), py::arg("return_sequences"),
           py::arg("go_backwards"), py::arg("dropout") = 0.f, py::arg("recurrent_dropout") = 0.f,
           py::arg("seed") = py::none())
      .def("add_bidirectional", &Model::add_bidirectional, py::arg("merge"),
           py::arg("return_sequences"), py::arg("cell"), py::arg("units"), py::arg("act"),
           py::arg("rec"), py::arg("use_bias"), py::arg("go_backwards"), py::arg("bcell"),
           py::arg("bunits"), py::arg("bact"), py::arg("brec"), py::arg("buse_bias"),
           py::arg("bgo_backwards"), py::arg("dropout") = 0.f,
           py::arg("recurrent_dropout") = 0.f, py::arg("seed") = py::none(),
           py::arg("bdropout") = 0.f, py::arg("brecurrent_dropout") = 0.f,
           py::arg("bseed") = py::none())
      .def("build", unlocked(&Model::build))
      .def("plan",
           [](Model& md, const Shape& input_shape) {
             py::list out;
             for (const Param& p : without_gil([&] { return md.plan(input_shape); }))
               out.append(py::make_tuple(p.layer, p.shape, p.trainable));
             return out;
           })
      .def_property_readonly("built", &Model::built)
      .def_property_readonly("host_memory",
                             [](Model& md) { return md.backend().host_memory(); })
      .def_property_readonly("compiled", &Model::compiled)
      .def("output_shape", &Model::output_shape)
      .def_property_readonly("num_params", &Model::num_params)
      .def("param_info",
           [](const Model& md) {
             py::list out;
             for (const Param& p : md.params())
               out.append(py::make_tuple(p.layer, p.offset, p.shape, p.trainable));
             return out;
           })
      .def("weights",
           [](py::object self) {
             Model& md = self.cast<Model&>();
             return view(md, md.param_data(), md.num_params(), self);
           })
      .def("states",
           [](py::object self) {
             Model& md = self.cast<Model&>();
             return view(md, md.state_data().data(), md.state_data().size(), self);
           })
      .def("read",
           [](const Model& md, bool states) {
             return read_buffer(md, states ? Model::Buffer::States : Model::Buffer::Weights);
           },
           py::arg("states") = false)
      .def("write",
           [](Model& md, Arr<float> values, bool states) {
             write_buffer(md, states ? Model::Buffer::States : Model::Buffer::Weights, values);
           },
           py::arg("values"), py::arg("states") = false)
      .def("optimizer_state",
           [](const Model& md) { return read_buffer(md, Model::Buffer::OptimizerSlots); })
      .def("set_optimizer_state", [](Model& md, Arr<float> values) {
        write_buffer(md, Model::Buffer::OptimizerSlots, values);
      })
      .def("set_regularizer", unlocked(&Model::set_regularizer))
      .def("compile",
           unlocked(static_cast<void (Model::*)(const std::vector<std::optional<LossSpec>>&,
                                                const OptSpec&, const std::vector<MetricSpec>&)>(
               &Model::compile)))
      .def("set_metrics", unlocked(&Model::set_metrics))
      .def("set_programs", unlocked(&Model::set_programs))
      .def_property("learning_rate", unlocked(&Model::learning_rate),
                    unlocked(&Model::set_learning_rate))
      .def_property("iterations", unlocked(&Model::iterations), unlocked(&Model::set_iterations))
      .def_property("seed", unlocked(&Model::seed), unlocked(&Model::set_seed))
      .def_property("draws", unlocked(&Model::draws), unlocked(&Model::set_draws))
      .def("permutation",
           [](Model& md, int64_t n) {
             if (n < 0) throw std::invalid_argument("n must be >= 0");
             const std::vector<int64_t> order = without_gil([&] { return md.permutation(n); });
             return py::array_t<int64_t>(static_cast<py::ssize_t>(order.size()), order.data());
           })
      .def(
          "dataset",
          [](Model& md, py::object x, std::optional<Arr<float>> y, std::optional<Arr<float>> w) {
            const Inputs in = inputs_of(md, x);
            const int64_t n = in.rows;
            int64_t wcols = 1;
            if (y) wcols = check_labels(*y, w, n);
            else if (w) throw std::invalid_argument("sample weights need labels");
            const int64_t ycols = y ? y->size() / n : 0;
            auto make = [&] {
              return new Data{in.arrays, y, w,
                              std::make_unique<Dataset>(md.backend(), in.data, in.sizes,
                                                        y ? y->data() : nullptr,
                                                        w ? w->data() : nullptr, n, ycols,
                                                        wcols)};
            };
            // (on the host it only points at the arrays; elsewhere it copies them)
            return md.backend().host_memory() ? make() : without_gil(make);
          },
          py::arg("x"), py::arg("y") = py::none(), py::arg("w") = py::none())
      .def(
          "fit_epoch",
          [](Model& md, const Data& d, int64_t batch_size, bool shuffle,
             std::optional<Arr<double>> carry, bool stop_on_nonfinite) {
            const auto c = carried(carry);
            return train_result(without_gil([&] {
              return md.fit_epoch(*d.data, batch_size, shuffle, ptr(c), stop_on_nonfinite);
            }));
          },
          py::arg("data"), py::arg("batch_size"), py::arg("shuffle"),
          py::arg("carry") = py::none(), py::arg("stop_on_nonfinite") = false)
      .def(
          "fit_rows",
          [](Model& md, const Data& d, int64_t batch_size,
             std::optional<py::array_t<int64_t, py::array::c_style | py::array::forcecast>> order,
             int64_t first, int64_t count, std::optional<Arr<double>> carry,
             bool stop_on_nonfinite) {
            const int64_t n = d.data->rows();
            const int64_t* o = order ? order->data() : nullptr;
            if (order) {
              count = order->size();
              for (int64_t i = 0; i < count; ++i)
                if (o[i] < 0 || o[i] >= n)
                  throw std::invalid_argument("row index " + std::to_string(o[i]) +
                                              " out of range for " + std::to_string(n) + " rows");
            }
            const auto c = carried(carry);
            return train_result(without_gil([&] {
              return md.fit_rows(*d.data, batch_size, o, first, count, ptr(c), stop_on_nonfinite);
            }));
          },
          py::arg("data"), py::arg("batch_size"), py::arg("order") = py::none(),
          py::arg("first") = 0, py::arg("count") = 0, py::arg("carry") = py::none(),
          py::arg("stop_on_nonfinite") = false)
      .def("evaluate",
           [](Model& md, const Data& d, int64_t batch_size) {
             return result(without_gil([&] { return md.evaluate(*d.data, batch_size); }));
           })
      .def(
          "evaluate_rows",  // a piece of an evaluation: the results with the states
          [](Model& md, const Data& d, int64_t batch_size, std::optional<Arr<double>> carry,
             int64_t first, int64_t count) {
            const auto c = carried(carry);
            return train_result(without_gil(
                [&] { return md.evaluate(*d.data, batch_size, ptr(c), first, count); }));
          },
          py::arg("data"), py::arg("batch_size"), py::arg("carry") = py::none(),
          py::arg("first") = 0, py::arg("count") = -1)
      .def("last_rows", &Model::last_rows)
      .def(
          "last_batch",
          [](const Model& md, int64_t output, int part) {
            std::vector<float> v = md.last_batch(output, part);
            return py::array_t<float>(static_cast<py::ssize_t>(v.size()), v.data());
          },
          py::arg("output"), py::arg("part"))
      .def("predict",
           [](Model& md, py::object x, int64_t batch_size, bool training) {
             const Inputs in = inputs_of(md, x);
             const int64_t n = in.rows;
             std::vector<py::ssize_t> shape{n};  // several outputs: a row holds them all
             if (md.num_outputs() == 1)
               for (int64_t d : md.output_shape(md.output_layer(0))) shape.push_back(d);
             else
               shape.push_back(0);
             for (int64_t k = 0; md.num_outputs() > 1 && k < md.num_outputs(); ++k)
               shape.back() += shape_size(md.output_shape(md.output_layer(k)));
             py::array_t<float> out(shape);
             float* o = out.mutable_data();
             without_gil([&] {
               md.predict(Dataset(md.backend(), in.data, in.sizes, nullptr, nullptr, n, 0),
                          batch_size, o, training);
               return true;
             });
             return out;
           },
           py::arg("x"), py::arg("batch_size"), py::arg("training") = false)
      .def("gradients",
           [](Model& md, py::object x, Arr<float> y, std::optional<Arr<float>> w) {
             const Inputs in = inputs_of(md, x);
             const int64_t n = in.rows;
             const int64_t wcols = check_labels(y, w, n);
             py::array_t<float> g(md.num_params());
             const double l = without_gil([&] {
               return md.gradients(Dataset(md.backend(), in.data, in.sizes, y.data(),
                                           w ? w->data() : nullptr, n, y.size() / n, wcols),
                                   g.mutable_data());
             });
             return py::make_tuple(l, g);
           });

  harness::add_all(m);
}
