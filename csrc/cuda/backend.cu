// The CUDA backend (a plugin: libdeepcore_cuda.so, loaded by get_backend(Device::CUDA)
// in cpu/backend.cpp through deepcore_cuda_create below). One stream (and, while a thread
// captures, a stream of that thread's own); memory from cudaMalloc; GEMMs through
// cuBLASLt (FP32 compute, or TF32 when allowed), with its bias and RELU_BIAS epilogues for
// affine_forward; our kernels for the rest (kernels.cuh, update.cuh, losses.cuh, conv.cuh,
// normalization.cuh). Captured ops become a CUDA graph, launched on the one stream.
// Ops not written yet throw std::logic_error naming themselves.
//
// Invalid sparse labels: the CPU's loss and metrics throw std::invalid_argument
// (checked_label) when a label is not an integer in [0, classes); a kernel cannot throw.
// The loss and metric kernels record the first invalid label in a device-side error word
// (label_error_, a LabelError of losses.cuh) and go on; the backend notes that a launch
// could have set it (for good once such a launch was captured: a graph's replays run it
// again), and its next upload or download (memcpy below, where the host waits for the GPU)
// brings the word back with the copy, clears it and throws std::invalid_argument with
// checked_label's message. So an engine run with a bad label fails at its end (where it
// reads its totals) instead of returning silent garbage. Invalid Embedding indices go the
// same way through a second word (index_error_), thrown with the CPU's message.
#include <cublasLt.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <tuple>

#include "common.cuh"
#include "conv.cuh"
#include "embedding.cuh"
#include "recurrent.cuh"
#include "deepcore/backend.h"
#include "deepcore/embedding_maths.h"
#include "deepcore/loss_terms.h"
#include "kernels.cuh"
#include "losses.cuh"
#include "masking.cuh"
#include "merge.cuh"
#include "normalization.cuh"
#include "ops.cuh"
#include "update.cuh"

namespace deepcore {
namespace cuda {
namespace {

void check_lt(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLASLt error in ") + what + ": status " +
                             std::to_string(static_cast<int>(s)));
}

[[noreturn]] void not_yet(const char* op) {
  throw std::logic_error(std::string(op) + " is not implemented on CUDA yet");
}

// The largest power of two (up to 256) that divides the address: cuBLASLt picks only
// kernels that fit the operands' alignment.
uint32_t alignment(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  uint32_t al = 256;
  while (al > 4 && a % al) al /= 2;
  return al;
}

// One GEMM shape, its descriptors and the algorithm the heuristic chose, kept for reuse.
struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

// ta, tb, m, n, k, lda, ldb, ldc, epilogue, beta != 0, alignments of a, b, c, TF32
using PlanKey = std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int,
                           bool, uint32_t, uint32_t, uint32_t, bool>;

// The stream this thread is capturing on, or null.
thread_local cudaStream_t t_capture = nullptr;

class CudaGraph final : public Graph {
 public:
  CudaGraph(cudaGraphExec_t exec, cudaStream_t stream) : exec_(exec), stream_(stream) {}
  ~CudaGraph() override { cudaGraphExecDestroy(exec_); }
  void replay() override { check(cudaGraphLaunch(exec_, stream_), "cudaGraphLaunch"); }

 private:
  cudaGraphExec_t exec_;
  cudaStream_t stream_;
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    check(cudaSetDevice(device_), "cudaSetDevice");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    check_lt(cublasLtCreate(&lt_), "cublasLtCreate");
    check(cudaMalloc(&workspace_, kWorkspace), "cudaMalloc (cuBLASLt workspace)");
    check(cudaMalloc(&loss_scratch_, sizeof(double) * kLossScratch), "cudaMalloc (loss sums)");
    check(cudaMalloc(&label_error_, sizeof(LabelError)), "cudaMalloc (label error)");
    check(cudaMemset(label_error_, 0, sizeof(LabelError)), "cudaMemset (label error)");
    check(cudaMallocHost(&label_error_host_, sizeof(LabelError)), "cudaMallocHost (label error)");
    check(cudaMalloc(&index_error_, sizeof(LabelError)), "cudaMalloc (index error)");
    check(cudaMemset(index_error_, 0, sizeof(LabelError)), "cudaMemset (index error)");
    check(cudaMallocHost(&index_error_host_, sizeof(LabelError)), "cudaMallocHost (index error)");
  }
  ~CudaBackend() override {
    plans_.clear();
    if (index_error_host_) cudaFreeHost(index_error_host_);
    if (index_error_) cudaFree(index_error_);
    if (label_error_host_) cudaFreeHost(label_error_host_);
    if (label_error_) cudaFree(label_error_);
    if (loss_scratch_) cudaFree(loss_scratch_);
    if (workspace_) cudaFree(workspace_);
    if (lt_) cublasLtDestroy(lt_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  const char* name() const override { return "cuda"; }
  void set_tf32(bool allow) override { tf32_.store(allow); }

  // ---- capture: the ops go to a stream of this thread's own in capture mode, so that
  // other threads' ops (on stream_) are not recorded; the graph then runs on stream_.
  bool can_capture() const override { return true; }
  std::unique_ptr<Graph> capture(const std::function<void()>& ops) override {
    if (t_capture) throw std::logic_error("cuda backend: capture inside a capture");
    cudaStream_t s = nullptr;
    check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate (capture)");
    cudaGraph_t graph = nullptr;
    auto end = [&] {
      t_capture = nullptr;
      const cudaError_t e = cudaStreamEndCapture(s, &graph);
      cudaStreamDestroy(s);
      return e;
    };
    try {
      check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
      t_capture = s;
      ops();
    } catch (...) {
      end();
      if (graph) cudaGraphDestroy(graph);
      cudaGetLastError();  // the capture's error, if any, is not the process's
      throw;
    }
    check(end(), "cudaStreamEndCapture");
    cudaGraphExec_t exec = nullptr;
    const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    check(e, "cudaGraphInstantiate");
    return std::make_unique<CudaGraph>(exec, stream_);
  }

  // ---- memory
  bool host_memory() const override { return false; }
  void* allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
      cudaGetLastError();  // clear the error: the process can go on
      throw std::bad_alloc();
    }
    return p;
  }
  void deallocate(void* p) override {
    if (p) cudaFree(p);
  }
  void upload(void* dst, const void* src, size_t bytes) override {
    if (bytes) ++uploads_;
    memcpy(dst, src, bytes, cudaMemcpyHostToDevice);
  }
  void download(void* dst, const void* src, size_t bytes) override {
    if (bytes) ++downloads_;
    memcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
  }
  // (the only points where the host waits for the GPU)
  std::pair<int64_t, int64_t> copies() const override { return {uploads_.load(), downloads_.load()}; }
  // Device to device: ordered on the stream, no wait.
  void copy(void* dst, const void* src, size_t bytes) override {
    if (dst != src && bytes)
      check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()),
            "cudaMemcpyAsync");
  }
  void fill(float* dst, float value, int64_t n) override { cuda::fill(stream(), dst, value, n); }
  void zero(void* dst, size_t bytes) override {
    if (bytes) check(cudaMemsetAsync(dst, 0, bytes, stream()), "cudaMemsetAsync");
  }

  // ---- GEMM through cuBLASLt
  void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
            int64_t lda, const float* b, int64_t ldb, float beta, float* c,
            int64_t ldc) override {
    matmul(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nullptr, false);
  }

  void affine_forward(ActSpec act, const float* a, const float* w, const float* bias, float* z,
                      float* y, int64_t m, int64_t k, int64_t n) override {
    // relu or linear into y itself: bias and relu in cuBLASLt's epilogue. Otherwise the
    // GEMM (with the bias epilogue) writes z and a kernel applies the activation.
    const bool relu = act.kind == Act::Relu, linear = act.kind == Act::Linear;
    if ((relu || linear) && z == y) {
      matmul(false, false, m, n, k, 1.f, a, k, w, n, 0.f, y, n, bias, relu);
      return;
    }
    matmul(false, false, m, n, k, 1.f, a, k, w, n, 0.f, z, n, bias, false);
    if (!linear || z != y) cuda::bias_act(stream(), act, nullptr, z, y, m, n);
  }

  void bias_act(ActSpec act, const float* bias, float* z, float* y, int64_t rows,
                int64_t cols) override {
    cuda::bias_act(stream(), act, bias, z, y, rows, cols);
  }
  void act_backward(ActSpec act, const float* x, const float* y, const float* dy, float* dx,
                    int64_t rows, int64_t cols) override {
    cuda::act_backward(stream(), act, x, y, dy, dx, rows, cols);
  }
  void col_sum(const float* x, int64_t rows, int64_t cols, float* out) override {
    cuda::col_sum(stream(), x, rows, cols, out);
  }

  // ---- a training step's updates (update.cu)
  void optimizer_update(const OptSpec& o, const StepValues* step, float* w, const float* g,
                        float* s0, float* s1, float* s2, int64_t n) override {
    cuda::optimizer_update(stream(), o, step, w, g, s0, s1, s2, n);
  }
  void l1l2_penalty(const float* w, float* g, int64_t n, float l1, float l2,
                    double* acc) override {
    cuda::l1l2_penalty(stream(), w, g, n, l1, l2, acc);
  }
  void clip_by_value(float* g, int64_t n, float v) override {
    cuda::clip_by_value(stream(), g, n, v);
  }
  void clip_by_norm(float* g, int64_t n, double max_norm) override {
    cuda::clip_by_norm(stream(), g, n, max_norm);
  }
  void multiply(const float* a, const float* b, float* out, int64_t n) override {
    cuda::multiply(stream(), a, b, out, n);
  }
  void broadcast_multiply(const Broadcast3& s, const float* a, const float* m,
                          float* out) override {
    cuda::broadcast_multiply(stream(), s, a, m, out);
  }
  void transpose(const float* a, int64_t rows, int64_t cols, float* out) override {
    cuda::transpose(stream(), a, rows, cols, out);
  }
  void dropout(float rate, const uint64_t* seed, const float* x, float* y, float* mask,
               int64_t n) override {
    cuda::dropout(stream(), rate, seed, x, y, mask, n);
  }
  void gather_rows(const float* src, const int64_t* idx, int64_t rows, int64_t cols,
                   float* dst) override {
    cuda::gather_rows(stream(), src, idx, rows, cols, dst);
  }
  void add_batch_loss(const double* batch, double scale, int64_t rows, double* totals) override {
    cuda::add_batch_loss(stream(), batch, scale, rows, totals);
  }

  // ---- recurrent steps (recurrent.cuh)
  void bidir_merge(const BidirMerge& m, const float* a, const float* b, float* y) override {
    cuda::bidir_merge(stream(), m, a, b, y);
  }
  void bidir_merge_backward(const BidirMerge& m, const float* a, const float* b, const float* dy,
                            float* da, float* db) override {
    cuda::bidir_merge_backward(stream(), m, a, b, dy, da, db);
  }
  void sequence_mask(const float* x, int64_t positions, int64_t width, float value,
                     float* mask) override {
    cuda::sequence_mask(stream(), x, positions, width, value, mask);
  }
  void mask_rows(const float* x, int64_t xld, const float* mask, int64_t mld, int64_t rows,
                 int64_t width, float* y, int64_t yld) override {
    cuda::mask_rows(stream(), x, xld, mask, mld, rows, width, y, yld);
  }
  void masked_mean_steps(const float* x, const float* mask, int64_t rows, int64_t steps,
                         int64_t width, float* y) override {
    cuda::masked_mean_steps(stream(), x, mask, rows, steps, width, y);
  }
  void merge_forward(MergeOp op, const MergeInputs& in, float* y, int64_t n) override {
    cuda::merge_forward(stream(), op, in, y, n);
  }
  void merge_backward(MergeOp op, const MergeInputs& in, const float* y, const float* dy,
                      const MergeGrads& dx, int64_t n) override {
    cuda::merge_backward(stream(), op, in, y, dy, dx, n);
  }
  void l2_normalize(const float* x, float* y, int64_t outer, int64_t n,
                    int64_t inner) override {
    cuda::l2_normalize(stream(), x, y, outer, n, inner);
  }
  void l2_normalize_backward(const float* x, const float* dy, float* dx, int64_t outer,
                             int64_t n, int64_t inner) override {
    cuda::l2_normalize_backward(stream(), x, dy, dx, outer, n, inner);
  }
  void unary(UnaryOp op, float p0, float p1, const float* x, float* y, int64_t n) override {
    cuda::unary(stream(), op, p0, p1, x, y, n);
  }
  void unary_backward(UnaryOp op, float p0, float p1, const float* x, const float* y,
                      const float* dy, float* dx, int64_t n) override {
    cuda::unary_backward(stream(), op, p0, p1, x, y, dy, dx, n);
  }
  void binary(BinaryOp op, const Strided& s, const float* a, const float* b, float* y) override {
    cuda::binary(stream(), op, s, a, b, y);
  }
  void binary_backward(BinaryOp op, const Strided& s, const float* a, const float* b,
                       const float* y, const float* dy, float* da, float* db) override {
    cuda::binary_backward(stream(), op, s, a, b, y, dy, da, db);
  }
  void chain(const Chain& c, const float* a, const float* b, float* y) override {
    cuda::chain(stream(), c, a, b, y);
  }
  void chain_backward(const Chain& c, const float* a, const float* b, const float* dy, float* da,
                      float* db) override {
    cuda::chain_backward(stream(), c, a, b, dy, da, db);
  }
  void reduce(ReduceOp op, const Reduction& r, const float* x, float* y) override {
    cuda::reduce(stream(), op, r, x, y);
  }
  void reduce_backward(ReduceOp op, const Reduction& r, const float* x, const float* y,
                       const float* dy, float* dx) override {
    cuda::reduce_backward(stream(), op, r, x, y, dy, dx);
  }
  void mask_weights(const float* mask, const float* w, int64_t rows, int64_t steps, float* mw,
                    float* lw) override {
    cuda::mask_weights(stream(), mask, w, rows, steps, mw, lw);
  }
  void masked_mean_steps_backward(const float* dy, const float* mask, int64_t rows,
                                  int64_t steps, int64_t width, float* dx) override {
    cuda::masked_mean_steps_backward(stream(), dy, mask, rows, steps, width, dx);
  }
  void rnn_step_forward(const RnnStep& s, const float* z, const float* hr, const float* h_prev,
                        const float* mask, float* h) override {
    cuda::rnn_step_forward(stream(), s, z, hr, h_prev, mask, h);
  }
  void rnn_step_backward(const RnnStep& s, float* z, const float* h, const float* dy,
                         const float* mask, float* dh) override {
    cuda::rnn_step_backward(stream(), s, z, h, dy, mask, dh);
  }
  void lstm_step_forward(const RnnStep& s, float* z, const float* hr, const float* h_prev,
                         const float* c_prev, const float* mask, float* c, float* h) override {
    cuda::lstm_step_forward(stream(), s, z, hr, h_prev, c_prev, mask, c, h);
  }
  void lstm_step_backward(const RnnStep& s, float* z, const float* c_prev, const float* c,
                          const float* dy, const float* mask, float* dh, float* dc) override {
    cuda::lstm_step_backward(stream(), s, z, c_prev, c, dy, mask, dh, dc);
  }
  void gru_step_forward(const RnnStep& s, float* z, const float* hr, const float* rbias,
                        const float* h_prev, const float* mask, float* rh, float* h) override {
    cuda::gru_step_forward(stream(), s, z, hr, rbias, h_prev, mask, rh, h);
  }
  void gru_step_backward(const RnnStep& s, float* z, float* dr, const float* rh,
                         const float* h_prev, const float* dy, const float* mask,
                         float* dh) override {
    cuda::gru_step_backward(stream(), s, z, dr, rh, h_prev, dy, mask, dh);
  }

  // ---- embedding (embedding.cuh): an invalid index sets index_error_
  void embedding_forward(const float* table, const float* idx, int64_t n, int64_t dim,
                         int64_t input_dim, float* out) override {
    cuda::embedding_forward(stream(), table, idx, n, dim, input_dim, out, index_error_);
    indices_unchecked_ = true;
    if (t_capture) indices_captured_ = true;
  }
  void embedding_backward(const float* idx, const float* dy, int64_t n, int64_t dim,
                          int64_t input_dim, float* dtable) override {
    cuda::embedding_backward(stream(), idx, dy, n, dim, input_dim, dtable);
  }

  // ---- losses and metrics (losses.cuh): a sparse label may set label_error_
  void loss(const LossSpec& l, const float* pred, const float* probs, const float* y,
            const float* w, float* grad, int64_t rows, int64_t cols, int64_t ycols,
            float grad_scale, double* sum) override {
    cuda::loss(stream(), l, pred, probs, y, w, grad, rows, cols, ycols, grad_scale, sum,
               loss_scratch_, label_error_);
    if (l.kind == Loss::SparseCategoricalCrossentropy) labels_launched();
  }
  void metric_update(const MetricSpec& m, const float* pred, const float* y, const float* w,
                     int64_t rows, int64_t cols, int64_t ycols, double* state) override {
    cuda::metric_update(stream(), m, pred, y, w, rows, cols, ycols, state, loss_scratch_,
                        label_error_);
    if (lt::metric_sparse(m, ycols)) labels_launched();
  }

  // ---- convolutions, pooling (conv.cuh) and batch normalization (normalization.cuh)
  void batchnorm_forward(const BatchNormSpec& b, const float* x, float* y, int64_t m,
                         const float* gamma, const float* beta, float* moving_mean,
                         float* moving_var, bool training, float* xhat, float* inv_std,
                         double* scratch) override {
    cuda::batchnorm_forward(stream(), b, x, y, m, gamma, beta, moving_mean, moving_var, training,
                            xhat, inv_std, scratch);
  }
  void batchnorm_backward(const BatchNormSpec& b, const float* dy, float* dx, int64_t m,
                          const float* gamma, const float* xhat, const float* inv_std,
                          float* dgamma, float* dbeta, double* scratch) override {
    cuda::batchnorm_backward(stream(), b, dy, dx, m, gamma, xhat, inv_std, dgamma, dbeta,
                             scratch);
  }
  void im2col(const Window2D& g, const float* x, int64_t batch, float* cols) override {
    cuda::im2col(stream(), g, x, batch, cols);
  }
  void col2im(const Window2D& g, const float* cols, int64_t batch, float* dx) override {
    cuda::col2im(stream(), g, cols, batch, dx);
  }
  void maxpool_forward(const Window2D& g, const float* x, int64_t batch, float* y,
                       int32_t* argmax) override {
    cuda::maxpool_forward(stream(), g, x, batch, y, argmax);
  }
  void maxpool_backward(const Window2D& g, const float* dy, const int32_t* argmax, int64_t batch,
                        float* dx) override {
    cuda::maxpool_backward(stream(), g, dy, argmax, batch, dx);
  }
  void avgpool_forward(const Window2D& g, const float* x, int64_t batch, float* y) override {
    cuda::avgpool_forward(stream(), g, x, batch, y);
  }
  void avgpool_backward(const Window2D& g, const float* dy, int64_t batch, float* dx) override {
    cuda::avgpool_backward(stream(), g, dy, batch, dx);
  }
  void resample(const Resample& r, const float* x, int64_t batch, float* y) override {
    cuda::resample(stream(), r, x, batch, y);
  }
  void augment(const Augment& a, const uint64_t* seed, const float* x, const float* means,
               int64_t batch, float* y) override {
    cuda::augment(stream(), a, seed, x, means, batch, y);
  }
  void repeat_rows(const float* x, int64_t rows, int64_t size, int64_t cols,
                   float* y) override {
    cuda::repeat_rows(stream(), x, rows, size, cols, y);
  }
  void repeat_rows_backward(const float* dy, int64_t rows, int64_t size, int64_t cols,
                            float* dx) override {
    cuda::repeat_rows_backward(stream(), dy, rows, size, cols, dx);
  }

 private:
  static constexpr size_t kWorkspace = size_t(32) << 20;

  // Between host and device: done (and the stream's earlier work with it) on return.
  void memcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    if (bytes == 0) return;
    if (t_capture)
      throw std::logic_error("cuda backend: a copy between host and device in captured ops");
    check(cudaMemcpyAsync(dst, src, bytes, kind, stream_), "cudaMemcpyAsync");
    const bool labels = labels_unchecked_.exchange(false) || labels_captured_.load();
    const bool indices = indices_unchecked_.exchange(false) || indices_captured_.load();
    if (labels)
      check(cudaMemcpyAsync(label_error_host_, label_error_, sizeof(LabelError),
                            cudaMemcpyDeviceToHost, stream_),
            "cudaMemcpyAsync (label error)");
    if (indices)
      check(cudaMemcpyAsync(index_error_host_, index_error_, sizeof(LabelError),
                            cudaMemcpyDeviceToHost, stream_),
            "cudaMemcpyAsync (index error)");
    check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    if (labels && label_error_host_->set) throw_label_error();
    if (indices && index_error_host_->set) {
      const LabelError e = *index_error_host_;
      *index_error_host_ = LabelError{};
      check(cudaMemsetAsync(index_error_, 0, sizeof(LabelError), stream_), "cudaMemsetAsync");
      throw std::invalid_argument(invalid_embedding_index_message(e.value, e.classes));
    }
  }

  // A kernel that checks sparse labels was launched (or captured).
  void labels_launched() {
    labels_unchecked_ = true;
    if (t_capture) labels_captured_ = true;
  }

  // Clears the recorded invalid label (on the device and here) and throws checked_label's
  // std::invalid_argument for it.
  [[noreturn]] void throw_label_error() {
    const LabelError e = *label_error_host_;
    *label_error_host_ = LabelError{};
    check(cudaMemsetAsync(label_error_, 0, sizeof(LabelError), stream_), "cudaMemsetAsync");
    throw std::invalid_argument(lt::invalid_label_message(e.value, e.classes));
  }

  // Where this thread's ops go.
  cudaStream_t stream() const { return t_capture ? t_capture : stream_; }

  // Row-major C = alpha op(A) op(B) + beta C (+ bias per column, then relu) as cuBLASLt's
  // column-major C^T = op(B)^T op(A)^T: the operands swap, and the bias (one value per
  // column of C) is one value per row of C^T, which is the epilogue's layout.
  void matmul(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
              int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
              const float* bias, bool relu) {
    if (m == 0 || n == 0) return;
    if (k == 0) {  // cuBLASLt rejects k = 0: C = beta C (+ bias, relu)
      if (beta != 0.f || bias || relu) not_yet("gemm with k = 0 and beta != 0 or an epilogue");
      for (int64_t r = 0; r < m; ++r) cuda::fill(stream(), c + r * ldc, 0.f, n);
      return;
    }
    // cuBLASLt's bias epilogue wants an aligned bias; an odd one goes through our kernel.
    if (bias && alignment(bias) < 16) {
      matmul(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nullptr, false);
      if (ldc != n) not_yet("a bias on a strided C");
      cuda::bias_act(stream(), ActSpec{relu ? Act::Relu : Act::Linear, 0.0}, bias, c, c, m, n);
      return;
    }
    const cublasLtEpilogue_t epi = bias ? (relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS)
                                        : (relu ? CUBLASLT_EPILOGUE_RELU : CUBLASLT_EPILOGUE_DEFAULT);
    const Plan& p = plan(PlanKey{ta, tb, m, n, k, lda, ldb, ldc, static_cast<int>(epi),
                                 beta != 0.f, alignment(a), alignment(b), alignment(c),
                                 tf32_.load()});
    if (bias)
      check_lt(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                              sizeof(bias)),
               "set bias pointer");
    check_lt(cublasLtMatmul(lt_, p.desc, &alpha, b, p.a, a, p.b, &beta, c, p.c, c, p.c, &p.algo,
                            workspace_, kWorkspace, stream()),
             "cublasLtMatmul");
  }

  const Plan& plan(const PlanKey& key) {
    std::lock_guard<std::mutex> lock(plans_mutex_);
    auto it = plans_.find(key);
    if (it != plans_.end()) return *it->second;
    const auto [ta, tb, m, n, k, lda, ldb, ldc, epi, has_beta, al_a, al_b, al_c, tf32] = key;
    auto p = std::make_unique<Plan>();
    // FP32 in, FP32 compute (results compare with the CPU's to ~1e-6), or TF32 products
    // when allowed (~1e-3).
    check_lt(cublasLtMatmulDescCreate(
                 &p->desc, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F),
             "desc");
    // cuBLASLt's A is our B, its B our A.
    const cublasOperation_t op_a = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_b = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    check_lt(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a,
                                            sizeof(op_a)), "transa");
    check_lt(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b,
                                            sizeof(op_b)), "transb");
    const auto e = static_cast<cublasLtEpilogue_t>(epi);
    check_lt(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof(e)),
             "epilogue");
    if (e == CUBLASLT_EPILOGUE_BIAS || e == CUBLASLT_EPILOGUE_RELU_BIAS) {
      const cudaDataType_t bt = CUDA_R_32F;
      check_lt(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt,
                                              sizeof(bt)), "bias type");
    }
    // Column-major layouts (rows, cols, ld) of the stored matrices: cuBLASLt's A = our b
    // (n x k after op), its B = our a (k x m after op), C = our c seen as n x m.
    auto u = [](int64_t v) { return static_cast<uint64_t>(v); };
    check_lt(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_32F, tb ? u(k) : u(n), tb ? u(n) : u(k), ldb),
             "layout A");
    check_lt(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_32F, ta ? u(m) : u(k), ta ? u(k) : u(m), lda),
             "layout B");
    check_lt(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, u(n), u(m), ldc), "layout C");

    cublasLtMatmulPreference_t pref = nullptr;
    check_lt(cublasLtMatmulPreferenceCreate(&pref), "preference");
    const uint64_t ws = kWorkspace;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                         sizeof(ws));
    // cuBLASLt's A is our b, its B our a.
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_b,
                                         sizeof(al_b));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_a,
                                         sizeof(al_a));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c,
                                         sizeof(al_c));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c,
                                         sizeof(al_c));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(lt_, p->desc, p->a, p->b, p->c, p->c,
                                                            pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    (void)has_beta;
    if (s != CUBLAS_STATUS_SUCCESS || found == 0)
      throw std::runtime_error("cuBLASLt has no algorithm for this GEMM (m=" + std::to_string(m) +
                               ", n=" + std::to_string(n) + ", k=" + std::to_string(k) + ")");
    p->algo = result.algo;
    return *(plans_[key] = std::move(p));
  }

  int device_;
  std::atomic<bool> tf32_{false};
  std::atomic<int64_t> uploads_{0}, downloads_{0};
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  void* workspace_ = nullptr;
  double* loss_scratch_ = nullptr;                // kLossScratch partial sums (losses.cuh)
  LabelError* label_error_ = nullptr;             // device: the first invalid sparse label
  LabelError* label_error_host_ = nullptr;        // pinned: its copy, read after a sync
  std::atomic<bool> labels_unchecked_{false};     // a launch may have set label_error_
  std::atomic<bool> labels_captured_{false};      // a graph may set it at any replay
  LabelError* index_error_ = nullptr;             // device: the first invalid embedding index
  LabelError* index_error_host_ = nullptr;        // pinned: its copy
  std::atomic<bool> indices_unchecked_{false};    // a launch may have set index_error_
  std::atomic<bool> indices_captured_{false};     // a graph may set it at any replay
  std::mutex plans_mutex_;
  std::map<PlanKey, std::unique_ptr<Plan>> plans_;
};

void write(char* out, size_t size, const std::string& s) {
  if (size == 0) return;
  std::snprintf(out, size, "%s", s.c_str());
}

}  // namespace
}  // namespace cuda
}  // namespace deepcore

// The plugin's entry point (found with dlsym). On success returns a backend for GPU 0 and
// writes the GPU's name into `message`; otherwise returns null and writes why. Never throws.
extern "C" __attribute__((visibility("default"))) deepcore::Backend* deepcore_cuda_create(
    char* message, size_t size) {
  using deepcore::cuda::write;
  try {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
      write(message, size,
            std::string("no NVIDIA GPU is usable: ") +
                (e != cudaSuccess ? std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e)
                                  : std::string("no device found")));
      return nullptr;
    }
    cudaDeviceProp prop{};
    deepcore::cuda::check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    auto* be = new deepcore::cuda::CudaBackend(0);
    write(message, size, prop.name);
    return be;
  } catch (const std::exception& ex) {
    write(message, size, ex.what());
  } catch (...) {
    write(message, size, "unknown error while starting the CUDA backend");
  }
  return nullptr;
}
