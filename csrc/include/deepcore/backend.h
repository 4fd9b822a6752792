// The backend seam: everything the engine runs on a device goes through this
// interface. cpu/ implements it today; a cuda/ backend implements the same
// contract (see kernels.h) behind the DEEPCORE_CUDA CMake option.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <stdexcept>

#include "deepcore/kernels.h"
#include "deepcore/op_maths.h"

namespace deepcore {

// Guarded: the test-only backend of cpu/guarded.cpp (CPU kernels on memory the engine
// cannot read; see Backend::copies).
enum class Device : int { CPU = 0, CUDA = 1, Guarded = 2 };

// Ops recorded once and run again as they were recorded (a CUDA graph): the same
// kernels on the same addresses, reading whatever those addresses hold when it runs.
class Graph {
 public:
  virtual ~Graph() = default;
  virtual void replay() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // ---- capture. Whether capture() records (the CPU backend runs ops as they come).
  virtual bool can_capture() const { return false; }
  // Records the ops that `ops` calls from this thread, without running them, and
  // returns them to replay (ops of other threads run as usual). A copy between host and
  // device inside `ops` is an error (std::logic_error).
  virtual std::unique_ptr<Graph> capture(const std::function<void()>& ops) {
    throw std::logic_error(std::string(name()) + " backend cannot capture ops");
  }

  // ---- memory. Every buffer the engine computes on comes from here; the host reads and
  // writes them only through upload/download, unless host_memory() (the CPU's plain
  // memory, where a host pointer is a device pointer and the copies are memcpy).
  virtual bool host_memory() const = 0;
  // `bytes` of device memory (nullptr for 0); std::bad_alloc when there is not enough.
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* p) = 0;
  virtual void upload(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void download(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
  virtual void fill(float* dst, float value, int64_t n) = 0;
  virtual void zero(void* dst, size_t bytes) = 0;
  // The copies between host and device so far (uploads, downloads), where the backend
  // counts them (guarded, CUDA; the CPU's are plain memory and not counted): a training
  // epoch makes a fixed number, however many batches it has.
  virtual std::pair<int64_t, int64_t> copies() const { return {0, 0}; }

  // Whether float32 GEMMs may multiply in TensorFloat-32 (10-bit mantissas, float32
  // sums; CUDA only). Off unless set_allow_tf32 says.
  virtual void set_tf32(bool /*allow*/) {}

  // Row-major C = alpha * op(A) * op(B) + beta * C with op(A): m x k, op(B): k x n.
  virtual void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                    int64_t ldc) = 0;
  // z += bias (per column, bias may be null); y = act(z). y may alias z.
  virtual void bias_act(ActSpec act, const float* bias, float* z, float* y, int64_t rows,
                        int64_t cols) = 0;
  // A dense or convolution layer's forward: z = a (m x k) * w (k x n) + bias, y = act(z),
  // with y possibly z; a backend may fuse the steps (the values are those of gemm then
  // bias_act).
  virtual void affine_forward(ActSpec act, const float* a, const float* w, const float* bias,
                              float* z, float* y, int64_t m, int64_t k, int64_t n) {
    gemm(false, false, m, n, k, 1.f, a, k, w, n, 0.f, z, n);
    bias_act(act, bias, z, y, m, n);
  }
  virtual void act_backward(ActSpec act, const float* x, const float* y, const float* dy,
                            float* dx, int64_t rows, int64_t cols) = 0;
  // out[c] = sum_r x[r, c]
  virtual void col_sum(const float* x, int64_t rows, int64_t cols, float* out) = 0;
  // loss_forward_backward (kernels.h), its sum written to *sum (one double in device
  // memory: the host reads losses once per run, not per batch).
  virtual void loss(const LossSpec& l, const float* pred, const float* probs, const float* y,
                    const float* w, float* grad, int64_t rows, int64_t cols, int64_t ycols,
                    float grad_scale, double* sum) = 0;
  // A run's loss total: totals[0] += (batch[0] * scale + batch[1]) * rows and totals[1] +=
  // rows, with batch = {the batch's loss sum, its regularisation penalty}.
  virtual void add_batch_loss(const double* batch, double scale, int64_t rows,
                              double* totals) = 0;
  virtual void metric_update(const MetricSpec& m, const float* pred, const float* y,
                             const float* w, int64_t rows, int64_t cols, int64_t ycols,
                             double* state) = 0;
  // `step`: the step's learning rate and count, one StepValues in device memory.
  virtual void optimizer_update(const OptSpec& o, const StepValues* step, float* w,
                                const float* g, float* s0, float* s1, float* s2, int64_t n) = 0;
  virtual void batchnorm_forward(const BatchNormSpec& b, const float* x, float* y, int64_t m,
                                 const float* gamma, const float* beta, float* moving_mean,
                                 float* moving_var, bool training, float* xhat, float* inv_std,
                                 double* scratch) = 0;
  virtual void batchnorm_backward(const BatchNormSpec& b, const float* dy, float* dx, int64_t m,
                                  const float* gamma, const float* xhat, const float* inv_std,
                                  float* dgamma, float* dbeta, double* scratch) = 0;
  // Regularisation and clipping (kernels.h); `acc` is one double in device memory.
  virtual void l1l2_penalty(const float* w, float* g, int64_t n, float l1, float l2,
                            double* acc) = 0;
  virtual void clip_by_value(float* g, int64_t n, float v) = 0;
  virtual void clip_by_norm(float* g, int64_t n, double max_norm) = 0;
  // out = a * b, value by value.
  virtual void multiply(const float* a, const float* b, float* out, int64_t n) = 0;
  // out (cols x rows) = a^T for a (rows x cols), both contiguous.
  virtual void transpose(const float* a, int64_t rows, int64_t cols, float* out) = 0;
  // out = a * m (+ out) with broadcasting (kernels.h: Broadcast3), e.g. a dropout mask over
  // every step of a sequence.
  virtual void broadcast_multiply(const Broadcast3& s, const float* a, const float* m,
                                  float* out) = 0;
  // y = x * mask where mask holds 0 or 1/(1-rate), drawn from *seed (device memory).
  virtual void dropout(float rate, const uint64_t* seed, const float* x, float* y, float* mask,
                       int64_t n) = 0;
  // Convolution and pooling kernels (see kernels.h for their contract).
  virtual void im2col(const Window2D& g, const float* x, int64_t batch, float* cols) = 0;
  virtual void col2im(const Window2D& g, const float* cols, int64_t batch, float* dx) = 0;
  virtual void maxpool_forward(const Window2D& g, const float* x, int64_t batch, float* y,
                               int32_t* argmax) = 0;
  virtual void maxpool_backward(const Window2D& g, const float* dy, const int32_t* argmax,
                                int64_t batch, float* dx) = 0;
  virtual void avgpool_forward(const Window2D& g, const float* x, int64_t batch, float* y) = 0;
  virtual void avgpool_backward(const Window2D& g, const float* dy, int64_t batch,
                                float* dx) = 0;
  // Inference of a Conv2D (window `conv`, weights w: (kh*kw*c) x filters, bias, relu or
  // linear) whose outputs only max pooling over non-overlapping windows `pool` reads: y =
  // the pooled outputs of `batch` images, without writing the convolution's. It goes `tile`
  // images at a time where it needs scratch (cols: conv_pool_scratch floats per image; each
  // tile's im2col rows or padded images at its own place, made and used while in cache).
  // A backend that has this kernel answers true in fuses_conv_maxpool for the shapes where
  // its bits are those of im2col, affine_forward and maxpool_forward in turn.
  virtual bool fuses_conv_maxpool(const ConvPool& /*s*/) const { return false; }
  virtual void conv_maxpool_forward(const ConvPool& s, const float* x, int64_t batch,
                                    int64_t tile, float* cols, float* y) {
    throw std::logic_error("this backend has no fused convolution and max pooling");
  }
  // Resampling of images (kernels.h), forward or, with the transposed taps, backward.
  virtual void resample(const Resample& r, const float* x, int64_t batch, float* y) = 0;
  // Augmentation of images (kernels.h), the step's seed in device memory.
  virtual void augment(const Augment& a, const uint64_t* seed, const float* x, const float* means,
                       int64_t batch, float* y) = 0;
  // Embedding (kernels.h): out (n x dim) = the rows of table (input_dim x dim) that the n
  // float indices name. An invalid index throws std::invalid_argument (the CUDA backend
  // records it on the device and throws at its next copy between host and device).
  virtual void embedding_forward(const float* table, const float* idx, int64_t n, int64_t dim,
                                 int64_t input_dim, float* out) = 0;
  // The table's whole gradient dtable (input_dim x dim): dy's rows added into the rows
  // their indices name, in the order of the positions (deterministic on every backend).
  virtual void embedding_backward(const float* idx, const float* dy, int64_t n, int64_t dim,
                                  int64_t input_dim, float* dtable) = 0;
  // repeat_rows and its adjoint (kernels.h): UpSampling1D.
  virtual void repeat_rows(const float* x, int64_t rows, int64_t size, int64_t cols,
                           float* y) = 0;
  virtual void repeat_rows_backward(const float* dy, int64_t rows, int64_t size, int64_t cols,
                                    float* dx) = 0;
  // Keras' sequence masks (mask_maths.h): one value per position, 1 for a step to use, 0 for
  // padding. sequence_mask: mask[p] = whether any of x's `width` values at position p differs
  // from `value`. mask_rows: row r of y (yld apart) = row r of x (xld apart, `width` wide)
  // where mask[r * mld] is 1, zeros where it is 0 (y may be x); a null mask keeps every row
  // (a strided copy). masked_mean_steps: y (rows x
  // width) = the mean over the steps to use of x (rows, steps, width), mask (rows, steps); its
  // backward writes dx (each step to use gets dy / their number, the others 0).
  virtual void sequence_mask(const float* x, int64_t positions, int64_t width, float value,
                             float* mask) = 0;
  virtual void mask_rows(const float* x, int64_t xld, const float* mask, int64_t mld,
                         int64_t rows, int64_t width, float* y, int64_t yld) = 0;
  virtual void masked_mean_steps(const float* x, const float* mask, int64_t rows, int64_t steps,
                                 int64_t width, float* y) = 0;
  virtual void masked_mean_steps_backward(const float* dy, const float* mask, int64_t rows,
                                          int64_t steps, int64_t width, float* dx) = 0;
  // The metrics' weights mw and the loss's lw (rows x steps each) where the mask (rows x
  // steps) reaches the loss, w the sample weights or null (mask_maths.h).
  virtual void mask_weights(const float* mask, const float* w, int64_t rows, int64_t steps,
                            float* mw, float* lw) = 0;
  // One time step of a recurrent layer (kernels.h: RnnStep, recurrent_maths.h: the maths).
  // hr, h_prev, c_prev, dy: null for none (zeros). mask: null, or the step's mask value of
  // each sample (mask[b * s.mld], 1 or 0, Keras' masking): a masked sample keeps its states
  // (h = h_prev, c = c_prev) and in backward passes dh + dy on to step t-1 (dc unchanged)
  // with zero gradients for the step's projections.
  // SimpleRNN: h = act(z + hr); backward: dz = (dy + dh) act'(h) into z, dh = 0.
  virtual void rnn_step_forward(const RnnStep& s, const float* z, const float* hr,
                                const float* h_prev, const float* mask, float* h) = 0;
  virtual void rnn_step_backward(const RnnStep& s, float* z, const float* h, const float* dy,
                                 const float* mask, float* dh) = 0;
  // LSTM: z holds x W + b (4 units wide) and becomes the gates; c and h written. Backward:
  // the gates' pre-activation gradients into z, dc carried to step t-1, dh = 0.
  virtual void lstm_step_forward(const RnnStep& s, float* z, const float* hr, const float* h_prev,
                                 const float* c_prev, const float* mask, float* c, float* h) = 0;
  virtual void lstm_step_backward(const RnnStep& s, float* z, const float* c_prev, const float* c,
                                  const float* dy, const float* mask, float* dh, float* dc) = 0;
  // GRU (reset_after): z holds x W + b_in (3 units wide) and becomes the gates; rbias is
  // b_rec (may be null); rh keeps the recurrent candidate. Backward: the gradients of x W +
  // b_in into z and of h_{t-1} U + b_rec into dr; dh becomes dL/dh_{t-1}'s direct part.
  virtual void gru_step_forward(const RnnStep& s, float* z, const float* hr, const float* rbias,
                                const float* h_prev, const float* mask, float* rh, float* h) = 0;
  virtual void gru_step_backward(const RnnStep& s, float* z, float* dr, const float* rh,
                                 const float* h_prev, const float* dy, const float* mask,
                                 float* dh) = 0;
  // One step of a recurrent layer with its recurrent products, as gemm and the step ops
  // above (what this default does; the CPU's runs blocks of rows through both in turn, its
  // threads sharing the blocks). Forward: h_{t-1} U (wr: U, units x g units; h_prev s.ld
  // apart) added to z (SimpleRNN, LSTM) or written to hr (GRU, g units apart), then the
  // cell; wr null: no product (the first step, or one the caller made). Backward: the cell
  // (the recurrent side's gradients dr: z itself but for GRU), then dh += dr U^T (ut: U^T)
  // and dU += h_{t-1}^T dr (gwr); ut null: neither. c: GRU's rh; h: SimpleRNN's output.
  virtual void recurrent_step_forward(Cell cell, const RnnStep& s, const float* wr,
                                      const float* rbias, float* z, float* hr,
                                      const float* h_prev, const float* c_prev,
                                      const float* mask, float* c, float* h) {
    const int64_t gu = gates_of(cell) * s.units;
    if (wr && cell == Cell::GRU)
      gemm(false, false, s.batch, gu, s.units, 1.f, h_prev, s.ld, wr, gu, 0.f, hr, gu);
    else if (wr)
      gemm(false, false, s.batch, gu, s.units, 1.f, h_prev, s.ld, wr, gu, 1.f, z, s.zld);
    recurrent_cell_forward(cell, s, rbias, z, hr, h_prev, c_prev, mask, c, h);
  }
  virtual void recurrent_step_backward(Cell cell, const RnnStep& s, const float* ut, float* gwr,
                                       float* z, float* dr, const float* c_prev, const float* c,
                                       const float* h, const float* h_prev, const float* dy,
                                       const float* mask, float* dh, float* dc) {
    const int64_t U = s.units, gu = gates_of(cell) * U;
    recurrent_cell_backward(cell, s, z, dr, c_prev, c, h, h_prev, dy, mask, dh, dc);
    if (!ut) return;
    gemm(false, false, s.batch, U, gu, 1.f, dr, s.zld, ut, U, 1.f, dh, U);
    gemm(true, false, U, gu, s.batch, 1.f, h_prev, s.ld, dr, s.zld, 1.f, gwr, gu);
  }
  // Bidirectional's merge of its directions' outputs (kernels.h: BidirMerge) and its
  // gradients (a, b the outputs, dy the merge's gradient).
  virtual void bidir_merge(const BidirMerge& m, const float* a, const float* b, float* y) = 0;
  virtual void bidir_merge_backward(const BidirMerge& m, const float* a, const float* b,
                                    const float* dy, float* da, float* db) = 0;
  // The step op of `cell`, with the arguments of recurrent_step_forward / _backward.
  void recurrent_cell_forward(Cell cell, const RnnStep& s, const float* rbias, float* z,
                              const float* hr, const float* h_prev, const float* c_prev,
                              const float* mask, float* c, float* h) {
    switch (cell) {
      case Cell::SimpleRNN: rnn_step_forward(s, z, hr, h_prev, mask, h); break;
      case Cell::LSTM: lstm_step_forward(s, z, hr, h_prev, c_prev, mask, c, h); break;
      case Cell::GRU: gru_step_forward(s, z, hr, rbias, h_prev, mask, c, h); break;
    }
  }
  void recurrent_cell_backward(Cell cell, const RnnStep& s, float* z, float* dr,
                               const float* c_prev, const float* c, const float* h,
                               const float* h_prev, const float* dy, const float* mask,
                               float* dh, float* dc) {
    switch (cell) {
      case Cell::SimpleRNN: rnn_step_backward(s, z, h, dy, mask, dh); break;
      case Cell::LSTM: lstm_step_backward(s, z, c_prev, c, dy, mask, dh, dc); break;
      case Cell::GRU: gru_step_backward(s, z, dr, c, h_prev, dy, mask, dh); break;
    }
  }
  // Keras' merge layers (kernels.h: MergeOp): y (n values; it may be an input) = the merge
  // of the inputs; backward, dx[k] (when not null) from dy and y.
  virtual void merge_forward(MergeOp op, const MergeInputs& in, float* y, int64_t n) = 0;
  virtual void merge_backward(MergeOp op, const MergeInputs& in, const float* y, const float* dy,
                              const MergeGrads& dx, int64_t n) = 0;
  // Keras' L2 normalization (merge_maths.h) of x viewed as (outer, n, inner), along n:
  // y = normalize(x); backward, dx from x and dy.
  virtual void l2_normalize(const float* x, float* y, int64_t outer, int64_t n,
                            int64_t inner) = 0;
  virtual void l2_normalize_backward(const float* x, const float* dy, float* dx, int64_t outer,
                                     int64_t n, int64_t inner) = 0;
  // deepcore.ops (op_maths.h). unary: y = f(x) over n values; its backward dx = dy * f'(x).
  virtual void unary(UnaryOp op, float p0, float p1, const float* x, float* y, int64_t n) = 0;
  virtual void unary_backward(UnaryOp op, float p0, float p1, const float* x, const float* y,
                              const float* dy, float* dx, int64_t n) = 0;
  // binary: y (s.dims, row-major) = a op b, each operand read at its strides; its backward
  // writes da and db (each null, or of y's size) = dy times the partial derivatives.
  virtual void binary(BinaryOp op, const Strided& s, const float* a, const float* b,
                      float* y) = 0;
  virtual void binary_backward(BinaryOp op, const Strided& s, const float* a, const float* b,
                               const float* y, const float* dy, float* da, float* db) = 0;
  // chain: y = a chain of steps (op_maths.h: Chain) over the head's operands; its backward
  // writes da and db (each null, or of y's size).
  virtual void chain(const Chain& c, const float* a, const float* b, float* y) = 0;
  virtual void chain_backward(const Chain& c, const float* a, const float* b, const float* dy,
                              float* da, float* db) = 0;
  // reduce: y (r.outputs() values) = x reduced over r's axes; its backward writes dx.
  virtual void reduce(ReduceOp op, const Reduction& r, const float* x, float* y) = 0;
  virtual void reduce_backward(ReduceOp op, const Reduction& r, const float* x, const float* y,
                               const float* dy, float* dx) = 0;
  // dst[i, :] = src[idx[i], :] for i < rows.
  virtual void gather_rows(const float* src, const int64_t* idx, int64_t rows, int64_t cols,
                           float* dst) = 0;
};

// An array of n values in a backend's memory, freed with it. Moves, never copies.
template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(Backend& be, int64_t n)
      : be_(&be), data_(static_cast<T*>(be.allocate(sizeof(T) * static_cast<size_t>(n)))),
        size_(n) {}
  DeviceArray(DeviceArray&& o) noexcept { swap(o); }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    DeviceArray(std::move(o)).swap(*this);
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() {
    if (data_) be_->deallocate(data_);
  }
  void swap(DeviceArray& o) noexcept {
    std::swap(be_, o.be_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  int64_t size() const { return size_; }
  size_t bytes() const { return sizeof(T) * static_cast<size_t>(size_); }
  // At least n values (the contents are not kept when it grows).
  void reserve(Backend& be, int64_t n) {
    if (n > size_ || be_ != &be) *this = DeviceArray(be, n);
  }
  void upload(const T* host, int64_t n, int64_t at = 0) {
    if (n > 0) be_->upload(data_ + at, host, sizeof(T) * static_cast<size_t>(n));
  }
  void download(T* host, int64_t n, int64_t at = 0) const {
    if (n > 0) be_->download(host, data_ + at, sizeof(T) * static_cast<size_t>(n));
  }

 private:
  Backend* be_ = nullptr;
  T* data_ = nullptr;
  int64_t size_ = 0;
};

Backend& guarded_backend();

// The one place that picks the kernels for a device. Throws if the device was not
// built in or is not present.
Backend& get_backend(Device d);
// The device's name ("cpu", or the GPU's: "NVIDIA H200"); throws as get_backend does.
std::string device_name(Device d);

// TensorFloat-32 in the float32 GEMMs of every backend that has it (the CUDA backend's,
// now or when it loads); off by default.
void set_allow_tf32(bool allow);
bool allow_tf32();


// Threads of the CPU backend, for its kernels and its GEMMs (0: one per core).
void set_num_threads(int n);
int get_num_threads();

}  // namespace deepcore

// The instruction sets the CPU kernels in this process were compiled for: "baseline",
// "avx2", "avx512" (the dispatching build's sets, one of which is loaded) or "native". C
// linkage: deepcore/_kernel_sets.py also reads it with ctypes before loading _core.
extern "C" __attribute__((visibility("default"))) const char* deepcore_kernel_set();
