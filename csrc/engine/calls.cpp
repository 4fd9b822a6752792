#include "deepcore/calls.h"

#include <pthread.h>
#include <time.h>

#include <atomic>
#include <chrono>

namespace deepcore {
namespace {

constexpr int64_t kPollIntervalNs = 20'000'000;

std::atomic<uint64_t> g_fork_generation{0};
thread_local PollFn t_poll = nullptr;
thread_local int64_t t_last_poll = 0;

// Nanoseconds of a clock that is cheap to read (a few ns: the polls come between every
// two batches of the smallest models) and fine enough for a 20 ms interval.
int64_t now_ns() {
#if defined(CLOCK_MONOTONIC_COARSE)
  timespec t;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
  return int64_t(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
#else
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
#endif
}

}  // namespace

namespace {
// Registered when the library loads, so that reading the generation is one atomic load.
const bool g_fork_handler = [] {
  pthread_atfork(nullptr, nullptr, [] { g_fork_generation.fetch_add(1); });
  return true;
}();
}  // namespace

uint64_t fork_generation() { return g_fork_generation.load(std::memory_order_relaxed); }

ScopedPoll::ScopedPoll(PollFn f) : previous_(t_poll) {
  t_poll = f;
  t_last_poll = now_ns();
}

ScopedPoll::~ScopedPoll() { t_poll = previous_; }

void poll_interrupt() {
  if (!t_poll) return;
  const int64_t now = now_ns();
  if (now - t_last_poll < kPollIntervalNs) return;
  t_last_poll = now;
  if (t_poll()) throw Interrupted();
}

}  // namespace deepcore
