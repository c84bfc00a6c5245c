"""benchmarks/higher_order.py runs, and docs/higher-order.md shows what it rendered.

Timings cannot be compared with the page's; the page is checked for what can
be: its table is exactly what the script renders from the results recorded
on the page, its rows are the script's, and it says when and on what it was
measured.  The script itself runs here with --quick (small sizes), which
also checks every graphc result against the hand-written reference.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "higher-order.md"
SCRIPT = ROOT / "benchmarks" / "higher_order.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmark_higher_order", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_page_shows_what_the_script_rendered(bench):
    region, results = bench.read_page(PAGE)
    assert region == bench.region(results), (
        "docs/higher-order.md differs from what benchmarks/higher_order.py renders from its"
        " results; run: python benchmarks/higher_order.py --blas-threads 1"
        " --write docs/higher-order.md"
    )
    assert [r["key"] for r in results["rows"]] == list(bench.TARGETS)
    assert not results["options"]["quick"], "the page records a --quick run"
    assert region.strip().startswith("Measured 20")
    assert "python benchmarks/higher_order.py --blas-threads 1 --write docs/higher-order.md" in (
        PAGE.read_text(encoding="utf-8")
    )


def test_quick_run_checks_and_writes_a_page(bench, tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"# before\n{bench.BEGIN}\nold\n{bench.END}\nafter\n", encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeats", "1", "--write", str(page)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    region, results = bench.read_page(page)
    assert region == bench.region(results)
    assert [r["key"] for r in results["rows"]] == list(bench.TARGETS)
    assert page.read_text(encoding="utf-8").endswith(f"{bench.END}\nafter\n")
