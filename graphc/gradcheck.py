"""Gradient checking: emitted derivatives against central differences.

`check_hessian` does the same one order up: the emitted Hessian against
central differences of the gradient, and the Hessian-vector product along
one random direction.

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
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from graphc.derive import derive
from graphc.errors import FeedError, NameResolutionError, ShapeError, did_you_mean
from graphc.evaluate import evaluate
from graphc.frontend import LoweredProgram
from graphc.ir import Node, topological_order
from graphc.runtime import CompiledFunction, check_feed

STEP = 6e-6  # ≈ eps^(1/3): balances truncation and rounding in float64
FLOOR = 1e-3


# Operators defined for positive arguments only, and which of their arguments.
# (log|det A| takes any sign, but a matrix of positive entries keeps it tame.)
_POSITIVE_ARGS = {"log": (0,), "sqrt": (0,), "logdet": (0,), "pow": (0,)}
# Operators whose value is positive (or ≥ 0, and 0 only where an entry is) for
# arguments of any sign: a variable under them may take both signs.
_SIGN_FREE = {"exp", "sigmoid", "softplus", "abs"}


def _needs_positive_argument(node: Node) -> tuple[int, ...]:
    if node.op.name == "powc":  # x^p: any sign for a whole p, positive for 0.5, 1.5…
        return () if float(node.attr("p")).is_integer() else (0,)
    return _POSITIVE_ARGS.get(node.op.name, ())


def _is_sign_free(node: Node) -> bool:
    if node.op.name == "powc" and float(node.attr("p")) % 2 == 0:  # x², x⁴
        return True
    if node.op.name == "mul" and node.args[0] is node.args[1]:  # x ∘ x
        return True
    return node.op.name in _SIGN_FREE


def positive_variables(lowered: LoweredProgram) -> set[str]:
    """The variables whose values flow into an operator defined only for positive
    arguments (log, sqrt, a fractional power, logdet, the base of x^y), other than
    through one whose value is positive whatever the signs (exp, σ, |x|, x²)."""
    out = lowered.graph.outputs[lowered.output]
    stack = [
        node.args[i] for node in topological_order([out]) for i in _needs_positive_argument(node)
    ]
    seen: set[Node] = set()
    found: set[str] = set()
    while stack:
        node = stack.pop()
        if node in seen or _is_sign_free(node):
            continue
        seen.add(node)
        if node.op.name == "var":
            found.add(node.attr("name"))
        stack.extend(node.args)
    return found


def memory_limit() -> int:
    """The bytes `random_feed` may draw: a quarter of the machine's memory, leaving
    room for the copies and derivatives a check makes (8 GiB where it cannot tell)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = 32 * 2**30
    return total // 4


def _bytes(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}" if unit != "bytes" else f"{n} bytes"
        n /= 1000
    raise AssertionError("unreachable")


def random_feed(
    lowered: LoweredProgram,
    dims: Mapping[str, int] | None = None,
    seed: int = 0,
    signed: bool | None = None,
) -> dict[str, np.ndarray]:
    """Random arrays for every input and param; unbound dims default to 3.

    Magnitudes are uniform in [0.2, 1], divided by √(last axis) so that
    products stay O(1) and tanh and σ do not saturate.  Signs are random,
    so that relu, abs, max and hinges take both branches, except for the
    variables that flow into log, sqrt, a fractional power or logdet
    (`positive_variables`); ``signed=True`` draws both signs for every
    variable, ``signed=False`` positive values for every one.

    ``dims`` sizes the unbound dims: naming a dim the program does not
    declare, or one it gives a size, is a `NameResolutionError`.  A feed
    larger than `memory_limit` is a `FeedError` naming the largest variable.
    """
    for name in dims or {}:
        if name not in lowered.dims:
            hint = did_you_mean(name, lowered.unbound_dims)
            raise NameResolutionError(f"--dim {name}: the program declares no dim {name}{hint}")
        if name not in lowered.unbound_dims:
            raise NameResolutionError(
                f"--dim {name}: the program gives dim {name} its size ({name} ="
                f" {lowered.dims[name]}); --dim sizes the dims declared without one"
            )
    sizes = {name: 3 for name in lowered.unbound_dims}
    sizes.update(dims or {})
    shapes = {v: tuple(d.evaluate(sizes) for d in v.type.dims) for v in lowered.variables}
    for v, shape in shapes.items():
        if any(n < 0 for n in shape):
            given = ", ".join(f"{n} = {sizes[n]}" for n in v.type.names)
            raise ShapeError(
                f"{v.attr('name')}: with {given}, {v.attr('kind')} {v.attr('name')} {v.type}"
                f" would have shape {shape}; give the dims other sizes (--dim)"
            )
    need = {v: 8 * math.prod(shape) for v, shape in shapes.items()}
    if sum(need.values()) > memory_limit():
        v = max(need, key=need.get)
        name = v.attr("name")
        shape = "[" + "×".join(map(str, shapes[v])) + "]"
        raise FeedError(
            f"{name}: random values for {v.attr('kind')} {name} {shape} need"
            f" {_bytes(need[v])}, more than graphc check draws on this machine"
            f" ({_bytes(memory_limit())}, a quarter of its memory); give smaller sizes"
        )
    positive = set() if signed else positive_variables(lowered)
    rng = np.random.default_rng(seed)
    feed = {}
    for v, shape in shapes.items():
        values = rng.uniform(0.2, 1.0, size=shape)
        signs = rng.choice([-1.0, 1.0], size=shape)  # drawn always: a seed gives one magnitude
        if signed is not False and v.attr("name") not in positive:
            values *= signs
        if shape:
            values /= math.sqrt(max(1, shape[-1]))
        feed[v.attr("name")] = values
        if v.type.integer:  # ids: within every axis they select from
            bounds = [d.evaluate(sizes) for d in lowered.index_bounds.get(v.attr("name"), ())]
            feed[v.attr("name")] = rng.integers(0, max(1, min(bounds, default=1)), size=shape)
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
    what: str = "variable"  # what a row checks: a variable's gradient, a Hessian block

    @property
    def worst(self) -> float:
        return max([v.worst for v in self.variables] + [self.direction_error])

    @property
    def finite(self) -> bool:
        """Whether the value is finite at the point drawn (else nothing was compared)."""
        return bool(np.all(np.isfinite(self.value)))

    @property
    def ok(self) -> bool:
        return self.finite and bool(self.worst <= self.tolerance)

    def text(self) -> str:
        value = np.asarray(self.value)
        shown = f"{float(value):.6g}" if value.ndim == 0 else f"array of shape {value.shape}"
        if not self.finite:
            bad = int(np.sum(~np.isfinite(value)))
            which = "" if value.ndim == 0 else f" in {bad} of its {value.size} entries"
            return (
                f"  {self.output} = {shown}\n"
                f"NOT FINITE: {self.output} is NaN or infinite{which} at the values drawn, so its"
                " derivatives cannot be compared there; try other values (--seed)"
            )
        lines = [
            f"  {self.output} = {shown}",
            f"  {self.what:<10} shape        entries   worst relative error",
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
    report = GradientReport(fn.compiled.output, value, tolerance)
    if not report.finite:
        return report
    entries = np.size(value) * sum(feed[name].size for name in fn.wrt)
    if 8 * entries > memory_limit():
        raise FeedError(
            f"the Jacobian of {fn.compiled.output} by {', '.join(fn.wrt)} has {entries} entries"
            f" ({_bytes(8 * entries)}), more than graphc check holds on this machine"
            f" ({_bytes(memory_limit())}, a quarter of its memory); give smaller sizes"
        )
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


def check_hessian(
    fn: CompiledFunction,
    feed: Mapping[str, np.ndarray],
    tolerance: float = 1e-5,
    seed: int = 0,
    max_entries: int = 64,
) -> GradientReport:
    """Compare ``fn.hessian`` with central differences of the gradient, block by block
    (H[a][b] along the entries of b), and ``fn.hvp`` along one random direction.

    The gradient differenced is the derivative graph evaluated by the
    interpreter, with ``stop(·)`` pinned at the base point, so the oracle does
    not run the emitted code it checks.
    """
    rng = np.random.default_rng(seed + 1)
    feed = {k: np.array(v, dtype=np.float64) for k, v in feed.items()}
    value = fn(**feed)
    report = GradientReport(fn.compiled.output, value, tolerance, what="block")
    if not report.finite:
        return report
    entries = sum(feed[name].size for name in fn.wrt) ** 2
    if 8 * entries > memory_limit():
        raise FeedError(
            f"the Hessian of {fn.compiled.output} by {', '.join(fn.wrt)} has {entries} entries"
            f" ({_bytes(8 * entries)}), more than graphc check holds on this machine"
            f" ({_bytes(memory_limit())}, a quarter of its memory); give smaller sizes"
        )
    hessian = fn.hessian(**feed)

    derived = derive(fn.lowered, fn.wrt, "reverse")
    grads = [derived.gradients[w] for w in fn.wrt]
    stops = [n for n in topological_order(grads) if n.op.name == "stop"]
    arrays, sizes = check_feed(fn.lowered, feed)
    pinned = dict(zip(stops, evaluate(stops, arrays, sizes)))

    def gradient_at(moved: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays, sizes = check_feed(fn.lowered, moved)
        values = evaluate(grads, {**arrays, **pinned}, sizes)
        return {w: np.asarray(g) for w, g in zip(fn.wrt, values)}

    for b in fn.wrt:
        x = feed[b]
        indices = list(np.ndindex(x.shape))
        if len(indices) > max_entries:
            chosen = rng.choice(len(indices), size=max_entries, replace=False)
            indices = [indices[i] for i in sorted(chosen)]
        worst = dict.fromkeys(fn.wrt, 0.0)
        for index in indices:
            h = STEP * max(1.0, abs(x[index]))
            up, down = dict(feed), dict(feed)
            up[b], down[b] = x.copy(), x.copy()
            up[b][index] += h
            down[b][index] -= h
            g_up, g_down = gradient_at(up), gradient_at(down)
            for a in fn.wrt:
                fd = (g_up[a] - g_down[a]) / (2 * h)
                column = np.asarray(hessian[a][b])[(Ellipsis, *index)]
                worst[a] = max(worst[a], _error(fd, column))
        for a in fn.wrt:
            shape = np.shape(hessian[a][b])
            report.variables.append(VariableCheck(f"{a},{b}", shape, len(indices), worst[a]))

    direction = {name: rng.normal(size=feed[name].shape) for name in fn.wrt}
    if fn.wrt:
        plus = {**feed, **{n: feed[n] + STEP * d for n, d in direction.items()}}
        minus = {**feed, **{n: feed[n] - STEP * d for n, d in direction.items()}}
        g_plus, g_minus = gradient_at(plus), gradient_at(minus)
        product = fn.hvp(direction, **feed)
        report.direction_error = max(
            _error((g_plus[a] - g_minus[a]) / (2 * STEP), product[a]) for a in fn.wrt
        )
    return report
