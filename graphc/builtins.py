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
from graphc.shapes import Dim, ShapeMismatch


class ArgumentError(Exception):
    """A built-in was called with an argument it cannot take (``index``: which)."""

    def __init__(self, message: str, index: int = 0):
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class Builtin:
    name: str
    arities: tuple[int, ...]
    build: Callable[..., Node]


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


def logsumexp(a: Node) -> Node:
    # log Σ eᵃ = m + log Σ e^(a−m) with m = stop(max a): same value, same derivative.
    m = ops.stop(ops.amax(a))
    return m + ops.log(ops.reduce_sum(ops.exp(a - m), axis=None))


def stable_softmax(a: Node) -> Node:
    # eᵃ / Σ eᵃ = e^(a−m) / Σ e^(a−m) with m = stop(max a): same value, same derivative.
    e = ops.exp(a - ops.stop(ops.amax(a)))
    return e / ops.reduce_sum(e, axis=None)


def softmax(v: Node) -> Node:
    if not v.type.is_vector:
        raise ShapeMismatch("softmax takes a vector, not {0}")
    return stable_softmax(v)


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
        Builtin("max", (2,), ops.maximum),
        Builtin("min", (2,), ops.minimum),
        Builtin("sum", (1, 2), reduce_sum),
        Builtin("mean", (1, 2), mean),
        Builtin("logsumexp", (1,), logsumexp),
        Builtin("softmax", (1,), softmax),
        Builtin("dot", (2,), dot),
        Builtin("outer", (2,), outer),
        Builtin("tr", (1,), ops.trace),
        Builtin("diag", (1,), diag),
        Builtin("inv", (1,), ops.inv),
        Builtin("det", (1,), ops.det),
        Builtin("logdet", (1,), ops.logdet),
        Builtin("stop", (1,), ops.stop),
        Builtin("norm", (1,), norm),
    ]
}

ALIASES = {"σ": "sigmoid", "trace": "tr", "detach": "stop"}


def lookup(name: str) -> Builtin | None:
    return BUILTINS.get(ALIASES.get(name, name))


def all_names() -> list[str]:
    return sorted(set(BUILTINS) | set(ALIASES))
