"""Graphs as mathematics: a printer for Unicode and one for LaTeX.

The printer has one method per kind of notation (`graphc.notation`: each
operator's `Op.math` names its kind) and a precedence table, as
`graphc.emit_numpy.NumpyPrinter` and SymPy's printers do; an operand is
parenthesised only where it binds more loosely than its place needs.

The notation is that of the matrix-calculus texts (The Matrix Cookbook,
matrixcalculus.org):

* products are juxtaposition (``W x``, ``uᵀ f``, an outer product ``δ xᵀ``),
  a scalar factor first (``σ′(s) u``);
* the elementwise (Hadamard) product is ``∘``; a diagonal matrix times a
  matrix, which graphc computes without the diagonal matrix, is printed as
  it is computed, ``v ∘ M``;
* transposes and inverses are superscripts, ``Xᵀ``, ``X⁻¹``, ``X⁻ᵀ``;
* sums over an axis are products with the ones vector ``𝟏`` (``X 𝟏`` sums
  each row, ``Xᵀ 𝟏`` each column), a comparison is an Iverson bracket
  ``[a > b]`` (1 where it holds, else 0);
* a tangent seed is dotted (``Ẇ``), a cotangent seed barred (``J̄``); a name
  that spells a Greek letter is printed as the letter (``delta`` is δ), as
  SymPy prints it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from graphc import notation
from graphc.ir import Node
from graphc.notation import Notation
from graphc.shapes import Dim

# Binding strength: an operand weaker than its place needs gets parentheses.
PRECEDENCE = {
    "infix": 10,  # a + b, a − b
    "hadamard": 20,  # a ∘ b
    "fraction": 28,  # a / b (Unicode; LaTeX's \frac is an atom)
    "prefix": 29,  # −a
    "product": 30,  # juxtaposition: W x, 2 x
    "postfix": 40,  # a superscript: Xᵀ, X⁻¹, x²
    "atom": 50,  # a name, a number, f(x), |x|, [a > b]
}
INFIX, HADAMARD, FRACTION, PREFIX, PRODUCT, POSTFIX, ATOM = PRECEDENCE.values()

GREEK = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi"
    " rho sigma tau upsilon phi chi psi omega"
).split()


class Math(NamedTuple):
    """A printed expression, its binding strength, and, for a superscripted
    expression, its base and superscript (so ``X⁻¹`` transposed is ``X⁻ᵀ``);
    for a product led by a positive number, that number and the other factors
    (so that ``Xᵀ (2 r)`` is written ``2 Xᵀ r``)."""

    text: str
    prec: int
    base: str = ""
    sup: str = ""
    lead: float = 0.0
    rest: str = ""
    inner: bool = False  # a scalar product with vector factors (uᵀ v): see `hadamard`


def _split_name(name: str) -> tuple[str, str, bool]:
    """``delta_1`` -> (delta, 1, True); ``x1`` -> (x, 1, False); ``W`` -> (W, '', False)."""
    name = unicodedata.normalize("NFKC", name)
    m = re.fullmatch(r"([^\W\d_]+)(_?)([0-9A-Za-z]+)?", name)
    if m is None or (m.group(3) and not m.group(2) and not m.group(3).isdigit()):
        return name, "", False
    return m.group(1), m.group(3) or "", bool(m.group(2))


class MathPrinter:
    """The rules both forms share; `UnicodePrinter` and `LatexPrinter` spell them."""

    # ---- spellings (overridden by each form) ----------------------------------
    space = " "  # between the factors of a product
    ring = " ∘ "
    ones_text = "𝟏"
    identity_text = "I"
    prime = "′"

    def parens(self, text: str) -> str:
        return f"({text})"

    def sup_text(self, base: str, sup: str) -> str:
        raise NotImplementedError

    def join_sups(self, first: str, second: str) -> str | None:
        """The one superscript two in a row make (⁻¹ then ᵀ: ⁻ᵀ), if there is one."""
        return None

    def symbol(self, name: str) -> str:
        raise NotImplementedError

    def accent(self, name: str, which: str) -> str:
        raise NotImplementedError

    # ---- helpers ---------------------------------------------------------------
    def wrap(self, e: Math, at_least: int) -> str:
        return e.text if e.prec >= at_least else self.parens(e.text)

    def juxtapose(self, a: Math, b: Math) -> Math:
        # A product is associative: only a weaker operand needs parentheses,
        # and a leading minus reads the same on the product as on its first factor.
        # A number commutes with every factor, so numbers lead, multiplied together.
        inner = a.inner or b.inner
        if b.lead and a.prec != PREFIX:
            lead = b.lead * (a.lead or 1.0)
            rest = a.rest if a.lead else self.wrap(a, PRODUCT)
            rest = f"{rest}{self.space}{b.rest}" if rest else b.rest
            return self.led(lead, rest, inner)
        if a.lead:
            right = self.wrap(b, PRODUCT)
            return self.led(a.lead, f"{a.rest}{self.space}{right}" if a.rest else right, inner)
        # A product that starts with a minus is, on its right, as weak as −a: a (−b c).
        prec = PREFIX if a.prec == PREFIX else PRODUCT
        text = f"{self.wrap(a, PREFIX)}{self.space}{self.wrap(b, PRODUCT)}"
        return Math(text, prec, inner=inner)

    def led(self, lead: float, rest: str, inner: bool = False) -> Math:
        """``lead rest``: a product whose first factor is the positive number ``lead``."""
        if not rest:
            return self.number(lead)
        number = self.number(lead).text
        text = rest if lead == 1.0 else f"{number}{self.space}{rest}"
        return Math(text, PRODUCT, lead=lead, rest=rest, inner=inner)

    def superscripted(self, a: Math, sup: str) -> Math:
        if a.sup:
            joined = self.join_sups(a.sup, sup)
            if joined is not None:
                return Math(self.sup_text(a.base, joined), POSTFIX, a.base, joined)
        base = self.base_of(a)
        return Math(self.sup_text(base, sup), POSTFIX, base, sup)

    def base_of(self, a: Math) -> str:
        return self.wrap(a, ATOM)

    def number(self, value: float) -> Math:
        text = f"{abs(value):g}"
        if "e" in text:
            mantissa, exponent = text.split("e")
            text = self.scientific(mantissa, int(exponent))
        if value < 0:
            return Math(self.minus + text, PREFIX)
        return Math(text, ATOM, lead=value if value > 0 else 0.0)

    minus = "−"

    def scientific(self, mantissa: str, exponent: int) -> str:
        return f"{mantissa}·10^{exponent}"

    def dim_text(self, d: Dim) -> Math:
        text = str(d)
        prec = INFIX if (" + " in text or " - " in text) else PRODUCT if "*" in text else ATOM
        return Math(text.replace("*", self.space).replace("-", self.minus), prec)

    def ones(self) -> Math:
        return Math(self.ones_text, ATOM)

    def apply(self, node: Node, args: Sequence[Math]) -> Math:
        """``node`` printed with its operands already printed as ``args``."""
        math = node.op.math or notation.function(node.op.name)
        return getattr(self, math.kind)(node, math, *args)

    # ---- the kinds -------------------------------------------------------------
    def name(self, node: Node, m: Notation) -> Math:
        name, kind = node.attr("name"), node.attr("kind")
        if kind == "tangent":
            return Math(self.accent(name.removesuffix("_dot"), "dot"), ATOM)
        if kind == "cotangent":
            return Math(self.accent(name.removesuffix("_bar"), "bar"), ATOM)
        return Math(self.symbol(name), ATOM)

    def literal(self, node: Node, m: Notation) -> Math:
        return self.number(node.attr("value"))

    def fill(self, node: Node, m: Notation) -> Math:
        value = node.attr("value")
        if node.type.is_scalar or value == 0.0:
            return self.number(value)  # a zero array is 0, as in the texts
        if value == 1.0:
            return self.ones()
        return self.juxtapose(self.number(value), self.ones())

    def dim(self, node: Node, m: Notation) -> Math:
        return self.dim_text(node.attr("dim"))

    def identity(self, node: Node, m: Notation) -> Math:
        return Math(self.identity_text, ATOM)

    def prefix(self, node: Node, m: Notation, a: Math) -> Math:
        return Math(f"{self.spell(m)}{self.wrap(a, PRODUCT)}", PREFIX)

    def superscript(self, node: Node, m: Notation, a: Math) -> Math:
        return self.superscripted(a, self.spell(m))

    def infix(self, node: Node, m: Notation, a: Math, b: Math) -> Math:
        # a − (b − c) and a + (−b) need their parentheses; a + (b + c) does not.
        right = INFIX if node.op.commutative else INFIX + 1
        b_text = self.parens(b.text) if b.prec == PREFIX else self.wrap(b, right)
        return Math(f"{self.wrap(a, INFIX)} {self.spell(m)} {b_text}", INFIX)

    def product(self, node: Node, m: Notation, a: Math, b: Math) -> Math:
        result = self.juxtapose(a, b)
        return result._replace(inner=True) if node.type.is_scalar else result

    def solve(self, node: Node, m: Notation, a: Math, b: Math) -> Math:
        """solve(A, B) as what it means: A⁻¹ B (computed without the inverse)."""
        return self.juxtapose(self.superscripted(a, self.spell(m)), b)

    def hadamard(self, node: Node, m: Notation, a: Math, b: Math) -> Math:
        x, y = node.args
        if x.type.is_scalar or y.type.is_scalar:  # scaling: a product, the scalar first
            if (not x.type.is_scalar) or (y.op.constant and not x.op.constant):
                a, b = b, a
            if a.inner and not node.type.is_scalar:
                # (uᵀ v) w: read left to right after a matrix, M uᵀ v w would start with M uᵀ
                a = Math(self.parens(a.text), ATOM)
            return self.juxtapose(a, b)
        return Math(f"{self.wrap(a, HADAMARD)}{self.ring}{self.wrap(b, HADAMARD)}", HADAMARD)

    def fraction(self, node: Node, m: Notation, a: Math, b: Math) -> Math:
        return Math(f"{self.wrap(a, FRACTION)} / {self.wrap(b, POSTFIX)}", FRACTION)

    def power(self, node: Node, m: Notation, a: Math, b: Math | None = None) -> Math:
        if b is None:
            b = self.number(node.attr("p"))
        hadamard = not node.type.is_scalar  # x∘² squares each entry
        return Math(*self.power_text(a, b, hadamard))

    def power_text(self, a: Math, b: Math, hadamard: bool) -> tuple[str, int]:
        raise NotImplementedError

    def function(self, node: Node, m: Notation, *args: Math) -> Math:
        return self.call(self.spell(m), args)

    def call(self, fn: str, args: Sequence[Math]) -> Math:
        return Math(fn + self.parens(", ".join(a.text for a in args)), ATOM)

    def root(self, node: Node, m: Notation, a: Math) -> Math:
        raise NotImplementedError

    def bars(self, node: Node, m: Notation, a: Math) -> Math:
        raise NotImplementedError

    def iverson(self, node: Node, m: Notation, a: Math, b: Math) -> Math:
        return Math(f"[{a.text} {self.spell(m)} {b.text}]", ATOM)

    def sum(self, node: Node, m: Notation, a: Math) -> Math:
        axis = node.attr("axis")
        if axis is None or node.args[0].type.rank <= 1:
            return self.call(self.sum_name, [a])
        if axis == 1:  # the sum of each row: X 𝟏
            return self.juxtapose(a, self.ones())
        return self.juxtapose(self.superscripted(a, self.transpose_sup), self.ones())  # Xᵀ 𝟏

    sum_name = "sum"
    transpose_sup = "ᵀ"

    def spread(self, node: Node, m: Notation, g: Math) -> Math:
        axis = node.attr("axis")
        if axis is None:  # a scalar spread to a shape: g 𝟏
            return self.juxtapose(g, self.ones())
        if axis == 0:  # every row is gᵀ: 𝟏 gᵀ
            return self.juxtapose(self.ones(), self.superscripted(g, self.transpose_sup))
        return self.juxtapose(g, self.superscripted(self.ones(), self.transpose_sup))  # g 𝟏ᵀ

    def stack(self, node: Node, m: Notation, *xs: Math) -> Math:
        raise NotImplementedError

    def columns(self, node: Node, m: Notation, *xs: Math) -> Math:
        """Block columns, as the language writes them: ``[A, B]``."""
        return Math(self.brackets(", ".join(x.text for x in xs)), ATOM)

    def brackets(self, text: str) -> str:
        return f"[{text}]"

    def cols(self, node: Node, m: Notation, a: Math) -> Math:
        attrs = node.kwargs
        if "at" in attrs:
            which = self.dim_text(attrs["at"]).text
        else:
            which = f"{self.dim_text(attrs['start']).text}:{self.dim_text(attrs['stop']).text}"
        return self.subscripted(a, f":, {which}")

    def rows(self, node: Node, m: Notation, a: Math) -> Math:
        attrs = node.kwargs
        if "at" in attrs:
            which = self.dim_text(attrs["at"]).text
        else:
            which = f"{self.dim_text(attrs['start']).text}:{self.dim_text(attrs['stop']).text}"
        return self.subscripted(a, which)

    def subscripted(self, a: Math, which: str) -> Math:
        raise NotImplementedError

    def select(self, node: Node, m: Notation, a: Math, ids: Math) -> Math:
        """Rows picked by integer data: ``E[ids]``."""
        return self.subscripted(a, ids.text)

    def scatter(self, node: Node, m: Notation, g: Math, ids: Math) -> Math:
        """The transpose of a selection: ``onehot(ids)ᵀ ḡ`` (``onehot(i) ḡᵀ`` for one id)."""
        onehot = self.call(self.spell(m), [ids])
        grad, by = node.args
        if by.type.is_vector:
            return self.juxtapose(self.superscripted(onehot, self.transpose_sup), g)
        if grad.type.is_scalar:
            return self.juxtapose(g, onehot)
        return self.juxtapose(onehot, self.superscripted(g, self.transpose_sup))

    def unpick(self, node: Node, m: Notation, g: Math, ids: Math) -> Math:
        """gᵢ at (i, yᵢ): the one-hot rows of y scaled by g, ``g ∘ onehot(y)``."""
        onehot = self.call(self.spell(m), [ids])
        return Math(f"{self.wrap(g, HADAMARD)}{self.ring}{onehot.text}", HADAMARD)

    def extremum(self, node: Node, m: Notation, a: Math) -> Math:
        """``max(A)``; along an axis as the language writes it, ``max(A, axis=1)``."""
        axis = node.attr("axis")
        if axis is None or node.args[0].type.rank <= 1:
            return self.call(self.spell(m), [a])
        return self.call(self.spell(m), [a, Math(self.axis_text(axis), ATOM)])

    def axis_text(self, axis: int) -> str:
        return f"axis={axis}"

    def spell(self, m: Notation) -> str:
        return m.symbol

    # ---- names the derivation gives ----------------------------------------------
    def partial(self, of: str, by: str) -> Math:
        """∂J/∂s."""
        raise NotImplementedError

    def derivative(self, node: Node, arg: Math) -> Math:
        """f′(x) for ``node`` = f(x), an elementwise function of one operand."""
        math = node.op.math or notation.function(node.op.name)
        return self.call(self.spell(math) + self.prime, [arg])

    def vjp(self, of: str, by: str) -> Math:
        """J̄ᵀ ∂J/∂W: the vector-Jacobian product with the cotangent J̄."""
        bar = self.superscripted(Math(self.accent(of, "bar"), ATOM), self.transpose_sup)
        return Math(f"{bar.text}{self.space}{self.partial(of, by).text}", PRODUCT)

    def tangent(self, of: str) -> Math:
        return Math(self.accent(of, "dot"), ATOM)


class UnicodePrinter(MathPrinter):
    """Mathematics in plain Unicode text, for a terminal."""

    SUPERSCRIPTS = str.maketrans("0123456789-−.", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁻·")
    SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

    def sup_text(self, base: str, sup: str) -> str:
        return base + sup

    def join_sups(self, first: str, second: str) -> str | None:
        return "⁻ᵀ" if {first, second} == {"⁻¹", "ᵀ"} else None

    def symbol(self, name: str) -> str:
        base, sub, underscored = _split_name(name)
        if base in GREEK:
            base = unicodedata.lookup(f"GREEK SMALL LETTER {base.upper().replace('MBDA', 'MDA')}")
        elif not underscored:
            return name  # as the program spells it
        if sub.isdigit():
            return base + sub.translate(self.SUBSCRIPTS)
        return f"{base}_{sub}" if sub else base

    def accent(self, name: str, which: str) -> str:
        text = self.symbol(name)
        mark = {"dot": "\u0307", "bar": "\u0304"}[which]
        return unicodedata.normalize("NFC", text[0] + mark + text[1:])  # ẋ as one character

    def power_text(self, a: Math, b: Math, hadamard: bool) -> tuple[str, int]:
        ring = "∘" if hadamard else ""
        if re.fullmatch(r"[−-]?[0-9]+", b.text):
            return self.base_of(a) + ring + b.text.translate(self.SUPERSCRIPTS), POSTFIX
        return f"{self.base_of(a)}^{ring}{self.wrap(b, ATOM)}", POSTFIX

    def root(self, node: Node, m: Notation, a: Math) -> Math:
        return Math(f"√{a.text}", POSTFIX) if a.prec == ATOM else Math(f"√({a.text})", ATOM)

    def bars(self, node: Node, m: Notation, a: Math) -> Math:
        return Math(f"|{a.text}|", ATOM)

    def stack(self, node: Node, m: Notation, *xs: Math) -> Math:
        return Math("[" + "; ".join(x.text for x in xs) + "]", ATOM)

    def subscripted(self, a: Math, which: str) -> Math:
        return Math(f"{self.base_of(a)}[{which}]", POSTFIX)

    def partial(self, of: str, by: str) -> Math:
        return Math(f"∂{self.symbol(of)}/∂{self.symbol(by)}", FRACTION)


class LatexPrinter(MathPrinter):
    """Mathematics in LaTeX (math mode), for Jupyter and documents.

    Only commands that matplotlib's mathtext renders too are used, so that a
    formula can be drawn without a TeX installation.
    """

    space = r"\,"
    ring = r" \circ "
    ones_text = r"\mathbf{1}"
    prime = "'"
    minus = "-"
    sum_name = r"\mathrm{sum}"
    transpose_sup = "T"

    def parens(self, text: str) -> str:
        return rf"\left({text}\right)"

    def sup_text(self, base: str, sup: str) -> str:
        return f"{base}^{{{sup}}}"

    def join_sups(self, first: str, second: str) -> str | None:
        return "-T" if {first, second} == {"-1", "T"} else None

    def base_of(self, a: Math) -> str:
        # A superscript on a superscripted base needs braces: {X^{T}}^{2}.
        return "{" + a.text + "}" if a.prec == POSTFIX else self.wrap(a, ATOM)

    def spell(self, m: Notation) -> str:
        return m.latex

    def scientific(self, mantissa: str, exponent: int) -> str:
        return rf"{mantissa} \cdot 10^{{{exponent}}}"

    def dim_text(self, d: Dim) -> Math:
        e = super().dim_text(d)
        return Math(re.sub(r"([^\W\d_]+)", lambda g: self.symbol(g.group(1)), e.text), e.prec)

    def symbol(self, name: str) -> str:
        base, sub, _ = _split_name(name)
        if base in GREEK:
            base = "\\" + base
        elif len(base) == 1:
            base = _latex_char(base)
        else:
            base = r"\mathrm{" + "".join(_latex_char(c) for c in base) + "}"
        if not sub:
            return base
        sub = sub if sub.isdigit() or len(sub) == 1 else r"\mathrm{" + sub + "}"
        return f"{base}_{{{sub}}}"

    def accent(self, name: str, which: str) -> str:
        return rf"\{which}{{{self.symbol(name)}}}"

    def power_text(self, a: Math, b: Math, hadamard: bool) -> tuple[str, int]:
        ring = r"\circ " if hadamard else ""
        return f"{self.base_of(a)}^{{{ring}{b.text}}}", POSTFIX

    def fraction(self, node: Node, m: Notation, a: Math, b: Math) -> Math:
        return Math(rf"\frac{{{a.text}}}{{{b.text}}}", ATOM)

    def root(self, node: Node, m: Notation, a: Math) -> Math:
        return Math(rf"\sqrt{{{a.text}}}", ATOM)

    def bars(self, node: Node, m: Notation, a: Math) -> Math:
        return Math(rf"\left|{a.text}\right|", ATOM)

    def iverson(self, node: Node, m: Notation, a: Math, b: Math) -> Math:
        return Math(rf"\left[{a.text} {self.spell(m)} {b.text}\right]", ATOM)

    def stack(self, node: Node, m: Notation, *xs: Math) -> Math:
        return Math(r"\left[" + r";\, ".join(x.text for x in xs) + r"\right]", ATOM)

    def brackets(self, text: str) -> str:
        return rf"\left[{text}\right]"

    def subscripted(self, a: Math, which: str) -> Math:
        base = self.base_of(a)
        if "_" in base and not base.startswith("{"):  # δ₁[0:16]: {\delta_{1}}_{0:16}
            base = "{" + base + "}"
        return Math(f"{base}_{{{which}}}", POSTFIX)

    def axis_text(self, axis: int) -> str:
        return rf"\mathrm{{axis}}={axis}"

    def partial(self, of: str, by: str) -> Math:
        return Math(rf"\frac{{\partial {self.symbol(of)}}}{{\partial {self.symbol(by)}}}", ATOM)


def _latex_char(c: str) -> str:
    """One character of a name in LaTeX: a Greek letter as its command."""
    try:
        words = unicodedata.name(c).split()
    except ValueError:
        return c
    if words[:2] == ["GREEK", "SMALL"] and words[-1].lower().replace("lamda", "lambda") in GREEK:
        return "\\" + words[-1].lower().replace("lamda", "lambda")
    if c in "#$%&_{}":
        return "\\" + c
    return c


PRINTERS: Mapping[str, type[MathPrinter]] = {"unicode": UnicodePrinter, "latex": LatexPrinter}
