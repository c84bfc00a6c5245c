"""graphc's benchmark suite: every workload of issue 11 against hand-written NumPy, in one run.

    python benchmarks/suite.py                      # the full suite, as a text table
    python benchmarks/suite.py --quick              # few repeats, small sizes (for tests)
    python benchmarks/suite.py --large              # also the tanh chain with L = 10,000
    python benchmarks/suite.py --only ner-d3,mlp    # some workloads (keys as in the table)
    python benchmarks/suite.py --format markdown|json
    python benchmarks/suite.py --format markdown --write docs/performance.md
    python benchmarks/suite.py --blas-threads 1     # on a shared machine: no BLAS threads
    python benchmarks/suite.py --peers torch,casadi # some peers (default: all installed; none)

For each workload the hand-written NumPy reference, graphc's emitted module,
graphc's compiled function and every importable peer are first checked to
agree, then timed interleaved (one timing of each candidate in turn, the
order rotating each repeat, so that they share the machine's noise); a
ratio is the median over repeats of that repeat's candidate / hand-written
time.  Peak memory is tracemalloc's peak during one call (NumPy reports its
array allocations to tracemalloc).  The load of other processes is the CPU
time the whole machine spent busy (/proc/stat) minus this process's own and
its children's (os.times), per second of wall time, in cores.  The compile
workload (the tanh chain) runs each measurement in a fresh process, since
graphc interns nodes across compilations, and times its floor too: the
parse and Python's compile of the emitted gradient function, each alone.
docs/performance.md describes the method and holds the latest table,
written by ``--write``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import timeit
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _blas_threads_from_argv(argv: list[str]) -> None:
    """Apply --blas-threads N now: BLAS reads its thread count when NumPy loads it."""
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--blas-threads=") else None
        if arg == "--blas-threads" and i + 1 < len(argv):
            value = argv[i + 1]
        if value is not None and value.isdigit():
            os.environ.update({name: value for name in BLAS_THREADS})  # children inherit it


if __name__ == "__main__":
    _blas_threads_from_argv(sys.argv[1:])

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

import peers  # noqa: E402
import workloads  # noqa: E402

import graphc  # noqa: E402
from graphc import frontend  # noqa: E402

BEGIN, END = "<!-- BEGIN suite -->", "<!-- END suite -->"
RESULTS = re.compile(r"<!-- results (\{.*\}) -->", re.S)

# key -> builder(quick); the order is the table's.  Quick sizes keep the test fast.
CALL_WORKLOADS: dict[str, Callable[[bool], workloads.Case]] = {
    "ner-d50": lambda quick: workloads.ner_window(50, 100),
    "ner-d3": lambda quick: workloads.ner_window(3, 8),
    "ner-batch": lambda quick: workloads.ner_batch(64 if quick else 512),
    "mlp": lambda quick: workloads.mlp(2, 64, 32) if quick else workloads.mlp(8, 512, 256),
    "logistic": lambda quick: workloads.logistic(8, 1000 if quick else 10_000),
}
CHAIN_WORKLOADS: dict[str, Callable[[bool], int]] = {  # key -> number of layers
    "chain-1000": lambda quick: 50 if quick else 1000,
    "chain-10000": lambda quick: 200 if quick else 10_000,
}
HESSIAN = {
    "hessian": lambda quick: workloads.hessian(20, 30) if quick else workloads.hessian(200, 300)
}
LARGE_ONLY = {"chain-10000"}


def workload_keys(large: bool = False) -> list[str]:
    """Every workload the suite runs, in table order (``--large`` adds the big chain)."""
    keys = [*CALL_WORKLOADS, *CHAIN_WORKLOADS, *HESSIAN]
    return [k for k in keys if large or k not in LARGE_ONLY]


# --- the machine, and the load of everything else on it ---------------------------------------


def machine() -> dict[str, Any]:
    """CPU model, cores, Python, NumPy and the BLAS NumPy uses."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = "unknown"
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{info.get('name', '?')} {info.get('version', '')}".strip()
    except Exception:  # older NumPy: no dict form
        pass
    try:
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            blas += f", {pools[0]['num_threads']} threads"
    except ImportError:
        pass
    threads = next((os.environ[n] for n in BLAS_THREADS if n in os.environ), None)
    blas += f", {threads} thread{'s' * (threads != '1')} by the environment" if threads else ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
        "graphc": graphc.__version__,
    }


class OthersLoad:
    """Cores kept busy by other processes between start and stop (None where unmeasurable)."""

    def __init__(self) -> None:
        self.wall, self.busy, self.own = time.perf_counter(), self._busy(), self._own()

    @staticmethod
    def _busy() -> float | None:
        """Seconds all CPUs spent not idle since boot (/proc/stat), or None off Linux."""
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except OSError:
            return None
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, fields[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def stop(self) -> float | None:
        busy = self._busy()
        if busy is None or self.busy is None:
            return None
        others = (busy - self.busy) - (self._own() - self.own)
        return max(0.0, others / (time.perf_counter() - self.wall))


# --- timing and memory ------------------------------------------------------------------------


def interleaved(
    calls: dict[str, Callable[[], Any]], repeats: int, target: float
) -> tuple[dict[str, float], dict[str, float]]:
    """Median seconds per call of each candidate, and its median ratio to ``calls['hand']``.

    Each repeat times every candidate once (``number`` calls each, chosen so that
    one timing lasts about ``target`` seconds), in an order that rotates between
    repeats; a repeat's ratio compares timings taken moments apart.
    """
    numbers = {}
    for name, call in calls.items():
        call()  # warm: caches, the allocator, a jit's compilation
        once = timeit.Timer(call).timeit(1)
        numbers[name] = max(1, round(target / max(once, 1e-9)))
    names = list(calls)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            samples[name].append(timeit.Timer(calls[name]).timeit(numbers[name]) / numbers[name])
    seconds = {name: statistics.median(s) for name, s in samples.items()}
    ratios = {
        name: statistics.median(t / h for t, h in zip(s, samples["hand"]))
        for name, s in samples.items()
        if name != "hand"
    }
    return seconds, ratios


def peak_memory(call: Callable[[], Any]) -> int:
    """Bytes allocated at the peak of one call, above what was allocated before it."""
    call()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return peak - before


# --- the workloads ----------------------------------------------------------------------------


def run_call(key: str, case: workloads.Case, repeats: int, target: float) -> dict[str, Any]:
    """One call workload: check every candidate against the hand-written code, then time it."""
    reference = case.hand()
    workloads.agree(reference, case.module(), f"{key}: graphc {case.module_label}")
    workloads.agree(reference, case.fn(), f"{key}: graphc {case.fn_label}")
    calls = {"hand": case.hand, "module": case.module, "fn": case.fn}
    if case.module_out is not None:
        workloads.agree(reference, case.module_out(), f"{key}: graphc module with out=")
        calls["module_out"] = case.module_out
    peer_notes = {}
    for peer in [p for p in peers.available() if peers.runs(p, case.forward)]:
        try:
            make = peers.hessian if case.peer_kind == "hessian" else peers.value_and_grad
            call = make(peer, case.forward, case.params, case.inputs)
            workloads.agree(reference, peers.convert(call()), f"{key}: {peer}", rtol=1e-6)
            calls[peer] = call
        except Exception as err:  # a peer's failure is its row's note, not the suite's end
            peer_notes[peer] = f"{type(err).__name__}: {err}"[:200]
    seconds, ratios = interleaved(calls, repeats, target)
    return {
        "key": key,
        "kind": "call",
        "title": case.title,
        "module_label": case.module_label,
        "fn_label": case.fn_label,
        "note": case.note,
        "seconds": seconds,
        "ratios": ratios,
        "memory": {name: peak_memory(calls[name]) for name in ("hand", "module", "fn")},
        "peer_errors": peer_notes,
    }


ROUTES = ("module", "fn")
GRAPHC = (*ROUTES, "module_out")  # candidates that are graphc, not peers


def probe_chain(layers: int, route: str) -> dict[str, float]:
    """In a fresh process: compile + first call of the chain by one route, then a steady call;
    or, for the route ``floor``, the two stages of a compile that the spec fixes (`probe_floor`).

    The parser is built first on a tiny program (a one-time cost of the process,
    like importing graphc), so that the time is the chain's own.
    """
    case = workloads.chain(layers)
    graphc.compile("param w : []\nv = tanh(w)").value_and_grad(w=0.5)
    if route == FLOOR:
        return probe_floor(case.text)
    start = time.perf_counter()
    if route == "module":
        module = workloads.load_module(graphc.compile(case.text).source)

        def call():
            return module.value_and_grad_dict(case.feed)  # 2,001 arrays: the linear call
    elif route == "fn":
        fn = graphc.compile(case.text)

        def call():
            return fn.value_and_grad(**case.feed)
    else:
        call = peers.value_and_grad(route, workloads.chain_forward, case.params, case.inputs)
    result = call()
    first = time.perf_counter() - start
    if route in ROUTES:
        workloads.agree(case.hand(), result, f"chain: graphc {route}")
    else:
        workloads.agree(case.hand(), peers.convert(result), f"chain: {route}", rtol=1e-6)
    steady = min(timeit.repeat(call, number=1, repeat=3))
    hand = min(timeit.repeat(case.hand, number=1, repeat=3))
    return {"first": first, "call": steady, "hand_call": hand}


# The route that times what any compile of the chain pays, whatever graphc does between.
FLOOR = "floor"


def probe_floor(text: str) -> dict[str, float]:
    """Seconds of the two stages of a compile that the spec fixes, each alone: the parse
    by the Lark grammar (the tree, before any name or shape is read) and Python's
    compile of the emitted gradient function (its text, as the first call compiles it).
    What graphc does between (lowering, differentiation, folding, emission) is not
    in either."""
    start = time.perf_counter()
    frontend.parser().parse(text)
    parse = time.perf_counter() - start
    module = workloads.load_module(graphc.compile(text).source)  # compiles no function yet
    start = time.perf_counter()
    module.value_and_grad_dict  # noqa: B018 - the look-up compiles it
    python_compile = time.perf_counter() - start
    return {"parse": parse, "python_compile": python_compile}


def run_chain(key: str, layers: int, repeats: int) -> dict[str, Any]:
    """The compile workload: each route measured ``repeats`` times, each in a fresh process."""
    routes = [*ROUTES, FLOOR]
    routes += [p for p in peers.available() if peers.runs(p, workloads.chain_forward)]
    samples: dict[str, list[dict[str, float]]] = {route: [] for route in routes}
    errors = {}
    for r in range(repeats):
        for route in routes[r % len(routes) :] + routes[: r % len(routes)]:
            if route in errors:
                continue
            run = subprocess.run(
                [sys.executable, __file__, "--probe", str(layers), route],
                capture_output=True,
                text=True,
            )
            if run.returncode != 0:
                if route in (*ROUTES, FLOOR):
                    raise RuntimeError(f"{key} by {route} failed:\n{run.stderr}")
                errors[route] = run.stderr.strip().splitlines()[-1][:200]
                continue
            samples[route].append(json.loads(run.stdout))
    floors = samples.pop(FLOOR)
    floor = {part: statistics.median(s[part] for s in floors) for part in FLOOR_PARTS}
    hand = statistics.median(s["hand_call"] for ss in samples.values() for s in ss)
    seconds = {"hand": hand}
    call_ratios = {}
    for route, ss in samples.items():
        if ss:
            seconds[route] = statistics.median(s["first"] for s in ss)
            call_ratios[route] = statistics.median(s["call"] / s["hand_call"] for s in ss)
    return {
        "key": key,
        "kind": "compile",
        "title": workloads.chain_title(layers),
        "module_label": "compile, load_module(fn.source), first value_and_grad_dict",
        "fn_label": "graphc.compile, first fn.value_and_grad",
        "note": "",
        "seconds": seconds,
        "call_ratios": call_ratios,
        "floor": floor,
        "peer_errors": errors,
    }


def run(keys: list[str], quick: bool, large: bool, repeats: int | None) -> dict[str, Any]:
    """Run the named workloads; the results as the JSON the renderers read."""
    repeats = repeats or (3 if quick else 7)
    target = 0.002 if quick else 0.025
    whole = OthersLoad()
    started = time.perf_counter()
    records = []
    for key in keys:
        load = OthersLoad()
        if key in CALL_WORKLOADS:
            record = run_call(key, CALL_WORKLOADS[key](quick), repeats, target)
        elif key in HESSIAN:
            record = run_call(key, HESSIAN[key](quick), repeats, target)
        else:
            record = run_chain(key, CHAIN_WORKLOADS[key](quick), max(1, min(repeats, 3)))
        record["others_cores"] = load.stop()
        records.append(record)
        print(f"  {key} done", file=sys.stderr)
    return {
        "suite": 1,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "options": {"quick": quick, "large": large, "repeats": repeats},
        "peers": peers.available(),
        "seconds": time.perf_counter() - started,
        "others_cores": whole.stop(),
        "workloads": records,
    }


# --- rendering --------------------------------------------------------------------------------

HEADER = (
    "key",
    "workload",
    "hand-written NumPy",
    "graphc module",
    "graphc fn",
    "peak memory: hand / module / fn",
    "peers",
    "others' load",
)


def fmt_time(s: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale or unit == "µs":
            v = s / scale
            return f"{v:#.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"
    raise AssertionError


def fmt_bytes(sizes: list[int]) -> str:
    """Sizes in one unit, KiB or MiB, whichever suits the largest."""
    unit, scale = ("MiB", 2**20) if max(sizes) >= 2**20 else ("KiB", 2**10)
    return " / ".join(f"{b / scale:.1f}" for b in sizes) + f" {unit}"


def fmt_ratio(r: float) -> str:
    return f"{r:.2f}×"


def fmt_cores(c: float | None) -> str:
    return "n/a" if c is None else f"{c:.1f} cores"


def _peers_in(record: dict[str, Any]) -> list[str]:
    """The peers a record holds, in `peers.PEERS` order (a JSON record's keys are sorted)."""
    return [p for p in peers.PEERS if p in record]


def cells(w: dict[str, Any]) -> list[str]:
    """One table row, from one workload's record."""
    seconds = w["seconds"]
    if w["kind"] == "call":
        module = fmt_ratio(w["ratios"]["module"])
        if "module_out" in w["ratios"]:
            module += f", out= {fmt_ratio(w['ratios']['module_out'])}"
        graphc_cells = [module, fmt_ratio(w["ratios"]["fn"])]
        memory = fmt_bytes([w["memory"][k] for k in ("hand", "module", "fn")])
        peer_cells = [f"{p} {fmt_ratio(w['ratios'][p])}" for p in _peers_in(w["ratios"])]
        hand = fmt_time(seconds["hand"])
    else:
        graphc_cells = [
            f"{fmt_time(seconds[r])}, calls {fmt_ratio(w['call_ratios'][r])}" for r in ROUTES
        ]
        memory = "—"
        peer_cells = [f"{p} {fmt_time(seconds[p])}" for p in _peers_in(seconds)]
        hand = f"{fmt_time(seconds['hand'])} a call"
    peer_cells += [f"{p} failed" for p in w["peer_errors"]]
    return [
        f"`{w['key']}`",
        w["title"],
        hand,
        *graphc_cells,
        memory,
        ", ".join(peer_cells) or "none installed",
        fmt_cores(w["others_cores"]),
    ]


def describe(results: dict[str, Any]) -> str:
    m, o = results["machine"], results["options"]
    run_kind = "--quick (small sizes)" if o["quick"] else "full sizes"
    return (
        f"Measured {results['date']} on {m['cpu']}, {m['cores']} cores; Python {m['python']},"
        f" NumPy {m['numpy']}, BLAS {m['blas']}; graphc {m['graphc']}."
        f" Run: {run_kind}{', --large' if o['large'] else ''}, {o['repeats']} repeats,"
        f" {results['seconds']:.0f} s. Other processes kept"
        f" {fmt_cores(results['others_cores'])} busy on average during the run."
    )


def notes(results: dict[str, Any]) -> list[str]:
    lines = []
    for w in results["workloads"]:
        parts = [f"graphc module = {w['module_label']}", f"graphc fn = {w['fn_label']}"]
        parts += [w["note"]] if w["note"] else []
        if "floor" in w:
            parts.append(floor_note(w["floor"]))
        parts += [f"{p}: {e}" for p, e in w["peer_errors"].items()]
        lines.append(f"`{w['key']}`: " + "; ".join(parts) + ".")
    return lines


# What `probe_floor` measures, in the order the note names them.
FLOOR_PARTS = ("parse", "python_compile")


def floor_note(floor: dict[str, float]) -> str:
    parse, python_compile = (floor[part] for part in FLOOR_PARTS)
    return (
        f"floor (each alone, in a fresh process): the parse by the Lark grammar"
        f" {fmt_time(parse)}, Python's compile of the emitted value_and_grad_dict"
        f" {fmt_time(python_compile)}, together {fmt_time(parse + python_compile)}"
    )


def render_markdown(results: dict[str, Any]) -> str:
    rows = [HEADER, *(cells(w) for w in results["workloads"])]
    table = ["| " + " | ".join(row) + " |" for row in rows]
    table.insert(1, "| " + " | ".join("---" for _ in HEADER) + " |")
    return (
        "\n".join([describe(results), "", *table, "", *(f"- {n}" for n in notes(results))]) + "\n"
    )


def render_text(results: dict[str, Any]) -> str:
    rows = [HEADER, *(cells(w) for w in results["workloads"])]
    rows = [[c.strip("`") for c in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(wd) for c, wd in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * wd for wd in widths))
    return "\n".join([describe(results), "", *lines, "", *notes(results)]) + "\n"


def region(results: dict[str, Any]) -> str:
    """What ``--write`` puts between the markers: the table, then the raw results it shows."""
    raw = json.dumps(results, ensure_ascii=False, sort_keys=True)
    assert "--" not in raw, "the results would end the HTML comment early"
    return f"{render_markdown(results)}\n<!-- results {raw} -->\n"


def marked_region(path: Path, begin: str, end: str) -> tuple[str, dict[str, Any]]:
    """The text between a page's markers and the results recorded in it (every benchmark
    script that writes a page reads it back with this)."""
    text = path.read_text(encoding="utf-8")
    inside = text[text.index(begin) + len(begin) : text.index(end)]
    return inside, json.loads(RESULTS.search(inside).group(1))


def replace_marked(path: Path, begin: str, end: str, body: str) -> None:
    """Put body between a page's markers, leaving the rest of the page as it is."""
    text = path.read_text(encoding="utf-8")
    start, stop = text.index(begin) + len(begin), text.index(end)
    path.write_text(text[:start] + body + text[stop:], encoding="utf-8")


def write_page(path: Path, results: dict[str, Any]) -> None:
    replace_marked(path, BEGIN, END, "\n" + region(results))


def read_page(path: Path) -> tuple[str, dict[str, Any]]:
    """The marked region of a page and the results recorded in it."""
    return marked_region(path, BEGIN, END)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few repeats, small sizes")
    parser.add_argument("--large", action="store_true", help="also the chain with L = 10,000")
    parser.add_argument("--only", help="comma-separated workload keys")
    parser.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    parser.add_argument("--repeats", type=int, help="timings per candidate (default 7, quick 3)")
    parser.add_argument(
        "--blas-threads",
        type=int,
        help="threads NumPy's BLAS may use (sets OPENBLAS_NUM_THREADS etc.); default: its own",
    )
    parser.add_argument(
        "--peers",
        help=f"comma-separated peers to run ({', '.join(peers.PEERS)}) or none;"
        " default: every one installed",
    )
    parser.add_argument("--write", type=Path, help=f"replace {BEGIN} … {END} in this file")
    parser.add_argument("--probe", nargs=2, help=argparse.SUPPRESS)  # LAYERS ROUTE, internal
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe_chain(int(args.probe[0]), args.probe[1])))
        return
    if args.peers is not None:
        chosen = [] if args.peers == "none" else args.peers.split(",")
        try:
            peers.choose(chosen)
        except ValueError as err:
            parser.error(str(err))
    keys = workload_keys(args.large)
    if args.only:
        wanted = args.only.split(",")
        unknown = [k for k in wanted if k not in workload_keys(large=True)]
        if unknown:
            parser.error(f"unknown workload {', '.join(unknown)}; known: {', '.join(keys)}")
        keys = [k for k in workload_keys(large=True) if k in wanted]
    results = run(keys, args.quick, args.large, args.repeats)
    if args.write:
        write_page(args.write, results)
    if args.format == "json":
        print(json.dumps(results, ensure_ascii=False, indent=1, sort_keys=True))
    elif args.format == "markdown":
        print(render_markdown(results), end="")
    else:
        print(render_text(results), end="")


if __name__ == "__main__":
    main()
