#include "deepcore/calls.h"

#include <pthread.h>

#include <atomic>
#include <chrono>

namespace deepcore {
namespace {

constexpr std::chrono::milliseconds kPollInterval(20);

std::atomic<uint64_t> g_fork_generation{0};
thread_local PollFn t_poll = nullptr;
thread_local std::chrono::steady_clock::time_point t_last_poll;

}  // namespace

uint64_t fork_generation() {
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr, [] { g_fork_generation.fetch_add(1); });
    return true;
  }();
  (void)registered;
  return g_fork_generation.load(std::memory_order_relaxed);
}

ScopedPoll::ScopedPoll(PollFn f) : previous_(t_poll) {
  t_poll = f;
  t_last_poll = std::chrono::steady_clock::now();
}

ScopedPoll::~ScopedPoll() { t_poll = previous_; }

void poll_interrupt() {
  if (!t_poll) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - t_last_poll < kPollInterval) return;
  t_last_poll = now;
  if (t_poll()) throw Interrupted();
}

}  // namespace deepcore
