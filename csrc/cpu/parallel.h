// The CPU backend's worker threads: every kernel, and the BLAS library's GEMMs cut
// into blocks, share them. Internal header.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif

namespace deepcore {

// Subnormal floats read and made as zero (FTZ and DAZ, as XLA and TensorFlow compute) while
// it lives, then the thread's mode as it was: arithmetic on them takes x86 ~100 times
// longer, and Adam's moments of weights whose gradients are zero (dead relu units) decay
// into them (the MNIST MLP's step on one batch: 2.7 -> 5.8 ms after 640 steps). Every
// kernel part run through parallel_for runs so, on any thread: the bits do not depend on
// the thread count.
class FlushDenormals {
 public:
#if defined(__SSE__) || defined(__x86_64__)
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFtzDaz); }
  ~FlushDenormals() { _mm_setcsr(saved_); }

 private:
  static constexpr unsigned kFtzDaz = 0x8040;  // flush to zero (bit 15), denormals are zero (6)
  unsigned saved_;
#endif
};

// The threaded path of parallel_for, and the thread count.
void parallel_run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f,
                  bool pinned = false);
int pool_threads();

// Runs f(begin, end) over [0, n) cut into contiguous parts of at least `grain` items,
// a few per thread, which the caller and the workers claim one at a time. Every item
// is done by exactly one part, so a kernel whose items are independent gives the same
// bits for any thread count and any claiming order. Runs serially when n < 2 * grain,
// with one thread, or when called from inside another parallel_for or while another
// thread is using the workers.
// pinned: one part per thread, part i offered first to thread i (the caller is thread 0),
// then to any: a memory-bound kernel that reads the same data at each call (a layer's
// weights, one sample at a time) finds each thread's share in its core's cache.
template <class F>
inline void parallel_for(int64_t n, int64_t grain, F&& f, bool pinned = false) {
  const FlushDenormals flush;
  if (n >= 2 * grain && n >= 2 && pool_threads() > 1)
    parallel_run(n, grain, std::ref(f), pinned);
  else if (n > 0)
    f(int64_t(0), n);
}

// Items per part so that each part gets at least ~64K floats of memory traffic:
// below that, waking a worker costs more than it saves.
inline int64_t grain_for(int64_t floats_per_item) {
  constexpr int64_t kMinWork = int64_t(1) << 16;
  return floats_per_item >= kMinWork ? 1 : kMinWork / (floats_per_item > 0 ? floats_per_item : 1);
}

void set_pool_threads(int n);

}  // namespace deepcore
