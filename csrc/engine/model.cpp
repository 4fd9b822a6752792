// A model's training and inference: its state (weights, optimizer, random stream), the
// workspace, the forward and backward passes over its graph, the update and the runs (fit,
// evaluate, predict). Its architecture and the plan of its weights: model_build.cpp; its
// outputs' losses and metrics: model_outputs.cpp.
#include "deepcore/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "deepcore/rng.h"
#include "layers.h"

namespace deepcore {

Dataset::Dataset(Backend& be, const float* x, const float* y, const float* w, int64_t rows,
                 int64_t in_size, int64_t ycols, int64_t wcols)
    : Dataset(be, std::vector<const float*>{x}, std::vector<int64_t>{in_size}, y, w, rows, ycols,
              wcols) {}

Dataset::Dataset(Backend& be, const std::vector<const float*>& xs,
                 const std::vector<int64_t>& in_sizes, const float* y, const float* w,
                 int64_t rows, int64_t ycols, int64_t wcols)
    : be_(&be),
      xs_(xs),
      in_sizes_(in_sizes),
      y_(y),
      w_(w),
      rows_(rows),
      ycols_(y ? ycols : 0),
      wcols_(w ? wcols : 1) {
  if (xs.empty() || xs.size() != in_sizes.size())
    throw std::invalid_argument("a dataset has an array of inputs and its size per sample");
  for (int64_t s : in_sizes) in_size_ += s;
  if (be.host_memory()) return;
  auto put = [&](DeviceArray<float>& d, const float* host, int64_t n) -> const float* {
    if (!host) return nullptr;
    d = DeviceArray<float>(be, n);
    d.upload(host, n);
    return d.data();
  };
  dxs_.resize(xs.size());
  for (size_t j = 0; j < xs.size(); ++j) xs_[j] = put(dxs_[j], xs[j], rows * in_sizes[j]);
  y_ = put(dy_, y, rows * ycols_);
  w_ = put(dw_, w, rows * wcols_);
}

Model::Model(Device device) : be_(get_backend(device)) {}
Model::~Model() = default;

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
  for (size_t i = 0; i < L; ++i) {
    acts_[i].reserve(be_, rows * shape_size(layers_[i]->out_shape));
    if (readers_[i].size() > 1) gsum_[i].reserve(be_, rows * shape_size(layers_[i]->out_shape));
    layers_[i]->reserve(be_, rows);
  }
  grad_slots_.resize(slot_size_.size());
  for (size_t s = 0; s < slot_size_.size(); ++s) grad_slots_[s].reserve(be_, rows * slot_size_[s]);
  xbuf_.reserve(be_, rows * shape_size(input_shape_));
  ins_.resize(input_shapes_.size() > 1 ? input_shapes_.size() : 0);
  xin_.resize(ins_.size());
  for (size_t j = 0; j < ins_.size(); ++j) ins_[j].reserve(be_, rows * shape_size(input_shapes_[j]));
  if (out_mask_) maskw_.reserve(be_, 2 * rows * heads_[0].per);
  for (Program& p : programs_) {
    p.layer->reserve(be_, rows);
    p.values.reserve(be_, rows * p.width);
    p.grads.reserve(be_, rows * p.width);
  }
  capacity_ = rows;
}

// ------------------------------------------------------------------- passes
void Model::point_inputs(const Dataset& data, int64_t r0, bool fixed) {
  split_ = data.inputs() == 1;
  if (split_) return;
  for (size_t j = 0; j < ins_.size(); ++j)
    xin_[j] = fixed ? ins_[j].data() : data.x(j) + r0 * data.in_size(j);
}

void Model::forward(const float* x, int64_t rows, bool training, const uint64_t* seeds) {
  // Several inputs side by side in x: each one's columns of the batch's rows, contiguous.
  for (size_t j = 0, at = 0; split_ && j < ins_.size(); ++j) {
    const int64_t size = shape_size(input_shapes_[j]), total = shape_size(input_shape_);
    be_.mask_rows(x + at, total, nullptr, 0, rows, size, ins_[j].data(), size);
    xin_[j] = ins_[j].data();
    at += size_t(size);
  }
  std::vector<const float*>& xs = layer_in_;
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (!training) poll_interrupt();  // a training step is never left half-done
    const uint64_t* seed = seeds ? seeds + i : nullptr;
    if (!training && pools_next_[i]) {  // the convolution writes the pooling's outputs
      const Window2D& pool = *static_cast<const Pool2D&>(*layers_[i + 1]).disjoint_max_window();
      static_cast<Conv2D&>(*layers_[i]).forward_pooled(be_, value(inputs_[i][0], x),
                                                       acts_[i + 1].data(), rows, pool);
      ++i;
      continue;
    }
    if (layers_[i]->multi_input()) {
      xs.clear();
      for (int64_t v : inputs_[i]) xs.push_back(value(v, x));
      layers_[i]->forward_inputs(be_, xs, acts_[i].data(), rows, training, seed);
    } else {
      layers_[i]->forward(be_, value(inputs_[i][0], x), acts_[i].data(), rows, training, seed);
    }
  }
}

// A value read once: its reader's gradient for it. Read more often: their sum.
const float* Model::value_grad(int64_t v, int64_t rows) {
  const auto& rd = readers_[size_t(v)];
  const float* first = edge_grad(size_t(rd[0].first), rd[0].second);
  if (rd.size() == 1) return first;
  float* sum = gsum_[size_t(v)].data();
  const int64_t n = rows * shape_size(layers_[size_t(v)]->out_shape);
  MergeInputs in;
  in.count = 2;
  in.x[0] = sum;
  be_.copy(sum, first, sizeof(float) * static_cast<size_t>(n));
  for (size_t r = 1; r < rd.size(); ++r) {
    in.x[1] = edge_grad(size_t(rd[r].first), rd[r].second);
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

void Model::loss_and_backward(const float* x, const float* y, const float* w, int64_t rows,
                              int64_t wcols, bool backward, const uint64_t* seeds) {
  forward(x, rows, backward, seeds);
  split_labels(y, w, rows, wcols);
  const size_t L = layers_.size();
  for (size_t k = 0; k < heads_.size(); ++k) {
    const Head& h = heads_[k];
    float* grad = backward ? edge_grad(L + k, 0) : nullptr;
    const Layer& last = *layers_[size_t(h.layer)];
    const float* out = acts_[size_t(h.layer)].data();
    if (!h.loss) {  // an output not trained: no gradient from it
      if (grad) be_.zero(grad, sizeof(float) * size_t(rows * shape_size(last.out_shape)));
      continue;
    }
    const double scale = h.loss->weight * loss_scale(h, rows);
    if (h.loss->program >= 0) {  // a custom loss: its program's values, then their gradient
      Program& p = run_program(h.loss->program, int64_t(k), rows);
      be_.loss(*h.loss, p.values.data(), nullptr, p.values.data(), ws_[k],
               backward ? p.grads.data() : nullptr, rows, p.width, p.width,
               static_cast<float>(scale), batch_.data() + 2 * k);
      if (grad) {
        prog_dx_.assign({nullptr, grad});
        p.layer->backward_inputs(be_, prog_in_, p.values.data(), p.grads.data(), prog_dx_, rows,
                                 false);
      }
      continue;
    }
    const int64_t cols = last.out_shape.back(), lrows = rows * h.per;
    const float* lw = ws_[k];  // the loss's weights
    if (out_mask_) {
      be_.mask_weights(out_mask_->output_mask(), lw, rows, h.per, maskw_.data(),
                       maskw_.data() + lrows);
      lw = maskw_.data() + lrows;
    } else if (lw && h.per != 1) {
      throw std::invalid_argument("sample weights need one loss value per sample");
    }
    const float* pred = h.fused ? last.preact(value(inputs_[size_t(h.layer)][0], x), out) : out;
    be_.loss(*h.loss, pred, h.fused ? out : nullptr, ys_[k], lw, grad, lrows, cols,
             h.ycols / h.per, static_cast<float>(scale), batch_.data() + 2 * k);
  }
  if (!backward) return;
  std::vector<const float*>& xs = layer_in_;
  std::vector<float*>& dxs = layer_dx_;
  for (size_t i = L; i-- > 0;) {
    if (!needs_grad_[i]) continue;  // no weights to train here or before
    const auto& rd = readers_[i];  // read by a loss from its logits alone: dy is for them
    const bool preact = rd.size() == 1 && rd[0].first >= int64_t(L) &&
                        heads_[size_t(rd[0].first) - L].fused;
    const float* dy = value_grad(int64_t(i), rows);
    if (layers_[i]->multi_input()) {
      xs.clear();
      dxs.clear();
      for (size_t k = 0; k < inputs_[i].size(); ++k) {
        xs.push_back(value(inputs_[i][k], x));
        dxs.push_back(edge_grad(i, k));
      }
      layers_[i]->backward_inputs(be_, xs, acts_[i].data(), dy, dxs, rows, preact);
    } else {
      const int64_t v = inputs_[i][0];
      layers_[i]->backward(be_, value(v, x), acts_[i].data(), dy,
                           edge_grad(i, 0), rows, preact);
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

bool Model::frozen(const Param& p) const { return layers_[size_t(p.layer)]->frozen(); }

void Model::set_trainable(int64_t layer, bool trainable) {
  std::lock_guard<FairLock> lock(mutex_);
  if (layer < 0 || layer >= num_layers())
    throw std::out_of_range("set_trainable: layer " + std::to_string(layer) + " of " +
                            std::to_string(num_layers()));
  layers_[size_t(layer)]->set_frozen(!trainable);
  if (trainable || !built_) return;
  // Its gradients read zero from now on (some layers do not compute them when frozen).
  for (const Param& p : params_)
    if (p.trainable && p.layer == layer)
      be_.zero(grads_.data() + p.offset, sizeof(float) * static_cast<size_t>(shape_size(p.shape)));
}

void Model::regularize(bool add_to_grads) {
  if (!any_regularizer_) return;
  double* penalty = batch_.data() + 2 * heads_.size();
  be_.zero(penalty, sizeof(double));
  for (const Param& p : params_)
    if (p.trainable && !frozen(p) && (p.l1 != 0.f || p.l2 != 0.f))
      be_.l1l2_penalty(weights_.data() + p.offset, add_to_grads ? grads_.data() + p.offset : nullptr,
                       shape_size(p.shape), p.l1, p.l2, penalty);
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

void Model::check_data(const Dataset& data, bool labels) const {
  if (&data.backend() != &be_)
    throw std::invalid_argument(std::string("the data is on the ") + data.backend().name() +
                                " device, the model on the " + be_.name() + " device");
  if (data.in_size() != shape_size(input_shape_))
    throw std::invalid_argument("the data has " + std::to_string(data.in_size()) +
                                " values per sample, the model's input " +
                                std::to_string(shape_size(input_shape_)));
  if (data.inputs() > 1) {  // each input in an array of its own
    bool ok = data.inputs() == int64_t(input_shapes_.size());
    for (int64_t j = 0; ok && j < data.inputs(); ++j)
      ok = data.in_size(size_t(j)) == shape_size(input_shapes_[size_t(j)]);
    if (!ok)
      throw std::invalid_argument("the data has " + std::to_string(data.inputs()) +
                                  " arrays of inputs; they do not match the model's " +
                                  std::to_string(num_inputs()) + " inputs");
  }
  if (labels && !data.y()) throw std::invalid_argument("the data has no labels");
}

RunResult Model::run(const Dataset& data, int64_t batch_size, bool train, const int64_t* order,
                     int64_t first, int64_t n, const std::vector<double>* carry,
                     bool stop_on_nonfinite) {
  std::unique_lock<FairLock> lock(mutex_);
  check_compiled();
  check_data(data, true);
  const int64_t ycols = data.ycols(), wcols = data.wcols();
  check_batch(n, ycols, batch_size);
  if (!order && (first < 0 || n > data.rows() - first))
    throw std::invalid_argument("rows " + std::to_string(first) + ".." +
                                std::to_string(first + n) + " are not all in the data (" +
                                std::to_string(data.rows()) + " rows)");
  const float *x = data.x(), *y = data.y(), *w = data.w();
  const int64_t in_size = data.in_size();
  const int64_t cap = std::min(batch_size, n);
  check_rows(cap);
  prepare_heads(data, cap);
  // This run's metrics: a compile or set_metrics from another thread between two
  // batches applies to the next run.
  const std::vector<MetricSpec> metrics = metrics_;
  RunResult res;
  std::vector<double>& states = res.states;
  const int64_t nstates = num_states(metrics), H = int64_t(heads_.size());
  const int64_t loss_at = nstates - 2 * H - 2;  // the (loss sum, rows) pairs
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
  batch_.reserve(be_, 2 * H + 1);
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
    wbuf_.reserve(be_, cap * wcols);
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
    const bool arrays = data.inputs() > 1;  // each input in an array of its own (xin_)
    const float* xb = arrays ? nullptr : x + r0 * in_size;
    const float *yb = y + r0 * ycols, *wb = w ? w + r0 * wcols : nullptr;
    const int64_t* idx = order ? rows_order + start : nullptr;
    point_inputs(data, r0, order || capture);
    if (order && capture) {
      be_.copy(idx_.data(), idx, sizeof(int64_t) * rows);
      idx = idx_.data();
    } else if (!order && capture) {
      for (size_t j = 0; arrays && j < ins_.size(); ++j)
        be_.copy(ins_[j].data(), data.x(j) + r0 * data.in_size(j),
                 sizeof(float) * size_t(rows * data.in_size(j)));
      if (!arrays) be_.copy(xbuf_.data(), xb, sizeof(float) * rows * in_size);
      be_.copy(ybuf_.data(), yb, sizeof(float) * rows * ycols);
      if (w) be_.copy(wbuf_.data(), wb, sizeof(float) * rows * wcols);
    }
    if (order || capture) {
      xb = arrays ? nullptr : xbuf_.data();
      yb = ybuf_.data();
      wb = w ? wbuf_.data() : nullptr;
    }
    // The step: device work only, on fixed addresses (so that it can be captured).
    auto step = [&] {
      if (order) {
        for (size_t j = 0; arrays && j < ins_.size(); ++j)
          be_.gather_rows(data.x(j), idx, rows, data.in_size(j), ins_[j].data());
        if (!arrays) be_.gather_rows(x, idx, rows, in_size, xbuf_.data());
        be_.gather_rows(y, idx, rows, ycols, ybuf_.data());
        if (w) be_.gather_rows(w, idx, rows, wcols, wbuf_.data());
      }
      loss_and_backward(xb, yb, wb, rows, wcols, train, train ? step_seeds_ : nullptr);
      regularize(train);
      for (int64_t h = 0; h < H; ++h)  // each output's loss, then the penalty (after a 0)
        if (heads_[size_t(h)].loss)
          be_.add_batch_loss(batch_.data() + 2 * h, loss_scale(heads_[size_t(h)], rows), rows,
                             totals.data() + loss_at + 2 * h);
      be_.add_batch_loss(batch_.data() + 2 * H - 1, 1.0, rows, totals.data() + loss_at + 2 * H);
      accumulate_metrics(metrics, rows, totals.data());
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
    ++res.batches;
    if (stop_on_nonfinite) {  // (reads the batch's loss: one copy per batch)
      std::vector<double> bl(size_t(2 * H + 1));
      batch_.download(bl.data(), 2 * H + 1);
      if (!std::isfinite(batch_loss(bl.data(), rows))) {
        res.nonfinite = true;
        break;
      }
    }
  }
  states.resize(static_cast<size_t>(nstates));
  totals.download(states.data(), nstates);
  const double seen = states[size_t(nstates - 1)];
  res.loss = states[size_t(nstates - 2)] / seen;
  for (int64_t h = 0; h < H; ++h) {
    const Head& head = heads_[size_t(h)];
    const double mean = head.loss ? states[size_t(loss_at + 2 * h)] / seen : 0.0;
    res.output_losses.push_back(mean);
    if (head.loss) res.loss += head.loss->weight * mean;
  }
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

RunResult Model::evaluate(const Dataset& data, int64_t batch_size,
                          const std::vector<double>* carry, int64_t first, int64_t count) {
  if (first < 0 || first > data.rows() || count < -1 || first + count > data.rows())
    throw std::invalid_argument("evaluate: rows " + std::to_string(first) + " + " +
                                std::to_string(count) + " out of range for " +
                                std::to_string(data.rows()) + " rows");
  return run(data, batch_size, false, nullptr, first, count < 0 ? data.rows() - first : count,
             carry, false);
}

void Model::predict(const Dataset& data, int64_t batch_size, float* out, bool training) {
  std::lock_guard<FairLock> lock(mutex_);
  if (!built_) throw std::invalid_argument("the model is not built yet");
  check_data(data, false);
  const int64_t n = data.rows();
  check_batch(n, 1, batch_size);
  if (be_.host_memory() && !training) batch_size = predict_rows_;
  const int64_t in_size = data.in_size();
  int64_t out_size = 0;  // a row's outputs, one after the other
  for (const Head& h : heads_) out_size += shape_size(layers_[size_t(h.layer)]->out_shape);
  reserve(std::min(batch_size, n));
  // On a device, the outputs gather there and come back in one copy.
  DeviceArray<float> outputs;
  if (!be_.host_memory()) outputs = DeviceArray<float>(be_, n * out_size);
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t rows = std::min(batch_size, n - start);
    point_inputs(data, start, false);
    if (training) {  // one step's seeds, drawn as a training step draws them
      fill_steps(1);
      load_step(0);
    }
    forward(split_ ? data.x() + start * in_size : nullptr, rows, training,
            training ? step_seeds_ : nullptr);
    float* dst = (outputs.size() ? outputs.data() : out) + start * out_size;
    for (const Head& h : heads_) {
      const float* o = acts_[size_t(h.layer)].data();
      const int64_t size = shape_size(layers_[size_t(h.layer)]->out_shape);
      if (heads_.size() > 1)
        be_.mask_rows(o, size, nullptr, 0, rows, size, dst, out_size);
      else if (outputs.size())
        be_.copy(dst, o, sizeof(float) * rows * size);
      else
        be_.download(dst, o, sizeof(float) * rows * size);
      dst += size;
    }
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
  prepare_heads(data, n);
  const int64_t H = int64_t(heads_.size());
  batch_.reserve(be_, 2 * H + 1);
  be_.zero(batch_.data(), batch_.bytes());
  fill_steps(1);
  load_step(0);
  point_inputs(data, 0, false);
  loss_and_backward(split_ ? data.x() : nullptr, data.y(), data.w(), n, data.wcols(), true,
                    step_seeds_);
  regularize(true);
  grads_.download(grad_out, grads_.size());
  std::vector<double> b(size_t(2 * H + 1));
  batch_.download(b.data(), 2 * H + 1);
  return batch_loss(b.data(), n);
}

}  // namespace deepcore
