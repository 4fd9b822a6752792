// Resizing and CenterCrop: the taps of each axis computed in float64 on the host when the
// layer is built, weighing pixels as Keras' backend resize does (its JAX backend's
// jax.image.resize), then applied by the backend's resample kernel.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "layers.h"

namespace deepcore {

namespace {

constexpr double kPi = 3.14159265358979323846;

double lanczos(double d, double radius) {
  if (d > radius) return 0.0;
  if (d <= 1e-3) return 1.0;
  return radius * std::sin(kPi * d) * std::sin(kPi * d / radius) / (kPi * kPi * d * d);
}

// The kernel at distance d >= 0 from the sample.
double kernel(Interpolation interp, double d) {
  switch (interp) {
    case Interpolation::Bicubic:  // Keys' cubic, a = -0.5
      if (d >= 2.0) return 0.0;
      if (d >= 1.0) return ((-0.5 * d + 2.5) * d - 4.0) * d + 2.0;
      return ((1.5 * d - 2.5) * d) * d + 1.0;
    case Interpolation::Lanczos3: return lanczos(d, 3.0);
    case Interpolation::Lanczos5: return lanczos(d, 5.0);
    default: return std::max(0.0, 1.0 - d);  // bilinear
  }
}

// The (m x n) weights resizing n positions to m, row-major: output i samples the input at
// (i + 0.5) * n / m - 0.5 (half-pixel centres), its weights divided by their sum, none for a
// sample outside [-0.5, n - 0.5]; with `antialias`, a shrinking axis's kernel is widened by
// n / m; "nearest" takes floor((i + 0.5) * n / m) in float32; an axis whose size does not
// change is copied.
std::vector<double> axis_weights(int64_t n, int64_t m, Interpolation interp, bool antialias) {
  std::vector<double> w(size_t(m * n), 0.0);
  if (n == m) {
    for (int64_t i = 0; i < n; ++i) w[size_t(i * n + i)] = 1.0;
    return w;
  }
  if (interp == Interpolation::Nearest) {
    const float scale = static_cast<float>(double(n) / double(m));
    for (int64_t i = 0; i < m; ++i) {
      const auto at = static_cast<int64_t>(std::floor((static_cast<float>(i) + 0.5f) * scale));
      w[size_t(i * n + std::min(at, n - 1))] = 1.0;
    }
    return w;
  }
  const double tiny = 1000.0 * std::numeric_limits<float>::epsilon();
  const double widen = antialias ? std::max(1.0, double(n) / double(m)) : 1.0;
  for (int64_t i = 0; i < m; ++i) {
    const double sample = (double(i) + 0.5) * double(n) / double(m) - 0.5;
    if (sample < -0.5 || sample > double(n) - 0.5) continue;
    double* row = w.data() + i * n;
    double total = 0.0;
    for (int64_t j = 0; j < n; ++j) total += row[j] = kernel(interp, std::abs(sample - double(j)) / widen);
    for (int64_t j = 0; j < n; ++j) row[j] = std::abs(total) > tiny ? row[j] / total : 0.0;
  }
  return w;
}

// The weights of a window of `size` positions starting at `start` of an axis of n (a crop
// when start >= 0, zero padding around the input when start < 0) resized to m: an (m x n)
// matrix over the input's own positions (padding reads nothing).
std::vector<double> window_weights(int64_t n, int64_t start, int64_t size, int64_t m,
                                   Interpolation interp, bool antialias) {
  const std::vector<double> inner = axis_weights(size, m, interp, antialias);
  std::vector<double> w(size_t(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = std::max<int64_t>(0, start); j < std::min(n, start + size); ++j)
      w[size_t(i * n + j)] = inner[size_t(i * size + j - start)];
  return w;
}

// The non-zero weights of each row of an (rows x cols) matrix, or of each column when
// `transposed`, in increasing order.
ResampleLayer::Taps taps_of(const std::vector<double>& w, int64_t rows, int64_t cols,
                            bool transposed) {
  ResampleLayer::Taps t;
  const int64_t outer = transposed ? cols : rows, inner = transposed ? rows : cols;
  t.start.push_back(0);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k = 0; k < inner; ++k) {
      const double v = transposed ? w[size_t(k * cols + o)] : w[size_t(o * cols + k)];
      if (v != 0.0) {
        t.index.push_back(static_cast<int32_t>(k));
        t.weight.push_back(static_cast<float>(v));
      }
    }
    t.start.push_back(static_cast<int32_t>(t.index.size()));
  }
  if (t.index.empty()) {  // (every weight zero: keep the arrays non-empty)
    t.index.push_back(0);
    t.weight.push_back(0.f);
  }
  return t;
}

}  // namespace

void ResampleLayer::build(const Shape& in) {
  if (in.size() != 3)
    throw std::invalid_argument(std::string(name()) +
                                " expects images of shape (height, width, channels), received " +
                                shape_str(in, true));
  const int64_t h = in[0], w = in[1];
  // The window of each axis that is resized to the output: (start, size).
  int64_t top = 0, left = 0, wh = h, ww = w;
  Interpolation interp = o_.interpolation;
  bool to_aspect = o_.crop_to_aspect_ratio;
  if (o_.center_crop) {
    interp = Interpolation::Bilinear;
    if (h >= height_ && w >= width_)  // a crop: the window is the output, copied
      top = (h - height_) / 2, left = (w - width_) / 2, wh = height_, ww = width_;
    else  // an image smaller than the crop: Keras resizes it cropped to the aspect ratio
      to_aspect = true;
  }
  if (to_aspect) {
    wh = std::max<int64_t>(std::min<int64_t>(h, int64_t(double(w * height_) / width_)), 1);
    ww = std::max<int64_t>(std::min<int64_t>(w, int64_t(double(h * width_) / height_)), 1);
    top = int64_t(double(h - wh) / 2), left = int64_t(double(w - ww) / 2);
  } else if (o_.pad_to_aspect_ratio) {
    // (Keras pads each side by half the difference, rounded down)
    top = -int64_t(double(std::max<int64_t>(h, int64_t(double(w * height_) / width_)) - h) / 2);
    left = -int64_t(double(std::max<int64_t>(w, int64_t(double(h * width_) / height_)) - w) / 2);
    wh = h - 2 * top, ww = w - 2 * left;
  }
  const std::vector<double> rows = window_weights(h, top, wh, height_, interp, o_.antialias);
  const std::vector<double> cols = window_weights(w, left, ww, width_, interp, o_.antialias);
  taps_[0] = taps_of(rows, height_, h, false);
  taps_[1] = taps_of(cols, width_, w, false);
  taps_[2] = taps_of(rows, height_, h, true);
  taps_[3] = taps_of(cols, width_, w, true);
  uploaded_ = nullptr;
  in_shape = in;
  out_shape = {height_, width_, in[2]};
}

void ResampleLayer::reserve(Backend& be, int64_t) {
  if (uploaded_ == &be) return;
  for (int i = 0; i < 4; ++i) {
    const Taps& t = taps_[i];
    DeviceTaps& d = device_[i];
    d.start.reserve(be, int64_t(t.start.size()));
    d.index.reserve(be, int64_t(t.index.size()));
    d.weight.reserve(be, int64_t(t.weight.size()));
    d.start.upload(t.start.data(), int64_t(t.start.size()));
    d.index.upload(t.index.data(), int64_t(t.index.size()));
    d.weight.upload(t.weight.data(), int64_t(t.weight.size()));
  }
  uploaded_ = &be;
}

Resample ResampleLayer::spec(bool backward) const {
  Resample r;
  const int64_t h = in_shape[0], w = in_shape[1], c = in_shape[2];
  r.c = c;
  r.h = backward ? height_ : h, r.w = backward ? width_ : w;
  r.oh = backward ? h : height_, r.ow = backward ? w : width_;
  const int k = backward ? 2 : 0;
  const auto view = [&](const DeviceTaps& d) {
    return AxisTaps{d.start.data(), d.index.data(), d.weight.data()};
  };
  r.y = view(device_[k]);
  r.x = view(device_[k + 1]);
  return r;
}

void ResampleLayer::forward(Backend& be, const float* x, float* y, int64_t rows, bool,
                            const uint64_t*) {
  be.resample(spec(false), x, rows, y);
}

void ResampleLayer::backward(Backend& be, const float*, const float*, const float* dy, float* dx,
                             int64_t rows, bool) {
  if (dx) be.resample(spec(true), dy, rows, dx);
}

}  // namespace deepcore

namespace deepcore {

const char* AugmentLayer::name() const {
  static const char* names[] = {"RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom",
                                "RandomCrop", "RandomContrast", "RandomBrightness"};
  return names[int(a_.kind)];
}

void AugmentLayer::build(const Shape& in) {
  if (in.size() != 3)
    throw std::invalid_argument(std::string(name()) +
                                " expects images of shape (height, width, channels), received " +
                                shape_str(in, true));
  a_.h = in[0], a_.w = in[1], a_.c = in[2];
  if (a_.kind == AugmentKind::Crop) {
    random_crop_ = a_.h > a_.oh && a_.w > a_.ow;
    ResampleLayer::Options o;
    o.crop_to_aspect_ratio = true;
    resize_ = std::make_unique<ResampleLayer>(a_.oh, a_.ow, o);
    resize_->build(in);
  } else {
    a_.oh = a_.h, a_.ow = a_.w;
  }
  in_shape = in;
  out_shape = {a_.oh, a_.ow, a_.c};
}

std::vector<Shape> AugmentLayer::scratch_shapes() const {
  if (a_.kind == AugmentKind::Contrast) return {{a_.c}};
  return {};
}

void AugmentLayer::reserve(Backend& be, int64_t rows) {
  if (a_.kind == AugmentKind::Contrast) means_.reserve(be, rows * a_.c);
  if (resize_) resize_->reserve(be, rows);
}

void AugmentLayer::forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
                           const uint64_t* seed) {
  if (resize_ && !(training && random_crop_)) {
    resize_->forward(be, x, y, rows, training, seed);
    return;
  }
  if (!training) {
    be.copy(y, x, sizeof(float) * size_t(rows * shape_size(in_shape)));
    return;
  }
  const float* means = nullptr;
  if (a_.kind == AugmentKind::Contrast) {  // the mean over each image's pixels, per channel
    Reduction r;
    r.rank = 4;
    r.dims[0] = rows, r.dims[1] = a_.h, r.dims[2] = a_.w, r.dims[3] = a_.c;
    r.reduced[1] = r.reduced[2] = true;
    be.reduce(ReduceOp::Mean, r, x, means_.data());
    means = means_.data();
  }
  be.augment(a_, seed, x, means, rows, y);
}

void AugmentLayer::backward(Backend& be, const float*, const float*, const float*, float* dx,
                            int64_t rows, bool) {
  if (dx) be.fill(dx, 0.f, rows * shape_size(in_shape));  // (nothing before it is trained)
}

}  // namespace deepcore
