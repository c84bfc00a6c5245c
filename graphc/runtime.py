"""Feeding and running: the user-facing `Program` and `CompiledFunction`.

Feeding checks every array against the declared shapes before any
arithmetic: missing, extra, misshapen or non-numeric input is a `FeedError`
naming the variable.  Unbound dims are bound by the first array fed for them
(in declaration order) and then checked everywhere else.  Accepted arrays are
converted to one floating dtype (`feed_dtype`): the dtype fixed at compile
time if one was, else the dtype of the floating arrays fed (float32 stays
float32; float32 beside float64 is an error naming both), else float64;
integers, Python numbers and lists take it.  Inputs are never modified.
The array-API backend keeps each library's arrays (a torch tensor stays a
tensor, on its device); the NumPy backend and the interpreter compute on
NumPy arrays.

`Program.run` evaluates the graph with each operator's own NumPy evaluation
(define, then run).  `CompiledFunction` runs the emitted module instead.
"""

from __future__ import annotations

import builtins
import functools
import numbers
import re
import sys
import threading
import types
import unicodedata
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from graphc import display
from graphc.autodiff import cotangent_seed, tangent_name
from graphc.compiler import CompiledModule, build_module, derivative_labels
from graphc.derivation import Derivation, derivation
from graphc.derive import DerivedGraph, derive
from graphc.emit_numpy import KEYWORD_BODY_LIMIT, checked_entry
from graphc.errors import DifferentiationError, FeedError, GraphcError, did_you_mean
from graphc.evaluate import evaluate
from graphc.frontend import LoweredProgram, lower
from graphc.ir import Graph, Node, building
from graphc.passes import optimize
from graphc.shapes import SizeMismatch, Type, bind_sizes


def _describe(v: Node) -> str:
    return f"{v.attr('kind')} {v.attr('name')} {v.type}"


def _is_real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


FLOAT_DTYPES = ("float32", "float64")
FLOAT64 = np.dtype(np.float64)
FLOAT32 = np.dtype(np.float32)
NDARRAY = np.ndarray  # one global lookup per use, not two, on the call path
_MISSING = object()  # a keyword the checked entry was not given (CompiledFunction)


def _foreign(value: Any) -> bool:
    """An array of a library other than NumPy that speaks the array API (torch, Dask…)."""
    if isinstance(value, (np.ndarray, np.generic)) or not hasattr(value, "dtype"):
        return False
    try:
        import array_api_compat
    except ImportError:  # the optional extra is not installed: no foreign arrays
        return False
    return array_api_compat.is_array_api_obj(value)


def _foreign_kind(name: str, value: Any, v: Node) -> str:
    """'f' or 'i' for an array of another library; a FeedError for anything else."""
    import array_api_compat

    xp = array_api_compat.array_namespace(value)
    for kind, what in (("real floating", "f"), ("integral", "i")):
        if xp.isdtype(value.dtype, kind):
            return what
    raise FeedError(f"{name}: expected real numbers for {_describe(v)}, got dtype {value.dtype}")


def _dtype_name(value: Any) -> str:
    """``float32`` for a float32 array of any library."""
    dtype = value.dtype
    if dtype is FLOAT64:  # NumPy's own two by identity: str() of a dtype costs microseconds
        return "float64"
    if dtype is FLOAT32:
        return "float32"
    return str(dtype).rpartition(".")[2]


def feed_dtype(feed: Mapping[str, Any], fixed: str | None = None) -> str:
    """The one floating dtype a call computes in: ``fixed``, else the floating arrays' own.

    Only float32 and float64 arrays decide it: Python and NumPy numbers, lists, integer
    arrays and other floats (float16) take the call's dtype, as JAX's weak types do;
    float32 beside float64 is a FeedError naming the variables.
    """
    if fixed is not None:
        return fixed
    typed: dict[str, list[str]] = {}
    for name, value in feed.items():
        if isinstance(value, np.generic) or not hasattr(value, "dtype"):
            continue
        if _dtype_name(value) in FLOAT_DTYPES:
            typed.setdefault(_dtype_name(value), []).append(name)
    if len(typed) > 1:
        listed = "; ".join(f"{', '.join(names)} {dtype}" for dtype, names in sorted(typed.items()))
        raise FeedError(
            f"mixed dtypes in one call: {listed}; feed one dtype, or compile with"
            " dtype='float32' or 'float64' to convert every input"
        )
    (dtype,) = typed or ["float64"]
    return dtype


def _as_array(name: str, value: Any, v: Node, dtype: str = "float64") -> Any:
    if _foreign(value):
        if v.type.integer:  # ids stay integers, in their library
            if _foreign_kind(name, value, v) != "i":
                raise FeedError(f"{name}: expected integers for {_describe(v)}")
            return value
        return _as_foreign(name, value, v, dtype)
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
    return np.array(array, dtype=dtype, copy=True)


def _as_foreign(name: str, value: Any, v: Node, dtype: str) -> Any:
    """An array of another library in ``dtype``, kept in its library and on its device."""
    import array_api_compat

    _foreign_kind(name, value, v)
    xp = array_api_compat.array_namespace(value)
    wanted = getattr(xp, dtype)
    return value if value.dtype == wanted else xp.astype(value, wanted)


def _into_library(arrays: dict[Node, Any]) -> dict[Node, Any]:
    """NumPy arrays and numbers fed beside another library's arrays, moved into that library
    (and onto the device of the first of them), so that the call sees one namespace."""
    foreign = [a for a in arrays.values() if _foreign(a)]
    if not foreign:
        return arrays
    import array_api_compat

    xp = array_api_compat.array_namespace(foreign[0])
    device = array_api_compat.device(foreign[0])
    return {
        v: a if _foreign(a) else xp.asarray(a, dtype=getattr(xp, str(a.dtype)), device=device)
        for v, a in arrays.items()
    }


def _extremes(array: Any) -> tuple[int | None, int | None]:
    """The least and the largest id of an array of any library; None for no ids."""
    if _foreign(array):
        import array_api_compat

        xp = array_api_compat.array_namespace(array)
        if not array.size:  # size is None for a lazy (Dask) array of unknown shape
            return None, None
        return int(xp.min(array)), int(xp.max(array))
    array = np.asarray(array)
    return (int(array.min()), int(array.max())) if array.size else (None, None)


def _check_ids(lowered: LoweredProgram, arrays: Mapping[Node, np.ndarray], sizes) -> None:
    """Integer data select within the axis they index: 0 <= id < its size."""
    for v, array in arrays.items():
        for bound in lowered.index_bounds.get(v.attr("name"), ()):
            size = bound.evaluate(sizes)
            lo, hi = _extremes(array)
            if size is not None and lo is not None and (lo < 0 or hi >= size):
                bad = lo if lo < 0 else hi
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
    lowered: LoweredProgram,
    feed: Mapping[str, Any],
    dtype: str | None = "float64",
    foreign: bool = False,
) -> tuple[dict[Node, np.ndarray], dict[str, int]]:
    """Validate ``feed`` against the declarations: arrays by var node, and dim sizes.

    Every array is converted to ``dtype``; ``None`` follows the arrays fed
    (`feed_dtype`).  ``foreign``: another library's arrays are kept in it (the
    array-API backend); otherwise everything becomes a NumPy array.
    """
    declared = {v.attr("name"): v for v in lowered.variables}
    feed = _by_program_name(feed, declared)
    missing = [name for name in declared if name not in feed]
    if missing:
        listed = ", ".join(_describe(declared[m]) for m in missing)
        raise FeedError(f"missing value{'s' if len(missing) > 1 else ''} for {listed}")
    if not foreign:
        feed = {name: _as_numpy(name, value, declared[name]) for name, value in feed.items()}
    dtype = feed_dtype(feed, dtype)
    arrays: dict[Node, np.ndarray] = {}
    for name, v in declared.items():
        array = _as_array(name, feed[name], v, dtype)
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
    return (_into_library(arrays) if foreign else arrays), sizes


def _as_numpy(name: str, value: Any, v: Node) -> Any:
    """Another library's array as a NumPy array (on the CPU), for the NumPy backend."""
    if not _foreign(value):
        return value
    _foreign_kind(name, value, v)
    try:
        return np.asarray(value)
    except Exception as err:  # a GPU tensor, a lazy array that will not convert
        raise FeedError(
            f"{name}: the NumPy backend takes NumPy arrays, not {type(value).__name__} ({err});"
            " compile with backend='array-api' to run on it"
        ) from None


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
        self,
        wrt: Sequence[str] | str | None = None,
        mode: str = "reverse",
        emit: Sequence[str] | str | None = None,
        backend: str = "numpy",
        dtype: str | None = None,
    ) -> CompiledFunction:
        """Differentiate by ``wrt`` in ``mode``; ``emit`` names the module's functions
        besides ``value`` (see `graphc.compiler.build_module`); ``backend``: "numpy" or
        "array-api"; ``dtype`` ("float32", "float64") converts every input to it, else
        results follow the inputs."""
        if dtype is not None and dtype not in FLOAT_DTYPES:
            raise GraphcError(f"unknown dtype {dtype!r}: choose {' or '.join(FLOAT_DTYPES)}")
        with building():
            compiled = build_module(self.lowered, wrt, mode, emit, backend, dtype)
            return CompiledFunction(self.lowered, compiled)

    def __repr__(self) -> str:
        return f"<graphc.Program {self.output} {self.graph.outputs[self.output].type}>"

    # ---- Jupyter: the graph drawn by Graphviz, or how to get it ----------------
    def _repr_svg_(self) -> str | None:
        return display.svg(self.to_dot())

    def _repr_html_(self) -> str | None:
        return display.missing_graphviz_html(self.listing())


def _result(x: Any, like: Any = None) -> Any:
    """What the API returns: a NumPy array in the computation's floating dtype (a NumPy
    scalar for a 0-d one), or another library's array as it came (the array-API backend).

    A Python number (a derivative that is a literal, such as 0.0) takes the dtype, and
    library and device, of ``like``, an argument of the call."""
    if _foreign(x):
        return x
    if isinstance(x, (int, float)) and like is not None:
        if _foreign(like):
            import array_api_compat

            xp = array_api_compat.array_namespace(like)
            return xp.asarray(x, dtype=like.dtype, device=array_api_compat.device(like))
        return np.asarray(x, dtype=like.dtype)[()]
    array = np.asarray(x)
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    return array[()] if array.ndim == 0 else array


def _numpy(x: Any) -> np.ndarray:
    """A result as a NumPy array (a tensor copied off its device, a Dask array computed)."""
    if hasattr(x, "compute"):
        x = x.compute()
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    return np.asarray(x)


def _as_like(array: np.ndarray, like: Any) -> Any:
    """A NumPy seed as an array of ``like``'s library, on its device."""
    if not _foreign(like):
        return array
    import array_api_compat

    xp = array_api_compat.array_namespace(like)
    return xp.asarray(array, device=array_api_compat.device(like))


def _float_name(like: Any) -> str:
    """The floating dtype of a fed array (any library), by name: seeds are made in it."""
    dtype = getattr(like, "dtype", None)
    if dtype is FLOAT64:
        return "float64"
    if dtype is FLOAT32:
        return "float32"
    return "float32" if "float32" in str(dtype) else "float64"


def _first(kwargs: Mapping[str, Any]) -> Any:
    """An argument of the call, whose dtype and library results take (None if none):
    a floating one (integer data, ids, decide no dtype)."""
    values = kwargs.values()
    for v in values:
        if not hasattr(v, "dtype") or _dtype_name(v) in FLOAT_DTYPES:
            return v
    return next(iter(values), None)


def load_module(source: str, name: str = "graphc_generated") -> types.ModuleType:
    """Execute emitted source as a fresh module (it imports only numpy).

    The module's docstring and imports run at once; each of its functions is
    compiled when it is first looked up (``module.value_and_grad_dict``),
    together with the module's functions it calls, so that a caller pays
    Python's compilation only for what it uses (a ``value_and_grad_dict`` of
    2,000 variables is half of its module).  A function is the same object on
    every look-up, with the line numbers of ``source``; ``dir(module)`` lists
    them all.  Source that is not an emitted module's shape is executed whole.
    """
    module = types.ModuleType(name)
    filename = f"<{name}>"
    namespace = module.__dict__
    chunks = _function_chunks(source)
    try:  # the docstring and imports (a def line inside the docstring leaves it unclosed)
        prologue = chunks and builtins.compile(source[: min(chunks.values())[0]], filename, "exec")
    except SyntaxError:
        prologue = None
    if not prologue:
        exec(builtins.compile(source, filename, "exec"), namespace)  # our own emitted code
        return module
    exec(prologue, namespace)
    calls = re.compile(r"\b(" + "|".join(map(re.escape, chunks)) + r")\(")
    lock = threading.Lock()

    def define(wanted: str) -> None:
        todo = [wanted]
        while todo:
            fn = todo.pop()
            if fn in namespace or fn not in chunks:
                continue
            start, end = chunks[fn]
            text = "\n" * source.count("\n", 0, start) + source[start:end]  # its line numbers
            exec(builtins.compile(text, filename, "exec"), namespace)
            todo += [m.group(1) for m in calls.finditer(source, start, end)]

    def __getattr__(attr: str) -> Any:  # noqa: N807 - a module's __getattr__ (PEP 562)
        if attr in chunks:
            with lock:
                define(attr)
            return namespace[attr]
        raise AttributeError(f"module {name!r} has no attribute {attr!r}")

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(set(namespace) | set(chunks))

    namespace["__getattr__"], namespace["__dir__"] = __getattr__, __dir__
    return module


_TOP_DEF = re.compile(r"^def (\w+)\(", re.MULTILINE)


def _function_chunks(source: str) -> dict[str, tuple[int, int]] | None:
    """Each top-level function of an emitted module -> where its text starts and ends
    (None for no function, or a name defined twice)."""
    starts = [(m.start(), m.group(1)) for m in _TOP_DEF.finditer(source)]
    if not starts or len({fn for _, fn in starts}) < len(starts):
        return None
    ends = [start for start, _ in starts[1:]] + [len(source)]
    return {fn: (start, end) for (start, fn), end in zip(starts, ends)}


class FeedPlan:
    """What checking a feed of one compiled function takes, decided at compile time.

    Per variable, its name and the shape it must have, as integers and dim
    names.  A feed of ndarrays of one floating dtype the call computes in
    (float64 or float32; the fixed ``dtype`` if there is one) by the
    program's names that fits is checked in one pass: a dict lookup, a type
    and a dtype identity test per variable, then one compare of the tuple of
    shapes with those already known to fit (a program whose dims are all
    fixed knows its one; the first feed of other sizes is checked dim by dim,
    and its shapes are remembered).  It is passed on as it is, to the module.
    Anything else (mixed or other dtypes, lists, another library's arrays,
    NFKC spellings of a name, a misfit, a dim that is a polynomial) takes
    `check_feed`, which converts or raises the `FeedError` that says what is
    wrong.  A program with integer data always takes `check_feed` (its ids
    are converted and range-checked).
    """

    REMEMBERED = 16  # shape tuples known to fit, at most (a few batch sizes)

    def __init__(self, lowered: LoweredProgram, dtype: str | None = None):
        self.dtypes = (FLOAT64, FLOAT32) if dtype is None else (np.dtype(dtype),)
        self._first_dtype, self._second_dtype = (*self.dtypes, *self.dtypes)[:2]
        # per variable: its name, and the shape it must have (integers and dim names)
        self.shapes: list[tuple[str, tuple[int | str, ...]]] = []
        self.simple = True
        for v in lowered.variables:
            name = v.attr("name")
            template: list[int | str] = []
            if v.type.integer:  # integer data: converted and range-checked by check_feed
                self.simple = False
            for d in v.type.dims:
                if d.value is not None:
                    template.append(d.value)
                elif len(d.terms) == 1 and d.terms[0][1] == 1 and len(d.terms[0][0]) == 1:
                    template.append(d.terms[0][0][0])
                else:
                    self.simple = False
            self.shapes.append((sys.intern(name), tuple(template)))
        self.names = tuple(name for name, _ in self.shapes)
        self.count = len(self.shapes)
        templates = tuple(template for _, template in self.shapes)
        fixed = all(type(n) is int for t in templates for n in t)
        # the tuples of shapes known to fit
        self._fits: set[tuple[tuple[int, ...], ...]] = {templates} if fixed else set()

    def dtype(self, feed: Mapping[str, Any]) -> np.dtype | None:
        """The dtype of ``feed`` if it is arrays of one accepted dtype that fit, by the
        program's names; None to take the long way (`check_feed`: conversions, other
        spellings, errors)."""
        if not self.simple or len(feed) != self.count:
            return None
        dtype = None
        shapes = []
        for name in self.names:
            value = feed.get(name)
            if type(value) is not NDARRAY:
                return None
            if value.dtype is not dtype:  # the first array's dtype, and no other
                if dtype is not None:
                    return None
                dtype = value.dtype
                if dtype is not self._first_dtype and dtype is not self._second_dtype:
                    return None
            shapes.append(value.shape)
        shapes = tuple(shapes)
        if shapes in self._fits or self._fit(shapes):
            return dtype
        return None

    def _fit(self, shapes: tuple[tuple[int, ...], ...]) -> bool:
        """Whether ``shapes`` fit the declarations, each dim bound by its first array;
        remembered if they do."""
        sizes: dict[str, int] = {}
        for shape, (_, template) in zip(shapes, self.shapes):
            if len(shape) != len(template):
                return False
            for got, want in zip(shape, template):
                if got != (want if type(want) is int else sizes.setdefault(want, got)):
                    return False
        if len(self._fits) < self.REMEMBERED:
            self._fits.add(shapes)
        return True

    def fast(self, feed: Mapping[str, Any]) -> Mapping[str, np.ndarray] | None:
        """``feed`` itself if it passes (`dtype`), else None."""
        return None if self.dtype(feed) is None else feed


def _base(a: Any) -> Any:
    """The array ``a`` is a view of (NumPy's and CuPy's ``base``, PyTorch's ``_base``)."""
    if type(a) is np.ndarray:
        return a.base
    base = getattr(a, "_base", None)
    return base if base is not None else getattr(a, "base", None)


def _fed_ids(fed: Mapping[str, Any]) -> set[int]:
    """The ids of the fed arrays and of the arrays they are views of."""
    ids = set()
    for a in fed.values():
        ids.add(id(a))
        base = _base(a)
        if base is not None:
            ids.add(id(base))
    return ids


def _own(x: Any, fed: set[int] | None, like: Any = None) -> Any:
    """A returned value as the API returns it (`_result`); copied if it is (a view of)
    a fed array."""
    kind = type(x)
    if kind is np.ndarray and x.ndim and x.dtype.kind == "f":
        if fed is not None and (id(x) in fed or (x.base is not None and id(x.base) in fed)):
            return x.copy()
        return x
    if (kind is np.float64 or kind is np.float32) and (like is None or x.dtype is like.dtype):
        return x  # a NumPy scalar in the call's dtype: nothing to convert, never aliased
    if fed is not None and _foreign(x) and (id(x) in fed or id(_base(x)) in fed):
        import array_api_compat

        return array_api_compat.array_namespace(x).asarray(x, copy=True)
    return _result(x, like)  # scalars and other dtypes: converted, so never aliased


def _returned(
    value: Any, grads: dict[str, Any], like: Callable[[], Any], dtype: np.dtype | None = None
):
    """value_and_grad's results as the API returns them, where nothing can alias a fed
    array: floating ndarrays, and a NumPy scalar in ``dtype`` (the dtype of a feed that
    passed the plan), pass as they are; anything else is converted (`_own`) to the
    dtype of ``like()``, an argument of the call, looked for only then."""
    if dtype is None or type(value) is not dtype.type:
        value = _own(value, None, like())
    for g in grads.values():
        if type(g) is not NDARRAY or g.dtype.kind != "f" or not g.ndim:
            first = like()
            return value, {k: _own(g, None, first) for k, g in grads.items()}
    return value, grads


class CompiledFunction:
    """The emitted module, with feed checking and the spec's calling convention.

    Arrays are passed to the emitted code as given when they are ndarrays of
    one floating dtype (others are converted); the emitted code never writes
    into them.
    A returned array that would alias a fed one (``J = x``, a gradient that
    is a transposed input) is copied, so that nothing returned shares memory
    with the caller's arrays; set ``fn.copy = False`` to skip that check and
    take results as the module returns them.
    """

    copy: bool = True

    def __init__(self, lowered: LoweredProgram, compiled: CompiledModule):
        self.lowered = lowered
        self.compiled = compiled
        self.module = load_module(compiled.source)
        self._plan = FeedPlan(lowered, compiled.dtype)
        self._scalar = compiled.output_type.is_scalar
        self._extras: dict[str, tuple[Any, Mapping[str, str]]] = {}
        # A checked feed is keyed by program names.  Where those are the module's
        # keywords and value_and_grad holds the body (a few variables), it is
        # called with them directly; else its f_dict twin reads them (linear).
        self._by_keyword = len(lowered.variables) <= KEYWORD_BODY_LIMIT and all(
            name == keyword for name, keyword in compiled.param_names.items()
        )
        # looked up once, not per call
        self._feed_dtype = self._plan.dtype
        self._may_alias = compiled.may_alias
        # (the module compiles a function when first looked up: only the one called; the
        # checked entry, where there is one, runs the body itself and calls neither)
        self._value_and_grad = self._value_and_grad_dict = None
        if not self._by_keyword:
            self._value_and_grad_dict = getattr(self.module, "value_and_grad_dict", None)
        entry = self._checked_entry()
        if entry is not None:  # the instance's own value_and_grad: the method is its slow path
            self.value_and_grad = entry

    def _checked_entry(self) -> Any:
        """``value_and_grad`` as one straight-line function printed for this program
        (`graphc.emit_numpy.checked_entry`): the feed plan's checks with the program's
        names and shapes as constants, the module's statements (`CompiledModule.entry`;
        else a call of its function), and the checks of the results,
        with no dict of keywords built and no loop; None where the plan takes every feed
        the long way, or a result may alias a fed array, or the module's function takes
        a dict, or a subclass defines its own value_and_grad."""
        plan, compiled = self._plan, self.compiled
        if not (
            type(self).value_and_grad is CompiledFunction.value_and_grad
            and plan.simple
            and plan.count
            and self._by_keyword
            and self._scalar
            and "value_and_grad" in compiled.functions
            and not compiled.may_alias
            and compiled.backend == "numpy"
        ):
            return None
        types = {v.attr("name"): v.type for v in self.lowered.variables}
        scalars = [w for w in compiled.wrt if types[w].is_scalar]
        body = compiled.entry() if compiled.entry is not None else None
        entry = checked_entry(plan.shapes, scalars, [d.name for d in plan.dtypes], body)
        if body is None:  # the entry calls the module's function
            self._value_and_grad = self.module.value_and_grad
        method = CompiledFunction.value_and_grad
        names = plan.names

        def slow(out, accumulate, more, *values):
            feed = {name: v for name, v in zip(names, values) if v is not _MISSING}
            return method(self, out=out, accumulate=accumulate, **feed, **more)

        given = {
            "call": self._value_and_grad,
            "slow": slow,
            "finish": lambda value, grads, like: _returned(value, grads, lambda: like, like.dtype),
            "ndarray": NDARRAY,
            "np": np,
            "missing": _MISSING,
            "fits": plan._fits,
            "fit": plan._fit,
            **{d.name: d for d in plan.dtypes},
        }
        namespace = {entry.names[role]: thing for role, thing in given.items()}
        exec(builtins.compile(entry.source, "<graphc checked entry>", "exec"), namespace)
        function = namespace["value_and_grad"]
        function.__doc__ = method.__doc__
        function.__qualname__ = method.__qualname__
        return function

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

    @property
    def backend(self) -> str:
        return self.compiled.backend

    @property
    def dtype(self) -> str | None:
        """The dtype fixed at compile time, or None: results follow the inputs'."""
        return self.compiled.dtype

    def _arrays(self, feed: Mapping[str, Any]) -> Mapping[str, Any]:
        """The arrays by program name: ``feed`` itself when the compile-time plan
        passes it, else as `check_feed` converts them (or the error it raises)."""
        return feed if self._feed_dtype(feed) is not None else self._long_way(feed)

    def _long_way(self, feed: Mapping[str, Any]) -> dict[str, Any]:
        """The arrays by program name as `check_feed` converts them (or its error)."""
        foreign = self.backend == "array-api"
        checked, _ = check_feed(self.lowered, feed, self.dtype, foreign=foreign)
        return {v.attr("name"): a for v, a in checked.items()}

    def _kwargs(
        self, feed: Mapping[str, Any]
    ) -> tuple[dict[str, np.ndarray], dict[Node, np.ndarray]]:
        """The arrays by Python keyword and by variable, as `check_feed` gives them."""
        foreign = self.backend == "array-api"
        arrays, _ = check_feed(self.lowered, feed, self.dtype, foreign=foreign)
        names = self.compiled.param_names
        return {names[v.attr("name")]: a for v, a in arrays.items()}, arrays

    def _checked(self, feed: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The arrays by Python keyword."""
        names = self.compiled.param_names
        return {names[name]: a for name, a in self._arrays(feed).items()}

    def _fed(self, arrays: Mapping[str, np.ndarray]) -> set[int] | None:
        """What `_own` must not return uncopied: None where nothing can alias a fed array."""
        return _fed_ids(arrays) if self.copy and self.compiled.may_alias else None

    def _fed_all(self, kwargs: Mapping[str, Any]) -> set[int] | None:
        """What `_own` must not return uncopied from a function compiled on first use."""
        return _fed_ids(kwargs) if self.copy else None

    def __call__(self, /, **feed: Any) -> Any:
        arrays = self._arrays(feed)
        return _own(self.module.value_dict(arrays), self._fed(arrays), _first(arrays))

    def value_and_grad(
        self,
        /,
        *,
        out: Mapping[str, np.ndarray] | None = None,
        accumulate: bool = False,
        **feed: Any,
    ) -> tuple[Any, dict[str, Any]]:
        """The value and the gradient by each variable of ``wrt``.

        With ``out`` (an array in the call's dtype by name for each gradient,
        allocated once and reused across calls, as frameworks keep ``.grad``
        buffers), the gradients are written into those arrays, or added to them with
        ``accumulate=True``, and ``out`` is returned in their place.
        """
        if not self._scalar:
            raise DifferentiationError(
                f"the gradient needs a scalar output, but {self.compiled.output} is"
                f" {self.compiled.output_type}; use jacobian()"
            )
        dtype = self._feed_dtype(feed)
        arrays = feed if dtype is not None else self._long_way(feed)
        if out is not None:
            return self._into(arrays, out, accumulate, feed)
        if self._by_keyword:
            value, grads = (self._value_and_grad or self.module.value_and_grad)(**arrays)
        else:
            value, grads = (self._value_and_grad_dict or self.module.value_and_grad_dict)(arrays)
        if self._may_alias and self.copy:
            like = _first(arrays)
            fed = _fed_ids(arrays)
            return _own(value, fed, like), {k: _own(g, fed, like) for k, g in grads.items()}
        return _returned(value, grads, lambda: _first(arrays), dtype)

    def _into(
        self,
        arrays: Mapping[str, np.ndarray],
        out: Mapping[str, np.ndarray],
        accumulate: bool,
        feed: Mapping[str, Any],
    ) -> tuple[Any, Mapping[str, np.ndarray]]:
        """value_and_grad writing into ``out``, checked first like a feed."""
        if self.backend != "numpy":
            raise FeedError(
                "out: the array-API backend writes into no buffers (the standard has no out=,"
                " and JAX arrays cannot be written); take the gradients it returns, or compile"
                " with backend='numpy' (docs/backends.md)"
            )
        if not isinstance(out, Mapping) or set(out) != set(self.wrt):
            given = ", ".join(map(str, out)) if isinstance(out, Mapping) else type(out).__name__
            raise FeedError(
                f"out: expected a dict with an array for each of {', '.join(self.wrt)}, got {given}"
            )
        fed = _fed_ids({k: a for k, a in feed.items() if isinstance(a, np.ndarray)})
        dtype = np.dtype(_float_name(_first(arrays)))  # the call's: float32 in, float32 out
        for name in self.wrt:
            buffer, shape = out[name], np.shape(arrays[name])
            array = isinstance(buffer, np.ndarray)
            if not array or buffer.dtype != dtype or buffer.shape != shape:
                got = (
                    f"{buffer.dtype} array of shape {buffer.shape}"
                    if array
                    else type(buffer).__name__
                )
                raise FeedError(
                    f"out[{name!r}]: expected a {dtype} array of shape {shape}, got {got}"
                )
            if not buffer.flags.writeable or id(buffer) in fed or id(buffer.base) in fed:
                raise FeedError(f"out[{name!r}]: expected a writeable array that is not fed")
        if self.mode == "reverse":
            value, _ = self.module.value_and_grad_dict(arrays, out=out, accumulate=accumulate)
        else:  # forward mode's value_and_grad builds each gradient entry by entry
            value, grads = self.module.value_and_grad_dict(arrays)
            for name in self.wrt:
                if accumulate:
                    out[name][...] += grads[name]
                else:
                    out[name][...] = grads[name]
        return _own(value, None, _first(arrays)), out

    def grad(self, /, **feed: Any) -> dict[str, Any]:
        return self.value_and_grad(**feed)[1]

    # ---- higher order: each a function of an emitted module, compiled on first use ----
    def _function(self, name: str) -> tuple[Any, Mapping[str, str]]:
        """The module function ``name`` and its keywords, by program (or seed) name."""
        if name in self.compiled.signatures:
            return getattr(self.module, name), self.compiled.signatures[name]
        found = self._extras.get(name)
        if found is None:
            compiled = build_module(
                self.lowered, self.wrt, self.mode, (name,), self.backend, self.dtype
            )
            module = load_module(compiled.source, f"graphc_{name}")
            found = self._extras[name] = (getattr(module, name), compiled.signatures[name])
        return found

    def _fed_arrays(
        self, feed: Mapping[str, Any]
    ) -> tuple[dict[str, np.ndarray], dict[Node, np.ndarray]]:
        """The arrays by Python keyword (the fast plan when it fits) and by variable."""
        arrays = self._arrays(feed)
        names = self.compiled.param_names
        kwargs = {names[name]: a for name, a in arrays.items()}
        return kwargs, {v: arrays[v.attr("name")] for v in self.lowered.variables}

    def _tangents(
        self, what: str, given: Any, arrays: Mapping[Node, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """``given`` ({name: array}, one per variable in wrt) checked against the feed."""
        if not isinstance(given, Mapping):
            raise FeedError(
                f"{what}: expected a dict from each of {', '.join(self.wrt) or 'no variable'}"
                f" to an array of its shape, got {type(given).__name__}"
            )
        by_name = {v.attr("name"): (v, a) for v, a in arrays.items()}
        wanted = {w: by_name[w][0] for w in self.wrt}
        named = _by_program_name(given, wanted)
        missing = [w for w in self.wrt if w not in named]
        if missing:
            raise FeedError(f"{what}: missing {', '.join(missing)}")
        checked = {}
        for w, value in named.items():
            v, primal = by_name[w]
            array = _as_array(f"{what} {w}", value, v, _float_name(primal))
            if array.shape != primal.shape:
                raise FeedError(
                    f"{what} {w}: expected shape {primal.shape} (the shape of {w}), got"
                    f" {array.shape}"
                )
            checked[w] = array
        return checked

    def jacobian(self, /, **feed: Any) -> dict[str, Any]:
        """{W: ∂output/∂W}, laid out output shape + W's shape, by one vectorised
        sweep per variable (forward mode) or over the output's entries (reverse)."""
        if self.backend != "numpy":
            return self._jacobian_by_sweeps(feed)
        kwargs = self._checked(feed)
        like = _first(kwargs)
        function, _ = self._function("jacobian")
        fed = self._fed_all(kwargs)
        return {w: _own(j, fed, like) for w, j in function(**kwargs).items()}

    def _jacobian_by_sweeps(self, feed: Mapping[str, Any]) -> dict[str, Any]:
        """The Jacobian by one jvp (forward) or vjp (reverse) per entry: the array-API
        backend does not print the vectorised sweep yet (docs/backends.md)."""
        if self.compiled.output_type.is_scalar:
            return self.grad(**feed)  # the gradient is the Jacobian of a scalar
        kwargs, arrays = self._kwargs(feed)
        by_name = {v.attr("name"): a for v, a in arrays.items()}
        # NumPy arrays in the call's dtype; seeds go in as the call's library's arrays
        like = _first(kwargs)
        value = _numpy(self.module.value(**kwargs))
        dtype = np.result_type(value, 1.0)
        out_shape = value.shape
        shapes = {w: tuple(by_name[w].shape) for w in self.wrt}
        jac = {w: np.zeros(out_shape + shapes[w], dtype) for w in self.wrt}
        seeds = self.compiled.seed_names
        if self.mode == "reverse":
            for i in np.ndindex(out_shape):
                bar = np.zeros(out_shape, dtype)
                bar[i] = 1.0
                _, rows = self.module.vjp(
                    **kwargs, **{seeds[self.compiled.output]: _as_like(bar, like)}
                )
                for w in self.wrt:
                    jac[w][i] = _numpy(rows[w])
        else:
            zero = {seeds[w]: np.zeros(shapes[w], dtype) for w in self.wrt}
            for w in self.wrt:
                for j in np.ndindex(shapes[w]):
                    tangents = dict(zero)
                    tangents[seeds[w]] = np.zeros(shapes[w], dtype)
                    tangents[seeds[w]][j] = 1.0
                    tangents = {k: _as_like(t, like) for k, t in tangents.items()}
                    column = _numpy(self.module.jvp(**kwargs, **tangents)[1])
                    jac[w][(Ellipsis, *j)] = column
        return {w: _result(j) for w, j in jac.items()}

    def hessian(self, /, **feed: Any) -> dict[str, dict[str, Any]]:
        """{a: {b: ∂²output/∂a∂b}} of a scalar output, H[a][b] of shape a.shape + b.shape."""
        kwargs = self._checked(feed)
        like = _first(kwargs)
        function, _ = self._function("hessian")
        fed = self._fed_all(kwargs)
        return {
            a: {b: _own(h, fed, like) for b, h in row.items()}
            for a, row in function(**kwargs).items()
        }

    def hvp(self, v: Mapping[str, Any], /, **feed: Any) -> dict[str, Any]:
        """{a: Σ_b H[a][b] · v[b]}: the Hessian times ``v`` without forming the Hessian."""
        kwargs, arrays = self._fed_arrays(feed)
        like = _first(kwargs)
        tangents = self._tangents("hvp", v, arrays)
        function, keywords = self._function("hvp")
        seeds = {keywords[tangent_name(w)]: _as_like(t, like) for w, t in tangents.items()}
        fed = self._fed_all(kwargs)
        return {a: _own(h, fed, like) for a, h in function(**kwargs, **seeds).items()}

    def jvp(self, v: Mapping[str, Any], /, **feed: Any) -> tuple[Any, Any]:
        """(output, its derivative along ``v``): ``v`` maps each variable to a tangent."""
        kwargs, arrays = self._fed_arrays(feed)
        like = _first(kwargs)
        tangents = self._tangents("jvp", v, arrays)
        function, keywords = self._function("jvp")
        seeds = {keywords[tangent_name(w)]: _as_like(t, like) for w, t in tangents.items()}
        value, tangent = function(**kwargs, **seeds)
        fed = self._fed_all(kwargs)
        return _own(value, fed, like), _own(tangent, fed, like)

    def vjp(self, w: Any, /, **feed: Any) -> tuple[Any, dict[str, Any]]:
        """(output, {W: wᵀ ∂output/∂W}): the cotangent ``w`` has the output's shape."""
        foreign = self.backend == "array-api"
        arrays, sizes = check_feed(self.lowered, feed, self.dtype, foreign=foreign)
        names = self.compiled.param_names
        kwargs = {names[v.attr("name")]: a for v, a in arrays.items()}
        like = _first(kwargs)
        output = self.compiled.output
        out_type = self.compiled.output_type
        shape = tuple(d.evaluate(sizes) for d in out_type.dims)
        seed = cotangent_seed(output, out_type)
        array = _as_array(f"vjp cotangent of {output}", w, seed, _float_name(like))
        if tuple(array.shape) != shape:
            raise FeedError(
                f"vjp: the cotangent of {output} must have its shape {shape}, got {array.shape}"
            )
        function, keywords = self._function("vjp")
        seeds = {keywords[seed.attr("name")]: _as_like(array, like)}
        value, grads = function(**kwargs, **seeds)
        fed = self._fed_all({**kwargs, **seeds})  # another library's arrays come uncopied
        return _own(value, fed, like), {k: _own(g, fed, like) for k, g in grads.items()}

    def __repr__(self) -> str:
        by = ", ".join(self.wrt)
        return f"<graphc.CompiledFunction {self.compiled.output} by {by} ({self.mode})>"

    # ---- the derivative as mathematics, and its graph ----------------------------
    @functools.cached_property
    def derived(self) -> DerivedGraph:
        """The folded derivative graph the module was emitted from."""
        return derive(self.lowered, self.wrt, self.mode)

    def derivation(self) -> Derivation:
        """The derivative in matrix notation: ``str`` is Unicode, Jupyter shows LaTeX."""
        return derivation(self.derived)

    def derivative_listing(self) -> str:
        """The derivative graph as ``graphc graph --grad`` lists it."""
        variables = [*self.derived.variables, *self.derived.seeds.values()]
        return self.derived.graph.listing(variables, derivative_labels(self.derived))

    def _repr_svg_(self) -> str | None:
        labels = derivative_labels(self.derived)
        return display.svg(self.derived.graph.to_dot(self.lowered.filename, labels))

    def _repr_html_(self) -> str | None:
        return display.missing_graphviz_html(self.derivative_listing())


def parse(text: str, filename: str = "<string>") -> Program:
    """Parse and check a program; no values are involved.  A construct that probably
    does not say what was meant raises a `graphc.GraphcWarning` (`warnings.warn`)."""
    with building():
        lowered = lower(text, filename)
    for warning in lowered.warnings:
        warnings.warn(warning, stacklevel=3)
    return Program(lowered)


def compile(  # noqa: A001 - the spec's name
    text: str,
    wrt: Sequence[str] | str | None = None,
    mode: str = "reverse",
    filename: str = "<string>",
    emit: Sequence[str] | str | None = None,
    backend: str = "numpy",
    dtype: str | None = None,
) -> CompiledFunction:
    """Parse, differentiate by ``wrt`` (default: every param), optimise and emit
    ``backend``'s module ("numpy", "array-api"); ``dtype`` fixes the dtype; ``emit``
    names the functions besides ``value``."""
    return parse(text, filename).compile(wrt, mode, emit, backend, dtype)
