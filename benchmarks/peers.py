"""Optional peer rows: the same workloads differentiated by JAX, PyTorch and autograd.

A peer is used only when it imports; none is a dependency of graphc.  Each
differentiates the workload's forward function (written once in workloads.py
against an array namespace), in float64, and returns NumPy arrays through
``convert`` only after timing.  PyTensor and CasADi rows are not written yet.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

PEERS = ("jax.jit", "torch", "autograd")
_MODULE = {"jax.jit": "jax", "torch": "torch", "autograd": "autograd"}


def available() -> list[str]:
    """The peers that can be imported here."""
    return [p for p in PEERS if importlib.util.find_spec(_MODULE[p]) is not None]


def _namespace(peer: str) -> SimpleNamespace:
    if peer == "jax.jit":
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        return SimpleNamespace(tanh=jnp.tanh, sigmoid=jax.nn.sigmoid, sum=jnp.sum)
    if peer == "torch":
        import torch

        return SimpleNamespace(tanh=torch.tanh, sigmoid=torch.sigmoid, sum=torch.sum)
    import autograd.numpy as anp

    return SimpleNamespace(tanh=anp.tanh, sigmoid=lambda z: 1.0 / (1.0 + anp.exp(-z)), sum=anp.sum)


def _arrays(peer: str, values: dict[str, Any], trainable: bool = False) -> dict[str, Any]:
    if peer == "jax.jit":
        import jax.numpy as jnp

        return {k: jnp.asarray(v, dtype=jnp.float64) for k, v in values.items()}
    if peer == "torch":
        import torch

        return {
            k: torch.tensor(v, dtype=torch.float64, requires_grad=trainable)
            for k, v in values.items()
        }
    return dict(values)


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def convert(result: Any) -> Any:
    """A peer's result in the form the hand-written reference has."""
    if isinstance(result, tuple):
        value, grads = result
        return _numpy(value), {k: _numpy(g) for k, g in grads.items()}
    return _numpy(result)


def value_and_grad(peer: str, forward: Callable, params: dict, inputs: dict) -> Callable[[], Any]:
    """A call computing (value, {param: gradient}) with ``peer``; jit-compiled where it can be."""
    xp = _namespace(peer)
    P, In = _arrays(peer, params, trainable=True), _arrays(peer, inputs)
    if peer == "jax.jit":
        import jax

        step = jax.jit(jax.value_and_grad(lambda p, i: forward(xp, p, i)))
        return lambda: jax.block_until_ready(step(P, In))
    if peer == "torch":
        import torch

        names, leaves = list(P), list(P.values())

        def torch_call():
            value = forward(xp, P, In)
            return value.detach(), dict(zip(names, torch.autograd.grad(value, leaves)))

        return torch_call
    import autograd

    step = autograd.value_and_grad(lambda p: forward(xp, p, In))
    return lambda: step(P)


def hessian(peer: str, forward: Callable, params: dict, inputs: dict) -> Callable[[], Any]:
    """A call computing the Hessian of the scalar forward by its one param ``x``."""
    xp = _namespace(peer)
    In = _arrays(peer, inputs)
    x = _arrays(peer, params)["x"]

    def f(v):
        return forward(xp, {"x": v}, In)

    if peer == "jax.jit":
        import jax

        step = jax.jit(jax.hessian(f))
        return lambda: jax.block_until_ready(step(x))
    if peer == "torch":
        import torch.func

        return lambda: torch.func.hessian(f)(x)
    import autograd

    step = autograd.hessian(f)
    return lambda: step(x)
