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
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from graphc.ir import Graph, Node, topological_order, use_counts
from graphc.shapes import Dim, DimSource, Type, dim_sources, vector_axis

PRECEDENCE = {
    "if": 1,  # a conditional expression: a if c else b
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
# (array_api_compat: the array-API module's import, graphc.emit_array_api.)
RESERVED = {
    "np",
    "value",
    "value_and_grad",
    "jvp",
    "vjp",
    "jacobian",
    "hessian",
    "hvp",
    "out",
    "accumulate",
    "feed",
    "array_api_compat",
}
# Each function f of a module has a twin f_dict(feed, /) taking the arrays in one dict.
DICT_SUFFIX = "_dict"
_NOT_FUNCTIONS = {"np", "out", "accumulate", "feed", "array_api_compat"}
RESERVED |= {name + DICT_SUFFIX for name in RESERVED - _NOT_FUNCTIONS}

# An inline expression longer than this gets a line (and a name) of its own.
MAX_INLINE = 72


class Expr(NamedTuple):
    """Source text and its precedence.  A batched expression (a leading axis of
    directions) that is a scaled identity carries its ``diagonal``: ``text``
    spells the whole array, but an operator may use the diagonal instead."""

    text: str
    prec: int
    diagonal: Diagonal | None = None


class Diagonal(NamedTuple):
    """Direction i of a batched vector is ``scale[i] eᵢ`` (``vector``) or ``scale eᵢ``;
    with ``shape`` (the text of m and n), direction (i, j) of a batched m×n matrix
    is the unit matrix Eᵢⱼ (the seed of a matrix variable; ``scale`` is 1), or
    its transpose."""

    scale: Expr
    vector: bool
    shape: tuple[str, str] | None = None
    transposed: bool = False  # a matrix seed transposed: direction (i, j) is Eⱼᵢ


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
    if not name.isascii():
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
    """Expressions of one function.  ``names`` maps var nodes to parameter names.

    ``namer`` hands out the function's locals (the ``dtype`` a fill is made
    with); a subclass prints another dialect (`graphc.emit_array_api`).
    """

    namespace = "np"  # what the module calls its array library
    imports = ("import numpy as np",)
    fixed_dtype: str | None = None  # "float32": every function computes in it (`fixed`)
    # value_and_grad may write into the caller's arrays (``out=``, the ops' emit_into)
    out_buffers = True

    @classmethod
    def fixed(cls, dtype: str | None) -> type[NumpyPrinter]:
        """This printer, for a module whose functions cast every argument to ``dtype``."""
        if dtype is None:
            return cls
        return type(f"{cls.__name__}_{dtype}", (cls,), {"fixed_dtype": dtype})

    def __init__(
        self, names: Mapping[Node, str], dims: Mapping[str, str], namer: Namer | None = None
    ):
        self.names = dict(names)
        self.dim_names = dims
        self.used_dims: set[str] = set()
        self.namer = namer or Namer(self.names.values())
        self.dtype_name: str | None = None  # the local holding the inputs' dtype, once asked
        # A batched node (one that reads a seed of identity directions) -> its seed.
        self.batch: dict[Node, Node] = {}
        self.exprs: dict[Node, Expr] = {}  # what each node printed as, so far
        self.returned: set[Node] = set()  # the function's outputs: arrays the caller owns

    # ---- the operator's own emission ----------------------------------------------
    def emit(self, node: Node, args: Sequence[Expr]) -> Expr:
        return node.op.emit(self, node, *args)

    @classmethod
    def gradient_by_jvp(cls, spec: GradientByJvp, keywords: Mapping[Node, str]) -> list[str]:
        """The body of a `GradientByJvp` function."""
        return _gradient_by_jvp(spec, keywords, cls.fixed_dtype)

    # ---- the function's prelude: what the body reads besides its parameters ------------
    def dtype(self) -> str:
        """The local holding the floating dtype of the inputs (float32 in, float32 out)."""
        if self.dtype_name is None:
            self.dtype_name = self.namer.fresh("dtype")
        return self.dtype_name

    def asked_locals(self) -> bool:
        """Whether an expression asked for a local of the prelude (`forget_unread`)."""
        return self.dtype_name is not None

    def forget_unread(self, words: set[str]) -> None:
        """Forget the locals the function's text does not read (an expression that asked
        for one was printed, then dropped as dead)."""
        if self.dtype_name not in words:
            self.dtype_name = None

    def prelude(self, params: Sequence[str]) -> list[str]:
        """Lines before the dims: the arguments cast to a fixed dtype, and the dtype,
        if the body reads it."""
        if self.fixed_dtype is not None:
            casts = [f"{p} = np.asarray({p}, dtype=np.{self.fixed_dtype})" for p in params]
            dtype = (
                [] if self.dtype_name is None else [f"{self.dtype_name} = np.{self.fixed_dtype}"]
            )
            return casts + dtype
        if self.dtype_name is None:
            return []
        return [f"{self.dtype_name} = {_result_type(params)}"]

    def made(self, fn: str, *args: Expr) -> Expr:
        """``np.zeros(shape, dtype=dtype)``: a new array in the inputs' dtype."""
        return self.call(fn, *args, dtype=self.dtype())

    def mask(self, condition: Expr) -> Expr:
        """1.0 where ``condition`` holds, else 0.0, in the inputs' dtype."""
        return self.postfix(condition, f".astype({self.dtype()})")

    def copied(self, a: Expr) -> Expr:
        """A fresh array with the entries of ``a`` (a view the function returns)."""
        return self.postfix(a, ".copy()")

    # ---- the kinds --------------------------------------------------------------
    def wrap(self, e: Expr, at_least: int) -> str:
        return e.text if e.prec >= at_least else f"({e.text})"

    def infix(self, symbol: str, a: Expr, b: Expr) -> Expr:
        p = PRECEDENCE[symbol]
        if symbol == "**":  # right-associative, and binds tighter than unary minus on its left
            return Expr(f"{self.wrap(a, p + 1)} ** {self.wrap(b, PRECEDENCE['unary'])}", p)
        if p == PRECEDENCE[">"]:  # comparisons chain in Python: parenthesise both sides
            return Expr(f"{self.wrap(a, p + 1)} {symbol} {self.wrap(b, p + 1)}", p)
        left = a.text if a.prec >= p else f"({a.text})"  # wrap(a, p), inlined: it is hot
        right = b.text if b.prec > p else f"({b.text})"
        return Expr(f"{left} {symbol} {right}", p)

    def prefix(self, symbol: str, a: Expr) -> Expr:
        p = PRECEDENCE["unary"]
        return Expr(f"{symbol}{self.wrap(a, p)}", p)

    def call(self, fn: str, *args: Expr, **keywords: str) -> Expr:
        parts = [a.text for a in args] + [f"{k}={v}" for k, v in keywords.items()]
        return Expr(f"{fn}({', '.join(parts)})", PRECEDENCE["postfix"])

    def conditional(self, condition: Expr, a: Expr, b: Expr) -> Expr:
        """``a if condition else b``: Python evaluates only the branch taken."""
        p = PRECEDENCE["if"]
        text = f"{self.wrap(a, p + 1)} if {self.wrap(condition, p + 1)} else {self.wrap(b, p)}"
        return Expr(text, p)

    def postfix(self, a: Expr, suffix: str) -> Expr:
        p = PRECEDENCE["postfix"]
        return Expr(f"{self.wrap(a, p)}{suffix}", p)

    def literal(self, value: float, integral: bool = False) -> Expr:
        if math.isnan(value):
            return Expr(f"{self.namespace}.nan", PRECEDENCE["atom"])
        if math.isinf(value):
            return (
                Expr(f"{self.namespace}.inf", PRECEDENCE["atom"])
                if value > 0
                else Expr(f"-{self.namespace}.inf", PRECEDENCE["unary"])
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

    def size(self, t: Type) -> Dim:
        n = Dim.of(1)
        for d in t.dims:
            n = n * d
        return n

    def directions(self, node: Node) -> str:
        """How many directions the batched ``node`` carries (the size of its seed)."""
        return self.dim(self.size(self.batch[node].type))

    # ---- batched emission: a leading axis of directions -------------------------
    def identity(self, seed: Node) -> Expr:
        """The seed of every direction along a variable's entries, leading axis first."""
        t = seed.type
        if t.is_scalar:
            return self.call("np.ones", self.raw("1"))
        if t.is_vector:
            eye = self.call("np.eye", self.raw(self.dim(t.dims[0])))
            return Expr(eye.text, eye.prec, Diagonal(self.literal(1.0), False))
        n = self.dim(self.size(t))
        eye = self.call("np.eye", self.raw(n))
        dense = self.call(f"{eye.text}.reshape", self.raw(f"({n}, {self.shape(t)[1:-1]})"))
        rows, cols = (self.dim(d) for d in t.dims)
        return Expr(dense.text, dense.prec, Diagonal(self.literal(1.0), False, (rows, cols)))

    def diagonal(self, scale: Expr, vector: bool, n: str) -> Expr:
        """A scaled identity: ``np.diag(s)``, ``s * np.eye(n)`` or ``np.eye(n)``."""
        if vector:
            text = self.call("np.diag", scale)
        elif scale.text == "1.0":
            text = self.call("np.eye", self.raw(n))
        else:
            text = self.infix("*", scale, self.call("np.eye", self.raw(n)))
        return Expr(text.text, text.prec, Diagonal(scale, vector))

    def with_directions(self, a: Expr, rank: int, to_rank: int, down: bool = False) -> Expr:
        """A batched argument of per-direction rank ``rank`` lined up with ``to_rank``;
        ``down``: a vector spread across a matrix's columns (``[:, :, None]``)."""
        if rank >= to_rank:
            return a
        if down:
            return self.postfix(a, "[:, :, None]")
        return self.postfix(
            a, "[" + ", ".join([":"] + ["None"] * (to_rank - rank) + [":"] * rank) + "]"
        )

    def elementwise_batched(
        self, node: Node, batched: Sequence[bool], args: Sequence[Expr]
    ) -> Expr:
        """An elementwise operator on batched operands: NumPy broadcasts the trailing
        axes; a scaled identity stays one through an operator linear in it."""
        linear_in_it = node.op.linear or node.op.bilinear
        diagonals = [a.diagonal for a, b in zip(args, batched) if b]
        if (
            linear_in_it
            and len(diagonals) == 1
            and diagonals[0] is not None
            and diagonals[0].shape is None
        ):
            d = diagonals[0]
            others = [(a, n) for a, n, b in zip(args, node.args, batched) if not b]
            spread = any(n.type.dims != node.type.dims for n, b in zip(node.args, batched) if b)
            if not spread and all(
                n.type.is_scalar or n.type.dims == node.type.dims for _, n in others
            ):
                scale_args = [d.scale if b else a for a, b in zip(args, batched)]
                if node.op.bilinear and d.scale.text == "1.0":  # 1 · v
                    scale = next(a for a, b in zip(args, batched) if not b)
                else:
                    scale = node.op.emit(self, node, *scale_args)
                vector = d.vector or any(not n.type.is_scalar for _, n in others)
                return self.diagonal(scale, vector, self.directions(node))
        lined = [
            self.with_directions(a, n.type.rank, node.type.rank, _runs_down(n.type, node.type))
            if b
            else a
            for a, n, b in zip(args, node.args, batched)
        ]
        return node.op.emit(self, node, *lined)

    def batched(self, node: Node, args: Sequence[Expr]) -> Expr:
        batched = [a in self.batch for a in node.args]
        if node.op.emit_batched is not None:
            return node.op.emit_batched(self, node, batched, *args)
        if node.op.elementwise:
            return self.elementwise_batched(node, batched, args)
        raise NotImplementedError(f"{node.op.name} has no batched emission (emit_batched)")

    def fill(self, value: float, t: Type) -> Expr:
        if t.is_scalar:
            return self.literal(value)
        if value == 0.0:
            return self.made("np.zeros", self.raw(self.shape(t)))
        if value == 1.0:
            return self.made("np.ones", self.raw(self.shape(t)))
        return self.made("np.full", self.raw(self.shape(t)), self.literal(value))


def _result_type(params: Sequence[str]) -> str:
    """The inputs' floating dtype: ``1.0`` makes integers float64 and leaves float32
    alone (a Python float does not promote an array: NEP 50)."""
    return f"np.result_type({', '.join([*params, '1.0'])})"


def _read_dim(
    source: DimSource[Node], param_names: Mapping[Node, str], dim_text: Callable[[Dim], str]
) -> str:
    """``(W.shape[1] - n) // 2``: an unbound dim's size, read from a parameter."""
    size = f"{param_names[source.variable]}.shape[{source.axis}]"
    if source.offset != 0:
        size = f"({size} - {dim_text(source.offset)})"
    return f"{size} // {dim_text(source.coeff)}" if source.coeff != 1 else size


def _runs_down(arg: Type, out: Type) -> bool:
    """A vector operand spread across a matrix's columns (its dim is the row dim)."""
    return arg.is_vector and out.is_matrix and vector_axis(arg, out) == 0


def _passthrough(expr: Expr, args: Sequence[Expr]) -> bool:
    """The operator printed as one of its arguments (a vector transpose, stop)."""
    for a in args:
        if expr is a:
            return True
    return False


class _Statement(NamedTuple):
    node: Node
    target: str
    text: str
    reads: frozenset[Node]  # the stored nodes its expression reads


def function_body(
    printer: NumpyPrinter,
    graph: Graph,
    outputs: Sequence[Node],
    namer: Namer,
    directions: Sequence[Node] = (),
    early: Iterable[Node] = (),
    exprs_out: dict[Node, Expr] | None = None,
    returned: Callable[[list[Expr]], str] | None = None,
    early_form: Callable[[Node, Expr], Expr] | None = None,
) -> tuple[list[str], list[Expr], dict[Node, str]]:
    """Statements computing ``outputs``, the expression of each output, and the
    name of each node that got a statement.

    A seed in ``directions`` is not a parameter: it is every unit direction of
    its type at once, stacked on a leading axis (the identity); each node that
    reads one carries that axis too (`NumpyPrinter.batched`).

    Memory is scheduled as a NumPy programmer would: an output in ``early``
    (a gradient) gets a statement as soon as its arguments exist when that
    lets a temporary die sooner, and each array temporary is deleted
    (``del t1, H2``) after its last use when more statements follow, so the
    peak holds what the derivation needs at once, not every intermediate.
    ``exprs_out``, if given, receives every node's expression.

    The graph's kept nodes (the program's names that a rewrite took the
    outputs' path around) are computed too, each under its name, where their
    arguments are at hand: the function does not return them.

    A statement that nothing later reads is dropped (a node stored because the
    graph uses it twice may be printed through another: a batched ``Wᵀ`` reads
    ``W``); what a line reads is read off its text, so the deletions follow
    the text too.  ``returned`` gives the text the function returns from the
    outputs' expressions (default: those expressions); ``early_form`` the
    right-hand side of the line of an output in ``early`` scheduled early
    (default: its expression).
    """
    kept = list(graph.kept) if not directions else []
    order = topological_order([*kept, *outputs])  # the program's names in program order
    batch = printer.batch
    for node in order if directions else ():  # only a seed of directions starts a batch
        if node in directions:
            batch[node] = node
        else:
            seeds = {batch[a] for a in node.args if a in batch}
            if len(seeds) > 1:
                raise NotImplementedError("a node reads two seeds of directions")
            if seeds:
                batch[node] = seeds.pop()
    uses = use_counts(order)
    _count_repeated_reads(order, uses)
    for out in outputs:
        uses[out] = uses.get(out, 0) + 1
    returned_set = set(outputs)
    # The program's own names first, so that temporaries step around them.
    reserved = {
        node: namer.fresh(graph.names[node])
        for node in order
        if node in graph.names and not node.op.inline
    }
    exprs: dict[Node, Expr] = {}
    statements: list[_Statement] = []
    stored: dict[Node, str] = {}
    printer.exprs = exprs
    printer.returned = returned_set
    for node in order:
        args = [exprs[a] for a in node.args]
        if node in batch:
            expr = printer.identity(node) if node in directions else printer.batched(node, args)
        else:
            expr = printer.emit(node, args)
        if node.op.inline or (_passthrough(expr, args) and node not in reserved):
            exprs[node] = expr  # costs nothing: never stored
            continue
        shared = uses.get(node, 0) > 1
        long_inline = len(expr.text) > MAX_INLINE and node not in returned_set
        if node in reserved or shared or long_inline:
            if node in reserved:
                target = reserved[node]
            elif node in graph.hints:
                target = namer.fresh(graph.hints[node])
            else:
                target = namer.fresh("t", numbered=True)
            if expr.diagonal is not None and expr.diagonal.shape is None:  # the diagonal only
                scale = expr.diagonal.scale
                if scale.prec < PRECEDENCE["atom"]:
                    statements.append(_Statement(node, target, scale.text, frozenset()))
                    stored[node] = target
                    scale = Expr(target, PRECEDENCE["atom"])
                exprs[node] = printer.diagonal(
                    scale, expr.diagonal.vector, printer.directions(node)
                )
                continue
            statements.append(_Statement(node, target, expr.text, frozenset()))
            stored[node] = target
            expr = Expr(target, PRECEDENCE["atom"])
        exprs[node] = expr
    out_exprs = [exprs[o] for o in outputs]
    roots = returned(out_exprs) if returned is not None else "\n".join(e.text for e in out_exprs)
    roots += "".join(f"\n{stored[k]}" for k in kept if k in stored)
    statements, reads = _live_statements(statements, outputs, exprs, roots)
    hoisted = _hoisted(statements, outputs, early, reads, exprs)
    output_names = {node: name for name, node in graph.outputs.items()}
    lines: list[str] = []
    dying = _deaths(statements, hoisted, outputs, reads, lambda n: n in batch or _large(n.type))
    for at, statement in enumerate(statements):
        lines.append(f"{statement.target} = {statement.text}")
        for node in hoisted.get(at, ()):
            target = namer.fresh(output_names.get(node) or graph.hints.get(node) or "t")
            expr = exprs[node] if early_form is None else early_form(node, exprs[node])
            lines.append(f"{target} = {expr.text}")
            stored[node] = target
            exprs[node] = Expr(target, PRECEDENCE["atom"])
        if dying.get(at):
            lines.append("del " + ", ".join(stored[n] for n in dying[at]))
    if exprs_out is not None:
        exprs_out.update(exprs)
    return lines, [exprs[o] for o in outputs], stored


def _count_repeated_reads(order: Sequence[Node], uses: dict[Node, int]) -> None:
    """An operand an operator's emission reads twice (`Op.repeats`) counts as shared,
    so that it is computed once, into a name."""
    for node in order:
        repeats = node.op.repeats
        if repeats is not None and repeats(node):
            for a in node.args:
                uses[a] = uses.get(a, 0) + 1


_WORD = re.compile(r"\w+")


def _live_statements(
    statements: Sequence[_Statement],
    outputs: Sequence[Node],
    exprs: Mapping[Node, Expr],
    roots: str,
) -> tuple[list[_Statement], dict[Node, frozenset[Node]]]:
    """The statements that ``roots`` (the returned text) needs, each with the stored
    nodes its text reads, and the stored nodes each output's expression reads."""
    defined: dict[str, Node] = {}
    names = defined.keys()  # a set view: `names & words` is the words defined so far
    node_of = defined.__getitem__
    with_reads = []
    for s in statements:
        read = frozenset(map(node_of, names & _WORD.findall(s.text)))
        with_reads.append(_Statement(s.node, s.target, s.text, read))
        defined[s.target] = s.node
    live = set(map(node_of, names & _WORD.findall(roots)))
    kept = []
    for s in reversed(with_reads):
        if s.node in live:
            kept.append(s)
            live |= s.reads
    reads = {o: frozenset(map(node_of, names & _WORD.findall(exprs[o].text))) for o in outputs}
    return kept[::-1], reads


def _hoisted(
    statements: Sequence[_Statement],
    outputs: Sequence[Node],
    early: Iterable[Node],
    reads: Mapping[Node, frozenset[Node]],
    exprs: Mapping[Node, Expr],
) -> dict[int, list[Node]]:
    """Outputs in ``early`` written right after the last statement that reads
    what they read, by statement index, where that makes them the last use of
    a temporary with more statements to follow (so it can be deleted then)."""
    position = {s.node: at for at, s in enumerate(statements)}
    wanted = set(early)
    candidates = [
        o
        for o in dict.fromkeys(outputs)
        if o in wanted
        and o not in position
        and exprs[o].prec < PRECEDENCE["atom"]
        and o.op.name != "transpose"  # a view keeps what it reads alive: nothing to gain
    ]
    if not candidates or not statements:
        return {}
    base_last = dict(position)  # each stored node's last use by a statement
    for at, s in enumerate(statements):
        for d in s.reads:
            base_last[d] = at
    readers: dict[Node, list[Node]] = {}
    for c in candidates:
        for d in reads[c]:
            readers.setdefault(d, []).append(c)
    # Each as late as anything else still needs what it reads: then the last of
    # those written there reads it for the last time, and it can be deleted.
    at_of = {c: max((base_last[d] for d in reads[c]), default=-1) for c in candidates}
    todo = list(candidates)
    while todo:  # positions only grow, up to the last statement
        c = todo.pop()
        for d in reads[c]:
            for other in readers[d]:
                if at_of[other] < at_of[c]:
                    at_of[other] = at_of[c]
                    todo.append(other)
    final = len(statements) - 1
    returned = set(outputs)
    hoisted: dict[int, list[Node]] = {}
    for c in candidates:
        at = at_of[c]
        # (a list, not a generator: the work does not depend on the set's order)
        frees = any([d not in returned and d.type.rank > 0 for d in reads[c]])
        if frees and 0 <= at < final:
            hoisted.setdefault(at, []).append(c)
    return hoisted


def _deaths(
    statements: Sequence[_Statement],
    hoisted: Mapping[int, Sequence[Node]],
    outputs: Sequence[Node],
    reads: Mapping[Node, frozenset[Node]],
    large: Callable[[Node], bool],
) -> dict[int, list[Node]]:
    """Large array temporaries (``large``) to delete after each statement index
    (with what is hoisted after it): those read for the last time there, when a
    statement that allocates an array follows.  A small one is left to the
    function's return, as a hand would: its line would cost more to compile
    than its memory."""
    last: dict[Node, int] = {}
    for at, s in enumerate(statements):
        for d in s.reads:
            last[d] = at
        for c in hoisted.get(at, ()):
            for d in reads[c]:
                last[d] = at
    kept = set(outputs)
    for s in statements:
        if s.node.op.name == "transpose":
            kept |= s.reads  # a view keeps them alive: deleting the name frees nothing
    written_early = {n for nodes in hoisted.values() for n in nodes}
    for o in outputs:
        if o not in written_early:
            kept |= reads[o]  # read by the return statement
    # Deleting pays only if an array is allocated afterwards.
    final = max(
        (at for at, s in enumerate(statements) if s.node.type.rank > 0),
        default=-1,
    )
    dying: dict[int, list[Node]] = {}
    for s in statements:
        at = last.get(s.node)
        if at is not None and at < final and s.node not in kept and large(s.node):
            dying.setdefault(at, []).append(s.node)
    return dying


# ---- the module's functions, as data ------------------------------------------


@dataclass(frozen=True)
class Stacked:
    """A batched node returned as a Jacobian, laid out output shape + variable shape.

    ``node`` carries the directions of ``seed`` on a leading axis.  Forward
    (``seed`` at a variable of type T, ``node`` of per-direction type S): the
    array [size T, *S] becomes S + T.  Reverse (``seed`` at the output, of type
    S; ``node`` the cotangent of a variable of type T): [size S, *T] becomes S + T.
    """

    node: Node
    seed: Node
    forward: bool


# What a function returns: an output node, a tuple, or a dict literal keyed by
# program names ({"W": ∂J/∂W}), nested as needed.
Returned = Node | Stacked | tuple["Returned", ...] | Mapping[str, "Returned"]


def returned_nodes(returns: Returned) -> list[Node]:
    """The nodes a return description mentions, in the order it prints them."""
    nodes, todo = [], [returns]
    while todo:
        item = todo.pop()
        if isinstance(item, Node):
            nodes.append(item)
        elif isinstance(item, Stacked):
            nodes.append(item.node)
        else:
            todo.extend(reversed(list(item.values() if isinstance(item, Mapping) else item)))
    return nodes


def _gradients(returns: Returned) -> list[Node]:
    """The nodes a return description keys by name (gradients): written as soon as final."""
    found, todo = [], [returns]
    while todo:
        item = todo.pop()
        if isinstance(item, Mapping):
            found += [v for v in item.values() if isinstance(v, Node)]
            todo += [v for v in item.values() if not isinstance(v, Node)]
        elif isinstance(item, tuple):  # a Stacked (batched) result stays where it is
            todo.extend(item)
    return found


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
    # returns is (value, {name: gradient}) and the function takes ``out=None,
    # accumulate=False``: with ``out`` (arrays by name) it writes the gradients
    # into those arrays (adds to them with ``accumulate``) and returns (value, out)
    writes_into: bool = False
    directions: Sequence[Node] = ()  # seeds of identity directions (not parameters)

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


# The characters `_inert` may change: quotes, backslashes, and any but printable ASCII,
# tab and newline (a printable non-ASCII character stays itself).
_NOT_PLAIN = re.compile(r'[^\t\n\x20-\x7e]|["\\]')


def _docstring(text: str, indent: str = "") -> str:
    # Program text and file names may hold anything; they stay text.
    safe = _NOT_PLAIN.sub(lambda m: _inert(m.group()), text)
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
    printer: NumpyPrinter | None = None
    exprs: dict[Node, Expr] | None = None
    returned: str = ""  # the text after ``return``
    # gradient -> the key of the caller's buffer its early line writes into (`_into_early`)
    written_early: dict[Node, str] = field(default_factory=dict)


def _layout(
    spec: FunctionSpec,
    keywords: Mapping[Node, str],
    variables: Sequence[Node],
    printer_class: type[NumpyPrinter] = NumpyPrinter,
) -> _Layout:
    """Dims read from the parameters, then the statements of ``spec``'s graph."""
    params = {p: keywords[p] for p in spec.params}
    dims_needed = {n for v in variables for d in v.type.dims for mono, _ in d.terms for n in mono}
    namer = Namer(params.values(), avoid_builtins=True)
    dim_names = {d: namer.fresh(d) for d in sorted(dims_needed)}
    printer = printer_class(params, dim_names, namer)
    exprs: dict[Node, Expr] = {}
    written: dict[Node, str] = {}
    lines, outs, stored = function_body(
        printer,
        spec.graph,
        spec.outputs,
        namer,
        spec.directions,
        early=_gradients(spec.returns),
        exprs_out=exprs,
        returned=lambda outs: _returned_text(spec.returns, iter(outs), printer),
        early_form=_into_early(spec, printer, written) if spec.writes_into else None,
    )
    returned = _returned_text(spec.returns, iter(outs), printer)  # may read dims too
    # The dims the text uses (an operator may have spelled one it then did not print),
    # and the locals it reads.
    words: set[str] = set()
    if printer.used_dims or printer.asked_locals():
        words = set(re.findall(r"\w+", "\n".join([*lines, returned])))
    needed, todo = set(), sorted(d for d in printer.used_dims if dim_names[d] in words)
    sources = dim_sources([(v, v.type) for v in variables]) if todo else {}
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
    printer.forget_unread(words)
    # the floating inputs decide the dtype (and are cast to a fixed one); ids stay integers
    floats = [name for v, name in params.items() if not v.type.integer]
    prelude = printer.prelude(floats) + prelude
    return _Layout(namer, [*prelude, *lines], outs, stored, printer, exprs, returned, written)


# An array is large from this many entries, or where its size is known only at run
# time.  A large temporary is deleted after its last use (`_deaths`), and a large
# gradient scheduled early writes into its buffer there (`_into_early`).  A small one
# (16 KiB at float64) is neither: its memory costs less than its line does.  A small
# gradient is copied at the end and keeps the line a hand writes: the conditional lines
# of the tanh chain's 1,000 16×16 gradients made Python's compile of its gradient
# function a third slower (130 → 173 ms CPU, measured when they were written so), and
# its 1,000 `del` lines of 16-vectors another 47 ms.
LARGE_ENTRIES = 2048


def _into_early(
    spec: FunctionSpec, printer: NumpyPrinter, written: dict[Node, str]
) -> Callable[[Node, Expr], Expr]:
    """The line of a large gradient scheduled early, in a function that writes into
    ``out``: ``dJ_dW3 = H2.T @ t1 if out is None or accumulate else np.matmul(H2.T,
    t1, out=out['W3'])``, so that overwriting allocates no array for it and copies
    none at the end (``out['W3'][...] = dJ_dW3`` then assigns an array to itself,
    which NumPy skips).  Records each such gradient in ``written`` with its buffer's
    key."""
    keys: dict[Node, str] = {}
    for key, node in spec.returns[1].items():
        keys.setdefault(node, key)

    def line(node: Node, expr: Expr) -> Expr:
        if node.op.emit_into is None or node not in keys or not _large(node.type):
            return expr
        args = [printer.exprs[a] for a in node.args]
        form = node.op.emit_into(printer, node, f"out[{keys[node]!r}]", *args)
        if form is None:
            return expr
        written[node] = keys[node]
        return printer.conditional(printer.raw("out is None or accumulate"), expr, form)

    return line


def _large(t: Type) -> bool:
    """Whether an array of type ``t`` has `LARGE_ENTRIES` entries, or may have."""
    entries = t.entries
    return entries is None or entries >= LARGE_ENTRIES


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
    kept = spec.graph.kept if not spec.directions else ()  # computed, as function_body does
    for node in topological_order([*kept, *spec.outputs]):
        if node.op.name == "var":
            labels[node] = node.attr("name")
        elif node.op.name == "const":
            labels[node] = repr(node.attr("value"))
        elif node in layout.stored:
            labels[node] = layout.stored[node]
        else:
            labels[node] = layout.namer.fresh("t", numbered=True)
    return labels


def function_locals(
    spec: FunctionSpec, keywords: Mapping[Node, str], variables: Sequence[Node]
) -> dict[Node, str]:
    """The nodes ``spec``'s emitted function computes in a statement of their own,
    each with its local name, in the order of the statements."""
    return dict(_layout(spec, keywords, variables).stored)


def _stacked_text(p: NumpyPrinter, item: Stacked, expr: Expr) -> str:
    """A batched result moved to numerator layout (see `Stacked`)."""
    out_type = item.node.type if item.forward else item.seed.type
    var_type = item.seed.type if item.forward else item.node.type
    s, t = out_type.rank, var_type.rank
    if item.node not in p.batch:  # a tangent that reads no seed is zero
        return p.call("np.zeros", p.raw(p.shape(Type(out_type.dims + var_type.dims)))).text
    if item.forward:  # [size T, *S] -> S + T
        if t == 0:
            return p.postfix(expr, "[0]").text
        if s == 0:
            return (
                expr.text
                if t == 1
                else p.call(
                    f"{p.wrap(expr, PRECEDENCE['postfix'])}.reshape", p.raw(p.shape(var_type))
                ).text
            )
        if s == 1 and t == 1:
            return p.postfix(expr, ".T").text
        both = p.shape(Type(var_type.dims + out_type.dims))
        moved = p.call(f"{p.wrap(expr, PRECEDENCE['postfix'])}.reshape", p.raw(both))
        source = "(" + ", ".join(str(i) for i in range(t)) + ("," if t == 1 else "") + ")"
        target = "(" + ", ".join(str(s + i) for i in range(t)) + ("," if t == 1 else "") + ")"
        return p.call("np.moveaxis", moved, p.raw(source), p.raw(target)).text
    if s == 0:  # [size S, *T] -> S + T
        return p.postfix(expr, "[0]").text
    if s == 1:
        return expr.text
    both = p.shape(Type(out_type.dims + var_type.dims))
    return p.call(f"{p.wrap(expr, PRECEDENCE['postfix'])}.reshape", p.raw(both)).text


def _returned_text(
    returns: Returned, exprs: Iterator[Expr], printer: NumpyPrinter, top: bool = True
) -> str:
    """``J, {'W': dJ_dW}``: a return description with each node's expression."""
    if isinstance(returns, Node):
        return next(exprs).text
    if isinstance(returns, Stacked):
        return _stacked_text(printer, returns, next(exprs))
    if isinstance(returns, Mapping):
        items = ", ".join(
            f"{key!r}: {_returned_text(item, exprs, printer, False)}"
            for key, item in returns.items()
        )
        return "{" + items + "}"
    items = [_returned_text(item, exprs, printer, False) for item in returns]
    text = ", ".join(items) + ("," if len(items) == 1 else "")
    return text if top and items else f"({text})"


def _graph_function(
    spec: FunctionSpec,
    keywords: Mapping[Node, str],
    variables: Sequence[Node],
    printer_class: type[NumpyPrinter] = NumpyPrinter,
) -> list[str]:
    layout = _layout(spec, keywords, variables, printer_class)
    returned = f"return {layout.returned}"
    if not spec.writes_into:
        return [*layout.lines, returned]
    return [*layout.lines, *_written_into(spec, layout, returned)]


def _written_into(spec: FunctionSpec, layout: _Layout, returned: str) -> list[str]:
    """The end of a function that writes its gradients into the caller's ``out``.

    Overwriting, the last operation of each gradient writes into its array
    (``np.matmul(…, out=out['W'])``, the op's ``emit_into``), so nothing the
    size of a gradient is allocated; accumulating adds (``+=``).  Beyond
    `GRADIENT_LINES_LIMIT` gradients, those already in a local (or a literal)
    are written by one loop over ``(name, local)`` pairs instead of two lines
    each: the module compiles faster, and a call runs the same NumPy calls.
    """
    value, gradients = spec.returns
    assert layout.exprs is not None and layout.printer is not None
    value_text = _returned_text(value, iter(layout.outputs), layout.printer)
    looped = len(gradients) > GRADIENT_LINES_LIMIT
    added, written, pairs = [], [], []
    for key, node in gradients.items():
        target = f"out[{key!r}]"
        expr = layout.exprs[node]
        if looped and expr.prec >= PRECEDENCE["atom"]:
            pairs.append(f"({key!r}, {expr.text})")
            continue
        added.append(f"    {target} += {expr.text}")
        if layout.written_early.get(node) == key:
            continue  # its early line wrote it there
        form = None
        if expr.prec < PRECEDENCE["atom"] and node.op.emit_into is not None:
            args = [layout.exprs[a] for a in node.args]
            form = node.op.emit_into(layout.printer, node, target, *args)
        written.append("    " + (form.text if form is not None else f"{target}[...] = {expr.text}"))
    writing = ["if accumulate:", *added, *(["else:", *written] if written else [])] if added else []
    if pairs:
        name, grad = layout.namer.fresh("name"), layout.namer.fresh("grad")
        writing += [
            *_wrapped(f"for {name}, {grad} in (", pairs, "):"),
            "    if accumulate:",
            f"        out[{name}] += {grad}",
            "    else:",
            f"        out[{name}][...] = {grad}",
        ]
    return ["if out is None:", f"    {returned}", *writing, f"return {value_text}, out"]


def _wrapped(opening: str, items: Sequence[str], closing: str, width: int = 88) -> list[str]:
    """``opening`` + the comma-separated ``items`` + ``closing``: one line if it fits,
    else several items a line, indented under ``opening``."""
    one = f"{opening}{', '.join(items)}{',' if len(items) == 1 else ''}{closing}"
    if len(one) <= width:
        return [one]
    return [opening, *_item_lines(items, width), closing]


def _item_lines(items: Sequence[str], width: int = 88) -> list[str]:
    """``items``, each followed by a comma, several a line, indented by four spaces."""
    lines, line = [], "   "
    for item in items:
        if len(line) + len(item) + 2 > width and line.strip():
            lines.append(line)
            line = "   "
        line += f" {item},"
    return [*lines, line] if line.strip() else lines


def _gradient_by_jvp(
    spec: GradientByJvp, keywords: Mapping[Node, str], fixed_dtype: str | None = None
) -> list[str]:
    """Unit tangents, one entry at a time, for each variable in turn, in the
    inputs' dtype (or ``fixed_dtype``).

    Its locals are kept apart from the parameters (a program may call a
    variable ``i``, ``grad`` or ``zero``), and it calls no Python builtin
    that a parameter could shadow (``dict``).
    """
    params = [keywords[p] for p in spec.params]
    namer = Namer(params)
    dtype, zero, grads, name, seed, primal, grad, i, tangents = (
        namer.fresh(w)
        for w in ("dtype", "zero", "grads", "name", "seed", "primal", "grad", "i", "tangents")
    )
    zeros = ", ".join(
        f"{keywords[t]!r}: np.zeros(np.shape({keywords[v]}), {dtype})" for v, t in spec.tangents
    )
    table = ", ".join(
        f"({v.attr('name')!r}, {keywords[t]!r}, {keywords[v]})" for v, t in spec.tangents
    )
    floats = [keywords[p] for p in spec.params if not p.type.integer]  # ids: no dtype
    call_all = "".join(f"{p}={p}, " for p in params)
    return [
        f"{dtype} = {f'np.{fixed_dtype}' if fixed_dtype else _result_type(floats)}",
        f"{zero} = {{{zeros}}}",
        f"{grads} = {{}}",
        f"for {name}, {seed}, {primal} in ({table}{',' if len(spec.tangents) == 1 else ''}):",
        f"    {grad} = np.zeros(np.shape({primal}), {dtype})",
        f"    for {i} in np.ndindex({grad}.shape):",
        f"        {tangents} = {{**{zero}, {seed}: np.zeros(np.shape({primal}), {dtype})}}",
        f"        {tangents}[{seed}][{i}] = 1.0",
        f"        {grad}[{i}] = {spec.jvp}({call_all}**{tangents})[1]",
        f"    {grads}[{name}] = {grad}",
        f"return {spec.value}({call_all.rstrip(', ')}), {grads}",
    ]


def emit_function(
    spec: Function,
    keywords: Mapping[Node, str],
    variables: Sequence[Node] = (),
    printer: type[NumpyPrinter] = NumpyPrinter,
) -> str:
    """The source of one function: signature, docstring, body.

    ``keywords`` names every var node the function takes; ``variables`` are
    the program's, which the sizes of unbound dims are read from; ``printer``
    is the dialect (this module's NumPy, or `graphc.emit_array_api`'s).
    """
    return _emit_function(spec, keywords, _function_body(spec, keywords, variables, printer))


def _function_body(
    spec: Function,
    keywords: Mapping[Node, str],
    variables: Sequence[Node],
    printer: type[NumpyPrinter],
) -> list[str]:
    if isinstance(spec, GradientByJvp):
        return printer.gradient_by_jvp(spec, keywords)
    return _graph_function(spec, keywords, variables, printer)


def _emit_function(spec: Function, keywords: Mapping[Node, str], body: list[str]) -> str:
    params = [keywords[p] for p in spec.params]
    if isinstance(spec, FunctionSpec) and spec.writes_into:
        params += ["out=None", "accumulate=False"]
    text = def_line(spec.name, params)
    text += _docstring(spec.doc, "    ") + "\n"
    text += "".join(f"    {line}\n" for line in body)
    return text


# The most parameters a function binds by keyword and still holds its body:
# Python binds each keyword argument by searching the parameters, so a call
# by keyword is quadratic in their number (2,000 keywords: 1.9 ms a call).
KEYWORD_BODY_LIMIT = 32
# The most gradients written into ``out`` by lines of their own (see `_written_into`).
GRADIENT_LINES_LIMIT = 32


def _twins(spec: Function, keywords: Mapping[Node, str], body: list[str]) -> tuple[str, str]:
    """``f(*, x, W)`` and its twin ``f_dict(feed, /)``, which takes the arrays in one
    dict keyed by their names in the program.

    The body is printed once: in ``f`` while it has at most
    `KEYWORD_BODY_LIMIT` parameters (``f_dict`` then calls ``f``), else in
    ``f_dict``, which reads each array from the dict in a line of its own, so
    that a call stays linear in the number of variables (``f`` then calls
    ``f_dict``).
    """
    into = isinstance(spec, FunctionSpec) and spec.writes_into
    extra = ", out=None, accumulate=False" if into else ""
    twin = f"{spec.name}{DICT_SUFFIX}"
    head = f"def {twin}(feed, /{extra}):\n"
    head += (
        f'    """{spec.name} with the arrays in one dict, keyed by their names in the program."""\n'
    )
    if len(spec.params) <= KEYWORD_BODY_LIMIT:
        passed = [f"{keywords[p]}=feed[{p.attr('name')!r}]" for p in spec.params]
        passed += ["out=out", "accumulate=accumulate"] if into else []
        call = _call_lines(spec.name, passed)
        return _emit_function(spec, keywords, body), head + "".join(f"    {c}\n" for c in call)
    unpacked = [f"{keywords[p]} = feed[{p.attr('name')!r}]" for p in spec.params]
    dict_fn = head + "".join(f"    {line}\n" for line in [*unpacked, *body])
    by_name = ", ".join(f"{p.attr('name')!r}: {keywords[p]}" for p in spec.params)
    passed = ["{" + by_name + "}"] + (["out", "accumulate"] if into else [])
    return _emit_function(spec, keywords, _call_lines(twin, passed)), dict_fn


def _call_lines(name: str, args: Sequence[str]) -> list[str]:
    """``return name(a, b)``, one argument a line when they are many."""
    one = f"return {name}({', '.join(args)})"
    if len(one) <= 90:
        return [one]
    return [f"return {name}(", *(f"    {a}," for a in args), ")"]


def emit_module(
    doc: str,
    functions: Sequence[Function],
    keywords: Mapping[Node, str],
    variables: Sequence[Node] = (),
    printer: type[NumpyPrinter] = NumpyPrinter,
) -> str:
    """A module: the docstring ``doc``, ``import numpy as np`` (or the printer's
    imports), the functions."""
    parts = [_docstring(doc), "", *printer.imports, ""]
    for fn in functions:
        for text in _twins(fn, keywords, _function_body(fn, keywords, variables, printer)):
            parts += ["", text.rstrip("\n"), ""]
    return "\n".join(parts).rstrip("\n") + "\n"


# ---- the compiled function's checked entry (graphc.runtime.CompiledFunction) --------------


class EntryBody(NamedTuple):
    """A function's statements and the text it returns (``J, {'W': …}``), for a
    checked entry that computes in its own body rather than calling the module."""

    statements: tuple[str, ...]
    returned: str


def entry_body(
    spec: Function,
    keywords: Mapping[Node, str],
    variables: Sequence[Node] = (),
    printer: type[NumpyPrinter] = NumpyPrinter,
) -> EntryBody | None:
    """``spec``'s body as `checked_entry` prints it: the statements of its layout
    (writing into no buffers) and what it returns; None for a function that is not
    a graph's, or takes more than `KEYWORD_BODY_LIMIT` parameters (its body is in
    its dict twin, which the compiled function calls)."""
    if not isinstance(spec, FunctionSpec) or len(spec.params) > KEYWORD_BODY_LIMIT:
        return None
    layout = _layout(replace(spec, writes_into=False), keywords, variables, printer)
    return EntryBody(tuple(layout.lines), layout.returned)


def _has_shape(array: str, shape: Sequence[int]) -> str:
    """Whether the ndarray ``array`` has the fixed ``shape``: a vector's by its ``ndim``
    and ``len``, which build no tuple (``x.shape`` makes one a call: 1.7× the time)."""
    if len(shape) == 1:
        return f"{array}.ndim == 1 and len({array}) == {shape[0]}"
    return f"{array}.shape == {tuple(shape)!r}"


class CheckedEntry(NamedTuple):
    """The source of a program's checked ``value_and_grad``, and the names its text
    reads the runtime's objects by, by role: ``"call"`` (the module's
    ``value_and_grad``), ``"slow"`` (the general path), ``"finish"`` (the results'
    conversions), ``"ndarray"``, ``"missing"`` (the default of a keyword not given),
    ``"fits"`` and ``"fit"`` (shapes known to fit, and the check of others), ``"np"``
    (NumPy, which a body read from the module calls ``np``), and each accepted dtype
    by its name (``"float64"``)."""

    source: str
    names: dict[str, str]


def checked_entry(
    variables: Sequence[tuple[str, tuple[int | str, ...]]],
    scalars: Sequence[str],
    dtypes: Sequence[str],
    body: EntryBody | None = None,
) -> CheckedEntry:
    """``value_and_grad(*, x=…, W=…, out=None, accumulate=False, **more)``: the feed
    check of `graphc.runtime.FeedPlan` as straight-line code, with the program's names
    and shapes as constants.

    ``variables``: each variable's keyword (its program name) and the shape it must
    have (integers, and the names of dims bound by the first array fed for them);
    ``scalars``: the gradients that are scalars; ``dtypes``: the names of the dtypes a
    call may compute in (one: a fixed dtype).  The tuple of shapes is compared with a
    constant where every dim is an integer; else it is looked up in ``fits`` (those
    known to fit) or checked by ``fit``.

    A call by these keywords of ndarrays of one accepted dtype in the declared shapes
    runs ``body`` (the module's value_and_grad's, `entry_body`: no second call and
    no keywords passed again, a fifth of the entry's cost on window NER d = 3), or
    else calls the module; the results are returned as they are when the value,
    and every scalar gradient, is a NumPy scalar of that dtype (a gradient with axes
    is a floating ndarray by construction: every operator's emission of an array is
    one, and one that could be a fed array takes no entry), else ``finish`` converts
    them.  Any other call goes to ``slow`` (the general check, its conversions and
    its errors).
    """
    params = [name for name, _ in variables]
    read = "\n".join([*body.statements, body.returned]) if body else ""
    namer = Namer([*params, *re.findall(r"\w+", read)], avoid_builtins=True)  # the body's too
    roles = ("call", "slow", "finish", "ndarray", "missing", "fits", "fit", *dtypes)
    names = {role: namer.fresh("_" + role) for role in roles}
    names["np"] = "np"  # the body's NumPy (no keyword is np: `keyword_names`; no role is)
    dtype, value, grads, shapes, more = (
        namer.fresh(w) for w in ("dtype", "value", "grads", "shapes", "more")
    )
    first = params[0]
    arrays = " and ".join(f"type({p}) is {names['ndarray']}" for p in params)
    accepted = " or ".join(f"{dtype} is {names[d]}" for d in dtypes)
    same = [f"({accepted})", *(f"{p}.dtype is {dtype}" for p in params[1:])]
    shaped = []
    together = (
        "(" + ", ".join(f"{p}.shape" for p in params) + ("," if len(params) == 1 else "") + ")"
    )
    if all(type(n) is int for _, shape in variables for n in shape):
        same += [_has_shape(p, shape) for p, shape in variables]
    else:
        shaped = [f"        {shapes} = {together}"]
        same.append(f"({shapes} in {names['fits']} or {names['fit']}({shapes}))")
    returned = [f"type({value}) is {dtype}.type"]
    returned += [f"type({grads}[{name!r}]) is {dtype}.type" for name in scalars]
    signature = [f"{p}={names['missing']}" for p in params]
    signature += ["out=None", "accumulate=False", f"**{more}"]
    passed = ", ".join(f"{p}={p}" for p in params)
    if body is None:
        computed = [f"            {value}, {grads} = {names['call']}({passed})"]
    else:
        computed = [f"            {line}" for line in body.statements]
        computed.append(f"            {value}, {grads} = {body.returned}")
    lines = [
        def_line("value_and_grad", signature).rstrip("\n"),
        f"    if out is None and not {more} and {arrays}:",
        f"        {dtype} = {first}.dtype",
        *shaped,
        f"        if {' and '.join(same)}:",
        *computed,
        f"            if {' and '.join(returned)}:",
        f"                return {value}, {grads}",
        f"            return {names['finish']}({value}, {grads}, {first})",
        f"    return {names['slow']}(out, accumulate, {more}, {', '.join(params)})",
    ]
    return CheckedEntry("\n".join(lines) + "\n", names)
