"""The NumPy printer: graphs -> a standalone Python module that imports numpy.

The printer has one method per kind of syntax (infix, prefix, call, postfix,
literal) and a precedence table, as SymPy's code printers do; each operator
in `graphc.ops` says which kind it is.  Statements are scheduled from the
graph: a node the program named (``z``, ``h``) or the derivation named
(``dJ_dz``) gets a line of its own; so does a node used more than once
(``delta``, ``t1``); everything else is written inline where it is used.
So every node is computed exactly once, and the code reads like the
derivation.  Output is deterministic: the same graph gives the same bytes.
"""

from __future__ import annotations

import keyword
import math
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from graphc.errors import ShapeError
from graphc.ir import Graph, Node, topological_order, use_counts
from graphc.shapes import Dim, Type

PRECEDENCE = {
    ">": 5,
    ">=": 5,
    "+": 10,
    "-": 10,
    "*": 20,
    "/": 20,
    "@": 20,
    "unary": 30,
    "**": 40,
    "postfix": 50,
    "atom": 60,
}

# Names the emitted module defines or uses itself; program names are kept apart.
RESERVED = {"np", "value", "value_and_grad", "jvp", "vjp"}

# An inline expression longer than this gets a line (and a name) of its own.
MAX_INLINE = 72


class Expr(NamedTuple):
    text: str
    prec: int


def python_name(name: str) -> str:
    """A program name as a Python identifier (Python reads identifiers NFKC)."""
    name = unicodedata.normalize("NFKC", name)
    if not name.isidentifier():
        name = "".join(c if ("_" + c).isidentifier() else "_" for c in name)
        if not name.isidentifier():
            name = "_" + name
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name.startswith("__"):
        name = name + "_"
    return name


class Namer:
    """Hands out distinct Python names, in the order asked (deterministic)."""

    def __init__(self, taken: Iterable[str] = ()):
        self.taken = set(RESERVED) | set(taken)
        self.counters: dict[str, int] = {}

    def fresh(self, wanted: str, numbered: bool = False) -> str:
        base = python_name(wanted)
        if not numbered and base not in self.taken:
            self.taken.add(base)
            return base
        i = self.counters.get(base, 0)
        while True:
            i += 1
            candidate = f"{base}{i}" if numbered else f"{base}_{i}"
            if candidate not in self.taken:
                self.counters[base] = i
                self.taken.add(candidate)
                return candidate


@dataclass(frozen=True)
class DimSource:
    """Where a function reads an unbound dim: ``(param.shape[axis] - offset) // coeff``.

    ``offset`` and ``coeff`` are dims over dims read before this one (``m`` from
    ``z : [n+m]`` once ``n`` is known), as the feed check binds them.
    """

    param: str
    axis: int
    coeff: Dim = Dim.of(1)
    offset: Dim = Dim.of(0)

    @property
    def needs(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.coeff.names) | set(self.offset.names)))

    def text(self, dim_text: Callable[[Dim], str]) -> str:
        size = f"{self.param}.shape[{self.axis}]"
        if self.offset != 0:
            size = f"({size} - {dim_text(self.offset)})"
        return f"{size} // {dim_text(self.coeff)}" if self.coeff != 1 else size


def _solve_for(d: Dim, known: set[str]) -> tuple[str, Dim, Dim] | None:
    """``d`` as ``coeff * name + offset`` for its one unknown name, if it is linear in it."""
    unknown = [n for n in d.names if n not in known]
    if len(unknown) != 1:
        return None
    (name,) = unknown
    coeff, offset = [], []
    for mono, c in d.terms:
        if mono.count(name) > 1:
            return None
        if name in mono:
            rest = list(mono)
            rest.remove(name)
            coeff.append((tuple(rest), c))
        else:
            offset.append((mono, c))
    coeff_dim = Dim(coeff)
    if coeff_dim.value is not None and coeff_dim.value <= 0:
        return None
    return name, coeff_dim, Dim(offset)


def dim_sources(variables: Sequence[Node], params: Mapping[Node, str]) -> dict[str, DimSource]:
    """For each unbound dim, the variable axis that gives it, as the feed check binds dims:
    in declaration order, a variable whose dims cannot be solved yet waiting for the others."""
    sources: dict[str, DimSource] = {}
    pending = list(variables)
    while pending:
        waiting = []
        for v in pending:
            known, found = set(sources), {}
            for axis, d in enumerate(v.type.dims):
                if all(n in known for n in d.names):
                    continue
                solved = _solve_for(d, known)
                if solved is None:
                    break
                name, coeff, offset = solved
                found[name] = DimSource(params[v], axis, coeff, offset)
                known.add(name)
            else:
                sources.update(found)
                continue
            waiting.append(v)
        if len(waiting) == len(pending):
            break
        pending = waiting
    return sources


class NumpyPrinter:
    """Expressions of one function.  ``names`` maps var nodes to parameter names."""

    def __init__(self, names: Mapping[Node, str], dims: Mapping[str, str]):
        self.names = dict(names)
        self.dim_names = dims
        self.used_dims: set[str] = set()

    # ---- the kinds --------------------------------------------------------------
    def wrap(self, e: Expr, at_least: int) -> str:
        return e.text if e.prec >= at_least else f"({e.text})"

    def infix(self, symbol: str, a: Expr, b: Expr) -> Expr:
        p = PRECEDENCE[symbol]
        if symbol == "**":  # right-associative, and binds tighter than unary minus on its left
            return Expr(f"{self.wrap(a, p + 1)} ** {self.wrap(b, PRECEDENCE['unary'])}", p)
        if p == PRECEDENCE[">"]:  # comparisons chain in Python: parenthesise both sides
            return Expr(f"{self.wrap(a, p + 1)} {symbol} {self.wrap(b, p + 1)}", p)
        return Expr(f"{self.wrap(a, p)} {symbol} {self.wrap(b, p + 1)}", p)

    def prefix(self, symbol: str, a: Expr) -> Expr:
        p = PRECEDENCE["unary"]
        return Expr(f"{symbol}{self.wrap(a, p)}", p)

    def call(self, fn: str, *args: Expr, **keywords: str) -> Expr:
        parts = [a.text for a in args] + [f"{k}={v}" for k, v in keywords.items()]
        return Expr(f"{fn}({', '.join(parts)})", PRECEDENCE["postfix"])

    def postfix(self, a: Expr, suffix: str) -> Expr:
        p = PRECEDENCE["postfix"]
        return Expr(f"{self.wrap(a, p)}{suffix}", p)

    def literal(self, value: float, integral: bool = False) -> Expr:
        if math.isnan(value):
            return Expr("np.nan", PRECEDENCE["atom"])
        if math.isinf(value):
            return (
                Expr("np.inf", PRECEDENCE["atom"])
                if value > 0
                else Expr("-np.inf", PRECEDENCE["unary"])
            )
        text = (
            str(int(value))
            if integral and value == int(value) and abs(value) < 2**53
            else repr(float(value))
        )
        return Expr(text, PRECEDENCE["unary"] if text.startswith("-") else PRECEDENCE["atom"])

    def raw(self, text: str) -> Expr:
        return Expr(text, PRECEDENCE["atom"])

    def list(self, items: Iterable[Expr]) -> Expr:
        return Expr("[" + ", ".join(e.text for e in items) + "]", PRECEDENCE["atom"])

    def name(self, node: Node) -> Expr:
        return Expr(self.names[node], PRECEDENCE["atom"])

    # ---- sizes ------------------------------------------------------------------
    def dim(self, d: Dim) -> str:
        if d.value is not None:
            return str(d.value)
        parts = []
        for mono, coeff in sorted(d.terms, key=lambda t: (-len(t[0]), t[0])):
            for name in mono:
                self.used_dims.add(name)
            factors = [self.dim_names[n] for n in mono]
            if coeff != 1 or not factors:
                factors.insert(0, str(coeff))
            parts.append(" * ".join(factors))
        text = " + ".join(parts).replace("+ -", "- ")
        return (
            text
            if len(parts) == 1 and len(d.terms[0][0]) + (d.terms[0][1] != 1) <= 1
            else f"({text})"
        )

    def shape(self, t: Type) -> str:
        dims = [self.dim(d) for d in t.dims]
        return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"

    def fill(self, value: float, t: Type) -> Expr:
        if t.is_scalar:
            return self.literal(value)
        if value == 0.0:
            return self.call("np.zeros", self.raw(self.shape(t)))
        if value == 1.0:
            return self.call("np.ones", self.raw(self.shape(t)))
        return self.call("np.full", self.raw(self.shape(t)), self.literal(value))


def _passthrough(expr: Expr, args: Sequence[Expr]) -> bool:
    """The operator printed as one of its arguments (a vector transpose, stop)."""
    return any(expr is a for a in args)


def function_body(
    printer: NumpyPrinter,
    graph: Graph,
    outputs: Sequence[Node],
    namer: Namer,
) -> tuple[list[str], list[Expr]]:
    """Statements computing ``outputs``, and the expression of each output."""
    order = topological_order(outputs)
    uses = use_counts(order)
    for out in outputs:
        uses[out] = uses.get(out, 0) + 1
    # The program's own names first, so that temporaries step around them.
    reserved = {
        node: namer.fresh(graph.names[node])
        for node in order
        if node in graph.names and node.op.name not in ("var", "const", "dimval")
    }
    exprs: dict[Node, Expr] = {}
    lines: list[str] = []
    for node in order:
        if node.op.name == "var":
            exprs[node] = printer.name(node)
            continue
        args = [exprs[a] for a in node.args]
        expr = node.op.emit(printer, node, *args)
        if node.op.name in ("const", "dimval") or (
            _passthrough(expr, args) and node not in reserved
        ):
            exprs[node] = expr  # costs nothing: never stored
            continue
        shared = uses.get(node, 0) > 1
        long_inline = len(expr.text) > MAX_INLINE and node not in outputs
        if node in reserved or shared or long_inline:
            if node in reserved:
                target = reserved[node]
            elif node in graph.hints:
                target = namer.fresh(graph.hints[node])
            else:
                target = namer.fresh("t", numbered=True)
            lines.append(f"{target} = {expr.text}")
            expr = Expr(target, PRECEDENCE["atom"])
        exprs[node] = expr
    return lines, [exprs[o] for o in outputs]


@dataclass
class FunctionSpec:
    """One function of the emitted module.

    ``graph`` computes the outputs; ``returns`` turns their expressions into
    the text after ``return``; ``params`` are the var nodes it takes, in order.
    """

    name: str
    params: Sequence[Node]
    graph: Graph
    outputs: Sequence[Node]
    returns: Callable[[list[Expr]], str]
    doc: str


def _docstring(text: str, indent: str = "") -> str:
    # Program text may hold anything; keep it inert inside the docstring.
    safe = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = safe.splitlines() or [""]
    body = "\n".join((indent + line) if line.strip() else "" for line in lines)
    return f'{indent}"""{body.lstrip()}\n{indent}"""' if len(lines) > 1 else f'{indent}"""{safe}"""'


def emit_function(
    spec: FunctionSpec,
    param_names: Mapping[Node, str],
    variables: Sequence[Node],
) -> str:
    """The source of one function: signature, docstring, dims, statements, return."""
    dims_needed = {n for v in variables for d in v.type.dims for n in d.names}
    namer = Namer(param_names.values())
    dim_names = {d: namer.fresh(d) for d in sorted(dims_needed)}
    printer = NumpyPrinter(param_names, dim_names)
    lines, outs = function_body(printer, spec.graph, spec.outputs, namer)
    sources = dim_sources(variables, param_names)
    needed, todo = set(), sorted(printer.used_dims)
    while todo:
        d = todo.pop()
        if d not in needed:
            if d not in sources:
                raise ShapeError(
                    f"dim {d} cannot be read from the shapes of the inputs and params: declare one"
                    f" whose shape gives it (such as [{d}]) or give it a size (dim {d} = …)"
                )
            needed.add(d)
            todo += sources[d].needs
    prelude, done = [], set()
    while len(done) < len(needed):  # alphabetical, each dim after the dims it is read with
        d = min(d for d in needed - done if set(sources[d].needs) <= done)
        prelude.append(f"{dim_names[d]} = {sources[d].text(printer.dim)}")
        done.add(d)
    signature = ", ".join(param_names[p] for p in spec.params)
    body = [*prelude, *lines, f"return {spec.returns(outs)}"]
    text = f"def {spec.name}(*, {signature}):\n" if signature else f"def {spec.name}():\n"
    text += _docstring(spec.doc, "    ") + "\n"
    text += "".join(f"    {line}\n" for line in body)
    return text


def emit_module(header: str, functions: Sequence[str], footer: str = "") -> str:
    """A module: the docstring ``header``, ``import numpy as np``, the functions."""
    parts = [_docstring(header), "", "import numpy as np", ""]
    for fn in functions:
        parts += ["", fn.rstrip("\n"), ""]
    if footer:
        parts += ["", footer.rstrip("\n"), ""]
    return "\n".join(parts).rstrip("\n") + "\n"
