// Engine calls from several threads: the lock a model's calls take turns on, and how a
// long call is stopped (Ctrl-C, interpreter exit) between batches.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <new>
#include <stdexcept>

namespace deepcore {

// Incremented in a child process after fork(): locks held by the parent's threads are
// re-made there (those threads do not exist in the child).
uint64_t fork_generation();

// A mutex that serves its waiters in arrival order, so that a training loop which
// releases it between batches lets a waiting call (predict from another thread) in at
// the next batch instead of taking it straight back. Re-made in a forked child.
class FairLock {
 public:
  void lock() {
    renew_after_fork();
    std::unique_lock<std::mutex> l(m_);
    const uint64_t ticket = next_++;
    cv_.wait(l, [&] { return serving_ == ticket; });
  }
  void unlock() {
    {
      std::lock_guard<std::mutex> l(m_);
      ++serving_;
    }
    cv_.notify_all();
  }

 private:
  void renew_after_fork() {
    const uint64_t gen = fork_generation();
    if (gen == generation_) return;
    // No destructors: the parent's waiters never return in the child, and destroying a
    // condition variable they wait on would wait for them.
    new (&m_) std::mutex;
    new (&cv_) std::condition_variable;
    next_ = serving_ = 0;
    generation_ = gen;
  }

  std::mutex m_;
  std::condition_variable cv_;
  uint64_t next_ = 0, serving_ = 0, generation_ = fork_generation();
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
