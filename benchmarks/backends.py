"""The array-API module's speed against the NumPy module and PyTorch's own autograd.

One run times, on the MLP workload (8 tanh layers of 512, batch 256; the
suite's `mlp`), the gradient by:

* graphc's NumPy module on NumPy arrays;
* graphc's array-API module on NumPy arrays (target: ≤ 1.05 × the NumPy module);
* graphc's array-API module on PyTorch CPU tensors (target: ≤ 1.1 × PyTorch eager);
* PyTorch eager autograd of the same forward function (`benchmarks/peers.py`).

Each is the median of ``--repeats`` calls after one warm-up call (the routes
interleaved, one call of each per round), with the
same number of threads for NumPy's BLAS and PyTorch (``--threads``, default 1:
the project's machine is shared); the results must agree before anything is
timed.  ``--write docs/backends.md`` records the table in that page.

    python benchmarks/backends.py
    python benchmarks/backends.py --quick          # a small MLP, for the tests
    python benchmarks/backends.py --write docs/backends.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def _threads(argv: list[str]) -> int:
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
    return 1


# BLAS reads its thread count when NumPy loads: set it before, when run as a script (a test
# that imports this module to read the page keeps its own settings and its children's).
if __name__ == "__main__":
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = str(_threads(sys.argv))

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import peers  # noqa: E402
import suite  # noqa: E402
import workloads  # noqa: E402

import graphc  # noqa: E402
from graphc.runtime import load_module  # noqa: E402

BEGIN, END = "<!-- BEGIN backends -->", "<!-- END backends -->"
TARGETS = {"array-api on NumPy / NumPy module": 1.05, "array-api on torch / torch eager": 1.1}


def mlp_text(layers: int, width: int, batch: int) -> str:
    lines = [f"dim B = {batch}", f"dim w = {width}", "input X : [B, w]"]
    lines += [f"param W{k} : [w, w]\nparam b{k} : [w]" for k in range(1, layers + 1)]
    lines += ["H1 = tanh(X W1 + b1)"]
    lines += [f"H{k} = tanh(H{k - 1} W{k} + b{k})" for k in range(2, layers + 1)]
    lines += [f"J = sum(H{layers})"]
    return "\n".join(lines) + "\n"


def median_seconds(calls: dict[str, Any], repeats: int) -> dict[str, float]:
    """Each call's median time over ``repeats`` rounds, the calls interleaved in every
    round, so that a change of the machine's load reaches every route alike."""
    for call in calls.values():
        call()  # warm-up: caches, lazy imports
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def measure(layers: int, width: int, batch: int, repeats: int, threads: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    case = workloads.mlp(layers, width, batch)
    feed = {**case.inputs, **case.params}
    text = mlp_text(layers, width, batch)
    numpy_module = load_module(graphc.compile(text).source, "mlp_numpy")
    api_module = load_module(graphc.compile(text, backend="array-api").source, "mlp_api")
    tensors = {k: torch.asarray(v) for k, v in feed.items()}
    calls = {
        "NumPy module": lambda: numpy_module.value_and_grad(**feed),
        "array-api on NumPy": lambda: api_module.value_and_grad(**feed),
        "array-api on torch": lambda: api_module.value_and_grad(**tensors),
        "torch eager": peers.value_and_grad("torch", case.forward, case.params, case.inputs),
    }
    want_value, want_grads = case.hand()
    for name, call in calls.items():  # every route computes the same gradient
        value, grads = peers.convert(call())
        np.testing.assert_allclose(value, want_value, rtol=1e-10, err_msg=name)
        for k, g in want_grads.items():
            np.testing.assert_allclose(grads[k], g, rtol=1e-8, atol=1e-10, err_msg=f"{name} {k}")
    seconds = median_seconds(calls, repeats)
    ratios = {
        f"{route} / {reference}": seconds[route] / seconds[reference]
        for route, reference in (
            ("array-api on NumPy", "NumPy module"),
            ("array-api on torch", "torch eager"),
        )
    }
    return {
        "workload": f"MLP, {layers} tanh layers of {width}, batch {batch}",
        "repeats": repeats,
        "threads": threads,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python"
        f" {platform.python_version()}, NumPy {np.__version__}, torch {torch.__version__}",
        "seconds": seconds,
        "ratios": ratios,
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"{results['workload']}; median of {results['repeats']} calls, {results['threads']}"
        f" thread(s); {results['machine']}.",
        "",
        "| route | time (ms) |",
        "| --- | --- |",
    ]
    lines += [f"| {name} | {1000 * s:.1f} |" for name, s in results["seconds"].items()]
    lines += ["", "| ratio | measured | target |", "| --- | --- | --- |"]
    lines += [f"| {name} | {r:.2f} | ≤ {TARGETS[name]} |" for name, r in results["ratios"].items()]
    return "\n".join(lines)


def region(results: dict[str, Any]) -> str:
    return f"{markdown(results)}\n<!-- results {json.dumps(results, sort_keys=True)} -->\n"


def read_page(path: Path) -> tuple[str, dict[str, Any]]:
    return suite.marked_region(path, BEGIN, END)


def write_page(path: Path, results: dict[str, Any]) -> None:
    suite.replace_marked(path, BEGIN, END, "\n" + region(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 layers of 64, batch 32")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads")
    parser.add_argument("--write", type=Path, help="record the table in this page")
    args = parser.parse_args(argv)
    sizes = (2, 64, 32) if args.quick else (8, 512, 256)
    results = measure(*sizes, args.repeats, args.threads)
    print(markdown(results))
    if args.write:
        write_page(args.write, results)
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
