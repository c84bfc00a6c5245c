"""Derivative passes: forward mode (JVP) and reverse mode (VJP), graph -> graph.

Both drivers walk the graph once and call each operator's own rule, which
builds graph nodes; the result is a graph that can be simplified, emitted,
or differentiated again.  Zero tangents and cotangents are ``None`` and cost
nothing.

reverse_mode: one sweep from a scalar output (or a cotangent seed) gives the
  cotangent of every requested variable.  Adjoints sum at fan-out; only
  nodes that depend on a requested variable are visited, so branches that
  reach none are pruned; forward intermediates are reused, not recomputed.
forward_mode: tangents are pushed from seeded variables, in program order.

Naming: autodiff names derivative work, and only derivative work.  The
cotangent of a named intermediate ``z`` of output ``J`` is named ``dJ_dz``;
an unnamed one that must be stored, ``delta``; a cotangent that is itself a
value of the program (∂(a b)/∂a = b) keeps the program's naming.  The seeds
are ``J_bar`` (a cotangent of ``J``) and ``z_dot`` (a tangent of ``z``), and
the tangent of ``z`` is ``z_dot``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from graphc import ops
from graphc.errors import DifferentiationError
from graphc.ir import Graph, Node, topological_order
from graphc.shapes import Type


def _depends(order: Sequence[Node], sources: set[Node]) -> set[Node]:
    """Nodes whose value depends differentiably on any of ``sources``."""
    active = set(sources)
    for node in order:
        if node.op.vjp is not None and not active.isdisjoint(node.args):
            active.add(node)
    return active


def vjp_nodes(
    output: Node, wrt: Sequence[Node], cotangent: Node, order: Sequence[Node] | None = None
) -> tuple[list[Node], dict[Node, Node]]:
    """The cotangent of each variable in ``wrt`` given ``cotangent`` at ``output``.

    Returns the gradients (zeros where the output does not depend on a
    variable) and the cotangent of every visited node.  ``order``, if given,
    is ``topological_order([output])`` followed by any other nodes (which the
    output does not reach, so they get no cotangent).
    """
    if order is None:
        order = topological_order([output])
    active = _depends(order, set(wrt))
    adjoint: dict[Node, Node] = {}
    if output in active:
        adjoint[output] = cotangent
    for node in reversed(order):
        g = adjoint.get(node)
        if g is None or node.op.vjp is None:  # leaves have no rules
            continue
        for arg, ct in zip(node.args, node.op.vjp(node, g)):
            if ct is None or arg not in active:
                continue
            adjoint[arg] = ct if arg not in adjoint else adjoint[arg] + ct
    grads = [adjoint.get(v) or ops.zeros(v.type) for v in wrt]
    return grads, adjoint


def jvp_nodes(
    outputs: Sequence[Node], seeds: Mapping[Node, Node]
) -> tuple[list[Node], dict[Node, Node]]:
    """The tangent of each output given tangents ``seeds`` at variables."""
    tangent: dict[Node, Node] = dict(seeds)
    for node in topological_order(outputs):
        if node in tangent or node.op.jvp is None:
            continue
        ts = [tangent.get(a) for a in node.args]
        if any(t is not None for t in ts):
            t = node.op.jvp(node, *ts)
            if t is not None:
                tangent[node] = t
    return [tangent.get(o) or ops.zeros(o.type) for o in outputs], tangent


def gradient_name(output: str, variable: str) -> str:
    return f"d{output}_d{variable}"


def tangent_name(name: str) -> str:
    return f"{name}_dot"


def cotangent_seed(output: str, type: Type) -> Node:
    """The var a vector-Jacobian product is seeded with: ``J_bar``, of the output's type."""
    return ops.var(name=f"{output}_bar", kind="cotangent", type=type)


def tangent_seed(variable: Node) -> Node:
    """The var a Jacobian-vector product is seeded with at ``variable``: ``W_dot``."""
    return ops.var(name=tangent_name(variable.attr("name")), kind="tangent", type=variable.type)


def reverse_mode(
    graph: Graph, wrt: Sequence[Node], output: str | None = None, cotangent: Node | None = None
) -> Graph:
    """Value and gradients: outputs ``{J: J, dJ_dW: …}`` for each ``W`` in ``wrt``.

    Without ``cotangent`` the output must be a scalar (its gradient has each
    variable's shape); with one (a ``var`` of the output's type) the result is
    the vector-Jacobian product ūᵀ ∂J/∂W.
    """
    output = output or next(iter(graph.outputs))
    out = graph.outputs[output]
    if cotangent is None:
        if not out.type.is_scalar:
            raise DifferentiationError(
                f"the gradient needs a scalar output, but {output} is {out.type}; use the Jacobian"
            )
        cotangent = ops.ONE
    order = graph.nodes()
    # The graph's order starts with the first output's own: the same sums, in the same order.
    first = next(iter(graph.outputs.values())) is out
    grads, adjoint = vjp_nodes(out, wrt, cotangent, order if first else None)
    primal = set(order)
    names = dict(graph.names)
    for node, name in graph.names.items():
        ct = adjoint.get(node)
        if ct is None or ct in names or ct in primal or ct.op.label is not None:
            continue
        names[ct] = gradient_name(output, name)
    hints = dict(graph.hints)
    for ct in adjoint.values():
        if ct not in primal:
            hints.setdefault(ct, "delta")
    outputs = {output: out}
    for v, g in zip(wrt, grads):
        outputs[gradient_name(output, v.attr("name"))] = g
    return Graph(outputs, names, hints, graph.kept)


def forward_mode(graph: Graph, seeds: Mapping[Node, Node], output: str | None = None) -> Graph:
    """Value and tangent: outputs ``{J: J, J_dot: …}`` for tangents ``seeds``."""
    output = output or next(iter(graph.outputs))
    out = graph.outputs[output]
    (tangent,), tangents = jvp_nodes([out], seeds)
    names = dict(graph.names)
    for node, name in graph.names.items():
        t = tangents.get(node)
        if t is not None and t not in names and t.op.label is None:
            names[t] = tangent_name(name)
    return Graph({output: out, tangent_name(output): tangent}, names, dict(graph.hints), graph.kept)
