"""Dims: bound by declaration, or read from the arrays fed, in emitted code too."""

from __future__ import annotations

import numpy as np
import pytest

import graphc


def test_unbound_dim_is_read_from_the_first_array_that_has_it():
    fn = graphc.compile("dim n\nparam x : [n]\ny = sum(x) / n")
    assert "n = x.shape[0]" in fn.source
    value, grads = fn.value_and_grad(x=np.arange(4.0))
    assert value == 1.5
    np.testing.assert_allclose(grads["x"], np.full(4, 0.25))


def test_dim_expression_is_solved_from_the_array():
    text = "dim d\ninput x : [5*d]\nparam w : [5*d]\ny = wᵀ x + d"
    fn = graphc.compile(text)
    assert "d = x.shape[0] // 5" in fn.source
    value, _ = fn.value_and_grad(x=np.ones(10), w=np.ones(10))
    assert value == 12.0  # 10 + d with d = 2


def test_gradient_of_a_sum_fills_the_unbound_shape():
    fn = graphc.compile("dim n, m\nparam A : [m, n]\ny = sum(A)")
    assert "np.ones((m, n))" in fn.source
    np.testing.assert_array_equal(fn.grad(A=np.zeros((2, 3)))["A"], np.ones((2, 3)))


def test_dim_without_size_is_an_error_where_it_is_used():
    with pytest.raises(graphc.ShapeError) as err:
        graphc.parse("dim n, m\nparam x : [n]\ny = sum(x) / m")
    assert (err.value.line, err.value.column) == (3, 14)
    assert "dim m has no size here" in err.value.message


def test_alias_dims():
    fn = graphc.compile("dim n\ndim k = n + 1\nparam x : [n]\ninput y : [k]\nz = sum(x) + sum(y)")
    assert fn(x=np.ones(2), y=np.ones(3)) == 5.0
    with pytest.raises(graphc.FeedError, match="y"):
        fn(x=np.ones(2), y=np.ones(2))


def test_unknown_wrt_suggests_the_declared_name():
    with pytest.raises(graphc.NameResolutionError, match="did you mean W"):
        graphc.compile("param W : []\ny = W", wrt=["w"])  # case only
    with pytest.raises(graphc.NameResolutionError, match="did you mean weights"):
        graphc.compile("param weights, b : []\ny = weights b", wrt=["weight"])
