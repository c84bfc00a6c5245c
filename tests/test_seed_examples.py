"""SPEC §6: every seed example, checked three ways.

1. against the exact values the spec gives (or their closed form),
2. against central differences (`graphc check`'s engine, on the interpreter),
3. reverse mode against forward mode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc.gradcheck import check_gradients

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
rng = np.random.default_rng(42)


def sigmoid(s):
    return 1.0 / (1.0 + np.exp(-s))


def _ner_expected(f):
    z = f["W"] @ f["x"] + f["b"]
    h = np.tanh(z)
    s = f["u"] @ h
    J = sigmoid(s)
    dJ_ds = J * (1 - J)
    delta = dJ_ds * f["u"] * (1 - h**2)
    return J, {"W": np.outer(delta, f["x"]), "b": delta, "u": dJ_ds * h, "x": f["W"].T @ delta}


def _logistic_expected(f):
    l, derivative = f["l0"], 1.0
    for _ in range(4):
        derivative *= 4 * (1 - 2 * l)  # d/dl [4 l (1 − l)] = 4 (1 − 2l)
        l = 4 * l * (1 - l)
    return l, {"l0": derivative}


x3 = rng.normal(size=3)
x4 = rng.normal(size=4)
X, y5, w3 = rng.normal(size=(5, 3)), rng.normal(size=5), rng.normal(size=3)
lr = {
    k: float(v)
    for k, v in zip(["x1", "x2", "x3", "x4", "y", "w1", "w2", "w3", "w4", "b"], rng.normal(size=10))
}
_pred = sum(lr[f"w{i}"] * lr[f"x{i}"] for i in range(1, 5)) + lr["b"]
_resid = lr["y"] - _pred
ner = {
    "x": rng.normal(size=250) * 0.1,
    "W": rng.normal(size=(100, 250)) * 0.1,
    "b": rng.normal(size=100) * 0.1,
    "u": rng.normal(size=100),
}

# (example, feed, wrt or None, expected value, expected gradients, decimals)
CASES = [
    ("quadratic", {"x": x3}, None, 2 * x3 @ x3, {"x": 4 * x3}, 12),
    ("sum", {"x": x4}, None, x4.sum(), {"x": np.ones(4)}, 12),
    ("sum_of_squares", {"x": x4}, None, x4 @ x4, {"x": 2 * x4}, 12),
    ("stop", {"x": x3}, None, np.sum(x3**3), {"x": x3 * x3}, 12),
    (
        "least_squares",
        {"X": X, "y": y5, "w": w3},
        None,
        np.sum((X @ w3 - y5) ** 2),
        {"w": 2 * X.T @ (X @ w3 - y5)},
        10,
    ),
    ("dot_product", {"x": x3, "w": w3}, None, w3 @ x3, {"w": x3}, 12),
    ("two_variables", {"x1": 1.5, "x2": -2.0}, None, 1.5**2 + 2 * 4.0, {"x1": 3.0, "x2": -8.0}, 12),
    (
        "linear_regression",
        lr,
        None,
        0.5 * _resid**2,
        {**{f"w{i}": -_resid * lr[f"x{i}"] for i in range(1, 5)}, "b": -_resid},
        12,
    ),
    ("max_routes", {"x": 1.0, "y": 2.0, "z": 0.0}, None, 6.0, {"x": 2.0, "y": 5.0, "z": 0.0}, 12),
    ("cube", {"x": 1.0}, None, 1.0, {"x": 3.0}, 12),
    ("cube", {"x": 4.0}, None, 64.0, {"x": 48.0}, 12),
    ("log_sin", {"x1": 2.0, "x2": 5.0}, None, 11.652, {"x1": 5.5, "x2": 1.716}, 3),
    ("ner_window", ner, ["W", "b", "u", "x"], *_ner_expected(ner), 12),
    ("logistic_map", {"l0": 0.3}, None, *_logistic_expected({"l0": 0.3}), 9),
]


def _ids(case):
    name, feed = case[0], case[1]
    return name if name != "cube" else f"cube-at-{feed['x']:g}"


def _compile(name, wrt, mode="reverse"):
    text = (EXAMPLES / f"{name}.gc").read_text(encoding="utf-8")
    return graphc.compile(text, wrt=wrt, mode=mode, filename=f"{name}.gc")


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_exact_values(case):
    name, feed, wrt, value, grads, decimals = case
    fn = _compile(name, wrt)
    got_value, got_grads = fn.value_and_grad(**feed)
    np.testing.assert_almost_equal(got_value, value, decimal=decimals)
    assert set(got_grads) == set(grads)
    for var, expected in grads.items():
        assert np.shape(got_grads[var]) == np.shape(feed[var])
        np.testing.assert_almost_equal(got_grads[var], expected, decimal=decimals)


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_central_differences(case):
    name, feed, wrt, *_ = case
    report = check_gradients(_compile(name, wrt), feed, tolerance=1e-6)
    assert report.ok, report.text()


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_reverse_equals_forward(case):
    name, feed, wrt, *_ = case
    if name == "ner_window":  # forward mode needs one sweep per entry: keep W out
        wrt = ["b", "u", "x"]
    value_r, grads_r = _compile(name, wrt, "reverse").value_and_grad(**feed)
    value_f, grads_f = _compile(name, wrt, "forward").value_and_grad(**feed)
    np.testing.assert_allclose(value_f, value_r, rtol=1e-12)
    assert set(grads_f) == set(grads_r)
    for var in grads_r:
        np.testing.assert_allclose(grads_f[var], grads_r[var], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_sigmoid_jacobian_is_diagonal(mode):
    z = np.array([-2.0, -0.5, 0.0, 3.0])
    fn = _compile("sigmoid_jacobian", ["z"], mode)
    jac = fn.jacobian(z=z)["z"]
    assert jac.shape == (4, 4)  # output shape + input shape
    np.testing.assert_allclose(jac, np.diag(sigmoid(z) * (1 - sigmoid(z))), rtol=1e-12, atol=0)


def test_ner_emits_the_hand_derivation():
    """tanh and σ evaluated once; δ computed once and shared by ∇W and ∇b."""
    source = _compile("ner_window", None).source
    body = source.split("def value_and_grad")[1]
    assert body.count("np.tanh(") == 1
    assert body.count(" if s >= 0.0 else ") == 1  # σ(s) of a scalar: one stable branch
    assert "np.einsum('i,j->ij', delta, x)" in body  # the outer product of 100×250 entries
    assert "'b': delta" in body
    assert "np.diag" not in body and "np.eye" not in body


def _logistic_program(steps: int) -> str:
    lines = ["param l0 : []"]
    lines += [f"l{k + 1} = 4 l{k} (1 − l{k})" for k in range(steps)]
    return "\n".join(lines)


def test_logistic_map_gradient_graph_grows_linearly():
    sizes = []
    for steps in (4, 8, 16, 32):
        fn = graphc.compile(_logistic_program(steps))
        body = fn.source.split("def value_and_grad")[1]
        sizes.append(len([line for line in body.splitlines() if " = " in line]))
        value, grads = fn.value_and_grad(l0=0.3)
        l, derivative = 0.3, 1.0
        for _ in range(steps):
            derivative *= 4 * (1 - 2 * l)
            l = 4 * l * (1 - l)
        np.testing.assert_allclose(value, l, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(grads["l0"], derivative, rtol=1e-6)
    steps_per_line = np.diff(sizes) / np.diff([4, 8, 16, 32])
    assert np.allclose(steps_per_line, steps_per_line[0]), sizes  # exactly linear


def test_logistic_map_symbolic_expression_swells():
    sympy = pytest.importorskip("sympy")
    l0 = sympy.Symbol("l0")
    terms = []
    l = l0
    for _ in range(5):
        l = sympy.expand(4 * l * (1 - l))
        terms.append(len(sympy.Add.make_args(sympy.diff(l, l0))))
    # The expanded derivative has degree 2^k − 1: its term count doubles.
    assert terms == [2, 4, 8, 16, 32]
