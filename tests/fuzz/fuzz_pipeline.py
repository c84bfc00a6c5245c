"""An atheris harness over the whole pipeline, for long fuzzing runs by hand.

    pip install '.[fuzz]' && python tests/fuzz/fuzz_pipeline.py -max_total_time=600

Each input is decoded as UTF-8 (a leading byte-order mark dropped, as the
command line reads files; bytes that are not UTF-8 are skipped: the test
suite checks those through the command line) and given to the same oracle
as ``tests/test_fuzz.py``: it compiles and runs, or raises graphc's own
error located in the text.  Anything else is a crash that libFuzzer reports
and saves; so is an input that takes more than a second of CPU time (the
oracle's own bound).  With no corpus directory given, the corpus is kept in
``.fuzz-corpus/`` and seeded with ``examples/`` (libFuzzer writes what it
finds into the first directory given: never name ``examples/`` first).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if __name__ == "__main__":  # run by hand: graphc from this checkout, and the fuzz package
    sys.path[:0] = [str(ROOT), str(HERE.parent)]

from fuzz.oracle import check_input  # noqa: E402

CORPUS = ROOT / ".fuzz-corpus"  # what a run finds, kept for the next (ignored by git)
SEEDS = ROOT / "examples"


def TestOneInput(data: bytes) -> None:  # noqa: N802 - the name atheris calls
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return
    check_input(text, strategy="atheris harness")


def fuzzer_arguments(argv: list[str]) -> list[str]:
    """libFuzzer's arguments: as given, or with the scratch corpus and the seeds added."""
    if any(not a.startswith("-") for a in argv[1:]):
        return list(argv)
    # libFuzzer adds what it finds to the first directory: a scratch one, not examples/.
    return [*argv, str(CORPUS), str(SEEDS)]


def main(argv: list[str]) -> None:
    import atheris  # only for long runs: pip install '.[fuzz]'

    atheris.instrument_all()  # graphc and lark are imported already: instrument what is loaded
    args = fuzzer_arguments(argv)
    if str(CORPUS) in args:
        CORPUS.mkdir(exist_ok=True)
    atheris.Setup(args, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
