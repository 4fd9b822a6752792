// The guarded backend (tests only): the CPU's kernels, on memory that the engine cannot
// read. Its buffers are handed out 2**62 bytes above where they lie, an address no process
// maps, and translated back inside each op; so an engine that touches device memory
// itself faults, and a host pointer passed to an op is refused. It counts the copies
// between host and device, which must not grow with the number of batches.
#include <atomic>
#include <functional>
#include <memory>
#include <vector>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "deepcore/backend.h"

namespace deepcore {
namespace {

constexpr uintptr_t kOffset = uintptr_t(1) << 62;

std::atomic<int64_t> g_uploads{0}, g_downloads{0};

struct Recorded final : Graph {
  std::vector<std::function<void()>> ops;
  void replay() override {
    for (auto& op : ops) op();
  }
};
// The ops this thread is recording, or null.
thread_local std::vector<std::function<void()>>* t_recording = nullptr;

// The real address of a device pointer (null stays null).
template <class T>
T* real(T* p) {
  if (!p) return p;
  const auto u = reinterpret_cast<uintptr_t>(p);
  if (u < kOffset)
    throw std::logic_error("guarded backend: an op was given a host pointer, not device memory");
  return reinterpret_cast<T*>(u - kOffset);
}

class GuardedBackend final : public Backend {
 public:
  const char* name() const override { return "guarded"; }
  bool host_memory() const override { return false; }

  // Capture records the ops as closures (with their arguments) and replays them: an
  // engine that computes a captured step's values on the host, instead of reading them
  // from device memory, replays stale values and fails the tests against the CPU.
  bool can_capture() const override { return true; }
  std::pair<int64_t, int64_t> copies() const override {
    return {g_uploads.load(), g_downloads.load()};
  }
  std::unique_ptr<Graph> capture(const std::function<void()>& ops) override {
    if (t_recording) throw std::logic_error("guarded backend: capture inside a capture");
    auto graph = std::make_unique<Recorded>();
    t_recording = &graph->ops;
    try {
      ops();
    } catch (...) {
      t_recording = nullptr;
      throw;
    }
    t_recording = nullptr;
    return graph;
  }

  void* allocate(size_t bytes) override {
    void* p = cpu_.allocate(bytes);
    return p ? reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) + kOffset) : nullptr;
  }
  void deallocate(void* p) override { cpu_.deallocate(real(p)); }
  void upload(void* dst, const void* src, size_t bytes) override {
    refuse_copy_while_capturing();
    ++g_uploads;
    cpu_.copy(real(dst), src, bytes);
  }
  void download(void* dst, const void* src, size_t bytes) override {
    refuse_copy_while_capturing();
    ++g_downloads;
    cpu_.copy(dst, real(src), bytes);
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    run([=] { cpu_.copy(real(dst), real(src), bytes); });
  }
  void fill(float* dst, float value, int64_t n) override { run([=] { cpu_.fill(real(dst), value, n); }); }
  void zero(void* dst, size_t bytes) override { run([=] { cpu_.zero(real(dst), bytes); }); }

  void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
            int64_t lda, const float* b, int64_t ldb, float beta, float* c,
            int64_t ldc) override {
    run([=] { cpu_.gemm(ta, tb, m, n, k, alpha, real(a), lda, real(b), ldb, beta, real(c), ldc); });
  }
  void bias_act(ActSpec act, const float* bias, float* z, float* y, int64_t rows,
                int64_t cols) override {
    run([=] { cpu_.bias_act(act, real(bias), real(z), real(y), rows, cols); });
  }
  void affine_forward(ActSpec act, const float* a, const float* w, const float* bias, float* z,
                      float* y, int64_t m, int64_t k, int64_t n) override {
    run([=] { cpu_.affine_forward(act, real(a), real(w), real(bias), real(z), real(y), m, k, n); });
  }
  void act_backward(ActSpec act, const float* x, const float* y, const float* dy, float* dx,
                    int64_t rows, int64_t cols) override {
    run([=] { cpu_.act_backward(act, real(x), real(y), real(dy), real(dx), rows, cols); });
  }
  void col_sum(const float* x, int64_t rows, int64_t cols, float* out) override {
    run([=] { cpu_.col_sum(real(x), rows, cols, real(out)); });
  }
  void loss(const LossSpec& l, const float* pred, const float* probs, const float* y,
            const float* w, float* grad, int64_t rows, int64_t cols, int64_t ycols,
            float grad_scale, double* sum) override {
    run([=] { cpu_.loss(l, real(pred), real(probs), real(y), real(w), real(grad), rows, cols, ycols,
              grad_scale, real(sum)); });
  }
  void add_batch_loss(const double* batch, double scale, int64_t rows, double* totals) override {
    run([=] { cpu_.add_batch_loss(real(batch), scale, rows, real(totals)); });
  }
  void metric_update(const MetricSpec& m, const float* pred, const float* y, const float* w,
                     int64_t rows, int64_t cols, int64_t ycols, double* state) override {
    run([=] { cpu_.metric_update(m, real(pred), real(y), real(w), rows, cols, ycols, real(state)); });
  }
  void optimizer_update(const OptSpec& o, const StepValues* step, float* w, const float* g,
                        float* s0, float* s1, float* s2, int64_t n) override {
    run([=] { cpu_.optimizer_update(o, real(step), real(w), real(g), real(s0), real(s1), real(s2), n); });
  }
  void batchnorm_forward(const BatchNormSpec& b, const float* x, float* y, int64_t m,
                         const float* gamma, const float* beta, float* moving_mean,
                         float* moving_var, bool training, float* xhat, float* inv_std,
                         double* scratch) override {
    run([=] { cpu_.batchnorm_forward(b, real(x), real(y), m, real(gamma), real(beta), real(moving_mean),
                           real(moving_var), training, real(xhat), real(inv_std), real(scratch)); });
  }
  void batchnorm_backward(const BatchNormSpec& b, const float* dy, float* dx, int64_t m,
                          const float* gamma, const float* xhat, const float* inv_std,
                          float* dgamma, float* dbeta, double* scratch) override {
    run([=] { cpu_.batchnorm_backward(b, real(dy), real(dx), m, real(gamma), real(xhat), real(inv_std),
                            real(dgamma), real(dbeta), real(scratch)); });
  }
  void l1l2_penalty(const float* w, float* g, int64_t n, float l1, float l2,
                    double* acc) override {
    run([=] { cpu_.l1l2_penalty(real(w), real(g), n, l1, l2, real(acc)); });
  }
  void clip_by_value(float* g, int64_t n, float v) override { run([=] { cpu_.clip_by_value(real(g), n, v); }); }
  void clip_by_norm(float* g, int64_t n, double max_norm) override {
    run([=] { cpu_.clip_by_norm(real(g), n, max_norm); });
  }
  void multiply(const float* a, const float* b, float* out, int64_t n) override {
    run([=] { cpu_.multiply(real(a), real(b), real(out), n); });
  }
  void broadcast_multiply(const Broadcast3& s, const float* a, const float* m,
                          float* out) override {
    run([=] { cpu_.broadcast_multiply(s, real(a), real(m), real(out)); });
  }
  void transpose(const float* a, int64_t rows, int64_t cols, float* out) override {
    run([=] { cpu_.transpose(real(a), rows, cols, real(out)); });
  }
  void dropout(float rate, const uint64_t* seed, const float* x, float* y, float* mask,
               int64_t n) override {
    run([=] { cpu_.dropout(rate, real(seed), real(x), real(y), real(mask), n); });
  }
  void im2col(const Window2D& g, const float* x, int64_t batch, float* cols) override {
    run([=] { cpu_.im2col(g, real(x), batch, real(cols)); });
  }
  void col2im(const Window2D& g, const float* cols, int64_t batch, float* dx) override {
    run([=] { cpu_.col2im(g, real(cols), batch, real(dx)); });
  }
  void maxpool_forward(const Window2D& g, const float* x, int64_t batch, float* y,
                       int32_t* argmax) override {
    run([=] { cpu_.maxpool_forward(g, real(x), batch, real(y), real(argmax)); });
  }
  void maxpool_backward(const Window2D& g, const float* dy, const int32_t* argmax, int64_t batch,
                        float* dx) override {
    run([=] { cpu_.maxpool_backward(g, real(dy), real(argmax), batch, real(dx)); });
  }
  void avgpool_forward(const Window2D& g, const float* x, int64_t batch, float* y) override {
    run([=] { cpu_.avgpool_forward(g, real(x), batch, real(y)); });
  }
  void avgpool_backward(const Window2D& g, const float* dy, int64_t batch, float* dx) override {
    run([=] { cpu_.avgpool_backward(g, real(dy), batch, real(dx)); });
  }
  void resample(const Resample& r, const float* x, int64_t batch, float* y) override {
    Resample h = r;
    for (AxisTaps* t : {&h.y, &h.x}) *t = {real(t->start), real(t->index), real(t->weight)};
    run([=] { cpu_.resample(h, real(x), batch, real(y)); });
  }
  void augment(const Augment& a, const uint64_t* seed, const float* x, const float* means,
               int64_t batch, float* y) override {
    run([=] { cpu_.augment(a, real(seed), real(x), real(means), batch, real(y)); });
  }
  void embedding_forward(const float* table, const float* idx, int64_t n, int64_t dim,
                         int64_t input_dim, float* out) override {
    run([=] { cpu_.embedding_forward(real(table), real(idx), n, dim, input_dim, real(out)); });
  }
  void embedding_backward(const float* idx, const float* dy, int64_t n, int64_t dim,
                          int64_t input_dim, float* dtable) override {
    run([=] { cpu_.embedding_backward(real(idx), real(dy), n, dim, input_dim, real(dtable)); });
  }
  void repeat_rows(const float* x, int64_t rows, int64_t size, int64_t cols,
                   float* y) override {
    run([=] { cpu_.repeat_rows(real(x), rows, size, cols, real(y)); });
  }
  void repeat_rows_backward(const float* dy, int64_t rows, int64_t size, int64_t cols,
                            float* dx) override {
    run([=] { cpu_.repeat_rows_backward(real(dy), rows, size, cols, real(dx)); });
  }
  void bidir_merge(const BidirMerge& m, const float* a, const float* b, float* y) override {
    run([=] { cpu_.bidir_merge(m, real(a), real(b), real(y)); });
  }
  void bidir_merge_backward(const BidirMerge& m, const float* a, const float* b, const float* dy,
                            float* da, float* db) override {
    run([=] { cpu_.bidir_merge_backward(m, real(a), real(b), real(dy), real(da), real(db)); });
  }
  void sequence_mask(const float* x, int64_t positions, int64_t width, float value,
                     float* mask) override {
    run([=] { cpu_.sequence_mask(real(x), positions, width, value, real(mask)); });
  }
  void mask_rows(const float* x, int64_t xld, const float* mask, int64_t mld, int64_t rows,
                 int64_t width, float* y, int64_t yld) override {
    run([=] { cpu_.mask_rows(real(x), xld, real(mask), mld, rows, width, real(y), yld); });
  }
  void masked_mean_steps(const float* x, const float* mask, int64_t rows, int64_t steps,
                         int64_t width, float* y) override {
    run([=] { cpu_.masked_mean_steps(real(x), real(mask), rows, steps, width, real(y)); });
  }
  void merge_forward(MergeOp op, const MergeInputs& in, float* y, int64_t n) override {
    run([=] { cpu_.merge_forward(op, real_inputs(in), real(y), n); });
  }
  void merge_backward(MergeOp op, const MergeInputs& in, const float* y, const float* dy,
                      const MergeGrads& dx, int64_t n) override {
    MergeGrads d = dx;
    for (int k = 0; k < d.count; ++k) d.dx[k] = real(d.dx[k]);
    run([=] { cpu_.merge_backward(op, real_inputs(in), real(y), real(dy), d, n); });
  }
  void l2_normalize(const float* x, float* y, int64_t outer, int64_t n,
                    int64_t inner) override {
    run([=] { cpu_.l2_normalize(real(x), real(y), outer, n, inner); });
  }
  void l2_normalize_backward(const float* x, const float* dy, float* dx, int64_t outer,
                             int64_t n, int64_t inner) override {
    run([=] { cpu_.l2_normalize_backward(real(x), real(dy), real(dx), outer, n, inner); });
  }
  void unary(UnaryOp op, float p0, float p1, const float* x, float* y, int64_t n) override {
    run([=] { cpu_.unary(op, p0, p1, real(x), real(y), n); });
  }
  void unary_backward(UnaryOp op, float p0, float p1, const float* x, const float* y,
                      const float* dy, float* dx, int64_t n) override {
    run([=] { cpu_.unary_backward(op, p0, p1, real(x), real(y), real(dy), real(dx), n); });
  }
  void binary(BinaryOp op, const Strided& s, const float* a, const float* b, float* y) override {
    run([=] { cpu_.binary(op, s, real(a), real(b), real(y)); });
  }
  void binary_backward(BinaryOp op, const Strided& s, const float* a, const float* b,
                       const float* y, const float* dy, float* da, float* db) override {
    run([=] { cpu_.binary_backward(op, s, real(a), real(b), real(y), real(dy), real(da), real(db)); });
  }
  void chain(const Chain& c, const float* a, const float* b, float* y) override {
    run([=] { cpu_.chain(c, real(a), real(b), real(y)); });
  }
  void chain_backward(const Chain& c, const float* a, const float* b, const float* dy, float* da,
                      float* db) override {
    run([=] { cpu_.chain_backward(c, real(a), real(b), real(dy), real(da), real(db)); });
  }
  void reduce(ReduceOp op, const Reduction& r, const float* x, float* y) override {
    run([=] { cpu_.reduce(op, r, real(x), real(y)); });
  }
  void reduce_backward(ReduceOp op, const Reduction& r, const float* x, const float* y,
                       const float* dy, float* dx) override {
    run([=] { cpu_.reduce_backward(op, r, real(x), real(y), real(dy), real(dx)); });
  }
  static MergeInputs real_inputs(MergeInputs in) {
    for (int k = 0; k < in.count; ++k) in.x[k] = real(in.x[k]);
    return in;
  }
  void mask_weights(const float* mask, const float* w, int64_t rows, int64_t steps, float* mw,
                    float* lw) override {
    run([=] { cpu_.mask_weights(real(mask), real(w), rows, steps, real(mw), real(lw)); });
  }
  void masked_mean_steps_backward(const float* dy, const float* mask, int64_t rows,
                                  int64_t steps, int64_t width, float* dx) override {
    run([=] {
      cpu_.masked_mean_steps_backward(real(dy), real(mask), rows, steps, width, real(dx));
    });
  }
  void rnn_step_forward(const RnnStep& s, const float* z, const float* hr, const float* h_prev,
                        const float* mask, float* h) override {
    run([=] { cpu_.rnn_step_forward(s, real(z), real(hr), real(h_prev), real(mask), real(h)); });
  }
  void rnn_step_backward(const RnnStep& s, float* z, const float* h, const float* dy,
                         const float* mask, float* dh) override {
    run([=] { cpu_.rnn_step_backward(s, real(z), real(h), real(dy), real(mask), real(dh)); });
  }
  void lstm_step_forward(const RnnStep& s, float* z, const float* hr, const float* h_prev,
                         const float* c_prev, const float* mask, float* c, float* h) override {
    run([=] {
      cpu_.lstm_step_forward(s, real(z), real(hr), real(h_prev), real(c_prev), real(mask),
                             real(c), real(h));
    });
  }
  void lstm_step_backward(const RnnStep& s, float* z, const float* c_prev, const float* c,
                          const float* dy, const float* mask, float* dh, float* dc) override {
    run([=] {
      cpu_.lstm_step_backward(s, real(z), real(c_prev), real(c), real(dy), real(mask), real(dh),
                              real(dc));
    });
  }
  void gru_step_forward(const RnnStep& s, float* z, const float* hr, const float* rbias,
                        const float* h_prev, const float* mask, float* rh, float* h) override {
    run([=] {
      cpu_.gru_step_forward(s, real(z), real(hr), real(rbias), real(h_prev), real(mask),
                            real(rh), real(h));
    });
  }
  void gru_step_backward(const RnnStep& s, float* z, float* dr, const float* rh,
                         const float* h_prev, const float* dy, const float* mask,
                         float* dh) override {
    run([=] {
      cpu_.gru_step_backward(s, real(z), real(dr), real(rh), real(h_prev), real(dy), real(mask),
                             real(dh));
    });
  }
  void gather_rows(const float* src, const int64_t* idx, int64_t rows, int64_t cols,
                   float* dst) override {
    run([=] { cpu_.gather_rows(real(src), real(idx), rows, cols, real(dst)); });
  }

 private:
  // Runs an op, or records it while this thread captures.
  void run(std::function<void()> op) {
    if (t_recording)
      t_recording->push_back(std::move(op));
    else
      op();
  }
  static void refuse_copy_while_capturing() {
    if (t_recording)
      throw std::logic_error("guarded backend: a copy between host and device in captured ops");
  }

  Backend& cpu_ = get_backend(Device::CPU);
};

}  // namespace

Backend& guarded_backend() {
  static GuardedBackend* be = new GuardedBackend;  // leaked: models may outlive statics
  return *be;
}


}  // namespace deepcore
