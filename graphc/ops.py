"""The operator table: one block per operator.

Each block states, side by side, the operator's shape rule (``infer``), its
NumPy evaluation (``impl``), its NumPy source (``emit``, by printer kind),
its forward rule (``jvp``), its reverse rule (``vjp``) and its SymPy
translation.  Derivative rules build graph nodes, never numbers, so a
derivative can be simplified, folded, emitted and differentiated again.

Two helpers keep blocks short and the two modes in agreement:

* `elementwise` takes the local partial derivatives ∂out/∂argᵢ (as graph
  nodes) and derives both rules from them: jvp = Σ ∂ᵢ·tᵢ, vjp = ∂ᵢ·ḡ summed
  back over broadcast axes.
* `linear` takes the operator's transpose: jvp applies the operator to the
  tangents, vjp applies the transpose to the cotangent.
* `bilinear` takes the transposes in each operand of a product: jvp is
  ∂a·b + a·∂b.

Each helper also sets the operator's facts (`Op.elementwise`, `Op.linear`,
`Op.bilinear`, its arity); other facts are keyword arguments of the block.
Passes and the emitter read these facts, never lists of operator names, so
adding an operator touches its block here (and `builtins.py` to give it a
name in the language), nothing else.

Conventions: a tangent or cotangent of ``None`` is zero.  ``impl(ctx, node,
*values)`` gets a context whose ``shape(type)`` and ``dim(d)`` give integers;
``emit(p, node, *exprs)`` gets the printer, whose ``shape`` and ``dim`` give
source text.  Vectors are 1-D at run time; orientation is ``node.type.row``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphc import notation, shapes
from graphc.ir import Node, Op
from graphc.shapes import SCALAR, Dim, ShapeMismatch, Type, matrix, product, vector

OPS: dict[str, Op] = {}


def define(op: Op, index_operands: tuple[int, ...] = ()) -> Callable[..., Node]:
    """Register ``op`` and return its graph constructor.

    Integer data (``input y : [N] int``) only select: an operand is integer data
    exactly at the positions ``index_operands`` (the ids of a gather), so no
    operator computes with indices and no derivative flows into them.
    """
    if op.name in OPS:
        raise ValueError(f"operator {op.name} defined twice")
    infer = op.infer

    @functools.wraps(infer)
    def checked(*types: Type, **attrs: Any) -> Type:
        for i, t in enumerate(types):
            if t.integer and i not in index_operands:
                raise ShapeMismatch(
                    f"{{{i}}} is integer data: it selects (E[ids], pick(Z, y)), it does not"
                    " take part in arithmetic"
                )
            if i in index_operands and not t.integer:
                raise ShapeMismatch(
                    f"{{{i}}} cannot select entries: indices are integer data"
                    " (input ids : [n] int) or integer literals"
                )
        return infer(*types, **attrs)

    op.infer = checked
    OPS[op.name] = op

    def construct(*args: Node, **attrs) -> Node:
        return Node.make(op, args, **attrs)

    construct.__name__ = op.name
    return construct


# ---- emission kinds (the printer implements one method per kind) -------------


def call(fn: str, **fixed: str) -> Callable:
    """Emit ``fn(args…, key=value…)``."""
    return lambda p, node, *args: p.call(fn, *args, **fixed)


def infix(symbol: str) -> Callable:
    return lambda p, node, a, b: p.infix(symbol, a, b)


def into(fn: str) -> Callable:
    """Write into an array: ``fn(args…, out=target)`` (a NumPy ufunc)."""
    return lambda p, node, target, *args: p.call(fn, *args, out=target)


def passthrough(p, node, a):
    return a


# ---- helpers shared by the rules ------------------------------------------------


def const(value: float) -> Node:
    """A scalar literal."""
    return _const(value=float(value))


def is_const(node: Node | None, value: float | None = None) -> bool:
    if node is None or not node.op.constant:
        return False
    return value is None or node.attr("value") == value


def broadcast_to(x: Node, t: Type) -> Node:
    """``x`` spread to type ``t`` (scalar to anything, vector along a matrix)."""
    if x.type == t:
        return x
    if x.type.is_scalar:
        if is_const(x):
            return fill(value=x.attr("value"), type=t)
        return broadcast(x, type=t, axis=None)
    if x.type.is_vector and t.is_vector:
        return transpose(x)  # orientation only
    # broadcast's axis is the one replicated: the other one than the vector runs along
    return broadcast(x, type=t, axis=1 - shapes.vector_axis(x.type, t))


def unbroadcast(g: Node, t: Type) -> Node:
    """Sum ``g`` back over the axes that broadcasting spread an arg of type ``t``."""
    if g.type == t:
        return g
    if t.is_scalar:
        return reduce_sum(g, axis=None)
    if g.type.is_matrix and t.is_vector:
        g = reduce_sum(g, axis=1 - shapes.vector_axis(t, g.type))
    return g if g.type == t else transpose(g)


def total(terms: Sequence[Node | None]) -> Node | None:
    """The sum of the non-zero terms; None if all are zero."""
    result = None
    for term in terms:
        if term is not None:
            result = term if result is None else result + term
    return result


def scale(g: Node, d: Node) -> Node:
    """``g * d``, skipping the multiplication by a literal ±1."""
    if is_const(d, 1.0) and d.type.is_scalar:
        return g
    if is_const(d, -1.0) and d.type.is_scalar:
        return -g
    return g * d


def zeros(t: Type) -> Node:
    return fill(value=0.0, type=t)


def runs_down_columns(arg: Type, out: Type) -> bool:
    """A vector operand spread across a matrix's columns (its dim is the row dim):
    NumPy needs it as a column, ``v[:, None]``."""
    return arg.is_vector and out.is_matrix and shapes.vector_axis(arg, out) == 0


def _aligned_values(node: Node, values: Sequence[Any]) -> list[Any]:
    return [
        np.asarray(x)[:, None] if runs_down_columns(a.type, node.type) else x
        for a, x in zip(node.args, values)
    ]


def _aligned(p, node: Node, exprs: Sequence[Any]) -> tuple[Any, ...]:
    if len(node.type.dims) != 2:  # only a matrix has columns for a vector to run down
        return tuple(exprs)
    # A batched operand (a Jacobian's sweep) the printer has lined up already.
    batch = getattr(p, "batch", {})
    return tuple(
        p.postfix(x, "[:, None]") if runs_down_columns(a.type, node.type) and a not in batch else x
        for a, x in zip(node.args, exprs)
    )


def _aligned_emit(emit: Callable) -> Callable:
    def aligned(p, node, *exprs):
        if len(node.type.dims) != 2:  # nothing to align (`_aligned`), and this is hot
            return emit(p, node, *exprs)
        return emit(p, node, *_aligned(p, node, exprs))

    return aligned


def _aligned_into(emit_into: Callable) -> Callable:
    def aligned(p, node, target, *exprs):
        return emit_into(p, node, target, *_aligned(p, node, exprs))

    return aligned


def elementwise(
    name: str,
    impl: Callable,
    emit: Callable,
    partials: Callable[..., Sequence[Node | None]] | None,
    to_sympy: Callable | None = None,
    verb: str | None = None,
    **facts: Any,
) -> Callable[..., Node]:
    """An elementwise operator from its local partial derivatives.

    ``partials(*args, out)`` returns ∂out/∂argᵢ for each argument as graph
    nodes (broadcasting like the operator), or None for a zero partial.
    Both derivative rules come from them, so they cannot drift apart.  Its
    arity is that of ``impl`` (a NumPy ufunc's ``nin``); ``verb`` names it
    in shape errors ("cannot multiply …"); ``facts`` are further `Op` facts
    (commutative, bilinear) and fields (emit_array_api).
    """

    verb = verb or f"apply {name} to"

    def infer(*types: Type) -> Type:
        result = types[0]
        for t in types[1:]:
            result = shapes.broadcast(result, t, verb)
        return result

    def jvp(node: Node, *tangents: Node | None) -> Node | None:
        ds = partials(*node.args, node)
        tangent = total(
            [scale(t, d) for d, t in zip(ds, tangents) if t is not None and d is not None]
        )
        return None if tangent is None else broadcast_to(tangent, node.type)

    def vjp(node: Node, g: Node) -> tuple[Node | None, ...]:
        ds = partials(*node.args, node)
        return tuple(
            None if d is None else unbroadcast(scale(g, d), a.type) for d, a in zip(ds, node.args)
        )

    arity = getattr(impl, "nin", None) or len(inspect.signature(impl).parameters)
    return define(
        Op(
            name,
            infer=infer,
            impl=lambda ctx, node, *xs: impl(*_aligned_values(node, xs)),
            emit=_aligned_emit(emit),
            jvp=jvp if partials else None,
            vjp=vjp if partials else None,
            to_sympy=to_sympy,
            arity=arity,
            elementwise=True,
            **{k: _aligned_into(f) if k == "emit_into" else f for k, f in facts.items()},
        )
    )


def linear(
    name: str,
    infer: Callable,
    impl: Callable,
    emit: Callable,
    transpose_rule: Callable[..., tuple[Node | None, ...]],
    to_sympy: Callable | None = None,
    **facts: Any,
) -> Callable[..., Node]:
    """A linear operator, given its transpose: ``transpose_rule(node, g)``
    returns the cotangent of each argument.  Its jvp is itself.  ``facts``
    are further `Op` facts (arity when not 1, needs_sizes, elementwise)."""

    def jvp(node: Node, *tangents: Node | None) -> Node | None:
        if all(t is None for t in tangents):
            return None
        filled = [zeros(a.type) if t is None else t for a, t in zip(node.args, tangents)]
        return node.with_args(filled)

    return define(Op(name, infer, impl, emit, jvp, transpose_rule, to_sympy, linear=True, **facts))


def bilinear(
    name: str,
    infer: Callable,
    impl: Callable,
    emit: Callable,
    transposes: Callable[[Node, Node], tuple[Node, Node]],
    to_sympy: Callable | None = None,
    **facts: Any,
) -> Callable[..., Node]:
    """A product a·b, linear in each operand, given its transposes:
    ``transposes(node, g)`` returns (ā, b̄).  Its jvp is ∂a·b + a·∂b.  ``facts``
    are further `Op` fields (emit_array_api)."""

    def jvp(node: Node, ta: Node | None, tb: Node | None) -> Node | None:
        a, b = node.args
        return total(
            [
                None if ta is None else node.with_args((ta, b)),
                None if tb is None else node.with_args((a, tb)),
            ]
        )

    return define(
        Op(name, infer, impl, emit, jvp, transposes, to_sympy, arity=2, bilinear=True, **facts)
    )


# ---- SymPy translation (graphc.symbolic imports SymPy and passes it in as ``sp``) --------
#
# Two forms: *explicit* (scalars are SymPy expressions, vectors and matrices are
# ``sp.Matrix`` of them, a column vector n×1) and *matrix* (``MatrixSymbol``
# expressions, possibly with symbolic dims).  A translation that has no matrix form
# raises NotImplementedError.


def _sym_dim(sp, d: Dim):
    """A dim as a SymPy integer, or a polynomial in positive integer symbols."""
    if d.value is not None:
        return sp.Integer(d.value)
    terms = []
    for mono, coeff in d.terms:
        factors = [sp.Symbol(name, integer=True, positive=True) for name in mono]
        terms.append(sp.Mul(sp.Integer(coeff), *factors))
    return sp.Add(*terms)


def _sym_shape(sp, t: Type) -> tuple:
    """(rows, cols) of a type: a column vector is n×1, a row vector 1×n."""
    dims = [_sym_dim(sp, d) for d in t.dims]
    if t.is_scalar:
        return (1, 1)
    if t.is_vector:
        return (1, dims[0]) if t.row else (dims[0], 1)
    return tuple(dims)


def _sym_number(sp, value: float):
    """A literal: an exact integer where it is one (so that x**2 stays a square)."""
    if np.isfinite(value) and value == int(value):
        return sp.Integer(int(value))
    return sp.Float(value)


def _sym_is_matrix(sp, x) -> bool:
    return isinstance(x, (sp.MatrixBase, sp.MatrixExpr))


def _sym_entry(sp, a, i: int, j: int, shape: tuple, down: bool = False):
    """Entry (i, j) of ``a`` broadcast to ``shape``; ``down``: a vector that runs
    down the columns (`runs_down_columns`), otherwise along the rows."""
    if not isinstance(a, sp.MatrixBase):
        return a
    if a.shape == shape:
        return a[i, j]
    flat = list(a)
    if 1 in shape:
        return flat[i + j]  # a vector of the other orientation
    return flat[i] if down else flat[j]


def _sym_spread(sp, node: Node, a):
    """A matrix-form operand at the node's shape: a scalar becomes a constant matrix."""
    shape = _sym_shape(sp, node.type)
    if not _sym_is_matrix(sp, a):
        return a * sp.OneMatrix(*shape)
    if a.shape != shape:
        raise NotImplementedError("a vector spread along a matrix has no matrix form in SymPy")
    return a


def _sym_elementwise(scalar_fn: Callable, matrix_fn: Callable | None = None) -> Callable:
    """The SymPy translation of an elementwise operator from its scalar form.

    Explicit matrices are computed entry by entry; matrix expressions use
    ``matrix_fn`` (Hadamard products, ``applyfunc``) when SymPy has one.
    """

    def translate(sp, node, *args):
        if any(isinstance(a, sp.MatrixBase) for a in args):
            shape = _sym_shape(sp, node.type)
            down = [runs_down_columns(a.type, node.type) for a in node.args]
            down += [False] * (len(args) - len(down))  # powc passes its exponent too
            return sp.Matrix(
                *shape,
                lambda i, j: scalar_fn(
                    sp, *(_sym_entry(sp, a, i, j, shape, d) for a, d in zip(args, down))
                ),
            )
        if any(_sym_is_matrix(sp, a) for a in args):
            if matrix_fn is None:
                raise NotImplementedError(f"{node.op.name} of matrices has no matrix form in SymPy")
            return matrix_fn(sp, node, *args)
        return scalar_fn(sp, *args)

    return translate


def _sym(fn_name: str) -> Callable:
    """SymPy translation of a named SymPy function, applied entrywise."""
    return _sym_function(lambda sp, x: getattr(sp, fn_name)(x))


def _sym_function(scalar_fn: Callable) -> Callable:
    """A function of one argument, entrywise; ``applyfunc`` in matrix form."""
    return _sym_elementwise(scalar_fn, lambda sp, node, x: x.applyfunc(lambda e: scalar_fn(sp, e)))


def _sym_hadamard(sp, node, a, b):
    if not (_sym_is_matrix(sp, a) and _sym_is_matrix(sp, b)):
        return a * b
    return sp.HadamardProduct(_sym_spread(sp, node, a), _sym_spread(sp, node, b))


def _sym_quotient(sp, node, a, b):
    if not _sym_is_matrix(sp, b):
        return a * (1 / b)
    return sp.HadamardProduct(_sym_spread(sp, node, a), sp.HadamardPower(b, -1))


def _sym_power(sp, node, a, b):
    if _sym_is_matrix(sp, b):
        raise NotImplementedError("a matrix exponent has no matrix form in SymPy")
    return sp.HadamardPower(a, b)


def _sym_sum_of_all(sp, a):
    """Σ entries of a matrix expression: 1ᵀ A 1 (a 1×1 matrix)."""
    rows, cols = a.shape
    return sp.OneMatrix(1, rows) * a * sp.OneMatrix(cols, 1)


# =============================================================================
# Leaves
# =============================================================================

# var: a program input or parameter (or a tangent/cotangent seed); fed by name.
var = define(
    Op(
        "var",
        infer=lambda *, name, kind, type: type,
        impl=lambda ctx, node: ctx.feed(node),
        emit=lambda p, node: p.name(node),
        to_sympy=lambda sp, node: node.attr("name"),  # the translator binds symbols
        arity=0,
        inline=True,
        label=lambda node: node.attr("name"),
        math=notation.kind("name"),
    )
)

# const: a scalar literal.
_const = define(
    Op(
        "const",
        infer=lambda *, value: SCALAR,
        impl=lambda ctx, node: np.float64(node.attr("value")),
        emit=lambda p, node: p.literal(node.attr("value")),
        to_sympy=lambda sp, node: _sym_number(sp, node.attr("value")),
        arity=0,
        inline=True,
        constant=True,
        label=lambda node: repr(node.attr("value")),
        math=notation.kind("literal"),
    )
)

# fill: an array of one value (zeros and ones of derivatives).
fill = define(
    Op(
        "fill",
        infer=lambda *, value, type: type,
        impl=lambda ctx, node: np.full(ctx.shape(node.type), node.attr("value")),
        emit=lambda p, node: p.fill(node.attr("value"), node.type),
        to_sympy=lambda sp, node: (
            _sym_number(sp, node.attr("value")) * sp.OneMatrix(*_sym_shape(sp, node.type))
            if not node.type.is_scalar
            else _sym_number(sp, node.attr("value"))
        ),
        arity=0,
        needs_sizes=True,
        constant=True,
        math=notation.kind("fill"),
    )
)

# dimval: a dimension used as a number (mean divides by it).
dimval = define(
    Op(
        "dimval",
        infer=lambda *, dim: SCALAR,
        impl=lambda ctx, node: np.float64(ctx.dim(node.attr("dim"))),
        emit=lambda p, node: p.raw(p.dim(node.attr("dim"))),
        to_sympy=lambda sp, node: _sym_dim(sp, node.attr("dim")),
        arity=0,
        needs_sizes=True,
        inline=True,
        math=notation.kind("dim"),
    )
)

# eye: the identity matrix (the gradient of a trace).
eye = define(
    Op(
        "eye",
        infer=lambda *, dim: matrix(dim, dim),
        impl=lambda ctx, node: np.eye(ctx.dim(node.attr("dim"))),
        emit=lambda p, node: p.made("np.eye", p.raw(p.dim(node.attr("dim")))),  # inputs' dtype
        to_sympy=lambda sp, node: sp.Identity(_sym_dim(sp, node.attr("dim"))),
        arity=0,
        needs_sizes=True,
        math=notation.kind("identity"),
    )
)

ONE = const(1.0)
MINUS_ONE = const(-1.0)

# =============================================================================
# Linear and structural operators
# =============================================================================

# neg: -x;  transpose: itself.
neg = linear(
    "neg",
    infer=lambda a: a,
    impl=lambda ctx, node, a: -a,
    emit=lambda p, node, a: p.prefix("-", a),
    transpose_rule=lambda node, g: (-g,),
    to_sympy=lambda sp, node, a: -a,
    elementwise=True,
    math=notation.prefix("−", "-"),
)

# transpose: xᵀ.  A no-op on 1-D arrays: orientation is static.
transpose = linear(
    "transpose",
    infer=lambda a: a.T,
    impl=lambda ctx, node, a: np.transpose(a),
    emit=lambda p, node, a: p.postfix(a, ".T") if node.type.is_matrix else a,
    transpose_rule=lambda node, g: (transpose(g),),
    to_sympy=lambda sp, node, a: a.T if _sym_is_matrix(sp, a) else a,
    math=notation.superscript("ᵀ", "T"),
    emit_batched=lambda p, node, batched, a: _transpose_batched(p, node, a),
)


def _transpose_batched(p, node: Node, a):
    if not node.type.is_matrix:
        return a
    swapped = p.call("np.swapaxes", a, p.raw("-1"), p.raw("-2"))
    d = a.diagonal
    if d is not None and d.shape is not None:  # the seed of a matrix, transposed
        return swapped._replace(diagonal=d._replace(transposed=not d.transposed))
    return swapped


def _sum_infer(a: Type, *, axis: int | None) -> Type:
    if axis is None or a.rank <= 1:
        if axis not in (None, 0) or (axis == 0 and a.is_scalar):
            raise ShapeMismatch(f"axis {axis} is out of range for {{0}}")
        return SCALAR
    if axis not in (0, 1):
        raise ShapeMismatch(f"axis {axis} is out of range for {{0}}")
    return vector(a.dims[1 - axis])  # a reduced matrix is a column vector


# reduce_sum: sum(a) or sum(a, axis);  transpose: broadcast back.
reduce_sum = linear(
    "sum",
    infer=_sum_infer,
    impl=lambda ctx, node, a: np.sum(a, axis=node.attr("axis")),
    emit=lambda p, node, a: (
        p.call("np.sum", a)
        if node.attr("axis") is None or node.args[0].type.rank <= 1
        else p.call("np.sum", a, axis=str(node.attr("axis")))
    ),
    transpose_rule=lambda node, g: (broadcast_to_axis(g, node.args[0].type, node.attr("axis")),),
    to_sympy=lambda sp, node, a: _sympy_sum(sp, a, node.attr("axis")),
    emit_into=lambda p, node, target, a: (
        None
        if node.attr("axis") is None or node.args[0].type.rank <= 1
        else p.call("np.sum", a, axis=str(node.attr("axis")), out=target)
    ),
    math=notation.kind("sum"),
    emit_batched=lambda p, node, batched, a: _sum_batched(p, node, a),
)


def _sum_batched(p, node: Node, a):
    """Σ over the trailing (per-direction) axes; a scaled identity sums to its scale."""
    rank, axis = node.args[0].type.rank, node.attr("axis")
    if rank == 0:
        return a
    if rank == 2 and axis is not None:
        return p.call("np.sum", a, axis=str(axis + 1))
    if a.diagonal is not None:  # Σⱼ sᵢ δᵢⱼ = sᵢ
        scale = a.diagonal.scale
        if a.diagonal.vector:
            return scale
        return p.call("np.full", p.raw(p.directions(node)), scale)
    return p.call("np.sum", a, axis="-1" if rank == 1 else "(-2, -1)")


def _sympy_sum(sp, a, axis):
    if not _sym_is_matrix(sp, a):
        return a
    if not isinstance(a, sp.MatrixBase):  # matrix form: products with ones
        if axis is None or 1 in a.shape:
            return _sym_sum_of_all(sp, a)
        rows, cols = a.shape
        return (sp.OneMatrix(1, rows) * a).T if axis == 0 else a * sp.OneMatrix(cols, 1)
    if axis is None or 1 in a.shape:
        return sp.Add(*a)
    return sp.Matrix(
        [sp.Add(*(a.col(j) if axis == 0 else a.row(j))) for j in range(a.shape[1 - axis])]
    )


def broadcast_to_axis(g: Node, t: Type, axis: int | None) -> Node:
    """The transpose of ``sum(·, axis)``: spread ``g`` back to type ``t``."""
    if axis is None or t.rank <= 1:
        return broadcast_to(g, t)
    return broadcast(g, type=t, axis=axis)


def _broadcast_infer(g: Type, *, type: Type, axis: int | None) -> Type:
    if axis is not None and (not type.is_matrix or axis not in (0, 1)):
        raise ShapeMismatch(f"cannot spread {{0}} along axis {axis} of {type}")
    want = SCALAR if axis is None else vector(type.dims[1 - axis]) if type.is_matrix else SCALAR
    if g.dims != want.dims:
        raise ShapeMismatch(f"cannot spread {{0}} to {type}")
    return type


def _broadcast_impl(ctx, node, g):
    shape, axis = ctx.shape(node.type), node.attr("axis")
    g = np.asarray(g)
    if axis == 1:
        g = g[:, None]
    return np.array(np.broadcast_to(g, shape))


def _broadcast_emit(p, node, g):
    """A vector spread along an axis is a read-only view (``np.broadcast_to``): what
    reads it (a product, a sum) needs no copy; a returned one is a fresh array."""
    axis, t = node.attr("axis"), node.type
    if axis is None:
        return p.call("np.full", p.raw(p.shape(t)), g)
    spread = p.call(
        "np.broadcast_to", g if axis == 0 else p.postfix(g, "[:, None]"), p.raw(p.shape(t))
    )
    return p.copied(spread) if node in p.returned else spread


def _broadcast_emit_array_api(p, node, g):
    """xp.full takes a Python number only: an array scalar is spread by broadcast_to."""
    arg = node.args[0]
    if node.attr("axis") is not None:
        return _broadcast_emit(p, node, g)  # xp.broadcast_to
    if arg.op.leaf and arg.op.name != "var":  # a literal or a dim: a Python number
        return p.made("full", p.raw(p.shape(node.type)), g)
    return p.call("broadcast_to", g, p.raw(p.shape(node.type)))


# broadcast: spread a scalar to a shape, or a vector along a matrix axis
# (axis = the axis that is replicated);  transpose: sum over that axis.
broadcast = linear(
    "broadcast",
    infer=_broadcast_infer,
    impl=_broadcast_impl,
    emit=_broadcast_emit,
    emit_array_api=_broadcast_emit_array_api,
    transpose_rule=lambda node, g: (unbroadcast_axis(g, node.args[0].type, node.attr("axis")),),
    to_sympy=lambda sp, node, g: _sympy_broadcast(sp, node, g),
    needs_sizes=True,
    math=notation.kind("spread"),
    emit_batched=lambda p, node, batched, g: _broadcast_batched(p, node, g),
)


def _broadcast_batched(p, node: Node, g):
    axis, t = node.attr("axis"), node.type
    if axis is None:  # [k] -> [k, *t]
        lined = p.with_directions(g, 0, t.rank)
        return p.infix("*", lined, p.call("np.ones", p.raw(p.shape(t))))
    if axis == 0:  # [k, n] -> [k, m, n]
        return p.call("np.repeat", p.postfix(g, "[:, None, :]"), p.raw(p.dim(t.dims[0])), axis="1")
    return p.call("np.repeat", p.postfix(g, "[:, :, None]"), p.raw(p.dim(t.dims[1])), axis="2")


def _sympy_broadcast(sp, node, g):
    rows, cols = _sym_shape(sp, node.type)
    axis = node.attr("axis")
    if axis is None:
        return g * sp.OneMatrix(rows, cols)
    if isinstance(g, sp.MatrixBase):
        flat = list(g)
        return sp.Matrix(rows, cols, lambda i, j: flat[j] if axis == 0 else flat[i])
    column = g if g.shape[1] == 1 else g.T
    return sp.OneMatrix(rows, 1) * column.T if axis == 0 else column * sp.OneMatrix(1, cols)


def unbroadcast_axis(g: Node, t: Type, axis: int | None) -> Node:
    """The transpose of `broadcast` along ``axis``: sum ``g`` back to type ``t``."""
    s = reduce_sum(g, axis=axis)
    return s if s.type == t else transpose(s)


def _matmul_infer(a: Type, b: Type) -> Type:
    if a.is_scalar or b.is_scalar:
        raise ShapeMismatch("internal: a product with a scalar is elementwise")
    return product(a, b)


def _is_outer(node: Node) -> bool:
    a, b = node.args
    return a.type.is_vector and b.type.is_vector and not a.type.row


def _matmul_impl(ctx, node, a, b):
    return np.outer(a, b) if _is_outer(node) else a @ b


# An outer product of at least this many entries (or of a size known only at run time)
# is einsum's: NumPy's broadcast multiply, which np.outer and np.multiply.outer run,
# fills a large one at about half einsum's speed (NumPy 2.4: 100×250, 1000×1000),
# while einsum's call costs up to a microsecond more, which a small one (8×15) feels.
# A small one is the ufunc's own np.multiply.outer: np.outer is a Python function
# around the same multiply, half a microsecond slower a call.
OUTER_BY_EINSUM = 2048


def _by_einsum(node: Node) -> bool:
    """An outer product einsum computes faster than np.multiply.outer (`OUTER_BY_EINSUM`)."""
    entries = node.type.entries
    return entries is None or entries >= OUTER_BY_EINSUM


def _matmul_emit(p, node, a, b):
    if not _is_outer(node):
        return p.infix("@", a, b)
    if _by_einsum(node):
        return p.call("np.einsum", p.raw("'i,j->ij'"), a, b)
    return p.call("np.multiply.outer", a, b)


def _matmul_into(p, node, target, a, b):
    if node.type.is_scalar:
        return None  # xᵀy: a number, not an array to write into
    if not _is_outer(node):
        return p.call("np.matmul", a, b, out=target)
    if _by_einsum(node):
        return p.call("np.einsum", p.raw("'i,j->ij'"), a, b, out=target)
    return p.call("np.multiply.outer", a, b, out=target)


def _matmul_emit_array_api(p, node, a, b):
    """The outer product x yᵀ as a broadcast product (the main namespace has no outer)."""
    return p.infix("*", p.postfix(a, "[:, None]"), b) if _is_outer(node) else p.infix("@", a, b)


# matmul: the product of matrix algebra (W x, xᵀ y, x yᵀ, A B).
# ā = ḡ bᵀ, b̄ = aᵀ ḡ (orientation makes every case work).
matmul = bilinear(
    "matmul",
    infer=_matmul_infer,
    impl=_matmul_impl,
    emit=_matmul_emit,
    transposes=lambda node, g: (g @ node.args[1].T, node.args[0].T @ g),
    to_sympy=lambda sp, node, a, b: a * b,  # a scalar result is 1×1: the translator unwraps it
    emit_into=_matmul_into,
    emit_array_api=_matmul_emit_array_api,
    math=notation.kind("product"),
    emit_batched=lambda p, node, batched, a, b: _matmul_batched(p, node, batched, a, b),
)


def _t(p, node: Node, e):
    """``e`` transposed as text; the argument itself for ``Xᵀ`` (no ``X.T.T``), and
    ``e`` itself for ``Xᵀ + X`` (symmetric: read in its own order, not strided)."""
    if node.op.name == "transpose" and node.args[0] in p.exprs:
        return p.exprs[node.args[0]]
    if _symmetric_sum(node):
        return e
    return p.postfix(e, ".T") if node.type.is_matrix else e


def _symmetric_sum(node: Node) -> bool:
    """Whether ``node`` is ``Xᵀ + X`` or ``X + Xᵀ`` (its own transpose)."""
    if node.op.name != "add":
        return False
    a, b = node.args
    return (a.op.name == "transpose" and a.args[0] is b) or (
        b.op.name == "transpose" and b.args[0] is a
    )


def _matmul_batched(p, node: Node, batched, a, b):
    """A product with one batched operand; a scaled identity folds away:
    M (s ∘ I) -> directions sᵢ M[:, i], (s ∘ I) M -> directions sᵢ M[i]."""
    x, y = node.args
    if _is_outer(node):  # directions of a bᵀ: [k, m, n]
        return p.infix("*", p.postfix(a, "[..., :, None]"), p.postfix(b, "[..., None, :]"))
    if batched[1] and y.type.is_vector:  # M yᵢ for each direction
        if b.diagonal is not None:
            columns = _t(p, x, a)  # direction i of M eᵢ is column i of M
            return _scaled_rows(p, b.diagonal, columns, x.type.is_matrix)
        return p.infix("@", b, _t(p, x, a))
    if batched[0] and x.type.is_vector and a.diagonal is not None:  # eᵢᵀ M is row i of M
        return _scaled_rows(p, a.diagonal, b, y.type.is_matrix)
    # A matrix seed (direction (i, j) is Eᵢⱼ, row i·n + j) times a vector:
    # Eᵢⱼ y = yⱼ eᵢ (I ⊗ y), Eᵢⱼᵀ y = yᵢ eⱼ (y ⊗ I), xᵀ Eᵢⱼ = xᵢ eⱼᵀ (x ⊗ I),
    # xᵀ Eᵢⱼᵀ = xⱼ eᵢᵀ (I ⊗ x): Kronecker products, never the (mn)² identity.
    seed, vector = (a, b) if batched[0] else (b, a)
    d = seed.diagonal
    if d is not None and d.shape is not None and (y if batched[0] else x).type.is_vector:
        rows, cols = d.shape
        column = p.postfix(vector, "[:, None]")
        seed_first = batched[0] != d.transposed  # Eᵢⱼ y or xᵀ Eᵢⱼᵀ
        if seed_first:
            return p.call("np.kron", p.call("np.eye", p.raw(rows)), column)
        return p.call("np.kron", column, p.call("np.eye", p.raw(cols)))
    return p.infix("@", a, b)  # NumPy's matmul broadcasts the leading axis


def _scaled_rows(p, d, rows, matrix: bool):
    if d.scale.text == "1.0":
        return rows
    if d.vector and matrix:
        return p.infix("*", p.postfix(d.scale, "[:, None]"), rows)
    return p.infix("*", d.scale, rows)


def _concat_infer(*parts: Type) -> Type:
    if all(p.is_scalar or (p.is_vector and not p.row) for p in parts):
        return vector(sum((p.dims[0] if p.dims else Dim.of(1) for p in parts), Dim.of(0)))
    if all(p.is_matrix or (p.is_vector and p.row) for p in parts):
        width = parts[0].dims[-1]
        for i, p in enumerate(parts):
            if p.dims[-1] != width:
                raise ShapeMismatch(
                    f"cannot stack {{0}} and {{{i}}}: rows of width {width} and {p.dims[-1]}"
                )
        return matrix(
            sum((p.dims[0] if p.is_matrix else Dim.of(1) for p in parts), Dim.of(0)), width
        )
    raise ShapeMismatch(
        "cannot stack {0} and {1}: stack scalars and column vectors into a vector,"
        " or matrices and row vectors into a matrix"
    )


def _concat_vjp(node: Node, g: Node) -> tuple[Node, ...]:
    pieces, start = [], Dim.of(0)
    for part in node.args:
        if part.type.is_scalar or (part.type.is_vector and part.type.row):
            pieces.append(index(g, at=start))
            start = start + 1
        else:
            stop = start + part.type.dims[0]
            pieces.append(take(g, start=start, stop=stop))
            start = stop
    return tuple(pieces)


def _array_api_pieces(p, node, xs, vector_as: str) -> list:
    """The parts of a join as xp.concat wants them, all of one rank: a scalar becomes a
    1-vector (a literal one made in the inputs' dtype), a vector in a matrix takes the
    index `vector_as` (`[None, :]` a row, `[:, None]` a column)."""
    pieces = []
    for arg, x in zip(node.args, xs):
        if arg.type.is_scalar:
            pieces.append(
                p.fill(arg.attr("value"), vector(1))
                if arg.op.constant
                else p.call("reshape", x, p.raw("(1,)"))
            )
        elif arg.type.is_vector and node.type.is_matrix:
            pieces.append(p.postfix(x, vector_as))
        else:
            pieces.append(x)
    return pieces


def _concat_emit_array_api(p, node, *xs):
    """xp.concat along the first axis; a vector part is one row."""
    return p.call("concat", p.list(_array_api_pieces(p, node, xs, "[None, :]")), axis="0")


# concat: [a; b; c], vertical concatenation;  transpose: the slices.
concat = linear(
    "concat",
    infer=_concat_infer,
    impl=lambda ctx, node, *xs: np.hstack(xs) if node.type.is_vector else np.vstack(xs),
    emit=lambda p, node, *xs: p.call(
        "np.hstack" if node.type.is_vector else "np.vstack", p.list(xs)
    ),
    transpose_rule=_concat_vjp,
    to_sympy=lambda sp, node, *xs: _sympy_concat(sp, xs),
    emit_array_api=_concat_emit_array_api,
    arity=None,
    math=notation.kind("stack"),
    emit_batched=lambda p, node, batched, *xs: _concat_batched(p, node, batched, xs),
)


def _concat_batched(p, node: Node, batched, xs):
    """Stack along the last per-direction axis but one; an unbatched part (a zero
    tangent) is spread over the directions."""
    vector = node.type.is_vector
    parts = []
    for x, part, is_batched in zip(xs, node.args, batched):
        t = part.type
        block = [p.dim(d) for d in t.dims]  # the part as a block of the result
        if vector and t.is_scalar or not vector and t.is_vector:
            block.insert(0, "1")
        if is_batched:
            parts.append(p.with_directions(x, t.rank, len(block)) if t.rank < len(block) else x)
        else:
            shape = ", ".join([p.directions(node), *block])
            parts.append(p.call("np.broadcast_to", x, p.raw(f"({shape})")))
    return p.call("np.concatenate", p.list(parts), axis="-1" if vector else "-2")


def _sympy_concat(sp, xs):
    if all(isinstance(x, sp.MatrixBase) or not _sym_is_matrix(sp, x) for x in xs):
        return sp.Matrix.vstack(*(x if _sym_is_matrix(sp, x) else sp.Matrix([[x]]) for x in xs))
    if any(not _sym_is_matrix(sp, x) for x in xs):
        raise NotImplementedError("stacking scalars has no matrix form in SymPy")
    return sp.BlockMatrix([[x] for x in xs])


def _hconcat_infer(*parts: Type) -> Type:
    if all(p.is_scalar or (p.is_vector and p.row) for p in parts):
        return vector(sum((p.dims[0] if p.dims else Dim.of(1) for p in parts), Dim.of(0)), row=True)
    if all(p.is_matrix or (p.is_vector and not p.row) for p in parts):
        height = parts[0].dims[0]
        for i, p in enumerate(parts):
            if p.dims[0] != height:
                raise ShapeMismatch(
                    f"cannot join {{0}} and {{{i}}} side by side: columns of height {height}"
                    f" and {p.dims[0]}"
                )
        return matrix(
            height, sum((p.dims[1] if p.is_matrix else Dim.of(1) for p in parts), Dim.of(0))
        )
    raise ShapeMismatch(
        "cannot join {0} and {1} side by side: join scalars and row vectors into a row vector,"
        " or matrices and column vectors into a matrix"
    )


def _hconcat_vjp(node: Node, g: Node) -> tuple[Node, ...]:
    pieces, start = [], Dim.of(0)
    row = node.type.is_vector
    for part in node.args:
        t = part.type
        if row:
            width = Dim.of(1) if t.is_scalar else t.dims[0]
        else:
            width = t.dims[1] if t.is_matrix else Dim.of(1)
        stop = start + width
        if row:  # the entries of a row vector: its transpose's rows
            gt = transpose(g)
            piece = (
                index(gt, at=start)
                if part.type.is_scalar
                else transpose(take(gt, start=start, stop=stop))
            )
        elif part.type.is_vector:
            piece = index_col(g, at=start)
        else:
            piece = take_cols(g, start=start, stop=stop)
        pieces.append(piece)
        start = stop
    return tuple(pieces)


def _hconcat_emit(p, node: Node, *xs):
    if node.type.is_vector or all(a.type.is_matrix for a in node.args):
        return p.call("np.hstack", p.list(xs))
    return p.call("np.column_stack", p.list(xs))  # a 1-D part is one column


def _hconcat_array_api(p, node: Node, *xs):
    """xp.concat along the last axis; a vector part is one column."""
    return p.call("concat", p.list(_array_api_pieces(p, node, xs, "[:, None]")), axis="-1")


def _hconcat_batched(p, node: Node, batched, xs):
    """Joined along the last axis; a column part gets its axis of one, an unbatched
    part (a zero tangent) is spread over the directions."""
    row, parts = node.type.is_vector, []
    for x, part, is_batched in zip(xs, node.args, batched):
        t = part.type
        block = [p.dim(d) for d in t.dims] + (
            ["1"] if (t.is_vector and not row) or t.is_scalar else []
        )
        if is_batched:
            parts.append(p.postfix(x, "[..., None]") if len(block) > t.rank else x)
        else:
            shape = ", ".join([p.directions(node), *block])
            lined = p.postfix(x, "[..., None]") if len(block) > t.rank else x
            parts.append(p.call("np.broadcast_to", lined, p.raw(f"({shape})")))
    return p.call("np.concatenate", p.list(parts), axis="-1")


def _sympy_hconcat(sp, xs):
    if all(isinstance(x, sp.MatrixBase) or not _sym_is_matrix(sp, x) for x in xs):
        return sp.Matrix.hstack(*(x if _sym_is_matrix(sp, x) else sp.Matrix([[x]]) for x in xs))
    if any(not _sym_is_matrix(sp, x) for x in xs):
        raise NotImplementedError("joining scalars has no matrix form in SymPy")
    return sp.BlockMatrix([list(xs)])


# hconcat: [a, b, c], block columns (horizontal concatenation);  transpose: the column slices.
hconcat = linear(
    "hconcat",
    infer=_hconcat_infer,
    impl=lambda ctx, node, *xs: np.hstack(xs) if node.type.is_vector else np.column_stack(xs),
    emit=_hconcat_emit,
    emit_array_api=_hconcat_array_api,
    transpose_rule=_hconcat_vjp,
    to_sympy=lambda sp, node, *xs: _sympy_hconcat(sp, xs),
    arity=None,
    math=notation.kind("columns"),
    emit_batched=lambda p, node, batched, *xs: _hconcat_batched(p, node, batched, xs),
)


def _check_cols(a: Type, *bounds: Dim) -> None:
    """Column slices take columns of a matrix, within its columns when known."""
    if not a.is_matrix:
        raise ShapeMismatch("cannot take columns of {0}: it needs a matrix")
    n = a.dims[1].value
    values = [b.value for b in bounds]
    if n is not None and None not in values and not (0 <= min(values) and max(values) <= n):
        raise ShapeMismatch(f"columns {', '.join(map(str, values))} are out of range for {{0}}")


def _take_cols_infer(a: Type, *, start: Dim, stop: Dim) -> Type:
    _check_cols(a, start, stop)
    if start.value is not None and stop.value is not None and start.value > stop.value:
        raise ShapeMismatch(f"cannot take columns {start}..{stop} of {{0}}")
    return matrix(a.dims[0], stop - start)


def _index_col_infer(a: Type, *, at: Dim) -> Type:
    _check_cols(a, at, at + 1)
    return vector(a.dims[0])


def _pad_cols(g: Node, before: Dim, t: Type) -> Node:
    """Zero columns around ``g`` (a matrix, or a column vector as one column) in a ``t``."""
    height, width = t.dims
    after = width - before - (g.type.dims[1] if g.type.is_matrix else 1)
    pieces = [zeros(matrix(height, before))] if before != 0 else []
    pieces.append(g)
    pieces += [zeros(matrix(height, after))] if after != 0 else []
    return pieces[0] if len(pieces) == 1 and g.type.is_matrix else hconcat(*pieces)


# take_cols: columns start..stop of a matrix, A[:, i:j];  transpose: zero columns around.
take_cols = linear(
    "take_cols",
    infer=_take_cols_infer,
    impl=lambda ctx, node, a: a[:, ctx.dim(node.attr("start")) : ctx.dim(node.attr("stop"))],
    emit=lambda p, node, a: p.postfix(
        a, f"[:, {p.dim(node.attr('start'))}:{p.dim(node.attr('stop'))}]"
    ),
    emit_batched=lambda p, node, batched, a: p.postfix(
        a, f"[..., {p.dim(node.attr('start'))}:{p.dim(node.attr('stop'))}]"
    ),
    transpose_rule=lambda node, g: (_pad_cols(g, node.attr("start"), node.args[0].type),),
    to_sympy=lambda sp, node, a: a[
        :, _sym_dim(sp, node.attr("start")) : _sym_dim(sp, node.attr("stop"))
    ],
    needs_sizes=True,
    math=notation.kind("cols"),
)

# index_col: column j of a matrix, A[:, j], a column vector;  transpose: zero columns around.
index_col = linear(
    "index_col",
    infer=_index_col_infer,
    impl=lambda ctx, node, a: a[:, ctx.dim(node.attr("at"))],
    emit=lambda p, node, a: p.postfix(a, f"[:, {p.dim(node.attr('at'))}]"),
    emit_batched=lambda p, node, batched, a: p.postfix(a, f"[..., {p.dim(node.attr('at'))}]"),
    transpose_rule=lambda node, g: (_pad_cols(g, node.attr("at"), node.args[0].type),),
    to_sympy=lambda sp, node, a: a[:, _sym_dim(sp, node.attr("at"))],
    needs_sizes=True,
    math=notation.kind("cols"),
)


def _pad(g: Node, before: Dim, total_rows: Dim, t: Type) -> Node:
    """Zeros around ``g`` so that it sits at row ``before`` of a ``t``."""
    after = total_rows - before - (g.type.dims[0] if g.type.dims and not g.type.row else 1)
    if t.is_vector:
        pieces = [zeros(vector(before))] if before != 0 else []
        pieces.append(g)
        pieces += [zeros(vector(after))] if after != 0 else []
    else:
        width = t.dims[1]
        pieces = [zeros(matrix(before, width))] if before != 0 else []
        pieces.append(g)
        pieces += [zeros(matrix(after, width))] if after != 0 else []
    return pieces[0] if len(pieces) == 1 else concat(*pieces)


def _check_rows(a: Type, *bounds: Dim) -> None:
    """Slicing takes rows of a column vector or a matrix, within its rows when known."""
    if a.is_scalar or a.row:
        raise ShapeMismatch("cannot take rows of {0}: it needs a column vector or a matrix")
    n = a.dims[0].value
    values = [b.value for b in bounds]
    if n is not None and None not in values and not (0 <= min(values) and max(values) <= n):
        raise ShapeMismatch(f"rows {', '.join(map(str, values))} are out of range for {{0}}")


def _take_infer(a: Type, *, start: Dim, stop: Dim) -> Type:
    _check_rows(a, start, stop)
    if start.value is not None and stop.value is not None and start.value > stop.value:
        raise ShapeMismatch(f"cannot take rows {start}..{stop} of {{0}}")
    return vector(stop - start) if a.is_vector else matrix(stop - start, a.dims[1])


def _index_infer(a: Type, *, at: Dim) -> Type:
    _check_rows(a, at, at + 1)
    return SCALAR if a.is_vector else vector(a.dims[1], row=True)


# take: rows start..stop of a vector or matrix;  transpose: zero padding.
take = linear(
    "take",
    infer=_take_infer,
    impl=lambda ctx, node, a: a[ctx.dim(node.attr("start")) : ctx.dim(node.attr("stop"))],
    emit=lambda p, node, a: p.postfix(
        a, f"[{p.dim(node.attr('start'))}:{p.dim(node.attr('stop'))}]"
    ),
    # The standard indexes every axis of a matrix: rows[start:stop, :].
    emit_array_api=lambda p, node, a: p.postfix(
        a,
        f"[{p.dim(node.attr('start'))}:{p.dim(node.attr('stop'))}"
        f"{', :' if node.args[0].type.is_matrix else ''}]",
    ),
    emit_batched=lambda p, node, batched, a: p.postfix(
        a, f"[:, {p.dim(node.attr('start'))}:{p.dim(node.attr('stop'))}]"
    ),
    transpose_rule=lambda node, g: (
        _pad(g, node.attr("start"), node.args[0].type.dims[0], node.args[0].type),
    ),
    to_sympy=lambda sp, node, a: a[
        _sym_dim(sp, node.attr("start")) : _sym_dim(sp, node.attr("stop")), :
    ],
    needs_sizes=True,
    math=notation.kind("rows"),
)

# index: element i of a vector, or row i of a matrix (a row vector).
index = linear(
    "index",
    infer=_index_infer,
    impl=lambda ctx, node, a: a[ctx.dim(node.attr("at"))],
    emit=lambda p, node, a: p.postfix(a, f"[{p.dim(node.attr('at'))}]"),
    emit_array_api=lambda p, node, a: p.postfix(
        a, f"[{p.dim(node.attr('at'))}{', :' if node.args[0].type.is_matrix else ''}]"
    ),
    emit_batched=lambda p, node, batched, a: p.postfix(a, f"[:, {p.dim(node.attr('at'))}]"),
    transpose_rule=lambda node, g: (
        _pad(g, node.attr("at"), node.args[0].type.dims[0], node.args[0].type),
    ),
    to_sympy=lambda sp, node, a: (
        a[_sym_dim(sp, node.attr("at")), 0]
        if node.args[0].type.is_vector
        else a[_sym_dim(sp, node.attr("at")), :]
    ),
    needs_sizes=True,
    math=notation.kind("rows"),
)


# ---- selection by integer data: gathers and their scatter-adds -----------------------


def _gather_infer(a: Type, ids: Type) -> Type:
    if a.is_scalar or a.row:
        raise ShapeMismatch(
            "cannot select rows of {0} by {1}: it needs a column vector or a matrix"
        )
    if ids.rank > 1:
        raise ShapeMismatch("cannot select rows of {0} by {1}: the ids are a vector or one id")
    rest = a.dims[1:]
    if ids.is_scalar:
        return vector(rest[0]) if rest else SCALAR  # E[i]: one word vector, a column
    return matrix(ids.dims[0], rest[0]) if rest else vector(ids.dims[0])


def _scatter_infer(g: Type, ids: Type, *, rows: Dim) -> Type:
    if ids.rank > 1 or (ids.is_vector and (g.is_scalar or g.dims[0] != ids.dims[0])):
        raise ShapeMismatch("cannot scatter {0} by the ids {1}: one row of it per id")
    if g.row:
        raise ShapeMismatch("cannot scatter {0}: it needs a column vector, a matrix or a scalar")
    rest = g.dims[1:] if ids.is_vector else g.dims
    if len(rest) > 1:
        raise ShapeMismatch("cannot scatter {0} by one id: it needs a vector or a scalar")
    return matrix(rows, rest[0]) if rest else vector(rows)


def _scatter_impl(ctx, node, g, ids):
    out = np.zeros(ctx.shape(node.type))
    np.add.at(out, np.asarray(ids, dtype=np.intp), g)  # repeated ids accumulate
    return out


def _scatter_emit(p, node, g, ids):
    """np.add.at(zeros, ids, g) as one expression: a bincount, which adds the weights
    that share a position (repeated ids accumulate) and is the faster of the two
    (benchmarks/scatter_add.py).  Rows of a matrix are counted at flat positions
    id·width + column."""
    rows = p.dim(node.attr("rows"))
    one_id = node.args[1].type.is_scalar
    if node.type.is_vector:
        if one_id:
            ids, g = p.list([ids]), p.list([g])
        return p.call("np.bincount", ids, weights=g.text, minlength=rows)
    width = p.dim(node.type.dims[1])
    flat = p.infix(
        "+",
        p.infix("*", p.postfix(ids, "[..., None]" if one_id else "[:, None]"), p.raw(width)),
        p.call("np.arange", p.raw(width)),
    )
    counted = p.call(
        "np.bincount",
        p.call(p.postfix(flat, ".ravel").text),
        weights=p.call(p.postfix(g, ".ravel").text).text,
        minlength=p.infix("*", p.raw(rows), p.raw(width)).text,
    )
    return p.call(p.postfix(counted, ".reshape").text, p.raw(rows), p.raw(width))


def _scatter_dtype(emit: Callable) -> Callable:
    """A bincount counts in float64: cast back to the inputs' dtype (float32 stays float32)."""
    return lambda p, node, g, ids: p.call(
        p.postfix(emit(p, node, g, ids), ".astype").text, p.raw(p.dtype()), copy="False"
    )


def _scatter_array_api(p, node, g, ids):
    """The standard has no scatter-add: the one-hot matrix of the ids, transposed, times ḡ
    (n·V·d work where a bincount does n·d; docs/backends.md)."""
    rows = p.dim(node.attr("rows"))
    grad, by = node.args
    arange = p.call("np.arange", p.raw(rows), device=p.device())
    if by.type.is_scalar:  # one id: eᵢ ḡ or eᵢ ḡᵀ
        hit = p.mask(p.infix("==", arange, ids))
        if grad.type.is_scalar:
            return p.infix("*", hit, g)
        return p.infix("*", p.postfix(hit, "[:, None]"), p.postfix(g, "[None, :]"))
    onehot = p.mask(p.infix("==", p.postfix(ids, "[:, None]"), arange))  # [n×V]
    if grad.type.is_vector:
        return p.call("np.matmul", g, onehot)
    return p.call("np.matmul", p.call("np.matrix_transpose", onehot), g)


# gather: E[ids], rows of E (entries of a vector) picked by integer data;
# E̅ = the scatter-add of ḡ at the ids (repeated ids accumulate).
gather = define(
    Op(
        "gather",
        infer=_gather_infer,
        impl=lambda ctx, node, a, ids: a[np.asarray(ids, dtype=np.intp)],
        emit=lambda p, node, a, ids: p.postfix(a, f"[{ids.text}]"),
        # the standard's take; one id (a 0-d array indexes nothing there) as a 1-vector
        emit_array_api=lambda p, node, a, ids: (
            p.call("np.take", a, ids, axis="0")
            if node.args[1].type.is_vector
            else p.postfix(
                p.call("np.take", a, p.call("reshape", ids, p.raw("(1,)")), axis="0"),
                "[0, :]" if node.args[0].type.is_matrix else "[0]",
            )
        ),
        jvp=lambda node, t, t_ids: None if t is None else gather(t, node.args[1]),
        vjp=lambda node, g: (
            scatter_add(g, node.args[1], rows=node.args[0].type.dims[0]),
            None,
        ),
        arity=2,
        math=notation.kind("select"),
        # linear in E: each direction's rows, picked along the axis after the directions
        emit_batched=lambda p, node, batched, a, ids: p.postfix(a, f"[:, {ids.text}]"),
    ),
    index_operands=(1,),
)

# scatter_add: the transpose of gather: zeros of ``rows`` rows, ḡ's rows added at the ids.
scatter_add = define(
    Op(
        "scatter_add",
        infer=_scatter_infer,
        impl=_scatter_impl,
        emit=_scatter_dtype(_scatter_emit),
        emit_array_api=_scatter_array_api,
        jvp=lambda node, t, t_ids: (
            None if t is None else scatter_add(t, node.args[1], rows=node.attr("rows"))
        ),
        vjp=lambda node, g: (gather(g, node.args[1]), None),
        arity=2,
        needs_sizes=True,
        math=notation.Notation("scatter", "onehot", r"\mathrm{onehot}"),
        emit_batched=lambda p, node, batched, g, ids: _scatter_batched(p, node, g, ids),
    ),
    index_operands=(1,),
)


def _scatter_batched(p, node: Node, g, ids):
    """Each direction's scatter-add at once: the one-hot matrix of the ids, transposed,
    times every direction (a bincount has no axis of directions)."""
    rows = p.dim(node.attr("rows"))
    grad, by = node.args
    if by.type.is_scalar:  # one id: eᵢ gᵀ for each direction
        hit = p.infix("==", p.call("np.arange", p.raw(rows)), ids)
        if grad.type.is_scalar:
            return p.infix("*", hit, p.postfix(g, "[:, None]"))
        return p.infix("*", p.postfix(hit, "[:, None]"), p.postfix(g, "[:, None, :]"))
    onehot = p.infix("==", p.postfix(ids, "[:, None]"), p.call("np.arange", p.raw(rows)))
    if grad.type.is_vector:  # [k, n] @ [n, V]
        return p.infix("@", g, p.call(p.postfix(onehot, ".astype").text, p.raw("float")))
    return p.infix("@", p.call(p.postfix(onehot, ".T.astype").text, p.raw("float")), g)


def _pick_infer(z: Type, ids: Type) -> Type:
    if not z.is_matrix or not ids.is_vector or ids.dims[0] != z.dims[0]:
        raise ShapeMismatch(
            "pick takes a matrix [N×K] and one integer id per row [N]: not {0} and {1}"
        )
    return vector(z.dims[0])


def _unpick_infer(g: Type, ids: Type, *, cols: Dim) -> Type:
    if not g.is_vector or g.row or not ids.is_vector or ids.dims[0] != g.dims[0]:
        raise ShapeMismatch("cannot spread {0} by the ids {1}: one entry per id")
    return matrix(g.dims[0], cols)


def _one_hot(p, ids, cols: Dim):
    return p.infix("==", p.call("np.arange", p.raw(p.dim(cols))), p.postfix(ids, "[:, None]"))


def _one_hot_array_api(p, ids, cols: Dim):
    """The one-hot rows of the ids, in the inputs' dtype (the standard multiplies no bools)."""
    arange = p.call("np.arange", p.raw(p.dim(cols)), device=p.device())
    return p.mask(p.infix("==", arange, p.postfix(ids, "[:, None]")))


# pick: pick(Z, y) = [Z[i, yᵢ]]ᵢ, one entry per row (the true class's logit);
# Z̄ = ḡ put at (i, yᵢ), zeros elsewhere.
pick = define(
    Op(
        "pick",
        infer=_pick_infer,
        impl=lambda ctx, node, z, ids: z[
            np.arange(ctx.dim(node.type.dims[0])), np.asarray(ids, dtype=np.intp)
        ],
        emit=lambda p, node, z, ids: p.postfix(
            z, f"[np.arange({p.dim(node.type.dims[0])}), {ids.text}]"
        ),
        # the standard indexes one axis by an array: the one-hot rows pick the entries
        emit_array_api=lambda p, node, z, ids: p.call(
            "np.sum",
            p.infix("*", z, _one_hot_array_api(p, ids, node.args[0].type.dims[1])),
            axis="1",
        ),
        jvp=lambda node, t, t_ids: None if t is None else pick(t, node.args[1]),
        vjp=lambda node, g: (unpick(g, node.args[1], cols=node.args[0].type.dims[1]), None),
        arity=2,
        needs_sizes=True,
        math=notation.function("pick"),
        emit_batched=lambda p, node, batched, z, ids: p.postfix(
            z, f"[:, np.arange({p.dim(node.type.dims[0])}), {ids.text}]"
        ),
    ),
    index_operands=(1,),
)


def _unpick_scale(p, g: Node, text):
    """What scales each one-hot row: gᵢ as a column, or the one number every gᵢ is."""
    if g.op.name == "fill":
        return p.literal(g.attr("value"))
    spread = getattr(p, "exprs", {}).get(g.args[0]) if g.op.name == "broadcast" else None
    if spread is not None and g.args[0].type.is_scalar:
        return spread
    return p.postfix(text, "[:, None]")


def _unpick_impl(ctx, node, g, ids):
    out = np.zeros(ctx.shape(node.type))
    out[np.arange(out.shape[0]), np.asarray(ids, dtype=np.intp)] = g
    return out


# unpick: the transpose of pick: an [N×K] matrix with gᵢ at (i, yᵢ), zeros elsewhere.
unpick = define(
    Op(
        "unpick",
        infer=_unpick_infer,
        impl=_unpick_impl,
        emit=lambda p, node, g, ids: p.infix(  # the mask in the inputs' dtype: ∘ 1/N keeps it
            "*", p.mask(_one_hot(p, ids, node.attr("cols"))), _unpick_scale(p, node.args[0], g)
        ),
        emit_array_api=lambda p, node, g, ids: p.infix(
            "*", _one_hot_array_api(p, ids, node.attr("cols")), _unpick_scale(p, node.args[0], g)
        ),
        jvp=lambda node, t, t_ids: (
            None if t is None else unpick(t, node.args[1], cols=node.attr("cols"))
        ),
        vjp=lambda node, g: (pick(g, node.args[1]), None),
        arity=2,
        needs_sizes=True,
        math=notation.Notation("unpick", "onehot", r"\mathrm{onehot}"),
        emit_batched=lambda p, node, batched, g, ids: p.infix(
            "*", _one_hot(p, ids, node.attr("cols")), p.postfix(g, "[..., None]")
        ),
    ),
    index_operands=(1,),
)


def _square(a: Type, what: str) -> None:
    if not a.is_matrix or a.dims[0] != a.dims[1]:
        raise ShapeMismatch(f"{what} needs a square matrix, not {{0}}")


def _diag_infer(a: Type) -> Type:
    if a.is_vector:
        return matrix(a.dims[0], a.dims[0])
    raise ShapeMismatch("diag needs a vector or a square matrix, not {0}")


def _diagpart_infer(a: Type) -> Type:
    _square(a, "diag")
    return vector(a.dims[0])


# diag: vector -> diagonal matrix;  transpose: the diagonal of ḡ.
diag = linear(
    "diag",
    infer=_diag_infer,
    impl=lambda ctx, node, v: np.diag(v),
    emit=call("np.diag"),
    # The standard makes no diagonal matrix: v spread along the rows of the identity.
    emit_array_api=lambda p, node, v: p.infix(
        "*", p.postfix(v, "[:, None]"), p.made("eye", p.raw(p.dim(node.type.dims[0])))
    ),
    emit_batched=lambda p, node, batched, v: p.infix(
        "*", p.postfix(v, "[:, :, None]"), p.call("np.eye", p.raw(p.dim(node.type.dims[0])))
    ),
    transpose_rule=lambda node, g: (_transpose_orient(diagpart(g), node.args[0].type),),
    to_sympy=lambda sp, node, v: sp.diag(*v) if isinstance(v, sp.MatrixBase) else sp.DiagMatrix(v),
    math=notation.function("diag"),
)

# diagpart: square matrix -> its diagonal;  transpose: diag(ḡ).
diagpart = linear(
    "diagpart",
    infer=_diagpart_infer,
    impl=lambda ctx, node, a: np.diag(a).copy(),
    emit=call("np.diag"),
    emit_array_api=lambda p, node, a: _diagonal_array_api(p, node.args[0].type, a),
    emit_batched=lambda p, node, batched, a: p.call("np.diagonal", a, axis1="-2", axis2="-1"),
    transpose_rule=lambda node, g: (diag(_transpose_orient(g, vector(1))),),
    to_sympy=lambda sp, node, a: (
        sp.Matrix([a[i, i] for i in range(a.shape[0])])
        if isinstance(a, sp.MatrixBase)
        else sp.DiagonalOf(a)
    ),
    math=notation.function("diag"),
)


def _diagonal_array_api(p, t: Type, a):
    """The diagonal of an n×n matrix, core functions only: every (n+1)-th entry, flattened."""
    flat = p.call("reshape", a, p.raw("(-1,)"))
    return p.postfix(flat, f"[:: {p.dim(t.dims[0])} + 1]")


def _transpose_orient(v: Node, like: Type) -> Node:
    return v if v.type.row == like.row else transpose(v)


def _trace_infer(a: Type) -> Type:
    _square(a, "tr")
    return SCALAR


# trace: tr(A);  transpose: ḡ I.
trace = linear(
    "trace",
    infer=_trace_infer,
    impl=lambda ctx, node, a: np.trace(a),
    emit=call("np.trace"),
    emit_array_api=lambda p, node, a: p.call("sum", _diagonal_array_api(p, node.args[0].type, a)),
    emit_batched=lambda p, node, batched, a: p.call("np.trace", a, axis1="-2", axis2="-1"),
    transpose_rule=lambda node, g: (g * eye(dim=node.args[0].type.dims[0]),),
    to_sympy=lambda sp, node, a: a.trace() if isinstance(a, sp.MatrixBase) else sp.Trace(a),
    math=notation.function("tr"),
)


def _scale_rows_infer(v: Type, m: Type) -> Type:
    if not v.is_vector or not m.is_matrix or v.dims[0] != m.dims[0]:
        raise ShapeMismatch("cannot scale the rows of {1} by {0}")
    return m


# scale_rows: diag(v) M without the diagonal matrix: v[:, None] * M.
# v̄ = rowsum(ḡ ∘ M), M̄ = diag(v) ḡ.
scale_rows = bilinear(
    "scale_rows",
    infer=_scale_rows_infer,
    impl=lambda ctx, node, v, m: v[:, None] * m,
    emit=lambda p, node, v, m: p.infix("*", p.postfix(v, "[:, None]"), m),
    transposes=lambda node, g: (
        _transpose_orient(reduce_sum(g * node.args[1], axis=1), node.args[0].type),
        scale_rows(node.args[0], g),
    ),
    to_sympy=lambda sp, node, v, m: (
        sp.diag(*v) * m if isinstance(v, sp.MatrixBase) else sp.DiagMatrix(v) * m
    ),
    math=notation.kind("hadamard"),  # diag(v) M is written v ∘ M, as it is computed
    emit_batched=lambda p, node, batched, v, m: p.infix("*", p.postfix(v, "[..., :, None]"), m),
)

# =============================================================================
# Elementwise operators (NumPy broadcasting of a vector along a matrix's rows)
# =============================================================================

add = elementwise(
    "add",
    lambda a, b: a + b,
    infix("+"),
    lambda a, b, out: (ONE, ONE),
    to_sympy=_sym_elementwise(
        lambda sp, a, b: a + b,
        lambda sp, node, a, b: _sym_spread(sp, node, a) + _sym_spread(sp, node, b),
    ),
    commutative=True,
    verb="add",
    emit_into=into("np.add"),
    math=notation.infix("+", "+"),
)

sub = elementwise(
    "sub",
    lambda a, b: a - b,
    infix("-"),
    lambda a, b, out: (ONE, MINUS_ONE),
    to_sympy=_sym_elementwise(
        lambda sp, a, b: a - b,
        lambda sp, node, a, b: _sym_spread(sp, node, a) - _sym_spread(sp, node, b),
    ),
    verb="subtract",
    emit_into=into("np.subtract"),
    math=notation.infix("−", "-"),
)

mul = elementwise(
    "mul",
    lambda a, b: a * b,
    infix("*"),
    lambda a, b, out: (b, a),
    to_sympy=_sym_elementwise(lambda sp, a, b: a * b, _sym_hadamard),
    commutative=True,
    bilinear=True,
    verb="multiply",
    emit_into=into("np.multiply"),
    math=notation.kind("hadamard"),
)


div = elementwise(
    "div",
    lambda a, b: a / b,
    infix("/"),
    lambda a, b, out: (ONE / b, -(out / b)),
    to_sympy=_sym_elementwise(lambda sp, a, b: a / b, _sym_quotient),
    verb="divide",
    emit_into=into("np.divide"),
    math=notation.kind("fraction"),
)

# pow: a^b with both varying;  powc (below) when the exponent is a literal.
pow_ = elementwise(
    "pow",
    lambda a, b: a**b,
    infix("**"),
    lambda a, b, out: (b * a ** (b - ONE), log(a) * out),
    to_sympy=_sym_elementwise(lambda sp, a, b: a**b, _sym_power),
    verb="raise",
    math=notation.kind("power"),
)


def _powc_partials(x: Node, out: Node) -> tuple[Node]:
    p = out.attr("p")
    return (const(p) * powc(x, p=p - 1.0),)


def _powc_impl(x, p):
    return x * x if p == 2.0 else x**p


powc = define(
    Op(
        "powc",
        infer=lambda a, *, p: a,
        impl=lambda ctx, node, x: _powc_impl(x, node.attr("p")),
        emit=lambda p, node, x: p.infix("**", x, p.literal(node.attr("p"), integral=True)),
        jvp=lambda node, t: None if t is None else t * _powc_partials(node.args[0], node)[0],
        vjp=lambda node, g: (g * _powc_partials(node.args[0], node)[0],),
        to_sympy=lambda sp, node, x: _sym_elementwise(lambda sp, a, b: a**b, _sym_power)(
            sp, node, x, _sym_number(sp, node.attr("p"))
        ),
        elementwise=True,
        math=notation.kind("power"),
    )
)


exp = elementwise("exp", np.exp, call("np.exp"), lambda x, y: (y,), _sym("exp"))
log = elementwise("log", np.log, call("np.log"), lambda x, y: (ONE / x,), _sym("log"))
sqrt = elementwise(
    "sqrt",
    np.sqrt,
    call("np.sqrt"),
    lambda x, y: (const(0.5) / y,),
    _sym("sqrt"),
    math=notation.kind("root"),
)
sin = elementwise("sin", np.sin, call("np.sin"), lambda x, y: (cos(x),), _sym("sin"))
cos = elementwise("cos", np.cos, call("np.cos"), lambda x, y: (-sin(x),), _sym("cos"))
tanh = elementwise("tanh", np.tanh, call("np.tanh"), lambda x, y: (ONE - y * y,), _sym("tanh"))


# σ(x) = exp(−log(1 + e^−x)): no overflow for any x, full relative accuracy.
def _sigmoid(x):
    if np.ndim(x) == 0:  # as the NumPy module computes a scalar (_sigmoid_emit)
        return 1.0 / (1.0 + np.exp(-x)) if x >= 0.0 else np.exp(x) / (1.0 + np.exp(x))
    return np.exp(-np.logaddexp(0.0, -x))


def _sigmoid_everywhere(p, node, x):
    """exp(−log(1 + e⁻ˣ)): no overflow for any x, entry by entry."""
    return p.call("np.exp", p.prefix("-", p.call("np.logaddexp", p.literal(0.0), p.prefix("-", x))))


def _sigmoid_emit(p, node, x):
    """σ of a NumPy scalar branches as a careful hand does: 1 / (1 + e⁻ˣ) for x ≥ 0,
    eˣ / (1 + eˣ) below, neither of which overflows on its side.  On a scalar that is
    one unary ufunc and scalar arithmetic, where logaddexp is a binary ufunc (NumPy 2.4
    calls a unary ufunc on a scalar several times faster than a binary one).  Its
    operand is read from a name (`Op.repeats`).  Arrays, and a batched scalar (an
    array of directions), take the form that works entry by entry."""
    if not node.type.is_scalar or node in p.batch or not x.text.isidentifier():
        return _sigmoid_everywhere(p, node, x)
    one = p.literal(1.0)
    positive = p.infix("/", one, p.infix("+", one, p.call("np.exp", p.prefix("-", x))))
    e = p.call("np.exp", x)
    negative = p.infix("/", e, p.infix("+", one, e))
    return p.conditional(p.infix(">=", x, p.literal(0.0)), positive, negative)


sigmoid = elementwise(
    "sigmoid",
    _sigmoid,
    _sigmoid_emit,
    lambda x, y: (y * (ONE - y),),
    to_sympy=_sym_function(lambda sp, e: 1 / (1 + sp.exp(-e))),
    math=notation.function("σ", r"\sigma"),
    emit_array_api=_sigmoid_everywhere,  # a branch would ask a lazy array for its value
    repeats=lambda node: node.type.is_scalar,
)

# softplus(x) = log(1 + eˣ), overflow-free through logaddexp.
softplus = elementwise(
    "softplus",
    lambda x: np.logaddexp(0.0, x),
    lambda p, node, x: p.call("np.logaddexp", p.literal(0.0), x),
    lambda x, y: (sigmoid(x),),
    to_sympy=_sym_function(lambda sp, e: sp.log(1 + sp.exp(e))),
)


# Piecewise-constant operators: their derivative is zero, so no rules.
sign = elementwise("sign", np.sign, call("np.sign"), None, _sym("sign"))
greater = elementwise(
    "greater",
    lambda a, b: np.where(a > b, 1.0, 0.0),
    lambda p, node, a, b: p.mask(p.infix(">", a, b)),  # (a > b).astype(dtype): no upcast
    None,
    to_sympy=_sym_elementwise(lambda sp, a, b: sp.Piecewise((1, a > b), (0, True))),
    math=notation.comparison(">", ">"),
)
greater_equal = elementwise(
    "greater_equal",
    lambda a, b: np.where(a >= b, 1.0, 0.0),
    lambda p, node, a, b: p.mask(p.infix(">=", a, b)),
    None,
    to_sympy=_sym_elementwise(lambda sp, a, b: sp.Piecewise((1, a >= b), (0, True))),
    math=notation.comparison("≥", r"\geq"),
)

# Subgradients at kinks: relu'(0) = 0, abs'(0) = 0; max and min route the
# derivative to the winning argument, the first one on ties.
relu = elementwise(
    "relu",
    lambda x: np.maximum(x, 0.0),
    lambda p, node, x: p.call("np.maximum", x, p.literal(0.0)),
    lambda x, y: (greater(x, const(0.0)),),
    to_sympy=_sym_elementwise(lambda sp, x: sp.Max(x, 0)),
)
abs_ = elementwise(
    "abs", np.abs, call("np.abs"), lambda x, y: (sign(x),), _sym("Abs"), math=notation.kind("bars")
)
maximum = elementwise(
    "maximum",
    np.maximum,
    call("np.maximum"),
    lambda a, b, out: (greater_equal(a, b), greater(b, a)),
    to_sympy=_sym_elementwise(lambda sp, a, b: sp.Max(a, b)),
    math=notation.function("max"),
)
minimum = elementwise(
    "minimum",
    np.minimum,
    call("np.minimum"),
    lambda a, b, out: (greater_equal(b, a), greater(a, b)),
    to_sympy=_sym_elementwise(lambda sp, a, b: sp.Min(a, b)),
    math=notation.function("min"),
)


def _where_infer(c: Type, a: Type, b: Type) -> Type:
    # from the operand of highest rank: a vector meets the matrix, never another vector first
    first, *rest = sorted((c, a, b), key=lambda t: -t.rank)
    for t in rest:
        first = shapes.broadcast(first, t, "select")
    return first


def _select(c: Node, a: Node | None, b: Node | None, like: Type) -> Node | None:
    """where(c, a, b) with None for zero; the result spread to at least ``like``'s shape."""
    if a is None and b is None:
        return None
    zero = const(0.0)
    if a is None or b is None:  # c and the one branch may not reach the matrix on their own
        present = a if b is None else b
        if present.type.rank < like.rank and c.type.rank < like.rank:
            present = broadcast_to(present, like)
        a, b = (present, zero) if b is None else (zero, present)
    return broadcast_to(where(c, a, b), like)


# where: where(c, a, b) = a where the condition c ≠ 0, else b.  No derivative flows
# through c; each branch's derivative is selected, as JAX's select (so a branch that is
# nan where it is not taken gives no nan).
where = define(
    Op(
        "where",
        infer=_where_infer,
        impl=lambda ctx, node, *xs: np.where(*_aligned_values(node, xs)),
        emit=_aligned_emit(lambda p, node, c, a, b: p.call("np.where", c, a, b)),
        # the standard's where takes a boolean condition; c is a 0/1 mask
        emit_array_api=_aligned_emit(
            lambda p, node, c, a, b: p.call(
                "np.where", p.call("np.not_equal", c, p.literal(0.0)), a, b
            )
        ),
        jvp=lambda node, tc, ta, tb: _select(node.args[0], ta, tb, node.type),
        vjp=lambda node, g: (
            None,
            unbroadcast(_select(node.args[0], g, None, node.type), node.args[1].type),
            unbroadcast(_select(node.args[0], None, g, node.type), node.args[2].type),
        ),
        to_sympy=_sym_elementwise(lambda sp, c, a, b: sp.Piecewise((a, sp.Ne(c, 0)), (b, True))),
        arity=3,
        elementwise=True,
        math=notation.function("where"),
    )
)

# stop: the value passes, the derivative is zero (stop_gradient / detach).
stop = define(
    Op(
        "stop",
        infer=lambda a: a,
        impl=lambda ctx, node, a: a,
        emit=passthrough,
        to_sympy=lambda sp, node, a: a,
    )
)

# equal: 1 where a = b, else 0 (the ties of max and min).
equal = elementwise(
    "equal",
    lambda a, b: np.where(a == b, 1.0, 0.0),
    lambda p, node, a, b: p.mask(p.infix("==", a, b)),  # in the inputs' dtype
    None,
    to_sympy=_sym_elementwise(lambda sp, a, b: sp.Piecewise((1, sp.Eq(a, b)), (0, True))),
    math=notation.comparison("=", "="),
)


def _extremum_weights(node: Node) -> Node:
    """Where the extremum is attained, 1/count of its ties, else 0 (JAX's convention)."""
    a, axis = node.args[0], node.attr("axis")
    hits = equal(a, broadcast_to_axis(node, a.type, axis))
    return hits / broadcast_to_axis(reduce_sum(hits, axis=axis), a.type, axis)


def _extremum(name: str, np_fn: Callable, np_name: str, sym_fn: str) -> Callable[..., Node]:
    """max(a) or min(a) over all entries (axis None) or along an axis, as `sum` reduces.
    The derivative goes to the entries that attain it, split evenly between ties."""

    def emit(p, node, a):
        if node.attr("axis") is None or node.args[0].type.rank <= 1:
            return p.call(np_name, a)
        return p.call(np_name, a, axis=str(node.attr("axis")))

    def to_sympy(sp, node, a):
        fn, axis = getattr(sp, sym_fn), node.attr("axis")
        if isinstance(a, sp.MatrixBase):
            if axis is None or 1 in a.shape:
                return fn(*a)
            lines = [a.col(j) if axis == 0 else a.row(j) for j in range(a.shape[1 - axis])]
            return sp.Matrix([fn(*line) for line in lines])
        if _sym_is_matrix(sp, a):
            raise NotImplementedError(f"the {name} of a matrix has no matrix form in SymPy")
        return a

    return define(
        Op(
            name,
            infer=_sum_infer,
            impl=lambda ctx, node, a: np_fn(a, axis=node.attr("axis")),
            emit=emit,
            jvp=lambda node, t: (
                None
                if t is None
                else reduce_sum(_extremum_weights(node) * t, axis=node.attr("axis"))
            ),
            vjp=lambda node, g: (
                _extremum_weights(node)
                * broadcast_to_axis(g, node.args[0].type, node.attr("axis")),
            ),
            to_sympy=to_sympy,
            math=notation.Notation("extremum", sym_fn.lower(), rf"\{sym_fn.lower()}"),
        )
    )


# amax, amin: max(A), min(A), max(A, axis=k), min(A, axis=k).
amax = _extremum("amax", np.max, "np.max", "Max")
amin = _extremum("amin", np.min, "np.min", "Min")


# =============================================================================
# Matrix functions
# =============================================================================


def _inv_infer(a: Type) -> Type:
    _square(a, "inv")
    return a


def _det_infer(a: Type) -> Type:
    _square(a, "det")
    return SCALAR


def _logdet_infer(a: Type) -> Type:
    _square(a, "logdet")
    return SCALAR


# inv: A⁻¹.  d(A⁻¹) = −A⁻¹ dA A⁻¹;  Ā = −A⁻ᵀ ḡ A⁻ᵀ.
inv = define(
    Op(
        "inv",
        infer=_inv_infer,
        impl=lambda ctx, node, a: np.linalg.inv(a),
        emit=call("np.linalg.inv"),
        jvp=lambda node, t: None if t is None else -(node @ t @ node),
        vjp=lambda node, g: (-(node.T @ g @ node.T),),
        to_sympy=lambda sp, node, a: a.inv(),
        math=notation.superscript("⁻¹", "-1"),
    )
)


def _solve_infer(a: Type, b: Type) -> Type:
    _square(a, "solve")
    if b.is_scalar or (b.is_vector and b.row) or b.dims[0] != a.dims[0]:
        raise ShapeMismatch("cannot solve {0} X = {1}: the right side needs the matrix's rows")
    return b


def _solve_jvp(node: Node, ta: Node | None, tb: Node | None) -> Node | None:
    a, _ = node.args
    change = total([tb, None if ta is None else -(ta @ node)])  # dB − dA X
    return None if change is None else solve(a, change)


def _solve_vjp(node: Node, g: Node) -> tuple[Node, Node]:
    a, _ = node.args
    g_b = solve(a.T, g)
    return -(g_b @ node.T), g_b


def _solve_batched(p, node: Node, batched, a, b):
    """Directions of a vector right side stacked as rows: solve them as columns."""
    if batched[0]:
        raise NotImplementedError("solve with a matrix that carries directions")
    if node.type.is_vector:
        return p.postfix(p.call("np.linalg.solve", a, p.postfix(b, ".T")), ".T")
    return p.call("np.linalg.solve", a, b)  # NumPy solves a stack of matrices


# solve: X = A⁻¹ B without forming A⁻¹ (LU, as np.linalg.solve does).
# dX = A⁻¹ (dB − dA X);  B̄ = A⁻ᵀ ḡ,  Ā = −B̄ Xᵀ.
solve = define(
    Op(
        "solve",
        infer=_solve_infer,
        impl=lambda ctx, node, a, b: np.linalg.solve(a, b),
        emit=call("np.linalg.solve"),
        jvp=_solve_jvp,
        vjp=_solve_vjp,
        to_sympy=lambda sp, node, a, b: a.inv() * b,
        arity=2,
        math=notation.solve("⁻¹", "-1"),
        emit_batched=_solve_batched,
    )
)

# det: |A|.  d|A| = |A| tr(A⁻¹ dA);  Ā = ḡ |A| A⁻ᵀ.
det = define(
    Op(
        "det",
        infer=_det_infer,
        impl=lambda ctx, node, a: np.linalg.det(a),
        emit=call("np.linalg.det"),
        jvp=lambda node, t: None if t is None else node * trace(inv(node.args[0]) @ t),
        vjp=lambda node, g: (g * node * inv(node.args[0]).T,),
        to_sympy=lambda sp, node, a: _sympy_det(sp, a),
        math=notation.function("det"),
    )
)

# logdet: log|det A|.  d = tr(A⁻¹ dA);  Ā = ḡ A⁻ᵀ.
logdet = define(
    Op(
        "logdet",
        infer=_logdet_infer,
        impl=lambda ctx, node, a: np.linalg.slogdet(a)[1],
        emit=lambda p, node, a: p.postfix(p.call("np.linalg.slogdet", a), "[1]"),
        jvp=lambda node, t: None if t is None else trace(inv(node.args[0]) @ t),
        vjp=lambda node, g: (g * inv(node.args[0]).T,),
        to_sympy=lambda sp, node, a: sp.log(sp.Abs(_sympy_det(sp, a))),
        math=notation.function("log det", r"\log\det"),
    )
)


def _sympy_det(sp, a):
    return a.det() if isinstance(a, sp.MatrixBase) else sp.Determinant(a)


# =============================================================================
# Node arithmetic: rules read like the math they build.
# =============================================================================


def lift(x: Node | float) -> Node:
    return x if isinstance(x, Node) else const(x)


def product_of(a: Node, b: Node) -> Node:
    """The product of matrix algebra: scalars scale, everything else is matmul."""
    if a.type.is_scalar or b.type.is_scalar:
        return mul(a, b)
    return matmul(a, b)


Node.__add__ = lambda a, b: add(a, lift(b))  # type: ignore[method-assign]
Node.__radd__ = lambda a, b: add(lift(b), a)  # type: ignore[method-assign]
Node.__sub__ = lambda a, b: sub(a, lift(b))  # type: ignore[method-assign]
Node.__rsub__ = lambda a, b: sub(lift(b), a)  # type: ignore[method-assign]
Node.__mul__ = lambda a, b: mul(a, lift(b))  # type: ignore[method-assign]
Node.__rmul__ = lambda a, b: mul(lift(b), a)  # type: ignore[method-assign]
Node.__truediv__ = lambda a, b: div(a, lift(b))  # type: ignore[method-assign]
Node.__rtruediv__ = lambda a, b: div(lift(b), a)  # type: ignore[method-assign]
Node.__matmul__ = lambda a, b: product_of(a, lift(b))  # type: ignore[method-assign]
Node.__neg__ = lambda a: neg(a)  # type: ignore[method-assign]
Node.__pow__ = lambda a, b: powc(a, p=float(b)) if not isinstance(b, Node) else pow_(a, b)  # type: ignore[method-assign]
Node.T = property(lambda a: transpose(a))  # type: ignore[attr-defined]
