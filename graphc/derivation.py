"""A derivative as mathematics: the equations of the emitted derivative function.

`derivation(derived)` reads the folded derivative graph of `graphc.derive`
and writes one equation per statement of the emitted function
(``value_and_grad``, ``vjp`` or ``jvp``), with the names the emitted code
gives them, then one equation per gradient (or the tangent, in forward
mode).  So the shared signals appear as the compiler folded them: for
examples/ner_window.gc ::

    f = tanh(W x + b)
    s = uᵀ f
    J = σ(s)
    σ′(s) = J (1 − J)
    δ = σ′(s) u ∘ (1 − f ∘ f)
    ∂J/∂W = δ xᵀ
    ∂J/∂b = δ
    ∂J/∂u = σ′(s) f

Names: the emitted code's ``dJ_ds`` (the derivative of the output J by the
intermediate s) is written ∂J/∂s, or f′(s) when the output is J = f(s) for
an elementwise function f, as σ′(s) is here; ``delta`` is δ.  Nodes the
emitted code writes inline are written inline.  Printing is
`graphc.mathprint`'s; `graphc derive` and ``fn.derivation()`` show it.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphc.compiler import derivative_locals
from graphc.derive import DerivedGraph
from graphc.ir import Node
from graphc.mathprint import ATOM, PRINTERS, Math, MathPrinter


@dataclass(frozen=True)
class Derivation:
    """The equations of a derivative; ``str`` is Unicode, Jupyter shows LaTeX."""

    derived: DerivedGraph
    locals: dict[Node, str]  # the emitted function's statements: node -> local name

    def equations(self, form: str = "unicode") -> list[tuple[str, str]]:
        """(left side, right side) of each equation, in ``form`` (unicode or latex)."""
        return _Writer(self, PRINTERS[form]()).equations()

    def unicode(self) -> str:
        return "\n".join(f"{lhs} = {rhs}" for lhs, rhs in self.equations("unicode"))

    def latex(self) -> str:
        """One LaTeX formula per line (math mode, without delimiters)."""
        return "\n".join(f"{lhs} = {rhs}" for lhs, rhs in self.equations("latex"))

    def __str__(self) -> str:
        return self.unicode()

    def __repr__(self) -> str:
        return f"<graphc.Derivation of {self.derived.output}:\n{self.unicode()}>"

    def _repr_latex_(self) -> str:
        rows = r" \\ ".join(f"{lhs} &= {rhs}" for lhs, rhs in self.equations("latex"))
        return rf"$$\begin{{aligned}} {rows} \end{{aligned}}$$"


def derivation(derived: DerivedGraph) -> Derivation:
    return Derivation(derived, derivative_locals(derived))


class _Writer:
    """Prints one derivation with one printer: names first, then expressions."""

    def __init__(self, d: Derivation, printer: MathPrinter):
        self.d, self.p = d, printer
        self.value_nodes = set(d.derived.value_graph.nodes())
        self.named: dict[Node, Math] = {}  # the statements' nodes, by their names
        self.inline: dict[Node, Math] = {}
        # A gradient the emitted code stores under its own name (dJ_dU, stored when final)
        self.gradient_of: dict[Node, str] = {}
        if d.derived.mode != "forward" and d.derived.output_type.is_scalar:
            for w, g in d.derived.gradients.items():
                self.gradient_of.setdefault(g, w)
        for node, local in d.locals.items():
            self.named[node] = self.label(node, local)

    def label(self, node: Node, local: str) -> Math:
        derived, p = self.d.derived, self.p
        given = derived.graph.names.get(node) or derived.graph.hints.get(node)
        prefix = f"d{derived.output}_d"
        w = self.gradient_of.get(node)
        if w is not None and local == f"{prefix}{w}" and node not in self.value_nodes:
            return p.partial(derived.output, w)
        if given is not None and given.startswith(prefix) and node not in self.value_nodes:
            by = given[len(prefix) :]
            out = derived.value
            if (
                out.op.elementwise
                and len(out.args) == 1
                and out.op.vjp is not None
                and self.program_name(out.args[0]) == by
            ):
                return p.derivative(out, self.expr(out.args[0]))  # J = σ(s): ∂J/∂s = σ′(s)
            return p.partial(derived.output, by)
        if given is not None and given.endswith("_dot") and node not in self.value_nodes:
            return p.tangent(given.removesuffix("_dot"))  # forward mode's ṡ
        return Math(p.symbol(local), ATOM)

    def program_name(self, node: Node) -> str | None:
        if node.op.name == "var":
            return node.attr("name")
        return self.d.derived.graph.names.get(node) or self.d.derived.graph.hints.get(node)

    def expr(self, root: Node) -> Math:
        """``root`` by its name if it has a statement, else written out (iteratively)."""
        if root in self.named:
            return self.named[root]
        stack = [root]
        while stack:
            node = stack[-1]
            if node in self.inline:
                stack.pop()
                continue
            pending = [a for a in node.args if a not in self.named and a not in self.inline]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            self.inline[node] = self.written(node)
        return self.inline[root]

    def written(self, node: Node) -> Math:
        args = [self.named.get(a) or self.inline[a] for a in node.args]
        return self.p.apply(node, args)

    def equations(self) -> list[tuple[str, str]]:
        derived, p = self.d.derived, self.p
        rows = []
        for node in self.d.locals:
            for arg in node.args:
                self.expr(arg)
            rows.append((self.named[node].text, self.written(node).text))
        if derived.mode == "forward":
            if derived.tangent not in self.named:  # else its statement said it
                rows.append((p.tangent(derived.output).text, self.expr(derived.tangent).text))
            return rows
        scalar = derived.output_type.is_scalar
        for w, g in derived.gradients.items():
            lhs = p.partial(derived.output, w) if scalar else p.vjp(derived.output, w)
            if self.gradient_of.get(g) == w and self.d.locals.get(g) == f"d{derived.output}_d{w}":
                continue  # its statement said it
            rows.append((lhs.text, self.expr(g).text))
        return rows
