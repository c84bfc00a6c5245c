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
from graphc.runtime import CompiledFunction, Program, compile, parse

__version__ = "0.1.0"

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
