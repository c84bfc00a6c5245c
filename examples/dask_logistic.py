"""Logistic regression's gradient over 10⁷ rows, on a Dask cluster, by graphc's array-API module.

The data never exist in one place: the rows are drawn chunk by chunk on the
workers (``dask.array.random``), and the module graphc emits with
``backend="array-api"`` only builds Dask's task graph (it calls no
``.compute()``): ``X @ w`` and ``Xᵀ δ`` run chunk by chunk, and the sums over
the rows are Dask's tree reductions.  One ``dask.compute`` at the end runs it
all; each worker holds a few chunks at a time, so its peak memory is set by
the chunk size, not by the number of rows.

    python examples/dask_logistic.py                      # 10⁷ rows, a local cluster of 4
    python examples/dask_logistic.py --rows 100000 --check  # small: against the NumPy module
    python examples/dask_logistic.py --address tcp://scheduler:8786  # a real cluster
    python examples/dask_logistic.py --write docs/backends.md  # the measured table of the docs

Needs the dask extra: ``pip install '.[dask]'``.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # graphc from this checkout

import graphc  # noqa: E402

# The mean negative log-likelihood of labels y ∈ {0, 1} under P(y = 1) = σ(X w + b).
PROGRAM = """\
dim N
dim d = 10
input X : [N, d]
input y : [N]
param w : [d]
param b : []
z = X w + b
J = mean(softplus(z) − y ∘ z)
"""

START_W, START_B = np.full(10, 0.1), 0.2  # where the gradient is taken
BEGIN, END = "<!-- BEGIN dask -->", "<!-- END dask -->"
RESULTS = re.compile(r"<!-- results (\{.*\}) -->", re.S)


def data(rows: int, chunk: int, seed: int = 0) -> tuple[Any, Any]:
    """X (rows × 10, standard normal) and labels y drawn from a fixed model, as lazy Dask
    arrays chunked by rows: nothing is drawn until a worker computes a chunk."""
    import dask.array as da

    rng = da.random.default_rng(seed)
    X = rng.standard_normal((rows, 10), chunks=(chunk, 10))
    w_true = np.linspace(-1.0, 1.0, 10)
    p = 1.0 / (1.0 + da.exp(-(X @ w_true + 0.5)))
    y = (rng.random(rows, chunks=chunk) < p).astype(np.float64)
    return X, y


def gradient(client: Any, rows: int, chunk: int) -> dict[str, Any]:
    """J and ∂J/∂w, ∂J/∂b over ``rows`` rows on ``client``'s cluster, with the memory used."""
    import dask

    def peak_rss_mib() -> float:  # nested: sent to the workers by value, not by module name
        """The worker's peak resident memory so far, in MiB (Linux: ru_maxrss is KiB)."""
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    fn = graphc.compile(PROGRAM, backend="array-api")
    X, y = data(rows, chunk)
    w, b = START_W, START_B
    before = client.run(peak_rss_mib)
    start = time.perf_counter()
    value, grads = fn.value_and_grad(X=X, y=y, w=w, b=b)  # a task graph: nothing computed yet
    lazy = all(hasattr(x, "dask") for x in (value, *grads.values()))
    value, grads = dask.compute(value, grads)
    seconds = time.perf_counter() - start
    after = client.run(peak_rss_mib)
    return {
        "rows": rows,
        "chunk_rows": chunk,
        "workers": len(after),
        "data_mib": rows * 11 * 8 / 2**20,  # X and y, float64
        "chunk_mib": chunk * 11 * 8 / 2**20,
        "worker_start_mib": max(before.values()),
        "worker_peak_mib": max(after.values()),
        "seconds": seconds,
        "lazy": lazy,
        "J": float(value),
        "grad_w": np.asarray(grads["w"]).tolist(),
        "grad_b": float(grads["b"]),
    }


def numpy_reference(rows: int, chunk: int) -> tuple[float, dict[str, np.ndarray]]:
    """The same gradient by the NumPy module, on the same data computed into memory."""
    X, y = data(rows, chunk)
    X, y = np.asarray(X.compute()), np.asarray(y.compute())
    value, grads = graphc.compile(PROGRAM).value_and_grad(X=X, y=y, w=START_W, b=START_B)
    return float(value), grads


def cluster(workers: int, address: str | None) -> Any:
    """A client of the cluster at ``address``, or of a new local one with ``workers``
    single-threaded worker processes."""
    from dask.distributed import Client, LocalCluster

    if address:
        return Client(address)
    local = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return Client(local)


def markdown(results: dict[str, Any]) -> str:
    """The docs' table of a measured run."""
    rows = [
        ("rows × features", f"{results['rows']:,} × 10"),
        ("data (X and y, float64)", f"{results['data_mib']:,.0f} MiB"),
        ("chunk", f"{results['chunk_rows']:,} rows, {results['chunk_mib']:.1f} MiB"),
        ("worker processes", f"{results['workers']}"),
        ("worker memory before", f"{results['worker_start_mib']:.0f} MiB"),
        ("worker peak memory", f"{results['worker_peak_mib']:.0f} MiB"),
        ("wall time", f"{results['seconds']:.1f} s"),
        ("module computed nothing itself", "yes" if results["lazy"] else "no"),
    ]
    lines = ["| measured | value |", "| --- | --- |"] + [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


def region(results: dict[str, Any]) -> str:
    raw = json.dumps(results, sort_keys=True)
    return f"{markdown(results)}\n<!-- results {raw} -->\n"


def read_page(path: Path) -> tuple[str, dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    inside = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    return inside, json.loads(RESULTS.search(inside).group(1))


def write_page(path: Path, results: dict[str, Any]) -> None:
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{region(results)}{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk", type=int, default=100_000, help="rows per chunk")
    parser.add_argument("--workers", type=int, default=4, help="local worker processes")
    parser.add_argument("--address", help="a running scheduler (then --workers is unused)")
    parser.add_argument("--check", action="store_true", help="compare with the NumPy module")
    parser.add_argument("--write", type=Path, help="write the measured table into this page")
    args = parser.parse_args(argv)
    with cluster(args.workers, args.address) as client:
        results = gradient(client, args.rows, args.chunk)
    print(markdown(results))
    print(f"J = {results['J']:.12f}, ∂J/∂b = {results['grad_b']:.12f}")
    if args.check:
        value, grads = numpy_reference(args.rows, args.chunk)
        np.testing.assert_allclose(results["J"], value, rtol=1e-10)
        np.testing.assert_allclose(results["grad_w"], grads["w"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(results["grad_b"], grads["b"], rtol=1e-9, atol=1e-12)
        print("equal to the NumPy module's gradient on the same data")
    if args.write:
        write_page(args.write, results)
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
