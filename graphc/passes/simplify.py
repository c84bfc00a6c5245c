"""Algebraic simplification.

Preserves: every output's value (for finite inputs; like every computer
algebra system, x·0 -> 0 forgets that inf·0 is nan) and type.  Each rule
states its identity.  Derivative rules build naive expressions (g·1, x + 0,
(xᵀ)ᵀ); these rules make them read like hand derivations, and turn
diag(v)·M into v ∘ M so that no diagonal matrix is ever built.

Each rule's operator is stated once, in ``@matches``; its body matches the
arguments (see `graphc.rewrite`).
"""

from __future__ import annotations

from graphc import ops, shapes
from graphc.ir import Graph, Node, Op
from graphc.ops import ONE, broadcast_to, const, is_const
from graphc.rewrite import matches, rewrite
from graphc.shapes import Dim, Type


def _zero(n: Node) -> bool:
    return is_const(n, 0.0)


def _one(n: Node) -> bool:
    return is_const(n, 1.0)


def _scalar(n: Node, value: float) -> bool:
    return is_const(n, value) and n.type.is_scalar


def _zeros_like(n: Node) -> Node:
    return ops.zeros(n.type) if not n.type.is_scalar else const(0.0)


# x + 0 -> x,  0 + x -> x
@matches("add")
def add_zero(n: Node) -> Node | None:
    a, b = n.args
    if _zero(b):
        return broadcast_to(a, n.type)
    if _zero(a):
        return broadcast_to(b, n.type)
    return None


# x − 0 -> x,  0 − x -> −x
@matches("sub")
def subtract_zero(n: Node) -> Node | None:
    a, b = n.args
    if _zero(b):
        return broadcast_to(a, n.type)
    if _zero(a):
        return broadcast_to(-b, n.type)
    return None


# x · 1 -> x,  1 · x -> x
@matches("mul")
def mul_one(n: Node) -> Node | None:
    a, b = n.args
    if _one(b):
        return broadcast_to(a, n.type)
    if _one(a):
        return broadcast_to(b, n.type)
    return None


# x / 1 -> x
@matches("div")
def divide_by_one(n: Node) -> Node | None:
    a, b = n.args
    return broadcast_to(a, n.type) if _one(b) else None


# x · 0 -> 0,  0 · x -> 0
@matches("mul")
def mul_zero(n: Node) -> Node | None:
    a, b = n.args
    return _zeros_like(n) if _zero(a) or _zero(b) else None


# 0 / x -> 0
@matches("div")
def zero_divided(n: Node) -> Node | None:
    return _zeros_like(n) if _zero(n.args[0]) else None


# (−1) · x -> −x,  x · (−1) -> −x
@matches("mul")
def mul_minus_one(n: Node) -> Node | None:
    a, b = n.args
    if _scalar(a, -1.0):
        return broadcast_to(-b, n.type)
    if _scalar(b, -1.0):
        return broadcast_to(-a, n.type)
    return None


# −(−x) -> x
@matches("neg")
def double_negation(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("neg"), [x])]:
            return x
    return None


# −(c) -> (−c)
@matches("neg")
def negate_constant(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("const")) as c]:
            return const(-c.attr("value"))
    return None


# (−a)·b -> −(a·b),  a·(−b) -> −(a·b)  for every bilinear · (∘, matrix product,
# scale_rows), and (−a)/b -> −(a/b),  a/(−b) -> −(a/b)
@matches("div", where=lambda op: op.bilinear)
def signs_outward(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("neg"), [a]), b] | [a, Node(Op("neg"), [b])]:
            return -n.with_args((a, b))
    return None


# a − (−b) -> a + b
@matches("sub")
def subtract_negation(n: Node) -> Node | None:
    match n.args:
        case [a, Node(Op("neg"), [b])]:
            return a + b
    return None


# a + (−b) -> a − b,  (−a) + b -> b − a
@matches("add")
def add_negation(n: Node) -> Node | None:
    match n.args:
        case [a, Node(Op("neg"), [b])]:
            return a - b
        case [Node(Op("neg"), [a]), b]:
            return b - a
    return None


# (xᵀ)ᵀ -> x,  cᵀ -> c for a scalar (not Aᵀ -> A for a square A: same type, other value)
@matches("transpose")
def double_transpose(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("transpose"), [x])]:
            return x
        case [c] if c.type.is_scalar:
            return c
    return None


# (c · x)ᵀ -> c · xᵀ,  (x · c)ᵀ -> xᵀ · c  for a scalar c, and (−x)ᵀ -> −xᵀ
@matches("transpose")
def transpose_of_scaled(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("mul"), [c, x])] if c.type.is_scalar:
            return c * x.T
        case [Node(Op("mul"), [x, c])] if c.type.is_scalar:
            return x.T * c
        case [Node(Op("neg"), [x])]:
            return -(x.T)
    return None


# (A B)ᵀ -> Bᵀ Aᵀ  when it removes a transpose: (Aᵀ x)ᵀ -> xᵀ A
@matches("transpose")
def transpose_of_product(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("matmul"), [a, b])] if "transpose" in (a.op.name, b.op.name):
            return b.T @ a.T
    return None


# x^1 -> x,  x^0 -> 1
@matches("powc")
def power_one_zero(n: Node) -> Node | None:
    if n.attr("p") == 1.0:
        return n.args[0]
    if n.attr("p") == 0.0:
        return broadcast_to(ONE, n.type)
    return None


# (√x)^2 -> x   (the square root is real, so x ≥ 0)
@matches("powc")
def square_of_sqrt(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("sqrt"), [x])] if n.attr("p") == 2.0:
            return x
    return None


# (x^p)^q -> x^(p q)  for integer p, q
@matches("powc")
def power_of_power(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("powc"), [x]) as inner]:
            p, q = inner.attr("p"), n.attr("p")
            if float(p).is_integer() and float(q).is_integer():  # not int(): p may be inf
                return ops.powc(x, p=p * q)
    return None


# x + x -> 2 · x,  c·x + x -> (c+1)·x
@matches("add")
def add_same(n: Node) -> Node | None:
    match n.args:
        case [a, b] if a is b:
            return const(2.0) * a
        case [Node(Op("mul"), [Node(Op("const")) as c, x]), b] if x is b:
            return const(c.attr("value") + 1.0) * b
    return None


# g · (1/x) -> g / x,  (1/x) · g -> g / x
@matches("mul")
def reciprocal_product(n: Node) -> Node | None:
    match n.args:
        case [g, Node(Op("div"), [one, x])] if _scalar(one, 1.0):
            return broadcast_to(g / x, n.type)
        case [Node(Op("div"), [one, x]), g] if _scalar(one, 1.0):
            return broadcast_to(g / x, n.type)
    return None


# x · c -> c · x  (a literal factor leads, as on paper: 2 x)
@matches("mul")
def constants_first(n: Node) -> Node | None:
    match n.args:
        case [x, Node(Op("const")) as c] if x.op.name != "const":
            return n.with_args((c, x))
    return None


# c1 · (c2 · x) -> (c1 c2) · x
@matches("mul")
def merge_constant_factors(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("const")) as c1, Node(Op("mul"), [Node(Op("const")) as c2, x])]:
            return const(c1.attr("value") * c2.attr("value")) * x
    return None


# diag(v) M -> v ∘ M (rows),  M diag(v) -> M ∘ v,  diag(v) x -> v ∘ x,  xᵀ diag(v) -> xᵀ ∘ vᵀ
@matches("matmul")
def diagonal_product(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("diag"), [v]), b]:
            return ops.scale_rows(v, b) if b.type.is_matrix else v * b
        case [a, Node(Op("diag"), [v])]:
            return a * v if a.type.is_matrix else a * v.T
    return None


# broadcast(g) ∘ x -> g ∘ x  for a binary elementwise ∘, when broadcasting by dims does the same
@matches(where=lambda op: op.elementwise and op.arity == 2)
def drop_broadcast(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("broadcast"), [g]) as a, b] if _implied(a) and b.type == n.type:
            return n.with_args((g, b))
        case [a, Node(Op("broadcast"), [g]) as b] if _implied(b) and a.type == n.type:
            return n.with_args((a, g))
    return None


def _implied(spread: Node) -> bool:
    """``spread`` (a broadcast) is what elementwise broadcasting of its operand would do."""
    axis = spread.attr("axis")
    if axis is None or axis == 0:
        return True
    (g,) = spread.args
    return not shapes.is_ambiguous(g.type, spread.type)


def _count(t: Type) -> Node:
    """The number of entries of a ``t``, as a number."""
    size = Dim.of(1)
    for d in t.dims:
        size = size * d
    return ops.dimval(dim=size)


# Σ broadcast(c) over all -> c · size,  Σ fill(c) -> c · size  (and Σ ones -> size)
@matches("sum")
def sum_of_broadcast(n: Node) -> Node | None:
    if n.attr("axis") is not None:
        return None
    match n.args:
        case [Node(Op("broadcast"), [c]) as a] if a.type.rank and a.attr("axis") is None:
            return c * _count(a.type)
        case [Node(Op("fill")) as a] if a.type.rank:
            return const(a.attr("value")) * _count(a.type)
    return None


# stop(stop(x)) -> stop(x)
@matches("stop")
def stop_of_stop(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("stop")) as inner]:
            return inner
    return None


def _eye(n: Node) -> bool:
    return n.op.name == "eye"


# I X -> X,  X I -> X,  (c I) X -> c X,  X (c I) -> c X      (an identity never materialises)
@matches("matmul")
def identity_product(n: Node) -> Node | None:
    match n.args:
        case [i, x] if _eye(i):
            return x
        case [x, i] if _eye(i):
            return x
        case [Node(Op("mul"), [c, i]), x] if _eye(i) and c.type.is_scalar:
            return c * x
        case [x, Node(Op("mul"), [c, i])] if _eye(i) and c.type.is_scalar:
            return c * x
    return None


# Iᵀ -> I
@matches("transpose")
def transpose_of_identity(n: Node) -> Node | None:
    match n.args:
        case [i] if _eye(i):
            return i
    return None


# Σ (X ∘ I) -> tr(X),  Σ (I ∘ X) -> tr(X)
@matches("sum")
def sum_against_identity(n: Node) -> Node | None:
    if n.attr("axis") is not None:
        return None
    match n.args:
        case [Node(Op("mul"), [x, i])] if _eye(i) and x.type.is_matrix:
            return ops.trace(x)
        case [Node(Op("mul"), [i, x])] if _eye(i) and x.type.is_matrix:
            return ops.trace(x)
    return None


RULES = [
    add_zero,
    subtract_zero,
    mul_one,
    divide_by_one,
    mul_zero,
    zero_divided,
    mul_minus_one,
    double_negation,
    negate_constant,
    signs_outward,
    subtract_negation,
    add_negation,
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
    identity_product,
    transpose_of_identity,
    sum_against_identity,
]


def simplify(graph: Graph) -> Graph:
    """Apply the algebraic identities above to a fixed point."""
    return rewrite(graph, RULES)
