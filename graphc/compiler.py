"""The compile driver: a derived program -> the functions of its module, as data -> text.

The emitted module defines, for an output ``J`` and variables ``W, b, …``:

* ``value(*, W, b, …)``: J.
* scalar J, reverse mode: ``value_and_grad(…)`` -> ``(J, {"W": ∂J/∂W, …})``.
* forward mode: ``jvp(…, W_dot=…, …)`` -> ``(J, J_dot)``, and for scalar J a
  ``value_and_grad`` made of one jvp per entry.
* non-scalar J, reverse mode: ``vjp(…, J_bar=…)`` -> ``(J, {"W": J̄ᵀ ∂J/∂W, …})``.

Each function is described here as data (`FunctionSpec`: parameters, graph,
what it returns; `GradientByJvp`); `graphc.emit_numpy` alone writes the Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from graphc.derive import MODES, DerivedGraph, derive, resolve_wrt
from graphc.emit_array_api import ArrayApiPrinter
from graphc.emit_numpy import (
    Function,
    FunctionSpec,
    GradientByJvp,
    NumpyPrinter,
    emit_module,
    function_labels,
    keyword_names,
)
from graphc.errors import GraphcError
from graphc.frontend import LoweredProgram
from graphc.ir import Node
from graphc.shapes import Type

__all__ = [
    "BACKENDS",
    "MODES",
    "CompiledModule",
    "build_module",
    "derivative_labels",
    "resolve_wrt",
]

# The module's dialect: NumPy (readable, the default), or the array API standard
# (any array library, through array-api-compat: docs/backends.md).
BACKENDS: dict[str, type[NumpyPrinter]] = {"numpy": NumpyPrinter, "array-api": ArrayApiPrinter}

# What the module's docstring says its keyword arguments are, by backend.
_ARGUMENTS = {
    "numpy": "Keyword arguments are NumPy arrays named as in the program; a vector is 1-D.",
    "array-api": "Keyword arguments are arrays of one floating dtype, from any library that\n"
    "array-api-compat knows (NumPy, PyTorch, JAX, CuPy, Dask), named as in the\n"
    "program; a vector is 1-D.  Results have the arguments' dtype, library and device.",
}


def check_backend(backend: str) -> type[NumpyPrinter]:
    """The printer of ``backend``; a GraphcError naming the choices for any other."""
    if backend not in BACKENDS:
        raise GraphcError(f"unknown backend {backend!r}: choose {' or '.join(BACKENDS)}")
    return BACKENDS[backend]


@dataclass(frozen=True)
class CompiledModule:
    """Emitted source and how to call it."""

    source: str
    output: str
    output_type: Type
    wrt: tuple[str, ...]
    mode: str
    param_names: dict[str, str]  # program name -> Python keyword
    seed_names: dict[str, str]  # wrt name (or the output, in reverse mode) -> seed keyword
    functions: tuple[str, ...]  # the functions the module defines
    backend: str = "numpy"  # the module's dialect (BACKENDS)
    dtype: str | None = None  # the dtype every function casts its arguments to, if fixed


def value_function(derived: DerivedGraph) -> FunctionSpec:
    graph = derived.value_graph
    return FunctionSpec(
        "value",
        derived.variables,
        graph,
        graph.outputs[derived.output],
        f"{derived.output} {derived.output_type}: the program's output.",
    )


def derivative_function(derived: DerivedGraph) -> FunctionSpec:
    """The function of ``derived.graph``: value_and_grad or vjp (reverse), jvp (forward)."""
    out = derived.output
    params = (*derived.variables, *derived.seeds.values())
    if derived.mode == "forward":
        return FunctionSpec(
            "jvp",
            params,
            derived.graph,
            (derived.value, derived.tangent),
            f"{out} and its directional derivative along the tangents *_dot.",
        )
    returns = (derived.value, derived.gradients)
    if derived.output_type.is_scalar:
        by = ", ".join(derived.wrt_names) or "nothing"
        doc = f"{out} and its gradient by {by} (each of its variable's shape)."
        return FunctionSpec("value_and_grad", params, derived.graph, returns, doc)
    doc = f"{out} and the vector-Jacobian product {out}_barᵀ ∂{out}/∂(…)."
    return FunctionSpec("vjp", params, derived.graph, returns, doc)


def gradient_by_jvp(derived: DerivedGraph) -> GradientByJvp:
    return GradientByJvp(
        "value_and_grad",
        derived.variables,
        tuple((v, derived.seeds[v.attr("name")]) for v in derived.wrt),
        "The value and gradient by forward mode: one jvp per entry.",
    )


def module_functions(derived: DerivedGraph) -> list[Function]:
    functions: list[Function] = [value_function(derived), derivative_function(derived)]
    if derived.mode == "forward" and derived.output_type.is_scalar:
        functions.append(gradient_by_jvp(derived))
    return functions


def _keywords(derived: DerivedGraph) -> dict[Node, str]:
    return keyword_names([*derived.variables, *derived.seeds.values()])


def derivative_labels(derived: DerivedGraph) -> dict[Node, str]:
    """Every node of ``derived.graph`` named as the emitted derivative function names it."""
    return function_labels(derivative_function(derived), _keywords(derived), derived.variables)


def _header(
    lowered: LoweredProgram,
    mode: str,
    wrt: Sequence[str],
    functions: Sequence[str],
    keywords: Mapping[str, str],
    backend: str = "numpy",
) -> str:
    # Lines as the grammar counts them (a lone \r or U+2028 is text, escaped in the docstring).
    lines = lowered.source.replace("\r\n", "\n").split("\n")
    program = "\n".join("    " + line if line.strip() else "" for line in lines).rstrip("\n")
    by = ", ".join(wrt) if wrt else "nothing"
    return (
        f"Generated by graphc from {lowered.filename}; do not edit.\n\n"
        f"Functions: {', '.join(functions)} ({mode} mode, derivatives by {by}).\n"
        f"{_ARGUMENTS[backend]}\n"
        f"{_spelled(keywords)}\n"
        f"The program:\n\n{program}\n"
    )


def _spelled(keywords: Mapping[str, str]) -> str:
    """A docstring line naming the keywords spelled otherwise than in the program."""
    renamed = [f"{name} as {keyword}" for name, keyword in keywords.items() if name != keyword]
    return f"Python spells {', '.join(renamed)}.\n" if renamed else ""


def build_module(
    lowered: LoweredProgram,
    wrt: Sequence[str] | str | None = None,
    mode: str = "reverse",
    backend: str = "numpy",
    dtype: str | None = None,
) -> CompiledModule:
    """Differentiate, optimise and emit ``lowered`` in the dialect ``backend``; with a
    ``dtype`` ("float32"), every function first casts its arguments to it."""
    check_backend(backend)
    return module_of(lowered, derive(lowered, wrt, mode), backend, dtype)


def module_of(
    lowered: LoweredProgram,
    derived: DerivedGraph,
    backend: str = "numpy",
    dtype: str | None = None,
) -> CompiledModule:
    """The module of an already derived program."""
    printer = check_backend(backend).fixed(dtype)
    functions = module_functions(derived)
    names = tuple(f.name for f in functions)
    keywords = _keywords(derived)
    header = _header(
        lowered,
        derived.mode,
        derived.wrt_names,
        names,
        {v.attr("name"): keywords[v] for v in derived.variables},
        backend,
    )
    return CompiledModule(
        emit_module(header, functions, keywords, derived.variables, printer),
        derived.output,
        derived.output_type,
        derived.wrt_names,
        derived.mode,
        {v.attr("name"): keywords[v] for v in derived.variables},
        {name: keywords[seed] for name, seed in derived.seeds.items()},
        names,
        backend,
        dtype,
    )
