"""Regenerate the parts of the docs pages that are produced by a script.

A generated part of a page sits between two comment lines::

    <!-- generated: graphc swell --max-k 10 --format markdown -->
    …
    <!-- end generated -->

The command after ``generated:`` is either a graphc command line (run as
``python -m graphc …``, its standard output taken) or ``python docs/X.py``
or ``python benchmarks/X.py`` (a script of the repository, its
``markdown()`` taken).  ``python docs/generate.py`` rewrites every such part
of docs/*.md, and docs/index.md, the site's first page, from README.md
(`index_page`); ``--check`` only reports the pages that differ.
tests/test_generated_docs.py regenerates them and compares, times excepted
(a column or line that holds a time is not compared).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shlex
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
BEGIN = re.compile(r"^<!-- generated: (.+?) -->$", re.M)
END = "<!-- end generated -->"
SCRIPT_DIRS = ("docs", "benchmarks")  # where a page's generating script may live
INDEX = DOCS / "index.md"
README = ROOT / "README.md"


def run(command: str) -> str:
    """The Markdown a command produces now."""
    words = shlex.split(command)
    if words[0] == "graphc":
        from graphc.__main__ import main

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = main(words[1:])
        if status != 0:
            raise RuntimeError(f"{command} exited with status {status}")
        return out.getvalue().rstrip("\n")
    if words[0] == "python" and len(words) == 2 and words[1].split("/")[0] in SCRIPT_DIRS:
        path = ROOT / words[1]
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        return module.markdown().rstrip("\n")
    raise ValueError(f"cannot run {command!r}: a graphc command or python docs/X.py")


def parts(text: str) -> list[tuple[str, int, int]]:
    """Each generated part of a page: (command, start, end) of the text between the markers."""
    found = []
    for begin in BEGIN.finditer(text):
        start = begin.end() + 1
        end = text.index(END, start)
        found.append((begin.group(1), start, end))
    return found


def regenerate(text: str) -> str:
    for command, start, end in reversed(parts(text)):
        text = text[:start] + run(command) + "\n" + text[end:]
    return text


def index_page(readme: str) -> str:
    """docs/index.md: the README, its links to docs/X.md made relative to docs/."""
    note = "<!-- A copy of README.md made by docs/generate.py: edit README.md. -->\n\n"
    return note + re.sub(r"\]\(docs/", "](", readme)


# Figures the pages show, drawn by the same commands (not compared by the tests).
FIGURES = ["graphc swell --max-k 10 --timeout 60 --format json --plot docs/swell.svg"]


def main(argv: list[str]) -> int:
    stale = []
    index = index_page(README.read_text(encoding="utf-8"))
    if not INDEX.exists() or INDEX.read_text(encoding="utf-8") != index:
        stale.append(INDEX.name)
        if "--check" not in argv:
            INDEX.write_text(index, encoding="utf-8")
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        if not parts(text):
            continue
        new = regenerate(text)
        if new != text:
            stale.append(page.name)
            if "--check" not in argv:
                page.write_text(new, encoding="utf-8")
    if "--check" not in argv:
        for command in FIGURES:
            run(command)
    verb = "differ" if "--check" in argv else "rewritten"
    print(f"{verb}: {', '.join(stale) or 'none'}")
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # graphc from this checkout when it is not installed
    sys.exit(main(sys.argv[1:]))
