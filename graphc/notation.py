"""How an operator is written in mathematics: the `Op.math` fact.

Each operator block in `graphc.ops` says which *kind* of notation it is
(a function ``tanh(x)``, an infix ``a + b``, a postfix ``Xᵀ``, a product
written by juxtaposition, …) and its symbol in Unicode and in LaTeX.
`graphc.mathprint` has one method per kind, so adding an operator never
touches the printer.  An operator without a notation prints as a function
of its name.
"""

from __future__ import annotations

from typing import NamedTuple


class Notation(NamedTuple):
    """``kind`` names the printer method; ``symbol`` and ``latex`` are its two spellings."""

    kind: str
    symbol: str = ""
    latex: str = ""


# Functions LaTeX has a command for (\tanh); others are set upright (\mathrm{softplus}).
LATEX_FUNCTIONS = frozenset(
    {"exp", "log", "ln", "sin", "cos", "tan", "sinh", "cosh", "tanh", "det", "max", "min"}
)


def function(symbol: str, latex: str | None = None) -> Notation:
    """``f(x, y)``; in LaTeX ``\\tanh`` where LaTeX has the command, else ``\\mathrm{f}``."""
    if latex is None:
        latex = rf"\{symbol}" if symbol in LATEX_FUNCTIONS else rf"\mathrm{{{symbol}}}"
    return Notation("function", symbol, latex)


def infix(symbol: str, latex: str) -> Notation:
    """``a + b``, ``a − b``."""
    return Notation("infix", symbol, latex)


def prefix(symbol: str, latex: str) -> Notation:
    """``−a``."""
    return Notation("prefix", symbol, latex)


def superscript(symbol: str, latex: str) -> Notation:
    """``Xᵀ``, ``X⁻¹``: a superscript after its operand."""
    return Notation("superscript", symbol, latex)


def solve(symbol: str, latex: str) -> Notation:
    """``A⁻¹ B`` for a solve: the matrix with the superscript, then the right side."""
    return Notation("solve", symbol, latex)


def comparison(symbol: str, latex: str) -> Notation:
    """``[a > b]``: an Iverson bracket, 1 where the comparison holds."""
    return Notation("iverson", symbol, latex)


def kind(name: str) -> Notation:
    """The notation that is the printer method ``name`` alone (``product``, ``sum``…)."""
    return Notation(name)
