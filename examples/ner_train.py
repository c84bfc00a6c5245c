"""Train the window classifier of docs/tutorial-ner.md with the module graphc emits.

    python examples/ner_train.py [--epochs 8] [--out build/ner_model.py]

It compiles examples/ner_batch.gc once with `graphc compile`, imports the
emitted module (which needs only NumPy) and trains every parameter, the word
vectors included, by minibatch SGD on examples/data/ner_train.txt.  It prints
the training loss after each epoch and the accuracy on examples/data/ner_test.txt.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CLASSES = ["O", "PER", "LOC", "ORG"]
PAD, UNKNOWN = "<pad>", "<unk>"


def read_sentences(path: Path) -> list[list[tuple[str, str]]]:
    """CoNLL-style "word label" lines, a blank line between sentences."""
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            word, label = line.split()
            current.append((word.lower(), label))
        elif current:
            sentences.append(current)
            current = []
    return sentences + ([current] if current else [])


def windows(sentences, vocabulary: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """The ids of each word's window of five (padded at the sentence ends) and its class."""
    ids, labels = [], []
    for sentence in sentences:
        words = [PAD, PAD] + [w for w, _ in sentence] + [PAD, PAD]
        coded = [vocabulary.get(w, vocabulary[UNKNOWN]) for w in words]
        for i, (_, label) in enumerate(sentence):
            ids.append(coded[i : i + 5])
            labels.append(CLASSES.index(label))
    return np.array(ids, dtype=np.intp), np.array(labels, dtype=np.intp)


def compile_model(out: Path):
    """`graphc compile` once, then import the emitted module: from here on, NumPy only."""
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "graphc",
        "compile",
        str(HERE / "ner_batch.gc"),
        "-o",
        str(out),
    ]
    subprocess.run(command, check=True, cwd=HERE.parent, capture_output=True)
    spec = importlib.util.spec_from_file_location("ner_model", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def feed(ids: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    return {**{f"w{k + 1}": ids[:, k] for k in range(5)}, "y": labels}


def accuracy(model, params: dict, ids: np.ndarray, labels: np.ndarray) -> float:
    """The emitted module gives the loss; the most probable class is the one of least loss."""
    losses = np.stack(
        [
            [model.value(**params, **feed(ids[i : i + 1], np.array([k]))) for k in range(4)]
            for i in range(len(ids))
        ]
    )
    return float(np.mean(np.argmin(losses, axis=1) == labels))


def train(epochs: int, out: Path, batch: int = 32, rate: float = 0.5, seed: int = 0) -> dict:
    model = compile_model(out)
    train_sentences = read_sentences(HERE / "data" / "ner_train.txt")
    test_sentences = read_sentences(HERE / "data" / "ner_test.txt")
    words = sorted({w for s in train_sentences for w, _ in s})
    vocabulary = {w: i for i, w in enumerate([PAD, UNKNOWN, *words])}
    train_ids, train_labels = windows(train_sentences, vocabulary)
    test_ids, test_labels = windows(test_sentences, vocabulary)

    rng = np.random.default_rng(seed)
    d, hidden, classes = 16, 32, len(CLASSES)
    params = {
        "E": rng.normal(0.0, 0.1, size=(len(vocabulary), d)),
        "W": rng.normal(0.0, 1.0 / np.sqrt(5 * d), size=(hidden, 5 * d)),
        "b": np.zeros(hidden),
        "U": rng.normal(0.0, 1.0 / np.sqrt(hidden), size=(classes, hidden)),
        "c": np.zeros(classes),
    }
    majority = float(np.mean(test_labels == np.bincount(train_labels).argmax()))
    print(
        f"{len(train_labels)} training windows, {len(test_labels)} held out,"
        f" vocabulary {len(vocabulary)}"
    )
    losses = []
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(train_labels))
        total = 0.0
        for start in range(0, len(order), batch):
            chosen = order[start : start + batch]
            loss, grads = model.value_and_grad(
                **params, **feed(train_ids[chosen], train_labels[chosen])
            )
            for name, g in grads.items():
                params[name] -= rate * g
            total += loss * len(chosen)
        losses.append(total / len(order))
        print(f"epoch {epoch}: loss {losses[-1]:.4f}")
    held_out = accuracy(model, params, test_ids, test_labels)
    print(f"held-out accuracy {held_out:.3f} (the majority class alone: {majority:.3f})")
    return {"losses": losses, "accuracy": held_out, "majority": majority}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("build/ner_model.py"))
    args = parser.parse_args()
    train(args.epochs, args.out)


if __name__ == "__main__":
    main()
