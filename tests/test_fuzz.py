"""Fuzzing the parser and the whole pipeline: every input compiles and runs, or fails cleanly.

Each input goes through parse → check → differentiate → fold → emit →
import → run (`tests/fuzz/oracle.py`, shared with the atheris harness in
`tests/fuzz/fuzz_pipeline.py`): it either compiles, in reverse and forward
mode, to modules that import and run on a small random feed, or it raises
graphc's own error at a line and column inside the text.  A traceback, a
RecursionError, a MemoryError, an emitted module that does not import, or an
input that takes over a second of CPU time fails the test.

The inputs: random Unicode text and random bytes (the bytes also through
the command line, which reads files: one that is not UTF-8 is an error
naming the file, exit status 2); token soups drawn from the grammar's own terminals;
mutations of every program in ``examples/`` (tokens deleted, duplicated,
swapped; brackets unbalanced; names unknown or non-ASCII; shapes changed;
huge, tiny, nan and inf literals; stray control characters); empty and
whitespace-only programs; deep nesting and long programs.

The default run is deterministic (``derandomize``), so CI never fails on an
input found that day; ``GRAPHC_FUZZ_EXAMPLES=N`` runs N random inputs per
strategy instead.  The count of inputs tried is printed at the end of the
run (`tests/conftest.py`).  The smallest inputs that showed bugs are kept as
regressions at the end.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import graphc
from graphc import builtins
from graphc.__main__ import main as cli_main
from graphc.frontend import parser

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/, for the fuzz package
from fuzz import fuzz_pipeline, oracle  # noqa: E402
from fuzz.oracle import COMPILED, COMPILED_UNFED, REJECTED  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {p.name: p.read_text(encoding="utf-8") for p in sorted(ROOT.glob("examples/*.gc"))}

# ---------------------------------------------------------------------------
# Settings: deterministic by default, random and as long as asked by hand
# ---------------------------------------------------------------------------

_ASKED = os.environ.get("GRAPHC_FUZZ_EXAMPLES")
# The bound of one second per input is kept by the oracle, in CPU time
# (`oracle.cpu_limit`).  Hypothesis's deadline is clock time: on a shared
# machine one input stalled by another process for a moment fails the test
# as "unreliable test timings" (a FlakyFailure), even though its replay is
# fast; so it is off.
DEADLINE = None


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=int(_ASKED) if _ASKED else examples,
        derandomize=not _ASKED,
        database=None,
        deadline=DEADLINE,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


# Build the parser once, outside any input's second.
parser()


def check(text: str, strategy: str) -> str:
    return oracle.check_input(text, strategy=strategy)


# ---------------------------------------------------------------------------
# (a) random text and bytes
# ---------------------------------------------------------------------------


@fuzz_settings(300)
@given(st.text(max_size=120))
@example("")
@example("\x00")
@example("\ufeff")
def test_random_unicode(text):
    check(text, "unicode")


# Characters graphc gives meaning to, so that random text reaches past the first token.
_GRAPHC_ALPHABET = st.sampled_from(
    list("xyWnab ()[]‖;,:=+-−*∘⊙@·/^ᵀ'.T0123456789e\n\t#σ×") + ["dim ", "param ", "input "]
)


@fuzz_settings(300)
@given(st.lists(_GRAPHC_ALPHABET | st.characters(), max_size=60).map("".join))
def test_random_text_in_graphc_alphabet(text):
    check(text, "unicode")


_TMP = tempfile.TemporaryDirectory(prefix="graphc-fuzz-")


def run_cli(data: bytes) -> tuple[int, str]:
    """``graphc compile FILE`` in this process, on a file holding ``data``."""
    path = Path(_TMP.name) / "input.gc"
    path.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli_main(["compile", str(path)])
    return status, err.getvalue()


@fuzz_settings(200)
@given(st.binary(max_size=120))
@example(b"\xff")
@example(b"param x : []\ny = x # caf\xe9\n")
@example(b"\xef\xbb\xbfparam x : []\ny = x\n")  # a byte-order mark
@example(b"\xef")  # a byte-order mark cut short: Python's utf-8-sig file reader gives ""
def test_random_bytes(data):
    """Bytes decoded as the command line decodes a file; bytes that are not UTF-8 too."""
    path = str(Path(_TMP.name) / "input.gc")
    try:  # as the command line reads a file: a byte-order mark dropped, newlines kept
        text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError:
        text = None
    outcome = check(text, "bytes") if text is not None else None
    status, stderr = run_cli(data)
    if text is None:
        oracle.TRIED["bytes", REJECTED] += 1
        assert status == 2, stderr
        assert re.match(rf"{re.escape(path)}:\d+:\d+: error: not UTF-8 text: ", stderr), stderr
    else:
        assert status == (2 if outcome == REJECTED else 0), stderr
        if status == 2:
            assert re.match(rf"{re.escape(path)}:\d+:\d+: error: ", stderr), stderr
    assert "Traceback" not in stderr


# ---------------------------------------------------------------------------
# (b) token soups from the grammar's own terminals
# ---------------------------------------------------------------------------


def _terminal(t) -> st.SearchStrategy[str]:
    if t.pattern.type == "str":
        return st.just(t.pattern.value)
    return st.from_regex(t.pattern.to_regexp(), fullmatch=True)


TERMINALS = {t.name: _terminal(t) for t in parser().terminals}
# Names the prelude below declares, and the built-in functions, so soups reach lowering.
KNOWN = ["x", "W", "a", "n", "f", "y", *builtins.all_names()]
PRELUDE = "dim n = 3\ninput x : [n]\nparam W : [n, n]\nparam a : []\nf(t) = a t\n"
SEPARATORS = st.sampled_from(["", " ", " ", " ", "\n", "\t", "; "])


# The terminals an expression is made of (no statement keywords, no line breaks).
EXPRESSION = [
    "NUMBER", "MINUS", "HADAMARD", "MATMUL", "TRANSPOSE", "NORM_BAR", "LPAR", "RPAR", "LSQB",
    "RSQB", "SEMICOLON", "COMMA", "PLUS", "STAR", "SLASH", "CIRCUMFLEX",
]  # fmt: skip


def soup(
    names: st.SearchStrategy[str], terminals=None, separators=SEPARATORS
) -> st.SearchStrategy[str]:
    chosen = set(terminals or TERMINALS) - {"NAME"}
    others = [s for name, s in TERMINALS.items() if name in chosen]
    tokens = st.one_of(*others, names, names, names)
    return st.lists(st.tuples(tokens, separators), max_size=40).map(
        lambda pairs: "".join(token + sep for token, sep in pairs)
    )


def test_soups_cover_every_terminal():
    """The soups draw from every terminal the grammar has (so a new one is fuzzed too)."""
    grammar = parser().terminals
    assert {t.name for t in grammar} == set(TERMINALS)
    assert {"NAME", "NUMBER", "NORM_BAR", "TRANSPOSE", "COMMENT"} <= set(TERMINALS)


@fuzz_settings(400)
@given(soup(TERMINALS["NAME"]))
def test_token_soup(text):
    check(text, "token soup")


@fuzz_settings(300)
@given(soup(st.sampled_from(KNOWN)))
def test_token_soup_after_declarations(text):
    check(PRELUDE + text, "token soup")


@fuzz_settings(400)
@given(soup(st.sampled_from(KNOWN), EXPRESSION, st.sampled_from(["", " "])))
def test_expression_soup(text):
    check(PRELUDE + "y = " + text, "token soup")


# ---------------------------------------------------------------------------
# (c) mutations of every example
# ---------------------------------------------------------------------------


def _regex(name: str) -> str:
    return parser().get_terminal(name).pattern.to_regexp()


# Tokens as the grammar reads them, whitespace and comments included, so that
# joining them gives the program back.
_LEX = re.compile(
    "|".join(
        f"(?:{p})"
        for p in (
            _regex("COMMENT"),
            r"\\[ \t]*\r?\n",
            r"\r?\n",
            r"[ \t\f\r]+",
            _regex("NUMBER"),
            _regex("NAME"),
            r"\.T",
            r".",
        )
    ),
    re.S,
)
_NAME = re.compile(_regex("NAME"))
_NUMBER = re.compile(_regex("NUMBER"))


def lex(text: str) -> list[str]:
    tokens = [m.group(0) for m in _LEX.finditer(text)]
    assert "".join(tokens) == text
    return tokens


def test_lex_gives_the_examples_back():
    assert len(EXAMPLES) >= 10
    for text in EXAMPLES.values():
        tokens = lex(text)
        assert any(_NAME.fullmatch(t) for t in tokens)
        assert "".join(tokens) == text


NUMBERS = [
    "0", "1", "2", "7", "0.0", ".5", "1.", "1e308", "1e309", "1e-320", "1e-400", "1e999999",
    "4.9e-324", "179769313486231570814527423731704356798070e268", "100000", "1000000000",
    "9223372036854775807", "9223372036854775808", "99999999999999999999999999999",
    "9" * 5000, "0" * 30 + "3", "٣", "𝟥",
]  # fmt: skip
NAN_INF = ["nan", "NaN", "inf", "Inf", "Infinity", "-inf", "∞", "1e309 - 1e309", "0/0", "(0/0)"]
NON_ASCII = [
    "α", "θ₁", "中文", "é", "e\u0301", "ℌ", "H", "x₁", "x1", "ﬁ", "fi", "𝐱", "Ⅷ", "ǅ", "ſ",
    "K", "µ", "μ", "ᵃ", "x\u200b", "ⅇ", "ℯ", "٣x", "x²", "__init__", "_", "np", "value",
    "lambda", "None", "print", "delta", "t1", "x_bar", "W_dot", "ᵀx", "xᵀ",
]  # fmt: skip
SHAPES = [
    "", "3", "n", "n, n", "n×n", "n, n, n", "0", "0, 0", "n-5", "n*n", "2*n+1", "m", "x",
    "1e3", "-1", "n-n", "(n)", "scalar", "1000000, 1000000", "n, 9223372036854775807",
]  # fmt: skip
CHARACTERS = [
    "\n", "\t", " ", "\x0c", "\\\n", "\r\n", "\r", "\u2028", "\x00", "\x0b", "\u00a0", "\ufeff",
    "\x85", "\u200b", "#", "\\", '"""', "'''", "{", "}", "%", "$", "`",
]  # fmt: skip
BRACKETS = ["(", ")", "[", "]", "‖", "|", "⟨", "⟩"]
UNKNOWN_NAMES = st.sampled_from(["zz", "Wx2", "undefined", "xW", "nn", "Σ"]) | TERMINALS["NAME"]


def _names(tokens: list[str]) -> list[int]:
    return [i for i, t in enumerate(tokens) if _NAME.fullmatch(t)]


@st.composite
def mutated_example(draw) -> str:
    tokens = lex(EXAMPLES[draw(st.sampled_from(sorted(EXAMPLES)))])
    for _ in range(draw(st.integers(1, 4))):
        if not tokens:
            break
        i = draw(st.integers(0, len(tokens) - 1))
        kind = draw(
            st.sampled_from(
                [
                    "delete",
                    "duplicate",
                    "swap",
                    "bracket",
                    "unknown name",
                    "rename",
                    "shape",
                    "number",
                    "nan or inf",
                    "character",
                    "delete lines",
                    "duplicate a line",
                ]
            )
        )
        names = _names(tokens)
        if kind == "delete":
            del tokens[i]
        elif kind == "duplicate":
            tokens.insert(i, tokens[i])
        elif kind == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif kind == "bracket":  # drop one, or add a stray one
            brackets = [k for k, t in enumerate(tokens) if t in BRACKETS]
            if brackets and draw(st.booleans()):
                del tokens[draw(st.sampled_from(brackets))]
            else:
                tokens.insert(i, draw(st.sampled_from(BRACKETS)))
        elif kind == "unknown name" and names:
            tokens[draw(st.sampled_from(names))] = draw(UNKNOWN_NAMES)
        elif kind == "rename" and names:  # every use, or one (ℌ for H: a different name)
            old = tokens[draw(st.sampled_from(names))]
            new = draw(st.sampled_from(NON_ASCII))
            every = draw(st.booleans())
            tokens = [new if t == old and (every or k == i) else t for k, t in enumerate(tokens)]
        elif kind == "shape":
            opens = [k for k, t in enumerate(tokens) if t == "["]
            if opens:
                start = draw(st.sampled_from(opens))
                end = tokens.index("]", start) if "]" in tokens[start:] else start + 1
                tokens[start + 1 : end] = [draw(st.sampled_from(SHAPES))]
        elif kind == "number":
            numbers = [k for k, t in enumerate(tokens) if _NUMBER.fullmatch(t)]
            where = draw(st.sampled_from(numbers)) if numbers else i
            tokens[where] = draw(st.sampled_from(NUMBERS))
        elif kind == "nan or inf":
            tokens.insert(i, draw(st.sampled_from(NAN_INF)))
        elif kind == "character":
            tokens.insert(i, draw(st.sampled_from(CHARACTERS)))
        elif kind in ("delete lines", "duplicate a line"):  # whole statements
            lines = "".join(tokens).split("\n")
            k = draw(st.integers(0, len(lines) - 1))
            if kind == "delete lines":
                del lines[k : k + draw(st.integers(1, len(lines)))]
            else:
                lines.insert(k, lines[k])
            tokens = lex("\n".join(lines))
    return "".join(tokens)


@fuzz_settings(900)
@given(mutated_example())
def test_mutated_examples(text):
    check(text, "mutated examples")


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_compiles_and_runs(name):
    """The unmutated examples pass the oracle by compiling (so the mutations start from there)."""
    assert check(EXAMPLES[name], "examples") in (COMPILED, COMPILED_UNFED)


WHITESPACE = st.text(st.sampled_from(" \t\n\r\x0c\x0b\u2028\u00a0\ufeff\\"), max_size=20)


@fuzz_settings(60)
@given(WHITESPACE | WHITESPACE.map(lambda s: s + "# only a comment" + s))
@example("")
@example("\n\n\n")
def test_empty_and_whitespace_programs(text):
    assert check(text, "empty") == REJECTED  # a program computes something


# ---------------------------------------------------------------------------
# (d) deep nesting and long programs, a little
# ---------------------------------------------------------------------------

WRAPPERS = [
    ("(", ")"),
    ("[", "]"),
    ("‖", "‖"),
    ("-", ""),
    ("−", ""),
    ("exp(", ")"),
    ("f(", ")"),
    ("tanh(", ")"),
    ("sum(", ")"),
    ("2 ", ""),
    ("(", ")ᵀ"),
    ("x^", ""),
    ("a + ", ""),
    ("", " + a"),
    ("a ∘ ", ""),
    ("(", ""),  # unbalanced
    ("", ")"),
    ("‖", ""),
]


@st.composite
def deep(draw) -> str:
    layers = draw(st.lists(st.sampled_from(WRAPPERS), min_size=1, max_size=120))
    inner = draw(st.sampled_from(["x", "a", "W x", "1", "x ∘ x"]))
    for left, right in layers:
        inner = left + inner + right
    return "param a : []\ninput x : [3]\nparam W : [3, 3]\nf(t) = a t\ny = " + inner


@st.composite
def long_program(draw) -> str:
    steps = draw(st.integers(1, 100))
    op = draw(st.sampled_from(["+", "∘", " ", "-", "/"]))
    lines = ["param a : []", "input x : [3]", "y0 = a x"]
    lines += [f"y{k} = y{k - 1} {op} (a x)" for k in range(1, steps)]
    return "\n".join(lines) + ("\nJ = sum(" + f"y{steps - 1})" if draw(st.booleans()) else "")


@fuzz_settings(40)
@given(deep() | long_program())
def test_deep_and_long(text):
    check(text, "deep or long")


# ---------------------------------------------------------------------------
# The harness runs (atheris need not be installed)
# ---------------------------------------------------------------------------


def test_harness_runs_without_atheris():
    for data in (b"", b"\xff\xfe", "param α : []\ny = α^2\n".encode(), b"y = (", b"\x00"):
        fuzz_pipeline.TestOneInput(data)
    assert oracle.TRIED["atheris harness", COMPILED] >= 1
    assert oracle.TRIED["atheris harness", REJECTED] >= 2


def test_harness_seeds_its_corpus_with_the_examples():
    args = fuzz_pipeline.fuzzer_arguments(["fuzz_pipeline.py", "-max_total_time=60"])
    assert args[:2] == ["fuzz_pipeline.py", "-max_total_time=60"]
    corpus, seeds = map(Path, args[2:])
    assert corpus != ROOT / "examples"  # libFuzzer writes into the first directory
    assert sorted(p.name for p in seeds.glob("*.gc")) == sorted(EXAMPLES)
    given = ["fuzz_pipeline.py", "my-corpus"]
    assert fuzz_pipeline.fuzzer_arguments(given) == given


def test_a_slow_input_is_stopped_after_its_cpu_second(monkeypatch):
    def spin(text, filename):
        while True:
            pass

    monkeypatch.setattr(oracle, "_check", spin)
    monkeypatch.setattr(oracle, "CPU_SECONDS", 0.2)
    start = time.perf_counter()
    with pytest.raises(oracle.TooSlow):
        oracle.check_input("y = 1", strategy="self-test")
    assert time.perf_counter() - start < 30  # stopped, not hung


def test_oracle_fails_on_what_it_must_catch(monkeypatch):
    """The oracle is not vacuous: an unlocated error or a broken module fails it."""
    with pytest.raises(AssertionError, match="no position"):
        oracle.located(graphc.GraphcError("somewhere"), "x")
    with pytest.raises(AssertionError, match="outside"):
        oracle.located(graphc.ParseError("past the end", 3, 1), "x\ny")
    with pytest.raises(AssertionError):  # the quoted line must be the line pointed at
        err = graphc.ParseError("here", 2, 1, source="a\x0bb\nc", filename=oracle.FILENAME)
        oracle.located(err, "a\x0bb\nd")
    monkeypatch.setattr(oracle, "load_module", lambda source: compile("1 +", "m", "exec"))
    with pytest.raises(SyntaxError):
        oracle.check_input("param x : []\ny = x", strategy="self-test")


# ---------------------------------------------------------------------------
# Regressions: the smallest inputs that showed bugs
# ---------------------------------------------------------------------------

REGRESSIONS = [
    # A vertical tab, form feed or line separator is no line break to the parser,
    # but render() split lines at them and quoted the wrong line.
    ("# \x0b\nparam x : []\ny = x(\n", REJECTED),
    ("param x\u2028 : []\ny = x\n", REJECTED),
    ("param x : \x0c[]\ny = $\n", REJECTED),
    # A carriage return or an escape sequence in the quoted line garbled the terminal.
    ("param x : []\n‖\r\r", REJECTED),
    ("param x : []\ny = \x1b[31m x\n", REJECTED),
    # ... and the end of input was placed by those splits, past the end of its line.
    ("# \x0b\nparam x : []\ny = sum(x\n", REJECTED),
    # A NUL or a lone surrogate in a comment reached the module's docstring: no import.
    ("# \x00\nparam x : []\ny = x\n", COMPILED),
    ("# \ud800\nparam x : []\ny = x\n", COMPILED),
    # A program with no inputs or params: forward mode emitted `def value_and_grad(*, )`
    # (found by the atheris harness, as T555…=555…).
    ("y = 1", COMPILED),
    # A shape of negative size compiled.
    ("dim n = 2\nparam x : [n - 3]\ny = sum(x)\n", REJECTED),
    # A size of more than 4300 digits is more than Python reads (ValueError) ...
    ("dim n = " + "9" * 5000 + "\nparam x : [n]\ny = sum(x)\n", REJECTED),
    # ... or prints (ValueError), or converts to float (OverflowError).
    ("dim n = " + "*".join(["99999999999"] * 400) + "\nparam x : [n]\ny = n sum(x)\n", REJECTED),
    ("dim n\nparam x : [n*" + "*".join(["99999999999"] * 400) + "]\ny = sum(x)\n", REJECTED),
    ("dim n = 9223372036854775808\nparam x : [n]\ny = sum(x)\n", REJECTED),
]


@pytest.mark.parametrize("text, outcome", REGRESSIONS, ids=range(len(REGRESSIONS)))
def test_regressions(text, outcome):
    assert check(text, "regressions") == outcome


def test_largest_size_compiles():
    text = "dim n = 9223372036854775807\nparam x : [n]\ny = sum(x)\n"
    assert check(text, "regressions") == COMPILED_UNFED


@pytest.mark.parametrize(
    "text, message, where",
    [
        ("dim n = 2\nparam x : [n - 3]\ny = sum(x)", "size n - 3 = -1 is negative", (2, 12)),
        ("param x : [3, 0-1]\ny = sum(x)", "size 0-1 = -1 is negative", (1, 15)),
        ("dim n = " + "9" * 30, "this size is too large", (1, 9)),
        ("dim n\nparam x : [2*n*9223372036854775807]", "this size is too large", (2, 12)),
    ],
)
def test_impossible_sizes_are_shape_errors(text, message, where):
    with pytest.raises(graphc.ShapeError) as info:
        graphc.parse(text)
    assert message in info.value.message
    assert (info.value.line, info.value.column) == where


def test_render_quotes_the_line_the_position_counts():
    with pytest.raises(graphc.GraphcError) as info:
        graphc.parse("# a\x0cb\u2028c\nparam x : []\ny = (x", filename="f.gc")
    assert info.value.render().split("\n") == [
        "f.gc:3:7: error: unexpected end of input; expected ')'",
        "    y = (x",
        "          ^",
    ]


def test_render_shows_control_characters_as_spaces():
    with pytest.raises(graphc.GraphcError) as info:
        graphc.parse("y = \x1b[31m\r\n", filename="f.gc")
    assert info.value.render().split("\n") == [
        "f.gc:1:5: error: unexpected character '\\x1b'",
        "    y =  [31m ",
        "        ^",
    ]


def test_docstring_keeps_nul_and_surrogates_as_written():
    text = "# \x00 \ud800 \\x00\nparam x : []\ny = x\n"
    module = graphc.runtime.load_module(graphc.compile(text).source)
    assert "# \x00 \ud800 \\x00" in module.__doc__
