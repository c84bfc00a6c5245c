"""Gather the seed-independent factors of a tangent: computed once, not per direction.

Preserves: every output's value and type.  A derivative sweep multiplies a
tangent by one factor per operator it passes, ``((A ẋ) ∘ (1 − t²)) ∘ t ∘ 2``;
each product is as big as the tangent, and in a vectorised sweep (a
Jacobian, a Hessian) the tangent carries a leading axis of directions.  So
in a chain of elementwise products that reads a seed, the factors that do
not read it are multiplied together first (one small vector), and the
tangent once: ``(A ẋ) ∘ ((1 − t²) ∘ t ∘ 2)``.  Elementwise products are
associative and commutative, broadcasting included, so the value is the
same; a chain whose factors do not broadcast together is left alone.

Not in `PIPELINE`: only a derivative graph knows its seeds (`graphc.derive`).
"""

from __future__ import annotations

from collections.abc import Collection

from graphc import ops
from graphc.ir import Graph, Node, topological_order, use_counts
from graphc.shapes import ShapeMismatch


def _factors(
    node: Node, dependent: set[Node], uses: dict[Node, int], named: Collection[Node]
) -> list[Node]:
    """The factors of a product chain through the seed-dependent products (and
    negations) used only here; ``−x`` gives the factor −1."""
    factors, todo = [], [node]
    while todo:
        n = todo.pop()
        inner = n is node or (n in dependent and uses.get(n, 0) == 1 and n not in named)
        if inner and n.op.name == "mul":
            todo += reversed(n.args)
        elif inner and n.op.name == "neg":
            factors.append(ops.MINUS_ONE)
            todo.append(n.args[0])
        else:
            factors.append(n)
    return factors


def gather_factors(graph: Graph, seeds: Collection[Node]) -> Graph:
    order = topological_order(graph.outputs.values())
    dependent = set(seeds)
    for node in order:
        if node not in dependent and any(a in dependent for a in node.args):
            dependent.add(node)
    uses = use_counts(order)
    for out in graph.outputs.values():
        uses[out] = uses.get(out, 0) + 1
    rebuilt: dict[Node, Node] = {}
    images: set[Node] = set()  # the rebuilt seed-dependent nodes
    for node in order:
        new = node.with_args([rebuilt.get(a, a) for a in node.args])
        if node.op.name == "mul" and node in dependent:
            factors = _factors(node, dependent, uses, graph.names)
            tangent = [f for f in factors if f in dependent]
            constant = 1.0
            others = []
            for f in factors:
                if f in dependent:
                    continue
                if ops.is_const(f) and f.type.is_scalar:
                    constant *= f.attr("value")
                else:
                    others.append(f)
            if len(tangent) == 1 and len(others) + (constant != 1.0) >= 2:
                try:
                    scale = others[0] if others else ops.const(constant)
                    for f in others[1:]:
                        scale = scale * f
                    if others and constant != 1.0:
                        scale = ops.const(constant) * scale
                    gathered = rebuilt.get(tangent[0], tangent[0]) * scale
                    if gathered.type == node.type:
                        new = gathered
                except ShapeMismatch:
                    pass  # factors that do not broadcast together: leave the chain
        if node.op.name == "sub" and node in dependent and new.op.name == "sub":
            new = _minus_first(new, node.args[1], dependent, images, uses, graph.names) or new
        if node in dependent:
            images.add(new)
        if new is not node:
            rebuilt[node] = new
    return graph.replace(rebuilt)


# a − L(T·c) -> L(T·(−c)) + a, for a tangent product T·c reached through
# operators linear in it (a matrix product, a transpose) and used only there:
# the sign joins the gathered factors (no pass over the tangent of its own),
# and the large per-direction array is computed first.  (With glibc's
# allocator, an n×n temporary alive while a matrix product's operands are
# allocated makes those allocations fault in fresh pages on every call: the
# Hessian of Σ tanh(A x) + xᵀ B x took 2.4× longer as B + Bᵀ − Aᵀ(…)A than as
# −Aᵀ(…)A + B + Bᵀ.)
def _minus_first(
    new: Node,
    original: Node,
    dependent: set[Node],
    images: set[Node],
    uses: dict[Node, int],
    named: Collection[Node],
) -> Node | None:
    a, b = new.args
    path, node, was = [], b, original
    while True:
        if not (was in dependent and uses.get(was, 0) == 1 and was not in named):
            return None
        if node.op.name == "mul":
            break
        if not (node.op.linear or node.op.bilinear) or node.op.elementwise:
            return None
        inner = [i for i, x in enumerate(was.args) if x in dependent]
        if len(inner) != 1 or node.args[inner[0]] not in images:
            return None
        path.append((node, inner[0]))
        node, was = node.args[inner[0]], was.args[inner[0]]
    tangent, scale = node.args
    if tangent not in images or scale in images:
        return None
    try:
        minus = _negated(scale)
        flipped = node.with_args((tangent, minus))
        for outer, i in reversed(path):
            args = list(outer.args)
            args[i] = flipped
            flipped = outer.with_args(args)
        result = flipped + a
    except ShapeMismatch:
        return None
    return result if result.type == new.type else None


def _negated(x: Node) -> Node:
    """−x, with the sign on a literal factor: −(2·u) -> (−2)·u."""
    if ops.is_const(x) and x.type.is_scalar:
        return ops.const(-x.attr("value"))
    match x.args:
        case [c, rest] if x.op.name == "mul" and ops.is_const(c) and c.type.is_scalar:
            return ops.const(-c.attr("value")) * rest
    return -x
