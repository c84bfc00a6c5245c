"""The language of SPEC §1, construct by construct.

Each construct is checked two ways: its spellings (ASCII and Unicode) lower to
the *same* interned graph node, and evaluating the program with
``graphc.parse(text).run(**feed)`` agrees with NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc import builtins, ops

RNG = np.random.default_rng(20240611)
X = RNG.normal(size=3)
Y = RNG.normal(size=3)
V = RNG.normal(size=4)
W = RNG.normal(size=(4, 3))
A = RNG.normal(size=(3, 3)) + 3 * np.eye(3)  # well conditioned, det > 0
B = RNG.normal(size=(3, 3))
P = np.abs(RNG.normal(size=3)) + 0.5  # positive, for log and sqrt
S = 0.7  # a scalar

DECLS = """\
input x : [3]
input y : [3]
input v : [4]
param W : [4, 3]
param A : [3, 3]
param B : [3, 3]
input p : [3]
param s : []
"""
FEED = {"x": X, "y": Y, "v": V, "W": W, "A": A, "B": B, "p": P, "s": S}


def output(text: str) -> graphc.Program:
    """Parse; the caller keeps the program alive so its nodes stay interned."""
    return graphc.parse(text)


def node(program: graphc.Program):
    return program.graph.outputs[program.output]


def run(body: str, **extra):
    return graphc.parse(DECLS + body).run(**{**FEED, **extra})


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# ---------------------------------------------------------------------------
# Spellings: the same math is the same node
# ---------------------------------------------------------------------------

SAME_GRAPH = {
    "transpose": ["r = xᵀ y", "r = x' y", "r = x.T y", "r = x.T @ y", "r = xᵀ·y"],
    "sigmoid": ["r = σ(W x)", "r = sigmoid(W x)", "r = σ(W @ x)", "r = sigmoid(W·x)"],
    "hadamard": ["r = x ∘ y", "r = x ⊙ y", "r = x * y"],
    "product": ["r = W x", "r = W @ x", "r = W · x", "r = W(x)", "r = Wx", "r = W (x)"],
    "minus": ["r = x − y", "r = x - y", "r = x−y"],
    "norm": ["r = ‖x‖", "r = norm(x)", "r = ‖ x ‖"],
    "squared norm": ["r = 2 ‖v‖^2", "r = 2 norm(v)^2", "r = 2 (‖v‖^2)", "r = 2 * ‖v‖ ^ 2"],
    "trace": ["r = tr(A)", "r = trace(A)"],
    "stop": ["r = stop(x) ∘ x", "r = detach(x) * x"],
    "unary minus": ["r = -x^2", "r = -(x^2)", "r = −x^2", "r = − x ^ 2"],
    "outer": ["r = x yᵀ", "r = outer(x, y)", "r = x @ y'"],
    "inner": ["r = xᵀ y", "r = dot(x, y)"],
    "separators": ["a = x + y; r = 2 a", "a = x + y\nr = 2 a", "a = x + y # comment\n\nr = 2 a"],
    "brackets": ["r = [x;\n     y]", "r = [x; y]", "r = [x\n; y]"],
    "parens": ["r = (x\n  + y)", "r = x + y"],
    "user function": [
        "f(t) = tanh(t)\nr = f(W x)",
        "r = tanh(W x)",
        "g(a, b) = tanh(a b)\nr = g(W, x)",
    ],
    "mathematical reading": ["r = uᵀf(Wx+b)", "r = u' f(W x + b)", "r = u.T @ tanh(W @ x + b)"],
}


@pytest.mark.parametrize("construct", sorted(SAME_GRAPH))
def test_spellings_build_the_same_node(construct):
    decls = DECLS + "param b : [4]\nparam u : [4]\n"
    if construct == "mathematical reading":
        decls += "f(t) = tanh(t)\n"
    programs = [output(decls + text) for text in SAME_GRAPH[construct]]
    first = node(programs[0])
    for text, program in zip(SAME_GRAPH[construct][1:], programs[1:]):
        assert node(program) is first, f"{text!r} lowers to a different graph"


def test_different_math_is_a_different_node():
    one, other = output(DECLS + "r = x + y"), output(DECLS + "r = x - y")
    assert node(one) is not node(other)


def test_shape_spellings_declare_the_same_variable():
    spellings = [
        "dim n = 2\ndim m = 3\nparam M : [n×m]\nr = M",
        "dim n = 2\ndim m = 3\nparam M : [n, m]\nr = M",
        "dim n = 2\ndim m = 3\nparam M : [n × m]\nr = M",
        "param M : [2, 3]\nr = M",
        "dim d = 1\nparam M : [2*d, d+2]\nr = M",
    ]
    programs = [output(t) for t in spellings]
    assert all(node(p) is node(programs[0]) for p in programs)
    assert str(programs[0].variables["M"]) == "[2×3]"

    scalars = [output("param c : []\nr = c"), output("param c : scalar\nr = c")]
    assert node(scalars[0]) is node(scalars[1])
    assert scalars[0].variables["c"] == scalars[1].variables["c"]


def test_unicode_minus_in_dims():
    program = graphc.parse("dim n\ninput x : [n − 1]\nr = sum(x)")
    assert program.run(x=np.ones(4)) == pytest.approx(4.0)


# ---------------------------------------------------------------------------
# Declarations and dims
# ---------------------------------------------------------------------------


def test_bound_dims_and_dim_expressions():
    program = graphc.parse(
        "dim d = 2\ndim n = 3\ninput x : [5*d]\nparam W : [n, 5*d]\nparam b : [n+1]\n"
        "z = [W x; 0] + b"
    )
    assert str(program.variables["x"]) == "[10]"
    assert str(program.variables["W"]) == "[3×10]"
    assert str(program.variables["b"]) == "[4]"
    x, w, b = RNG.normal(size=10), RNG.normal(size=(3, 10)), RNG.normal(size=4)
    np.testing.assert_allclose(program.run(x=x, W=w, b=b), np.append(w @ x, 0.0) + b)


def test_unbound_dims_are_bound_by_the_first_array():
    program = graphc.parse("dim n, B\ninput X : [B, n]\nparam w : [n]\nr = X w")
    for batch, n in [(2, 3), (5, 1), (4, 4)]:
        x, w = RNG.normal(size=(batch, n)), RNG.normal(size=n)
        np.testing.assert_allclose(program.run(X=x, w=w), x @ w)
    with pytest.raises(graphc.FeedError, match="n = 3 from X"):
        program.run(X=np.ones((2, 3)), w=np.ones(4))


def test_unbound_dim_expressions_are_solved():
    program = graphc.parse("dim n\ninput x : [n]\ninput y : [2*n+1]\nr = sum(y) + n")
    assert program.run(x=np.ones(3), y=np.ones(7)) == pytest.approx(10.0)
    with pytest.raises(graphc.FeedError, match=r"y: expected shape \[7\]"):
        program.run(x=np.ones(3), y=np.ones(6))


def test_dims_are_values():
    program = graphc.parse("dim n\ninput x : [n]\nr = sum(x) / n")
    assert program.run(x=[1.0, 2.0, 6.0]) == pytest.approx(3.0)


def test_scalar_params():
    assert graphc.parse("param c : []\nr = 3 c^2").run(c=2.0) == pytest.approx(12.0)
    assert graphc.parse("param c : scalar\nr = c + 1").run(c=2) == pytest.approx(3.0)


def test_several_names_in_one_declaration():
    program = graphc.parse("input a, b : [2]\nparam c, d : []\nr = c a + d b")
    result = program.run(a=[1, 2], b=[3, 4], c=2, d=-1)
    np.testing.assert_allclose(result, [-1.0, 0.0])


def test_greek_and_subscript_names():
    program = graphc.parse("input x_in : [3]\nparam δ : []\nparam x₁ : []\nr = δ x_in + x₁")
    np.testing.assert_allclose(program.run(x_in=X, δ=2.0, **{"x₁": 1.0}), 2 * X + 1)


# ---------------------------------------------------------------------------
# Statements: comments, separators, output
# ---------------------------------------------------------------------------


def test_comments_separators_and_blank_lines():
    text = (
        "# a model\n\n"
        "input x : [3]   # data\n"
        "param w : [3]; param c : []\n"
        "\n"
        "z = wᵀ x ; r = z + c   # two statements\n"
        "# trailing comment"
    )
    assert graphc.parse(text).run(x=X, w=Y, c=S) == pytest.approx(Y @ X + S)


def test_crlf_line_endings_and_backslash_continuation():
    text = "input x : [3]\r\nr = 2 *\\\n x\r\n"
    np.testing.assert_allclose(graphc.parse(text).run(x=X), 2 * X)


def test_newlines_inside_brackets_continue_the_line():
    text = DECLS + "r = [\n  xᵀ y;\n  sum(\n    x\n  );\n  ‖x‖\n]"
    np.testing.assert_allclose(run(text[len(DECLS) :]), [X @ Y, X.sum(), np.linalg.norm(X)])


def test_default_output_is_the_last_assignment():
    program = graphc.parse(DECLS + "a = x + y\nb = 2 a\nf(t) = t")
    assert program.output == "b"
    np.testing.assert_allclose(program.run(**FEED), 2 * (X + Y))


def test_output_statement_chooses_the_output():
    program = graphc.parse(DECLS + "output a\na = x + y\nb = 2 a")
    assert program.output == "a"
    np.testing.assert_allclose(program.run(**FEED), X + Y)


def test_intermediate_names_are_kept():
    program = graphc.parse(DECLS + "z = W x\nh = tanh(z)\nr = sum(h)")
    names = set(program.graph.names.values())
    assert {"z", "h"} <= names


# ---------------------------------------------------------------------------
# Expressions against NumPy
# ---------------------------------------------------------------------------

EXPRESSIONS = [
    # elementwise, broadcasting of a vector along a matrix's last axis
    ("x + y", X + Y),
    ("x - y", X - Y),
    ("x − y", X - Y),
    ("A + x", A + X),
    ("x + A", X + A),
    ("A - xᵀ", A - X),
    ("x * y", X * Y),
    ("x ∘ y", X * Y),
    ("x ⊙ y", X * Y),
    ("A ∘ x", A * X),
    ("x / p", X / P),
    ("A / p", A / P),
    ("s + x", S + X),
    ("x / 2", X / 2),
    ("1 / p", 1 / P),
    # products by matrix algebra
    ("s x", S * X),
    ("2 x", 2 * X),
    ("x s", X * S),
    ("s A", S * A),
    ("W x", W @ X),
    ("W @ x", W @ X),
    ("W · x", W @ X),
    ("xᵀ y", X @ Y),
    ("x' y", X @ Y),
    ("x yᵀ", np.outer(X, Y)),
    ("v xᵀ", np.outer(V, X)),
    ("A B", A @ B),
    ("A Bᵀ", A @ B.T),
    ("xᵀ A", X @ A),
    ("xᵀ A y", X @ A @ Y),
    ("vᵀ W", V @ W),
    ("Wᵀ v", W.T @ V),
    ("W A x", W @ A @ X),
    ("W (x + y)", W @ (X + Y)),
    ("W(x + y)", W @ (X + Y)),
    ("s (x + y)", S * (X + Y)),
    ("2 xᵀ x", 2 * X @ X),
    ("(x + y)ᵀ (x - y)", (X + Y) @ (X - Y)),
    # negation and powers
    ("-x", -X),
    ("-x^2", -(X**2)),
    ("−x^2", -(X**2)),
    ("(-x)^2", X**2),
    ("-2 x", -2 * X),
    ("x^3", X**3),
    ("p^0.5", np.sqrt(P)),
    ("p^-1", 1 / P),
    ("p^x", P**X),
    ("p^2^2", P**4),
    ("2^x", 2.0**X),
    ("s^2 x", S**2 * X),
    ("1e-4 x + .5 y", 1e-4 * X + 0.5 * Y),
    # transposes
    ("xᵀ", X),
    ("Aᵀ", A.T),
    ("A'", A.T),
    ("A.T", A.T),
    ("Aᵀᵀ", A),
    ("(A B)ᵀ", (A @ B).T),
    # norms
    ("‖x‖", np.linalg.norm(X)),
    ("norm(x)", np.linalg.norm(X)),
    ("‖A‖", np.linalg.norm(A)),
    ("norm(A)", np.linalg.norm(A)),
    ("2 ‖v‖^2", 2 * np.linalg.norm(V) ** 2),
    ("‖x‖ ‖y‖", np.linalg.norm(X) * np.linalg.norm(Y)),
    ("‖W x - v‖^2", np.linalg.norm(W @ X - V) ** 2),
    ("‖x - ‖y‖ x‖", np.linalg.norm(X - np.linalg.norm(Y) * X)),
    # concatenation
    ("[x; y]", np.concatenate([X, Y])),
    ("[x; y; v]", np.concatenate([X, Y, V])),
    ("[s; 2; xᵀ y]", np.array([S, 2.0, X @ Y])),
    ("[x; s]", np.append(X, S)),
    ("[xᵀ; yᵀ]", np.vstack([X, Y])),
    ("[A; xᵀ]", np.vstack([A, X])),
    ("[A; B]", np.vstack([A, B])),
]


@pytest.mark.parametrize(("expr", "expected"), EXPRESSIONS, ids=[e for e, _ in EXPRESSIONS])
def test_expression(expr, expected):
    result = run(f"r = {expr}")
    assert np.shape(result) == np.shape(expected)
    np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-12)


def test_result_types_follow_matrix_algebra():
    def t(expr):
        p = graphc.parse(DECLS + f"r = {expr}")
        return str(p.graph.outputs["r"].type)

    assert t("W x") == "[4]"
    assert t("xᵀ y") == "[]"
    assert t("x yᵀ") == "[3×3]"
    assert t("xᵀ") == "[3]ᵀ"
    assert t("xᵀ A") == "[3]ᵀ"
    assert t("s x") == "[3]"
    assert t("A B") == "[3×3]"
    assert t("Wᵀ") == "[3×4]"


# ---------------------------------------------------------------------------
# Built-in functions against NumPy
# ---------------------------------------------------------------------------


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


BUILTINS = [
    ("exp(x)", np.exp(X)),
    ("log(p)", np.log(P)),
    ("sqrt(p)", np.sqrt(P)),
    ("sin(x)", np.sin(X)),
    ("cos(x)", np.cos(X)),
    ("tanh(x)", np.tanh(X)),
    ("sigmoid(x)", sigmoid(X)),
    ("σ(x)", sigmoid(X)),
    ("σ(s)", sigmoid(S)),
    ("relu(x)", np.maximum(X, 0)),
    ("softplus(x)", np.log1p(np.exp(X))),
    ("abs(x)", np.abs(X)),
    ("max(x, y)", np.maximum(X, Y)),
    ("min(x, y)", np.minimum(X, Y)),
    ("max(x, 0)", np.maximum(X, 0)),
    ("max(A, x)", np.maximum(A, X)),
    ("sum(x)", X.sum()),
    ("sum(A)", A.sum()),
    ("sum(A, 0)", A.sum(axis=0)),
    ("sum(W, 1)", W.sum(axis=1)),
    ("sum(x, 0)", X.sum()),
    ("mean(x)", X.mean()),
    ("mean(W)", W.mean()),
    ("mean(W, 0)", W.mean(axis=0)),
    ("mean(W, 1)", W.mean(axis=1)),
    ("logsumexp(x)", np.log(np.exp(X).sum())),
    ("logsumexp(A)", np.log(np.exp(A).sum())),
    ("softmax(x)", _softmax(X)),
    ("softmax(1000 x)", _softmax(1000 * X)),
    ("dot(x, y)", X @ Y),
    ("dot(A, B)", np.sum(A * B)),
    ("outer(x, y)", np.outer(X, Y)),
    ("outer(v, x)", np.outer(V, X)),
    ("tr(A)", np.trace(A)),
    ("trace(A)", np.trace(A)),
    ("diag(x)", np.diag(X)),
    ("diag(A)", np.diag(A)),
    ("diag(A) + 1", np.diag(A) + 1),
    ("inv(A)", np.linalg.inv(A)),
    ("det(A)", np.linalg.det(A)),
    ("logdet(A)", np.log(np.linalg.det(A))),
    ("stop(x)", X),
    ("detach(x)", X),
    ("norm(v)", np.linalg.norm(V)),
    ("exp(log(p))", P),
    ("tanh(W x + v)", np.tanh(W @ X + V)),
    # axes, reductions, normalisers
    ("sum(W, axis=0)", W.sum(axis=0)),
    ("sum(W, axis=-1)", W.sum(axis=1)),
    ("mean(W, axis=1)", W.mean(axis=1)),
    ("max(W)", W.max()),
    ("min(x)", X.min()),
    ("max(W, axis=0)", W.max(axis=0)),
    ("min(W, axis=1)", W.min(axis=1)),
    ("max(x, axis=0)", X.max()),
    ("logsumexp(W, axis=1)", np.log(np.exp(W).sum(axis=1))),
    ("logsumexp(W, 0)", np.log(np.exp(W).sum(axis=0))),
    (
        "logsumexp(1000 W, axis=1)",
        1000 * W.max(1) + np.log(np.exp(1000 * (W - W.max(1)[:, None])).sum(1)),
    ),
    ("softmax(W, axis=1)", np.exp(W) / np.exp(W).sum(axis=1)[:, None]),
    ("softmax(W)", np.exp(W) / np.exp(W).sum(axis=1)[:, None]),
    ("softmax(W, 0)", np.exp(W) / np.exp(W).sum(axis=0)),
    ("softmax(x, axis=0)", _softmax(X)),
    ("W - logsumexp(W, axis=1)", W - np.log(np.exp(W).sum(axis=1))[:, None]),
    ("W - mean(W, axis=1)", W - W.mean(axis=1)[:, None]),
    ("W - mean(W, axis=0)", W - W.mean(axis=0)),
    # constants
    ("eye(3)", np.eye(3)),
    ("ones(3)", np.ones(3)),
    ("ones(2, 3)", np.ones((2, 3))),
    ("zeros(4)", np.zeros(4)),
    ("zeros(4, 2)", np.zeros((4, 2))),
    ("A + s eye(3)", A + S * np.eye(3)),
    ("x ones(3)ᵀ", np.outer(X, np.ones(3))),
    ("2 π s", 2 * np.pi * S),
    ("pi", np.pi),
    # selection
    ("where(x > 0, x, y)", np.where(X > 0, X, Y)),
    ("where(x ≤ y, 1, 0)", (X <= Y) * 1.0),
    ("where(W > 0, W, v)", np.where(W > 0, W, V[:, None])),
    ("clip(x, -0.5, 0.5)", np.clip(X, -0.5, 0.5)),
    ("clip(W, -s, s)", np.clip(W, -S, S)),
]


@pytest.mark.parametrize(("expr", "expected"), BUILTINS, ids=[e for e, _ in BUILTINS])
def test_builtin(expr, expected):
    result = run(f"r = {expr}")
    assert np.shape(result) == np.shape(expected)
    np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-12)


def test_logsumexp_does_not_overflow():
    assert run("r = logsumexp(1000 x)") == pytest.approx(
        1000 * X.max() + np.log(np.exp(1000 * (X - X.max())).sum())
    )


# Built-ins that are one operator of the table (tests/test_ops.py checks the operator).
ONE_OPERATOR = sorted(
    name
    for name in builtins.all_names()
    if any(builtins.lookup(name).build is f for f in vars(ops).values())
)


# The shape each built-in's arguments are declared with in the test below.
ARGUMENT_SHAPES = {"pick": ["param a0 : [3, 3]", "input a1 : [3] int"]}


@pytest.mark.parametrize("name", ONE_OPERATOR)
def test_a_builtin_spelling_builds_its_operator(name):
    arity = builtins.lookup(name).arities[0]
    params = [f"a{i}" for i in range(arity)]
    declared = ARGUMENT_SHAPES.get(name, [f"param {a} : [3, 3]" for a in params])
    program = graphc.parse(
        "".join(f"{line}\n" for line in declared) + f"y = {name}({', '.join(params)})"
    )
    found = {n.attr("name"): n for n in program.graph.nodes() if n.op.name == "var"}
    assert program.graph.outputs["y"] is builtins.lookup(name).build(*(found[a] for a in params))


def test_every_builtin_is_tested():
    # tests/test_docs.py checks that docs/language.md lists exactly these names; the
    # built-ins composed of several operators need a NumPy oracle in BUILTINS above.
    tested = {expr.split("(")[0] for expr, _ in BUILTINS}
    untested = set(builtins.all_names()) - tested - set(ONE_OPERATOR)
    assert not untested, f"add a NumPy oracle for {sorted(untested)} to BUILTINS here"
    assert {"exp", "tr", "σ"} <= set(ONE_OPERATOR)
    assert not {"mean", "softmax", "diag", "norm"} & set(ONE_OPERATOR)


# ---------------------------------------------------------------------------
# User functions
# ---------------------------------------------------------------------------


def test_user_functions_are_inlined():
    program = graphc.parse(
        DECLS + "f(t) = tanh(t)\nsq(a) = a ∘ a\nlin(M, z, c) = M z + c\n"
        "r = sum(sq(f(lin(W, x, v))))"
    )
    assert program.run(**FEED) == pytest.approx(np.sum(np.tanh(W @ X + V) ** 2))
    ops = {n.op.name for n in _nodes(node(program))}
    assert "call" not in ops and "tanh" in ops


def test_function_parameters_shadow_program_names():
    program = graphc.parse(DECLS + "f(x) = 2 x\nr = f(y)")
    np.testing.assert_allclose(program.run(**FEED), 2 * Y)


def test_function_body_sees_program_names_and_splits_its_parameters():
    program = graphc.parse(DECLS + "f(t) = Wt\nr = f(x)")
    np.testing.assert_allclose(program.run(**FEED), W @ X)


def _nodes(root):
    seen, stack = [], [root]
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.append(n)
            stack.extend(n.args)
    return seen


# ---------------------------------------------------------------------------
# The mathematical reading: Wx is W x
# ---------------------------------------------------------------------------


def test_whiteboard_score_compiles_and_evaluates():
    text = (
        "dim d = 2\ndim n = 4\ninput x : [5*d]\nparam W : [n, 5*d]\nparam b : [n]\n"
        "param u : [n]\nf(t) = tanh(t)\ns = uᵀf(Wx+b)"
    )
    program = graphc.parse(text)
    x, w, b, u = (
        RNG.normal(size=10),
        RNG.normal(size=(4, 10)),
        RNG.normal(size=4),
        RNG.normal(size=4),
    )
    assert program.run(x=x, W=w, b=b, u=u) == pytest.approx(u @ np.tanh(w @ x + b))
    fn = graphc.compile(text)
    value, grads = fn.value_and_grad(x=x, W=w, b=b, u=u)
    delta = u * (1 - np.tanh(w @ x + b) ** 2)
    assert value == pytest.approx(u @ np.tanh(w @ x + b))
    np.testing.assert_allclose(grads["W"], np.outer(delta, x))
    np.testing.assert_allclose(grads["b"], delta)


def test_split_reads_three_factors():
    np.testing.assert_allclose(run("r = sWx"), S * W @ X)
    np.testing.assert_allclose(run("r = xᵀAy"), X @ A @ Y)


def test_a_declared_name_wins_over_a_split():
    program = graphc.parse("input a, b, ab : []\nr = ab")
    assert program.run(a=2.0, b=3.0, ab=10.0) == pytest.approx(10.0)
    program = graphc.parse("input a, b : []\nr = ab")
    assert program.run(a=2.0, b=3.0) == pytest.approx(6.0)


def test_an_intermediate_name_wins_over_a_split():
    program = graphc.parse("input W : [2, 2]\ninput x : [2]\nWx = 2 x\nr = Wx")
    np.testing.assert_allclose(program.run(W=np.eye(2), x=[1, 2]), [2.0, 4.0])


def test_an_ambiguous_split_lists_the_readings():
    with pytest.raises(graphc.NameResolutionError) as info:
        graphc.parse("input a, b, ab, c : []\nr = abc")
    err = info.value
    assert "a b c" in err.message and "ab c" in err.message
    assert (err.line, err.column) == (2, 5)


# ---------------------------------------------------------------------------
# Precedence
# ---------------------------------------------------------------------------

PRECEDENCE = [
    ("x + y ∘ p", X + Y * P),
    ("x - y - p", X - Y - P),
    ("x / p ∘ y", X / P * Y),
    ("-x ∘ y", -X * Y),
    ("s x + y", S * X + Y),
    ("x^2 ∘ y", X**2 * Y),
    ("2 x^2", 2 * X**2),
    ("-s^2", -(S**2)),
    ("p^-2", P**-2.0),
    ("xᵀ y^2", X @ Y**2),
    ("W x ∘ v", (W @ X) * V),
]


@pytest.mark.parametrize(("expr", "expected"), PRECEDENCE, ids=[e for e, _ in PRECEDENCE])
def test_precedence(expr, expected):
    np.testing.assert_allclose(run(f"r = {expr}"), expected, rtol=1e-12)


def test_scalar_unary_minus_binds_looser_than_power():
    assert graphc.parse("r = -2^2").run() == pytest.approx(-4.0)
    assert graphc.parse("r = (-2)^2").run() == pytest.approx(4.0)
    assert graphc.parse("r = 2^3^2").run() == pytest.approx(512.0)


def test_numbers():
    assert graphc.parse("r = 1e-4 + 2.5 + .5 + 3. + 1E2").run() == pytest.approx(106.0001)
