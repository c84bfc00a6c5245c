"""The array-API module (`graphc compile --backend array-api`), driven by `ops.OPS`.

Every operator's array-API emission is run on `array-api-strict` arrays (the
standard and nothing more: a NumPy-only call or a silent promotion fails
there) and compared with the operator's NumPy evaluation, for the operator
itself, its forward rule (jvp) and its reverse rule (vjp), on every case of
`tests/test_ops.py`; then in float32, where every result must stay float32.
An operator that cannot be written in the standard must be listed in
`NO_ARRAY_API` with the reason, so a new operator is tested here without
editing this file.  Whole programs then run through `graphc.compile(...,
backend="array-api")` in both modes on strict arrays, PyTorch CPU tensors and
Dask arrays (the libraries of the test extra; each test says why it skips when
one is missing), and the GPU path runs where PyTorch sees a CUDA device.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_ops import CASES, LEAF_CASES_BY_OP, Case, _derivative_graph

import graphc
from graphc import ops
from graphc.emit_array_api import ArrayApiPrinter, NotInStandard
from graphc.emit_numpy import FunctionSpec, emit_module
from graphc.evaluate import evaluate
from graphc.ir import Graph
from graphc.runtime import load_module
from graphc.testing import random_value

xs = pytest.importorskip(
    "array_api_strict", reason="array-api-strict is in the test extra: pip install '.[test]'"
)
pytest.importorskip("array_api_compat", reason="array-api-compat is in the test extra")

STRICT_ARRAY = type(xs.asarray(0.0))
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Operators whose array-API emission is missing on purpose, with the reason.
NO_ARRAY_API: dict[str, str] = {}
assert set(NO_ARRAY_API) <= set(ops.OPS), "a listed operator left the table"


def params(cases: list[Case]) -> list:
    return [pytest.param(c, id=c.id) for c in cases]


def _case_module(case: Case, dtype: str | None = None):
    """The case's node, tangent and cotangents as one array-API function (a leaf alone)."""
    if ops.OPS[case.op].leaf:
        node = case.node()
        outputs, variables = [node], [node] if node.op.name == "var" else []
    else:
        outputs, variables = _derivative_graph(case)
    names = {v: v.attr("name") for v in variables}
    spec = FunctionSpec(
        "value",
        variables,
        Graph({f"y{i}": o for i, o in enumerate(outputs)}),
        tuple(outputs),
        "The case, its tangent and its cotangents.",
    )
    source = emit_module(case.id, [spec], names, printer=ArrayApiPrinter.fixed(dtype))
    return outputs, variables, names, source


def _case_feed(case: Case, variables) -> dict:
    rng = np.random.default_rng(case.seed())
    feed = dict(case.primals())
    for v in variables[len(case.types) :]:
        feed[v] = random_value(v.type, rng)
    return feed


@pytest.mark.parametrize("name", sorted(ops.OPS))
def test_every_operator_has_an_array_api_emission_or_a_reason(name):
    cases = [c for c in CASES if c.op == name] or LEAF_CASES_BY_OP.get(name, [])
    assert cases, f"no case for {name}"
    failures = []
    for case in cases:
        try:
            _case_module(case)
        except NotInStandard as err:
            failures.append(f"{case.id}: {err}")
    if name in NO_ARRAY_API:
        assert failures, f"{name} is listed in NO_ARRAY_API but emits the standard: unlist it"
    else:
        assert not failures, "\n".join(failures[:3])


ARRAY_API_CASES = [c for c in CASES if c.op not in NO_ARRAY_API]


@pytest.mark.parametrize("case", params(ARRAY_API_CASES))
def test_array_api_emission_on_strict_arrays_equals_numpy(case):
    """Value, tangent and cotangents on array-api-strict arrays, against NumPy's impl."""
    outputs, variables, names, source = _case_module(case)
    module = load_module(source, "case")
    feed = _case_feed(case, variables)
    expected = evaluate(outputs, feed, {})
    got = module.value(**{names[v]: xs.asarray(x) for v, x in feed.items()})
    for node, want, have in zip(outputs, expected, got, strict=True):
        # an array of the inputs' library (a literal output stays a Python number)
        assert isinstance(have, (STRICT_ARRAY, float)), f"{node.op.name}: {type(have)} in\n{source}"
        have = np.asarray(have)
        assert have.shape == np.shape(want), f"{node.op.name}: shape {have.shape} in\n{source}"
        np.testing.assert_allclose(
            have, want, rtol=1e-12, atol=1e-12, err_msg=f"{node.op.name} in\n{source}"
        )


@pytest.mark.parametrize("case", params(ARRAY_API_CASES))
def test_float32_in_float32_out(case):
    """Every result of the case, its tangent and cotangents stays float32, in both
    modules: no literal, mask, fill or identity promotes it."""
    outputs, variables, names, source = _case_module(case)
    numpy_source = emit_module(case.id, [_spec_of(outputs, variables)], names)
    feed = _case_feed(case, variables)
    expected = evaluate(outputs, feed, {})
    single = {  # ids stay integers
        names[v]: np.asarray(x) if v.type.integer else np.asarray(x, dtype=np.float32)
        for v, x in feed.items()
    }
    strict = load_module(source, "case").value(**{k: xs.asarray(x) for k, x in single.items()})
    plain = load_module(numpy_source, "case").value(**single)
    for node, want, a, b in zip(outputs, expected, strict, plain, strict=True):
        if isinstance(a, float):  # a literal (a zero derivative): the API gives it the dtype
            continue
        assert a.dtype == xs.float32, f"array API: {node.op.name} gives {a.dtype} in\n{source}"
        assert np.asarray(b).dtype == np.float32, (
            f"NumPy: {node.op.name} gives {np.asarray(b).dtype} in\n{numpy_source}"
        )
        scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
        for have in (np.asarray(a), np.asarray(b)):
            np.testing.assert_allclose(have, want, rtol=2e-4, atol=2e-4 * scale)


def _spec_of(outputs, variables) -> FunctionSpec:
    return FunctionSpec(
        "value",
        variables,
        Graph({f"y{i}": o for i, o in enumerate(outputs)}),
        tuple(outputs),
        "The case, its tangent and its cotangents.",
    )


# ---- whole programs, through the API ----------------------------------------------------

PROGRAMS = sorted(p.name for p in EXAMPLES.glob("*.gc"))


def _feed(fn, seed: int = 0) -> dict[str, np.ndarray]:
    from graphc.gradcheck import random_feed

    return random_feed(fn.lowered, seed=seed)


FORWARD_ENTRIES = 100  # forward mode's value_and_grad runs one jvp per entry


def _both_modes(example: str, convert, dtype=np.float64, rtol=1e-12, backend="array-api"):
    """value_and_grad of ``backend``'s module on converted arrays against the NumPy module's
    in float64."""
    text = (EXAMPLES / example).read_text(encoding="utf-8")
    feed = _feed(graphc.compile(text))
    program = graphc.parse(text)
    ids = {v.attr("name") for v in program.lowered.variables if v.type.integer}
    for mode in ("reverse", "forward"):
        # forward mode's gradient is one jvp per entry: by the small params only
        wrt = [
            v.attr("name")
            for v in program.lowered.params
            if np.size(feed[v.attr("name")]) <= FORWARD_ENTRIES
        ]
        if mode == "forward" and not wrt:
            continue
        wrt = None if mode == "reverse" else wrt
        reference = graphc.compile(text, wrt=wrt, mode=mode)
        if not reference.compiled.output_type.is_scalar:
            continue
        fn = graphc.compile(text, wrt=wrt, mode=mode, backend=backend)
        want_value, want_grads = reference.value_and_grad(**feed)
        value, grads = fn.value_and_grad(  # ids stay integers
            **{
                k: convert(np.asarray(x) if k in ids else np.asarray(x, dtype=dtype))
                for k, x in feed.items()
            }
        )
        assert set(grads) == set(want_grads)
        for name, have, want in [("value", value, want_value)] + [
            (k, grads[k], want_grads[k]) for k in want_grads
        ]:
            got = np.asarray(_to_numpy(have))
            assert got.dtype == dtype, f"{example} {mode} {name}: {got.dtype}"
            scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
            np.testing.assert_allclose(
                got, want, rtol=rtol, atol=rtol * scale, err_msg=f"{example} {mode} {name}"
            )


def _to_numpy(x):
    if hasattr(x, "compute"):  # Dask: the module built a graph; compute it here
        x = x.compute()
    if hasattr(x, "detach"):  # torch
        x = x.detach().cpu().numpy()
    return x


@pytest.mark.parametrize("example", PROGRAMS)
def test_programs_on_strict_arrays(example):
    _both_modes(example, xs.asarray)


@pytest.mark.parametrize("example", PROGRAMS)
def test_programs_on_strict_arrays_in_float32(example):
    _both_modes(example, xs.asarray, np.float32, rtol=1e-3)


@pytest.mark.parametrize("example", PROGRAMS)
def test_programs_in_float32_through_the_numpy_module(example):
    _both_modes(example, lambda a: a, np.float32, rtol=1e-3, backend="numpy")


@pytest.mark.parametrize("example", PROGRAMS)
def test_programs_on_torch_cpu(example):
    torch = pytest.importorskip(
        "torch", reason="PyTorch is optional: pip install '.[test,torch]' (docs/backends.md)"
    )
    _both_modes(example, lambda a: torch.asarray(a))
    _both_modes(example, lambda a: torch.asarray(a), np.float32, rtol=1e-3)


@pytest.mark.parametrize("example", PROGRAMS)
def test_programs_on_dask_arrays(example):
    da = pytest.importorskip("dask.array", reason="Dask is in the test extra")
    # two chunks along each axis: every reduction combines chunks
    _both_modes(example, lambda a: da.from_array(a, chunks=tuple((n + 1) // 2 for n in a.shape)))


def test_gpu_with_torch_cuda():
    torch = pytest.importorskip("torch", reason="PyTorch is optional (docs/backends.md)")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the GPU path runs only on a machine with a GPU")
    text = (EXAMPLES / "ner_window.gc").read_text(encoding="utf-8")
    fn = graphc.compile(text, backend="array-api")
    feed = _feed(fn)
    want_value, want_grads = graphc.compile(text).value_and_grad(**feed)
    value, grads = fn.value_and_grad(
        **{k: torch.asarray(np.asarray(x), device="cuda") for k, x in feed.items()}
    )
    assert value.device.type == "cuda" and all(g.device.type == "cuda" for g in grads.values())
    np.testing.assert_allclose(value.cpu().numpy(), want_value, rtol=1e-10)
    for k, g in grads.items():
        np.testing.assert_allclose(g.cpu().numpy(), want_grads[k], rtol=1e-10, atol=1e-12)


def test_command_line_backend_and_dtype(tmp_path):
    """graphc compile --backend array-api --dtype float32 writes a module that runs on
    float64 arrays in float32, and imports no NumPy."""
    from graphc.__main__ import main

    out = tmp_path / "ner.py"
    path = str(EXAMPLES / "ner_window.gc")
    assert (
        main(["compile", path, "--backend", "array-api", "--dtype", "float32", "-o", str(out)]) == 0
    )
    source = out.read_text(encoding="utf-8")
    assert "import array_api_compat" in source and "import numpy" not in source
    module = load_module(source, "ner")
    fn = graphc.compile((EXAMPLES / "ner_window.gc").read_text(encoding="utf-8"))
    feed = _feed(fn)
    value, grads = module.value_and_grad(**{k: xs.asarray(v) for k, v in feed.items()})
    assert value.dtype == xs.float32 and all(g.dtype == xs.float32 for g in grads.values())
    want_value, _ = fn.value_and_grad(**feed)
    np.testing.assert_allclose(np.asarray(value), want_value, rtol=1e-5)


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_jacobian_on_strict_arrays(mode):
    text = (EXAMPLES / "sigmoid_jacobian.gc").read_text(encoding="utf-8")
    fn = graphc.compile(text, mode=mode, backend="array-api")
    feed = _feed(fn)
    want = graphc.compile(text, mode=mode).jacobian(**feed)
    got = fn.jacobian(**{k: xs.asarray(np.asarray(v)) for k, v in feed.items()})
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["jacobian", "hessian", "hvp"])
def test_batched_functions_are_a_clear_error_on_the_array_api_backend(name, capsys):
    from graphc.__main__ import main

    text = (EXAMPLES / "sigmoid_jacobian.gc").read_text(encoding="utf-8")
    with pytest.raises(graphc.GraphcError, match="not yet supported on the array-API backend"):
        graphc.compile(text, backend="array-api", emit=name)
    assert (
        main(
            [
                "compile",
                str(EXAMPLES / "sigmoid_jacobian.gc"),
                "--backend",
                "array-api",
                "--emit",
                name,
            ]
        )
        != 0
    )
    err = capsys.readouterr().err
    assert "not yet supported on the array-API backend" in err and "Traceback" not in err


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_jvp_and_vjp_on_strict_arrays(mode):
    text = (EXAMPLES / "sigmoid_jacobian.gc").read_text(encoding="utf-8")
    fn = graphc.compile(text, mode=mode, backend="array-api", emit="jvp,vjp")
    reference = graphc.compile(text, mode=mode)
    feed = _feed(fn)
    strict = {k: xs.asarray(np.asarray(v)) for k, v in feed.items()}
    tangent = {w: np.ones(np.shape(feed[w])) for w in fn.wrt}
    value, dot = fn.jvp(tangent, **strict)
    want_value, want_dot = reference.jvp(tangent, **feed)
    assert isinstance(dot, STRICT_ARRAY)
    np.testing.assert_allclose(np.asarray(value), want_value, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(dot), want_dot, rtol=1e-12, atol=1e-14)
    cotangent = np.ones(np.shape(want_value))
    _, grads = fn.vjp(cotangent, **strict)
    _, want_grads = reference.vjp(cotangent, **feed)
    for w in want_grads:
        np.testing.assert_allclose(np.asarray(grads[w]), want_grads[w], rtol=1e-12, atol=1e-14)


def test_results_never_alias_fed_tensors():
    # As with NumPy arrays (tests/test_feeds.py): a result that is a fed tensor, or a
    # view of one, is copied; fn.copy = False returns it as the module does.
    torch = pytest.importorskip("torch", reason="PyTorch is optional (docs/backends.md)")
    same = graphc.compile("dim n\ninput x : [n]\ny = x", backend="array-api")
    x = torch.arange(3.0, dtype=torch.float64)
    assert same(x=x).data_ptr() != x.data_ptr()
    flipped = graphc.compile("dim n\nparam A : [n, n]\ny = Aᵀ", backend="array-api")
    A = torch.arange(4.0, dtype=torch.float64).reshape(2, 2)
    got = flipped(A=A)
    assert got.data_ptr() != A.data_ptr() and torch.equal(got, A.T)
    flipped.copy = False
    assert flipped(A=A).data_ptr() == A.data_ptr()


@pytest.mark.parametrize("layers", [2, 40])  # the body in f (few variables), in f_dict (many)
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_dict_twins_on_the_array_api_module(layers, mode):
    # The array-API module has the f_dict twins of the NumPy module (one printer path):
    # on strict arrays they compute what the keyword functions and the NumPy module do.
    from test_feeds import layered, layered_feed

    text, feed = layered(layers), layered_feed(layers)
    source = graphc.compile(text, mode=mode, backend="array-api").source
    module = load_module(source)
    want_value, want_grads = graphc.compile(text, mode=mode).value_and_grad(**feed)
    strict = {k: xs.asarray(v) for k, v in feed.items()}
    value, grads = module.value_and_grad(**strict)
    value_d, grads_d = module.value_and_grad_dict(strict)
    assert isinstance(value_d, STRICT_ARRAY) and set(grads_d) == set(want_grads)
    for got in (value, value_d, module.value_dict(strict)):
        np.testing.assert_allclose(np.asarray(got), want_value, rtol=1e-13)
    for k in want_grads:
        np.testing.assert_array_equal(np.asarray(grads_d[k]), np.asarray(grads[k]))
        np.testing.assert_allclose(np.asarray(grads_d[k]), want_grads[k], rtol=1e-12, atol=1e-14)
    # no buffers on this backend, in the twin either; the body is in f_dict past 32 variables
    code = module.value_and_grad_dict.__code__
    assert (code.co_posonlyargcount, code.co_argcount) == (1, 1)
    assert ("return value_and_grad_dict(\n" in source) == (layers == 40)


RIDGE = """dim m
dim n
input X : [m, n]
input y : [m]
param A : [n, n]
param B : [n, 3]
w = inv(XᵀX + AᵀA) Xᵀ y
J = sum(w ∘ w) + sum(inv(AᵀA + XᵀX) B)
"""


def _ridge_feed() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "X": rng.normal(size=(6, 3)),
        "y": rng.normal(size=6),
        "A": rng.normal(size=(3, 3)) + 2 * np.eye(3),
        "B": rng.normal(size=(3, 3)),
    }


@pytest.mark.parametrize("library", ["strict", "torch", "dask"])
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_solve_on_other_libraries(library, mode):
    # inv(·) times something is a solve in both modules (xp.linalg.solve, the standard's
    # linalg extension); the gradient equals the NumPy module's.
    if library == "torch":
        torch = pytest.importorskip("torch", reason="PyTorch is optional (docs/backends.md)")
        convert = torch.asarray
    elif library == "dask":
        da = pytest.importorskip("dask.array", reason="Dask is in the test extra")
        pytest.importorskip("scipy", reason="Dask's linalg.solve needs SciPy (docs/backends.md)")
        convert = da.from_array
    else:
        convert = xs.asarray
    fn = graphc.compile(RIDGE, mode=mode, backend="array-api")
    assert "xp.linalg.solve(" in fn.source and "linalg.inv" not in fn.source
    feed = _ridge_feed()
    want_value, want_grads = graphc.compile(RIDGE, mode=mode).value_and_grad(**feed)
    value, grads = fn.value_and_grad(**{k: convert(v) for k, v in feed.items()})
    np.testing.assert_allclose(np.asarray(_to_numpy(value)), want_value, rtol=1e-12)
    for k in want_grads:
        np.testing.assert_allclose(
            np.asarray(_to_numpy(grads[k])), want_grads[k], rtol=1e-10, atol=1e-12
        )
