"""Constant folding.

Preserves: every output's value and type.  An operation whose arguments are
all scalar literals is replaced by its value (computed with the operator's
own NumPy evaluation, so folding and running cannot disagree); a dimension
whose size is known becomes a literal.
"""

from __future__ import annotations

import numpy as np

from graphc import ops
from graphc.ir import Graph, Node
from graphc.rewrite import matches, rewrite


def _evaluate(n: Node) -> float:
    """``n``'s value, its arguments being literals (no sizes needed)."""
    with np.errstate(all="ignore"):
        return float(n.op.impl(None, n, *(np.float64(a.attr("value")) for a in n.args)))


# op(c1, c2, …) -> c  for scalar literals (an operation whose evaluation needs no sizes)
@matches(where=lambda op: not op.leaf and not op.needs_sizes, operands=("const",))
def fold_literal_operation(n: Node) -> Node | None:
    if not n.type.is_scalar or not all(a.op.name == "const" for a in n.args):
        return None
    return ops.const(_evaluate(n))


# dim d (with d known) -> d
@matches("dimval")
def fold_known_dimension(n: Node) -> Node | None:
    size = n.attr("dim").value
    return None if size is None else ops.const(float(size))


# op(fill c1, c2) -> fill op(c1, c2)   for elementwise operators
@matches(where=lambda op: op.elementwise, operands=("fill",))
def fold_filled_elementwise(n: Node) -> Node | None:
    if not all(a.op.constant for a in n.args) or not any(a.op.name == "fill" for a in n.args):
        return None
    return ops.fill(value=_evaluate(n), type=n.type)


RULES = [fold_literal_operation, fold_known_dimension, fold_filled_elementwise]


def fold_constants(graph: Graph) -> Graph:
    """Evaluate what needs no input."""
    return rewrite(graph, RULES)
