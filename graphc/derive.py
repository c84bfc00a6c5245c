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
    jvp_nodes,
    reverse_mode,
    tangent_name,
    tangent_seed,
)
from graphc.errors import DifferentiationError, NameResolutionError, did_you_mean
from graphc.frontend import LoweredProgram
from graphc.ir import Graph, Node, building
from graphc.passes import optimize, prune
from graphc.passes.gather_factors import gather_factors
from graphc.passes.reuse_names import reuse_names
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
    lowered: LoweredProgram,
    wrt: Sequence[str] | str | None = None,
    mode: str = "reverse",
    seeded: bool = False,
) -> DerivedGraph:
    """Optimise, differentiate by ``wrt`` (default: every param) in ``mode``, optimise.

    Reverse mode seeds a scalar output with 1 (the gradient) unless ``seeded``:
    then with a cotangent ``J_bar`` like any other output (the vjp).
    """
    if mode not in MODES:
        raise DifferentiationError(f"unknown mode {mode!r}; use reverse or forward")
    with building():
        return _derive(lowered, resolve_wrt(lowered, wrt), mode, seeded)


def _derive(
    lowered: LoweredProgram, variables: list[Node], mode: str, seeded: bool
) -> DerivedGraph:
    """`derive`, once the variables are resolved."""
    output = lowered.output
    out_type = lowered.graph.outputs[output].type
    value_graph = optimize(lowered.graph)
    seeds: dict[str, Node] = {}
    if mode == "reverse":
        cotangent = None
        if seeded or not out_type.is_scalar:
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
        _with_names(optimize(derivative)),
        seeds,
    )


def _with_names(graph: Graph) -> Graph:
    """The program's kept names read where the derivative rebuilds them (reuse_names)."""
    reused = reuse_names(graph)
    return graph if reused is graph else optimize(reused)


@dataclass(frozen=True)
class Sweeps:
    """Derivatives pushed along tangent seeds, as one optimised graph.

    ``tangents[(seed name, of)]`` is the tangent of the node ``of`` (an output
    name of ``base``) along the seed var ``seeds[seed name]``.  The Jacobian
    sweeps seed each variable alone (its seed then stands for all its unit
    directions at once, `emit_numpy.Stacked`); the Hessian-vector product
    seeds every variable together.
    """

    base: DerivedGraph
    graph: Graph
    seeds: Mapping[str, Node]
    tangents: Mapping[tuple[str, str], Node]


def _sweep(
    base: DerivedGraph, graph: Graph, plan: Sequence[tuple[str, Mapping[Node, Node], Sequence[str]]]
) -> Sweeps:
    """Forward mode over ``graph``: for each (seed name, {variable: seed}, outputs)."""
    with building():
        return _sweep_built(base, graph, plan)


def _sweep_built(
    base: DerivedGraph, graph: Graph, plan: Sequence[tuple[str, Mapping[Node, Node], Sequence[str]]]
) -> Sweeps:
    outputs = dict(graph.outputs)
    names, hints = dict(graph.names), dict(graph.hints)
    found: dict[tuple[str, str], str] = {}
    seeds: dict[str, Node] = {}
    for seed_name, seed_map, of in plan:
        seeds.update({v.attr("name"): s for v, s in seed_map.items()})
        results, tangents = jvp_nodes([graph.outputs[o] for o in of], seed_map)
        for node, name in graph.names.items():
            t = tangents.get(node)
            if t is not None and t not in names and t.op.label is None:
                names[t] = tangent_name(name)
        for o, t in zip(of, results):
            key = f"{tangent_name(o)}:{seed_name}"
            outputs[key] = t
            found[(seed_name, o)] = key
    optimised = optimize(Graph(outputs, names, hints))
    optimised = prune(gather_factors(optimised, list(seeds.values())))
    tangents = {k: optimised.outputs[key] for k, key in found.items()}
    return Sweeps(base, optimised, seeds, tangents)


def jacobian_sweeps(lowered: LoweredProgram, wrt: Sequence[str] | str | None = None) -> Sweeps:
    """Forward mode, one sweep per variable: ∂J/∂W along the seed ``W_dot``."""
    base = derive(lowered, wrt, "reverse")  # only for its value graph and variables
    graph = Graph(
        {base.output: base.value_graph.outputs[base.output]},
        base.value_graph.names,
        base.value_graph.hints,
    )
    plan = [(w.attr("name"), {w: tangent_seed(w)}, [base.output]) for w in base.wrt]
    return _sweep(base, graph, plan)


def hessian_sweeps(lowered: LoweredProgram, wrt: Sequence[str] | str | None = None) -> Sweeps:
    """Forward over reverse, one sweep per variable a: the tangents of ∂J/∂b along
    ``a_dot`` for b at or after a (the blocks before a are transposes)."""
    base = _scalar_base(lowered, wrt, "the Hessian")
    names = base.wrt_names
    plan = [
        (a, {w: tangent_seed(w)}, [gradient_name(base.output, b) for b in names[i:]])
        for i, (a, w) in enumerate(zip(names, base.wrt))
    ]
    return _sweep(base, base.graph, plan)


def hvp_sweep(lowered: LoweredProgram, wrt: Sequence[str] | str | None = None) -> Sweeps:
    """Forward over reverse along one tangent per variable: H v, one sweep."""
    base = _scalar_base(lowered, wrt, "the Hessian-vector product")
    seeds = {w: tangent_seed(w) for w in base.wrt}
    of = [gradient_name(base.output, b) for b in base.wrt_names]
    return _sweep(base, base.graph, [("v", seeds, of)])


def _scalar_base(
    lowered: LoweredProgram, wrt: Sequence[str] | str | None, what: str
) -> DerivedGraph:
    out_type = lowered.graph.outputs[lowered.output].type
    if not out_type.is_scalar:
        raise DifferentiationError(
            f"{what} needs a scalar output, but {lowered.output} is {out_type}; use the Jacobian"
        )
    return derive(lowered, wrt, "reverse")
