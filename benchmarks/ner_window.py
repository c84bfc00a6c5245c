"""Emitted NER gradient vs a hand-written NumPy reference, measured in one run.

Run by hand:  python benchmarks/ner_window.py
Prints the time per call of each and their ratio (emitted / hand-written).
"""

from __future__ import annotations

import timeit
from pathlib import Path

import numpy as np

import graphc

ROOT = Path(__file__).resolve().parent.parent


def hand_written(x, W, b, u):
    z = W @ x + b
    h = np.tanh(z)
    s = u @ h
    J = 1.0 / (1.0 + np.exp(-s))
    dJ_ds = J * (1.0 - J)
    delta = dJ_ds * u * (1.0 - h * h)
    return J, {"W": np.outer(delta, x), "b": delta, "u": dJ_ds * h}


def best_of(fn, repeat: int = 7, number: int = 2000) -> float:
    return min(timeit.repeat(fn, repeat=repeat, number=number)) / number


def main() -> None:
    text = (ROOT / "examples" / "ner_window.gc").read_text(encoding="utf-8")
    module = graphc.runtime.load_module(graphc.compile(text).source)
    rng = np.random.default_rng(0)
    feed = dict(
        x=rng.normal(size=250),
        W=0.05 * rng.normal(size=(100, 250)),
        b=rng.normal(size=100),
        u=rng.normal(size=100),
    )
    J, grads = module.value_and_grad(**feed)
    J_ref, grads_ref = hand_written(**feed)
    assert np.isclose(J, J_ref) and all(np.allclose(grads[k], grads_ref[k]) for k in grads_ref)
    emitted = best_of(lambda: module.value_and_grad(**feed))
    reference = best_of(lambda: hand_written(**feed))
    print("value_and_grad, window NER (n=100, 5d=250)")
    print(f"  emitted      {emitted * 1e6:8.2f} µs")
    print(f"  hand-written {reference * 1e6:8.2f} µs")
    print(f"  ratio        {emitted / reference:8.3f}")


if __name__ == "__main__":
    main()
