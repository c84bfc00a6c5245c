"""Graphs in Jupyter: SVG drawn by Graphviz's ``dot``, or a note on how to get it.

Jupyter shows the richest representation an object offers.  When the
``dot`` executable is on the PATH, `svg` draws the DOT listing and the
object offers SVG alone; when it is not, `svg` returns None (Jupyter's
protocol for "not available") and `missing_graphviz_html` offers the text
listing with a line saying how to install Graphviz.  graphc does not depend
on Graphviz, nor on the ``graphviz`` Python package.
"""

from __future__ import annotations

import html
import shutil
import subprocess

INSTALL = (
    "Graphviz's dot program draws this graph: install it with"
    " <code>apt install graphviz</code>, <code>conda install graphviz</code> or"
    " <code>brew install graphviz</code>, then show the object again."
)


def svg(dot_text: str, timeout: float = 30.0) -> str | None:
    """The SVG ``dot -Tsvg`` draws for ``dot_text``; None without a working ``dot``."""
    dot = shutil.which("dot")
    if dot is None:
        return None
    try:
        result = subprocess.run(
            [dot, "-Tsvg"],
            input=dot_text,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=timeout,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 and "<svg" in result.stdout else None


def missing_graphviz_html(listing: str) -> str | None:
    """The text listing and how to get Graphviz; None when ``dot`` is there (SVG is shown)."""
    if shutil.which("dot") is not None:
        return None
    return f"<p>{INSTALL}</p>\n<pre>{html.escape(listing)}</pre>"
