// The maths contract of deepcore: every kernel the engine needs, with its exact
// semantics. Each backend (cpu/, later cuda/) implements this contract; tests
// compare every implementation with a float64 NumPy reference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "deepcore/hd.h"
#include "deepcore/augment_maths.h"
#include "deepcore/resample_maths.h"

namespace deepcore {

using Shape = std::vector<int64_t>;

inline int64_t shape_size(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// The most values one tensor or buffer may hold (the BLAS library indexes with 32-bit
// integers). Every size the engine computes is checked against it before anything is
// allocated, so that the unchecked shape_size above never overflows.
constexpr int64_t kMaxElements = 2147483647;

// a * b for sizes, or -1 when either is negative or the product exceeds kMaxElements.
inline int64_t bounded_mul(int64_t a, int64_t b) {
  if (a < 0 || b < 0) return -1;
  if (a == 0 || b == 0) return 0;
  return a > kMaxElements / b ? -1 : a * b;
}

// Values in shape s, or -1 when a size is not positive or the count exceeds kMaxElements.
inline int64_t bounded_size(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d <= 0) return -1;
    n = bounded_mul(n, d);
    if (n < 0) return -1;
  }
  return n;
}

// ---------------------------------------------------------------- activations
enum class Act : int {
  Linear,
  Relu,
  LeakyRelu,
  Elu,
  Selu,
  Sigmoid,
  HardSigmoid,
  Tanh,
  Softmax,  // over the last axis (`cols`)
  Softplus,
  Softsign,
  Swish,
  Gelu,  // exact (erf) form, as Keras' default approximate=False
  Exponential,
  Step,  // Heaviside: 1 if x >= 0 else 0; forward only
};

struct ActSpec {
  Act kind = Act::Linear;
  double alpha = 0.0;  // slope of leaky_relu, scale of elu
};

// y = act(x) on a rows x cols matrix (rows only matter for softmax).
template <class T>
void act_forward(ActSpec a, const T* x, T* y, int64_t rows, int64_t cols);

// dx = dL/dx given x (the input), y = act(x) and dy = dL/dy. dx may alias dy.
template <class T>
void act_backward(ActSpec a, const T* x, const T* y, const T* dy, T* dx, int64_t rows,
                  int64_t cols);

// --------------------------------------------------------------------- losses
enum class Loss : int {
  MeanSquaredError,
  MeanAbsoluteError,
  Huber,
  BinaryCrossentropy,
  CategoricalCrossentropy,
  SparseCategoricalCrossentropy,
  Hinge,
  Given,  // `pred` holds the loss values (a custom loss's): a row's loss is their mean
};

struct LossSpec {
  Loss kind = Loss::MeanSquaredError;
  bool from_logits = false;  // cross-entropies: `pred` holds logits
  double delta = 1.0;        // huber
  bool sum = false;          // a model's batch loss: sum over samples (true) or mean
  double weight = 1.0;       // a model's loss: Keras' loss_weights (scales loss and gradients)
  int program = -1;          // a model's Given loss: the program computing its values
};

// ------------------------------------------------------------------ op programs
// A step of a program of deepcore.ops (a Lambda layer, or ops called on a model's tensors):
// its operands are registers, 0..k-1 the layer's inputs, then its constants, then each
// step's result, all but the constants one per sample.
enum class OpKind : int {
  Unary,       // code: UnaryOp (op_maths.h), parameters p0, p1
  Binary,      // code: BinaryOp; operands a and b broadcast as NumPy's
  Reduce,      // code: ReduceOp over `axes` of a sample (0: its first), `keepdims`
  Activation,  // act, over the last axis
  Reshape,     // to the sample shape `axes`
  Transpose,   // a sample's axes in the order `axes`
};
struct OpStep {
  OpKind kind = OpKind::Unary;
  int code = 0;
  int a = 0, b = -1;
  float p0 = 0.f, p1 = 0.f;
  ActSpec act;
  std::vector<int64_t> axes;
  bool keepdims = false;
};
// A constant operand, the same for every sample (broadcast over them as NumPy's).
struct OpConstant {
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// Keras' epsilon for clipping probabilities in cross-entropies.
constexpr double kProbEpsilon = 1e-7;

// Loss over a batch of `rows` samples. pred: rows x cols; y: rows x ycols (ycols is
// 1 for the sparse loss, cols otherwise); w: per-row sample weights or nullptr.
// Per-row loss (mean over the last axis, or sum over classes for cross-entropies)
// goes to row_loss if not null. grad (if not null) receives
// d(sum_r w_r * loss_r * grad_scale)/d pred. Returns sum_r w_r * loss_r.
// probs: for cross-entropies from logits, the softmax/sigmoid of pred when the
// caller has it already (saves recomputing the exponentials), or nullptr.
template <class T>
double loss_forward_backward(const LossSpec& l, const T* pred, const T* probs, const T* y,
                             const T* w, T* grad, T* row_loss, int64_t rows, int64_t cols,
                             int64_t ycols, T grad_scale);

// -------------------------------------------------------------------- metrics
enum class Metric : int {
  BinaryAccuracy,
  CategoricalAccuracy,
  SparseCategoricalAccuracy,
  MeanSquaredError,
  MeanAbsoluteError,
  TopKCategoricalAccuracy,
  Precision,
  Recall,
  AUC,  // ROC curve, trapezoidal sum over num_thresholds thresholds (Keras' default)
  Mean,  // the mean of `pred` (a custom metric's values), Keras' MeanMetricWrapper
};

struct MetricSpec {
  Metric kind = Metric::BinaryAccuracy;
  float threshold = 0.5f;     // binary accuracy, precision, recall: positive if pred > threshold
  int k = 5;                  // top-k accuracy
  int num_thresholds = 200;   // AUC
  // A model's metric: weighted by the sample weights (Keras' weighted_metrics) or not
  // (Keras' metrics: only a mask reaching the output weighs them).
  bool weighted = true;
  int64_t output = 0;  // a model's metric: the output (of a model of several) it measures
  int program = -1;    // a model's Mean metric: the program computing its values
};

// A sparse label as a class index: an integer in [0, classes), or invalid_argument.
int64_t checked_label(double v, int64_t classes);

// A metric accumulates a state (doubles, zero at the start of an epoch) over batches;
// its value is computed from the state at the end. Sample weights w (or null) apply
// per row.
int64_t metric_state_size(const MetricSpec& m);
void metric_update(const MetricSpec& m, const float* pred, const float* y, const float* w,
                   int64_t rows, int64_t cols, int64_t ycols, double* state);
double metric_result(const MetricSpec& m, const double* state);

// ------------------------------------------------------------ convolutions
// Geometry of a 2-D window (convolution or pooling) over NHWC images.
struct Window2D {
  int64_t h = 0, w = 0, c = 0;          // input height, width, channels
  int64_t kh = 1, kw = 1;               // window size
  int64_t sh = 1, sw = 1;               // strides
  int64_t pad_top = 0, pad_left = 0;    // "same" padding (Keras/TensorFlow split)
  int64_t oh = 0, ow = 0;               // output height, width
  int64_t dh = 1, dw = 1;               // dilation: the window reads every d-th position
};

// A Conv2D followed by max pooling over non-overlapping windows of its outputs (pool's
// strides equal to its size, no padding), in inference: the convolution's window, filters,
// activation (relu or linear), weights (kh*kw*c x filters) and bias (may be null).
struct ConvPool {
  Window2D conv, pool;
  int64_t filters = 0;
  ActSpec act;
  const float* w = nullptr;
  const float* bias = nullptr;
};

// Whether every window of g lies in the image (no padding read, not dilated): its im2col row
// is kh runs of kw * c floats, an image row apart.
inline bool windows_inside(const Window2D& g) {
  return g.dh == 1 && g.dw == 1 && g.pad_top == 0 && g.pad_left == 0 &&
         (g.oh - 1) * g.sh + g.kh <= g.h && (g.ow - 1) * g.sw + g.kw <= g.w;
}

// The scratch floats per image of Backend::conv_maxpool_forward: the im2col rows the
// pooling reads, or the image padded as the windows read it.
inline int64_t conv_pool_scratch(const Window2D& g, const Window2D& p) {
  const int64_t rows = p.oh * p.ow * p.kh * p.kw * g.kh * g.kw * g.c;
  const int64_t padded = ((g.oh - 1) * g.sh + g.kh) * ((g.ow - 1) * g.sw + g.kw) * g.c;
  return rows > padded ? rows : padded;
}

// Keras' padding of a 1-D window: none, TensorFlow's "same" split, or "causal" (all of it
// on the left: (kernel - 1) * dilation positions).
enum class Padding : int { Valid = 0, Same = 1, Causal = 2 };

// Keras' output size and padding for `same` (true) or `valid` (false).
Window2D make_window(int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh,
                     int64_t sw, bool same);

// The window of a 1-D layer (Conv1D, pooling) over (steps, c) sequences, as a Window2D of
// height 1: Keras' output length for kernel k, stride s and dilation d (invalid_argument
// when the dilated kernel is longer than the input with padding="valid").
Window2D make_window_1d(int64_t steps, int64_t c, int64_t k, int64_t s, int64_t d, Padding p);

// cols[(n, oy, ox), (ky, kx, ci)] = x[n, oy*sh + ky*dh - pad_top, ox*sw + kx*dw - pad_left, ci]
// (0 outside the image). cols: (batch * oh * ow) x (kh * kw * c).
void im2col(const Window2D& g, const float* x, int64_t batch, float* cols);
// The rows of im2col that max pooling over non-overlapping windows p of the convolution's
// outputs reads, in the order (n, py, px, dy, dx): output (oy, ox) = (py*p.sh + dy,
// px*p.sw + dx). cols: (batch * p.oh * p.ow * p.kh * p.kw) x (kh * kw * c).
void im2col_pooled(const Window2D& g, const Window2D& p, const float* x, int64_t batch,
                   float* cols);
// The adjoint: dx = 0, then dx[...] += cols[...] for every entry im2col reads.
void col2im(const Window2D& g, const float* cols, int64_t batch, float* dx);

// Max pooling over each window (padding never wins); argmax keeps the input index (in its
// image) of each maximum, the first in row-major order, for the backward pass, which adds
// each dy at its argmax: an argmax as the forward wrote it, inside its window (a backend
// may gather over the windows that cover each input element).
void maxpool_forward(const Window2D& g, const float* x, int64_t batch, float* y, int32_t* argmax);
void maxpool_backward(const Window2D& g, const float* dy, const int32_t* argmax, int64_t batch,
                      float* dx);
// Average pooling over the valid (non-padding) part of each window.
void avgpool_forward(const Window2D& g, const float* x, int64_t batch, float* y);
void avgpool_backward(const Window2D& g, const float* dy, int64_t batch, float* dx);

// UpSampling1D: y[r, j, :] = x[r, :] for j < size (x: rows x cols, y: rows * size x cols),
// and its adjoint dx[r, :] = the sum over j, in increasing order, of dy[r, j, :].
void repeat_rows(const float* x, int64_t rows, int64_t size, int64_t cols, float* y);
void repeat_rows_backward(const float* dy, int64_t rows, int64_t size, int64_t cols, float* dx);

// Resampling (resample_maths.h): y[n, oy, ox, c] = resample_value(r, x's image n, oy, ox, c).
void resample(const Resample& r, const float* x, int64_t batch, float* y);

// Augmentation (augment_maths.h): images [begin, end) of the batch x transformed into y, each
// with its own draws from `seed`; `means`: each image's mean per channel (contrast only).
void augment(const Augment& a, uint64_t seed, const float* x, const float* means, int64_t begin,
             int64_t end, float* y);

// How Resizing weighs input pixels (Keras' names; resample_layers.cpp builds the taps).
enum class Interpolation : int { Bilinear = 0, Nearest = 1, Bicubic = 2, Lanczos3 = 3, Lanczos5 = 4 };
// What CategoryEncoding and Discretization output (Keras' output_mode).
enum class OutputMode : int { Int = 0, OneHot = 1, MultiHot = 2, Count = 3 };

// True when no value is NaN or infinite.
bool all_finite(const float* x, int64_t n);

// -------------------------------------------------------- batch normalization
// Over the last axis of an m x channels matrix (Keras' BatchNormalization). Training:
// the batch's mean and (biased) variance, and moving = moving * momentum + batch *
// (1 - momentum); inference: the moving statistics. xhat = (x - mean) * inv_std with
// inv_std = 1 / sqrt(var + epsilon); y = gamma * xhat + beta (gamma, beta null: 1, 0).
// xhat and inv_std are kept for the backward pass; scratch: 3 * channels doubles.
struct BatchNormSpec {
  int64_t channels = 0;
  double momentum = 0.99, epsilon = 1e-3;
  // Whether the forward pass normalized with the batch's statistics (training) or with the
  // moving ones (inference, and a frozen layer in training, as Keras'): backward, dx then
  // has no terms through the statistics (dx = gamma * inv_std * dy).
  bool batch_stats = true;
};
void batchnorm_forward(const BatchNormSpec& b, const float* x, float* y, int64_t m,
                       const float* gamma, const float* beta, float* moving_mean,
                       float* moving_var, bool training, float* xhat, float* inv_std,
                       double* scratch);
// Parameter gradients (when not null) and dx (when not null) from dy.
void batchnorm_backward(const BatchNormSpec& b, const float* dy, float* dx, int64_t m,
                        const float* gamma, const float* xhat, const float* inv_std,
                        float* dgamma, float* dbeta, double* scratch);

// --------------------------------------------------- regularisation and clipping
// *acc += sum_i l1 |w_i| + l2 w_i^2 (summed in order, in double); when g is not null,
// g_i += l1 sign(w_i) + 2 l2 w_i.
void l1l2_penalty(const float* w, float* g, int64_t n, float l1, float l2, double* acc);
// g_i = min(max(g_i, -v), v)
void clip_by_value(float* g, int64_t n, float v);
// g *= max_norm / ||g|| when the norm (summed in order, in double) exceeds max_norm.
void clip_by_norm(float* g, int64_t n, double max_norm);

// ------------------------------------------------------------------ embedding
// out[i, :] = table[idx[i], :] for i < n (table: input_dim x dim); the indices are float32
// values that must be integers in [0, input_dim) (embedding_maths.h): std::invalid_argument
// naming the first invalid one otherwise (check_embedding_indices), before anything is written.
void check_embedding_indices(const float* idx, int64_t n, int64_t input_dim);
void embedding_forward(const float* table, const float* idx, int64_t n, int64_t dim,
                       int64_t input_dim, float* out);
// Rows [row0, row1) of the table's gradient: dtable[r, :] = the sum over i < n, in order of
// i, of dy[i, :] where idx[i] == r (0 for a row no position names). Invalid indices are
// skipped (embedding_forward refused them).
void embedding_backward(const float* idx, const float* dy, int64_t n, int64_t dim,
                        int64_t row0, int64_t row1, float* dtable);

// ------------------------------------------------------------------ recurrent
// One time step of a recurrent layer (SimpleRNN, LSTM, GRU) over `batch` samples of `units`
// (recurrent_maths.h has the per-element maths). The engine keeps whole sequences
// (batch, steps, width) and points at one step's rows: a gate buffer's rows (z, dr; G units
// wide, G = 1, 4, 3) are `zld` apart, a state sequence's (h_{t-1}, c_{t-1}, c, rh) `ld`
// apart, and those of the h written forward (and dy read backward) `hld` apart. The
// recurrent projection hr (batch x G units) and the carries dh, dc (batch x units) are
// contiguous. A null hr, h_prev or c_prev stands for zeros (the first step), a null dy for
// no output gradient at this step.
enum class Cell : int { SimpleRNN, LSTM, GRU };
// The gates of a cell: its projections are gates_of(cell) units wide.
inline int64_t gates_of(Cell c) { return c == Cell::LSTM ? 4 : c == Cell::GRU ? 3 : 1; }

struct RnnStep {
  int64_t batch = 0, units = 0;
  int64_t zld = 0, ld = 0, hld = 0;
  Act act = Act::Tanh, rec = Act::Sigmoid;
  int64_t mld = 1;  // the distance between two samples' mask values
};
// Rows [b0, b1) of the step ops of Backend (backend.h has their contract).
void rnn_step_forward(const RnnStep& s, const float* z, const float* hr, const float* h_prev,
                      const float* mask, float* h, int64_t b0, int64_t b1);
void rnn_step_backward(const RnnStep& s, float* z, const float* h, const float* dy,
                       const float* mask, float* dh, int64_t b0, int64_t b1);
void lstm_step_forward(const RnnStep& s, float* z, const float* hr, const float* h_prev,
                       const float* c_prev, const float* mask, float* c, float* h, int64_t b0,
                       int64_t b1);
void lstm_step_backward(const RnnStep& s, float* z, const float* c_prev, const float* c,
                        const float* dy, const float* mask, float* dh, float* dc, int64_t b0,
                        int64_t b1);
void gru_step_forward(const RnnStep& s, float* z, const float* hr, const float* rbias,
                      const float* h_prev, const float* mask, float* rh, float* h, int64_t b0,
                      int64_t b1);
void gru_step_backward(const RnnStep& s, float* z, float* dr, const float* rh,
                       const float* h_prev, const float* dy, const float* mask, float* dh,
                       int64_t b0, int64_t b1);

// A product with broadcasting over up to three axes: out (n0 x n1 x n2, contiguous) = a * m,
// plus out's own values when `accumulate`, element (i, j, k) reading a[i a0 + j a1 + k] and
// m[i m0 + j m1 + k]; a stride of 0 repeats that operand along the axis. E.g. a (rows, width)
// mask over every step of a (rows, steps, width) sequence: a0 = steps * width, a1 = width,
// m0 = width, m1 = 0. out may be a itself when a's strides are out's (in place).
struct Broadcast3 {
  int64_t n0 = 0, n1 = 0, n2 = 0;
  int64_t a0 = 0, a1 = 0, m0 = 0, m1 = 0;
  bool accumulate = false;
  DC_HD int64_t size() const { return n0 * n1 * n2; }
};
// Element `i` (in out's order) of that product.
DC_HD inline void broadcast_multiply_at(const Broadcast3& s, const float* a, const float* m,
                                        float* out, int64_t i) {
  const int64_t k = i % s.n2, r = i / s.n2, j = r % s.n1, i0 = r / s.n1;
  const float v = a[i0 * s.a0 + j * s.a1 + k] * m[i0 * s.m0 + j * s.m1 + k];
  out[i] = s.accumulate ? out[i] + v : v;
}

// Bidirectional's merge of its two directions' outputs over `rows` samples of `steps` steps
// (steps = 1 for the last states only): a (rows, steps, ua) from the forward layer, b (rows,
// steps, ub) from the backward one with its steps in reverse order (b's step T-1-t meets a's
// step t, as Keras flips it back). y = concat(a, b) (ua + ub wide), a + b, a * b or
// (a + b) / 2 (ua wide, ua = ub). The backward pass writes da and db, each element once.
enum class Merge : int { Concat, Sum, Mul, Ave };

struct BidirMerge {
  Merge mode = Merge::Concat;
  int64_t rows = 0, steps = 0, ua = 0, ub = 0;
  DC_HD int64_t width() const { return mode == Merge::Concat ? ua + ub : ua; }
};
// Positions [p0, p1) of the rows * steps (sample, step) positions.
void bidir_merge_forward(const BidirMerge& m, const float* a, const float* b, float* y,
                         int64_t p0, int64_t p1);
void bidir_merge_backward(const BidirMerge& m, const float* a, const float* b, const float* dy,
                          float* da, float* db, int64_t p0, int64_t p1);

// -------------------------------------------------------------- merge layers
// Keras' Add, Subtract (two inputs), Multiply, Average, Maximum and Minimum: element by
// element over inputs of one shape (merge_maths.h). The inputs' pointers travel by value
// (a CUDA kernel's argument), so a merge takes at most kMaxMergeInputs.
enum class MergeOp : int { Add, Subtract, Multiply, Average, Maximum, Minimum };
constexpr int kMaxMergeInputs = 16;
struct MergeInputs {
  const float* x[kMaxMergeInputs] = {};
  int count = 0;
};
struct MergeGrads {
  float* dx[kMaxMergeInputs] = {};  // null: that input needs no gradient
  int count = 0;
};

// ----------------------------------------------------------------- optimizers
enum class Opt : int { SGD, Adam, AdamW, RMSprop, Adagrad };

// Learning-rate schedules, evaluated at each optimizer step (Keras 3 formulas).
enum class Schedule : int { Constant, ExponentialDecay, PiecewiseConstantDecay, CosineDecay };

struct ScheduleSpec {
  Schedule kind = Schedule::Constant;
  double initial_learning_rate = 0.01;
  double decay_steps = 1.0;
  double decay_rate = 1.0;  // exponential: lr0 * rate^(step / decay_steps)
  bool staircase = false;   // exponential: floor(step / decay_steps)
  std::vector<double> boundaries, values;  // piecewise: values[i] for boundaries[i-1] < step <= boundaries[i]
  double alpha = 0.0;       // cosine: final fraction of the rate
  bool warmup = false;      // cosine: linear warm-up from the initial rate to warmup_target
  double warmup_target = 0.0, warmup_steps = 0.0;
};

// The learning rate for the update that follows `step` earlier updates.
double schedule_value(const ScheduleSpec& s, int64_t step);

struct OptSpec {
  // Hyper-parameters are doubles so that float64 kernels use the exact values.
  Opt kind = Opt::SGD;
  double learning_rate = 0.01;
  double momentum = 0.0;  // SGD, RMSprop
  bool nesterov = false;
  double beta_1 = 0.9, beta_2 = 0.999;  // Adam(W)
  double epsilon = 1e-7;
  double rho = 0.9;  // RMSprop
  bool centered = false;
  double weight_decay = 0.0;               // decoupled decay (AdamW's default 0.004)
  double initial_accumulator_value = 0.1;  // Adagrad
  double clipnorm = 0.0, clipvalue = 0.0, global_clipnorm = 0.0;  // 0: off
  ScheduleSpec schedule;  // kind Constant: learning_rate is used as it is
};

// Number of state slots (each the size of the parameters) the optimizer keeps.
int optimizer_slots(const OptSpec& o);
// Initial value of each slot.
double optimizer_slot_init(const OptSpec& o, int slot);

// The values of a training step that change from step to step. The engine writes them
// into device memory before the step, and the kernels read them there, so that a step
// captured once (a CUDA graph) replays unchanged.
struct StepValues {
  float lr = 0.f;     // learning rate of this update
  int64_t step = 0;   // 1-based count of updates, this one included
};

// One update of n parameters w with gradient g (g is read only). `step` is the
// 1-based iteration count; `lr` the learning rate for this step. s0/s1/s2: slots.
template <class T>
void optimizer_update(const OptSpec& o, T lr, int64_t step, T* w, const T* g, T* s0, T* s1,
                      T* s2, int64_t n);

}  // namespace deepcore
