"""Numerically stable forms.

Preserves: every output's value, in exact arithmetic; in floating point the
result is as accurate or better, and never overflows where the original
form would (σ, softplus, logsumexp and softmax are also emitted in
overflow-free form by the operator table itself).
"""

from __future__ import annotations

from graphc import builtins, ops
from graphc.ir import Graph, Node
from graphc.ops import is_const
from graphc.rewrite import matches, rewrite


@matches("log")
def log_sigmoid(n: Node) -> Node | None:
    # log σ(x) -> −softplus(−x)
    if n.op.name == "log" and n.args[0].op.name == "sigmoid":
        return -ops.softplus(-n.args[0].args[0])
    return None


@matches("log")
def log_one_minus_sigmoid(n: Node) -> Node | None:
    # log(1 − σ(x)) -> −softplus(x)
    if n.op.name == "log" and n.args[0].op.name == "sub":
        a, b = n.args[0].args
        if is_const(a, 1.0) and a.type.is_scalar and b.op.name == "sigmoid":
            return -ops.softplus(b.args[0])
    return None


@matches("log")
def log_one_plus_exp(n: Node) -> Node | None:
    # log(1 + eˣ) -> softplus(x),  log(eˣ + 1) -> softplus(x)
    if n.op.name == "log" and n.args[0].op.name == "add":
        a, b = n.args[0].args
        if is_const(a, 1.0) and a.type.is_scalar and b.op.name == "exp":
            return ops.softplus(b.args[0])
        if is_const(b, 1.0) and b.type.is_scalar and a.op.name == "exp":
            return ops.softplus(a.args[0])
    return None


@matches("log")
def log_of_exp(n: Node) -> Node | None:
    # log(eˣ) -> x
    if n.op.name == "log" and n.args[0].op.name == "exp":
        return n.args[0].args[0]
    return None


@matches("log")
def log_of_ratio_of_exp(n: Node) -> Node | None:
    # log(eˣ / s) -> x − log(s)      (log-softmax without overflow)
    if n.op.name == "log" and n.args[0].op.name == "div":
        a, b = n.args[0].args
        if a.op.name == "exp":
            return ops.broadcast_to(a.args[0] - ops.log(b), n.type)
    return None


def _one_plus(n: Node) -> Node | None:
    """``a`` for ``1 + a`` or ``a + 1`` (a scalar 1)."""
    if n.op.name == "add":
        a, b = n.args
        if is_const(a, 1.0) and a.type.is_scalar:
            return b
        if is_const(b, 1.0) and b.type.is_scalar:
            return a
    return None


def _shifted_by_its_max(x: Node) -> bool:
    """``x`` is ``a − stop(max a)``: the argument of an exp that cannot overflow."""
    if x.op.name != "sub":
        return False
    m = x.args[1]
    return m.op.name == "stop" and m.args[0].op.name == "amax"


@matches("div")
def logistic_of_exp(n: Node) -> Node | None:
    # 1 / (1 + e⁻ˣ) -> σ(x),  1 / (1 + eˣ) -> σ(−x),  eˣ / (1 + eˣ) -> σ(x)
    if n.op.name != "div":
        return None
    a, b = n.args
    e = _one_plus(b)
    if e is None or e.op.name != "exp":
        return None
    if is_const(a, 1.0) and a.type.is_scalar:
        return ops.broadcast_to(ops.sigmoid(-e.args[0]), n.type)
    if a is e:
        return ops.sigmoid(e.args[0])
    return None


@matches("log")
def log_sum_exp(n: Node) -> Node | None:
    # log Σ eˣ -> logsumexp(x) = m + log Σ e^(x − m),  m = stop(max x)
    if n.op.name == "log" and n.args[0].op.name == "sum" and n.args[0].attr("axis") is None:
        e = n.args[0].args[0]
        if e.op.name == "exp" and not _shifted_by_its_max(e.args[0]):
            return builtins.logsumexp(e.args[0])
    return None


@matches("div")
def exp_over_its_sum(n: Node) -> Node | None:
    # eˣ / Σ eˣ -> e^(x − m) / Σ e^(x − m),  m = stop(max x)      (softmax)
    if n.op.name == "div":
        e, s = n.args
        if (
            e.op.name == "exp"
            and s.op.name == "sum"
            and s.attr("axis") is None
            and s.args[0] is e
            and not _shifted_by_its_max(e.args[0])
        ):
            return builtins.stable_softmax(e.args[0])
    return None


RULES = [
    log_sigmoid,
    log_one_minus_sigmoid,
    log_one_plus_exp,
    log_of_exp,
    log_of_ratio_of_exp,
    logistic_of_exp,
    log_sum_exp,
    exp_over_its_sum,
]


def stable_forms(graph: Graph) -> Graph:
    """Rewrite unstable compositions into their stable equivalents."""
    return rewrite(graph, RULES)
