"""graphc: a symbolic differentiation compiler with explicit graphs.

import graphc
prog = graphc.parse(text)            # the explicit graph, checked, no values
prog.run(**feed)                     # evaluate it
fn = graphc.compile(text, wrt=None, mode="reverse")
fn(**feed); fn.grad(**feed); fn.value_and_grad(**feed); fn.source
"""

from graphc.errors import (
    DifferentiationError,
    FeedError,
    GraphcError,
    NameResolutionError,
    ParseError,
    ShapeError,
)

__version__ = "0.1.0"

# The compiler, and with it the parser (Lark), loads on first use, so that
# `graphc.testing` or `graphc.ops` can be imported without them.
_FROM_RUNTIME = ("CompiledFunction", "Program", "compile", "parse")


def __getattr__(name: str):
    if name in _FROM_RUNTIME:
        from graphc import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'graphc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_FROM_RUNTIME))


__all__ = [
    "CompiledFunction",
    "DifferentiationError",
    "FeedError",
    "GraphcError",
    "NameResolutionError",
    "ParseError",
    "Program",
    "ShapeError",
    "compile",
    "parse",
]
