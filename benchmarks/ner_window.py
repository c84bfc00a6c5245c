"""Emitted NER gradient vs a hand-written NumPy reference: the suite's ``ner-d50`` row.

Run by hand:  python benchmarks/ner_window.py  [suite options, e.g. --quick]
Kept for its name; the workload, the reference and the timing live in suite.py.
"""

from __future__ import annotations

import sys

import suite

if __name__ == "__main__":
    suite.main(["--only", "ner-d50", *sys.argv[1:]])
