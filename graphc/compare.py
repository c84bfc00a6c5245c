"""``graphc compare``: SymPy's derivative of a program beside graphc's.

For every variable, SymPy differentiates the scalarised program by each
entry; its size is measured raw (``count_ops``), after ``cse``, and after
``simplify`` if that finishes within a time budget.  graphc's side is the
folded value and gradient graphs and the emitted gradient function.  The two
derivatives are checked against each other at random points (relative
difference 1e-9) and, where ``simplify`` of their difference finishes, as
expressions.

SymPy can only scalarise small sizes, so every dim gets a small size unless
given one; simplify runs in a worker process that is killed when the budget
runs out (SymPy cannot be interrupted any other way).
"""

from __future__ import annotations

import ast
import json
import math
import multiprocessing
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from graphc.compiler import build_module
from graphc.derive import derive
from graphc.frontend import LoweredProgram
from graphc.gradcheck import random_feed
from graphc.runtime import CompiledFunction
from graphc.symbolic import (
    operation_count,
    resize,
    small_sizes,
    symbols_for,
    sympy_depth,
    sympy_module,
    to_sympy,
    translate,
)

DEFAULT_SIZE = 2  # every dim, unless --dim says otherwise: SymPy scalarises
DEFAULT_TIMEOUT = 5.0  # seconds for simplify, per variable
POINTS = 3
TOLERANCE = 1e-9


# ---- running SymPy under a time limit ------------------------------------------------


def _worker(connection: Any, job: Callable[..., Any], args: tuple) -> None:
    try:
        connection.send(("done", job(*args)))
    except BaseException as err:  # reported to the parent, which decides
        connection.send(("error", f"{type(err).__name__}: {err}"))
    finally:
        connection.close()


def run_with_timeout(job: Callable[..., Any], args: tuple, timeout: float) -> tuple[str, Any]:
    """``("done", result)``, ``("timeout", None)`` or ``("error", message)``.

    The job runs in a forked worker process, killed when ``timeout`` seconds
    have passed: SymPy's simplify cannot be interrupted from inside.
    """
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_worker, args=(send, job, args), daemon=True)
    process.start()
    send.close()
    try:
        if receive.poll(timeout):
            try:
                return receive.recv()
            except EOFError:
                return ("error", "the worker process died")
        return ("timeout", None)
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receive.close()


# ---- sizes ------------------------------------------------------------------------------


def ops_in(sp: Any, entries: Sequence[Any]) -> int:
    """SymPy's operation count of a list of expressions."""
    return sum(int(sp.count_ops(e)) for e in entries)


def ops_after_cse(sp: Any, entries: Sequence[Any]) -> int:
    """The operation count once common subexpressions are shared (``cse``)."""
    replacements, reduced = sp.cse(list(entries))
    return sum(int(sp.count_ops(r)) for _, r in replacements) + ops_in(sp, reduced)


def emitted_operations(source: str, function: str) -> int:
    """Arithmetic operators and NumPy calls in one function of emitted code, as it
    runs without ``out=`` buffers (the part writing into them repeats the gradients)."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            body = []
            for statement in node.body:
                body.append(statement)
                if isinstance(statement, ast.If) and ast.unparse(statement.test) == "out is None":
                    break  # what follows runs only with out= given
            return sum(
                isinstance(n, (ast.BinOp, ast.UnaryOp, ast.Call))
                for statement in body
                for n in ast.walk(statement)
            )  # fmt: skip
    raise ValueError(f"no function {function} in the emitted code")


def _simplify_job(sympy_entries: list, graphc_entries: list) -> tuple[int, str, float]:
    """In the worker: simplify SymPy's derivative, then the difference of the two."""
    sp = sympy_module()
    start = time.perf_counter()
    simplified = ops_in(sp, [sp.simplify(e) for e in sympy_entries])
    verdict = "equal"
    for a, b in zip(sympy_entries, graphc_entries):
        difference = sp.simplify(a - b)
        if difference != 0:
            verdict = "different" if difference.is_number else "unproven"
            if verdict == "different":
                break
    return simplified, verdict, time.perf_counter() - start


def _warm_up(sp: Any) -> None:
    """simplify loads much of SymPy on first use: do that once, before the workers fork."""
    x = sp.Symbol("x", real=True)
    sp.simplify(sp.exp(x) + sp.sin(x) / x)


# ---- the comparison ---------------------------------------------------------------------


@dataclass
class VariableComparison:
    variable: str
    entries: int  # derivative entries: output entries × variable entries
    sympy_raw: int
    sympy_cse: int
    sympy_simplified: int | None  # None: simplify did not finish in the budget
    diff_seconds: float
    cse_seconds: float
    simplify_seconds: float | None
    numeric_error: float  # worst relative difference over the random points
    symbolic: str  # equal | unproven | different | gave up after N s | error: …

    @property
    def numeric_ok(self) -> bool:
        return self.numeric_error <= TOLERANCE

    @property
    def ok(self) -> bool:
        return self.numeric_ok and self.symbolic != "different"


@dataclass
class Comparison:
    file: str
    output: str
    output_shape: tuple[int, ...]
    sizes: dict[str, int]
    timeout: float
    points: int
    value_operations: int
    gradient_operations: int
    emitted_operations: int
    compile_seconds: float
    variables: list[VariableComparison] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.variables)

    def header(self) -> str:
        dims = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        return (
            f"graphc compare {self.file}: {self.output} by"
            f" {', '.join(v.variable for v in self.variables) or 'nothing'}"
            f" ({f'dims {dims}' if dims else 'no dims'}; simplify budget {self.timeout:g} s)"
        )

    def graphc_line(self) -> str:
        return (
            f"graphc: value graph {self.value_operations} operations, gradient graph"
            f" {self.gradient_operations} operations, emitted gradient code"
            f" {self.emitted_operations} operations"
        )

    def rows(self) -> tuple[list[str], list[list[str]]]:
        head = [
            f"∂{self.output}/∂",
            "entries",
            "SymPy raw",
            "SymPy cse",
            "SymPy simplified",
            f"at {self.points} points",
            "symbolically",
        ]
        rows = []
        for v in self.variables:
            simplified = "—" if v.sympy_simplified is None else str(v.sympy_simplified)
            numeric = "agree" if v.numeric_ok else f"DIFFER ({v.numeric_error:.1e})"
            rows.append(
                [
                    v.variable,
                    str(v.entries),
                    str(v.sympy_raw),
                    str(v.sympy_cse),
                    simplified,
                    numeric,
                    v.symbolic,
                ]
            )
        return head, rows

    def times_line(self) -> str:
        def ms(seconds: float) -> str:
            return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"

        diff = sum(v.diff_seconds for v in self.variables)
        cse = sum(v.cse_seconds for v in self.variables)
        simplify = [
            f"{v.variable} {ms(v.simplify_seconds)}"
            for v in self.variables
            if v.simplify_seconds is not None
        ]
        return (
            f"times: graphc {ms(self.compile_seconds)}; SymPy diff {ms(diff)}, cse {ms(cse)},"
            f" simplify {', '.join(simplify) or '—'}"
        )

    def verdict(self) -> str:
        worst = max((v.numeric_error for v in self.variables), default=0.0)
        if self.ok:
            return (
                f"OK: SymPy's derivative and graphc's gradient agree at {self.points} random"
                f" points (worst relative difference {worst:.1e})"
            )
        bad = ", ".join(v.variable for v in self.variables if not v.ok)
        return f"FAILED: SymPy's derivative and graphc's gradient differ for {bad}"

    def text(self) -> str:
        head, rows = self.rows()
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

        def line(cells: list[str]) -> str:
            first = cells[0].ljust(widths[0])
            rest = [
                c.rjust(w) if i < 5 else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths))
                if i
            ]
            return ("  " + "   ".join([first, *rest])).rstrip()

        return "\n".join(
            [
                self.header(),
                self.graphc_line(),
                line(head),
                *(line(r) for r in rows),
                self.times_line(),
                self.verdict(),
            ]
        )

    def markdown(self) -> str:
        head, rows = self.rows()
        table = [
            "| " + " | ".join(head) + " |",
            "|" + "|".join([":--", *["--:"] * 4, ":--", ":--"]) + "|",
            *("| " + " | ".join(r) + " |" for r in rows),
        ]
        return "\n\n".join(
            [
                f"**{self.header()}**",
                self.graphc_line(),
                "\n".join(table),
                self.times_line(),
                self.verdict(),
            ]
        )

    def json(self) -> str:
        data = asdict(self)
        data["ok"] = self.ok
        return json.dumps(data, indent=2, ensure_ascii=False)


def _flat(sp: Any, x: Any) -> list[Any]:
    if isinstance(x, (sp.MatrixBase, sp.NDimArray)):
        return list(x) if isinstance(x, sp.MatrixBase) else list(sp.flatten(x))
    return [x]


def compare(
    lowered: LoweredProgram,
    dims: Mapping[str, int] | None = None,
    *,
    wrt: Sequence[str] | str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    points: int = POINTS,
    seed: int = 0,
    size: int = DEFAULT_SIZE,
) -> Comparison:
    """Differentiate ``lowered`` with SymPy and with graphc, and compare."""
    sp = sympy_module()
    sizes = small_sizes(lowered, size)
    sizes.update(dims or {})
    lowered = resize(lowered, sizes)
    sizes = {n: d.value for n, d in lowered.dims.items() if d.value is not None}

    start = time.perf_counter()
    compiled = build_module(lowered, wrt)
    fn = CompiledFunction(lowered, compiled)
    compile_seconds = time.perf_counter() - start
    derived = derive(lowered, list(fn.wrt), "reverse")
    out_node = lowered.graph.outputs[lowered.output]
    scalar = out_node.type.is_scalar
    gradient_fn = "value_and_grad" if scalar else "vjp"
    report = Comparison(
        file=lowered.filename,
        output=lowered.output,
        output_shape=tuple(d.value for d in out_node.type.dims),
        sizes=sizes,
        timeout=timeout,
        points=points,
        value_operations=operation_count(derived.value_graph),
        gradient_operations=operation_count(derived.graph),
        emitted_operations=emitted_operations(fn.source, gradient_fn),
        compile_seconds=compile_seconds,
    )

    symbols = {v.attr("name"): symbols_for(sp, v.attr("name"), v.type) for v in lowered.variables}
    leaves = {v: symbols[v.attr("name")] for v in lowered.variables}
    value = translate(sp, [out_node], leaves, freeze_stops=True)
    graphc_form = to_sympy(fn)  # graphc's own derivative, translated
    ordered = [s for v in lowered.variables for s in _flat(sp, symbols[v.attr("name")])]
    feeds = [random_feed(lowered, seed=seed + k) for k in range(points)]
    numbers = [
        [x for v in lowered.variables for x in np.ravel(feed[v.attr("name")])] for feed in feeds
    ]

    for name in fn.wrt:
        with sympy_depth():
            start = time.perf_counter()
            outputs = _flat(sp, value.outputs[0])
            by = _flat(sp, symbols[name])
            sympy_entries = [value.thawed(sp.diff(o, s)) for o in outputs for s in by]
            diff_seconds = time.perf_counter() - start
            raw = ops_in(sp, sympy_entries)
            start = time.perf_counter()
            cse = ops_after_cse(sp, sympy_entries)
            cse_seconds = time.perf_counter() - start
            graphc_entries = _flat(sp, graphc_form.gradients[name])
            evaluate = sp.lambdify(ordered, sympy_entries, modules="numpy")
        error = 0.0
        for feed, point in zip(feeds, numbers):
            ours = np.ravel(
                fn.value_and_grad(**feed)[1][name] if scalar else fn.jacobian(**feed)[name]
            )
            theirs = np.array(evaluate(*point), dtype=float).ravel()
            scale = max(np.max(np.abs(ours), initial=0.0), np.max(np.abs(theirs), initial=0.0))
            worst = float(np.max(np.abs(ours - theirs), initial=0.0))
            error = max(error, worst / scale if scale > 0 else worst)
            if not math.isfinite(error):
                error = math.inf
        if not report.variables:
            _warm_up(sp)
        status, result = run_with_timeout(_simplify_job, (sympy_entries, graphc_entries), timeout)
        if status == "done":
            simplified, symbolic, simplify_seconds = result
        else:
            simplified, simplify_seconds = None, None
            symbolic = (
                f"gave up after {timeout:g} s" if status == "timeout" else f"SymPy failed: {result}"
            )
        report.variables.append(
            VariableComparison(
                name,
                len(sympy_entries),
                raw,
                cse,
                simplified,
                diff_seconds,
                cse_seconds,
                simplify_seconds,
                error,
                symbolic,
            )
        )
    return report
