"""The array-API printer: graphs -> a module that runs on any array library.

The module's functions take the array namespace from their arguments
(``xp = array_api_compat.array_namespace(x, W, …)``) and call only functions
of the Python array API standard (2024.12, with its ``linalg`` extension for
``inv``, ``det`` and ``logdet``), so one module runs on NumPy, PyTorch, JAX,
CuPy and Dask arrays.  `array-api-compat` is the bridge; the module imports
nothing else.

`ArrayApiPrinter` is the NumPy printer (`graphc.emit_numpy.NumpyPrinter`)
with another dialect: the same kinds of syntax, precedence table, statement
scheduling and function layout; only the calls differ.  An operator's
emission is its ``emit_array_api`` (`graphc.ops`) where it has one, and
otherwise its NumPy ``emit``, with every NumPy call translated to the
standard's function of the same meaning (``np.exp`` -> ``xp.exp``).  A NumPy
call with no such function is a `NotInStandard` error at compile time, so an
operator added with a NumPy-only emission is caught by
``tests/test_array_api.py`` rather than by a user.

Arrays the module makes itself (zeros, identities, masks) take the dtype of
the inputs (``xp.result_type``) and the device of the first input, so
float32 stays float32 and a GPU array stays on its GPU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from graphc.emit_numpy import Expr, GradientByJvp, Namer, NumpyPrinter
from graphc.ir import Node

# The standard's functions in the main namespace (2024.12) that graphc may call.
STANDARD = frozenset(
    """abs acos acosh add asin asinh atan atan2 atanh ceil clip copysign cos cosh divide
    equal exp expm1 floor floor_divide greater greater_equal hypot isfinite isinf isnan less
    less_equal log log1p log2 log10 logaddexp logical_and logical_not logical_or maximum
    minimum multiply negative not_equal pow reciprocal remainder round sign signbit sin sinh
    square sqrt subtract tan tanh trunc arange asarray empty empty_like eye full full_like
    linspace ones ones_like tril triu zeros zeros_like broadcast_arrays broadcast_to concat
    expand_dims flip moveaxis permute_dims repeat reshape roll squeeze stack tile unstack
    cumulative_sum cumulative_prod max mean min prod std sum var argmax argmin where all any
    matmul matrix_transpose tensordot vecdot astype result_type take""".split()
)
# Its linalg extension (NumPy, PyTorch, JAX and CuPy have it; Dask lacks det and slogdet).
LINALG = frozenset(
    """cholesky cross det diagonal eigh eigvalsh inv matrix_norm matrix_power matrix_rank
    outer pinv qr slogdet solve svd svdvals trace vector_norm""".split()
)
# NumPy spellings of standard functions named otherwise in the standard.
RENAMED = {"power": "pow", "concatenate": "concat", "absolute": "abs"}


class NotInStandard(NotImplementedError):
    """An operator's NumPy emission calls a function the array API standard lacks.

    A bug in graphc's operator table, never in a program: tests/test_array_api.py
    checks that every operator has an array-API emission."""


class ArrayApiPrinter(NumpyPrinter):
    """Expressions of one function of the array-API module."""

    imports = ("import array_api_compat",)
    # No ``out=`` buffers: the standard has no out= arguments, and some libraries' arrays
    # (JAX's) cannot be written into (docs/backends.md).
    out_buffers = False

    def __init__(
        self, names: Mapping[Node, str], dims: Mapping[str, str], namer: Namer | None = None
    ):
        super().__init__(names, dims, namer)
        self.namespace = self.namer.fresh("xp")
        self.device_name: str | None = None

    # ---- the operator's own emission ----------------------------------------------
    def emit(self, node: Node, args: Sequence[Expr]) -> Expr:
        emit = node.op.emit_array_api or node.op.emit
        return emit(self, node, *args)

    def standard(self, fn: str) -> str:
        """The standard's spelling of a call: ``np.exp`` -> ``xp.exp``, ``astype`` ->
        ``xp.astype``, ``linalg.inv`` -> ``xp.linalg.inv``."""
        module, _, name = fn.rpartition(".")
        module = module.removeprefix("np").lstrip(".")
        name = RENAMED.get(name, name)
        if (module == "" and name in STANDARD) or (module == "linalg" and name in LINALG):
            return f"{self.namespace}.{module + '.' if module else ''}{name}"
        raise NotInStandard(
            f"{fn} has no function of the same meaning in the array API standard: give the"
            " operator an emit_array_api in graphc/ops.py"
        )

    def call(self, fn: str, *args: Expr, **keywords: str) -> Expr:
        return super().call(self.standard(fn), *args, **keywords)

    # ---- arrays the function makes: the inputs' dtype, the first input's device --------
    def device(self) -> str:
        if self.device_name is None:
            self.device_name = self.namer.fresh("device")
        return self.device_name

    def made(self, fn: str, *args: Expr) -> Expr:
        """``xp.zeros(shape, dtype=dtype, device=device)``: a new array like the inputs."""
        return self.call(fn, *args, dtype=self.dtype(), device=self.device())

    def mask(self, condition: Expr) -> Expr:
        """1.0 where ``condition`` holds, else 0.0, in the inputs' dtype."""
        return self.call("astype", condition, self.raw(self.dtype()))

    def copied(self, a: Expr) -> Expr:
        """A fresh array: the standard's arrays have no ``.copy()``."""
        return self.call("asarray", a, copy="True")

    def asked_locals(self) -> bool:
        return super().asked_locals() or self.device_name is not None

    def forget_unread(self, words: set[str]) -> None:
        super().forget_unread(words)
        if self.device_name not in words:
            self.device_name = None

    def prelude(self, params: Sequence[str]) -> list[str]:
        xp = self.namespace
        if not params:  # nothing to read a namespace from: NumPy's
            lines = [f"import array_api_compat.numpy as {xp}"]
            if self.dtype_name is not None:
                lines.append(f"{self.dtype_name} = {xp}.{self.fixed_dtype or 'float64'}")
            return lines
        listed = ", ".join(params)
        lines = [f"{xp} = array_api_compat.array_namespace({listed})"]
        if self.fixed_dtype is not None:
            lines += [f"{p} = {xp}.asarray({p}, dtype={xp}.{self.fixed_dtype})" for p in params]
            if self.dtype_name is not None:
                lines.append(f"{self.dtype_name} = {xp}.{self.fixed_dtype}")
        elif self.dtype_name is not None:
            lines.append(f"{self.dtype_name} = {xp}.result_type({listed})")
        if self.device_name is not None:
            lines.append(f"{self.device_name} = array_api_compat.device({params[0]})")
        return lines

    @classmethod
    def gradient_by_jvp(cls, spec: GradientByJvp, keywords: Mapping[Node, str]) -> list[str]:
        """One jvp per entry with a one-hot tangent: no in-place writes (JAX has none)."""
        params = [keywords[p] for p in spec.params]
        namer = Namer(params)
        xp, zero, grads, name, seed, primal, ids, k, columns = (
            namer.fresh(w)
            for w in ("xp", "zero", "grads", "name", "seed", "primal", "ids", "k", "columns")
        )
        zeros = ", ".join(
            f"{keywords[t]!r}: {xp}.zeros_like({keywords[v]})" for v, t in spec.tangents
        )
        table = ", ".join(
            f"({v.attr('name')!r}, {keywords[t]!r}, {keywords[v]})" for v, t in spec.tangents
        )
        call_all = "".join(f"{p}={p}, " for p in params)
        one_hot = f"{xp}.reshape({xp}.astype({ids} == {k}, {primal}.dtype), {primal}.shape)"
        namespace = f"array_api_compat.array_namespace({', '.join(params)})"
        return [
            f"{xp} = {namespace}",
            f"{zero} = {{{zeros}}}",
            f"{grads} = {{}}",
            f"for {name}, {seed}, {primal} in ({table}{',' if len(spec.tangents) == 1 else ''}):",
            f"    {ids} = {xp}.arange({xp}.reshape({primal}, (-1,)).shape[0],"
            f" device=array_api_compat.device({primal}))",
            f"    {columns} = [",
            f"        {spec.jvp}({call_all}**{{**{zero}, {seed}: {one_hot}}})[1]",
            f"        for {k} in {xp}.unstack({ids})",
            "    ]",
            f"    {grads}[{name}] = {xp}.reshape({xp}.stack({columns}), {primal}.shape)",
            f"return {spec.value}({call_all.rstrip(', ')}), {grads}",
        ]


__all__ = ["ArrayApiPrinter", "NotInStandard"]
