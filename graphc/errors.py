"""graphc's errors: one base class, a few kinds, and their rendering.

Every error about a program carries the 1-based ``line`` and ``column`` of
the place it concerns; ``render()`` formats it the way compilers do::

    model.gc:3:5: error: cannot multiply W [n×250] by x [200]: 250 ≠ 200
        z = W x + b
            ^

Errors about a feed (the arrays given to a compiled program) name the
variable instead of a place.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable


class _Located:
    """A message about a place in a program: line, column, the width of the caret, and (once
    known) the program text and its file name. Errors and warnings alike."""

    def __init__(
        self,
        message: str,
        line: int | None = None,
        column: int | None = None,
        *,
        source: str | None = None,
        filename: str | None = None,
        width: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.source = source
        self.filename = filename
        self.width = max(1, width)

    def located(self, source: str | None, filename: str | None) -> _Located:
        """Attach the program text and file name (kept if already set)."""
        if self.source is None:
            self.source = source
        if self.filename is None:
            self.filename = filename
        return self


class GraphcError(_Located, Exception):
    """Base class of every error graphc raises about a program or a feed."""

    kind = "error"

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return f"{self.line}:{self.column}: {self.message}"

    def render(self) -> str:
        """``FILE:LINE:COL: error: message``, the source line and a caret."""
        return _render(self, "error")


def _render(diagnostic: GraphcError | GraphcWarning, kind: str) -> str:
    """``FILE:LINE:COL: kind: message``, the source line and a caret under the place."""
    where = diagnostic.filename or "<string>"
    line, message, source = diagnostic.line, diagnostic.message, diagnostic.source
    if line is None:
        return f"{where}: {kind}: {message}"
    head = f"{where}:{line}:{diagnostic.column}: {kind}: {message}"
    if not source:
        return head
    lines = source.split("\n")  # as positions count lines: not at \f or \u2028
    if not 1 <= line <= len(lines):
        return head
    # Control characters (\r, \v, an escape sequence) would garble the terminal.
    text = "".join(c if c.isprintable() else " " for c in lines[line - 1].expandtabs(1))
    col = max(1, min(diagnostic.column or 1, len(text) + 1))
    width = max(1, min(diagnostic.width, len(text) - col + 1))
    caret = " " * (col - 1) + "^" + "~" * (width - 1)
    return f"{head}\n    {text}\n    {caret}"


class GraphcWarning(_Located, UserWarning):
    """A program that compiles but probably does not say what was meant (``A^T``,
    ``W * x``, a param the output ignores).  The result is unchanged; the command
    line prints it as ``FILE:LINE:COL: warning: …``, the API raises it through
    `warnings.warn`."""

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return f"{self.filename or '<string>'}:{self.line}:{self.column}: {self.message}"

    def render(self) -> str:
        """``FILE:LINE:COL: warning: message``, the source line and a caret."""
        return _render(self, "warning")


class ParseError(GraphcError):
    """The text is not a program: an unexpected character or token."""


class NameResolutionError(GraphcError):
    """A name is unknown, ambiguous, declared twice, or used as the wrong kind."""


class ShapeError(GraphcError):
    """Shapes disagree: the message names both shapes and the dimension."""


class DifferentiationError(GraphcError):
    """A derivative was asked for that the program cannot give."""


class FeedError(GraphcError):
    """An array fed to a program is missing, extra, misshapen or not numeric."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``"; did you mean x?"`` naming the candidate closest to ``name``, or ``""``.

    Names are compared as Python compares identifiers (NFKC), and a
    difference of case alone counts as close (``X`` for ``x``).
    """
    key = unicodedata.normalize("NFKC", name)
    keyed: dict[str, str] = {}
    for candidate in candidates:
        keyed.setdefault(unicodedata.normalize("NFKC", candidate), candidate)
    close = (
        difflib.get_close_matches(key, list(keyed), n=1, cutoff=0.6)
        or [k for k in keyed if k.casefold() == key.casefold()][:1]
    )
    return f"; did you mean {keyed[close[0]]}?" if close else ""


class SymbolicError(GraphcError):
    """SymPy is missing, or cannot hold this program (too deep, no matrix form)."""
