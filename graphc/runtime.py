"""Feeding and running: the user-facing `Program` and `CompiledFunction`.

Feeding checks every array against the declared shapes before any
arithmetic: missing, extra, misshapen or non-numeric input is a `FeedError`
naming the variable.  Unbound dims are bound by the first array fed for them
(in declaration order) and then checked everywhere else.  Accepted arrays are
converted to float64 (integers and Python numbers included); inputs are
never modified.

`Program.run` evaluates the graph with each operator's own NumPy evaluation
(define, then run).  `CompiledFunction` runs the emitted module instead.
"""

from __future__ import annotations

import builtins
import functools
import numbers
import types
import unicodedata
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from graphc.compiler import CompiledModule, build_module
from graphc.errors import DifferentiationError, FeedError, did_you_mean
from graphc.evaluate import as_result, evaluate
from graphc.frontend import LoweredProgram, lower
from graphc.ir import Graph, Node
from graphc.passes import optimize
from graphc.shapes import SizeMismatch, Type, bind_sizes


def _describe(v: Node) -> str:
    return f"{v.attr('kind')} {v.attr('name')} {v.type}"


def _is_real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def _as_array(name: str, value: Any, v: Node) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception as err:  # ragged lists and the like
        raise FeedError(f"{name}: cannot read {type(value).__name__} as an array ({err})") from None
    kind = array.dtype.kind
    if kind == "O" and not isinstance(value, np.ndarray) and all(map(_is_real, array.flat)):
        kind = "f"  # Python ints beyond int64, Fractions: NumPy keeps them as objects
    if kind not in "iuf":
        what = {
            "b": "booleans",
            "c": "complex numbers",
            "O": "Python objects",
            "U": "text",
            "S": "bytes",
        }.get(kind, f"dtype {array.dtype}")
        raise FeedError(f"{name}: expected real numbers for {_describe(v)}, got {what}")
    if v.type.integer:
        values = np.array(array, dtype=np.float64)
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise FeedError(f"{name}: expected integers for {_describe(v)}")
        return np.array(values, dtype=np.intp)
    # A private copy: nothing graphc runs or returns aliases the caller's array.
    return np.array(array, dtype=np.float64, copy=True)


def _check_ids(lowered: LoweredProgram, arrays: Mapping[Node, np.ndarray], sizes) -> None:
    """Integer data select within the axis they index: 0 <= id < its size."""
    for v, array in arrays.items():
        for bound in lowered.index_bounds.get(v.attr("name"), ()):
            size = bound.evaluate(sizes)
            if size is not None and array.size and (array.min() < 0 or array.max() >= size):
                bad = array.min() if array.min() < 0 else array.max()
                raise FeedError(
                    f"{v.attr('name')}: id {bad} is out of range: {_describe(v)} selects from"
                    f" {size} entries ({bound}), so each id is in 0..{size - 1}"
                )


def _by_program_name(feed: Mapping[str, Any], declared: Mapping[str, Node]) -> dict[str, Any]:
    """``feed`` keyed by the program's names; keys match as Python identifiers do (NFKC),
    so ``fn(ℓ=2.0)``, which Python passes as ``l``, feeds ``ℓ``."""
    by_key = {unicodedata.normalize("NFKC", name): name for name in declared}
    named: dict[str, Any] = {}
    given: dict[str, str] = {}
    for key, value in feed.items():
        name = by_key.get(unicodedata.normalize("NFKC", key)) if isinstance(key, str) else None
        if name is None:
            hint = did_you_mean(str(key), declared)
            takes = ", ".join(declared) or "nothing"
            raise FeedError(
                f"{key} is not an input or param of this program (it takes {takes}){hint}"
            )
        if name in given:
            raise FeedError(f"{given[name]} and {key} both feed {name}; give one value")
        named[name], given[name] = value, key
    return named


def check_feed(
    lowered: LoweredProgram, feed: Mapping[str, Any]
) -> tuple[dict[Node, np.ndarray], dict[str, int]]:
    """Validate ``feed`` against the declarations: arrays by var node, and dim sizes."""
    declared = {v.attr("name"): v for v in lowered.variables}
    feed = _by_program_name(feed, declared)
    missing = [name for name in declared if name not in feed]
    if missing:
        listed = ", ".join(_describe(declared[m]) for m in missing)
        raise FeedError(f"missing value{'s' if len(missing) > 1 else ''} for {listed}")
    arrays: dict[Node, np.ndarray] = {}
    for name, v in declared.items():
        array = _as_array(name, feed[name], v)
        t = v.type
        if array.ndim != t.rank:
            rank = ("a scalar", "a vector", "a matrix")[t.rank]
            raise FeedError(
                f"{name}: expected {rank} {t} for {v.attr('kind')} {name}, got an array of shape"
                f" {array.shape}"
            )
        arrays[v] = array
    try:
        sizes, _ = bind_sizes(
            [(v, v.type, a.shape) for v, a in arrays.items()], label=lambda v: v.attr("name")
        )
    except SizeMismatch as err:
        raise FeedError(f"{err.key.attr('name')}: {err.message}") from None
    _check_ids(lowered, arrays, sizes)
    return arrays, sizes


class Program:
    """A parsed, checked program: an explicit graph, not yet fed."""

    def __init__(self, lowered: LoweredProgram):
        self.lowered = lowered

    @property
    def graph(self) -> Graph:
        return self.lowered.graph

    @property
    def output(self) -> str:
        return self.lowered.output

    @property
    def variables(self) -> dict[str, Type]:
        return {v.attr("name"): v.type for v in self.lowered.variables}

    def listing(self) -> str:
        return self.graph.listing(self.lowered.variables)

    def to_dot(self) -> str:
        return self.graph.to_dot(self.lowered.filename)

    @functools.cached_property
    def value_graph(self) -> Graph:
        """The graph as it is evaluated: optimised, in stable forms (what ``value`` computes)."""
        return optimize(self.graph)

    def run(self, /, **feed: Any) -> Any:
        """Evaluate the output for the arrays in ``feed``, operator by operator."""
        values, sizes = check_feed(self.lowered, feed)
        (result,) = evaluate([self.value_graph.outputs[self.output]], values, sizes)
        return result

    def compile(
        self, wrt: Sequence[str] | str | None = None, mode: str = "reverse"
    ) -> CompiledFunction:
        return CompiledFunction(self.lowered, build_module(self.lowered, wrt, mode))

    def __repr__(self) -> str:
        return f"<graphc.Program {self.output} {self.graph.outputs[self.output].type}>"


def load_module(source: str, name: str = "graphc_generated") -> types.ModuleType:
    """Execute emitted source as a fresh module (it imports only numpy)."""
    module = types.ModuleType(name)
    exec(builtins.compile(source, f"<{name}>", "exec"), module.__dict__)  # our own emitted code
    return module


class CompiledFunction:
    """The emitted module, with feed checking and the spec's calling convention."""

    def __init__(self, lowered: LoweredProgram, compiled: CompiledModule):
        self.lowered = lowered
        self.compiled = compiled
        self.module = load_module(compiled.source)

    @property
    def source(self) -> str:
        return self.compiled.source

    @property
    def wrt(self) -> tuple[str, ...]:
        return self.compiled.wrt

    @property
    def module_functions(self) -> tuple[str, ...]:
        return self.compiled.functions

    @property
    def mode(self) -> str:
        return self.compiled.mode

    def _kwargs(
        self, feed: Mapping[str, Any]
    ) -> tuple[dict[str, np.ndarray], dict[Node, np.ndarray]]:
        arrays, _ = check_feed(self.lowered, feed)
        names = self.compiled.param_names
        return {names[v.attr("name")]: a for v, a in arrays.items()}, arrays

    def __call__(self, /, **feed: Any) -> Any:
        kwargs, _ = self._kwargs(feed)
        return as_result(self.module.value(**kwargs))

    def value_and_grad(self, /, **feed: Any) -> tuple[Any, dict[str, Any]]:
        if not self.compiled.output_type.is_scalar:
            raise DifferentiationError(
                f"the gradient needs a scalar output, but {self.compiled.output} is"
                f" {self.compiled.output_type}; use jacobian()"
            )
        kwargs, _ = self._kwargs(feed)
        value, grads = self.module.value_and_grad(**kwargs)
        return as_result(value), {k: as_result(g) for k, g in grads.items()}

    def grad(self, /, **feed: Any) -> dict[str, Any]:
        return self.value_and_grad(**feed)[1]

    def jacobian(self, /, **feed: Any) -> dict[str, np.ndarray]:
        """∂output/∂variable laid out as output shape + variable shape."""
        if self.compiled.output_type.is_scalar:
            return self.grad(**feed)  # the gradient is the Jacobian of a scalar
        kwargs, arrays = self._kwargs(feed)
        by_name = {v.attr("name"): a for v, a in arrays.items()}
        value = np.asarray(self.module.value(**kwargs), dtype=np.float64)
        out_shape = value.shape
        jac = {w: np.zeros(out_shape + by_name[w].shape) for w in self.wrt}
        seeds = self.compiled.seed_names
        if self.mode == "reverse":
            for i in np.ndindex(out_shape):
                bar = np.zeros(out_shape)
                bar[i] = 1.0
                _, rows = self.module.vjp(**kwargs, **{seeds[self.compiled.output]: bar})
                for w in self.wrt:
                    jac[w][i] = rows[w]
        else:
            zero = {seeds[w]: np.zeros(by_name[w].shape) for w in self.wrt}
            for w in self.wrt:
                for j in np.ndindex(by_name[w].shape):
                    tangents = dict(zero)
                    tangents[seeds[w]] = np.zeros(by_name[w].shape)
                    tangents[seeds[w]][j] = 1.0
                    column = np.asarray(self.module.jvp(**kwargs, **tangents)[1])
                    jac[w][(Ellipsis, *j)] = column
        return {w: as_result(j) for w, j in jac.items()}

    def __repr__(self) -> str:
        by = ", ".join(self.wrt)
        return f"<graphc.CompiledFunction {self.compiled.output} by {by} ({self.mode})>"


def parse(text: str, filename: str = "<string>") -> Program:
    """Parse and check a program; no values are involved.  A construct that probably
    does not say what was meant raises a `graphc.GraphcWarning` (`warnings.warn`)."""
    lowered = lower(text, filename)
    for warning in lowered.warnings:
        warnings.warn(warning, stacklevel=3)
    return Program(lowered)


def compile(  # noqa: A001 - the spec's name
    text: str,
    wrt: Sequence[str] | str | None = None,
    mode: str = "reverse",
    filename: str = "<string>",
) -> CompiledFunction:
    """Parse, differentiate by ``wrt`` (default: every param), optimise and emit."""
    return parse(text, filename).compile(wrt, mode)
