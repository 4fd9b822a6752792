"""Loads the CPU kernels (libdeepcore_cpu*.so) that this CPU runs fastest, before _core.

The CPU kernels are built once per kernel set: "baseline" (x86-64), "avx2" (AVX2 and FMA:
x86-64-v3) and "avx512" (AVX-512: x86-64-v4). Each is a complete libdeepcore_cpu.so (its
SONAME, whatever its file's name); _core links that name, and the dynamic loader takes the
library already loaded under it. So the set loaded here is the one the whole process uses,
and code compiled for instructions the CPU lacks is never mapped. A build with one set
("native" or "baseline") has libdeepcore_cpu.so alone, which _core finds by itself.

The environment variable DEEPCORE_CPU_KERNELS=baseline|avx2|avx512 picks a set by hand
(to compare them, or to rule one out); it must be built and runnable on this CPU (a build
with one set accepts that set's name only: "native" or "baseline").
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os

# where the compiled files lie: beside _core (not this file, in an editable install)
_spec = importlib.util.find_spec("deepcore._core")
_DIR = os.path.dirname(_spec.origin if _spec and _spec.origin else os.path.abspath(__file__))
# the kernel sets, fastest first: file, and the x86-64 level the CPU must have
SETS = {
    "avx512": ("libdeepcore_cpu_avx512.so", "x86-64-v4"),
    "avx2": ("libdeepcore_cpu_avx2.so", "x86-64-v3"),
    "baseline": ("libdeepcore_cpu.so", None),
}


@functools.lru_cache(maxsize=None)
def _cpuid():
    lib = ctypes.CDLL(os.path.join(_DIR, "libdeepcore_cpuid.so"))
    lib.deepcore_cpu_has.argtypes = [ctypes.c_char_p]
    lib.deepcore_cpu_has.restype = ctypes.c_int
    lib.deepcore_cpu_features.restype = ctypes.c_char_p
    return lib


def features() -> list[str]:
    """The instruction-set extensions (and x86-64 levels) csrc/cpu/cpuid.c knows."""
    return [f for f in _cpuid().deepcore_cpu_features().decode().split(",") if f]


def cpu_has(feature: str) -> bool:
    """Whether the CPU (and the OS) runs the instructions of `feature` (see features())."""
    return _cpuid().deepcore_cpu_has(feature.encode()) == 1


def runnable(name: str) -> bool:
    """Whether kernel set `name` is built into this package and this CPU runs it."""
    file, level = SETS[name]
    return os.path.exists(os.path.join(_DIR, file)) and (level is None or cpu_has(level))


def dispatching() -> bool:
    """Whether this package carries several kernel sets (else one, which _core links)."""
    return os.path.exists(os.path.join(_DIR, SETS["avx2"][0]))


def built_sets() -> list[str]:
    """The kernel sets this package carries: the three of the dispatching build, or the one
    of a build for one machine ("native" or "baseline", read from its library)."""
    if dispatching():
        return list(SETS)
    lib = ctypes.CDLL(os.path.join(_DIR, SETS["baseline"][0]))
    lib.deepcore_kernel_set.restype = ctypes.c_char_p
    return [lib.deepcore_kernel_set().decode()]


def choose() -> str | None:
    """The kernel set to load: DEEPCORE_CPU_KERNELS's, else the fastest runnable one; None
    for a build with one set (nothing to choose: _core links it)."""
    asked = os.environ.get("DEEPCORE_CPU_KERNELS", "").strip()
    if asked:
        built = built_sets()
        if asked not in built:
            raise ImportError(
                f"DEEPCORE_CPU_KERNELS must be one of the kernel sets this build carries "
                f"({', '.join(built)}), received: {asked!r}"
            )
        if dispatching() and not runnable(asked):
            runs = [name for name in SETS if runnable(name)]
            raise ImportError(
                f"DEEPCORE_CPU_KERNELS={asked}: this CPU does not run that kernel set "
                f"(it runs: {', '.join(runs)})"
            )
    if not dispatching():
        return None
    return asked or next(name for name in SETS if runnable(name))


def load() -> None:
    name = choose()
    if name is not None:
        ctypes.CDLL(os.path.join(_DIR, SETS[name][0]))


load()
