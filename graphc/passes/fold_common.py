"""Common-subexpression folding (value numbering).

Preserves: every output's value and type, and the names of the nodes kept.
Interning already gives one node per expression; this pass also identifies
the expressions that differ only in the order of a commutative operator's
arguments (``a·b`` and ``b·a``), keeping the one met first.
"""

from __future__ import annotations

from graphc.ir import Graph, Node


def fold_common(graph: Graph) -> Graph:
    """Identify commutative duplicates; the first in program order wins."""
    mapping: dict[Node, Node] = {}
    seen: dict[tuple, Node] = {}
    for node in graph.nodes():
        rebuilt = node
        if mapping:
            rebuilt = node.with_args(map(mapping.get, node.args, node.args))
        if rebuilt.op.commutative:
            key = (rebuilt.op.name, tuple(sorted([id(a) for a in rebuilt.args])), rebuilt.attrs)
            rebuilt = seen.setdefault(key, rebuilt)
        if rebuilt is not node:
            mapping[node] = rebuilt
    return graph.replace(mapping)
