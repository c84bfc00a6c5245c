"""Feeding: every array is checked against the declarations before any
arithmetic, for ``parse(...).run`` and for compiled functions alike."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import graphc

TEXT = """\
dim n
input x : [n]
param W : [2, n]
param b : [2]
param c : []
y = sum(tanh(W x + b)) + c^2
"""

PROGRAM = graphc.parse(TEXT)
REVERSE = graphc.compile(TEXT)
FORWARD = graphc.compile(TEXT, mode="forward")

# Every way to feed a program; each returns the output value.
ENTRY_POINTS = {
    "run": PROGRAM.run,
    "call": REVERSE,
    "value_and_grad": lambda **f: REVERSE.value_and_grad(**f)[0],
    "grad": lambda **f: (REVERSE.grad(**f), REVERSE(**f))[1],
    "forward": lambda **f: FORWARD.value_and_grad(**f)[0],
    "jacobian": lambda **f: (REVERSE.jacobian(**f), REVERSE(**f))[1],
}
entry_points = pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))

RNG = np.random.default_rng(7)


def good_feed(n: int = 3) -> dict[str, object]:
    return {
        "x": RNG.normal(size=n),
        "W": RNG.normal(size=(2, n)),
        "b": RNG.normal(size=2),
        "c": 0.5,
    }


def expected(feed) -> float:
    x, w, b, c = (np.asarray(feed[k], dtype=float) for k in ("x", "W", "b", "c"))
    return float(np.sum(np.tanh(w @ x + b)) + c**2)


def feed_error(entry: str, **feed) -> graphc.FeedError:
    with pytest.raises(graphc.FeedError) as info:
        ENTRY_POINTS[entry](**feed)
    err = info.value
    assert isinstance(err, graphc.GraphcError)
    assert err.line is None  # about a feed, not a place in the program
    assert "Traceback" not in err.render()
    return err


@entry_points
def test_a_good_feed(entry):
    feed = good_feed()
    assert ENTRY_POINTS[entry](**feed) == pytest.approx(expected(feed))


@entry_points
def test_any_size_binds_an_unbound_dim(entry):
    for n in (1, 2, 5):
        feed = good_feed(n)
        assert ENTRY_POINTS[entry](**feed) == pytest.approx(expected(feed))


# ---------------------------------------------------------------------------
# Missing and extra
# ---------------------------------------------------------------------------


@entry_points
def test_missing(entry):
    feed = good_feed()
    del feed["W"]
    err = feed_error(entry, **feed)
    assert err.message == "missing value for param W [2×n]"


@entry_points
def test_several_missing(entry):
    err = feed_error(entry, x=np.ones(3))
    assert err.message.startswith("missing values for ")
    for name in ("W", "b", "c"):
        assert f"param {name}" in err.message


@entry_points
def test_extra_with_suggestion(entry):
    err = feed_error(entry, **good_feed(), bb=np.ones(2))
    assert "bb is not an input or param of this program" in err.message
    assert "it takes x, W, b, c" in err.message
    assert err.message.endswith("did you mean b?")


@entry_points
def test_extra_differing_in_case(entry):
    feed = good_feed()
    feed["w"] = feed.pop("W")
    err = feed_error(entry, **feed)
    assert err.message.startswith("w is not an input or param")
    assert err.message.endswith("did you mean W?")


def test_extra_without_suggestion():
    err = feed_error("run", **good_feed(), zzz=1.0)
    assert "zzz is not an input or param" in err.message
    assert "did you mean" not in err.message


# ---------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------


@entry_points
@pytest.mark.parametrize(
    ("name", "value", "wanted"),
    [
        ("x", np.ones((3, 1)), "a vector [n]"),
        ("x", 1.0, "a vector [n]"),
        ("W", np.ones(3), "a matrix [2×n]"),
        ("W", np.ones((2, 3, 1)), "a matrix [2×n]"),
        ("c", np.ones(1), "a scalar []"),
        ("c", [[1.0]], "a scalar []"),
    ],
)
def test_wrong_rank(entry, name, value, wanted):
    feed = good_feed()
    feed[name] = value
    err = feed_error(entry, **feed)
    assert err.message.startswith(f"{name}: expected {wanted}")
    assert str(np.shape(value)) in err.message


@entry_points
def test_wrong_fixed_dim(entry):
    feed = good_feed()
    feed["b"] = np.ones(3)
    err = feed_error(entry, **feed)
    assert err.message == "b: expected shape [2], got (3,): axis 0 should have 2 entries"


@entry_points
def test_wrong_fixed_dim_of_a_matrix(entry):
    feed = good_feed()
    feed["W"] = np.ones((3, 3))
    err = feed_error(entry, **feed)
    assert err.message.startswith("W: expected shape [2×3], got (3, 3)")
    assert "axis 0 should have 2 entries" in err.message


@entry_points
def test_dims_disagree_between_variables(entry):
    feed = good_feed(3)
    feed["W"] = np.ones((2, 4))
    err = feed_error(entry, **feed)
    assert err.message == (
        "W: expected shape [2×3], got (2, 4): axis 1 should have 3 entries (n = 3 from x)"
    )


def test_a_dim_is_bound_by_the_first_array_declared_not_fed():
    program = graphc.parse("dim n\ninput a : [n]\ninput b : [n]\ny = aᵀ b")
    with pytest.raises(graphc.FeedError) as info:
        program.run(b=np.ones(2), a=np.ones(3))
    assert info.value.message.startswith("b: expected shape [3], got (2,)")
    assert "(n = 3 from a)" in info.value.message


def test_a_dim_bound_inside_one_array_is_checked_along_it():
    program = graphc.parse("dim n\nparam A : [n, n]\ny = tr(A)")
    with pytest.raises(graphc.FeedError) as info:
        program.run(A=np.ones((2, 3)))
    assert "A: expected shape [2×2], got (2, 3)" in info.value.message
    assert "(n = 2 from A)" in info.value.message


def test_dim_expressions_are_solved_and_checked():
    program = graphc.parse("dim n\ninput x : [n]\ninput y : [2*n + 1]\nz = sum(x) + sum(y)")
    assert program.run(x=np.ones(2), y=np.ones(5)) == pytest.approx(7.0)
    with pytest.raises(graphc.FeedError) as info:
        program.run(x=np.ones(2), y=np.ones(4))
    assert info.value.message.startswith("y: expected shape [5], got (4,)")


def test_a_size_no_dim_can_have():
    program = graphc.parse("dim n\ninput y : [2*n]\nz = sum(y)")
    with pytest.raises(graphc.FeedError) as info:
        program.run(y=np.ones(5))
    assert info.value.message.startswith("y: expected shape [2*n], got (5,)")
    assert "no size of n" in info.value.message


def test_a_product_of_dims_waits_for_an_array_that_binds_them():
    text = "dim n, m\ninput x : [n*m]\nparam W : [n, m]\ny = sum(x) + sum(W)"
    program = graphc.parse(text)
    assert program.run(x=np.ones(6), W=np.ones((2, 3))) == pytest.approx(12.0)
    value, grads = graphc.compile(text).value_and_grad(x=np.ones(6), W=np.ones((2, 3)))
    assert value == pytest.approx(12.0)
    np.testing.assert_allclose(grads["W"], np.ones((2, 3)))
    with pytest.raises(graphc.FeedError) as info:
        program.run(x=np.ones(5), W=np.ones((2, 3)))
    assert info.value.message.startswith("x: expected shape [6], got (5,)")
    assert "m = 3 from W" in info.value.message and "n = 2 from W" in info.value.message


@pytest.mark.parametrize(
    ("text", "dim", "column"),
    [
        ("dim n, m\ninput x : [n*m]\ny = sum(x)", "n", 5),  # n*m = 6: 2×3 or 3×2?
        ("dim n, m\ninput z : [n+m]\ny = sum(z)", "n", 5),
        ("dim n, m\ninput x : [n]\ninput z : [n*m*m]\ny = sum(z) + sum(x)", "m", 8),
    ],
)
def test_a_dim_no_array_can_give_is_an_error_where_it_is_declared(text, dim, column):
    # Caught when the program is read, not when it is first fed.
    with pytest.raises(graphc.ShapeError) as info:
        graphc.parse(text, "p.gc")
    err = info.value
    assert (err.line, err.column) == (1, column)
    assert err.message.startswith(f"dim {dim} cannot be read from the shapes of the inputs")


def test_empty_arrays_are_arrays():
    program = graphc.parse("dim n\ninput x : [n]\ny = sum(x) + 1")
    assert program.run(x=np.zeros(0)) == pytest.approx(1.0)


# ---------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------


@entry_points
@pytest.mark.parametrize(
    ("value", "what"),
    [
        (np.array([1.0, 2.0, 3.0], dtype=object), "Python objects"),
        (np.array(["1", "2", "3"]), "text"),
        (["a", "b", "c"], "text"),
        (np.array([1.0, 2.0, 3.0]) + 0j, "complex numbers"),
        (np.array([True, False, True]), "booleans"),
        ([None, None, None], "Python objects"),
        (np.array([b"a", b"b", b"c"]), "bytes"),
    ],
    ids=["object", "str", "list-of-str", "complex", "bool", "none", "bytes"],
)
def test_non_numeric_arrays_are_rejected(entry, value, what):
    feed = good_feed()
    feed["x"] = value
    err = feed_error(entry, **feed)
    assert err.message == f"x: expected real numbers for input x [n], got {what}"


@entry_points
def test_non_numeric_scalars_are_rejected(entry):
    for value, what in [(True, "booleans"), (1 + 2j, "complex numbers"), ("0.5", "text")]:
        feed = good_feed()
        feed["c"] = value
        err = feed_error(entry, **feed)
        assert err.message == f"c: expected real numbers for param c [], got {what}"


@entry_points
def test_ragged_lists_are_rejected(entry):
    feed = good_feed()
    feed["W"] = [[1.0, 2.0, 3.0], [1.0, 2.0]]
    err = feed_error(entry, **feed)
    assert err.message.startswith("W: cannot read list as an array")


@entry_points
def test_integers_lists_and_python_scalars_are_accepted(entry):
    floats = {
        "x": np.array([1.0, -2.0, 3.0]),
        "W": np.array([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]]),
        "b": np.array([0.0, 1.0]),
        "c": 2.0,
    }
    variants = [
        {"x": [1, -2, 3], "W": [[1, 0, 2], [0, 1, -1]], "b": [0, 1], "c": 2},
        {
            "x": np.array([1, -2, 3], dtype=np.int8),
            "W": np.array([[1, 0, 2], [0, 1, -1]], dtype=np.int64),
            "b": np.array([0, 1], dtype=np.uint16),
            "c": np.int32(2),
        },
        {
            "x": np.array([1, -2, 3], dtype=np.float16),  # float32 stays float32: test_dtypes
            "W": np.array([[1, 0, 2], [0, 1, -1]], dtype=np.float16),
            "b": (0.0, 1.0),
            "c": np.float64(2.0),
        },
        {**floats, "c": np.array(2.0)},
        {**floats, "x": [Fraction(1), Fraction(-4, 2), 3], "c": Fraction(4, 2)},  # NumPy: objects
    ]
    want = ENTRY_POINTS[entry](**floats)
    for feed in variants:
        got = ENTRY_POINTS[entry](**feed)
        assert got == want
        assert np.asarray(got).dtype == np.float64


@entry_points
def test_python_integers_beyond_int64_are_real_numbers(entry):
    # NumPy keeps 2**70 as a Python object; it is still a real number, read as float64.
    assert ENTRY_POINTS[entry](**{**good_feed(), "c": 2**70}) == ENTRY_POINTS[entry](
        **{**good_feed(), "c": float(2**70)}
    )


@pytest.mark.parametrize("fn", [REVERSE, FORWARD], ids=["reverse", "forward"])
def test_integer_feeds_give_float64_gradients(fn):
    value, grads = fn.value_and_grad(x=[1, 2, 3], W=[[0, 1, 0], [1, 0, 0]], b=[0, 0], c=3)
    assert isinstance(value, np.floating) and value.dtype == np.float64
    for name, g in grads.items():
        assert np.asarray(g).dtype == np.float64, name
    assert grads["c"] == pytest.approx(6.0)


def test_integer_arithmetic_does_not_truncate():
    program = graphc.parse("input k : [3]\ny = k / 2")
    np.testing.assert_array_equal(program.run(k=np.array([1, 2, 3])), [0.5, 1.0, 1.5])
    fn = graphc.compile("param k : [3]\ny = sum(k / 2)")
    np.testing.assert_array_equal(fn.grad(k=np.array([1, 2, 3]))["k"], [0.5, 0.5, 0.5])


# ---------------------------------------------------------------------------
# Inputs are never modified; outputs have the declared shapes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_inputs_are_not_modified(mode):
    text = (
        "input x : [3]\nparam W : [3, 3]\nparam b : [3]\nparam c : []\n"
        "h = tanh(W x + b)\ny = hᵀ h + c x ᵀ x + sum(W ∘ W)"
    )
    fn = graphc.compile(text, mode=mode)
    feed = {
        "x": RNG.normal(size=3),
        "W": RNG.normal(size=(3, 3)),
        "b": RNG.normal(size=3),
        "c": np.array(0.25),
    }
    before = {k: v.copy() for k, v in feed.items()}
    fn.value_and_grad(**feed)
    fn.grad(**feed)
    fn(**feed)
    fn.jacobian(**feed)
    graphc.parse(text).run(**feed)
    for name in feed:
        np.testing.assert_array_equal(feed[name], before[name])


def test_results_do_not_alias_the_inputs():
    # ∂(wᵀx)/∂w = x: the gradient must be a new array, not the caller's x,
    # or `g["w"] *= lr` would change x.
    fn = graphc.compile("input x : [3]\nparam w : [3]\ns = wᵀ x")
    x, w = np.array([1.0, 2.0, 3.0]), np.ones(3)
    value, grads = fn.value_and_grad(x=x, w=w)
    assert not np.shares_memory(grads["w"], x)
    grads["w"] *= 10
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])

    identity = graphc.parse("input x : [3]\ny = x")
    out = identity.run(x=x)
    assert not np.shares_memory(out, x)
    out[0] = 99.0
    assert x[0] == 1.0

    same = graphc.compile("param x : [3]\ny = x")
    assert not np.shares_memory(same(x=x), x)


@entry_points
def test_scalar_outputs_have_shape_empty(entry):
    value = ENTRY_POINTS[entry](**good_feed())
    assert np.shape(value) == ()
    assert isinstance(value, np.floating | float)


@pytest.mark.parametrize("fn", [REVERSE, FORWARD], ids=["reverse", "forward"])
def test_gradients_have_each_variables_shape(fn):
    feed = good_feed(4)
    value, grads = fn.value_and_grad(**feed)
    assert np.shape(value) == ()
    assert set(grads) == {"W", "b", "c"}
    assert np.shape(grads["W"]) == (2, 4)
    assert np.shape(grads["b"]) == (2,)
    assert np.shape(grads["c"]) == ()
    assert fn.grad(**feed).keys() == grads.keys()


def test_gradients_by_requested_names_only():
    fn = graphc.compile(TEXT, wrt=["x", "c"])
    grads = fn.grad(**good_feed(5))
    assert set(grads) == {"x", "c"}
    assert np.shape(grads["x"]) == (5,) and np.shape(grads["c"]) == ()


def test_vector_and_matrix_outputs_keep_their_shapes():
    text = "dim n\ninput x : [n]\nparam W : [2, n]\nv = W x\n"
    assert np.shape(graphc.parse(text).run(x=np.ones(3), W=np.ones((2, 3)))) == (2,)
    assert np.shape(graphc.compile(text)(x=np.ones(3), W=np.ones((2, 3)))) == (2,)
    outer = "input x : [3]\ninput y : [2]\nM = x yᵀ"
    assert np.shape(graphc.parse(outer).run(x=np.ones(3), y=np.ones(2))) == (3, 2)
    row = "input x : [3]\nr = xᵀ"
    assert np.shape(graphc.parse(row).run(x=np.ones(3))) == (3,)


def test_the_same_checks_guard_a_program_with_no_unbound_dims():
    fn = graphc.compile("input x : [3]\nparam w : [3]\ns = wᵀ x")
    with pytest.raises(graphc.FeedError) as info:
        fn.grad(x=np.ones(3), w=np.ones(4))
    assert info.value.message == "w: expected shape [3], got (4,): axis 0 should have 3 entries"
    with pytest.raises(graphc.FeedError) as info:
        fn(x=np.ones((3, 3)), w=np.ones(3))
    assert "x: expected a vector [3]" in info.value.message


def test_feed_names_match_as_python_reads_identifiers():
    # Python passes fn(ℓ=2.0) as l (NFKC); the program's name is ℓ.
    fn = graphc.compile("param ℓ, x₁ : []\ny = ℓ^2 x₁")
    assert fn(ℓ=2.0, x1=3.0) == 12.0  # Python reads ℓ= as l=
    assert fn(**{"ℓ": 2.0, "x1": 3.0}) == 12.0
    assert fn.grad(l=2.0, x1=3.0) == {"ℓ": 12.0, "x₁": 4.0}
    assert graphc.parse("param ℓ : []\ny = 2 ℓ").run(l=5.0) == 10.0
    with pytest.raises(graphc.FeedError) as err:
        fn(**{"ℓ": 2.0, "l": 2.0, "x1": 1.0})
    assert err.value.message == "ℓ and l both feed ℓ; give one value"
    # the emitted module names its keywords, and says how Python spells them
    assert "def value(*, l, x1):" in fn.source
    assert "Python spells ℓ as l, x₁ as x1." in fn.source


def test_views_of_inputs_are_copied_unless_copy_is_off():
    # ∂ sum(A ∘ B)/∂A = B: returned as the caller's B (or a view of it) unless copied.
    fn = graphc.compile("dim n = 2\nparam A : [n, n]\nparam B : [n, n]\ns = sum(A ∘ Bᵀ)")
    big = np.arange(8.0).reshape(2, 4)
    A, B = np.ones((2, 2)), big[:, :2]  # B is a view of the caller's `big`
    grads = fn.grad(A=A, B=B)
    assert not np.shares_memory(grads["A"], big)
    np.testing.assert_array_equal(grads["A"], B.T)
    fn.copy = False  # the documented opt-out: results as the module returns them
    assert np.shares_memory(fn.grad(A=A, B=B)["A"], big)


def test_the_feed_plan_takes_float64_arrays_that_fit_and_nothing_else():
    fn = graphc.compile("dim m\ndim n\nparam W : [m, n]\ninput x : [n]\ny = sum(W x)")
    plan = fn._plan
    W, x = np.ones((2, 3)), np.ones(3)
    assert plan.fast({"W": W, "x": x}) == {"W": W, "x": x}
    assert plan.fast({"W": W, "x": np.ones(4)}) is None  # n = 3 from W, 4 from x
    assert plan.fast({"W": W.astype(int), "x": x}) is None  # converted on the long way
    assert plan.fast({"W": W}) is None
    assert plan.fast({"W": W, "x": x, "z": x}) is None
    # what the long way says about each (the plan never decides an error)
    with pytest.raises(graphc.GraphcError, match="x: expected shape"):
        fn.value_and_grad(W=W, x=np.ones(4))
    value, grads = fn.value_and_grad(W=W.astype(int), x=[1, 1, 1])
    assert value == 6.0 and grads["W"].dtype == np.float64


def test_the_feed_plan_remembers_shapes_that_fit_and_only_those():
    fn = graphc.compile("dim m\ndim n\nparam W : [m, n]\ninput x : [n]\ny = sum(W x)")
    plan = fn._plan
    assert plan.dtype({"W": np.ones((2, 3)), "x": np.ones(3)}) is np.dtype(np.float64)
    assert plan.dtype({"W": np.ones((5, 4)), "x": np.ones(4)}) is np.dtype(np.float64)
    assert len(plan._fits) == 2  # both sizes remembered
    # a misfit is checked dim by dim, never remembered, and takes the long way each time
    for _ in range(2):
        assert plan.dtype({"W": np.ones((2, 3)), "x": np.ones(4)}) is None
        with pytest.raises(graphc.FeedError, match="x: expected shape"):
            fn.value_and_grad(W=np.ones((2, 3)), x=np.ones(4))
    assert len(plan._fits) == 2
    for k in range(40):  # a bounded memory: more sizes still pass, checked each time
        assert plan.dtype({"W": np.ones((1, k + 1)), "x": np.ones(k + 1)}) is not None
    assert len(plan._fits) == plan.REMEMBERED
    # fixed dims: the one tuple of shapes is known from the start
    fixed = graphc.compile("dim n = 3\nparam W : [n, n]\ninput x : [n]\ny = sum(W x)")
    assert fixed._plan._fits == {((3, 3), (3,))}
    assert fixed._plan.dtype({"W": np.ones((3, 3)), "x": np.ones(2)}) is None


def test_the_feed_plan_takes_one_floating_dtype():
    text = "dim m\ndim n\nparam W : [m, n]\ninput x : [n]\ny = sum(W x)"
    fn = graphc.compile(text)
    W, x = np.ones((2, 3), np.float32), np.ones(3, np.float32)
    assert fn._plan.fast({"W": W, "x": x}) == {"W": W, "x": x}  # float32 stays float32
    value, grads = fn.value_and_grad(W=W, x=x)
    assert value.dtype == np.float32 and grads["W"].dtype == np.float32
    # float32 beside float64 takes the long way, which names both
    assert fn._plan.fast({"W": W, "x": x.astype(np.float64)}) is None
    with pytest.raises(graphc.FeedError, match="mixed dtypes in one call: W float32; x float64"):
        fn(W=W, x=x.astype(np.float64))
    assert fn._plan.fast({"W": W.astype(np.float16), "x": x}) is None
    # a dtype fixed at compile time: the plan takes only that one, the long way converts
    fixed = graphc.compile(text, dtype="float32")
    assert fixed._plan.fast({"W": W, "x": x}) is not None
    assert fixed._plan.fast({"W": np.ones((2, 3)), "x": np.ones(3)}) is None
    assert fixed(W=np.ones((2, 3)), x=np.ones(3)).dtype == np.float32


# ---- the module's f_dict twins: the arrays in one dict --------------------------------------


def layered(n: int) -> str:
    lines = ["dim w = 3", "input x : [w]"]
    lines += [f"param W{k} : [w, w]\nparam b{k} : [w]" for k in range(1, n + 1)]
    lines += ["h1 = tanh(W1 x + b1)"]
    lines += [f"h{k} = tanh(W{k} h{k - 1} + b{k})" for k in range(2, n + 1)]
    return "\n".join(lines) + f"\nJ = sum(h{n})\n"


def layered_feed(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(n)
    feed = {"x": rng.normal(size=3)}
    for k in range(1, n + 1):
        feed[f"W{k}"] = rng.normal(size=(3, 3))
        feed[f"b{k}"] = rng.normal(size=3)
    return feed


@pytest.mark.parametrize("layers", [2, 40])  # the body in f (few variables), in f_dict (many)
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_dict_twins_compute_what_the_keyword_functions_do(layers, mode):
    text, feed = layered(layers), layered_feed(layers)
    module = graphc.runtime.load_module(graphc.compile(text, mode=mode).source)
    value, grads = module.value_and_grad(**feed)
    value_d, grads_d = module.value_and_grad_dict(feed)
    assert value_d == value == module.value_dict(feed) == module.value(**feed)
    assert grads_d.keys() == grads.keys() == {k for k in feed if k != "x"}
    for k in grads:
        np.testing.assert_array_equal(grads_d[k], grads[k])
    # the chain rule by hand: h_k = tanh(W_k h_{k-1} + b_k), J = Σ h_n
    hs = [feed["x"]]
    for k in range(1, layers + 1):
        hs.append(np.tanh(feed[f"W{k}"] @ hs[-1] + feed[f"b{k}"]))
    g = np.ones(3)
    for k in range(layers, 0, -1):
        delta = g * (1 - hs[k] ** 2)
        np.testing.assert_allclose(grads[f"b{k}"], delta, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(grads[f"W{k}"], np.outer(delta, hs[k - 1]), rtol=1e-12)
        g = feed[f"W{k}"].T @ delta
    assert value == pytest.approx(hs[-1].sum(), rel=1e-14)


def test_dict_twins_write_into_buffers_and_print_the_body_once():
    layers = 40
    text, feed = layered(layers), layered_feed(layers)
    source = graphc.compile(text).source
    module = graphc.runtime.load_module(source)
    _, grads = module.value_and_grad_dict(feed)
    out = {k: np.full_like(g, 1.0) for k, g in grads.items()}
    value, got = module.value_and_grad_dict(feed, out=out, accumulate=True)
    assert got is out
    for k in grads:
        np.testing.assert_allclose(out[k], grads[k] + 1.0, rtol=1e-14)
    # many variables: the body lives in the twin, which binds no keyword
    code = module.value_and_grad_dict.__code__
    assert (code.co_posonlyargcount, code.co_argcount, code.co_kwonlyargcount) == (1, 3, 0)
    assert source.count(f"np.tanh(W{layers} @") == 2  # value's body and value_and_grad's, once each
    assert "return value_and_grad_dict(\n" in source


def test_a_program_variable_named_feed_is_passed_as_feed_1():
    fn = graphc.compile("param feed : [2]\ny = sum(feed ∘ feed)")
    assert "def value_and_grad(*, feed_1, out=None, accumulate=False):" in fn.source
    assert "feed_1=feed['feed']" in fn.source
    _, grads = fn.value_and_grad(feed=np.array([1.0, 2.0]))
    np.testing.assert_array_equal(grads["feed"], [2.0, 4.0])
    value, _ = fn.module.value_and_grad_dict({"feed": np.array([1.0, 2.0])})
    assert value == 5.0


# ---- the checked entry: fn.value_and_grad printed for the program ------------------------------

CompiledFunction = graphc.runtime.CompiledFunction


def by_method(fn, **feed):
    """The general path: the method the checked entry falls back on."""
    return CompiledFunction.value_and_grad(fn, **feed)


def same_results(got, want) -> None:
    """Equal values of the same types and dtypes: what the entry returns is what the
    general path returns."""
    (value, grads), (want_value, want_grads) = got, want
    assert type(value) is type(want_value) and value == want_value
    assert value.dtype == want_value.dtype
    assert list(grads) == list(want_grads)
    for name, g in grads.items():
        w = want_grads[name]
        assert type(g) is type(w) and g.dtype == w.dtype and np.shape(g) == np.shape(w)
        np.testing.assert_array_equal(g, w)


ENTRY_TEXTS = {
    "unbound dims": TEXT,
    "fixed dims": TEXT.replace("dim n\n", "dim n = 3\n"),
    "a constant gradient": "dim n = 2\nparam a : [n]\nparam c : []\ny = sum(tanh(a)) + 0 c",
}


@pytest.mark.parametrize("mode", ["reverse", "forward"])
@pytest.mark.parametrize("text", sorted(ENTRY_TEXTS))
@pytest.mark.filterwarnings("ignore::graphc.GraphcWarning")
def test_the_checked_entry_returns_what_the_general_path_returns(text, mode):
    fn = graphc.compile(ENTRY_TEXTS[text], mode=mode)
    assert "value_and_grad" in vars(fn)  # the instance's own, printed for the program
    rng = np.random.default_rng(3)
    types = {v.attr("name"): v.type for v in fn.lowered.variables}
    shapes = {k: tuple(d.value or 3 for d in t.dims) for k, t in types.items()}
    for dtype in (np.float64, np.float32):
        feed = {k: rng.normal(size=s).astype(dtype) for k, s in shapes.items()}
        same_results(fn.value_and_grad(**feed), by_method(fn, **feed))
        # a Python number and a list take the general path through the entry
        mixed = {**feed, "c": 0.5} if "c" in feed else {**feed}
        mixed = {k: v.tolist() if k == "a" else v for k, v in mixed.items()}
        same_results(fn.value_and_grad(**mixed), by_method(fn, **mixed))
    assert fn.grad(**feed).keys() == set(fn.wrt)


def test_the_checked_entry_raises_what_the_general_path_raises():
    fn = graphc.compile(TEXT)
    assert "value_and_grad" in vars(fn)
    good = {k: np.asarray(v, dtype=float) for k, v in good_feed().items()}
    bad_feeds = [
        {k: v for k, v in good.items() if k != "W"},  # missing
        {**good, "w": good["W"]},  # extra, with a suggestion
        {**good, "x": np.ones(4)},  # n = 4 from x, 3 from W
        {**good, "b": good["b"].astype(np.float32)},  # mixed dtypes
        {**good, "W": np.ones((2, 3, 1))},  # rank
        {**good, "x": np.array(["a", "b", "c"])},  # text
    ]
    for feed in bad_feeds:
        with pytest.raises(graphc.FeedError) as want:
            by_method(fn, **feed)
        with pytest.raises(graphc.FeedError) as got:
            fn.value_and_grad(**feed)
        assert got.value.message == want.value.message
    _, grads = fn.value_and_grad(**good)
    with pytest.raises(graphc.FeedError, match="out: expected a dict with an array for each"):
        fn.value_and_grad(**good, out={"W": grads["W"]})
    out = {k: np.zeros(np.shape(g)) for k, g in grads.items()}
    value, written = fn.value_and_grad(**good, out=out)
    assert written is out and value == fn(**good)
    with pytest.raises(TypeError):
        fn.value_and_grad(good)  # keywords only, as the method takes them


def test_the_checked_entry_is_only_where_the_plan_checks_and_nothing_aliases():
    assert "value_and_grad" in vars(graphc.compile(TEXT, dtype="float32"))
    others = [
        graphc.compile("dim n = 2\nparam A : [n, n]\nparam B : [n, n]\ns = sum(A ∘ Bᵀ)"),  # ∇A = Bᵀ
        graphc.compile("dim V = 4\ndim d = 2\ninput i : [2] int\nparam E : [V, d]\ns = sum(E[i])"),
        graphc.compile(layered(20)),  # 41 variables: the module's dict twin
        graphc.compile("param ℓ : []\ny = ℓ^2"),  # ℓ is passed as l
        graphc.compile(TEXT, backend="array-api"),
    ]
    for fn in others:
        assert "value_and_grad" not in vars(fn)

    class Scaled(CompiledFunction):  # a subclass's own value_and_grad is what it calls
        def value_and_grad(self, /, **feed):
            value, grads = super().value_and_grad(**feed)
            return 2 * value, grads

    fn = graphc.compile(TEXT)
    scaled = Scaled(fn.lowered, fn.compiled)
    feed = {k: np.asarray(v, dtype=float) for k, v in good_feed().items()}
    assert scaled.value_and_grad(**feed)[0] == 2 * fn.value_and_grad(**feed)[0]


@pytest.mark.parametrize("dtype", [None, "float32"])
def test_the_checked_entry_computes_in_its_own_body(dtype):
    # The entry runs the module's statements itself (no second call, no keywords passed
    # again); the program's locals named as the entry's own step around them.
    text = (
        "dim n = 3\nparam W : [n, n]\ninput x : [n]\nparam b : [n]\n"
        "dtype = tanh(W x + b)\nvalue = sum(dtype ∘ dtype)\ngrads = 2 value\n"
        "more = grads^2\nJ = more + value"
    )
    fn = graphc.compile(text, dtype=dtype)
    entry = vars(fn)["value_and_grad"]
    assert "_call" not in entry.__code__.co_names and "tanh" in entry.__code__.co_names
    rng = np.random.default_rng(5)
    for kind in (np.float64, np.float32):
        feed = {
            "W": rng.normal(size=(3, 3)).astype(kind),
            "x": rng.normal(size=3).astype(kind),
            "b": rng.normal(size=3).astype(kind),
        }
        same_results(fn.value_and_grad(**feed), by_method(fn, **feed))
        value, grads = fn.module.value_and_grad(**feed)
        assert fn.value_and_grad(**feed)[0] == np.asarray(value, dtype=dtype or kind)
