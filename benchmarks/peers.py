"""Optional peer rows: the same workloads differentiated by JAX, PyTorch, autograd,
PyTensor and CasADi.

A peer is used only when it imports; none is a dependency of graphc.  Each
differentiates the workload's forward function (written once in workloads.py
against an array namespace), in float64, and returns NumPy arrays through
``convert`` only after timing.  PyTensor and CasADi build a symbolic graph of
the forward and compile a function of its value and gradient
(``pytensor.function`` of ``pytensor.grad``; ``casadi.Function`` of MX
symbols with its ``reverse(1)`` adjoints), as their documentation does.  CasADi's
matrices are two-dimensional and do not broadcast, so it runs the forwards
that read the same with column vectors (`runs`): the tanh chain and the
logistic map; a NumPy-shaped forward (``uᵀ h`` written ``u @ h``, a bias
broadcast along rows) would need a CasADi spelling of its own.  PyTensor
compiles C code for the operations of its graph: the tanh chain of 50 layers
took 49 s here, so it does not run the chains.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

PEERS = ("jax.jit", "torch", "autograd", "pytensor", "casadi")
_MODULE = {
    "jax.jit": "jax",
    "torch": "torch",
    "autograd": "autograd",
    "pytensor": "pytensor",
    "casadi": "casadi",
}
# the forward functions a peer runs (the others: all but those it skips), and why:
# see the module's docstring
_RUNS = {"casadi": {"chain_forward", "logistic_forward"}}
_SKIPS = {"pytensor": {"chain_forward"}}


_chosen: set[str] | None = None  # the suite's --peers; None: every importable one


def choose(names: list[str]) -> None:
    """Run only the peers ``names`` (the suite's ``--peers``; [] for none)."""
    global _chosen
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        raise ValueError(f"unknown peer {', '.join(unknown)}; known: {', '.join(PEERS)}")
    _chosen = set(names)


def available() -> list[str]:
    """The peers that can be imported here (and were chosen, if any were)."""
    return [
        p
        for p in PEERS
        if (_chosen is None or p in _chosen) and importlib.util.find_spec(_MODULE[p]) is not None
    ]


def runs(peer: str, forward: Callable) -> bool:
    """Whether ``peer`` differentiates ``forward`` (a forward function of workloads.py)."""
    name = getattr(forward, "__name__", "")
    only = _RUNS.get(peer)
    return (only is None or name in only) and name not in _SKIPS.get(peer, ())


def _namespace(peer: str) -> SimpleNamespace:
    if peer == "jax.jit":
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        return SimpleNamespace(tanh=jnp.tanh, sigmoid=jax.nn.sigmoid, sum=jnp.sum)
    if peer == "torch":
        import torch

        return SimpleNamespace(tanh=torch.tanh, sigmoid=torch.sigmoid, sum=torch.sum)
    if peer == "pytensor":
        import pytensor.tensor as pt

        return SimpleNamespace(tanh=pt.tanh, sigmoid=pt.sigmoid, sum=pt.sum)
    if peer == "casadi":
        import casadi

        return SimpleNamespace(
            tanh=casadi.tanh,
            sigmoid=lambda z: 1.0 / (1.0 + casadi.exp(-z)),
            sum=lambda a: casadi.sum1(casadi.vec(a)),
        )
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
    if hasattr(x, "full"):  # a CasADi DM
        x = x.full()
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
    if peer == "pytensor":
        return _pytensor_value_and_grad(xp, forward, params, inputs)
    if peer == "casadi":
        return _casadi_value_and_grad(xp, forward, params, inputs)
    import autograd

    step = autograd.value_and_grad(lambda p: forward(xp, p, In))
    return lambda: step(P)


def _pytensor_value_and_grad(xp, forward: Callable, params: dict, inputs: dict):
    """``pytensor.function`` of the value and ``pytensor.grad``, taking every array."""
    import pytensor
    import pytensor.tensor as pt

    def symbol(name: str, value: Any):
        return pt.tensor(name, dtype="float64", shape=(None,) * np.ndim(value))

    P = {k: symbol(k, v) for k, v in params.items()}
    In = {k: symbol(k, v) for k, v in inputs.items()}
    value = forward(xp, P, In)
    step = pytensor.function(
        [*In.values(), *P.values()], [value, *pytensor.grad(value, list(P.values()))]
    )
    arrays = [*inputs.values(), *params.values()]
    names = list(params)

    def pytensor_call():
        value, *grads = step(*arrays)
        return value, dict(zip(names, grads))

    return pytensor_call


def _casadi_value_and_grad(xp, forward: Callable, params: dict, inputs: dict):
    """A ``casadi.Function`` of the value and its reverse-mode adjoints (``f.reverse(1)``,
    seeded with 1), of one MX symbol per array, as CasADi's documentation builds one."""
    import casadi

    def symbol(name: str, value: Any):
        return casadi.MX.sym(name, *(np.shape(value) + (1, 1))[:2])  # 2-D: vectors as columns

    P = {k: symbol(k, v) for k, v in params.items()}
    In = {k: symbol(k, v) for k, v in inputs.items()}
    symbols = [*In.values(), *P.values()]
    value = forward(xp, P, In)
    adjoints = casadi.Function("f", symbols, [value]).reverse(1)(*symbols, value, 1.0)
    adjoints = adjoints if isinstance(adjoints, (list, tuple)) else [adjoints]  # one input: bare
    step = casadi.Function("value_and_grad", symbols, [value, *adjoints[len(In) :]])
    arrays = [*inputs.values(), *params.values()]
    shapes = {k: np.shape(v) for k, v in params.items()}

    def casadi_call():
        value, *grads = step(*arrays)
        return float(value), {k: g.full().reshape(shapes[k]) for k, g in zip(shapes, grads)}

    return casadi_call


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
    if peer == "pytensor":
        import pytensor
        import pytensor.tensor as pt

        symbols = {
            k: pt.tensor(k, dtype="float64", shape=(None,) * np.ndim(v)) for k, v in In.items()
        }
        v = pt.tensor("x", dtype="float64", shape=(None,))
        step = pytensor.function(
            [*symbols.values(), v], pytensor.gradient.hessian(forward(xp, {"x": v}, symbols), v)
        )
        arrays = [*In.values(), x]
        return lambda: step(*arrays)
    if peer == "casadi":
        raise NotImplementedError("not run: see benchmarks/peers.py")
    import autograd

    step = autograd.hessian(f)
    return lambda: step(x)
