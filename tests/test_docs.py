"""Every example in README.md and docs/*.md is run by these tests.

The convention, for every Markdown file (stated also in docs/language.md):

* A fenced block tagged ```gc is a program: ``graphc.compile(text,
  filename="example.gc")`` must succeed.
* A block tagged ```gc error is a program that must fail: compiling it must
  raise a `graphc.GraphcError`.  If the next fenced block in the file is a
  ```text block, its lines must be the first lines of the error's
  ``render()`` (the first line, ``example.gc:LINE:COL: error: message``, at
  least; then, if shown, the source line and the caret), trailing spaces
  ignored.
* Blocks tagged ```python run in order, one namespace per file, with the
  current directory at the repository root; their assertions are the checks.
* A block tagged ```console holds commands ``$ graphc …`` (or ``$ python -m
  graphc …``), each run as ``sys.executable -m graphc …`` from the
  repository root.  The lines after a command, up to the next ``$``, are
  expected output: each non-empty one (trailing spaces ignored; a line that
  is exactly ``...`` is skipped) must occur in the command's stdout + stderr.
  The command must exit with status 0, or with status 2 if an expected line
  contains ``: error:``.
* Blocks tagged ```sh (install instructions) and ```text are not run.  Any
  other tag, or no tag, is an error: an example that is not run is not shown.

Under a heading that is the name of an error class (``## ShapeError``, at any
level, up to the next heading of its level or above), a ```gc error block
must raise exactly that class, not merely a `graphc.GraphcError`.

docs/errors.md is the catalogue of errors, and cannot go stale: it has a
``## ClassName`` section for every subclass of `graphc.GraphcError`, and
every message that graphc's source can raise (the literal text of each
``XError("…")`` call, read from the source) appears in it.
"""

from __future__ import annotations

import ast
import importlib
import os
import pkgutil
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import graphc
from graphc import builtins

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MIRROR = ROOT / "docs" / "index.md"  # the site's first page, a copy of README.md
FILENAME = "example.gc"  # the file name `gc error` blocks are compiled under
KNOWN_TAGS = {"gc", "gc error", "python", "console", "sh", "text"}

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*(.*?)\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    tag: str  # the info string, whitespace normalised: "gc", "gc error", "python", …
    text: str
    following: Block | None = None  # the next fenced block of the file

    @property
    def name(self) -> str:
        path = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{path}:{self.line}:{self.tag.replace(' ', '-') or 'untagged'}"


def fenced_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, in order."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening or (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            i += 1
            continue
        fence, tag = opening.group(1), " ".join(opening.group(2).split())
        indent = len(lines[i]) - len(lines[i].lstrip(" "))
        body, j = [], i + 1
        while j < len(lines):
            closing = _FENCE.match(lines[j])
            if (
                closing
                and closing.group(1)[0] == fence[0]
                and len(closing.group(1)) >= len(fence)
                and not closing.group(2)
            ):
                break
            line = lines[j]
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))) :])
            j += 1
        blocks.append(Block(path, i + 1, tag, "\n".join(body) + "\n"))
        i = j + 1
    linked: list[Block] = []  # each block knows the next, built from the last
    for b in reversed(blocks):
        linked.insert(0, Block(b.path, b.line, b.tag, b.text, linked[0] if linked else None))
    return linked


def _collect() -> tuple[list, list]:
    run, files = [], []
    for path in FILES:
        if not path.exists():
            continue
        files.append(pytest.param(path, id=str(path.relative_to(ROOT))))
        if path == MIRROR:
            continue  # README's blocks, run there (tests/test_generated_docs.py keeps it equal)
        for block in fenced_blocks(path):
            if block.tag in ("gc", "gc error", "python", "console"):
                run.append(pytest.param(block, id=block.name))
    return run, files


BLOCKS, DOC_FILES = _collect()


# ---- error classes and the headings named after them ------------------------------


def error_classes() -> dict[str, type[graphc.GraphcError]]:
    """Every subclass of `graphc.GraphcError` that graphc defines, by name."""
    for module in pkgutil.walk_packages(graphc.__path__, "graphc."):
        importlib.import_module(module.name)  # a subclass defined anywhere is registered
    found: dict[str, type[graphc.GraphcError]] = {}
    stack: list[type] = [graphc.GraphcError]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub.__module__.split(".")[0] == "graphc" and sub.__name__ not in found:
                found[sub.__name__] = sub
                stack.append(sub)
    return found


def headings(path: Path) -> list[tuple[int, int, str]]:
    """The headings of ``path`` outside fenced blocks: (line, level, text)."""
    inside_block = {
        n
        for b in fenced_blocks(path)
        for n in range(b.line, b.line + b.text.count("\n") + 2)  # the fences too
    }
    found = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        heading = re.match(r"(#{1,6}) +(.*?) *#* *$", line)
        if heading and n not in inside_block:
            found.append((n, len(heading.group(1)), heading.group(2).strip("` ")))
    return found


def enclosing_headings(path: Path, line: int) -> list[str]:
    """The headings a line of ``path`` stands under, outermost first."""
    stack: list[tuple[int, str]] = []
    for n, level, text in headings(path):
        if n > line:
            break
        stack = [(lv, t) for lv, t in stack if lv < level] + [(level, text)]
    return [text for _, text in stack]


def section_class(block: Block) -> type[graphc.GraphcError] | None:
    """The error class a block's innermost class-named heading names, if any."""
    classes = error_classes()
    named = [classes[h] for h in enclosing_headings(block.path, block.line) if h in classes]
    return named[-1] if named else None


# ---- the tests ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["README.md", "docs/language.md", "docs/conventions.md"])
def test_the_documents_exist(name: str):
    assert (ROOT / name).is_file()


@pytest.mark.parametrize("path", DOC_FILES)
def test_every_fenced_block_is_tagged(path: Path):
    untagged = [
        f"line {b.line}: ```{b.tag}" for b in fenced_blocks(path) if b.tag not in KNOWN_TAGS
    ]
    assert not untagged, (
        f"{path.name}: fenced blocks must be tagged {', '.join(sorted(KNOWN_TAGS))}: {untagged}"
    )


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of ``path``."""
    anchors: set[str] = set()
    inside = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            inside = not inside
        heading = re.match(r"#{1,6} +(.*?) *#* *$", line)
        if heading and not inside:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
            anchor, k = slug, 0
            while anchor in anchors:
                k += 1
                anchor = f"{slug}-{k}"
            anchors.add(anchor)
    return anchors


@pytest.mark.parametrize("path", DOC_FILES)
def test_links_between_documents_resolve(path: Path):
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists() or (
            anchor and linked.suffix == ".md" and anchor not in _anchors(linked)
        ):
            broken.append(target)
    assert not broken, f"{path.name}: broken links {broken}"


@pytest.mark.parametrize("block", BLOCKS)
def test_example(block: Block, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(ROOT)
    {
        "gc": _run_program,
        "gc error": _run_failing_program,
        "python": _run_python,
        "console": _run_console,
    }[block.tag](block)


# ---- gc ------------------------------------------------------------------------


def _run_program(block: Block) -> None:
    try:
        graphc.compile(block.text, filename=FILENAME)
    except graphc.GraphcError as err:
        pytest.fail(f"the example at {block.name} does not compile:\n{err.render()}")


def _run_failing_program(block: Block) -> None:
    with pytest.raises(graphc.GraphcError) as caught:
        graphc.compile(block.text, filename=FILENAME)
    expected = section_class(block)
    if expected is not None:
        assert type(caught.value) is expected, (
            f"the example at {block.name} is under the heading {expected.__name__} but raises"
            f" {type(caught.value).__name__}:\n{caught.value.render()}"
        )
    following = block.following
    if following is None or following.tag != "text":
        return
    rendered = caught.value.render().splitlines()
    shown = [line.rstrip() for line in following.text.rstrip("\n").splitlines()]
    assert shown, f"the text block after {block.name} is empty"
    assert [line.rstrip() for line in rendered[: len(shown)]] == shown, (
        f"the text block at line {following.line} should show the error as graphc renders it:\n"
        + "\n".join(rendered)
    )


# ---- python ----------------------------------------------------------------------

_NAMESPACES: dict[Path, tuple[dict, int]] = {}  # per file: namespace, python blocks run


def _exec(block: Block, namespace: dict) -> None:
    # Pad with blank lines so that a traceback points at the line in the .md file.
    code = compile("\n" * block.line + block.text, str(block.path), "exec")
    exec(code, namespace)


def _run_python(block: Block) -> None:
    python = [b for b in fenced_blocks(block.path) if b.tag == "python"]
    position = [b.line for b in python].index(block.line)
    namespace, done = _NAMESPACES.get(block.path, ({"__name__": "__docs__"}, 0))
    if done > position:  # this block ran already (a rerun): start afresh
        namespace, done = {"__name__": "__docs__"}, 0
    for earlier in python[done:position]:  # blocks not run yet, e.g. under -k
        try:
            _exec(earlier, namespace)
        except Exception as err:
            pytest.fail(
                f"an earlier python block ({earlier.name}) fails: {type(err).__name__}: {err}"
            )
    _NAMESPACES[block.path] = (namespace, position + 1)
    _exec(block, namespace)


# ---- console ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    line: str
    expected: tuple[str, ...]


def console_commands(text: str) -> list[Command]:
    commands: list[Command] = []
    current, expected = None, []
    for line in text.splitlines():
        if line.startswith("$ "):
            if current is not None:
                commands.append(Command(current, tuple(expected)))
            current, expected = line[2:].strip(), []
        elif current is not None and line.strip() and line.strip() != "...":
            expected.append(line.rstrip())
    if current is not None:
        commands.append(Command(current, tuple(expected)))
    return commands


def _argv(command: str) -> list[str]:
    words = shlex.split(command)
    if words[:1] == ["graphc"]:
        return [sys.executable, "-m", "graphc", *words[1:]]
    if words[:3] in (["python", "-m", "graphc"], ["python3", "-m", "graphc"]):
        return [sys.executable, "-m", "graphc", *words[3:]]
    pytest.fail(f"a console example runs graphc, not {command!r}")


def _run_console(block: Block) -> None:
    commands = console_commands(block.text)
    assert commands, f"{block.name}: a console block needs at least one line '$ graphc …'"
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    for command in commands:
        result = subprocess.run(
            _argv(command.line),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=120,
        )
        output = result.stdout + result.stderr
        missing = [line for line in command.expected if line not in output]
        assert not missing, (
            f"$ {command.line}\nmissing from the output: {missing}\noutput:\n{output}"
        )
        wanted = 2 if any(": error:" in line for line in command.expected) else 0
        assert result.returncode == wanted, (
            f"$ {command.line} exited with status {result.returncode}, not {wanted}:\n{output}"
        )


# ---- the runner's own rules -------------------------------------------------------------


def test_fences_are_read_as_markdown_reads_them(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n```gc error\ny = z\n```\n\nprose\n\n"
        "````python\n```\nx = 1\n````\n\n"
        "  ~~~sh\n  pip install .\n  ~~~\n",
        encoding="utf-8",
    )
    blocks = fenced_blocks(page)
    assert [(b.line, b.tag) for b in blocks] == [(3, "gc error"), (9, "python"), (14, "sh")]
    assert blocks[0].text == "y = z\n" and blocks[0].following is blocks[1]
    assert blocks[1].text == "```\nx = 1\n" and blocks[2].text == "pip install .\n"


def test_console_lines_are_commands_and_expectations():
    commands = console_commands(
        "$ graphc check a.gc\n  x   3\n...\n\n$ python -m graphc graph a.gc\n"
    )
    assert commands == [
        Command("graphc check a.gc", ("  x   3",)),
        Command("python -m graphc graph a.gc", ()),
    ]
    assert _argv("python -m graphc graph 'a b.gc'") == [
        sys.executable,
        "-m",
        "graphc",
        "graph",
        "a b.gc",
    ]


# ---- docs/language.md: the table of built-in functions ------------------------------


def builtin_table(path: Path) -> set[str]:
    """The function names in the first column of the table under '## Built-in functions'."""
    lines = path.read_text(encoding="utf-8").split("\n## Built-in functions\n", 1)[1]
    rows = []
    for line in lines.splitlines():
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break  # the end of the first table
    return {name for row in rows[2:] for name in re.findall(r"`(\w+)\(", row.split("|")[1])}


def test_the_builtin_table_lists_exactly_the_builtins():
    documented = builtin_table(ROOT / "docs" / "language.md")
    known = set(builtins.all_names())
    assert not known - documented, (
        f"built-ins missing from the table in docs/language.md: {sorted(known - documented)}"
    )
    assert not documented - known, (
        f"docs/language.md lists functions graphc lacks: {sorted(documented - known)}"
    )


def test_the_builtin_table_is_read(tmp_path: Path):
    page = tmp_path / "language.md"
    page.write_text(
        "# L\n\n## Built-in functions\n\n| function | result |\n| --- | --- |\n"
        "| `exp(a)` | same |\n| `sin(a)`, `cos(a)` | same |\n| `norm(a)`, `‖a‖` | scalar |\n\n"
        "| `later(a)` | another table |\n",
        encoding="utf-8",
    )
    assert builtin_table(page) == {"exp", "sin", "cos", "norm"}


# ---- docs/errors.md: the catalogue of errors --------------------------------------

ERRORS_DOC = ROOT / "docs" / "errors.md"
SOURCE = ROOT / "graphc"
# Exceptions that graphc turns into a GraphcError (`ShapeMismatch`, `ArgumentError`:
# a ShapeError) or prints as a command-line usage error (`_UsageError`).
FORWARDED = {"graphc.shapes": "ShapeMismatch", "graphc.builtins": "ArgumentError"}
FORWARDED["graphc.__main__"] = "_UsageError"
_HOLE = "\0"  # where a message has a value put in: an f-string field or a {0} of a template


def _literal(expr: ast.expr) -> str | None:
    """A message expression as text with holes; None if it is not written out."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    if isinstance(expr, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else _HOLE for v in expr.values)
    if isinstance(expr, ast.IfExp):  # `f"… {x}" if hint else ""`: the text written out
        texts = [t for t in (_literal(expr.body), _literal(expr.orelse)) if t is not None]
        return max(texts, key=len) if texts else None
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        left, right = _literal(expr.left), _literal(expr.right)
        return None if left is None or right is None else left + right
    return None


def message_pieces(code: str, classes: set[str]) -> list[tuple[int, str, list[str]]]:
    """Each message written out in ``code``: (line, class, its literal pieces).

    A message is the first argument of a call of one of ``classes`` (``raise
    ShapeError(f"…")``, ``return ParseError("…")``) or text added to an error's
    ``message``; its pieces are the text between the values put in, as they
    appear in every instance of the message.
    """
    found = []
    for node in ast.walk(ast.parse(code)):
        text, name = None, ""
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in classes:
                text = _literal(node.args[0])
        elif (
            isinstance(node, ast.AugAssign)
            and isinstance(node.target, ast.Attribute)
            and node.target.attr == "message"
        ):
            name, text = "message +=", _literal(node.value)
        if text is None:
            continue
        text = re.sub(r"\{[^{}]*\}", _HOLE, text)  # the {0}, {1.factor} of templates
        pieces = [" ".join(p.split()) for p in text.split(_HOLE)]
        pieces = [p for p in pieces if re.search(r"[^\W\d_]", p)]
        if pieces:
            found.append((node.lineno, name, pieces))
    return sorted(found)


def _searchable(markdown: str) -> str:
    """The text of a page, whitespace collapsed and Python's "…" "…" strings joined."""
    return " ".join(re.sub(r"\"\s*\n\s*[fr]?\"", "", markdown).split())


def test_every_error_class_has_a_section_with_examples():
    assert {"ParseError", "ShapeError", "FeedError"} <= set(error_classes())
    sections = {text: n for n, level, text in headings(ERRORS_DOC) if level == 2}
    examples = [b for b in fenced_blocks(ERRORS_DOC) if b.tag in ("gc error", "python", "console")]
    missing, empty = [], []
    for name in sorted(error_classes()):
        if name not in sections:
            missing.append(name)
        elif not any(name in enclosing_headings(ERRORS_DOC, b.line) for b in examples):
            empty.append(name)
    assert not missing, f"docs/errors.md needs a section '## {missing[0]}' (of {missing})"
    assert not empty, f"the sections {empty} of docs/errors.md show no example"


def test_every_message_in_the_source_is_in_the_catalogue():
    classes = set(error_classes()) | {"GraphcError"}
    for module, name in FORWARDED.items():
        assert hasattr(importlib.import_module(module), name), f"{module}.{name} is gone"
        classes.add(name)
    page = _searchable(ERRORS_DOC.read_text(encoding="utf-8"))
    unseen, seen = [], 0
    for path in sorted(SOURCE.rglob("*.py")):
        for line, name, pieces in message_pieces(path.read_text(encoding="utf-8"), classes):
            missing = [p for p in pieces if p not in page]
            seen += 1
            if missing:
                where = path.relative_to(ROOT)
                unseen.append(f"{where}:{line}: {name}: {' … '.join(pieces)!r}")
    assert seen > 50, f"only {seen} messages found in graphc/: is the search broken?"
    assert not unseen, (
        "these messages appear nowhere in docs/errors.md; show each with an example under its"
        " class's section (or, if no program can raise it, under 'Messages you should not"
        " see'):\n  " + "\n  ".join(unseen)
    )


def test_messages_are_read_from_the_source():
    code = (
        "raise ShapeError(f'cannot {verb} {{0}} and {{1}}: {x} ≠ {y}', 1, 2)\n"
        "raise ShapeError(str(err), 1, 2)\n"
        "return ParseError('unexpected ' + f'{found} here')\n"
        "err.message += f' (in {name} called at line {n})'\n"
        "err.message += f' (declare it: dim {name})' if hint else ''\n"
        "raise ValueError(f'not {this} one')\n"
        "raise FeedError(\n    f'{name}: {value}'\n)\n"
    )
    assert message_pieces(code, {"ShapeError", "ParseError", "FeedError"}) == [
        (1, "ShapeError", ["cannot", "and"]),
        (3, "ParseError", ["unexpected", "here"]),
        (4, "message +=", ["(in", "called at line"]),
        (5, "message +=", ["(declare it: dim"]),
    ]
    assert _searchable('x\n  = ("a b"\n     "c d")') == 'x = ("a bc d")'


def test_an_example_under_a_class_heading_must_raise_that_class(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Errors\n\n## ShapeError\n\n```gc error\nparam x : []\ny = z\n```\n\n"
        "### More\n\n```python\n# ParseError\n```\n\n```gc error\ny = (\n```\n\n"
        "## Other\n\n```gc error\ny = (\n```\n",
        encoding="utf-8",
    )
    blocks = fenced_blocks(page)
    assert [section_class(b) for b in blocks] == [graphc.ShapeError] * 3 + [None]
    with pytest.raises(AssertionError, match="under the heading ShapeError but raises Name"):
        _run_failing_program(blocks[0])
