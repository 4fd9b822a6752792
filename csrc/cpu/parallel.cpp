// A small fork-join pool: workers spin briefly for the next job (kernels come in
// quick succession within a training step), then sleep on a condition variable.
#include "parallel.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

#if defined(__x86_64__)
#include <immintrin.h>
#define DEEPCORE_PAUSE() _mm_pause()
#else
#define DEEPCORE_PAUSE() std::this_thread::yield()
#endif

namespace deepcore {
namespace {

// How long an idle worker spins before sleeping: the gap between two kernels of a
// step, short enough not to take a core from the BLAS library's threads for long.
constexpr std::chrono::microseconds kSpin(100);

struct Pool {
  std::atomic<int> threads{1};    // caller included
  int workers = 0;                // started so far, ids 1..workers
  std::mutex busy;                // held by the thread running a parallel_for
  std::mutex m;
  std::condition_variable wake;
  std::atomic<uint64_t> generation{0};
  std::atomic<int> pending{0};
  // The job of the current generation.
  const std::function<void(int64_t, int64_t)>* job = nullptr;
  int64_t n = 0, parts = 0;
  std::exception_ptr error;
};

// Leaked on purpose: workers are detached and may still wait on it at exit, and a
// forked child starts a new one (its parent's workers do not exist there).
Pool* g_pool = nullptr;
thread_local bool t_inside = false;

// Runs one part; an exception is kept for the caller to rethrow once every part is
// done (the job lives on the caller's stack until then).
void run_part(Pool& p, int64_t part) {
  const int64_t begin = p.n * part / p.parts, end = p.n * (part + 1) / p.parts;
  try {
    if (begin < end) (*p.job)(begin, end);
  } catch (...) {
    std::lock_guard<std::mutex> lock(p.m);
    if (!p.error) p.error = std::current_exception();
  }
}

// `seen`: the generation before the first job this worker is to run.
void worker(Pool* p, int id, uint64_t seen) {
  t_inside = true;
  for (;;) {
    uint64_t g = seen;
    const auto until = std::chrono::steady_clock::now() + kSpin;
    while (g == seen && std::chrono::steady_clock::now() < until) {
      DEEPCORE_PAUSE();
      g = p->generation.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lock(p->m);
      p->wake.wait(lock, [&] { return p->generation.load(std::memory_order_acquire) != seen; });
      g = p->generation.load(std::memory_order_acquire);
    }
    seen = g;
    // Every started worker acknowledges every job, so none can see the next job's
    // settings while still on this one.
    if (id < p->parts) run_part(*p, id);
    p->pending.fetch_sub(1, std::memory_order_acq_rel);
  }
}

Pool& pool() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_pool = new Pool;
    pthread_atfork(nullptr, nullptr, [] {
      const int threads = g_pool->threads.load();
      g_pool = new Pool;
      g_pool->threads.store(threads);
    });
  });
  return *g_pool;
}

}  // namespace

void set_pool_threads(int n) {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.busy);
  p.threads.store(n < 1 ? 1 : n);
}

int pool_threads() { return pool().threads; }

void parallel_run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
  Pool& p = pool();
  int64_t parts = std::min<int64_t>(p.threads, grain > 0 ? n / grain : n);
  std::unique_lock<std::mutex> busy(p.busy, std::defer_lock);
  if (parts < 2 || t_inside || !busy.try_lock()) {
    if (n > 0) f(0, n);
    return;
  }
  for (int id = p.workers + 1; id < parts; ++id) {
    p.workers = id;
    std::thread(worker, &p, id, p.generation.load()).detach();
  }
  p.job = &f;
  p.n = n;
  p.parts = parts;
  p.pending.store(p.workers, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(p.m);
    p.generation.fetch_add(1, std::memory_order_acq_rel);
  }
  p.wake.notify_all();
  t_inside = true;
  run_part(p, 0);
  t_inside = false;
  while (p.pending.load(std::memory_order_acquire) > 0) DEEPCORE_PAUSE();
  if (p.error) std::rethrow_exception(std::exchange(p.error, nullptr));
}

}  // namespace deepcore
