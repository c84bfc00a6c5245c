"""Scale: long chains compile and run with a shallow Python stack, in linear size.

Every stage (parse, lowering, shape checks, the optimisation passes, reverse
and forward mode, emission, importing the emitted module, the interpreter,
listings and DOT) runs here with the recursion limit set a few hundred frames
above the caller's depth, so a traversal that recursed once per node would
fail with a RecursionError instead of passing on a roomy default stack.

Values and derivatives are checked against NumPy loops computing the same
chains, the derivative against the chain-rule product and central
differences.  Sizes in the graphs and the emitted code are checked to grow
linearly with the chain; benchmarks/compile_time.py measures the time.
"""

from __future__ import annotations

import contextlib
import sys

import numpy as np
import pytest

import graphc
from graphc import ops
from graphc.autodiff import forward_mode, reverse_mode
from graphc.compiler import build_module
from graphc.frontend import lower
from graphc.passes import optimize

LONG = 100_000  # nodes in the long chains
DEEP = 10_000  # nesting depth of the deep expressions
HEADROOM = 300  # frames allowed above the test's own depth
X = 0.7


@contextlib.contextmanager
def shallow_stack(headroom: int = HEADROOM):
    """The recursion limit a few hundred frames above the current depth."""
    depth = 0
    frame = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + headroom)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def test_the_stack_is_shallow_indeed():
    def recurse(n: int) -> int:
        return 0 if n == 0 else 1 + recurse(n - 1)

    with shallow_stack(), pytest.raises(RecursionError):
        recurse(2 * HEADROOM)


def central_difference(f, x: float, h: float = 1e-4) -> float:
    # h = 1e-6 would be too small: rounding in 100,000 steps swamps the difference
    return (f(x + h) - f(x - h)) / (2 * h)


# ---------------------------------------------------------------------------
# A chain of 100,000 nodes in 50,000 statements: h1 = sin(tanh(x)); h2 = sin(tanh(h1)); …
# ---------------------------------------------------------------------------

STEPS = LONG // 2  # statements, of two nodes each


def sin_tanh_chain(n: int) -> str:
    lines = ["param x : []", "h1 = sin(tanh(x))"]
    lines += [f"h{k} = sin(tanh(h{k - 1}))" for k in range(2, n + 1)]
    return "\n".join(lines) + f"\ny = h{n}\n"


def sin_tanh_reference(x: float, n: int) -> tuple[float, float]:
    """sin ∘ tanh applied n times, and its derivative: the chain-rule product down the chain."""
    ts, h = [], np.float64(x)
    for _ in range(n):
        ts.append(np.tanh(h))
        h = np.sin(ts[-1])
    derivative = np.float64(1.0)
    for t in reversed(ts):
        derivative = derivative * np.cos(t) * (1.0 - t * t)
    return float(h), float(derivative)


@pytest.fixture(scope="module")
def statements():
    with shallow_stack():
        program = graphc.parse(sin_tanh_chain(STEPS))
    value, derivative = sin_tanh_reference(X, STEPS)
    return program, value, derivative


def test_reference_chain_is_not_degenerate(statements):
    _, value, derivative = statements
    # h ← h − h³/2 near 0: h ≈ 1/√n, and the derivative ≈ n^(-3/2) up to a factor.
    assert value == pytest.approx(1 / np.sqrt(STEPS), rel=0.05)
    assert 1e-9 < derivative < 1e-5


def test_statements_run_in_the_interpreter(statements):
    program, value, _ = statements
    assert len(program.graph.nodes()) == LONG + 1  # and x
    with shallow_stack():
        assert program.run(x=X) == pytest.approx(value, rel=1e-12)


def test_statements_list_and_draw(statements):
    program, _, _ = statements
    with shallow_stack():
        listing = program.listing().splitlines()
        dot = program.to_dot().splitlines()
    assert listing[:3] == ["  param x : []", "  t1 : [] = tanh x", "  h1 : [] = sin t1"]
    assert listing[-2] == f"  h{STEPS} : [] = sin t{STEPS}"
    assert len(listing) == LONG + 2
    assert sum(" = tanh\\n" in line for line in dot) == STEPS
    assert sum(" = sin\\n" in line for line in dot) == STEPS
    assert sum(" -> " in line for line in dot) == LONG + 1  # one argument each, and the output


def test_statements_compile_in_reverse_mode(statements):
    program, value, derivative = statements
    with shallow_stack():
        fn = program.compile(wrt="x")
        got, grads = fn.value_and_grad(x=X)
        assert fn(x=X) == pytest.approx(value, rel=1e-12)
        slope = central_difference(lambda x: fn(x=x), X)
    assert got == pytest.approx(value, rel=1e-12)
    assert grads["x"] == pytest.approx(derivative, rel=1e-10)
    assert grads["x"] == pytest.approx(slope, rel=1e-4)
    body = fn.source.split("def value_and_grad")[1].splitlines()
    assert sum(line.startswith("    h") for line in body) == STEPS  # each value once
    assert sum(line.startswith("    dy_dh") for line in body) == STEPS - 1


def tanh_chain(n: int) -> str:
    lines = ["param x : []", "h1 = tanh(x)"]
    lines += [f"h{k} = tanh(h{k - 1})" for k in range(2, n + 1)]
    return "\n".join(lines) + f"\ny = h{n}\n"


def tanh_chain_reference(x: float, n: int) -> tuple[float, float]:
    """tanh applied n times, and its derivative: the product of 1 − h² down the chain."""
    hs = [np.float64(x)]
    for _ in range(n):
        hs.append(np.tanh(hs[-1]))
    derivative = np.float64(1.0)
    for h in reversed(hs[1:]):
        derivative = derivative * (1.0 - h * h)
    return float(hs[-1]), float(derivative)


def test_statements_compile_in_forward_mode():
    # Forward mode costs as much again as reverse mode: a shorter chain.
    n = LONG // 20
    value, derivative = tanh_chain_reference(X, n)
    with shallow_stack():
        fn = graphc.compile(tanh_chain(n), wrt="x", mode="forward")
        got, grads = fn.value_and_grad(x=X)
    assert got == pytest.approx(value, rel=1e-12)
    assert grads["x"] == pytest.approx(derivative, rel=1e-10)
    body = fn.source.split("def jvp")[1].split("def value_and_grad")[0].splitlines()
    assert sum(line.startswith("    h") and "_dot" in line for line in body) == n


# ---------------------------------------------------------------------------
# One long expression: a sum 10,000 terms long, calls nested 10,000 deep
# ---------------------------------------------------------------------------


def test_a_sum_ten_thousand_terms_long():
    # x + sin(x) + x + sin(x) + …: a left-leaning tree of additions, DEEP deep.
    text = "param x : []\ny = " + " + ".join(["x", "sin(x)"] * (DEEP // 2)) + "\n"
    value, slope = DEEP / 2 * (X + np.sin(X)), DEEP / 2 * (1 + np.cos(X))
    with shallow_stack():
        program = graphc.parse(text)
        assert len(program.graph.nodes()) == DEEP + 1  # x, sin(x) and DEEP − 1 additions
        assert program.run(x=X) == pytest.approx(value, rel=1e-12)
        fn = program.compile()
        got, grads = fn.value_and_grad(x=X)
    assert got == pytest.approx(value, rel=1e-12)
    assert grads["x"] == pytest.approx(slope, rel=1e-12)


def nested_sin_reference(x: float, n: int) -> tuple[float, float]:
    value, derivative = np.float64(x), np.float64(1.0)
    for _ in range(n):
        derivative = derivative * np.cos(value)
        value = np.sin(value)
    return float(value), float(derivative)


def test_calls_nested_ten_thousand_deep():
    text = "param x : []\ny = " + "sin(" * DEEP + "x" + ")" * DEEP + "\n"
    value, derivative = nested_sin_reference(X, DEEP)
    with shallow_stack():
        program = graphc.parse(text)
        assert program.run(x=X) == pytest.approx(value, rel=1e-12)
        assert len(program.listing().splitlines()) == DEEP + 2
        compiled = {mode: program.compile(mode=mode) for mode in ("reverse", "forward")}
        results = {mode: fn.value_and_grad(x=X) for mode, fn in compiled.items()}
        slope = central_difference(lambda x: compiled["reverse"](x=x), X)
    for mode, (got, grads) in results.items():
        assert got == pytest.approx(value, rel=1e-12), mode
        assert grads["x"] == pytest.approx(derivative, rel=1e-9), mode
        # The emitted code breaks the nesting into statements: no line nests deeply.
        code = compiled[mode].source.split("import numpy as np")[1]  # after the docstring
        assert max(line.count("(") for line in code.splitlines()) < 20, mode
    assert derivative == pytest.approx(slope, rel=1e-4)


# ---------------------------------------------------------------------------
# Parentheses nested 10,000 deep
# ---------------------------------------------------------------------------


def affine_steps(x: float) -> tuple[float, float]:
    """h ← h x + x, DEEP / 2 times from h = x, then h ← h − x as often; and dh/dx."""
    h, dh = x, 1.0
    for _ in range(DEEP // 2):
        h, dh = h * x + x, dh * x + h + 1.0
    return h - DEEP // 2 * x, dh - DEEP // 2


@pytest.mark.parametrize(
    "body, expected",
    [
        ("(" * DEEP + "-x" + ")" * DEEP, lambda x: (-x, -1.0)),
        ("(" * DEEP + "x" + " ∘ x + x)" * (DEEP // 2) + " - x)" * (DEEP // 2), affine_steps),
    ],
    ids=["negation", "affine"],
)
def test_parentheses_nested_ten_thousand_deep_compile(body, expected):
    text = f"param x : []\ny = {body}\n"
    with shallow_stack():
        try:
            fn = graphc.compile(text, wrt="x")
        except graphc.GraphcError as err:  # a clean error is allowed; a crash is not
            assert "nests too deeply" in str(err)
            return
        got, grads = fn.value_and_grad(x=X)
    value, slope = expected(X)
    assert got == pytest.approx(value, rel=1e-9)
    assert grads["x"] == pytest.approx(slope, rel=1e-9)


# ---------------------------------------------------------------------------
# Linear growth: graphs and emitted code, for chains of n, 2n and 4n
# ---------------------------------------------------------------------------

GROWTH = 2.1  # the most a doubling of the chain may multiply a size by


def square_chain(n: int) -> str:
    # every step uses the previous value twice
    lines = ["param x : []", "h1 = x ∘ x + x"]
    lines += [f"h{k} = h{k - 1} ∘ h{k - 1} + h{k - 1}" for k in range(2, n + 1)]
    return "\n".join(lines) + f"\ny = h{n}\n"


def matrix_chain(n: int) -> str:
    # h_{k+1} = tanh(W h_k), one W for every step
    lines = ["param W : [3, 3]", "input x : [3]", "h1 = tanh(W x)"]
    lines += [f"h{k} = tanh(W h{k - 1})" for k in range(2, n + 1)]
    return "\n".join(lines) + f"\ny = sum(h{n})\n"


CHAINS = {"tanh": tanh_chain, "square": square_chain, "matrix": matrix_chain}


def sizes(text: str) -> dict[str, int]:
    """Node counts of the optimised graphs, and lines of the emitted modules."""
    lowered = lower(text)
    value = optimize(lowered.graph)
    out, wrt = lowered.output, lowered.params
    seeds = {v: ops.var(name=f"{v.attr('name')}_dot", kind="tangent", type=v.type) for v in wrt}
    return {
        "value nodes": len(value.nodes()),
        "reverse nodes": len(optimize(reverse_mode(value, wrt, out)).nodes()),
        "forward nodes": len(optimize(forward_mode(value, seeds, out)).nodes()),
        "reverse lines": build_module(lowered, mode="reverse").source.count("\n"),
        "forward lines": build_module(lowered, mode="forward").source.count("\n"),
    }


@pytest.mark.parametrize("shape", sorted(CHAINS))
def test_sizes_grow_linearly(shape):
    n = 250
    with shallow_stack():
        measured = [sizes(CHAINS[shape](k)) for k in (n, 2 * n, 4 * n)]
    for what in measured[0]:
        counts = [m[what] for m in measured]
        assert counts[0] >= n, (shape, what, counts)  # the chain is really there
        for small, big in zip(counts, counts[1:]):
            assert 1.9 <= big / small <= GROWTH, (shape, what, counts)


# ---------------------------------------------------------------------------
# Linear work: Python calls made by compile + first call, for chains of n and 2n
# ---------------------------------------------------------------------------


def layered_chain(n: int, prefix: str) -> str:
    """benchmarks' chain-L workload: h_k = tanh(W_k h_{k-1} + b_k), 2n variables.

    ``prefix`` names its variables apart, so that no interned node (nor the
    rewrite engine's marks on one) is shared with another chain's.
    """
    lines = ["dim w = 4", "input x : [w]"]
    lines += [f"param {prefix}W{k} : [w, w]\nparam {prefix}b{k} : [w]" for k in range(1, n + 1)]
    lines += [f"h1 = tanh({prefix}W1 x + {prefix}b1)"]
    lines += [f"h{k} = tanh({prefix}W{k} h{k - 1} + {prefix}b{k})" for k in range(2, n + 1)]
    return "\n".join(lines) + f"\nJ = sum(h{n})\n"


def calls_to_compile_and_call(text: str) -> dict[str, int]:
    """Python function calls (by function) that parse → … → import → first call make."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    fn = graphc.compile(text)
    variables = fn.lowered.variables
    feed = {v.attr("name"): np.full(tuple(d.value for d in v.type.dims), 0.1) for v in variables}
    fn.value_and_grad(**feed)
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    counts: dict[str, int] = {}
    for (filename, line, name), (_, calls, *_rest) in stats.items():
        key = f"{filename}:{line}({name})" if line else name  # builtins have no line
        counts[key] = counts.get(key, 0) + calls
    return counts


def test_compile_work_grows_linearly():
    """Doubling the chain at most doubles the calls of every function, and of all together.

    Counts, not times: a loop over the variables inside a loop over the
    variables (a `list` membership test, an `any` over all outputs) shows up
    as a function called quadratically often, whatever the machine's load.
    """
    n = 150
    calls_to_compile_and_call(layered_chain(3, "warm"))  # parser, rule indexes, caches
    small = calls_to_compile_and_call(layered_chain(n, "a"))
    big = calls_to_compile_and_call(layered_chain(2 * n, "b"))
    total_small, total_big = sum(small.values()), sum(big.values())
    assert 1.9 <= total_big / total_small <= GROWTH, (total_small, total_big)
    assert total_small >= 100 * n  # the work was counted
    worse = {
        f: (small.get(f, 0), calls)
        for f, calls in big.items()
        if calls > GROWTH * small.get(f, 0) + 20  # a function called a few more times is fine
    }
    assert not worse, worse
