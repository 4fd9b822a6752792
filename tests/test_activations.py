"""Activations: engine kernels against float64 NumPy references of Keras 3's formulas.

Every reference below is written from the formula alone (no deepcore code), in float64.
"""

import math

import numpy as np
import pytest

import deepcore as dc
from deepcore import _core

A = dc.activations

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
LEAKY_SLOPE = 0.2  # Keras 3 default negative_slope
ELU_ALPHA = 1.0

_erf = np.vectorize(math.erf, otypes=[np.float64])


# ------------------------------------------------------------------ forward references
def ref_linear(x, a=None):
    return x.copy()


def ref_relu(x, a=None):
    return np.where(x > 0, x, 0.0)


def ref_leaky_relu(x, a=LEAKY_SLOPE):
    return np.where(x > 0, x, a * x)


def ref_elu(x, a=ELU_ALPHA):
    return np.where(x > 0, x, a * (np.exp(np.minimum(x, 0)) - 1.0))


def ref_selu(x, a=None):
    return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(np.minimum(x, 0)) - 1.0))


def ref_sigmoid(x, a=None):
    return 1.0 / (1.0 + np.exp(-x))


def ref_hard_sigmoid(x, a=None):
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)


def ref_tanh(x, a=None):
    return np.tanh(x)


def ref_softmax(x, a=None):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def ref_softplus(x, a=None):
    return np.log1p(np.exp(x))


def ref_softsign(x, a=None):
    return x / (np.abs(x) + 1.0)


def ref_swish(x, a=None):
    return x / (1.0 + np.exp(-x))


def ref_gelu(x, a=None):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def ref_exponential(x, a=None):
    return np.exp(x)


def ref_step(x, a=None):
    return np.where(x >= 0, 1.0, 0.0)


# --------------------------------------------------------------- derivative references
# Each returns dx = dy * f'(x) (softmax: the Jacobian-vector product).
def dref_linear(x, dy, a=None):
    return dy.copy()


def dref_relu(x, dy, a=None):
    return dy * (x > 0)


def dref_leaky_relu(x, dy, a=LEAKY_SLOPE):
    return dy * np.where(x > 0, 1.0, a)


def dref_elu(x, dy, a=ELU_ALPHA):
    return dy * np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0)))


def dref_selu(x, dy, a=None):
    return dy * SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0)))


def dref_sigmoid(x, dy, a=None):
    s = ref_sigmoid(x)
    return dy * s * (1.0 - s)


def dref_hard_sigmoid(x, dy, a=None):
    return dy * np.where(np.abs(x) < 3.0, 1.0 / 6.0, 0.0)


def dref_tanh(x, dy, a=None):
    return dy * (1.0 - np.tanh(x) ** 2)


def dref_softmax(x, dy, a=None):
    s = ref_softmax(x)
    return s * (dy - (dy * s).sum(axis=-1, keepdims=True))


def dref_softplus(x, dy, a=None):
    return dy * ref_sigmoid(x)


def dref_softsign(x, dy, a=None):
    return dy / (1.0 + np.abs(x)) ** 2


def dref_swish(x, dy, a=None):
    s = ref_sigmoid(x)
    return dy * (s + x * s * (1.0 - s))


def dref_gelu(x, dy, a=None):
    cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return dy * (cdf + x * pdf)


def dref_exponential(x, dy, a=None):
    return dy * np.exp(x)


FORWARD = {
    "linear": ref_linear,
    "relu": ref_relu,
    "leaky_relu": ref_leaky_relu,
    "elu": ref_elu,
    "selu": ref_selu,
    "sigmoid": ref_sigmoid,
    "hard_sigmoid": ref_hard_sigmoid,
    "tanh": ref_tanh,
    "softmax": ref_softmax,
    "softplus": ref_softplus,
    "softsign": ref_softsign,
    "swish": ref_swish,
    "silu": ref_swish,
    "gelu": ref_gelu,
    "exponential": ref_exponential,
    "step": ref_step,
}
DERIVATIVE = {
    "linear": dref_linear,
    "relu": dref_relu,
    "leaky_relu": dref_leaky_relu,
    "elu": dref_elu,
    "selu": dref_selu,
    "sigmoid": dref_sigmoid,
    "hard_sigmoid": dref_hard_sigmoid,
    "tanh": dref_tanh,
    "softmax": dref_softmax,
    "softplus": dref_softplus,
    "softsign": dref_softsign,
    "swish": dref_swish,
    "silu": dref_swish,
    "gelu": dref_gelu,
    "exponential": dref_exponential,
}
ALL_NAMES = sorted(FORWARD)
DIFFERENTIABLE = sorted(DERIVATIVE)
# Activations whose derivative jumps at 0 (kept away from |x| < 1e-3 in gradient checks).
KINK_AT_ZERO = {"relu", "leaky_relu", "elu", "selu", "softsign"}


def engine_alpha(name):
    """The parameter the engine kernel uses (float32-rounded), or None.

    The per-formula tests below feed this exact value to the references so that they
    test the formula itself; `test_float64_uses_exact_default_parameters` checks the
    parameter against Keras' exact default separately.
    """
    if name in ("leaky_relu", "elu"):
        return float(A.spec(name).alpha)
    return None


# ------------------------------------------------------------------------ inputs
def random_inputs(rng, dtype):
    """Shape (6, 5): moderate values plus very large magnitudes (stability)."""
    x = rng.normal(0.0, 3.0, size=(6, 5))
    x[0] = [-50.0, 50.0, -20.0, 20.0, 0.0]
    x[1] = [50.0, 49.0, -50.0, 0.5, -0.5]
    x[2, :2] = [-3.0, 3.0]  # hard_sigmoid corners, exactly representable
    return x.astype(dtype)


def gradient_inputs(rng, name):
    """float64 inputs away from the kinks of `name`."""
    x = rng.uniform(-4.0, 4.0, size=(4, 5))
    if name in KINK_AT_ZERO:
        x = np.where(np.abs(x) < 1e-3, 0.5, x)
    if name == "hard_sigmoid":
        x = np.where(np.abs(np.abs(x) - 3.0) < 1e-3, 1.0, x)
        x[0, :2] = [-3.5, 3.5]  # flat parts too
    return x


def finite_difference(f, x, dy, h=1e-6):
    """Central differences of sum(dy * f(x)) with respect to every element of x."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        grad[i] = np.sum(dy * (f(xp) - f(xm))) / (2.0 * h)
    return grad


# ------------------------------------------------------------------------ forward
@pytest.mark.parametrize("name", ALL_NAMES)
def test_forward_float32_matches_reference(name, rng):
    x = random_inputs(rng, np.float32)
    y = getattr(A, name)(x)
    assert y.dtype == np.float32
    assert y.shape == x.shape
    expected = FORWARD[name](x.astype(np.float64), engine_alpha(name))
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_forward_float64_matches_reference(name, rng):
    x = random_inputs(rng, np.float64)
    y = getattr(A, name)(x)
    assert y.dtype == np.float64
    expected = FORWARD[name](x, engine_alpha(name))
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "softmax", "swish", "tanh"])
def test_forward_float32_is_stable_beyond_exp_overflow(name):
    # exp(100) overflows float32: a naive float32 formula gives inf or nan here.
    x = np.array([[-100.0, 100.0, -89.0, 89.0, 0.0]], dtype=np.float32)
    y = getattr(A, name)(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, FORWARD[name](x.astype(np.float64)), rtol=1e-6, atol=1e-6)


def test_softmax_is_over_last_axis_for_3d_input(rng):
    x = rng.normal(size=(2, 3, 4))
    y = A.softmax(x)
    np.testing.assert_allclose(y.sum(axis=-1), np.ones((2, 3)), rtol=0, atol=1e-14)
    np.testing.assert_allclose(y, ref_softmax(x), rtol=1e-12, atol=1e-15)


def test_softmax_is_shift_invariant(rng):
    x = rng.normal(size=(3, 4))
    np.testing.assert_allclose(A.softmax(x + 1000.0), A.softmax(x), rtol=1e-10, atol=1e-15)


def test_silu_is_swish():
    assert A.silu is A.swish


def test_step_values_at_zero_and_negative_zero():
    y = A.step(np.array([-1e-30, -0.0, 0.0, 1e-30]))
    np.testing.assert_array_equal(y, [0.0, 1.0, 1.0, 1.0])


def test_float64_uses_exact_default_parameters():
    # Keras 3: leaky_relu(x) = 0.2 * x for x < 0; in float64 this is exact to 1 ulp.
    x = np.array([-1.0, -3.0, -10.0])
    np.testing.assert_allclose(A.leaky_relu(x), LEAKY_SLOPE * x, rtol=1e-14, atol=0)
    dx = _core.activation_grad(A.spec("leaky_relu"), x, A.leaky_relu(x), np.ones(3))
    np.testing.assert_allclose(dx, np.full(3, LEAKY_SLOPE), rtol=1e-14, atol=0)


def test_custom_parameters_through_spec(rng):
    x = rng.normal(size=(4, 5)) * 3
    y = _core.activation(A.spec("elu", alpha=0.5), x)
    np.testing.assert_allclose(y, ref_elu(x, 0.5), rtol=1e-12, atol=1e-12)
    y = A.leaky_relu(x, negative_slope=0.5)
    np.testing.assert_allclose(y, ref_leaky_relu(x, 0.5), rtol=1e-12, atol=1e-12)


def test_default_parameters_of_spec():
    assert A.spec("leaky_relu").alpha == pytest.approx(0.2, rel=1e-7)
    assert A.spec("elu").alpha == 1.0
    assert A.spec("leaky_relu", alpha=0.25).alpha == 0.25
    assert A.spec("relu").kind == _core.Act.relu
    assert A.spec("silu").kind == _core.Act.swish


# ----------------------------------------------------------------------- backward
@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_gradient_matches_finite_differences(name, rng):
    x = gradient_inputs(rng, name)
    dy = rng.normal(size=x.shape)
    f = getattr(A, name)
    dx = _core.activation_grad(A.spec(name), x, f(x), dy)
    assert dx.dtype == np.float64 and dx.shape == x.shape
    np.testing.assert_allclose(dx, finite_difference(f, x, dy), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_gradient_matches_reference_derivative(name, rng):
    x = gradient_inputs(rng, name)
    dy = rng.normal(size=x.shape)
    dx = _core.activation_grad(A.spec(name), x, getattr(A, name)(x), dy)
    expected = DERIVATIVE[name](x, dy, engine_alpha(name))
    np.testing.assert_allclose(dx, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_gradient_float32_matches_reference_derivative(name, rng):
    x = gradient_inputs(rng, name).astype(np.float32)
    dy = rng.normal(size=x.shape).astype(np.float32)
    dx = _core.activation_grad(A.spec(name), x, getattr(A, name)(x), dy)
    assert dx.dtype == np.float32
    expected = DERIVATIVE[name](x.astype(np.float64), dy.astype(np.float64), engine_alpha(name))
    np.testing.assert_allclose(dx, expected, rtol=1e-5, atol=1e-5)


def test_gradient_with_custom_elu_alpha(rng):
    x = gradient_inputs(rng, "elu")
    dy = rng.normal(size=x.shape)
    spec = A.spec("elu", alpha=0.5)
    dx = _core.activation_grad(spec, x, _core.activation(spec, x), dy)
    np.testing.assert_allclose(dx, dref_elu(x, dy, 0.5), rtol=1e-10, atol=1e-12)


def test_gradient_of_saturated_sigmoid_and_softmax_is_finite():
    x = np.array([[-50.0, 50.0, 0.0]])
    for name in ("sigmoid", "softmax", "softplus", "swish"):
        y = getattr(A, name)(x)
        dx = _core.activation_grad(A.spec(name), x, y, np.ones_like(x))
        assert np.all(np.isfinite(dx)), name
        np.testing.assert_allclose(dx, DERIVATIVE[name](x, np.ones_like(x)), rtol=1e-10, atol=1e-15)


def test_step_has_no_gradient():
    x = np.array([-1.0, 0.5, 2.0])
    with pytest.raises(ValueError, match="step"):
        _core.activation_grad(A.spec("step"), x, A.step(x), np.ones_like(x))


def test_activation_grad_checks_sizes():
    x = np.ones(3)
    with pytest.raises(ValueError):
        _core.activation_grad(A.spec("relu"), x, np.ones(4), np.ones(3))


# ----------------------------------------------------------------------- registry
@pytest.mark.parametrize("name", ALL_NAMES)
def test_get_by_name_returns_module_function(name):
    assert A.get(name) is getattr(A, name)


def test_get_function_returns_itself():
    assert A.get(A.relu) is A.relu
    assert A.get(A.gelu) is A.gelu


def test_get_none_is_linear():
    assert A.get(None) is A.linear


def test_get_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as info:
        A.get("nope")
    message = str(info.value)
    assert "nope" in message
    for name in ALL_NAMES:
        assert name in message


def test_get_custom_callable_is_rejected():
    with pytest.raises(ValueError, match="relu"):
        A.get(lambda x: x)


def test_serialize_roundtrip():
    for name in ALL_NAMES:
        assert A.get(A.serialize(getattr(A, name))) is getattr(A, name)


def test_activations_keep_a_scalars_shape():
    # float(keras.ops.sigmoid(predictions[0][0])), as the image tutorial scores one image
    for name in ("sigmoid", "relu", "tanh", "softmax", "gelu"):
        out = dc.activations.get(name)(np.float32(0.3))
        assert out.shape == (), name
    assert float(dc.ops.sigmoid(np.float32(0.0))) == 0.5
