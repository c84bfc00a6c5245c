"""The matrix-calculus comparison of docs/matrix-calculus.md: graphc against SymPy.

For each standard identity, graphc compiles the program and SymPy
differentiates the same function written with MatrixSymbols, the way a SymPy
user would write it.  Each result is checked at a random point against
central differences of the function (graphc's interpreter, `Program.run`:
an oracle independent of both derivatives).

Run:  python docs/generate.py   (rewrites the generated parts of the pages)
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import graphc
from graphc.symbolic import sympy_module

N = 3  # the size of every dim in the numerical checks
STEP = 1e-6
TOLERANCE = 1e-5  # relative, against central differences


@dataclass(frozen=True)
class Identity:
    title: str  # as on paper
    program: str  # the graphc program
    wrt: str
    by_hand: str  # the textbook answer, for the reader
    sympy_code: str  # how SymPy is asked, for the reader
    sympy: Callable[[Any, dict[str, Any]], Any]  # (sympy, MatrixSymbols) -> expression


IDENTITIES = [
    Identity(
        "∂ log det X / ∂X",
        "dim n = 3\nparam X : [n, n]\ny = logdet(X)\n",
        "X",
        "X⁻ᵀ",
        "diff(log(Determinant(X)), X)",
        lambda sp, s: sp.log(sp.Determinant(s["X"])),
    ),
    Identity(
        "∂ det X / ∂X",
        "dim n = 3\nparam X : [n, n]\ny = det(X)\n",
        "X",
        "det(X) X⁻ᵀ",
        "diff(Determinant(X), X)",
        lambda sp, s: sp.Determinant(s["X"]),
    ),
    Identity(
        "∂ tr(A X B) / ∂X",
        "dim n = 3\ninput A, B : [n, n]\nparam X : [n, n]\ny = tr(A X B)\n",
        "X",
        "Aᵀ Bᵀ",
        "diff(Trace(A*X*B), X)",
        lambda sp, s: sp.Trace(s["A"] * s["X"] * s["B"]),
    ),
    Identity(
        "∂ tr(Xᵀ A X) / ∂X",
        "dim n = 3\ninput A : [n, n]\nparam X : [n, n]\ny = tr(Xᵀ A X)\n",
        "X",
        "(A + Aᵀ) X",
        "diff(Trace(X.T*A*X), X)",
        lambda sp, s: sp.Trace(s["X"].T * s["A"] * s["X"]),
    ),
    Identity(
        "∂ aᵀ X⁻¹ b / ∂X",
        "dim n = 3\ninput a, b : [n]\nparam X : [n, n]\ny = aᵀ inv(X) b\n",
        "X",
        "−X⁻ᵀ a bᵀ X⁻ᵀ",
        "diff(a.T*X.inv()*b, X)",
        lambda sp, s: s["a"].T * s["X"].inv() * s["b"],
    ),
    Identity(
        "∂ ‖X w − y‖² / ∂w",
        "dim n = 3\ninput X : [n, n]\ninput y : [n]\nparam w : [n]\nz = ‖X w − y‖^2\n",
        "w",
        "2 Xᵀ (X w − y)",
        "diff((X*w - y).T*(X*w - y), w)",
        lambda sp, s: (s["X"] * s["w"] - s["y"]).T * (s["X"] * s["w"] - s["y"]),
    ),
    Identity(
        "∂ ‖X w − y‖² / ∂X",
        "dim n = 3\nparam X : [n, n]\ninput y : [n]\ninput w : [n]\nz = ‖X w − y‖^2\n",
        "X",
        "2 (X w − y) wᵀ",
        "diff((X*w - y).T*(X*w - y), X)",
        lambda sp, s: (s["X"] * s["w"] - s["y"]).T * (s["X"] * s["w"] - s["y"]),
    ),
    Identity(
        "∂ uᵀ tanh(W x + b) / ∂W",
        "dim n = 3\ninput x, b, u : [n]\nparam W : [n, n]\ns = uᵀ tanh(W x + b)\n",
        "W",
        "(u ∘ (1 − tanh²(W x + b))) xᵀ",
        "diff(u.T*(W*x + b).applyfunc(tanh), W)",
        lambda sp, s: s["u"].T * (s["W"] * s["x"] + s["b"]).applyfunc(sp.tanh),
    ),
]


@dataclass
class Outcome:
    identity: Identity
    graphc_matrix: str  # graphc's gradient graph, printed by SymPy in matrix form
    graphc_emitted: str  # the emitted value_and_grad
    graphc_right: bool
    sympy_result: str
    sympy_verdict: str  # "yes", or "no: why"


def _feed(program: graphc.Program, seed: int = 0) -> dict[str, np.ndarray]:
    """A random point; square matrices are kept well away from singular."""
    rng = np.random.default_rng(seed)
    feed = {}
    for name, t in program.variables.items():
        shape = tuple(d.value for d in t.dims)
        value = rng.uniform(-1.0, 1.0, size=shape)
        if len(shape) == 2:
            value = value + N * np.eye(N)
        feed[name] = value
    return feed


def _central_differences(program: graphc.Program, feed: dict, wrt: str) -> np.ndarray:
    x = feed[wrt]
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += STEP
        down[i] -= STEP
        grad[i] = (
            program.run(**{**feed, wrt: up}) - program.run(**{**feed, wrt: down})
        ) / (2 * STEP)  # fmt: skip
    return grad


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.max(np.abs(a - b)) <= TOLERANCE * max(1.0, np.max(np.abs(b))))


def _emitted_gradient(source: str) -> str:
    """The emitted value_and_grad as it computes new gradients: without its
    docstring, and without the part that writes into ``out`` buffers."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == "value_and_grad":
            lines = source.splitlines()
            first = node.body[1] if ast.get_docstring(node) is not None else node.body[0]
            body = [lines[node.lineno - 1]]
            for statement in node.body[node.body.index(first) :]:
                if isinstance(statement, ast.If) and ast.unparse(statement.test) == "out is None":
                    returned = lines[statement.body[0].lineno - 1]
                    body.append(returned.replace("    ", "", 1))
                    break
                body += lines[statement.lineno - 1 : statement.end_lineno]
            return "\n".join(body).replace(", out=None, accumulate=False)", ")")
    raise ValueError("no value_and_grad in the emitted code")


def _sympy_value(sp: Any, result: Any, symbols: dict, feed: dict, shape: tuple) -> np.ndarray:
    """SymPy's derivative evaluated at ``feed``; ValueError if it has no value."""
    values = {s: sp.ImmutableMatrix(np.reshape(feed[name], s.shape)) for name, s in symbols.items()}
    evaluated = result.subs(values).doit()  # products of explicit matrices multiply out
    if hasattr(evaluated, "as_explicit") and not isinstance(evaluated, sp.MatrixBase):
        evaluated = evaluated.as_explicit().doit()
    try:
        array = np.array(sp.Array(evaluated).tolist(), dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"no value: {result} is not evaluated") from None
    if array.size != int(np.prod(shape)):
        raise ValueError(f"shape {array.shape}, not {shape}")
    return array


def evaluate(identity: Identity) -> Outcome:
    sp = sympy_module()
    program = graphc.parse(identity.program)
    fn = program.compile(identity.wrt)
    feed = _feed(program)
    oracle = _central_differences(program, feed, identity.wrt)
    graphc_right = _close(np.asarray(fn.grad(**feed)[identity.wrt]), oracle)
    graphc_matrix = graphc.to_sympy(fn, matrix=True).gradients[identity.wrt]

    symbols = {}
    for name, t in program.variables.items():
        rows, cols = (t.dims[0].value, 1) if t.rank == 1 else (t.dims[0].value, t.dims[1].value)
        symbols[name] = sp.MatrixSymbol(name, rows, cols)
    result = sp.diff(identity.sympy(sp, symbols), symbols[identity.wrt])
    if isinstance(result, sp.Derivative) or "Derivative(" in str(result):
        verdict = "no: left unevaluated"
    else:
        try:
            value = _sympy_value(sp, result, symbols, feed, oracle.shape)
        except ValueError as why:
            verdict = f"no: {why}"
        else:
            laid_out = "" if value.shape == oracle.shape else f" (an array of shape {value.shape})"
            value = value.reshape(oracle.shape)
            if _close(value, oracle):
                verdict = "yes" + laid_out
            elif _close(value.T, oracle):
                verdict = "transposed: the entries of the gradient, laid out as its transpose"
            else:
                verdict = "no: wrong values"
    return Outcome(
        identity,
        str(graphc_matrix),
        _emitted_gradient(fn.source),
        graphc_right,
        str(result),
        verdict,
    )


def markdown() -> str:
    sp = sympy_module()
    parts = [
        f"SymPy {sp.__version__}; every dim of size {N} in the numerical checks;"
        " ✓ means the result agrees with central differences at a random point"
        f" (relative {TOLERANCE:g}).",
        "",
        "| derivative | by hand | graphc | right? | SymPy | right? |",
        "|:--|:--|:--|:--|:--|:--|",
    ]
    outcomes = [evaluate(identity) for identity in IDENTITIES]
    for o in outcomes:
        sympy_ok = (
            "✓" + o.sympy_verdict.removeprefix("yes")
            if o.sympy_verdict.startswith("yes")
            else "✗ " + o.sympy_verdict.removeprefix("no: ")
        )
        parts.append(
            f"| {o.identity.title} | {o.identity.by_hand} | `{o.graphc_matrix}` |"
            f" {'✓' if o.graphc_right else '✗'} | `{o.sympy_result}` | {sympy_ok} |"
        )
    for number, o in enumerate(outcomes, 1):
        parts += [
            "",
            f"### {number}. {o.identity.title}",
            "",
            "```gc",
            o.identity.program.rstrip("\n"),
            "```",
            "",
            f"SymPy is asked `{o.identity.sympy_code}` and answers `{o.sympy_result}`.",
            "graphc emits (docstring and `out=` buffers left out):",
            "",
            "```text",
            o.graphc_emitted,
            "```",
        ]
    return "\n".join(parts)


if __name__ == "__main__":
    print(markdown())
