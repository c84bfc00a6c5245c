"""load_module: the emitted module's functions are compiled when first looked up,
and behave as the module executed whole does (issue 11 part 6, compile time)."""

from __future__ import annotations

import traceback
import types

import numpy as np
import pytest
from test_feeds import layered, layered_feed

import graphc
from graphc.runtime import load_module


def executed_whole(source: str) -> types.ModuleType:
    module = types.ModuleType("whole")
    exec(compile(source, "<whole>", "exec"), module.__dict__)  # noqa: S102 - the reference
    return module


FUNCTIONS = {"value", "value_dict", "value_and_grad", "value_and_grad_dict"}


@pytest.mark.parametrize("layers", [2, 40])  # the body in f (few variables), in f_dict (many)
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_a_function_is_compiled_when_first_looked_up(layers, mode):
    source = graphc.compile(layered(layers), mode=mode).source
    module, whole = load_module(source), executed_whole(source)
    assert module.__doc__ == whole.__doc__ and module.np is np
    assert not FUNCTIONS & set(vars(module))  # nothing compiled yet
    assert FUNCTIONS <= set(dir(module))
    feed = layered_feed(layers)
    f = module.value_and_grad_dict
    assert module.value_and_grad_dict is f  # compiled once: the same function after
    # with what it calls (the keyword function holds the body up to 32 variables;
    # forward mode's value_and_grad calls jvp and value), and nothing else
    assert "value_dict" not in vars(module) and "value" not in vars(module) or mode == "forward"
    value, grads = f(feed)
    want_value, want_grads = whole.value_and_grad_dict(feed)
    assert value == want_value and grads.keys() == want_grads.keys()
    for name in grads:
        np.testing.assert_array_equal(grads[name], want_grads[name])
    assert module.value(**feed) == whole.value(**feed) == module.value_dict(feed)
    keyword_value, _ = module.value_and_grad(**feed)
    assert keyword_value == want_value
    assert FUNCTIONS <= set(vars(module))
    with pytest.raises(AttributeError, match="has no attribute 'hessian'"):
        module.hessian  # noqa: B018 - the look-up is the test
    assert not hasattr(module, "jacobian")


def test_functions_keep_the_line_numbers_of_the_source():
    source = graphc.compile(layered(40)).source
    module = load_module(source, "chain")
    lines = source.split("\n")
    for name in ("value_and_grad_dict", "value"):
        code = getattr(module, name).__code__
        assert lines[code.co_firstlineno - 1].startswith(f"def {name}(")
        assert code.co_filename == "<chain>"
    feed = layered_feed(40)
    feed["W7"] = np.ones((3, 4))  # a misfit the module meets in the statement of h7
    with pytest.raises(ValueError) as raised:
        module.value_and_grad_dict(feed)
    where = traceback.extract_tb(raised.value.__traceback__)[-1]
    assert where.filename == "<chain>" and "np.tanh(W7 @ h6 + b7)" in lines[where.lineno - 1]


def test_a_def_line_in_the_docstring_loads_the_module_whole():
    text = "param x : []\ny = 2 x"
    for filename in ["a\ndef g(x):\n.gc", "new\ndef value(x):\n    return 0\nline.gc", "plain.gc"]:
        fn = graphc.compile(text, filename=filename)
        module = load_module(fn.source)
        assert filename in module.__doc__
        assert "g" not in dir(module)  # the docstring's def line is no function
        assert module.value(x=1.5) == 3.0 and module.value_and_grad(x=1.5) == (3.0, {"x": 2.0})
        assert fn(x=1.5) == 3.0


def test_the_compiled_function_compiles_only_what_a_gradient_calls():
    fn = graphc.compile(layered(40))
    compiled = set(vars(fn.module)) & FUNCTIONS
    assert compiled == {"value_and_grad_dict"}  # more than 32 variables: the twin has the body
    value, _ = fn.value_and_grad(**layered_feed(40))
    assert fn(**layered_feed(40)) == value
    assert "value_dict" in vars(fn.module)
