"""Models trained, evaluated and run on the GPU against the same models on the CPU.

Runs only with a CUDA build on a machine with an NVIDIA GPU (deepcore.cuda.is_available());
skipped elsewhere. The engine and the models are those of tests/test_guarded.py, whose
guarded backend checks on every machine that the engine computes only through the backend
and that a captured step replays unchanged; here the CUDA kernels do the computing, so the
results agree with the CPU's to float32 rounding, not to the bit.
"""

import numpy as np
import pytest
from test_guarded import EVERY_MODEL, mlp

import deepcore as dc
from deepcore import _core

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not dc.cuda.is_available(), reason="no CUDA build or no NVIDIA GPU"),
]

CUDA = 1


def build_on(device, make, seed=3):
    dc.config.set_device(device)
    try:
        dc.utils.set_random_seed(seed)
        return make(np.random.default_rng(0))
    finally:
        dc.config.set_device("cpu")


def train(device, make):
    model, x, y = build_on(device, make)
    h = model.fit(x, y, batch_size=8, epochs=3, validation_split=0.2, verbose=0)
    return model, x, y, h.history


@EVERY_MODEL
def test_fit_on_the_gpu_gives_the_cpus_numbers(make):
    cpu, x, y, hc = train("cpu", make)
    gpu, _, _, hg = train("cuda", make)
    assert hc.keys() == hg.keys()
    for key in hc:
        np.testing.assert_allclose(hg[key], hc[key], rtol=2e-4, atol=1e-6, err_msg=key)
    for a, b in zip(gpu.get_weights(), cpu.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(
        gpu.evaluate(x, y, verbose=0), cpu.evaluate(x, y, verbose=0), rtol=1e-4
    )
    got, want = gpu.predict(x, verbose=0), cpu.predict(x, verbose=0)
    for a, b in zip(*((got, want) if isinstance(got, list) else ([got], [want]))):
        np.testing.assert_allclose(a, b, atol=1e-4)


@EVERY_MODEL
def test_no_copy_between_host_and_gpu_per_batch(make):
    # Host and GPU wait for each other only at copies: an epoch makes as many with 40
    # batches as with 8.
    model, x, y = build_on("cuda", make)

    def copies(batch_size):
        before = _core.device_copies(CUDA)
        model.fit(x, y, batch_size=batch_size, epochs=2, verbose=0)
        after = _core.device_copies(CUDA)
        return after[0] - before[0], after[1] - before[1]

    copies(2)  # workspace and captured steps for these batch sizes
    copies(10)
    assert copies(2) == copies(10)


def test_training_continues_where_a_saved_gpu_model_stopped(tmp_path):
    gpu, x, y, _ = train("cuda", mlp)
    gpu.save(tmp_path / "m.dc")
    loaded = dc.models.load_model(tmp_path / "m.dc")  # on the CPU
    for a, b in zip(loaded.get_weights(), gpu.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert loaded.optimizer.iterations == gpu.optimizer.iterations
