"""Algebraic simplification.

Preserves: every output's value (for finite inputs; like every computer
algebra system, x·0 -> 0 forgets that inf·0 is nan) and type.  Each rule
states its identity.  Derivative rules build naive expressions (g·1, x + 0,
(xᵀ)ᵀ); these rules make them read like hand derivations, and turn
diag(v)·M into v ∘ M so that no diagonal matrix is ever built.
"""

from __future__ import annotations

from graphc import ops
from graphc.ir import Graph, Node
from graphc.ops import ONE, broadcast_to, const, is_const
from graphc.rewrite import matches, rewrite


def _zero(n: Node) -> bool:
    return is_const(n, 0.0)


def _one(n: Node) -> bool:
    return is_const(n, 1.0)


@matches("add", "sub")
def add_zero(n: Node) -> Node | None:
    # x + 0 -> x,  0 + x -> x,  x - 0 -> x,  0 - x -> -x
    if n.op.name in ("add", "sub"):
        a, b = n.args
        if _zero(b):
            return broadcast_to(a, n.type)
        if _zero(a):
            return broadcast_to(b if n.op.name == "add" else -b, n.type)
    return None


@matches("mul", "div")
def mul_one(n: Node) -> Node | None:
    # x · 1 -> x,  1 · x -> x,  x / 1 -> x
    if n.op.name in ("mul", "div"):
        a, b = n.args
        if _one(b):
            return broadcast_to(a, n.type)
        if _one(a) and n.op.name == "mul":
            return broadcast_to(b, n.type)
    return None


@matches("mul", "div")
def mul_zero(n: Node) -> Node | None:
    # x · 0 -> 0,  0 · x -> 0,  0 / x -> 0
    if n.op.name == "mul" and (_zero(n.args[0]) or _zero(n.args[1])):
        return ops.zeros(n.type) if not n.type.is_scalar else const(0.0)
    if n.op.name == "div" and _zero(n.args[0]):
        return ops.zeros(n.type) if not n.type.is_scalar else const(0.0)
    return None


@matches("mul")
def mul_minus_one(n: Node) -> Node | None:
    # (−1) · x -> −x,  x · (−1) -> −x
    if n.op.name == "mul":
        a, b = n.args
        if is_const(a, -1.0) and a.type.is_scalar:
            return broadcast_to(-b, n.type)
        if is_const(b, -1.0) and b.type.is_scalar:
            return broadcast_to(-a, n.type)
    return None


@matches("neg")
def double_negation(n: Node) -> Node | None:
    # −(−x) -> x
    if n.op.name == "neg" and n.args[0].op.name == "neg":
        return n.args[0].args[0]
    return None


@matches("neg")
def negate_constant(n: Node) -> Node | None:
    # −(c) -> (−c)
    if n.op.name == "neg" and n.args[0].op.name == "const":
        return const(-n.args[0].attr("value"))
    return None


@matches("mul", "div", "matmul", "scale_rows")
def signs_outward(n: Node) -> Node | None:
    # (−a)·b -> −(a·b),  a·(−b) -> −(a·b),  (−a)/b -> −(a/b),  a/(−b) -> −(a/b)
    if n.op.name in ("mul", "div", "matmul", "scale_rows"):
        a, b = n.args
        if a.op.name == "neg":
            return -n.with_args((a.args[0], b))
        if b.op.name == "neg":
            return -n.with_args((a, b.args[0]))
    return None


@matches("sub", "add")
def subtract_negation(n: Node) -> Node | None:
    # a − (−b) -> a + b,  a + (−b) -> a − b,  (−a) + b -> b − a
    if n.op.name == "sub" and n.args[1].op.name == "neg":
        return n.args[0] + n.args[1].args[0]
    if n.op.name == "add":
        a, b = n.args
        if b.op.name == "neg":
            return a - b.args[0]
        if a.op.name == "neg":
            return b - a.args[0]
    return None


@matches("transpose")
def double_transpose(n: Node) -> Node | None:
    # (xᵀ)ᵀ -> x,  cᵀ -> c for a scalar (not Aᵀ -> A for a square A: same type, other value)
    if n.op.name == "transpose":
        (a,) = n.args
        if a.op.name == "transpose":
            return a.args[0]
        if a.type.is_scalar:
            return a
    return None


@matches("transpose")
def transpose_of_scaled(n: Node) -> Node | None:
    # (c · x)ᵀ -> c · xᵀ  for a scalar c, and (−x)ᵀ -> −xᵀ
    if n.op.name == "transpose":
        (a,) = n.args
        if a.op.name == "mul" and a.args[0].type.is_scalar:
            return a.args[0] * a.args[1].T
        if a.op.name == "mul" and a.args[1].type.is_scalar:
            return a.args[0].T * a.args[1]
        if a.op.name == "neg":
            return -(a.args[0].T)
    return None


@matches("transpose")
def transpose_of_product(n: Node) -> Node | None:
    # (A B)ᵀ -> Bᵀ Aᵀ  when it removes a transpose: (Aᵀ x)ᵀ -> xᵀ A
    if n.op.name == "transpose" and n.args[0].op.name == "matmul":
        a, b = n.args[0].args
        if a.op.name == "transpose" or b.op.name == "transpose":
            return b.T @ a.T
    return None


@matches("powc")
def power_one_zero(n: Node) -> Node | None:
    # x^1 -> x,  x^0 -> 1
    if n.op.name == "powc":
        if n.attr("p") == 1.0:
            return n.args[0]
        if n.attr("p") == 0.0:
            return broadcast_to(ONE, n.type)
    return None


@matches("powc")
def square_of_sqrt(n: Node) -> Node | None:
    # (√x)^2 -> x   (the square root is real, so x ≥ 0)
    if n.op.name == "powc" and n.attr("p") == 2.0 and n.args[0].op.name == "sqrt":
        return n.args[0].args[0]
    return None


@matches("powc")
def power_of_power(n: Node) -> Node | None:
    # (x^p)^q -> x^(p q)  for integer p, q
    if n.op.name == "powc" and n.args[0].op.name == "powc":
        p, q = n.args[0].attr("p"), n.attr("p")
        if float(p).is_integer() and float(q).is_integer():  # not int(): p may be inf
            return ops.powc(n.args[0].args[0], p=p * q)
    return None


@matches("add")
def add_same(n: Node) -> Node | None:
    # x + x -> 2 · x,  c·x + x -> (c+1)·x
    if n.op.name == "add":
        a, b = n.args
        if a is b:
            return const(2.0) * a
        if a.op.name == "mul" and a.args[0].op.name == "const" and a.args[1] is b:
            return const(a.args[0].attr("value") + 1.0) * b
    return None


@matches("mul")
def reciprocal_product(n: Node) -> Node | None:
    # g · (1/x) -> g / x,  (1/x) · g -> g / x
    if n.op.name == "mul":
        a, b = n.args
        if b.op.name == "div" and _one(b.args[0]) and b.args[0].type.is_scalar:
            return broadcast_to(a / b.args[1], n.type)
        if a.op.name == "div" and _one(a.args[0]) and a.args[0].type.is_scalar:
            return broadcast_to(b / a.args[1], n.type)
    return None


@matches("mul")
def constants_first(n: Node) -> Node | None:
    # x · c -> c · x  (a literal factor leads, as on paper: 2 x)
    if n.op.name == "mul":
        a, b = n.args
        if b.op.name == "const" and a.op.name != "const":
            return n.with_args((b, a))
    return None


@matches("mul")
def merge_constant_factors(n: Node) -> Node | None:
    # c1 · (c2 · x) -> (c1 c2) · x
    if n.op.name == "mul":
        a, b = n.args
        if a.op.name == "const" and b.op.name == "mul" and b.args[0].op.name == "const":
            return const(a.attr("value") * b.args[0].attr("value")) * b.args[1]
    return None


@matches("matmul")
def diagonal_product(n: Node) -> Node | None:
    # diag(v) M -> v ∘ M (rows),  M diag(v) -> M ∘ v,  diag(v) x -> v ∘ x,  xᵀ diag(v) -> xᵀ ∘ vᵀ
    if n.op.name != "matmul":
        return None
    a, b = n.args
    if a.op.name == "diag":
        v = a.args[0]
        return ops.scale_rows(v, b) if b.type.is_matrix else v * b
    if b.op.name == "diag":
        v = b.args[0]
        return a * v if a.type.is_matrix else a * v.T
    return None


@matches("mul", "add", "sub", "div")
def drop_broadcast(n: Node) -> Node | None:
    # broadcast(g) ∘ x -> g ∘ x  when NumPy's broadcasting does the same
    if n.op.name in ("mul", "add", "sub", "div"):
        a, b = n.args
        if a.op.name == "broadcast" and a.attr("axis") in (None, 0) and b.type == n.type:
            return n.with_args((a.args[0], b))
        if b.op.name == "broadcast" and b.attr("axis") in (None, 0) and a.type == n.type:
            return n.with_args((a, b.args[0]))
    return None


@matches("sum")
def sum_of_broadcast(n: Node) -> Node | None:
    # Σ broadcast(c) over all -> c · size  (and Σ ones -> size)
    if n.op.name == "sum" and n.attr("axis") is None:
        (a,) = n.args
        if (
            a.op.name in ("broadcast", "fill")
            and a.type.rank
            and (a.op.name == "fill" or a.attr("axis") is None)
        ):
            size = ops.Dim.of(1)
            for d in a.type.dims:
                size = size * d
            count = ops.dimval(dim=size)
            value = a.args[0] if a.op.name == "broadcast" else const(a.attr("value"))
            return value * count
    return None


@matches("stop")
def stop_of_stop(n: Node) -> Node | None:
    # stop(stop(x)) -> stop(x)
    if n.op.name == "stop" and n.args[0].op.name == "stop":
        return n.args[0]
    return None


RULES = [
    add_zero,
    mul_one,
    mul_zero,
    mul_minus_one,
    double_negation,
    negate_constant,
    signs_outward,
    subtract_negation,
    double_transpose,
    transpose_of_scaled,
    transpose_of_product,
    power_one_zero,
    square_of_sqrt,
    power_of_power,
    add_same,
    reciprocal_product,
    constants_first,
    merge_constant_factors,
    diagonal_product,
    drop_broadcast,
    sum_of_broadcast,
    stop_of_stop,
]


def simplify(graph: Graph) -> Graph:
    """Apply the algebraic identities above to a fixed point."""
    return rewrite(graph, RULES)
