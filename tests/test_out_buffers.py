"""value_and_grad(..., out=grads, accumulate=...): gradients written into arrays the
caller allocated once (issue 11, part 3), by the emitted module and the compiled
function, in both modes; checked against the gradients returned without ``out``."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc.runtime import load_module

ROOT = Path(__file__).resolve().parent.parent
NER = (ROOT / "examples" / "ner_window.gc").read_text(encoding="utf-8")
MLP = """dim B = 5
dim w = 4
input X : [B, w]
param W1 : [w, w]
param b1 : [w]
param W2 : [w, w]
param b2 : [w]
param W3 : [w, w]
param b3 : [w]
H1 = tanh(X W1 + b1)
H2 = tanh(H1 W2 + b2)
J = sum(tanh(H2 W3 + b3))
"""


def feed_for(fn: graphc.CompiledFunction, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {
        name: tuple(int(d.value) for d in t.dims)
        for name, t in graphc.parse(fn.lowered.source).variables.items()
    }
    return {name: 0.3 * rng.normal(size=shape) for name, shape in shapes.items()}


@pytest.mark.parametrize("text", [NER, MLP], ids=["ner", "mlp"])
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_compiled_function_writes_and_accumulates(text, mode):
    fn = graphc.compile(text, mode=mode)
    feed = feed_for(fn)
    value, grads = fn.value_and_grad(**feed)
    out = {name: np.full(g.shape, np.nan) for name, g in grads.items()}
    buffers = dict(out)
    got, written = fn.value_and_grad(**feed, out=out)
    assert written is out and got == value
    for name, g in grads.items():
        assert out[name] is buffers[name]  # the caller's arrays, not new ones
        np.testing.assert_allclose(out[name], g, rtol=1e-12)
    fn.value_and_grad(**feed, out=out, accumulate=True)
    for name, g in grads.items():
        np.testing.assert_allclose(out[name], 2 * g, rtol=1e-12)


@pytest.mark.parametrize("text", [NER, MLP], ids=["ner", "mlp"])
def test_the_module_writes_into_out(text):
    fn = graphc.compile(text)
    module = load_module(fn.source)
    feed = feed_for(fn, 1)
    value, grads = module.value_and_grad(**feed)
    out = {name: np.zeros(g.shape) for name, g in grads.items()}
    got, written = module.value_and_grad(**feed, out=out)
    assert written is out and got == value
    for name, g in grads.items():
        np.testing.assert_allclose(out[name], g, rtol=1e-12)
    module.value_and_grad(**feed, out=out, accumulate=True)
    for name, g in grads.items():
        np.testing.assert_allclose(out[name], 2 * g, rtol=1e-12)


def test_many_gradients_are_written_by_one_loop():
    # Beyond 32 gradients, those already in a local are written by one loop over
    # (name, local) pairs; the others (an outer product here) still write into
    # the caller's array themselves.  Both ways give what the call returns.
    from test_feeds import layered, layered_feed

    source = graphc.compile(layered(40)).source
    assert "np.multiply.outer(" in source and ".outer(" in source.split("for name, grad in (")[0]
    assert source.count("out[name] += grad") == 1
    module = load_module(source)
    feed = layered_feed(40)
    value, grads = module.value_and_grad_dict(feed)
    assert len(grads) == 80
    out = {name: np.full(g.shape, np.nan) for name, g in grads.items()}
    buffers = dict(out)
    got, written = module.value_and_grad_dict(feed, out=out)
    assert written is out and got == value
    for name, g in grads.items():
        assert out[name] is buffers[name]
        np.testing.assert_array_equal(out[name], g)
    module.value_and_grad(**feed, out=out, accumulate=True)
    for name, g in grads.items():
        np.testing.assert_allclose(out[name], 2 * g, rtol=1e-14)


def test_writing_into_out_allocates_no_gradient():
    # W is 300×500 (1.2 MB); with out= a call allocates vectors, and NumPy's
    # fixed-size ufunc buffer (128 KiB), but nothing the size of W.
    text = NER.replace("dim d = 50", "dim d = 100").replace("dim n = 100", "dim n = 300")
    module = load_module(graphc.compile(text).source)
    rng = np.random.default_rng(2)
    feed = {
        "x": rng.normal(size=500),
        "W": 0.05 * rng.normal(size=(300, 500)),
        "b": rng.normal(size=300),
        "u": rng.normal(size=300),
    }
    out = {"W": np.zeros((300, 500)), "b": np.zeros(300), "u": np.zeros(300)}

    def peak(**options) -> int:
        module.value_and_grad(**feed, **options)  # warm: first calls allocate caches
        tracemalloc.start()
        try:
            module.value_and_grad(**feed, **options)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak() > 300 * 500 * 8
    assert peak(out=out) < 300 * 500 * 8 / 4


def test_bad_buffers_are_feed_errors():
    fn = graphc.compile(NER)
    feed = feed_for(fn)
    _, grads = fn.value_and_grad(**feed)
    good = {name: np.zeros(g.shape) for name, g in grads.items()}
    with pytest.raises(graphc.FeedError, match="out: expected a dict with an array for each"):
        fn.value_and_grad(**feed, out={"W": good["W"]})
    with pytest.raises(graphc.FeedError, match=r"out\['b'\]: expected a float64 array of shape"):
        fn.value_and_grad(**feed, out={**good, "b": np.zeros(3)})
    with pytest.raises(graphc.FeedError, match=r"out\['u'\]: expected a float64 array"):
        fn.value_and_grad(**feed, out={**good, "u": np.zeros(grads["u"].shape, dtype=int)})
    with pytest.raises(graphc.FeedError, match="not fed"):
        fn.value_and_grad(**feed, out={**good, "W": feed["W"]})


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_a_float32_call_writes_into_float32_buffers(mode):
    fn = graphc.compile(MLP, mode=mode)
    feed = {k: v.astype(np.float32) for k, v in feed_for(fn, 3).items()}
    value, grads = fn.value_and_grad(**feed)
    assert all(g.dtype == np.float32 for g in grads.values())
    out = {name: np.full(g.shape, np.nan, np.float32) for name, g in grads.items()}
    got, written = fn.value_and_grad(**feed, out=out)
    assert written is out and got.dtype == np.float32
    for name, g in grads.items():
        assert out[name].dtype == np.float32
        np.testing.assert_allclose(out[name], g, rtol=1e-6)
    wide = {name: np.zeros(g.shape) for name, g in grads.items()}
    with pytest.raises(graphc.FeedError, match=r"out\['W1'\]: expected a float32 array"):
        fn.value_and_grad(**feed, out=wide)


def test_the_array_api_module_takes_no_buffers():
    # The standard has no out= arguments and JAX's arrays cannot be written into:
    # the array-API module returns its gradients (docs/backends.md).
    fn = graphc.compile(NER, backend="array-api")
    assert "out=None" not in fn.source and "accumulate" not in fn.source
    assert "With out" not in fn.source
    feed = feed_for(fn)
    _, grads = fn.value_and_grad(**feed)
    out = {name: np.zeros(g.shape) for name, g in grads.items()}
    with pytest.raises(graphc.FeedError, match="the array-API backend writes into no buffers"):
        fn.value_and_grad(**feed, out=out)
    assert all(not b.any() for b in out.values())


def test_gradients_scheduled_early_write_into_out_there():
    # An MLP's last layers' gradients are written early (to let what they read die
    # sooner); with out= they write into their buffers there: a call allocates
    # nothing the size of a weight gradient (256×256, 512 KiB), nor copies one at
    # the end, and gives what it returns without out=.
    width, batch = 256, 16
    text = MLP.replace("dim w = 4", f"dim w = {width}").replace("dim B = 5", f"dim B = {batch}")
    source = graphc.compile(text).source
    assert "else np.matmul(H2.T, t2, out=out['W3'])" in source
    assert "out['W3'][...]" not in source
    # b3 (256 entries) is copied at the end: a conditional line for it would cost more
    # compile time than the copy costs (emit_numpy.LARGE_ENTRIES)
    assert "dJ_db3 = np.sum(t2, axis=0)\n" in source and "out['b3'][...] = dJ_db3" in source
    module = load_module(source)
    rng = np.random.default_rng(3)
    feed = {"X": rng.normal(size=(batch, width))}
    for k in (1, 2, 3):
        feed[f"W{k}"] = rng.normal(size=(width, width)) / 16
        feed[f"b{k}"] = 0.1 * rng.normal(size=width)
    value, grads = module.value_and_grad(**feed)
    out = {name: np.full(g.shape, np.nan) for name, g in grads.items()}
    got, written = module.value_and_grad(**feed, out=out)
    assert got == value and written is out
    for name, g in grads.items():
        np.testing.assert_array_equal(out[name], g)
    module.value_and_grad(**feed, out=out, accumulate=True)
    for name, g in grads.items():
        np.testing.assert_allclose(out[name], 2 * g, rtol=1e-14)
    module.value_and_grad(**feed, out=out)  # warm
    tracemalloc.start()
    try:
        module.value_and_grad(**feed, out=out)
        allocated = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the activations (batch × width) and NumPy's ufunc buffer, no 512 KiB gradient
    assert allocated < width * width * 8
