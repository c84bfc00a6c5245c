"""The emitted code's memory: temporaries die after their last use, gradients are
written out as soon as they are final, and a call's peak is the hand-written code's.

Peaks are counted by ``tracemalloc`` (NumPy reports its buffers to it), so
they are exact byte counts, not timings.
"""

from __future__ import annotations

import importlib.util
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc.runtime import load_module

# The benchmark suite's hand-written MLP backward pass, the reference of its mlp row.
_spec = importlib.util.spec_from_file_location(
    "benchmark_workloads", Path(__file__).resolve().parent.parent / "benchmarks" / "workloads.py"
)
_workloads = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _workloads  # its dataclasses look their module up
_spec.loader.exec_module(_workloads)
mlp_hand = _workloads.mlp_hand


def peak(call) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        call()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def mlp_text(layers: int, width: int, batch: int) -> str:
    lines = [f"dim B = {batch}", f"dim w = {width}", "input X : [B, w]"]
    lines += [f"param W{k} : [w, w]\nparam b{k} : [w]" for k in range(1, layers + 1)]
    lines += ["H1 = tanh(X W1 + b1)"]
    lines += [f"H{k} = tanh(H{k - 1} W{k} + b{k})" for k in range(2, layers + 1)]
    return "\n".join(lines) + f"\nJ = sum(H{layers})\n"


def test_mlp_peak_is_the_hand_written_peak():
    layers, width, batch = 6, 64, 128
    rng = np.random.default_rng(0)
    feed = {"X": rng.normal(size=(batch, width))}
    for k in range(1, layers + 1):
        feed[f"W{k}"] = rng.normal(size=(width, width)) / 8
        feed[f"b{k}"] = rng.normal(size=width)
    module = load_module(graphc.compile(mlp_text(layers, width, batch)).source)
    J, grads = module.value_and_grad(**feed)
    J_hand, grads_hand = mlp_hand(**feed)
    assert np.isclose(J, J_hand)
    for name, g in grads_hand.items():
        np.testing.assert_allclose(grads[name], g, rtol=1e-10)
    assert peak(lambda: module.value_and_grad(**feed)) <= 1.1 * peak(lambda: mlp_hand(**feed))


def test_temporaries_are_deleted_and_gradients_written_when_final():
    # H and t are 64×32 (2,048 entries: large), the gradients 32×32 (small).
    source = graphc.compile(mlp_text(3, 32, 64)).source
    body = source[source.index("def value_and_grad") :]
    lines = [line.strip() for line in body.splitlines()]
    # The last layer's gradients are stored as soon as the next delta exists,
    # and what they read is released before the layer below is differentiated.
    # (Large ones write into the caller's buffers there: tests/test_out_buffers.py.)
    at = lines.index("dJ_dW3 = H2.T @ t1")
    assert lines[at + 1] == "dJ_db3 = np.sum(t1, axis=0)"
    assert lines[at + 2].startswith("del ") and {"H2", "t1"} <= set(lines[at + 2][4:].split(", "))
    assert lines.index("dJ_dH1 = delta @ W2.T") > at + 2
    (returned,) = [line for line in lines if line.startswith("return J, {")]
    assert returned.endswith("'W3': dJ_dW3, 'b3': dJ_db3}")


def test_small_temporaries_are_left_to_the_return():
    # The same network 4 wide in batches of 5: nothing of 2,048 entries to free.
    small = graphc.compile(mlp_text(3, 4, 5)).source
    assert "del " not in small
    # Sizes known only at run time may be large: deleted.
    symbolic = graphc.compile(mlp_text(3, 4, 5).replace("dim B = 5", "dim B")).source
    assert "del H2" in symbolic or "del t1" in symbolic


def test_no_deletion_without_a_later_array():
    # ner_window: vectors and a scalar; nothing to gain from deleting anything.
    source = graphc.compile(
        "dim n = 3\nparam W : [n, n]\nparam x : [n]\nparam u : [n]\nJ = σ(uᵀ tanh(W x))\n"
    ).source
    assert "del " not in source


def test_the_array_api_module_on_numpy_arrays_has_the_same_peak():
    # The array-API printer shares the statement scheduling: the same early stores
    # and deletions, so on NumPy arrays its peak is the NumPy module's.
    pytest.importorskip("array_api_compat", reason="array-api-compat is in the test extra")
    layers, width, batch = 4, 64, 128
    rng = np.random.default_rng(1)
    feed = {"X": rng.normal(size=(batch, width))}
    for k in range(1, layers + 1):
        feed[f"W{k}"] = rng.normal(size=(width, width)) / 8
        feed[f"b{k}"] = rng.normal(size=width)
    text = mlp_text(layers, width, batch)
    numpy_module = load_module(graphc.compile(text).source)
    source = graphc.compile(text, backend="array-api").source
    assert "del " in source
    module = load_module(source, "mlp_array_api")
    J, grads = module.value_and_grad(**feed)
    J_numpy, grads_numpy = numpy_module.value_and_grad(**feed)
    assert np.isclose(J, J_numpy)
    for name, g in grads_numpy.items():
        np.testing.assert_allclose(grads[name], g, rtol=1e-12)
    module.value_and_grad(**feed)  # warm: array_api_compat caches its namespace
    assert peak(lambda: module.value_and_grad(**feed)) <= 1.1 * peak(lambda: mlp_hand(**feed))
