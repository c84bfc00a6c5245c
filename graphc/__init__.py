"""graphc: a symbolic differentiation compiler with explicit graphs.

import graphc
prog = graphc.parse(text)            # the explicit graph, checked, no values
prog.run(**feed)                     # evaluate it
fn = graphc.compile(text, wrt=None, mode="reverse")
fn(**feed); fn.grad(**feed); fn.value_and_grad(**feed); fn.source
graphc.to_sympy(fn, dims={"n": 2})  # the program and graphc's gradients in SymPy
"""

from graphc.errors import (
    DifferentiationError,
    FeedError,
    GraphcError,
    GraphcWarning,
    NameResolutionError,
    ParseError,
    ShapeError,
    SymbolicError,
)

__version__ = "0.1.0"

# The compiler, and with it the parser (Lark), loads on first use, so that
# `graphc.testing` or `graphc.ops` can be imported without them.
_FROM_RUNTIME = ("CompiledFunction", "Program", "compile", "parse")


def __getattr__(name: str):
    if name in _FROM_RUNTIME:
        from graphc import runtime

        return getattr(runtime, name)
    if name == "to_sympy":  # SymPy itself loads only when a translation is asked for
        from graphc.symbolic import to_sympy

        return to_sympy
    raise AttributeError(f"module 'graphc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_FROM_RUNTIME) | {"to_sympy"})


__all__ = [
    "CompiledFunction",
    "DifferentiationError",
    "FeedError",
    "GraphcError",
    "GraphcWarning",
    "NameResolutionError",
    "ParseError",
    "Program",
    "ShapeError",
    "SymbolicError",
    "compile",
    "parse",
    "to_sympy",
]
