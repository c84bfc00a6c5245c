"""The explicit graph: interned, immutable operator nodes with static types.

A `Node` is an operator applied to argument nodes and attributes.  Nodes are
*interned* (hash-consed): building the same expression twice returns the same
object, so identity is structural equality and most common-subexpression
folding happens at construction.  Values never live in the graph; a graph is
fed later (`graphc.runtime`).

A `Graph` is a set of named outputs plus a side table of names the program
gave to intermediates (``z``, ``h``); names are not part of a node's identity,
so naming never blocks sharing.

Every traversal here is iterative: a chain of 100,000 nodes is fine.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphc.shapes import Type


@dataclass(eq=False)
class Op:
    """An operator: everything graphc knows about it, in one place.

    infer(*arg_types, **attrs) -> Type       the shape rule (raises ShapeMismatch)
    impl(*arg_values, **attrs) -> ndarray    evaluation with NumPy
    emit(printer, node, *arg_exprs) -> Expr  the NumPy source text
    jvp(node, *tangents) -> Node | None      forward rule (a tangent is None when zero)
    vjp(node, cotangent) -> tuple            reverse rule: one cotangent (or None) per arg
    to_sympy(sympy, node, *args)             the SymPy translation

    An op with neither rule is piecewise constant: its derivative is zero.

    Its facts, which the passes, the differentiator and the emitter read
    instead of lists of operator names (tests/test_ops.py checks each one
    numerically or against the shape rule):

    arity        how many operands it takes (None: any number, like concat);
                 a `leaf` takes none
    elementwise  applied entry by entry, broadcasting like NumPy
    linear       linear in its operands: op(αa + b) = α op(a) + op(b)
    bilinear     linear in each of its two operands (the products)
    commutative  op(a, b) = op(b, a)
    needs_sizes  evaluating or printing it reads dim values (fill, eye, take…)
    inline       printed as an atom that costs nothing to repeat (a name, a
                 literal, a dim): never a statement of its own, even if named
    constant     every entry is its ``value`` attribute (const, fill)
    label        label(node) -> str for a node that is its own label in
                 listings (a var's name, a literal); such a node never takes
                 a program's name
    emit_into    emit_into(printer, node, target, *arg_exprs) -> Expr | None:
                 the call that writes the result into the array ``target``
                 (a ufunc's ``out=``: ``np.matmul(a, b, out=out['W'])``);
                 None, or no such field, prints ``target[...] = …``; the
                 NumPy module's only (the array-API one has no ``out=``)
    emit_array_api  emit(printer, node, *arg_exprs) for the array-API module
                 (graphc.emit_array_api), where ``emit`` does not translate
                 call by call into the standard; None: ``emit``, translated
    math         its notation in mathematics (`graphc.notation.Notation`; None:
                 a function of its name), read by `graphc.mathprint`
    emit_batched emit_batched(printer, node, batched, *arg_exprs) -> Expr: the
                 source when some arguments carry a leading axis of directions
                 (``batched[i]`` says which; a Jacobian's vectorised sweep).
                 Only operators linear in a tangent meet one; an elementwise
                 operator needs none (NumPy broadcasts trailing axes)
    repeats      repeats(node) -> bool: its emission reads its operands more than
                 once (σ of a scalar branches on it), so an operand that is not
                 a name gets a statement of its own, as a shared one does
    """

    name: str
    infer: Callable[..., Type]
    impl: Callable[..., Any]
    emit: Callable[..., Any]
    jvp: Callable[..., Node | None] | None = None
    vjp: Callable[..., tuple[Node | None, ...]] | None = None
    to_sympy: Callable[..., Any] | None = None
    arity: int | None = 1
    elementwise: bool = False
    linear: bool = False
    bilinear: bool = False
    needs_sizes: bool = False
    inline: bool = False
    constant: bool = False
    label: Callable[[Node], str] | None = field(default=None, repr=False)
    commutative: bool = False
    emit_into: Callable[..., Any] | None = field(default=None, repr=False)
    emit_array_api: Callable[..., Any] | None = field(default=None, repr=False)
    math: Any = None
    emit_batched: Callable[..., Any] | None = field(default=None, repr=False)
    repeats: Callable[[Node], bool] | None = field(default=None, repr=False)

    @property
    def leaf(self) -> bool:
        """It takes no operands (var, const, fill, dimval, eye)."""
        return self.arity == 0

    def __repr__(self) -> str:
        return f"Op({self.name})"


def _key(value: Any) -> Any:
    # Floats are keyed by their bits so that -0.0, 0.0 and nan intern apart.
    if isinstance(value, float):
        return ("float", value.hex() if not math.isnan(value) else "nan")
    return value


class Node:
    """An interned, immutable graph node.  Build with `Node.make` (or ops.*)."""

    __slots__ = ("op", "args", "attrs", "type", "below", "settled", "__weakref__")
    __match_args__ = ("op", "args")  # rules match `Node(Op("neg"), [x])`

    op: Op
    args: tuple[Node, ...]
    attrs: tuple[tuple[str, Any], ...]
    type: Type
    below: int  # the operators in the node's graph (itself and below), one bit each: `op_bit`
    settled: int  # a cache, not part of the value: see `graphc.rewrite`

    @classmethod
    def make(cls, op: Op, args: Iterable[Node] = (), **attrs: Any) -> Node:
        return cls._make(op, args if type(args) is tuple else tuple(args), attrs, None)

    @classmethod
    def _make(cls, op: Op, args: tuple[Node, ...], attrs: dict[str, Any], known: Any) -> Node:
        """`make`, with the type ``known`` already (None: inferred)."""
        if attrs:
            frozen = tuple(sorted(attrs.items()))
            key: tuple = (op.name, args, tuple([(k, _key(v)) for k, v in frozen]))
        else:
            frozen, key = (), (op.name, args)
        ref = _INTERNED.get(key)
        if ref is not None:
            node = ref()
            if node is not None:
                return node
        if op.arity is not None and len(args) != op.arity:
            raise TypeError(f"{op.name} takes {op.arity} operand(s), not {len(args)}")
        node = object.__new__(cls)
        # the one place a node is written (but for `settled`, a cache)
        _init_op(node, op)
        _init_args(node, args)
        _init_attrs(node, frozen)
        _init_type(node, known or op.infer(*[a.type for a in args], **attrs))
        below = _OP_BITS.get(op.name) or op_bit(op)
        for a in args:
            below |= a.below
        _init_below(node, below)
        _init_settled(node, 0)
        ref = _Interned(node, _forget)
        ref.key = key
        _INTERNED[key] = ref
        return node

    def attr(self, name: str) -> Any:
        for key, value in self.attrs:
            if key == name:
                return value
        raise KeyError(name)

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.attrs)

    def settle(self, bit: int) -> None:
        """Remember that this node is a fixed point of the rule list owning ``bit``."""
        _init_settled(self, self.settled | bit)

    def with_args(self, args: Iterable[Node]) -> Node:
        """The same operator on new arguments (interned; self if unchanged)."""
        args = tuple(args)
        if args == self.args:  # element identity: nodes compare by identity
            return self
        return Node._make(self.op, args, dict(self.attrs), None)

    def rebuilt(self, args: tuple[Node, ...]) -> Node:
        """The same operator on arguments of the same types as its own (rewritten ones,
        which keep their types): its type, not inferred again; self if unchanged."""
        if args == self.args:
            return self
        return Node._make(self.op, args, dict(self.attrs), self.type)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("graph nodes are immutable")

    def __repr__(self) -> str:
        if self.op.name == "var":
            return f"{self.attr('name')}:{self.type}"
        if self.op.name == "const":
            return repr(self.attr("value"))
        return f"<{self.op.name} {self.type} #{id(self) % 10_000:04d}>"

    # `ops` installs +, -, *, /, @, **, unary - and .T on Node, so that rules
    # read like the math they build: g * (1 - y * y).


# Nodes are written through their slots' descriptors, past `Node.__setattr__`.
_init_op = Node.__dict__["op"].__set__
_init_args = Node.__dict__["args"].__set__
_init_attrs = Node.__dict__["attrs"].__set__
_init_type = Node.__dict__["type"].__set__
_init_below = Node.__dict__["below"].__set__
_init_settled = Node.__dict__["settled"].__set__

# Each operator a node has been built of, by name, and its bit in `Node.below`.
_OP_BITS: dict[str, int] = {}
OPERATORS: list[Op] = []  # in the order of their bits


def op_bit(op: Op) -> int:
    """The bit that stands for ``op`` in `Node.below`."""
    bit = _OP_BITS.get(op.name)
    if bit is None:
        bit = _OP_BITS[op.name] = 1 << len(OPERATORS)
        OPERATORS.append(op)
    return bit


class _Interned(weakref.ref):
    """The intern table's reference to a node, which knows its key."""

    __slots__ = ("key",)


# Structure (operator name, arguments, attributes) -> the one node built for it, held
# weakly: a node no graph uses any more is dropped, and its entry with it.
_INTERNED: dict[tuple, _Interned] = {}


def _forget(ref: _Interned) -> None:
    if _INTERNED.get(ref.key) is ref:
        del _INTERNED[ref.key]


def topological_order(outputs: Iterable[Node]) -> list[Node]:
    """Every node reachable from ``outputs``, arguments before users.

    Deterministic: depth-first, arguments left to right.  Iterative: the
    stack holds each open node with an iterator over its remaining arguments
    (a graph is acyclic, so a node is pushed at most once); a leaf is placed
    at once, without a turn on the stack.
    """
    order: list[Node] = []
    seen: set[Node] = set()
    place, mark = order.append, seen.add
    for root in outputs:
        if root in seen:
            continue
        mark(root)
        if not root.args:
            place(root)
            continue
        stack = [(root, iter(root.args))]
        push, pop = stack.append, stack.pop
        while stack:
            node, args = stack[-1]
            for arg in args:
                if arg not in seen:
                    mark(arg)
                    if arg.args:
                        push((arg, iter(arg.args)))
                        break
                    place(arg)
            else:
                pop()
                place(node)
    return order


@contextlib.contextmanager
def building() -> Iterator[None]:
    """Build many nodes with Python's cycle collector paused (parsing, lowering,
    deriving: `graphc.parse`, `Program.compile`, the command line, `derive`).

    Nodes never form cycles (a node refers only to older nodes), so the
    collector has nothing to find among them; but each thousand or so new
    objects start a collection, and the full ones walk every node alive.
    Differentiating a large program would spend a third of its time there.
    The collector's state is restored afterwards, and any cyclic garbage
    left is collected then.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def use_counts(order: Iterable[Node]) -> dict[Node, int]:
    counts: dict[Node, int] = {}
    for node in order:
        for arg in node.args:
            counts[arg] = counts.get(arg, 0) + 1
    return counts


@dataclass(frozen=True)
class Graph:
    """Named outputs and the names a program gave its intermediates.

    ``outputs`` maps an output name to its node, in order.  ``names`` maps a
    node to the name it was given (``z = W x + b`` names the add node ``z``);
    emitted code keeps every named node as a statement.  ``hints`` are names
    to use only if a node has to be stored anyway (``delta``).  ``kept`` are
    the nodes of the names a program gave that feed its output: computed
    (under their names) even where a rewrite took the output's path around
    them (``p = softmax(z); L = −yᵀ log(p)`` keeps ``p``), never returned.
    """

    outputs: Mapping[str, Node]
    names: Mapping[Node, str] = field(default_factory=dict)
    hints: Mapping[Node, str] = field(default_factory=dict)
    kept: tuple[Node, ...] = ()

    def roots(self) -> list[Node]:
        """The outputs, then the kept nodes: what the graph computes."""
        return [*self.outputs.values(), *self.kept]

    def nodes(self) -> list[Node]:
        """`topological_order` of the roots (computed once per graph: a graph is immutable)."""
        return list(self._order)

    @functools.cached_property
    def _order(self) -> tuple[Node, ...]:
        return tuple(topological_order(self.roots()))

    def replace(self, mapping: Mapping[Node, Node]) -> Graph:
        """Outputs mapped through ``mapping``; names follow their nodes.

        The graph itself where nothing changes (its topological order then
        need not be found again).
        """
        if not mapping and self.__dict__.get("_carried"):
            return self  # replace returned it: its names are where they go
        outputs = {k: mapping.get(v, v) for k, v in self.outputs.items()}
        hints = _carry(self.hints, mapping, already=functools.cache(lambda: set(self._order)))
        names = _carry(self.names, mapping)
        # A kept node stays kept while it still carries its name (not folded into a var or
        # a literal, which are their own names).
        kept = tuple(dict.fromkeys(mapping.get(k, k) for k in self.kept))
        kept = tuple(k for k in kept if k in names)
        if (
            kept == self.kept
            and _same(outputs, self.outputs)
            and _same(names, self.names)
            and _same(hints, self.hints)
        ):
            result = self
        else:
            result = Graph(outputs, names, hints, kept)
        result.__dict__["_carried"] = True  # a cache beside the fields, like `_order`
        return result

    # ---- printing ------------------------------------------------------------
    def labels(self) -> dict[Node, str]:
        """A printable name for every node: program names, else t1, t2, …"""
        labels: dict[Node, str] = {}
        taken = set(self.names.values())
        counter = 0
        for node in self.nodes():
            if node.op.label is not None:
                labels[node] = node.op.label(node)
            elif node in self.names:
                labels[node] = self.names[node]
            elif node in self.hints and self.hints[node] not in taken:
                labels[node] = self.hints[node]
                taken.add(self.hints[node])
            else:
                counter += 1
                while f"t{counter}" in taken:
                    counter += 1
                labels[node] = f"t{counter}"
        return labels

    def listing(
        self, variables: Iterable[Node] = (), labels: Mapping[Node, str] | None = None
    ) -> str:
        """The graph as code, one equation per node (like a jaxpr).

        ``variables`` lists the declared inputs first, in their order;
        ``labels`` names the nodes (default: `labels`).
        """
        labels = self.labels() if labels is None else labels
        order = self.nodes()
        lines = []
        variables = list(variables)
        given = set(variables)
        declared = variables + [n for n in order if n.op.name == "var" and n not in given]
        for node in declared:
            if node.op.name == "var":
                lines.append(f"  {node.attr('kind')} {node.attr('name')} : {node.type}")
        for node in order:
            if node.op.label is not None:  # a var (declared above) or a literal
                continue
            args = " ".join(labels[a] for a in node.args)
            attrs = " ".join(f"{k}={v}" for k, v in node.attrs)
            rhs = " ".join(part for part in (node.op.name, args, attrs) if part)
            lines.append(f"  {labels[node]} : {node.type} = {rhs}")
        outs = ", ".join(
            name if name == labels[node] else f"{name} = {labels[node]}"
            for name, node in self.outputs.items()
        )
        lines.append(f"  return {outs}")
        return "\n".join(lines)

    def to_dot(self, title: str = "graphc", labels: Mapping[Node, str] | None = None) -> str:
        """Graphviz DOT: one box per operation, an arrow per argument."""
        labels = self.labels() if labels is None else labels
        ids = {node: f"n{i}" for i, node in enumerate(self.nodes())}
        lines = [
            f'digraph "{_dot_escape(title)}" {{',
            "  rankdir=BT;",
            "  node [fontname=Helvetica];",
        ]
        for node, nid in ids.items():
            if node.op.name == "var":
                shape, label = "ellipse", f"{labels[node]}\\n{node.type}"
            elif node.op.name == "const":
                shape, label = "plaintext", labels[node]
            else:
                shape, label = "box", f"{labels[node]} = {node.op.name}\\n{node.type}"
            lines.append(f'  {nid} [shape={shape}, label="{_dot_escape(label)}"];')
        for node, nid in ids.items():
            for arg in node.args:
                lines.append(f"  {ids[arg]} -> {nid};")
        for name, node in self.outputs.items():
            lines.append(f'  out_{ids[node]} [shape=doublecircle, label="{_dot_escape(name)}"];')
            lines.append(f"  {ids[node]} -> out_{ids[node]};")
        lines.append("}")
        return "\n".join(lines)


def _carry(
    names: Mapping[Node, str],
    mapping: Mapping[Node, Node],
    already: Callable[[], set[Node]] | None = None,
) -> dict[Node, str]:
    """Names moved to the nodes their nodes became (the first name wins).

    With ``already`` (the graph's nodes before the mapping), a name moves only
    onto a node that is new: a hint names new work (``delta``), so a derivative
    that simplifies to a value the graph already computes (∂(a b)/∂a = b) does
    not rename that value.
    """
    carried: dict[Node, str] = {}
    for old, name in names.items():
        new = mapping.get(old, old)
        # Not onto a var or a literal (their own labels), nor onto a fill: a
        # statement `z = np.zeros(n)` would be noise.
        if new.op.label is not None or new.op.constant or new in carried:
            continue
        if already is not None and new is not old and new in already():
            continue
        carried[new] = name
    return carried


def _same(a: Mapping, b: Mapping) -> bool:
    """The same entries in the same order (nodes compare by identity)."""
    return len(a) == len(b) and list(a.items()) == list(b.items())


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\\\\n", "\\n")
