"""The emitted derivatives read like the hand derivation (issue 11, part 4).

Each case is a program a new user writes; the emitted ``value_and_grad`` must
state the derivative as a person would, and compute the same numbers as
central differences (the rules that produce these forms are checked one by
one in tests/test_rules.py).
"""

from __future__ import annotations

import re

import numpy as np

import graphc
from graphc.runtime import load_module


def gradient_code(text: str) -> str:
    source = graphc.compile(text).source
    return source[source.index("def value_and_grad") :]


def check_numerically(text: str, feed: dict[str, np.ndarray]) -> None:
    module = load_module(graphc.compile(text).source)
    _, grads = module.value_and_grad(**feed)
    h = 1e-6
    for name, array in feed.items():
        numeric = np.zeros_like(array)
        for i in np.ndindex(array.shape):
            up, down = array.copy(), array.copy()
            up[i] += h
            down[i] -= h
            numeric[i] = (
                module.value(**{**feed, name: up}) - module.value(**{**feed, name: down})
            ) / (2 * h)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-5, atol=1e-7)


RNG = np.random.default_rng(11)


def test_logistic_map_folds_the_local_derivative_of_the_product():
    text = "dim n = 5\nparam l0 : [n]\n" + "".join(
        f"l{k} = 4 l{k - 1} ∘ (1 − l{k - 1})\n" for k in range(1, 4)
    )
    text += "J = sum(l3)\n"
    code = gradient_code(text)
    assert "dJ_dl2 = 4.0 - 8.0 * l2" in code
    assert "dJ_dl1 = dJ_dl2 * (4.0 - 8.0 * l1)" in code
    assert "'l0': dJ_dl1 * (4.0 - 8.0 * l0)" in code
    check_numerically(text, {"l0": RNG.uniform(0.1, 0.9, size=5)})


def test_constants_fold_through_reductions_and_broadcasts():
    text = "dim n = 4\nparam m : [n]\nJ = sum(0.5 m^2)\n"
    assert "return J, {'m': m}\n" in gradient_code(text)
    check_numerically(text, {"m": RNG.normal(size=4)})


def test_trace_gradients_build_no_identity():
    text = "dim n = 3\nparam A : [n, n]\nparam X : [n, n]\nparam B : [n, n]\nJ = tr(A X B)\n"
    assert "np.eye" not in gradient_code(text)
    check_numerically(text, {k: RNG.normal(size=(3, 3)) for k in "AXB"})
    quadratic = "dim n = 3\nparam A : [n, n]\nparam X : [n, n]\nJ = tr(Xᵀ A X)\n"
    code = gradient_code(quadratic)
    assert "np.eye" not in code and "'X': (A.T + A) @ X" in code
    check_numerically(quadratic, {k: RNG.normal(size=(3, 3)) for k in "AX"})


def test_cosine_similarity_states_each_term_once():
    text = "dim n = 4\nparam a : [n]\nparam b : [n]\nJ = aᵀ b / (norm(a) norm(b))\n"
    code = gradient_code(text)
    # −t − t (one array negated, then subtracted again) is one scaled term, the sign on the scalar
    assert not re.search(r"-(\w+) - \1\b", code)
    assert "'a': -2.0 * (" in code
    check_numerically(text, {"a": RNG.normal(size=4), "b": RNG.normal(size=4)})


def test_a_spread_vector_is_broadcast_not_tiled():
    # forward mode spreads b's tangent over the rows of X + b; the product reads a view
    text = "dim n = 4\ndim m = 3\ninput X : [n, m]\nparam b : [m]\nparam W : [m, 2]\n"
    text += "J = sum((X + b) W)\n"
    source = graphc.compile(text, mode="forward").source
    assert "np.tile" not in source
    assert "np.broadcast_to(b_dot, (4, 3)) @ W" in source
    feed = {"X": RNG.normal(size=(4, 3)), "b": RNG.normal(size=3), "W": RNG.normal(size=(3, 2))}
    _, grads = load_module(source).value_and_grad(**feed)
    np.testing.assert_allclose(grads["b"], feed["W"].sum(axis=1) * 4, rtol=1e-12)
    np.testing.assert_allclose(grads["W"], np.tile((feed["X"] + feed["b"]).sum(0)[:, None], 2))


def test_a_returned_spread_is_an_array_of_its_own():
    from graphc import ops
    from graphc.emit_numpy import FunctionSpec, emit_module
    from graphc.ir import Graph
    from graphc.shapes import Dim, Type

    v = ops.var(name="v", kind="param", type=Type((Dim.of(3),)))
    rows = ops.broadcast(v, type=Type((Dim.of(2), Dim.of(3))), axis=0)
    columns = ops.broadcast(v, type=Type((Dim.of(3), Dim.of(4))), axis=1)
    spec = FunctionSpec("f", [v], Graph({"r": rows, "c": columns}), (rows, columns), "Spread.")
    source = emit_module("Spread.", [spec], {v: "v"})
    assert "np.tile" not in source
    r, c = load_module(source).f(v=np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(r, [[1, 2, 3], [1, 2, 3]])
    np.testing.assert_array_equal(c, [[1] * 4, [2] * 4, [3] * 4])
    assert r.flags.writeable and c.flags.writeable and r.flags.owndata and c.flags.owndata


def test_ridge_solves_instead_of_inverting():
    # w = (XᵀX + λ XᵀX)⁻¹ Xᵀ y: one solve for the vector Xᵀ y, never np.linalg.inv
    text = "dim n = 6\ndim m = 4\ninput X : [n, m]\ninput y : [n]\nparam lam : []\n"
    text += "w = inv(Xᵀ X + lam Xᵀ X) Xᵀ y\nJ = sum(w ∘ w)\n"
    code = gradient_code(text)
    assert "np.linalg.inv" not in code
    assert "w = np.linalg.solve(t2, t1 @ y)" in code
    assert "np.linalg.solve(t2.T, dJ_dw)" in code  # the adjoint solve
    X, y = RNG.normal(size=(6, 4)), RNG.normal(size=6)
    _, grads = graphc.compile(text).value_and_grad(X=X, y=y, lam=np.float64(0.3))

    def loss(lam: float) -> float:
        return float(np.sum(np.linalg.solve((1 + lam) * X.T @ X, X.T @ y) ** 2))

    slope = (loss(0.3 + 1e-6) - loss(0.3 - 1e-6)) / 2e-6
    np.testing.assert_allclose(grads["lam"], slope, rtol=1e-6)


def test_a_penalty_met_twice_is_one_scaled_term():
    # ‖W‖² = Σ W ∘ W brings 0.01 W twice, after the data term: dW + t + t -> dW + 0.02 W
    text = "dim N\ndim d\ndim K\nparam W : [K, d]\nparam b : [K]\ninput X : [N, d]\n"
    text += "input Y : [N, K]\nZ = X Wᵀ + b\nL = -sum(Y ∘ log(softmax(Z))) + 0.01 ‖W‖²\n"
    code = gradient_code(text)
    assert "'W': dL_dZ.T @ X + 0.02 * W," in code
    assert not re.search(r"(\w+) \+ \1\b", code)
    Y = np.eye(3)[RNG.integers(0, 3, size=4)]
    feed = {"W": RNG.normal(size=(3, 2)), "b": RNG.normal(size=3), "X": RNG.normal(size=(4, 2))}
    module = load_module(graphc.compile(text).source)
    _, grads = module.value_and_grad(**feed, Y=Y)
    for name in ("W", "b"):
        numeric = np.zeros_like(feed[name])
        for i in np.ndindex(numeric.shape):
            up, down = feed[name].copy(), feed[name].copy()
            up[i] += 1e-6
            down[i] -= 1e-6
            numeric[i] = (
                module.value(**{**feed, name: up}, Y=Y) - module.value(**{**feed, name: down}, Y=Y)
            ) / 2e-6
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-5, atol=1e-7)


def test_huber_selects_the_branch_derivative():
    # d/dr where(|r| ≤ 1, ½r², |r| − ½) = where(|r| ≤ 1, r, sign r): no array of ones,
    # no 0.5 (2 r), one select instead of two
    text = "dim n\nparam w : [n]\ninput x : [n]\nr = w − x\n"
    text += "L = sum(where(abs(r) <= 1, 0.5 r^2, abs(r) − 0.5))\n"
    code = gradient_code(text)
    assert re.search(r"dL_dr = np\.where\((\w+), r, np\.sign\(r\)\)\n", code)
    assert "np.ones" not in code and "0.5 *" not in code.split("dL_dr =")[1]
    assert code.count("np.where") == 2  # the value's and the gradient's
    forward = graphc.compile(text, mode="forward").source  # the tangent: ṙ ∘ r, not 0.5 (ṙ (2 r))
    assert re.search(r"np\.where\((\w+), w_dot \* r, w_dot \* np\.sign\(r\)\)", forward)
    x = RNG.normal(size=7)
    w = x + np.array([-2.5, -1.5, -0.6, -0.2, 0.3, 0.9, 2.0])  # both branches, off the kinks
    module = load_module(graphc.compile(text).source)
    _, grads = module.value_and_grad(w=w, x=x)
    numeric = np.zeros_like(w)
    for i in range(7):
        up, down = w.copy(), w.copy()
        up[i] += 1e-6
        down[i] -= 1e-6
        numeric[i] = (module.value(w=up, x=x) - module.value(w=down, x=x)) / 2e-6
    np.testing.assert_allclose(grads["w"], numeric, rtol=1e-6, atol=1e-8)
    r = w - x
    np.testing.assert_allclose(grads["w"], np.where(np.abs(r) <= 1, r, np.sign(r)), rtol=1e-15)
