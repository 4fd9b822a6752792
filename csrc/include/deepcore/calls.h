// Engine calls from several threads: the lock a model's calls take turns on, and how a
// long call is stopped (Ctrl-C, interpreter exit) between batches.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <new>
#include <stdexcept>
#include <thread>

namespace deepcore {

// Incremented in a child process after fork(): locks held by the parent's threads are
// re-made there (those threads do not exist in the child).
uint64_t fork_generation();

// A mutex whose holder can step aside for the threads waiting for it: a training loop
// pauses between two batches when another call (predict from another thread) waits, so
// that call runs at the next batch instead of after the epoch. Uncontended, it costs a
// plain mutex and two atomic increments. Re-made in a forked child.
class FairLock {
 public:
  void lock() {
    renew_after_fork();
    waiting_.fetch_add(1, std::memory_order_relaxed);
    m_.lock();
    waiting_.fetch_sub(1, std::memory_order_relaxed);
    taken_.store(taken_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void unlock() { m_.unlock(); }
  // Whether another thread waits for the lock.
  bool contended() const { return waiting_.load(std::memory_order_relaxed) > 0; }
  // Held: lets a waiting thread take the lock first, then takes it back.
  void pause() {
    const uint64_t taken = taken_.load(std::memory_order_relaxed);
    m_.unlock();
    while (waiting_.load(std::memory_order_relaxed) > 0 &&
           taken_.load(std::memory_order_relaxed) == taken)
      std::this_thread::yield();
    lock();
  }

 private:
  void renew_after_fork() {
    const uint64_t gen = fork_generation();
    if (gen == generation_) return;
    // No destructor: the parent's thread that held it does not exist in the child.
    new (&m_) std::mutex;
    waiting_.store(0);
    generation_ = gen;
  }

  std::mutex m_;
  std::atomic<int> waiting_{0};
  std::atomic<uint64_t> taken_{0};
  uint64_t generation_ = fork_generation();
};

// Thrown out of an engine call that its poll function stopped. The model is left as
// of its last finished training step.
struct Interrupted : std::runtime_error {
  Interrupted() : std::runtime_error("the engine call was interrupted") {}
};

// The calling thread's poll function for the engine calls it makes while this object
// lives: called about every 20 ms between batches (and between layers when
// predicting or evaluating); returning true stops the call with Interrupted.
using PollFn = bool (*)();
class ScopedPoll {
 public:
  explicit ScopedPoll(PollFn f);
  ~ScopedPoll();
  ScopedPoll(const ScopedPoll&) = delete;
  ScopedPoll& operator=(const ScopedPoll&) = delete;

 private:
  PollFn previous_;
};

// Calls the thread's poll function when 20 ms have passed since the last call;
// throws Interrupted when it says to stop. A clock read otherwise.
void poll_interrupt();

}  // namespace deepcore
