"""docs/tutorial-ner.md: the window classifier trains with the emitted module alone."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_data_are_what_the_script_writes(tmp_path):
    script = ROOT / "examples" / "data" / "make_ner_data.py"
    copy = tmp_path / "make_ner_data.py"
    copy.write_text(script.read_text(encoding="utf-8"), encoding="utf-8")
    subprocess.run([sys.executable, str(copy)], check=True)
    for name in ("ner_train.txt", "ner_test.txt"):
        shipped = (ROOT / "examples" / "data" / name).read_text(encoding="utf-8")
        assert (tmp_path / name).read_text(encoding="utf-8") == shipped, name


def test_the_ner_classifier_trains(tmp_path, capsys):
    ner = _load(ROOT / "examples" / "ner_train.py", "ner_train")
    result = ner.train(epochs=3, out=tmp_path / "ner_model.py")
    losses = result["losses"]
    assert losses[-1] < 0.5 * losses[0], losses
    assert result["accuracy"] > result["majority"] + 0.05, result
    # the emitted module imports NumPy and nothing of graphc
    source = (tmp_path / "ner_model.py").read_text(encoding="utf-8")
    assert "import numpy as np" in source and "graphc" not in source.split('"""')[-1]
    printed = capsys.readouterr().out.strip().splitlines()
    page = (ROOT / "docs" / "tutorial-ner.md").read_text(encoding="utf-8")
    shown = page.split("these numbers):\n\n```text\n", 1)[1].split("```", 1)[0].strip().splitlines()
    number = re.compile(r"\d+\.\d+")
    assert [number.sub("#", line) for line in printed] == [number.sub("#", s) for s in shown]
    for got, want in zip(printed, shown):  # the last digit may differ with the BLAS
        for a, b in zip(number.findall(got), number.findall(want)):
            assert abs(float(a) - float(b)) <= 2e-4, (got, want)


def test_the_word_vectors_are_trained(tmp_path):
    """The gradient by E (a scatter-add of the window's rows) against central differences."""
    import numpy as np

    ner = _load(ROOT / "examples" / "ner_train.py", "ner_train_grad")
    model = ner.compile_model(tmp_path / "ner_model.py")
    rng = np.random.default_rng(3)
    params = {
        "E": rng.normal(size=(6, 16)),
        "W": rng.normal(size=(32, 80)) / 9,
        "b": rng.normal(size=32),
        "U": rng.normal(size=(4, 32)) / 6,
        "c": rng.normal(size=4),
    }
    ids = np.array([[0, 1, 2, 2, 5], [2, 2, 2, 3, 4], [5, 5, 0, 1, 1]])  # repeated ids accumulate
    feed = ner.feed(ids, np.array([1, 0, 3]))
    _, grads = model.value_and_grad(**params, **feed)
    h = 1e-6
    for row, col in [(2, 3), (5, 0), (1, 15), (3, 7)]:
        up, down = {**params, "E": params["E"].copy()}, {**params, "E": params["E"].copy()}
        up["E"][row, col] += h
        down["E"][row, col] -= h
        numeric = (model.value(**up, **feed) - model.value(**down, **feed)) / (2 * h)
        assert abs(numeric - grads["E"][row, col]) < 1e-7 * max(1.0, abs(numeric))
