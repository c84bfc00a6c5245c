"""The passes, seen through what they make of programs."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

import graphc
from graphc import ops
from graphc.ir import Graph
from graphc.passes import PIPELINE, optimize
from graphc.passes.fold_constants import RULES as FOLD_RULES
from graphc.passes.simplify import RULES as SIMPLIFY_RULES
from graphc.passes.stable_forms import RULES as STABLE_RULES
from graphc.shapes import matrix, vector


def grad_body(text: str, **kw) -> str:
    source = graphc.compile(text, **kw).source
    return source.split("def value_and_grad")[1]


def test_pipeline_is_named_and_ordered():
    assert [name for name, _ in PIPELINE] == [
        "fold_constants",
        "simplify",
        "stable_forms",
        "fold_common",
        "prune",
    ]


@pytest.mark.parametrize("rules", [SIMPLIFY_RULES, STABLE_RULES, FOLD_RULES])
def test_every_rule_states_its_identity(rules):
    for rule in rules:
        comment = inspect.getcomments(rule) or ""  # the lines just above the rule
        assert "->" in comment, f"{rule.__name__}: no '# lhs -> rhs' comment above it"


def test_interning_shares_equal_expressions():
    x = ops.var(name="x", kind="param", type=vector(3))
    assert ops.tanh(x + 1.0) is ops.tanh(x + 1.0)
    assert ops.tanh(x + 1.0) is not ops.tanh(x + 2.0)


def test_commutative_duplicates_fold():
    x = ops.var(name="x", kind="param", type=vector(3))
    y = ops.var(name="y", kind="param", type=vector(3))
    graph = optimize(
        Graph({"out": ops.reduce_sum(x * y, axis=None) + ops.reduce_sum(y * x, axis=None)})
    )
    products = [n for n in graph.nodes() if n.op.name == "mul" and n.type.is_vector]
    assert len(products) == 1  # x∘y and y∘x are one node; then Σ + Σ -> 2 Σ
    assert graph.outputs["out"].op.name == "mul"


def test_common_work_computed_once():
    body = grad_body("dim n = 3\nparam x : [n]\ny = sum(exp(x) * x) + sum(exp(x))")
    assert body.count("np.exp(") == 1


def test_simplifications_leave_no_trace():
    body = grad_body("dim n = 3\nparam x : [n]\ny = sum(((xᵀ)ᵀ * 1 + 0) ∘ x)")
    assert "* 1.0" not in body and "+ 0.0" not in body and ".T" not in body
    assert "2.0 * x" in body


def test_constant_folding():
    source = graphc.compile("param x : []\ny = (2 * 3 + 1) x + exp(0) x").source
    assert "y = 8.0 * x" in source and "np.exp" not in source  # 7x + 1x -> 8x
    assert "{'x': 8.0}" in source


def test_dead_code_is_not_emitted():
    source = graphc.compile("param x : []\nunused = sin(x)\ny = cos(x)\noutput y").source
    assert "np.sin(x)" in source.split("def value_and_grad")[1]  # cos' = -sin
    assert "unused" not in source.split('"""', 2)[2]  # only in the program text


def test_reverse_mode_prunes_branches_without_requested_variables():
    text = "dim n = 3\nparam x : [n]\nparam y : [n]\nJ = sum(tanh(x)) + sum(exp(y) ∘ y)"
    body = grad_body(text, wrt=["x"])
    assert "np.exp(y)" in body  # the value needs it
    assert body.count("np.exp(") == 1  # but nothing differentiates it
    assert "'y'" not in body


def test_diagonal_matrix_never_materialised():
    text = (
        "dim n = 3\nparam v : [n]\ninput M : [n, n]\ninput x : [n]\n"
        "J = sum(diag(v) M) + xᵀ diag(v) x"
    )
    fn = graphc.compile(text)
    value_body = fn.source.split("def value(")[1].split("def value_and_grad")[0]
    assert "np.diag" not in value_body
    assert "np.diag" not in fn.source.split("def value_and_grad")[1]
    r = np.random.default_rng(0)
    v, M, x = r.normal(size=3), r.normal(size=(3, 3)), r.normal(size=3)
    value, grads = fn.value_and_grad(v=v, M=M, x=x)
    assert np.isclose(value, np.sum(np.diag(v) @ M) + x @ np.diag(v) @ x)
    assert np.allclose(grads["v"], M.sum(axis=1) + x * x)


@pytest.mark.parametrize(
    ("text", "x", "expected", "derivative"),
    [
        ("param x : []\ny = log(σ(x))", -800.0, -800.0, 1.0),
        ("param x : []\ny = log(σ(x))", 800.0, 0.0, 0.0),
        ("param x : []\ny = log(1 + exp(x))", 100.0, 100.0, 1.0),
        ("param x : []\ny = log(1 + exp(x))", 1000.0, 1000.0, 1.0),
        ("param x : []\ny = log(1 - σ(x))", 900.0, -900.0, -1.0),
        ("param x : []\ny = σ(x)", -1000.0, 0.0, 0.0),
        ("param x : []\ny = softplus(x)", 1000.0, 1000.0, 1.0),
        (
            "dim n = 3\nparam x : [n]\ny = logsumexp(1000 x)",
            np.array([1.0, 0.0, -1.0]),
            1000.0,
            None,
        ),
        (
            "dim n = 3\nparam x : [n]\ny = sum(softmax(x) ∘ x)",
            np.array([900.0, 0.0, -900.0]),
            900.0,
            None,
        ),
        (
            "dim n = 3\nparam x : [n]\ny = sum(log(softmax(x)))",
            np.array([800.0, 0.0, 1.0]),
            -1599.0,
            None,
        ),
    ],
)
def test_stable_forms_do_not_overflow(text, x, expected, derivative):
    fn = graphc.compile(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow or invalid value fails the test
        value, grads = fn.value_and_grad(x=x)
    assert np.isclose(value, expected, rtol=1e-9, atol=1e-12)
    assert np.all(np.isfinite(grads["x"]))
    if derivative is not None:
        assert np.isclose(grads["x"], derivative, rtol=1e-9, atol=1e-12)


def test_log_sigmoid_is_rewritten():
    source = graphc.compile("param x : []\ny = log(σ(x))").source
    assert "-np.logaddexp(0.0, -x)" in source
    assert "np.log(" not in source


def test_rewrites_run_to_a_fixed_point_on_long_chains():
    x = ops.var(name="x", kind="param", type=matrix(2, 2))
    node = x
    for _ in range(2000):
        node = ops.transpose(ops.transpose(node)) * 1.0 + 0.0
    graph = optimize(Graph({"y": ops.reduce_sum(node, axis=None)}))
    assert [n.op.name for n in graph.nodes()] == ["var", "sum"]
