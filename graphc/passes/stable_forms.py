"""Numerically stable forms.

Preserves: every output's value, in exact arithmetic; in floating point the
result is as accurate or better, and never overflows where the original
form would (σ, softplus, logsumexp and softmax are also emitted in
overflow-free form by the operator table itself).
"""

from __future__ import annotations

from graphc import ops
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


RULES = [log_sigmoid, log_one_minus_sigmoid, log_one_plus_exp, log_of_exp, log_of_ratio_of_exp]


def stable_forms(graph: Graph) -> Graph:
    """Rewrite unstable compositions into their stable equivalents."""
    return rewrite(graph, RULES)
