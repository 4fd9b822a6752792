// A small fork-join pool. A job is cut into a few parts per thread that the caller
// and the workers claim one at a time, so a thread that the OS has descheduled (a
// core taken by another program's threads) delays the job by at most one part.
// Workers spin briefly for the next job (kernels come in quick succession within a
// training step), then sleep on a condition variable.
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
// step, short enough not to take a core from other programs for long.
constexpr std::chrono::microseconds kSpin(100);
// Parts per thread: enough for the others to take over a stalled thread's share.
constexpr int64_t kPartsPerThread = 4;

// The claim word: job generation, threads allowed to work on it, its part count and
// the next unclaimed part. One atomic, so a claim can never mix two jobs.
struct Ticket {
  static constexpr int kPartBits = 12, kThreadBits = 8;
  static constexpr uint64_t kPartMask = (uint64_t(1) << kPartBits) - 1;
  static constexpr int64_t kMaxParts = int64_t(kPartMask);
  static constexpr int kMaxThreads = (1 << kThreadBits) - 1;
  static uint64_t make(uint64_t gen, int threads, int64_t parts) {
    return (gen << (2 * kPartBits + kThreadBits)) | (uint64_t(threads) << (2 * kPartBits)) |
           (uint64_t(parts) << kPartBits);
  }
  static uint64_t gen(uint64_t t) { return t >> (2 * kPartBits + kThreadBits); }
  // The generation after t's, wrapping around within its bits (every ~4e9 jobs).
  static uint64_t next_gen(uint64_t t) {
    return (gen(t) + 1) & ((uint64_t(1) << (64 - 2 * kPartBits - kThreadBits)) - 1);
  }
  static int threads(uint64_t t) { return int((t >> (2 * kPartBits)) & kMaxThreads); }
  static int64_t parts(uint64_t t) { return int64_t((t >> kPartBits) & kPartMask); }
  static int64_t next(uint64_t t) { return int64_t(t & kPartMask); }
};

struct Pool {
  std::atomic<int> threads{1};  // caller included
  int workers = 0;              // started so far, ids 1..workers
  std::mutex busy;              // held by the thread running a parallel_for
  std::mutex m;
  std::condition_variable wake;
  std::atomic<uint64_t> ticket{0};
  // A pinned job's claims: its generation (low 24 bits), part count and a bit per part
  // claimed (see Claims). A job that is not pinned has no parts here.
  std::atomic<uint64_t> claims{0};
  std::atomic<int64_t> done{0};  // parts finished of the current job
  // The current job; stays valid until all its parts are done.
  const std::function<void(int64_t, int64_t)>* job = nullptr;
  int64_t n = 0;
  std::exception_ptr error;
};

// The claim word of a pinned job: generation, part count (at most one per thread) and the
// parts claimed, one atomic as the ticket.
struct Claims {
  static uint64_t make(uint64_t gen, int64_t parts) {
    return ((gen & 0xFFFFFF) << 40) | (uint64_t(parts) << 32);
  }
  static bool of(uint64_t c, uint64_t gen) { return (c >> 40) == (gen & 0xFFFFFF); }
  static int64_t parts(uint64_t c) { return int64_t((c >> 32) & 0xFF); }
};

// Leaked on purpose: workers are detached and may still wait on it at exit, and a
// forked child starts a new one (its parent's workers do not exist there).
Pool* g_pool = nullptr;
thread_local bool t_inside = false;

// Claims and runs parts of job `gen` until none is left. A claim holds the job open
// (the caller waits for every part), so the job's settings can be read after it.
// An exception is kept for the caller to rethrow once every part is done.
void run_part(Pool& p, int64_t part, int64_t parts) {
  const int64_t begin = p.n * part / parts, end = p.n * (part + 1) / parts;
  try {
    if (begin < end) (*p.job)(begin, end);
  } catch (...) {
    std::lock_guard<std::mutex> lock(p.m);
    if (!p.error) p.error = std::current_exception();
  }
  p.done.fetch_add(1, std::memory_order_acq_rel);
}

// A pinned job's parts for thread `id`: its own part first (the one it ran in the job
// before, its data still in its core's cache), then any part no other thread has claimed.
void run_pinned(Pool& p, uint64_t gen, int id) {
  for (int64_t k = 0;;) {
    uint64_t c = p.claims.load(std::memory_order_acquire);
    const int64_t parts = Claims::parts(c);
    if (!Claims::of(c, gen) || k >= parts) return;
    const int64_t part = (id + k) % parts;
    const uint64_t bit = uint64_t(1) << part;
    if (c & bit) {
      ++k;
      continue;
    }
    if (!p.claims.compare_exchange_weak(c, c | bit, std::memory_order_acq_rel)) continue;
    run_part(p, part, parts);
    ++k;
  }
}

void run_parts(Pool& p, uint64_t gen, int id) {
  run_pinned(p, gen, id);
  for (;;) {
    uint64_t t = p.ticket.load(std::memory_order_acquire);
    const int64_t part = Ticket::next(t), parts = Ticket::parts(t);
    if (Ticket::gen(t) != gen || part >= parts) return;
    if (!p.ticket.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) continue;
    run_part(p, part, parts);
  }
}

// `seen`: the generation before the first job this worker is to run.
void worker(Pool* p, int id, uint64_t seen) {
  t_inside = true;
  const FlushDenormals flush;  // (for all its parts)
  auto current = [p] { return Ticket::gen(p->ticket.load(std::memory_order_acquire)); };
  for (;;) {
    uint64_t g = current();
    const auto until = std::chrono::steady_clock::now() + kSpin;
    for (int i = 0; g == seen; ++i) {
      DEEPCORE_PAUSE();
      g = current();
      if (i % 64 == 63 && std::chrono::steady_clock::now() > until) break;
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lock(p->m);
      p->wake.wait(lock, [&] { return current() != seen; });
      g = current();
    }
    seen = g;
    if (id < Ticket::threads(p->ticket.load(std::memory_order_acquire))) run_parts(*p, g, id);
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
  p.threads.store(std::clamp(n, 1, Ticket::kMaxThreads));
}

int pool_threads() { return pool().threads; }

void parallel_run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f,
                  bool pinned) {
  Pool& p = pool();
  const int threads = int(std::min<int64_t>(p.threads, grain > 0 ? n / grain : n));
  std::unique_lock<std::mutex> busy(p.busy, std::defer_lock);
  if (threads < 2 || t_inside || !busy.try_lock()) {
    if (n > 0) f(0, n);
    return;
  }
  const int64_t parts = pinned ? std::min(threads, 32)
                              : std::min({grain > 0 ? n / grain : n, threads * kPartsPerThread,
                                          Ticket::kMaxParts});
  for (int id = p.workers + 1; id < threads; ++id) {
    p.workers = id;
    std::thread(worker, &p, id, Ticket::gen(p.ticket.load())).detach();
  }
  p.job = &f;
  p.n = n;
  p.done.store(0, std::memory_order_relaxed);
  const uint64_t gen = Ticket::next_gen(p.ticket.load());
  p.claims.store(Claims::make(gen, pinned ? parts : 0), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(p.m);
    p.ticket.store(Ticket::make(gen, threads, pinned ? 0 : parts), std::memory_order_release);
  }
  p.wake.notify_all();
  t_inside = true;
  run_parts(p, gen, 0);
  t_inside = false;
  // A part still running elsewhere: spin a little, then give the core away in case
  // its thread is waiting for one.
  for (int i = 0; p.done.load(std::memory_order_acquire) < parts; ++i) {
    if (i < 4096)
      DEEPCORE_PAUSE();
    else
      std::this_thread::yield();
  }
  if (p.error) std::rethrow_exception(std::exchange(p.error, nullptr));
}

}  // namespace deepcore
