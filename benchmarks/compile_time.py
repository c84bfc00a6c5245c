"""Compile time per stage for chains of 1k, 10k and 100k nodes, and the run time of the result.

Run by hand:  python benchmarks/compile_time.py  [sizes…]
The chain is ``h1 = tanh(x); h2 = tanh(h1); …; y = h_n``, one statement a node,
compiled in reverse mode.  For each size (measured in a fresh process, so that
no interned node is shared between sizes) it prints the seconds and the
microseconds per node of each stage: parse+lower, optimize the value graph,
reverse_mode, optimize the derivative graph, emit, import the emitted module,
first call of value_and_grad.  Then the growth of each stage per 10× nodes
(≈ 10 means linear), and, for the largest chain, the emitted value_and_grad
against a hand-written NumPy loop measured in the same run, and their ratio.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import timeit
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import graphc  # noqa: E402
from graphc import compiler, derive  # noqa: E402
from graphc.frontend import lower  # noqa: E402
from graphc.runtime import load_module  # noqa: E402

SIZES = (1_000, 10_000, 100_000)
STAGES = (
    "parse+lower",
    "optimize value",
    "reverse_mode",
    "optimize derivative",
    "emit",
    "import",
    "first call",
)
X = 0.7


def chain(n: int) -> str:
    lines = ["param x : []", "h1 = tanh(x)"]
    lines += [f"h{k} = tanh(h{k - 1})" for k in range(2, n + 1)]
    return "\n".join(lines) + f"\ny = h{n}\n"


def hand_written(x: float, n: int) -> tuple[float, dict[str, float]]:
    """The chain and its derivative by the chain rule, as one would write them in NumPy."""
    hs = [np.float64(x)]
    for _ in range(n):
        hs.append(np.tanh(hs[-1]))
    g = np.float64(1.0)
    for h in reversed(hs[1:]):
        g = g * (1.0 - h * h)
    return hs[-1], {"x": g}


class _Clock:
    """Seconds spent in the compiler's own calls of its stages, by stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.optimized = 0

    def wrap(self, module, name: str, stage) -> None:
        fn = getattr(module, name)

        def timed(*args, **kwargs):
            label = stage() if callable(stage) else stage
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start

        setattr(module, name, timed)

    def optimize_stage(self) -> str:
        self.optimized += 1
        return "optimize value" if self.optimized == 1 else "optimize derivative"


def measure(n: int) -> dict:
    """One size, in this process: seconds by stage, graph sizes, and for the largest the run."""
    clock = _Clock()
    clock.wrap(derive, "optimize", clock.optimize_stage)
    clock.wrap(derive, "reverse_mode", "reverse_mode")
    clock.wrap(compiler, "emit_module", "emit")
    warm_up = lower("param w : []\nv = tanh(w)")  # builds the parser; shares no node with the chain
    load_module(compiler.build_module(warm_up).source).value_and_grad(w=X)
    clock.seconds.clear()
    clock.optimized = 0
    text = chain(n)
    start = time.perf_counter()
    lowered = lower(text)
    clock.seconds["parse+lower"] = time.perf_counter() - start
    built = compiler.build_module(lowered, mode="reverse")
    start = time.perf_counter()
    module = load_module(built.source)
    clock.seconds["import"] = time.perf_counter() - start
    start = time.perf_counter()
    value, grads = module.value_and_grad(x=X)
    clock.seconds["first call"] = time.perf_counter() - start
    ref_value, ref_grads = hand_written(X, n)
    assert np.isclose(value, ref_value) and np.isclose(grads["x"], ref_grads["x"])
    result = {"n": n, "seconds": clock.seconds, "lines": built.source.count("\n")}
    if n == max(SIZES_RUN):
        number = 3
        result["emitted"] = min(timeit.repeat(lambda: module.value_and_grad(x=X), number=number))
        result["emitted"] /= number
        reference = min(timeit.repeat(lambda: hand_written(X, n), number=number)) / number
        result["hand-written"] = reference
    return result


def in_fresh_process(n: int) -> dict:
    run = subprocess.run(
        [sys.executable, __file__, "--one", str(n), *map(str, SIZES_RUN)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(run.stdout)


def seconds(result: dict, stage: str) -> float:
    if stage == "total":
        return sum(result["seconds"].values())
    return result["seconds"].get(stage, 0.0)


def main() -> None:
    results = [in_fresh_process(n) for n in SIZES_RUN]
    print(f"compile a tanh chain in reverse mode (graphc {graphc.__version__})")
    print(f"  {'stage':<20}" + "".join(f"{r['n']:>10,} nodes    " for r in results))
    print(f"  {'':<20}" + "".join(f"{'s':>10} {'µs/node':>9}   " for _ in results))
    for stage in (*STAGES, "total"):
        cells = (
            f"{seconds(r, stage):10.3f} {seconds(r, stage) / r['n'] * 1e6:9.1f}   " for r in results
        )
        print(f"  {stage:<20}" + "".join(cells))
    print(f"  {'emitted lines':<20}" + "".join(f"{r['lines']:>10,}{'':13}" for r in results))
    print("growth per 10× nodes (≈ 10 is linear)")
    for stage in (*STAGES, "total"):
        ratios = (
            # per 10×, also for sizes that are not 10× apart
            seconds(big, stage) / seconds(small, stage) * 10 * small["n"] / big["n"]
            for small, big in zip(results, results[1:])
        )
        print(f"  {stage:<20}" + "".join(f"{r:8.1f}" for r in ratios))
    last = results[-1]
    print(f"value_and_grad, tanh chain of {last['n']:,} nodes")
    print(f"  emitted      {last['emitted'] * 1e3:8.2f} ms")
    print(f"  hand-written {last['hand-written'] * 1e3:8.2f} ms")
    print(f"  ratio        {last['emitted'] / last['hand-written']:8.3f}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--one"]:
        SIZES_RUN = tuple(int(a) for a in args[2:])
        print(json.dumps(measure(int(args[1]))))
    else:
        SIZES_RUN = tuple(int(a) for a in args) or SIZES
        main()
