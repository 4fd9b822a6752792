"""deepcore against deepcore: the same cases timed under several installed builds (each a
Python interpreter of a venv that holds one), in alternating rounds, medians side by side.

    python bench/compare_builds.py NAME=PYTHON NAME=PYTHON ... [--rounds 3]

e.g. a -march=native build against the default (dispatching) build:
    python bench/compare_builds.py native=/tmp/bn/bin/python dispatch=/tmp/bd/bin/python

The cases are the other benchmarks' deepcore cases (bench_mlp, bench_cnn, bench_seq): the
MLP training steps, the Iris fit, single-sample predict, the LeNet CNN's training step and
predict at 1 and 2 threads, the sequence models' training steps. Each round runs every build
once, in turn, in a fresh process; the table shows each case's median over the rounds and
each build's ratio to the first build (above 1: slower than the first).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def predictor(model, x):
    return lambda: model.predict(x)


def worker(only: str = "") -> None:
    """Times the cases (those whose name holds `only`) in this interpreter's deepcore and
    prints {case: microseconds}."""
    sys.path.insert(0, HERE)
    import bench_cnn
    import bench_mlp
    import bench_seq
    from timing import best_time

    import deepcore as dc

    # (a build from before the kernel sets has no cpu_features: it was built for this machine)
    features = getattr(dc.config, "cpu_features", lambda: {"kernel_set": "native"})
    out: dict[str, float] = {"kernel set: " + features()["kernel_set"]: 0.0}
    steps = 8

    def time_case(label: str, make, per: int = 1) -> None:
        """out[label] = the best time of make()'s function, divided by `per`."""
        if only in label:
            out[label] = best_time(make()) / per * 1e6

    dc.config.set_num_threads(1)
    for name, sizes, batch in bench_mlp.CASES[:2]:
        time_case(
            f"{name} train step, 1 thread",
            lambda s=sizes, b=batch: bench_mlp.deepcore_epoch(s, b, steps),
            steps,
        )
        x1 = bench_mlp.data(sizes, 1)[0]
        time_case(
            f"{name} predict 1 sample",
            lambda s=sizes, x=x1: predictor(bench_mlp.deepcore_model(s), x),
        )
    if only in "Iris fit":
        iris = [bench_mlp.iris_fit_times()["deepcore"] for _ in range(3)]
        out["Iris fit, 100 epochs (ms -> us)"] = min(iris) * 1e6
    for threads in (1, 2):
        dc.config.set_num_threads(threads)
        train, infer = (
            f"LeNet CNN {what}, {threads} thread(s)" for what in ("train step", "predict 64")
        )
        cases = bench_cnn.deepcore_cases(steps) if only in train or only in infer else None
        time_case(train, lambda c=cases: c[0], steps)
        time_case(infer, lambda c=cases: c[1])
    dc.config.set_num_threads(1)
    for case in bench_seq.CASES:
        time_case(
            f"{case} train step, 1 thread",
            lambda c=case: bench_seq.deepcore_train(c, steps)[0],
            steps,
        )
    print("RESULT " + json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("builds", nargs="+", help="NAME=PYTHON: a build and its interpreter")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="", help="the cases whose name holds this text")
    args = ap.parse_args()
    builds = dict(b.split("=", 1) for b in args.builds)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in builds}
    for r in range(args.rounds):
        for name, python in builds.items():
            proc = subprocess.run(
                [python, os.path.abspath(__file__), "--worker", args.only],
                capture_output=True,
                text=True,
                cwd="/",  # (not a checkout whose python/ could shadow the installed package)
            )
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not line:
                sys.exit(f"{name} ({python}) failed:\n{proc.stderr[-3000:]}")
            runs[name].append(json.loads(line[0][len("RESULT ") :]))
            print(f"round {r + 1}: {name} done", file=sys.stderr)
    names = list(builds)
    print(
        f"date: {time.strftime('%Y-%m-%d %H:%M')}  machine: {os.cpu_count()} cores  "
        f"rounds: {args.rounds}  (us, median of the rounds; ratio to {names[0]})"
    )
    cases = list(runs[names[0]][0])
    width = max(len(c) for c in cases)
    head = f"{'case':<{width}}" + "".join(f"{n:>14}" for n in names)
    head += "".join(f"  {n + '/' + names[0]:>20}" for n in names[1:])
    print(head)
    print("-" * len(head))
    for case in cases:
        if case.startswith("kernel set"):
            sets = "  ".join(f"{n}: {next(iter(runs[n][0]))[len('kernel set: ') :]}" for n in names)
            print(f"{'kernel sets':<{width}}  {sets}")
            continue
        med = {n: statistics.median(run[case] for run in runs[n]) for n in names}
        row = f"{case:<{width}}" + "".join(f"{med[n]:>14.1f}" for n in names)
        row += "".join(f"  {med[n] / med[names[0]]:>20.3f}" for n in names[1:])
        print(row)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(*sys.argv[2:3])
    else:
        main()
