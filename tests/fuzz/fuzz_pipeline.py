"""An atheris harness over the whole pipeline, for long fuzzing runs by hand.

    pip install '.[fuzz]' && python tests/fuzz/fuzz_pipeline.py -max_total_time=600 examples/

Each input is decoded as UTF-8 (a leading byte-order mark dropped, as the
command line reads files; bytes that are not UTF-8 are skipped: the test
suite checks those through the command line) and given to the same oracle
as ``tests/test_fuzz.py``: it compiles and runs, or raises graphc's own
error located in the text.  Anything else is a crash that libFuzzer reports
and saves.  With no corpus directory given, the examples seed the corpus.
Add ``-timeout=1`` to report an input that takes over a second.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if __name__ == "__main__":  # run by hand: graphc from this checkout, and the fuzz package
    sys.path[:0] = [str(ROOT), str(HERE.parent)]

from fuzz.oracle import check_input  # noqa: E402


def TestOneInput(data: bytes) -> None:  # noqa: N802 - the name atheris calls
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return
    check_input(text, strategy="atheris harness")


def seed_corpus() -> list[Path]:
    return sorted((ROOT / "examples").glob("*.gc"))


def main(argv: list[str]) -> None:
    import atheris  # only for long runs: pip install '.[fuzz]'

    atheris.instrument_all()  # graphc and lark are imported already: instrument what is loaded
    args = list(argv)
    if not any(not a.startswith("-") for a in args[1:]):  # no corpus given: the examples
        args.append(str(ROOT / "examples"))
    atheris.Setup(args, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
