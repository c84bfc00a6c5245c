"""Emitted code does exactly the arithmetic the program says, whatever its names and text.

A program may name its variables ``print``, ``eval``, ``__import__``, ``np``,
``value`` or ``lambda``, and its comments may hold quotes, backslashes and
NUL bytes.  The emitted module must still import, compute the right numbers,
and do nothing else: these tests read its syntax tree (every call is a
NumPy function or one of the module's own; every name read is a parameter,
a local it assigned, a function of the module or ``np``), run it with no
builtins at all, and check that number literals round-trip exactly.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import graphc
from graphc.emit_numpy import python_name

HOSTILE = [
    "print", "eval", "exec", "open", "__import__", "__builtins__", "__name__", "np", "numpy",
    "value", "value_and_grad", "jvp", "vjp", "lambda", "import", "class", "match", "case",
    "_", "type", "t1", "t2", "delta", "dJ_dx", "os", "sys", "self", "x_dot", "J_bar", "len",
]  # fmt: skip
MODULE_FUNCTIONS = {"value", "value_and_grad", "jvp", "vjp"}
MODULE_FUNCTIONS |= {f"{name}_dict" for name in MODULE_FUNCTIONS}  # each takes one dict


def hostile_program() -> str:
    """Params named after everything Python holds dear; intermediates too."""
    params = ", ".join(HOSTILE)
    product = " ".join(HOSTILE[:10])
    total = " + ".join(HOSTILE[10:])
    return (
        f'# a comment with quotes """ \'\'\' \\ and a trailing quote"\n'
        f"param {params} : []\n"
        f"range = {product}\n"
        f"dict = tanh(range) + {total}\n"
        "dJ_drange = dict * dict + range\n"
        "output dJ_drange\n"
    )


def feed_for(names: list[str], seed: int = 0) -> dict[str, float]:
    r = np.random.default_rng(seed)
    return {name: float(r.uniform(0.5, 1.5)) for name in names}


def expected_value(f: dict[str, float]) -> float:
    """The program's meaning, written out by hand."""
    r = math.prod(f[n] for n in HOSTILE[:10])
    d = math.tanh(r) + sum(f[n] for n in HOSTILE[10:])
    return d * d + r


def audit(source: str, params: set[str]) -> None:
    """The module imports numpy only, and its functions call numpy or each other only."""
    tree = ast.parse(source)
    docstring, imports, *functions = tree.body
    assert isinstance(docstring, ast.Expr) and isinstance(docstring.value, ast.Constant)
    assert ast.dump(imports) == ast.dump(ast.parse("import numpy as np").body[0])
    assert all(isinstance(f, ast.FunctionDef) for f in functions)
    assert {f.name for f in functions} <= MODULE_FUNCTIONS
    for f in functions:
        assert not f.args.vararg and not f.args.kwarg
        if f.name.endswith("_dict"):  # f_dict(feed, /, out=None, accumulate=False)
            assert [a.arg for a in f.args.posonlyargs] == ["feed"] and not f.args.kwonlyargs
            own = {"feed"} | {a.arg for a in f.args.args}
            assert own <= {"feed", "out", "accumulate"}
        else:
            assert not f.args.args and not f.args.posonlyargs  # keywords only
            own = {a.arg for a in f.args.kwonlyargs}
            assert params <= own  # jvp and vjp take seeds besides
        assert not any(keyword.iskeyword(p) for p in own)
        assert not (own & (MODULE_FUNCTIONS | {"np"})), "a parameter shadows the module"
        assigned = {t.id for n in ast.walk(f) for t in _targets(n) if isinstance(t, ast.Name)}
        # f_dict's first lines read the parameters from the dict: x = feed['x']
        unpacked = {
            target.id
            for n in f.body
            if isinstance(n, ast.Assign)
            and isinstance(n.value, ast.Subscript)
            and isinstance(n.value.value, ast.Name)
            and n.value.value.id == "feed"
            for target in n.targets
            if isinstance(target, ast.Name)
        }
        own |= unpacked
        assigned -= unpacked
        assert not (assigned & set(dir(builtins))), "a local shadows a builtin"
        assert not (assigned & (MODULE_FUNCTIONS | {"np"})), "a local shadows the module"
        for node in ast.walk(f):
            assert not isinstance(node, (ast.Import, ast.ImportFrom, ast.Global, ast.Lambda))
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                assert node.id in own | assigned | MODULE_FUNCTIONS | {"np"}, node.id
            if isinstance(node, ast.Call):
                fn = node.func
                is_numpy = isinstance(fn, ast.Attribute) and _root(fn) == "np"
                is_own = isinstance(fn, ast.Name) and fn.id in MODULE_FUNCTIONS
                assert is_numpy or is_own, ast.unparse(node)
            if isinstance(node, ast.Attribute):
                assert _root(node) == "np" or node.attr in {"shape", "T"}, ast.unparse(node)


def _targets(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.Assign):
        return [t for target in node.targets for t in ast.walk(target)]
    if isinstance(node, ast.For):
        return list(ast.walk(node.target))
    return []


def _root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def run_without_builtins(source: str) -> dict:
    """Execute the module with no builtins but an ``__import__`` that yields numpy only."""

    def only_numpy(name, *args, **kwargs):
        assert name == "numpy", f"the module imports {name}"
        return np

    namespace: dict = {"__builtins__": {"__import__": only_numpy}}
    exec(compile(source, "<emitted>", "exec"), namespace)  # noqa: S102 - the point of the test
    return namespace


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_hostile_names_do_exactly_the_arithmetic(mode):
    text = hostile_program()
    fn = graphc.compile(text, mode=mode)
    params = set(fn.compiled.param_names.values())
    assert params == {python_name(n) for n in HOSTILE} - {
        "np",
        "value",
        "value_and_grad",
        "jvp",
        "vjp",
    } | {"np_1", "value_1", "value_and_grad_1", "jvp_1", "vjp_1"}
    audit(fn.source, params)

    f = feed_for(HOSTILE)
    # Through graphc's own entry points, under the program's names ...
    value, grads = fn.value_and_grad(**f)
    assert value == pytest.approx(expected_value(f), rel=1e-12)
    assert set(grads) == set(HOSTILE)
    for name in HOSTILE:  # ... each partial against central differences of the meaning
        h = 1e-6
        up, down = dict(f), dict(f)
        up[name] += h
        down[name] -= h
        fd = (expected_value(up) - expected_value(down)) / (2 * h)
        assert grads[name] == pytest.approx(fd, rel=1e-6), name

    # ... and the module on its own, with no builtins to call.
    namespace = run_without_builtins(fn.source)
    keywords = {fn.compiled.param_names[n]: v for n, v in f.items()}
    assert namespace["value"](**keywords) == pytest.approx(value, rel=1e-15)
    raw_value, raw_grads = namespace["value_and_grad"](**keywords)
    assert raw_value == pytest.approx(value, rel=1e-15)
    assert raw_grads == pytest.approx(grads, rel=1e-12)


def test_hostile_names_keep_their_public_spelling():
    fn = graphc.compile(
        "param print, lambda, np, __import__, x₁ : []\ny = print lambda np __import__ x₁"
    )
    signature = fn.source.split("def value(")[1].split(")")[0]
    # Python can take print as a keyword; it cannot take lambda, and np is the module's.
    assert signature == "*, print, lambda_, np_1, __import___, x1"


def test_program_text_stays_inert_in_the_docstring():
    comment = 'quotes """ and \'\'\' and \\ and \\n and a NUL \x00, a CR \r, a \u2028 separator"'
    text = f'# {comment}\nparam x : []\ny = 2 x  # ends with a quote"\n'
    for filename in ['evil""".gc', "back\\slash.gc", "new\nline.gc"]:
        fn = graphc.compile(text, filename=filename)
        namespace = run_without_builtins(fn.source)
        assert comment in namespace["__doc__"]
        assert filename in namespace["__doc__"]
        assert namespace["value"](x=1.5) == 3.0


def test_a_lone_surrogate_in_a_comment_stays_text():
    text = "# \ud800 half a pair\nparam x : []\ny = x * x"
    fn = graphc.compile(text)
    assert "\\ud800" in fn.source
    fn.source.encode("utf-8")  # the module can be written to a file
    assert "\ud800" in run_without_builtins(fn.source)["__doc__"]


finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(finite)
@example(0.1)
@example(5e-324)  # the smallest subnormal
@example(1.7976931348623157e308)  # the largest double
@example(2.0**53 + 2)  # an integer a float holds but not every neighbour
@example(1 / 3)
def test_number_literals_round_trip_exactly(c):
    for written in (repr(abs(c)), f"{abs(c):.30e}"):
        sign = "-" if math.copysign(1.0, c) < 0 else ""
        fn = graphc.compile(f"param x : []\ny = x * {sign}({written})")
        value, grads = fn.value_and_grad(x=1.0)
        assert grads["x"] == c or (c == 0 and grads["x"] == 0)
        assert value == c or (c == 0 and value == 0)


def test_literals_too_large_for_a_double_are_infinite():
    fn = graphc.compile("param x : []\ny = x + 1e999")
    assert "np.inf" in fn.source
    assert fn(x=1.0) == math.inf
