// A model's architecture: its layers (add_*), how they connect (inputs, shared weights,
// masks), and the plan and allocation of their weights (plan, build). The passes and runs
// are model.cpp's.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "deepcore/embedding_maths.h"
#include "deepcore/model.h"
#include "deepcore/recurrent_maths.h"
#include "layers.h"

namespace deepcore {

// ------------------------------------------------------------------ building
static void check_not_built(bool built) {
  if (built) throw std::invalid_argument("cannot add layers to a model that is already built");
}

void Model::add_dense(int64_t units, ActSpec act, bool use_bias) {
  check_not_built(built_);
  if (units <= 0)
    throw std::invalid_argument("Dense units must be a positive integer, received: units=" +
                                std::to_string(units));
  layers_.push_back(std::make_unique<Dense>(units, act, use_bias));
}

void Model::add_activation(ActSpec act) {
  check_not_built(built_);
  layers_.push_back(std::make_unique<Activation>(act));
}

void Model::add_dropout(float rate, std::optional<uint64_t> seed) {
  check_not_built(built_);
  if (!(rate >= 0.f && rate < 1.f))
    throw std::invalid_argument("Dropout rate must be in [0, 1), received: rate=" +
                                std::to_string(rate));
  layers_.push_back(std::make_unique<Dropout>(rate, seed));
}

static void check_positive(const char* layer, const char* what, std::initializer_list<int64_t> v) {
  for (int64_t x : v)
    if (x <= 0)
      throw std::invalid_argument(std::string(layer) + ": " + what +
                                  " must be positive integers, received: " + std::to_string(x));
}

void Model::add_conv2d(int64_t filters, int64_t kh, int64_t kw, int64_t sh, int64_t sw, bool same,
                       ActSpec act, bool use_bias) {
  check_not_built(built_);
  check_positive("Conv2D", "filters", {filters});
  check_positive("Conv2D", "kernel_size", {kh, kw});
  check_positive("Conv2D", "strides", {sh, sw});
  layers_.push_back(std::make_unique<Conv2D>(filters, kh, kw, sh, sw, same, act, use_bias));
}

void Model::add_pool2d(bool max, int64_t ph, int64_t pw, int64_t sh, int64_t sw, bool same) {
  check_not_built(built_);
  check_positive(max ? "MaxPooling2D" : "AveragePooling2D", "pool_size and strides",
                 {ph, pw, sh, sw});
  layers_.push_back(std::make_unique<Pool2D>(max, ph, pw, sh, sw, same));
}

void Model::add_conv1d(int64_t filters, int64_t kernel_size, int64_t stride, int64_t dilation,
                       Padding padding, ActSpec act, bool use_bias) {
  check_not_built(built_);
  check_positive("Conv1D", "filters", {filters});
  check_positive("Conv1D", "kernel_size", {kernel_size});
  check_positive("Conv1D", "strides", {stride});
  check_positive("Conv1D", "dilation_rate", {dilation});
  if (stride > 1 && dilation > 1)
    throw std::invalid_argument("Conv1D: strides > 1 is not supported with dilation_rate > 1");
  layers_.push_back(
      std::make_unique<Conv1D>(filters, kernel_size, stride, dilation, padding, act, use_bias));
}

void Model::add_pool1d(bool max, int64_t pool_size, int64_t stride, bool same) {
  check_not_built(built_);
  check_positive(max ? "MaxPooling1D" : "AveragePooling1D", "pool_size and strides",
                 {pool_size, stride});
  layers_.push_back(std::make_unique<Pool2D>(max, 1, pool_size, 1, stride, same,
                                                   Pool2D::Kind::Sequence));
}

void Model::add_upsampling1d(int64_t size) {
  check_not_built(built_);
  check_positive("UpSampling1D", "size", {size});
  layers_.push_back(std::make_unique<UpSampling1D>(size));
}

void Model::add_reshape(const Shape& target) {
  check_not_built(built_);
  layers_.push_back(std::make_unique<Reshape>(target));
}

void Model::add_global_average_pooling2d() {
  check_not_built(built_);
  layers_.push_back(std::make_unique<GlobalAveragePooling2D>());
}

void Model::add_batch_normalization(double momentum, double epsilon, bool center, bool scale) {
  check_not_built(built_);
  if (!(momentum >= 0 && momentum <= 1))
    throw std::invalid_argument("BatchNormalization momentum must be in [0, 1], received: " +
                                std::to_string(momentum));
  if (!(epsilon > 0))
    throw std::invalid_argument("BatchNormalization epsilon must be positive, received: " +
                                std::to_string(epsilon));
  layers_.push_back(std::make_unique<BatchNormalization>(momentum, epsilon, center, scale));
}

void Model::add_normalization(const std::vector<int64_t>& axes, bool invert,
                              const std::optional<OpConstant>& mean,
                              const std::optional<OpConstant>& variance) {
  check_not_built(built_);
  if (mean.has_value() != variance.has_value())
    throw std::invalid_argument("Normalization: mean and variance are given together");
  for (const auto& c : {mean, variance})
    if (c && int64_t(c->values.size()) != bounded_size(c->shape))
      throw std::invalid_argument("Normalization: a statistic of shape " + shape_str(c->shape) +
                                  " holds " + std::to_string(c->values.size()) + " values");
  if (mean && mean->shape != variance->shape)
    throw std::invalid_argument("Normalization: mean and variance of shapes " +
                                shape_str(mean->shape) + " and " + shape_str(variance->shape));
  layers_.push_back(std::make_unique<NormalizationLayer>(axes, invert, mean, variance));
}

void Model::add_resizing(int64_t height, int64_t width, Interpolation interpolation,
                         bool crop_to_aspect_ratio, bool pad_to_aspect_ratio, bool antialias) {
  check_not_built(built_);
  check_positive("Resizing", "height and width", {height, width});
  if (crop_to_aspect_ratio && pad_to_aspect_ratio)
    throw std::invalid_argument(
        "Resizing: only one of crop_to_aspect_ratio and pad_to_aspect_ratio can be true");
  ResampleLayer::Options o;
  o.interpolation = interpolation;
  o.crop_to_aspect_ratio = crop_to_aspect_ratio;
  o.pad_to_aspect_ratio = pad_to_aspect_ratio;
  o.antialias = antialias;
  layers_.push_back(std::make_unique<ResampleLayer>(height, width, o));
}

void Model::add_center_crop(int64_t height, int64_t width) {
  check_not_built(built_);
  check_positive("CenterCrop", "height and width", {height, width});
  ResampleLayer::Options o;
  o.center_crop = true;
  layers_.push_back(std::make_unique<ResampleLayer>(height, width, o));
}

void Model::add_augment(const Augment& a, std::optional<uint64_t> seed) {
  check_not_built(built_);
  if (a.kind == AugmentKind::Crop) check_positive("RandomCrop", "height and width", {a.oh, a.ow});
  for (int k = 0; k < 2; ++k)
    if (!(a.lo[k] <= a.hi[k]) || !std::isfinite(a.lo[k]) || !std::isfinite(a.hi[k]))
      throw std::invalid_argument("augmentation: a factor's range [" + std::to_string(a.lo[k]) +
                                  ", " + std::to_string(a.hi[k]) + "] is not a range");
  if (!(a.value_lo < a.value_hi))
    throw std::invalid_argument("augmentation: value_range must be (low, high) with low < high");
  layers_.push_back(std::make_unique<AugmentLayer>(a, seed));
}

void Model::add_encoding(int64_t depth, OutputMode mode, const std::vector<float>& boundaries) {
  check_not_built(built_);
  const char* layer = boundaries.empty() ? "CategoryEncoding" : "Discretization";
  check_positive(layer, "the number of classes", {depth});
  if (!boundaries.empty() && depth != int64_t(boundaries.size()) + 1)
    throw std::invalid_argument("Discretization: " + std::to_string(boundaries.size()) +
                                " boundaries make " + std::to_string(boundaries.size() + 1) +
                                " buckets, not " + std::to_string(depth));
  for (size_t i = 1; i < boundaries.size(); ++i)
    if (!(boundaries[i - 1] <= boundaries[i]))
      throw std::invalid_argument("Discretization: bin_boundaries must be sorted, received " +
                                  std::to_string(boundaries[i - 1]) + " before " +
                                  std::to_string(boundaries[i]));
  layers_.push_back(std::make_unique<EncodingLayer>(depth, mode, boundaries));
}

void Model::add_embedding(int64_t input_dim, int64_t output_dim, bool mask_zero) {
  check_not_built(built_);
  check_positive("Embedding", "input_dim and output_dim", {input_dim, output_dim});
  if (input_dim > kMaxEmbeddingRows)
    throw std::invalid_argument("Embedding: input_dim must be at most 2**24 = " +
                                std::to_string(kMaxEmbeddingRows) +
                                " (indices travel as float32 values), received: input_dim=" +
                                std::to_string(input_dim));
  layers_.push_back(std::make_unique<Embedding>(input_dim, output_dim, mask_zero));
}

void Model::add_masking(float value) {
  check_not_built(built_);
  layers_.push_back(std::make_unique<Masking>(value));
}

void Model::set_mask_source(int64_t layer, int64_t maker) {
  check_not_built(built_);
  const int64_t n = num_layers();
  if (maker < 0 || layer <= maker || layer >= n)
    throw std::out_of_range("set_mask_source: layers " + std::to_string(layer) + " and " +
                            std::to_string(maker) + " of " + std::to_string(n));
  Layer &reader = *layers_[size_t(layer)], &source = *layers_[size_t(maker)];
  if (!source.makes_mask())
    throw std::invalid_argument(std::string(source.name()) + " makes no mask");
  if (!reader.takes_mask())
    throw std::invalid_argument(std::string(reader.name()) + " cannot take a mask");
  reader.set_mask_source(&source);
}

void Model::set_output_mask_source(int64_t maker) {
  check_not_built(built_);
  if (maker < 0) {
    out_mask_ = nullptr;
    return;
  }
  if (maker >= num_layers() || !layers_[size_t(maker)]->makes_mask())
    throw std::invalid_argument("set_output_mask_source: layer " + std::to_string(maker) +
                                " makes no mask");
  out_mask_ = layers_[size_t(maker)].get();
}

void Model::add_merge(MergeOp op) {
  check_not_built(built_);
  layers_.push_back(std::make_unique<MergeLayer>(op));
}

void Model::add_dot(int64_t ax, int64_t ay, bool normalize) {
  check_not_built(built_);
  layers_.push_back(std::make_unique<DotLayer>(ax, ay, normalize));
}

void Model::add_ops(const std::vector<OpStep>& steps, const std::vector<OpConstant>& constants) {
  check_not_built(built_);
  layers_.push_back(std::make_unique<OpLayer>(steps, constants));
}

void Model::add_concatenate(int64_t axis) {
  check_not_built(built_);
  layers_.push_back(std::make_unique<Concatenate>(axis));
}

void Model::set_inputs(int64_t layer, const std::vector<int64_t>& values) {
  check_not_built(built_);
  if (layer < 0 || layer >= num_layers())
    throw std::out_of_range("set_inputs: layer " + std::to_string(layer) + " of " +
                            std::to_string(num_layers()));
  if (values.empty()) throw std::invalid_argument("set_inputs: a layer takes at least one value");
  for (int64_t v : values)
    if (v < -num_inputs() || v >= layer)
      throw std::invalid_argument("set_inputs: layer " + std::to_string(layer) +
                                  " cannot read value " + std::to_string(v) + " (the " +
                                  std::to_string(num_inputs()) +
                                  " inputs are -1, -2, ..., and a layer reads layers before it)");
  if (values.size() > 1 && !layers_[size_t(layer)]->multi_input())
    throw std::invalid_argument(std::string(layers_[size_t(layer)]->name()) +
                                " takes one input, received " + std::to_string(values.size()));
  inputs_.resize(layers_.size());
  inputs_[size_t(layer)] = values;
}

void Model::set_outputs(const std::vector<int64_t>& layers) {
  check_not_built(built_);
  if (layers.empty()) throw std::invalid_argument("set_outputs: a model has an output");
  for (int64_t v : layers)
    if (v < 0 || v >= num_layers())
      throw std::out_of_range("set_outputs: layer " + std::to_string(v) + " of " +
                              std::to_string(num_layers()));
  outputs_ = layers;
}

int64_t Model::output_layer(int64_t k) const {
  if (k < 0 || k >= num_outputs())
    throw std::out_of_range("output " + std::to_string(k) + " of " +
                            std::to_string(num_outputs()));
  return outputs_[size_t(k)];
}

void Model::set_label_columns(const std::vector<int64_t>& cols) {
  std::lock_guard<FairLock> lock(mutex_);
  if (!built_) throw std::invalid_argument("build the model before setting its labels");
  if (cols.size() != heads_.size())
    throw std::invalid_argument("the model has " + std::to_string(heads_.size()) +
                                " outputs, received label columns for " +
                                std::to_string(cols.size()));
  for (size_t h = 0; h < cols.size(); ++h)
    if (cols[h] <= 0 || cols[h] % heads_[h].per != 0)
      throw std::invalid_argument("output " + std::to_string(h) + " has " +
                                  std::to_string(heads_[h].per) +
                                  " loss values per sample, received labels of " +
                                  std::to_string(cols[h]) + " values per sample");
  for (size_t h = 0; h < cols.size(); ++h) heads_[h].ycols = cols[h];
}

void Model::set_weight_source(int64_t layer, int64_t source) {
  check_not_built(built_);
  if (layer < 0 || layer >= num_layers() || source < 0 || source >= layer)
    throw std::invalid_argument("set_weight_source: layer " + std::to_string(layer) +
                                " cannot use the weights of layer " + std::to_string(source));
  weight_source_.resize(layers_.size(), -1);
  weight_source_[size_t(layer)] = source;
}

void Model::set_input_shapes(const std::vector<Shape>& shapes) {
  check_not_built(built_);
  if (shapes.empty()) throw std::invalid_argument("set_input_shapes: a model has an input");
  for (const auto& in : inputs_)
    if (!in.empty())
      throw std::invalid_argument("set_input_shapes comes before set_inputs");
  input_shapes_ = shapes;
}

const Shape& Model::value_shape(int64_t v) const {
  if (v >= 0) return layers_[size_t(v)]->out_shape;
  return input_shapes_.size() > 1 ? input_shapes_[size_t(-1 - v)] : input_shape_;
}

void Model::add_global_pooling1d(bool max, bool keepdims) {
  check_not_built(built_);
  layers_.push_back(std::make_unique<Pool2D>(max, 1, 1, 1, 1, false,
                                                   Pool2D::Kind::GlobalSequence, keepdims));
}

// invalid_argument naming `layer` unless both rates are in [0, 1).
static void check_rnn_dropout(const char* layer, float dropout, float recurrent_dropout) {
  for (auto [what, rate] : {std::pair<const char*, float>{"dropout", dropout},
                            {"recurrent_dropout", recurrent_dropout}})
    if (!(rate >= 0.f && rate < 1.f))
      throw std::invalid_argument(std::string(layer) + ": " + what +
                                  " must be in [0, 1), received: " + std::to_string(rate));
}

void Model::add_recurrent(Cell cell, int64_t units, Act act, Act rec, bool use_bias,
                          bool return_sequences, bool go_backwards, float dropout,
                          float recurrent_dropout, std::optional<uint64_t> seed) {
  check_not_built(built_);
  const char* name = cell == Cell::LSTM ? "LSTM" : cell == Cell::GRU ? "GRU" : "SimpleRNN";
  check_positive(name, "units", {units});
  if (!recurrent_act_supported(act) || !recurrent_act_supported(rec))
    throw std::invalid_argument(std::string(name) +
                                ": activations must be tanh, sigmoid, hard_sigmoid, relu or "
                                "linear");
  check_rnn_dropout(name, dropout, recurrent_dropout);
  layers_.push_back(std::make_unique<Recurrent>(cell, units, act, rec, use_bias,
                                                return_sequences, go_backwards, dropout,
                                                recurrent_dropout, seed));
}

void Model::add_bidirectional(Merge merge, bool return_sequences, Cell cell, int64_t units,
                              Act act, Act rec, bool use_bias, bool go_backwards, Cell bcell,
                              int64_t bunits, Act bact, Act brec, bool buse_bias,
                              bool bgo_backwards, float dropout, float recurrent_dropout,
                              std::optional<uint64_t> seed, float bdropout,
                              float brecurrent_dropout, std::optional<uint64_t> bseed) {
  check_not_built(built_);
  check_positive("Bidirectional", "units", {units, bunits});
  if (!recurrent_act_supported(act) || !recurrent_act_supported(rec) ||
      !recurrent_act_supported(bact) || !recurrent_act_supported(brec))
    throw std::invalid_argument(
        "Bidirectional: activations must be tanh, sigmoid, hard_sigmoid, relu or linear");
  if (go_backwards == bgo_backwards)
    throw std::invalid_argument(
        "Bidirectional: the forward and backward layers need different go_backwards");
  check_rnn_dropout("Bidirectional", dropout, recurrent_dropout);
  check_rnn_dropout("Bidirectional", bdropout, brecurrent_dropout);
  layers_.push_back(std::make_unique<Bidirectional>(
      merge,
      std::make_unique<Recurrent>(cell, units, act, rec, use_bias, return_sequences, go_backwards,
                                  dropout, recurrent_dropout, seed),
      std::make_unique<Recurrent>(bcell, bunits, bact, brec, buse_bias, return_sequences,
                                  bgo_backwards, bdropout, brecurrent_dropout, bseed)));
}

namespace {

// The size of a tensor of `layer`, or invalid_argument naming it and its shape.
int64_t checked_size(const Shape& s, const char* what) {
  const int64_t n = bounded_size(s);
  if (n < 0)
    throw std::invalid_argument(std::string(what) + " " + shape_str(s) +
                                (std::any_of(s.begin(), s.end(), [](int64_t d) { return d <= 0; })
                                     ? " has a size that is not positive"
                                     : " holds more than " + std::to_string(kMaxElements) +
                                           " values"));
  return n;
}

// A CPU predict's piece: its activations and scratch within kPredictBytes (predict_rows_).
// Measured on one core with 2 MB of L2 (bench/bench_inference.py): the LeNet CNN's batch of
// 1,024 took 58 ms in pieces of 8 MB (26 images), 61 ms in 4 MB, 80 ms whole; the MNIST
// MLP's (6 KB a row) 8.0 ms in 8 MB or whole, 8.8 ms in 4 MB (each piece packs the weights
// again: pieces must stay large where rows are small).
constexpr int64_t kPredictBytes = int64_t(8) << 20;

}  // namespace

std::vector<Param> Model::plan(const Shape& input_shape) {
  std::lock_guard<FairLock> lock(mutex_);
  if (built_) throw std::invalid_argument("the model is already built");
  return plan_layers(input_shape);
}

std::vector<Param> Model::plan_layers(const Shape& input_shape) {
  if (layers_.empty()) throw std::invalid_argument("the model has no layers");
  // The wiring: layers not set take the one before them; who reads each value (the
  // outputs' losses too).
  const size_t L = layers_.size();
  inputs_.resize(L);
  readers_.assign(L, {});
  for (size_t i = 0; i < L; ++i) {
    if (inputs_[i].empty()) inputs_[i] = {static_cast<int64_t>(i) - 1};
    for (size_t k = 0; k < inputs_[i].size(); ++k)
      if (inputs_[i][k] >= 0) readers_[size_t(inputs_[i][k])].push_back({int64_t(i), k});
  }
  if (outputs_.empty()) outputs_ = {int64_t(L) - 1};
  for (size_t h = 0; h < outputs_.size(); ++h)
    readers_[size_t(outputs_[h])].push_back({int64_t(L + h), 0});
  for (size_t i = 0; i < L; ++i)
    if (readers_[i].empty())
      throw std::invalid_argument("layer #" + std::to_string(i) +
                                  ": its output is neither read by a layer nor the model's");
  if (out_mask_ && outputs_.size() > 1)
    throw std::invalid_argument("a mask reaches the output of a model of several outputs");
  weight_source_.resize(L, -1);
  std::vector<Param> params;
  int64_t total = 0, state_total = 0, per_sample = checked_size(input_shape, "input shape");
  int64_t row_floats = per_sample;  // a row's input, outputs and scratch, all layers together
  if (input_shapes_.size() > 1) {
    int64_t sum = 0;
    for (const Shape& s : input_shapes_) sum += checked_size(s, "input shape");
    if (input_shape != Shape{sum})
      throw std::invalid_argument("a model of " + std::to_string(input_shapes_.size()) +
                                  " inputs is built for their total size " +
                                  std::to_string(sum) + ", received " + shape_str(input_shape));
  }
  auto in_shape = [&](int64_t v) -> const Shape& {
    return input_shapes_.size() > 1 ? input_shapes_[size_t(-1 - v)] : input_shape;
  };
  for (size_t i = 0; i < L; ++i) {
    try {
      Layer& layer = *layers_[i];
      std::vector<Shape> ins;
      for (int64_t v : inputs_[i]) ins.push_back(v < 0 ? in_shape(v) : layers_[size_t(v)]->out_shape);
      if (layer.multi_input())
        layer.build_inputs(ins);
      else
        layer.build(ins[0]);
      per_sample = std::max(per_sample, checked_size(layer.out_shape, "output shape"));
      row_floats += shape_size(layer.out_shape);
      for (const Shape& sc : layer.scratch_shapes()) {
        per_sample = std::max(per_sample, checked_size(sc, "workspace per sample"));
        row_floats += shape_size(sc);
      }
      if (const int64_t src = weight_source_[i]; src >= 0) {
        const Layer& from = *layers_[size_t(src)];
        if (layer.param_shapes() != from.param_shapes() ||
            layer.state_shapes() != from.state_shapes())
          throw std::invalid_argument(std::string(layer.name()) +
                                      " uses the weights of layer #" + std::to_string(src) +
                                      ", whose shapes differ for its inputs");
        continue;  // its weights are the source's
      }
      for (bool trainable : {true, false}) {
        int64_t& sum = trainable ? total : state_total;
        for (const Shape& ps : trainable ? layer.param_shapes() : layer.state_shapes()) {
          params.push_back({static_cast<int64_t>(i), sum, ps, trainable});
          sum += checked_size(ps, "weight of shape");
          if (sum > kMaxElements)
            throw std::invalid_argument("the model's weights would hold more than " +
                                        std::to_string(kMaxElements) + " values");
        }
      }
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("layer #" + std::to_string(i) + ": " + e.what());
    }
  }
  max_per_sample_ = per_sample;
  predict_rows_ = std::max<int64_t>(1, kPredictBytes / (int64_t(sizeof(float)) * row_floats));
  heads_.clear();
  for (int64_t layer : outputs_) {
    Head h;
    h.layer = layer;
    const Shape& out = layers_[size_t(layer)]->out_shape;
    h.per = shape_size(out) / out.back();
    h.ycols = shape_size(out);
    heads_.push_back(std::move(h));
  }
  planned_ = true;
  return params;
}

void Model::build(const Shape& input_shape) {
  std::lock_guard<FairLock> lock(mutex_);
  if (built_) throw std::invalid_argument("the model is already built");
  params_ = plan_layers(input_shape);
  input_shape_ = input_shape;
  plan_gradients();
  int64_t total = 0, state_total = 0;
  std::vector<int64_t> first(layers_.size()), first_state(layers_.size());
  size_t k = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    first[i] = total;
    first_state[i] = state_total;
    for (; k < params_.size() && params_[k].layer == static_cast<int64_t>(i); ++k)
      (params_[k].trainable ? total : state_total) += shape_size(params_[k].shape);
  }
  // A layer using another's weights binds them, and gradients of its own (alias_grads_).
  aliases_.clear();
  int64_t alias_total = 0;
  for (size_t i = 0; i < layers_.size(); ++i)
    if (const int64_t src = weight_source_[i]; src >= 0) {
      int64_t n = 0;
      for (const Shape& s : layers_[i]->param_shapes()) n += shape_size(s);
      aliases_.push_back({alias_total, first[size_t(src)], n});
      alias_total += n;
    }
  weights_ = DeviceArray<float>(be_, total);
  grads_ = DeviceArray<float>(be_, total);
  states_ = DeviceArray<float>(be_, state_total);
  alias_grads_ = DeviceArray<float>(be_, alias_total);
  be_.fill(weights_.data(), 0.f, total);
  be_.fill(grads_.data(), 0.f, total);
  be_.fill(states_.data(), 0.f, state_total);
  be_.fill(alias_grads_.data(), 0.f, alias_total);
  for (size_t i = 0, a = 0; i < layers_.size(); ++i) {
    const int64_t src = weight_source_[i];
    const size_t from = src >= 0 ? size_t(src) : i;
    float* g = src >= 0 ? alias_grads_.data() + aliases_[a++].at : grads_.data() + first[i];
    layers_[i]->bind(weights_.data() + first[from], g);
    layers_[i]->bind_state(states_.data() + first_state[from]);
  }
  if (out_mask_ && shape_size(out_mask_->out_shape) / out_mask_->out_shape.back() !=
                       heads_[0].per)
    throw std::invalid_argument(
        "the mask made by " + std::string(out_mask_->name()) + " (one value per step of " +
        shape_str(out_mask_->out_shape, true) + ") reaches the output " +
        shape_str(layers_[size_t(heads_[0].layer)]->out_shape, true) +
        ", whose loss has a value per step of another shape");
  pools_next_.assign(layers_.size(), 0);
  for (size_t i = 0; i + 1 < layers_.size(); ++i) {
    const auto* conv = dynamic_cast<const Conv2D*>(layers_[i].get());
    const auto* pool = dynamic_cast<const Pool2D*>(layers_[i + 1].get());
    const Window2D* window = pool ? pool->disjoint_max_window() : nullptr;
    pools_next_[i] = conv && window && readers_[i].size() == 1 &&
                     readers_[i][0].first == int64_t(i + 1) &&
                     be_.fuses_conv_maxpool(conv->pooled(*window));
  }
  step_ = DeviceArray<StepValues>(be_, 1);
  seeds_ = DeviceArray<uint64_t>(be_, static_cast<int64_t>(layers_.size()));
  capacity_ = 0;
  built_ = true;
}

void Model::plan_gradients() {
  const size_t L = layers_.size(), H = heads_.size();
  grad_slot_.assign(L + H, {});
  slot_size_.clear();
  std::vector<int> free;
  auto take = [&](int64_t size) {  // the smallest free slot that holds it, else the largest
    int best = -1;
    for (int s : free) {
      const bool holds = slot_size_[size_t(s)] >= size;
      if (best < 0 || (holds && (slot_size_[size_t(best)] < size ||
                                 slot_size_[size_t(s)] < slot_size_[size_t(best)])) ||
          (!holds && slot_size_[size_t(best)] < size &&
           slot_size_[size_t(s)] > slot_size_[size_t(best)]))
        best = s;
    }
    if (best < 0) {
      slot_size_.push_back(size);
      return int(slot_size_.size()) - 1;
    }
    free.erase(std::find(free.begin(), free.end(), best));
    slot_size_[size_t(best)] = std::max(slot_size_[size_t(best)], size);
    return best;
  };
  needs_grad_.assign(L, false);
  for (size_t i = 0; i < L; ++i) {
    bool needs = !layers_[i]->param_shapes().empty() && !layers_[i]->frozen();
    for (int64_t v : inputs_[i]) needs = needs || (v >= 0 && needs_grad_[size_t(v)]);
    needs_grad_[i] = needs;
  }
  for (size_t h = 0; h < H; ++h) {  // the losses' gradients, made first
    const bool needs = needs_grad_[size_t(heads_[h].layer)];
    grad_slot_[L + h] = {needs ? take(shape_size(layers_[size_t(heads_[h].layer)]->out_shape)) : -1};
  }
  for (size_t i = L; i-- > 0;) {  // the backward pass's order
    grad_slot_[i].assign(inputs_[i].size(), -1);
    for (size_t k = 0; k < inputs_[i].size(); ++k) {
      const int64_t v = inputs_[i][k];
      if (v >= 0 && needs_grad_[size_t(v)]) grad_slot_[i][k] = take(shape_size(value_shape(v)));
    }
    for (const auto& [r, k] : readers_[i])  // read by layer i's backward pass: free again
      if (grad_slot_[size_t(r)][k] >= 0) free.push_back(grad_slot_[size_t(r)][k]);
  }
}

void Model::check_rows(int64_t rows) const {
  if (bounded_mul(rows, max_per_sample_) < 0)
    throw std::invalid_argument(
        "batch_size=" + std::to_string(rows) + " is too large for this model: its largest " +
        "buffer holds " + std::to_string(max_per_sample_) + " values per sample, and a batch " +
        "may hold at most " + std::to_string(kMaxElements) + " values; use a batch_size of at " +
        "most " + std::to_string(kMaxElements / max_per_sample_));
}

const Shape& Model::output_shape(int64_t layer) const {
  if (!built_ && !planned_) throw std::invalid_argument("the model is not built yet");
  if (layer < 0) layer += num_layers();
  if (layer < 0 || layer >= num_layers())
    throw std::out_of_range("layer index out of range: " + std::to_string(layer));
  return layers_[static_cast<size_t>(layer)]->out_shape;
}

void Model::set_regularizer(int64_t param, float l1, float l2) {
  std::lock_guard<FairLock> lock(mutex_);
  if (param < 0 || param >= static_cast<int64_t>(params_.size()))
    throw std::out_of_range("parameter index out of range: " + std::to_string(param));
  params_[static_cast<size_t>(param)].l1 = l1;
  params_[static_cast<size_t>(param)].l2 = l2;
  any_regularizer_ = std::any_of(params_.begin(), params_.end(),
                                 [](const Param& p) { return p.l1 != 0.f || p.l2 != 0.f; });
}

}  // namespace deepcore
