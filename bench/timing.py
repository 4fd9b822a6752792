"""What the benchmarks share: the best of alternating rounds after a cool-down, the command
line of the side-by-side tables and the line describing the machine."""

from __future__ import annotations

import argparse
import os
import platform
import time


def side_by_side_args(description: str):
    """The `--quick` and `--threads N ...` command line of a side-by-side benchmark: (args,
    thread counts (default: 1 and one per core), steps per timed call, rounds)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--quick", action="store_true", help="fewer rounds and steps")
    ap.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=None,
        help="thread counts to measure (every library); default: 1 and one per core",
    )
    args = ap.parse_args()
    threads = args.threads or sorted({1, os.cpu_count() or 1})
    return args, threads, (4 if args.quick else 16), (3 if args.quick else 5)


def machine_line(torch=None, extra="") -> str:
    """The date, the machine, its cores and load, and PyTorch's version, for a table's head."""
    version = torch.__version__ if torch else "not installed"
    return (
        f"date: {time.strftime('%Y-%m-%d %H:%M')}  machine: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count() or 1} cores, load "
        f"average {os.getloadavg()[0]:.2f}  torch: {version}{extra}"
    )


def table_head(header: str) -> None:
    """Prints a table's header line and the rule under it."""
    print(header)
    print("-" * len(header))


def with_threads(counts, torch=None):
    """Yields each thread count after setting deepcore's (and PyTorch's) to it."""
    import deepcore as dc

    for n in counts:
        dc.config.set_num_threads(n)
        if torch is not None:
            torch.set_num_threads(n)
        yield n


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


def interleaved(fns: dict, rounds=5, min_seconds=0.1, reduce=min):
    """Seconds per call of each function, measured in alternating rounds so that machine
    noise hits every contender alike: the best round's (or `reduce`'s of the rounds, e.g.
    statistics.median)."""
    times: dict = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            time.sleep(COOL_DOWN)
            times[name].append(best_time(fn, min_seconds, repeats=1))
    return {name: reduce(t) for name, t in times.items()}
