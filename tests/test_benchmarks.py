"""The benchmark suite runs, and docs/performance.md shows what the suite rendered.

Timings cannot be compared with the page's, so the page is checked for what
can be: its table is exactly what benchmarks/suite.py renders from the
results recorded on the page (every number in the suite's own format), its
rows are the suite's workloads, and it says when and on what it was measured.
The suite itself runs here in --quick mode on two small workloads.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "performance.md"
SUITE = ROOT / "benchmarks" / "suite.py"


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("benchmark_suite", SUITE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table(markdown: str) -> list[list[str]]:
    """The rows of the first Markdown table in ``markdown``, cells stripped, rule left out."""
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    return [row for row in cells if not all(set(c) <= {"-"} for c in row)]


MEASURED = re.compile(
    r"^Measured \d{4}-\d\d-\d\d \d\d:\d\d UTC on .+, \d+ cores; Python [\d.]+, NumPy [\d.]+,"
    r" BLAS .+; graphc [\d.]+\. Run: .+, \d+ repeats, \d+ s\."
)


def test_quick_run_checks_times_and_writes_the_page(suite, tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text(f"# before\n{suite.BEGIN}\nold\n{suite.END}\nafter\n", encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(SUITE), "--quick", "--only", "logistic,ner-d3", "--format", "json"]
        + ["--peers", "none", "--write", str(page)],  # peers compile slowly (PyTensor: C)
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    assert [w["key"] for w in results["workloads"]] == ["ner-d3", "logistic"]  # table order
    assert results["options"] == {"quick": True, "large": False, "repeats": 3}
    for w in results["workloads"]:
        times = [*w["seconds"].values(), *w["ratios"].values()]
        assert all(math.isfinite(t) and t > 0 for t in times), w
        assert set(w["seconds"]) >= {"hand", "module", "fn"}
        assert all(isinstance(b, int) and b > 0 for b in w["memory"].values()), w
        assert w["others_cores"] is None or w["others_cores"] >= 0
    # --write replaced the marked region only, with the table of these results
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# before\n") and text.endswith(f"{suite.END}\nafter\n")
    assert "old" not in text
    region, recorded = suite.read_page(page)
    assert recorded == results
    rows = table(region)
    assert rows[0] == list(suite.HEADER)
    assert [r[0] for r in rows[1:]] == ["`ner-d3`", "`logistic`"]
    assert rows[1][3].endswith("×") and rows[1][5].endswith("KiB")
    assert MEASURED.match(region.strip())


def test_an_unknown_workload_is_refused(suite):
    run = subprocess.run(
        [sys.executable, str(SUITE), "--only", "mlp,nonesuch"], capture_output=True, text=True
    )
    assert run.returncode == 2
    assert "unknown workload nonesuch" in run.stderr


def test_the_page_shows_what_the_suite_rendered(suite):
    region, results = suite.read_page(PAGE)
    assert region == "\n" + suite.region(results), (
        "docs/performance.md differs from what benchmarks/suite.py renders from its results;"
        " run: python benchmarks/suite.py --format markdown --write docs/performance.md"
    )
    keys = suite.workload_keys(large=results["options"]["large"])
    assert [w["key"] for w in results["workloads"]] == keys
    rows = table(region)
    assert rows[0] == list(suite.HEADER)
    assert [r[0] for r in rows[1:]] == [f"`{k}`" for k in keys]
    assert MEASURED.match(region.strip()), "the date and machine line"


def test_the_page_names_the_command_that_writes_it():
    text = PAGE.read_text(encoding="utf-8")
    assert "python benchmarks/suite.py --format markdown --write docs/performance.md" in text
    assert "python benchmarks/suite.py\n" in text


def test_the_peers_forward_functions_compute_the_hand_written_value(suite):
    """The peers differentiate each workload's forward function; run with NumPy, it agrees."""
    import numpy as np

    xp = SimpleNamespace(tanh=np.tanh, sigmoid=lambda z: 1 / (1 + np.exp(-z)), sum=np.sum)
    for key, build in suite.CALL_WORKLOADS.items():
        case = build(True)
        value, _ = case.hand()
        assert np.isclose(case.forward(xp, case.params, case.inputs), value), key
    chain = suite.workloads.chain(5)
    assert np.isclose(chain.forward(xp, chain.params, chain.inputs), chain.hand()[0])
    case = suite.HESSIAN["hessian"](True)
    x, A, B = case.params["x"], case.inputs["A"], case.inputs["B"]
    assert np.isclose(case.forward(xp, case.params, case.inputs), np.tanh(A @ x).sum() + x @ B @ x)


def test_the_chain_floor_times_the_parse_and_pythons_compile_alone(suite, monkeypatch):
    """The floor route times the two stages a compile of the chain cannot skip, each alone,
    and the page's note under the table names them."""
    monkeypatch.setattr(suite.peers, "_chosen", set())  # no peer: they compile slowly
    record = suite.run_chain("chain-3", 3, 1)  # each route in a fresh process
    floor = record["floor"]
    assert set(floor) == set(suite.FLOOR_PARTS)
    assert all(math.isfinite(t) and 0 < t < 10 for t in floor.values()), floor
    assert set(record["seconds"]) == {"hand", *suite.ROUTES}  # the floor is not a route's time
    record = {
        "key": "chain-3",
        "module_label": "m",
        "fn_label": "f",
        "note": "",
        "peer_errors": {},
        "floor": {"parse": 0.1, "python_compile": 0.025},
    }
    (note,) = suite.notes({"workloads": [record]})
    assert "parse by the Lark grammar 100 ms" in note
    assert "compile of the emitted value_and_grad_dict 25.0 ms, together 125 ms" in note
