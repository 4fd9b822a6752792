// The backend test harness (tests/test_backend_ops.py, tests/test_cuda.py,
// bench/bench_cuda.py): `_core.device_*` functions that run one Backend op on a chosen
// device (0: CPU, 1: CUDA, 2: guarded). The NumPy inputs are uploaded into DeviceArrays of
// that backend, the op runs without the GIL, the result is downloaded. Private:
// deepcore.cuda wraps what users need. One file per family of ops (harness_*.cpp), each
// adding its functions to the module.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "deepcore/backend.h"
#include "deepcore/kernels.h"

namespace deepcore {
namespace harness {

namespace py = pybind11;

// batch * the sizes, or ValueError when the count exceeds kMaxElements.
inline int64_t count(int64_t batch, const Shape& sizes, const char* what) {
  Shape s{batch};
  s.insert(s.end(), sizes.begin(), sizes.end());
  const int64_t n = bounded_size(s);
  if (n < 0) throw std::invalid_argument(std::string(what) + " would be too large");
  return n;
}

template <class T>
using Arr = py::array_t<T, py::array::c_style | py::array::forcecast>;

// A backend and the copies of NumPy arrays to and from its memory.
struct Dev {
  Backend& be;
  explicit Dev(int device) : be(get_backend(static_cast<Device>(device))) {}
  template <class T>
  DeviceArray<T> put(const Arr<T>& a) {
    DeviceArray<T> d(be, a.size());
    d.upload(a.data(), a.size());
    return d;
  }
  template <class T>
  py::array_t<T> get(const DeviceArray<T>& d, std::vector<py::ssize_t> shape) {
    py::array_t<T> out(shape);
    d.download(out.mutable_data(), d.size());
    return out;
  }
};

// f() with the GIL released (an op of the harness is one short call: no polling).
template <class F>
auto released(F&& f) -> decltype(f()) {
  py::gil_scoped_release unlocked;
  return f();
}

inline std::vector<py::ssize_t> shape_of(const py::array& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

// x's shape when it has `rank` axes, none of them empty (`layout` names them), or
// ValueError.
inline std::vector<int64_t> shape_with_rank(const py::array& x, int rank, const char* layout,
                                            const char* name) {
  if (x.ndim() != rank)
    throw std::invalid_argument(std::string(name) + " must be a " + std::to_string(rank) +
                                "-D array " + layout);
  std::vector<int64_t> s(x.shape(), x.shape() + rank);
  for (int64_t d : s)
    if (d < 1) throw std::invalid_argument(std::string(name) + " must not be empty");
  return s;
}

// A size in [1, kMaxElements], or ValueError.
inline void check_size(int64_t v, const char* name) {
  if (v < 1 || v > kMaxElements)
    throw std::invalid_argument(std::string(name) + " must be in [1, 2**31 - 1], received: " +
                                std::to_string(v));
}

inline void matrix(const py::array& a, const char* name) {
  if (a.ndim() != 2) throw std::invalid_argument(std::string(name) + " must be a matrix");
}

// harness.cpp: memory, GEMM, affine layers, activations, column sums.
void add_dense_ops(py::module_& m);
// harness_update.cpp: optimizer updates, penalties, clipping, multiply, dropout, row
// gathers, the loss total.
void add_update(py::module_& m);
// harness_losses.cpp: losses and metric updates.
void add_losses(py::module_& m);
// harness_conv.cpp: im2col / col2im, max and average pooling, batch normalization.
void add_conv(py::module_& m);
// harness_embedding.cpp: the Embedding gather and its gradient.
void add_embedding(py::module_& m);
// harness_conv1d.cpp: 1-D (dilated, causal) im2col / col2im, row repetition.
void add_conv1d(py::module_& m);
// harness_recurrent.cpp: one step of SimpleRNN, LSTM or GRU, forward and backward.
void add_recurrent(py::module_& m);
// harness_masking.cpp: sequence masks, masked rows, the masked mean over steps.
void add_masking(py::module_& m);
// Every family: what bindings.cpp calls.
void add_all(py::module_& m);

}  // namespace harness
}  // namespace deepcore
