"""Jacobians, Hessians, Hessian-vector products, jvp and vjp (issue 9).

Oracles: closed forms derived by hand, central differences of the gradient,
contractions of one result with another computed by a different route
(hvp against the Hessian, jvp and vjp against the Jacobian), and the
reverse-mode module against the forward-mode one.  The emitted functions
are checked for what makes them a single vectorised sweep: no Python loop.
"""

from __future__ import annotations

import ast

import numpy as np
import pytest

import graphc
from graphc.errors import DifferentiationError, FeedError, GraphcError

HESSIAN_EXAMPLE = """
dim n
dim m
input A: [m, n]
input B: [n, n]
param x: [n]
f = sum(tanh(A x)) + xᵀ B x
"""

# Several variables, a matrix among them, every kind of operator on the way.
MIXED = """
dim n = 3
dim m = 4
param W: [m, n]
param x: [n]
param c: scalar
input y: [m]
h = tanh(W x + c)
f = sum((h − y)^2) + c^2 xᵀx + tr(Wᵀ W) / 7 + log(1 + exp(sum(W, 0)ᵀ x))
"""

VECTOR_OUTPUTS = {
    "tanh(A x)": "dim n = 3\ndim m = 4\nparam A: [m, n]\nparam x: [n]\ny = tanh(A x)\n",
    "outer": "dim n = 3\nparam a: [n]\nparam b: [n]\nY = a bᵀ ∘ tanh(a bᵀ)\n",
    "matrix by matrix": "dim n = 3\nparam M: [n, n]\nY = Mᵀ M + diag(diag(M))\n",
    "stack": "dim n = 2\nparam a: [n]\nparam s: scalar\ny = [s a; s^2; sum(a)]\n",
    "softmax": "dim n = 4\nparam a: [n]\ninput B: [n, n]\ny = softmax(B a) ∘ a\n",
}

rng = np.random.default_rng(0)


def feed_for(fn: graphc.CompiledFunction, seed: int = 1) -> dict[str, np.ndarray]:
    from graphc.gradcheck import random_feed

    dims = {d: 3 for d in fn.lowered.unbound_dims}
    return random_feed(fn.lowered, dims, seed=seed)


def central_jacobian(f, feed: dict, name: str, step: float = 1e-6) -> np.ndarray:
    """∂f/∂name by central differences, laid out f's shape + name's shape."""
    x = np.asarray(feed[name], dtype=float)
    columns = []
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += step
        down[i] -= step
        columns.append(
            (np.asarray(f(**{**feed, name: up})) - np.asarray(f(**{**feed, name: down})))
            / (2 * step)
        )
    stacked = np.stack(columns, axis=-1)
    return stacked.reshape(stacked.shape[:-1] + x.shape)


def loops(source: str, function: str) -> list[str]:
    """The Python loops and comprehensions in one emitted function."""
    tree = ast.parse(source)
    (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
    kinds = (ast.For, ast.While, ast.ListComp, ast.GeneratorExp, ast.DictComp, ast.SetComp)
    return [type(n).__name__ for n in ast.walk(fn) if isinstance(n, kinds)]


# ---- the Hessian ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_hessian_is_the_closed_form(mode):
    fn = graphc.compile(HESSIAN_EXAMPLE, wrt="x", mode=mode)
    A, B, x = rng.normal(size=(6, 5)), rng.normal(size=(5, 5)), rng.normal(size=5)
    H = fn.hessian(A=A, B=B, x=x)
    t = np.tanh(A @ x)
    want = A.T @ ((-2 * t * (1 - t * t))[:, None] * A) + B + B.T
    assert list(H) == ["x"] and list(H["x"]) == ["x"]
    np.testing.assert_allclose(H["x"]["x"], want, rtol=1e-12, atol=1e-12)


def test_emitted_hessian_is_a_matrix_expression():
    """No loop, no identity matrix, no per-direction recomputation: the form
    matrixcalculus.org gives, Aᵀ (d ∘ A) + B + Bᵀ up to a transpose."""
    from graphc.compiler import build_module
    from graphc.frontend import lower

    source = build_module(lower(HESSIAN_EXAMPLE), "x", emit="hessian").source
    body = source.split("def hessian")[1]
    assert loops(source, "hessian") == []
    assert "np.eye" not in body and "np.diag" not in body
    # B + Bᵀ, or (Bᵀ + B)ᵀ where issue 11's algebra rules fold the sum first: one add
    # Bᵀ + B is symmetric: read in its own order, never transposed (a strided add)
    assert ("B + B.T" in body or "(B.T + B)" in body) and ") @ A" in body
    assert "(B.T + B).T" not in body and "(B + B.T).T" not in body
    assert body.count("np.tanh") == 1


def test_hessian_blocks_are_transposes_and_match_differences_of_the_gradient():
    fn = graphc.compile(MIXED, wrt="W,x,c")
    feed = feed_for(fn)
    H = fn.hessian(**feed)
    shapes = {name: np.shape(feed[name]) for name in fn.wrt}
    for a in fn.wrt:
        grad_a = lambda **f: fn.grad(**f)[a]  # noqa: B023, E731
        for b in fn.wrt:
            assert H[a][b].shape == shapes[a] + shapes[b], (a, b)
            np.testing.assert_allclose(
                H[a][b], central_jacobian(grad_a, feed, b), rtol=1e-6, atol=1e-7, err_msg=(a, b)
            )
            ra, rb = len(shapes[a]), len(shapes[b])
            moved = np.moveaxis(H[b][a], tuple(range(rb)), tuple(range(ra, ra + rb)))
            if a != b:  # the blocks below the diagonal are the transposes, exactly
                np.testing.assert_array_equal(H[a][b], moved)
            else:
                np.testing.assert_allclose(H[a][b], moved, rtol=1e-12, atol=1e-12)


def test_forward_and_reverse_compile_the_same_hessian():
    feed = None
    results = []
    for mode in ("reverse", "forward"):
        fn = graphc.compile(MIXED, wrt="x,W", mode=mode)
        feed = feed or feed_for(fn, seed=3)
        results.append(fn.hessian(**feed))
    for a in ("x", "W"):
        for b in ("x", "W"):
            np.testing.assert_allclose(results[0][a][b], results[1][a][b], rtol=1e-12)


def test_hessian_needs_a_scalar_output():
    fn = graphc.compile(VECTOR_OUTPUTS["tanh(A x)"])
    with pytest.raises(DifferentiationError, match="scalar output"):
        fn.hessian(A=np.ones((4, 3)), x=np.ones(3))
    with pytest.raises(GraphcError, match="scalar output"):
        fn.hvp({"A": np.ones((4, 3)), "x": np.ones(3)}, A=np.ones((4, 3)), x=np.ones(3))


# ---- Hessian-vector products ----------------------------------------------------------


def test_hvp_is_the_hessian_times_v_without_the_hessian():
    fn = graphc.compile(MIXED, wrt="W,x,c")
    feed = feed_for(fn)
    v = {name: rng.normal(size=np.shape(feed[name])) for name in fn.wrt}
    H = fn.hessian(**feed)
    got = fn.hvp(v, **feed)
    assert list(got) == list(fn.wrt)
    for a in fn.wrt:
        want = sum(
            np.tensordot(H[a][b], v[b], axes=np.ndim(v[b])) for b in fn.wrt
        )  # Σ_b H_ab · v_b
        np.testing.assert_allclose(got[a], want, rtol=1e-10, atol=1e-12)
    assert fn._function("hvp") is fn._function("hvp")  # compiled once, then cached


def test_hvp_checks_its_tangents():
    fn = graphc.compile(HESSIAN_EXAMPLE, wrt="x")
    feed = dict(A=np.ones((2, 3)), B=np.eye(3), x=np.ones(3))
    with pytest.raises(FeedError, match="missing x"):
        fn.hvp({}, **feed)
    with pytest.raises(FeedError, match=r"expected shape \(3,\)"):
        fn.hvp({"x": np.ones(4)}, **feed)
    with pytest.raises(FeedError, match="not an input or param"):
        fn.hvp({"x": np.ones(3), "z": 1.0}, **feed)
    with pytest.raises(FeedError, match="expected a dict"):
        fn.hvp(np.ones(3), **feed)
    with pytest.raises(FeedError, match="missing value"):
        fn.hvp({"x": np.ones(3)}, x=np.ones(3))


# ---- Jacobians, jvp, vjp ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["reverse", "forward"])
@pytest.mark.parametrize("name", sorted(VECTOR_OUTPUTS))
def test_jacobian_of_vector_and_matrix_outputs(name, mode):
    fn = graphc.compile(VECTOR_OUTPUTS[name], mode=mode)
    feed = feed_for(fn, seed=5)
    value = np.asarray(fn(**feed))
    J = fn.jacobian(**feed)
    assert list(J) == list(fn.wrt)
    for w in fn.wrt:
        assert J[w].shape == value.shape + np.shape(feed[w])
        np.testing.assert_allclose(
            J[w], central_jacobian(fn, feed, w), rtol=1e-6, atol=1e-8, err_msg=w
        )
    # jvp and vjp against the Jacobian, contracted
    v = {w: rng.normal(size=np.shape(feed[w])) for w in fn.wrt}
    out, tangent = fn.jvp(v, **feed)
    np.testing.assert_allclose(out, value)
    want = sum(np.tensordot(J[w], v[w], axes=np.ndim(v[w])) for w in fn.wrt)
    np.testing.assert_allclose(tangent, want, rtol=1e-10, atol=1e-12)
    bar = rng.normal(size=value.shape)
    out, cotangents = fn.vjp(bar, **feed)
    np.testing.assert_allclose(out, value)
    for w in fn.wrt:
        want = np.tensordot(bar, J[w], axes=(tuple(range(bar.ndim)), tuple(range(bar.ndim))))
        np.testing.assert_allclose(cotangents[w], want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_emitted_jacobian_is_one_sweep(mode):
    from graphc.compiler import build_module
    from graphc.frontend import lower

    text = VECTOR_OUTPUTS["tanh(A x)"]
    source = build_module(lower(text), "A,x", mode, emit="jacobian").source
    assert loops(source, "jacobian") == []
    assert source.count("np.tanh") == 2  # value and jacobian: once each


def test_jacobian_of_tanh_is_the_closed_form():
    """∂ tanh(A x)/∂x = diag(1 − t²) A: no identity matrix, no product with one."""
    from graphc.compiler import build_module
    from graphc.frontend import lower

    text = VECTOR_OUTPUTS["tanh(A x)"]
    for mode in ("reverse", "forward"):
        body = build_module(lower(text), "x", mode, emit="jacobian").source.split("def jacobian")[1]
        assert "np.eye" not in body and "np.diag" not in body, body
        assert body.count("@") == 1, body  # A @ x, once: no product with an identity


def test_scalar_vjp_is_the_gradient_times_w():
    fn = graphc.compile(MIXED, wrt="W,x,c")
    feed = feed_for(fn)
    value, cotangents = fn.vjp(2.5, **feed)
    grads = fn.grad(**feed)
    np.testing.assert_allclose(value, fn(**feed))
    for w in fn.wrt:
        np.testing.assert_allclose(cotangents[w], 2.5 * grads[w], rtol=1e-12)
    J = fn.jacobian(**feed)
    for w in fn.wrt:
        np.testing.assert_allclose(J[w], grads[w], rtol=1e-12)


def test_vjp_checks_the_cotangent():
    fn = graphc.compile(VECTOR_OUTPUTS["tanh(A x)"])
    feed = dict(A=np.ones((4, 3)), x=np.ones(3))
    with pytest.raises(FeedError, match=r"shape \(4,\)"):
        fn.vjp(np.ones(3), **feed)
    with pytest.raises(FeedError, match="expected real numbers"):
        fn.vjp(np.array(["a"] * 4), **feed)


def test_every_function_can_be_emitted_together_and_reads_like_numpy():
    from graphc.compiler import build_module, parse_emit
    from graphc.frontend import lower

    module = build_module(lower(MIXED), "W,x,c", emit="value_and_grad,jacobian,hessian,hvp,jvp,vjp")
    assert module.functions == (
        "value", "value_and_grad", "jacobian", "hessian", "hvp", "jvp", "vjp"
    )  # fmt: skip
    for name in module.functions:
        assert loops(module.source, name) == [], name
    assert "import numpy as np" in module.source
    with pytest.raises(DifferentiationError, match="did you mean hessian"):
        parse_emit("hesian")


# ---- the command line ------------------------------------------------------------------


def test_compile_emit_writes_the_chosen_functions(tmp_path, capsys):
    from graphc.__main__ import main

    program = tmp_path / "h.gc"
    program.write_text(HESSIAN_EXAMPLE)
    out = tmp_path / "h.py"
    assert main(["compile", str(program), "--emit", "hessian,hvp", "-o", str(out)]) == 0
    namespace: dict = {}
    exec(compile(out.read_text(), str(out), "exec"), namespace)
    assert {"value", "hessian", "hvp"} <= set(namespace) and "value_and_grad" not in namespace
    A, B, x = rng.normal(size=(4, 3)), rng.normal(size=(3, 3)), rng.normal(size=3)
    H = namespace["hessian"](A=A, B=B, x=x)["x"]["x"]
    fn = graphc.compile(HESSIAN_EXAMPLE)
    np.testing.assert_allclose(H, fn.hessian(A=A, B=B, x=x)["x"]["x"], rtol=1e-12)
    v = rng.normal(size=3)
    np.testing.assert_allclose(namespace["hvp"](A=A, B=B, x=x, x_dot=v)["x"], H @ v, rtol=1e-10)

    assert main(["compile", str(program), "--emit", "hesian"]) == 2
    assert "did you mean hessian" in capsys.readouterr().err


def test_check_hessian(tmp_path, capsys):
    from graphc.__main__ import main

    program = tmp_path / "mixed.gc"
    program.write_text(MIXED)
    assert main(["check", "--hessian", str(program)]) == 0
    out = capsys.readouterr().out
    assert (
        "(Hessian, reverse mode, seed 0)" in out
        and "W,x " in out
        and out.rstrip().split("\n")[-1].startswith("OK")
    )
    vector = tmp_path / "vector.gc"
    vector.write_text(VECTOR_OUTPUTS["tanh(A x)"])
    assert main(["check", "--hessian", str(vector)]) == 2
    assert "the Hessian needs a scalar output" in capsys.readouterr().err


def test_check_hessian_catches_a_wrong_hessian(monkeypatch):
    """The checker can fail: a Hessian off by a little in one block is reported."""
    from graphc.gradcheck import check_hessian

    fn = graphc.compile(MIXED, wrt="W,x")
    feed = feed_for(fn)
    right = fn.hessian

    def wrong(**f):
        H = right(**f)
        H["x"]["W"] = H["x"]["W"] * 1.001
        return H

    monkeypatch.setattr(fn, "hessian", wrong)
    report = check_hessian(fn, feed)
    assert not report.ok
    assert [v.name for v in report.variables if v.worst > 1e-5] == ["x,W"]


def test_gather_factors_multiplies_the_small_factors_first():
    """((T ∘ u) ∘ v) ∘ 2 with T reading a seed -> T ∘ (2 (u ∘ v)); a − c·T -> (−c)·T + a;
    the values are unchanged."""
    from graphc import ops
    from graphc.evaluate import evaluate
    from graphc.ir import Graph
    from graphc.passes.gather_factors import gather_factors
    from graphc.shapes import matrix, vector

    seed = ops.var(name="s", kind="tangent", type=vector(4))
    M = ops.var(name="M", kind="input", type=matrix(4, 4))
    u = ops.var(name="u", kind="input", type=vector(4))
    v = ops.var(name="v", kind="input", type=vector(4))
    a = ops.var(name="a", kind="input", type=vector(4))
    tangent = M @ seed
    chain = ((tangent * u) * v) * ops.const(2.0)
    out = a - M.T @ chain
    z = gather_factors(Graph({"z": chain}), [seed]).outputs["z"]
    assert z.op.name == "mul" and z.args[0] is tangent  # the tangent, times one small factor
    y = gather_factors(Graph({"y": out}), [seed]).outputs["y"]
    assert y.op.name == "add" and y.args[1] is a  # the product first
    shared = gather_factors(Graph({"y": out, "z": chain}), [seed]).outputs["y"]
    assert shared.op.name == "sub"  # the product is an output too: not rewritten
    rng = np.random.default_rng(2)
    feed = {n: rng.normal(size=(4, 4) if n is M else 4) for n in (seed, M, u, v, a)}
    before = evaluate([out, chain], feed, {})
    after = evaluate([y, z], feed, {})
    for b, g in zip(before, after):
        np.testing.assert_allclose(g, b, rtol=1e-13)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_higher_order_results_never_alias_what_was_fed(mode):
    """The methods take the fast feed plan (no copy on the way in), so a Jacobian
    that is a fed array (∂(A x)/∂x = A) is copied on the way out, unless fn.copy is off."""
    fn = graphc.compile(
        "dim n = 3\ndim m = 2\ninput A : [m, n]\nparam x : [n]\ny = A x", wrt="x", mode=mode
    )
    A, x = np.arange(6.0).reshape(2, 3), np.ones(3)
    J = fn.jacobian(A=A, x=x)["x"]
    assert np.array_equal(J, A) and not np.shares_memory(J, A)
    value, tangent = fn.jvp({"x": np.ones(3)}, A=A, x=x)
    assert np.array_equal(tangent, A @ np.ones(3))
    fn.copy = False
    assert np.shares_memory(fn.jacobian(A=A, x=x)["x"], A)
