// The harness's Embedding ops (see harness.h): a table (input_dim, dim), float32 indices of
// any shape, and the gradient of the outputs (indices' shape + (dim,)).
#include "deepcore/embedding_maths.h"
#include "harness.h"

namespace deepcore {
namespace harness {
namespace {

// The indices' count, or ValueError.
int64_t index_count(const py::array& idx) {
  const int64_t n = static_cast<int64_t>(idx.size());
  if (n > kMaxElements) throw std::invalid_argument("too many indices");
  return n;
}

}  // namespace

void add_embedding(py::module_& m) {
  m.def(
      "device_embedding_forward",
      [](int device, const Arr<float>& table, const Arr<float>& idx) {
        matrix(table, "table");
        const int64_t input_dim = table.shape(0), dim = table.shape(1), n = index_count(idx);
        if (input_dim > kMaxEmbeddingRows) throw std::invalid_argument("table has too many rows");
        Dev d(device);
        DeviceArray<float> t = d.put(table), i = d.put(idx), out(d.be, n * dim);
        released([&] { d.be.embedding_forward(t.data(), i.data(), n, dim, input_dim, out.data()); });
        std::vector<py::ssize_t> shape = shape_of(idx);
        shape.push_back(static_cast<py::ssize_t>(dim));
        return released([&] {
          std::vector<float> host(static_cast<size_t>(n * dim));
          out.download(host.data(), n * dim);
          return host;
        });
      },
      py::arg("device"), py::arg("table"), py::arg("idx"),
      "The rows of table named by idx (shape idx.shape + (dim,)), as a flat list.");
  m.def(
      "device_embedding_backward",
      [](int device, const Arr<float>& idx, const Arr<float>& dy, int64_t input_dim) {
        const int64_t n = index_count(idx);
        if (input_dim < 1 || input_dim > kMaxEmbeddingRows)
          throw std::invalid_argument("input_dim must be in [1, 2**24]");
        if (dy.ndim() < 1 || dy.size() != n * dy.shape(dy.ndim() - 1) || dy.shape(dy.ndim() - 1) < 1)
          throw std::invalid_argument("dy must have shape idx.shape + (dim,)");
        const int64_t dim = dy.shape(dy.ndim() - 1);
        if (bounded_mul(input_dim, dim) < 0) throw std::invalid_argument("the table is too large");
        Dev d(device);
        DeviceArray<float> i = d.put(idx), g = d.put(dy), dt(d.be, input_dim * dim);
        released([&] {
          d.be.embedding_backward(i.data(), g.data(), n, dim, input_dim, dt.data());
        });
        return d.get(dt, {static_cast<py::ssize_t>(input_dim), static_cast<py::ssize_t>(dim)});
      },
      py::arg("device"), py::arg("idx"), py::arg("dy"), py::arg("input_dim"),
      "The table's gradient (input_dim, dim): dy's rows added into those idx names, in order.");
}

}  // namespace harness
}  // namespace deepcore
