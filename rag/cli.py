"""Helpers shared by the ``python -m rag.*`` entry points: logging, progress
bars, and turning library errors into one-line messages and exit codes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from .errors import ConfigError, RagError

EXIT_ERROR = 1
EXIT_USAGE = 2


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # which SIMD build it tried, line by line


class ProgressBars:
    """A tqdm bar per stage ("read", "embed", ...) on stderr; silent when not a terminal
    unless ``always`` is set."""

    LABELS = {"read": "reading documents", "embed": "embedding passages", "lexical": "building BM25"}

    def __init__(self, always: bool = False):
        self.enabled = always or sys.stderr.isatty()
        self.bars: dict = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=self.LABELS.get(stage, stage), unit="",
                                          file=sys.stderr, leave=True, dynamic_ncols=True)
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def run(main: Callable[[], int]) -> None:
    """Run an entry point: library errors become a message on stderr and exit code 1."""
    try:
        code = main()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted; the previous index is still in place", file=sys.stderr)
        code = 130
    sys.exit(code)
