"""Engine calls under threads, signals, fork and interpreter exit: never a crash or a hang.

Each scenario runs in a child process (a crash there fails the test instead of ending
pytest), on a model large enough that one epoch takes seconds, so that waiting for the
end of an epoch (what happened before) is told apart from stopping at a batch.
"""

import os
import pty
import re
import select
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="POSIX signals and fork")

SETUP = """
import os, sys, threading, time
import numpy as np
import deepcore as dc
rng = np.random.default_rng(0)
x = rng.normal(size=(8192, 784)).astype(np.float32)
y = rng.integers(0, 10, 8192)
def make_model():
    m = dc.Sequential([dc.Input(shape=(784,)), dc.layers.Dense(1024, activation="relu"),
                       dc.layers.Dense(1024, activation="relu"),
                       dc.layers.Dense(10, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m
model = make_model()
def all_finite(m):
    return all(np.isfinite(w).all() for w in m.get_weights())
def rows_for(seconds, call):  # x and y repeated so that call(x, y) takes about `seconds`
    call(x[:512], y[:512])  # warm up
    t0 = time.perf_counter()
    call(x[:2048], y[:2048])
    reps = int(np.clip(np.ceil(seconds / (time.perf_counter() - t0) * 2048 / len(x)), 1, 8))
    return np.concatenate([x] * reps), np.concatenate([y] * reps)
"""


def child(body: str) -> list[str]:
    return [sys.executable, "-X", "faulthandler", "-c", SETUP + textwrap.dedent(body)]


def run_child(body: str, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(child(body), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def test_compile_from_another_thread_while_fit_runs():
    # The optimizer and its slots used to be swapped without the engine's lock: a
    # segfault in optimizer_update in 3 runs of 10.
    out = run_child(
        """
        t = threading.Thread(target=lambda: model.fit(x, y, epochs=1, verbose=0))
        t.start()
        time.sleep(0.2)
        kinds = ["sgd", "adam", "rmsprop", "adagrad", "adamw"]
        metrics = [["accuracy"], [], ["accuracy", "mse"]]
        for i in range(40):
            model.compile(kinds[i % 5], "sparse_categorical_crossentropy", metrics=metrics[i % 3])
            time.sleep(0.005)
        t.join()
        model.fit(x[:256], y[:256], epochs=1, verbose=0)
        print("finite", all_finite(model))
        """
    ).stdout
    assert "finite True" in out


def test_predict_from_another_thread_answers_within_a_batch():
    # A running fit releases the engine between batches: a predict from another thread
    # waits for one batch, not for the epoch (before: the whole epoch, seconds).
    out = run_child(
        """
        big_x, big_y = rows_for(2.0, lambda a, b: model.fit(a, b, epochs=1, verbose=0))
        t0 = time.perf_counter()
        model.fit(big_x, big_y, epochs=1, verbose=0)
        epoch = time.perf_counter() - t0
        t = threading.Thread(target=lambda: model.fit(big_x, big_y, epochs=1, verbose=0))
        t.start()
        waits = []
        for _ in range(4):
            time.sleep(0.1)
            t0 = time.perf_counter()
            p = model.predict(x[:16], verbose=0)
            waits.append(time.perf_counter() - t0)
            assert np.isfinite(p).all()
        t.join()
        print(f"epoch {epoch:.3f} wait {max(waits):.3f}")
        """
    ).stdout
    epoch, wait = map(float, re.search(r"epoch ([\d.]+) wait ([\d.]+)", out).groups())
    assert epoch > 1.0, f"the epoch ({epoch:.2f} s) is too short to tell"
    assert wait < epoch / 4, out


def test_fork_while_another_thread_is_inside_fit():
    # The child inherits the engine's lock held by a thread that does not exist there;
    # it used to hang on its first call. Locks (and the thread pool) are re-made.
    out = run_child(
        """
        t = threading.Thread(target=lambda: model.fit(x, y, epochs=1, verbose=0))
        t.start()
        time.sleep(0.3)
        pid = os.fork()
        if pid == 0:
            p = model.predict(x[:10], verbose=0)
            model.fit(x[:64], y[:64], epochs=1, verbose=0)
            os._exit(0 if np.isfinite(p).all() else 3)
        deadline = time.time() + 30
        while time.time() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                print("child", os.waitstatus_to_exitcode(status))
                break
            time.sleep(0.05)
        else:
            os.kill(pid, 9)
            print("child hangs")
        t.join()
        """
    ).stdout
    assert "child 0" in out, out


def test_interpreter_exit_with_daemon_threads_inside_fit():
    # Used to abort ("terminate called without an active exception") when a thread asked
    # for the GIL back while the interpreter finalized: threads that keep entering and
    # leaving the engine meet the exit every time.
    for _ in range(3):
        result = run_child(
            """
            small = dc.Sequential([dc.Input(shape=(784,)), dc.layers.Dense(64),
                                   dc.layers.Dense(10, activation="softmax")])
            small.compile("adam", "sparse_categorical_crossentropy")
            def loop():
                while True:
                    small.fit(x[:256], y[:256], epochs=1, verbose=0)
            for _ in range(4):
                threading.Thread(target=loop, daemon=True).start()
            time.sleep(0.3)
            print("main exits")
            """,
            timeout=60,
        )
        assert "main exits" in result.stdout
        assert "terminate" not in result.stderr and "Fatal" not in result.stderr, result.stderr


SIGINT_BODY = """
import signal
# Python's own Ctrl-C handler, also where the test runs with SIGINT ignored (a shell's
# background job): what is tested is deepcore's part, not the environment's.
signal.signal(signal.SIGINT, signal.default_int_handler)
what = sys.argv[1]
calls = {  # each sized to take about 5 s: one call outlasts the 1 s before SIGINT
    "fit": lambda a, b: model.fit(a, b, epochs=1, verbose=1),
    "evaluate": lambda a, b: model.evaluate(a, b, batch_size=256, verbose=0),
    "predict": lambda a, b: model.predict(a, batch_size=256, verbose=0),
}
big_x, big_y = rows_for(5.0, calls[what])
print("ready", flush=True)
try:
    for _ in range(1000):
        calls[what](big_x, big_y)
    print("not interrupted", flush=True)
except KeyboardInterrupt:
    stopped = time.monotonic()
    usable = np.isfinite(model.predict(x[:10], verbose=0)).all()
    print(f"interrupted {stopped!r} finite={all_finite(model)} usable={usable}", flush=True)
"""


def interrupt(what: str, terminal: bool) -> tuple[float, str]:
    """Sends SIGINT to a child inside an engine call (stdout a pipe or a terminal);
    returns the seconds until KeyboardInterrupt was raised there, and its report."""
    argv = child(SIGINT_BODY) + [what]
    if terminal:
        pid, fd = pty.fork()
        if pid == 0:  # pragma: no cover - the child
            os.execv(argv[0], argv)
    else:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        pid, fd = proc.pid, proc.stdout.fileno()

    def read(deadline):  # what the child wrote, waiting until the deadline at most
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"the child wrote nothing more in time: {out!r}"
        return os.read(fd, 4096)

    out = b""
    try:
        deadline = time.monotonic() + 120
        while b"ready" not in out:
            chunk = read(deadline)
            assert chunk, out
            out += chunk
        time.sleep(1.0)  # inside the engine call by now
        sent = time.monotonic()
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 60
        while b"usable=" not in out and b"not interrupted" not in out:
            try:
                chunk = read(deadline)
            except OSError:  # the terminal closed
                break
            if not chunk:
                break
            out += chunk
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    found = re.search(r"interrupted ([\d.]+) (finite=\w+ usable=\w+)", text)
    assert found, text
    return float(found.group(1)) - sent, found.group(2)


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "terminal"])
@pytest.mark.parametrize("what", ["fit", "evaluate", "predict"])
def test_ctrl_c_stops_an_engine_call_within_a_batch(what, terminal):
    # Before: a fit into a pipe went on to the end of the epoch (seconds). The engine
    # polls for signals every ~20 ms; the model keeps the weights of its last step.
    latency, state = interrupt(what, terminal)
    assert state == "finite=True usable=True"
    assert latency < 0.5, f"KeyboardInterrupt came {latency:.3f} s after SIGINT"


def test_other_threads_read_the_optimizer_while_the_main_thread_predicts():
    # The main thread polls for signals (taking the GIL) inside its calls, while other
    # threads read engine state: no lock may be waited for with the GIL held.
    out = run_child(
        """
        stop = False
        def reader():
            while not stop:
                model.optimizer.learning_rate, model.optimizer.iterations
        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        for _ in range(3):
            model.predict(x, batch_size=64, verbose=0)
            model.evaluate(x[:2048], y[:2048], verbose=0)
        stop = True
        for t in threads:
            t.join()
        print("done")
        """,
        timeout=120,
    ).stdout
    assert "done" in out
