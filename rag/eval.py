"""``python -m rag.eval --qa FILE.jsonl [--retrieval-only | --no-llm] [--k N] [--json]``

Retrieval metrics (hit@1/3/5, MRR@10, overall and per language) for every
answerable question in the file: ``--no-llm`` without any model,
``--retrieval-only`` with the full retrieval path (LLM query translation
included). Without either flag every question is also answered, and answer
metrics are added (language, citations, latency). Settings flags let the same harness run a
baseline, e.g. ``--chunker fixed --retrieval dense --no-glossary``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

from .cli import ProgressBars, run, setup_logging
from .config import DRAFT_LANGUAGES, Settings
from .evaluation import (MRR_AT, Outcome, answer_metrics, first_hit_rank, gold_position, load_questions,
                         retrieval_metrics)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.eval", description="Evaluate retrieval on a question file.")
    parser.add_argument("--qa", required=True, help="question file (JSON lines)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--no-llm", action="store_true", help="retrieval without any language model")
    mode.add_argument("--retrieval-only", action="store_true", help="the full retrieval path, no answers generated")
    parser.add_argument("--k", type=int, default=5, help="passages a question gets (metrics look at the top 10)")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    parser.add_argument("--corpus")
    parser.add_argument("--index")
    parser.add_argument("--embedder")
    parser.add_argument("--chunker", help="structure (default) | fixed")
    parser.add_argument("--chunk-size", type=int)
    parser.add_argument("--chunk-overlap", type=int)
    parser.add_argument("--retrieval", help="hybrid (default) | dense | lexical")
    parser.add_argument("--no-glossary", action="store_true", help="no English->Chinese term expansion")
    parser.add_argument("--ids", help="only these questions (comma-separated ids)")
    parser.add_argument("--misses", action="store_true", help="list the questions whose passage was not in the top 5")
    parser.add_argument("--dump", help="write every answer (sentences, scores, citations) to this JSON-lines file")
    parser.add_argument("--model", help="the answering model (default qwen2.5-coder-1.5b)")
    parser.add_argument("--strict", action="store_true", help="drop unsupported sentences")
    parser.add_argument("--draft", choices=DRAFT_LANGUAGES,
                        help="the model drafts in the passages' language, then translates (default), "
                             "or writes in the question's")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    settings = Settings.from_env(corpus_dir=args.corpus, index_dir=args.index, embedder=args.embedder,
                                 chunker=args.chunker, chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap,
                                 retrieval=args.retrieval, glossary=False if args.no_glossary else None,
                                 llm_model=args.model, strict=True if args.strict else None, draft=args.draft)

    from .service import build_chain, open_retriever

    questions = load_questions(args.qa)
    if args.ids:
        wanted = set(args.ids.split(","))
        questions = [q for q in questions if q.id in wanted]
        if not questions:
            parser.error(f"no question in {args.qa} has one of the ids {args.ids}")
    bars = ProgressBars()
    answers_wanted = not (args.no_llm or args.retrieval_only)
    if args.no_llm:
        retriever = open_retriever(settings, progress=bars)
        chain = None
    else:
        chain = build_chain(settings, progress=bars)
        retriever = chain.retriever
    bars.close()
    outcomes, answers, started = [], [], time.perf_counter()
    depth = max(MRR_AT, args.k, settings.top_k)
    for q in questions:
        if chain is None:
            result = retriever(q.question, k=depth)
        else:  # the full path: glossary and LLM translation
            state = chain.retrieve(chain.rewrite(q.question), k=depth)
            result = state.retrieval
        chunks = [h.chunk for h in result.hits]
        outcome = Outcome(q, first_hit_rank(chunks, q.gold) if q.answerable else None, [c.id for c in chunks])
        if chain is not None and q.answerable:
            shown = chain.passages(result.hits[: settings.top_k], state.queries)
            outcome.in_prompt = gold_position([p.text for p in shown], q.gold) is not None
        outcomes.append(outcome)
        if answers_wanted:  # from the passages just scored: fused ranks do not depend on the depth
            state.retrieval = replace(result, hits=result.hits[: settings.top_k])
            answers.append((q, chain.answer(state)))
    metrics = retrieval_metrics(outcomes)
    metrics["seconds_per_question"] = (time.perf_counter() - started) / max(1, len(questions))
    if answers_wanted:
        metrics["answers"] = answer_metrics(answers)
        if args.dump:
            from .ask import answer_json

            with open(args.dump, "w", encoding="utf-8") as f:
                for q, a in answers:
                    f.write(json.dumps({"id": q.id, "lang": q.lang, "answerable": q.answerable, **answer_json(a)},
                                       ensure_ascii=False) + "\n")
    metrics["settings"] = {k: settings.as_dict()[k] for k in ("embedder", "chunker", "chunk_size", "chunk_overlap",
                                                               "retrieval", "glossary", "llm_model", "draft")}
    metrics["mode"] = "no-llm" if args.no_llm else "retrieval-only" if args.retrieval_only else "answers"
    if args.json:
        print(json.dumps(metrics, ensure_ascii=False, indent=1))
    else:
        _print_table(metrics)
    if args.misses:
        for o in outcomes:
            if o.question.answerable and not (o.rank and o.rank <= 5):
                print(f"miss {o.question.id} [{o.question.lang}] rank={o.rank} {o.question.question}", file=sys.stderr)
    return 0


def _print_table(metrics: dict) -> None:
    keys = ["hit@1", "hit@3", "hit@5", f"mrr@{MRR_AT}", "n"]
    print(f"{'':8}" + "".join(f"{k:>9}" for k in keys))
    rows = [("all", metrics)] + list(metrics["by_lang"].items())
    for name, row in rows:
        print(f"{name:8}" + "".join(f"{row[k]:>9}" if k == "n" else f"{row[k]:>9.3f}" for k in keys))
    if "in_prompt" in metrics:
        print(f"gold in the model's passages (context recall): {metrics['in_prompt']:.3f}")
    if "answers" in metrics:
        print("answers: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in metrics["answers"].items()))
        print("(refusal_recall over unanswerable questions, false_refusals over answerable ones, "
              "supported over answer sentences)")


if __name__ == "__main__":
    run(main)
