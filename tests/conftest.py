"""Shared pytest hooks: the fuzzing tests' count of inputs, printed after the run."""

from __future__ import annotations

import sys


def pytest_terminal_summary(terminalreporter) -> None:
    oracle = sys.modules.get("fuzz.oracle")
    if oracle is not None and oracle.TRIED:
        terminalreporter.write_line(oracle.summary())
