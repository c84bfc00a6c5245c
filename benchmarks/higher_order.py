"""Higher-order derivatives (issue 9) against hand-written NumPy, in one run.

    python benchmarks/higher_order.py --blas-threads 1
    python benchmarks/higher_order.py --quick               # small sizes, few repeats
    python benchmarks/higher_order.py --blas-threads 1 --write docs/higher-order.md

Rows (x ∈ ℝ^200, A 300×200, f = Σ tanh(A x) + xᵀ B x):

* ``hessian``: the full Hessian of f, compiled from f alone, against the
  closed form Aᵀ((−2 t (1 − t²)) ∘ A) + B + Bᵀ written by hand (target 1.3×);
* ``jacobian-forward``, ``jacobian-reverse``: the Jacobian of tanh(A x) by x
  against ``(1 − t²)[:, None] * A`` (target 2×);
* ``hvp``: the Hessian-vector product of f against one ``value_and_grad`` of
  the same emitted module (target 4×).

Each candidate is checked against the reference first (the hvp against the
hand-written Hessian times v), then all are timed interleaved by the suite's
`interleaved` (median over repeats of each repeat's ratio).  "module" is
the emitted module's function called directly; "fn" is the
`CompiledFunction` method, which also checks and copies the feed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

BEGIN, END = "<!-- BEGIN higher-order -->", "<!-- END higher-order -->"


def _blas_threads(argv: list[str]) -> None:
    """Apply --blas-threads N now: BLAS reads its thread count when NumPy loads it."""
    for i, arg in enumerate(argv):
        if arg == "--blas-threads" and i + 1 < len(argv) and argv[i + 1].isdigit():
            for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ[name] = argv[i + 1]


if __name__ == "__main__":
    _blas_threads(sys.argv[1:])

import numpy as np  # noqa: E402
import suite  # noqa: E402
import workloads  # noqa: E402

import graphc  # noqa: E402
from graphc.runtime import load_module  # noqa: E402

JACOBIAN_PROGRAM = """\
dim n = {n}
dim m = {m}
input A : [m, n]
param x : [n]
y = tanh(A x)
"""

TARGETS = {"hessian": 1.3, "hvp": 4.0, "jacobian-forward": 2.0, "jacobian-reverse": 2.0}


def _feed(n: int, m: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    return {
        "A": rng.normal(size=(m, n)) / np.sqrt(n),
        "B": rng.normal(size=(n, n)) / n,
        "x": rng.normal(size=n),
    }


def cases(quick: bool) -> list[dict[str, Any]]:
    """Each row: its reference, the module's and fn's calls, checked to agree."""
    n, m = (20, 30) if quick else (200, 300)
    feed = _feed(n, m)
    f = graphc.compile(workloads.HESSIAN_F.format(n=n, m=m), emit="value_and_grad,hessian,hvp")
    module = load_module(f.source)
    hand_hessian = workloads.hessian_hand(**feed)
    v = np.random.default_rng(6).normal(size=n)
    rows = [
        {
            "key": "hessian",
            "title": f"Hessian of Σ tanh(A x) + xᵀ B x, x ∈ ℝ^{n}, A {m}×{n}",
            "reference": "hand-written Aᵀ((−2t(1−t²)) ∘ A) + B + Bᵀ",
            "hand": lambda: workloads.hessian_hand(**feed),
            "module": lambda: module.hessian(**feed)["x"]["x"],
            "fn": lambda: f.hessian(**feed)["x"]["x"],
            "want": hand_hessian,
        },
        {
            "key": "hvp",
            "title": f"Hessian-vector product of the same f, x ∈ ℝ^{n}",
            "reference": "one value_and_grad of the emitted module",
            "hand": lambda: module.value_and_grad(**feed),
            "module": lambda: module.hvp(**feed, x_dot=v)["x"],
            "fn": lambda: f.hvp({"x": v}, **feed)["x"],
            "want": hand_hessian @ v,
        },
    ]
    small = {"A": feed["A"], "x": feed["x"]}
    t = np.tanh(feed["A"] @ feed["x"])
    for mode in ("forward", "reverse"):
        g = graphc.compile(JACOBIAN_PROGRAM.format(n=n, m=m), mode=mode, emit="jacobian")
        jacobian_module = load_module(g.source)
        rows.append(
            {
                "key": f"jacobian-{mode}",
                "title": f"Jacobian of tanh(A x) by x, x ∈ ℝ^{n}, A {m}×{n}, {mode} mode",
                "reference": "hand-written (1 − t²)[:, None] * A",
                "hand": lambda: _tanh_jacobian(**small),
                "module": lambda jm=jacobian_module: jm.jacobian(**small)["x"],
                "fn": lambda g=g: g.jacobian(**small)["x"],
                "want": (1 - t * t)[:, None] * feed["A"],
            }
        )
    for row in rows:
        for who in ("module", "fn"):
            got = np.asarray(row[who]())
            if got.shape != row["want"].shape or not np.allclose(got, row["want"], rtol=1e-9):
                raise AssertionError(f"{row['key']}: graphc {who} disagrees with the reference")
    return rows


def _tanh_jacobian(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    t = np.tanh(A @ x)
    return (1.0 - t * t)[:, None] * A


def run(quick: bool, repeats: int | None) -> dict[str, Any]:
    repeats = repeats or (3 if quick else 15)
    target = 0.002 if quick else 0.05
    records = []
    load = suite.OthersLoad()
    for row in cases(quick):
        calls = {name: row[name] for name in ("hand", "module", "fn")}
        seconds, ratios = suite.interleaved(calls, repeats, target)
        records.append(
            {
                "key": row["key"],
                "title": row["title"],
                "reference": row["reference"],
                "seconds": seconds,
                "ratios": ratios,
                "target": TARGETS[row["key"]],
            }
        )
        print(f"  {row['key']} done", file=sys.stderr)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": suite.machine(),
        "options": {"quick": quick, "repeats": repeats},
        "others_cores": load.stop(),
        "rows": records,
    }


HEADER = ("key", "workload", "reference", "reference time", "module", "fn", "target (module)")


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Measured {results['date']} on {m['cpu']}, {m['cores']} cores; Python {m['python']},"
        f" NumPy {m['numpy']}, BLAS {m['blas']}; graphc {m['graphc']};"
        f" {'--quick, ' if results['options']['quick'] else ''}"
        f"{results['options']['repeats']} repeats, median ratios. Other processes kept"
        f" {suite.fmt_cores(results['others_cores'])} busy.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "| " + " | ".join("---" for _ in HEADER) + " |",
    ]
    for r in results["rows"]:
        met = "met" if r["ratios"]["module"] <= r["target"] else "NOT met"
        cells = [
            f"`{r['key']}`",
            r["title"],
            r["reference"],
            suite.fmt_time(r["seconds"]["hand"]),
            suite.fmt_ratio(r["ratios"]["module"]),
            suite.fmt_ratio(r["ratios"]["fn"]),
            f"≤ {r['target']:g}×: {met}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def region(results: dict[str, Any]) -> str:
    raw = json.dumps(results, ensure_ascii=False, sort_keys=True)
    assert "--" not in raw
    return f"\n{render(results)}\n<!-- results {raw} -->\n"


def read_page(path: Path) -> tuple[str, dict[str, Any]]:
    return suite.marked_region(path, BEGIN, END)


def write_page(path: Path, results: dict[str, Any]) -> None:
    suite.replace_marked(path, BEGIN, END, region(results))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--repeats", type=int, help="timings per candidate (default 15)")
    parser.add_argument("--blas-threads", type=int, help="threads NumPy's BLAS may use")
    parser.add_argument("--write", type=Path, help=f"replace {BEGIN} … {END} in this file")
    args = parser.parse_args(argv)
    results = run(args.quick, args.repeats)
    if args.write:
        write_page(args.write, results)
    print(render(results), end="")


if __name__ == "__main__":
    main()
