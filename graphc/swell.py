"""``graphc swell``: expression swell on the logistic map, SymPy against graphc.

The experiment of Baydin et al. (JMLR 2018), Table 1: l₁ = x, lₖ₊₁ = 4 lₖ (1 − lₖ).
SymPy's derivative d lₖ/dx roughly multiplies its size by 2.5–2.7 per step
(``count_ops``); with common subexpressions shared (``cse``) it grows slowly;
graphc's gradient graph, folded as it is built, grows by the same number of
nodes at every step (Laue, arXiv:1904.02990: symbolic differentiation with
sharing is reverse mode).

Every SymPy step runs in a worker process, killed when it exceeds the time
budget; SymPy is then stopped for the larger k, and the report says so.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from graphc.compare import emitted_operations, ops_after_cse, ops_in, run_with_timeout
from graphc.compiler import build_module
from graphc.derive import derive
from graphc.errors import GraphcError
from graphc.frontend import LoweredProgram, lower
from graphc.symbolic import (
    operation_count,
    symbols_for,
    sympy_depth,
    sympy_module,
    translate,
)

TABLE_1_STEPS = 4  # Baydin's Table 1 shows l₁ … l₄


def logistic_map(k: int) -> str:
    """The program of lₖ: ``param x``, then ``l1 = x``, ``l2 = 4 l1 (1 − l1)``, …"""
    lines = ["# The logistic map of Baydin et al. (2018), Table 1", "param x : []", "l1 = x"]
    lines += [f"l{n} = 4 l{n - 1} (1 − l{n - 1})" for n in range(2, k + 1)]
    return "\n".join(lines) + "\n"


def _program(k: int) -> LoweredProgram:
    return lower(logistic_map(k), f"logistic_map_{k}.gc")


def _sympy_value(sp: Any, lowered: LoweredProgram) -> tuple[Any, Any]:
    """lₖ as SymPy holds it (the program translated) and the symbol x."""
    (x_node,) = lowered.variables
    x = symbols_for(sp, "x", x_node.type)
    out = lowered.graph.outputs[lowered.output]
    (value,) = translate(sp, [out], {x_node: x}).outputs
    return value, x


def _sympy_step(k: int) -> tuple[int, int, float]:
    """In a worker: SymPy's d lₖ/dx, its size raw and after cse, and the seconds taken."""
    sp = sympy_module()
    start = time.perf_counter()
    with sympy_depth():
        value, x = _sympy_value(sp, _program(k))
        derivative = sp.diff(value, x)
        raw = ops_in(sp, [derivative])
        cse = ops_after_cse(sp, [derivative])
    return raw, cse, time.perf_counter() - start


@dataclass
class SwellRow:
    k: int
    sympy_raw: int | None  # None: SymPy was stopped before this step
    sympy_cse: int | None
    graphc_gradient_graph: int  # operation nodes of the folded value-and-gradient graph
    emitted_operations: int  # operators and calls in the emitted value_and_grad
    sympy_seconds: float | None
    graphc_seconds: float


@dataclass
class Table1Row:
    n: int
    value: str
    derivative: str
    simplified: str


@dataclass
class Swell:
    max_k: int
    timeout: float
    rows: list[SwellRow] = field(default_factory=list)
    table1: list[Table1Row] = field(default_factory=list)
    stopped_at: int | None = None  # the k whose SymPy step ran out of time

    def stop_note(self) -> str:
        if self.stopped_at is None:
            return f"SymPy finished every step within {self.timeout:g} s."
        return (
            f"SymPy stopped at k = {self.stopped_at}: that step took longer than"
            f" {self.timeout:g} s (--timeout)."
        )

    def growth(self) -> str:
        """How each size grows per step, read off the table."""
        sizes = [r.graphc_gradient_graph for r in self.rows]
        steps = {b - a for a, b in zip(sizes[1:], sizes[2:])}
        lines = []
        if len(steps) == 1:
            lines.append(
                f"graphc's gradient graph grows by {steps.pop()} operations per step (k ≥ 2)."
            )
        raw = [r.sympy_raw for r in self.rows if r.k >= 5 and r.sympy_raw is not None]
        ratios = [b / a for a, b in zip(raw, raw[1:])]  # from k = 5: past the small cases
        if ratios:
            lines.append(
                f"SymPy's derivative grows ×{min(ratios):.2f} to ×{max(ratios):.2f} per step"
                f" (k ≥ 5); with cse it grows by"
                f" {', '.join(str(d) for d in self._cse_steps())} operations per step (k ≥ 2)."
            )
        return " ".join(lines)

    def _cse_steps(self) -> list[int]:
        cse = [r.sympy_cse for r in self.rows if r.k >= 2 and r.sympy_cse is not None]
        return [b - a for a, b in zip(cse, cse[1:])]

    def _size_table(self) -> tuple[list[str], list[list[str]]]:
        head = [
            "k",
            "SymPy d lₖ/dx",
            "SymPy with cse",
            "graphc gradient graph",
            "graphc emitted operations",
            "SymPy time",
            "graphc time",
        ]
        body = []
        for r in self.rows:
            body.append(
                [
                    str(r.k),
                    "—" if r.sympy_raw is None else f"{r.sympy_raw:,}",
                    "—" if r.sympy_cse is None else f"{r.sympy_cse:,}",
                    str(r.graphc_gradient_graph),
                    str(r.emitted_operations),
                    "—" if r.sympy_seconds is None else _seconds(r.sympy_seconds),
                    _seconds(r.graphc_seconds),
                ]
            )
        return head, body

    def text(self) -> str:
        lines = [f"graphc swell: the logistic map lₖ₊₁ = 4 lₖ (1 − lₖ), l₁ = x, k = 1…{self.max_k}"]
        lines += ["", "Baydin et al. (2018), Table 1, as SymPy computes it:"]
        for t in self.table1:
            lines += [
                f"  l{t.n} = {t.value}",
                f"    d l{t.n}/dx = {t.derivative}",
                f"    simplified: {t.simplified}",
            ]
        head, body = self._size_table()
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
        lines += ["", "Sizes (SymPy: count_ops; graphc: operation nodes):"]
        for row in [head, *body]:
            lines.append("  " + "   ".join(c.rjust(w) for c, w in zip(row, widths)))
        lines += ["", self.growth(), self.stop_note()]
        return "\n".join(lines)

    def markdown(self) -> str:
        table1 = [
            "| n | lₙ | d lₙ/dx | d lₙ/dx, simplified |",
            "|--:|:--|:--|:--|",
            *(f"| {t.n} | {t.value} | {t.derivative} | {t.simplified} |" for t in self.table1),
        ]
        head, body = self._size_table()
        sizes = [
            "| " + " | ".join(head) + " |",
            "|" + "|".join(["--:"] * len(head)) + "|",
            *("| " + " | ".join(row) + " |" for row in body),
        ]
        notes = f"{self.growth()} {self.stop_note()}"
        return "\n".join(table1) + "\n\n" + "\n".join(sizes) + "\n\n" + notes

    def json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    def plot(self, path: str) -> None:
        """Size against k on a log scale, as an SVG or PNG."""
        problem = plot_problem(path)
        if problem:
            raise GraphcError(problem)
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ks = [r.k for r in self.rows]
        figure, axes = plt.subplots(figsize=(6.4, 4.2))
        series = [
            ("SymPy d lₖ/dx (count_ops)", [r.sympy_raw for r in self.rows], "o-"),
            ("SymPy with cse", [r.sympy_cse for r in self.rows], "s-"),
            ("graphc gradient graph (nodes)", [r.graphc_gradient_graph for r in self.rows], "^-"),
            ("graphc emitted operations", [r.emitted_operations for r in self.rows], "v-"),
        ]
        for label, sizes, style in series:
            points = [(k, s) for k, s in zip(ks, sizes) if s]
            if points:
                axes.plot(*zip(*points), style, label=label)
        axes.set_yscale("log")
        axes.set_xlabel("k (steps of the logistic map)")
        axes.set_ylabel("size")
        axes.set_title("Expression swell: d lₖ/dx")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
        figure.tight_layout()
        plt.rcParams["svg.hashsalt"] = "graphc"  # the same SVG for the same numbers
        figure.savefig(path, metadata={"Date": None} if path.lower().endswith(".svg") else None)
        plt.close(figure)


def plot_problem(path: str) -> str | None:
    """Why ``path`` cannot be plotted to (checked before the experiment runs), or None."""
    if not path.lower().endswith((".svg", ".png")):
        return f"--plot writes .svg or .png files, not {path}"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return (
            "graphc swell --plot needs matplotlib, which is not installed:"
            " pip install 'graphc[plots]'"
        )
    return None


def _seconds(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def pretty(sp: Any, expr: Any, ascending: bool = False) -> str:
    """A formula as on paper: ``16x(1 − x)²``, not ``16*x*(1 - x)**2``."""
    text = sp.sstr(expr, order="rev-lex" if ascending else None)
    superscripts = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
    text = re.sub(r"\*\*(\d+)", lambda m: m.group(1).translate(superscripts), text)
    return text.replace("*", "").replace("-", "−")


def table1(sp: Any, steps: int = TABLE_1_STEPS) -> list[Table1Row]:
    """Baydin's Table 1: lₙ, its derivative as SymPy gives it, and simplified."""
    rows = []
    for n in range(1, steps + 1):
        with sympy_depth():
            value, x = _sympy_value(sp, _program(n))
            derivative = sp.diff(value, x)
            simplified = sp.factor_terms(sp.expand(derivative))
        rows.append(
            Table1Row(
                n, pretty(sp, value), pretty(sp, derivative), pretty(sp, simplified, True)
            )
        )  # fmt: skip
    return rows


def swell(max_k: int = 12, timeout: float = 10.0) -> Swell:
    """The experiment for k = 1 … ``max_k``."""
    sp = sympy_module()
    report = Swell(max_k, timeout, table1=table1(sp, min(max_k, TABLE_1_STEPS)))
    for k in range(1, max_k + 1):
        start = time.perf_counter()
        lowered = _program(k)
        derived = derive(lowered, None, "reverse")
        module = build_module(lowered)
        graphc_seconds = time.perf_counter() - start
        raw = cse = seconds = None
        if report.stopped_at is None:
            status, result = run_with_timeout(_sympy_step, (k,), timeout)
            if status == "done":
                raw, cse, seconds = result
            elif status == "timeout":
                report.stopped_at = k
            else:
                raise GraphcError(f"SymPy failed at k = {k}: {result}")
        report.rows.append(
            SwellRow(
                k,
                raw,
                cse,
                operation_count(derived.graph),
                emitted_operations(module.source, "value_and_grad"),
                seconds,
                graphc_seconds,
            )
        )
    return report
