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

import builtins
import keyword
import math
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from graphc.ir import Graph, Node, topological_order, use_counts
from graphc.shapes import Dim, DimSource, Type, dim_sources

PRECEDENCE = {
    ">": 5,
    ">=": 5,
    "<": 5,
    "<=": 5,
    "==": 5,
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


# Soft keywords of any Python version, so that the emitted code is the same on all of them.
SOFT_KEYWORDS = frozenset({"_", "case", "match", "type"}) | frozenset(keyword.softkwlist)

# A local of an emitted function never shadows a builtin (the code calls none,
# but a reader should not have to check that).
BUILTIN_NAMES = frozenset(dir(builtins))


def python_name(name: str) -> str:
    """A program name as a Python identifier: the spelling of a keyword parameter.

    Python reads identifiers NFKC-normalised (``x₁`` is ``x1``); other characters
    become ``_``.  A keyword or soft keyword (``lambda``, ``match``) and a dunder
    (``__import__``) get a trailing underscore.
    """
    name = unicodedata.normalize("NFKC", name)
    if not name.isidentifier():
        name = "".join(c if ("_" + c).isidentifier() else "_" for c in name)
        if not name.isidentifier():
            name = "_" + name
    if keyword.iskeyword(name) or name in SOFT_KEYWORDS or name.startswith("__"):
        name = name + "_"
    return name


class Namer:
    """Hands out distinct Python names, in the order asked (deterministic).

    Names the module defines (``np``, ``value``, …) are never handed out, nor
    builtins when ``avoid_builtins`` (for locals; parameters keep the program's
    names, as they are public keywords).  A taken name is numbered: ``np_1``.
    """

    def __init__(self, taken: Iterable[str] = (), avoid_builtins: bool = False):
        self.taken = set(RESERVED) | set(taken) | (BUILTIN_NAMES if avoid_builtins else set())
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


def _read_dim(
    source: DimSource[Node], param_names: Mapping[Node, str], dim_text: Callable[[Dim], str]
) -> str:
    """``(W.shape[1] - n) // 2``: an unbound dim's size, read from a parameter."""
    size = f"{param_names[source.variable]}.shape[{source.axis}]"
    if source.offset != 0:
        size = f"({size} - {dim_text(source.offset)})"
    return f"{size} // {dim_text(source.coeff)}" if source.coeff != 1 else size


def _passthrough(expr: Expr, args: Sequence[Expr]) -> bool:
    """The operator printed as one of its arguments (a vector transpose, stop)."""
    return any(expr is a for a in args)


def function_body(
    printer: NumpyPrinter,
    graph: Graph,
    outputs: Sequence[Node],
    namer: Namer,
) -> tuple[list[str], list[Expr], dict[Node, str]]:
    """Statements computing ``outputs``, the expression of each output, and the
    name of each node that got a statement."""
    order = topological_order(outputs)
    uses = use_counts(order)
    for out in outputs:
        uses[out] = uses.get(out, 0) + 1
    # The program's own names first, so that temporaries step around them.
    reserved = {
        node: namer.fresh(graph.names[node])
        for node in order
        if node in graph.names and not node.op.inline
    }
    exprs: dict[Node, Expr] = {}
    lines: list[str] = []
    stored: dict[Node, str] = {}
    for node in order:
        args = [exprs[a] for a in node.args]
        expr = node.op.emit(printer, node, *args)
        if node.op.inline or (_passthrough(expr, args) and node not in reserved):
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
            stored[node] = target
            expr = Expr(target, PRECEDENCE["atom"])
        exprs[node] = expr
    return lines, [exprs[o] for o in outputs], stored


# ---- the module's functions, as data ------------------------------------------
# What a function returns: an output node, a tuple, or a dict literal keyed by
# program names ({"W": ∂J/∂W}), nested as needed.
Returned = Node | tuple["Returned", ...] | Mapping[str, "Returned"]


def returned_nodes(returns: Returned) -> list[Node]:
    """The nodes a return description mentions, in the order it prints them."""
    nodes, todo = [], [returns]
    while todo:
        item = todo.pop()
        if isinstance(item, Node):
            nodes.append(item)
        else:
            todo.extend(reversed(list(item.values() if isinstance(item, Mapping) else item)))
    return nodes


@dataclass(frozen=True)
class FunctionSpec:
    """A function of the emitted module computed by a graph.

    It takes the var nodes ``params`` (keyword-only, in order), computes what
    ``returns`` mentions with ``graph``'s names and hints, and returns it.
    """

    name: str
    params: Sequence[Node]
    graph: Graph
    returns: Returned
    doc: str

    @property
    def outputs(self) -> list[Node]:
        return returned_nodes(self.returns)


@dataclass(frozen=True)
class GradientByJvp:
    """``value_and_grad`` of a scalar output from the module's ``jvp``: one call per entry.

    It takes ``params`` like ``value``, and returns ``value``'s result and a
    dict from each variable's program name to its gradient; ``tangents`` pairs
    each variable with the tangent keyword of ``jvp`` that seeds it.
    """

    name: str
    params: Sequence[Node]
    tangents: Sequence[tuple[Node, Node]]
    doc: str
    value: str = "value"
    jvp: str = "jvp"


Function = FunctionSpec | GradientByJvp


def _inert(c: str) -> str:
    """A character of program text as it may stand inside a docstring."""
    if c in '\\"':
        return "\\" + c  # no escape sequence, no end of the string
    if c.isprintable() or c in "\n\t":
        return c
    return c.encode("unicode_escape").decode("ascii")  # NUL, CR, a lone surrogate: \x00, \r, …


def _docstring(text: str, indent: str = "") -> str:
    # Program text and file names may hold anything; they stay text.
    safe = "".join(map(_inert, text))
    lines = safe.splitlines() or [""]
    body = "\n".join((indent + line) if line.strip() else "" for line in lines)
    return f'{indent}"""{body.lstrip()}\n{indent}"""' if len(lines) > 1 else f'{indent}"""{safe}"""'


def def_line(name: str, params: Sequence[str]) -> str:
    """``def name(*, a, b):``: keyword-only parameters (none for a program without variables)."""
    return f"def {name}(*, {', '.join(params)}):\n" if params else f"def {name}():\n"


def keyword_names(variables: Sequence[Node]) -> dict[Node, str]:
    """The keyword each var node is passed by: its program name as a Python identifier.

    Numbered apart from each other and from the module's own names (``np_1``).
    """
    namer = Namer()
    return {v: namer.fresh(v.attr("name")) for v in variables}


@dataclass
class _Layout:
    """A graph function laid out: its local names, and its lines before ``return``."""

    namer: Namer
    lines: list[str]
    outputs: list[Expr]
    stored: dict[Node, str]


def _layout(spec: FunctionSpec, keywords: Mapping[Node, str], variables: Sequence[Node]) -> _Layout:
    """Dims read from the parameters, then the statements of ``spec``'s graph."""
    params = {p: keywords[p] for p in spec.params}
    dims_needed = {n for v in variables for d in v.type.dims for n in d.names}
    namer = Namer(params.values(), avoid_builtins=True)
    dim_names = {d: namer.fresh(d) for d in sorted(dims_needed)}
    printer = NumpyPrinter(params, dim_names)
    lines, outs, stored = function_body(printer, spec.graph, spec.outputs, namer)
    sources = dim_sources([(v, v.type) for v in variables])
    needed, todo = set(), sorted(printer.used_dims)
    while todo:  # the dims used, and the dims they are read with
        d = todo.pop()
        if d not in needed:
            needed.add(d)  # the front end checked that every used dim has a source
            todo += sources[d].needs
    prelude, done = [], set()
    while len(done) < len(needed):  # alphabetical, each dim after the dims it is read with
        d = min(d for d in needed - done if set(sources[d].needs) <= done)
        prelude.append(f"{dim_names[d]} = {_read_dim(sources[d], params, printer.dim)}")
        done.add(d)
    return _Layout(namer, [*prelude, *lines], outs, stored)


def function_labels(
    spec: FunctionSpec, keywords: Mapping[Node, str], variables: Sequence[Node]
) -> dict[Node, str]:
    """A label for every node of ``spec``'s graph, as the emitted function names it.

    A node the function stores is labelled with its local name; a var with its
    program name, a constant with its value; a node written inline, with a
    fresh ``t…`` the function does not use.  The listing of ``graphc graph
    --grad`` prints these labels, so it names what the module names alike.
    """
    layout = _layout(spec, keywords, variables)
    labels: dict[Node, str] = {}
    for node in topological_order(spec.outputs):
        if node.op.name == "var":
            labels[node] = node.attr("name")
        elif node.op.name == "const":
            labels[node] = repr(node.attr("value"))
        elif node in layout.stored:
            labels[node] = layout.stored[node]
        else:
            labels[node] = layout.namer.fresh("t", numbered=True)
    return labels


def _returned_text(returns: Returned, exprs: Iterator[Expr], top: bool = True) -> str:
    """``J, {'W': dJ_dW}``: a return description with each node's expression."""
    if isinstance(returns, Node):
        return next(exprs).text
    if isinstance(returns, Mapping):
        items = ", ".join(
            f"{key!r}: {_returned_text(item, exprs, False)}" for key, item in returns.items()
        )
        return "{" + items + "}"
    items = [_returned_text(item, exprs, False) for item in returns]
    text = ", ".join(items) + ("," if len(items) == 1 else "")
    return text if top and items else f"({text})"


def _graph_function(
    spec: FunctionSpec, keywords: Mapping[Node, str], variables: Sequence[Node]
) -> list[str]:
    layout = _layout(spec, keywords, variables)
    return [*layout.lines, f"return {_returned_text(spec.returns, iter(layout.outputs))}"]


def _gradient_by_jvp(spec: GradientByJvp, keywords: Mapping[Node, str]) -> list[str]:
    """Unit tangents, one entry at a time, for each variable in turn.

    Its locals are kept apart from the parameters (a program may call a
    variable ``i``, ``grad`` or ``zero``), and it calls no Python builtin
    that a parameter could shadow (``dict``).
    """
    params = [keywords[p] for p in spec.params]
    namer = Namer(params)
    zero, grads, name, seed, primal, grad, i, tangents = (
        namer.fresh(w) for w in ("zero", "grads", "name", "seed", "primal", "grad", "i", "tangents")
    )
    zeros = ", ".join(
        f"{keywords[t]!r}: np.zeros(np.shape({keywords[v]}))" for v, t in spec.tangents
    )
    table = ", ".join(
        f"({v.attr('name')!r}, {keywords[t]!r}, {keywords[v]})" for v, t in spec.tangents
    )
    call_all = "".join(f"{p}={p}, " for p in params)
    return [
        f"{zero} = {{{zeros}}}",
        f"{grads} = {{}}",
        f"for {name}, {seed}, {primal} in ({table}{',' if len(spec.tangents) == 1 else ''}):",
        f"    {grad} = np.zeros(np.shape({primal}))",
        f"    for {i} in np.ndindex({grad}.shape):",
        f"        {tangents} = {{**{zero}, {seed}: np.zeros(np.shape({primal}))}}",
        f"        {tangents}[{seed}][{i}] = 1.0",
        f"        {grad}[{i}] = {spec.jvp}({call_all}**{tangents})[1]",
        f"    {grads}[{name}] = {grad}",
        f"return {spec.value}({call_all.rstrip(', ')}), {grads}",
    ]


def emit_function(
    spec: Function, keywords: Mapping[Node, str], variables: Sequence[Node] = ()
) -> str:
    """The source of one function: signature, docstring, body.

    ``keywords`` names every var node the function takes; ``variables`` are
    the program's, which the sizes of unbound dims are read from.
    """
    if isinstance(spec, GradientByJvp):
        body = _gradient_by_jvp(spec, keywords)
    else:
        body = _graph_function(spec, keywords, variables)
    text = def_line(spec.name, [keywords[p] for p in spec.params])
    text += _docstring(spec.doc, "    ") + "\n"
    text += "".join(f"    {line}\n" for line in body)
    return text


def emit_module(
    doc: str,
    functions: Sequence[Function],
    keywords: Mapping[Node, str],
    variables: Sequence[Node] = (),
) -> str:
    """A module: the docstring ``doc``, ``import numpy as np``, the functions."""
    parts = [_docstring(doc), "", "import numpy as np", ""]
    for fn in functions:
        parts += ["", emit_function(fn, keywords, variables).rstrip("\n"), ""]
    return "\n".join(parts).rstrip("\n") + "\n"
