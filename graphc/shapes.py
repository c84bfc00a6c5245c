"""Shapes: dimensions, orientation, and the rules that combine them.

A dimension (`Dim`) is an integer polynomial in the names of *unbound* dims
(`dim n` with no size); bound dims (`dim d = 50`) are substituted when the
program is read, so `5*d` is simply 250.  A `Type` is a tuple of dims plus,
for vectors, an orientation: vectors are columns unless transposed.  Arrays
at run time are ordinary NumPy arrays, a vector is 1-D whatever its
orientation; orientation lives only here, in the compiler.

Shape rules raise `ShapeMismatch` with a message template whose ``{0}``,
``{1}`` stand for the operands; the front end fills them with the operand's
source text and shape, and the position.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

Monomial = tuple[str, ...]
Key = TypeVar("Key")


class Dim:
    """An integer-valued dimension: ``sum(coeff * prod(names))``, canonical."""

    __slots__ = ("terms", "_hash")

    def __init__(self, terms: Mapping[Monomial, int] | Iterable[tuple[Monomial, int]] = ()):
        items = terms.items() if isinstance(terms, Mapping) else terms
        merged: dict[Monomial, int] = {}
        for mono, coeff in items:
            key = tuple(sorted(mono))
            merged[key] = merged.get(key, 0) + coeff
        self.terms: tuple[tuple[Monomial, int], ...] = tuple(
            sorted((m, c) for m, c in merged.items() if c != 0)
        )
        self._hash = hash(self.terms)

    @staticmethod
    def of(value: int | str | Dim) -> Dim:
        if isinstance(value, Dim):
            return value
        if isinstance(value, str):
            return Dim({(value,): 1})
        return Dim({(): int(value)})

    # arithmetic ------------------------------------------------------------
    def __add__(self, other: int | Dim) -> Dim:
        return Dim(self.terms + Dim.of(other).terms)

    __radd__ = __add__

    def __neg__(self) -> Dim:
        return Dim((m, -c) for m, c in self.terms)

    def __sub__(self, other: int | Dim) -> Dim:
        return self + (-Dim.of(other))

    def __mul__(self, other: int | Dim) -> Dim:
        other = Dim.of(other)
        return Dim((m1 + m2, c1 * c2) for m1, c1 in self.terms for m2, c2 in other.terms)

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, int):
            other = Dim.of(other)
        return isinstance(other, Dim) and self.terms == other.terms

    def __hash__(self) -> int:
        return self._hash

    # inspection ------------------------------------------------------------
    @property
    def value(self) -> int | None:
        """The integer, if the dimension involves no unbound name."""
        if not self.terms:
            return 0
        if len(self.terms) == 1 and self.terms[0][0] == ():
            return self.terms[0][1]
        return None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted({n for mono, _ in self.terms for n in mono}))

    def substitute(self, sizes: Mapping[str, int]) -> Dim:
        out: dict[Monomial, int] = {}
        for mono, coeff in self.terms:
            rest = []
            for name in mono:
                if name in sizes:
                    coeff *= sizes[name]
                else:
                    rest.append(name)
            key = tuple(rest)
            out[key] = out.get(key, 0) + coeff
        return Dim(out)

    def evaluate(self, sizes: Mapping[str, int]) -> int | None:
        return self.substitute(sizes).value

    def __str__(self) -> str:
        if not self.terms:
            return "0"
        parts = []
        for mono, coeff in sorted(self.terms, key=lambda t: (-len(t[0]), t[0])):
            factors = ([str(abs(coeff))] if abs(coeff) != 1 or not mono else []) + list(mono)
            parts.append(("-" if coeff < 0 else "+", "*".join(factors)))
        text = ("-" if parts[0][0] == "-" else "") + parts[0][1]
        for sign, body in parts[1:]:
            text += f" {sign} {body}"
        return text

    def __repr__(self) -> str:
        return f"Dim({self})"


class Type(NamedTuple):
    """The static type of a node: its dims, and for vectors whether it is a row."""

    dims: tuple[Dim, ...] = ()
    row: bool = False
    integer: bool = False  # integer data (``input y : [N] int``): it only selects

    @property
    def rank(self) -> int:
        return len(self.dims)

    @property
    def is_scalar(self) -> bool:
        return not self.dims

    @property
    def is_vector(self) -> bool:
        return len(self.dims) == 1

    @property
    def is_matrix(self) -> bool:
        return len(self.dims) == 2

    @property
    def T(self) -> Type:
        if self.is_vector:
            return Type(self.dims, not self.row, self.integer)
        if self.is_matrix:
            return Type(self.dims[::-1])
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted({n for d in self.dims for n in d.names}))

    @property
    def entries(self) -> int | None:
        """How many numbers an array of this type holds; None where a dim's size is
        known only at run time."""
        count = 1
        for d in self.dims:
            if d.value is None:
                return None
            count *= d.value
        return count

    def __str__(self) -> str:
        # [(n + 1)×n], not [n + 1×n]: a compound dim of a matrix is parenthesised
        dims = [str(d) for d in self.dims]
        if len(dims) > 1:
            dims = [f"({d})" if " " in d else d for d in dims]
        text = "[" + "×".join(dims) + "]" + ("ᵀ" if self.row else "")
        return text + " int" if self.integer else text


SCALAR = Type()


def vector(n: Dim | int | str, row: bool = False) -> Type:
    return Type((Dim.of(n),), row)


def matrix(m: Dim | int | str, n: Dim | int | str) -> Type:
    return Type((Dim.of(m), Dim.of(n)))


class ShapeMismatch(Exception):
    """A shape rule failed; ``{0}``, ``{1}``… in the message name the operands."""


def _differ(a: Dim, b: Dim) -> str:
    return f"{a} ≠ {b}"


def vector_axis(vec: Type, mat: Type) -> int | None:
    """The axis of ``mat`` that a vector runs along when it broadcasts against it.

    Decided by the dims' names, never by sizes: 1 (along each row, NumPy's last
    axis) when the vector's dim is the matrix's column dim, 0 (down each
    column, spread across the columns) when it is the row dim only; None when
    it is neither.  A square matrix takes NumPy's last axis (see `is_ambiguous`).
    """
    if vec.dims[0] == mat.dims[1]:
        return 1
    if vec.dims[0] == mat.dims[0] and not vec.row:  # a row vector lies along a row
        return 0
    return None


def is_ambiguous(vec: Type, mat: Type) -> bool:
    """A vector meets a matrix whose two dims are both its dim: the last axis is a guess."""
    return vec.is_vector and mat.is_matrix and vec.dims[0] == mat.dims[0] == mat.dims[1]


def broadcast(a: Type, b: Type, verb: str = "combine") -> Type:
    """Elementwise result type: equal types, a scalar with anything, or a
    vector along the matrix axis whose dim it shares (`vector_axis`)."""
    if a.is_scalar:
        return b
    if b.is_scalar:
        return a
    if a.rank == b.rank:
        for x, y in zip(a.dims, b.dims):
            if x != y:
                raise ShapeMismatch(f"cannot {verb} {{0}} and {{1}}: {_differ(x, y)}")
        if a.row != b.row:
            raise ShapeMismatch(
                f"cannot {verb} {{0}} and {{1}}: one is a column vector, the other a row;"
                " transpose one of them"
            )
        return a
    mat, vec = (a, b) if a.is_matrix else (b, a)
    if vector_axis(vec, mat) is None and vec.row and vec.dims[0] == mat.dims[0]:
        raise ShapeMismatch(
            f"cannot {verb} {{0}} and {{1}}: a row vector runs along the rows, and"
            f" {_differ(vec.dims[0], mat.dims[1])}; a column of the matrix's row dim spreads"
            " across its columns"
        )
    if vector_axis(vec, mat) is None:
        raise ShapeMismatch(
            f"cannot {verb} {{0}} and {{1}}: a vector broadcasts along the matrix axis whose"
            f" dim it shares, and {vec.dims[0]} is neither {mat.dims[0]} nor {mat.dims[1]}"
        )
    return mat


def product(a: Type, b: Type) -> Type:
    """Type of the matrix-algebra product ``a b`` (neither operand scalar)."""
    if a.is_vector and not a.row:  # column on the left
        if b.is_vector and b.row:
            return matrix(a.dims[0], b.dims[0])  # x yᵀ: outer product
        if b.is_vector:
            raise ShapeMismatch(
                "cannot multiply {0} by {1}: both are column vectors; for the inner product"
                " write {0.factor}ᵀ {1.factor}"
            )
        raise ShapeMismatch(
            "cannot multiply {0} by {1}: a column vector times a matrix;"
            " did you mean {0.factor}ᵀ {1.factor}?"
        )
    inner_a = a.dims[-1]
    if b.is_vector and b.row:
        raise ShapeMismatch("cannot multiply {0} by {1}: a row vector can only stand on the left")
    inner_b = b.dims[0]
    if inner_a != inner_b:
        raise ShapeMismatch(f"cannot multiply {{0}} by {{1}}: {_differ(inner_a, inner_b)}")
    if a.is_vector:  # row on the left
        return SCALAR if b.is_vector else vector(b.dims[1], row=True)
    return vector(a.dims[0]) if b.is_vector else matrix(a.dims[0], b.dims[1])


# ---------------------------------------------------------------------------
# Reading unbound dims from the shapes of fed arrays
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DimSource(Generic[Key]):
    """Where an unbound dim is read: ``(variable.shape[axis] - offset) // coeff``.

    ``offset`` and ``coeff`` are dims over dims read before this one (``m`` from
    ``z : [n+m]`` once ``n`` is known), as the feed check binds them.
    """

    variable: Key
    axis: int
    coeff: Dim = Dim.of(1)
    offset: Dim = Dim.of(0)

    @property
    def needs(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.coeff.names) | set(self.offset.names)))


def _solve_for(d: Dim, known: Collection[str]) -> tuple[str, Dim, Dim] | None:
    """``d`` as ``coeff * name + offset`` for its one unknown name, if it is linear in it."""
    unknown = [n for n in d.names if n not in known]
    if len(unknown) != 1:
        return None
    (name,) = unknown
    coeff, offset = [], []
    for mono, c in d.terms:
        if mono.count(name) > 1:
            return None
        if name in mono:
            rest = list(mono)
            rest.remove(name)
            coeff.append((tuple(rest), c))
        else:
            offset.append((mono, c))
    coeff_dim = Dim(coeff)
    if coeff_dim.value is not None and coeff_dim.value <= 0:
        return None
    return name, coeff_dim, Dim(offset)


def binding_order(
    variables: Sequence[tuple[Key, Type]], known: Collection[str] = ()
) -> list[tuple[Key, dict[str, DimSource[Key]]]]:
    """The order in which fed arrays bind the unbound dims, and what each binds.

    This is the one dim solver: the front end (which dims can be read), the
    feed check (`bind_sizes`) and the emitted modules' feed check
    (`dim_sources`) all follow it.  Variables are taken in declaration
    order; one whose dims cannot be solved yet (``x : [n*m]`` before
    ``W : [n, m]``) waits for the others.  A variable that never resolves is
    missing from the result.  ``known`` names dims already sized.
    """
    order: list[tuple[Key, dict[str, DimSource[Key]]]] = []
    solved: set[str] = set(known)
    pending = list(variables)
    while pending:
        waiting = []
        for key, t in pending:
            now, found = set(solved), {}
            for axis, d in enumerate(t.dims):
                if all(n in now for n in d.names):
                    continue
                solution = _solve_for(d, now)
                if solution is None:
                    break
                name, coeff, offset = solution
                found[name] = DimSource(key, axis, coeff, offset)
                now.add(name)
            else:
                order.append((key, found))
                solved = now
                continue
            waiting.append((key, t))
        if len(waiting) == len(pending):
            break
        pending = waiting
    return order


def dim_sources(variables: Sequence[tuple[Key, Type]]) -> dict[str, DimSource[Key]]:
    """For each unbound dim of ``(variable, type)`` pairs, the axis that gives its size.

    A dim missing from the result cannot be read from any fed array.
    """
    return {name: source for _, found in binding_order(variables) for name, source in found.items()}


class SizeMismatch(Exception):
    """A fed array's shape does not fit its declared type (``key``: which variable)."""

    def __init__(self, key: Any, message: str):
        super().__init__(message)
        self.key = key
        self.message = message


def shape_text(t: Type, sizes: Mapping[str, int]) -> str:
    """``t`` with the sizes known so far put in: ``[3×n]``."""
    return str(Type(tuple(d.substitute(sizes) for d in t.dims), t.row))


def bind_sizes(
    fed: Sequence[tuple[Key, Type, tuple[int, ...]]],
    sizes: Mapping[str, int] | None = None,
    label: Callable[[Key], str] = str,
) -> tuple[dict[str, int], dict[str, Key]]:
    """Bind the unbound dims from the shapes of fed arrays, and check every axis.

    ``fed`` holds ``(variable, declared type, shape fed)``, each shape of the
    type's rank; ``sizes`` are dims already known.  Returns every dim's size
    and, for each dim bound here, the variable that bound it.  Raises
    `SizeMismatch` for the first variable (in `binding_order`) that does not fit.
    """
    bound = dict(sizes or {})
    by: dict[str, Key] = {}
    types = {key: t for key, t, _ in fed}
    shapes = {key: shape for key, _, shape in fed}

    def check(key: Key, sources: Mapping[int, tuple[str, DimSource[Key]]]) -> None:
        t, shape = types[key], tuple(shapes[key])
        for axis, d in enumerate(t.dims):
            got, want = shape[axis], d.substitute(bound)
            if want.value is not None:
                if want.value != got:
                    named = [n for n in d.names if n in by]
                    why = ", ".join(f"{n} = {bound[n]} from {label(by[n])}" for n in named)
                    raise SizeMismatch(
                        key,
                        f"expected shape {shape_text(t, bound)}, got {shape}:"
                        f" axis {axis} should have {want.value} entries"
                        + (f" ({why})" if why else ""),
                    )
                continue
            if axis not in sources:
                unknown = want.names
                why = (
                    f"no size of {unknown[0]} makes {want} = {got}"
                    if len(unknown) == 1
                    else f"{want} = {got} does not tell {', '.join(unknown)} apart, and no other"
                    " array binds them"
                )
                raise SizeMismatch(
                    key, f"expected shape {shape_text(t, bound)}, got {shape}: {why}"
                )
            name, source = sources[axis]
            coeff, offset = source.coeff.evaluate(bound), source.offset.evaluate(bound)
            size, rest = divmod(got - offset, coeff) if coeff else (0, 1)
            if rest or size < 0:
                raise SizeMismatch(
                    key,
                    f"expected shape {shape_text(t, bound)}, got {shape}:"
                    f" no size of {name} makes {want} = {got}",
                )
            bound[name] = size
            by[name] = key

    order = binding_order([(key, t) for key, t, _ in fed], bound)
    for key, found in order:
        check(key, {s.axis: (name, s) for name, s in found.items()})
    resolved = {key for key, _ in order}
    for key, _, _ in fed:
        if key not in resolved:
            check(key, {})
    return bound, by
