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
    assert "np.ones((m, n), dtype=dtype)" in fn.source  # the inputs' dtype
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


# ---- the one dim solver: shapes.binding_order / bind_sizes ---------------------------


def test_one_solver_binds_dims_in_declaration_order_and_waits_for_what_it_cannot_solve():
    from graphc.shapes import Dim, Type, bind_sizes, binding_order, dim_sources

    n, m = Dim.of("n"), Dim.of("m")
    declared = [("x", Type((n * m,))), ("W", Type((n, m))), ("z", Type((n + m + 1,)))]
    order = binding_order(declared)
    assert [key for key, _ in order] == ["W", "z", "x"]  # x : [n*m] waits for W
    sources = dim_sources(declared)
    assert {name: (s.variable, s.axis) for name, s in sources.items()} == {
        "n": ("W", 0),
        "m": ("W", 1),
    }
    fed = [("x", declared[0][1], (6,)), ("W", declared[1][1], (2, 3)), ("z", declared[2][1], (6,))]
    assert bind_sizes(fed) == ({"n": 2, "m": 3}, {"n": "W", "m": "W"})
    # the feed check, the emitted module and graphc.testing all bind with it
    fn = graphc.compile("dim n, m\ninput x : [n*m]\nparam W : [n, m]\ny = sum(x) + sum(W)")
    assert fn(x=np.ones(6), W=np.ones((2, 3))) == 12.0
    with pytest.raises(graphc.FeedError, match=r"x: expected shape \[6\], got \(5,\): axis 0"):
        fn(x=np.ones(5), W=np.ones((2, 3)))


def test_one_solver_reports_a_size_no_dim_gives():
    from graphc.shapes import Dim, SizeMismatch, Type, bind_sizes

    n = Dim.of("n")
    with pytest.raises(SizeMismatch, match=r"no size of n makes 2\*n \+ 1 = 4") as err:
        bind_sizes([("x", Type((2 * n + 1,)), (4,))])
    assert err.value.key == "x"
    with pytest.raises(SizeMismatch, match=r"axis 1 should have 2 entries \(n = 2 from A\)"):
        bind_sizes([("A", Type((n, n)), (2, 3))])
    # a dim already known is checked, not bound again
    assert bind_sizes([("x", Type((n,)), (3,))], {"n": 3}) == ({"n": 3}, {})
