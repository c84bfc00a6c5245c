"""The rewrite engine: rules ``node -> node | None`` applied to a fixed point.

A rule looks at one node (whose arguments are already rewritten) and returns
an equivalent node of the same type, or None.  `rewrite` applies a flat list
of rules bottom-up over the whole graph until no rule fires anywhere, then
returns the new graph; names follow their nodes.  Iterative: no recursion.

A rule states its pattern once: ``@matches("add", "sub")`` says which
operators it looks at (by name, or by a fact: ``@matches(where=lambda op:
op.bilinear)``), and the engine only ever calls it on nodes of those
operators, so its body matches the arguments alone (a ``match`` statement on
``n.args``, with ``Node(Op("neg"), [x])`` patterns) without re-checking the
operator.  ``@matches(…, operands=("neg",))`` adds that every case of the
pattern needs an operand of one of those operators, and the engine skips
the rule on other nodes (`RuleIndex.of`).  A rule without ``@matches`` is
tried on every node.

Rules are pure functions of the node they look at, and nodes are interned,
so a node that is a fixed point of a rule list stays one: the engine marks
it (`Node.settled`, one bit per rule list) and does not look inside it again.
Rewriting an already rewritten graph, or a derivative graph built on an
optimised value graph, then costs nothing for the settled part.  Nor does
the engine enter a node whose graph has no operator a rule looks at with
an operand it needs (`Node.below`, `RuleIndex.may_fire`): such a node is
a fixed point, and is marked as one.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence

from graphc.ir import OPERATORS, Graph, Node, Op

Rule = Callable[[Node], "Node | None"]

_op_name = operator.attrgetter("op.name")


def matches(
    *op_names: str,
    where: Callable[[Op], bool] | None = None,
    operands: Iterable[str] | Callable[[Op], bool] = (),
) -> Callable[[Rule], Rule]:
    """Declare the operators a rule looks at: those named, and those ``where`` holds for.

    ``operands`` names operators of which every case of the rule's pattern
    needs an operand (``Node(Op("neg"), [x])`` in ``[a, Node(Op("neg"), …)]``),
    or is a fact such an operand's operator has (``lambda op: op.constant``):
    the engine does not call the rule on a node with no such operand.
    """
    if callable(operands):
        needs: Callable[[Op], bool] | None = operands
    else:
        names = frozenset(operands)
        needs = (lambda op: op.name in names) if names else None

    def selects(op: Op) -> bool:
        return op.name in op_names or (where is not None and where(op))

    def mark(rule: Rule) -> Rule:
        rule.selects = selects  # type: ignore[attr-defined]
        rule.operands = needs  # type: ignore[attr-defined]
        return rule

    return mark


def selects(rule: Rule, op: Op) -> bool:
    """Whether the engine tries ``rule`` on nodes of ``op``."""
    chooser = getattr(rule, "selects", None)
    return chooser is None or chooser(op)


def needs_operand(rule: Rule, ops: Iterable[Op]) -> bool:
    """Whether ``rule`` can find the operand it needs among operators ``ops``."""
    needs = getattr(rule, "operands", None)
    return needs is None or any(needs(op) for op in ops)


def tries(rule: Rule, node: Node) -> bool:
    """Whether the engine tries ``rule`` on ``node``: its operator, and its operands'."""
    return selects(rule, node.op) and needs_operand(rule, (a.op for a in node.args))


class RuleIndex:
    """Rules by the operator they match, and the operators of its operands, in their
    given order: ``index.by_form[(op, operand ops…)]``, names all; and whether any
    can fire in a graph of the operators ``below`` (`Node.below`): ``index.live[below]``."""

    def __init__(self, rules: Sequence[Rule]):
        self.rules = list(rules)
        self.by_op: dict[str, list[Rule]] = {}
        self.by_form: dict[tuple[str, ...], list[Rule]] = {}
        self.live: dict[int, bool] = {}

    def may_fire(self, below: int) -> bool:
        """Whether some rule may fire in a graph made of the operators ``below``: one
        looks at one of them, with an operand of those it needs among them."""
        found = self.live.get(below)
        if found is None:
            present = [op for i, op in enumerate(OPERATORS) if below >> i & 1]
            found = self.live[below] = any(
                needs_operand(rule, present) for op in present for rule in self(op)
            )
        return found

    def __call__(self, op: Op) -> list[Rule]:
        found = self.by_op.get(op.name)
        if found is None:
            found = [r for r in self.rules if selects(r, op)]
            self.by_op[op.name] = found
        return found

    def of(self, node: Node) -> list[Rule]:
        """The rules the engine tries on ``node``."""
        form = (node.op.name, *map(_op_name, node.args))
        found = self.by_form.get(form)
        if found is None:
            found = self.by_form[form] = [r for r in self(node.op) if tries(r, node)]
        return found


def apply_first(rules: Sequence[Rule], node: Node) -> Node | None:
    for rule in rules:
        result = rule(node)
        if result is not None and result is not node:
            if result.type != node.type:
                raise AssertionError(
                    f"rule {rule.__name__} changed {node.op.name} {node.type} to {result.type}"
                )
            return result
    return None


# The bit each rule list marks its fixed points with (a bounded number of
# lists get one; a list without a bit is simply not remembered).
_SETTLED_BITS: dict[tuple[Rule, ...], int] = {}
_MAX_SETTLED_BITS = 62


_INDEXES: dict[tuple[Rule, ...], RuleIndex] = {}


def rule_index(rules: Sequence[Rule]) -> RuleIndex:
    """The index of a rule list, kept for the lists that have a settled bit."""
    key = tuple(rules)
    index = _INDEXES.get(key)
    if index is None:
        index = RuleIndex(rules)
        if settled_bit(rules):
            _INDEXES[key] = index
    return index


def settled_bit(rules: Sequence[Rule]) -> int:
    key = tuple(rules)
    bit = _SETTLED_BITS.get(key)
    if bit is None:
        if len(_SETTLED_BITS) >= _MAX_SETTLED_BITS:
            return 0
        bit = _SETTLED_BITS[key] = 1 << len(_SETTLED_BITS)
    return bit


def rewrite_nodes(roots: Iterable[Node], rules: Sequence[Rule]) -> dict[Node, Node]:
    """Map the nodes reachable from ``roots`` to their rewritten fixed points.

    A node the mapping leaves out maps to itself: a settled node is not
    entered (nor are its arguments), nor is a node whose graph holds no place
    where a rule may fire (`RuleIndex.may_fire`: it is settled at once).  One
    depth-first walk over the rest rewrites each node as it leaves it, when
    its arguments are done; what a rule builds is rewritten as it is built
    (`_Engine.finish`).
    """
    engine = _Engine(rules)
    memo, bit, by_form, index = engine.memo, engine.bit, engine.index.by_form, engine.index
    live = index.live
    seen: set[Node] = set()
    for root in roots:
        if root in seen or root.settled & bit or root in memo:
            continue
        seen.add(root)
        if not index.may_fire(root.below):
            _settle(root, root.settled | bit)
            continue
        stack = [(root, iter(root.args))]
        while stack:
            node, args = stack[-1]
            for arg in args:
                if arg not in seen and not arg.settled & bit and arg not in memo:
                    seen.add(arg)
                    below = arg.below
                    if live.get(below) or (below not in live and index.may_fire(below)):
                        stack.append((arg, iter(arg.args)))
                        break
                    _settle(arg, arg.settled | bit)  # a fixed point: no rule may fire in it
            else:
                stack.pop()
                if node.settled & bit or node in memo:  # reached from what a rule built
                    continue
                args = node.args
                new_args = tuple(map(memo.get, args, args))
                if new_args == args:
                    rebuilt = node
                else:
                    rebuilt = node.rebuilt(new_args)  # rules keep types: so does rebuilding
                    if rebuilt.settled & bit or rebuilt in memo:
                        result = memo[node] = memo.get(rebuilt, rebuilt)
                        memo[result] = result
                        continue
                rules_here = by_form.get((rebuilt.op.name, *map(_op_name, rebuilt.args)))
                if rules_here is None:
                    rules_here = index.of(rebuilt)
                replacement = apply_first(rules_here, rebuilt) if rules_here else None
                if replacement is not None:
                    engine.finish(node, rebuilt, replacement)
                    continue
                memo[node] = rebuilt
                if rebuilt is not node:
                    memo[rebuilt] = rebuilt
                _settle(rebuilt, rebuilt.settled | bit)
    return memo


class _Engine:
    """One rule list run over one graph: the fixed points found so far (``memo``)."""

    def __init__(self, rules: Sequence[Rule]):
        self.memo: dict[Node, Node] = {}
        self.index = rule_index(rules)
        self.bit = settled_bit(rules)
        self.fired = 0

    def finish(self, node: Node, rebuilt: Node, replacement: Node) -> None:
        """Rewrite ``replacement`` (what a rule made of ``rebuilt``, ``node`` with its
        arguments rewritten) to its fixed point, and everything it is built of."""
        memo, bit, index = self.memo, self.bit, self.index
        # An entry is a node whose fixed point is wanted, and the (rebuilt, replacement)
        # a rule made of it once its replacement is done (None: no rule fired yet).
        stack: list[tuple[Node, tuple[Node, Node] | None]] = [(node, (rebuilt, replacement))]
        self._fired()
        while stack:
            node, fired = stack[-1]
            if fired is None:
                if node.settled & bit or node in memo:
                    stack.pop()
                    continue
                pending = [a for a in node.args if not a.settled & bit and a not in memo]
                if pending:
                    stack.extend((a, None) for a in reversed(pending))
                    continue
                rebuilt = node.rebuilt(tuple(map(memo.get, node.args, node.args)))
                if rebuilt is not node and (rebuilt.settled & bit or rebuilt in memo):
                    self._done(node, rebuilt, memo.get(rebuilt, rebuilt))
                    stack.pop()
                    continue
                rules_here = index.of(rebuilt)
                replacement = apply_first(rules_here, rebuilt) if rules_here else None
                if replacement is None:
                    self._done(node, rebuilt, rebuilt)
                    stack.pop()
                    continue
                self._fired()
                fired = (rebuilt, replacement)
                stack[-1] = (node, fired)
            rebuilt, replacement = fired
            if not replacement.settled & bit and replacement not in memo:
                stack.append((replacement, None))  # rewrite it, then come back here
                continue
            self._done(node, rebuilt, memo.get(replacement, replacement))
            stack.pop()

    def _fired(self) -> None:
        self.fired += 1
        if self.fired > 1_000_000:
            raise RuntimeError("rewrite rules do not terminate")

    def _done(self, node: Node, rebuilt: Node, result: Node) -> None:
        memo = self.memo
        memo[node] = result
        if rebuilt is not node:
            memo[rebuilt] = result
        if result is not rebuilt:
            memo[result] = result
        _settle(result, result.settled | self.bit)


# `Node.settled` written past `Node.__setattr__`: it is a cache, not part of the value.
_settle = Node.settled.__set__  # type: ignore[attr-defined]


def rewrite(graph: Graph, rules: Sequence[Rule]) -> Graph:
    memo = rewrite_nodes(graph.roots(), rules)
    return graph.replace({old: new for old, new in memo.items() if new is not old})
