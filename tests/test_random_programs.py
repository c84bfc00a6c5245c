"""Random well-shaped programs, written as text, checked against independent oracles.

Hypothesis builds programs bottom-up from typed pieces (scalars, column and
row vectors, matrices over the dims n, m, n+m and n+1), prints them as
source text with randomly chosen spellings (ᵀ ' .T, ∘ * ⊙, σ sigmoid, − -,
‖…‖ norm(…), juxtaposition, `2x` and `Wx` name splitting, `;` and newlines,
comments, continuation lines, user functions, named intermediates, bound
and unbound dims, subscripts and slices by literals and dims, block columns
``[A, B]``, and integer data: ``x[j]``, ``E[j]``, ``v[ids]``, ``E[ids]``,
``pick(Z, cls)``, each id fed within the size it selects from), and checks,
for the scalar output:

* the interpreter ``parse(text).run`` equals what the text means: the
  generator evaluates every piece it writes with NumPy, so a parser or
  lowering mistake (precedence, grouping, a transpose, a split name) shows;
* the emitted ``value`` (both modes) equals ``run``, which evaluates the
  graph operator by operator rather than the emitted code;
* reverse-mode gradient == forward-mode gradient == central differences of
  ``run`` (with every ``stop(h)`` frozen to the value of ``h``, since a
  stopped value is a constant to the derivative);
* gradients come back under exactly the requested names, each with its
  variable's shape.

Further properties: emitted modules are byte-for-byte deterministic (in this
process and in another one with another hash seed) and import nothing but
numpy; a deliberately ill-shaped statement is a ShapeError on its own line;
a corrupted program fails with a GraphcError, never a Python traceback.
The smallest programs that showed bugs are kept at the end as regressions.

Guards keep every program differentiable at the point fed: log, sqrt and
division only see expressions bounded away from zero (1 + e^2, exp(tanh e),
2 + cos e, …), exp only sees bounded arguments, inv/det/logdet only see
diagonally dominant matrices, ‖·‖ never sees something that may vanish.
relu, abs, max and min are used freely: the inputs are generic, and a kink
that is hit anyway is recognised by one-sided differences.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import json
import os
import re
import subprocess
import sys
import textwrap
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

import graphc
from graphc import builtins as graphc_builtins

# ---------------------------------------------------------------------------
# Types and precedence
# ---------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent

# Precedence levels of the grammar, loosest to tightest.
SUM, PRODUCT, UNARY, POWER, POSTFIX, ATOM = range(6)

SIZES = {"n": 3, "m": 2, "n+m": 5, "n+1": 4}
DIMS = ("n", "m", "n+m", "n+1")  # canonical names of the dims a type may have
INNER = ("n", "n", "m", "n+m", "n+1")  # the contracted dim of a product
SPELLINGS = {
    "n": ("n",),
    "m": ("m",),
    "n+m": ("n+m", "m + n", "n + m"),
    "n+1": ("n+1", "1 + n", "n + 1"),
}

S = ("S",)  # scalar
T = ("T",)  # the argument type of a user function (any type, elementwise)


def C(d: str) -> tuple:  # column vector
    return ("C", d)


def R(d: str) -> tuple:  # row vector
    return ("R", d)


def M(a: str, b: str) -> tuple:  # matrix
    return ("M", a, b)


def Ids(length: str, bound: str) -> tuple:  # integer data: [length] int ("" one id), each < bound
    return ("I", length, bound)


def axes(ty: tuple) -> tuple[str, ...]:
    """The dims of a type's axes (integer data: its length, not the size it selects from)."""
    if ty[0] == "I":
        return (ty[1],) if ty[1] else ()
    return ty[1:]


def sizes_of(ty: tuple) -> tuple[int, ...]:
    return tuple(SIZES[d] for d in axes(ty))


def product_type(a: tuple, b: tuple) -> tuple | None:
    """The type of the matrix-algebra product a b, or None."""
    if a == S:
        return b
    if b == S:
        return a
    if a[0] == "M" and b[0] == "C" and a[2] == b[1]:
        return C(a[1])
    if a[0] == "M" and b[0] == "M" and a[2] == b[1]:
        return M(a[1], b[2])
    return None


# The declared variables a program may use.  Some names are there to trip
# the emitted Python: `i`, `dict`, `grad`, `zero` are names the emitted
# helpers use, `c₁` is `c1` to Python (NFKC, so no intermediate is `c1`), `lambda` is
# a keyword.
POOL: dict[str, tuple] = {
    "a": S,
    "b": S,
    "α": S,
    "c₁": S,
    "i": S,
    "lambda": S,
    "x": C("n"),
    "y": C("n"),
    "x_in": C("n"),
    "dict": C("n"),
    "u": C("m"),
    "w": C("m"),
    "grad": C("m"),
    "ζ": C("n+m"),
    "q": C("n+1"),
    "W": M("n", "n"),
    "V": M("n", "n"),
    "A": M("n", "m"),
    "B": M("m", "n"),
    "zero": M("m", "m"),
    "ids": Ids("n", "m"),  # rows of an [m×k] gathered for each of n windows: E[ids]
    "cls": Ids("n", "m"),  # a class per row of an [n×m]: pick(Z, cls)
    "j": Ids("", "n"),  # one id: x[j]
}
INTEGER = {name for name, ty in POOL.items() if ty[0] == "I"}
# Names that can never be the concatenation of two declared names.
BUILTIN_NAMES = set(graphc_builtins.all_names())
LITERALS = ("2", "0.5", "3", "1.5", ".5", "2.", "1e-1", "0.25", "1.5e0", "4")
FUNCTION_NAMES = ("f", "φ", "ψ", "act")
FUNCTION_PARAMS = (("t",), ("t", "s"), ("τ",), ("τ", "ρ"))
INTERMEDIATE_PREFIXES = ("h", "r", "δ", "c", "z")
SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


Ev = Callable[[dict], Any]  # the meaning of an expression: NumPy, given the feed


@dataclass(frozen=True)
class Expr:
    text: str
    ty: tuple
    level: int
    zero: bool = False  # may be identically zero (so no ‖·‖ of it)
    ev: Ev = field(default=lambda env: None, compare=False, repr=False)


def lift(fn: Callable, *args: Expr) -> Ev:
    """The evaluation of fn applied to the evaluations of args."""
    evs = [a.ev for a in args]
    return lambda env: fn(*(ev(env) for ev in evs))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


NUMPY = {
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "σ": sigmoid,
    "sigmoid": sigmoid,
    "softplus": lambda x: np.logaddexp(0.0, x),
    "relu": lambda x: np.maximum(x, 0.0),
    "abs": np.abs,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "max": np.maximum,
    "min": np.minimum,
    "sum": np.sum,
    "mean": np.mean,
    "logsumexp": lambda a: np.log(np.sum(np.exp(a))),
    "softmax": lambda v: np.exp(v) / np.sum(np.exp(v)),
    "norm": lambda a: np.sqrt(np.sum(a * a)),
    "dot": lambda a, b: np.sum(a * b),
    "outer": np.outer,
    "tr": np.trace,
    "trace": np.trace,
    "diag": np.diag,
    "inv": np.linalg.inv,
    "det": np.linalg.det,
    "logdet": lambda a: np.linalg.slogdet(a)[1],
    "stop": lambda a: a,
    "detach": lambda a: a,
}


def matrix_product(a: tuple, b: tuple) -> Callable:
    """What the product a b means for arrays of types a and b."""
    if S in (a, b) or T in (a, b):
        return lambda x, y: x * y
    if a[0] == "C" and b[0] == "R":
        return np.outer
    return lambda x, y: x @ y


@dataclass
class Function:
    name: str
    params: tuple[str, ...]
    kind: str  # "map": returns its argument's type; "reduce": returns a scalar
    zero: bool  # the body may be identically zero (relu(t − t))
    ev: Ev  # the body's evaluation, with the parameters in env
    used: set[str]  # the declared variables the body reads


@dataclass
class Ctx:
    used: set[str] = field(default_factory=set)
    statements: list[str] = field(default_factory=list)
    named: dict[tuple, list[Expr]] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)  # every name the program defines
    stops: list[tuple[str, tuple]] = field(default_factory=list)
    functions: list[Function] = field(default_factory=list)
    dims: set[str] = field(default_factory=set)  # dims used as values (`n`)
    params: tuple[str, ...] = ()  # inside a function body: its parameters
    counter: int = 0

    @property
    def top(self) -> bool:
        return not self.params


# ---------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------


def wrap(e: Expr, level: int) -> str:
    """``e``'s text, parenthesised if it binds looser than ``level`` asks."""
    return e.text if e.level >= level else f"({e.text})"


def bare(text: str) -> str:
    """Text without parentheses and spaces: `c - (c)` is zero too."""
    return re.sub(r"[()\s]", "", text)


def juxtapose(draw, left: Expr, right: Expr, ty: tuple) -> Expr:
    """``left right``: the product by juxtaposition (or @ ·)."""
    ev = lift(matrix_product(left.ty, right.ty), left, right)
    zero = left.zero or right.zero
    op = draw(st.sampled_from([" ", " ", " ", " @ ", " · "]))
    if op != " ":
        return Expr(f"{wrap(left, PRODUCT)}{op}{wrap(right, UNARY)}", ty, PRODUCT, zero, ev)
    lt, rt = wrap(left, PRODUCT), wrap(right, POWER)
    if re.search(r"\w$", lt) and rt.startswith("("):
        lt = f"({lt})"  # `x (y)` would read as a call x(y), i.e. x·y grouped to the right
    if (
        left.text in LITERALS
        and not left.text.endswith(".")
        and re.match(r"[^\W\deE]", rt)
        and draw(st.booleans())
    ):
        op = ""  # `2x`
    return Expr(f"{lt}{op}{rt}", ty, PRODUCT, zero, ev)


def call(name: str, *args: Expr, ty: tuple, zero: bool = False) -> Expr:
    text = f"{name}({', '.join(a.text for a in args)})"
    return Expr(text, ty, ATOM, zero, lift(NUMPY[name], *args))


def transpose(draw, e: Expr, ty: tuple) -> Expr:
    sym = draw(st.sampled_from(["ᵀ", "ᵀ", "'", ".T"]))
    text = wrap(e, POSTFIX)
    if sym == ".T" and re.search(r"[\d.]$", text):
        sym = "ᵀ"  # `2.T` reads as the number 2. and the name T
    return Expr(text + sym, ty, POSTFIX, e.zero, lift(np.transpose, e))


def readings(word: str, known: set[str]) -> list[list[str]]:
    """Every way to write ``word`` as two or more known names (as graphc reads `Wx`)."""
    ways: list[list[list[str]]] = [[] for _ in range(len(word) + 1)]
    ways[len(word)] = [[]]
    for i in range(len(word) - 1, -1, -1):
        for j in range(i + 1, len(word) + 1):
            if word[i:j] in known:
                ways[i] += [[word[i:j], *rest] for rest in ways[j]]
    return [r for r in ways[0] if len(r) > 1]


# ---------------------------------------------------------------------------
# The generator: gen(ty) builds an expression of type ty
# ---------------------------------------------------------------------------


def fresh(draw, ctx: Ctx, prefixes=INTERMEDIATE_PREFIXES) -> str:
    while True:
        ctx.counter += 1
        prefix = draw(st.sampled_from(prefixes))
        style = draw(st.sampled_from(["plain", "underscore", "subscript"]))
        number = str(ctx.counter)
        name = {
            "plain": f"{prefix}{number}",
            "underscore": f"{prefix}_{number}",
            "subscript": prefix + number.translate(SUBSCRIPTS),
        }[style]
        # c1 and c₁ are one name to Python (NFKC), which graphc refuses
        clashes = {unicodedata.normalize("NFKC", n) for n in (*ctx.taken, *POOL)}
        if unicodedata.normalize("NFKC", name) not in clashes:
            ctx.taken.add(name)
            return name


def variable(ctx: Ctx, name: str) -> Expr:
    ctx.used.add(name)
    return Expr(name, POOL[name], ATOM, ev=lambda env: env[name])


def leaf(draw, ctx: Ctx, ty: tuple) -> Expr:
    if ty == T:
        name = draw(st.sampled_from(ctx.params))
        return Expr(name, T, ATOM, ev=lambda env: env[name])
    kinds = []
    names = [n for n, t in POOL.items() if t == ty]
    if names:
        kinds.append("var")
    if ty == S:
        kinds += ["literal", "literal", "dim"]
    if ctx.top and ctx.named.get(ty):
        kinds.append("named")
    if ctx.top and concatenations(ctx, ty):
        kinds.append("concatenated")
    if ty[0] != "S" and not names:
        kinds.append("built")
    if ty in (C("n+m"), C("n+1")):
        kinds += ["var", "built", "built"]  # ζ, [x; u], [a; x]
    kind = draw(st.sampled_from(kinds))
    if kind == "var":
        return variable(ctx, draw(st.sampled_from(names)))
    if kind == "literal":
        text = draw(st.sampled_from(LITERALS))
        return Expr(text, S, ATOM, ev=lambda env: float(text))
    if kind == "dim":
        d = draw(st.sampled_from(["n", "m"]))
        ctx.dims.add(d)
        return Expr(d, S, ATOM, ev=lambda env: float(SIZES[d]))
    if kind == "named":
        return draw(st.sampled_from(ctx.named[ty]))
    if kind == "concatenated":  # `Wx`: a name graphc splits into W x
        first, second = draw(st.sampled_from(concatenations(ctx, ty)))
        a, b = variable(ctx, first), variable(ctx, second)
        return Expr(first + second, ty, ATOM, ev=lift(matrix_product(a.ty, b.ty), a, b))
    # a type no variable has: build it from leaves
    if ty[0] == "R":
        return transpose(draw, leaf(draw, ctx, C(ty[1])), ty)
    if ty == C("n+m"):
        parts = [leaf(draw, ctx, C("n")), leaf(draw, ctx, C("m"))]
        parts = parts[:: draw(st.sampled_from([1, -1]))]
        return concat(draw, parts, ty)
    if ty == C("n+1"):
        parts = [leaf(draw, ctx, S), leaf(draw, ctx, C("n"))]
        parts = parts[:: draw(st.sampled_from([1, -1]))]
        return concat(draw, parts, ty)
    if ty[0] == "M":
        left, right = leaf(draw, ctx, C(ty[1])), leaf(draw, ctx, C(ty[2]))
        if draw(st.booleans()):
            return call("outer", left, right, ty=ty)
        return juxtapose(draw, left, transpose(draw, right, R(ty[2])), ty)
    raise AssertionError(ty)


def concatenations(ctx: Ctx, ty: tuple) -> list[tuple[str, str]]:
    """Pairs of pool names whose concatenation `Wx` reads uniquely as their product."""
    known = set(POOL)
    out = []
    for first, t1 in POOL.items():
        for second, t2 in POOL.items():
            if first in INTEGER or second in INTEGER:
                continue
            word = first + second
            if (
                product_type(t1, t2) == ty
                and word not in known | BUILTIN_NAMES | ctx.taken | {"n", "m"}
                and len(readings(word, known)) == 1
            ):
                out.append((first, second))
    return out


def concat(draw, parts: list[Expr], ty: tuple) -> Expr:
    sep = draw(st.sampled_from(["; ", ";", " ; ", ";\n    "]))
    if ty[0] == "C":
        ev = lift(lambda *xs: np.concatenate([np.atleast_1d(x) for x in xs]), *parts)
    else:
        ev = lift(lambda *xs: np.vstack(xs), *parts)
    text = "[" + sep.join(p.text for p in parts) + "]"
    return Expr(text, ty, ATOM, all(p.zero for p in parts), ev)


def gen(draw, ctx: Ctx, ty: tuple, depth: int) -> Expr:
    if depth <= 0 or not draw(st.integers(0, 2 if depth == 1 else 6)):
        e = leaf(draw, ctx, ty)
    else:
        rule = draw(st.sampled_from(rules_for(ctx, ty)))
        e = rule(draw, ctx, ty, depth - 1)
    if ctx.top and e.level < ATOM and ty != T and not draw(st.integers(0, 4)):
        name = fresh(draw, ctx)
        ctx.statements.append(f"{name} = {e.text}")
        e = Expr(name, ty, ATOM, e.zero, e.ev)
        ctx.named.setdefault(ty, []).append(e)
    if not draw(st.integers(0, 11)):
        e = Expr(f"({e.text})", ty, ATOM, e.zero, e.ev)
    return e


def operand_types(draw, ty: tuple) -> tuple[tuple, tuple]:
    """Two types that combine elementwise (NumPy broadcasting) to give ty."""
    if ty == S:
        return S, S
    pairs = [(ty, ty), (ty, ty), (ty, S), (S, ty)]
    if ty[0] == "M":  # a vector along the matrix's last axis, either orientation
        pairs += [(ty, C(ty[2])), (ty, R(ty[2])), (R(ty[2]), ty)]
        if ty[1] != ty[2]:  # a column of the row dim, spread across the columns
            pairs += [(ty, C(ty[1])), (C(ty[1]), ty)]
    return draw(st.sampled_from(pairs))


def aligned(e: Expr, ty: tuple) -> Expr:
    """``e`` as NumPy broadcasts it against a ``ty``: a column of the row dim as v[:, None]."""
    if ty[0] == "M" and e.ty == C(ty[1]) and ty[1] != ty[2]:
        return Expr(e.text, e.ty, e.level, e.zero, lambda env: np.asarray(e.ev(env))[:, None])
    return e


def operands(draw, ctx: Ctx, ty: tuple, depth: int) -> tuple[Expr, Expr]:
    a, b = operand_types(draw, ty)
    return aligned(gen(draw, ctx, a, depth), ty), aligned(gen(draw, ctx, b, depth), ty)


def positive(draw, ctx: Ctx, ty: tuple, depth: int, strong: bool = False) -> Expr:
    """An expression of type ty whose entries are at least 1 (strong) or 1/e."""
    e = gen(draw, ctx, ty, depth)
    forms = ["square", "hadamard", "cos", "sigmoid", "softplus"]
    if not strong:
        forms += ["exp"]
    form = draw(st.sampled_from(forms))
    if form == "square":
        return Expr(f"1 + {wrap(e, POSTFIX)}^2", ty, SUM, ev=lift(lambda x: 1 + x**2, e))
    if form == "hadamard":
        op = draw(st.sampled_from(["∘", "*", "⊙"]))
        text = f"1 + {wrap(e, PRODUCT)} {op} {wrap(e, UNARY)}"
        return Expr(text, ty, SUM, ev=lift(lambda x: 1 + x * x, e))
    if form == "cos":
        return Expr(f"2 + cos({e.text})", ty, SUM, ev=lift(lambda x: 2 + np.cos(x), e))
    if form == "sigmoid":
        name = draw(st.sampled_from(["σ", "sigmoid"]))
        return Expr(f"1 + {name}({e.text})", ty, SUM, ev=lift(lambda x: 1 + sigmoid(x), e))
    if form == "softplus":
        return Expr(
            f"softplus({e.text}) + 1", ty, SUM, ev=lift(lambda x: 1 + np.logaddexp(0, x), e)
        )
    return bounded_exp(draw, e, ty)


def bounded_exp(draw, e: Expr, ty: tuple) -> Expr:
    squash = draw(st.sampled_from(["tanh", "sin", "cos", "σ"]))
    inner = call(squash, e, ty=ty)
    return call("exp", inner, ty=ty)


def well_conditioned(draw, ctx: Ctx, d: str, depth: int) -> Expr:
    """A diagonally dominant [d×d] matrix: diag(≥1) + 0.1 tanh(…)."""
    p = positive(draw, ctx, C(d), depth, strong=True)
    m = gen(draw, ctx, M(d, d), depth)
    ev = lift(lambda v, a: np.diag(v) + 0.1 * np.tanh(a), p, m)
    return Expr(f"(diag({p.text}) + 0.1 tanh({m.text}))", M(d, d), ATOM, ev=ev)


# ---- rules for every type ------------------------------------------------------


def r_add(draw, ctx, ty, depth):
    a, b = operands(draw, ctx, ty, depth)
    op = draw(st.sampled_from(["+", "-", "−"]))
    zero = (a.zero and b.zero) or (op != "+" and bare(a.text) == bare(b.text))
    fn = (lambda x, y: x + y) if op == "+" else (lambda x, y: x - y)
    return Expr(f"{wrap(a, SUM)} {op} {wrap(b, PRODUCT)}", ty, SUM, zero, lift(fn, a, b))


def r_hadamard(draw, ctx, ty, depth):
    a, b = operands(draw, ctx, ty, depth)
    op = draw(st.sampled_from(["∘", "*", "⊙"]))
    text = f"{wrap(a, PRODUCT)} {op} {wrap(b, UNARY)}"
    return Expr(text, ty, PRODUCT, a.zero or b.zero, lift(lambda x, y: x * y, a, b))


def r_divide(draw, ctx, ty, depth):
    num_ty, den_ty = operand_types(draw, ty)
    num = aligned(gen(draw, ctx, num_ty, depth), ty)
    den = aligned(positive(draw, ctx, den_ty, depth), ty)
    text = f"{wrap(num, PRODUCT)} / {wrap(den, UNARY)}"
    return Expr(text, ty, PRODUCT, num.zero, lift(lambda x, y: x / y, num, den))


def r_negate(draw, ctx, ty, depth):
    e = gen(draw, ctx, ty, depth)
    op = draw(st.sampled_from(["-", "−", "- "]))
    return Expr(f"{op}{wrap(e, UNARY)}", ty, UNARY, e.zero, lift(lambda x: -x, e))


def r_elementwise(draw, ctx, ty, depth):
    e = gen(draw, ctx, ty, depth)
    fn = draw(st.sampled_from(["sin", "cos", "tanh", "σ", "sigmoid", "softplus", "relu", "abs"]))
    zero = fn == "relu" or (fn in ("sin", "tanh", "abs") and e.zero)
    return call(fn, e, ty=ty, zero=zero)


def r_exp(draw, ctx, ty, depth):
    return bounded_exp(draw, gen(draw, ctx, ty, depth), ty)


def r_log(draw, ctx, ty, depth):
    return call("log", positive(draw, ctx, ty, depth), ty=ty, zero=True)


def r_log_stable(draw, ctx, ty, depth):
    """The logs graphc rewrites to stable forms: log σ, log(1 − σ), log(1 + eˣ), log softmax."""
    form = draw(st.sampled_from(["σ", "1 − σ", "1 + exp", "exp + 1", "exp", "softmax"]))
    if form == "softmax" and ty[0] not in ("C", "R"):
        form = "σ"
    e = gen(draw, ctx, ty, depth)
    if form in ("σ", "softmax", "exp"):
        inner = call(form, e, ty=ty)
    elif form == "1 − σ":
        sig = call("σ", e, ty=ty)
        inner = Expr(f"1 − {sig.text}", ty, SUM, ev=lift(lambda x: 1 - x, sig))
    else:
        exp = call("exp", e, ty=ty)
        text = f"1 + {exp.text}" if form == "1 + exp" else f"{exp.text} + 1"
        inner = Expr(text, ty, SUM, ev=lift(lambda x: 1 + x, exp))
    return call("log", inner, ty=ty, zero=True)


def r_sqrt(draw, ctx, ty, depth):
    return call("sqrt", positive(draw, ctx, ty, depth), ty=ty)


def r_power(draw, ctx, ty, depth):
    e = gen(draw, ctx, ty, depth)
    p = draw(st.sampled_from(["^2", "^3", " ^ 2", "^2"]))
    exponent = int(p.strip(" ^"))
    return Expr(f"{wrap(e, POSTFIX)}{p}", ty, POWER, e.zero, lift(lambda x: x**exponent, e))


def r_power_of_positive(draw, ctx, ty, depth):
    base = positive(draw, ctx, ty, depth)
    kind = draw(st.sampled_from(["0.5", "-1", "-2", "varying"]))
    if kind == "varying":  # a^b with both varying: the `pow` operator
        s = call(draw(st.sampled_from(["σ", "tanh", "sin"])), gen(draw, ctx, S, depth), ty=S)
    else:
        s = Expr(kind, S, UNARY, ev=lambda env: float(kind))
    text = f"{wrap(base, POSTFIX)}^{s.text}"
    return Expr(text, ty, POWER, ev=lift(lambda x, p: x**p, base, s))


def r_max_min(draw, ctx, ty, depth):
    a, b = operands(draw, ctx, ty, depth)
    return call(draw(st.sampled_from(["max", "min"])), a, b, ty=ty, zero=a.zero or b.zero)


def r_scale(draw, ctx, ty, depth):
    s = gen(draw, ctx, S, depth)
    e = gen(draw, ctx, ty, depth)
    return juxtapose(draw, s, e, ty) if draw(st.booleans()) else juxtapose(draw, e, s, ty)


def r_call(draw, ctx, ty, depth):
    fns = [f for f in ctx.functions if f.kind == "map" or ty == S]
    fn = draw(st.sampled_from(fns))
    if fn.kind == "map":
        args = [gen(draw, ctx, ty, depth) for _ in fn.params]
    else:
        arg_ty = draw(st.sampled_from(argument_types(ctx)))
        args = [gen(draw, ctx, arg_ty, depth) for _ in fn.params]
    ctx.used |= fn.used
    same = len(args) == 2 and bare(args[0].text) == bare(args[1].text)  # f(x, x) = x − x
    zero = fn.zero or same or all(a.zero for a in args)
    evs, params, body = [a.ev for a in args], fn.params, fn.ev

    def ev(env):  # inlined: the body with the parameters bound to the arguments
        return body({**env, **{p: a(env) for p, a in zip(params, evs)}})

    return Expr(f"{fn.name}({', '.join(a.text for a in args)})", ty, ATOM, zero, ev)


def r_stop(draw, ctx, ty, depth):
    e = gen(draw, ctx, ty, depth)
    name = fresh(draw, ctx, ("s", "sg"))  # not reusable: a tie with its own stop is a kink
    ctx.statements.append(f"{name} = {e.text}")
    ctx.stops.append((name, ty))
    spelling = draw(st.sampled_from(["stop", "detach"]))
    return Expr(f"{spelling}({name})", ty, ATOM, e.zero, e.ev)


def argument_types(ctx: Ctx) -> list[tuple]:
    if not ctx.top:
        return [T, S]
    return [S, C("n"), C("m"), R("n"), M("n", "n"), M("n", "m"), C("n+m"), C("n+1"), C("n+1")]


# ---- rules by type ----------------------------------------------------------


def r_reduce(draw, ctx, ty, depth):
    e = gen(draw, ctx, draw(st.sampled_from(argument_types(ctx))), depth)
    fn = draw(st.sampled_from(["sum", "sum", "mean", "logsumexp"]))
    return call(fn, e, ty=S, zero=e.zero)


def r_reduce_vector(draw, ctx, ty, depth):
    d = draw(st.sampled_from(DIMS))
    e = gen(draw, ctx, draw(st.sampled_from([C(d), R(d)])), depth)
    fn, axis = draw(st.sampled_from(["sum", "mean"])), draw(st.sampled_from(["0", "-1"]))
    return Expr(f"{fn}({e.text}, {axis})", S, ATOM, e.zero, lift(NUMPY[fn], e))


def ids_for(ty: tuple, rng) -> np.ndarray:
    """Integer data of a type: ids within the size they select from."""
    return rng.integers(0, SIZES[ty[2]], size=sizes_of(ty))


_PROBE_RNG = np.random.default_rng(20240601)
PROBE = {
    name: ids_for(ty, _PROBE_RNG)
    if ty[0] == "I"
    else 0.5 * _PROBE_RNG.standard_normal(sizes_of(ty))
    for name, ty in POOL.items()
}


def may_vanish(e: Expr) -> bool:
    """Whether e may be identically zero: flagged so, or zero at a random point."""
    if e.zero:
        return True
    with np.errstate(all="ignore"):
        return not np.any(np.abs(np.asarray(e.ev(PROBE))) > 1e-9)


def r_norm(draw, ctx, ty, depth):
    """‖e‖ of an e that cannot vanish: the norm has no derivative at 0."""
    arg_ty = draw(st.sampled_from([C("n"), C("m"), R("n"), M("n", "m"), C("n+1"), M("n", "n")]))
    e = gen(draw, ctx, arg_ty, depth)
    for shift in (1, 2):  # e ≡ 0 (x − x, h − h where h = x) or, after a shift, e + 1 ≡ 0
        if may_vanish(e):
            ev = lift(lambda x, k=shift: x + k, e)
            e = Expr(f"{wrap(e, SUM)} + {shift}", arg_ty, SUM, ev=ev)
    if not draw(st.integers(0, 3)):  # a norm inside a norm: ‖(e ‖v‖)‖
        e = juxtapose(draw, e, r_norm(draw, ctx, S, depth - 1), arg_ty)
    if draw(st.booleans()):
        return call("norm", e, ty=S)
    inner = e.text if "‖" not in e.text else f"({e.text})"
    return Expr(f"‖{inner}‖", S, ATOM, ev=lift(NUMPY["norm"], e))


def r_dot(draw, ctx, ty, depth):
    d = draw(st.sampled_from(DIMS))
    kinds = draw(st.sampled_from([(C(d), C(d)), (C(d), R(d)), (R(d), R(d)), ("M", "M")]))
    if kinds[0] == "M":
        k = draw(st.sampled_from(INNER))
        kinds = (M(d, k), M(d, k))
    a, b = (gen(draw, ctx, t, depth) for t in kinds)
    return call("dot", a, b, ty=S, zero=a.zero or b.zero)


def r_inner(draw, ctx, ty, depth):
    d = draw(st.sampled_from(INNER))
    return juxtapose(draw, gen(draw, ctx, R(d), depth), gen(draw, ctx, C(d), depth), S)


def r_trace(draw, ctx, ty, depth):
    d = draw(st.sampled_from(DIMS))
    e = gen(draw, ctx, M(d, d), depth)
    return call(draw(st.sampled_from(["tr", "trace"])), e, ty=S, zero=e.zero)


def r_det(draw, ctx, ty, depth):
    a = well_conditioned(draw, ctx, draw(st.sampled_from(DIMS)), depth)
    return call(draw(st.sampled_from(["det", "logdet"])), a, ty=S, zero=True)


def r_transpose_scalar(draw, ctx, ty, depth):
    return transpose(draw, gen(draw, ctx, S, depth), S)


def r_matvec(draw, ctx, ty, depth):
    k = draw(st.sampled_from(INNER))
    return juxtapose(draw, gen(draw, ctx, M(ty[1], k), depth), gen(draw, ctx, C(k), depth), ty)


def r_vecmat(draw, ctx, ty, depth):
    k = draw(st.sampled_from(INNER))
    return juxtapose(draw, gen(draw, ctx, R(k), depth), gen(draw, ctx, M(k, ty[1]), depth), ty)


def r_transposed(draw, ctx, ty, depth):
    flipped = {"C": lambda: R(ty[1]), "R": lambda: C(ty[1]), "M": lambda: M(ty[2], ty[1])}
    return transpose(draw, gen(draw, ctx, flipped[ty[0]](), depth), ty)


def r_reduce_matrix(draw, ctx, ty, depth):
    k = draw(st.sampled_from([d for d in DIMS if d != ty[1]]))  # non-square: axes differ
    axis = draw(st.sampled_from(["0", "1", "-1", "-2"]))
    shape = M(k, ty[1]) if axis in ("0", "-2") else M(ty[1], k)
    e = gen(draw, ctx, shape, depth)
    fn = draw(st.sampled_from(["sum", "mean"]))
    ev = lift(lambda a: NUMPY[fn](a, axis=int(axis)), e)
    return Expr(f"{fn}({e.text}, {axis})", ty, ATOM, e.zero, ev)


def r_reduce_axis(draw, ctx, ty, depth):
    """max, min, logsumexp along an axis (keyword or position): a column vector."""
    k = draw(st.sampled_from([d for d in DIMS if d != ty[1]]))  # non-square: axes differ
    axis = draw(st.sampled_from(["0", "1"]))
    shape = M(k, ty[1]) if axis == "0" else M(ty[1], k)
    e = gen(draw, ctx, shape, depth)
    fn = draw(st.sampled_from(["max", "min", "logsumexp"]))
    spelled = f"axis={axis}" if fn != "logsumexp" or draw(st.booleans()) else axis
    numpy = {
        "max": np.max,
        "min": np.min,
        "logsumexp": lambda a, axis: np.log(np.sum(np.exp(a), axis=axis)),
    }
    ev = lift(lambda a: numpy[fn](a, axis=int(axis)), e)
    return Expr(f"{fn}({e.text}, {spelled})", ty, ATOM, False, ev)


def r_normalise_rows(draw, ctx, ty, depth):
    """A matrix normalised along an axis: softmax, or the hand-written log softmax."""
    e = gen(draw, ctx, ty, depth)
    axis = draw(st.sampled_from(["0", "1"]))
    form = draw(st.sampled_from(["softmax", "log softmax"]))
    k = int(axis)

    def ev(a):
        shifted = a - np.max(a, axis=k, keepdims=True)
        logp = shifted - np.log(np.sum(np.exp(shifted), axis=k, keepdims=True))
        return np.exp(logp) if form == "softmax" else logp

    if form == "softmax":
        return Expr(f"softmax({e.text}, axis={axis})", ty, ATOM, False, lift(ev, e))
    if ty[1] == ty[2]:  # the reduction would meet a square matrix: spell the softmax
        return Expr(
            f"softmax({e.text}, axis={axis})", ty, ATOM, False, lift(lambda a: np.exp(ev(a)), e)
        )
    text = f"{wrap(e, SUM)} − logsumexp({e.text}, axis={axis})"
    return Expr(text, ty, SUM, False, lift(ev, e))


def r_select(draw, ctx, ty, depth):
    """where(a > b, x, y) and clip(x, lo, hi), entry by entry."""
    if draw(st.booleans()):
        a, b, x, y = (gen(draw, ctx, ty, depth) for _ in range(4))
        op = draw(st.sampled_from([">", ">=", "<", "≤"]))
        test = {">": np.greater, ">=": np.greater_equal, "<": np.less, "≤": np.less_equal}[op]
        ev = lift(lambda p, q, u, v: np.where(test(p, q), u, v), a, b, x, y)
        return Expr(f"where({a.text} {op} {b.text}, {x.text}, {y.text})", ty, ATOM, False, ev)
    x = gen(draw, ctx, ty, depth)
    return Expr(
        f"clip({x.text}, -0.5, 0.5)", ty, ATOM, x.zero, lift(lambda v: np.clip(v, -0.5, 0.5), x)
    )


def subscripted(e: Expr, sub: str, ty: tuple, fn: Callable) -> Expr:
    """``e[sub]``: a subscript right after its operand (an atom: a name or parentheses)."""
    return Expr(f"{wrap(e, ATOM)}[{sub}]", ty, POSTFIX, e.zero, lift(fn, e))


def r_slice(draw, ctx, ty, depth):
    """Entries, rows, columns and blocks by literal or dim positions."""
    n, m = SIZES["n"], SIZES["m"]
    if ty == S:
        e = gen(draw, ctx, draw(st.sampled_from([C("n"), C("m"), C("n+1")])), depth)
        k = draw(st.sampled_from(["0", "1"]))
        return subscripted(e, k, S, lambda a: a[int(k)])
    if ty[0] == "C" and ty[1] in ("n", "m") and draw(st.booleans()):  # a column: A[:, 0]
        e = gen(draw, ctx, M(ty[1], draw(st.sampled_from(DIMS))), depth)
        return subscripted(e, ":, 0", ty, lambda a: a[:, 0])
    if ty[0] == "C":
        source, sub, fn = {
            "n": draw(st.sampled_from([
                ("n+m", "0:n", lambda a: a[:n]), ("n+m", "m:", lambda a: a[m:]),
                ("n+1", "1:", lambda a: a[1:]), ("n+1", ":n", lambda a: a[:n]),
            ])),
            "m": ("n+m", "n:n+m", lambda a: a[n:]),
            "n+m": ("n+m", ":", lambda a: a),
            "n+1": ("n+1", "0:n+1", lambda a: a),
        }[ty[1]]  # fmt: skip
        return subscripted(gen(draw, ctx, C(source), depth), sub, ty, fn)
    if ty[0] == "R":  # a row of a matrix, as a row vector
        e = gen(draw, ctx, M(draw(st.sampled_from(["n", "m"])), ty[1]), depth)
        return subscripted(e, "1, :", ty, lambda a: a[1, :])
    rows, cols = ty[1], ty[2]
    if rows == "n" and draw(st.booleans()):  # rows n of [n+m × k]
        e = gen(draw, ctx, M("n+m", cols), depth)
        return subscripted(e, "0:n, :", ty, lambda a: a[:n, :])
    if cols == "n":  # columns of [k × n+1]
        e = gen(draw, ctx, M(rows, "n+1"), depth)
        return subscripted(e, ":, 1:n+1", ty, lambda a: a[:, 1:])
    e = gen(draw, ctx, M(rows, "n+m"), depth) if cols == "m" else gen(draw, ctx, ty, depth)
    if cols == "m":
        return subscripted(e, ":, n:", ty, lambda a: a[:, n:])
    return subscripted(e, ":, :", ty, lambda a: a)


def r_gather(draw, ctx, ty, depth):
    """Rows gathered by integer data: x[j], E[j], v[ids], E[ids], pick(Z, cls)."""

    def by(name: str, e: Expr, text: str, fn: Callable) -> Expr:
        ctx.used.add(name)
        return Expr(text, ty, ATOM if text.startswith("pick") else POSTFIX, e.zero,
                    lambda env: fn(e.ev(env), env[name]))  # fmt: skip

    if ty == S:  # one entry of a vector
        e = gen(draw, ctx, C("n"), depth)
        return by("j", e, f"{wrap(e, ATOM)}[j]", lambda a, j: a[j])
    if ty[0] == "M":  # [n×k]: rows of an [m×k]
        e = gen(draw, ctx, M("m", ty[2]), depth)
        return by("ids", e, f"{wrap(e, ATOM)}[ids]", lambda a, i: a[i])
    form = draw(st.sampled_from(["row", "entries", "pick"] if ty[1] == "n" else ["row"]))
    if form == "row":  # one row of an [n×d], as a vector
        e = gen(draw, ctx, M("n", ty[1]), depth)
        return by("j", e, f"{wrap(e, ATOM)}[j]", lambda a, j: a[j])
    if form == "entries":
        e = gen(draw, ctx, C("m"), depth)
        return by("ids", e, f"{wrap(e, ATOM)}[ids]", lambda a, i: a[i])
    e = gen(draw, ctx, M("n", "m"), depth)
    return by("cls", e, f"pick({e.text}, cls)", lambda a, c: a[np.arange(SIZES["n"]), c])


def r_hconcat(draw, ctx, ty, depth):
    """Block columns: [A, B] of [d×n] and [d×m], [c, A] of a column and [d×n]."""
    if ty[2] == "n+m":
        parts = [gen(draw, ctx, M(ty[1], "n"), depth), gen(draw, ctx, M(ty[1], "m"), depth)]
    else:
        parts = [gen(draw, ctx, C(ty[1]), depth), gen(draw, ctx, M(ty[1], "n"), depth)]
    parts = parts[:: draw(st.sampled_from([1, -1]))]
    sep = draw(st.sampled_from([", ", ","]))
    ev = lift(lambda *xs: np.column_stack(xs), *parts)
    text = "[" + sep.join(p.text for p in parts) + "]"
    return Expr(text, ty, ATOM, all(p.zero for p in parts), ev)


def r_sum_matrix(draw, ctx, ty, depth):
    """sum(mean(A, axis)) and the like: a matrix reduced along an axis, then to a scalar."""
    vector = r_reduce_matrix(draw, ctx, C(draw(st.sampled_from(DIMS))), depth)
    return call(draw(st.sampled_from(["sum", "mean"])), vector, ty=S, zero=vector.zero)


def r_softmax(draw, ctx, ty, depth):
    return call("softmax", gen(draw, ctx, ty, depth), ty=ty)


def r_diagonal(draw, ctx, ty, depth):
    e = gen(draw, ctx, M(ty[1], ty[1]), depth)
    return call("diag", e, ty=ty, zero=e.zero)


def r_concat(draw, ctx, ty, depth):
    if ty[0] == "C":
        if ty[1] == "n+m":
            parts = [gen(draw, ctx, C("n"), depth), gen(draw, ctx, C("m"), depth)]
        else:
            parts = [gen(draw, ctx, S, depth), gen(draw, ctx, C("n"), depth)]
    elif ty[1] == "n+m":
        parts = [gen(draw, ctx, M("n", ty[2]), depth), gen(draw, ctx, M("m", ty[2]), depth)]
    else:
        parts = [gen(draw, ctx, M("n", ty[2]), depth), gen(draw, ctx, R(ty[2]), depth)]
    return concat(draw, parts[:: draw(st.sampled_from([1, -1]))], ty)


def r_solve(draw, ctx, ty, depth):
    a = well_conditioned(draw, ctx, ty[1], depth)
    rest = gen(draw, ctx, C(ty[1]) if ty[0] == "C" else M(ty[1], ty[2]), depth)
    return juxtapose(draw, call("inv", a, ty=M(ty[1], ty[1])), rest, ty)


def r_matmat(draw, ctx, ty, depth):
    k = draw(st.sampled_from(INNER))
    left, right = gen(draw, ctx, M(ty[1], k), depth), gen(draw, ctx, M(k, ty[2]), depth)
    return juxtapose(draw, left, right, ty)


def r_outer(draw, ctx, ty, depth):
    if draw(st.booleans()):
        a = gen(draw, ctx, C(ty[1]), depth)
        b = gen(draw, ctx, R(ty[2]), depth)
        return juxtapose(draw, a, b, ty)
    a = gen(draw, ctx, draw(st.sampled_from([C(ty[1]), R(ty[1])])), depth)
    b = gen(draw, ctx, draw(st.sampled_from([C(ty[2]), R(ty[2])])), depth)
    return call("outer", a, b, ty=ty, zero=a.zero or b.zero)


def r_diag_product(draw, ctx, ty, depth):
    """diag(v) X and X diag(v), which graphc rewrites to v ∘ X without a diagonal matrix."""
    if ty[0] == "R" or (ty[0] == "M" and draw(st.booleans())):
        d = ty[-1]
        left, right = gen(draw, ctx, ty, depth), gen(draw, ctx, C(d), depth)
        return juxtapose(draw, left, call("diag", right, ty=M(d, d), zero=right.zero), ty)
    v = gen(draw, ctx, C(ty[1]), depth)
    diagonal = call("diag", v, ty=M(ty[1], ty[1]), zero=v.zero)
    return juxtapose(draw, diagonal, gen(draw, ctx, ty, depth), ty)


def r_diag_matrix(draw, ctx, ty, depth):
    e = gen(draw, ctx, draw(st.sampled_from([C(ty[1]), C(ty[1]), R(ty[1])])), depth)
    return call("diag", e, ty=ty, zero=e.zero)


GENERIC = [r_add, r_add, r_hadamard, r_divide, r_negate, r_elementwise, r_exp, r_log,
           r_log_stable, r_sqrt, r_power, r_power_of_positive, r_max_min, r_scale,
           r_select]  # fmt: skip


def rules_for(ctx: Ctx, ty: tuple) -> list:
    """The rules that can build a ty, repeated to weight them."""
    rules = list(GENERIC)
    if ctx.functions and (ty == S or any(f.kind == "map" for f in ctx.functions)):
        rules += [r_call, r_call]
    if ctx.top:
        rules += [r_stop, r_slice]
        if ty[0] != "R" and (ty[0] != "M" or ty[1] == "n"):
            rules += [r_gather] * 3  # integer data are the program's, not a function's
    if ty == S:
        rules += [r_reduce] * 3 + [r_reduce_vector] * 2 + [r_inner] * 3 + [r_transpose_scalar]
        rules += [r_sum_matrix] * 2
        if ctx.top:
            rules += [r_norm] * 2 + [r_dot] * 2 + [r_trace] * 2 + [r_det] * 2
    elif ty[0] == "C":
        rules += [r_matvec] * 3 + [r_transposed] * 2 + [r_reduce_matrix] * 3 + [r_softmax] * 2
        rules += [r_reduce_axis] * 2
        rules += [r_diagonal] * 2 + [r_solve] * 2 + [r_diag_product] * 2
        if ty[1] in ("n+m", "n+1"):
            rules += [r_concat] * 5
    elif ty[0] == "R":
        rules += [r_transposed] * 3 + [r_vecmat] * 3 + [r_softmax] * 2 + [r_diag_product]
    elif ty[0] == "M":
        rules += [r_matmat] * 3 + [r_outer] * 3 + [r_transposed] * 2 + [r_diag_product] * 2
        rules += [r_normalise_rows] * 2
        if ty[1] == ty[2]:
            rules += [r_diag_matrix] * 2 + [r_solve]
        if ty[1] in ("n+m", "n+1") and ty[2] in ("n", "m"):
            rules += [r_concat] * 4
        if ty[2] in ("n+m", "n+1"):
            rules += [r_hconcat] * 3
    return rules


DIM_NAMES = {"n": {"n"}, "m": {"m"}, "n+m": {"n", "m"}, "n+1": {"n"}}


def bindable(types: set[tuple]) -> set[str]:
    """The unbound dims that arrays of these types bind (one unknown per dim at a time)."""
    known: set[str] = set()
    while True:
        new = {
            name
            for ty in types
            for d in axes(ty)
            if len(DIM_NAMES[d] - known) == 1
            for name in DIM_NAMES[d] - known
        }
        if not new:
            return known
        known |= new


def other_dim(draw, d: str) -> str:
    return draw(st.sampled_from([e for e in DIMS if e != d]))


def ill_shaped_expression(draw, ctx: Ctx, depth: int) -> str:
    """Well-shaped operands combined so that their shapes disagree (n, m, n+m, n+1 differ)."""
    d = draw(st.sampled_from(DIMS))
    e = other_dim(draw, d)

    def g(ty):
        return gen(draw, ctx, ty, depth)

    kind = draw(
        st.sampled_from(
            ["elementwise", "elementwise", "product", "product", "builtin", "builtin", "concat"]
        )
    )
    if kind == "elementwise":
        a, b = draw(
            st.sampled_from(
                [
                    (C(d), C(e)),
                    (C(d), R(d)),
                    (R(d), R(e)),
                    (M(d, d), C(e)),
                    (M(d, e), R(d)),
                    (M(d, e), M(e, d)),
                    (M(d, d), M(d, e)),
                ]  # fmt: skip
            )
        )
        a, b = (g(a), g(b)) if draw(st.booleans()) else (g(b), g(a))
        op = draw(st.sampled_from(["+", "-", "∘", "/", "max", "min"]))
        if op in ("max", "min"):
            return f"{op}({a.text}, {b.text})"
        level = SUM if op in "+-" else PRODUCT
        return f"{wrap(a, level)} {op} {wrap(b, level + 1)}"
    if kind == "product":
        a, b = draw(
            st.sampled_from(
                [
                    (M(d, d), C(e)),
                    (C(d), C(d)),
                    (C(d), C(e)),
                    (C(d), M(d, e)),
                    (R(d), C(e)),
                    (M(d, d), M(e, d)),
                    (M(d, e), R(e)),
                    (R(d), R(d)),
                    (R(d), M(e, d)),
                ]  # fmt: skip
            )
        )
        return juxtapose(draw, g(a), g(b), S).text
    if kind == "builtin":
        form = draw(
            st.sampled_from(
                ["dot", "tr", "diag", "inv", "det", "softmax", "softmax", "outer", "sum", "sum"]
            )
        )
        if form == "dot":
            return f"dot({g(C(d)).text}, {g(C(e)).text})"
        if form in ("tr", "diag", "inv", "det"):
            return f"{form}({g(M(d, e)).text})"
        if form == "softmax":
            return f"softmax({g(S).text})"
        if form == "outer":
            return f"outer({g(M(d, e)).text}, {g(C(d)).text})"
        ty, axis = draw(st.sampled_from([(S, "0"), (C(d), "1"), (M(d, e), "2"), (M(d, e), "-3")]))
        return f"{draw(st.sampled_from(['sum', 'mean']))}({g(ty).text}, {axis})"
    parts = draw(st.sampled_from([(C(d), M(d, d)), (C(d), R(d)), (M(d, d), M(d, e)), (S, R(d))]))
    return concat(draw, [g(t) for t in parts], S).text


# ---------------------------------------------------------------------------
# Whole programs
# ---------------------------------------------------------------------------


@dataclass
class Case:
    text: str
    fd_text: str  # the program with every stop(h) replaced by a fed constant h_c
    stops: list[tuple[str, str]]  # (h, h_c)
    types: dict[str, tuple]  # declared variables
    wrt: list[str]
    seed: int
    expected: Ev | None = None  # what the program means, evaluated by the generator

    def feed(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        return {
            name: ids_for(ty, rng) if ty[0] == "I" else 0.5 * rng.standard_normal(sizes_of(ty))
            for name, ty in self.types.items()
        }


def shape_text(draw, ty: tuple) -> str:
    if ty[0] == "I":
        return ("[]" if not ty[1] else f"[{draw(st.sampled_from(SPELLINGS[ty[1]]))}]") + " int"
    if ty == S:
        return draw(st.sampled_from(["[]", "scalar"]))
    dims = [draw(st.sampled_from(SPELLINGS[d])) for d in ty[1:]]
    return "[" + draw(st.sampled_from([", ", ",", "×", " × "])).join(dims) + "]"


def join_statements(draw, lines: list[str]) -> str:
    text = lines[0] if lines else ""
    for line in lines[1:]:
        sep = draw(st.sampled_from(["\n", "\n", "\n", "; ", "  # note\n", "\n\n", "\n# comment\n"]))
        text += sep + line
    return text


def function_definition(draw, ctx: Ctx) -> str:
    name = draw(st.sampled_from([f for f in FUNCTION_NAMES if f not in ctx.taken]))
    params = draw(st.sampled_from(FUNCTION_PARAMS))
    kind = draw(st.sampled_from(["map", "map", "reduce"]))
    body_ctx = Ctx(functions=ctx.functions, params=params, taken=ctx.taken, dims=ctx.dims)
    if kind == "map":
        body = gen(draw, body_ctx, T, 2)
    else:
        body = r_reduce(draw, body_ctx, S, 2)
    ctx.taken.add(name)
    ctx.functions.append(Function(name, params, kind, body.zero, body.ev, body_ctx.used))
    return f"{name}({', '.join(params)}) = {body.text}"


@st.composite
def programs(draw, ill_shaped: bool = False) -> Case:
    """A random program; with ``ill_shaped``, one that ends in a shape error."""
    ctx = Ctx()
    definitions = [function_definition(draw, ctx) for _ in range(draw(st.integers(0, 2)))]
    output = gen(draw, ctx, S, draw(st.integers(2, 5)))
    out_name = draw(
        st.sampled_from([n for n in ("J", "L", "ℓ", "loss", "E") if n not in ctx.taken])
    )
    bad = ill_shaped_expression(draw, ctx, draw(st.integers(0, 2))) if ill_shaped else None
    body = definitions + ctx.statements + [f"{out_name} = {output.text}"]
    placement = draw(st.sampled_from(["implicit", "implicit", "end", "first", "decoy"]))
    if placement == "end":
        body.append(f"output {out_name}")
    elif placement == "first":
        body.insert(0, f"output {out_name}")
    elif placement == "decoy":  # another assignment after the output
        body += [f"output {out_name}", f"extra = 2 {out_name}"]
    if bad is not None:
        body.append(f"wrong = {bad}")
    body_text = join_statements(draw, body)
    if draw(st.booleans()) and " + " in body_text:
        body_text = body_text.replace(" + ", " +\\\n    ", 1)  # a continuation line

    if not ctx.used - INTEGER:  # something to differentiate by
        ctx.used.add(draw(st.sampled_from(sorted(set(POOL) - INTEGER))))
    if draw(st.integers(0, 3)) == 0:  # a variable the output does not use
        ctx.used.add(draw(st.sampled_from(sorted(POOL))))

    # Dims: bound, bound through one another, or bound by the first array fed.
    unbound = draw(st.booleans())
    if unbound:
        header = draw(st.sampled_from(["dim n, m", "dim n\ndim m", "dim m, n"]))
        # Every unbound dim must be bound by the arrays fed: by one whose shape gives it
        # alone, or, once n is known, m by a [n+m] (in any order of declaration).
        needed = ctx.dims | {
            n for v in ctx.used for d in POOL[v][1:] if d for n in DIM_NAMES[d]
        }  # an id's bound too: the size it selects from is read from an array
        for dim, fallback in (("n", "x"), ("m", "u")):
            if dim in needed - bindable({POOL[v] for v in ctx.used}):
                ctx.used.add(fallback)
    else:
        header = draw(
            st.sampled_from(
                [
                    "dim n = 3, m = 2",
                    "dim n = 3\ndim m = 2",
                    "dim m = 2\ndim n = m + 1",
                    "dim n = 3; dim m = n - 1",
                ]
            )
        )

    # Declarations in any order: a [n+m] declared first waits until n is bound; a [n+1]
    # may bind n itself.
    names = draw(st.permutations(sorted(ctx.used, key=list(POOL).index)))
    declarations, previous = [], None
    for v in names:
        kind = "input" if v in INTEGER else draw(st.sampled_from(["param", "input"]))
        shape = shape_text(draw, POOL[v])
        if previous == (kind, shape) and draw(st.booleans()):
            declarations[-1] = declarations[-1].replace(" :", f", {v} :")  # param a, b : []
        else:
            declarations.append(f"{kind} {v} : {shape}")
        previous = (kind, shape)
    decl_text = join_statements(draw, declarations)
    text = f"{header}\n{decl_text}\n{body_text}\n"

    # For central differences, every stop(h) becomes an input h_c fed with h's value.
    stops = [(name, f"{name}_c") for name, _ in ctx.stops]
    frozen, fd_body = [], body_text
    for (name, c), (_, ty) in zip(stops, ctx.stops):
        column = C(ty[1]) if ty[0] == "R" else ty  # a row vector is declared as a column
        frozen.append(f"input {c} : {shape_text(draw, column)}")
        # Parenthesised, as stop(h) was: a bare name before "(" would read as a call.
        use = f"({c}ᵀ)" if ty[0] == "R" else f"({c})"
        fd_body = re.sub(rf"\b(stop|detach)\({re.escape(name)}\)", use, fd_body)
    frozen = "\n".join(frozen)
    fd_text = f"{header}\n{decl_text}\n{frozen}\n{fd_body}\n"

    wrt = draw(
        st.lists(
            st.sampled_from([v for v in names if v not in INTEGER]),
            min_size=1,
            unique=True,
        )
    )
    types = {v: POOL[v] for v in names}
    return Case(text, fd_text, stops, types, wrt, draw(st.integers(0, 2**32 - 1)), output.ev)


# ---------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------

STEP = 1e-6


def close(actual, expected, rtol: float, atol: float) -> bool:
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    return actual.shape == expected.shape and bool(
        np.all(np.abs(actual - expected) <= atol + rtol * np.abs(expected))
    )


def central_differences(program: graphc.Program, feed: dict, name: str):
    """Central differences of ``program.run`` by ``name``, and where a kink was hit."""
    base = np.asarray(feed[name], dtype=float)
    f0 = float(program.run(**feed))
    grad = np.zeros(base.shape)
    left = np.zeros(base.shape)
    right = np.zeros(base.shape)
    for i in np.ndindex(base.shape):
        h = STEP * max(1.0, abs(base[i]))
        up, down = base.copy(), base.copy()
        up[i] += h
        down[i] -= h
        f_up = float(program.run(**{**feed, name: up}))
        f_down = float(program.run(**{**feed, name: down}))
        grad[i] = (f_up - f_down) / (2 * h)
        right[i] = (f_up - f0) / h
        left[i] = (f0 - f_down) / h
    return grad, left, right


def check_case(case: Case) -> None:
    if currently_in_test_context():
        note(case.text)
        note(f"wrt={case.wrt}")
    feed = case.feed()
    program = graphc.parse(case.text)
    value = float(program.run(**feed))
    assert np.isfinite(value), value
    scale = max(1.0, abs(value))
    if case.expected is not None:  # the text means what the generator meant
        meant = case.expected(feed)
        assert close(value, meant, 1e-8, 1e-10 * scale), (value, meant)

    reverse = graphc.compile(case.text, wrt=case.wrt, mode="reverse")
    forward = graphc.compile(case.text, wrt=case.wrt, mode="forward")
    for fn in (reverse, forward):
        assert close(fn(**feed), value, 1e-9, 1e-11 * scale), (fn.mode, fn(**feed), value)
    value_r, grads_r = reverse.value_and_grad(**feed)
    value_f, grads_f = forward.value_and_grad(**feed)
    assert close(value_r, value, 1e-9, 1e-11 * scale), (value_r, value)
    assert close(value_f, value, 1e-9, 1e-11 * scale), (value_f, value)
    assert list(grads_r) == case.wrt and list(grads_f) == case.wrt, (list(grads_r), list(grads_f))
    # Into buffers the caller owns (written, some early: emit_numpy._into_early), then
    # added to: the gradients returned without them.
    out = {name: np.full(np.shape(feed[name]), np.nan) for name in case.wrt}
    value_o, written = reverse.value_and_grad(**feed, out=out)
    assert written is out and close(value_o, value_r, 1e-14, 0.0)
    reverse.value_and_grad(**feed, out=out, accumulate=True)
    for name in case.wrt:
        twice = 2 * np.asarray(grads_r[name])
        assert close(out[name], twice, 1e-12, 1e-14 * max(1.0, float(np.max(np.abs(twice))))), name

    # Central differences of the interpreter, with stopped values frozen.
    fd_feed = dict(feed)
    for name, frozen in case.stops:
        fd_feed[frozen] = np.asarray(graphc.parse(f"{case.text}output {name}\n").run(**feed))
    fd_program = graphc.parse(case.fd_text)
    assert close(fd_program.run(**fd_feed), value, 1e-12, 1e-12 * scale)

    for name in case.wrt:
        shape = np.shape(feed[name])
        g_r, g_f = np.asarray(grads_r[name]), np.asarray(grads_f[name])
        assert g_r.shape == shape and g_f.shape == shape, (name, g_r.shape, g_f.shape, shape)
        assert np.all(np.isfinite(g_r)), (name, g_r)
        size = max(1.0, float(np.max(np.abs(g_r), initial=0.0)))
        assert close(g_f, g_r, 1e-8, 1e-10 * size), (name, g_r, g_f)
        fd, left, right = central_differences(fd_program, fd_feed, name)
        tol = 1e-5 * np.maximum(np.abs(fd), np.abs(g_r)) + 1e-8 * scale
        kink = np.abs(right - left) > 1e-3 * np.maximum(1.0, np.abs(fd))
        smooth_ok = np.abs(fd - g_r) <= tol
        # at a kink the derivative taken is one of the one-sided ones, or between them
        kink_ok = (np.minimum(left, right) - tol <= g_r) & (g_r <= np.maximum(left, right) + tol)
        ok = np.where(kink, kink_ok, smooth_ok)
        assert np.all(ok), f"∂/∂{name}: reverse {g_r} vs central differences {fd}"


# Deterministic by default (as tests/test_fuzz.py): CI must not fail on the day a
# random draw finds a fault of the generator itself (two were found so: a naive
# log(1 − σ(s)) reference, and stop(s)ᵀ frozen as a name); GRAPHC_RANDOM=1 draws afresh.
SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=not os.environ.get("GRAPHC_RANDOM"),
    database=None,
)


@settings(max_examples=800, **SETTINGS)
@given(programs())
def test_gradients_agree_on_random_programs(case: Case) -> None:
    check_case(case)


@settings(max_examples=30, **SETTINGS)
@given(programs())
def test_hessians_of_random_programs(case: Case) -> None:
    """fn.hessian is symmetric (H[b][a] the transpose of H[a][b]), agrees with
    central differences of the gradient and with fn.hvp (`check_hessian`), and
    the forward-mode module computes the same Hessian."""
    from graphc.gradcheck import check_hessian

    note(case.text)
    feed = case.feed()
    reverse = graphc.compile(case.text, wrt=case.wrt, mode="reverse")
    H = reverse.hessian(**feed)
    assert list(H) == case.wrt and all(list(row) == case.wrt for row in H.values())
    for a in case.wrt:
        for b in case.wrt:
            ra, rb = np.ndim(feed[a]), np.ndim(feed[b])
            assert np.shape(H[a][b]) == np.shape(feed[a]) + np.shape(feed[b])
            moved = np.moveaxis(H[b][a], tuple(range(rb)), tuple(range(ra, ra + rb)))
            size = max(1.0, float(np.max(np.abs(moved), initial=0.0)))
            assert close(H[a][b], moved, 1e-9, 1e-11 * size), (a, b)
    forward = graphc.compile(case.text, wrt=case.wrt, mode="forward").hessian(**feed)
    for a in case.wrt:
        for b in case.wrt:
            size = max(1.0, float(np.max(np.abs(H[a][b]), initial=0.0)))
            assert close(forward[a][b], H[a][b], 1e-9, 1e-11 * size), (a, b)
    with np.errstate(all="ignore"):
        report = check_hessian(reverse, feed, tolerance=1e-4, max_entries=8)
    assert report.ok or not report.finite, report.text()


def numpy_only_import(name, globals=None, locals=None, fromlist=(), level=0):
    if name != "numpy" or level:
        raise ImportError(f"the emitted module imports {name}; it may import only numpy")
    return builtins.__import__(name, globals, locals, fromlist, level)


def imported_modules(source: str) -> list[str]:
    modules = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules.append("." * node.level + (node.module or ""))
    return modules


@settings(max_examples=200, **SETTINGS)
@given(programs(), st.sampled_from(["reverse", "forward"]))
def test_emitted_source_is_deterministic_and_numpy_only(case: Case, mode: str) -> None:
    note(case.text)
    first = graphc.compile(case.text, wrt=case.wrt, mode=mode)
    second = graphc.compile(case.text, wrt=case.wrt, mode=mode)
    assert first.source == second.source
    assert graphc.parse(case.text).compile(case.wrt, mode).source == first.source
    assert imported_modules(first.source) == ["numpy"]

    # Run it as a module of its own, where importing anything else fails.
    namespace = {
        "__name__": "graphc_emitted",
        "__builtins__": {**vars(builtins), "__import__": numpy_only_import},
    }
    exec(compile(first.source, "<emitted>", "exec"), namespace)
    feed = case.feed()
    kwargs = {first.compiled.param_names[name]: array for name, array in feed.items()}
    value, grads = namespace["value_and_grad"](**kwargs)
    expected_value, expected_grads = first.value_and_grad(**feed)
    assert close(value, expected_value, 0.0, 0.0)
    assert list(grads) == list(expected_grads)
    for name in grads:
        assert close(grads[name], expected_grads[name], 0.0, 0.0)


COMPILE_ALL = """
import json, sys
import graphc
jobs = json.load(sys.stdin)
print(json.dumps([graphc.compile(t, wrt=w, mode=m).source for t, w, m in jobs]))
"""


@settings(max_examples=4, **SETTINGS)
@given(
    st.lists(
        st.tuples(programs(), st.sampled_from(["reverse", "forward"])), min_size=6, max_size=6
    ),
    st.integers(1, 2**32 - 1),
)
def test_emitted_source_is_the_same_in_another_process(batch, hash_seed: int) -> None:
    """Another interpreter (another hash seed, other node ids) emits the same bytes."""
    jobs = [(case.text, case.wrt, mode) for case, mode in batch]
    here = [graphc.compile(t, wrt=w, mode=m).source for t, w, m in jobs]
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed), "PYTHONPATH": str(ROOT)}
    there = subprocess.run(
        [sys.executable, "-c", COMPILE_ALL],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    for (text, _, mode), mine, theirs in zip(jobs, here, json.loads(there)):
        assert mine == theirs, f"{mode} mode, PYTHONHASHSEED={hash_seed}:\n{text}"


@settings(max_examples=150, **SETTINGS)
@given(programs(ill_shaped=True))
def test_ill_shaped_statement_is_a_shape_error_on_its_line(case: Case) -> None:
    note(case.text)
    first = case.text[: case.text.index("wrong = ")].count("\n") + 1
    last = case.text.rstrip("\n").count("\n") + 1  # the statement may go on inside brackets
    with pytest.raises(graphc.ShapeError) as err:
        graphc.parse(case.text)
    assert first <= err.value.line <= last, str(err.value)


# Edits that keep most programs lexically plausible but change their meaning or shape.
INSERTIONS = ("ᵀ", "'", "+", "(", ")", "[", "]", ";", "‖", "^", "2", "x", "-", "@", "∘", ",",
              "\n", "=", ".T", "sum(", "#", "1e400", "0", "/ 0", " n", "output ", "σ", "0.",
              "1.2.3", "\\\n", "[]", ":", "×", "^-1", "^0", "^x", "−", "₁", "dim k\n",
              "param k : [k]\n", "input z : [2*n]\n", ", 1)", "inv(", "diag(",
              "softmax(")  # fmt: skip
REPLACEMENTS = (("sum(", "("), ("mean(", "("), (", 0)", ", 1)"), (", -1)", ", 2)"), ("ᵀ", ""),
                ("'", ""), (".T", ""), ("[n]", "[m]"), ("[n, n]", "[n, m]"), ("= 3", "= 0"),
                ("= 2", "= 3"), ("∘", " "), (" @ ", " ∘ "), ("softmax(", "("), ("diag(", "("),
                ("tr(", "("), ("dot(", "outer("), ("outer(", "dot("), ("logsumexp(", "softmax("),
                ("[n+m]", "[n+1]"), ("[n+1]", "[2*n]"), ("m = 2", "m = n"), ("^2", "^x"),
                ("stop(", "stop(x, "))  # fmt: skip


@st.composite
def corrupted(draw) -> tuple[str, dict]:
    case = draw(programs())
    text = case.text
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "replace", "rename", "rename"]))
        i = draw(st.integers(0, len(text)))
        if kind == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 3)) :]
        elif kind == "insert":
            text = text[:i] + draw(st.sampled_from(INSERTIONS)) + text[i:]
        elif kind == "replace":
            old, new = draw(st.sampled_from(REPLACEMENTS))
            text = text.replace(old, new, 1)
        else:  # one declared name for another, everywhere or once
            old, new = draw(st.sampled_from(sorted(case.types))), draw(st.sampled_from(list(POOL)))
            pattern = rf"(?<!\w){re.escape(old)}(?!\w)"
            text = re.sub(pattern, new, text, count=draw(st.sampled_from([0, 1])))
    return text, case.feed()


@settings(max_examples=150, **SETTINGS)
@given(corrupted())
def test_corrupted_programs_fail_as_graphc_errors(corruption: tuple[str, dict]) -> None:
    """Whatever is wrong with a program or its feed is a GraphcError, never a traceback."""
    text, feed = corruption
    note(text)
    try:
        program = graphc.parse(text)
    except graphc.GraphcError as err:
        assert err.line is not None and err.column is not None, err
        return
    with contextlib.suppress(graphc.GraphcError, np.linalg.LinAlgError):
        program.run(**feed)
    for mode in ("reverse", "forward"):
        try:
            fn = graphc.compile(text, mode=mode)
        except graphc.GraphcError:
            continue
        with contextlib.suppress(graphc.GraphcError, np.linalg.LinAlgError):
            fn(**feed)
            if program.graph.outputs[program.output].type.is_scalar:
                fn.value_and_grad(**feed)
            else:
                fn.jacobian(**feed)


# ---------------------------------------------------------------------------
# Bugs the generator found, each as the smallest program that showed it
# ---------------------------------------------------------------------------


def case_of(text: str, types: dict[str, tuple], wrt: list[str], seed: int = 0) -> Case:
    return Case(
        textwrap.dedent(text).lstrip(), textwrap.dedent(text).lstrip(), [], types, wrt, seed
    )


REGRESSIONS = {
    # Forward mode's value_and_grad looped with locals `i`, `grad`, `name`,
    # `seed`, `zero` and called `dict(…)`: a parameter with one of those names
    # was overwritten (wrong gradient, wrong value) or crashed the module.
    "forward-helper-shadows-i-grad": case_of(
        """
        dim n = 3
        param i : []
        param grad : [n]
        J = sum(tanh(grad)) i
        """,
        {"i": S, "grad": C("n")},
        ["i", "grad"],
    ),
    "forward-helper-shadows-dict-zero": case_of(
        """
        dim m = 2
        param dict : [m]
        param zero : []
        J = zero sum(dict ∘ dict)
        """,
        {"dict": C("m"), "zero": S},
        ["dict", "zero"],
    ),
    # A ‖ inside parentheses closed the norm opened outside them: parse error.
    "norm-inside-parenthesised-norm": case_of(
        """
        dim n = 3
        param x : [n]
        J = ‖(2 ‖x‖)‖ + ‖[x; ‖x‖]‖
        """,
        {"x": C("n")},
        ["x"],
    ),
    # The feed binds m from ζ : [n+m] once x has bound n (in either order), but
    # the emitter read dims only from single-name axes: ValueError at compile time.
    "dim-read-after-another": case_of(
        """
        dim n, m
        param ζ : [n+m]
        param x : [n]
        J = sum([x; ζ] ∘ [x; ζ]) m + mean(ζ)
        """,
        {"ζ": C("n+m"), "x": C("n")},
        ["ζ", "x"],
    ),
}


@pytest.mark.parametrize("case", list(REGRESSIONS.values()), ids=list(REGRESSIONS))
def test_regression(case: Case) -> None:
    check_case(case)


@pytest.mark.parametrize("mode", ["reverse", "forward"])
@pytest.mark.parametrize("shape", ["[n+m]", "[n*m]", "[2*n*n]"])
def test_dims_no_array_gives_are_a_graphc_error_not_a_traceback(shape: str, mode: str) -> None:
    # No array can tell n and m apart: compiling raised ValueError from the emitter.
    text = f"dim n, m\nparam z : {shape}\nJ = mean(z) + sum(z) n\n"
    with pytest.raises(graphc.GraphcError):
        graphc.compile(text, mode=mode)
