"""Dead-code removal.

Preserves: every output.  Drops what no output depends on, and the names of
intermediates that are gone, so that the emitted code computes only what is
returned.  (Reverse mode already skips branches that reach no requested
variable; this pass removes what rewriting left unreachable.)
"""

from __future__ import annotations

from graphc.ir import Graph


def prune(graph: Graph) -> Graph:
    """Keep only what the outputs (and the kept names) reach."""
    live = set(graph.nodes())
    names = {n: name for n, name in graph.names.items() if n in live}
    hints = {n: name for n, name in graph.hints.items() if n in live}
    if len(names) == len(graph.names) and len(hints) == len(graph.hints):
        return graph  # nothing is dead
    return Graph(dict(graph.outputs), names, hints, graph.kept)
