"""The documentation site: mkdocs.yml's pages exist, it builds with --strict, and
its first page is the README.

CI installs the test extra, which has mkdocs, so the strict build runs there;
relative links between pages must resolve, anchors included.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "mkdocs.yml"


def _generate():
    spec = importlib.util.spec_from_file_location(
        "docs_generate_site", ROOT / "docs" / "generate.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def nav() -> dict[str, str]:
    """The site's navigation, title -> page (mkdocs.yml's ``nav:`` list, read as text)."""
    text = CONFIG.read_text(encoding="utf-8").split("\nnav:\n", 1)[1]
    pages = {}
    for line in text.splitlines():
        entry = re.fullmatch(r"  - (.+?): (\S+\.md)", line)
        if entry is None:
            break
        pages[entry.group(1)] = entry.group(2)
    return pages


def test_the_site_has_the_pages_the_project_promises():
    pages = nav()
    wanted = [
        "Getting started",
        "Language reference",
        "Errors",
        "Conventions",
        "Symbolic vs automatic",
        "Forward vs reverse",
        "Matrix calculus",
        "Performance",
        "Architecture",
        "Testing",
    ]
    assert [title for title in pages if title in wanted] == wanted  # in this order, others between
    assert pages["Getting started"] == "index.md"
    for page in pages.values():
        assert (ROOT / "docs" / page).is_file(), page
    every = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert every == set(pages.values()), f"pages not in the nav: {every - set(pages.values())}"


def test_the_first_page_is_the_readme():
    generate = _generate()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert (ROOT / "docs" / "index.md").read_text(encoding="utf-8") == generate.index_page(
        readme
    ), "docs/index.md is not README.md: run python docs/generate.py"
    assert "](docs/" not in generate.index_page(readme)
    assert generate.index_page("see [x](docs/errors.md#parseerror)").endswith(
        "see [x](errors.md#parseerror)"
    )


def test_the_site_builds_strictly(tmp_path: Path):
    pytest.importorskip("mkdocs")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    built = tmp_path / "site"
    assert (built / "index.html").is_file()
    assert (built / "forward-vs-reverse" / "index.html").is_file()
    assert "δ = σ′(s) u ∘ (1 − f ∘ f)" in (built / "index.html").read_text(encoding="utf-8")
