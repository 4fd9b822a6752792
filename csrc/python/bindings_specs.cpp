// The engine's specs (the enums and structs that describe activations, losses, metrics,
// optimizers, schedules and op programs) and its single kernels in float32 and float64
// (for the function forms and the gradient checks), added to the module by bindings.cpp.
// The enums are Python enum.IntEnum classes (py::native_enum: the file compiles in half the
// time py::enum_ took). After changing the module's interface, regenerate its stub with
// `python .ci/make_stub.py`.
#include <pybind11/native_enum.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <string>
#include <vector>

#include "deepcore/kernels.h"
#include "deepcore/model.h"

namespace py = pybind11;

namespace deepcore {
namespace {

template <class T>
using Arr = py::array_t<T, py::array::c_style | py::array::forcecast>;

int64_t last_dim(const py::array& a) { return a.ndim() ? a.shape(a.ndim() - 1) : 1; }

template <class T>
py::array_t<T> activation(ActSpec spec, Arr<T> x) {
  py::array_t<T> y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  const int64_t cols = last_dim(x), rows = cols ? x.size() / cols : 0;
  act_forward<T>(spec, x.data(), y.mutable_data(), rows, cols);
  return y;
}

template <class T>
py::array_t<T> activation_grad(ActSpec spec, Arr<T> x, Arr<T> y, Arr<T> dy) {
  if (y.size() != x.size() || dy.size() != x.size())
    throw std::invalid_argument("x, y and dy must have the same size");
  py::array_t<T> dx(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  const int64_t cols = last_dim(x), rows = cols ? x.size() / cols : 0;
  act_backward<T>(spec, x.data(), y.data(), dy.data(), dx.mutable_data(), rows, cols);
  return dx;
}

// Per-sample losses and the gradient of their sum with respect to pred.
template <class T>
py::tuple loss(const LossSpec& spec, Arr<T> y_true, Arr<T> y_pred) {
  const int64_t cols = last_dim(y_pred), rows = cols ? y_pred.size() / cols : 0;
  const int64_t ycols = rows ? y_true.size() / rows : 0;
  if (rows == 0 || y_true.size() != rows * ycols)
    throw std::invalid_argument("y_true and y_pred do not describe the same samples");
  py::array_t<T> grad(std::vector<py::ssize_t>(y_pred.shape(), y_pred.shape() + y_pred.ndim()));
  py::array_t<T> per_row(rows);
  loss_forward_backward<T>(spec, y_pred.data(), nullptr, y_true.data(), nullptr,
                           grad.mutable_data(),
                           per_row.mutable_data(), rows, cols, ycols, T(1));
  return py::make_tuple(per_row, grad);
}

template <class T>
void optimizer_step(const OptSpec& o, double lr, int64_t step, py::array_t<T> w,
                    py::array_t<T> g, std::vector<py::array_t<T>> slots) {
  const int64_t n = w.size();
  if (g.size() != n) throw std::invalid_argument("w and g must have the same size");
  T* s[3] = {nullptr, nullptr, nullptr};
  if (static_cast<int>(slots.size()) != optimizer_slots(o))
    throw std::invalid_argument("this optimizer needs " + std::to_string(optimizer_slots(o)) +
                                " state arrays");
  for (size_t k = 0; k < slots.size(); ++k) {
    if (slots[k].size() != n) throw std::invalid_argument("state arrays must match w in size");
    s[k] = slots[k].mutable_data();
  }
  optimizer_update<T>(o, T(lr), step, w.mutable_data(), g.data(), s[0], s[1], s[2], n);
}

}  // namespace

void add_spec_bindings(py::module_& m) {
  py::native_enum<Act>(m, "Act", "enum.IntEnum")
      .value("linear", Act::Linear)
      .value("relu", Act::Relu)
      .value("leaky_relu", Act::LeakyRelu)
      .value("elu", Act::Elu)
      .value("selu", Act::Selu)
      .value("sigmoid", Act::Sigmoid)
      .value("hard_sigmoid", Act::HardSigmoid)
      .value("tanh", Act::Tanh)
      .value("softmax", Act::Softmax)
      .value("softplus", Act::Softplus)
      .value("softsign", Act::Softsign)
      .value("swish", Act::Swish)
      .value("gelu", Act::Gelu)
      .value("exponential", Act::Exponential)
      .value("step", Act::Step)
      .finalize();
  py::native_enum<Cell>(m, "Cell", "enum.IntEnum")
      .value("simple_rnn", Cell::SimpleRNN)
      .value("lstm", Cell::LSTM)
      .value("gru", Cell::GRU)
      .finalize();
  py::native_enum<Merge>(m, "Merge", "enum.IntEnum")
      .value("concat", Merge::Concat)
      .value("sum", Merge::Sum)
      .value("mul", Merge::Mul)
      .value("ave", Merge::Ave)
      .finalize();
  py::native_enum<MergeOp>(m, "MergeOp", "enum.IntEnum")
      .value("add", MergeOp::Add)
      .value("subtract", MergeOp::Subtract)
      .value("multiply", MergeOp::Multiply)
      .value("average", MergeOp::Average)
      .value("maximum", MergeOp::Maximum)
      .value("minimum", MergeOp::Minimum)
      .finalize();
  py::native_enum<UnaryOp>(m, "UnaryOp", "enum.IntEnum")
      .value("negative", UnaryOp::Negative)
      .value("abs", UnaryOp::Abs)
      .value("square", UnaryOp::Square)
      .value("sqrt", UnaryOp::Sqrt)
      .value("exp", UnaryOp::Exp)
      .value("log", UnaryOp::Log)
      .value("log1p", UnaryOp::Log1p)
      .value("sign", UnaryOp::Sign)
      .value("reciprocal", UnaryOp::Reciprocal)
      .value("clip", UnaryOp::Clip)
      .value("sin", UnaryOp::Sin)
      .value("cos", UnaryOp::Cos)
      .value("floor", UnaryOp::Floor)
      .value("round", UnaryOp::Round)
      .value("copy", UnaryOp::Copy)
      .finalize();
  py::native_enum<BinaryOp>(m, "BinaryOp", "enum.IntEnum")
      .value("add", BinaryOp::Add)
      .value("subtract", BinaryOp::Subtract)
      .value("multiply", BinaryOp::Multiply)
      .value("divide", BinaryOp::Divide)
      .value("maximum", BinaryOp::Maximum)
      .value("minimum", BinaryOp::Minimum)
      .value("power", BinaryOp::Power)
      .value("greater", BinaryOp::Greater)
      .value("greater_equal", BinaryOp::GreaterEqual)
      .value("less", BinaryOp::Less)
      .value("less_equal", BinaryOp::LessEqual)
      .value("equal", BinaryOp::Equal)
      .value("not_equal", BinaryOp::NotEqual)
      .value("first", BinaryOp::First)
      .finalize();
  py::native_enum<ReduceOp>(m, "ReduceOp", "enum.IntEnum")
      .value("sum", ReduceOp::Sum)
      .value("mean", ReduceOp::Mean)
      .value("max", ReduceOp::Max)
      .value("min", ReduceOp::Min)
      .finalize();
  py::native_enum<OpKind>(m, "OpKind", "enum.IntEnum")
      .value("unary", OpKind::Unary)
      .value("binary", OpKind::Binary)
      .value("reduce", OpKind::Reduce)
      .value("activation", OpKind::Activation)
      .value("reshape", OpKind::Reshape)
      .value("transpose", OpKind::Transpose)
      .finalize();
  py::native_enum<Interpolation>(m, "Interpolation", "enum.IntEnum")
      .value("bilinear", Interpolation::Bilinear)
      .value("nearest", Interpolation::Nearest)
      .value("bicubic", Interpolation::Bicubic)
      .value("lanczos3", Interpolation::Lanczos3)
      .value("lanczos5", Interpolation::Lanczos5)
      .finalize();
  py::native_enum<AugmentKind>(m, "AugmentKind", "enum.IntEnum")
      .value("flip", AugmentKind::Flip)
      .value("rotation", AugmentKind::Rotation)
      .value("translation", AugmentKind::Translation)
      .value("zoom", AugmentKind::Zoom)
      .value("crop", AugmentKind::Crop)
      .value("contrast", AugmentKind::Contrast)
      .value("brightness", AugmentKind::Brightness)
      .finalize();
  py::native_enum<FillMode>(m, "FillMode", "enum.IntEnum")
      .value("reflect", FillMode::Reflect)
      .value("wrap", FillMode::Wrap)
      .value("constant", FillMode::Constant)
      .value("nearest", FillMode::Nearest)
      .value("mirror", FillMode::Mirror)
      .finalize();
  py::class_<Augment>(m, "AugmentSpec")
      .def(py::init([](AugmentKind kind, std::array<float, 2> lo, std::array<float, 2> hi,
                       bool same_zoom, int flips, FillMode fill, float fill_value, bool bilinear,
                       float value_lo, float value_hi, int64_t height, int64_t width) {
             Augment a;
             a.kind = kind;
             a.lo[0] = lo[0], a.lo[1] = lo[1], a.hi[0] = hi[0], a.hi[1] = hi[1];
             a.same_zoom = same_zoom, a.flips = flips, a.fill = fill, a.fill_value = fill_value;
             a.bilinear = bilinear, a.value_lo = value_lo, a.value_hi = value_hi;
             a.oh = height, a.ow = width;
             return a;
           }),
           py::arg("kind"), py::arg("lo") = std::array<float, 2>{0.f, 0.f},
           py::arg("hi") = std::array<float, 2>{0.f, 0.f}, py::arg("same_zoom") = false,
           py::arg("flips") = 0, py::arg("fill") = FillMode::Reflect, py::arg("fill_value") = 0.f,
           py::arg("bilinear") = true, py::arg("value_lo") = 0.f, py::arg("value_hi") = 255.f,
           py::arg("height") = 0, py::arg("width") = 0);
  py::native_enum<OutputMode>(m, "OutputMode", "enum.IntEnum")
      .value("int", OutputMode::Int)
      .value("one_hot", OutputMode::OneHot)
      .value("multi_hot", OutputMode::MultiHot)
      .value("count", OutputMode::Count)
      .finalize();
  py::native_enum<Padding>(m, "Padding", "enum.IntEnum")
      .value("valid", Padding::Valid)
      .value("same", Padding::Same)
      .value("causal", Padding::Causal)
      .finalize();
  py::native_enum<Loss>(m, "Loss", "enum.IntEnum")
      .value("mean_squared_error", Loss::MeanSquaredError)
      .value("mean_absolute_error", Loss::MeanAbsoluteError)
      .value("huber", Loss::Huber)
      .value("binary_crossentropy", Loss::BinaryCrossentropy)
      .value("categorical_crossentropy", Loss::CategoricalCrossentropy)
      .value("sparse_categorical_crossentropy", Loss::SparseCategoricalCrossentropy)
      .value("hinge", Loss::Hinge)
      .value("given", Loss::Given)
      .finalize();
  py::native_enum<Metric>(m, "Metric", "enum.IntEnum")
      .value("binary_accuracy", Metric::BinaryAccuracy)
      .value("categorical_accuracy", Metric::CategoricalAccuracy)
      .value("sparse_categorical_accuracy", Metric::SparseCategoricalAccuracy)
      .value("mean_squared_error", Metric::MeanSquaredError)
      .value("mean_absolute_error", Metric::MeanAbsoluteError)
      .value("top_k_categorical_accuracy", Metric::TopKCategoricalAccuracy)
      .value("precision", Metric::Precision)
      .value("recall", Metric::Recall)
      .value("auc", Metric::AUC)
      .value("mean", Metric::Mean)
      .finalize();
  py::class_<MetricSpec>(m, "MetricSpec")
      .def(py::init([](Metric k, float threshold, int top_k, int num_thresholds) {
             return MetricSpec{k, threshold, top_k, num_thresholds};
           }),
           py::arg("kind"), py::arg("threshold") = 0.5f, py::arg("k") = 5,
           py::arg("num_thresholds") = 200)
      .def_readonly("kind", &MetricSpec::kind)
      .def_readwrite("weighted", &MetricSpec::weighted)
      .def_readwrite("output", &MetricSpec::output)
      .def_readwrite("program", &MetricSpec::program);
  py::native_enum<Opt>(m, "Opt", "enum.IntEnum")
      .value("SGD", Opt::SGD)
      .value("Adam", Opt::Adam)
      .value("AdamW", Opt::AdamW)
      .value("RMSprop", Opt::RMSprop)
      .value("Adagrad", Opt::Adagrad)
      .finalize();

  py::class_<ActSpec>(m, "ActSpec")
      .def(py::init([](Act k, double alpha) { return ActSpec{k, alpha}; }), py::arg("kind"),
           py::arg("alpha") = 0.0)
      .def_readwrite("kind", &ActSpec::kind)
      .def_readwrite("alpha", &ActSpec::alpha);
  py::class_<OpStep>(m, "OpStep")
      .def(py::init([](OpKind kind, int code, int a, int b, float p0, float p1, ActSpec act,
                       std::vector<int64_t> axes, bool keepdims) {
             return OpStep{kind, code, a, b, p0, p1, act, std::move(axes), keepdims};
           }),
           py::arg("kind"), py::arg("code") = 0, py::arg("a") = 0, py::arg("b") = -1,
           py::arg("p0") = 0.f, py::arg("p1") = 0.f, py::arg("act") = ActSpec{},
           py::arg("axes") = std::vector<int64_t>{}, py::arg("keepdims") = false);
  py::class_<OpConstant>(m, "OpConstant")
      .def(py::init([](std::vector<int64_t> shape, std::vector<float> values) {
        return OpConstant{std::move(shape), std::move(values)};
      }));
  py::class_<OutputProgram>(m, "OutputProgram")
      .def(py::init([](int64_t output, Shape labels, std::vector<OpStep> steps,
                       std::vector<OpConstant> constants) {
        return OutputProgram{output, std::move(labels), std::move(steps), std::move(constants)};
      }));
  py::class_<LossSpec>(m, "LossSpec")
      .def(py::init([](Loss k, bool from_logits, double delta, bool sum, double weight) {
             return LossSpec{k, from_logits, delta, sum, weight};
           }),
           py::arg("kind"), py::arg("from_logits") = false, py::arg("delta") = 1.0,
           py::arg("sum") = false, py::arg("weight") = 1.0)
      .def_readwrite("weight", &LossSpec::weight)
      .def_readwrite("program", &LossSpec::program);
  py::native_enum<Schedule>(m, "Schedule", "enum.IntEnum")
      .value("constant", Schedule::Constant)
      .value("exponential_decay", Schedule::ExponentialDecay)
      .value("piecewise_constant_decay", Schedule::PiecewiseConstantDecay)
      .value("cosine_decay", Schedule::CosineDecay)
      .finalize();
  py::class_<ScheduleSpec>(m, "ScheduleSpec")
      .def(py::init<>())
      .def_readwrite("kind", &ScheduleSpec::kind)
      .def_readwrite("initial_learning_rate", &ScheduleSpec::initial_learning_rate)
      .def_readwrite("decay_steps", &ScheduleSpec::decay_steps)
      .def_readwrite("decay_rate", &ScheduleSpec::decay_rate)
      .def_readwrite("staircase", &ScheduleSpec::staircase)
      .def_readwrite("boundaries", &ScheduleSpec::boundaries)
      .def_readwrite("values", &ScheduleSpec::values)
      .def_readwrite("alpha", &ScheduleSpec::alpha)
      .def_readwrite("warmup", &ScheduleSpec::warmup)
      .def_readwrite("warmup_target", &ScheduleSpec::warmup_target)
      .def_readwrite("warmup_steps", &ScheduleSpec::warmup_steps);
  m.def("schedule_value", &schedule_value);
  py::class_<OptSpec>(m, "OptSpec")
      .def(py::init<>())
      .def_readwrite("kind", &OptSpec::kind)
      .def_readwrite("learning_rate", &OptSpec::learning_rate)
      .def_readwrite("momentum", &OptSpec::momentum)
      .def_readwrite("nesterov", &OptSpec::nesterov)
      .def_readwrite("beta_1", &OptSpec::beta_1)
      .def_readwrite("beta_2", &OptSpec::beta_2)
      .def_readwrite("epsilon", &OptSpec::epsilon)
      .def_readwrite("rho", &OptSpec::rho)
      .def_readwrite("centered", &OptSpec::centered)
      .def_readwrite("weight_decay", &OptSpec::weight_decay)
      .def_readwrite("initial_accumulator_value", &OptSpec::initial_accumulator_value)
      .def_readwrite("clipnorm", &OptSpec::clipnorm)
      .def_readwrite("clipvalue", &OptSpec::clipvalue)
      .def_readwrite("global_clipnorm", &OptSpec::global_clipnorm)
      .def_readwrite("schedule", &OptSpec::schedule);
  m.def("optimizer_slots", &optimizer_slots);
  m.def("optimizer_slot_init", &optimizer_slot_init);

  // Kernels, in float32 (what training uses) and float64 (for gradient checks).
  m.def("activation", &activation<double>);
  m.def("activation", &activation<float>);
  m.def("activation_grad", &activation_grad<double>);
  m.def("activation_grad", &activation_grad<float>);
  m.def("loss", &loss<double>);
  m.def("loss", &loss<float>);
  m.def("optimizer_step", &optimizer_step<double>);
  m.def("optimizer_step", &optimizer_step<float>);
  // Value of a metric over one batch (a fresh state), for the function forms and tests.
  m.def("metric", [](const MetricSpec& spec, Arr<float> y_true, Arr<float> y_pred) {
    const int64_t cols = last_dim(y_pred), rows = cols ? y_pred.size() / cols : 0;
    if (rows == 0) throw std::invalid_argument("y_pred is empty");
    if (y_true.size() % rows != 0)
      throw std::invalid_argument("y_true and y_pred do not describe the same samples");
    std::vector<double> state(static_cast<size_t>(metric_state_size(spec)), 0.0);
    metric_update(spec, y_pred.data(), y_true.data(), nullptr, rows, cols, y_true.size() / rows,
                  state.data());
    return metric_result(spec, state.data());
  });
}

}  // namespace deepcore
