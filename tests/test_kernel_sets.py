"""One binary for every x86-64 CPU: the CPU kernels are built for several instruction sets
and the package loads the fastest this CPU runs (deepcore/_kernel_sets.py). Each set, forced
with DEEPCORE_CPU_KERNELS, trains and predicts as the others do; under qemu's user-mode
emulation of a Haswell (AVX2, no AVX-512) and a Nehalem (SSE4.2, no AVX), the package picks
the set that CPU runs and gives the same predictions as natively."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import deepcore as dc
from deepcore import _kernel_sets

# Trains a small MLP, a CNN and an LSTM (seeded) and prints the kernel set, which
# libdeepcore_cpu files the process mapped, and the predictions.
SCRIPT = r"""
import json, re, sys
import numpy as np
import deepcore as dc

rng = np.random.default_rng(0)
out = {"features": dc.config.cpu_features()}
names = {line.split()[-1].rsplit("/", 1)[-1] for line in open("/proc/self/maps")}
out["mapped"] = sorted(n for n in names if re.fullmatch(r"libdeepcore_cpu(_[a-z0-9]+)?\.so", n))
L = dc.layers
models = {
    "mlp": ([L.Dense(32, activation="relu"), L.Dense(16, activation="tanh"),
             L.Dense(3, activation="softmax")], (40, 12)),
    "cnn": ([L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(2), L.Flatten(),
             L.Dense(3, activation="softmax")], (40, 8, 8, 1)),
    "lstm": ([L.LSTM(8), L.Dense(3, activation="softmax")], (40, 6, 5)),
}
for name, (layers, shape) in models.items():
    dc.utils.set_random_seed(1)
    x = rng.normal(size=shape).astype(np.float32)
    y = dc.utils.to_categorical(rng.integers(0, 3, size=shape[0]), 3)
    model = dc.Sequential([dc.Input(shape=shape[1:])] + layers)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    out[name] = model.predict(x, verbose=0).tolist()
# the set's own GEMM kernels (register blocks by vector width, masked edges) against float64
err = 0.0
for m, n, k in [(1, 5, 3), (7, 17, 9), (8, 24, 33), (13, 47, 4), (25, 65, 9), (50, 100, 33)]:
    a = rng.normal(size=(m, k)).astype(np.float32)
    b = rng.normal(size=(k, n)).astype(np.float32)
    ref = a.astype(np.float64) @ b
    err = max(err, float(np.abs(dc._core.gemm(a, b) - ref).max() / np.abs(ref).max()))
out["gemm_error"] = err
print("RESULT" + json.dumps(out))
"""


def run(env_extra=None, prefix=(), timeout=600):
    env = dict(os.environ, **(env_extra or {}))
    env.pop("DEEPCORE_TEST_DEVICE", None)
    proc = subprocess.run(
        [*prefix, sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))
    return json.loads(line[len("RESULT") :])


@pytest.fixture(scope="module")
def native():
    return run()


def close_predictions(a, b):
    assert a["gemm_error"] < 1e-6 and b["gemm_error"] < 1e-6
    for name in ("mlp", "cnn", "lstm"):
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_cpu_features_names_the_loaded_set():
    f = dc.config.cpu_features()
    assert set(f) == {"kernel_set", "kernel_sets", "features"}
    assert f["kernel_set"] in f["kernel_sets"]
    assert all(isinstance(v, bool) for v in f["features"].values())
    if _kernel_sets.dispatching() and not os.environ.get("DEEPCORE_CPU_KERNELS"):
        assert f["kernel_set"] == f["kernel_sets"][0]  # the fastest this CPU runs
        assert f["kernel_set"] == "avx512" or not f["features"]["x86-64-v4"]
        assert f["kernel_set"] != "baseline" or not f["features"]["x86-64-v3"]


def test_the_process_maps_one_kernel_set(native):
    loaded = native["features"]["kernel_set"]
    if _kernel_sets.dispatching():
        assert native["mapped"] == [_kernel_sets.SETS[loaded][0]]
    else:
        assert native["mapped"] == ["libdeepcore_cpu.so"]


@pytest.mark.parametrize("name", ["baseline", "avx2", "avx512"])
def test_each_kernel_set_trains_as_the_others(native, name):
    if not _kernel_sets.dispatching():
        pytest.skip("a build with one kernel set")
    if not _kernel_sets.runnable(name):
        pytest.skip(f"this CPU does not run the {name} kernels")
    got = run({"DEEPCORE_CPU_KERNELS": name})
    assert got["features"]["kernel_set"] == name
    assert got["mapped"] == [_kernel_sets.SETS[name][0]]
    close_predictions(got, native)


def refused(value):
    env = dict(os.environ, DEEPCORE_CPU_KERNELS=value)
    proc = subprocess.run(
        [sys.executable, "-c", "import deepcore"], env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0
    return proc.stderr


def test_an_unknown_or_absent_set_is_refused():
    err = refused("avx1024")
    assert "DEEPCORE_CPU_KERNELS must be one of the kernel sets" in err and "avx1024" in err
    # a set this build does not carry: no native set in the dispatching build; a build of
    # one set takes that set's name only
    absent = "native" if _kernel_sets.dispatching() else "avx2"
    if dc.config.cpu_features()["kernel_set"] == absent:
        absent = "avx512"
    err = refused(absent)
    assert "DEEPCORE_CPU_KERNELS must be one of the kernel sets this build carries" in err
    assert repr(absent) in err


QEMU = shutil.which("qemu-x86_64") or shutil.which("qemu-x86_64-static")


@pytest.mark.parametrize("cpu,expected", [("Haswell", "avx2"), ("Nehalem", "baseline")])
def test_under_an_older_cpu(native, cpu, expected):
    """qemu-x86_64 (Debian's qemu-user) runs the whole process on an emulated CPU: Python,
    NumPy and deepcore, which must pick the set that CPU runs (no AVX-512 instruction may
    run on a Haswell: that was a SIGILL) and predict as natively."""
    if QEMU is None:
        if os.environ.get("DEEPCORE_REQUIRE_QEMU"):
            pytest.fail("qemu-x86_64 is not installed (apt-get install qemu-user)")
        pytest.skip("qemu-x86_64 is not installed (apt-get install qemu-user)")
    if not _kernel_sets.dispatching():
        pytest.skip("a build with one kernel set")
    got = run(prefix=(QEMU, "-cpu", cpu))
    assert got["features"]["kernel_set"] == expected
    assert got["mapped"] == [_kernel_sets.SETS[expected][0]]
    assert not got["features"]["features"]["x86-64-v4"]
    close_predictions(got, native)
