"""Jacobian cost against the number of inputs and outputs: forward mode against reverse.

    python benchmarks/forward_vs_reverse.py                   # a text table
    python benchmarks/forward_vs_reverse.py --format markdown # the table of the docs page

For f: ℝⁿ → ℝᵐ, y = tanh(A x) (A an m × n input, x the variable), the full
Jacobian ∂y/∂x, m × n, is computed by ``fn.jacobian()`` of the program
compiled in forward mode and in reverse mode: one call of the emitted
``jacobian``, a vectorised sweep carrying n directions (forward: one per
input entry) or m (reverse: one per output entry).  The script checks both
Jacobians against the hand derivation diag(1 − y∘y) A, then times each: the
median of interleaved repeats.
docs/generate.py runs ``markdown()`` to write the page's table, and the
tests compare everything but the time columns with what it gives now.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # graphc from this checkout

import graphc  # noqa: E402

# (n inputs, m outputs): few inputs, as many as outputs, few outputs.
SIZES = [(1, 256), (16, 256), (256, 256), (256, 16), (256, 1)]
REPEATS = 7

PROGRAM = "dim m = {m}\ndim n = {n}\ninput A : [m, n]\nparam x : [n]\ny = tanh(A x)\n"


@dataclass(frozen=True)
class Row:
    n: int
    m: int
    directions: dict[str, int]  # mode -> directions the one vectorised sweep carries
    seconds: dict[str, float]  # mode -> median time of one fn.jacobian()

    @property
    def cheaper(self) -> str:
        forward, reverse = self.directions["forward"], self.directions["reverse"]
        return "forward" if forward < reverse else "reverse" if reverse < forward else "either"


def measure(n: int, m: int, repeats: int = REPEATS) -> Row:
    text = PROGRAM.format(n=n, m=m)
    rng = np.random.default_rng(n * 1000 + m)
    feed = {"A": rng.normal(size=(m, n)) / np.sqrt(n), "x": rng.normal(size=n)}
    y = np.tanh(feed["A"] @ feed["x"])
    by_hand = (1.0 - y * y)[:, None] * feed["A"]  # diag(1 − y∘y) A
    jacobians: dict[str, Callable[[], object]] = {}
    directions = {"forward": n, "reverse": m}
    for mode in directions:
        fn = graphc.compile(text, mode=mode)
        jacobian = fn.jacobian(**feed)["x"]
        if not np.allclose(jacobian, by_hand, rtol=1e-12, atol=1e-12):
            raise AssertionError(f"{mode} mode's Jacobian differs from the hand derivation")
        jacobians[mode] = lambda fn=fn: fn.jacobian(**feed)
    times: dict[str, list[float]] = {mode: [] for mode in jacobians}
    for i in range(repeats):
        for mode in sorted(jacobians, reverse=bool(i % 2)):  # interleaved, order alternating
            start = time.perf_counter()
            jacobians[mode]()
            times[mode].append(time.perf_counter() - start)
    return Row(n, m, directions, {mode: statistics.median(t) for mode, t in times.items()})


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


HEADINGS = [
    "n inputs",
    "m outputs",
    "forward: directions",
    "reverse: directions",
    "fewer directions",
    "forward time",
    "reverse time",
    "time ratio forward / reverse",
]


def rows(measured: list[Row]) -> list[list[str]]:
    return [
        [
            str(r.n),
            str(r.m),
            str(r.directions["forward"]),
            str(r.directions["reverse"]),
            r.cheaper,
            _ms(r.seconds["forward"]),
            _ms(r.seconds["reverse"]),
            f"{r.seconds['forward'] / r.seconds['reverse']:.2f}",
        ]
        for r in measured
    ]


def markdown(sizes: list[tuple[int, int]] = SIZES) -> str:
    measured = [measure(n, m) for n, m in sizes]
    lines = [
        "| " + " | ".join(HEADINGS) + " |",
        "|" + "--:|" * len(HEADINGS),
        *("| " + " | ".join(row) + " |" for row in rows(measured)),
        "",
        f"y = tanh(A x), A an m × n input; the median of {REPEATS} interleaved runs of"
        " fn.jacobian() for each mode. Both Jacobians equal diag(1 − y∘y) A, the hand"
        " derivation, to 1e-12.",
    ]
    return "\n".join(lines)


def text(sizes: list[tuple[int, int]] = SIZES) -> str:
    measured = [measure(n, m) for n, m in sizes]
    table = [HEADINGS, *rows(measured)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADINGS))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=["text", "markdown"], default="text")
    args = parser.parse_args(argv)
    print(markdown() if args.format == "markdown" else text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
