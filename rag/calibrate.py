"""``python -m rag.calibrate --qa FILE.jsonl [--max-false-refusals 0.025]``

Chooses the relevance gate's threshold (rag/gate.py) from a question file
with answerable and unanswerable questions: the highest threshold that
refuses at most the given share of answerable questions. Prints every
question's relevance so the choice can be checked by eye; the chosen value
goes into ``Settings.gate_threshold`` by hand, with the run recorded in
docs/EVAL.md.
"""

from __future__ import annotations

import argparse
import json

from .cli import ProgressBars, run, setup_logging
from .config import Settings
from .evaluation import load_questions


def choose_threshold(answerable: list[float], max_false_refusals: float) -> float:
    """The largest threshold that refuses at most ``max_false_refusals`` of ``answerable``.

    >>> choose_threshold([0.02, 0.03, 0.05, 0.06], 0.25)
    0.03
    """
    ranked = sorted(answerable)
    allowed = int(max_false_refusals * len(ranked))  # this many may fall below
    return ranked[allowed] if ranked else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.calibrate", description="Calibrate the relevance gate.")
    parser.add_argument("--qa", required=True)
    parser.add_argument("--max-false-refusals", type=float, default=0.025)
    parser.add_argument("--index")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(False)
    settings = Settings.from_env(index_dir=args.index)

    from .service import build_chain

    bars = ProgressBars()
    chain = build_chain(settings, progress=bars)
    bars.close()
    rows = []
    for q in load_questions(args.qa):
        retrieval = chain.retrieve(chain.rewrite(q.question)).retrieval
        rows.append({"id": q.id, "answerable": q.answerable, "lang": q.lang, "relevance": retrieval.relevance,
                     "question": q.question})
    threshold = choose_threshold([r["relevance"] for r in rows if r["answerable"]], args.max_false_refusals)
    unanswerable = [r for r in rows if not r["answerable"]]
    answerable = [r for r in rows if r["answerable"]]
    summary = {
        "threshold": round(threshold, 4),
        "refused_unanswerable": sum(r["relevance"] < threshold for r in unanswerable) / max(1, len(unanswerable)),
        "refused_answerable": sum(r["relevance"] < threshold for r in answerable) / max(1, len(answerable)),
    }
    if args.json:
        print(json.dumps({"summary": summary, "rows": rows}, ensure_ascii=False, indent=1))
        return 0
    for r in sorted(rows, key=lambda r: r["relevance"]):
        mark = " " if r["answerable"] else "✗"
        cut = "  <- refused" if r["relevance"] < threshold else ""
        print(f"{r['relevance']:.4f} {mark} {r['id']} [{r['lang']}] {r['question'][:60]}{cut}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    run(main)
