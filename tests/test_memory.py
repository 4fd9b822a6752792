"""The engine allocates its workspace on the first step, then nothing per step.

A child process runs with a malloc/calloc/realloc counter preloaded (compiled here from a
few lines of C) and counts the allocations of engine calls training 8 and 32 batches:
the same count means no allocation grows with the steps.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import pytest

COUNTER = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stddef.h>
static atomic_long count;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static char boot[4096];
static size_t boot_used;
long alloc_count(void) { return atomic_load(&count); }
void *malloc(size_t n) {
  if (!real_malloc) real_malloc = dlsym(RTLD_NEXT, "malloc");
  atomic_fetch_add(&count, 1);
  return real_malloc(n);
}
void *calloc(size_t a, size_t b) {
  if (!real_calloc) { /* dlsym may itself call calloc: serve it from a static buffer */
    void *p = boot + boot_used;
    boot_used += (a * b + 15) & ~(size_t)15;
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    return boot_used <= sizeof boot ? p : NULL;
  }
  atomic_fetch_add(&count, 1);
  return real_calloc(a, b);
}
void *realloc(void *p, size_t n) {
  if (!real_realloc) real_realloc = dlsym(RTLD_NEXT, "realloc");
  atomic_fetch_add(&count, 1);
  return real_realloc(p, n);
}
"""

CHILD = textwrap.dedent(
    """
    import ctypes, json, sys
    import numpy as np
    import deepcore as dc

    count = ctypes.CDLL(None).alloc_count
    count.restype = ctypes.c_long
    L = dc.layers
    models = {
        "mlp": ((96,), [L.Dense(256, activation="relu"), L.Dropout(0.1),
                        L.Dense(10, activation="softmax")]),
        "cnn": ((12, 12, 1), [L.Conv2D(4, 3, activation="relu"), L.BatchNormalization(),
                              L.MaxPooling2D(2), L.Dropout(0.1), L.Flatten(),
                              L.Dense(10, activation="softmax")]),
    }
    shape, layers = models[sys.argv[1]]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32 * 32, *shape)).astype(np.float32)
    y = rng.integers(0, 10, 32 * 32).astype(np.float32)
    m = dc.Sequential([dc.Input(shape=shape), *layers])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    engine = m._engine
    counts = {8: [], 32: []}
    data = {steps: engine.dataset(x[: 32 * steps], y[: 32 * steps]) for steps in counts}
    for rep in range(4):  # the first calls size the workspace (and NumPy's small caches)
        for steps in counts:
            before = count()
            engine.fit_epoch(data[steps], 32, True)
            if rep >= 2:
                counts[steps].append(count() - before)
    print(json.dumps(counts))
    """
)


pytestmark = pytest.mark.skipif(
    os.environ.get("DEEPCORE_SANITIZED") == "1",
    reason="sanitizer build (.ci/sanitize): its preloaded runtime replaces malloc, and this "
    "test preloads its own counter in place of it",
)


@pytest.fixture(scope="module")
def counter(tmp_path_factory):
    cc = shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) or shutil.which("cc")
    if not sys.platform.startswith("linux") or cc is None:
        pytest.skip("needs Linux and a C compiler to build the allocation counter")
    d = tmp_path_factory.mktemp("counter")
    (d / "counter.c").write_text(COUNTER)
    lib = d / "counter.so"
    subprocess.run(
        [cc, "-O2", "-shared", "-fPIC", str(d / "counter.c"), "-o", str(lib), "-ldl"], check=True
    )
    return lib


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_no_allocation_per_training_step(counter, model):
    env = {**os.environ, "LD_PRELOAD": str(counter)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, model], env=env, capture_output=True, text=True, check=True
    )
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    assert counts["8"][0] > 0  # the counter counts (the call's own results)
    # 24 more steps, not one allocation more (two repetitions of each)
    assert counts["8"] == counts["32"], counts
