"""The scatter-add of a gather's reverse rule: np.add.at against np.bincount.

    python benchmarks/scatter_add.py                   # a text table
    python benchmarks/scatter_add.py --format markdown # the table of docs/language.md

The reverse rule of ``E[ids]`` (E [V×d], n ids) adds each row of the
cotangent back at its id, repeated ids accumulating.  NumPy has two ways to
write it: ``np.add.at(dE, ids, g)`` into zeros, and a ``np.bincount`` over the
flat positions id·d + column, which graphc emits.  The script checks that both
give the same array and times each (median of interleaved repeats) for a
small vocabulary (the NER tutorial's), a larger one, and a large batch.
docs/generate.py runs ``markdown()``; the tests compare all but the times.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

# (V rows, d columns, n ids)
SIZES = [(145, 16, 64), (5000, 50, 64), (5000, 50, 4096), (50000, 100, 512)]
REPEATS = 15


def add_at(ids: np.ndarray, g: np.ndarray, rows: int) -> np.ndarray:
    out = np.zeros((rows, g.shape[1]))
    np.add.at(out, ids, g)
    return out


def bincount(ids: np.ndarray, g: np.ndarray, rows: int) -> np.ndarray:
    width = g.shape[1]  # as graphc emits it
    flat = (ids[:, None] * width + np.arange(width)).ravel()
    return np.bincount(flat, weights=g.ravel(), minlength=rows * width).reshape(rows, width)


def measure(rows: int, width: int, n: int, repeats: int = REPEATS) -> dict[str, float]:
    rng = np.random.default_rng(rows + width + n)
    ids = rng.integers(0, rows, n)
    g = rng.standard_normal((n, width))
    np.testing.assert_allclose(bincount(ids, g, rows), add_at(ids, g, rows), rtol=1e-12)
    times: dict[str, list[float]] = {"np.add.at": [], "np.bincount": []}
    for _ in range(repeats):
        for name, fn in (("np.add.at", add_at), ("np.bincount", bincount)):
            start = time.perf_counter()
            fn(ids, g, rows)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def rows() -> list[tuple[int, int, int, dict[str, float]]]:
    return [(v, d, n, measure(v, d, n)) for v, d, n in SIZES]


def markdown() -> str:
    lines = [
        "| V rows | d columns | n ids | np.add.at time | np.bincount time"
        " | time ratio add.at / bincount |",
        "|--:|--:|--:|--:|--:|--:|",
    ]
    for v, d, n, t in rows():
        a, b = t["np.add.at"], t["np.bincount"]
        lines.append(f"| {v} | {d} | {n} | {a * 1e3:.3f} ms | {b * 1e3:.3f} ms | {a / b:.2f} |")
    lines.append("")
    lines.append(
        f"The median of {REPEATS} interleaved runs each; both give the same array (checked)."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=["text", "markdown"], default="text")
    args = parser.parse_args()
    if args.format == "markdown":
        print(markdown())
        return
    for v, d, n, t in rows():
        print(f"V={v} d={d} n={n}: " + ", ".join(f"{k} {s * 1e3:.3f} ms" for k, s in t.items()))


if __name__ == "__main__":
    main()
