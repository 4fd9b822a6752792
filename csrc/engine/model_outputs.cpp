// A model's outputs: compile (each output's loss, the optimizer), the metrics, the custom
// losses' and metrics' programs, each output's labels and weights of a batch, the losses'
// scales and the metrics' accumulation. The passes and runs are model.cpp's.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "deepcore/model.h"
#include "layers.h"

namespace deepcore {

void Model::compile(const LossSpec& loss, const OptSpec& opt,
                    const std::vector<MetricSpec>& metrics) {
  compile(std::vector<std::optional<LossSpec>>(std::max<size_t>(1, heads_.size()), loss), opt,
          metrics);
}

void Model::check_metric_outputs(const std::vector<MetricSpec>& metrics) const {
  for (const MetricSpec& m : metrics)
    if (m.output < 0 || m.output >= num_outputs())
      throw std::invalid_argument("a metric of output " + std::to_string(m.output) +
                                  ", the model has " + std::to_string(num_outputs()));
}

void Model::compile(const std::vector<std::optional<LossSpec>>& losses, const OptSpec& opt,
                    const std::vector<MetricSpec>& metrics) {
  std::lock_guard<FairLock> lock(mutex_);
  if (!built_) throw std::invalid_argument("build the model before compiling it");
  if (losses.size() != heads_.size())
    throw std::invalid_argument("the model has " + std::to_string(heads_.size()) +
                                " outputs, received " + std::to_string(losses.size()) + " losses");
  if (std::none_of(losses.begin(), losses.end(), [](const auto& l) { return l.has_value(); }))
    throw std::invalid_argument("compile needs a loss for at least one output");
  check_metric_outputs(metrics);
  for (size_t h = 0; h < heads_.size(); ++h) {
    Head& head = heads_[h];
    head.loss = losses[h];
    head.fused = false;
    if (!head.loss) continue;
    // Probabilities followed by a cross-entropy, read by nothing else: the loss from the
    // logits (log-sum-exp), so that saturated outputs keep finite losses and gradients.
    const LossSpec& l = *head.loss;
    const Act last = layers_[size_t(head.layer)]->activation().kind;
    const bool ce = l.kind == Loss::CategoricalCrossentropy ||
                    l.kind == Loss::SparseCategoricalCrossentropy;
    head.fused = !l.from_logits && readers_[size_t(head.layer)].size() == 1 &&
                 ((last == Act::Softmax && ce) ||
                  (last == Act::Sigmoid && l.kind == Loss::BinaryCrossentropy));
    if (head.fused) head.loss->from_logits = true;
  }
  opt_ = opt;
  metrics_ = metrics;
  plan_gradients();  // (for the layers frozen now)
  capacity_ = 0;
  const int nslots = optimizer_slots(opt);
  const int64_t n = weights_.size();
  if (slots_.size() != nslots * n) slots_ = DeviceArray<float>(be_, nslots * n);
  for (int k = 0; k < nslots; ++k)
    be_.fill(slots_.data() + k * n, static_cast<float>(optimizer_slot_init(opt, k)), n);
  iterations_ = 0;
  compiled_ = true;
}

void Model::set_programs(const std::vector<OutputProgram>& programs) {
  std::lock_guard<FairLock> lock(mutex_);
  if (!built_) throw std::invalid_argument("build the model before setting its programs");
  std::vector<Program> made;
  for (const OutputProgram& spec : programs) {
    if (spec.output < 0 || spec.output >= num_outputs())
      throw std::invalid_argument("a program of output " + std::to_string(spec.output) +
                                  ", the model has " + std::to_string(num_outputs()));
    Program p;
    p.output = spec.output;
    p.labels = bounded_size(spec.labels);
    if (p.labels <= 0)
      throw std::invalid_argument("a program's labels of shape " + shape_str(spec.labels));
    p.layer = std::make_unique<OpLayer>(spec.steps, spec.constants);
    p.layer->build_inputs({spec.labels, layers_[size_t(heads_[size_t(spec.output)].layer)]->out_shape});
    p.width = shape_size(p.layer->out_shape);
    made.push_back(std::move(p));
  }
  programs_ = std::move(made);
  capacity_ = 0;  // (their buffers)
}

Model::Program& Model::run_program(int64_t p, int64_t h, int64_t rows) {
  Program& prog = programs_[size_t(p)];
  prog_in_.assign({ys_[size_t(h)], acts_[size_t(heads_[size_t(h)].layer)].data()});
  prog.layer->forward_inputs(be_, prog_in_, prog.values.data(), rows, false, nullptr);
  return prog;
}

void Model::set_metrics(const std::vector<MetricSpec>& metrics) {
  std::lock_guard<FairLock> lock(mutex_);
  check_metric_outputs(metrics);
  metrics_ = metrics;
}

double Model::loss_scale(const Head& h, int64_t rows) const {
  const int64_t per = h.loss->program >= 0 ? 1 : h.per;
  return h.loss->sum ? 1.0 : 1.0 / static_cast<double>(rows * per);
}

double Model::batch_loss(const double* batch, int64_t rows) const {
  double sum = batch[2 * heads_.size()];
  for (size_t h = 0; h < heads_.size(); ++h)
    if (heads_[h].loss) sum += heads_[h].loss->weight * loss_scale(heads_[h], rows) * batch[2 * h];
  return sum;
}

void Model::prepare_heads(const Dataset& data, int64_t rows) {
  const size_t H = heads_.size();
  if (data.wcols() != 1 && data.wcols() != int64_t(H))
    throw std::invalid_argument("the sample weights have " + std::to_string(data.wcols()) +
                                " values per sample; the model has " + std::to_string(H) +
                                " outputs (one weight per sample, or one per output)");
  // The custom losses' and metrics' programs: each of its output, on labels of its size.
  auto check_program = [&](int p, int64_t h, const char* what) {
    if (p < 0) return;
    if (p >= int(programs_.size()) || programs_[size_t(p)].output != h)
      throw std::invalid_argument(std::string("a custom ") + what + " of output " +
                                  std::to_string(h) + " has no program " + std::to_string(p));
    if (out_mask_)
      throw std::invalid_argument(std::string("a custom ") + what +
                                  " with a sequence mask reaching the output");
  };
  for (size_t h = 0; h < H; ++h)
    if (heads_[h].loss) check_program(heads_[h].loss->program, int64_t(h), "loss");
  for (const MetricSpec& m : metrics_) check_program(m.program, m.output, "metric");
  if (H == 1) heads_[0].ycols = data.ycols();
  for (const Program& p : programs_)
    if (p.labels != heads_[size_t(p.output)].ycols)
      throw std::invalid_argument("a custom loss or metric takes " + std::to_string(p.labels) +
                                  " label values per sample, output " +
                                  std::to_string(p.output) + " has " +
                                  std::to_string(heads_[size_t(p.output)].ycols));
  if (H == 1) return;
  int64_t total = 0;
  for (const Head& h : heads_) total += h.ycols;
  if (total != data.ycols())
    throw std::invalid_argument("the labels have " + std::to_string(data.ycols()) +
                                " values per sample, the model's outputs take " +
                                std::to_string(total));
  for (Head& h : heads_) {
    h.y.reserve(be_, rows * h.ycols);
    if (data.wcols() > 1) h.w.reserve(be_, rows);
  }
}

void Model::split_labels(const float* y, const float* w, int64_t rows, int64_t wcols) {
  const size_t H = heads_.size();
  last_rows_ = rows;
  ys_.assign(H, y);
  ws_.assign(H, w);
  if (H == 1) return;
  int64_t total = 0;
  for (const Head& h : heads_) total += h.ycols;
  for (size_t k = 0, at = 0; k < H; ++k) {
    Head& h = heads_[k];
    be_.mask_rows(y + at, total, nullptr, 0, rows, h.ycols, h.y.data(), h.ycols);
    ys_[k] = h.y.data();
    at += size_t(h.ycols);
    if (w && wcols > 1) {
      be_.mask_rows(w + k, wcols, nullptr, 0, rows, 1, h.w.data(), 1);
      ws_[k] = h.w.data();
    }
  }
}

int64_t Model::last_rows() const {
  std::lock_guard<FairLock> lock(mutex_);
  return last_rows_;
}

std::vector<float> Model::last_batch(int64_t output, int part) const {
  std::lock_guard<FairLock> lock(mutex_);
  if (output < 0 || output >= int64_t(heads_.size()) || part < 0 || part > 2)
    throw std::invalid_argument("last_batch: no output " + std::to_string(output) +
                                " or part " + std::to_string(part));
  if (last_rows_ == 0 || ys_.size() != heads_.size()) return {};
  const Head& h = heads_[size_t(output)];
  const float* src = part == 0   ? acts_[size_t(h.layer)].data()
                     : part == 1 ? ys_[size_t(output)]
                                 : ws_[size_t(output)];
  if (!src) return {};
  const int64_t per_row =
      part == 0 ? shape_size(layers_[size_t(h.layer)]->out_shape) : part == 1 ? h.ycols : 1;
  std::vector<float> out(size_t(last_rows_ * per_row));
  be_.download(out.data(), src, sizeof(float) * out.size());
  return out;
}

void Model::accumulate_metrics(const std::vector<MetricSpec>& metrics, int64_t rows,
                               double* state) {
  // With a mask reaching the output: loss_and_backward's weights for this batch (mask times
  // sample weights), or the mask alone for the metrics that take no sample weights.
  const float* mask = out_mask_ ? out_mask_->output_mask() : nullptr;
  for (const MetricSpec& m : metrics) {
    const Head& h = heads_[size_t(m.output)];
    const float* weighted = out_mask_ ? maskw_.data() : ws_[size_t(m.output)];
    if (m.program >= 0) {  // a custom metric: the mean of its program's values
      Program& p = run_program(m.program, m.output, rows);
      be_.metric_update(m, p.values.data(), p.values.data(), m.weighted ? weighted : nullptr,
                        rows, p.width, p.width, state);
      state += metric_state_size(m);
      continue;
    }
    be_.metric_update(m, acts_[size_t(h.layer)].data(), ys_[size_t(m.output)],
                      m.weighted ? weighted : mask, rows * h.per,
                      layers_[size_t(h.layer)]->out_shape.back(), h.ycols / h.per, state);
    state += metric_state_size(m);
  }
}

int64_t Model::num_states(const std::vector<MetricSpec>& metrics) const {
  int64_t size = 2 * int64_t(heads_.size()) + 2;  // (loss sum, rows) per output, penalty's
  for (const MetricSpec& m : metrics) size += metric_state_size(m);
  return size;
}

int64_t Model::run_states() const {
  std::lock_guard<FairLock> lock(mutex_);
  return num_states(metrics_);
}

}  // namespace deepcore
