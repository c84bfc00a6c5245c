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

# Leaves and operators whose evaluation needs sizes are never folded here.
_UNFOLDABLE = {"var", "const", "fill", "dimval", "eye", "stop", "broadcast"}


def fold_literal_operation(n: Node) -> Node | None:
    # op(c1, c2, …) -> c  for scalar literals
    if n.op.name in _UNFOLDABLE or not n.args or not n.type.is_scalar:
        return None
    if not all(a.op.name == "const" for a in n.args):
        return None
    with np.errstate(all="ignore"):
        value = n.op.impl(None, n, *(np.float64(a.attr("value")) for a in n.args))
    return ops.const(float(value))


@matches("dimval")
def fold_known_dimension(n: Node) -> Node | None:
    # dim d (with d known) -> d
    if n.op.name == "dimval" and n.attr("dim").value is not None:
        return ops.const(float(n.attr("dim").value))
    return None


def fold_filled_elementwise(n: Node) -> Node | None:
    # op(fill c1, c2) -> fill op(c1, c2)   for elementwise operators
    if n.op.name not in ops.ELEMENTWISE or not n.args:
        return None
    if not all(a.op.name in ("const", "fill") for a in n.args):
        return None
    if not any(a.op.name == "fill" for a in n.args):
        return None
    with np.errstate(all="ignore"):
        value = n.op.impl(None, n, *(np.float64(a.attr("value")) for a in n.args))
    return ops.fill(value=float(value), type=n.type)


RULES = [fold_literal_operation, fold_known_dimension, fold_filled_elementwise]


def fold_constants(graph: Graph) -> Graph:
    """Evaluate what needs no input."""
    return rewrite(graph, RULES)
