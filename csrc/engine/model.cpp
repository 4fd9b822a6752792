#include "deepcore/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "deepcore/embedding_maths.h"
#include "deepcore/recurrent_maths.h"
#include "deepcore/rng.h"
#include "layers.h"

namespace deepcore {

Dataset::Dataset(Backend& be, const float* x, const float* y, const float* w, int64_t rows,
                 int64_t in_size, int64_t ycols)
    : be_(&be), x_(x), y_(y), w_(w), rows_(rows), in_size_(in_size), ycols_(y ? ycols : 0) {
  if (be.host_memory()) return;
  auto put = [&](DeviceArray<float>& d, const float* host, int64_t n) -> const float* {
    if (!host) return nullptr;
    d = DeviceArray<float>(be, n);
    d.upload(host, n);
    return d.data();
  };
  x_ = put(dx_, x, rows * in_size);
  y_ = put(dy_, y, rows * ycols_);
  w_ = put(dw_, w, rows);
}

Model::Model(Device device) : be_(get_backend(device)) {}
Model::~Model() = default;

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

void Model::add_dot(int64_t ax, int64_t ay) {
  check_not_built(built_);
  layers_.push_back(std::make_unique<DotLayer>(ax, ay));
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

}  // namespace

std::vector<Param> Model::plan(const Shape& input_shape) {
  std::lock_guard<FairLock> lock(mutex_);
  if (built_) throw std::invalid_argument("the model is already built");
  return plan_layers(input_shape);
}

std::vector<Param> Model::plan_layers(const Shape& input_shape) {
  if (layers_.empty()) throw std::invalid_argument("the model has no layers");
  // The wiring: layers not set take the one before them; who reads each value.
  const size_t L = layers_.size();
  inputs_.resize(L);
  readers_.assign(L, {});
  for (size_t i = 0; i < L; ++i) {
    if (inputs_[i].empty()) inputs_[i] = {static_cast<int64_t>(i) - 1};
    for (size_t k = 0; k < inputs_[i].size(); ++k)
      if (inputs_[i][k] >= 0) readers_[size_t(inputs_[i][k])].push_back({int64_t(i), k});
  }
  for (size_t i = 0; i + 1 < L; ++i)
    if (readers_[i].empty())
      throw std::invalid_argument("layer #" + std::to_string(i) +
                                  ": its output is neither read by a layer nor the model's");
  std::vector<Param> params;
  int64_t total = 0, state_total = 0, per_sample = checked_size(input_shape, "input shape");
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
      for (const Shape& sc : layer.scratch_shapes())
        per_sample = std::max(per_sample, checked_size(sc, "workspace per sample"));
      weight_source_.resize(L, -1);
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
  planned_ = true;
  return params;
}

void Model::build(const Shape& input_shape) {
  std::lock_guard<FairLock> lock(mutex_);
  if (built_) throw std::invalid_argument("the model is already built");
  params_ = plan_layers(input_shape);
  input_shape_ = input_shape;
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
                       loss_rows_per_sample())
    throw std::invalid_argument(
        "the mask made by " + std::string(out_mask_->name()) + " (one value per step of " +
        shape_str(out_mask_->out_shape, true) + ") reaches the output " +
        shape_str(layers_.back()->out_shape, true) + ", whose loss has a value per step of " +
        "another shape");
  step_ = DeviceArray<StepValues>(be_, 1);
  seeds_ = DeviceArray<uint64_t>(be_, static_cast<int64_t>(layers_.size()));
  capacity_ = 0;
  built_ = true;
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

ActSpec Model::output_activation() const {
  return layers_.empty() ? ActSpec{} : layers_.back()->activation();
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

// ------------------------------------------------------------------- compile
void Model::compile(const LossSpec& loss, const OptSpec& opt,
                    const std::vector<MetricSpec>& metrics) {
  std::lock_guard<FairLock> lock(mutex_);
  if (!built_) throw std::invalid_argument("build the model before compiling it");
  loss_ = loss;
  opt_ = opt;
  metrics_ = metrics;
  // Probabilities followed by a cross-entropy: compute the loss from the logits
  // (log-sum-exp), so that saturated outputs keep finite losses and gradients.
  const Act last = output_activation().kind;
  const bool ce = loss.kind == Loss::CategoricalCrossentropy ||
                  loss.kind == Loss::SparseCategoricalCrossentropy;
  fused_loss_ = !loss.from_logits && ((last == Act::Softmax && ce) ||
                                      (last == Act::Sigmoid && loss.kind == Loss::BinaryCrossentropy));
  if (fused_loss_) loss_.from_logits = true;
  const int nslots = optimizer_slots(opt);
  const int64_t n = weights_.size();
  if (slots_.size() != nslots * n) slots_ = DeviceArray<float>(be_, nslots * n);
  for (int k = 0; k < nslots; ++k)
    be_.fill(slots_.data() + k * n, static_cast<float>(optimizer_slot_init(opt, k)), n);
  iterations_ = 0;
  compiled_ = true;
}

void Model::set_metrics(const std::vector<MetricSpec>& metrics) {
  std::lock_guard<FairLock> lock(mutex_);
  metrics_ = metrics;
}

void Model::set_learning_rate(double lr) {
  std::lock_guard<FairLock> lock(mutex_);
  opt_.learning_rate = lr;
  opt_.schedule.kind = Schedule::Constant;
}

double Model::learning_rate() const {
  std::lock_guard<FairLock> lock(mutex_);
  return current_learning_rate();
}

double Model::current_learning_rate() const {
  return opt_.schedule.kind == Schedule::Constant ? opt_.learning_rate
                                                  : schedule_value(opt_.schedule, iterations_);
}

int64_t Model::iterations() const {
  std::lock_guard<FairLock> lock(mutex_);
  return iterations_;
}

void Model::set_iterations(int64_t it) {
  std::lock_guard<FairLock> lock(mutex_);
  if (it < 0 || it >= kMaxIterations)
    throw std::invalid_argument("iterations must be in [0, 2**53), received: " +
                                std::to_string(it));
  iterations_ = it;
}

std::vector<float> Model::read(Buffer b) const {
  std::lock_guard<FairLock> lock(mutex_);
  const DeviceArray<float>& a = buffer(b);
  std::vector<float> out(static_cast<size_t>(a.size()));
  a.download(out.data(), a.size());
  return out;
}

void Model::write(Buffer b, const float* values, int64_t n) {
  std::lock_guard<FairLock> lock(mutex_);
  DeviceArray<float>& a = buffer(b);
  if (n != a.size())
    throw std::invalid_argument(std::string(b == Buffer::Weights  ? "the weights hold "
                                            : b == Buffer::States ? "the states hold "
                                                                  : "the optimizer state holds ") +
                                std::to_string(a.size()) + " values, received " +
                                std::to_string(n));
  a.upload(values, n);
}

void Model::set_seed(uint64_t seed) {
  std::lock_guard<FairLock> lock(mutex_);
  seed_ = seed;
}

uint64_t Model::seed() const {
  std::lock_guard<FairLock> lock(mutex_);
  return seed_;
}

void Model::set_draws(uint64_t draws) {
  std::lock_guard<FairLock> lock(mutex_);
  draws_ = draws;
}

uint64_t Model::draws() const {
  std::lock_guard<FairLock> lock(mutex_);
  return draws_;
}

void Model::check_compiled() const {
  if (!compiled_)
    throw std::invalid_argument("the model must be compiled before training or evaluating");
}

void Model::check_batch(int64_t n, int64_t ycols, int64_t batch_size) const {
  if (n <= 0) throw std::invalid_argument("received an empty dataset (0 samples)");
  if (batch_size <= 0)
    throw std::invalid_argument("batch_size must be positive, received: batch_size=" +
                                std::to_string(batch_size));
  if (ycols <= 0) throw std::invalid_argument("labels must have at least one value per sample");
}

// ----------------------------------------------------------------- workspace
void Model::reserve(int64_t rows) {
  if (rows <= capacity_) return;
  check_rows(rows);
  const size_t L = layers_.size();
  acts_.resize(L);
  gsum_.resize(L);
  dxs_.resize(L);
  for (size_t i = 0; i < L; ++i) {
    acts_[i].reserve(be_, rows * shape_size(layers_[i]->out_shape));
    if (readers_[i].size() > 1) gsum_[i].reserve(be_, rows * shape_size(layers_[i]->out_shape));
    dxs_[i].resize(inputs_[i].size());
    for (size_t k = 0; k < inputs_[i].size(); ++k)
      if (inputs_[i][k] >= 0) dxs_[i][k].reserve(be_, rows * shape_size(value_shape(inputs_[i][k])));
    layers_[i]->reserve(be_, rows);
  }
  xbuf_.reserve(be_, rows * shape_size(input_shape_));
  ins_.resize(input_shapes_.size() > 1 ? input_shapes_.size() : 0);
  for (size_t j = 0; j < ins_.size(); ++j) ins_[j].reserve(be_, rows * shape_size(input_shapes_[j]));
  dout_.reserve(be_, acts_.back().size());
  wbuf_.reserve(be_, rows);
  if (out_mask_) maskw_.reserve(be_, 2 * rows * loss_rows_per_sample());
  capacity_ = rows;
}

// ------------------------------------------------------------------- passes
const float* Model::forward(const float* x, int64_t rows, bool training,
                            const uint64_t* seeds) {
  // Several inputs: each one's columns of the batch's rows, contiguous.
  for (size_t j = 0, at = 0; j < ins_.size(); ++j) {
    const int64_t size = shape_size(input_shapes_[j]), total = shape_size(input_shape_);
    be_.mask_rows(x + at, total, nullptr, 0, rows, size, ins_[j].data(), size);
    at += size_t(size);
  }
  std::vector<const float*> xs;
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (!training) poll_interrupt();  // a training step is never left half-done
    const uint64_t* seed = seeds ? seeds + i : nullptr;
    if (layers_[i]->multi_input()) {
      xs.clear();
      for (int64_t v : inputs_[i]) xs.push_back(value(v, x));
      layers_[i]->forward_inputs(be_, xs, acts_[i].data(), rows, training, seed);
    } else {
      layers_[i]->forward(be_, value(inputs_[i][0], x), acts_[i].data(), rows, training, seed);
    }
  }
  return acts_.back().data();
}

// A value read once: its reader's gradient for it. Read more often: their sum.
const float* Model::value_grad(int64_t v, int64_t rows) {
  const auto& rd = readers_[size_t(v)];
  const float* first = dxs_[size_t(rd[0].first)][rd[0].second].data();
  if (rd.size() == 1) return first;
  float* sum = gsum_[size_t(v)].data();
  const int64_t n = rows * shape_size(layers_[size_t(v)]->out_shape);
  MergeInputs in;
  in.count = 2;
  in.x[0] = sum;
  be_.copy(sum, first, sizeof(float) * static_cast<size_t>(n));
  for (size_t r = 1; r < rd.size(); ++r) {
    in.x[1] = dxs_[size_t(rd[r].first)][rd[r].second].data();
    be_.merge_forward(MergeOp::Add, in, sum, n);
  }
  return sum;
}

void Model::fill_steps(int64_t count) {
  const int64_t L = static_cast<int64_t>(layers_.size());
  step_table_.reserve(be_, count);
  seed_table_.reserve(be_, count * L);
  const bool host = be_.host_memory();
  if (!host) {
    host_steps_.resize(static_cast<size_t>(count));
    host_seeds_.resize(static_cast<size_t>(count * L));
  }
  StepValues* steps = host ? step_table_.data() : host_steps_.data();
  uint64_t* seeds = host ? seed_table_.data() : host_seeds_.data();
  uint64_t draws = draws_;
  for (int64_t k = 0; k < count; ++k) {
    const int64_t it = iterations_ + k;
    const double lr = opt_.schedule.kind == Schedule::Constant
                          ? opt_.learning_rate
                          : schedule_value(opt_.schedule, it);
    steps[k] = StepValues{static_cast<float>(lr), it + 1};
    for (int64_t i = 0; i < L; ++i) {
      const std::optional<uint64_t> own = layers_[i]->own_seed();
      seeds[k * L + i] = own ? random_bits(*own, static_cast<uint64_t>(it))
                             : random_bits(seed_, draws++);
    }
  }
  if (!host) {
    step_table_.upload(steps, count);
    seed_table_.upload(seeds, count * L);
  }
}

void Model::load_step(int64_t k) {
  const int64_t L = static_cast<int64_t>(layers_.size());
  step_values_ = step_table_.data() + k;
  step_seeds_ = seed_table_.data() + k * L;
  if (be_.can_capture()) {
    be_.copy(step_.data(), step_values_, sizeof(StepValues));
    be_.copy(seeds_.data(), step_seeds_, seeds_.bytes());
    step_values_ = step_.data();
    step_seeds_ = seeds_.data();
  }
  for (const auto& layer : layers_)
    if (!layer->own_seed()) ++draws_;
}

// The loss's rows per sample: the positions of the output's last axis (steps for sequences).
int64_t Model::loss_rows_per_sample() const {
  const Shape& out = layers_.back()->out_shape;
  return shape_size(out) / out.back();
}

double Model::loss_scale(int64_t rows) const {
  return loss_.weight * (loss_.sum ? 1.0 : 1.0 / static_cast<double>(rows * loss_rows_per_sample()));
}

double Model::loss_and_backward(const float* x, const float* y, const float* w, int64_t rows,
                                int64_t ycols, bool backward, const uint64_t* seeds) {
  const float* out = forward(x, rows, backward, seeds);
  const size_t L = layers_.size();
  const Layer& last = *layers_.back();
  const int64_t cols = last.out_shape.back(), per = loss_rows_per_sample();
  const int64_t lrows = rows * per;
  const float* lw = w;  // the loss's weights
  if (out_mask_) {
    be_.mask_weights(out_mask_->output_mask(), w, rows, per, maskw_.data(),
                     maskw_.data() + lrows);
    lw = maskw_.data() + lrows;
  } else if (w && per != 1) {
    throw std::invalid_argument("sample weights need one loss value per sample");
  }
  const float* pred = fused_loss_ ? last.preact(value(inputs_[L - 1][0], x), out) : out;
  const double scale = loss_scale(rows);
  be_.loss(loss_, pred, fused_loss_ ? out : nullptr, y, lw, backward ? dout_.data() : nullptr,
           lrows, cols, ycols / per, static_cast<float>(scale), batch_.data());
  if (backward) {
    std::vector<const float*> xs;
    std::vector<float*> dxs;
    for (size_t i = L; i-- > 0;) {
      const float* dy = i == L - 1 ? dout_.data() : value_grad(int64_t(i), rows);
      const bool preact = fused_loss_ && i == L - 1;
      if (layers_[i]->multi_input()) {
        xs.clear();
        dxs.clear();
        for (size_t k = 0; k < inputs_[i].size(); ++k) {
          xs.push_back(value(inputs_[i][k], x));
          dxs.push_back(inputs_[i][k] >= 0 ? dxs_[i][k].data() : nullptr);
        }
        layers_[i]->backward_inputs(be_, xs, acts_[i].data(), dy, dxs, rows, preact);
      } else {
        const int64_t v = inputs_[i][0];
        layers_[i]->backward(be_, value(v, x), acts_[i].data(), dy,
                             v >= 0 ? dxs_[i][0].data() : nullptr, rows, preact);
      }
    }
    MergeInputs in;  // a shared layer's gradients add to its source's
    in.count = 2;
    for (const Alias& a : aliases_) {
      in.x[0] = grads_.data() + a.to;
      in.x[1] = alias_grads_.data() + a.at;
      be_.merge_forward(MergeOp::Add, in, grads_.data() + a.to, a.n);
    }
  }
  return scale;
}

bool Model::frozen(const Param& p) const { return layers_[size_t(p.layer)]->frozen(); }

void Model::set_trainable(int64_t layer, bool trainable) {
  std::lock_guard<FairLock> lock(mutex_);
  if (layer < 0 || layer >= num_layers())
    throw std::out_of_range("set_trainable: layer " + std::to_string(layer) + " of " +
                            std::to_string(num_layers()));
  layers_[size_t(layer)]->set_frozen(!trainable);
}

void Model::regularize(bool add_to_grads) {
  if (!any_regularizer_) return;
  be_.zero(batch_.data() + 1, sizeof(double));
  for (const Param& p : params_)
    if (p.trainable && !frozen(p) && (p.l1 != 0.f || p.l2 != 0.f))
      be_.l1l2_penalty(weights_.data() + p.offset, add_to_grads ? grads_.data() + p.offset : nullptr,
                       shape_size(p.shape), p.l1, p.l2, batch_.data() + 1);
}

// With frozen layers: their gradients zeroed first (out of the global norm), and the update
// over each run of the other layers' weights (the flat buffer holds them layer by layer).
void Model::apply_update() {
  float* g = grads_.data();
  const int64_t n = num_params();
  bool any_frozen = false;
  for (const Param& p : params_)
    if (p.trainable && frozen(p)) {
      be_.zero(g + p.offset, sizeof(float) * static_cast<size_t>(shape_size(p.shape)));
      any_frozen = true;
    }
  if (opt_.clipvalue > 0) be_.clip_by_value(g, n, static_cast<float>(opt_.clipvalue));
  if (opt_.clipnorm > 0)
    for (const Param& p : params_)
      if (p.trainable && !frozen(p))
        be_.clip_by_norm(g + p.offset, shape_size(p.shape), opt_.clipnorm);
  if (opt_.global_clipnorm > 0) be_.clip_by_norm(g, n, opt_.global_clipnorm);
  const int nslots = optimizer_slots(opt_);
  auto update = [&](int64_t begin, int64_t end) {
    auto slot = [&](int k) { return k < nslots ? slots_.data() + k * n + begin : nullptr; };
    if (end > begin)
      be_.optimizer_update(opt_, step_values_, weights_.data() + begin, g + begin, slot(0),
                           slot(1), slot(2), end - begin);
  };
  if (!any_frozen) {
    update(0, n);
    return;
  }
  int64_t begin = 0, end = 0;  // the run being gathered
  for (const Param& p : params_) {
    if (!p.trainable) continue;
    const int64_t size = shape_size(p.shape);
    if (frozen(p)) {
      update(begin, end);
      begin = end = p.offset + size;
    } else {
      end = p.offset + size;
    }
  }
  update(begin, end);
}

void Model::accumulate_metrics(const std::vector<MetricSpec>& metrics, const float* y,
                               const float* w, int64_t rows, int64_t ycols, double* state) {
  const int64_t cols = layers_.back()->out_shape.back(), per = loss_rows_per_sample();
  const float* out = acts_.back().data();
  // With a mask reaching the output: loss_and_backward's weights for this batch (mask times
  // sample weights), or the mask alone for the metrics that take no sample weights.
  const float* mask = out_mask_ ? out_mask_->output_mask() : nullptr;
  const float* weighted = out_mask_ ? maskw_.data() : w;
  for (const MetricSpec& m : metrics) {
    be_.metric_update(m, out, y, m.weighted ? weighted : mask, rows * per, cols, ycols / per,
                      state);
    state += metric_state_size(m);
  }
}

std::vector<int64_t> Model::shuffle(int64_t n) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(order[i], order[random_bits(seed_, draws_++) % static_cast<uint64_t>(i + 1)]);
  return order;
}

std::vector<int64_t> Model::permutation(int64_t n) {
  std::lock_guard<FairLock> lock(mutex_);
  return shuffle(n);
}

int64_t Model::run_states() const {
  std::lock_guard<FairLock> lock(mutex_);
  int64_t size = 2;  // loss sum, rows
  for (const MetricSpec& m : metrics_) size += metric_state_size(m);
  return size;
}

void Model::check_data(const Dataset& data, bool labels) const {
  if (&data.backend() != &be_)
    throw std::invalid_argument(std::string("the data is on the ") + data.backend().name() +
                                " device, the model on the " + be_.name() + " device");
  if (data.in_size() != shape_size(input_shape_))
    throw std::invalid_argument("the data has " + std::to_string(data.in_size()) +
                                " values per sample, the model's input " +
                                std::to_string(shape_size(input_shape_)));
  if (labels && !data.y()) throw std::invalid_argument("the data has no labels");
}

RunResult Model::run(const Dataset& data, int64_t batch_size, bool train, const int64_t* order,
                     int64_t first, int64_t n, const std::vector<double>* carry,
                     bool stop_on_nonfinite) {
  std::unique_lock<FairLock> lock(mutex_);
  check_compiled();
  check_data(data, true);
  const int64_t ycols = data.ycols();
  check_batch(n, ycols, batch_size);
  if (!order && (first < 0 || n > data.rows() - first))
    throw std::invalid_argument("rows " + std::to_string(first) + ".." +
                                std::to_string(first + n) + " are not all in the data (" +
                                std::to_string(data.rows()) + " rows)");
  const float *x = data.x(), *y = data.y(), *w = data.w();
  const int64_t in_size = data.in_size();
  const int64_t cap = std::min(batch_size, n);
  check_rows(cap);
  // This run's metrics: a compile or set_metrics from another thread between two
  // batches applies to the next run.
  const std::vector<MetricSpec> metrics = metrics_;
  RunResult res;
  std::vector<double>& states = res.states;
  int64_t nstates = 2;
  for (const MetricSpec& m : metrics) nstates += metric_state_size(m);
  if (carry && static_cast<int64_t>(carry->size()) != nstates)
    throw std::invalid_argument("carry must hold " + std::to_string(nstates) +
                                " state values, received " + std::to_string(carry->size()));
  // The row order (one copy per run), the per-step values (one per run, and one more
  // whenever another call ran between two batches) and the run's states live on the
  // device (this run's own: another call may run between two training batches); the
  // states come back once, at the end.
  const int64_t* rows_order = order;
  if (order && !be_.host_memory()) {
    order_.reserve(be_, n);
    order_.upload(order, n);
    rows_order = order_.data();
  }
  const int64_t batches = (n + batch_size - 1) / batch_size;
  int64_t table_start = 0;
  if (train) fill_steps(batches);
  DeviceArray<double> totals(be_, nstates);
  if (carry)
    totals.upload(carry->data(), nstates);
  else
    be_.zero(totals.data(), totals.bytes());
  batch_.reserve(be_, 2);
  be_.zero(batch_.data(), batch_.bytes());
  // Training steps are captured where the backend can (a CUDA graph): not the first
  // (it sizes what the backend caches), and captured again after other calls ran.
  const bool capture = train && be_.can_capture();
  std::unique_ptr<Graph> graph;
  for (int64_t b = 0, start = 0; b < batches; ++b, start += batch_size) {
    if (b > 0 && train && mutex_.contended()) {  // let others in, then go on from their state
      mutex_.pause();
      fill_steps(batches - b);
      table_start = b;
      graph.reset();
    }
    poll_interrupt();
    reserve(cap);
    ybuf_.reserve(be_, cap * ycols);
    idx_.reserve(be_, cap);
    const int64_t rows = std::min(batch_size, n - start);
    if (train) {
      if (iterations_ + 1 >= kMaxIterations)
        throw std::invalid_argument("the optimizer has taken 2**53 - 1 steps, its most");
      load_step(b - table_start);
    }
    // The batch's rows: gathered by the step (by the indices at idx), or read where they
    // lie. A captured step reads fixed addresses: its indices are copied to idx_ first,
    // and rows read where they lie are copied to xbuf_, ybuf_ and wbuf_.
    const int64_t r0 = first + start;
    const float *xb = x + r0 * in_size, *yb = y + r0 * ycols, *wb = w ? w + r0 : nullptr;
    const int64_t* idx = order ? rows_order + start : nullptr;
    if (order && capture) {
      be_.copy(idx_.data(), idx, sizeof(int64_t) * rows);
      idx = idx_.data();
    } else if (!order && capture) {
      be_.copy(xbuf_.data(), xb, sizeof(float) * rows * in_size);
      be_.copy(ybuf_.data(), yb, sizeof(float) * rows * ycols);
      if (w) be_.copy(wbuf_.data(), wb, sizeof(float) * rows);
    }
    if (order || capture) {
      xb = xbuf_.data();
      yb = ybuf_.data();
      wb = w ? wbuf_.data() : nullptr;
    }
    // The step: device work only, on fixed addresses (so that it can be captured).
    auto step = [&] {
      if (order) {
        be_.gather_rows(x, idx, rows, in_size, xbuf_.data());
        be_.gather_rows(y, idx, rows, ycols, ybuf_.data());
        if (w) be_.gather_rows(w, idx, rows, 1, wbuf_.data());
      }
      loss_and_backward(xb, yb, wb, rows, ycols, train, train ? step_seeds_ : nullptr);
      regularize(train);
      be_.add_batch_loss(batch_.data(), loss_scale(rows), rows, totals.data() + nstates - 2);
      accumulate_metrics(metrics, yb, wb, rows, ycols, totals.data());
      if (train) apply_update();
    };
    // Full batches after the first are captured once and replayed.
    if (graph && rows == batch_size)
      graph->replay();
    else if (capture && b > 0 && rows == batch_size) {
      graph = be_.capture(step);
      graph->replay();
    } else {
      step();
    }
    if (train) ++iterations_;
    const double scale = loss_scale(rows);
    ++res.batches;
    if (stop_on_nonfinite) {  // (reads the batch's loss: one copy per batch)
      double bl[2];
      batch_.download(bl, 2);
      if (!std::isfinite(bl[0] * scale + bl[1])) {
        res.nonfinite = true;
        break;
      }
    }
  }
  states.resize(static_cast<size_t>(nstates));
  totals.download(states.data(), nstates);
  res.loss = states[nstates - 2] / states[nstates - 1];
  const double* state = states.data();
  for (const MetricSpec& m : metrics) {
    res.metrics.push_back(metric_result(m, state));
    state += metric_state_size(m);
  }
  return res;
}

RunResult Model::fit_epoch(const Dataset& data, int64_t batch_size, bool shuffle,
                           const std::vector<double>* carry, bool stop_on_nonfinite) {
  const int64_t n = data.rows();
  std::vector<int64_t> order;
  if (shuffle) {
    std::lock_guard<FairLock> lock(mutex_);
    check_batch(n, data.ycols(), batch_size);
    order = this->shuffle(n);
  }
  return run(data, batch_size, true, shuffle ? order.data() : nullptr, 0, n, carry,
             stop_on_nonfinite);
}

RunResult Model::fit_rows(const Dataset& data, int64_t batch_size, const int64_t* order,
                          int64_t first, int64_t count, const std::vector<double>* carry,
                          bool stop_on_nonfinite) {
  return run(data, batch_size, true, order, first, count, carry, stop_on_nonfinite);
}

RunResult Model::evaluate(const Dataset& data, int64_t batch_size) {
  return run(data, batch_size, false, nullptr, 0, data.rows(), nullptr, false);
}

void Model::predict(const Dataset& data, int64_t batch_size, float* out) {
  std::lock_guard<FairLock> lock(mutex_);
  if (!built_) throw std::invalid_argument("the model is not built yet");
  check_data(data, false);
  const int64_t n = data.rows();
  check_batch(n, 1, batch_size);
  const int64_t in_size = data.in_size();
  const int64_t out_size = shape_size(layers_.back()->out_shape);
  reserve(std::min(batch_size, n));
  // On a device, the outputs gather there and come back in one copy.
  DeviceArray<float> outputs;
  if (!be_.host_memory()) outputs = DeviceArray<float>(be_, n * out_size);
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t rows = std::min(batch_size, n - start);
    const float* o = forward(data.x() + start * in_size, rows, false, nullptr);
    const size_t bytes = sizeof(float) * rows * out_size;
    if (outputs.size())
      be_.copy(outputs.data() + start * out_size, o, bytes);
    else
      be_.download(out + start * out_size, o, bytes);
  }
  outputs.download(out, outputs.size());
}

double Model::gradients(const Dataset& data, float* grad_out) {
  std::lock_guard<FairLock> lock(mutex_);
  check_compiled();
  check_data(data, true);
  const int64_t n = data.rows();
  check_batch(n, data.ycols(), n);
  reserve(n);
  batch_.reserve(be_, 2);
  be_.zero(batch_.data(), batch_.bytes());
  fill_steps(1);
  load_step(0);
  const double scale =
      loss_and_backward(data.x(), data.y(), data.w(), n, data.ycols(), true, step_seeds_);
  regularize(true);
  grads_.download(grad_out, grads_.size());
  double b[2];
  batch_.download(b, 2);
  return b[0] * scale + b[1];
}

}  // namespace deepcore
