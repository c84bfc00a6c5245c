"""Bad programs: the error's class, its message, its line and column, and how
the command line prints it (``FILE:LINE:COL: error: message``, the source
line, a caret under the column, exit status 2, never a traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import graphc

# The command line runs the graphc these tests import (a checkout or an install).
GRAPHC_HOME = Path(graphc.__file__).resolve().parent.parent


def error(text: str, kind: type = graphc.GraphcError) -> graphc.GraphcError:
    with pytest.raises(kind) as info:
        graphc.parse(text, "bad.gc")
    err = info.value
    assert isinstance(err, graphc.GraphcError)
    return err


def where(err: graphc.GraphcError) -> tuple[int, int]:
    return err.line, err.column


def test_error_classes_are_graphc_errors():
    for kind in (
        graphc.ParseError,
        graphc.NameResolutionError,
        graphc.ShapeError,
        graphc.DifferentiationError,
        graphc.FeedError,
    ):
        assert issubclass(kind, graphc.GraphcError)


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------


def test_unknown_name_suggests_the_nearest():
    err = error("input x : [3]\nparam weight : [3]\ny = weigth x", graphc.NameResolutionError)
    assert "unknown name weigth" in err.message
    assert "did you mean weight?" in err.message
    assert where(err) == (3, 5)


def test_unknown_name_suggests_a_different_case():
    err = error("param W : [3, 3]\ninput x : [3]\ny = w x", graphc.NameResolutionError)
    assert err.message == "unknown name w; did you mean W?"
    assert where(err) == (3, 5)


def test_unknown_name_without_a_near_one():
    err = error("input x : [3]\ny = 2 qqq", graphc.NameResolutionError)
    assert err.message.startswith("unknown name qqq")
    assert "did you mean" not in err.message
    assert where(err) == (2, 7)


def test_unknown_function_suggests_a_builtin():
    err = error("input x : [3]\ny = sigmod(x)", graphc.NameResolutionError)
    assert err.message == "unknown function sigmod; did you mean sigmoid?"
    assert where(err) == (2, 5)


def test_unknown_output():
    err = error("input x : [3]\nz = 2 x\noutput zz", graphc.NameResolutionError)
    assert err.message == "unknown output zz; did you mean z?"
    assert where(err) == (3, 8)


def test_unknown_dim():
    err = error("dim n\ninput x : [n, k]\ny = x", graphc.NameResolutionError)
    assert "unknown dim k" in err.message and "dim k" in err.message
    assert where(err) == (2, 15)
    err = error("dim batch\ninput x : [bacth]\ny = x", graphc.NameResolutionError)
    assert "did you mean batch?" in err.message
    assert where(err) == (2, 12)


def test_a_value_is_not_a_dim():
    err = error("input x : [3]\nparam W : [x, 3]\ny = W", graphc.ShapeError)
    assert "x is a value, not a dim" in err.message
    assert where(err) == (2, 12)


@pytest.mark.parametrize(
    ("text", "name", "first", "at"),
    [
        ("input x : [3]\ninput x : [3]\ny = x", "x", 1, (2, 7)),
        ("input x : [3]\ny = x\ny = 2 x", "y", 2, (3, 1)),
        ("dim n = 2\ndim n = 3\ny = 1", "n", 1, (2, 5)),
        ("input x : [3]\nf(t) = t\nf(t) = 2 t\ny = f(x)", "f", 2, (3, 1)),
        ("input x : [3]\nx = 2 x", "x", 1, (2, 1)),
        ("input x, y, x : [3]\nz = x", "x", 1, (1, 13)),
    ],
)
def test_redefinition(text, name, first, at):
    err = error(text, graphc.NameResolutionError)
    assert err.message == f"{name} is already defined (line {first}); each name is defined once"
    assert where(err) == at


def test_a_builtin_name_cannot_be_redefined():
    err = error("input x : [3]\nexp = 2 x", graphc.NameResolutionError)
    assert "exp is a built-in function" in err.message
    assert where(err) == (2, 1)
    err = error("param σ : []\ny = σ", graphc.NameResolutionError)
    assert "σ is a built-in function" in err.message


def test_a_function_used_as_a_value():
    err = error("input x : [3]\ny = tanh + x", graphc.NameResolutionError)
    assert err.message == "tanh is a function; call it: tanh(…)"
    assert where(err) == (2, 5)


def test_an_ambiguous_split_is_an_error_listing_the_readings():
    err = error("input a, b, ab, c : []\nr = 2 abc", graphc.NameResolutionError)
    assert "abc" in err.message and "(a b c; ab c)" in err.message
    assert where(err) == (2, 7)


def test_program_that_computes_nothing():
    err = error("input x : [3]\n# nothing", graphc.NameResolutionError)
    assert "computes nothing" in err.message


# ---------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------


def test_matrix_vector_mismatch_names_both_operands_and_dims():
    text = "dim n = 4\ndim d = 50\ninput x : [200]\nparam W : [n, 5*d]\nz = W x + 1"
    err = error(text, graphc.ShapeError)
    assert err.message == "cannot multiply W [4×250] by x [200]: 250 ≠ 200"
    assert where(err) == (5, 5)


def test_unbound_dims_appear_by_name():
    text = "dim n, m\ninput x : [n]\nparam W : [n, m]\nz = W x"
    err = error(text, graphc.ShapeError)
    assert err.message == "cannot multiply W [n×m] by x [n]: m ≠ n"


def test_matrix_matrix_mismatch():
    err = error("param A : [2, 3]\nparam B : [2, 3]\nC = A @ B", graphc.ShapeError)
    assert err.message == "cannot multiply A [2×3] by B [2×3]: 3 ≠ 2"
    assert where(err) == (3, 5)


def test_mismatch_deep_in_an_expression_points_at_it():
    text = "input x : [3]\nparam W : [4, 5]\nparam u : [4]\ns = uᵀ tanh(W x)"
    err = error(text, graphc.ShapeError)
    assert err.message == "cannot multiply W [4×5] by x [3]: 5 ≠ 3"
    assert where(err) == (4, 13)


def test_column_times_column_suggests_the_inner_product():
    err = error("input x : [3]\ninput y : [3]\ns = x y", graphc.ShapeError)
    assert "cannot multiply x [3] by y [3]" in err.message
    assert "both are column vectors" in err.message
    assert "xᵀ y" in err.message
    assert where(err) == (3, 5)


def test_inner_product_suggestion_parenthesises_compound_operands():
    text = "param W : [3, 3]\ninput x : [3]\ninput y : [3]\ns = W x y"
    err = error(text, graphc.ShapeError)
    assert "cannot multiply W x [3] by y [3]" in err.message
    assert "(W x)ᵀ y" in err.message
    err = error("input x : [3]\ninput y : [3]\ns = x (x + y)", graphc.ShapeError)
    assert "cannot multiply x [3] by x + y [3]" in err.message
    assert "xᵀ (x + y)" in err.message
    err = error("input x : [3]\ninput y : [3]\ns = exp(x) @ y", graphc.ShapeError)
    assert "exp(x)ᵀ y" in err.message


def test_column_times_matrix_suggests_a_row():
    err = error("param A : [3, 3]\ninput x : [3]\ns = x A", graphc.ShapeError)
    assert "cannot multiply x [3] by A [3×3]" in err.message
    assert "xᵀ A" in err.message


def test_matrix_times_row():
    err = error("param A : [3, 3]\ninput x : [3]\ns = A xᵀ", graphc.ShapeError)
    assert "cannot multiply A [3×3] by xᵀ [3]ᵀ" in err.message


def test_row_plus_column():
    err = error("input x : [3]\ninput y : [3]\ns = xᵀ + y", graphc.ShapeError)
    assert err.message.startswith("cannot add xᵀ [3]ᵀ and y [3]")
    assert "column" in err.message and "row" in err.message and "transpose" in err.message
    assert where(err) == (3, 5)


@pytest.mark.parametrize(
    ("op", "verb"), [("+", "add"), ("-", "subtract"), ("∘", "multiply"), ("/", "divide")]
)
def test_elementwise_mismatch(op, verb):
    err = error(f"input x : [3]\ninput y : [4]\ns = 2 x {op} y", graphc.ShapeError)
    assert err.message == f"cannot {verb} 2 x [3] and y [4]: 3 ≠ 4"
    assert where(err) == (3, 5)


def test_broadcast_along_the_wrong_axis():
    err = error("input X : [2, 3]\ninput v : [4]\ns = X + v", graphc.ShapeError)
    assert "cannot add X [2×3] and v [4]" in err.message
    assert "4 is neither 2 nor 3" in err.message and "whose dim it shares" in err.message
    # shapes are symbolic: a vector of dim m meets an [n×k] matrix even if sizes agree later
    err = error("dim n, k, m\ninput X : [n, k]\ninput v : [m]\ns = X + v", graphc.ShapeError)
    assert "m is neither n nor k" in err.message


def test_concatenation_mismatch():
    err = error("input x : [3]\ns = [x; xᵀ]", graphc.ShapeError)
    assert "cannot stack x [3] and xᵀ [3]ᵀ" in err.message
    err = error("input A : [2, 3]\ninput B : [2, 4]\ns = [A; B]", graphc.ShapeError)
    assert "cannot stack A [2×3] and B [2×4]" in err.message and "3 and 4" in err.message


@pytest.mark.parametrize("fn", ["inv", "det", "logdet", "tr", "trace", "diag"])
def test_square_matrix_builtins(fn):
    err = error(f"input A : [2, 3]\ns = {fn}(A)", graphc.ShapeError)
    assert "square matrix" in err.message and "A [2×3]" in err.message
    assert where(err) == (2, 5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("softmax(2)", "softmax takes a vector or a matrix, not 2 []"),
        ("dot(x, y)", "dot needs operands of one shape: x [3] and y [4]"),
        ("outer(A, x)", "outer takes two vectors: A [2×3] and x [3]"),
    ],
)
def test_builtin_shape_errors(call, message):
    err = error(f"input A : [2, 3]\ninput x : [3]\ninput y : [4]\ns = {call}", graphc.ShapeError)
    assert err.message == message
    assert where(err) == (4, 5)


def test_axis_errors():
    err = error("input A : [2, 3]\ns = sum(A, 2)", graphc.ShapeError)
    assert err.message == "axis 2 is out of range for rank 2"
    assert where(err) == (2, 12)
    err = error("input A : [2, 3]\ns = mean(A, 0.5)", graphc.ShapeError)
    assert "integer" in err.message
    assert where(err) == (2, 13)


@pytest.mark.parametrize(
    ("shape", "column"), [("[2, 3, 4]", 11), ("[2×3×4]", 11), ("[1, 1, 1, 1]", 11)]
)
def test_rank_three_shapes(shape, column):
    err = error(f"dim n = 2\ninput T : {shape}\ns = T", graphc.ShapeError)
    assert "rank" in err.message and "scalars, vectors and matrices" in err.message
    assert where(err) == (2, column)


def test_negative_dim():
    err = error("dim n = 2 - 5\ninput x : [n]\ns = x", graphc.ShapeError)
    assert "negative" in err.message
    assert where(err) == (1, 5)


# ---------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("exp(x, x)", "exp takes 1 argument, not 2"),
        ("max(x, x, x)", "max takes 1 or 2 arguments, not 3"),
        ("max(x, x, axis=0)", "max takes 1 or 2 arguments, not 3"),
        ("sum(x, 0, 0)", "sum takes 1 or 2 arguments, not 3"),
        ("mean(x, 0, 0)", "mean takes 1 or 2 arguments, not 3"),
        ("outer(x)", "outer takes 2 arguments, not 1"),
        ("σ(x, x)", "σ takes 1 argument, not 2"),
    ],
)
def test_builtin_arity(call, message):
    err = error(f"input x : [3]\ns = 2 {call}", graphc.NameResolutionError)
    assert err.message == message
    assert where(err) == (2, 7)


def test_user_function_arity():
    err = error("input x : [3]\nf(a, b) = a + b\ns = f(x)", graphc.NameResolutionError)
    assert err.message == "f takes 2 arguments, not 1"
    assert where(err) == (3, 5)


def test_calling_a_value_with_two_arguments():
    err = error("param W : [3, 3]\ninput x : [3]\ns = W(x, x)", graphc.NameResolutionError)
    assert "W is a value, not a function" in err.message
    assert "2" in err.message
    assert where(err) == (3, 5)


def test_repeated_function_parameter():
    err = error("f(a, a) = a\ns = 1", graphc.NameResolutionError)
    assert err.message == "parameter a appears twice in f"
    assert where(err) == (1, 6)


def test_recursion():
    err = error("input x : [3]\nf(t) = f(t) + 1\ns = f(x)", graphc.NameResolutionError)
    assert "f calls itself" in err.message and "cannot recurse" in err.message
    assert where(err) == (2, 8)


def test_mutual_recursion():
    text = "input x : [3]\nf(t) = g(t)\ng(t) = 2 f(t)\ns = f(x)"
    err = error(text, graphc.NameResolutionError)
    assert "f calls itself" in err.message
    assert where(err) == (3, 10)


def test_an_error_in_a_function_body_names_the_call():
    text = "param W : [3, 4]\ninput x : [3]\ninput y : [4]\nf(t) = W t\na = f(y)\ns = f(x)"
    err = error(text, graphc.ShapeError)
    assert err.message.startswith("cannot multiply W [3×4] by t [3]: 4 ≠ 3")
    assert "in f called at line 6:5" in err.message
    assert where(err) == (4, 8)


# ---------------------------------------------------------------------------
# Syntax
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "at"),
    [
        ("input x : [3]\ny = x $ 2", "unexpected character '$'", (2, 7)),
        ("input x : [3]\ny = x ! 2", "unexpected character '!'", (2, 7)),
        ("input x : [3]\ny = 1.2.3 x", "malformed number '1.2.3'", (2, 5)),
        ("input x : [2.5]", "a size is a whole number or a dim, not 2.5", (1, 12)),
        ("dim n = 1e3\ninput x : [n]", "a size is a whole number or a dim, not 1e3", (1, 9)),
        ("dim n\ninput x : [n, 04.0]", "a size is a whole number or a dim, not 04.0", (2, 15)),
    ],
)
def test_unexpected_characters(text, message, at):
    err = error(text, graphc.ParseError)
    assert err.message == message
    assert where(err) == at


@pytest.mark.parametrize(
    ("text", "found", "expected", "at"),
    [
        ("input x : [3]\ny = x +", "end of input", "a name", (2, 8)),
        ("input x : [3]\ny = x +\nz = 1", "end of line", "a name", (2, 8)),
        ("input x : [3]\ny = (x", "end of input", "')'", (2, 7)),
        ("input x : [3]\ny = [x; x", "end of input", "']'", (2, 10)),
        ("input x : [3]\ny = ‖x", "end of input", "'‖'", (2, 7)),
        ("input x : [3]\ny = x )", "')'", "end of line", (2, 7)),
        ("input x : [3]\ny = = x", "'='", "a name", (2, 5)),
        ("input x : [3]\ny = sum()", "')'", "a name", (2, 9)),
        ("input x : 3\ny = x", "number '3'", "'['", (1, 11)),
        ("dim n = -3", "'-'", "an integer", (1, 9)),
        ("input x : [3]\n  y x = 2", "name 'x'", "'='", (2, 5)),
        ("input x : [3]\ny = x ∘ ⊙ x", "'⊙'", "a name", (2, 9)),
        ("input x : [3]\ny = x · @ x", "'@'", "a name", (2, 9)),
        ("input x : [3]\ny = ᵀx", "'ᵀ'", "a name", (2, 5)),
    ],
)
def test_unexpected_tokens(text, found, expected, at):
    err = error(text, graphc.ParseError)
    assert err.message.startswith(f"unexpected {found}; expected ")
    assert expected in err.message
    assert where(err) == at


def test_expected_lists_only_what_could_follow():
    # Neither a norm bar nor the end of a line can start a dimension or a shape.
    for text in ("dim n = -3", "input x : 3"):
        err = error(text, graphc.ParseError)
        assert "‖" not in err.message and "end of line" not in err.message


def test_the_error_position_counts_unicode_characters():
    err = error("input x : [3]\nσσ = ‖x‖ ∘ $", graphc.ParseError)
    assert where(err) == (2, 12)


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


def test_render_prints_location_source_line_and_caret():
    text = "dim n = 4\ninput x : [200]\nparam W : [n, 250]\nz = W x\n"
    err = error(text, graphc.ShapeError)
    lines = err.render().splitlines()
    assert lines[0] == "bad.gc:4:5: error: cannot multiply W [4×250] by x [200]: 250 ≠ 200"
    assert lines[1] == "    z = W x"
    assert lines[2].index("^") == lines[1].index("W")
    assert len(lines) == 3


def test_render_without_a_file_name():
    with pytest.raises(graphc.GraphcError) as info:
        graphc.parse("y = qq")
    assert info.value.render().startswith("<string>:1:5: error: unknown name qq")


def test_deep_nesting_is_not_a_python_recursion_error():
    for depth in (3000, 10_000):
        text = "input x : []\ny = " + "(" * depth + "-x" + ")" * depth
        assert graphc.parse(text).run(x=2.0) == pytest.approx(-2.0)


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(GRAPHC_HOME), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "graphc", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )


BAD_PROGRAMS = {
    "shape": (
        "dim n = 3\ninput x : [200]\nparam W : [n, 250]\n\nz = tanh(W x)\n",
        5,
        10,
        "cannot multiply W [3×250] by x [200]: 250 ≠ 200",
    ),
    "name": ("input x : [3]\ny = 2 x + 1 + zz\n", 2, 15, "unknown name zz"),
    "parse": ("input x : [3]\ny = x ∘ ∘ x\n", 2, 9, "unexpected '∘'"),
    "character": ("input x : [3]\ny = x ? 1\n", 2, 7, "unexpected character '?'"),
}


@pytest.mark.parametrize("kind", sorted(BAD_PROGRAMS))
def test_cli_reports_program_errors(tmp_path, kind):
    text, line, column, message = BAD_PROGRAMS[kind]
    (tmp_path / "bad.gc").write_text(text, encoding="utf-8")
    result = cli("compile", "bad.gc", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 3, result.stderr
    head = f"bad.gc:{line}:{column}: error: "
    assert lines[0].startswith(head + message), lines[0]
    source_line = text.splitlines()[line - 1]
    assert lines[1].strip() == source_line.strip()
    indent = lines[1].index(source_line)
    assert lines[2].index("^") == indent + column - 1
    assert set(lines[2].strip()) <= {"^", "~"}


def test_cli_errors_in_every_command(tmp_path):
    (tmp_path / "bad.gc").write_text("input x : [3]\ny = x x\n", encoding="utf-8")
    for args in (["graph", "bad.gc"], ["check", "bad.gc"], ["compile", "bad.gc", "-o", "out.py"]):
        result = cli(*args, cwd=tmp_path)
        assert result.returncode == 2, args
        assert result.stderr.startswith("bad.gc:2:5: error: cannot multiply x [3] by x [3]")
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.py").exists()


def test_cli_missing_file(tmp_path):
    result = cli("compile", "nowhere.gc", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("graphc: error: nowhere.gc")
    assert "no such file" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_non_utf8_file(tmp_path):
    (tmp_path / "latin1.gc").write_bytes("input x : [3]\ny = 2 x # café\n".encode("latin-1"))
    result = cli("compile", "latin1.gc", cwd=tmp_path)
    assert result.returncode == 2
    # At the byte, on its line: "café" is c a f then 0xE9, column 14 of line 2.
    assert result.stderr.splitlines() == [
        "latin1.gc:2:14: error: not UTF-8 text: invalid continuation byte (byte 27 of the file)",
        "    y = 2 x # caf\ufffd",
        "                 ^",
    ]


def test_cli_reads_lines_as_parse_does(tmp_path):
    # A lone CR is not a line break to the grammar; the CLI must count lines the same way.
    text = "param x : []\ry = 2 qq\r\nz = 1\n"
    (tmp_path / "cr.gc").write_bytes(text.encode("utf-8"))
    with pytest.raises(graphc.GraphcError) as info:
        graphc.parse(text)
    result = cli("compile", "cr.gc", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"cr.gc:{info.value.line}:{info.value.column}: error: ")


def test_cli_output_into_a_missing_directory(tmp_path):
    (tmp_path / "ok.gc").write_text("param w : [3]\ninput x : [3]\ns = wᵀ x\n", encoding="utf-8")
    result = cli("compile", "ok.gc", "-o", "missing/out.py", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("graphc: error: missing/out.py")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "missing").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.gc"]


def test_cli_failed_compile_leaves_an_existing_output_alone(tmp_path):
    (tmp_path / "bad.gc").write_text("input x : [3]\ny = x +\n", encoding="utf-8")
    (tmp_path / "out.py").write_text("# previous\n", encoding="utf-8")
    result = cli("compile", "bad.gc", "-o", "out.py", cwd=tmp_path)
    assert result.returncode == 2
    assert (tmp_path / "out.py").read_text(encoding="utf-8") == "# previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.gc", "out.py"]


def test_cli_compile_writes_output(tmp_path):
    (tmp_path / "ok.gc").write_text("param w : [3]\ninput x : [3]\ns = wᵀ x\n", encoding="utf-8")
    result = cli("compile", "ok.gc", "-o", "out.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "def value_and_grad" in (tmp_path / "out.py").read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.gc", "out.py"]


# ---------------------------------------------------------------------------
# Differentiation requests
# ---------------------------------------------------------------------------


def test_the_gradient_of_a_vector_output():
    fn = graphc.compile("param w : [3]\nv = 2 w")
    with pytest.raises(graphc.DifferentiationError) as info:
        fn.grad(w=[1.0, 2.0, 3.0])
    assert "needs a scalar output" in info.value.message and "v is [3]" in info.value.message


def test_differentiating_by_an_unknown_name():
    with pytest.raises(graphc.GraphcError) as info:
        graphc.compile("param w : [3]\ns = sum(w)", wrt=["ww"])
    assert "ww" in info.value.message and "w" in info.value.message


def test_an_unknown_mode():
    with pytest.raises(graphc.GraphcError) as info:
        graphc.compile("param w : [3]\ns = sum(w)", mode="sideways")
    assert "sideways" in info.value.message


@pytest.mark.parametrize(
    "text, message",
    [
        ("param x : [3]\ny = sum(x, 1e400)", "axis inf is out of range for rank 1"),
        ("param x : [3]\ny = sum(x, -1e400)", "axis -inf is out of range for rank 1"),
        ("param x : [3, 3]\ny = sum(mean(x, 1e400))", "axis inf is out of range for rank 2"),
        ("param x : [3]\ny = sum(x, 1e300)", "axis 1e+300 is out of range for rank 1"),
    ],
)
def test_a_literal_too_large_for_an_axis_is_a_located_error(text, message):
    with pytest.raises(graphc.ShapeError) as err:
        graphc.compile(text)
    assert err.value.message == message and err.value.line == 2


@pytest.mark.parametrize("text", ["(x^2)^1e400", "(x^1e400)^2", "1e400 x + (x^-1e400)^(-1e400)"])
def test_infinite_exponents_compile(text):
    # (x^p)^q folds only for whole p and q; inf is neither, and int(inf) would overflow
    fn = graphc.compile(f"param x : [3]\ny = sum({text})")
    assert "value_and_grad" in fn.module_functions


@pytest.mark.parametrize(
    "text, where, message",
    [
        (
            "param ℓ : []\nparam l : []\ny = ℓ l",
            (2, 7),
            "l is the same name as ℓ (line 1) to Python, which reads both as l;"
            " choose another name",
        ),
        (
            "param x₁ : []\nx1 = x₁^2",
            (2, 1),
            "x1 is the same name as x₁ (line 1) to Python, which reads both as x1;"
            " choose another name",
        ),
        ("dim ℌ\nparam H : [ℌ]\ny = sum(H)", (2, 7), "H is the same name as ℌ (line 1)"),
    ],
)
def test_two_names_python_reads_as_one_are_an_error_at_the_second(text, where, message):
    with pytest.raises(graphc.NameResolutionError) as err:
        graphc.parse(text)
    assert (err.value.line, err.value.column) == where
    assert err.value.message.startswith(message)


def test_one_did_you_mean_for_every_name_graphc_suggests():
    from graphc.errors import did_you_mean

    assert did_you_mean("wieght", ["x", "weight"]) == "; did you mean weight?"
    assert did_you_mean("X", ["x", "y"]) == "; did you mean x?"  # a difference of case
    assert did_you_mean("l", ["ℓ", "k"]) == "; did you mean ℓ?"  # as Python reads names
    assert did_you_mean("zzz", ["weight"]) == ""
    # the front end, wrt=, the feed check and graphc check --dim all use it
    with pytest.raises(graphc.NameResolutionError, match="did you mean weight"):
        graphc.compile("param weight : []\ny = 2 wieght")
    with pytest.raises(graphc.NameResolutionError, match="did you mean weight"):
        graphc.compile("param weight : []\ny = 2 weight", wrt="wieght")
    with pytest.raises(graphc.FeedError, match="did you mean weight"):
        graphc.compile("param weight : []\ny = 2 weight")(wieght=1.0)
