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


def _a_literal(op: Op) -> bool:
    """A literal's operator (a number, or an array filled with one): what `is_const` reads."""
    return op.constant


def _zero(n: Node) -> bool:
    return is_const(n, 0.0)


def _one(n: Node) -> bool:
    return is_const(n, 1.0)


def _scalar(n: Node, value: float) -> bool:
    return is_const(n, value) and n.type.is_scalar


def _zeros_like(n: Node) -> Node:
    return ops.zeros(n.type) if not n.type.is_scalar else const(0.0)


# x + 0 -> x,  0 + x -> x
@matches("add", operands=_a_literal)
def add_zero(n: Node) -> Node | None:
    a, b = n.args
    if _zero(b):
        return broadcast_to(a, n.type)
    if _zero(a):
        return broadcast_to(b, n.type)
    return None


# x − 0 -> x,  0 − x -> −x
@matches("sub", operands=_a_literal)
def subtract_zero(n: Node) -> Node | None:
    a, b = n.args
    if _zero(b):
        return broadcast_to(a, n.type)
    if _zero(a):
        return broadcast_to(-b, n.type)
    return None


# x · 1 -> x,  1 · x -> x
@matches("mul", operands=_a_literal)
def mul_one(n: Node) -> Node | None:
    a, b = n.args
    if _one(b):
        return broadcast_to(a, n.type)
    if _one(a):
        return broadcast_to(b, n.type)
    return None


# x / 1 -> x
@matches("div", operands=_a_literal)
def divide_by_one(n: Node) -> Node | None:
    a, b = n.args
    return broadcast_to(a, n.type) if _one(b) else None


# x · 0 -> 0,  0 · x -> 0
@matches("mul", operands=_a_literal)
def mul_zero(n: Node) -> Node | None:
    a, b = n.args
    return _zeros_like(n) if _zero(a) or _zero(b) else None


# 0 / x -> 0
@matches("div", operands=_a_literal)
def zero_divided(n: Node) -> Node | None:
    return _zeros_like(n) if _zero(n.args[0]) else None


# (−1) · x -> −x,  x · (−1) -> −x
@matches("mul", operands=_a_literal)
def mul_minus_one(n: Node) -> Node | None:
    a, b = n.args
    if _scalar(a, -1.0):
        return broadcast_to(-b, n.type)
    if _scalar(b, -1.0):
        return broadcast_to(-a, n.type)
    return None


# −(−x) -> x
@matches("neg", operands=("neg",))
def double_negation(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("neg"), [x])]:
            return x
    return None


# −(c) -> (−c)
@matches("neg", operands=("const",))
def negate_constant(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("const")) as c]:
            return const(-c.attr("value"))
    return None


# (−a)·b -> −(a·b),  a·(−b) -> −(a·b)  for every bilinear · (∘, matrix product,
# scale_rows), and (−a)/b -> −(a/b),  a/(−b) -> −(a/b)
@matches("div", where=lambda op: op.bilinear, operands=("neg",))
def signs_outward(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("neg"), [a]), b] | [a, Node(Op("neg"), [b])]:
            return -n.with_args((a, b))
    return None


# a − (−b) -> a + b
@matches("sub", operands=("neg",))
def subtract_negation(n: Node) -> Node | None:
    match n.args:
        case [a, Node(Op("neg"), [b])]:
            return a + b
    return None


# a + (−b) -> a − b,  (−a) + b -> b − a
@matches("add", operands=("neg",))
def add_negation(n: Node) -> Node | None:
    match n.args:
        case [a, Node(Op("neg"), [b])]:
            return a - b
        case [Node(Op("neg"), [a]), b]:
            return b - a
    return None


# (xᵀ)ᵀ -> x
@matches("transpose", operands=("transpose",))
def double_transpose(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("transpose"), [x])]:
            return x
    return None


# cᵀ -> c for a scalar (not Aᵀ -> A for a square A: same type, other value)
@matches("transpose")
def transpose_of_scalar(n: Node) -> Node | None:
    match n.args:
        case [c] if c.type.is_scalar:
            return c
    return None


# (c · x)ᵀ -> c · xᵀ,  (x · c)ᵀ -> xᵀ · c  for a scalar c, and (−x)ᵀ -> −xᵀ
@matches("transpose", operands=("mul", "neg"))
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
@matches("transpose", operands=("matmul",))
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
@matches("powc", operands=("sqrt",))
def square_of_sqrt(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("sqrt"), [x])] if n.attr("p") == 2.0:
            return x
    return None


# (x^p)^q -> x^(p q)  for integer p, q
@matches("powc", operands=("powc",))
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
@matches("mul", operands=("div",))
def reciprocal_product(n: Node) -> Node | None:
    match n.args:
        case [g, Node(Op("div"), [one, x])] if _scalar(one, 1.0):
            return broadcast_to(g / x, n.type)
        case [Node(Op("div"), [one, x]), g] if _scalar(one, 1.0):
            return broadcast_to(g / x, n.type)
    return None


# x · c -> c · x  (a literal factor leads, as on paper: 2 x)
@matches("mul", operands=("const",))
def constants_first(n: Node) -> Node | None:
    match n.args:
        case [x, Node(Op("const")) as c] if x.op.name != "const":
            return n.with_args((c, x))
    return None


# c1 · (c2 · x) -> (c1 c2) · x
@matches("mul", operands=("const",))
def merge_constant_factors(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("const")) as c1, Node(Op("mul"), [Node(Op("const")) as c2, x])]:
            return const(c1.attr("value") * c2.attr("value")) * x
    return None


# diag(v) M -> v ∘ M (rows),  M diag(v) -> M ∘ v,  diag(v) x -> v ∘ x,  xᵀ diag(v) -> xᵀ ∘ vᵀ
@matches("matmul", operands=("diag",))
def diagonal_product(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("diag"), [v]), b]:
            return ops.scale_rows(v, b) if b.type.is_matrix else v * b
        case [a, Node(Op("diag"), [v])]:
            return a * v if a.type.is_matrix else a * v.T
    return None


# broadcast(g) ∘ x -> g ∘ x  for a binary elementwise ∘, when broadcasting by dims does the same
@matches(where=lambda op: op.elementwise and op.arity == 2, operands=("broadcast",))
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
@matches("sum", operands=("broadcast", "fill"))
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
@matches("stop", operands=("stop",))
def stop_of_stop(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("stop")) as inner]:
            return inner
    return None


def _scaled_product(n: Node) -> tuple[float, Node, Node] | None:
    """``c · (a ∘ b)`` or ``a ∘ b`` as ``(c, a, b)``."""
    if n.op.name != "mul":  # (either form)
        return None
    match n:
        case Node(Op("mul"), [Node(Op("const")) as c, Node(Op("mul"), [a, b])]) if c.type.is_scalar:
            return c.attr("value"), a, b
        case Node(Op("mul"), [a, b]):
            return 1.0, a, b
    return None


# c₁·(g ∘ a) ± c₂·(g ∘ b) -> g ∘ (c₁·a ± c₂·b)  (a local derivative folded before it meets g:
# the reverse rule of a product gives g ∘ b + g ∘ a; one product of g instead of two)
@matches("add", "sub", operands=("mul",))
def common_factor(n: Node) -> Node | None:
    left = _scaled_product(n.args[0])
    right = None if left is None else _scaled_product(n.args[1])
    if left is None or right is None:
        return None
    (c1, *pair1), (c2, *pair2) = left, right
    for g in pair1:
        if g in pair2 and g.type == n.type and not is_const(g):
            a = pair1[1] if pair1[0] is g else pair1[0]
            b = pair2[1] if pair2[0] is g else pair2[0]
            a, b = (a if c1 == 1.0 else const(c1) * a), (b if c2 == 1.0 else const(c2) * b)
            return g * (a + b if n.op.name == "add" else a - b)
    return None


def _affine(n: Node, depth: int = 3) -> tuple[float, float, Node | None, int]:
    """``n`` as ``k + c·x`` for scalar literals k, c and one node x, with the
    number of operations it takes as written (``0 + 1·n`` if it is not one)."""
    if is_const(n) and n.type.is_scalar:
        return n.attr("value"), 0.0, None, 0
    if depth == 0 or n.op.name not in ("add", "sub", "mul", "neg"):
        return 0.0, 1.0, n, 0
    parts = [_affine(a, depth - 1) for a in n.args]
    x, ops_used = None, 1
    for _, _, unknown, used in parts:
        if unknown is not None and x is not None and unknown is not x:
            return 0.0, 1.0, n, 0  # two unknowns: n is the unknown
        x, ops_used = unknown or x, ops_used + used
    match n.op.name, parts:
        case "neg", [(k, c, _, _)]:
            return -k, -c, x, ops_used
        case "add", [(k1, c1, _, _), (k2, c2, _, _)]:
            return k1 + k2, c1 + c2, x, ops_used
        case "sub", [(k1, c1, _, _), (k2, c2, _, _)]:
            return k1 - k2, c1 - c2, x, ops_used
        case "mul", [(k1, 0.0, _, _), (k2, c2, _, _)]:
            return k1 * k2, k1 * c2, x, ops_used
        case "mul", [(k1, c1, _, _), (k2, 0.0, _, _)]:
            return k1 * k2, c1 * k2, x, ops_used
    return 0.0, 1.0, n, 0  # x ∘ x: not affine


# c₁·(k₁ − x) − c₂·x -> (c₁k₁) − (c₁ + c₂)·x, and every other sum of scaled copies of
# one x and literals: collected into k + c·x when that takes fewer operations
@matches("add", "sub")
def collect_affine(n: Node) -> Node | None:
    form = _affine(n)
    if form[2] is None or form[2] is n or form[2].type != n.type:
        return None
    k, c, x, written = form
    if c == 0.0:
        return broadcast_to(const(k), n.type)
    needed = (k != 0.0) + (abs(c) != 1.0) + (k == 0.0 and c == -1.0)
    if needed >= written:
        return None
    term = x if abs(c) == 1.0 else const(abs(c)) * x
    if k == 0.0:
        return const(c) * x if c != 1.0 else x  # −2 x, not −(2 x): the sign on the literal
    return const(k) + term if c > 0 else const(k) - term


def _eye(n: Node) -> bool:
    return n.op.name == "eye"


# I M -> M,  M I -> M,  I x -> x,  xᵀ I -> xᵀ,  (c I) X -> c X,  X (c I) -> c X
# (the gradient of a trace brings an identity; an identity never materialises)
@matches("matmul", operands=("eye", "mul"))
def identity_product(n: Node) -> Node | None:
    match n.args:
        case [i, x] if _eye(i) and x.type == n.type:
            return x
        case [x, i] if _eye(i) and x.type == n.type:
            return x
        case [Node(Op("mul"), [c, i]), x] if _eye(i) and c.type.is_scalar and x.type == n.type:
            return c * x
        case [x, Node(Op("mul"), [c, i])] if _eye(i) and c.type.is_scalar and x.type == n.type:
            return c * x
    return None


# Iᵀ -> I
@matches("transpose", operands=("eye",))
def transpose_of_identity(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("eye")) as eye]:
            return eye
    return None


# fill(c) ∘ x -> c · x,  x ∘ fill(c) -> x · c  (no full array of a constant)
@matches("mul", operands=("fill",))
def filled_factor(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("fill")) as f, x] if x.type == n.type:
            return const(f.attr("value")) * x
        case [x, Node(Op("fill")) as f] if x.type == n.type:
            return x * const(f.attr("value"))
    return None


# A X ± B X -> (A ± B) X,  X A ± X B -> X (A ± B)  (one product instead of two)
@matches("add", "sub", operands=("matmul",))
def common_matrix_factor(n: Node) -> Node | None:
    combine = ops.add if n.op.name == "add" else ops.sub
    match n.args:
        case [Node(Op("matmul"), [a, x]), Node(Op("matmul"), [b, y])] if x is y and (
            a.type == b.type
        ):
            return combine(a, b) @ x
        case [Node(Op("matmul"), [x, a]), Node(Op("matmul"), [y, b])] if x is y and (
            a.type == b.type
        ):
            return x @ combine(a, b)
    return None


# c · (s ∘ x) -> (c · s) ∘ x  for a scalar s and an array x: the literal (and its sign)
# scales one number, not every entry
@matches("mul", operands=("const",))
def scale_the_scalar(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("const")) as c, Node(Op("mul"), [s, x])] if (
            c.type.is_scalar and s.type.is_scalar and not x.type.is_scalar and not is_const(s)
        ):
            return (c * s) * x
    return None


def _rows_cols(t: Type) -> tuple[Dim, Dim]:
    """A product's operand as a matrix: a column vector is n×1, a row vector 1×n."""
    if t.is_matrix:
        return t.dims[0], t.dims[1]
    if t.is_vector:
        return (Dim.of(1), t.dims[0]) if t.row else (t.dims[0], Dim.of(1))
    return Dim.of(1), Dim.of(1)


def _estimate(d: Dim) -> int:
    """A dim's size; an unbound one counts as 1000 (a symbolic shape: its degree decides)."""
    return d.substitute({name: 1000 for name in d.names}).value or 0


def _product_cost(a: Type, b: Type) -> int:
    """Multiplications in ``a b`` (p×q times q×r: p q r)."""
    (p, q), (_, r) = _rows_cols(a), _rows_cols(b)
    return _estimate(p) * _estimate(q) * _estimate(r)


def _times(a: Node, b: Node) -> Node:
    """``a b``, or ``a · b`` where one of them is a number (xᵀy inside a chain)."""
    return a * b if a.type.is_scalar or b.type.is_scalar else a @ b


# (A B) C -> A (B C)  and  A (B C) -> (A B) C  when that takes fewer multiplications,
# as np.linalg.multi_dot orders a chain: Aᵀ (x bᵀ) Aᵀ -> (Aᵀ x)(bᵀ Aᵀ)
@matches("matmul", operands=("matmul",))
def cheaper_association(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("matmul"), [a, b]) as ab, c]:
            inner = _times(b, c)
            if inner.type.is_scalar and not a.type.is_vector:
                return None
            now = _product_cost(a.type, b.type) + _product_cost(ab.type, c.type)
            other = _product_cost(b.type, c.type) + _product_cost(a.type, inner.type)
            return _times(a, inner) if other < now else None
        case [a, Node(Op("matmul"), [b, c]) as bc]:
            inner = _times(a, b)
            if inner.type.is_scalar and not c.type.is_vector:
                return None
            now = _product_cost(b.type, c.type) + _product_cost(a.type, bc.type)
            other = _product_cost(a.type, b.type) + _product_cost(inner.type, c.type)
            return _times(inner, c) if other < now else None
    return None


# Σ (X ∘ I) -> tr(X),  Σ (I ∘ X) -> tr(X)
@matches("sum", operands=("mul",))
def sum_against_identity(n: Node) -> Node | None:
    if n.attr("axis") is not None:
        return None
    match n.args:
        case [Node(Op("mul"), [x, i])] if _eye(i) and x.type.is_matrix:
            return ops.trace(x)
        case [Node(Op("mul"), [i, x])] if _eye(i) and x.type.is_matrix:
            return ops.trace(x)
    return None


def _inverted(x: Node) -> Node | None:
    """A when ``x`` is A⁻¹, Aᵀ when it is A⁻ᵀ, else None."""
    if x.op.name == "transpose":
        x, transposed = x.args[0], True
    else:
        transposed = False
    if x.op.name != "inv":
        return None
    return x.args[0].T if transposed else x.args[0]


# A⁻¹ B -> solve(A, B),  B A⁻¹ -> solve(Aᵀ, Bᵀ)ᵀ  (and A⁻ᵀ as (Aᵀ)⁻¹): one LU
# factorisation and two triangular solves instead of an inverse and a product;
# solve(A, B) c -> solve(A, B c) when B c has fewer columns (A⁻¹ Xᵀ y solves for one)
@matches("matmul", operands=("solve", "inv", "transpose"))
def solve_not_invert(n: Node) -> Node | None:
    a, b = n.args
    if a.op.name == "solve" and not b.type.is_scalar:
        m, rhs = a.args
        if _rows_cols(n.type)[1] != _rows_cols(rhs.type)[1] and _estimate(
            _rows_cols(n.type)[1]
        ) < _estimate(_rows_cols(rhs.type)[1]):
            return ops.solve(m, _times(rhs, b))
        return None
    left, right = _inverted(a), _inverted(b)
    if left is not None and not b.type.is_scalar and not (b.type.is_vector and b.type.row):
        return ops.solve(left, b)
    if right is not None and not a.type.is_scalar and not (a.type.is_vector and not a.type.row):
        return ops.solve(right.T, a.T).T
    return None


def _term(n: Node) -> tuple[float, Node]:
    """``c · x`` for a scalar literal c as ``(c, x)``, any other ``n`` as ``(1, n)``."""
    match n:
        case Node(Op("mul"), [Node(Op("const")) as c, x]) if c.type.is_scalar:
            return c.attr("value"), x
    return 1.0, n


# (a ± k₁·x) ± k₂·x -> a + (±k₁ ± k₂)·x,  (k₁·x ± a) ± k₂·x -> (k₁ ± k₂)·x ± a  (a term met
# again after another: dW A + 0.01 W + 0.01 W -> dW A + 0.02 W), when that takes no more
# operations; a literal a is collect_affine's (it collects only when that takes fewer)
@matches("add", "sub", operands=("add", "sub"))
def add_same_term(n: Node) -> Node | None:
    inner, right = n.args
    if inner.op.name not in ("add", "sub") or right.type != n.type or inner.type != n.type:
        return None
    k2, x = _term(right)
    k2 = k2 if n.op.name == "add" else -k2
    inner_sign = 1.0 if inner.op.name == "add" else -1.0
    for term, a, x_first in (
        (inner.args[1], inner.args[0], False),
        (inner.args[0], inner.args[1], True),
    ):
        k1, y = _term(term)
        if y is not x or a.type != n.type or is_const(a):
            continue
        k = k1 + k2 if x_first else inner_sign * k1 + k2
        written = 2 + len({t for t in (term, right) if t is not x})  # two sums, the scalings
        needed = (k != 0.0) + (abs(k) not in (0.0, 1.0)) + (x_first and k == 0.0 and inner_sign < 0)
        if needed > written:
            return None
        if x_first:
            scaled = const(k) * x
            return scaled + a if inner_sign > 0 else scaled - a
        return a + const(k) * x if k >= 0.0 else a - const(-k) * x
    return None


# c₁·(a ∘ (c₂·b)) -> (c₁c₂)·(a ∘ b)  for scalar literals c₁, c₂: one literal instead of two
# (0.5·(ṙ ∘ (2·r)) -> ṙ ∘ r, the tangent of ½r²)
@matches("mul", operands=("const",))
def merge_literals_across(n: Node) -> Node | None:
    match n.args:
        case [
            Node(Op("const")) as c1,
            Node(Op("mul"), [a, Node(Op("mul"), [Node(Op("const")) as c2, b])]),
        ] if c1.type.is_scalar and c2.type.is_scalar:
            return const(c1.attr("value") * c2.attr("value")) * (a * b)
    return None


def _literal(n: Node) -> float | None:
    """The value of a literal (a number, or an array filled with one)."""
    return n.attr("value") if is_const(n) else None


def _literal_select(w: Node) -> tuple[Node, float, bool] | None:
    """``where(c, k, 0)``, ``where(c, 0, k)`` or a scalar literal times one, for a literal k,
    as ``(c, its factor, whether it is taken where c holds)``."""
    scale = 1.0
    match w:
        case Node(Op("mul"), [Node(Op("const")) as k0, inner]) if k0.type.is_scalar:
            scale, w = k0.attr("value"), inner
    if w.op.name != "where":
        return None
    cond, yes, no = w.args
    if _zero(no) and _literal(yes) is not None:
        return cond, scale * _literal(yes), True
    if _zero(yes) and _literal(no) is not None:
        return cond, scale * _literal(no), False
    return None


# where(c, k, 0) ∘ a -> where(c, k·a, 0),  where(c, 0, k) ∘ a -> where(c, 0, k·a)  (and
# a ∘ where(…), and k₀·where(…) as where(c, k₀k, 0)) for literals k, k₀: the derivative
# of a branch selects its local derivative, with no array of ones
# (where(c, 1, 0) ∘ a -> where(c, a, 0);  0.5·where(c, 1, 0) ∘ (2·r) -> where(c, r, 0))
@matches("mul", operands=("where", "mul"))
def select_the_factor(n: Node) -> Node | None:
    for w, a in (n.args, reversed(n.args)):
        found = _literal_select(w)
        if found is None or a.type != n.type or is_const(a):
            continue
        cond, k, taken = found
        scaled = const(k) * a
        return _same_select(n, cond, *((scaled, const(0.0)) if taken else (const(0.0), scaled)))
    return None


def _same_select(n: Node, cond: Node, yes: Node, no: Node) -> Node | None:
    """``where(cond, yes, no)`` if it has ``n``'s type (else None)."""
    try:
        chosen = ops.where(cond, yes, no)
    except shapes.ShapeMismatch:
        return None
    return chosen if chosen.type == n.type else None


# where(c, a, 0) ± where(c, 0, b) -> where(c, a, ±b),  where(c, 0, b) ± where(c, a, 0) ->
# where(c, ±a, b)  (the two branches' derivatives, selected by one condition: one select)
@matches("add", "sub", operands=("where",))
def complementary_selects(n: Node) -> Node | None:
    match n.args:
        case [Node(Op("where"), [c1, a, z1]), Node(Op("where"), [c2, z2, b])] if (
            c1 is c2 and _zero(z1) and _zero(z2)
        ):
            return _same_select(n, c1, a, b if n.op.name == "add" else -b)
        case [Node(Op("where"), [c1, z1, b]), Node(Op("where"), [c2, a, z2])] if (
            c1 is c2 and _zero(z1) and _zero(z2)
        ):
            return _same_select(n, c1, a if n.op.name == "add" else -a, b)
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
    transpose_of_scalar,
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
    common_factor,
    collect_affine,
    identity_product,
    transpose_of_identity,
    filled_factor,
    common_matrix_factor,
    scale_the_scalar,
    cheaper_association,
    sum_against_identity,
    solve_not_invert,
    add_same_term,
    merge_literals_across,
    select_the_factor,
    complementary_selects,
]


def simplify(graph: Graph) -> Graph:
    """Apply the algebraic identities above to a fixed point."""
    return rewrite(graph, RULES)
