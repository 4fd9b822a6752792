"""What the fuzz tests (tests/test_fuzz_*.py) share. They check that random layer
arguments and input shapes, random fit/predict inputs, and corrupted or edited model
files give a clear error (ValueError or TypeError with a message, raised by deepcore: not
a raw pybind11 conversion error) or a correct result; never a crash, a hang or a runaway
allocation.

Every example runs in a forked child process (os.fork: cheap, the parent's state is
copied; the engine's thread pool restarts in a child) under a time limit and a memory
limit (address space, and resident-memory growth, which the parent watches). A crash
(segfault, abort, a sanitizer report) is then a failure of that example, which
Hypothesis shrinks to a minimal example, instead of killing pytest.

Examples per test: DEEPCORE_FUZZ_EXAMPLES (default 300). The examples are derandomized:
every run tries the same ones. More of them:

    DEEPCORE_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz_*.py
    python tests/fuzzing.py --examples 5000 [pytest arguments]

Under the sanitizer build (.ci/sanitize sets DEEPCORE_SANITIZED=1) the time limits are
longer and the address-space limit is off (ASan reserves terabytes of shadow memory).
"""

from __future__ import annotations

import faulthandler
import functools
import glob
import json
import math
import os
import resource
import select
import signal
import sys
import time
import traceback
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EXAMPLES = int(os.environ.get("DEEPCORE_FUZZ_EXAMPLES", "300"))
SANITIZED = os.environ.get("DEEPCORE_SANITIZED") == "1"
SLOWER = 6 if SANITIZED else 1  # time limits: the sanitized engine runs at -O1 with checks
ASAN_SLACK_MB = 768 if SANITIZED else 0  # ASan keeps freed memory in quarantine (256 MB)

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
        HealthCheck.function_scoped_fixture,
    ],
)

if not hasattr(os, "fork"):  # pragma: no cover
    pytest.skip("the fuzz tests isolate each example in a forked process", allow_module_level=True)


# ------------------------------------------------------------------------- isolation
class FuzzFailure(AssertionError):
    """An example broke the contract; subclasses name how (Hypothesis reports one
    minimal example per subclass, and per exception type or signal within one)."""


class Crashed(FuzzFailure):
    """The child process died (a signal, or an exit without reporting: a sanitizer)."""


class TimedOut(FuzzFailure):
    """The example took longer than its time limit."""


class UsedTooMuchMemory(FuzzFailure):
    """The example grew the resident memory by more than its limit."""


class UnclearError(FuzzFailure):
    """Raised something else than a clear ValueError/TypeError."""

    detail = ""  # the exception's type (RawBindingTypeError: pybind11's conversion error)


class WrongResult(FuzzFailure):
    """No error, but a result of the wrong shape, non-finite, or inconsistent."""


@functools.lru_cache(maxsize=None)
def _failure_class(kind: str, detail: str) -> type:
    base = {c.__name__: c for c in (Crashed, TimedOut, UsedTooMuchMemory, UnclearError)}.get(
        kind, WrongResult
    )
    return type(f"{kind}_{detail}" if detail else kind, (base,), {"__module__": __name__})


# pybind11's own messages: a call the binding could not convert, not a checked argument
RAW_BINDING = (
    "incompatible function arguments",
    "incompatible constructor arguments",
    "Invoked with:",
    "Unable to convert",
    "Unable to cast",
    "too large to convert",
    "too big to convert",
)


def check_clear(error: BaseException, *, memory_ok: bool = False) -> None:
    """`error` must be a ValueError or TypeError with a message (and not a raw pybind11
    conversion error); with `memory_ok`, MemoryError too (a size the machine lacks)."""
    allowed = (ValueError, TypeError) + ((MemoryError,) if memory_ok else ())
    message = str(error).strip()
    if (
        not isinstance(error, allowed)
        or not message
        or any(raw in message for raw in RAW_BINDING)
        or isinstance(error, (RecursionError, OverflowError))
    ):
        failure = UnclearError(
            f"raised {type(error).__name__}: {message[:600]!r}\n"
            + "".join(traceback.format_exception(type(error), error, error.__traceback__))[-3000:]
        )
        failure.detail = type(error).__name__
        if any(raw in message for raw in RAW_BINDING):
            failure.detail = "RawBinding" + type(error).__name__
        raise failure from None


def _vm_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


def _resident_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except (OSError, IndexError, ValueError):  # the child is gone
        return 0.0


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_isolated(body, *args, seconds: float, megabytes: int, reproduce: str = "") -> None:
    """Runs `body(*args)` in a forked child, with a time limit and a memory limit, and
    raises the FuzzFailure it reported, or Crashed / TimedOut / UsedTooMuchMemory."""
    __tracebackhide__ = True  # pytest: show the failure, not this function's source
    seconds *= SLOWER
    megabytes += ASAN_SLACK_MB
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns about fork with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # ---- child: never returns
        code = 0
        try:
            os.close(r)
            faulthandler.disable()  # the parent reports the signal
            if not SANITIZED:
                _, hard = resource.getrlimit(resource.RLIMIT_AS)
                limit = _vm_bytes() + (megabytes + 1024) * 2**20
                if hard != resource.RLIM_INFINITY:
                    limit = min(limit, hard)
                resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
            start = _maxrss_mb()
            verdict = None
            try:
                body(*args)
            except UnclearError as e:
                verdict = ["UnclearError", e.detail, str(e)]
            except FuzzFailure as e:
                verdict = [type(e).__name__, "", str(e)]
            except BaseException as e:  # noqa: B036 - a bug of the test itself, reported
                verdict = ["UnclearError", type(e).__name__, traceback.format_exc()[-3000:]]
            grown = _maxrss_mb() - start
            if verdict is None and grown > megabytes:
                verdict = [
                    "UsedTooMuchMemory",
                    "",
                    f"resident memory grew by {grown:.0f} MB (limit {megabytes} MB)",
                ]
            data = json.dumps(verdict).encode()
            while data:
                data = data[os.write(w, data) :]
            os.close(w)
        except BaseException:  # noqa: B036
            code = 70
        finally:
            os._exit(code)
    # ---- parent: waits for the verdict; watches the child's resident memory meanwhile (the
    # address-space limit is off under ASan, and it does not bound what is touched)
    os.close(w)
    chunks, deadline, stopped = [], time.monotonic() + seconds, None
    baseline, grown = _resident_mb(pid), 0.0
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                stopped = "time"
                break
            grown = max(grown, _resident_mb(pid) - baseline)
            if grown > megabytes:
                stopped = "memory"
                break
            ready, _, _ = select.select([r], [], [], min(left, 0.02))
            if ready:
                chunk = os.read(r, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(r)
        if stopped:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    where = f"\nReproduce:\n{reproduce}" if reproduce else ""
    if stopped == "time":
        raise _failure_class("TimedOut", "")(f"the example took more than {seconds} s{where}")
    if stopped == "memory":
        raise _failure_class("UsedTooMuchMemory", "")(
            f"resident memory grew by more than {megabytes} MB (stopped at {grown:.0f} MB){where}"
        )
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        raise _failure_class("Crashed", name)(f"the process died from {name}{where}")
    if os.WEXITSTATUS(status) != 0 or not chunks:
        raise _failure_class("Crashed", f"exit{os.WEXITSTATUS(status)}")(
            f"the process exited with status {os.WEXITSTATUS(status)} without finishing "
            f"(a sanitizer report?){where}"
        )
    verdict = json.loads(b"".join(chunks))
    if verdict:
        kind, detail, message = verdict
        raise _failure_class(kind, detail)(message + where)


def expect(condition, message: str) -> None:
    if not condition:
        raise WrongResult(message)


def all_finite(a) -> bool:
    return bool(np.isfinite(np.asarray(a, dtype=np.float64)).all())


# ---------------------------------------------------------------- shared strategies
OVERFLOW = 0x6DB6DB6DB6DB6DB7  # * 7 == 1 (mod 2**64): products that wrap around to 1
HUGE_INTS = [
    2**31 - 1,
    2**31,
    2**32,
    2**32 + 1,
    2**53 + 1,
    2**62,
    2**63 - 1,
    2**63,
    2**64 - 1,
    2**64,
    2**64 + 1,
    -(2**63),
    -(2**63) - 1,
    10**30,
    OVERFLOW,
]
ODD_FLOATS = [0.0, -0.0, 0.5, 1.0, 2.5, -1.0, 1e-300, 1e300, math.nan, math.inf, -math.inf]
ODD_STRINGS = [
    "",
    "relu",
    "softmax",
    "same",
    "valid",
    "SAME",
    "channels_last",
    "channels_first",
    "glorot_uniform",
    "zeros",
    "linear",
    "x",
    "-1",
    "\x00",
    "é" * 3,
]
NUMPY_SCALARS = [
    np.int64(3),
    np.int32(-2),
    np.uint64(2**64 - 1),
    np.int8(0),
    np.float32(math.nan),
    np.float64(2.0),
    np.bool_(True),
    np.int64(2**62),
]

scalar_values = st.one_of(
    st.integers(-2, 9),
    st.sampled_from(HUGE_INTS),
    st.sampled_from(ODD_FLOATS),
    st.none(),
    st.booleans(),
    st.sampled_from(ODD_STRINGS),
    st.sampled_from(NUMPY_SCALARS),
)
wild_values = st.one_of(
    scalar_values,
    st.tuples(scalar_values),
    st.tuples(scalar_values, scalar_values),
    st.tuples(scalar_values, scalar_values, scalar_values),
    st.lists(scalar_values, max_size=3),
)
ODD_DIMS = [0, -1, 7, 16, 10**6, None, 2.0, "3", *HUGE_INTS]
OMIT = object()  # an argument left out


def _optional(strategy):
    return st.one_of(st.just(OMIT), strategy)


@st.composite
def perturbed(draw, valid: dict, names: list, most: int = 2) -> dict:
    """Valid values for `valid`'s arguments (OMIT: left out), then 0 to `most` of `names`
    (arguments the constructor takes, and a few it does not) set to odd values: mostly
    valid cases, each with a few odd arguments, reach past the argument checks."""
    args = {k: draw(v) for k, v in valid.items()}
    for name in draw(st.lists(st.sampled_from(names), max_size=most, unique=True)):
        args[name] = draw(wild_values)
    return {k: v for k, v in args.items() if v is not OMIT}


@st.composite
def input_shapes(draw, image: bool):
    ndim = draw(st.sampled_from([3, 3, 1, 2, 4] if image else [1, 2, 3, 1, 4]))
    shape = draw(st.lists(st.integers(1, 8), min_size=ndim, max_size=ndim))
    if draw(st.integers(0, 3)) == 0:  # a quarter of the shapes have odd sizes
        for _ in range(draw(st.integers(1, 2))):
            shape[draw(st.integers(0, ndim - 1))] = draw(st.sampled_from(ODD_DIMS))
    return tuple(shape)


@st.composite
def reshape_targets(draw, shape):
    try:
        n = math.prod(int(d) for d in shape)
    except (TypeError, ValueError):
        n = 1
    n = max(n, 1)
    divisors = [d for d in range(1, min(n, 64) + 1) if n % d == 0]
    a = draw(st.sampled_from(divisors))
    return draw(
        st.sampled_from(
            [
                (n,),
                (-1,),
                (a, n // a),
                (a, -1),
                (-1, a),
                (1, n, 1),
                (n + 1,),
                (a, a),
                (-1, -1),
                (0, n),
                (OVERFLOW, 7),
                (OVERFLOW, 7, n),
                (1, 1, n),
                (a, n // a, 1),
                (7, -1, OVERFLOW),
                (2**32, 2**32),
            ]
        )
    )


if __name__ == "__main__":  # python tests/fuzzing.py [--examples N] [pytest arguments]
    args = sys.argv[1:]
    if "--examples" in args:
        i = args.index("--examples")
        os.environ["DEEPCORE_FUZZ_EXAMPLES"] = args[i + 1]
        del args[i : i + 2]
    # a fresh interpreter, so that pytest imports the tests (and Hypothesis) itself
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *sorted(glob.glob(os.path.join(os.path.dirname(__file__), "test_fuzz_*.py"))),
        *args,
    ]
    os.execv(sys.executable, command)
