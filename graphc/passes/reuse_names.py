"""The program's own names, read again where a derivative rebuilds them.

Preserves: every output's value and type.  A name that feeds the output is
kept (`graphc.ir.Graph.kept`) even where a rewrite took the output's path
around it: ``p = softmax(z); L = −yᵀ log(p)`` computes ``log(p)`` in the
stable form ``z − logsumexp(z)``, which does not read ``p``.  The reverse
rule of that form then rebuilds p's quotient in pieces, ``(s / Σ eᶻ) ∘ eᶻ``;
this pass reads the name instead, ``s ∘ p``, so the gradient says
``sum(y) p − y`` as a hand derivation does.  It needs the kept nodes, so it
is not in ``PIPELINE``: `graphc.derive` runs it on derivative graphs.
"""

from __future__ import annotations

from graphc.ir import Graph, Node


def reuse_names(graph: Graph) -> Graph:
    """Every ``(s / b) ∘ a`` whose ``a / b`` the program named ``p``, read as ``s ∘ p``."""
    quotients = {(k.args[0], k.args[1]): k for k in graph.kept if k.op.name == "div"}
    if not quotients:
        return graph
    mapping: dict[Node, Node] = {}
    for node in graph.nodes():
        rebuilt = node.with_args(mapping.get(a, a) for a in node.args)
        rebuilt = named_quotient(rebuilt, quotients) or rebuilt
        if rebuilt is not node:
            mapping[node] = rebuilt
    return graph.replace(mapping) if mapping else graph


# (s / b) ∘ a -> s ∘ p,  a ∘ (s / b) -> s ∘ p   where the program named p = a / b
def named_quotient(n: Node, quotients: dict[tuple[Node, Node], Node]) -> Node | None:
    if n.op.name != "mul":
        return None
    for q, a in (n.args, n.args[::-1]):
        if q.op.name == "div":
            s, b = q.args
            p = quotients.get((a, b))
            if p is not None and p.type == n.type and s.type.rank <= b.type.rank:
                return s * p
    return None
