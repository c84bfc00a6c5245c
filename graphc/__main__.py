"""The command line: ``graphc compile | graph | check | run | compare | derive | swell``
(also ``python -m graphc``).

Errors in a program print as ``FILE:LINE:COL: error: message`` with the
source line and a caret, and exit with status 2, as does a bad option; a
failed gradient check exits with status 1, a check whose value is not
finite with status 3.  FILE ``-`` reads the program from standard input.
Output files are written whole or not at all.  No input prints a Python
traceback: a closed output pipe ends the command quietly, and memory that
cannot be had is an error.
"""

from __future__ import annotations

import argparse
import codecs
import math
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from graphc import __version__
from graphc.errors import GraphcError, ParseError
from graphc.frontend import MAX_SIZE, lower
from graphc.gradcheck import check_gradients, check_hessian, random_feed
from graphc.ir import building
from graphc.runtime import Program


class _UsageError(Exception):
    pass


STDIN = "-"  # the file name that reads the program from standard input


def _display(path: str) -> str:
    """How errors and reports name the program's file."""
    return "<stdin>" if path == STDIN else path


def _read(path: str) -> str:
    """The program text of ``path``: UTF-8, lines as the grammar counts them (no newline
    translation, so positions agree with ``graphc.parse`` of the same text)."""
    try:
        data = sys.stdin.buffer.read() if path == STDIN else Path(path).read_bytes()
    except FileNotFoundError:
        raise _UsageError(f"{path}: no such file") from None
    except OSError as err:
        raise _UsageError(f"{path}: cannot read ({err.strerror})") from None
    data = data.removeprefix(codecs.BOM_UTF8)  # a byte-order mark is no program text
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        before = data[: err.start].decode("utf-8")
        raise ParseError(
            f"not UTF-8 text: {err.reason} (byte {err.start} of the file)",
            before.count("\n") + 1,
            len(before) - before.rfind("\n"),
            source=data.decode("utf-8", errors="replace"),
            filename=_display(path),
        ) from None


def _program(path: str) -> Program:
    with building():
        lowered = lower(_read(path), _display(path))
    for warning in lowered.warnings:
        print(warning.render(), file=sys.stderr)
    return Program(lowered)


def _write_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` whole, or leave ``path`` as it was."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _dims(pairs: Sequence[str]) -> dict[str, int]:
    dims = {}
    for pair in pairs:
        name, _, size = pair.partition("=")
        # ASCII digits only: '²'.isdigit() holds, but int('²') fails
        if not name.strip() or not re.fullmatch(r"[0-9]+", size.strip()):
            raise _UsageError(f"--dim takes NAME=SIZE, not {pair!r}")
        if len(size.strip().lstrip("0")) > len(str(MAX_SIZE)) or int(size) > MAX_SIZE:
            raise _UsageError(f"--dim {pair}: no array has 2^63 entries or more")
        dims[name.strip()] = int(size)
    return dims


def _natural(text: str) -> int:
    """An argparse type: an integer ≥ 0 (a seed)."""
    if not re.fullmatch(r"[0-9]+", text.strip()) or len(text.strip()) > 40:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 0, not {text!r}")
    return int(text)


def _tolerance(text: str) -> float:
    """An argparse type: a number ≥ 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, not {text!r}")
    return value


def cmd_compile(args: argparse.Namespace) -> int:
    fn = _program(args.file).compile(
        args.wrt, args.mode, emit=args.emit, backend=args.backend, dtype=args.dtype
    )
    if args.output:
        try:
            _write_atomically(args.output, fn.source)
        except OSError as err:
            raise _UsageError(f"{args.output}: cannot write ({err.strerror})") from None
        print(
            f"wrote {args.output}: {', '.join(fn.module_functions)} of {fn.compiled.output}"
            f" by {', '.join(fn.wrt) or 'nothing'}",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(fn.source)
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from graphc.compiler import derivative_labels
    from graphc.derive import derive

    program = _program(args.file)
    graph, labels, variables = program.graph, None, list(program.lowered.variables)
    if args.grad:  # the graph of the module's derivative function, named as the module names it
        derived = derive(program.lowered, args.wrt, args.mode)
        graph, labels = derived.graph, derivative_labels(derived)
        variables += derived.seeds.values()
    if args.format == "dot":
        print(graph.to_dot(args.file, labels))
    else:
        print(graph.listing(variables, labels))
    return 0


# graphc check's exit statuses
CHECK_OK, CHECK_FAILED, CHECK_ERROR, CHECK_NOT_FINITE = 0, 1, 2, 3


def cmd_check(args: argparse.Namespace) -> int:
    program = _program(args.file)
    dims = _dims(args.dim)
    fn = program.compile(args.wrt, args.mode)
    if not fn.wrt:
        raise _UsageError(
            "nothing to differentiate: --wrt names no variable"
            if args.wrt is not None
            else f"nothing to differentiate: {_display(args.file)} declares no param"
            " (name an input with --wrt to check its derivative)"
        )
    signed = True if args.signed else False if args.positive else None
    feed = random_feed(program.lowered, dims, seed=args.seed, signed=signed)
    check = check_hessian if args.hessian else check_gradients
    with np.errstate(all="ignore"):  # a value that is not finite is reported, not warned of
        report = check(fn, feed, tolerance=args.tolerance, seed=args.seed)
    what = "Hessian, " if args.hessian else ""
    print(f"graphc check {_display(args.file)} ({what}{fn.mode} mode, seed {args.seed})")
    print(report.text())
    if not report.finite:
        return CHECK_NOT_FINITE
    return CHECK_OK if report.ok else CHECK_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    program = _program(args.file)
    try:
        with np.load(args.feed, allow_pickle=False) as data:
            feed = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise _UsageError(f"{args.feed}: no such file") from None
    except (OSError, ValueError) as err:
        raise _UsageError(f"{args.feed}: not a NumPy .npz file ({err})") from None
    value = program.run(**feed)
    print(f"{program.output} = {np.array2string(np.asarray(value), precision=6)}")
    if args.grad:
        _, grads = program.compile(args.wrt).value_and_grad(**feed)
        for name, g in grads.items():
            print(f"d{program.output}/d{name} = {np.array2string(np.asarray(g), precision=6)}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from graphc.compare import compare

    if args.timeout <= 0:
        raise _UsageError("--timeout takes a positive number of seconds")
    if args.size < 1:
        raise _UsageError("--size takes a positive whole number")
    report = compare(
        _program(args.file).lowered,
        _dims(args.dim),
        wrt=args.wrt,
        timeout=args.timeout,
        seed=args.seed,
        size=args.size,
    )
    print({"text": report.text, "markdown": report.markdown, "json": report.json}[args.format]())
    return 0 if report.ok else 1


def cmd_derive(args: argparse.Namespace) -> int:
    from graphc.derivation import derivation
    from graphc.derive import derive

    shown = derivation(derive(_program(args.file).lowered, args.wrt, args.mode))
    print(shown.latex() if args.format == "latex" else shown.unicode())
    return 0


def cmd_swell(args: argparse.Namespace) -> int:
    from graphc.swell import plot_problem, swell

    problem = plot_problem(args.plot) if args.plot else None
    if problem:
        raise _UsageError(problem)
    if args.max_k < 1:
        raise _UsageError("--max-k takes a positive whole number")
    if args.timeout <= 0:
        raise _UsageError("--timeout takes a positive number of seconds")
    report = swell(args.max_k, timeout=args.timeout)
    print({"text": report.text, "markdown": report.markdown, "json": report.json}[args.format]())
    if args.plot:
        try:
            report.plot(args.plot)
        except OSError as err:
            raise _UsageError(f"{args.plot}: cannot write ({err.strerror})") from None
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphc",
        description="Compile a model written as on a whiteboard into NumPy gradient code.",
    )
    parser.add_argument("--version", action="version", version=f"graphc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, mode: bool = True) -> None:
        p.add_argument("file", help="the .gc program (- reads it from standard input)")
        p.add_argument(
            "--wrt", help="variables to differentiate by, comma-separated (default: every param)"
        )
        if mode:
            p.add_argument("--mode", choices=["reverse", "forward"], default="reverse")

    p = sub.add_parser("compile", help="emit a standalone NumPy module")
    common(p)
    p.add_argument("-o", "--output", help="write the module here (default: print it)")
    p.add_argument(
        "--backend",
        choices=["numpy", "array-api"],
        default="numpy",
        help="numpy: a module that imports only NumPy (default); array-api: one that runs on"
        " any array library through array-api-compat (docs/backends.md)",
    )
    p.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        help="compute in this dtype whatever is fed (default: the arrays' own floating dtype)",
    )
    p.add_argument(
        "--emit",
        metavar="FUNCTIONS",
        help="the functions to write besides value, comma-separated, from value_and_grad,"
        " jacobian, hessian, hvp, jvp, vjp (default: value_and_grad, or the mode's jvp/vjp)",
    )
    p.set_defaults(run=cmd_compile)

    p = sub.add_parser("graph", help="print the explicit graph")
    common(p)
    p.add_argument(
        "--grad",
        action="store_true",
        help="the derivative graph, folded, with the names of the compiled module",
    )
    p.add_argument("--format", choices=["text", "dot"], default="text")
    p.set_defaults(run=cmd_graph)

    p = sub.add_parser(
        "check",
        help="compare the emitted gradient with central differences",
        description="Compare the emitted derivatives with central differences of the program's"
        " value at random values. Exit status: 0 the derivatives agree, 1 they disagree,"
        " 2 a usage or program error, 3 the value is not finite (NaN or infinite) at the"
        " values drawn.",
    )
    common(p)
    p.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=SIZE",
        help="size of an unbound dim (default 3)",
    )
    p.add_argument("--seed", type=_natural, default=0, help="picks other values (default 0)")
    p.add_argument("--tolerance", type=_tolerance, default=1e-5)
    signs = p.add_mutually_exclusive_group()
    signs.add_argument(
        "--signed",
        action="store_true",
        help="both signs for every variable, even one that flows into log or sqrt"
        " (default: both signs wherever every operator allows them)",
    )
    signs.add_argument("--positive", action="store_true", help="positive values for every variable")
    p.add_argument(
        "--hessian",
        action="store_true",
        help="check the emitted Hessian (and Hessian-vector product) against central"
        " differences of the gradient instead",
    )
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("run", help="evaluate the program on arrays from an .npz file")
    common(p, mode=False)
    p.add_argument("--feed", required=True, help="an .npz file with one array per input and param")
    p.add_argument("--grad", action="store_true", help="also print the gradient")
    p.set_defaults(run=cmd_run)

    p = sub.add_parser(
        "compare", help="SymPy's derivative beside graphc's: sizes, times, and agreement"
    )
    common(p, mode=False)
    p.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=SIZE",
        help="size of a dim, even one the program binds (default: at most --size)",
    )
    p.add_argument(
        "--size", type=int, default=2, help="the size every dim gets by default (default 2)"
    )
    p.add_argument(
        "--timeout", type=float, default=5.0, help="seconds simplify may take per variable"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random points")
    p.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    p.set_defaults(run=cmd_compare)

    p = sub.add_parser(
        "derive",
        help="the derivative in matrix notation, its shared signals named as in the code",
        description="Print the folded derivative as equations in matrix notation: one per"
        " statement of the emitted derivative function, named as it names them, then one"
        " per gradient (the tangent, in forward mode).",
    )
    common(p)
    p.add_argument("--format", choices=["unicode", "latex"], default="unicode")
    p.set_defaults(run=cmd_derive)

    p = sub.add_parser("swell", help="expression swell: the logistic map, SymPy against graphc")
    p.add_argument("--max-k", type=int, default=12, help="steps of the map (default 12)")
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds one SymPy step may take before SymPy is stopped (default 10)",
    )
    p.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    p.add_argument("--plot", metavar="FILE", help="draw size against k (.svg or .png)")
    p.set_defaults(run=cmd_swell)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.run(args)
        sys.stdout.flush()  # here, so that a closed pipe is caught below
        return status
    except GraphcError as err:
        if err.filename is None and getattr(args, "file", None):
            err.filename = _display(args.file)
        print(err.render(), file=sys.stderr)
        return 2
    except _UsageError as err:
        print(f"graphc: error: {err}", file=sys.stderr)
        return 2
    except MemoryError:
        print(
            "graphc: error: out of memory: the arrays this needs do not fit; give smaller sizes",
            file=sys.stderr,
        )
        return 2
    except BrokenPipeError:
        # The reader went away (graphc graph … | head -1): stop quietly. As the Python
        # documentation recommends, point stdout at devnull so that the flush at exit
        # does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # as a process ended by SIGPIPE reports to the shell
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
