"""Timing shared by the benchmarks: the best of alternating rounds, after a cool-down."""

from __future__ import annotations

import time


def best_time(fn, min_seconds=0.3, repeats=5):
    """Best per-call seconds over `repeats` rounds of at least min_seconds/repeats each."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds / repeats:
                break
        best = min(best, elapsed / n)
    return best


# Seconds to wait before timing a contender: the BLAS threads of NumPy's OpenBLAS spin
# for ~0.1 s after a call and PyTorch's for a while too, taking a core from whatever
# runs next; each contender is timed once they are asleep.
COOL_DOWN = 0.25


def interleaved(fns: dict, rounds=5, min_seconds=0.1):
    """Best seconds per call of each function, measured in alternating rounds so that
    machine noise hits every contender alike."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            time.sleep(COOL_DOWN)
            best[name] = min(best[name], best_time(fn, min_seconds, repeats=1))
    return best
