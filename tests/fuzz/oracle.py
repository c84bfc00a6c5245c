"""The fuzzing oracle shared by ``tests/test_fuzz.py`` and the atheris harness.

`check_input(text)` runs the whole pipeline on one input and checks the one
property every input must have: it either compiles (reverse and forward
mode) to modules that import and run on a small random feed and give the
interpreter's (`Program.run`) value, or it raises graphc's own error
located at a line and column inside the text, whose ``render()`` names the
file.  Anything else (a traceback, a RecursionError, a MemoryError, an
emitted module that does not import, more than a second) escapes as an
exception: the caller's failure.  It returns what happened, for counting.

The second is CPU time, not time on the clock: the machines that run the
tests are shared, and a clock-time bound (Hypothesis's ``deadline``) fails
a test when another process stalls it for a moment, while CPU time counts
only the work the input makes.  A timer (``ITIMER_PROF``) interrupts an
input when its second is up, so a hang is a failure, not a stuck run.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import warnings
from collections import Counter

import numpy as np

import graphc
from graphc.errors import FeedError, GraphcError
from graphc.gradcheck import random_feed
from graphc.ir import topological_order
from graphc.runtime import load_module

FILENAME = "fuzz.gc"
MAX_ENTRIES = 10**5  # a larger feed is not built (dim n = 10^9 would not fit); modules still import
MAX_FORWARD_GRAD = 12  # forward-mode value_and_grad runs one jvp per entry: only for tiny feeds

# Outcomes, for the count the test suite prints.
COMPILED = "compiled and ran"
COMPILED_UNFED = "compiled (feed too large to run)"
REJECTED = "located graphc error"

CPU_SECONDS = 1.0  # the most one input may take: parse, compile twice, import, run

# How many inputs were tried, by (strategy, outcome), and the slowest; the test suite prints it.
TRIED: Counter[tuple[str, str]] = Counter()
SLOWEST: list = [0.0, ""]  # CPU seconds, and the input


class TooSlow(BaseException):  # not an Exception: graphc's `except Exception` must not hide it
    """An input took more than its CPU time."""


@contextlib.contextmanager
def cpu_limit(seconds: float):
    """Raise `TooSlow` in the block once it has used ``seconds`` of CPU time."""
    if (
        not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield  # no interval timers (Windows), or not where signals are delivered
        return

    def expired(signum, frame):
        raise TooSlow(f"the input took more than {seconds} s of CPU time")

    previous = signal.signal(signal.SIGPROF, expired)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def located(err: GraphcError, text: str, filename: str = FILENAME) -> None:
    """Assert that ``err`` points inside ``text`` and renders with the file name."""
    lines = text.split("\n")
    assert err.line is not None and err.column is not None, f"no position: {err!r}"
    assert 1 <= err.line <= len(lines), f"line {err.line} outside 1..{len(lines)}: {err!r}"
    line = lines[err.line - 1]
    # Columns count characters; one past the end is where input ended.
    assert 1 <= err.column <= len(line) + 1, f"column {err.column} outside the line: {err!r}"
    rendered = err.render()
    head, *rest = rendered.split("\n")
    assert head.startswith(f"{filename}:{err.line}:{err.column}: error: "), rendered
    if rest:  # the quoted line is the line the position is on (what of it can be seen)
        assert _visible(rest[0]) == _visible(line), (rendered, line)


def _visible(line: str) -> str:
    return "".join(c for c in line if c.isprintable() and not c.isspace())


def _entries(types, sizes: dict[str, int]) -> int | None:
    """How many numbers arrays of these types hold in all; None if a size is unknown or < 0."""
    total = 0
    for t in types:
        shape = [d.evaluate(sizes) for d in t.dims]
        if any(s is None or s < 0 for s in shape):
            return None
        total += math.prod(shape)
    return total


def _small_feed(lowered) -> dict[str, np.ndarray] | None:
    """A random feed of at most MAX_ENTRIES numbers, and as small every value computed."""
    values = [n.type for n in topological_order(list(lowered.graph.outputs.values()))]
    for first in (3, 2, 7, 1):  # the size of each unbound dim: (n - 5) needs 7
        sizes = {name: first for name in lowered.unbound_dims}
        fed = _entries([v.type for v in lowered.variables], sizes)
        if fed is None:
            continue
        if fed > MAX_ENTRIES or max(_entries([t], sizes) or 0 for t in values) > MAX_ENTRIES:
            return None  # [x; x] twenty times over is too large to compute, not wrong
        return random_feed(lowered, sizes, signed=True)
    return None


def _run(fn: graphc.CompiledFunction, program: graphc.Program, feed: dict) -> None:
    module = load_module(fn.source)  # imports on its own, as a user would
    kwargs, _ = fn._kwargs(feed)
    _agree(module.value(**kwargs), program.run(**feed), fn.source)
    if fn.mode == "reverse":
        if fn.compiled.output_type.is_scalar:
            value, grads = module.value_and_grad(**kwargs)
        else:
            out = np.asarray(module.value(**kwargs))
            seed = {fn.compiled.seed_names[fn.compiled.output]: np.ones(out.shape)}
            value, grads = module.vjp(**kwargs, **seed)
        assert set(grads) == set(fn.wrt), (grads.keys(), fn.wrt)
        for name, g in grads.items():
            assert np.shape(g) == np.shape(feed[name]), (name, np.shape(g), np.shape(feed[name]))
    else:
        tangents = {fn.compiled.seed_names[w]: np.ones(np.shape(feed[w])) for w in fn.wrt}
        module.jvp(**kwargs, **tangents)
        entries = sum(np.size(feed[w]) for w in fn.wrt)
        if fn.compiled.output_type.is_scalar and entries <= MAX_FORWARD_GRAD:
            module.value_and_grad(**kwargs)


def _agree(emitted, interpreted, source: str) -> None:
    """The emitted value is the interpreter's, where both are ordinary numbers.

    Only where both are finite and moderate: the emitted code is rewritten
    (stable forms, folded constants), so at 1e308 or after an overflow the
    two may rightly differ.
    """
    a, b = np.asarray(emitted, dtype=float), np.asarray(interpreted, dtype=float)
    assert a.shape == b.shape, (a.shape, b.shape, source)
    both = np.isfinite(a) & np.isfinite(b) & (np.abs(b) < 1e8) & (np.abs(a) < 1e8)
    scale = max(1.0, float(np.max(np.abs(b[both]), initial=0.0)))
    assert np.allclose(a[both], b[both], rtol=1e-6, atol=1e-9 * scale), (a, b, source)


def check_input(text: str, filename: str = FILENAME, strategy: str = "other") -> str:
    """Compile and run ``text``, or check its error; count and return the outcome."""
    start = time.process_time()
    with cpu_limit(CPU_SECONDS):
        outcome = _check(text, filename)
    SLOWEST[:] = max(SLOWEST, [time.process_time() - start, text])
    TRIED[strategy, outcome] += 1
    return outcome


def summary() -> str:
    """One line: how many inputs were tried, by strategy and outcome."""
    total = sum(TRIED.values())
    strategies = sorted({s for s, _ in TRIED})
    by_strategy = ", ".join(
        f"{s} {sum(n for (t, _), n in TRIED.items() if t == s)}" for s in strategies
    )
    outcomes = ", ".join(f"{n} {o}" for o, n in sorted(_by_outcome().items()))
    return (
        f"fuzzing: {total} inputs tried ({by_strategy}; {outcomes}; the slowest took"
        f" {SLOWEST[0]:.2f} s of CPU time): each compiled and ran, or failed with a located"
        " graphc error"
    )


def _by_outcome() -> Counter[str]:
    out: Counter[str] = Counter()
    for (_, outcome), n in TRIED.items():
        out[outcome] += n
    return out


def _check(text: str, filename: str) -> str:
    try:
        program = graphc.parse(text, filename=filename)
        reverse = program.compile(mode="reverse")
        forward = program.compile(mode="forward")
    except GraphcError as err:
        located(err, text, filename)
        return REJECTED
    for fn in (reverse, forward):
        load_module(fn.source)
    feed = _small_feed(program.lowered)
    if feed is None:
        return COMPILED_UNFED
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            graphc.runtime.check_feed(program.lowered, feed)
        except FeedError:  # the program cannot be fed this way (x : [n*m] alone)
            return COMPILED_UNFED
        for fn in (reverse, forward):
            _run(fn, program, feed)
    return COMPILED
