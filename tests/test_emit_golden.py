"""The emitted modules, pinned byte for byte, and what makes them standalone.

To accept a deliberate change of the emitted code:
    GRAPHC_UPDATE_GOLDEN=1 pytest tests/test_emit_golden.py
and review the diff of tests/golden/ like any other change.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphc

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"

# (golden file, example, wrt, mode)
PINNED = [
    ("ner_window_reverse.py", "ner_window", None, "reverse"),
    ("ner_window_forward.py", "ner_window", "b,u", "forward"),
    ("least_squares_reverse.py", "least_squares", None, "reverse"),
    ("sigmoid_jacobian_reverse.py", "sigmoid_jacobian", None, "reverse"),
    ("max_routes_reverse.py", "max_routes", None, "reverse"),  # no `delta` on primal values
    ("stop_reverse.py", "stop", None, "reverse"),  # the program's `u` survives stop()
]


def emitted(example: str, wrt, mode: str) -> str:
    text = (ROOT / "examples" / f"{example}.gc").read_text(encoding="utf-8")
    return graphc.compile(text, wrt=wrt, mode=mode, filename=f"{example}.gc").source


@pytest.mark.parametrize(("golden", "example", "wrt", "mode"), PINNED, ids=[p[0] for p in PINNED])
def test_matches_golden(golden, example, wrt, mode):
    source = emitted(example, wrt, mode)
    path = GOLDEN / golden
    if os.environ.get("GRAPHC_UPDATE_GOLDEN"):
        path.write_text(source, encoding="utf-8")
    assert source == path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("golden", "example", "wrt", "mode"), PINNED, ids=[p[0] for p in PINNED])
def test_deterministic_across_processes(golden, example, wrt, mode):
    """A fresh interpreter (new hash seed, new node ids) emits the same bytes."""
    script = (
        "import sys, graphc; "
        f"t = open({str(ROOT / 'examples' / (example + '.gc'))!r}, encoding='utf-8').read(); "
        f"fn = graphc.compile(t, wrt={wrt!r}, mode={mode!r}, filename={example + '.gc'!r}); "
        "sys.stdout.write(fn.source)"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert out == emitted(example, wrt, mode)


@pytest.mark.parametrize(("golden", "example", "wrt", "mode"), PINNED, ids=[p[0] for p in PINNED])
def test_imports_only_numpy(golden, example, wrt, mode):
    tree = ast.parse(emitted(example, wrt, mode))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert imported == {"numpy"}


def test_golden_module_runs_without_graphc(tmp_path):
    """The pinned NER module, imported from a file in a process that blocks graphc."""
    module_path = tmp_path / "ner_grad.py"
    module_path.write_text((GOLDEN / "ner_window_reverse.py").read_text(encoding="utf-8"))
    script = (
        "import sys; sys.modules['graphc'] = None\n"  # any import of graphc now fails
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "import numpy as np, ner_grad\n"
        "r = np.random.default_rng(0)\n"
        "f = dict(x=r.normal(size=250), W=r.normal(size=(100, 250)) * 0.05,"
        " b=r.normal(size=100), u=r.normal(size=100))\n"
        "J, g = ner_grad.value_and_grad(**f)\n"
        "print(repr(float(J)), sorted(g), g['W'].shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    r = np.random.default_rng(0)
    f = dict(
        x=r.normal(size=250),
        W=r.normal(size=(100, 250)) * 0.05,
        b=r.normal(size=100),
        u=r.normal(size=100),
    )
    spec = importlib.util.spec_from_file_location("ner_grad_here", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    J = module.value(**f)
    assert out.stdout.strip() == f"{float(J)!r} ['W', 'b', 'u'] (100, 250)"
    z = f["W"] @ f["x"] + f["b"]
    assert np.isclose(J, 1 / (1 + np.exp(-(f["u"] @ np.tanh(z)))), rtol=1e-14)
