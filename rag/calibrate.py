"""``python -m rag.calibrate --qa FILE.jsonl [--max-false-refusals 0.025]``
``python -m rag.calibrate --citations ANSWERS.jsonl [--sample N --seed S]``
``python -m rag.calibrate --gate-sweep ANSWERS.jsonl [--with-grade G]``
``python -m rag.calibrate --grade ANSWERS.jsonl [--max-false-refusals 0.025]``
``python -m rag.calibrate --replay ANSWERS.jsonl [--gate G] [--with-grade T]``

With ``--qa``: chooses the relevance gate's threshold (rag/gate.py) from a
question file with answerable and unanswerable questions: the highest
threshold that refuses at most the given share of answerable questions.
Prints every question's relevance so the choice can be checked by eye; the
chosen value goes into ``Settings.gate_threshold`` by hand, with the run
recorded in docs/EVAL.md.

With ``--gate-sweep``: what the whole pipeline would refuse at each gate
threshold, from an answer dump made with the gate off (``RAG_GATE=0
python -m rag.eval ... --dump``): a question is refused when its relevance is
under the threshold or when a later layer (name check, the model, the
answer-level support rule) refused it. This shows what the gate adds beyond
the layers after it.

With ``--grade``: chooses the passage grader's threshold (rag/grade.py) from
answer dumps made with grading on but refusing nothing (``RAG_GRADE=1e-9
python -m rag.eval ... --dump``; several dumps may be given, comma-separated):
the highest threshold that refuses at most the given share of the answerable
questions that reached the model, printed with every graded question. The
value goes into the model's ``Preset.grade_threshold`` by hand.

With ``--replay``: the refusal and support figures of ``rag.eval`` as if the
dumps (made with RAG_GATE=0 RAG_GRADE=1e-9) had been made at the given gate
and grader thresholds (by default the settings in force), with the ids of the
unanswerable questions answered and the answerable ones refused. One slow run
of a question set then gives the figures of every setting of the two layers.

With ``--citations``: shows how the citation checker's support threshold
(``Thresholds.support``) separates sentences from the passages they came
from, using an answer dump of ``rag.eval --dump``. Each sentence of an
answered, answerable question is scored against its own question's top three
passages (label: from them) and against those of another question on a
different section (label: not from them), exactly as the checker scores it
(translation and the names-and-numbers rule included); the table gives, per
threshold and language, the share of each kind judged supported. With
``--sample N`` it prints N seeded answer sentences beside the passage each
cites instead, for a person to judge.
"""

from __future__ import annotations

import argparse
import functools
import json
import random

from . import lang
from .cli import ProgressBars, run, setup_logging
from .config import Settings
from .errors import RagError
from .evaluation import load_questions


def choose_threshold(answerable: list[float], max_false_refusals: float) -> float:
    """The largest threshold that refuses at most ``max_false_refusals`` of ``answerable``.

    >>> choose_threshold([0.02, 0.03, 0.05, 0.06], 0.25)
    0.03
    """
    ranked = sorted(answerable)
    allowed = int(max_false_refusals * len(ranked))  # this many may fall below
    return ranked[allowed] if ranked else 0.0


def replayed_reason(a: dict, gate: float, grade: float) -> str | None:
    """Why the pipeline would refuse dump row ``a`` at these thresholds (None: it answers).

    The layers in the order the chain runs them: the name check, the gate, the
    grader, then what the model and the checker did in the dump.

    >>> row = {"refused": True, "refusal_reason": "model", "relevance": 0.03, "grade": 0.2}
    >>> [replayed_reason(row, g, t) for g, t in ((0.0, 0.0), (0.0, 0.3), (0.04, 0.3))]
    ['model', 'grade', 'gate']
    """
    if a["refusal_reason"] == "unknown":
        return "unknown"
    if a["relevance"] is not None and a["relevance"] < gate:
        return "gate"
    if a.get("grade") is not None and a["grade"] < grade:
        return "grade"
    return a["refusal_reason"] if a["refused"] else None


def _check_replayable(answers: list[dict]) -> None:
    if any(a.get("refusal_reason") in ("gate", "grade") for a in answers):
        raise RagError("this dump has gate or grader refusals; make it with the gate off and the grader refusing "
                       "nothing (RAG_GATE=0 RAG_GRADE=1e-9 python -m rag.eval ... --dump)")


def replay(answers: list[dict], gate: float, grade: float = 0.0) -> dict:
    """``rag.eval``'s refusal and support figures as if the dump had been made at
    gate ``gate`` and grader threshold ``grade`` (from a dump made with both off:
    the layers after them decode greedily, so their verdicts carry over, up to
    llama.cpp's prompt-cache reuse, which can flip a translation; docs/EVAL.md).

    >>> rows = [{"id": "a", "answerable": True, "refused": False, "refusal_reason": None, "relevance": 0.05,
    ...          "grade": 0.9, "lang": "en", "sentences": [{"claim": True, "supported": True}]},
    ...         {"id": "u", "answerable": False, "refused": False, "refusal_reason": None, "relevance": 0.05,
    ...          "grade": 0.1, "lang": "en", "sentences": [{"claim": True, "supported": False}]}]
    >>> r = replay(rows, 0.02, 0.3)
    >>> r["unanswerable_refused"], r["answerable_refused"], r["supported"], r["refused_by"]
    (1, 0, 1.0, {'grade': 1})
    """
    _check_replayable(answers)
    reasons = {a["id"]: replayed_reason(a, gate, grade) for a in answers}
    answered = [a for a in answers if reasons[a["id"]] is None]
    claims = {lg: [s["supported"] for a in answered if a.get("lang") == lg for s in a.get("sentences", [])
                   if s.get("claim", True)] for lg in ("en", "zh")}
    every = claims["en"] + claims["zh"]
    refused_by: dict[str, int] = {}
    for reason in reasons.values():
        if reason:
            refused_by[reason] = refused_by.get(reason, 0) + 1
    return {"gate": gate, "grade": grade,
            "unanswerable": sum(not a["answerable"] for a in answers),
            "unanswerable_refused": sum(bool(reasons[a["id"]]) for a in answers if not a["answerable"]),
            "answerable": sum(a["answerable"] for a in answers),
            "answerable_refused": sum(bool(reasons[a["id"]]) for a in answers if a["answerable"]),
            "claims": len(every), "supported": round(sum(every) / len(every), 4) if every else 0.0,
            "supported_by_lang": {lg: round(sum(c) / len(c), 4) for lg, c in claims.items() if c},
            "refused_by": refused_by,
            "answered_unanswerable": [a["id"] for a in answers if not a["answerable"] and not reasons[a["id"]]],
            "refused_answerable": [f"{a['id']}:{reasons[a['id']]}" for a in answers
                                   if a["answerable"] and reasons[a["id"]]]}


def gate_sweep(answers: list[dict], thresholds: list[float], grade: float = 0.0) -> list[dict]:
    """Refusals of the whole pipeline at each gate threshold, from answers given with the gate off;
    with ``grade``, also refusing what the passage grader would (the dump graded, refusing nothing).

    >>> rows = [{"id": "a", "answerable": True, "refused": False, "refusal_reason": None, "relevance": 0.03},
    ...         {"id": "b", "answerable": False, "refused": True, "refusal_reason": "model", "relevance": 0.05},
    ...         {"id": "c", "answerable": False, "refused": False, "refusal_reason": None, "relevance": 0.02}]
    >>> [(r["unanswerable_refused"], r["answerable_refused"]) for r in gate_sweep(rows, [0.01, 0.025, 0.04])]
    [(1, 0), (2, 0), (2, 1)]
    """
    keys = ("unanswerable_refused", "answerable_refused")  # replay() refuses a dump it cannot replay
    return [{"threshold": t, **{k: v for k, v in replay(answers, t, grade).items() if k in keys}}
            for t in thresholds]


def print_gate_sweep(answers: list[dict], as_json: bool, grade: float = 0.0) -> int:
    """The sweep at "gate off" and just above each question's relevance (which refuses that question)."""
    cuts = sorted({a["relevance"] + 1e-6 for a in answers if a["relevance"] is not None})
    table = gate_sweep(answers, [0.0] + cuts, grade)
    n_un = sum(not a["answerable"] for a in answers)
    n_ans = len(answers) - n_un
    if as_json:
        print(json.dumps({"unanswerable": n_un, "answerable": n_ans, "table": table}, indent=1))
        return 0
    print(f"{'threshold':>9} {'unanswerable refused':>21} {'answerable refused':>19}")
    previous, most = None, max(r["unanswerable_refused"] for r in table)
    for r in table:  # only the thresholds where something changes
        key = (r["unanswerable_refused"], r["answerable_refused"])
        if key != previous:
            print(f"{r['threshold']:>9.5f} {key[0]:>15}/{n_un:<5} {key[1]:>13}/{n_ans:<5}")
        previous = key
        if key[0] == most and r is not table[0]:
            print("(higher thresholds only refuse more answerable questions)")
            break
    return 0


def print_grades(answers: list[dict], max_false_refusals: float, as_json: bool) -> int:
    """Every graded question by its grade, and the threshold ``choose_threshold`` picks."""
    graded = [a for a in answers if a.get("grade") is not None]
    if not graded:
        raise RagError("no graded answers in these dumps; make them with RAG_GRADE=1e-9 python -m rag.eval ... --dump")
    threshold = choose_threshold([a["grade"] for a in graded if a["answerable"]], max_false_refusals)
    summary = {"threshold": round(threshold, 4), "graded": len(graded),
               "refused_unanswerable": sum(a["grade"] < threshold for a in graded if not a["answerable"]),
               "unanswerable": sum(not a["answerable"] for a in graded),
               "refused_answerable": sum(a["grade"] < threshold for a in graded if a["answerable"]),
               "answerable": sum(a["answerable"] for a in graded)}
    if as_json:
        print(json.dumps({"summary": summary, "rows": [{k: a[k] for k in ("id", "answerable", "refused", "grade")}
                                                       for a in graded]}, indent=1))
        return 0
    for a in sorted(graded, key=lambda a: a["grade"]):
        mark = " " if a["answerable"] else "✗"
        later = f" (refused later: {a['refusal_reason']})" if a["refused"] else ""
        cut = "  <- refused" if a["grade"] < threshold else ""
        print(f"{a['grade']:.4f} {mark} {a['id']} {a['question'][:60]}{later}{cut}")
    print(json.dumps(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.calibrate",
                                     description="Calibrate the relevance gate or the citation checker.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--qa", help="question file: calibrate the relevance gate")
    source.add_argument("--citations", help="answer dump of rag.eval --dump: the checker's support threshold")
    source.add_argument("--grade", metavar="DUMPS",
                        help="answer dumps made with RAG_GRADE=1e-9, comma-separated: the passage grader's threshold")
    source.add_argument("--replay", metavar="DUMPS",
                        help="answer dumps made with RAG_GATE=0 RAG_GRADE=1e-9, comma-separated: the figures at "
                             "--gate and --with-grade")
    source.add_argument("--gate-sweep", metavar="DUMP",
                        help="answer dump made with RAG_GATE=0: what the pipeline refuses at each gate threshold")
    parser.add_argument("--max-false-refusals", type=float, default=0.025)
    parser.add_argument("--with-grade", type=float, metavar="T",
                        help="with --gate-sweep (default 0, off) or --replay (default: the model's): "
                             "also refuse what the passage grader refuses at threshold T")
    parser.add_argument("--gate", type=float, help="with --replay: the gate threshold (default: the settings')")
    parser.add_argument("--sample", type=int, metavar="N",
                        help="with --citations: print N seeded answer sentences with their passage, for a manual read")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--corpus")
    parser.add_argument("--index")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(False)
    settings = Settings.from_env(corpus_dir=args.corpus, index_dir=args.index)
    if args.gate_sweep:
        answers = load_answers(args.gate_sweep)
        return print_gate_sweep(answers, args.json, args.with_grade or 0.0)
    if args.replay:
        answers = load_answers(args.replay)
        gate = settings.gate_threshold if args.gate is None else args.gate
        grade = settings.grade_in_force if args.with_grade is None else args.with_grade
        print(json.dumps(replay(answers, gate, grade), ensure_ascii=False, indent=None if args.json else 1))
        return 0
    if args.grade:
        answers = load_answers(args.grade)
        return print_grades(answers, args.max_false_refusals, args.json)
    if args.citations and args.sample:
        for k, row in enumerate(sample_sentences(load_answers(args.citations), args.sample, args.seed), start=1):
            print(f"### {k} {row['id']} supported={row['supported']} score={row['score']} cites={row['citations']}\n"
                  f"Q: {row['question']}\nS: {row['text']}\nP: {row['passage']}\n")
        return 0

    from .service import build_chain

    bars = ProgressBars()
    chain = build_chain(settings, progress=bars)
    bars.close()
    if args.citations:
        return calibrate_citations(chain, args.citations, args.json)
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


def load_answers(paths: str) -> list[dict]:
    """The rows of the answer dumps written by ``rag.eval --dump`` (paths comma-separated)."""
    rows = []
    for path in paths.split(","):
        with open(path, encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def sample_sentences(answers: list[dict], n: int, seed: int) -> list[dict]:
    """``n`` sentences (15 characters or more) of the shown answers, drawn with ``seed``,
    each with the passage it cites first (or the top passage when it cites none)."""
    pool = [(a, s) for a in answers if not a["refused"] for s in a["sentences"] if len(s["text"].strip()) >= 15]
    picked = random.Random(seed).sample(pool, min(n, len(pool)))
    return [{"id": a["id"], "question": a["question"], "text": s["text"].strip(), "supported": s["supported"],
             "score": s["score"], "citations": s["citations"],
             "passage": a["sources"][(s["citations"] or [1])[0] - 1]["text"]} for a, s in picked]


THRESHOLDS = (0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60)


def citation_pairs(answers: list[dict], seed: int = 7) -> list[tuple[bool, str, str, list[str], str]]:
    """(from_them, language, sentence, passage texts, question) for every sentence
    of an answered, answerable question, as the checker saw it (drafted, before
    any translation; the language is the sentence's own): once with its own top
    three passages, once with those of a randomly chosen question on another section."""
    answered = [a for a in answers if a["answerable"] and not a["refused"] and a["sources"]]
    rng = random.Random(seed)
    pairs = []
    for a in answered:
        others = [o for o in answered if o["sources"][0]["section"] != a["sources"][0]["section"]]
        other = rng.choice(others)
        for s in a["sentences"]:
            checked = s.get("source") or s["text"]  # a translated sentence was checked as drafted
            language = lang.detect(checked)
            pairs.append((True, language, checked, [x["text"] for x in a["sources"][:3]], a["question"]))
            pairs.append((False, language, checked, [x["text"] for x in other["sources"][:3]], a["question"]))
    return pairs


def calibrate_citations(chain, dump: str, as_json: bool) -> int:
    from dataclasses import replace

    import numpy as np

    from .citations import CitationChecker, Thresholds, parse_markers
    from .prompts import Passage
    from .terms import novel_terms

    answers = load_answers(dump)
    index = chain.retriever.index
    row_of = {c.text: i for i, c in enumerate(index.chunks)}
    # A support level no score reaches: every English sentence is also scored in
    # translation, so one pass gives the score each threshold would see.
    checker = CitationChecker(chain.checker.embedder, chain.checker.background,
                              replace(Thresholds(), support=1.01), functools.lru_cache(None)(chain.checker.translate))
    scores: list[tuple[bool, str, float]] = []
    for from_them, language, sentence, texts, question in citation_pairs(answers):
        known = [t for t in texts if t in row_of]  # the dump's passages, as stored in the index
        if not known:
            continue
        passages = [Passage(n, None, t) for n, t in enumerate(known, start=1)]
        vectors = np.stack([index.dense.reconstruct(row_of[t]) for t in known])
        if not checker.is_claim(parse_markers(sentence)[0]):
            continue  # "好的。", "The steps are:": nothing to calibrate on
        judged = checker.check([sentence], passages, vectors, question)[0]
        novel = novel_terms(parse_markers(sentence)[0], " ".join(known), question)
        scores.append((from_them, language, 0.0 if novel else judged.score))
    table = []
    for threshold in THRESHOLDS:
        row = {"threshold": threshold}
        for language in ("en", "zh"):
            pos = [sc for f, lg, sc in scores if f and lg == language]
            neg = [sc for f, lg, sc in scores if not f and lg == language]
            row[f"{language}_own"] = round(sum(sc >= threshold for sc in pos) / max(1, len(pos)), 3)
            row[f"{language}_other"] = round(sum(sc >= threshold for sc in neg) / max(1, len(neg)), 3)
        table.append(row)
    if as_json:
        print(json.dumps({"pairs": len(scores), "table": table}, indent=1))
        return 0
    print(f"{len(scores)} sentence-passage pairs; share judged supported "
          "(own = the sentence's own passages, other = another question's)")
    print(f"{'threshold':>9} {'en own':>8} {'en other':>9} {'zh own':>8} {'zh other':>9}")
    for r in table:
        print(f"{r['threshold']:>9.2f} {r['en_own']:>8.3f} {r['en_other']:>9.3f} {r['zh_own']:>8.3f} {r['zh_other']:>9.3f}")
    return 0


if __name__ == "__main__":
    run(main)
