"""The optimisation pipeline: an explicit, named list of graph -> graph passes.

Each pass is pure (it returns a new `Graph` and leaves its input alone) and
preserves the value and type of every output; its module says what else it
preserves.  `optimize` runs the pipeline until the graph stops changing.
"""

from __future__ import annotations

from collections.abc import Callable

from graphc.ir import Graph
from graphc.passes.fold_common import fold_common
from graphc.passes.fold_constants import fold_constants
from graphc.passes.prune import prune
from graphc.passes.simplify import simplify
from graphc.passes.stable_forms import stable_forms

Pass = Callable[[Graph], Graph]

PIPELINE: list[tuple[str, Pass]] = [
    ("fold_constants", fold_constants),
    ("simplify", simplify),
    ("stable_forms", stable_forms),
    ("fold_common", fold_common),
    ("prune", prune),
]


def optimize(graph: Graph, max_rounds: int = 10) -> Graph:
    """Run every pass in order, again, until the outputs are unchanged.

    It stops as soon as every pass in a row has left the graph as it was
    (which may be partway through a round): the rest would change nothing.
    """
    unchanged = 0  # passes in a row that returned the graph they were given
    for _ in range(max_rounds):
        before = tuple(graph.roots())
        for _name, run in PIPELINE:
            result = run(graph)
            unchanged = unchanged + 1 if result == graph else 0
            graph = result
            if unchanged == len(PIPELINE):
                return graph
        if tuple(graph.roots()) == before:
            break
    return graph


__all__ = [
    "PIPELINE",
    "fold_common",
    "fold_constants",
    "optimize",
    "prune",
    "simplify",
    "stable_forms",
]
