"""One derivation path, one namer: ``graphc graph --grad`` names what ``graphc compile`` names.

The check is by value, not by spelling: every local the emitted derivative
function assigns is run (its ``return`` replaced by ``return locals()``),
and the node the listing gives the same label is evaluated operator by
operator; the two must agree.  So a listing that called ``sin x`` ``delta``
while the module called it ``t1`` (and ``delta`` something else) fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st
from test_random_programs import SETTINGS, programs

from graphc import ops
from graphc.__main__ import main
from graphc.compiler import build_module, derivative_function, derivative_labels
from graphc.derive import derive
from graphc.emit_numpy import FunctionSpec, GradientByJvp, emit_module, keyword_names
from graphc.frontend import lower
from graphc.gradcheck import random_feed
from graphc.ir import Graph
from graphc.runtime import check_feed, evaluate, load_module

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.gc"))

SIN_TWICE = "dim n\ninput x : [n]\nparam y : [n]\nJ = sum(sin(x) ∘ y) + sum(sin(x))\n"


def locals_of(source: str, function: str, kwargs: dict) -> dict:
    """The locals of ``function`` of the module ``source`` at its return."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            node.body[-1] = ast.parse("return locals()").body[0]
            for statement in node.body:  # value_and_grad returns early unless given out=
                if isinstance(statement, ast.If) and ast.unparse(statement.test) == "out is None":
                    statement.body = [ast.parse("return locals()").body[0]]
    module = load_module(ast.unparse(tree))
    return getattr(module, function)(**kwargs)


def assert_listing_names_the_module(text: str, wrt, mode: str, seed: int = 0) -> None:
    lowered = lower(text)
    derived = derive(lowered, wrt, mode)
    labels = derivative_labels(derived)
    compiled = build_module(lowered, wrt, mode)
    listing = derived.graph.listing([*derived.variables, *derived.seeds.values()], labels)
    assert "delta" not in {labels[n] for n in derived.value_graph.nodes() if n in labels}

    feed = random_feed(lowered, seed=seed)
    values, sizes = check_feed(lowered, feed)
    rng = np.random.default_rng(seed)
    for seed_var in derived.seeds.values():
        shape = tuple(d.evaluate(sizes) for d in seed_var.type.dims)
        values[seed_var] = rng.uniform(-1.0, 1.0, size=shape)
    kwargs = {compiled.param_names[v.attr("name")]: values[v] for v in derived.variables}
    kwargs |= {compiled.seed_names[k]: values[s] for k, s in derived.seeds.items()}
    function = derivative_function(derived).name
    local = locals_of(compiled.source, function, kwargs)

    by_label = {label: node for node, label in labels.items()}
    assert len(by_label) == len(labels), "two nodes share a label"
    for name, got in local.items():
        if name in kwargs or name in ("out", "accumulate") or isinstance(got, (int, np.dtype)):
            # a parameter, a dim read from one, the dtype
            continue
        assert name in by_label, f"the module's {name} is not in the listing:\n{listing}"
        assert f"  {name} : " in listing
        (want,) = evaluate([by_label[name]], values, sizes)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=name)


def test_the_listing_and_the_module_both_call_sin_x_t1(capsys, tmp_path):
    path = tmp_path / "sin_twice.gc"
    path.write_text(SIN_TWICE, encoding="utf-8")
    assert main(["graph", str(path), "--grad"]) == 0
    listing = capsys.readouterr().out
    assert "delta" not in listing
    assert "  t1 : [n] = sin x\n" in listing
    assert listing.rstrip().endswith("return J, dJ_dy = t1")
    assert main(["compile", str(path)]) == 0
    module = capsys.readouterr().out
    assert (
        "    t1 = np.sin(x)\n    J = np.sum(t1 * y) + np.sum(t1)\n"
        "    if out is None:\n        return J, {'y': t1}\n"
    ) in module


@pytest.mark.parametrize("mode", ["reverse", "forward"])
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_listing_names_the_module_on_every_example(example, mode):
    assert_listing_names_the_module(example.read_text(encoding="utf-8"), None, mode)


@settings(max_examples=60, **SETTINGS)
@given(programs(), st.sampled_from(["reverse", "forward"]))
def test_listing_names_the_module_on_random_programs(case, mode):
    note(case.text)
    assert_listing_names_the_module(case.text, case.wrt, mode, case.seed)


def test_a_vector_output_lists_its_vjp(capsys):
    assert main(["graph", str(ROOT / "examples" / "sigmoid_jacobian.gc"), "--grad"]) == 0
    listing = capsys.readouterr().out
    assert "  cotangent h_bar : [4]\n" in listing
    assert listing.rstrip().endswith("return h, dh_dz = t3")


def test_a_derivative_that_is_a_program_value_keeps_the_program_naming():
    # ∂J/∂y = sin x: the cotangent is a primal value, so it is neither delta nor dJ_d….
    derived = derive(lower(SIN_TWICE), None, "reverse")
    sin_x = derived.gradients["y"]
    assert sin_x.op.name == "sin"
    assert sin_x not in derived.graph.hints and sin_x not in derived.graph.names


def test_forward_value_and_grad_is_printed_from_data():
    """GradientByJvp: its locals step around parameters called i, grad or zero."""
    text = "param i, grad, zero : [2]\nJ = sum(i ∘ grad ∘ zero)"
    fn = build_module(lower(text), mode="forward")
    module = load_module(fn.source)
    rng = np.random.default_rng(1)
    feed = {k: rng.normal(size=2) for k in ("i", "grad", "zero")}
    value, grads = module.value_and_grad(**feed)
    assert np.isclose(value, np.sum(feed["i"] * feed["grad"] * feed["zero"]))
    np.testing.assert_allclose(grads["i"], feed["grad"] * feed["zero"])
    np.testing.assert_allclose(grads["zero"], feed["i"] * feed["grad"])


def test_adding_an_emitted_function_is_one_spec():
    """A function the module does not define yet, described as data only."""
    lowered = lower("dim n = 3\nparam w : [n]\nJ = sum(w ∘ w)")
    derived = derive(lowered, None, "reverse")
    keywords = keyword_names(derived.variables)
    spec = FunctionSpec(
        "grad_only", derived.variables, derived.graph, {"w": derived.gradients["w"]}, "∇J."
    )
    jvp_loop = GradientByJvp("loop", derived.variables, (), "Nothing to seed.")
    module = load_module(emit_module("Two functions.", [spec, jvp_loop], keywords))
    w = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(module.grad_only(w=w)["w"], 2 * w)


def test_returns_print_nested_tuples_and_dicts():
    x = ops.var(name="x", kind="param", type=ops.SCALAR)
    y = ops.sin(x)
    spec = FunctionSpec("f", [x], Graph({"y": y}), (y, (y, {"a": x}), {}, ()), "Nested.")
    empty = FunctionSpec("g", [x], Graph({}), (), "Nothing.")
    source = emit_module("Nested.", [spec, empty], {x: "x"})
    assert "    return t1, (t1, {'a': x}), {}, ()\n" in source
    assert load_module(source).f(x=0.5)[1][1] == {"a": 0.5}
    assert load_module(source).g(x=0.5) == ()


def test_graph_grad_takes_the_mode_of_compile(capsys):
    example = str(ROOT / "examples" / "ner_window.gc")
    assert main(["graph", example, "--grad", "--mode", "forward", "--wrt", "b,u"]) == 0
    listing = capsys.readouterr().out
    assert "  tangent b_dot : [100]\n  tangent u_dot : [100]\n" in listing
    assert "  s_dot : [] = add " in listing
    assert listing.rstrip().endswith("return J, J_dot")
