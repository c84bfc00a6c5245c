"""The cost of graphc's gradients against the cost of the programs: the table of
docs/symbolic.md's section on Laue's equivalence (``python docs/generate.py``).

For every example and for the logistic map lₖ (k = 2, 4, …, 10), the
operations of the optimised value graph and of the folded value-and-gradient
graph that graphc emits (reverse mode, by every param), counted as
``graphc compare`` counts them: nodes other than variables and literals.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # graphc from this checkout

from graphc.derive import derive  # noqa: E402
from graphc.frontend import lower  # noqa: E402
from graphc.swell import logistic_map  # noqa: E402
from graphc.symbolic import operation_count  # noqa: E402


def programs() -> list[tuple[str, str]]:
    found = [
        (f"`{p.name}`", p.read_text(encoding="utf-8")) for p in sorted(ROOT.glob("examples/*.gc"))
    ]
    found += [(f"logistic map, k = {k}", logistic_map(k)) for k in range(2, 11, 2)]
    return found


def measure() -> list[tuple[str, int, int]]:
    rows = []
    for name, text in programs():
        lowered = lower(text, name)
        wrt = None if lowered.params else [v.attr("name") for v in lowered.variables]
        derived = derive(lowered, wrt)
        rows.append((name, operation_count(derived.value_graph), operation_count(derived.graph)))
    return rows


def markdown() -> str:
    rows = measure()
    lines = [
        "| program | value graph | value and gradient | gradient's own | ratio |",
        "|:--|--:|--:|--:|--:|",
    ]
    ratios = []
    for name, value, both in rows:
        ratio = both / value if value else float("nan")
        if value:
            ratios.append(ratio)
        shown = f"{ratio:.2f}" if value else "–"
        lines.append(f"| {name} | {value} | {both} | {both - value} | {shown} |")
    lines += [
        "",
        f"Over these programs the value-and-gradient graph has {min(ratios):.2f} to"
        f" {max(ratios):.2f} times the operations of the value graph.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
