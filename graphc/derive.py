"""The derivation path, spelled once: a checked program -> its optimised derivative.

    lowered program ──optimize──> value graph
        ──reverse_mode / forward_mode──> derivative graph ──optimize──> folded graph

The value graph is simplified before it is differentiated, so that the
derivative is taken of ``Σ r²`` and not of ``(√Σ r²)²``.  Everything that
shows or emits a derivative (the compiled module, ``Program.compile``,
``graphc graph --grad``) starts from `derive`, so they all see the same
graph with the same names.

Reverse mode of a scalar output gives the gradient; of any other output, the
vector-Jacobian product with a cotangent seed ``J_bar``.  Forward mode gives
the Jacobian-vector product with one tangent seed ``W_dot`` per variable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from graphc.autodiff import (
    cotangent_seed,
    forward_mode,
    gradient_name,
    reverse_mode,
    tangent_name,
    tangent_seed,
)
from graphc.errors import DifferentiationError, NameResolutionError, did_you_mean
from graphc.frontend import LoweredProgram
from graphc.ir import Graph, Node
from graphc.passes import optimize
from graphc.shapes import Type

MODES = ("reverse", "forward")


@dataclass(frozen=True)
class DerivedGraph:
    """A program's value and derivative graphs, optimised, and what they take.

    ``graph`` has the outputs ``{J: J, dJ_dW: …}`` (reverse mode: the gradient
    or, seeded with ``J_bar``, the vector-Jacobian product) or ``{J: J,
    J_dot: …}`` (forward mode).  ``seeds`` maps the output's name (reverse) or
    each variable's name (forward) to its seed var.
    """

    mode: str
    output: str
    output_type: Type
    variables: tuple[Node, ...]  # the program's inputs and params, in declaration order
    wrt: tuple[Node, ...]
    value_graph: Graph
    graph: Graph
    seeds: Mapping[str, Node]

    @property
    def wrt_names(self) -> tuple[str, ...]:
        return tuple(v.attr("name") for v in self.wrt)

    @property
    def value(self) -> Node:
        """The output in the derivative graph."""
        return self.graph.outputs[self.output]

    @property
    def gradients(self) -> dict[str, Node]:
        """Reverse mode: each variable's name -> its gradient (or vector-Jacobian product)."""
        return {w: self.graph.outputs[gradient_name(self.output, w)] for w in self.wrt_names}

    @property
    def tangent(self) -> Node:
        """Forward mode: the output's tangent."""
        return self.graph.outputs[tangent_name(self.output)]


def resolve_wrt(lowered: LoweredProgram, wrt: Sequence[str] | str | None) -> list[Node]:
    """The variables to differentiate by: given names, or every param."""
    by_name = {v.attr("name"): v for v in lowered.variables}
    if wrt is None:
        return lowered.params
    if isinstance(wrt, str):
        wrt = [w.strip() for w in wrt.split(",") if w.strip()]
    chosen = []
    for name in wrt:
        if name not in by_name:
            declared = ", ".join(by_name) or "none"
            hint = did_you_mean(name, by_name)
            raise NameResolutionError(
                f"cannot differentiate by {name}: it is not an input or param"
                f" (declared: {declared}){hint}"
            )
        if by_name[name].type.integer:
            raise DifferentiationError(
                f"cannot differentiate by {name}: it is integer data, which selects entries"
                " and has no derivative"
            )
        if by_name[name] not in chosen:
            chosen.append(by_name[name])
    return chosen


def derive(
    lowered: LoweredProgram, wrt: Sequence[str] | str | None = None, mode: str = "reverse"
) -> DerivedGraph:
    """Optimise, differentiate by ``wrt`` (default: every param) in ``mode``, optimise."""
    if mode not in MODES:
        raise DifferentiationError(f"unknown mode {mode!r}; use reverse or forward")
    variables = resolve_wrt(lowered, wrt)
    output = lowered.output
    out_type = lowered.graph.outputs[output].type
    value_graph = optimize(lowered.graph)
    seeds: dict[str, Node] = {}
    if mode == "reverse":
        cotangent = None
        if not out_type.is_scalar:
            cotangent = seeds[output] = cotangent_seed(output, out_type)
        derivative = reverse_mode(value_graph, variables, output, cotangent)
    else:
        tangents = {v: tangent_seed(v) for v in variables}
        seeds = {v.attr("name"): t for v, t in tangents.items()}
        derivative = forward_mode(value_graph, tangents, output)
    return DerivedGraph(
        mode,
        output,
        out_type,
        tuple(lowered.variables),
        tuple(variables),
        value_graph,
        optimize(derivative),
        seeds,
    )
