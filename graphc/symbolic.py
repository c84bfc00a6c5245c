"""The SymPy bridge: a graphc program, and its derivatives, as SymPy expressions.

SymPy is imported here only, and only when a translation is asked for: a
plain ``graphc compile`` never loads it.  Each operator translates itself
(``to_sympy`` in `graphc.ops`); this module binds symbols to the program's
variables and walks the graph, iteratively, arguments before users.

Two forms:

* *explicit* (the default): every dim gets a size, every entry of a variable
  is a real symbol (``W_0_1`` for W[0, 1]: a Python name, so that SymPy's
  ``lambdify`` takes it as it is), vectors are ``sp.Matrix`` columns (n×1) or
  rows (1×n), a scalar is an expression.  SymPy can differentiate this by
  any entry, so `graphc compare` uses it.
* *matrix* (``matrix=True``): variables are ``MatrixSymbol``s, unbound dims
  are integer symbols.  A scalar that is a matrix product (``uᵀ f``) is the
  trace of the 1×1 product, the form SymPy's matrix calculus differentiates.
  Operators without a matrix form in SymPy (``max``, ``amax``, spreading a
  vector along a matrix) make the translation fail with a `SymbolicError`.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from graphc import ops
from graphc.derive import derive
from graphc.errors import SymbolicError
from graphc.frontend import LoweredProgram, lower
from graphc.ir import Graph, Node, topological_order
from graphc.shapes import Type


def sympy_module() -> ModuleType:
    """SymPy, imported on first use; a clear error if it is not installed."""
    try:
        import sympy
    except ImportError:
        raise SymbolicError(
            "this needs SymPy, which is not installed: pip install 'graphc[symbolic]'"
        ) from None
    return sympy


@contextlib.contextmanager
def sympy_depth() -> Iterator[None]:
    """SymPy recurses on the depth of an expression: a deep program is a clear error."""
    try:
        yield
    except RecursionError:
        raise SymbolicError(
            "the program nests too deeply for SymPy (it recurses once per level of an"
            " expression); try a shorter program or graphc's own derivatives"
        ) from None


def operation_count(graph: Graph) -> int:
    """The operations of a graph: its nodes other than variables and literals."""
    return sum(1 for n in graph.nodes() if n.op.name not in ("var", "const", "fill"))


# ---- translation ------------------------------------------------------------------------


def symbols_for(sp: ModuleType, name: str, t: Type, matrix: bool = False) -> Any:
    """The SymPy symbols standing for a variable ``name`` of type ``t``."""
    if t.is_scalar:
        return sp.Symbol(name, real=True)
    if matrix:
        rows, cols = ops._sym_shape(sp, Type(t.dims))  # a column; a row is its transpose
        symbol = sp.MatrixSymbol(name, rows, cols)
        return symbol.T if t.rank == 1 and t.row else symbol
    shape = tuple(d.value for d in t.dims)
    if None in shape:
        raise SymbolicError(f"{name} {t}: give every dim a size to scalarise it")
    if t.is_vector:
        entries = [sp.Symbol(f"{name}_{i}", real=True) for i in range(shape[0])]
        return sp.Matrix(1, shape[0], entries) if t.row else sp.Matrix(shape[0], 1, entries)
    return sp.Matrix(
        *shape, lambda i, j: sp.Symbol(f"{name}_{i}_{j}", real=True)
    )  # fmt: skip


@dataclass
class Translation:
    """Translated graph outputs, and the stopped values frozen as symbols."""

    outputs: list[Any]
    frozen: dict[Any, Any] = field(default_factory=dict)  # stop symbol -> its value

    def thawed(self, expr: Any) -> Any:
        """``expr`` with each frozen ``stop(·)`` symbol replaced by its value."""
        return expr.xreplace(self.frozen) if self.frozen else expr


def translate(
    sp: ModuleType,
    outputs: Sequence[Node],
    leaves: Mapping[Node, Any],
    *,
    matrix: bool = False,
    freeze_stops: bool = False,
) -> Translation:
    """SymPy expressions for ``outputs``, with each var node bound by ``leaves``.

    With ``freeze_stops`` every ``stop(e)`` becomes fresh symbols, so that
    differentiating by SymPy treats it as the constant it is for graphc; the
    `Translation` keeps their values.
    """
    values: dict[Node, Any] = {}
    frozen: dict[Any, Any] = {}
    counter = itertools.count(1)
    with sympy_depth():
        for node in topological_order(outputs):
            if node.op.name == "var":
                if node not in leaves:
                    raise SymbolicError(f"no symbols given for {node.attr('name')}")
                values[node] = leaves[node]
                continue
            args = [values[a] for a in node.args]
            if freeze_stops and node.op.name == "stop" and not matrix:
                name = f"stop{next(counter)}"
                symbols = symbols_for(sp, name, node.type)
                value = args[0].xreplace(frozen) if frozen else args[0]
                pairs = (
                    zip(symbols, value) if node.type.rank else [(symbols, value)]
                )  # fmt: skip
                frozen.update(pairs)
                values[node] = symbols
                continue
            if node.op.to_sympy is None:
                raise SymbolicError(f"the operator {node.op.name} has no SymPy translation")
            try:
                result = node.op.to_sympy(sp, node, *args)
            except NotImplementedError as why:
                raise SymbolicError(f"SymPy cannot represent this program: {why}") from None
            values[node] = _normalise(sp, node, result, matrix)
    return Translation([values[o] for o in outputs], frozen)


def _normalise(sp: ModuleType, node: Node, result: Any, matrix: bool) -> Any:
    """Scalars as scalars (a 1×1 product unwrapped), explicit matrices as ``sp.Matrix``."""
    is_matrix_expr = isinstance(result, sp.MatrixExpr) and not isinstance(result, sp.MatrixBase)
    if not matrix and is_matrix_expr:
        result = sp.Matrix(result.as_explicit())
    if node.type.is_scalar:
        if isinstance(result, sp.MatrixBase):
            return result[0, 0]
        if is_matrix_expr and matrix:
            return sp.Trace(result)
    return result


# ---- the public bridge -----------------------------------------------------------------


@dataclass
class SymbolicForm:
    """A program (and a compiled function's derivatives) as SymPy expressions.

    ``output`` is the program's value; ``symbols`` maps each variable to its
    symbols (a Symbol, a Matrix of Symbols, or a MatrixSymbol).  For a compiled
    function, ``gradients`` maps each variable it differentiates by to graphc's
    derivative translated: for a scalar output, an expression of the variable's
    shape; otherwise the Jacobian as an ``sp.Array`` of shape output + variable
    (in matrix form: the vector-Jacobian product by the cotangent ``J_bar``).
    ``sizes`` gives the size of every dim used.
    """

    output: Any
    symbols: dict[str, Any]
    gradients: dict[str, Any]
    sizes: dict[str, int]
    matrix: bool
    lowered: LoweredProgram


def small_sizes(lowered: LoweredProgram, size: int) -> dict[str, int]:
    """Every dim declared as a number or left unbound, at most ``size``."""
    sizes = {}
    for name, d in lowered.dims.items():
        if name in lowered.unbound_dims:
            sizes[name] = size
        elif d.value is not None:
            sizes[name] = min(d.value, size)
    return sizes


def resize(lowered: LoweredProgram, dims: Mapping[str, int] | None) -> LoweredProgram:
    """The program read again with ``dims`` replacing the declared sizes."""
    if not dims:
        return lowered
    unknown = [name for name in dims if name not in lowered.dims]
    if unknown:
        declared = ", ".join(lowered.dims) or "none"
        raise SymbolicError(f"{unknown[0]} is not a dim of this program (dims: {declared})")
    return lower(lowered.source, lowered.filename, dims)


def to_sympy(obj: Any, dims: Mapping[str, int] | None = None, *, matrix: bool = False):
    """``obj`` (a `graphc.Program` or `graphc.CompiledFunction`) as SymPy expressions.

    ``dims`` sizes dims, and may replace sizes the program declares; the
    explicit form needs a size for every dim (an unbound dim has none unless
    ``dims`` gives it).  A compiled function's gradients are graphc's
    derivative graph translated, not SymPy's derivative: in the explicit form
    the graph of the function's mode, in the matrix form always the
    reverse-mode graph (a forward-mode tangent has no matrix form to read off).
    """
    sp = sympy_module()
    lowered = resize(obj.lowered, dims)
    wrt = getattr(obj, "wrt", None)
    mode = "reverse" if matrix else getattr(obj, "mode", "reverse")
    sizes = {n: d.value for n, d in lowered.dims.items() if d.value is not None}
    symbols = {
        v.attr("name"): symbols_for(sp, v.attr("name"), v.type, matrix) for v in lowered.variables
    }
    leaves = {v: symbols[v.attr("name")] for v in lowered.variables}
    out_node = lowered.graph.outputs[lowered.output]
    if wrt is None:
        (output,) = translate(sp, [out_node], leaves, matrix=matrix).outputs
        return SymbolicForm(output, symbols, {}, sizes, matrix, lowered)
    derived = derive(lowered, list(wrt), mode)
    seeds = {
        seed: symbols_for(sp, seed.attr("name"), seed.type, matrix)
        for seed in derived.seeds.values()
    }
    names = [v.attr("name") for v in derived.wrt]
    if mode == "reverse":
        nodes = [derived.gradients[n] for n in names]
    else:
        nodes = [derived.tangent]
    translated = translate(sp, [out_node, *nodes], {**leaves, **seeds}, matrix=matrix).outputs
    output, derivatives = translated[0], translated[1:]
    scalar = out_node.type.is_scalar
    gradients: dict[str, Any] = {}
    with sympy_depth():
        if mode == "reverse" and (scalar or matrix):
            gradients = dict(zip(names, derivatives))  # matrix form: the VJP as it is
        elif mode == "reverse":  # ūᵀ ∂J/∂W is linear in ū: its coefficients are the Jacobian
            (bar,) = seeds.values()
            for name, vjp in zip(names, derivatives):
                gradients[name] = _jacobian_from(sp, vjp, bar, out_node.type, first=True)
        else:  # J_dot is linear in the tangents
            (jvp,) = derivatives
            for name in names:
                dot = seeds[derived.seeds[name]]
                gradients[name] = _jacobian_from(sp, jvp, dot, out_node.type, first=False)
    return SymbolicForm(output, symbols, gradients, sizes, matrix, lowered)


def _flat(sp: ModuleType, x: Any) -> list[Any]:
    return list(x) if isinstance(x, sp.MatrixBase) else [x]


def _jacobian_from(sp: ModuleType, linear: Any, seed: Any, out_type: Type, first: bool) -> Any:
    """The coefficients of an expression linear in ``seed``, laid out output + variable.

    ``first``: the seed is the output's cotangent (a VJP, of the variable's
    shape); otherwise it is the variable's tangent (a JVP, of the output's shape).
    """
    seed_entries = _flat(sp, seed)
    linear_entries = _flat(sp, linear)
    out_shape = tuple(d.value for d in out_type.dims)
    if first:  # rows of the Jacobian: one per output entry
        table = [[sp.diff(e, s) for e in linear_entries] for s in seed_entries]
        var_shape = _shape_of(linear)
    else:  # columns: one per variable entry
        columns = [[sp.diff(e, s) for e in linear_entries] for s in seed_entries]
        table = [list(row) for row in zip(*columns)] if columns else []
        var_shape = _shape_of(seed)
    entries = [e for row in table for e in row]
    if not out_shape:
        return entries[0] if not var_shape else sp.Matrix(*_matrix_shape(var_shape), entries)
    return sp.ImmutableDenseNDimArray(entries, out_shape + var_shape)


def _shape_of(x: Any) -> tuple[int, ...]:
    """The NumPy shape of a translated value: a vector is 1-D."""
    shape = getattr(x, "shape", ())
    if len(shape) == 2 and 1 in shape:
        return (shape[0] * shape[1],)
    return tuple(shape)


def _matrix_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    return (shape[0], 1) if len(shape) == 1 else shape  # type: ignore[return-value]
