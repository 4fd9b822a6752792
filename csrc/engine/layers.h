// Engine layers: forward and backward of each layer side by side. Internal header.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "deepcore/backend.h"
#include "deepcore/kernels.h"

namespace deepcore {

// A shape for messages: "(2, 3)", "(5,)", or with the batch axis "(None, 2, 3)".
std::string shape_str(const Shape& s, bool with_batch = false);

// The window of a 1-D layer (Conv1D, 1-D pooling) over input (steps, channels), or
// invalid_argument naming `layer` and `what` ("kernel", "pool") when it does not fit.
Window2D build_window_1d(const char* layer, const char* what, const Shape& in, int64_t k,
                         int64_t stride, int64_t dilation, Padding padding);

class Layer {
 public:
  virtual ~Layer() = default;
  virtual const char* name() const = 0;
  // Sets out_shape from in_shape; throws std::invalid_argument on a bad shape.
  virtual void build(const Shape& in) {
    in_shape = in;
    out_shape = in;
  }
  virtual std::vector<Shape> param_shapes() const { return {}; }
  // Points the layer at its slices of the flat weight and gradient buffers.
  virtual void bind(float* /*w*/, float* /*g*/) {}
  // Non-trainable state (e.g. moving statistics): shapes and binding.
  virtual std::vector<Shape> state_shapes() const { return {}; }
  virtual void bind_state(float* /*s*/) {}
  // Per-sample shapes of the layer's scratch buffers beyond its input and output
  // (Conv2D's im2col), which the model checks against kMaxElements.
  virtual std::vector<Shape> scratch_shapes() const { return {}; }
  // Scratch for batches of up to `rows` samples, in the backend's memory.
  virtual void reserve(Backend& /*be*/, int64_t /*rows*/) {}
  virtual void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
                       const uint64_t* seed) = 0;
  // dy: gradient wrt the output, or wrt the pre-activation when `dy_is_preact`
  // (a loss fused with the activation). dx may be null (first layer).
  virtual void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                        int64_t rows, bool dy_is_preact) = 0;
  // The activation that ends this layer, and the values it was applied to.
  virtual ActSpec activation() const { return {}; }
  // A seed of the layer's own (Keras' `seed=`): its random draws then depend on it and
  // on the training step only, not on the model's random stream.
  virtual std::optional<uint64_t> own_seed() const { return std::nullopt; }
  virtual const float* preact(const float* x, const float* y) const { return y; }

  // Keras' sequence masks: (rows, steps) values, 1 for a step to use and 0 for padding. A layer
  // that makes one (Embedding with mask_zero, Masking) fills it in its forward pass; a layer
  // that reads one (recurrent layers, GlobalAveragePooling1D) is pointed at its maker by the
  // model and reads it in its own passes (the maker's buffer: the same address every batch).
  virtual bool makes_mask() const { return false; }
  virtual const float* output_mask() const { return nullptr; }
  virtual bool takes_mask() const { return false; }
  virtual void set_mask_source(const Layer* maker) { mask_source_ = maker; }
  const float* input_mask() const { return mask_source_ ? mask_source_->output_mask() : nullptr; }

  // A layer of several inputs (the merge layers) takes their shapes, values and gradients in
  // order through these; the model calls the others with one input through build, forward
  // and backward (what these do by default).
  virtual bool multi_input() const { return false; }
  virtual void build_inputs(const std::vector<Shape>& ins) { build(ins.at(0)); }
  virtual void forward_inputs(Backend& be, const std::vector<const float*>& xs, float* y,
                              int64_t rows, bool training, const uint64_t* seed) {
    forward(be, xs.at(0), y, rows, training, seed);
  }
  // dxs[k]: null when input k needs no gradient (the model's input).
  virtual void backward_inputs(Backend& be, const std::vector<const float*>& xs, const float* y,
                               const float* dy, const std::vector<float*>& dxs, int64_t rows,
                               bool dy_is_preact) {
    backward(be, xs.at(0), y, dy, dxs.at(0), rows, dy_is_preact);
  }

  // Keras' trainable=False: the model leaves the layer's weights as they are, and a layer
  // whose maths depends on it (BatchNormalization: its moving statistics) runs as in inference.
  virtual void set_frozen(bool frozen) { frozen_ = frozen; }
  bool frozen() const { return frozen_; }

  Shape in_shape, out_shape;

 protected:
  bool frozen_ = false;

 private:
  const Layer* mask_source_ = nullptr;
};

// y = act(a W + b) for a matrix a (m x k) and kernel W (k x n): the maths Dense and
// Conv2D share once their input is a matrix (Conv2D's is its im2col).
class AffineLayer : public Layer {
 public:
  AffineLayer(ActSpec act, bool use_bias) : act_(act), use_bias_(use_bias) {}
  ActSpec activation() const override { return act_; }
  const float* preact(const float*, const float* y) const override {
    return keeps_z() ? z_.data() : y;
  }

 protected:
  void bind_affine(float* w, float* g, int64_t kernel_size);
  void reserve_affine(Backend& be, int64_t m, int64_t n);
  // Rows [row0, row0 + m) of the output y (and of z): a's m rows times the weights.
  void forward_affine(Backend& be, const float* a, int64_t m, int64_t k, int64_t n, float* y,
                      int64_t row0 = 0);
  // Parameter gradients, and da = dz W^T when da is not null.
  void backward_affine(Backend& be, const float* a, const float* y, const float* dy, float* da,
                       int64_t m, int64_t k, int64_t n, bool dy_is_preact);

  // The pre-activation z is kept for the backward pass unless the activation's
  // derivative is known from its output (linear; relu: z > 0 exactly when y > 0).
  bool keeps_z() const { return act_.kind != Act::Linear && act_.kind != Act::Relu; }

  ActSpec act_;
  bool use_bias_;
  float *w_ = nullptr, *b_ = nullptr, *gw_ = nullptr, *gb_ = nullptr;
  DeviceArray<float> z_, dz_;
};

class Dense final : public AffineLayer {
 public:
  Dense(int64_t units, ActSpec act, bool use_bias) : AffineLayer(act, use_bias), units_(units) {}
  const char* name() const override { return "Dense"; }
  void build(const Shape& in) override;
  std::vector<Shape> param_shapes() const override;
  void bind(float* w, float* g) override { bind_affine(w, g, in_ * units_); }
  void reserve(Backend& be, int64_t rows) override {
    reserve_affine(be, rows * rows_per_sample_, units_);
  }
  void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
               const uint64_t* seed) override;
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                int64_t rows, bool dy_is_preact) override;

 private:
  int64_t units_, in_ = 0, rows_per_sample_ = 1;
};

class Activation final : public Layer {
 public:
  explicit Activation(ActSpec act) : act_(act) {}
  const char* name() const override { return "Activation"; }
  void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
               const uint64_t* seed) override;
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                int64_t rows, bool dy_is_preact) override;
  ActSpec activation() const override { return act_; }
  const float* preact(const float* x, const float*) const override { return x; }

 private:
  ActSpec act_;
};

class Dropout final : public Layer {
 public:
  Dropout(float rate, std::optional<uint64_t> seed) : rate_(rate), seed_(seed) {}
  const char* name() const override { return "Dropout"; }
  std::optional<uint64_t> own_seed() const override { return seed_; }
  void reserve(Backend& be, int64_t rows) override;
  void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
               const uint64_t* seed) override;
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                int64_t rows, bool dy_is_preact) override;

 private:
  float rate_;
  std::optional<uint64_t> seed_;
  bool active_ = false;  // whether the last forward dropped anything
  DeviceArray<float> mask_;
};

// Conv2D over NHWC images: im2col, then the same GEMM and fused bias + activation as Dense.
class Conv2D final : public AffineLayer {
 public:
  Conv2D(int64_t filters, int64_t kh, int64_t kw, int64_t sh, int64_t sw, bool same, ActSpec act,
         bool use_bias)
      : AffineLayer(act, use_bias), filters_(filters), kh_(kh), kw_(kw), sh_(sh), sw_(sw),
        same_(same) {}
  const char* name() const override { return "Conv2D"; }
  void build(const Shape& in) override;
  std::vector<Shape> param_shapes() const override;
  std::vector<Shape> scratch_shapes() const override { return {{g_.oh, g_.ow, kh_, kw_, g_.c}}; }
  void bind(float* w, float* g) override { bind_affine(w, g, kh_ * kw_ * g_.c * filters_); }
  void reserve(Backend& be, int64_t rows) override;
  void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
               const uint64_t* seed) override;
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                int64_t rows, bool dy_is_preact) override;
  // Inference whose outputs only max pooling over windows `pool` reads (see Model::forward):
  // y = the pooled outputs, where the backend fuses_conv_maxpool.
  ConvPool pooled(const Window2D& pool) const { return {g_, pool, filters_, act_, w_, b_}; }
  // Max pooling over windows of one position: the convolution's outputs themselves.
  Window2D each_position() const;
  void forward_pooled(Backend& be, const float* x, float* y, int64_t rows, const Window2D& pool);

 private:
  int64_t filters_, kh_, kw_, sh_, sw_;
  bool same_;
  Window2D g_;
  DeviceArray<float> cols_;
};

// MaxPooling2D and AveragePooling2D; with `one_d`, MaxPooling1D and AveragePooling1D over
// (steps, channels) sequences (a window of height 1: ph = sh = 1).
// Max or average pooling: 2-D windows over images, 1-D windows over sequences, or one
// window over a whole sequence (GlobalMaxPooling1D, GlobalAveragePooling1D).
class Pool2D final : public Layer {
 public:
  enum class Kind { Image, Sequence, GlobalSequence };
  Pool2D(bool max, int64_t ph, int64_t pw, int64_t sh, int64_t sw, bool same,
         Kind kind = Kind::Image, bool keepdims = false)
      : max_(max), kind_(kind), keepdims_(keepdims), ph_(ph), pw_(pw), sh_(sh), sw_(sw),
        same_(same) {}
  const char* name() const override {
    switch (kind_) {
      case Kind::Sequence:
        return max_ ? "MaxPooling1D" : "AveragePooling1D";
      case Kind::GlobalSequence:
        return max_ ? "GlobalMaxPooling1D" : "GlobalAveragePooling1D";
      default:
        return max_ ? "MaxPooling2D" : "AveragePooling2D";
    }
  }
  // GlobalAveragePooling1D averages over the steps its mask keeps (Keras).
  bool takes_mask() const override { return kind_ == Kind::GlobalSequence && !max_; }
  void build(const Shape& in) override;
  void reserve(Backend& be, int64_t rows) override;
  void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
               const uint64_t* seed) override;
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                int64_t rows, bool dy_is_preact) override;
  // The window of max pooling over images whose windows do not overlap (strides equal to the
  // pool size, no padding: each input in at most one window), else null.
  const Window2D* disjoint_max_window() const {
    const bool disjoint = kind_ == Kind::Image && max_ && !same_ && ph_ == sh_ && pw_ == sw_;
    return disjoint ? &g_ : nullptr;
  }

 private:
  bool max_;
  Kind kind_;
  bool keepdims_;
  int64_t ph_, pw_, sh_, sw_;
  bool same_;
  Window2D g_;
  DeviceArray<int32_t> argmax_;
};

// Conv1D over (steps, channels) sequences: a Conv2D of height 1 whose window may be
// dilated and padded causally (all the padding on the left).
class Conv1D final : public AffineLayer {
 public:
  Conv1D(int64_t filters, int64_t k, int64_t stride, int64_t dilation, Padding padding,
         ActSpec act, bool use_bias)
      : AffineLayer(act, use_bias), filters_(filters), k_(k), stride_(stride),
        dilation_(dilation), padding_(padding) {}
  const char* name() const override { return "Conv1D"; }
  void build(const Shape& in) override;
  std::vector<Shape> param_shapes() const override;
  std::vector<Shape> scratch_shapes() const override { return {{g_.ow, k_, g_.c}}; }
  void bind(float* w, float* g) override { bind_affine(w, g, k_ * g_.c * filters_); }
  void reserve(Backend& be, int64_t rows) override;
  void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
               const uint64_t* seed) override;
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                int64_t rows, bool dy_is_preact) override;

 private:
  int64_t filters_, k_, stride_, dilation_;
  Padding padding_;
  Window2D g_;
  DeviceArray<float> cols_;
};

// UpSampling1D: each step repeated `size` times, (steps, c) -> (steps * size, c).
class UpSampling1D final : public Layer {
 public:
  explicit UpSampling1D(int64_t size) : size_(size) {}
  const char* name() const override { return "UpSampling1D"; }
  void build(const Shape& in) override;
  void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
               const uint64_t* seed) override;
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                int64_t rows, bool dy_is_preact) override;

 private:
  int64_t size_;
};

// Resizing and CenterCrop (Keras' image layers): images (h, w, c) resampled to (height, width,
// c) through taps built for the input's size (resample_layers.cpp); the gradient gathers
// through the transposed taps.
class ResampleLayer final : public Layer {
 public:
  struct Options {
    bool center_crop = false;  // CenterCrop: a crop, or a resize when the image is smaller
    Interpolation interpolation = Interpolation::Bilinear;
    bool crop_to_aspect_ratio = false, pad_to_aspect_ratio = false, antialias = false;
  };
  ResampleLayer(int64_t height, int64_t width, Options o) : height_(height), width_(width), o_(o) {}
  const char* name() const override { return o_.center_crop ? "CenterCrop" : "Resizing"; }
  void build(const Shape& in) override;
  void reserve(Backend& be, int64_t rows) override;
  void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
               const uint64_t* seed) override;
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                int64_t rows, bool dy_is_preact) override;

  // One axis's taps on the host (compressed rows: resample_maths.h) and on the backend.
  struct Taps {
    std::vector<int32_t> start, index;
    std::vector<float> weight;
  };

 private:
  struct DeviceTaps {
    DeviceArray<int32_t> start, index;
    DeviceArray<float> weight;
  };
  Resample spec(bool backward) const;

  int64_t height_, width_;
  Options o_;
  Taps taps_[4];  // rows, columns; then their transposes (the gradient's)
  DeviceTaps device_[4];
  const Backend* uploaded_ = nullptr;
};

// Keras' augmentation layers (augment_maths.h): in training each image transformed with its
// own draws from the step's seed (or the layer's `seed=`), in inference passed through, but
// RandomCrop, which then resizes the largest centred window of the output's aspect ratio (as
// it does in training for images not larger than the crop). No gradient flows back: the
// model refuses trainable layers before an augmentation layer.
class AugmentLayer final : public Layer {
 public:
  AugmentLayer(const Augment& a, std::optional<uint64_t> seed) : a_(a), seed_(seed) {}
  const char* name() const override;
  void build(const Shape& in) override;
  std::vector<Shape> scratch_shapes() const override;
  std::optional<uint64_t> own_seed() const override { return seed_; }
  void reserve(Backend& be, int64_t rows) override;
  void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
               const uint64_t* seed) override;
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                int64_t rows, bool dy_is_preact) override;

 private:
  Augment a_;
  std::optional<uint64_t> seed_;
  bool random_crop_ = false;               // RandomCrop on images larger than the crop
  std::unique_ptr<ResampleLayer> resize_;  // RandomCrop's resize
  DeviceArray<float> means_;               // RandomContrast: each image's channel means
};

// Flatten and Reshape: the same values under another shape.
class Reshape final : public Layer {
 public:
  explicit Reshape(Shape target) : target_(std::move(target)) {}  // empty: flatten
  const char* name() const override { return target_.empty() ? "Flatten" : "Reshape"; }
  void build(const Shape& in) override;
  void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
               const uint64_t* seed) override;
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                int64_t rows, bool dy_is_preact) override;

 private:
  Shape target_;
};

// Mean over height and width: (h, w, c) -> (c).
class GlobalAveragePooling2D final : public Layer {
 public:
  const char* name() const override { return "GlobalAveragePooling2D"; }
  void build(const Shape& in) override;
  void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
               const uint64_t* seed) override;
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                int64_t rows, bool dy_is_preact) override;

 private:
  Window2D g_;
};

// Embedding: integer indices (carried as float32 values) of any shape -> the rows of a
// table (input_dim x output_dim) they name: (d1, ..., dk) -> (d1, ..., dk, output_dim).
// The indices get no gradient (dx is zero).
class Embedding final : public Layer {
 public:
  Embedding(int64_t input_dim, int64_t output_dim, bool mask_zero)
      : input_dim_(input_dim), dim_(output_dim), mask_zero_(mask_zero) {}
  const char* name() const override { return "Embedding"; }
  // mask_zero: index 0 is padding (the mask: index != 0).
  bool makes_mask() const override { return mask_zero_; }
  const float* output_mask() const override { return mask_zero_ ? mask_.data() : nullptr; }
  void reserve(Backend& be, int64_t rows) override;
  void build(const Shape& in) override;
  std::vector<Shape> param_shapes() const override { return {{input_dim_, dim_}}; }
  void bind(float* w, float* g) override {
    table_ = w;
    gtable_ = g;
  }
  void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
               const uint64_t* seed) override;
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                int64_t rows, bool dy_is_preact) override;

 private:
  int64_t input_dim_, dim_;
  bool mask_zero_;
  float *table_ = nullptr, *gtable_ = nullptr;
  DeviceArray<float> mask_;
};

// Masking (Keras): the positions (all axes but the last) whose features all equal `value`
// are padding: their outputs are 0 and the mask it makes says so.
class Masking final : public Layer {
 public:
  explicit Masking(float value) : value_(value) {}
  const char* name() const override { return "Masking"; }
  bool makes_mask() const override { return true; }
  const float* output_mask() const override { return mask_.data(); }
  void reserve(Backend& be, int64_t rows) override;
  void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
               const uint64_t* seed) override;
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                int64_t rows, bool dy_is_preact) override;

 private:
  int64_t positions() const { return shape_size(in_shape) / in_shape.back(); }
  float value_;
  DeviceArray<float> mask_;
};

// BatchNormalization over the last axis (Keras semantics): batch statistics in training,
// moving statistics (updated in training) in inference.
class BatchNormalization final : public Layer {
 public:
  BatchNormalization(double momentum, double epsilon, bool center, bool scale)
      : momentum_(momentum), epsilon_(epsilon), center_(center), scale_(scale) {}
  const char* name() const override { return "BatchNormalization"; }
  void build(const Shape& in) override;
  std::vector<Shape> param_shapes() const override;
  std::vector<Shape> state_shapes() const override { return {{c_}, {c_}}; }
  void bind(float* w, float* g) override;
  void bind_state(float* s) override;
  void reserve(Backend& be, int64_t rows) override;
  void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
               const uint64_t* seed) override;
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                int64_t rows, bool dy_is_preact) override;

 private:
  double momentum_, epsilon_;
  bool center_, scale_;
  int64_t c_ = 0;
  float *gamma_ = nullptr, *beta_ = nullptr, *ggamma_ = nullptr, *gbeta_ = nullptr;
  float *moving_mean_ = nullptr, *moving_var_ = nullptr;
  BatchNormSpec spec() const { return {c_, momentum_, epsilon_, used_batch_stats_}; }
  DeviceArray<float> xhat_, inv_std_;
  DeviceArray<double> scratch_;  // 3 values per channel (kernels.h)
  bool used_batch_stats_ = false;
};

// Keras' CategoryEncoding and Discretization: each value of a sample, or with `boundaries` its
// bucket (the number of boundaries at or below it), encoded over `depth` classes: as it is
// (Int), one-hot along a new last axis (replacing a last axis of 1), multi-hot or counted over
// the last axis. A value that is not a class 0..depth-1 encodes to zeros, as in Keras. No
// gradient flows back (the outputs are integers).
class EncodingLayer final : public Layer {
 public:
  EncodingLayer(int64_t depth, OutputMode mode, std::vector<float> boundaries)
      : depth_(depth), mode_(mode), boundaries_(std::move(boundaries)) {}
  const char* name() const override {
    return discretizes() ? "Discretization" : "CategoryEncoding";
  }
  void build(const Shape& in) override;
  std::vector<Shape> scratch_shapes() const override;
  void reserve(Backend& be, int64_t rows) override;
  void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
               const uint64_t* seed) override;
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                int64_t rows, bool dy_is_preact) override;

 private:
  bool discretizes() const { return mode_ == OutputMode::Int || !boundaries_.empty(); }
  // v (rows, the sample) against the constants c (n of them) along a new last axis.
  Strided against(int64_t rows, int64_t n) const;

  int64_t depth_;
  OutputMode mode_;
  std::vector<float> boundaries_;
  DeviceArray<float> classes_, bounds_, buckets_, cube_;
  const Backend* uploaded_ = nullptr;
};

// Keras' Normalization: y = (x - mean) / max(sqrt(variance), 1e-7), or with `invert`
// x * max(sqrt(variance), 1e-7) + mean, the statistics one per position along the kept axes
// of a sample (none kept: one for all) and broadcast over the others. Either fixed (the
// constructor's mean and variance: broadcast to the kept axes, aligned to the right) or the
// layer's states mean, variance and count (set by adapt, as Keras' non-trainable weights).
class NormalizationLayer final : public Layer {
 public:
  NormalizationLayer(std::vector<int64_t> axes, bool invert, std::optional<OpConstant> mean,
                     std::optional<OpConstant> variance)
      : axes_(std::move(axes)), invert_(invert), fixed_mean_(std::move(mean)),
        fixed_var_(std::move(variance)) {}
  const char* name() const override { return "Normalization"; }
  void build(const Shape& in) override;
  std::vector<Shape> state_shapes() const override;
  void bind_state(float* s) override;
  void reserve(Backend& be, int64_t rows) override;
  void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
               const uint64_t* seed) override;
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                int64_t rows, bool dy_is_preact) override;

 private:
  Strided strided(int64_t rows) const;
  void compute_denominator(Backend& be);

  std::vector<int64_t> axes_;
  bool invert_;
  std::optional<OpConstant> fixed_mean_, fixed_var_;
  Shape stats_;               // the kept axes' sizes (Keras' shape of mean and variance)
  Shape broadcast_;           // the sample's rank, 1 along the other axes
  std::vector<float> host_mean_, host_denominator_;  // fixed statistics, over stats_
  const float *mean_ = nullptr, *var_ = nullptr;
  DeviceArray<float> mean_values_, denominator_;
  const Backend* uploaded_ = nullptr;
};

// SimpleRNN, LSTM and GRU (reset_after) over (steps, features) sequences, Keras 3's
// equations and weights: kernel (features, G units), recurrent_kernel (units, G units), bias
// (G units; GRU: (2, 3 units), the input's then the recurrent's), G = 1, 4, 3. The input
// projections of all steps are one GEMM; each step is a recurrent GEMM and one fused
// per-element kernel (recurrent_maths.h); the backward pass runs the steps in reverse the
// same way and ends with one GEMM for the kernel's gradient and one for dx. With
// go_backwards the steps are read last to first and the outputs kept in that order.
//
// Dropout in training (Keras 3's, recurrent_dropout.cpp): `dropout` masks the input features
// and `recurrent_dropout` the state h_{t-1} before the recurrent GEMM, each mask drawn once per
// batch, the same at every step, 0 or 1 / (1 - rate). Without recurrent dropout one input mask
// serves all gates (Keras' implementation 2); with it, as Keras then switches to its
// implementation 1, every gate has its own input mask and its own state mask. The masks come
// from the dropout op's stream of the layer's seed: values [skip, skip + n_in) the input masks
// (rows, Mi, features), then n_rec values the state masks (rows, Mr, units), where skip =
// rows * stream_skip (the values Bidirectional's forward layer uses, so that the backward
// layer's masks differ from them).
class Recurrent final : public Layer {
 public:
  Recurrent(Cell cell, int64_t units, Act act, Act rec, bool use_bias, bool return_sequences,
            bool go_backwards, float dropout = 0.f, float recurrent_dropout = 0.f,
            std::optional<uint64_t> seed = std::nullopt)
      : cell_(cell), units_(units), act_(act), rec_(rec), use_bias_(use_bias),
        return_sequences_(return_sequences), go_backwards_(go_backwards), dropout_(dropout),
        rdropout_(recurrent_dropout), seed_(seed) {}
  const char* name() const override {
    return cell_ == Cell::LSTM ? "LSTM" : cell_ == Cell::GRU ? "GRU" : "SimpleRNN";
  }
  void build(const Shape& in) override;
  std::vector<Shape> param_shapes() const override;
  std::vector<Shape> scratch_shapes() const override;
  void bind(float* w, float* g) override;
  void reserve(Backend& be, int64_t rows) override;
  void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
               const uint64_t* seed) override;
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                int64_t rows, bool dy_is_preact) override;
  // Whether backward adds its dx to what dx holds (Bidirectional's second direction).
  void set_accumulate_dx(bool on) { accumulate_dx_ = on; }
  // A masked step keeps the states; its output is the kept state, or 0 with
  // zero_output_for_mask (Keras' RNN argument, which Bidirectional sets when it returns
  // sequences).
  bool takes_mask() const override { return true; }
  void set_zero_output_for_mask(bool on) { zero_output_ = on; }
  bool go_backwards() const { return go_backwards_; }
  int64_t units() const { return units_; }
  // The seed, when the layer draws masks (a layer without dropout takes no random values).
  std::optional<uint64_t> own_seed() const override {
    return dropout_ > 0 || rdropout_ > 0 ? seed_ : std::nullopt;
  }
  // The dropout stream's values per sample this layer draws (after build), and how many per
  // sample it skips before its own.
  int64_t mask_width() const { return in_masks() * in_ + rec_masks() * units_; }
  void set_stream_skip(int64_t per_row) { stream_skip_ = per_row; }

 private:
  int64_t gates() const { return gates_of(cell_); }
  bool states_apart() const;
  // The number of input masks (0, 1 or one per gate) and of state masks (0 or one per gate).
  int64_t in_masks() const { return dropout_ > 0 ? (rdropout_ > 0 ? gates() : 1) : 0; }
  int64_t rec_masks() const { return rdropout_ > 0 ? gates() : 0; }
  // Dropout (recurrent_dropout.cpp): draws the masks; the input projections z = (x * mask) W
  // + b; a step's recurrent GEMM on the masked h_{t-1} into out (ld ldc, beta 0 or 1); the
  // backward step's dh += (dr U^T) * mask and dU += (h_{t-1} * mask)^T dr; and dW, dx.
  void draw_masks(Backend& be, int64_t rows, const uint64_t* seed);
  void dropout_input_forward(Backend& be, const float* x, int64_t rows);
  void dropout_recurrent_gemm(Backend& be, const float* hp, int64_t rows, float* out,
                              int64_t ldc, float beta);
  void dropout_recurrent_backward(Backend& be, const float* hp, const float* dr, int64_t rows);
  void dropout_input_backward(Backend& be, const float* x, float* dx, int64_t rows);
  Cell cell_;
  int64_t units_, steps_ = 0, in_ = 0;
  Act act_, rec_;
  bool use_bias_, return_sequences_, go_backwards_, accumulate_dx_ = false, zero_output_ = false;
  float dropout_, rdropout_;
  std::optional<uint64_t> seed_;
  int64_t stream_skip_ = 0;
  // Whether the last forward pass masked the inputs, the states; where the masks lie (in
  // drop_: ones, the draws' discarded masks, then the input and the state draws).
  bool drop_in_ = false, drop_rec_ = false;
  const float *in_mask_ = nullptr, *rec_mask_ = nullptr;
  // xd: the masked inputs (or dx through one input mask); hd: h_{t-1} masked once per state
  // mask; hg: one mask's dr U^T.
  DeviceArray<float> drop_, xd_, hd_, hg_;
  float *w_ = nullptr, *wr_ = nullptr, *b_ = nullptr;
  float *gw_ = nullptr, *gwr_ = nullptr, *gb_ = nullptr;
  // z: the projections, then gates, then gradients (batch, steps, G units); h: the states
  // when the output holds only the last; c: LSTM's cell states or GRU's recurrent
  // candidates; dr: GRU's recurrent-side gradients; hr (GRU's), dh, dc: one step's; ut: the
  // recurrent kernel transposed, for the backward pass; dym: dy with the masked steps' rows
  // zeroed (zero_output_for_mask).
  DeviceArray<float> z_, h_, c_, dr_, hr_, dh_, dc_, ut_, dym_;
};

// Bidirectional: a forward and a backward (go_backwards) recurrent layer over the same input,
// each with its own weights (the forward layer's first), their outputs merged (kernels.h:
// BidirMerge) with the backward one's steps put back in forward order, as Keras does.
class Bidirectional final : public Layer {
 public:
  Bidirectional(Merge merge, std::unique_ptr<Recurrent> fwd, std::unique_ptr<Recurrent> bwd)
      : merge_(merge), fwd_(std::move(fwd)), bwd_(std::move(bwd)) {
    bwd_->set_accumulate_dx(true);
    fwd_->set_zero_output_for_mask(true);
    bwd_->set_zero_output_for_mask(true);
  }
  const char* name() const override { return "Bidirectional"; }
  // Both directions read the mask; returning sequences, their masked steps output 0 (Keras).
  bool takes_mask() const override { return true; }
  void set_mask_source(const Layer* maker) override {
    Layer::set_mask_source(maker);
    fwd_->set_mask_source(maker);
    bwd_->set_mask_source(maker);
  }
  // The forward layer's seed, else the backward one's: both draw from the one stream.
  std::optional<uint64_t> own_seed() const override {
    return fwd_->own_seed() ? fwd_->own_seed() : bwd_->own_seed();
  }
  void build(const Shape& in) override;
  std::vector<Shape> param_shapes() const override;
  std::vector<Shape> scratch_shapes() const override;
  void bind(float* w, float* g) override;
  void reserve(Backend& be, int64_t rows) override;
  void forward(Backend& be, const float* x, float* y, int64_t rows, bool training,
               const uint64_t* seed) override;
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                int64_t rows, bool dy_is_preact) override;

 private:
  BidirMerge spec(int64_t rows) const;
  Merge merge_;
  std::unique_ptr<Recurrent> fwd_, bwd_;
  // The two directions' outputs and their gradients.
  DeviceArray<float> ya_, yb_, da_, db_;
};

// A layer of several inputs: the model calls it through build_inputs, forward_inputs and
// backward_inputs only (its one-input forward and backward throw std::logic_error).
class MultiInputLayer : public Layer {
 public:
  bool multi_input() const override { return true; }
  void forward(Backend&, const float*, float*, int64_t, bool, const uint64_t*) override;
  void backward(Backend&, const float*, const float*, const float*, float*, int64_t,
                bool) override;
};

// A program of deepcore.ops over its inputs (kernels.h: OpStep, OpConstant): a Lambda layer,
// or ops called on a model's tensors. Its output is the last step's result.
class OpLayer final : public MultiInputLayer {
 public:
  OpLayer(std::vector<OpStep> steps, std::vector<OpConstant> constants)
      : steps_(std::move(steps)), constants_(std::move(constants)) {}
  const char* name() const override { return "Ops"; }
  void build_inputs(const std::vector<Shape>& ins) override;
  std::vector<Shape> scratch_shapes() const override;
  void reserve(Backend& be, int64_t rows) override;
  void forward_inputs(Backend& be, const std::vector<const float*>& xs, float* y, int64_t rows,
                      bool training, const uint64_t* seed) override;
  void backward_inputs(Backend& be, const std::vector<const float*>& xs, const float* y,
                       const float* dy, const std::vector<float*>& dxs, int64_t rows,
                       bool dy_is_preact) override;

 private:
  std::vector<OpStep> steps_;
  std::vector<OpConstant> constants_;
  // Per register: its sample shape, whether it has one per sample (not a constant), and
  // (the steps') values and gradients; the inputs' values are the layer's.
  std::vector<Shape> shapes_;
  std::vector<bool> batched_;
  std::vector<DeviceArray<float>> values_, grads_;
  DeviceArray<float> scratch_, summed_;  // a step's gradients before and after broadcasting
  std::vector<DeviceArray<float>> consts_;  // the constants, in the backend's memory
  int inputs_ = 0;
  int64_t largest_ = 1;  // values per sample of the largest register
  // Per register: whether its one reader's step writes its gradient (it is read once, and
  // not broadcast), or the readers add theirs (into zeros).
  std::vector<bool> written_;
  // Per step: the steps of the chain it begins (op_maths.h: a binary or unary step, then
  // unary steps each reading the one before and read by it alone), 0 inside a chain.
  std::vector<int> chain_len_;
  Chain chain_at(size_t head, int64_t rows) const;
  const float* reg(int r, const std::vector<const float*>& xs) const;
  Strided strided(const OpStep& s, int64_t rows) const;
  Strided permuted(const Shape& in, const std::vector<int64_t>& perm, int64_t rows,
                   bool inverse) const;
  // Adds g (of the step's output size) into register r's gradient, summed over the axes
  // along which r is broadcast.
  void add_grad(Backend& be, int r, const float* g, const Shape& out, float* into,
                int64_t rows);

};

// Keras' Add, Subtract, Multiply, Average, Maximum and Minimum over inputs of one shape.
class MergeLayer final : public MultiInputLayer {
 public:
  explicit MergeLayer(MergeOp op) : op_(op) {}
  const char* name() const override;
  void build_inputs(const std::vector<Shape>& ins) override;
  void forward_inputs(Backend& be, const std::vector<const float*>& xs, float* y, int64_t rows,
                      bool training, const uint64_t* seed) override;
  void backward_inputs(Backend& be, const std::vector<const float*>& xs, const float* y,
                       const float* dy, const std::vector<float*>& dxs, int64_t rows,
                       bool dy_is_preact) override;

 private:
  MergeOp op_;
  int count_ = 0;
};

// Keras' Concatenate(axis): inputs equal but along `axis` (of a sample's shape, negative
// from the end), joined along it.
class Concatenate final : public MultiInputLayer {
 public:
  explicit Concatenate(int64_t axis) : axis_(axis) {}
  const char* name() const override { return "Concatenate"; }
  void build_inputs(const std::vector<Shape>& ins) override;
  void forward_inputs(Backend& be, const std::vector<const float*>& xs, float* y, int64_t rows,
                      bool training, const uint64_t* seed) override;
  void backward_inputs(Backend& be, const std::vector<const float*>& xs, const float* y,
                       const float* dy, const std::vector<float*>& dxs, int64_t rows,
                       bool dy_is_preact) override;

 private:
  int64_t axis_;
  // Per sample: the blocks before the axis (outer), each input's values per block (width),
  // and their sum.
  int64_t outer_ = 1, total_ = 0;
  std::vector<int64_t> widths_;
};

// Keras' Dot(axes) over two inputs of a sample's rank 1 or 2: per sample, the product of
// the two matrices contracted along ax (of x) and ay (of y); a vector is a 1 x d matrix
// contracted along its d. Output (free of x, free of y), or (1,) for two vectors.
class DotLayer final : public MultiInputLayer {
 public:
  DotLayer(int64_t ax, int64_t ay, bool normalize) : ax_(ax), ay_(ay), normalize_(normalize) {}
  const char* name() const override { return "Dot"; }
  void build_inputs(const std::vector<Shape>& ins) override;
  void reserve(Backend& be, int64_t rows) override;
  void forward_inputs(Backend& be, const std::vector<const float*>& xs, float* y, int64_t rows,
                      bool training, const uint64_t* seed) override;
  void backward_inputs(Backend& be, const std::vector<const float*>& xs, const float* y,
                       const float* dy, const std::vector<float*>& dxs, int64_t rows,
                       bool dy_is_preact) override;

 private:
  int64_t ax_, ay_;
  bool normalize_;
  // Per sample: x (xr x xc), y (yr x yc); ta: x is contracted along its rows (A = x^T),
  // tb: y along its columns (B = y^T); out = A B, m x n with k contracted.
  int64_t xr_ = 0, xc_ = 0, yr_ = 0, yc_ = 0, m_ = 0, n_ = 0, k_ = 0;
  bool ta_ = false, tb_ = false;
  // Two vectors: x * y (rows x k), summed per row by one product with ones (k).
  DeviceArray<float> prod_, ones_;
  bool vectors() const { return xr_ == 1 && yr_ == 1; }
  // normalize: each input normalized (nx_, ny_) and their gradients (dnx_, dny_); the groups
  // of a sample's x and y along their axes, as (outer, n, inner) of l2_normalize.
  DeviceArray<float> nx_, ny_, dnx_, dny_;
  int64_t gx_[3] = {1, 1, 1}, gy_[3] = {1, 1, 1};
  // forward_inputs and backward_inputs on the inputs as the product takes them.
  void product(Backend& be, const float* x, const float* y, float* out, int64_t rows);
  void product_backward(Backend& be, const float* x, const float* y, const float* dy, float* dx,
                        float* dyin, int64_t rows);
};

}  // namespace deepcore
