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
operator.  A rule without ``@matches`` is tried on every node.

Rules are pure functions of the node they look at, and nodes are interned,
so a node that is a fixed point of a rule list stays one: the engine marks
it (`Node.settled`, one bit per rule list) and does not look inside it again.
Rewriting an already rewritten graph, or a derivative graph built on an
optimised value graph, then costs nothing for the settled part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from graphc.ir import Graph, Node, Op

Rule = Callable[[Node], "Node | None"]


def matches(*op_names: str, where: Callable[[Op], bool] | None = None) -> Callable[[Rule], Rule]:
    """Declare the operators a rule looks at: those named, and those ``where`` holds for."""

    def selects(op: Op) -> bool:
        return op.name in op_names or (where is not None and where(op))

    def mark(rule: Rule) -> Rule:
        rule.selects = selects  # type: ignore[attr-defined]
        return rule

    return mark


def selects(rule: Rule, op: Op) -> bool:
    """Whether the engine tries ``rule`` on nodes of ``op``."""
    chooser = getattr(rule, "selects", None)
    return chooser is None or chooser(op)


class RuleIndex:
    """Rules by the operator they match, in their given order."""

    def __init__(self, rules: Sequence[Rule]):
        self.rules = list(rules)
        self.by_op: dict[str, list[Rule]] = {}

    def __call__(self, op: Op) -> list[Rule]:
        found = self.by_op.get(op.name)
        if found is None:
            found = [r for r in self.rules if selects(r, op)]
            self.by_op[op.name] = found
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
    entered (nor are its arguments).
    """
    memo: dict[Node, Node] = {}
    index = RuleIndex(rules)
    by_op = index.by_op
    bit = settled_bit(rules)
    budget = 0
    for root in roots:
        stack = [root]
        while stack:
            node = stack[-1]
            if node in memo or node.settled & bit:
                stack.pop()
                continue
            args = node.args
            pending = [a for a in args if a not in memo and not a.settled & bit]
            if pending:
                stack.extend(reversed(pending))
                continue
            rebuilt = node.with_args([memo.get(a, a) for a in args])
            if rebuilt is not node and (rebuilt in memo or rebuilt.settled & bit):
                result = memo.get(rebuilt, rebuilt)
            else:
                rules_here = by_op.get(rebuilt.op.name)
                if rules_here is None:
                    rules_here = index(rebuilt.op)
                replacement = apply_first(rules_here, rebuilt) if rules_here else None
                if replacement is not None:
                    budget += 1
                    if budget > 1_000_000:
                        raise RuntimeError("rewrite rules do not terminate")
                    if replacement not in memo and not replacement.settled & bit:
                        stack.append(replacement)  # rewrite it, then come back here
                        continue
                    result = memo.get(replacement, replacement)
                else:
                    result = rebuilt
            memo[node] = result
            if rebuilt is not node:
                memo[rebuilt] = result
            if result is not rebuilt:
                memo[result] = result
            result.settle(bit)
            stack.pop()
    return memo


def rewrite(graph: Graph, rules: Sequence[Rule]) -> Graph:
    return graph.replace(rewrite_nodes(graph.roots(), rules))
