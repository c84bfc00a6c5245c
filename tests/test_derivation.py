"""`graphc derive` and ``fn.derivation()``: derivatives printed as mathematics.

The printed gradients of the seed examples are compared with the hand
derivations of the specification (SPEC.md §6), written out below; every
example prints in both modes with one equation per statement of the
emitted function; the LaTeX form is drawn by matplotlib's mathtext (a real
renderer: a formula it cannot parse raises); and the printer's parentheses
are minimal and sufficient on expressions built operator by operator.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import unicodedata
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc import ops
from graphc.__main__ import main
from graphc.compiler import derivative_locals
from graphc.derivation import derivation
from graphc.derive import derive
from graphc.mathprint import LatexPrinter, UnicodePrinter
from graphc.shapes import SCALAR, matrix, vector

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.gc"))


def _derived(path: Path, mode: str = "reverse"):
    lowered = graphc.parse(path.read_text(encoding="utf-8"), str(path)).lowered
    wrt = None if lowered.params else [v.attr("name") for v in lowered.variables]
    return derive(lowered, wrt, mode)


# ---- the seed examples, against their hand derivations ----------------------------------

# Each gradient as the hand derivation writes it (SPEC.md §6), in graphc's notation.
HAND = {
    "ner_window.gc": [
        ("f", "tanh(W x + b)"),
        ("s", "uᵀ f"),
        ("J", "σ(s)"),
        ("σ′(s)", "J (1 − J)"),  # σ′ = σ (1 − σ)
        ("δ", "σ′(s) u ∘ (1 − f ∘ f)"),  # δ = σ′(s) u ∘ (1 − h²)
        ("∂J/∂W", "δ xᵀ"),
        ("∂J/∂b", "δ"),
        ("∂J/∂u", "σ′(s) f"),
    ],
    "quadratic.gc": [("y", "2 xᵀ x"), ("∂y/∂x", "4 x")],  # ∇x = 4x
    "sum.gc": [("y", "sum(x)"), ("∂y/∂x", "𝟏")],  # ∇x = ones
    "sum_of_squares.gc": [("y", "sum(x ∘ x)"), ("∂y/∂x", "2 x")],  # ∇x = 2x
    "stop.gc": [("u", "stop(x ∘ x)"), ("z", "sum(u ∘ x)"), ("∂z/∂x", "u")],  # ∇x = x∘x
    "least_squares.gc": [  # ∇w = 2 Xᵀ (X w − y)
        ("t1", "X w − y"),
        ("z", "sum(t1 ∘ t1)"),
        ("∂z/∂w", "2 Xᵀ t1"),
    ],
    "dot_product.gc": [("s", "wᵀ x"), ("∂s/∂w", "x")],  # ∇w = x, the shape convention
    "two_variables.gc": [("y", "x1² + 2 x2²"), ("∂y/∂x1", "2 x1"), ("∂y/∂x2", "4 x2")],
    "cube.gc": [("y", "x³"), ("∂y/∂x", "3 x²")],
    "log_sin.gc": [  # ∇ = (1/x1 + x2, x1 − cos x2)
        ("f", "log(x1) + x1 x2 − sin(x2)"),
        ("∂f/∂x1", "x2 + 1 / x1"),
        ("∂f/∂x2", "x1 − cos(x2)"),
    ],
    "sigmoid_jacobian.gc": [  # the Jacobian is diag(σ′(z)): its vjp is h̄ ∘ σ′(z)
        ("h", "σ(z)"),
        ("h\u0304ᵀ ∂h/∂z", "h\u0304 ∘ h ∘ (1 − h)"),
    ],
}


@pytest.mark.parametrize("name", sorted(HAND))
def test_a_seed_derivative_prints_as_its_hand_derivation(name: str):
    assert derivation(_derived(ROOT / "examples" / name)).equations() == HAND[name]


def test_graphc_derive_prints_the_ner_derivation():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["derive", "examples/ner_window.gc"]) == 0
    assert out.getvalue() == "".join(f"{lhs} = {rhs}\n" for lhs, rhs in HAND["ner_window.gc"])


def test_forward_mode_prints_tangents():
    shown = derivation(_derived(ROOT / "examples" / "ner_window.gc", "forward")).unicode()
    assert shown.splitlines()[-2:] == [
        unicodedata.normalize(
            "NFC", "s\u0307 = u\u0307ᵀ f + uᵀ ((W\u0307 x + b\u0307) ∘ (1 − f ∘ f))"
        ),
        unicodedata.normalize("NFC", "J\u0307 = s\u0307 J (1 − J)"),
    ]


def test_wrt_chooses_the_gradients():
    lowered = graphc.parse((ROOT / "examples" / "ner_window.gc").read_text()).lowered
    shown = derivation(derive(lowered, ["W", "x"])).equations()
    assert shown[-2:] == [("∂J/∂W", "δ xᵀ"), ("∂J/∂x", "Wᵀ δ")]  # ∇x = Wᵀ δ
    alone = derivation(derive(lowered, ["x"])).equations()  # δ is used once: written inline
    assert alone[-1] == ("∂J/∂x", "Wᵀ (σ′(s) u ∘ (1 − f ∘ f))")


# ---- every example, both modes -------------------------------------------------------


@pytest.mark.parametrize("mode", ["reverse", "forward"])
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_prints_one_equation_per_statement(path: Path, mode: str):
    derived = _derived(path, mode)
    shown = derivation(derived)
    equations = shown.equations()
    statements = derivative_locals(derived)
    results = len(derived.wrt) if mode == "reverse" else 1
    assert len(statements) <= len(equations) <= len(statements) + results
    lefts = [lhs for lhs, _ in equations]
    assert len(set(lefts)) == len(lefts), f"a name defined twice: {lefts}"
    text = shown.unicode()
    for python in ("np.", "@", "**", "*", "_dot", "_bar", "dJ_"):
        assert python not in text, f"{python!r} in\n{text}"
    latex = shown.latex()
    assert latex.count("\n") == text.count("\n") and "∘" not in latex and "ᵀ" not in latex


@pytest.mark.parametrize("mode", ["reverse", "forward"])
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_the_latex_of_every_example_renders(path: Path, mode: str):
    mathtext = pytest.importorskip("matplotlib.mathtext")
    for lhs, rhs in derivation(_derived(path, mode)).equations("latex"):
        mathtext.math_to_image(f"${lhs} = {rhs}$", io.BytesIO(), format="png")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_graphc_derive_works_on_every_example(path: Path):
    for argv in ([], ["--format", "latex"], ["--mode", "forward"]):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["derive", str(path), *argv]) == 0
        assert " = " in out.getvalue()


def test_graphc_derive_reports_a_bad_wrt(capsys):
    assert main(["derive", "examples/ner_window.gc", "--wrt", "q"]) == 2
    assert "cannot differentiate by q" in capsys.readouterr().err


# ---- the printer: parentheses and notation, operator by operator ------------------------

n = vector(3)
a, b, c = (ops.var(name=x, kind="param", type=n) for x in "abc")
s = ops.var(name="s", kind="param", type=SCALAR)
X = ops.var(name="X", kind="param", type=matrix(3, 3))
M = ops.var(name="M", kind="param", type=matrix(3, 4))

CASES = [
    (a - (b - c), "a − (b − c)", r"a - \left(b - c\right)"),
    ((a - b) - c, "a − b − c", "a - b - c"),
    (a + (b + c), "a + b + c", "a + b + c"),
    (a * (b + c), "a ∘ (b + c)", r"a \circ \left(b + c\right)"),
    (a * b * c, "a ∘ b ∘ c", r"a \circ b \circ c"),
    (-(a + b), "−(a + b)", r"-\left(a + b\right)"),
    (a + -b, "a + (−b)", r"a + \left(-b\right)"),
    (a * s, "s a", r"s\,a"),
    (X @ (a * b), "X (a ∘ b)", r"X\,\left(a \circ b\right)"),
    ((X @ a) * b, "X a ∘ b", r"X\,a \circ b"),
    (ops.inv(X).T, "X⁻ᵀ", "X^{-T}"),
    (ops.inv(X) @ a, "X⁻¹ a", r"X^{-1}\,a"),
    ((X @ X).T, "(X X)ᵀ", r"\left(X\,X\right)^{T}"),
    (a @ b.T, "a bᵀ", r"a\,b^{T}"),
    (ops.scale_rows(a, M), "a ∘ M", r"a \circ M"),
    (ops.reduce_sum(M, axis=1), "M 𝟏", r"M\,\mathbf{1}"),
    (ops.reduce_sum(M, axis=0), "Mᵀ 𝟏", r"M^{T}\,\mathbf{1}"),
    (ops.broadcast(s, type=n, axis=None), "s 𝟏", r"s\,\mathbf{1}"),
    (a / (s + s), "a / (s + s)", r"\frac{a}{s + s}"),
    (a**2.0, "a∘²", r"a^{\circ 2}"),
    (s**0.5, "s^0.5", "s^{0.5}"),
    (ops.sqrt(s + s), "√(s + s)", r"\sqrt{s + s}"),
    (ops.greater(a, b), "[a > b]", r"\left[a > b\right]"),
    (ops.abs_(a), "|a|", r"\left|a\right|"),
    (ops.take(a, start=ops.shapes.Dim.of(0), stop=ops.shapes.Dim.of(2)), "a[0:2]", "a_{0:2}"),
    (ops.logdet(X), "log det(X)", r"\log\det\left(X\right)"),
    (ops.hconcat(M, a), "[M, a]", r"\left[M, a\right]"),
    (
        ops.take_cols(M, start=ops.shapes.Dim.of(1), stop=ops.shapes.Dim.of(3)),
        "M[:, 1:3]",
        "M_{:, 1:3}",
    ),
    (ops.amax(M, axis=1), "max(M, axis=1)", r"\max\left(M, \mathrm{axis}=1\right)"),
    (ops.sigmoid(a) * 2.0, "2 σ(a)", r"2\,\sigma\left(a\right)"),
    (ops.trace(X @ X), "tr(X X)", r"\mathrm{tr}\left(X\,X\right)"),
]


@pytest.mark.parametrize(("node", "unicode", "latex"), CASES, ids=[c[1] for c in CASES])
def test_the_printer_writes_minimal_parentheses(node, unicode: str, latex: str):
    def show(printer):
        exprs = {}
        from graphc.ir import topological_order

        for n_ in topological_order([node]):
            exprs[n_] = printer.apply(n_, [exprs[x] for x in n_.args])
        return exprs[node].text

    assert show(UnicodePrinter()) == unicode
    assert show(LatexPrinter()) == latex
    mathtext = pytest.importorskip("matplotlib.mathtext")
    mathtext.math_to_image(f"${latex}$", io.BytesIO(), format="png")


def test_names_print_as_sympy_prints_them():
    p, q = UnicodePrinter(), LatexPrinter()
    assert [p.symbol(x) for x in ("delta", "delta_1", "x1", "x_2", "W", "lambda")] == [
        "δ",
        "δ₁",
        "x1",
        "x₂",
        "W",
        "λ",
    ]
    assert [q.symbol(x) for x in ("delta", "x1", "lr", "α")] == [
        r"\delta",
        "x_{1}",
        r"\mathrm{lr}",
        r"\alpha",
    ]


# ---- Python: fn.derivation(), and the graph in Jupyter -----------------------------------


def test_fn_derivation_is_unicode_text_and_latex_for_jupyter():
    fn = graphc.compile((ROOT / "examples" / "ner_window.gc").read_text())
    shown = fn.derivation()
    assert str(shown).splitlines()[-1] == "∂J/∂u = σ′(s) f"
    latex = shown._repr_latex_()
    assert latex.startswith(r"$$\begin{aligned}") and latex.endswith(r"\end{aligned}$$")
    assert r"\frac{\partial J}{\partial W} &= \delta\,x^{T}" in latex
    value, grads = fn.value_and_grad(
        x=np.ones(250), W=np.zeros((100, 250)), b=np.zeros(100), u=np.ones(100)
    )
    assert np.allclose(grads["u"], 0.25 * np.zeros(100))  # σ′(0) f with f = tanh(0) = 0


@pytest.fixture
def no_graphviz(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name, *args, **kw: None)


@pytest.fixture
def fake_graphviz(monkeypatch, tmp_path: Path):
    """A ``dot`` that answers any DOT text with an SVG naming how many lines it read."""
    dot = tmp_path / "dot"
    dot.write_text(
        "#!/bin/sh\nprintf '<svg>%s lines</svg>' \"$(wc -l | tr -d ' ')\"\n", encoding="utf-8"
    )
    dot.chmod(dot.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr("shutil.which", lambda name, *args, **kw: str(dot))


def _objects():
    text = (ROOT / "examples" / "ner_window.gc").read_text()
    return graphc.parse(text), graphc.compile(text)


def test_without_graphviz_jupyter_shows_how_to_get_it(no_graphviz):
    for obj in _objects():
        assert obj._repr_svg_() is None  # Jupyter's "not available"
        shown = obj._repr_html_()
        assert "apt install graphviz" in shown and "conda install graphviz" in shown
        assert "<pre>" in shown and "tanh" in shown  # the listing, as text


@pytest.mark.skipif(os.name == "nt", reason="the fake dot is a shell script")
def test_with_graphviz_jupyter_shows_the_drawing(fake_graphviz):
    program, fn = _objects()
    for obj in (program, fn):
        svg = obj._repr_svg_()
        assert svg is not None and svg.startswith("<svg>")
        assert obj._repr_html_() is None  # else Jupyter would prefer the HTML
    assert program._repr_svg_() == f"<svg>{program.to_dot().count(chr(10))} lines</svg>"
    assert "dJ_ds" in fn.derivative_listing()  # the derivative graph, named as the module


def test_a_real_graphviz_draws_svg():
    import shutil

    if shutil.which("dot") is None:
        pytest.skip("Graphviz is not installed")
    assert "<svg" in graphc.parse("param x : []\ny = sin(x)")._repr_svg_()


# ---- the printed text means what the graph computes ------------------------------------
#
# An oracle independent of the printer: a reader of the notation (a small parser
# that knows only the precedence stated in docs/conventions.md: superscripts, then
# juxtaposition, then ∘, then + and −) evaluates the printed text with NumPy
# (vectors as columns), and must get the graph's value.  Random expressions over
# products, sums, Hadamard products, transposes and functions check that the
# parentheses the printer leaves out are never needed.

READER_FUNCTIONS = {"tanh": np.tanh, "σ": lambda x: 1.0 / (1.0 + np.exp(-x)), "sum": np.sum}


def _tokens(text: str) -> list[str]:
    import re

    return re.findall(r"[A-Za-z][A-Za-z0-9]*|σ|[0-9.]+|ᵀ|⁻¹|⁻ᵀ|[²³]|\S", text)


def read(text: str, values: dict) -> np.ndarray:
    """Evaluate printed Unicode mathematics (the notation's precedence, nothing else)."""
    tokens, pos = _tokens(text), [0]

    def peek():
        return tokens[pos[0]] if pos[0] < len(tokens) else None

    def take():
        pos[0] += 1
        return tokens[pos[0] - 1]

    def scalar(v):
        v = np.asarray(v, dtype=float)
        return float(v.reshape(())) if v.size == 1 and v.ndim == 2 and v.shape == (1, 1) else v

    def times(a, b):
        if np.ndim(a) == 0 or np.ndim(b) == 0:
            return a * b
        return scalar(a @ b)

    def atom():
        tok = take()
        if tok == "(":
            value = expr()
            assert take() == ")"
            return value
        if tok in READER_FUNCTIONS:
            assert take() == "("
            value = expr()
            assert take() == ")"
            return READER_FUNCTIONS[tok](value)
        if tok[0].isdigit():
            return float(tok)
        return values[tok]

    def factor():
        value = atom()
        while peek() in ("ᵀ", "⁻¹", "⁻ᵀ", "²", "³"):
            sup = take()
            if sup == "ᵀ":
                value = np.transpose(value)
            elif sup in ("²", "³"):
                value = value ** {"²": 2, "³": 3}[sup]
            else:
                value = np.linalg.inv(value)
                value = value.T if sup == "⁻ᵀ" else value
        return value

    def starts_factor(tok):
        return tok is not None and (tok == "(" or tok[0].isalnum() or tok == "σ")

    def product():
        negative = peek() == "−"
        if negative:
            take()
        value = factor()
        while starts_factor(peek()):
            value = times(value, factor())
        return -value if negative else value

    def hadamard():
        value = product()
        while peek() == "∘":
            take()
            value = value * product()
        return value

    def expr():
        value = hadamard()
        while peek() in ("+", "−"):
            sign = take()
            right = hadamard()
            value = value + right if sign == "+" else value - right
        return value

    result = expr()
    assert pos[0] == len(tokens), f"unread: {tokens[pos[0] :]}"
    return result


def _random_expression(rng: np.random.Generator, kind: str, depth: int):
    """A random node of kind 'scalar', 'vector' or 'matrix' over the leaves above."""
    leaves = {"scalar": [s, ops.const(2.0), ops.const(0.5)], "vector": [a, b, c], "matrix": [X]}
    if depth == 0 or rng.random() < 0.2:
        return leaves[kind][rng.integers(len(leaves[kind]))]

    def sub(k):
        return _random_expression(rng, k, depth - 1)

    choices = {
        "scalar": [
            lambda: sub("scalar") + sub("scalar"),
            lambda: sub("scalar") - sub("scalar"),
            lambda: sub("scalar") * sub("scalar"),
            lambda: -sub("scalar"),
            lambda: sub("vector").T @ sub("vector"),
            lambda: ops.tanh(sub("scalar")),
            lambda: ops.reduce_sum(sub("vector"), axis=None),
        ],
        "vector": [
            lambda: sub("vector") + sub("vector"),
            lambda: sub("vector") - sub("vector"),
            lambda: sub("vector") * sub("vector"),
            lambda: ops.mul(sub("scalar"), sub("vector")),
            lambda: sub("matrix") @ sub("vector"),
            lambda: -sub("vector"),
            lambda: ops.sigmoid(sub("vector")),
        ],
        "matrix": [
            lambda: sub("matrix") + sub("matrix"),
            lambda: sub("matrix") - sub("matrix"),
            lambda: sub("matrix") * sub("matrix"),
            lambda: sub("matrix") @ sub("matrix"),
            lambda: sub("vector") @ sub("vector").T,
            lambda: sub("matrix").T,
            lambda: -sub("matrix"),
            lambda: ops.scale_rows(sub("vector"), sub("matrix")),
        ],
    }[kind]
    return choices[rng.integers(len(choices))]()


def test_the_printed_text_reads_back_as_the_graph_computes():
    from graphc.evaluate import evaluate
    from graphc.ir import topological_order

    rng = np.random.default_rng(0)
    arrays = {a: rng.normal(size=3), b: rng.normal(size=3), c: rng.normal(size=3)}
    arrays |= {s: np.float64(0.7), X: rng.normal(size=(3, 3))}
    columns = {v.attr("name"): (x[:, None] if np.ndim(x) == 1 else x) for v, x in arrays.items()}
    printer = UnicodePrinter()
    checked = 0
    for i in range(600):
        node = _random_expression(rng, ["scalar", "vector", "matrix"][i % 3], 4)
        if node.op.leaf:
            continue
        shown = {}
        for n_ in topological_order([node]):
            shown[n_] = printer.apply(n_, [shown[x] for x in n_.args])
        (expected,) = evaluate([node], arrays, {})
        got = read(shown[node].text, columns)
        if node.type.is_vector:
            got = np.asarray(got).reshape(-1)
        assert np.allclose(got, expected, rtol=1e-10, atol=1e-12), shown[node].text
        checked += 1
    assert checked > 400
