"""Every operator in the table, checked numerically; driven by `ops.OPS`.

A new operator is tested here without editing this file: for each non-leaf
operator, every combination of argument types from `TYPE_POOL` and
attributes from `ATTR_POOL` (keyed by the attribute's name in the shape
rule's signature) that the shape rule accepts is a case.  For each case:

* its forward rule agrees with central differences (`check_jvp`), seeded at
  all arguments at once and at each one alone;
* its reverse rule passes the dot-product test against the forward rule
  (`check_vjp`), likewise;
* its NumPy ``impl`` agrees with its emitted NumPy code, and so do the
  derivative graphs' nodes (which exercise fill, eye, take, index, …);
* an operator with no rules has a zero derivative, and unless it is listed
  in `DECLARED_ZERO_DERIVATIVE` it must really be piecewise constant
  (central differences vanish), so a smooth operator that forgot its rules
  fails here.

An operator no candidate fits fails `test_every_operator_has_cases`: extend
the pools.  The operator's facts (`Op.arity`, ``elementwise``, ``linear``,
``bilinear``, ``commutative``, ``needs_sizes``, ``constant``) are checked
against its shape rule and numerically, on the same cases, so a wrong fact
fails here before a pass relies on it.  Then the subgradients at the kinks,
and second order: the derivative graphs differentiated again against finite
differences of the derivatives (and closed forms for a few elementwise
functions).
"""

from __future__ import annotations

import inspect
import itertools
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from graphc import ops
from graphc.autodiff import jvp_nodes, vjp_nodes
from graphc.emit_numpy import PRECEDENCE, Diagonal, Expr, FunctionSpec, emit_module
from graphc.evaluate import evaluate
from graphc.ir import Graph, Node, Op
from graphc.runtime import load_module
from graphc.shapes import SCALAR, Dim, ShapeMismatch, Type, matrix, vector
from graphc.testing import check_grads, check_jvp, check_vjp, random_value

# ---- the pools ----------------------------------------------------------------------

TYPE_POOL: tuple[Type, ...] = (
    SCALAR,
    vector(3),
    vector(3, row=True),
    vector(4),
    matrix(3, 3),
    matrix(3, 4),
    matrix(4, 3),
    Type((Dim.of(3),), integer=True),  # ids: integer data select (gathers)
    Type((Dim.of(4),), integer=True),
    Type((), integer=True),
)

# Candidate values of each attribute, by the keyword's name in the shape rule.
ATTR_POOL: dict[str, tuple[Any, ...]] = {
    "axis": (None, 0, 1),
    "p": (2.0, 3.0, 0.5, -1.0),
    "type": tuple(t for t in TYPE_POOL if not t.integer),
    "start": (Dim.of(0), Dim.of(1)),
    "stop": (Dim.of(2), Dim.of(3)),
    "at": (Dim.of(0), Dim.of(2)),
    # the leaves' attributes
    "name": ("a0",),
    "kind": ("param",),
    "value": (0.5,),
    "dim": (Dim.of(3),),
    # the scatter-adds' sizes
    "rows": (Dim.of(3), Dim.of(4)),
    "cols": (Dim.of(3), Dim.of(4)),
}

MAX_VARIADIC = 3  # arities tried for an operator whose shape rule takes *args

# Operators without rules whose value is NOT piecewise constant: their zero
# derivative is a decision, not a fact to check by finite differences.
DECLARED_ZERO_DERIVATIVE = {
    "stop": "stop-gradient: the value passes, the derivative is zero by definition",
}
assert set(DECLARED_ZERO_DERIVATIVE) <= set(ops.OPS), "a declared operator left the table"


def type_text(t: Type) -> str:
    return str(t).replace("×", "x").replace("ᵀ", "T").replace(" ", "-")


def attr_text(value: Any) -> str:
    return type_text(value) if isinstance(value, Type) else str(value)


# ---- cases from the operator table ----------------------------------------------------


@dataclass(frozen=True)
class Case:
    op: str
    types: tuple[Type, ...]
    attrs: tuple[tuple[str, Any], ...]

    @property
    def id(self) -> str:
        parts = [self.op, *(type_text(t) for t in self.types)]
        parts += [f"{k}={attr_text(v)}" for k, v in self.attrs]
        return "-".join(parts)

    @property
    def args(self) -> tuple[Node, ...]:
        return tuple(ops.var(name=f"a{i}", kind="param", type=t) for i, t in enumerate(self.types))

    def node(self, args: tuple[Node, ...] | None = None) -> Node:
        return Node.make(ops.OPS[self.op], self.args if args is None else args, **dict(self.attrs))

    @property
    def has_rules(self) -> bool:
        op = ops.OPS[self.op]
        return op.jvp is not None or op.vjp is not None

    def seed(self) -> int:
        return zlib.crc32(self.id.encode())

    def primals(self) -> dict[Node, np.ndarray]:
        """Values away from kinks; positive if signed ones leave the domain (log, sqrt…)."""
        node = self.node()
        for positive in (False, True):
            rng = np.random.default_rng(self.seed())
            feed = {a: random_value(a.type, rng, positive=positive) for a in self.args}
            with np.errstate(all="ignore"):
                (value,) = evaluate([node], feed, {})
            if np.all(np.isfinite(value)):
                return feed
        raise AssertionError(f"{self.id}: no finite value even at positive inputs: {value}")


@dataclass(frozen=True)
class Signature:
    arity: int | None  # None: variadic
    attrs: tuple[str, ...]


def signature(op: Op) -> Signature:
    params = inspect.signature(op.infer).parameters.values()
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    variadic = any(p.kind == p.VAR_POSITIONAL for p in params)
    attrs = tuple(p.name for p in params if p.kind == p.KEYWORD_ONLY)
    return Signature(None if variadic else len(positional), attrs)


def _attr_combinations(names: tuple[str, ...]) -> list[tuple[tuple[str, Any], ...]]:
    pools = [[(name, v) for v in ATTR_POOL[name]] for name in sorted(names)]
    return [tuple(c) for c in itertools.product(*pools)]


def _arities(op: Op) -> list[int]:
    """The operator's arity, or a few for one that takes any number (concat)."""
    return [op.arity] if op.arity is not None else list(range(1, MAX_VARIADIC + 1))


def enumerate_cases(
    leaves: bool = False,
) -> tuple[dict[str, list[Case]], dict[str, list[str]], dict[str, str]]:
    """Cases by operator (the leaves instead, if asked); shape rules that crashed;
    operators lacking an attribute pool."""
    cases: dict[str, list[Case]] = {}
    crashes: dict[str, list[str]] = {}
    missing: dict[str, str] = {}
    for name, op in ops.OPS.items():
        if op.leaf != leaves:
            continue
        sig = signature(op)
        cases[name], crashes[name] = [], []
        unknown = [a for a in sig.attrs if a not in ATTR_POOL]
        if unknown:
            missing[name] = ", ".join(unknown)
            continue
        attr_sets = _attr_combinations(sig.attrs)
        for n in _arities(op):
            for types in itertools.product(TYPE_POOL, repeat=n):
                for attrs in attr_sets:
                    try:
                        op.infer(*types, **dict(attrs))
                    except ShapeMismatch:
                        continue
                    except Exception as err:  # a shape rule must only say ShapeMismatch
                        crashes[name].append(f"{Case(name, types, attrs).id}: {err!r}")
                        continue
                    cases[name].append(Case(name, types, attrs))
    return cases, crashes, missing


CASES_BY_OP, INFER_CRASHES, MISSING_POOLS = enumerate_cases()
CASES = [c for cs in CASES_BY_OP.values() for c in cs]
RULE_CASES = [c for c in CASES if c.has_rules]
RULELESS_CASES = [c for c in CASES if not c.has_rules]
NON_LEAF = sorted(CASES_BY_OP)
LEAF_CASES_BY_OP, _, MISSING_LEAF_POOLS = enumerate_cases(leaves=True)


def params(cases: list[Case]) -> list:
    return [pytest.param(c, id=c.id) for c in cases]


# ---- the table itself -----------------------------------------------------------------


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", sorted(ops.OPS))
def test_arity_is_what_the_shape_rule_takes(name):
    op = ops.OPS[name]
    taken = signature(op).arity
    if taken is not None:
        assert op.arity == taken, f"{name} has arity {op.arity}, its shape rule takes {taken}"
    else:  # a shape rule for any number of operands: concat, or the elementwise helper's
        assert op.arity is None or op.elementwise, f"say {name}'s arity: its shape rule is variadic"


@pytest.mark.parametrize("name", sorted(ops.OPS))
def test_a_node_takes_as_many_operands_as_the_arity(name):
    op = ops.OPS[name]
    if op.arity is None:
        return
    extra = tuple(ops.var(name=f"a{i}", kind="param", type=SCALAR) for i in range(op.arity + 1))
    with pytest.raises(TypeError, match=f"{name} takes {op.arity} operand"):
        Node.make(op, extra)


@pytest.mark.parametrize("name", sorted(n for n, op in ops.OPS.items() if op.leaf))
def test_every_leaf_has_cases(name):
    assert name not in MISSING_LEAF_POOLS and LEAF_CASES_BY_OP[name], (
        f"leaf {name!r} takes attribute(s) {MISSING_LEAF_POOLS.get(name)}: add candidates"
        " to ATTR_POOL in tests/test_ops.py"
    )


@pytest.mark.parametrize("name", NON_LEAF)
def test_every_operator_has_cases(name):
    assert name not in MISSING_POOLS, (
        f"operator {name!r} takes attribute(s) {MISSING_POOLS.get(name)} with no candidates:"
        " add them to ATTR_POOL in tests/test_ops.py"
    )
    assert CASES_BY_OP[name], (
        f"no candidate in TYPE_POOL × ATTR_POOL fits operator {name!r}: its shape rule rejected"
        " every combination; extend the pools in tests/test_ops.py"
    )


@pytest.mark.parametrize("name", NON_LEAF)
def test_shape_rules_reject_with_shape_mismatch(name):
    assert not INFER_CRASHES[name], (
        f"{name}'s shape rule raised something other than ShapeMismatch:\n  "
        + "\n  ".join(INFER_CRASHES[name][:5])
    )


@pytest.mark.parametrize("name", NON_LEAF)
def test_rules_come_in_pairs(name):
    op = ops.OPS[name]
    assert (op.jvp is None) == (op.vjp is None), (
        f"{name} has a {'forward' if op.vjp is None else 'reverse'} rule only: one mode would"
        " silently treat it as constant"
    )


# ---- the facts -------------------------------------------------------------------------------


def _facts(fact: str) -> list[Case]:
    return [c for c in CASES if getattr(ops.OPS[c.op], fact)]


def _draws(case: Case, k: int) -> list[dict[Node, np.ndarray]]:
    rng = np.random.default_rng(case.seed())
    return [{a: random_value(a.type, rng) for a in case.args} for _ in range(k)]


class _NoSizes:
    """An evaluation context that feeds values but knows no sizes."""

    def __init__(self, values: dict[Node, Any]):
        self.values = values

    def feed(self, node: Node) -> Any:
        return self.values[node]

    def dim(self, d: Dim) -> int:
        raise LookupError(f"dim {d}")

    def shape(self, t: Type) -> tuple[int, ...]:
        raise LookupError(f"shape {t}")


@pytest.mark.parametrize("name", sorted(ops.OPS))
def test_needs_sizes_says_whether_evaluation_reads_sizes(name):
    op = ops.OPS[name]
    for case in CASES_BY_OP.get(name) or LEAF_CASES_BY_OP.get(name, []):
        node = case.node()
        if op.leaf:
            values = {node: random_value(node.type, np.random.default_rng(0))}  # a var feeds
        else:
            values = case.primals()
        try:
            with np.errstate(all="ignore"):
                op.impl(_NoSizes(values), node, *(values[a] for a in node.args))
            asked = False
        except LookupError:
            asked = True
        assert asked == op.needs_sizes, (
            f"{case.id}: needs_sizes is {op.needs_sizes}, but its evaluation"
            f" {'reads' if asked else 'does not read'} sizes"
        )


@pytest.mark.parametrize("case", params(_facts("elementwise")))
def test_elementwise_operators_apply_entry_by_entry(case):
    node, (feed,) = case.node(), [case.primals()]
    (whole,) = evaluate([node], feed, {})
    scalars = tuple(ops.var(name=f"s{i}", kind="param", type=SCALAR) for i in range(len(case.args)))
    entrywise = Node.make(node.op, scalars, **node.kwargs)
    # a vector of the matrix's row dim only runs down its columns (broadcasting by dims)
    aligned = [
        np.asarray(feed[a])[:, None] if ops.runs_down_columns(a.type, node.type) else feed[a]
        for a in case.args
    ]
    spread = np.broadcast_arrays(*(np.asarray(x) for x in aligned))
    assert np.shape(whole) == np.shape(spread[0]), f"{case.id}: not NumPy's broadcast shape"
    with np.errstate(all="ignore"):
        for index in np.ndindex(np.shape(whole)):
            entries = [np.float64(s[index]) for s in spread]
            want = node.op.impl(None, entrywise, *entries)
            np.testing.assert_allclose(whole[index], want, rtol=1e-14, err_msg=case.id)


@pytest.mark.parametrize("case", params(_facts("linear")))
def test_linear_operators_are_linear(case):
    node = case.node()
    x, y = _draws(case, 2)
    mixed = {a: 2.5 * x[a] - y[a] for a in case.args}
    fx, fy, fm = (evaluate([node], feed, {})[0] for feed in (x, y, mixed))
    np.testing.assert_allclose(fm, 2.5 * fx - fy, rtol=1e-12, atol=1e-12, err_msg=case.id)


@pytest.mark.parametrize("case", params(_facts("bilinear")))
def test_bilinear_operators_are_linear_in_each_operand(case):
    node = case.node()
    x, y = _draws(case, 2)
    for a in case.args:  # move one operand, hold the other
        other = {**x, a: y[a]}
        mixed = {**x, a: 2.5 * x[a] - y[a]}
        fx, fo, fm = (evaluate([node], feed, {})[0] for feed in (x, other, mixed))
        np.testing.assert_allclose(fm, 2.5 * fx - fo, rtol=1e-12, atol=1e-12, err_msg=case.id)


@pytest.mark.parametrize("case", params(_facts("commutative")))
def test_commutative_operators_commute(case):
    node = case.node()
    a, b = node.args
    swapped = Node.make(node.op, (b, a), **node.kwargs)
    assert swapped.type == node.type, f"{case.id}: swapping the operands changes the type"
    feed = case.primals()
    (one, other) = evaluate([node, swapped], feed, {})
    np.testing.assert_array_equal(one, other, err_msg=case.id)


@pytest.mark.parametrize(
    "case", params([c for cs in LEAF_CASES_BY_OP.values() for c in cs if ops.OPS[c.op].constant])
)
def test_constant_leaves_hold_their_value_everywhere(case):
    node = case.node()
    (value,) = evaluate([node], {}, {})
    assert np.all(np.asarray(value) == node.attr("value")), case.id


# ---- first order, every case ------------------------------------------------------------


def _wrt_sets(case: Case) -> list[list[Node]]:
    args = [a for a in case.args if not a.type.integer]  # ids are not differentiated
    return [args] + ([[a] for a in args] if len(args) > 1 else [])


@pytest.mark.parametrize("case", params(RULE_CASES))
def test_jvp_matches_finite_differences(case):
    node, feed = case.node(), case.primals()
    for i, wrt in enumerate(_wrt_sets(case)):
        check_jvp(node, feed, wrt=wrt, rng=case.seed() + i)


@pytest.mark.parametrize("case", params(RULE_CASES))
def test_vjp_dot_product(case):
    node, feed = case.node(), case.primals()
    for i, wrt in enumerate(_wrt_sets(case)):
        check_vjp(node, feed, wrt=wrt, rng=case.seed() + i)


@pytest.mark.parametrize("case", params(RULELESS_CASES))
def test_ruleless_derivative_is_zero(case):
    node, feed = case.node(), case.primals()
    args = list(case.args)
    rng = np.random.default_rng(case.seed())
    seeds = {a: ops.var(name=f"{a.attr('name')}_dot", kind="tangent", type=a.type) for a in args}
    bar = ops.var(name="out_bar", kind="cotangent", type=node.type)
    (tangent,), _ = jvp_nodes([node], seeds)
    grads, _ = vjp_nodes(node, args, bar)
    values = dict(feed)
    values.update({t: rng.standard_normal(np.shape(feed[a])) for a, t in seeds.items()})
    (out,) = evaluate([node], feed, {})
    values[bar] = rng.standard_normal(np.shape(out))
    for result in evaluate([tangent, *grads], values, {}):
        assert not np.any(result), f"{case.id}: an operator without rules has a nonzero derivative"
    if case.op in DECLARED_ZERO_DERIVATIVE:
        return
    # Not declared: the operator must be piecewise constant, as its missing rules claim.
    h = 1e-6
    moved = {a: (feed[a] + h * values[seeds[a]], feed[a] - h * values[seeds[a]]) for a in args}
    (hi,) = evaluate([node], {a: m[0] for a, m in moved.items()}, {})
    (lo,) = evaluate([node], {a: m[1] for a, m in moved.items()}, {})
    assert np.array_equal(hi, lo), (
        f"{case.op} has no derivative rules, but its value changes along a direction at"
        f" {case.id}: give it jvp and vjp rules, or list it in DECLARED_ZERO_DERIVATIVE"
    )


# ---- impl against the emitted NumPy code ---------------------------------------------------


def _derivative_graph(case: Case) -> tuple[list[Node], list[Node]]:
    """The case's node, its tangent and its cotangents, and the vars they read."""
    node, args = case.node(), list(case.args)
    seeds = {a: ops.var(name=f"{a.attr('name')}_dot", kind="tangent", type=a.type) for a in args}
    bar = ops.var(name="out_bar", kind="cotangent", type=node.type)
    (tangent,), _ = jvp_nodes([node], seeds)
    grads, _ = vjp_nodes(node, args, bar)
    return [node, tangent, *grads], [*args, *seeds.values(), bar]


@pytest.mark.parametrize("case", params(CASES))
def test_impl_matches_emitted_code(case):
    outputs, variables = _derivative_graph(case)
    names = {v: v.attr("name") for v in variables}
    spec = FunctionSpec(
        "value",
        variables,
        Graph({f"y{i}": o for i, o in enumerate(outputs)}),
        tuple(outputs),
        "The case, its tangent and its cotangents.",
    )
    source = emit_module(case.id, [spec], names)
    module = load_module(source, "case")

    rng = np.random.default_rng(case.seed())
    feed = dict(case.primals())
    for v in variables[len(case.types) :]:
        feed[v] = random_value(v.type, rng)
    expected = evaluate(outputs, feed, {})
    got = module.value(**{names[v]: x for v, x in feed.items()})
    for node, want, have in zip(outputs, expected, got, strict=True):
        have = np.asarray(have, dtype=np.float64)
        assert have.shape == np.shape(want), (
            f"emitted code gives shape {have.shape}, impl {np.shape(want)} for {node.op.name}"
            f" in\n{source}"
        )
        np.testing.assert_allclose(
            have, want, rtol=1e-12, atol=1e-12, err_msg=f"{node.op.name} in\n{source}"
        )


# ---- kinks: the documented subgradients ------------------------------------------------------


def _derivatives_at(build, point: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """∂out/∂each var at ``point`` by the forward rule (one seed each) and the reverse rule."""
    xs = {n: ops.var(name=n, kind="param", type=SCALAR) for n in point}
    out = build(*xs.values())
    feed = {xs[n]: np.float64(v) for n, v in point.items()}
    forward = {}
    for n, x in xs.items():
        seed = ops.var(name=f"{n}_dot", kind="tangent", type=SCALAR)
        (t,), _ = jvp_nodes([out], {x: seed})
        (forward[n],) = evaluate([t], {**feed, seed: np.float64(1.0)}, {})
    grads, _ = vjp_nodes(out, list(xs.values()), ops.ONE)
    reverse = dict(zip(xs, evaluate(grads, feed, {}), strict=True))
    return forward, reverse


def _max_self(x: Node) -> Node:
    return ops.maximum(x, x)


def _min_self(x: Node) -> Node:
    return ops.minimum(x, x)


# (what, operator, point, the derivative by each argument there)
KINKS = [
    ("relu'(0) = 0", ops.relu, {"x": 0.0}, {"x": 0.0}),
    ("relu'(1) = 1", ops.relu, {"x": 1.0}, {"x": 1.0}),
    ("relu'(-1) = 0", ops.relu, {"x": -1.0}, {"x": 0.0}),
    ("abs'(0) = 0", ops.abs_, {"x": 0.0}, {"x": 0.0}),
    ("abs'(-2) = -1", ops.abs_, {"x": -2.0}, {"x": -1.0}),
    ("max ties route to the first", ops.maximum, {"a": 1.5, "b": 1.5}, {"a": 1.0, "b": 0.0}),
    ("max ties at 0", ops.maximum, {"a": 0.0, "b": 0.0}, {"a": 1.0, "b": 0.0}),
    ("max routes to the larger", ops.maximum, {"a": 1.0, "b": 2.0}, {"a": 0.0, "b": 1.0}),
    ("min ties route to the first", ops.minimum, {"a": 1.5, "b": 1.5}, {"a": 1.0, "b": 0.0}),
    ("min routes to the smaller", ops.minimum, {"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 0.0}),
    ("max(x, x) counts once", _max_self, {"x": 0.5}, {"x": 1.0}),
    ("min(x, x) counts once", _min_self, {"x": 0.5}, {"x": 1.0}),
]


@pytest.mark.parametrize("name, build, point, want", [pytest.param(*k, id=k[0]) for k in KINKS])
def test_subgradients_at_kinks(name, build, point, want):
    forward, reverse = _derivatives_at(build, point)
    for n, w in want.items():
        assert forward[n] == w, f"{name}: forward rule gives ∂/∂{n} = {forward[n]}, want {w}"
        assert reverse[n] == w, f"{name}: reverse rule gives ∂/∂{n} = {reverse[n]}, want {w}"


def test_kinks_entrywise_on_vectors():
    """relu and abs at a vector with zeros: the subgradient 0 at each zero entry."""
    x = ops.var(name="x", kind="param", type=vector(4))
    feed = {x: np.array([-1.0, 0.0, 2.0, 0.0])}
    for build, want in ((ops.relu, [0.0, 0.0, 1.0, 0.0]), (ops.abs_, [-1.0, 0.0, 1.0, 0.0])):
        (g,), _ = vjp_nodes(ops.reduce_sum(build(x), axis=None), [x], ops.ONE)
        (grad,) = evaluate([g], feed, {})
        np.testing.assert_array_equal(grad, want)


# ---- second order -------------------------------------------------------------------------


def _representative(cases: list[Case]) -> Case:
    """A case with no scalar argument if there is one (more entries, more to get wrong)."""
    return next((c for c in cases if all(not t.is_scalar for t in c.types)), cases[0])


SECOND_ORDER = [_representative(cs) for name, cs in sorted(CASES_BY_OP.items()) if cs]
SECOND_ORDER = [c for c in SECOND_ORDER if c.has_rules]


@pytest.mark.parametrize("case", params(SECOND_ORDER))
def test_rules_compose_to_second_order(case):
    """Forward over forward/reverse against finite differences of the derivative graphs;
    reverse over both by the dot-product test."""
    check_grads(case.node(), case.primals(), order=2, rng=case.seed())


# f''(x) in closed form, independent of the rules: the Hessian of Σ f(xᵢ) is diagonal.
SECOND_DERIVATIVES = {
    "exp": np.exp,
    "log": lambda x: -1.0 / x**2,
    "sqrt": lambda x: -0.25 * x**-1.5,
    "sin": lambda x: -np.sin(x),
    "cos": lambda x: -np.cos(x),
    "tanh": lambda x: -2.0 * np.tanh(x) * (1.0 - np.tanh(x) ** 2),
    "sigmoid": lambda x: (s := 1.0 / (1.0 + np.exp(-x))) * (1.0 - s) * (1.0 - 2.0 * s),
    "softplus": lambda x: (s := 1.0 / (1.0 + np.exp(-x))) * (1.0 - s),
    "relu": np.zeros_like,
    "abs": np.zeros_like,
}


@pytest.mark.parametrize("name", sorted(SECOND_DERIVATIVES))
def test_hessian_vector_product_of_elementwise_ops(name):
    """Forward over reverse: H u of s = Σ f(xᵢ) is f''(x) ∘ u; and against finite
    differences of the gradient, by `check_jvp` on the gradient graph."""
    x = ops.var(name="x", kind="param", type=vector(5))
    u = ops.var(name="u", kind="tangent", type=vector(5))
    value = np.array([0.3, 0.7, 1.1, 1.6, 2.4])  # positive: in every domain, off every kink
    s = ops.reduce_sum(Node.make(ops.OPS[name], (x,)), axis=None)
    (grad,), _ = vjp_nodes(s, [x], ops.ONE)
    (hvp,), _ = jvp_nodes([grad], {x: u})
    direction = np.array([1.0, -2.0, 0.5, 3.0, -1.0])
    (got,) = evaluate([hvp], {x: value, u: direction}, {})
    want = SECOND_DERIVATIVES[name](value) * direction
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    check_jvp(grad, {x: value}, rng=1)
    check_vjp(grad, {x: value}, rng=2)


@pytest.mark.parametrize("name", ["mul", "div", "pow", "maximum", "matmul"])
def test_shared_argument_sums_adjoints(name):
    """op(x, x): both rules must add the two contributions (fan-out)."""
    t = matrix(3, 3)
    x = ops.var(name="x", kind="param", type=t)
    node = Node.make(ops.OPS[name], (x, x))
    value = random_value(t, np.random.default_rng(3), positive=True)
    check_grads(node, {x: value}, order=2, rng=4)


# ---- the checkers can fail ------------------------------------------------------------------


def _broken(name: str, jvp=None, vjp=None) -> Op:
    """A tanh with the given rules, outside the table."""
    return Op(
        name,
        infer=lambda a: a,
        impl=lambda ctx, node, a: np.tanh(a),
        emit=lambda p, node, a: p.call("np.tanh", a),
        jvp=jvp,
        vjp=vjp,
    )


def test_check_jvp_catches_a_wrong_forward_rule():
    op = _broken("tanh_wrong_jvp", jvp=lambda node, t: t * (1.0 - node), vjp=lambda node, g: (g,))
    x = ops.var(name="x", kind="param", type=vector(3))
    with pytest.raises(AssertionError, match="jvp rule disagrees with central differences"):
        check_jvp(Node.make(op, (x,)), {x: np.array([0.5, -1.0, 1.5])})


def test_check_vjp_catches_a_wrong_reverse_rule():
    right = lambda node, t: t * (1.0 - node * node)  # noqa: E731
    op = _broken("tanh_wrong_vjp", jvp=right, vjp=lambda node, g: (g * node,))
    x = ops.var(name="x", kind="param", type=vector(3))
    node = Node.make(op, (x,))
    check_jvp(node, {x: np.array([0.5, -1.0, 1.5])})  # the forward rule is right
    with pytest.raises(AssertionError, match="dot-product test"):
        check_vjp(node, {x: np.array([0.5, -1.0, 1.5])})


def test_check_vjp_catches_a_cotangent_of_the_wrong_type():
    op = _broken("tanh_wrong_type", jvp=lambda node, t: t, vjp=lambda node, g: (ops.transpose(g),))
    x = ops.var(name="x", kind="param", type=vector(3))
    with pytest.raises(AssertionError, match="type"):
        check_vjp(Node.make(op, (x,)), {x: np.array([0.5, -1.0, 1.5])})


def test_check_grads_catches_a_rule_that_does_not_compose():
    # First order right, but built from a constant: its second derivative is lost.
    def jvp(node, t):
        return t * ops.stop(1.0 - node * node)

    def vjp(node, g):
        return (g * ops.stop(1.0 - node * node),)

    op = _broken("tanh_first_order_only", jvp=jvp, vjp=vjp)
    x = ops.var(name="x", kind="param", type=vector(3))
    node = Node.make(op, (x,))
    check_grads(node, {x: np.array([0.5, -1.0, 1.5])}, order=1)
    with pytest.raises(AssertionError):
        check_grads(node, {x: np.array([0.5, -1.0, 1.5])}, order=2)


def test_checks_accept_a_builder_and_symbolic_dims():
    x = ops.var(name="x", kind="param", type=vector("n"))
    W = ops.var(name="W", kind="param", type=matrix("m", "n"))
    feed = {x: np.array([0.1, 0.2, 0.3]), W: np.arange(6.0).reshape(2, 3) / 6}
    check_grads(lambda x, W: ops.tanh(W @ x), feed, order=2)


# ---- batched emission: a leading axis of directions (Jacobians in one sweep) -------------

DIRECTIONS = 2


def _batched_choices(case: Case) -> list[tuple[bool, ...]]:
    """Which operands carry directions: in a tangent sweep an operator meets
    them only where it is linear in them (any subset of a linear operator's
    operands, one operand of a product); elementwise operators broadcast."""
    op, n = ops.OPS[case.op], len(case.types)
    selects = op.emit_batched is not None and any(t.integer for t in case.types)
    if not (op.linear or op.bilinear or op.elementwise or selects):
        return []  # a gather is linear in its table, not in its ids: it has emit_batched
    singles = [tuple(i == j for j in range(n)) for i in range(n) if not case.types[i].integer]
    if op.linear and n > 1:
        return [*singles, (True,) * n]
    return singles


BATCHED_CASES = [
    pytest.param(case, choice, id=f"{case.id}-{''.join('b' if c else 'u' for c in choice)}")
    for case in CASES
    for choice in _batched_choices(case)
]


def _emit_batched(node: Node, args: tuple[Node, ...], exprs: list[Expr], choice, k) -> str:
    from graphc.emit_numpy import NumpyPrinter

    printer = NumpyPrinter({a: a.attr("name") for a in args}, {})
    seed = ops.var(name="seed", kind="tangent", type=vector(k))
    for a, batched in zip(args, choice):
        if batched:
            printer.batch[a] = seed
    printer.batch[node] = seed
    return printer.batched(node, exprs).text


@pytest.mark.parametrize("case, choice", BATCHED_CASES)
def test_batched_emission_matches_a_loop_over_directions(case, choice):
    """Every operator a tangent sweep can meet, printed with a leading axis of
    directions on some operands, equals the operator applied direction by direction."""
    node, args = case.node(), case.args
    rng = np.random.default_rng(case.seed())
    primals = case.primals()
    values = {}
    for a, batched in zip(args, choice):
        x = primals[a]
        # Directions near the primal, of its sign: inside every domain (log, sqrt).
        values[a] = (
            np.stack([x * (1.0 + 0.2 * rng.uniform(size=np.shape(x))) for _ in range(DIRECTIONS)])
            if batched
            else x
        )
    exprs = [Expr(a.attr("name"), PRECEDENCE["atom"]) for a in args]
    # dtype: the local a mask (`(a > b).astype(dtype)`) reads, as the function prelude sets it
    text = _emit_batched(node, args, exprs, choice, DIRECTIONS)
    got = eval(
        text, {"np": np, "dtype": np.float64, **{a.attr("name"): v for a, v in values.items()}}
    )
    want = [
        evaluate([node], {a: v[i] if b else v for (a, v), b in zip(values.items(), choice)}, {})[0]
        for i in range(DIRECTIONS)
    ]
    np.testing.assert_allclose(got, np.stack(want), rtol=1e-12, atol=1e-12, err_msg=text)


@pytest.mark.parametrize(
    "case, choice",
    [
        p
        for p in BATCHED_CASES
        if sum(p.values[1]) == 1
        and (ops.OPS[p.values[0].op].linear or ops.OPS[p.values[0].op].bilinear)
        and p.values[0].types[p.values[1].index(True)].is_vector
    ],
)
def test_batched_emission_of_a_scaled_identity(case, choice):
    """A batched vector that is a scaled identity (the seed of a Jacobian, sᵢ eᵢ):
    whatever the operator folds it into equals the operator on the dense array."""
    node, args = case.node(), case.args
    which = choice.index(True)
    n = case.types[which].dims[0].value
    primals = case.primals()
    scale = np.linspace(0.5, 1.5, n)
    for vector_scale in (True, False):
        dense = np.diag(scale) if vector_scale else np.eye(n)
        s = Expr("s", PRECEDENCE["atom"]) if vector_scale else Expr("1.0", PRECEDENCE["atom"])
        exprs = [Expr(a.attr("name"), PRECEDENCE["atom"]) for a in args]
        text = "np.diag(s)" if vector_scale else f"np.eye({n})"
        exprs[which] = Expr(text, PRECEDENCE["postfix"], Diagonal(s, vector_scale))
        emitted = _emit_batched(node, args, exprs, choice, n)
        values = {a.attr("name"): primals[a] for a in args}
        got = eval(emitted, {"np": np, "dtype": np.float64, "s": scale, **values})
        want = [evaluate([node], {**primals, args[which]: dense[i]}, {})[0] for i in range(n)]
        np.testing.assert_allclose(got, np.stack(want), rtol=1e-12, atol=1e-12, err_msg=emitted)


def _scalarised(case: Case) -> tuple[Node, Node]:
    """Σ (node ∘ w) for a fixed weight w of the node's type: a scalar of the case."""
    node = case.node()
    weight = ops.var(name="w", kind="input", type=node.type)
    return ops.reduce_sum(node * weight, axis=None), weight


@pytest.mark.parametrize("case", params(SECOND_ORDER))
def test_second_derivatives_forward_over_reverse_and_reverse_over_forward(case):
    """H v of Σ (op(args) ∘ w) three ways: forward over reverse (what fn.hvp and
    fn.hessian emit), reverse over forward, and central differences of the gradient."""
    s, weight = _scalarised(case)
    args = [a for a in case.args if not a.type.integer]  # ids are not differentiated
    rng = np.random.default_rng(case.seed())
    primals = case.primals()
    feed = {**primals, weight: random_value(weight.type, rng)}
    tangents = {a: ops.var(name=f"v{i}", kind="tangent", type=a.type) for i, a in enumerate(args)}
    for t in tangents.values():
        feed[t] = random_value(t.type, rng)
    grads, _ = vjp_nodes(s, args, ops.ONE)
    over_reverse, _ = jvp_nodes(grads, tangents)
    (s_dot,), _ = jvp_nodes([s], tangents)
    over_forward, _ = vjp_nodes(s_dot, args, ops.ONE)
    got = evaluate([*over_reverse, *over_forward], feed, {})
    n = len(args)
    step = 1e-6
    up = {**feed, **{a: feed[a] + step * feed[tangents[a]] for a in args}}
    down = {**feed, **{a: feed[a] - step * feed[tangents[a]] for a in args}}
    differences = [
        (u - d) / (2 * step) for u, d in zip(evaluate(grads, up, {}), evaluate(grads, down, {}))
    ]
    for a, fo_r, r_fo, fd in zip(args, got[:n], got[n:], differences):
        scale = max(1.0, float(np.max(np.abs(fd))))
        np.testing.assert_allclose(fo_r, r_fo, rtol=1e-10, atol=1e-12 * scale, err_msg=str(a))
        np.testing.assert_allclose(fo_r, fd, rtol=1e-5, atol=1e-6 * scale, err_msg=str(a))


@pytest.mark.parametrize("row", [False, True], ids=["Mv", "vM"])
@pytest.mark.parametrize("transposed", [False, True], ids=["W", "WT"])
def test_batched_emission_of_a_matrix_seed(row, transposed):
    """The seed of a matrix variable (direction (i, j) is the unit matrix Eᵢⱼ), or its
    transpose, times a vector folds to a Kronecker product, not the (mn)² identity."""
    from graphc.emit_numpy import NumpyPrinter

    W = ops.var(name="W", kind="param", type=matrix(3, 4))
    M = W.T if transposed else W
    size = M.type.dims[0 if row else 1].value
    x = ops.var(name="x", kind="param", type=vector(size, row=row))
    node = x @ M if row else M @ x
    printer = NumpyPrinter({W: "W", x: "x"}, {})
    for n in (W, M, node):
        printer.batch[n] = W
    seed = printer.identity(W)
    if transposed:
        seed = printer.batched(M, [seed])
    name = Expr("x", PRECEDENCE["atom"])
    text = printer.batched(node, [name, seed] if row else [seed, name]).text
    assert "kron" in text and "np.eye(12)" not in text, text
    value = np.arange(1.0, size + 1.0)
    got = eval(text, {"np": np, "x": value})
    unit = np.eye(12).reshape(12, 3, 4)
    want = [evaluate([node], {W: unit[k], x: value}, {})[0] for k in range(12)]
    np.testing.assert_allclose(got, np.stack(want), rtol=1e-15)
