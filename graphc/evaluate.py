"""The interpreter: a graph evaluated node by node with each operator's NumPy ``impl``.

`Program.run`, `graphc check`'s central differences and `graphc.testing`'s
rule checks evaluate graphs here.  It needs the operator table and NumPy
only: no parser, no compiler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from graphc.errors import FeedError
from graphc.ir import Node, topological_order
from graphc.shapes import Dim, Type


def as_result(x: Any) -> Any:
    """A float64 array, or a NumPy scalar for a 0-d one (what the API returns)."""
    array = np.asarray(x, dtype=np.float64)
    return array[()] if array.ndim == 0 else array


class Evaluation:
    """What an operator's ``impl`` may ask: fed values and sizes."""

    def __init__(self, values: Mapping[Node, np.ndarray], sizes: Mapping[str, int]):
        self.values = values
        self.sizes = sizes

    def feed(self, node: Node) -> np.ndarray:
        return self.values[node]

    def dim(self, d: Dim) -> int:
        value = d.evaluate(self.sizes)
        if value is None:
            raise FeedError(f"dim {d} is not bound by any array fed")
        return value

    def shape(self, t: Type) -> tuple[int, ...]:
        return tuple(self.dim(d) for d in t.dims)


def evaluate(
    outputs: Sequence[Node], values: Mapping[Node, np.ndarray], sizes: Mapping[str, int]
) -> list[Any]:
    """Evaluate ``outputs`` node by node with each operator's NumPy ``impl``.

    ``values`` gives the var nodes' arrays; any other node given a value there
    is taken as it is, not computed (gradient checks pin `stop` nodes so).
    """
    ctx = Evaluation(values, sizes)
    computed: dict[Node, Any] = {}
    for node in topological_order(outputs):
        if node in values:
            computed[node] = values[node]
        else:
            computed[node] = node.op.impl(ctx, node, *(computed[a] for a in node.args))
    return [as_result(computed[o]) for o in outputs]
