"""Scale-out: the array-API module on Dask arrays, on a cluster of worker processes.

examples/dask_logistic.py computes logistic regression's gradient on chunked
Dask arrays through `graphc.compile(..., backend="array-api")`; here it runs
on small data on a `LocalCluster` of two worker processes and must equal the
NumPy module's gradient on the same data, with the module building a task
graph only (no compute inside it) whose row sums are tree reductions.  The
docs' table of the 10⁷-row run is what the example renders from its recorded
results.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphc

da = pytest.importorskip("dask.array", reason="Dask is in the test extra: pip install '.[test]'")
distributed = pytest.importorskip("dask.distributed", reason="dask[distributed]: the test extra")

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "backends.md"


@pytest.fixture(scope="module")
def example():
    path = ROOT / "examples" / "dask_logistic.py"
    spec = importlib.util.spec_from_file_location("dask_logistic", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_module_builds_a_graph_with_tree_reductions(example):
    fn = graphc.compile(example.PROGRAM, backend="array-api")
    X, y = example.data(4_000, 500)
    value, grads = fn.value_and_grad(X=X, y=y, w=example.START_W, b=example.START_B)
    for x in (value, *grads.values()):
        assert isinstance(x, da.Array), "the module computed instead of building a graph"
    # 8 chunks of rows: their partial sums meet in a tree, not in one task per row
    layers = set(value.dask.layers) | set(grads["b"].dask.layers)
    assert any("aggregate" in name for name in layers), sorted(layers)
    assert X.numblocks[0] == 8


def test_gradient_on_a_local_cluster_equals_numpy(example):
    with example.cluster(2, None) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        results = example.gradient(client, 20_000, 2_000)
    assert results["lazy"] and results["workers"] == 2
    value, grads = example.numpy_reference(20_000, 2_000)
    np.testing.assert_allclose(results["J"], value, rtol=1e-12)
    np.testing.assert_allclose(results["grad_w"], grads["w"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(results["grad_b"], grads["b"], rtol=1e-10, atol=1e-14)
    assert results["worker_peak_mib"] > 0


def test_the_page_shows_what_the_example_rendered(example):
    region, results = example.read_page(PAGE)
    assert region == "\n" + example.region(results), (
        "docs/backends.md differs from what examples/dask_logistic.py renders from its"
        " results; run: python examples/dask_logistic.py --write docs/backends.md"
    )
    assert results["rows"] >= 10_000_000 and results["lazy"]
    # bounded memory: a worker's peak is far below the data it summed over
    assert results["worker_peak_mib"] < results["data_mib"] / 2


def test_the_page_shows_what_the_benchmark_rendered():
    spec = importlib.util.spec_from_file_location(
        "backends_benchmark", ROOT / "benchmarks" / "backends.py"
    )
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    region, results = bench.read_page(PAGE)
    assert region == "\n" + bench.region(results), (
        "docs/backends.md differs from what benchmarks/backends.py renders from its results;"
        " run: python benchmarks/backends.py --write docs/backends.md"
    )
    assert set(results["ratios"]) == set(bench.TARGETS)
    assert "8 tanh layers of 512, batch 256" in results["workload"]


def test_the_benchmark_runs_quick():
    # Not a timing test: the script runs, every route agrees with the hand-written
    # gradient (it checks that before timing), and it prints both ratios.
    pytest.importorskip("torch", reason="PyTorch is optional: pip install '.[test,torch]'")
    script = ROOT / "benchmarks" / "backends.py"
    run = subprocess.run(
        [sys.executable, str(script), "--quick", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "| array-api on NumPy / NumPy module |" in run.stdout
    assert "| array-api on torch / torch eager |" in run.stdout
