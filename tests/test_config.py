import os
import subprocess
import sys

import numpy as np
import pytest

import deepcore as dc


def _train(threads, rng_seed=3):
    dc.config.set_num_threads(threads)
    dc.utils.set_random_seed(rng_seed)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 96)).astype(np.float32)
    y = rng.integers(0, 10, 512)
    model = dc.Sequential(
        [
            dc.Input(shape=(96,)),
            dc.layers.Dense(256, activation="relu"),
            dc.layers.Dropout(0.1),
            dc.layers.Dense(128, activation="tanh"),
            dc.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=128, epochs=3, verbose=0)
    return model.get_weights()


@pytest.fixture
def restore_threads():
    before = dc.config.get_num_threads()
    yield
    dc.config.set_num_threads(before)


def test_set_num_threads_round_trip(restore_threads):
    dc.config.set_num_threads(1)
    assert dc.config.get_num_threads() == 1
    dc.config.set_num_threads(0)  # one per core
    assert dc.config.get_num_threads() >= 1


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True])
def test_set_num_threads_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="num_threads"):
        dc.config.set_num_threads(bad)


def test_results_bit_identical_across_thread_counts(restore_threads):
    one = _train(1)
    two = _train(2)
    four = _train(4)
    for a, b, c in zip(one, two, four):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    # and the seed matters, so the comparison is not vacuous
    other = _train(2, rng_seed=4)
    assert any(not np.array_equal(a, b) for a, b in zip(one, other))


def _train_recurrent(threads):
    # batch 64: the recurrent steps' rows and dU's columns are shared among the threads
    dc.config.set_num_threads(threads)
    dc.utils.set_random_seed(5)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 50, (128, 12))
    x[:, 9:] = 0  # padding: the masked steps
    model = dc.Sequential(
        [
            dc.Input(shape=(12,)),
            dc.layers.Embedding(50, 16, mask_zero=True),
            dc.layers.Bidirectional(dc.layers.GRU(32, return_sequences=True)),
            dc.layers.LSTM(64, recurrent_dropout=0.2, return_sequences=True),
            dc.layers.SimpleRNN(32),
            dc.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, rng.integers(0, 3, 128), batch_size=64, epochs=2, verbose=0)
    return model.get_weights()


def test_recurrent_results_bit_identical_across_thread_counts(restore_threads):
    one = _train_recurrent(1)
    for threads in (2, 4):
        for a, b in zip(one, _train_recurrent(threads)):
            np.testing.assert_array_equal(a, b)


def test_results_bit_identical_while_other_programs_take_the_cores(restore_threads):
    # Busy processes on every core deschedule our threads at random points, so the parts
    # of each kernel end up on whichever thread is running: the result must not change.
    alone = _train(1)
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        contended = _train(4)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    for a, b in zip(alone, contended):
        np.testing.assert_array_equal(a, b)


def _cnn(seed):
    """A CNN big enough that every kernel is shared among the threads."""
    dc.utils.set_random_seed(seed)
    model = dc.Sequential(
        [
            dc.Input(shape=(28, 28, 1)),
            dc.layers.Conv2D(16, 3, activation="relu"),
            dc.layers.MaxPooling2D(),
            dc.layers.Conv2D(32, 3, activation="relu"),
            dc.layers.Flatten(),
            dc.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _cnn_data():
    rng = np.random.default_rng(5)
    return rng.random((128, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 128)


def _fit_cnn(model):
    x, y = _cnn_data()
    model.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0)
    return model.get_weights()


def test_models_trained_at_once_from_two_python_threads_match_one_at_a_time(restore_threads):
    import threading

    dc.config.set_num_threads(2)
    models = [_cnn(seed) for seed in (1, 2)]
    alone = [_fit_cnn(m) for m in [_cnn(seed) for seed in (1, 2)]]
    results = [None, None]

    def work(i):
        results[i] = _fit_cnn(models[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, alone):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def _fit_in_child(queue):
    queue.put(_fit_cnn(_cnn(1)))


def test_training_in_a_forked_child_after_threads_ran(restore_threads):
    import multiprocessing

    dc.config.set_num_threads(2)
    want = _fit_cnn(_cnn(1))  # the parent's workers exist now; the child has none
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_fit_in_child, args=(queue,))
    child.start()
    got = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_an_error_inside_a_kernel_shared_among_threads_reaches_python(restore_threads):
    # 512 x 2048 activations: the backward pass of the step activation (which has no
    # gradient and throws) runs on both threads; the error surfaces as a ValueError.
    dc.config.set_num_threads(2)
    model = dc.Sequential(
        [dc.Input(shape=(64,)), dc.layers.Dense(2048, activation="step"), dc.layers.Dense(2)]
    )
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((512, 64), np.float32), np.ones((512, 2), np.float32)
    for _ in range(2):  # and the threads still work afterwards
        with pytest.raises(ValueError, match="'step' has no gradient"):
            model.fit(x, y, batch_size=512, verbose=0)
    assert np.isfinite(model.predict(x, verbose=0)).all()


def test_set_device_names_the_devices_and_why_cuda_is_missing():
    assert dc.config.get_device() == "cpu"
    with pytest.raises(ValueError, match=r"Unknown device: 'tpu'. Known devices: cpu, cuda"):
        dc.config.set_device("tpu")
    if not dc.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            dc.config.set_device("cuda")
    assert dc.config.get_device() == "cpu"


def test_float32_matmul_precision_is_highest_unless_set():
    assert dc.config.get_float32_matmul_precision() == "highest"
    try:
        dc.config.set_float32_matmul_precision("high")
        assert dc.config.get_float32_matmul_precision() == "high"
    finally:
        dc.config.set_float32_matmul_precision("highest")
    assert dc.config.get_float32_matmul_precision() == "highest"
    for bad in ("medium", "HIGH", None, 1):
        with pytest.raises(ValueError, match="precision must be one of"):
            dc.config.set_float32_matmul_precision(bad)
