"""Numerics: large arguments, and NaN and inf in the inputs.

Every way of evaluating a program (the interpreter ``run``, the emitted
``value_and_grad`` in reverse mode, and the emitted ``jvp`` in forward mode)
is checked against mpmath at 50 digits, for arguments up to |x| = 1000,
with NumPy's warnings turned into errors: an overflow, a division by zero
or an invalid value on the way fails the test even when the result is right.
"""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest

import graphc

mpmath.mp.dps = 50

POINTS = [-1000.0, -800.0, -100.0, -1.0, 0.0, 1.0, 100.0, 800.0, 1000.0]


def mp_sigmoid(x):
    return 1 / (1 + mpmath.exp(-x))


# program text of y(x), its meaning in mpmath, the points where it is defined in doubles
SCALAR = {
    "σ(x)": (mp_sigmoid, POINTS),
    "sigmoid(x)": (mp_sigmoid, POINTS),
    "1 / (1 + exp(-x))": (mp_sigmoid, POINTS),
    "exp(x) / (1 + exp(x))": (mp_sigmoid, POINTS),
    "1 / (1 + exp(x))": (lambda x: mp_sigmoid(-x), POINTS),
    "softplus(x)": (lambda x: mpmath.log(1 + mpmath.exp(x)), POINTS),
    "log(1 + exp(x))": (lambda x: mpmath.log(1 + mpmath.exp(x)), POINTS),
    "log(exp(x) + 1)": (lambda x: mpmath.log(1 + mpmath.exp(x)), POINTS),
    "log(σ(x))": (lambda x: mpmath.log(mp_sigmoid(x)), POINTS),
    "log(1 - σ(x))": (lambda x: -mpmath.log(1 + mpmath.exp(x)), POINTS),  # 1 − σ(x) = σ(−x)
    "log(exp(x))": (lambda x: x, POINTS),
    "tanh(x)": (mpmath.tanh, POINTS),
    # e^x itself is finite in doubles up to x ≈ 709.78; e^1000 is not a double.
    "exp(x)": (mpmath.exp, [x for x in POINTS if x <= 700] + [700.0]),
    "exp(-x)": (lambda x: mpmath.exp(-x), [x for x in POINTS if x >= -700]),
    "log(x)": (mpmath.log, [1e-300, 1e-5, 1.0, 1e5, 1e300]),
    "x log(x)": (lambda x: x * mpmath.log(x), [1e-300, 1e-5, 1.0, 1e5, 1e300]),
}

C = np.array([0.3, -1.2, 2.0])  # weights that make a vector function a scalar one
VECTOR_POINTS = [
    np.array([1000.0, 0.0, -1000.0]),
    np.array([-1000.0, -1000.0, -1000.0]),
    np.array([1000.0, 1000.0, 999.0]),
    np.array([800.0, 0.0, 1.0]),
    np.array([-0.5, 0.25, 2.0]),
]


def mp_softmax(xs):
    m = max(xs)
    e = [mpmath.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


def mp_logsumexp(xs):
    m = max(xs)
    return m + mpmath.log(sum(mpmath.exp(x - m) for x in xs))


VECTOR = {
    "logsumexp(x)": mp_logsumexp,
    "log(sum(exp(x)))": mp_logsumexp,
    "c' softmax(x)": lambda xs: sum(c * s for c, s in zip(C, mp_softmax(xs))),
    "c' (exp(x) / sum(exp(x)))": lambda xs: sum(c * s for c, s in zip(C, mp_softmax(xs))),
    "c' log(softmax(x))": lambda xs: sum(c * mpmath.log(s) for c, s in zip(C, mp_softmax(xs))),
    "sum(softplus(x))": lambda xs: sum(mpmath.log(1 + mpmath.exp(x)) for x in xs),
    "sum(log(σ(x)))": lambda xs: sum(mpmath.log(mp_sigmoid(x)) for x in xs),
}


def evaluations(text: str, feed: dict) -> dict[str, tuple]:
    """(value, gradient by x) three ways, with every floating-point warning an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", graphc.GraphcWarning)  # c is unused by some bodies
        results = {"run": (graphc.parse(text).run(**feed), None)}
        results["reverse"] = graphc.compile(text, wrt="x").value_and_grad(**feed)
        results["forward"] = graphc.compile(text, wrt="x", mode="forward").value_and_grad(**feed)
    return {k: (v, g if g is None else g["x"]) for k, (v, g) in results.items()}


def close(got, want, what: str) -> None:
    # Relative accuracy, or absolute near zero: σ'(100) = σ(1 − σ) is 0, not 3.7e-44 (as in JAX).
    want = np.asarray(want, dtype=float)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15, err_msg=what)


def step(x: float) -> mpmath.mpf:
    """A step for mpmath's differences that stays inside the domain (log at 1e-300)."""
    return mpmath.mpf(abs(x) or 1) * mpmath.mpf("1e-20")


@pytest.mark.parametrize(("body", "x"), [(body, x) for body, (_, xs) in SCALAR.items() for x in xs])
def test_scalar_functions_of_large_arguments(body, x):
    meaning, _ = SCALAR[body]
    value = float(meaning(mpmath.mpf(x)))
    derivative = float(mpmath.diff(meaning, mpmath.mpf(x), h=step(x)))
    for how, (got, grad) in evaluations(f"param x : []\ny = {body}", {"x": x}).items():
        close(got, value, f"{how}: value of {body} at {x}")
        if grad is not None:
            close(grad, derivative, f"{how}: derivative of {body} at {x}")


def test_the_issues_own_examples():
    for how, (value, _) in evaluations("param x : []\ny = log(σ(x))", {"x": -800.0}).items():
        assert value == -800.0, how
    for how, (_, slope) in evaluations("param x : []\ny = log(1 + exp(x))", {"x": 100.0}).items():
        assert slope in (None, 1.0), how  # run gives no derivative


@pytest.mark.parametrize("body", list(VECTOR))
@pytest.mark.parametrize("x", VECTOR_POINTS, ids=lambda x: str(list(x)))
def test_vector_functions_of_large_arguments(body, x):
    meaning = VECTOR[body]
    xs = [mpmath.mpf(v) for v in x]
    value = float(meaning(xs))
    gradient = [
        float(
            mpmath.diff(
                lambda *a: meaning(list(a)), xs, tuple(int(i == k) for i in range(3)), h=step(1.0)
            )
        )
        for k in range(3)
    ]
    text = f"dim n = 3\nparam x : [n]\ninput c : [n]\ny = {body}"
    for how, (got, grad) in evaluations(text, {"x": x, "c": C}).items():
        close(got, value, f"{how}: value of {body} at {x}")
        if grad is not None:
            np.testing.assert_allclose(
                grad, gradient, rtol=1e-11, atol=1e-15, err_msg=f"{how}: gradient of {body}"
            )


def test_unstable_compositions_become_stable_forms():
    source = graphc.compile("dim n = 3\nparam x : [n]\ny = log(sum(exp(x)))").source
    assert "np.max(x)" in source or "np.amax(x)" in source  # exp sees x − max x only
    source = graphc.compile("param x : []\ny = 1 / (1 + exp(-x))").source
    # a named scalar branches: each side's exponent is at most 0 where it is taken
    stable = "1.0 / (1.0 + np.exp(-x)) if x >= 0.0 else np.exp(x) / (1.0 + np.exp(x))"
    assert stable in source and source.count("np.exp(") == 6  # value and value_and_grad
    source = graphc.compile("dim n = 3\nparam x : [n]\ny = sum(1 / (1 + exp(-x)))").source
    assert "np.logaddexp" in source and "1.0 / " not in source


# ---------------------------------------------------------------------------
# NaN and inf in the inputs propagate as in NumPy
# ---------------------------------------------------------------------------

SPECIAL = [np.nan, np.inf, -np.inf]


@pytest.mark.parametrize(
    ("body", "numpy_value"),
    [
        ("tanh(W x) ∘ x", lambda W, x: np.tanh(W @ x) * x),
        ("exp(x) + W x", lambda W, x: np.exp(x) + W @ x),
        ("σ(x)", lambda W, x: 1 / (1 + np.exp(-x))),
        ("x ∘ x - x", lambda W, x: x * x - x),
    ],
)
@pytest.mark.parametrize("special", SPECIAL, ids=["nan", "inf", "-inf"])
def test_nan_and_inf_in_inputs_propagate_as_in_numpy(body, numpy_value, special):
    text = f"dim n = 3\ninput W : [n, n]\nparam x : [n]\ny = {body}"
    W = np.arange(9.0).reshape(3, 3) / 10
    x = np.array([0.5, special, -0.25])
    with np.errstate(all="ignore"):  # NumPy's own warnings are NumPy's business
        want = numpy_value(W, x)
        got_run = graphc.parse(text).run(W=W, x=x)
        got = graphc.compile(text)(W=W, x=x)
    # NaN where NumPy has NaN, ±inf where it has ±inf, the same numbers elsewhere
    np.testing.assert_allclose(got, want, rtol=1e-14)
    np.testing.assert_allclose(got_run, want, rtol=1e-14)


@pytest.mark.parametrize("special", SPECIAL, ids=["nan", "inf", "-inf"])
def test_a_nan_or_inf_input_is_fed_not_refused(special):
    fn = graphc.compile("dim n = 2\nparam x : [n]\ny = sum(x ∘ x)")
    with np.errstate(all="ignore"):
        value, grads = fn.value_and_grad(x=np.array([1.0, special]))
    assert np.isnan(value) if np.isnan(special) else value == np.inf
    assert grads["x"][0] == 2.0
    np.testing.assert_array_equal(grads["x"][1], 2 * special)
