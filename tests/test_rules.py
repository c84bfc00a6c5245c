"""Every rewrite rule, on an example it fires on, preserves the value.

The rules are collected from every ``RULES`` list in `graphc.passes`, so a
new rule (or a new pass with rules) is picked up without editing this file,
and `test_every_rule_has_an_example` fails until `EXAMPLES` has a node the
rule fires on.  For each example: the rule selects the node's operator
(`@matches`), fires, keeps the type, and the interpreter
(`graphc.runtime.evaluate`) gives the same value before and after on
random inputs, signed and positive, wherever the original is finite (so
(√x)² -> x is checked on x ≥ 0).  A wrong rule fails by its name.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import graphc.passes
from graphc import ops, rewrite
from graphc.autodiff import cotangent_seed, reverse_mode
from graphc.derive import MODES, derive, hessian_sweeps
from graphc.frontend import lower
from graphc.ir import Node, topological_order
from graphc.rewrite import RuleIndex, tries
from graphc.runtime import evaluate
from graphc.shapes import SCALAR, Dim, matrix, vector
from graphc.testing import random_value


def rule_lists() -> dict[str, list]:
    """Every pass module's ``RULES``, by module name."""
    found = {}
    for info in pkgutil.iter_modules(graphc.passes.__path__):
        module = importlib.import_module(f"graphc.passes.{info.name}")
        if hasattr(module, "RULES"):
            found[info.name] = module.RULES
    return found


RULE_LISTS = rule_lists()
RULES = [rule for rules in RULE_LISTS.values() for rule in rules]

# ---- the examples ---------------------------------------------------------------------------


def var(name: str, t) -> Node:
    return ops.var(name=name, kind="param", type=t)


x, y = var("x", vector(3)), var("y", vector(3))
r = var("r", vector(3, row=True))
s = var("s", SCALAR)
A, B, M = var("A", matrix(3, 3)), var("B", matrix(3, 3)), var("M", matrix(3, 4))
c = ops.const


def spread(g: Node, t, axis=None) -> Node:
    return ops.broadcast(g, type=t, axis=axis)


# rule name -> builders of nodes the rule fires on (one per case of its identity, or more)
EXAMPLES: dict[str, list[Callable[[], Node]]] = {
    # simplify
    "add_zero": [lambda: x + 0.0, lambda: c(0.0) + x, lambda: A + ops.zeros(A.type)],
    "subtract_zero": [lambda: x - 0.0, lambda: c(0.0) - x],
    "mul_one": [lambda: x * 1.0, lambda: c(1.0) * A],
    "divide_by_one": [lambda: x / 1.0],
    "mul_zero": [lambda: x * 0.0, lambda: c(0.0) * A, lambda: s * 0.0],
    "zero_divided": [lambda: c(0.0) / x],
    "mul_minus_one": [lambda: c(-1.0) * x, lambda: A * -1.0],
    "double_negation": [lambda: ops.neg(ops.neg(x))],
    "negate_constant": [lambda: ops.neg(c(2.5))],
    "signs_outward": [
        lambda: (-x) * y,
        lambda: x * (-s),
        lambda: (-x) / y,
        lambda: x / (-y),
        lambda: ops.matmul(-A, x),
        lambda: ops.matmul(A, -B),
        lambda: ops.scale_rows(-x, M),
        lambda: ops.scale_rows(x, -M),
    ],
    "subtract_negation": [lambda: x - (-y)],
    "add_negation": [lambda: x + (-y), lambda: (-x) + y],
    "double_transpose": [lambda: A.T.T, lambda: r.T.T],
    "transpose_of_scalar": [lambda: ops.transpose(s)],
    "transpose_of_scaled": [lambda: (s * M).T, lambda: (M * s).T, lambda: (-M).T],
    "transpose_of_product": [lambda: ops.matmul(A.T, x).T, lambda: ops.matmul(A, B.T).T],
    "power_one_zero": [lambda: ops.powc(x, p=1.0), lambda: ops.powc(A, p=0.0)],
    "square_of_sqrt": [lambda: ops.powc(ops.sqrt(x), p=2.0)],
    "power_of_power": [lambda: ops.powc(ops.powc(x, p=2.0), p=3.0)],
    "add_same": [lambda: x + x, lambda: c(3.0) * x + x],
    "reciprocal_product": [lambda: y * (c(1.0) / x), lambda: (c(1.0) / x) * A],
    "constants_first": [lambda: x * 3.0],
    "merge_constant_factors": [lambda: c(2.0) * (c(3.0) * x)],
    "diagonal_product": [
        lambda: ops.diag(x) @ M,
        lambda: A @ ops.diag(x),
        lambda: ops.diag(x) @ y,
        lambda: r @ ops.diag(x),
    ],
    "drop_broadcast": [
        lambda: spread(s, vector(3)) * x,
        lambda: x - spread(s, vector(3)),
        lambda: spread(x, matrix(4, 3), axis=0) + var("N", matrix(4, 3)),
        lambda: spread(var("v4", vector(4)), matrix(4, 3), axis=1) * var("N", matrix(4, 3)),
        lambda: ops.maximum(A, spread(s, A.type)),
        lambda: ops.pow_(spread(s, vector(3)), x),
    ],
    "sum_of_broadcast": [
        lambda: ops.reduce_sum(spread(s, M.type), axis=None),
        lambda: ops.reduce_sum(ops.fill(value=2.0, type=vector(3)), axis=None),
    ],
    "stop_of_stop": [lambda: ops.stop(ops.stop(x))],
    "common_factor": [
        lambda: c(4.0) * (x * y) - x * ops.tanh(y),
        lambda: y * x + x * s,
        lambda: c(2.0) * (A * B) + c(3.0) * (ops.exp(A) * A),
    ],
    "identity_product": [
        lambda: ops.eye(dim=Dim.of(3)) @ A,
        lambda: M.T @ ops.eye(dim=Dim.of(3)),
        lambda: ops.eye(dim=Dim.of(3)) @ x,
        lambda: r @ ops.eye(dim=Dim.of(3)),
        lambda: ops.eye(dim=Dim.of(3)) @ M,
        lambda: M @ ops.eye(dim=Dim.of(4)),
        lambda: (s * ops.eye(dim=Dim.of(3))) @ x,
        lambda: A @ (c(2.0) * ops.eye(dim=Dim.of(3))),
    ],
    "transpose_of_identity": [lambda: ops.eye(dim=Dim.of(3)).T],
    "filled_factor": [
        lambda: ops.fill(value=0.5, type=vector(3)) * x,
        lambda: A * ops.fill(value=-2.0, type=A.type),
    ],
    "common_matrix_factor": [
        lambda: A.T @ B + A @ B,
        lambda: A @ x - B @ x,
        lambda: M.T @ A - M.T @ B,
    ],
    "cheaper_association": [
        lambda: A @ (x @ r),
        lambda: (x @ r) @ A,
        lambda: (x @ r) @ y,
        lambda: ops.matmul(ops.matmul(M.T, A), x),
    ],
    "solve_not_invert": [
        lambda: ops.matmul(ops.inv(A), x),
        lambda: ops.matmul(ops.inv(A), M),
        lambda: ops.matmul(ops.inv(A).T, B),
        lambda: ops.matmul(r, ops.inv(A)),
        lambda: ops.matmul(M.T, ops.inv(A)),
        lambda: ops.matmul(ops.solve(B, M), var("z", vector(4))),
    ],
    "scale_the_scalar": [lambda: c(-2.0) * (ops.tanh(s) * x)],
    "add_same_term": [
        lambda: (A @ B + c(0.01) * A) + c(0.01) * A,
        lambda: (x - y) - y,
        lambda: (x + c(3.0) * y) - y,
        lambda: (c(2.0) * y - x) + y,
        lambda: (y + x) - y,
    ],
    "merge_literals_across": [
        lambda: c(0.5) * (y * (c(2.0) * x)),
        lambda: c(3.0) * (s * (c(2.0) * A)),
    ],
    "select_the_factor": [
        lambda: ops.where(ops.greater(x, y), ops.fill(value=1.0, type=x.type), c(0.0)) * y,
        lambda: (
            ops.sin(x) * ops.where(ops.greater(x, c(0.0)), c(0.0), ops.fill(value=2.0, type=x.type))
        ),
        lambda: ops.where(ops.greater(s, c(0.0)), c(0.5), c(0.0)) * A,
        lambda: (
            (c(0.5) * ops.where(ops.greater(x, y), ops.fill(value=1.0, type=x.type), c(0.0)))
            * (c(2.0) * y)
        ),
    ],
    "complementary_selects": [
        lambda: (
            ops.where(ops.greater(x, c(0.0)), y, c(0.0))
            + ops.where(ops.greater(x, c(0.0)), c(0.0), ops.sign(x))
        ),
        lambda: (
            ops.where(ops.greater(A, c(1.0)), c(0.0), B)
            - ops.where(ops.greater(A, c(1.0)), A * A, c(0.0))
        ),
        lambda: ops.where(ops.greater(x, y), x, c(0.0)) - ops.where(ops.greater(x, y), c(0.0), y),
    ],
    "collect_affine": [
        lambda: c(4.0) * (c(1.0) - x) - c(4.0) * x,
        lambda: x + c(2.0) * x - c(1.0),
        lambda: -(c(2.0) * A) - A,
        lambda: (x - c(3.0)) - x,
    ],
    # stable_forms
    "log_sigmoid": [lambda: ops.log(ops.sigmoid(x))],
    "log_one_minus_sigmoid": [lambda: ops.log(1.0 - ops.sigmoid(x))],
    "log_one_plus_exp": [lambda: ops.log(1.0 + ops.exp(x)), lambda: ops.log(ops.exp(x) + 1.0)],
    "log_of_exp": [lambda: ops.log(ops.exp(A))],
    "log_of_ratio_of_exp": [
        lambda: ops.log(ops.exp(x) / ops.reduce_sum(ops.exp(x), axis=None)),
        lambda: ops.log(ops.exp(s) / y),
    ],
    "logistic_of_exp": [
        lambda: c(1.0) / (1.0 + ops.exp(-x)),
        lambda: c(1.0) / (ops.exp(x) + 1.0),
        lambda: ops.exp(x) / (1.0 + ops.exp(x)),
    ],
    "sum_against_identity": [
        lambda: ops.reduce_sum(A * ops.eye(dim=Dim.of(3)), axis=None),
        lambda: ops.reduce_sum(ops.eye(dim=Dim.of(3)) * B, axis=None),
    ],
    "log_sum_exp": [
        lambda: ops.log(ops.reduce_sum(ops.exp(M), axis=None)),
        lambda: ops.log(ops.reduce_sum(ops.exp(M), axis=0)),
        lambda: ops.log(ops.reduce_sum(ops.exp(M), axis=1)),
    ],
    "log_mean_exp": [
        lambda: ops.log(ops.reduce_sum(ops.exp(x), axis=None) / c(3.0)),
        lambda: ops.log(ops.reduce_sum(ops.exp(M), axis=1) / ops.dimval(dim=Dim.of(4))),
    ],
    "exp_over_its_sum": [
        lambda: ops.exp(x) / ops.reduce_sum(ops.exp(x), axis=None),
        lambda: ops.exp(M) / ops.reduce_sum(ops.exp(M), axis=1),  # each row: [3] down M's columns
        lambda: ops.exp(M) / ops.reduce_sum(ops.exp(M), axis=0),  # each column: [4] along rows
        lambda: ops.exp(A) / spread(ops.reduce_sum(ops.exp(A), axis=1), A.type, axis=1),
    ],
    # fold_constants
    "fold_literal_operation": [
        lambda: c(2.0) + c(3.0),
        lambda: ops.sin(c(1.0)),
        lambda: ops.stop(c(2.0)),
    ],
    "fold_known_dimension": [lambda: ops.dimval(dim=Dim.of(3) * Dim.of(4))],
    "fold_filled_elementwise": [
        lambda: ops.fill(value=2.0, type=vector(3)) * 3.0,
        lambda: ops.exp(ops.fill(value=0.5, type=A.type)),
        lambda: ops.powc(ops.fill(value=2.0, type=vector(3)), p=3.0),
    ],
}

CASES = [
    pytest.param(rule, i, id=f"{rule.__name__}-{i}")
    for rule in RULES
    for i in range(len(EXAMPLES.get(rule.__name__, ())))
]


# ---- the tests ----------------------------------------------------------------------------


def test_rule_lists_are_found():
    assert {"simplify", "stable_forms", "fold_constants"} <= set(RULE_LISTS)


def test_rule_names_are_unique():
    names = [rule.__name__ for rule in RULES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("rule", RULES, ids=[r.__name__ for r in RULES])
def test_every_rule_has_an_example(rule):
    assert EXAMPLES.get(rule.__name__), (
        f"rule {rule.__name__} has no example: add a node it fires on to EXAMPLES in"
        " tests/test_rules.py"
    )


def test_every_example_belongs_to_a_rule():
    stale = set(EXAMPLES) - {rule.__name__ for rule in RULES}
    assert not stale, f"examples of rules that no RULES list holds: {sorted(stale)}"


def _feeds(node: Node, seed: int) -> list[dict[Node, np.ndarray]]:
    """Signed and positive random values for the vars under ``node``."""
    variables = [n for n in topological_order([node]) if n.op.name == "var"]
    feeds = []
    for positive in (False, True):
        rng = np.random.default_rng(seed)
        feeds.append({v: random_value(v.type, rng, positive=positive) for v in variables})
    return feeds


@pytest.mark.parametrize(("rule", "i"), CASES)
def test_rule_preserves_the_value(rule, i):
    node = EXAMPLES[rule.__name__][i]()
    assert tries(rule, node), f"{rule.__name__} is never tried on {node.op.name} nodes like it"
    result = rule(node)
    assert result is not None and result is not node, f"{rule.__name__} does not fire on {node}"
    assert result.type == node.type
    finite = 0
    for feed in _feeds(node, zlib.crc32(f"{rule.__name__}{i}".encode())):
        with np.errstate(all="ignore"):
            before, after = evaluate([node, result], feed, {})
        before, after = np.asarray(before), np.asarray(after)
        assert before.shape == after.shape
        kept = np.isfinite(before)
        finite += int(kept.sum())
        np.testing.assert_allclose(
            after[kept], before[kept], rtol=1e-12, atol=1e-12, err_msg=f"{rule.__name__} #{i}"
        )
    assert finite, f"{rule.__name__} #{i}: the example has no finite value to compare"


# ---- the engine skips only nodes a rule would not fire on -------------------------------------

PROGRAMS = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.gc"))


def test_operands_skip_only_nodes_rules_leave_alone(monkeypatch):
    """``@matches(operands=…)`` lets the engine skip a rule on a node with no operand of
    those operators; on every node the engine meets while deriving the examples (both
    modes, and the Hessian), each rule it skips leaves the node alone."""
    original, start = RuleIndex.of, RuleIndex.__init__
    checked = set()

    class Forgetful(dict):  # the engine asks `of` about every node, not once per form
        def get(self, key, default=None):
            return default

        def __setitem__(self, key, value):
            pass

    def init(index: RuleIndex, rules) -> None:
        start(index, rules)
        index.by_form = Forgetful()

    def of(index: RuleIndex, node: Node) -> list:
        chosen = original(index, node)
        for rule in index(node.op):
            if rule not in chosen and (rule, node) not in checked:
                checked.add((rule, node))
                assert rule(node) is None, f"{rule.__name__} fires on a node it is not tried on"
        return chosen

    monkeypatch.setattr(RuleIndex, "of", of)
    monkeypatch.setattr(RuleIndex, "__init__", init)
    monkeypatch.setattr(RuleIndex, "may_fire", lambda index, below: True)
    monkeypatch.setattr(rewrite, "_INDEXES", {})
    for path in PROGRAMS:
        lowered = lower(path.read_text(encoding="utf-8"), str(path))
        for mode in MODES:
            derive(lowered, mode=mode)
        if lowered.graph.outputs[lowered.output].type.is_scalar and lowered.params:
            hessian_sweeps(lowered)
    assert len(checked) > 1000, len(checked)  # many nodes a rule was skipped on


def test_a_graph_with_no_place_to_fire_is_left_alone():
    """The engine does not enter a node whose graph has no place where a rule of the
    list may fire (`RuleIndex.may_fire`, read from the operators below it, `Node.below`):
    on every node of the examples' graphs, lowered and differentiated in both modes, if
    a rule fires on the node or on one below it, ``may_fire`` says one may."""
    indexes = [RuleIndex(rules) for rules in RULE_LISTS.values()]
    met = 0
    for path in PROGRAMS:
        lowered = lower(path.read_text(encoding="utf-8"), str(path))
        graphs = [lowered.graph.roots()]
        for mode in MODES:
            derived = derive(lowered, mode=mode)
            graphs.append([*derived.graph.roots(), *derived.value_graph.roots()])
        out = lowered.graph.outputs[lowered.output]
        seed = None if out.type.is_scalar else cotangent_seed(lowered.output, out.type)
        wrt = lowered.params or lowered.variables
        graphs.append(reverse_mode(lowered.graph, wrt, lowered.output, seed).roots())
        for roots in graphs:
            for index in indexes:
                fires: dict[Node, bool] = {}
                for node in topological_order(roots):
                    here = any(rule(node) not in (None, node) for rule in index(node.op))
                    fires[node] = here or any(fires[a] for a in node.args)
                    if fires[node]:
                        met += 1
                        assert index.may_fire(node.below), f"{path.name}: {node.op.name}"
    assert met > 100, met  # the examples have many places where a rule fires


# ---- patterns name real operators -------------------------------------------------------


def _pattern_names(source: str) -> list[str]:
    """The operator names in the ``@matches(…)`` and ``Op("…")`` patterns of ``source``."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.MatchClass) and getattr(node.cls, "id", None) == "Op":
            names += [p.value.value for p in node.patterns if isinstance(p, ast.MatchValue)]
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "matches":
            names += [a.value for a in node.args if isinstance(a, ast.Constant)]
    return names


@pytest.mark.parametrize("module", sorted(RULE_LISTS))
def test_patterns_name_operators_of_the_table(module):
    source = inspect.getsource(importlib.import_module(f"graphc.passes.{module}"))
    unknown = [name for name in _pattern_names(source) if name not in ops.OPS]
    assert not unknown, f"graphc/passes/{module}.py matches operators that do not exist: {unknown}"


def test_pattern_names_are_read():
    module = importlib.import_module("graphc.passes.stable_forms")
    source = inspect.getsource(module.log_one_minus_sigmoid)
    assert sorted(_pattern_names(source)) == ["log", "sigmoid", "sub"]
