"""Optimizers: engine update kernels against float64 NumPy references of Keras 3's rules.

`deepcore._core.optimizer_step(spec, lr, step, w, g, slots)` updates `w` and `slots`
in place; `step` is the 1-based iteration. Clipping is not part of `optimizer_step`:
it is applied by the model's training step and is tested through a model below.
"""

import numpy as np
import pytest

import deepcore as dc
from deepcore import _core

O = dc.optimizers
STEPS = 5


# ------------------------------------------------------------------- references
# Each takes (w, g, state, t, hp) with state a list of arrays (the engine's slots, in
# the engine's order), and returns the new (w, state). hp holds the hyper-parameters.
def ref_weight_decay(w, hp):
    """Keras 3 decoupled weight decay, applied before the update: w -= w * wd * lr."""
    wd = hp.get("weight_decay", 0.0)
    return w - w * wd * hp["learning_rate"] if wd else w


def ref_sgd(w, g, state, t, hp):
    lr, momentum = hp["learning_rate"], hp["momentum"]
    w = ref_weight_decay(w, hp)
    if momentum == 0:
        return w - lr * g, []
    (m,) = state
    m = momentum * m - lr * g
    if hp["nesterov"]:
        return w + momentum * m - lr * g, [m]
    return w + m, [m]


def ref_adam(w, g, state, t, hp):
    lr, b1, b2, eps = hp["learning_rate"], hp["beta_1"], hp["beta_2"], hp["epsilon"]
    w = ref_weight_decay(w, hp)
    m, v = state
    alpha = lr * np.sqrt(1.0 - b2**t) / (1.0 - b1**t)
    m = m + (g - m) * (1.0 - b1)
    v = v + (g * g - v) * (1.0 - b2)
    return w - alpha * m / (np.sqrt(v) + eps), [m, v]


def ref_rmsprop(w, g, state, t, hp):
    lr, rho, momentum, eps = hp["learning_rate"], hp["rho"], hp["momentum"], hp["epsilon"]
    w = ref_weight_decay(w, hp)
    velocity, mbuf, avg = state
    velocity = rho * velocity + (1.0 - rho) * g * g
    if hp["centered"]:
        avg = rho * avg + (1.0 - rho) * g
        denominator = velocity - avg * avg + eps
    else:
        denominator = velocity + eps
    increment = lr * g / np.sqrt(denominator)
    if momentum > 0:
        mbuf = momentum * mbuf + increment
        return w - mbuf, [velocity, mbuf, avg]
    return w - increment, [velocity, mbuf, avg]


def ref_adagrad(w, g, state, t, hp):
    lr, eps = hp["learning_rate"], hp["epsilon"]
    w = ref_weight_decay(w, hp)
    (acc,) = state
    acc = acc + g * g
    return w - lr * g / np.sqrt(acc + eps), [acc]


REFERENCE = {
    O.SGD: ref_sgd,
    O.Adam: ref_adam,
    O.AdamW: ref_adam,
    O.RMSprop: ref_rmsprop,
    O.Adagrad: ref_adagrad,
}
HYPER = (
    "learning_rate",
    "momentum",
    "nesterov",
    "beta_1",
    "beta_2",
    "epsilon",
    "rho",
    "centered",
    "weight_decay",
    "initial_accumulator_value",
)

CONFIGS = {
    "sgd": lambda: O.SGD(),
    "sgd_lr": lambda: O.SGD(learning_rate=0.3),
    "sgd_momentum": lambda: O.SGD(learning_rate=0.05, momentum=0.9),
    "sgd_nesterov": lambda: O.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
    "sgd_weight_decay": lambda: O.SGD(learning_rate=0.1, weight_decay=0.05),
    "adam": lambda: O.Adam(),
    "adam_custom": lambda: O.Adam(learning_rate=0.02, beta_1=0.5, beta_2=0.75, epsilon=1e-3),
    "adamw": lambda: O.AdamW(),
    "adamw_custom": lambda: O.AdamW(learning_rate=0.05, weight_decay=0.25),
    "rmsprop": lambda: O.RMSprop(),
    "rmsprop_momentum": lambda: O.RMSprop(learning_rate=0.01, momentum=0.9),
    "rmsprop_centered": lambda: O.RMSprop(centered=True),
    "rmsprop_centered_momentum": lambda: O.RMSprop(learning_rate=0.01, momentum=0.5, centered=True),
    "adagrad": lambda: O.Adagrad(),
    "adagrad_custom": lambda: O.Adagrad(learning_rate=0.1, initial_accumulator_value=0.5),
}


def engine_hyper(opt):
    """The hyper-parameters as the engine holds them (read back from the spec).

    The spec stores them in float32; feeding these exact values to the reference tests
    the update rule itself. `test_float64_update_uses_exact_hyperparameters` compares
    with the exact Python values separately.
    """
    spec = opt.spec()
    hp = {k: getattr(spec, k) for k in HYPER}
    hp["learning_rate"] = opt.learning_rate
    return hp


def python_hyper(opt):
    """The hyper-parameters exactly as given to the optimizer (Keras' float64 values)."""
    hp = {k: getattr(opt, k, 0.0) for k in HYPER}
    hp["weight_decay"] = opt.weight_decay or 0.0
    hp["nesterov"] = getattr(opt, "nesterov", False)
    hp["centered"] = getattr(opt, "centered", False)
    return hp


def problem(rng, shape=(3, 4)):
    w0 = rng.normal(size=shape)
    grads = [rng.normal(size=shape) for _ in range(STEPS)]
    return w0, grads


def initial_slots(spec, w):
    return [
        np.full_like(w, _core.optimizer_slot_init(spec, k))
        for k in range(_core.optimizer_slots(spec))
    ]


def run_engine(opt, w0, grads, dtype=np.float64):
    spec = opt.spec()
    w = w0.astype(dtype).copy()
    slots = initial_slots(spec, w)
    for t, g in enumerate(grads, start=1):
        _core.optimizer_step(spec, opt.learning_rate, t, w, g.astype(dtype), slots)
    return w, slots


def run_reference(opt, w0, grads, hp, init=None):
    spec = opt.spec()
    state = init if init is not None else initial_slots(spec, w0.astype(np.float64))
    w = w0.astype(np.float64)
    for t, g in enumerate(grads, start=1):
        w, state = REFERENCE[type(opt)](w, g.astype(np.float64), state, t, hp)
    return w, state


# ------------------------------------------------------------------ update rules
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_update_rule_float64(name, rng):
    opt = CONFIGS[name]()
    w0, grads = problem(rng)
    w, slots = run_engine(opt, w0, grads)
    w_ref, state_ref = run_reference(opt, w0, grads, engine_hyper(opt))
    assert np.max(np.abs(w - w0)) > 1e-4  # the weights really moved
    np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-12)
    assert len(slots) == len(state_ref)
    for k, (s, s_ref) in enumerate(zip(slots, state_ref)):
        np.testing.assert_allclose(s, s_ref, rtol=1e-12, atol=1e-12, err_msg=f"slot {k}")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_update_rule_float32(name, rng):
    opt = CONFIGS[name]()
    w0, grads = problem(rng)
    w0 = w0.astype(np.float32).astype(np.float64)
    grads = [g.astype(np.float32).astype(np.float64) for g in grads]
    w, slots = run_engine(opt, w0, grads, np.float32)
    assert w.dtype == np.float32 and all(s.dtype == np.float32 for s in slots)
    w_ref, state_ref = run_reference(opt, w0, grads, engine_hyper(opt))
    np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-6)
    for s, s_ref in zip(slots, state_ref):
        np.testing.assert_allclose(s, s_ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "name", ["sgd_momentum", "adam", "adamw", "rmsprop", "rmsprop_centered", "adagrad"]
)
def test_float64_update_uses_exact_hyperparameters(name, rng):
    # Keras computes float64 variables with beta_1 = 0.9, rho = 0.9, ... exactly.
    opt = CONFIGS[name]()
    w0, grads = problem(rng)
    w, _ = run_engine(opt, w0, grads)
    hp = python_hyper(opt)
    init = None
    if isinstance(opt, O.Adagrad):
        init = [np.full_like(w0, opt.initial_accumulator_value)]
    w_ref, _ = run_reference(opt, w0, grads, hp, init)
    np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-12)


def test_adam_first_step_is_bias_corrected(rng):
    # Keras' first Adam step: m = (1-b1) g, v = (1-b2) g^2, so the update is
    # lr * g / (|g| + eps / sqrt(1 - b2)) ~ lr * sign(g) (epsilon is not bias-corrected).
    opt = O.Adam(learning_rate=0.01)
    w0 = rng.normal(size=8)
    g = rng.normal(size=8)
    w, _ = run_engine(opt, w0, [g])
    expected = 0.01 * g / (np.abs(g) + 1e-7 / np.sqrt(1.0 - 0.999))
    np.testing.assert_allclose(w0 - w, expected, rtol=1e-6)


def test_step_counter_drives_bias_correction(rng):
    # The same state and gradient at step 1 and step 10 give different updates.
    opt = O.Adam()
    spec = opt.spec()
    g = rng.normal(size=5)
    results = []
    for t in (1, 10):
        w = np.zeros(5)
        slots = initial_slots(spec, w)
        _core.optimizer_step(spec, opt.learning_rate, t, w, g, slots)
        w_ref, _ = ref_adam(np.zeros(5), g, initial_slots(spec, np.zeros(5)), t, engine_hyper(opt))
        np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-15)
        results.append(w)
    assert not np.allclose(results[0], results[1])


def test_optimizer_step_does_not_clip(rng):
    # Clipping belongs to the model's training step, not to the update kernel.
    opt = O.SGD(learning_rate=0.1, clipnorm=1e-3)
    w0 = rng.normal(size=6)
    g = 10.0 * rng.normal(size=6)
    w, _ = run_engine(opt, w0, [g])
    np.testing.assert_allclose(w, w0 - 0.1 * g, rtol=1e-12, atol=1e-12)


def test_gradient_is_not_modified(rng):
    opt = O.Adam()
    spec = opt.spec()
    w = rng.normal(size=5)
    g = rng.normal(size=5)
    g_copy = g.copy()
    _core.optimizer_step(spec, opt.learning_rate, 1, w, g, initial_slots(spec, w))
    np.testing.assert_array_equal(g, g_copy)


def test_optimizer_step_checks_sizes():
    spec = O.Adam().spec()
    w = np.zeros(4)
    with pytest.raises(ValueError):
        _core.optimizer_step(spec, 0.001, 1, w, np.zeros(3), [np.zeros(4), np.zeros(4)])
    with pytest.raises(ValueError):
        _core.optimizer_step(spec, 0.001, 1, w, np.zeros(4), [np.zeros(4)])
    with pytest.raises(ValueError):
        _core.optimizer_step(spec, 0.001, 1, w, np.zeros(4), [np.zeros(4), np.zeros(5)])


# ------------------------------------------------------------------------- slots
@pytest.mark.parametrize(
    "opt, count",
    [
        (O.SGD(), 0),
        (O.SGD(momentum=0.9), 1),
        (O.SGD(momentum=0.9, nesterov=True), 1),
        (O.Adam(), 2),
        (O.AdamW(), 2),
        (O.RMSprop(), 3),
        (O.RMSprop(momentum=0.5), 3),
        (O.RMSprop(centered=True), 3),
        (O.Adagrad(), 1),
    ],
)
def test_slot_count(opt, count):
    assert _core.optimizer_slots(opt.spec()) == count


def test_slot_initial_values():
    for opt in (O.SGD(momentum=0.9), O.Adam(), O.AdamW(), O.RMSprop(centered=True)):
        spec = opt.spec()
        for k in range(_core.optimizer_slots(spec)):
            assert _core.optimizer_slot_init(spec, k) == 0.0
    assert _core.optimizer_slot_init(O.Adagrad().spec(), 0) == pytest.approx(0.1, rel=1e-7)
    spec = O.Adagrad(initial_accumulator_value=0.5).spec()
    assert _core.optimizer_slot_init(spec, 0) == 0.5


# ---------------------------------------------------------------------- defaults
@pytest.mark.parametrize(
    "cls, defaults",
    [
        (O.SGD, {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False}),
        (O.Adam, {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
        (
            O.AdamW,
            {
                "learning_rate": 0.001,
                "weight_decay": 0.004,
                "beta_1": 0.9,
                "beta_2": 0.999,
                "epsilon": 1e-7,
            },
        ),
        (
            O.RMSprop,
            {
                "learning_rate": 0.001,
                "rho": 0.9,
                "momentum": 0.0,
                "epsilon": 1e-7,
                "centered": False,
            },
        ),
        (O.Adagrad, {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7}),
    ],
)
def test_keras_defaults(cls, defaults):
    opt = cls()
    spec = opt.spec()
    for key, value in defaults.items():
        assert getattr(opt, key) == value, key
        assert getattr(spec, key) == pytest.approx(value, rel=1e-7), key
    assert opt.clipnorm is None and opt.clipvalue is None and opt.global_clipnorm is None


def test_only_adamw_decays_by_default():
    assert not O.Adam().weight_decay
    assert not O.SGD().weight_decay
    assert O.Adam().spec().weight_decay == 0.0
    assert O.AdamW().spec().weight_decay == pytest.approx(0.004, rel=1e-7)


def test_spec_kind():
    assert O.SGD().spec().kind == _core.Opt.SGD
    assert O.Adam().spec().kind == _core.Opt.Adam
    assert O.AdamW().spec().kind == _core.Opt.AdamW
    assert O.RMSprop().spec().kind == _core.Opt.RMSprop
    assert O.Adagrad().spec().kind == _core.Opt.Adagrad


# ---------------------------------------------------------------------- registry
@pytest.mark.parametrize(
    "name, cls",
    [
        ("sgd", O.SGD),
        ("adam", O.Adam),
        ("adamw", O.AdamW),
        ("rmsprop", O.RMSprop),
        ("adagrad", O.Adagrad),
    ],
)
def test_get_by_name(name, cls):
    assert type(O.get(name)) is cls


def test_get_class_and_instance():
    assert type(O.get(O.Adam)) is O.Adam
    opt = O.RMSprop(learning_rate=0.1)
    assert O.get(opt) is opt


def test_get_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as info:
        O.get("nope")
    message = str(info.value)
    assert "nope" in message
    for name in ("sgd", "adam", "adamw", "rmsprop", "adagrad"):
        assert name in message


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: O.SGD(learning_rate=-1), "learning_rate"),
        (lambda: O.Adam(learning_rate=-1), "learning_rate"),
        (lambda: O.Adam(beta_1=1.5), "beta_1"),
        (lambda: O.Adam(beta_2=-0.1), "beta_2"),
        (lambda: O.Adam(epsilon=-1.0), "epsilon"),
        (lambda: O.SGD(momentum=-0.5), "momentum"),
        (lambda: O.RMSprop(rho=1.5), "rho"),
        (lambda: O.Adagrad(initial_accumulator_value=-1.0), "initial_accumulator_value"),
        (lambda: O.AdamW(weight_decay=-0.1), "weight_decay"),
    ],
)
def test_invalid_hyperparameters_name_the_argument(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()


def test_learning_rate_setter_validates():
    opt = O.SGD()
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5
    assert opt.spec().learning_rate == 0.5
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = -1.0


# --------------------------------------------------------- clipping in a model
LR = 0.1


def clip_by_norm(g, clipnorm):
    """Keras: g * clipnorm / max(||g||, clipnorm)."""
    return g * clipnorm / max(np.linalg.norm(g), clipnorm)


def ref_clipnorm(grads, clipnorm):
    return [clip_by_norm(g, clipnorm) for g in grads]


def ref_global_clipnorm(grads, clipnorm):
    norm = np.sqrt(sum(np.sum(g**2) for g in grads))
    return [g * clipnorm / max(norm, clipnorm) for g in grads]


def ref_clipvalue(grads, clipvalue):
    return [np.clip(g, -clipvalue, clipvalue) for g in grads]


def sgd_model_step(rng, **clip):
    """Old weights, raw gradients and new weights after one clipped SGD step."""
    m = dc.Sequential([dc.Input(shape=(3,)), dc.layers.Dense(2)])
    m.compile(optimizer=O.SGD(learning_rate=LR, **clip), loss="mse")
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = (3.0 * rng.normal(size=(8, 2)) + 2.0).astype(np.float32)
    old = [w.astype(np.float64) for w in m.get_weights()]
    _, grads = m.gradients(x, y)
    grads = [g.astype(np.float64) for g in grads]
    m.train_on_batch(x, y)
    new = [w.astype(np.float64) for w in m.get_weights()]
    return old, grads, new


def assert_sgd_step(old, clipped, new):
    for w0, g, w1 in zip(old, clipped, new):
        np.testing.assert_allclose(w1, w0 - LR * g, rtol=1e-5, atol=1e-6)


def test_no_clipping_is_plain_sgd(rng):
    old, grads, new = sgd_model_step(rng)
    assert_sgd_step(old, grads, new)


def test_clipnorm_clips_each_tensor(rng):
    old, grads, new = sgd_model_step(rng, clipnorm=0.01)
    assert all(np.linalg.norm(g) > 0.01 for g in grads)  # clipping is active
    clipped = ref_clipnorm(grads, 0.01)
    for g in clipped:
        assert np.linalg.norm(g) == pytest.approx(0.01, rel=1e-6)
    assert_sgd_step(old, clipped, new)


def test_clipnorm_leaves_small_gradients_alone(rng):
    old, grads, new = sgd_model_step(rng, clipnorm=1e6)
    assert_sgd_step(old, grads, new)


def test_global_clipnorm_scales_all_tensors_together(rng):
    old, grads, new = sgd_model_step(rng, global_clipnorm=0.01)
    clipped = ref_global_clipnorm(grads, 0.01)
    # the global scaling differs from per-tensor scaling here
    assert not np.allclose(clipped[1], ref_clipnorm(grads, 0.01)[1], rtol=1e-3)
    assert_sgd_step(old, clipped, new)


def test_clipvalue_clips_elementwise(rng):
    old, grads, new = sgd_model_step(rng, clipvalue=0.001)
    assert any(np.any(np.abs(g) > 0.001) for g in grads)
    assert_sgd_step(old, ref_clipvalue(grads, 0.001), new)


def test_clipvalue_keeps_values_inside_the_range(rng):
    # A threshold between the smallest and largest |g|: some elements clipped, some not.
    _, grads, _ = sgd_model_step(np.random.default_rng(7))
    threshold = float(np.median(np.abs(np.concatenate([g.ravel() for g in grads]))))
    old, grads, new = sgd_model_step(np.random.default_rng(7), clipvalue=threshold)
    flat = np.abs(np.concatenate([g.ravel() for g in grads]))
    assert np.any(flat < threshold) and np.any(flat > threshold)
    assert_sgd_step(old, ref_clipvalue(grads, threshold), new)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"clipnorm": 1.0, "global_clipnorm": 1.0},
        {"clipnorm": 1.0, "clipvalue": 1.0},
        {"clipvalue": 1.0, "global_clipnorm": 1.0},
    ],
)
def test_only_one_clip_option_can_be_set(kwargs):
    # Keras 3: "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set."
    with pytest.raises(ValueError):
        O.SGD(**kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"clipnorm": -1.0}, {"clipvalue": 0.0}, {"global_clipnorm": -0.5}]
)
def test_invalid_clip_values(kwargs):
    with pytest.raises(ValueError):
        O.SGD(**kwargs)
