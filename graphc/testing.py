"""Numerical checks of derivative rules, for testing operators and passes.

Every operator in `graphc.ops` carries a forward rule (``jvp``) and a reverse
rule (``vjp``) that *build graph nodes*.  The functions here check those
rules the way JAX's ``check_grads`` does, on graphs rather than functions:

`check_jvp`
    the forward rule against central finite differences along a random
    direction ``u``:  ``J u ≈ (f(x + h u) − f(x − h u)) / 2h``.
`check_vjp`
    the reverse rule against the forward rule by the dot-product test
    ``⟨J u, v⟩ = ⟨u, Jᵀ v⟩`` for random ``u`` and ``v``; it holds to
    rounding error, so it needs no step size.
`check_grads`
    both, and for ``order=2`` (or more) the same checks applied to the
    derivative graphs themselves (forward over forward, forward over reverse,
    reverse over reverse…), which shows that the rules compose.

Derivative graphs are built with `graphc.autodiff` and evaluated with each
operator's own NumPy ``impl`` (`graphc.evaluate.evaluate`); nothing is
emitted or optimised, so a failure points at a rule, not at a pass.

A check takes the output node (or a function building it from the variable
nodes) and a feed ``{var node: value}``; dims that are not integers are
bound from the arrays fed, as the feed check binds them.  A disagreement raises
`AssertionError` naming the rule, the operator, the entry and both values::

    from graphc import ops
    from graphc.shapes import vector
    from graphc.testing import check_grads

    x = ops.var(name="x", kind="param", type=vector(3))
    check_grads(ops.tanh(x), {x: [0.1, -0.5, 2.0]}, order=2)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from graphc import ops
from graphc.autodiff import jvp_nodes, vjp_nodes
from graphc.evaluate import evaluate
from graphc.ir import Node
from graphc.shapes import SizeMismatch, Type, bind_sizes

__all__ = [
    "CheckResult",
    "check_grads",
    "check_jvp",
    "check_vjp",
    "describe",
    "infer_sizes",
    "random_value",
]

Outputs = Node | Sequence[Node] | Callable[..., Node | Sequence[Node]]
Feed = Mapping[Node, ArrayLike]
Seed = int | np.random.Generator | None

STEP = 1e-5
"""Default finite-difference step (for values and directions of order 1)."""


@dataclass(frozen=True)
class CheckResult:
    """What a check compared.

    ``expected`` and ``actual`` are the two sides, one array per output for
    `check_jvp` (finite differences, forward rule) and one number each for
    `check_vjp` (``⟨J u, v⟩``, ``⟨u, Jᵀ v⟩``).  ``error`` is the worst
    disagreement as a fraction of what the tolerance allows: at most 1 passes.
    """

    kind: str
    expected: tuple[np.ndarray, ...]
    actual: tuple[np.ndarray, ...]
    error: float


# ---- small helpers ----------------------------------------------------------------


def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def describe(node: Node) -> str:
    """``op(arg types; attrs) -> type``: how a check names the node it failed on."""
    if node.op.name == "var":
        return f"{node.attr('name')} {node.type}"
    args = ", ".join(str(a.type) for a in node.args)
    attrs = "".join(f"; {k}={v}" for k, v in node.attrs)
    return f"{node.op.name}({args}{attrs}) -> {node.type}"


def _shape(t: Type, sizes: Mapping[str, int]) -> tuple[int, ...]:
    shape = []
    for d in t.dims:
        n = d.evaluate(sizes)
        if n is None:
            raise ValueError(f"dim {d} of {t} is not bound; pass sizes={{...}}")
        shape.append(n)
    return tuple(shape)


def random_value(
    t: Type,
    rng: Seed = None,
    sizes: Mapping[str, int] | None = None,
    *,
    positive: bool = False,
    low: float = 0.5,
    high: float = 1.5,
    well_conditioned: bool = True,
) -> np.ndarray:
    """A random array for type ``t``, away from the usual kinks and domain edges.

    Entries have magnitude in ``[low, high]`` (so away from the kinks at 0 of
    relu, abs and sign) with random signs unless ``positive``.  A square
    matrix is, with ``well_conditioned``, scaled by 0.3 and given ``3 I``:
    diagonally dominant, so inv, det and logdet are smooth and tame there.
    """
    rng = _rng(rng)
    shape = _shape(t, sizes or {})
    if t.integer:  # ids: within the smallest size a test selects from
        return rng.integers(0, 3, size=shape)
    x = rng.uniform(low, high, size=shape)
    if not positive:
        x = x * rng.choice([-1.0, 1.0], size=shape)
    if well_conditioned and len(shape) == 2 and shape[0] == shape[1]:
        x = 0.3 * x + 3.0 * np.eye(shape[0])
    return np.asarray(x, dtype=np.float64)


def infer_sizes(primals: Feed, sizes: Mapping[str, int] | None = None) -> dict[str, int]:
    """Bind unbound dims from the arrays fed (as `graphc.shapes.bind_sizes` does);
    check every array's shape."""
    fed = []
    for v, value in primals.items():
        if not isinstance(v, Node) or v.op.name != "var":
            raise TypeError(f"feed keys must be var nodes, not {v!r}")
        shape = np.shape(value)
        if len(shape) != v.type.rank:
            raise ValueError(f"{describe(v)} is fed an array of shape {shape}")
        fed.append((v, v.type, shape))
    try:
        bound, _ = bind_sizes(fed, sizes, label=describe)
    except SizeMismatch as err:
        raise ValueError(f"{describe(err.key)}: {err.message}") from None
    return bound


def _outputs(outputs: Outputs, primals: Feed) -> list[Node]:
    if callable(outputs) and not isinstance(outputs, Node):
        outputs = outputs(*primals)
    if isinstance(outputs, Node):
        return [outputs]
    result = list(outputs)
    if not result or not all(isinstance(o, Node) for o in result):
        raise TypeError("outputs must be a node, a sequence of nodes, or a function returning them")
    return result


def _wrt(wrt: Sequence[Node] | None, primals: Feed) -> list[Node]:
    # integer data select; nothing is differentiated by them
    chosen = [v for v in primals if not v.type.integer] if wrt is None else list(wrt)
    for v in chosen:
        if v not in primals:
            raise ValueError(f"{describe(v)} is differentiated by but not fed")
    return chosen


def _fresh_var(prefix: str, like: Type, taken: Mapping[Node, Any], kind: str) -> Node:
    """A var node of type ``like`` that is not already fed (vars are interned)."""
    i = 0
    while True:
        v = ops.var(name=f"{prefix}{i}", kind=kind, type=like)
        if v not in taken:
            return v
        i += 1


def _evaluate(outputs: Sequence[Node], values: Feed, sizes: Mapping[str, int]) -> list[np.ndarray]:
    feed = {v: np.asarray(x, dtype=np.float64) for v, x in values.items()}
    return [np.asarray(r, dtype=np.float64) for r in evaluate(list(outputs), feed, sizes)]


def _check_type(rule: str, built: Node, want: Type, about: str) -> None:
    if built.type != want:
        raise AssertionError(
            f"{rule}: built a node of type {built.type} for {about}, which has type {want}"
            f" ({describe(built)})"
        )


def _where(outputs: Sequence[Node], wrt: Sequence[Node]) -> str:
    outs = "; ".join(describe(o) for o in outputs)
    by = ", ".join(describe(v) for v in wrt)
    return f"{outs}\n  by {by}"


# ---- the checks ---------------------------------------------------------------------


def check_jvp(
    outputs: Outputs,
    primals: Feed,
    *,
    wrt: Sequence[Node] | None = None,
    sizes: Mapping[str, int] | None = None,
    rng: Seed = 0,
    step: float = STEP,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> CheckResult:
    """Check the forward rules behind ``outputs`` against central differences.

    ``outputs`` is a node, a sequence of nodes, or a function that builds
    them from the variable nodes (the keys of ``primals``, in order).
    Tangents are seeded at ``wrt`` (default: every variable fed) along a
    random normal direction ``u``; `graphc.autodiff.jvp_nodes` builds the
    tangent graph, and each output's tangent must satisfy, entry by entry,
    ``|J u − fd| ≤ atol + rtol·max(|J u|, |fd|)`` with
    ``fd = (f(x + h u) − f(x − h u)) / 2h``.  Each tangent must also have
    its output's type.  Raises `AssertionError` on a disagreement.
    """
    rng = _rng(rng)
    outs = _outputs(outputs, primals)
    variables = _wrt(wrt, primals)
    sizes = infer_sizes(primals, sizes)
    x = {v: np.asarray(val, dtype=np.float64) for v, val in primals.items()}

    seeds = {v: _fresh_var(f"{v.attr('name')}_dot", v.type, x, "tangent") for v in variables}
    tangents, _ = jvp_nodes(outs, seeds)
    for out, t in zip(outs, tangents, strict=True):
        _check_type("jvp rule", t, out.type, f"the tangent of {describe(out)}")
    u = {v: rng.standard_normal(x[v].shape) for v in variables}
    feed = dict(x)
    feed.update({seeds[v]: u[v] for v in variables})
    actual = _evaluate(tangents, feed, sizes)

    plus, minus = dict(x), dict(x)
    for v in variables:
        plus[v] = x[v] + step * u[v]
        minus[v] = x[v] - step * u[v]
    hi, lo = _evaluate(outs, plus, sizes), _evaluate(outs, minus, sizes)
    expected = [(a - b) / (2 * step) for a, b in zip(hi, lo, strict=True)]

    worst = 0.0
    for out, fd, jv in zip(outs, expected, actual, strict=True):
        if fd.shape != jv.shape:
            raise AssertionError(
                f"jvp rule: the tangent of {describe(out)} evaluates to shape {jv.shape},"
                f" the output to {fd.shape}"
            )
        bound = atol + rtol * np.maximum(np.abs(fd), np.abs(jv))
        excess = np.abs(fd - jv) / bound
        excess = np.where(np.isnan(excess), np.inf, excess)
        if excess.size and np.max(excess) > 1.0:
            i = np.unravel_index(int(np.argmax(excess)), excess.shape) if excess.ndim else ()
            raise AssertionError(
                "jvp rule disagrees with central differences for\n"
                f"  {_where([out], variables)}\n"
                f"  entry {tuple(int(k) for k in i)}: forward rule {jv[i]!r},"
                f" finite differences {fd[i]!r} (step {step:g}, rtol {rtol:g}, atol {atol:g})\n"
                f"  forward rule:\n{jv}\n  finite differences:\n{fd}"
            )
        worst = max(worst, float(np.max(excess)) if excess.size else 0.0)
    return CheckResult("jvp", tuple(expected), tuple(actual), worst)


def check_vjp(
    outputs: Outputs,
    primals: Feed,
    *,
    wrt: Sequence[Node] | None = None,
    sizes: Mapping[str, int] | None = None,
    rng: Seed = 0,
    rtol: float = 1e-8,
    atol: float = 1e-12,
) -> CheckResult:
    """Check the reverse rules behind ``outputs`` by the dot-product test.

    For random ``u`` (at ``wrt``, default every variable fed) and random
    cotangents ``v`` (at every output), ``⟨J u, v⟩`` computed with the
    forward rules must equal ``⟨u, Jᵀ v⟩`` computed with the reverse rules
    (`graphc.autodiff.vjp_nodes`), to rounding: ``|a − b| ≤ atol + rtol·s``
    where ``s`` sums the magnitudes of the products in both inner products.
    Each cotangent must also have its variable's type (the shape convention).
    Check the forward rules first (`check_jvp`): this test trusts them.
    Raises `AssertionError` on a disagreement.
    """
    rng = _rng(rng)
    outs = _outputs(outputs, primals)
    variables = _wrt(wrt, primals)
    sizes = infer_sizes(primals, sizes)
    x = {v: np.asarray(val, dtype=np.float64) for v, val in primals.items()}
    taken: dict[Node, Any] = dict(x)

    seeds = {}
    for v in variables:
        seeds[v] = _fresh_var(f"{v.attr('name')}_dot", v.type, taken, "tangent")
        taken[seeds[v]] = None
    bars = []
    for out in outs:
        bars.append(_fresh_var("out_bar", out.type, taken, "cotangent"))
        taken[bars[-1]] = None

    tangents, _ = jvp_nodes(outs, seeds)
    for out, t in zip(outs, tangents, strict=True):
        _check_type("jvp rule", t, out.type, f"the tangent of {describe(out)}")
    cotangents: list[list[Node]] = []
    for out, bar in zip(outs, bars, strict=True):
        grads, _ = vjp_nodes(out, variables, bar)
        for v, g in zip(variables, grads, strict=True):
            about = f"the cotangent of {describe(v)} from {describe(out)}"
            _check_type("vjp rule", g, v.type, about)
        cotangents.append(grads)

    feed: dict[Node, np.ndarray] = dict(x)
    u = {v: rng.standard_normal(x[v].shape) for v in variables}
    feed.update({seeds[v]: u[v] for v in variables})
    shapes = [r.shape for r in _evaluate(outs, x, sizes)]
    vbar = [rng.standard_normal(s) for s in shapes]
    feed.update(dict(zip(bars, vbar, strict=True)))

    ju = _evaluate(tangents, feed, sizes)
    jtv = _evaluate([g for grads in cotangents for g in grads], feed, sizes)
    lhs = sum(float(np.sum(a * b)) for a, b in zip(ju, vbar, strict=True))
    scale = sum(float(np.sum(np.abs(a * b))) for a, b in zip(ju, vbar, strict=True))
    rhs = 0.0
    k = 0
    for _ in outs:
        for v in variables:
            g = jtv[k]
            k += 1
            if g.shape != u[v].shape:
                raise AssertionError(
                    f"vjp rule: the cotangent of {describe(v)} evaluates to shape {g.shape},"
                    f" the variable to {u[v].shape}"
                )
            rhs += float(np.sum(u[v] * g))
            scale += float(np.sum(np.abs(u[v] * g)))
    bound = atol + rtol * scale
    error = abs(lhs - rhs) / bound if np.isfinite(lhs - rhs) else np.inf
    if error > 1.0:
        raise AssertionError(
            "vjp rule disagrees with the jvp rule (dot-product test) for\n"
            f"  {_where(outs, variables)}\n"
            f"  <J u, v> = {lhs!r} by the forward rule, <u, J^T v> = {rhs!r} by the reverse rule"
            f" (difference {abs(lhs - rhs):.3g}, allowed {bound:.3g})"
        )
    return CheckResult("vjp", (np.float64(lhs),), (np.float64(rhs),), float(error))


def check_grads(
    outputs: Outputs,
    primals: Feed,
    *,
    order: int = 1,
    modes: Sequence[str] = ("fwd", "rev"),
    wrt: Sequence[Node] | None = None,
    sizes: Mapping[str, int] | None = None,
    rng: Seed = 0,
    step: float = STEP,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> None:
    """`check_jvp` and (with ``"rev"`` in ``modes``) `check_vjp`, to ``order``.

    For ``order`` > 1 the derivative graphs are checked in turn: the tangent
    graph (forward mode, its tangent seeds fed as fixed random inputs) and,
    with ``"rev"``, the cotangent graph (reverse mode, its cotangent seed
    fed likewise), each to ``order − 1``, by the same ``wrt``.  So order 2
    checks forward over forward and over reverse against finite differences
    of the derivatives, and reverse over both by the dot-product test.
    ``rtol`` and ``atol`` are the finite-difference tolerances; the
    dot-product test uses its own, tighter defaults.
    """
    if order < 1:
        raise ValueError("order must be at least 1")
    unknown = set(modes) - {"fwd", "rev"}
    if unknown or "fwd" not in modes:
        raise ValueError(f"modes must include 'fwd' and be drawn from 'fwd', 'rev', not {modes!r}")
    gen = _rng(rng)
    outs = _outputs(outputs, primals)
    variables = _wrt(wrt, primals)
    sizes = infer_sizes(primals, sizes)
    check_jvp(outs, primals, wrt=variables, sizes=sizes, rng=gen, step=step, rtol=rtol, atol=atol)
    if "rev" in modes:
        check_vjp(outs, primals, wrt=variables, sizes=sizes, rng=gen)
    if order == 1:
        return

    feed: dict[Node, Any] = dict(primals)
    seeds = {}
    for v in variables:
        seeds[v] = _fresh_var(f"{v.attr('name')}_dir", v.type, feed, "tangent")
        feed[seeds[v]] = gen.standard_normal(_shape(v.type, sizes))
    tangents, _ = jvp_nodes(outs, seeds)
    derived: list[tuple[list[Node], dict[Node, Any]]] = [(tangents, feed)]
    if "rev" in modes:
        feed = dict(primals)
        grads: list[Node] = []
        for out in outs:
            bar = _fresh_var("out_dir", out.type, feed, "cotangent")
            feed[bar] = gen.standard_normal(_shape(out.type, sizes))
            grads += vjp_nodes(out, variables, bar)[0]
        derived.append((grads, feed))
    for nodes, fed in derived:
        check_grads(
            nodes,
            fed,
            order=order - 1,
            modes=modes,
            wrt=variables,
            sizes=sizes,
            rng=gen,
            step=step,
            rtol=rtol,
            atol=atol,
        )
