// The deepcore engine: a Sequential model whose whole training step (forward,
// loss, backward, regularisation, clipping, optimizer update, metrics) runs in C++.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "deepcore/backend.h"
#include "deepcore/calls.h"
#include "deepcore/kernels.h"

namespace deepcore {

class Layer;

struct Param {
  int64_t layer = 0;   // index of the layer owning it
  int64_t offset = 0;  // into the flat weight buffer, or the state buffer if not trainable
  Shape shape;
  bool trainable = true;     // false: layer state (e.g. moving statistics), never optimised
  float l1 = 0.f, l2 = 0.f;  // regulariser: l1 * sum|w| + l2 * sum w^2 added to the loss
};

// Mean loss (regularisation included) and metrics over the samples seen. Both come
// from `states` (the metrics' counts and sums, then each output's loss sum and rows seen,
// then the regularisation's), which a later run can continue from.
struct RunResult {
  double loss = 0;
  std::vector<double> metrics;
  std::vector<double> output_losses;  // each output's mean loss, before its weight (0: none)
  std::vector<double> states;
  int64_t batches = 0;     // batches run
  bool nonfinite = false;  // stopped after a batch whose loss was NaN or infinite
};

// Rows of data where a backend computes on them: x (rows x in_size) and, to train or
// evaluate, y (rows x ycols) and w (rows x wcols sample weights: one per row, or one per
// row and output of a model of several; or null). On a backend whose
// memory is the host's it points at the caller's arrays, which must outlive it; on
// another it holds copies, uploaded once (fit uploads its data once, not per epoch).
class Dataset {
 public:
  Dataset(Backend& be, const float* x, const float* y, const float* w, int64_t rows,
          int64_t in_size, int64_t ycols, int64_t wcols = 1);
  // A model of several inputs' data, each input's rows in an array of its own (xs[j]:
  // rows x in_sizes[j]) rather than side by side in one.
  Dataset(Backend& be, const std::vector<const float*>& xs, const std::vector<int64_t>& in_sizes,
          const float* y, const float* w, int64_t rows, int64_t ycols, int64_t wcols = 1);
  const float* x(size_t j = 0) const { return xs_[j]; }
  const float* y() const { return y_; }
  const float* w() const { return w_; }
  int64_t rows() const { return rows_; }
  // The arrays of inputs, each one's values per sample, and their total.
  int64_t inputs() const { return static_cast<int64_t>(xs_.size()); }
  int64_t in_size(size_t j) const { return in_sizes_[j]; }
  int64_t in_size() const { return in_size_; }
  int64_t ycols() const { return ycols_; }
  int64_t wcols() const { return wcols_; }
  const Backend& backend() const { return *be_; }

 private:
  const Backend* be_;
  std::vector<const float*> xs_;
  std::vector<int64_t> in_sizes_;
  const float *y_, *w_;
  int64_t rows_, in_size_ = 0, ycols_, wcols_;
  std::vector<DeviceArray<float>> dxs_;
  DeviceArray<float> dy_, dw_;
};

// A program of deepcore.ops computing a custom loss's or metric's values per sample
// (LossSpec::program, MetricSpec::program) from output `output`'s labels (a sample's of shape
// `labels`) and predictions: its inputs are the labels, then the predictions.
struct OutputProgram {
  int64_t output = 0;
  Shape labels;
  std::vector<OpStep> steps;
  std::vector<OpConstant> constants;
};

// Every public member may be called from several threads at once: calls on one model
// take turns on its lock (training releases it between batches, so that a predict from
// another thread runs at the next batch, on the weights of a finished step). A long call
// polls the thread's poll function (calls.h) between batches.

class Model {
 public:
  // Optimizer steps a model may take: the step count is exact in a double (the
  // schedules and Adam's bias correction compute with it).
  static constexpr int64_t kMaxIterations = int64_t(1) << 53;

  explicit Model(Device device = Device::CPU);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // ---- architecture (before build)
  void add_dense(int64_t units, ActSpec act, bool use_bias);
  void add_activation(ActSpec act);
  // seed: the layer's own (its masks then follow the training step), or none to draw
  // from the model's random stream.
  void add_dropout(float rate, std::optional<uint64_t> seed = std::nullopt);
  void add_conv2d(int64_t filters, int64_t kh, int64_t kw, int64_t sh, int64_t sw, bool same,
                  ActSpec act, bool use_bias);
  void add_pool2d(bool max, int64_t ph, int64_t pw, int64_t sh, int64_t sw, bool same);
  void add_conv1d(int64_t filters, int64_t kernel_size, int64_t stride, int64_t dilation,
                  Padding padding, ActSpec act, bool use_bias);
  void add_pool1d(bool max, int64_t pool_size, int64_t stride, bool same);
  void add_upsampling1d(int64_t size);
  void add_reshape(const Shape& target);  // empty target: Flatten
  void add_global_average_pooling2d();
  void add_batch_normalization(double momentum, double epsilon, bool center, bool scale);
  // Keras' Normalization: `axes` the kept axes of a sample (negative from the end), the
  // statistics fixed (mean and variance given) or the layer's states (both absent).
  void add_normalization(const std::vector<int64_t>& axes, bool invert,
                         const std::optional<OpConstant>& mean,
                         const std::optional<OpConstant>& variance);
  // Keras' Resizing and CenterCrop over images (height, width, channels).
  void add_resizing(int64_t height, int64_t width, Interpolation interpolation,
                    bool crop_to_aspect_ratio, bool pad_to_aspect_ratio, bool antialias);
  void add_center_crop(int64_t height, int64_t width);
  // Keras' augmentation layers (augment_maths.h); RandomCrop's output size in a.oh, a.ow.
  void add_augment(const Augment& a, std::optional<uint64_t> seed);
  // Keras' CategoryEncoding (no boundaries) and Discretization (its bin boundaries).
  void add_encoding(int64_t depth, OutputMode mode, const std::vector<float>& boundaries);
  // A table of input_dim rows (at most kMaxEmbeddingRows: the indices travel as float32).
  // mask_zero: index 0 is padding, and the mask it makes says so.
  void add_embedding(int64_t input_dim, int64_t output_dim, bool mask_zero = false);
  // Masking: positions whose features all equal `value` are padding (their outputs 0).
  void add_masking(float value);
  // Layer `layer` reads the sequence mask that layer `maker` (before it) makes.
  void set_mask_source(int64_t layer, int64_t maker);
  // The mask that layer `maker` makes reaches the output (one value per output step): the
  // loss and the metrics leave the masked steps out, as Keras' do. -1: none does. (A model
  // of one output.)
  void set_output_mask_source(int64_t maker);
  // GlobalMaxPooling1D (max) or GlobalAveragePooling1D.
  void add_global_pooling1d(bool max, bool keepdims);
  // SimpleRNN, LSTM or GRU (reset_after) of `units`, with the activation `act` and the
  // gates' `rec` (tanh, sigmoid, hard_sigmoid, relu or linear); in training, `dropout` of
  // the inputs and `recurrent_dropout` of the states (rates in [0, 1)), their masks drawn
  // from the model's stream or from `seed`, as add_dropout's.
  void add_recurrent(Cell cell, int64_t units, Act act, Act rec, bool use_bias,
                     bool return_sequences, bool go_backwards, float dropout = 0.f,
                     float recurrent_dropout = 0.f, std::optional<uint64_t> seed = std::nullopt);
  // Bidirectional over two recurrent layers (each as add_recurrent; the forward one's
  // weights first), their outputs merged by `merge`.
  void add_bidirectional(Merge merge, bool return_sequences, Cell cell, int64_t units, Act act,
                         Act rec, bool use_bias, bool go_backwards, Cell bcell, int64_t bunits,
                         Act bact, Act brec, bool buse_bias, bool bgo_backwards,
                         float dropout = 0.f, float recurrent_dropout = 0.f,
                         std::optional<uint64_t> seed = std::nullopt, float bdropout = 0.f,
                         float brecurrent_dropout = 0.f,
                         std::optional<uint64_t> bseed = std::nullopt);
  // Keras' merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, and
  // Concatenate along `axis` of a sample's shape (negative: from the end).
  void add_merge(MergeOp op);
  void add_concatenate(int64_t axis);
  // A program of deepcore.ops over the layer's inputs (kernels.h: OpStep, OpConstant).
  void add_ops(const std::vector<OpStep>& steps, const std::vector<OpConstant>& constants);
  // Keras' Dot over two inputs of a sample's rank 1 or 2, contracted along axes ax, ay;
  // `normalize`: each input L2-normalized along its axis first (cosine similarity).
  void add_dot(int64_t ax, int64_t ay, bool normalize = false);
  // The values layer `layer` takes, in order: -1 the model's input, j >= 0 layer j's output
  // (j < layer: the layers are in an order where each comes after what it reads). By default
  // each layer takes the one before it (layer 0 the input): a Sequential model. Every
  // layer's output is read by some layer or is one of the model's outputs.
  void set_inputs(int64_t layer, const std::vector<int64_t>& values);
  // The model's outputs, in order: the layers whose outputs it returns (by default the last
  // layer's). Each has a loss of its own (or none), labels and metrics (MetricSpec::output);
  // the model's loss is the sum of theirs, each times its LossSpec::weight. A sample's labels
  // (and predictions) hold the outputs' one after the other.
  void set_outputs(const std::vector<int64_t>& layers);
  int64_t num_outputs() const { return static_cast<int64_t>(outputs_.size()); }
  // The layer of output k.
  int64_t output_layer(int64_t k) const;
  // The values per sample of each output's labels (a model of several outputs; by default
  // 1 per loss value for a sparse loss, else the output's size).
  void set_label_columns(const std::vector<int64_t>& cols);
  // A model of several inputs (before set_inputs and build): input j is value -1 - j, of
  // shape shapes[j]; a sample's data holds them one after the other, flattened, and build
  // takes the shape {their total size}.
  void set_input_shapes(const std::vector<Shape>& shapes);
  // Layer `layer` uses the weights (and states) of layer `source` < layer, of the same
  // shapes: one layer called at two places of a graph (Keras' shared layers). Its gradients
  // add to the source's.
  void set_weight_source(int64_t layer, int64_t source);
  // The layers' shapes and the parameters for `input_shape` (without the batch axis),
  // every size checked against kMaxElements; allocates nothing.
  std::vector<Param> plan(const Shape& input_shape);
  // plan, then allocates the parameters (zeros). A model is built once.
  void build(const Shape& input_shape);
  bool built() const { return built_; }
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  const Shape& input_shape() const { return input_shape_; }
  // A model of several inputs: each one's shape (set_input_shapes); else empty.
  const std::vector<Shape>& input_shapes() const { return input_shapes_; }
  const Shape& output_shape(int64_t layer) const;

  // ---- parameters: one flat buffer, layer by layer, each layer's tensors in order
  const std::vector<Param>& params() const { return params_; }
  // Copies of the weights, the layers' states (moving statistics) or the optimizer's
  // slots (each num_params() long, one after the other) to and from the host.
  enum class Buffer { Weights, States, OptimizerSlots };
  std::vector<float> read(Buffer b) const;
  void write(Buffer b, const float* values, int64_t n);
  // The weights and the layers' states (moving statistics), in the backend's memory.
  float* param_data() { return weights_.data(); }
  DeviceArray<float>& state_data() { return states_; }
  Backend& backend() { return be_; }
  int64_t num_params() const { return weights_.size(); }
  void set_regularizer(int64_t param, float l1, float l2);
  // Keras' layer.trainable: a frozen layer's weights are left as they are by the updates,
  // its regularizers and its gradients' norms leave the loss and the clipping, and
  // BatchNormalization normalizes with its moving statistics in training too.
  void set_trainable(int64_t layer, bool trainable);
  // The buffers the backward pass keeps the layers' input gradients in (values per sample
  // of each; gradients never alive at once share one).
  const std::vector<int64_t>& gradient_buffers() const { return slot_size_; }
  // The batch size `rows` as used: fits every buffer within kMaxElements, or invalid_argument.
  void check_rows(int64_t rows) const;

  // ---- training configuration
  // The programs the losses and metrics of kind Given and Mean refer to (by index), in
  // place of any before; each checked against its output.
  void set_programs(const std::vector<OutputProgram>& programs);
  // One loss per output (none: the output is not trained), or one for all.
  void compile(const std::vector<std::optional<LossSpec>>& losses, const OptSpec& opt,
               const std::vector<MetricSpec>& metrics);
  void compile(const LossSpec& loss, const OptSpec& opt, const std::vector<MetricSpec>& metrics);
  bool compiled() const { return compiled_; }
  void set_metrics(const std::vector<MetricSpec>& metrics);
  // A fixed learning rate replaces any schedule.
  void set_learning_rate(double lr);
  // The rate of the next update (from the schedule when there is one).
  double learning_rate() const;
  int64_t iterations() const;
  void set_iterations(int64_t it);
  // Random state: every draw (shuffle, dropout) is random_bits(seed, draws++), but
  // a layer with a seed of its own draws random_bits(its seed, iterations()).
  void set_seed(uint64_t seed);
  uint64_t seed() const;
  void set_draws(uint64_t draws);
  uint64_t draws() const;
  // The next shuffle order of n rows (Fisher-Yates over the draws), as fit_epoch with
  // shuffle=true would draw it; safe beside a run in another thread.
  std::vector<int64_t> permutation(int64_t n);

  // ---- runs, on a Dataset of this model's backend with input_shape()'s size per row.
  // `carry`: the states of an earlier run to go on from (an epoch trained in pieces),
  // or null to start from zero; it must hold run_states() values. `stop_on_nonfinite`:
  // stop after the first batch whose loss is NaN or infinite (Keras' TerminateOnNaN).
  RunResult fit_epoch(const Dataset& data, int64_t batch_size, bool shuffle,
                      const std::vector<double>* carry = nullptr, bool stop_on_nonfinite = false);
  // One training pass over `count` rows: order[0..count) in that order (the order of
  // `shuffle`, or part of it; host memory), or rows first..first+count-1 when order is
  // null. What fit_epoch does, in pieces.
  RunResult fit_rows(const Dataset& data, int64_t batch_size, const int64_t* order, int64_t first,
                     int64_t count, const std::vector<double>* carry = nullptr,
                     bool stop_on_nonfinite = false);
  // Size of RunResult::states: the metrics' states, the loss sum and the rows seen
  // (a run checks its carry against its own metrics).
  int64_t run_states() const;
  // `carry`: as fit_epoch's (a dataset evaluated in pieces); rows first..first+count-1
  // (count -1: to the end).
  RunResult evaluate(const Dataset& data, int64_t batch_size,
                     const std::vector<double>* carry = nullptr, int64_t first = 0,
                     int64_t count = -1);
  // out: the outputs of every row of data (host memory), each row's outputs one after the
  // other. On the CPU the rows go through in pieces of predict_rows_ whatever batch_size
  // (which then bounds nothing and changes no result); on a device, in batches of batch_size.
  // With `training`, the layers act as in training (Dropout drops, augmentation layers draw,
  // BatchNormalization uses and updates the batch's statistics), batch by batch of
  // batch_size, each batch a step of the model's random stream (Keras' model(x, training=True)).
  void predict(const Dataset& data, int64_t batch_size, float* out, bool training = false);
  // The rows of the last batch a run went through, and output k's outputs, labels or
  // sample weights there (part 0, 1, 2: host copies; no weights: empty): what the metrics
  // Python computes (Keras' Metric subclasses) update from.
  int64_t last_rows() const;
  std::vector<float> last_batch(int64_t output, int part) const;
  // Loss of data (one batch) and its gradient (flat, like the parameters; host memory)
  // without updating.
  double gradients(const Dataset& data, float* grad_out);

 private:
  std::vector<Param> plan_layers(const Shape& input_shape);
  double current_learning_rate() const;
  DeviceArray<float>& buffer(Buffer b) {
    return b == Buffer::Weights ? weights_ : b == Buffer::States ? states_ : slots_;
  }
  const DeviceArray<float>& buffer(Buffer b) const {
    return const_cast<Model*>(this)->buffer(b);
  }
  void check_compiled() const;
  void check_metric_outputs(const std::vector<MetricSpec>& metrics) const;
  // The next shuffle order (callers hold mutex_).
  std::vector<int64_t> shuffle(int64_t n);
  void check_batch(int64_t n, int64_t ycols, int64_t batch_size) const;
  void reserve(int64_t rows);
  // seeds: one per layer (device memory), read by the layers that draw (training only).
  void forward(const float* x, int64_t rows, bool training, const uint64_t* seeds);
  // An output: its layer, loss, whether that loss is computed from the layer's logits
  // (its activation's input), labels (values per sample; and a copy of the batch's, contiguous,
  // where a model has several outputs), loss values per sample, and the batch's weights
  // (contiguous, where each output has its own).
  struct Head {
    int64_t layer = 0;
    std::optional<LossSpec> loss;
    bool fused = false;
    int64_t ycols = 0, per = 1;
    DeviceArray<float> y, w;
  };
  // The scale that makes a batch's loss sum of output h a mean (1 for a summed loss), before
  // its weight. (A custom loss has its values per sample.)
  double loss_scale(const Head& h, int64_t rows) const;
  // Checks the data's labels and weights against the outputs (a model of one output takes
  // its labels' columns from the data) and makes room for `rows` of each output's.
  void prepare_heads(const Dataset& data, int64_t rows);
  // Each output's labels and weights of the batch (contiguous where the data holds several
  // side by side) at ys_ and ws_.
  void split_labels(const float* y, const float* w, int64_t rows, int64_t wcols);
  int64_t last_rows_ = 0;  // the rows of the batch split_labels split last
  // The outputs' losses (sum over rows, weighted; output h's in batch_[2h]) and, when
  // `backward`, the gradients in grads_.
  void loss_and_backward(const float* x, const float* y, const float* w, int64_t rows,
                         int64_t wcols, bool backward, const uint64_t* seeds);
  // The batch's loss (the sum of the outputs', weighted, and the penalty) from batch_ (host).
  double batch_loss(const double* batch, int64_t rows) const;
  // The penalty goes to batch_[2 * outputs] (left at 0 without regularizers).
  void regularize(bool add_to_grads);
  void apply_update();
  // Whether param p belongs to a frozen layer.
  bool frozen(const Param& p) const;
  // Adds the batch to the metrics' states (device memory, one after the other).
  void accumulate_metrics(const std::vector<MetricSpec>& metrics, int64_t rows, double* state);
  void check_data(const Dataset& data, bool labels) const;
  // (callers hold mutex_) The layout of a run's states: the metrics' sizes summed, then a
  // (sum, rows) pair per output and one for the penalty.
  int64_t num_states(const std::vector<MetricSpec>& metrics) const;
  // Writes the values (StepValues, and one seed per layer) of the next `count` training
  // steps from iterations_ and draws_ into step_table_ and seed_table_ (one upload each
  // where the memory is the device's).
  void fill_steps(int64_t count);
  // Points step_values_ and step_seeds_ at step k of the tables (where the backend
  // captures steps: copies it to step_ and seeds_, the fixed addresses a captured step
  // reads), and advances draws_.
  void load_step(int64_t k);
  // Runs over n rows: rows order[0..n) of the data (host memory), or rows
  // first..first+n-1 when order is null. Training releases the lock between batches.
  RunResult run(const Dataset& data, int64_t batch_size, bool train, const int64_t* order,
                int64_t first, int64_t n, const std::vector<double>* carry,
                bool stop_on_nonfinite);

  Backend& be_;
  std::vector<std::unique_ptr<Layer>> layers_;
  Shape input_shape_;
  bool built_ = false, compiled_ = false, any_regularizer_ = false;
  bool planned_ = false;  // the layers' shapes are known (plan or build ran)
  std::vector<Param> params_;
  DeviceArray<float> weights_, grads_, slots_, states_;
  std::vector<int64_t> outputs_;  // as set_outputs sets them
  std::vector<Head> heads_;
  // set_programs' programs: each one's output, layer, and values and their gradients.
  struct Program {
    int64_t output = 0, width = 0, labels = 0;  // labels: values per sample
    std::unique_ptr<Layer> layer;
    DeviceArray<float> values, grads;
  };
  std::vector<Program> programs_;
  // A layer's several inputs and their gradients (kept: no allocation per step)
  std::vector<const float*> layer_in_;
  std::vector<float*> layer_dx_;
  std::vector<const float*> prog_in_;  // a program's inputs: labels, predictions
  std::vector<float*> prog_dx_;        // and their gradients (none, the predictions')
  // Runs program p on output h's labels and predictions of the batch into its values.
  Program& run_program(int64_t p, int64_t h, int64_t rows);
  std::vector<const float*> ys_, ws_;  // the batch's labels and weights of each output
  OptSpec opt_;
  std::vector<MetricSpec> metrics_;
  int64_t iterations_ = 0;
  uint64_t seed_ = 0, draws_ = 0;
  // Workspace, grown only when a larger batch arrives; values per sample of its
  // largest buffer (checked against kMaxElements for each batch size).
  int64_t capacity_ = 0, max_per_sample_ = 1;
  // Rows per piece of a CPU predict (set by plan_layers): as many as keep a piece's
  // activations and scratch (im2col) within kPredictBytes, each layer reading from cache.
  int64_t predict_rows_ = 1;
  // Per layer: whether it is a Conv2D whose outputs only the next layer reads, a max
  // pooling that the backend computes with it in inference (Conv2D::forward_pooled).
  std::vector<char> pools_next_;
  // Each layer's inputs (values as set_inputs takes them) and each value's readers (layer,
  // input position; or L + h, 0 for output h of a model of L layers); per layer, the gradient
  // of each of its inputs that needs one (and per output, the loss's gradient), and per
  // value read more than once, its gradient's sum.
  std::vector<std::vector<int64_t>> inputs_;
  std::vector<std::vector<std::pair<int64_t, size_t>>> readers_;
  std::vector<DeviceArray<float>> acts_, gsum_;
  // The gradients of each layer's inputs (and each output's loss's: "layer" L + h), in
  // buffers shared by gradients never alive at once: per layer, each input's slot (-1: an
  // input of the model, no gradient), and per slot its values per sample.
  std::vector<std::vector<int>> grad_slot_;
  std::vector<int64_t> slot_size_;
  std::vector<DeviceArray<float>> grad_slots_;
  float* edge_grad(size_t i, size_t k) {
    const int s = grad_slot_[i][k];
    return s < 0 ? nullptr : grad_slots_[size_t(s)].data();
  }
  // needs_grad_, grad_slot_ and slot_size_: a gradient lives from its reader's backward
  // pass to its value's (the outputs' from the losses on); a slot it frees takes the next
  // one. (Again when layers are frozen or thawed: compile.)
  void plan_gradients();
  // Per layer: whether its output needs a gradient (it or a layer before it has weights to
  // train); the backward pass skips the others.
  std::vector<bool> needs_grad_;
  std::vector<int64_t> weight_source_;   // per layer: the layer whose weights it uses, or -1
  // Layers using another's weights: their gradients (alias_grads_ at `at`) and the source's
  // (grads_ at `to`), n values, added after each backward pass.
  struct Alias {
    int64_t at, to, n;
  };
  std::vector<Alias> aliases_;
  DeviceArray<float> alias_grads_;
  std::vector<Shape> input_shapes_;      // several inputs: each one's shape
  // Several inputs: each one's values of the batch, contiguous (split from one array of
  // them side by side, or gathered), and where the layers read them (xin_: there, or where
  // the data's own arrays hold the batch's rows). split_: forward splits x into ins_.
  std::vector<DeviceArray<float>> ins_;
  std::vector<const float*> xin_;
  bool split_ = true;
  int64_t num_inputs() const { return std::max<int64_t>(1, int64_t(input_shapes_.size())); }
  const float* value(int64_t v, const float* x) const {
    if (v >= 0) return acts_[size_t(v)].data();
    return input_shapes_.size() > 1 ? xin_[size_t(-1 - v)] : x;
  }
  // Points xin_ at the batch of data (several arrays of inputs) starting at row r0, or at
  // ins_ (fixed) where the step gathers or copies the rows there; split_ then false.
  void point_inputs(const Dataset& data, int64_t r0, bool fixed);
  const Shape& value_shape(int64_t v) const;
  // The gradient of value v (a layer's output) once its readers' backward passes ran.
  const float* value_grad(int64_t v, int64_t rows);
  DeviceArray<float> xbuf_, ybuf_, wbuf_;
  const Layer* out_mask_ = nullptr;  // the maker of the mask reaching the output, if any
  DeviceArray<float> maskw_;         // then the metrics' weights, and the loss's after them
  DeviceArray<int64_t> idx_;  // the rows of the batch being gathered
  // The values the step reads: its StepValues, and one random seed per layer; the tables
  // of a run's steps they come from (and their host staging).
  DeviceArray<StepValues> step_, step_table_;
  DeviceArray<uint64_t> seeds_, seed_table_;
  std::vector<StepValues> host_steps_;
  std::vector<uint64_t> host_seeds_;
  const StepValues* step_values_ = nullptr;
  const uint64_t* step_seeds_ = nullptr;
  DeviceArray<int64_t> order_;  // a run's row order (where the memory is the device's)
  // A batch's loss sum and regularisation penalty (device memory).
  DeviceArray<double> batch_;
  mutable FairLock mutex_;
};

}  // namespace deepcore
