"""Numerically stable forms.

Preserves: every output's value, in exact arithmetic; in floating point the
result is as accurate or better, and never overflows where the original
form would (σ, softplus, logsumexp and softmax are also emitted in
overflow-free form by the operator table itself).

Each rule's operator is stated once, in ``@matches``; its body matches the
arguments (see `graphc.rewrite`).
"""

from __future__ import annotations

from graphc import builtins, ops
from graphc.ir import Graph, Node, Op
from graphc.ops import is_const
from graphc.rewrite import matches, rewrite


def _scalar_one(n: Node) -> bool:
    return is_const(n, 1.0) and n.type.is_scalar


# log σ(x) -> −softplus(−x)
@matches("log", operands=("sigmoid",))
def log_sigmoid(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("sigmoid"), [x])]:
            return -ops.softplus(-x)
    return None


# log(1 − σ(x)) -> −softplus(x)
@matches("log", operands=("sub",))
def log_one_minus_sigmoid(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("sub"), [one, Node(Op("sigmoid"), [x])])] if _scalar_one(one):
            return -ops.softplus(x)
    return None


# log(1 + eˣ) -> softplus(x),  log(eˣ + 1) -> softplus(x)
@matches("log", operands=("add",))
def log_one_plus_exp(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("add"), [one, Node(Op("exp"), [x])])] if _scalar_one(one):
            return ops.softplus(x)
        case [Node(Op("add"), [Node(Op("exp"), [x]), one])] if _scalar_one(one):
            return ops.softplus(x)
    return None


# log(eˣ) -> x
@matches("log", operands=("exp",))
def log_of_exp(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("exp"), [x])]:
            return x
    return None


# log(eˣ / s) -> x − log(s)      (log-softmax without overflow)
@matches("log", operands=("div",))
def log_of_ratio_of_exp(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("div"), [Node(Op("exp"), [x]), s])]:
            return ops.broadcast_to(x - ops.log(s), n.type)
    return None


def _one_plus(n: Node) -> Node | None:
    """``a`` for ``1 + a`` or ``a + 1`` (a scalar 1)."""
    match n:
        case Node(Op("add"), [one, a]) if _scalar_one(one):
            return a
        case Node(Op("add"), [a, one]) if _scalar_one(one):
            return a
    return None


def _shifted_by_its_max(x: Node) -> bool:
    """``x`` is ``a − stop(max a)``: the argument of an exp that cannot overflow."""
    match x:
        case Node(Op("sub"), [_, Node(Op("stop"), [Node(Op("amax"))])]):
            return True
        case Node(Op("sub"), [_, Node(Op("broadcast"), [Node(Op("stop"), [Node(Op("amax"))])])]):
            return True
    return False


def _sum_of_exp(s: Node) -> tuple[Node, int | None] | None:
    """``(x, axis)`` for ``s`` = Σ eˣ over ``axis`` (None: every entry), not already stable."""
    match s:
        case Node(Op("sum"), [Node(Op("exp"), [x])]) if not _shifted_by_its_max(x):
            axis = s.attr("axis")
            return x, None if x.type.rank <= 1 else axis
    return None


# 1 / (1 + e⁻ˣ) -> σ(x),  1 / (1 + eˣ) -> σ(−x),  eˣ / (1 + eˣ) -> σ(x)
@matches("div", operands=("add",))
def logistic_of_exp(n: Node) -> Node | None:
    a, b = n.args
    match _one_plus(b):
        case Node(Op("exp"), [x]) as e:
            if _scalar_one(a):
                return ops.broadcast_to(ops.sigmoid(-x), n.type)
            if a is e:
                return ops.sigmoid(x)
    return None


# log Σ eˣ -> logsumexp(x) = m + log Σ e^(x − m),  m = stop(max x)   (over any axis)
@matches("log", operands=("sum",))
def log_sum_exp(n: Node) -> Node | None:
    match n.args:
        case [s] if (found := _sum_of_exp(s)) is not None:
            return builtins.stable_logsumexp(*found)
    return None


# log(Σ eˣ / c) -> logsumexp(x) − log c      (log mean exp: c counts the entries)
@matches("log", operands=("div",))
def log_mean_exp(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("div"), [s, c])] if c.type.is_scalar and (found := _sum_of_exp(s)):
            return builtins.stable_logsumexp(*found) - ops.log(c)
    return None


def _spread_sum(s: Node, out: Node) -> Node:
    """The sum that ``s`` spreads to ``out``'s shape, explicitly (broadcast) or as
    elementwise broadcasting does: the sum is over the axis the spreading replicates."""
    match s:
        case Node(Op("broadcast"), [inner]) if inner.op.name == "sum":
            return inner if s.attr("axis") == inner.attr("axis") else s
    if s.type.is_vector and out.type.is_matrix and s.op.name == "sum":
        replicated = 1 if ops.runs_down_columns(s.type, out.type) else 0
        return s if s.attr("axis") == replicated else out
    return s


# eˣ / Σ eˣ -> e^(x − m) / Σ e^(x − m),  m = stop(max x)      (softmax, over any axis)
@matches("div", operands=("exp",))
def exp_over_its_sum(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("exp"), [x]) as e, s] if (
            (summed := _spread_sum(s, n)).op.name == "sum"
            and summed.args[0] is e
            and not _shifted_by_its_max(x)
        ):
            axis = summed.attr("axis")
            return builtins.stable_softmax(x, None if x.type.rank <= 1 else axis)
    return None


RULES = [
    log_sigmoid,
    log_one_minus_sigmoid,
    log_one_plus_exp,
    log_of_exp,
    log_of_ratio_of_exp,
    logistic_of_exp,
    log_sum_exp,
    log_mean_exp,
    exp_over_its_sum,
]


def stable_forms(graph: Graph) -> Graph:
    """Rewrite unstable compositions into their stable equivalents."""
    return rewrite(graph, RULES)
