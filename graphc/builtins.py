"""The language's built-in functions: surface names -> graph constructors.

Most are one operator from `graphc.ops`.  The rest are defined here in terms
of operators, as JAX defines ``logsumexp`` with ``stop_gradient``: the
stable forms subtract a stopped maximum, which changes no value and no
derivative but keeps ``exp`` from overflowing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from graphc import ops
from graphc.ir import Node
from graphc.shapes import Dim, ShapeMismatch, matrix, vector


class ArgumentError(Exception):
    """A built-in was called with an argument it cannot take (``index``: which)."""

    def __init__(self, message: str, index: int = 0):
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class Builtin:
    name: str
    arities: tuple[int, ...]  # how many positional arguments it takes
    build: Callable[..., Node]
    keywords: tuple[str, ...] = ()  # the keyword arguments it takes (axis=k)


def _column(v: Node) -> Node:
    return v.T if v.type.is_vector and v.type.row else v


def _axis(node: Node, rank: int) -> int:
    """An axis argument: an integer literal, counted from 0 (negative from the end)."""
    # Compared as a float: a literal too large for a double (1e400) is inf, which int() rejects.
    value = node.attr("value") if node.op.name == "const" else 0.5
    if not (float(value).is_integer() or math.isinf(value)):
        raise ArgumentError("the axis must be an integer literal (0 or 1)", 1)
    if not -max(rank, 1) <= value < max(rank, 1):
        raise ArgumentError(f"axis {value:.15g} is out of range for rank {rank}", 1)
    axis = int(value)
    return axis + max(rank, 1) if axis < 0 else axis


def _size(dims: tuple[Dim, ...]) -> Dim:
    size = Dim.of(1)
    for d in dims:
        size = size * d
    return size


def _reduced_axis(a: Node, axis: Node | None) -> int | None:
    """The axis a reduction runs over: None for all entries (also a vector's only axis)."""
    if axis is None:
        return None
    k = _axis(axis, a.type.rank)
    return None if a.type.rank <= 1 else k


def _spread(r: Node, a: Node, axis: int | None) -> Node:
    """A reduction ``r`` of ``a`` over ``axis`` spread back to ``a``'s shape."""
    return ops.broadcast_to_axis(r, a.type, axis)


def reduce_sum(a: Node, axis: Node | None = None) -> Node:
    if axis is None:
        return ops.reduce_sum(a, axis=None)
    return ops.reduce_sum(a, axis=_axis(axis, a.type.rank))


def mean(a: Node, axis: Node | None = None) -> Node:
    if axis is None:
        return ops.reduce_sum(a, axis=None) / ops.dimval(dim=_size(a.type.dims))
    k = _axis(axis, a.type.rank)
    count = _size(a.type.dims) if a.type.rank <= 1 else a.type.dims[k]
    return ops.reduce_sum(a, axis=k) / ops.dimval(dim=count)


def _extremum(reduce: Callable[..., Node], pairwise: Callable[..., Node]) -> Callable[..., Node]:
    """max(a, b) is elementwise; max(a) and max(a, axis=k) reduce."""

    def build(a: Node, b: Node | None = None, axis: Node | None = None) -> Node:
        if b is not None:  # (the front end refuses an axis beside two arguments)
            return pairwise(a, b)
        return reduce(a, axis=_reduced_axis(a, axis))

    return build


def logsumexp(a: Node, axis: Node | None = None) -> Node:
    return stable_logsumexp(a, _reduced_axis(a, axis))


def stable_logsumexp(a: Node, k: int | None = None) -> Node:
    # log Σ eᵃ = m + log Σ e^(a−m) with m = stop(max a): same value, same derivative.
    m = ops.stop(ops.amax(a, axis=k))
    return m + ops.log(ops.reduce_sum(ops.exp(a - _spread(m, a, k)), axis=k))


def stable_softmax(a: Node, axis: int | None = None) -> Node:
    # eᵃ / Σ eᵃ = e^(a−m) / Σ e^(a−m) with m = stop(max a): same value, same derivative.
    e = ops.exp(a - _spread(ops.stop(ops.amax(a, axis=axis)), a, axis))
    return e / _spread(ops.reduce_sum(e, axis=axis), a, axis)


def softmax(a: Node, axis: Node | None = None) -> Node:
    # As JAX: a matrix is normalised along its last axis (each row) unless told.
    if a.type.is_scalar:
        raise ShapeMismatch("softmax takes a vector or a matrix, not {0}")
    if a.type.is_matrix:
        return stable_softmax(a, 1 if axis is None else _axis(axis, 2))
    if axis is not None:
        _axis(axis, 1)
    return stable_softmax(a)


def _dim_of(node: Node, index: int) -> Dim:
    """A size argument: a dim name or a whole number."""
    if node.op.name == "dimval":
        return node.attr("dim")
    if node.op.name == "const":
        value = node.attr("value")
        if float(value).is_integer() and 0 <= value < 2**63:
            return Dim.of(int(value))
    raise ArgumentError("a size is a dim or a whole number (ones(n), eye(3))", index)


def _filled(value: float) -> Callable[..., Node]:
    def build(*sizes: Node) -> Node:
        dims = [_dim_of(s, i) for i, s in enumerate(sizes)]
        t = vector(dims[0]) if len(dims) == 1 else matrix(dims[0], dims[1])
        return ops.fill(value=value, type=t)

    return build


def eye(n: Node) -> Node:
    return ops.eye(dim=_dim_of(n, 0))


def clip(x: Node, lo: Node, hi: Node) -> Node:
    # clip(x, lo, hi) = min(max(x, lo), hi): at a bound the derivative goes to x (ties: first)
    return ops.minimum(ops.maximum(x, lo), hi)


def dot(a: Node, b: Node) -> Node:
    if a.type.dims != b.type.dims:
        raise ShapeMismatch("dot needs operands of one shape: {0} and {1}")
    if a.type.is_vector:
        return _column(a).T @ _column(b)
    return ops.reduce_sum(a * b, axis=None)


def outer(a: Node, b: Node) -> Node:
    if not (a.type.is_vector and b.type.is_vector):
        raise ShapeMismatch("outer takes two vectors: {0} and {1}")
    return _column(a) @ _column(b).T


def norm(a: Node) -> Node:
    # ‖a‖ = √(Σ a²): the 2-norm of a vector, the Frobenius norm of a matrix.
    return ops.sqrt(ops.reduce_sum(a * a, axis=None))


def diag(a: Node) -> Node:
    if a.type.is_vector:
        return ops.diag(_column(a))
    return ops.diagpart(a)


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in [
        Builtin("exp", (1,), ops.exp),
        Builtin("log", (1,), ops.log),
        Builtin("sqrt", (1,), ops.sqrt),
        Builtin("sin", (1,), ops.sin),
        Builtin("cos", (1,), ops.cos),
        Builtin("tanh", (1,), ops.tanh),
        Builtin("sigmoid", (1,), ops.sigmoid),
        Builtin("relu", (1,), ops.relu),
        Builtin("softplus", (1,), ops.softplus),
        Builtin("abs", (1,), ops.abs_),
        Builtin("max", (1, 2), _extremum(ops.amax, ops.maximum), ("axis",)),
        Builtin("min", (1, 2), _extremum(ops.amin, ops.minimum), ("axis",)),
        Builtin("sum", (1, 2), reduce_sum, ("axis",)),
        Builtin("mean", (1, 2), mean, ("axis",)),
        Builtin("logsumexp", (1, 2), logsumexp, ("axis",)),
        Builtin("softmax", (1, 2), softmax, ("axis",)),
        Builtin("dot", (2,), dot),
        Builtin("outer", (2,), outer),
        Builtin("tr", (1,), ops.trace),
        Builtin("diag", (1,), diag),
        Builtin("inv", (1,), ops.inv),
        Builtin("det", (1,), ops.det),
        Builtin("logdet", (1,), ops.logdet),
        Builtin("stop", (1,), ops.stop),
        Builtin("norm", (1,), norm),
        Builtin("eye", (1,), eye),
        Builtin("pick", (2,), ops.pick),
        Builtin("where", (3,), ops.where),
        Builtin("clip", (3,), clip),
        Builtin("ones", (1, 2), _filled(1.0)),
        Builtin("zeros", (1, 2), _filled(0.0)),
    ]
}

# Named numbers: a declared name of the same spelling wins.
CONSTANTS = {"π": math.pi, "pi": math.pi}

ALIASES = {"σ": "sigmoid", "trace": "tr", "detach": "stop"}


def lookup(name: str) -> Builtin | None:
    return BUILTINS.get(ALIASES.get(name, name))


def all_names() -> list[str]:
    return sorted(set(BUILTINS) | set(ALIASES))
