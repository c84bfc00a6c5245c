"""The compile driver: a derived program -> the functions of its module, as data -> text.

The emitted module defines, for an output ``J`` and variables ``W, b, …``:

* ``value(*, W, b, …)``: J.
* scalar J, reverse mode: ``value_and_grad(…)`` -> ``(J, {"W": ∂J/∂W, …})``.
* forward mode: ``jvp(…, W_dot=…, …)`` -> ``(J, J_dot)``, and for scalar J a
  ``value_and_grad`` made of one jvp per entry.
* non-scalar J, reverse mode: ``vjp(…, J_bar=…)`` -> ``(J, {"W": J̄ᵀ ∂J/∂W, …})``.

Each function is described here as data (`FunctionSpec`: parameters, graph,
what it returns; `GradientByJvp`); `graphc.emit_numpy` alone writes the Python.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from graphc.autodiff import gradient_name
from graphc.derive import (
    MODES,
    DerivedGraph,
    derive,
    hessian_sweeps,
    hvp_sweep,
    jacobian_sweeps,
    resolve_wrt,
)
from graphc.emit_array_api import ArrayApiPrinter
from graphc.emit_numpy import (
    EntryBody,
    Function,
    FunctionSpec,
    GradientByJvp,
    NumpyPrinter,
    Stacked,
    emit_module,
    entry_body,
    function_labels,
    function_locals,
    keyword_names,
)
from graphc.errors import DifferentiationError, GraphcError, did_you_mean
from graphc.frontend import LoweredProgram
from graphc.ir import Node
from graphc.passes import prune
from graphc.passes.gather_factors import gather_factors
from graphc.shapes import Type

__all__ = [
    "BACKENDS",
    "MODES",
    "CompiledModule",
    "build_module",
    "derivative_labels",
    "resolve_wrt",
]

# The module's dialect: NumPy (readable, the default), or the array API standard
# (any array library, through array-api-compat: docs/backends.md).
BACKENDS: dict[str, type[NumpyPrinter]] = {"numpy": NumpyPrinter, "array-api": ArrayApiPrinter}

# What the module's docstring says its keyword arguments are, by backend.
_ARGUMENTS = {
    "numpy": "Keyword arguments are NumPy arrays named as in the program; a vector is 1-D.",
    "array-api": "Keyword arguments are arrays of one floating dtype, from any library that\n"
    "array-api-compat knows (NumPy, PyTorch, JAX, CuPy, Dask), named as in the\n"
    "program; a vector is 1-D.",
}
# What the module's results are, after the arguments and the f_dict twins.
_RESULTS = {
    "numpy": "",
    "array-api": "Results have the arguments' dtype, library and device.\n",
}


def check_backend(backend: str) -> type[NumpyPrinter]:
    """The printer of ``backend``; a GraphcError naming the choices for any other."""
    if backend not in BACKENDS:
        raise GraphcError(f"unknown backend {backend!r}: choose {' or '.join(BACKENDS)}")
    return BACKENDS[backend]


@dataclass(frozen=True)
class CompiledModule:
    """Emitted source and how to call it."""

    source: str
    output: str
    output_type: Type
    wrt: tuple[str, ...]
    mode: str
    param_names: dict[str, str]  # program name -> Python keyword
    seed_names: dict[str, str]  # wrt name (or the output, in reverse mode) -> seed keyword
    functions: tuple[str, ...]  # the functions the module defines
    may_alias: bool = True  # whether a function may return a fed array (or a view of one)
    # each graph function -> its parameters: name in the program (or seed name) -> keyword
    signatures: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    backend: str = "numpy"  # the module's dialect (BACKENDS)
    dtype: str | None = None  # the dtype every function casts its arguments to, if fixed
    # value_and_grad's statements, for the compiled function's checked entry (NumPy only),
    # printed when it asks (a module written to a file never does)
    entry: Callable[[], EntryBody | None] | None = None


def value_function(derived: DerivedGraph) -> FunctionSpec:
    graph = derived.value_graph
    return FunctionSpec(
        "value",
        derived.variables,
        graph,
        graph.outputs[derived.output],
        f"{derived.output} {derived.output_type}: the program's output.",
    )


def derivative_function(derived: DerivedGraph) -> FunctionSpec:
    """The function of ``derived.graph``: value_and_grad or vjp (reverse), jvp (forward)."""
    out = derived.output
    params = (*derived.variables, *derived.seeds.values())
    if derived.mode == "forward":
        return FunctionSpec(
            "jvp",
            params,
            derived.graph,
            (derived.value, derived.tangent),
            f"{out} and its directional derivative along the tangents *_dot.",
        )
    returns = (derived.value, derived.gradients)
    if derived.output_type.is_scalar:
        by = ", ".join(derived.wrt_names) or "nothing"
        doc = (
            f"{out} and its gradient by {by} (each of its variable's shape).\n\n"
            "With out (arrays by name), the gradients are written into those arrays\n"
            "(added to them with accumulate=True), and out is returned."
        )
        return FunctionSpec("value_and_grad", params, derived.graph, returns, doc, writes_into=True)
    doc = f"{out} and the vector-Jacobian product {out}_barᵀ ∂{out}/∂(…)."
    return FunctionSpec("vjp", params, derived.graph, returns, doc)


def gradient_by_jvp(derived: DerivedGraph) -> GradientByJvp:
    return GradientByJvp(
        "value_and_grad",
        derived.variables,
        tuple((v, derived.seeds[v.attr("name")]) for v in derived.wrt),
        "The value and gradient by forward mode: one jvp per entry.",
    )


def module_functions(derived: DerivedGraph) -> list[Function]:
    functions: list[Function] = [value_function(derived), derivative_function(derived)]
    if derived.mode == "forward" and derived.output_type.is_scalar:
        functions.append(gradient_by_jvp(derived))
    return functions


def may_alias(derived: DerivedGraph) -> bool:
    """Whether a returned value may be a fed array or a NumPy view of one.

    Conservatively: a var, or a chain of one-argument operators that are not
    elementwise (a transpose, an index, a broadcast, ``stop``) down to one.
    """
    for node in [*derived.value_graph.outputs.values(), *derived.graph.outputs.values()]:
        while len(node.args) == 1 and not node.op.elementwise:
            node = node.args[0]
        if node.op.name == "var":
            return True
    return False


# ---- the functions `--emit` may add ------------------------------------------------
# Each takes the lowered program, wrt and mode, and derives what it needs.


def jacobian_function(lowered: LoweredProgram, wrt, mode: str) -> FunctionSpec:
    """``jacobian(…)`` -> {W: ∂J/∂W}, each J.shape + W.shape, by one vectorised sweep:
    forward mode seeds every unit direction of W at once (a leading axis of
    directions), reverse mode every unit cotangent of J."""
    if mode == "forward":
        sweeps = jacobian_sweeps(lowered, wrt)
        base = sweeps.base
        returns = {
            w: Stacked(sweeps.tangents[(w, base.output)], sweeps.seeds[w], True)
            for w in base.wrt_names
        }
        graph, directions = sweeps.graph, tuple(sweeps.seeds.values())
    elif lowered.graph.outputs[lowered.output].type.is_scalar:  # the gradient
        base = derive(lowered, wrt, "reverse")
        returns, graph, directions = dict(base.gradients), base.graph, ()
    else:
        base = derive(lowered, wrt, "reverse")
        bar = base.seeds[base.output]
        graph, directions = prune(gather_factors(base.graph, [bar])), (bar,)
        returns = {
            w: Stacked(graph.outputs[gradient_name(base.output, w)], bar, False)
            for w in base.wrt_names
        }
    by = ", ".join(base.wrt_names) or "nothing"
    doc = (
        f"The Jacobian of {base.output} by {by}: each {base.output}.shape + the variable's"
        f" shape, by one {mode} sweep over all unit directions at once."
    )
    return FunctionSpec("jacobian", base.variables, graph, returns, doc, directions=directions)


def hessian_function(lowered: LoweredProgram, wrt, mode: str) -> FunctionSpec:
    """``hessian(…)`` -> {a: {b: ∂²J/∂a∂b}}: forward over reverse, one sweep per variable."""
    sweeps = hessian_sweeps(lowered, wrt)
    base = sweeps.base
    names = base.wrt_names
    blocks: dict[str, dict[str, Stacked]] = {a: {} for a in names}
    for i, a in enumerate(names):
        for b in names[i:]:
            t = sweeps.tangents[(a, gradient_name(base.output, b))]
            blocks[b][a] = Stacked(t, sweeps.seeds[a], True)  # b.shape + a.shape
            if b != a:
                blocks[a][b] = Stacked(t, sweeps.seeds[a], False)  # its transpose
    returns = {a: {b: blocks[a][b] for b in names} for a in names}
    by = ", ".join(names) or "nothing"
    doc = (
        f"The Hessian of {base.output} by {by}: H[a][b] has shape a.shape + b.shape"
        " (H[b][a] is its transpose); forward over reverse, one sweep per variable."
    )
    return FunctionSpec(
        "hessian",
        base.variables,
        sweeps.graph,
        returns,
        doc,
        directions=tuple(sweeps.seeds.values()),
    )


def hvp_function(lowered: LoweredProgram, wrt, mode: str) -> FunctionSpec:
    """``hvp(…, W_dot=…)`` -> {a: Σ_b H_ab v_b}: forward over reverse, one sweep."""
    sweeps = hvp_sweep(lowered, wrt)
    base = sweeps.base
    returns = {a: sweeps.tangents[("v", gradient_name(base.output, a))] for a in base.wrt_names}
    doc = (
        f"The Hessian of {base.output} times the tangents *_dot: {{a: Σ_b H[a][b] b_dot}},"
        " by forward mode over the gradient."
    )
    params = (*base.variables, *sweeps.seeds.values())
    return FunctionSpec("hvp", params, sweeps.graph, returns, doc)


def jvp_function(lowered: LoweredProgram, wrt, mode: str) -> FunctionSpec:
    return derivative_function(derive(lowered, wrt, "forward"))


def vjp_function(lowered: LoweredProgram, wrt, mode: str) -> FunctionSpec:
    derived = derive(lowered, wrt, "reverse", seeded=True)
    spec = derivative_function(derived)
    if spec.name == "vjp":
        return spec
    out = derived.output
    doc = f"{out} and the vector-Jacobian product {out}_barᵀ ∂{out}/∂(…)."
    return FunctionSpec("vjp", spec.params, spec.graph, spec.returns, doc)


def value_and_grad_function(lowered: LoweredProgram, wrt, mode: str) -> Function:
    derived = derive(lowered, wrt, mode)
    if not derived.output_type.is_scalar:
        raise DifferentiationError(
            f"value_and_grad needs a scalar output, but {derived.output} is"
            f" {derived.output_type}; emit jacobian or vjp"
        )
    return gradient_by_jvp(derived) if mode == "forward" else derivative_function(derived)


EMITTABLE = {
    "value_and_grad": value_and_grad_function,
    "jacobian": jacobian_function,
    "hessian": hessian_function,
    "hvp": hvp_function,
    "jvp": jvp_function,
    "vjp": vjp_function,
}
# The functions printed with batched directions (emit_batched, NumPy only so far).
BATCHED = ("jacobian", "hessian", "hvp")


def parse_emit(emit: Sequence[str] | str) -> tuple[str, ...]:
    """``"jacobian,hvp"`` -> the function names, checked; ``value`` is always there."""
    names = [e.strip() for e in emit.split(",")] if isinstance(emit, str) else list(emit)
    chosen = []
    for name in names:
        if not name or name == "value":
            continue
        if name not in EMITTABLE:
            hint = did_you_mean(name, EMITTABLE)
            raise DifferentiationError(
                f"cannot emit {name!r}: choose from value, {', '.join(EMITTABLE)}{hint}"
            )
        if name not in chosen:
            chosen.append(name)
    return tuple(chosen)


def _keywords(derived: DerivedGraph, functions: Sequence[Function] = ()) -> dict[Node, str]:
    params = dict.fromkeys([*derived.variables, *derived.seeds.values()])
    for fn in functions:
        params.update(dict.fromkeys(fn.params))  # a set's lookups: linear in the parameters
    return keyword_names(list(params))


def derivative_labels(derived: DerivedGraph) -> dict[Node, str]:
    """Every node of ``derived.graph`` named as the emitted derivative function names it."""
    return function_labels(derivative_function(derived), _keywords(derived), derived.variables)


def derivative_locals(derived: DerivedGraph) -> dict[Node, str]:
    """The nodes the emitted derivative function computes in statements, by local name."""
    return function_locals(derivative_function(derived), _keywords(derived), derived.variables)


def _header(
    lowered: LoweredProgram,
    mode: str,
    wrt: Sequence[str],
    functions: Sequence[str],
    keywords: Mapping[str, str],
    backend: str = "numpy",
) -> str:
    # Lines as the grammar counts them (a lone \r or U+2028 is text, escaped in the docstring).
    lines = lowered.source.replace("\r\n", "\n").split("\n")
    program = "\n".join("    " + line if line.strip() else "" for line in lines).rstrip("\n")
    by = ", ".join(wrt) if wrt else "nothing"
    return (
        f"Generated by graphc from {lowered.filename}; do not edit.\n\n"
        f"Functions: {', '.join(functions)} ({mode} mode, derivatives by {by}).\n"
        f"{_ARGUMENTS[backend]}\n"
        "Each function f has a twin f_dict(feed) taking them in one dict by name instead\n"
        "(a call of f_dict is linear in the number of arrays, one of f(**feed) is not).\n"
        f"{_RESULTS[backend]}"
        f"{_spelled(keywords)}\n"
        f"The program:\n\n{program}\n"
    )


def _spelled(keywords: Mapping[str, str]) -> str:
    """A docstring line naming the keywords spelled otherwise than in the program."""
    renamed = [f"{name} as {keyword}" for name, keyword in keywords.items() if name != keyword]
    return f"Python spells {', '.join(renamed)}.\n" if renamed else ""


def build_module(
    lowered: LoweredProgram,
    wrt: Sequence[str] | str | None = None,
    mode: str = "reverse",
    emit: Sequence[str] | str | None = None,
    backend: str = "numpy",
    dtype: str | None = None,
) -> CompiledModule:
    """Differentiate, optimise and emit ``lowered`` in the dialect ``backend``: ``value``
    and the functions in ``emit`` (default: ``value_and_grad``, or ``vjp``/``jvp`` as the
    mode gives); with a ``dtype`` ("float32"), every function first casts its arguments."""
    check_backend(backend)
    derived = derive(lowered, wrt, mode)
    if emit is None:
        return module_of(lowered, derived, None, backend, dtype)
    names = parse_emit(emit)
    batched = [name for name in names if name in BATCHED]
    if backend != "numpy" and batched:
        raise DifferentiationError(
            f"cannot emit {', '.join(batched)}: not yet supported on the array-API backend"
            " (docs/backends.md); use --backend numpy"
        )
    functions: list[Function] = [value_function(derived)]
    functions += [EMITTABLE[name](lowered, wrt, mode) for name in names]
    return module_of(lowered, derived, functions, backend, dtype)


def _without_buffers(f: Function) -> Function:
    """``f`` without ``out=`` buffers, for a printer that writes into no arrays."""
    if not isinstance(f, FunctionSpec) or not f.writes_into:
        return f
    return replace(f, writes_into=False, doc=f.doc.partition("\n\nWith out")[0])


def module_of(
    lowered: LoweredProgram,
    derived: DerivedGraph,
    functions: Sequence[Function] | None = None,
    backend: str = "numpy",
    dtype: str | None = None,
) -> CompiledModule:
    """The module of an already derived program."""
    printer = check_backend(backend).fixed(dtype)
    functions = module_functions(derived) if functions is None else list(functions)
    by_name = {f.name: f for f in functions}
    if not printer.out_buffers:
        functions = [_without_buffers(f) for f in functions]
    names = tuple(f.name for f in functions)
    keywords = _keywords(derived, functions)
    header = _header(
        lowered,
        derived.mode,
        derived.wrt_names,
        names,
        {v.attr("name"): keywords[v] for v in derived.variables},
        backend,
    )
    return CompiledModule(
        emit_module(header, functions, keywords, derived.variables, printer),
        derived.output,
        derived.output_type,
        derived.wrt_names,
        derived.mode,
        {v.attr("name"): keywords[v] for v in derived.variables},
        {name: keywords[seed] for name, seed in derived.seeds.items()},
        names,
        may_alias(derived),
        {
            f.name: {p.attr("name"): keywords[p] for p in f.params}
            for f in functions
            if isinstance(f, FunctionSpec)
        },
        backend,
        dtype,
        functools.partial(
            entry_body, by_name["value_and_grad"], keywords, derived.variables, printer
        )
        if "value_and_grad" in by_name and backend == "numpy"
        else None,
    )
