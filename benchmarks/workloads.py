"""The workloads of the benchmark suite: graphc programs, hand-written NumPy references, peers.

Each workload is a graphc program (written in graphc's language as it is today),
the feed it is called on, a hand-written NumPy function computing the same
value and gradient the way an engineer would write it, and the program's
forward function written once against an array namespace, so that the peers
(JAX, PyTorch, autograd) differentiate the same arithmetic.  Only graphc's
public API is used: ``graphc.compile``, ``fn.source``, ``fn.value_and_grad``,
``fn.jacobian`` and ``graphc.runtime.load_module``.

`suite.py` times them; this module only builds them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import graphc
from graphc.runtime import load_module

ROOT = Path(__file__).resolve().parent.parent

Call = Callable[[], Any]


@dataclass
class Case:
    """One workload, built: the callables to time and how to read their results.

    ``hand``, ``module`` and ``fn`` return ``(value, {name: gradient})`` (or,
    for the Hessian, the Hessian matrix); ``outputs`` turns any of their
    results into named NumPy arrays, which must agree before anything is timed.
    """

    title: str
    hand: Call
    module: Call
    fn: Call
    module_label: str = "emitted module"
    fn_label: str = "fn.value_and_grad"
    module_out: Call | None = None  # the module writing into buffers allocated once (out=)
    forward: Callable | None = None  # forward(xp, params, inputs) -> scalar, for peers
    params: dict[str, np.ndarray] = field(default_factory=dict)
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    peer_kind: str = "value_and_grad"  # or "hessian"
    note: str = ""


@dataclass
class ChainCase:
    """The compile workload: the program text, its feed and the hand-written loop."""

    title: str
    layers: int
    text: str
    feed: dict[str, np.ndarray]
    hand: Call
    forward: Callable
    params: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray]


def outputs(result: Any) -> dict[str, np.ndarray]:
    """A result of any candidate as named float64 arrays (value, then gradients)."""
    if isinstance(result, tuple):
        value, grads = result
        named = {"value": value, **grads}
    elif isinstance(result, dict):
        named = dict(result)
    else:
        named = {"H": result}
    return {k: np.asarray(v, dtype=np.float64) for k, v in named.items()}


def agree(reference: Any, candidate: Any, who: str, rtol: float = 1e-7) -> None:
    """Raise unless every array of ``candidate`` matches the reference's."""
    want, got = outputs(reference), outputs(candidate)
    if set(want) != set(got):
        raise AssertionError(f"{who}: returns {sorted(got)}, expected {sorted(want)}")
    for name, w in want.items():
        g = got[name]
        atol = rtol * max(1.0, float(np.max(np.abs(w))) if w.size else 1.0)
        if g.shape != w.shape or not np.allclose(g, w, rtol=rtol, atol=atol):
            raise AssertionError(f"{who}: {name} disagrees with the hand-written reference")


def _routes(text: str, feed: dict[str, np.ndarray]) -> tuple[Call, Call, Call]:
    """graphc's routes for a gradient: the emitted module, the compiled function, and the
    module writing into gradient buffers the caller allocated once (``out=``)."""
    fn = graphc.compile(text)
    module = load_module(fn.source)
    _, grads = module.value_and_grad(**feed)
    out = {name: np.empty_like(g) for name, g in grads.items()}
    return (
        (lambda: module.value_and_grad(**feed)),
        (lambda: fn.value_and_grad(**feed)),
        (lambda: module.value_and_grad(**feed, out=out)),
    )


# --- window NER: J = σ(uᵀ tanh(W x + b)) -------------------------------------------------------


def ner_forward(xp, p, i):
    return xp.sigmoid(p["u"] @ xp.tanh(p["W"] @ i["x"] + p["b"]))


def ner_hand(x, W, b, u):
    h = np.tanh(W @ x + b)
    J = 1.0 / (1.0 + np.exp(-(u @ h)))
    dJ_ds = J * (1.0 - J)
    delta = dJ_ds * u * (1.0 - h * h)
    return J, {"W": np.outer(delta, x), "b": delta, "u": dJ_ds * h}


def ner_window(d: int, n: int) -> Case:
    text = (ROOT / "examples" / "ner_window.gc").read_text(encoding="utf-8")
    text = text.replace("dim d = 50", f"dim d = {d}").replace("dim n = 100", f"dim n = {n}")
    assert f"dim d = {d}" in text and f"dim n = {n}" in text, "examples/ner_window.gc changed"
    rng = np.random.default_rng(0)
    inputs = {"x": rng.normal(size=5 * d)}
    params = {
        "W": 0.05 * rng.normal(size=(n, 5 * d)),
        "b": rng.normal(size=n),
        "u": rng.normal(size=n),
    }
    feed = {**inputs, **params}
    module, fn, module_out = _routes(text, feed)
    return Case(
        f"window NER, d = {d}, one window (W {n}×{5 * d})",
        lambda: ner_hand(**feed),
        module,
        fn,
        module_out=module_out,
        forward=ner_forward,
        params=params,
        inputs=inputs,
    )


# --- NER batch: J = Σᵢ σ(uᵀ tanh(W xᵢ + b)) over the rows xᵢ of X --------------------------------


def ner_batch_forward(xp, p, i):
    return xp.sum(xp.sigmoid(xp.tanh(i["X"] @ p["W"].T + p["b"]) @ p["u"]))


def ner_batch_hand(X, W, b, u):
    H = np.tanh(X @ W.T + b)
    s = 1.0 / (1.0 + np.exp(-(H @ u)))
    ds = s * (1.0 - s)
    Delta = np.outer(ds, u) * (1.0 - H * H)
    return np.sum(s), {"W": Delta.T @ X, "b": Delta.sum(axis=0), "u": H.T @ ds}


def ner_batch(batch: int, n: int = 100, window: int = 250) -> Case:
    text = f"""\
dim B = {batch}
dim n = {n}
dim k = {window}
input X : [B, k]
param W : [n, k]
param b : [n]
param u : [n]
J = sum(σ(tanh(X Wᵀ + b) u))
"""
    rng = np.random.default_rng(1)
    inputs = {"X": rng.normal(size=(batch, window))}
    params = {
        "W": 0.05 * rng.normal(size=(n, window)),
        "b": rng.normal(size=n),
        "u": rng.normal(size=n),
    }
    feed = {**inputs, **params}
    module, fn, module_out = _routes(text, feed)
    return Case(
        f"NER batch (X {batch}×{window}, W {n}×{window})",
        lambda: ner_batch_hand(**feed),
        module,
        fn,
        module_out=module_out,
        forward=ner_batch_forward,
        params=params,
        inputs=inputs,
        note=(
            "sum of σ scores, kept as first measured so ratios compare across runs"
            " (the batch classifier with a softmax by rows is docs/tutorial-ner.md's)"
        ),
    )


# --- MLP: Hₖ = tanh(Hₖ₋₁ Wₖ + bₖ), J = Σ H_L -------------------------------------------------


def mlp_forward(xp, p, i):
    H = i["X"]
    for k in range(1, len(p) // 2 + 1):
        H = xp.tanh(H @ p[f"W{k}"] + p[f"b{k}"])
    return xp.sum(H)


def mlp_hand(X, **p):
    layers = len(p) // 2
    Hs = [X]
    for k in range(1, layers + 1):
        Hs.append(np.tanh(Hs[-1] @ p[f"W{k}"] + p[f"b{k}"]))
    grads = {}
    delta = 1.0 - Hs[-1] * Hs[-1]
    for k in range(layers, 0, -1):
        grads[f"W{k}"] = Hs[k - 1].T @ delta
        grads[f"b{k}"] = delta.sum(axis=0)
        if k > 1:
            delta = (delta @ p[f"W{k}"].T) * (1.0 - Hs[k - 1] * Hs[k - 1])
    return np.sum(Hs[-1]), grads


def mlp(layers: int, width: int, batch: int) -> Case:
    lines = [f"dim B = {batch}", f"dim w = {width}", "input X : [B, w]"]
    lines += [f"param W{k} : [w, w]\nparam b{k} : [w]" for k in range(1, layers + 1)]
    lines += ["H1 = tanh(X W1 + b1)"]
    lines += [f"H{k} = tanh(H{k - 1} W{k} + b{k})" for k in range(2, layers + 1)]
    lines += [f"J = sum(H{layers})"]
    rng = np.random.default_rng(2)
    inputs = {"X": rng.normal(size=(batch, width))}
    params = {}
    for k in range(1, layers + 1):
        params[f"W{k}"] = rng.normal(size=(width, width)) / np.sqrt(width)
        params[f"b{k}"] = 0.1 * rng.normal(size=width)
    feed = {**inputs, **params}
    module, fn, module_out = _routes("\n".join(lines) + "\n", feed)
    return Case(
        f"MLP, {layers} tanh layers of {width}, batch {batch}",
        lambda: mlp_hand(**feed),
        module,
        fn,
        module_out=module_out,
        forward=mlp_forward,
        params=params,
        inputs=inputs,
    )


# --- logistic map: lₖ₊₁ = 4 lₖ (1 − lₖ), J = Σ l_K ----------------------------------------------


def logistic_forward(xp, p, steps):
    lk = p["l0"]
    for _ in range(steps):
        lk = 4.0 * lk * (1.0 - lk)
    return xp.sum(lk)


def logistic_hand(l0, steps):
    ls = [l0]
    for _ in range(steps):
        ls.append(4.0 * ls[-1] * (1.0 - ls[-1]))
    g = np.ones_like(l0)
    for lk in reversed(ls[:-1]):
        g = g * (4.0 - 8.0 * lk)  # d(4 l (1 − l))/dl = 4 − 8 l
    return np.sum(ls[-1]), {"l0": g}


def logistic(steps: int, n: int) -> Case:
    lines = [f"dim n = {n}", "param l0 : [n]"]
    lines += [f"l{k} = 4 l{k - 1} ∘ (1 − l{k - 1})" for k in range(1, steps + 1)]
    lines += [f"J = sum(l{steps})"]
    params = {"l0": np.random.default_rng(3).uniform(0.05, 0.95, size=n)}
    module, fn, module_out = _routes("\n".join(lines) + "\n", params)
    return Case(
        f"logistic map, {steps} steps, x ∈ ℝ^{n}",
        lambda: logistic_hand(params["l0"], steps),
        module,
        fn,
        module_out=module_out,
        # named as logistic_forward (functools.wraps): peers.runs picks peers by that name
        forward=functools.wraps(logistic_forward)(lambda xp, p, i: logistic_forward(xp, p, steps)),
        params=params,
    )


# --- tanh chain: hₖ = tanh(Wₖ hₖ₋₁ + bₖ), width 16, J = Σ h_L: compile + first call ------------

CHAIN_WIDTH = 16


def chain_forward(xp, p, i):
    h = i["x"]
    for k in range(1, len(p) // 2 + 1):
        h = xp.tanh(p[f"W{k}"] @ h + p[f"b{k}"])
    return xp.sum(h)


def chain_hand(x, **p):
    layers = len(p) // 2
    hs = [x]
    for k in range(1, layers + 1):
        hs.append(np.tanh(p[f"W{k}"] @ hs[-1] + p[f"b{k}"]))
    grads = {}
    delta = 1.0 - hs[-1] * hs[-1]
    for k in range(layers, 0, -1):
        grads[f"W{k}"] = np.outer(delta, hs[k - 1])
        grads[f"b{k}"] = delta
        if k > 1:
            delta = (p[f"W{k}"].T @ delta) * (1.0 - hs[k - 1] * hs[k - 1])
    return np.sum(hs[-1]), grads


def chain_title(layers: int) -> str:
    return f"tanh chain of L layers (width {CHAIN_WIDTH}): compile + first call, L = {layers:,}"


def chain(layers: int) -> ChainCase:
    lines = [f"dim w = {CHAIN_WIDTH}", "input x : [w]"]
    lines += [f"param W{k} : [w, w]\nparam b{k} : [w]" for k in range(1, layers + 1)]
    lines += ["h1 = tanh(W1 x + b1)"]
    lines += [f"h{k} = tanh(W{k} h{k - 1} + b{k})" for k in range(2, layers + 1)]
    lines += [f"J = sum(h{layers})"]
    rng = np.random.default_rng(4)
    inputs = {"x": rng.normal(size=CHAIN_WIDTH)}
    params = {}
    for k in range(1, layers + 1):
        params[f"W{k}"] = rng.normal(size=(CHAIN_WIDTH, CHAIN_WIDTH)) / np.sqrt(CHAIN_WIDTH)
        params[f"b{k}"] = 0.1 * rng.normal(size=CHAIN_WIDTH)
    feed = {**inputs, **params}
    return ChainCase(
        chain_title(layers),
        layers,
        "\n".join(lines) + "\n",
        feed,
        lambda: chain_hand(**feed),
        chain_forward,
        params,
        inputs,
    )


# --- Hessian of f = Σ tanh(A x) + xᵀ B x (issue 9) ------------------------------------------------

HESSIAN_F = """\
dim n = {n}
dim m = {m}
input A : [m, n]
input B : [n, n]
param x : [n]
f = sum(tanh(A x)) + xᵀ B x
"""

# The gradient written by hand in graphc's language: ∇f = Aᵀ(1 − t∘t) + (B + Bᵀ) x.
HESSIAN_GRADIENT = """\
dim n = {n}
dim m = {m}
input A : [m, n]
input B : [n, n]
param x : [n]
t = tanh(A x)
g = Aᵀ(1 − t∘t) + (B + Bᵀ) x
"""


def hessian_forward(xp, p, i):
    return xp.sum(xp.tanh(i["A"] @ p["x"])) + p["x"] @ (i["B"] @ p["x"])


def hessian_hand(A, B, x):
    """The closed form ∇²f = Aᵀ diag(−2 t (1 − t²)) A + B + Bᵀ, without building the diagonal."""
    t = np.tanh(A @ x)
    return A.T @ ((-2.0 * t * (1.0 - t * t))[:, None] * A) + B + B.T


def _hessian_block(result: Any) -> np.ndarray:
    """H_xx out of whatever a Hessian function returns: {x: {x: H}}, (value, …), or H."""
    if isinstance(result, tuple):
        result = result[-1]
    while isinstance(result, dict):
        result = result["x"]
    return result


def _vjp_seed(function: Callable, feed: dict[str, np.ndarray]) -> str:
    """The name of the emitted vjp's cotangent argument: the one keyword that is not fed."""
    (seed,) = [name for name in inspect.signature(function).parameters if name not in feed]
    return seed


def hessian(n: int, m: int) -> Case:
    rng = np.random.default_rng(5)
    inputs = {"A": rng.normal(size=(m, n)) / np.sqrt(n), "B": rng.normal(size=(n, n)) / n}
    params = {"x": rng.normal(size=n)}
    feed = {**inputs, **params}
    from_f = graphc.compile(HESSIAN_F.format(n=n, m=m), emit="value_and_grad,hessian")
    if hasattr(from_f, "hessian"):  # issue 9: compiled from f alone, once graphc has it
        module = load_module(from_f.source)
        fn_call = lambda: _hessian_block(from_f.hessian(**feed))  # noqa: E731
        if hasattr(module, "hessian"):
            module_call = lambda: _hessian_block(module.hessian(**feed))  # noqa: E731
            module_label = "emitted module's hessian"
        else:
            module_call, module_label = fn_call, "fn.hessian (the module has none)"
        return Case(
            f"Hessian of Σ tanh(A x) + xᵀ B x, x ∈ ℝ^{n}, A {m}×{n}",
            lambda: hessian_hand(**feed),
            module_call,
            fn_call,
            module_label=module_label,
            fn_label="fn.hessian",
            forward=hessian_forward,
            params=params,
            inputs=inputs,
            peer_kind="hessian",
            note="fn.hessian of f",
        )
    # Today: the Jacobian of a gradient program written by hand, one vjp per row.
    gradient = graphc.compile(HESSIAN_GRADIENT.format(n=n, m=m))
    module = load_module(gradient.source)
    seed = _vjp_seed(module.vjp, feed)
    rows = np.eye(n)

    def module_call() -> np.ndarray:
        return np.stack([module.vjp(**feed, **{seed: row})[1]["x"] for row in rows])

    return Case(
        f"Hessian of Σ tanh(A x) + xᵀ B x, x ∈ ℝ^{n}, A {m}×{n}",
        lambda: hessian_hand(**feed),
        module_call,
        lambda: gradient.jacobian(**feed)["x"],
        module_label="emitted vjp, one call per row",
        fn_label="fn.jacobian",
        forward=hessian_forward,
        params=params,
        inputs=inputs,
        peer_kind="hessian",
        note="Jacobian of a hand-written gradient program; fn.hessian once it exists",
    )
