"""The SymPy bridge, graphc compare and graphc swell.

The bridge is checked operator by operator against graphc's own evaluation
(every operator in the table, in both of SymPy's forms); compare runs on
every example; swell's sizes are checked against SymPy driven directly and
against the growth the docs describe.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc import ops
from graphc.compare import compare
from graphc.runtime import evaluate
from graphc.shapes import SCALAR, Dim, matrix, vector
from graphc.symbolic import SymbolicError, symbols_for, sympy_module, translate

sp = pytest.importorskip("sympy")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.gc"))

# Operators that have no SymPy translation, each with the reason.  Empty today:
# an operator added without a to_sympy must be listed here or fail the test below.
IDS_ARE_DATA = "selection by integer data: SymPy's symbols stand for the ids, which index nothing"
NOT_TRANSLATABLE: dict[str, str] = {
    name: IDS_ARE_DATA for name in ("gather", "scatter_add", "pick", "unpick")
}


# ---- every operator against graphc's own evaluation -------------------------------------

a = ops.var(name="a", kind="param", type=SCALAR)
b = ops.var(name="b", kind="param", type=SCALAR)
x = ops.var(name="x", kind="param", type=vector(3))
y = ops.var(name="y", kind="param", type=vector(3))
z = ops.var(name="z", kind="param", type=vector(3))  # values of both signs
v2 = ops.var(name="v2", kind="param", type=vector(2))
r = ops.var(name="r", kind="param", type=vector(3, row=True))
A = ops.var(name="A", kind="param", type=matrix(3, 3))
C = ops.var(name="C", kind="param", type=matrix(2, 3))
THREE = Dim.of(3)

# (operator, the node, whether SymPy's matrix expressions can hold it)
CASES = [
    ("var", x, True),
    ("const", ops.const(2.5), True),
    ("fill", ops.fill(value=2.0, type=vector(3)), True),
    ("dimval", ops.dimval(dim=THREE), True),
    ("eye", ops.eye(dim=THREE), True),
    ("neg", ops.neg(A), True),
    ("transpose", ops.transpose(C), True),
    ("sum", ops.reduce_sum(C, axis=None), True),
    ("sum", ops.reduce_sum(C, axis=0), True),
    ("sum", ops.reduce_sum(C, axis=1), True),
    ("sum", ops.reduce_sum(x, axis=None), True),
    ("broadcast", ops.broadcast(a, type=matrix(2, 3), axis=None), True),
    ("broadcast", ops.broadcast(x, type=matrix(2, 3), axis=0), True),
    ("broadcast", ops.broadcast(v2, type=matrix(2, 3), axis=1), True),
    ("matmul", ops.matmul(A, x), True),
    ("matmul", ops.matmul(ops.transpose(x), y), True),
    ("matmul", ops.matmul(x, r), True),
    ("matmul", ops.matmul(C, A), True),
    ("concat", ops.concat(a, b), True),
    ("concat", ops.concat(x, y), True),
    ("concat", ops.concat(C, r), True),
    ("hconcat", ops.hconcat(a, b), True),
    ("hconcat", ops.hconcat(A, x), True),
    ("hconcat", ops.hconcat(r, a), False),
    ("take_cols", ops.take_cols(C, start=Dim.of(1), stop=THREE), True),
    ("index_col", ops.index_col(C, at=Dim.of(2)), True),
    ("take", ops.take(x, start=Dim.of(1), stop=THREE), True),
    ("take", ops.take(A, start=Dim.of(0), stop=Dim.of(2)), True),
    ("index", ops.index(x, at=Dim.of(1)), True),
    ("index", ops.index(A, at=Dim.of(2)), True),
    ("diag", ops.diag(x), True),
    ("diagpart", ops.diagpart(A), True),
    ("trace", ops.trace(A), True),
    ("scale_rows", ops.scale_rows(x, A), True),
    ("add", ops.add(x, y), True),
    ("add", ops.add(A, a), True),
    ("add", ops.add(C, r), False),  # a row spread along a matrix
    ("sub", ops.sub(a, x), True),
    ("mul", ops.mul(x, y), True),
    ("mul", ops.mul(a, A), True),
    ("div", ops.div(x, y), True),
    ("div", ops.div(A, a), True),
    ("pow", ops.pow_(x, y), False),  # a vector exponent
    ("pow", ops.pow_(x, a), True),
    ("powc", ops.powc(x, p=3.0), True),
    ("powc", ops.powc(x, p=0.5), True),
    ("exp", ops.exp(x), True),
    ("log", ops.log(x), True),
    ("sqrt", ops.sqrt(x), True),
    ("sin", ops.sin(A), True),
    ("cos", ops.cos(x), True),
    ("tanh", ops.tanh(z), True),
    ("sigmoid", ops.sigmoid(z), True),
    ("softplus", ops.softplus(z), True),
    ("sign", ops.sign(z), True),
    ("greater", ops.greater(z, y), False),
    ("greater_equal", ops.greater_equal(z, y), False),
    ("relu", ops.relu(z), False),
    ("abs", ops.abs_(z), True),
    ("maximum", ops.maximum(z, y), False),
    ("minimum", ops.minimum(z, y), False),
    ("stop", ops.stop(x), True),
    ("amax", ops.amax(z, axis=None), False),
    ("amax", ops.amax(C, axis=0), False),
    ("amax", ops.amax(C, axis=1), False),
    ("amin", ops.amin(C, axis=None), False),
    ("amin", ops.amin(C, axis=1), False),
    ("equal", ops.equal(z, y), False),
    ("where", ops.where(ops.greater(z, y), x, y), False),
    ("where", ops.where(ops.greater(C, a), C, v2), False),
    ("add", ops.add(C, v2), False),  # a column of C's row dim spread across its columns
    ("mul", ops.mul(C, v2), False),
    ("inv", ops.inv(A), True),
    ("solve", ops.solve(A, x), True),
    ("solve", ops.solve(A, ops.transpose(C)), True),
    ("det", ops.det(A), True),
    ("logdet", ops.logdet(A), True),
    ("logdet", ops.logdet(ops.neg(A)), True),  # log |det A| of a negative determinant
]


def _values() -> dict:
    rng = np.random.default_rng(7)
    values = {}
    for v in (a, b, x, y, z, v2, r, A, C):
        shape = tuple(d.value for d in v.type.dims)
        values[v] = rng.uniform(0.2, 1.0, size=shape)
    values[z] = values[z] * np.array([1.0, -1.0, 1.0])
    values[A] = values[A] + 3 * np.eye(3)
    return values


def _number(value) -> np.ndarray:
    if isinstance(value, (sp.MatrixBase, sp.NDimArray)):
        return np.array(sp.Matrix(value).evalf().tolist(), dtype=float).ravel()
    return np.array([float(sp.N(value))])


def _explicit(expr):
    """A matrix expression on explicit matrices, evaluated (constant matrices written out:
    SymPy's ``doit`` leaves products with ``OneMatrix`` and ``DiagonalOf`` standing)."""
    constant = (sp.OneMatrix, sp.Identity, sp.ZeroMatrix)
    expr = expr.replace(
        lambda e: isinstance(e, constant), lambda e: sp.ImmutableMatrix(e.as_explicit())
    )
    expr = expr.replace(
        lambda e: isinstance(e, sp.DiagonalOf),
        lambda e: sp.ImmutableMatrix([e.arg[i, i] for i in range(e.arg.shape[0])]),
    )
    expr = expr.doit()
    if isinstance(expr, sp.MatrixExpr) and not isinstance(expr, sp.MatrixBase):
        expr = expr.as_explicit()
    return expr


def test_every_operator_has_a_translation_or_a_reason():
    covered = {name for name, _, _ in CASES}
    for name, op in ops.OPS.items():
        if name in NOT_TRANSLATABLE:
            assert op.to_sympy is None, f"{name} is listed as not translatable but has to_sympy"
            assert NOT_TRANSLATABLE[name], f"{name}: say why it cannot be translated"
        else:
            assert op.to_sympy is not None, f"{name} has no to_sympy: add one, or list it"
            assert name in covered, f"{name}'s to_sympy is not tested: add a case"
    assert all(node.op.name == name for name, node, _ in CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_explicit_translation_agrees_with_evaluation(case):
    _, node, _ = case
    values = _values()
    (expected,) = evaluate([node], values, {})
    leaves = {v: symbols_for(sp, v.attr("name"), v.type) for v in values}
    (translated,) = translate(sp, [node], leaves).outputs
    numbers = {}
    for v, symbols in leaves.items():
        entries = list(symbols) if isinstance(symbols, sp.MatrixBase) else [symbols]
        numbers.update(zip(entries, map(sp.Float, np.ravel(values[v]))))
    substituted = translated.xreplace(numbers)
    np.testing.assert_allclose(_number(substituted), np.ravel(expected), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_matrix_translation_agrees_with_evaluation_or_says_it_cannot(case):
    _, node, representable = case
    values = _values()
    leaves = {v: symbols_for(sp, v.attr("name"), v.type, matrix=True) for v in values}
    if not representable:
        with pytest.raises(SymbolicError, match="SymPy cannot represent this program"):
            translate(sp, [node], leaves, matrix=True)
        return
    (translated,) = translate(sp, [node], leaves, matrix=True).outputs
    (expected,) = evaluate([node], values, {})
    substitutions = {}
    for v, symbol in leaves.items():
        if v.type.is_scalar:
            substitutions[symbol] = sp.Float(values[v])
        else:
            base = symbol.T if v.type.row else symbol  # a row vector is a transposed symbol
            substitutions[base] = sp.ImmutableMatrix(np.reshape(values[v], base.shape))
    result = _explicit(translated.subs(substitutions))
    np.testing.assert_allclose(_number(result), np.ravel(expected), rtol=1e-12, atol=1e-14)


# ---- the bridge on programs ----------------------------------------------------------------


def test_gradients_are_graphcs_derivative_translated():
    fn = graphc.compile("dim n\nparam x : [n]\ninput A : [n, n]\ny = sum(tanh(A x))")
    form = graphc.to_sympy(fn, dims={"n": 2})
    xs = list(form.symbols["x"])
    by_sympy = sp.Matrix([sp.diff(form.output, xi) for xi in xs])
    assert sp.simplify(form.gradients["x"] - by_sympy) == sp.zeros(2, 1)
    assert form.sizes == {"n": 2}
    matrix = graphc.to_sympy(fn, matrix=True)
    assert isinstance(matrix.symbols["A"], sp.MatrixSymbol)
    assert str(matrix.symbols["A"].shape) == "(n, n)"  # an unbound dim stays a symbol


def test_a_jacobian_is_laid_out_output_then_variable():
    for mode in ("reverse", "forward"):
        fn = graphc.compile("dim n\nparam x : [n]\ny = x ∘ x", mode=mode)
        form = graphc.to_sympy(fn, dims={"n": 2})
        x0, x1 = form.symbols["x"]
        assert form.gradients["x"].tolist() == [[2 * x0, 0], [0, 2 * x1]], mode


def test_stop_is_a_constant_for_sympys_derivative_too():
    report = compare(graphc.parse((ROOT / "examples" / "stop.gc").read_text()).lowered)
    assert report.ok and report.variables[0].symbolic == "equal"


def test_dims_may_replace_what_the_program_binds():
    lowered = graphc.parse((ROOT / "examples" / "ner_window.gc").read_text()).lowered
    report = compare(lowered, {"d": 1, "n": 3}, wrt="b", timeout=0.5)
    assert report.sizes == {"d": 1, "n": 3}
    assert [(v.variable, v.entries) for v in report.variables] == [("b", 3)]
    with pytest.raises(SymbolicError, match="k is not a dim of this program"):
        compare(lowered, {"k": 2})


def test_sympy_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sympy", None)  # import sympy now raises ImportError
    with pytest.raises(SymbolicError, match=r"pip install 'graphc\[symbolic\]'"):
        sympy_module()


def test_compile_check_and_derive_do_not_import_sympy():
    code = (
        "import sys, io, contextlib\n"
        "from graphc.__main__ import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['compile', 'examples/ner_window.gc']) == 0\n"
        "    assert main(['check', 'examples/ner_window.gc']) == 0\n"
        "    assert main(['derive', 'examples/ner_window.gc']) == 0\n"
        "    assert main(['derive', 'examples/ner_window.gc', '--format', 'latex']) == 0\n"
        "import graphc\n"
        "fn = graphc.compile(open('examples/log_sin.gc').read())\n"
        "fn.grad(x1=2.0, x2=5.0)\n"
        "str(fn.derivation()), fn.derivation()._repr_latex_(), fn._repr_html_()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sympy'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


# ---- graphc compare -----------------------------------------------------------------------


# Integer data select, and selection has no SymPy form (NOT_TRANSLATABLE): ner_batch.gc.
COMPARABLE = [p for p in EXAMPLES if "] int" not in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize("path", COMPARABLE, ids=[p.name for p in COMPARABLE])
def test_compare_agrees_on_every_example(path: Path):
    report = compare(graphc.parse(path.read_text(), str(path)).lowered, timeout=0.5)
    assert report.ok, report.text()
    assert report.variables and all(v.numeric_error <= 1e-9 for v in report.variables)
    assert all(size <= 2 for size in report.sizes.values())  # small by default


def test_compare_command_line_formats_and_exit_status(capsys, monkeypatch):
    from graphc.__main__ import main

    assert main(["compare", "examples/log_sin.gc", "--format", "json", "--timeout", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and [v["variable"] for v in data["variables"]] == ["x1", "x2"]
    assert all(v["symbolic"] == "equal" for v in data["variables"])  # 1/x1 + x2, cos(x2) - …

    assert main(["compare", "examples/quadratic.gc", "--format", "markdown"]) == 0
    assert "| x | 3 |" not in capsys.readouterr().out  # n = 2 by default, not the bound 3

    # A wrong gradient is a disagreement, and a failing exit status.
    import graphc.compare as compare_module

    class Wrong(compare_module.CompiledFunction):
        def value_and_grad(self, /, **feed):
            value, grads = super().value_and_grad(**feed)
            return value, {k: g * 1.001 for k, g in grads.items()}

    monkeypatch.setattr(compare_module, "CompiledFunction", Wrong)
    assert main(["compare", "examples/cube.gc", "--timeout", "1"]) == 1
    out = capsys.readouterr().out
    assert "DIFFER" in out and "FAILED" in out


# ---- graphc swell ---------------------------------------------------------------------------


def test_swell_sizes_grow_as_described(tmp_path: Path):
    from graphc.swell import swell

    report = swell(max_k=7, timeout=60)
    rows = {row.k: row for row in report.rows}
    # SymPy driven directly, without graphc: l₁ = x, lₖ₊₁ = 4 lₖ (1 − lₖ).
    t = sp.Symbol("t")
    l = t
    for k in range(1, 8):
        if k > 1:
            l = 4 * l * (1 - l)
        derivative = sp.diff(l, t)
        replacements, reduced = sp.cse(derivative)
        shared = sum(sp.count_ops(e) for _, e in replacements) + sp.count_ops(reduced)
        assert (rows[k].sympy_raw, rows[k].sympy_cse) == (sp.count_ops(derivative), shared)
    assert (rows[7].sympy_raw, rows[7].sympy_cse) == (2096, 93)  # the SymPy 1.14 numbers
    graph = [rows[k].graphc_gradient_graph for k in range(1, 8)]
    steps = {b - a for a, b in zip(graph[1:], graph[2:])}
    assert len(steps) == 1 and steps.pop() > 0  # a constant number of nodes per step
    assert all(rows[k + 1].sympy_raw > 2.4 * rows[k].sympy_raw for k in range(4, 7))
    assert [t.simplified for t in report.table1][2] == "16(1 − 10x + 24x² − 16x³)"  # Baydin
    assert "grows by" in report.text() and "| 7 | 2,096 | 93 |" in report.markdown()
    svg = tmp_path / "swell.svg"
    report.plot(str(svg))
    assert svg.read_text(encoding="utf-8").lstrip().startswith("<?xml")


def test_swell_stops_sympy_when_a_step_runs_out_of_time():
    from graphc.swell import swell

    report = swell(max_k=9, timeout=0.05)
    assert report.stopped_at is not None
    assert all(row.sympy_raw is None for row in report.rows if row.k >= report.stopped_at)
    assert len(report.rows) == 9 and "SymPy stopped at k =" in report.text()


def test_swell_plot_names_the_extra_when_matplotlib_is_missing(monkeypatch):
    from graphc.__main__ import main
    from graphc.swell import plot_problem

    assert plot_problem("out.pdf") == "--plot writes .svg or .png files, not out.pdf"
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert "pip install 'graphc[plots]'" in plot_problem("out.svg")
    assert main(["swell", "--max-k", "2", "--plot", "out.svg"]) == 2  # before any work
