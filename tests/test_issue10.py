"""Batches, axes, selection, integer data, constants, glyphs and warnings (issue 10),
checked against NumPy and central differences, in both modes."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc.gradcheck import check_gradients, random_feed

ROOT = Path(__file__).resolve().parent.parent


def quiet_compile(text: str, **kw) -> graphc.CompiledFunction:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", graphc.GraphcWarning)
        return graphc.compile(text, **kw)


PROGRAMS = {
    "log softmax of rows": "L = sum(C ∘ (Z − logsumexp(Z, axis=1)))",
    "softmax of columns": "L = sum(C ∘ softmax(Z, axis=0))",
    "softmax by hand": "L = sum(C ∘ exp(Z) / sum(exp(Z), axis=1))",
    "log mean exp": "L = sum(log(mean(exp(Z), axis=1)))",
    "max of rows": "L = sum(max(Z, axis=1) ∘ r)",
    "min of all": "L = min(Z) + max(Z)",
    "centred rows": "L = sum((Z − mean(Z, axis=1))^2)",
    "row scale": "L = sum(tanh(Z ∘ r))",
    "where and clip": "L = sum(where(Z > 0, Z^2, clip(Z, -0.5, 0.5)))",
    "gather and pick": "L = sum(pick(Z − logsumexp(Z, axis=1), y)) + sum(tanh(E[ids]))",
    "window": "L = sum(tanh([E[ids], E[ids]] Wᵀ))",
    "subscripts": "L = sum(Z[0:2, :] ∘ Z[1:3, :]) + Z[0, 1] Z[2, 0] + sum(r[1:])",
    "constants": "L = sum(inv(S + 2 eye(K))) + π sum(r ones(K)ᵀ ∘ Z)",
    "glyphs": "L = ‖r‖² + sum(√(r² + 1)) + sum(S⁻¹)",
}
DECLS = """dim N, K, V
dim d = 2
param Z : [N, K]
param r : [N]
param E : [V, d]
param W : [3, 2*d]
param S : [K, K]
input C : [N, K]
input y : [N] int
input ids : [N] int
"""


@pytest.mark.parametrize("mode", ["reverse", "forward"])
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_gradients_agree_with_central_differences(name, mode):
    fn = quiet_compile(DECLS + PROGRAMS[name], mode=mode)
    feed = random_feed(fn.lowered, {"N": 3, "K": 4, "V": 5}, seed=1)
    feed["S"] = feed["S"] + 3 * np.eye(4)
    report = check_gradients(fn, feed)
    assert report.ok, report.text()


def test_emitted_forms_do_not_overflow():
    Z = np.array([[1000.0, 0.0, -1000.0], [800.0, 800.0, -5.0]])
    for body in [
        "L = sum(Z − logsumexp(Z, axis=1))",
        "L = sum(log(sum(exp(Z), axis=1)))",
        "L = sum(log(sum(exp(Z), axis=0)))",
        "L = sum(log(mean(exp(Z), axis=1)))",
        "L = sum(exp(Z) / sum(exp(Z), axis=1))",
        "L = sum((Zᵀ − log(sum(exp(Z), 1)))ᵀ)",
        "L = sum(softmax(Z, axis=0) ∘ Z)",
    ]:
        fn = quiet_compile("dim N, K\nparam Z : [N, K]\n" + body)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            value, grads = fn.value_and_grad(Z=Z)
        assert np.isfinite(value) and np.all(np.isfinite(grads["Z"])), body


def test_broadcasting_is_decided_by_dim_names_not_sizes():
    # N and K both 3 at run time: the row-dim vector still runs down the columns
    p = graphc.parse("dim N, K\ninput Z : [N, K]\ninput r : [N]\nY = Z − r")
    Z, r = np.zeros((3, 3)), np.array([1.0, 2.0, 3.0])
    assert np.array_equal(p.run(Z=Z, r=r), -r[:, None] * np.ones((1, 3)))
    with pytest.warns(graphc.GraphcWarning, match="ones\\(n\\) rᵀ"):
        square = graphc.parse("dim n\ninput Z : [n, n]\ninput r : [n]\nY = Z − r")
    assert np.array_equal(square.run(Z=Z, r=r), Z - r)


def test_ties_split_the_derivative_of_max_evenly():
    fn = graphc.compile("dim n\nparam x : [n]\nm = max(x)")
    assert np.array_equal(fn.grad(x=np.array([1.0, 3.0, 3.0]))["x"], [0.0, 0.5, 0.5])


def test_repeated_ids_accumulate():
    fn = graphc.compile("dim N, V\nparam E : [V, 2]\ninput ids : [N] int\nL = sum(E[ids])")
    got = fn.grad(E=np.zeros((4, 2)), ids=np.array([1, 1, 3]))["E"]
    assert np.array_equal(got, [[0, 0], [2, 2], [0, 0], [1, 1]])


def test_identity_folds_away_in_derivatives():
    fn = graphc.compile("dim n\nparam A, B : [n, n]\ny = tr(A B)")
    assert "np.eye" not in fn.source


WARNINGS = [
    ("dim T = 2\nparam A : [3, 3]\nB = A^T", "for the transpose write Aᵀ"),
    ("param A : [3, 3]\nB = A^-1", "for the inverse write A⁻¹ or inv(A)"),
    ("param a, b, c : []\nd = a / b c", "reads as (a / b) c"),
    ("param W : [2, 3]\nparam x : [3]\ny = W * x", "for the matrix-vector product write W x"),
    ("param x, u : []\ny = 2 x", "param u is declared but y does not depend on it"),
]


@pytest.mark.parametrize(("text", "message"), WARNINGS)
def test_warnings_from_the_api(text, message):
    with pytest.warns(graphc.GraphcWarning) as caught:
        program = graphc.parse(text)
    assert any(message in str(w.message) for w in caught)
    assert program.graph is not None  # compiled unchanged


def test_no_warning_for_what_says_what_it_means():
    with warnings.catch_warnings():
        warnings.simplefilter("error", graphc.GraphcWarning)
        graphc.parse("dim m, n\nparam W : [m, n]\nparam x : [n]\ny = sum(W ∘ x) + sum(W x)")


def test_the_command_line_prints_warnings_with_a_caret(tmp_path):
    source = tmp_path / "w.gc"
    source.write_text("param W : [2, 3]\nparam x : [3]\ny = sum(W * x)\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "graphc", "compile", str(source), "-o", str(tmp_path / "w.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith(f"{source}:3:9: warning: W * x multiplies entry by entry")
    assert lines[1:3] == ["    y = sum(W * x)", "            ^~~~~"]


# ---- part 8: the names the program gave survive ---------------------------------------------

NAMED = {
    "softmax then its log": ("dim K\nparam z : [K]\ninput y : [K]\np = softmax(z)\nL = −yᵀ log(p)"),
    "softmax of rows then its log": (
        "dim N, K\nparam Z : [N, K]\ninput Y : [N, K]\nP = softmax(Z, axis=1)\nL = −sum(Y ∘ log(P))"
    ),
    "a hand-written log-sum-exp": (
        "dim K\nparam z : [K]\ninput y : [K]\ne = exp(z)\nlse = log(sum(e))\nL = lse − yᵀ z"
    ),
    "a quotient folded into a stable form": (
        "dim K\nparam z : [K]\ninput c : [K]\ne = exp(z)\nq = e / sum(e)\nr = log(q)\nL = cᵀ r"
    ),
}


def _statements(source: str, function: str) -> set[str]:
    body = source.split(f"def {function}(", 1)[1].split("\ndef ", 1)[0]
    return {line.split(" = ", 1)[0].strip() for line in body.splitlines() if " = " in line}


@pytest.mark.parametrize("mode", ["reverse", "forward"])
@pytest.mark.parametrize("name", sorted(NAMED))
def test_every_name_that_feeds_the_output_has_its_line(name, mode):
    text = NAMED[name]
    fn = quiet_compile(text, mode=mode)
    assigned = [line.split(" = ")[0] for line in text.splitlines() if " = " in line][:-1]
    derivative = "value_and_grad" if mode == "reverse" else "jvp"
    for function in ("value", derivative):
        missing = [n for n in assigned if n not in _statements(fn.source, function)]
        assert not missing, f"{function} lost {missing}:\n{fn.source}"
    feed = random_feed(
        fn.lowered,
        {d: n for d, n in (("N", 3), ("K", 4)) if f"{d}," in text or f"dim {d}" in text},
        seed=3,
    )
    report = check_gradients(fn, feed)
    assert report.ok, report.text()
    np.testing.assert_allclose(fn(**feed), graphc.parse(text).run(**feed), rtol=1e-12)


def test_the_softmax_gradient_reads_the_name_p():
    fn = quiet_compile(NAMED["softmax then its log"])
    assert "dL_dz = np.sum(y) * p - y" in fn.source, fn.source
    batch = quiet_compile(NAMED["softmax of rows then its log"])
    assert "dL_dZ = np.sum(Y, axis=1)[:, None] * P - Y" in batch.source, batch.source
    # and it is the gradient: y sums to one, so ∇z = p − y
    z, y = np.array([1.0, -2.0, 0.5, 3.0]), np.array([0.0, 0.0, 1.0, 0.0])
    _, grads = fn.value_and_grad(z=z, y=y)
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose(grads["z"], p - y, rtol=1e-12, atol=1e-15)


# ---- the bare I ------------------------------------------------------------------------------


def test_bare_i_is_the_identity_of_the_size_it_meets():
    text = "dim n\nparam A : [n, n]\nparam λ : []\ninput b : [n]\nJ = ‖inv(A + λ I) b‖²"
    fn = quiet_compile(text)
    by_eye = quiet_compile(text.replace("λ I", "λ eye(n)"))
    rng = np.random.default_rng(0)
    feed = {"A": rng.normal(size=(4, 4)) + 4 * np.eye(4), "λ": 0.7, "b": rng.normal(size=4)}
    np.testing.assert_allclose(fn(**feed), by_eye(**feed), rtol=1e-12)
    for (_, g1), (_, g2) in zip(
        fn.value_and_grad(**feed)[1].items(), by_eye.value_and_grad(**feed)[1].items()
    ):
        np.testing.assert_allclose(g1, g2, rtol=1e-12)
    assert check_gradients(fn, feed).ok
    # a product: I x is x (no identity built); X I is X
    prod = quiet_compile("dim m, n\nparam X : [m, n]\nparam x : [n]\nJ = sum(X I x) + sum(I X)")
    assert "eye(" not in prod.source


@pytest.mark.parametrize(
    "text",
    [
        "dim n\nparam A : [n, n]\nJ = tr(I)",
        "dim n\nparam A : [n, n]\nB = 2 I\nJ = sum(A − B)",
        "dim n = 3\nparam A : [n, 2]\nJ = sum(A + I)",
    ],
)
def test_bare_i_without_a_size_is_an_error(text):
    with pytest.raises(graphc.ShapeError, match="write eye"):
        graphc.parse(text)


def test_a_declared_i_wins():
    fn = quiet_compile("dim n\nparam A : [n, n]\nparam I : []\nJ = sum(A − I)")
    assert fn(A=np.ones((2, 2)), I=0.5) == 2.0
