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
    NameResolutionError,
    ParseError,
    ShapeError,
)
from graphc.runtime import CompiledFunction, Program, compile, parse
from graphc.symbolic import SymbolicError, to_sympy  # imports SymPy only when called

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
    "SymbolicError",
    "compile",
    "parse",
    "to_sympy",
]
