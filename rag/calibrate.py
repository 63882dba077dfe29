"""``python -m rag.calibrate --qa FILE.jsonl [--max-false-refusals 0.025]``
``python -m rag.calibrate --citations ANSWERS.jsonl [--sample N --seed S]``
``python -m rag.calibrate --gate-sweep ANSWERS.jsonl [--with-grade G]``
``python -m rag.calibrate --grade ANSWERS.jsonl [--max-false-refusals 0.025]``
``python -m rag.calibrate --replay ANSWERS.jsonl [--gate G] [--with-grade T] [--with-judge J] [--with-retry R] [--with-share S] [--recheck] [--second-look DUMPS [--with-second-look T2]] [--questions FILES]``
``python -m rag.calibrate --judge ANSWERS.jsonl [--write]``
``python -m rag.calibrate --grade-cache ANSWERS.jsonl [--sample N --seed S]``
``python -m rag.calibrate --translations ANSWERS.jsonl``

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
dumps (made with RAG_GATE=0 RAG_GRADE=1e-9) had been made at the given gate,
grader, judge and retry thresholds (by default the settings in force; the
retry's needs a dump made with it on for every grade, ``RAG_RETRY=1e-9``), with the ids of
the unanswerable questions answered and the answerable ones refused. One slow
run of a question set then gives the figures of every setting of the three layers.
``--recheck`` first checks the claims the dumps left unsupported again with
the current citation checker (its ninth-round changes only add support).
``--questions`` (the dumps' question files) says, for each answerable question
refused, where its gold text was: in what the model was shown, only among the
passages retrieved, or nowhere in them; which layer to work on next follows.

With ``--judge``: the sentence judge (rag/grade.py) reads every claim of the
dumps that the citation check left unsupported and a passage could still state,
and, as negatives, a seeded sample of supported claims put against another
question's passages. Prints how many of each it confirms at each threshold;
``--write`` stores each doubtful claim's probability in the dumps (``judged``),
so that ``--replay`` can apply any judge threshold to them.

With ``--grade-cache``: whether a dump's grade is the grade a live run gives
(``--replay`` assumes it is). llama.cpp reuses the KV cache for the prefix a
prompt shares with the one before, so the same prompt is evaluated in
different batches: N seeded rows graded near the threshold (0.15–0.6) are
graded again after another question, at once again, and from an empty
cache, beside the dump's grade; and whether any verdict at the grader's
threshold differs. Llama-cpp models only.

With ``--translations``: the sentences of the dumps' English answers that were
shown in Chinese (no faithful translation came back; code and copied passage
headers aside), each translated again by the current translator: how many
come back in English now.

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
from .citations import parse_markers, stands
from .cli import ProgressBars, run, setup_logging
from .config import Settings
from .errors import RagError
from .evaluation import gold_position, load_questions
from .locality import scattered
from .prompts import is_echo, is_label
from .terms import code_spans, novel_terms, sentence_names, title_case_names

_REPLIES = ("first_draft", "draft", "sentences")  # a dump row's replies, as judged


def choose_threshold(answerable: list[float], max_false_refusals: float) -> float:
    """The largest threshold that refuses at most ``max_false_refusals`` of ``answerable``.

    >>> choose_threshold([0.02, 0.03, 0.05, 0.06], 0.25)
    0.03
    """
    ranked = sorted(answerable)
    allowed = int(max_false_refusals * len(ranked))  # this many may fall below
    return ranked[allowed] if ranked else 0.0


def replayed_support(sentence: dict, judge: float) -> bool:
    """A dumped sentence's verdict at judge threshold ``judge`` (0: no judge).
    A sentence with a ``judged`` probability was one the citation check left
    unsupported; the judge's probability alone decides it.

    >>> [replayed_support({"supported": False, "judged": 0.6}, j) for j in (0.0, 0.5, 0.7)]
    [False, True, False]
    """
    if sentence.get("judged") is None:
        return sentence["supported"]
    return judge > 0 and sentence["judged"] >= judge


def reply_sentences(a: dict) -> list[dict]:
    """Dump row ``a``'s reply as judged: its sentences, or the refused draft for a reply refused as unsupported."""
    return (a.get("draft") if a["refusal_reason"] == "unsupported" else a.get("sentences")) or []


def _verdicts(sentences: list[dict], judge: float | None) -> list[bool]:
    """The claims' verdicts: as dumped (``judge`` None) or at that judge threshold."""
    return [s["supported"] if judge is None else replayed_support(s, judge)
            for s in sentences if s.get("claim", True)]


def replayed(a: dict, gate: float, grade: float, judge: float | None = None,
             retry: float | None = None, share: float | None = None) -> tuple[str | None, list[bool]]:
    """Why the pipeline would refuse dump row ``a`` at these settings (None: it
    answers), and the verdicts on the claims of the reply it would then show.

    The layers in the order the chain runs them: the name check, the gate, the
    grader, then each reply the model wrote. A reply stands as the model's
    outcome in the dump says, or (with ``judge`` or ``share``) by the answer-level
    support rule, at that share of claims (``citations.stands``), over its claims'
    verdicts at that judge threshold. A row the chain asked
    again (``retried``) keeps its first reply as ``first_draft``; at retry
    threshold ``retry`` (None: as dumped; 0: never) only that one counts when
    the row's grade is under it.

    >>> row = {"refused": True, "refusal_reason": "model", "relevance": 0.03, "grade": 0.2}
    >>> [replayed(row, g, t)[0] for g, t in ((0.0, 0.0), (0.0, 0.3), (0.04, 0.3))]
    ['model', 'grade', 'gate']
    >>> draft = [{"supported": False, "judged": 0.6}, {"supported": False}]
    >>> row = {"refused": True, "refusal_reason": "unsupported", "relevance": 0.03, "grade": 0.5, "draft": draft}
    >>> [replayed(row, 0.02, 0.3, j) for j in (0.0, 0.5)]
    [('unsupported', []), (None, [True, False])]
    >>> row = {"refused": False, "refusal_reason": None, "relevance": 0.03, "grade": 0.5, "retried": True,
    ...        "first_draft": [{"supported": False}], "sentences": [{"supported": True}, {"supported": False}]}
    >>> replayed(row, 0.02, 0.3), replayed(row, 0.02, 0.3, retry=0.5), replayed(row, 0.02, 0.3, retry=0.6)
    ((None, [True, False]), (None, [True, False]), ('unsupported', []))
    """
    if a["refusal_reason"] == "unknown":
        return "unknown", []
    if a["relevance"] is not None and a["relevance"] < gate:
        return "gate", []
    if a.get("grade") is not None and a["grade"] < grade:
        return "grade", []
    if a.get("second_look") == "answered":
        # The dumped reply is the second look's (``rag.eval`` with RAG_FOCUS=refusal):
        # the first look refused it, by the model or the check; ``replay`` takes it as a second look.
        return "unsupported", []
    replies = [("unsupported", a.get("first_draft") or [])] if a.get("retried") else []
    if not replies or retry is None or 0 < retry <= a["grade"]:
        replies.append((a["refusal_reason"] if a["refused"] else None, reply_sentences(a)))
    rule = {} if share is None else {"share": share}
    for reason, sentences in replies:
        verdicts = _verdicts(sentences, judge)
        if (judge is not None or rule) and reason in (None, "unsupported"):
            reason = None if stands(sum(verdicts), len(verdicts), **rule) else "unsupported"
        if reason is None:
            return None, verdicts
    return reason, []


def _check_replayable(answers: list[dict]) -> None:
    if any(a.get("refusal_reason") in ("gate", "grade") for a in answers):
        raise RagError("this dump has gate or grader refusals; make it with the gate off and the grader refusing "
                       "nothing (RAG_GATE=0 RAG_GRADE=1e-9 python -m rag.eval ... --dump)")


# The refusals a second look over focused passages follows (rag.chain, Settings.focus "refusal").
SECOND_LOOK = ("grade", "unsupported", "model")


def replay(answers: list[dict], gate: float, grade: float = 0.0, judge: float | None = None,
           retry: float | None = None, share: float | None = None, second: list[dict] | None = None,
           second_grade: float = 0.0) -> dict:
    """``rag.eval``'s refusal and support figures as if the dump had been made at
    gate ``gate``, grader threshold ``grade``, judge threshold ``judge`` (None:
    the verdicts as dumped), retry threshold ``retry`` and answer-level share
    ``share`` (``replayed``) from a dump made with the first two off: the layers
    after them decode greedily, so their verdicts carry over, up to llama.cpp's
    prompt-cache reuse, which can flip a translation; docs/EVAL.md.
    With ``second`` (rows of the same questions answered over focused passages,
    ``RAG_FOCUS=always``), a question refused (``SECOND_LOOK``) takes its second
    look: answered if its focused row, replayed at the same settings but graded
    against ``second_grade`` (when higher than ``grade``), is. A row of a dump
    made with the second look on (the default) that it answered holds its own
    focused row: its reply, graded ``focus_grade``; without ``second`` it is refused.

    >>> rows = [{"id": "a", "answerable": True, "refused": False, "refusal_reason": None, "relevance": 0.05,
    ...          "grade": 0.9, "lang": "en", "sentences": [{"claim": True, "supported": True}]},
    ...         {"id": "u", "answerable": False, "refused": False, "refusal_reason": None, "relevance": 0.05,
    ...          "grade": 0.1, "lang": "en", "sentences": [{"claim": True, "supported": False}]}]
    >>> r = replay(rows, 0.02, 0.3)
    >>> r["unanswerable_refused"], r["answerable_refused"], r["supported"], r["refused_by"]
    (1, 0, 1.0, {'grade': 1})
    >>> rows[0].update(second_look="answered", focus_grade=0.45)
    >>> [replay(rows, 0.02, 0.3, **kw)["answerable_refused"] for kw in (
    ...     {}, {"second": []}, {"second": [], "second_grade": 0.5})]
    [1, 0, 1]
    """
    _check_replayable(answers)
    _check_replayable(second or [])
    outcomes = {a["id"]: replayed(a, gate, grade, judge, retry, share) for a in answers}
    own = {a["id"]: {**a, "grade": a.get("focus_grade"), "second_look": None}
           for a in answers if a.get("second_look") == "answered"}
    focused = {**own, **{a["id"]: a for a in second or []}}
    looked, unlooked = [], []
    if second is not None:
        for i, (reason, _) in list(outcomes.items()):
            if reason not in SECOND_LOOK:
                continue
            if i not in focused:
                unlooked.append(i)
                continue
            looked.append(i)
            again = replayed(focused[i], gate, max(grade, second_grade), judge, retry, share)
            if again[0] is None:
                outcomes[i] = again
    reasons = {i: reason for i, (reason, _) in outcomes.items()}
    answered = [a for a in answers if reasons[a["id"]] is None]
    verdicts = {i: claims for i, (_, claims) in outcomes.items()}
    claims = {lg: [v for a in answered if a.get("lang") == lg for v in verdicts[a["id"]]] for lg in ("en", "zh")}
    every = claims["en"] + claims["zh"]
    refused_by: dict[str, int] = {}
    for reason in reasons.values():
        if reason:
            refused_by[reason] = refused_by.get(reason, 0) + 1
    return {"gate": gate, "grade": grade, "judge": judge, "retry": retry, "share": share,
            **({} if second is None else {"second_grade": max(grade, second_grade)}),
            "unanswerable": sum(not a["answerable"] for a in answers),
            "unanswerable_refused": sum(bool(reasons[a["id"]]) for a in answers if not a["answerable"]),
            "answerable": sum(a["answerable"] for a in answers),
            "answerable_refused": sum(bool(reasons[a["id"]]) for a in answers if a["answerable"]),
            "claims": len(every), "supported": round(sum(every) / len(every), 4) if every else 0.0,
            "supported_by_lang": {lg: round(sum(c) / len(c), 4) for lg, c in claims.items() if c},
            "refused_by": refused_by,
            "answered_unanswerable": [a["id"] for a in answers if not a["answerable"] and not reasons[a["id"]]],
            "refused_answerable": [f"{a['id']}:{reasons[a['id']]}" for a in answers
                                   if a["answerable"] and reasons[a["id"]]],
            **({} if second is None else {
                "second_look_answered": [i for i in looked if reasons[i] is None],
                "second_look_missing": unlooked})}


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
                        help="answer dumps made with RAG_GATE=0 RAG_GRADE=1e-9, comma-separated (a later dump's "
                             "rows replace an earlier one's): the figures at --gate, --with-grade, --with-judge, "
                             "--with-retry and --with-share")
    source.add_argument("--judge", metavar="DUMPS",
                        help="answer dumps, comma-separated: what the sentence judge confirms at each threshold")
    source.add_argument("--grade-cache", metavar="DUMPS",
                        help="answer dumps, comma-separated: their grades against live ones in three KV cache states")
    source.add_argument("--translations", metavar="DUMPS",
                        help="answer dumps: English answers' sentences shown in Chinese, translated again")
    source.add_argument("--gate-sweep", metavar="DUMP",
                        help="answer dump made with RAG_GATE=0: what the pipeline refuses at each gate threshold")
    parser.add_argument("--max-false-refusals", type=float, default=0.025)
    parser.add_argument("--with-grade", type=float, metavar="T",
                        help="with --gate-sweep (default 0, off) or --replay (default: the model's): "
                             "also refuse what the passage grader refuses at threshold T")
    parser.add_argument("--with-judge", type=float, metavar="J",
                        help="with --replay: the sentence judge's threshold (default: the model's; 0: off)")
    parser.add_argument("--with-retry", type=float, metavar="R",
                        help="with --replay: ask again from grade R (default: the model's; 0: never); a retried "
                             "row under it counts as its first reply, refused as unsupported")
    parser.add_argument("--with-share", type=float, metavar="S",
                        help="with --replay: the answer-level rule's share of a reply's claims that must be "
                             "supported (default: 0.25, the chain's)")
    parser.add_argument("--recheck", action="store_true",
                        help="with --replay: check the dumped claims left unsupported again with the current "
                             "citation checker, whose changes since the dumps only add support; loads the models")
    parser.add_argument("--second-look", metavar="DUMPS",
                        help="with --replay: dumps of the same questions answered with RAG_FOCUS=always (and the "
                             "gate and grader as for --replay): a question refused takes a second look over them")
    parser.add_argument("--with-second-look", type=float, metavar="T2",
                        help="with --second-look: the grade the focused passages must reach (default: the model's)")
    parser.add_argument("--questions", metavar="FILES",
                        help="with --replay: the dumps' question files, comma-separated: where each refused "
                             "answerable question's gold text was (shown / retrieved / missing); loads the models")
    parser.add_argument("--write", action="store_true",
                        help="with --judge: store each doubtful claim's probability in the dumps")
    parser.add_argument("--negatives", type=int, default=60,
                        help="with --judge: supported claims put against another question's passages")
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
        chain = _chain(settings) if args.recheck or args.questions else None
        second = load_answers(args.second_look) if args.second_look else None
        if args.recheck:
            answers = recheck(chain, answers)
            second = recheck(chain, second) if second else second
            rechecked = {verdict: [f"{a['id']}: {s['text'].strip()}" for a in answers + (second or [])
                                   for key in _REPLIES for s in a.get(key) or []
                                   if s.get("rechecked") and s["supported"] == (verdict == "rechecked_supported")]
                         for verdict in ("rechecked_supported", "rechecked_unsupported")}
            print(json.dumps(rechecked, ensure_ascii=False, indent=None if args.json else 1))
        gate = settings.gate_threshold if args.gate is None else args.gate
        grade = settings.grade_in_force if args.with_grade is None else args.with_grade
        judge = settings.judge_in_force if args.with_judge is None else args.with_judge
        retry = settings.retry_in_force if args.with_retry is None else args.with_retry
        second_grade = settings.second_look_in_force if args.with_second_look is None else args.with_second_look
        figures = replay(answers, gate, grade, judge, retry, args.with_share, second, second_grade)
        if args.questions:
            refused = {r.split(":")[0] for r in figures["refused_answerable"]}
            figures["refused_answerable_gold"] = gold_whereabouts(
                chain, [a for a in answers if a["id"] in refused], args.questions)
        print(json.dumps(figures, ensure_ascii=False, indent=None if args.json else 1))
        return 0
    if args.grade:
        answers = load_answers(args.grade)
        return print_grades(answers, args.max_false_refusals, args.json)
    if args.citations and args.sample:
        for k, row in enumerate(sample_sentences(load_answers(args.citations), args.sample, args.seed), start=1):
            print(f"### {k} {row['id']} supported={row['supported']} score={row['score']} cites={row['citations']}\n"
                  f"Q: {row['question']}\nS: {row['text']}\nP: {row['passage']}\n")
        return 0

    chain = _chain(settings)
    if args.grade_cache:
        rows = grade_cache(chain, load_answers(args.grade_cache), args.sample or 20, args.seed)
        print(json.dumps(grade_cache_summary(rows, chain.settings.grade_in_force), indent=None if args.json else 1))
        return 0
    if args.translations:
        rows = untranslated(load_answers(args.translations))
        again = [{**r, "now": chain.translator.translate(r["text"], "en")} for r in rows]
        print(json.dumps({"english_answers": sum(not a["refused"] and a["lang"] == "en"
                                                 for a in load_answers(args.translations)),
                          "answers": len({r["id"] for r in rows}), "sentences": len(rows),
                          "translated_now": sum(bool(r["now"]) for r in again), "rows": again},
                         ensure_ascii=False, indent=None if args.json else 1))
        return 0
    if args.citations:
        return calibrate_citations(chain, args.citations, args.json)
    if args.judge:
        return calibrate_judge(chain, args.judge, args.negatives, args.seed, args.write, args.json)
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


def _chain(settings: Settings):
    from .service import build_chain

    bars = ProgressBars()
    chain = build_chain(settings, progress=bars)
    bars.close()
    return chain


def grade_cache(chain, answers: list[dict], n: int, seed: int) -> list[dict]:
    """``n`` seeded rows of ``answers`` graded between 0.15 and 0.6, each graded
    live after the row before it (another question's prompt in the KV cache), at
    once again (its own), and after the cache is emptied (``--grade-cache``)."""
    from .chain import State

    pool = [a for a in answers if a.get("grade") is not None and 0.15 <= a["grade"] <= 0.6 and a.get("queries")]
    picked = random.Random(seed).sample(pool, min(n, len(pool)))
    llama = chain.chat_model.llama  # llama-cpp only: the cache is what is measured
    rows, before = [], None
    for a in picked:
        state = State(question=a["question"], language=lang.detect(a["question"]), queries=a["queries"])
        state = chain.prompt(chain.retrieve(state))
        if before is not None:
            chain.grade(before)
        after_other = chain.grade(state)
        again = chain.grade(state)
        llama.reset()
        rows.append({"id": a["id"], "dump": a["grade"], "after_other": after_other, "again": again,
                     "fresh": chain.grade(state)})
        before = state
    return rows


def grade_cache_summary(rows: list[dict], threshold: float) -> dict:
    """The rows, the mean and largest gap of each state to the empty cache's
    grade, and the ids whose verdict at ``threshold`` is not the same in all.

    >>> rows = [{"id": "a", "dump": 0.31, "after_other": 0.31, "again": 0.31, "fresh": 0.29}]
    >>> grade_cache_summary(rows, 0.3)["verdict_differs"], grade_cache_summary(rows, 0.3)["dump"]
    (['a'], {'mean': 0.02, 'max': 0.02})
    """
    gaps = {k: [abs(r[k] - r["fresh"]) for r in rows] for k in ("dump", "after_other", "again")}
    return {"rows": rows, **{k: {"mean": round(sum(g) / len(g), 4), "max": round(max(g), 4)}
                             for k, g in gaps.items() if g},
            "verdict_differs": [r["id"] for r in rows
                                if len({r[k] >= threshold for k in ("dump", "after_other", "again", "fresh")}) > 1]}


def load_answers(paths: str) -> list[dict]:
    """The rows of the answer dumps written by ``rag.eval --dump`` (paths comma-separated).
    A row replaces an earlier dump's row of the same question: a re-run of some
    questions (``rag.eval --ids``) is given after the dump it updates."""
    rows: dict[str, dict] = {}
    for path in paths.split(","):
        with open(path, encoding="utf-8") as f:
            for row in (json.loads(line) for line in f if line.strip()):
                rows[row["id"]] = row
    return list(rows.values())


def untranslated(answers: list[dict]) -> list[dict]:
    """The sentences of shown English answers that are in Chinese: no faithful
    translation came back, so they were shown as drafted. Code, and passage headers
    (which the chain no longer shows), aside.

    >>> row = {"id": "a", "lang": "en", "refused": False, "sentences": [{"text": "LSTM 更好。"},
    ...        {"text": "It is better."}, {"text": "```python\\n# 注释\\n```"}, {"text": "(题库 › 1."}]}
    >>> untranslated([row])
    [{'id': 'a', 'text': 'LSTM 更好。'}]
    """
    return [{"id": a["id"], "text": s["text"]} for a in answers if a["lang"] == "en" and not a["refused"]
            for s in a.get("sentences") or []
            if not s["text"].lstrip().startswith("```") and "›" not in s["text"] and lang.detect(s["text"]) == "zh"]


def sample_sentences(answers: list[dict], n: int, seed: int) -> list[dict]:
    """``n`` sentences (15 characters or more) of the shown answers, drawn with ``seed``,
    each with the passage it cites first (or the top passage when it cites none)."""
    pool = [(a, s) for a in answers if not a["refused"] for s in a["sentences"] if len(s["text"].strip()) >= 15]
    picked = random.Random(seed).sample(pool, min(n, len(pool)))
    return [{"id": a["id"], "question": a["question"], "text": s["text"].strip(), "supported": s["supported"],
             "score": s["score"], "citations": s["citations"],
             "passage": a["sources"][(s["citations"] or [1])[0] - 1]["text"]} for a, s in picked]


THRESHOLDS = (0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60)
JUDGE_THRESHOLDS = (0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75)


def rows_by_text(index) -> dict[str, int]:
    """The index's row of each chunk text: a dump stores its passages as text."""
    return {c.text: i for i, c in enumerate(index.chunks)}


def model_passages(chain, row: dict, row_of: dict[str, int]) -> tuple[list, "np.ndarray"]:
    """The passages a dump row's model was given and their stored vectors: as the
    dump records them (``shown``), or for a dump made before it did (the ninth
    round), as the chain then selected them: whole, in rank order, within the
    prompt budget."""
    from .prompts import Passage, select_passages
    from .types import Hit

    chunks = chain.retriever.index.chunks
    known = [(n, x) for n, x in enumerate(row["sources"], start=1) if x["text"] in row_of]
    hits = [Hit(chunks[row_of[x["text"]]], 0.0, row=row_of[x["text"]]) for _, x in known]
    if any("shown" in x for x in row["sources"]):
        passages = [Passage(n, hit, x["shown"]) for (n, x), hit in zip(known, hits) if x.get("shown")]
    else:
        passages = select_passages(hits, chain.settings.context_tokens, chain.count_tokens)
    return passages, chain.retriever.vectors([p.hit for p in passages])


def gold_whereabouts(chain, answers: list[dict], question_files: str) -> dict[str, list[str]]:
    """Where the gold text of each of ``answers`` was: among the passages its
    model was shown (``model_passages``), only among those retrieved (the
    budget left it out), or in none of them (``missing``); ids by place."""
    gold = {q.id: q.gold for path in question_files.split(",") for q in load_questions(path)}
    row_of = rows_by_text(chain.retriever.index)
    places: dict[str, list[str]] = {"shown": [], "retrieved": [], "missing": []}
    for a in answers:
        if a["id"] not in gold:
            raise RagError(f"{a['id']} is in none of the question files {question_files}")
        shown = [p.text for p in model_passages(chain, a, row_of)[0]]
        place = ("shown" if gold_position(shown, gold[a["id"]]) else
                 "retrieved" if gold_position([x["text"] for x in a["sources"]], gold[a["id"]]) else "missing")
        places[place].append(a["id"])
    return places


def _related(sentence: str) -> bool:
    """Whether a sentence relates two names or numbers (``rag.locality.apart``)."""
    return len(sentence_names(sentence)) > 1


def recheck(chain, answers: list[dict]) -> list[dict]:
    """The dumps' rows with every claim the citation check left unsupported
    checked again by the current checker, against the passages that row's model
    was given, and the question's rewordings the row records (``queries``). The
    checker's changes since the dumps (the ninth round's code-value rule and
    code's names for things; the eleventh's qualified names, variables passed
    on and the question's rewordings as its words, docs/EVAL.md) add support;
    those that take it away (the tenth round's runs of capitalised words, an
    acronym's expansion, ``rag.terms.title_case_names``; the eleventh's quoted
    code, ``rag.terms.code_spans``; the thirteenth's names and numbers a passage
    holds only lines apart, ``rag.locality.apart``) concern only the claims with such
    words, which are checked again whole; so does the fourteenth's, words a passage
    holds only spread over it (``rag.locality.scattered``), for the claims some
    passage given holds that way. A claim whose verdict changes is marked
    ``"rechecked": true``; one whose marker moves, ``"recited": true``. An English claim is checked as
    drafted (``source``), as the chain checks it. A sentence the chain no longer shows
    (``rag.prompts.is_echo``, ``is_label``: the thirteenth round's headings) is left out."""
    row_of = rows_by_text(chain.retriever.index)
    out = []
    for a in answers:
        a = dict(a)
        given = model_passages(chain, a, row_of) if any(a.get(k) for k in _REPLIES) else None
        for key in _REPLIES:
            if not a.get(key):
                continue
            rechecked = []
            for s in a[key]:
                drafted = s.get("source") or s["text"]
                if drafted.strip() and (is_echo(drafted) or is_label(drafted, given[0])):
                    continue  # not shown now (a list number alone, a heading from the passages' headers)
                if s.get("claim", True) and not s["supported"] and s.get("judged") is None:
                    now = chain.checker.check([drafted.strip()], *given, a["question"], a.get("queries", [])[1:])[0]
                    if now.supported:
                        s = {**s, "supported": True, "citations": now.citations, "score": now.score,
                             "rechecked": True}
                elif s.get("claim", True) and s["supported"] and (any(
                        rule(drafted) for rule in (title_case_names, code_spans, _related))
                        or any(scattered(drafted, p.text, p.topic) for p in given[0])):
                    now = chain.checker.check([drafted.strip()], *given, a["question"], a.get("queries", [])[1:])[0]
                    if not now.supported:
                        s = {**s, "supported": False, "citations": [], "score": now.score, "rechecked": True}
                    elif now.citations != s["citations"] and not s.get("source"):  # the marker moved
                        s = {**s, "citations": now.citations, "score": now.score, "recited": True}
                rechecked.append(s)
            a[key] = rechecked
        out.append(a)
    return out


def calibrate_judge(chain, dumps: str, negatives: int, seed: int, write: bool, as_json: bool) -> int:
    """Put the dumps' doubtful claims to the sentence judge, and supported claims
    against another question's passages as negatives; print what each threshold confirms."""
    from .grade import SentenceJudge
    from .types import Sentence

    judge = SentenceJudge(chain.chat_model, 1.0)
    row_of = rows_by_text(chain.retriever.index)
    paths = dumps.split(",")
    tables = {path: load_answers(path) for path in paths}
    doubtful: list[tuple[dict, dict, float]] = []  # (row, sentence, probability)
    for rows in tables.values():
        for a in rows:
            sentences = reply_sentences(a)
            if not sentences or a["refusal_reason"] in ("unknown", "gate", "model"):
                continue
            passages, vectors = model_passages(chain, a, row_of)
            for s in sentences:
                drafted = Sentence(s.get("source") or s["text"], s["citations"], s["supported"] and s.get(
                    "judged") is None, claim=s.get("claim", True))
                n = chain.checker.candidate(drafted, passages, vectors, a["question"])
                if n is not None:
                    s["judged"] = round(judge(drafted.text, n, passages), 4)
                    doubtful.append((a, s, s["judged"]))
    # Negatives: supported claims of answered, answerable questions against the
    # passages of a question on another section, where a passage holds their terms.
    answered = [a for rows in tables.values() for a in rows if a["answerable"] and not a["refused"] and a["sources"]]
    rng = random.Random(seed)
    pool = [(a, s) for a in answered for s in a["sentences"] if s.get("claim", True) and s["supported"]
            and s.get("judged") is None]
    negative: list[float] = []
    for a, s in rng.sample(pool, len(pool)):
        if len(negative) >= negatives:
            break
        other = rng.choice([o for o in answered if o["sources"][0]["section"] != a["sources"][0]["section"]])
        passages, vectors = model_passages(chain, other, row_of)
        drafted = Sentence(s.get("source") or s["text"], [], False)
        n = chain.checker.candidate(drafted, passages, vectors, a["question"])
        if n is not None:
            negative.append(judge(drafted.text, n, passages))
    table = [{"threshold": t,
              "negatives_confirmed": round(sum(p >= t for p in negative) / max(1, len(negative)), 3),
              "answerable_confirmed": sum(p >= t for a, _, p in doubtful if a["answerable"]),
              "unanswerable_confirmed": sum(p >= t for a, _, p in doubtful if not a["answerable"])}
             for t in JUDGE_THRESHOLDS]
    summary = {"doubtful": len(doubtful), "doubtful_answerable": sum(a["answerable"] for a, _, _ in doubtful),
               "negatives": len(negative), "table": table}
    if write:
        for path, rows in tables.items():
            with open(path, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(a, ensure_ascii=False) + "\n" for a in rows)
    if as_json:
        print(json.dumps(summary, indent=1))
        return 0
    for a, s, p in sorted(doubtful, key=lambda x: x[2]):
        mark = " " if a["answerable"] else "✗"
        print(f"{p:.4f} {mark} {a['id']} {(s.get('source') or s['text'])[:70]!r}")
    print(f"{len(doubtful)} doubtful claims ({summary['doubtful_answerable']} of answerable questions); "
          f"{len(negative)} negatives (supported claims against another question's passages)")
    print(f"{'threshold':>9} {'negatives confirmed':>20} {'answerable':>11} {'unanswerable':>13}")
    for r in table:
        print(f"{r['threshold']:>9.2f} {r['negatives_confirmed']:>20.3f} {r['answerable_confirmed']:>11} "
              f"{r['unanswerable_confirmed']:>13}")
    return 0


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

    from .citations import CitationChecker, Thresholds
    from .prompts import Passage
    from .types import Hit

    answers = load_answers(dump)
    index = chain.retriever.index
    row_of = rows_by_text(index)
    # A support level no score reaches: every English sentence is also scored in
    # translation, so one pass gives the score each threshold would see.
    checker = CitationChecker(chain.checker.embedder, chain.checker.background,
                              replace(Thresholds(), support=1.01), functools.lru_cache(None)(chain.checker.translate))
    scores: list[tuple[bool, str, float]] = []
    for from_them, language, sentence, texts, question in citation_pairs(answers):
        known = [t for t in texts if t in row_of]  # the dump's passages, as stored in the index
        if not known:
            continue
        passages = [Passage(n, Hit(index.chunks[row_of[t]], 0.0, row=row_of[t]), t) for n, t in enumerate(known, start=1)]
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
