"""Gradient checking: emitted derivatives against central differences.

`random_feed` makes a reproducible feed for a program; `check_gradients`
compares a compiled function's derivatives with central differences of the
program's value, entry by entry (all entries, or a random sample of a large
variable) and along one random direction through all of them at once.

The differences are taken on the interpreter (`Program.run`'s evaluation),
not on the emitted code, so the oracle is independent of the code under
test; `stop(·)` nodes are pinned at their values at the base point, since
their derivative is zero by definition.

The error of an entry is ``|fd − g| / max(|fd|, |g|, 1e-3)``: relative for
derivatives of ordinary size, and not fooled by the ~1e-10 noise of central
differences on derivatives that are (nearly) zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from graphc.evaluate import evaluate
from graphc.frontend import LoweredProgram
from graphc.ir import topological_order
from graphc.runtime import CompiledFunction, check_feed

STEP = 6e-6  # ≈ eps^(1/3): balances truncation and rounding in float64
FLOOR = 1e-3


def random_feed(
    lowered: LoweredProgram,
    dims: Mapping[str, int] | None = None,
    seed: int = 0,
    signed: bool = False,
) -> dict[str, np.ndarray]:
    """Random arrays for every input and param; unbound dims default to 3.

    Values are uniform in [0.2, 1] (or ±, with ``signed``), divided by √(last
    axis) so that products stay O(1) and tanh and σ do not saturate.
    """
    rng = np.random.default_rng(seed)
    sizes = {name: 3 for name in lowered.unbound_dims}
    sizes.update(dims or {})
    feed = {}
    for v in lowered.variables:
        shape = tuple(d.evaluate(sizes) for d in v.type.dims)
        values = rng.uniform(0.2, 1.0, size=shape)
        if signed:
            values *= rng.choice([-1.0, 1.0], size=shape)
        if shape:
            values /= math.sqrt(max(1, shape[-1]))
        feed[v.attr("name")] = values
    return feed


@dataclass
class VariableCheck:
    name: str
    shape: tuple[int, ...]
    entries: int
    worst: float


@dataclass
class GradientReport:
    output: str
    value: float | np.ndarray
    tolerance: float
    variables: list[VariableCheck] = field(default_factory=list)
    direction_error: float = 0.0

    @property
    def worst(self) -> float:
        return max([v.worst for v in self.variables] + [self.direction_error])

    @property
    def ok(self) -> bool:
        return bool(self.worst <= self.tolerance)

    def text(self) -> str:
        value = np.asarray(self.value)
        shown = f"{float(value):.6g}" if value.ndim == 0 else f"array of shape {value.shape}"
        lines = [
            f"  {self.output} = {shown}",
            "  variable   shape        entries   worst relative error",
        ]
        for v in self.variables:
            shape = "×".join(map(str, v.shape)) or "scalar"
            lines.append(f"  {v.name:<10} {shape:<12} {v.entries:>7}   {v.worst:.2e}")
        lines.append(f"  {'(direction)':<10} {'all':<12} {'':>7}   {self.direction_error:.2e}")
        verdict = "OK" if self.ok else "FAILED"
        lines.append(
            f"{verdict}: worst relative error {self.worst:.2e} (tolerance {self.tolerance:.0e})"
        )
        return "\n".join(lines)


def _error(fd: np.ndarray, g: np.ndarray) -> float:
    fd, g = np.asarray(fd, dtype=float), np.asarray(g, dtype=float)
    if not (np.all(np.isfinite(fd)) and np.all(np.isfinite(g))):
        return 0.0 if np.array_equal(fd, g, equal_nan=True) else math.inf
    scale = np.maximum(np.maximum(np.abs(fd), np.abs(g)), FLOOR)
    return float(np.max(np.abs(fd - g) / scale)) if fd.size else 0.0


def check_gradients(
    fn: CompiledFunction,
    feed: Mapping[str, np.ndarray],
    tolerance: float = 1e-5,
    seed: int = 0,
    max_entries: int = 64,
) -> GradientReport:
    """Compare ``fn``'s derivatives by ``fn.wrt`` with central differences."""
    rng = np.random.default_rng(seed + 1)
    feed = {k: np.array(v, dtype=np.float64) for k, v in feed.items()}
    value = fn(**feed)
    derivative = fn.jacobian(**feed)  # output shape + variable shape (the gradient, for scalars)
    out_shape = np.shape(value)

    lowered = fn.lowered
    out = lowered.graph.outputs[lowered.output]
    stops = [n for n in topological_order([out]) if n.op.name == "stop"]
    arrays, sizes = check_feed(lowered, feed)
    pinned = dict(zip(stops, evaluate(stops, arrays, sizes)))

    def value_of(moved: Mapping[str, np.ndarray]) -> np.ndarray:
        arrays, sizes = check_feed(lowered, moved)
        return np.asarray(evaluate([out], {**arrays, **pinned}, sizes)[0])

    def value_at(name: str, index: tuple, step: float) -> np.ndarray:
        moved = dict(feed)
        moved[name] = feed[name].copy()
        moved[name][index] += step
        return value_of(moved)

    report = GradientReport(fn.compiled.output, value, tolerance)
    for name in fn.wrt:
        x = feed[name]
        indices = list(np.ndindex(x.shape))
        if len(indices) > max_entries:
            chosen = rng.choice(len(indices), size=max_entries, replace=False)
            indices = [indices[i] for i in sorted(chosen)]
        worst = 0.0
        for index in indices:
            h = STEP * max(1.0, abs(x[index]))
            fd = (value_at(name, index, h) - value_at(name, index, -h)) / (2 * h)
            g = np.asarray(derivative[name])[(Ellipsis, *index)]  # this entry's column
            worst = max(worst, _error(fd, g))
        report.variables.append(VariableCheck(name, x.shape, len(indices), worst))

    # One random direction through every variable at once.
    direction = {name: rng.normal(size=feed[name].shape) for name in fn.wrt}
    plus, minus = dict(feed), dict(feed)
    for name, d in direction.items():
        plus[name] = feed[name] + STEP * d
        minus[name] = feed[name] - STEP * d
    if fn.wrt:
        fd = (value_of(plus) - value_of(minus)) / (2 * STEP)
        axes = lambda name: tuple(range(len(out_shape), len(out_shape) + feed[name].ndim))  # noqa: E731
        predicted = sum(
            np.tensordot(
                np.asarray(derivative[name]),
                direction[name],
                axes=(axes(name), tuple(range(feed[name].ndim))),
            )
            for name in fn.wrt
        )
        report.direction_error = _error(fd, predicted)
    return report
