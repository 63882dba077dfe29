"""Retrieval metrics by hand, and the project's question set."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from helpers import PROJECT_ROOT
from rag.errors import RagError
from rag.evaluation import (MRR_AT, Outcome, Question, first_hit_rank, gold_position, load_questions, normalise,
                            retrieval_metrics)
from rag.types import Chunk


def chunk(text: str) -> Chunk:
    return Chunk("id-" + text[:8], "d.txt", "T", (), text, 0, len(text))


def test_first_hit_rank():
    chunks = [chunk("abc"), chunk("low  rank\nmatrix"), chunk("LoRA 低秩")]
    assert first_hit_rank(chunks, ("rank matrix",)) == 2  # whitespace collapsed on both sides
    assert first_hit_rank(chunks, ("low rank\n\n matrix",)) == 2
    assert first_hit_rank(chunks, ("nothing", "低秩", "abc")) == 1  # the first chunk with any gold
    assert first_hit_rank(chunks, ("低秩",)) == 3
    assert first_hit_rank(chunks, ("missing",)) is None
    assert first_hit_rank(chunks, ()) is None
    assert first_hit_rank(chunks, ("", "   ")) is None  # blank gold never matches everything
    assert first_hit_rank([], ("abc",)) is None


def q(id, lang, answerable=True):
    return Question(id=id, question="?", lang=lang, answerable=answerable, gold=("x",) if answerable else ())


def test_retrieval_metrics_hand_worked():
    outcomes = [
        Outcome(q("1", "en"), 1),
        Outcome(q("2", "en"), 3),
        Outcome(q("3", "zh"), None),
        Outcome(q("4", "zh"), 5),
        Outcome(q("5", "zh"), 2),
        Outcome(q("6", "en", answerable=False), None),  # not scored
        Outcome(q("7", "zh", answerable=False), 1),  # not scored even with a "rank"
    ]
    m = retrieval_metrics(outcomes)
    assert m["n"] == 5
    assert m["hit@1"] == pytest.approx(1 / 5)
    assert m["hit@3"] == pytest.approx(3 / 5)
    assert m["hit@5"] == pytest.approx(4 / 5)
    assert m[f"mrr@{MRR_AT}"] == pytest.approx((1 + 1 / 3 + 0 + 1 / 5 + 1 / 2) / 5)
    assert set(m["by_lang"]) == {"en", "zh"}
    en, zh = m["by_lang"]["en"], m["by_lang"]["zh"]
    assert en == {"hit@1": 0.5, "hit@3": 1.0, "hit@5": 1.0, "mrr@10": pytest.approx((1 + 1 / 3) / 2), "n": 2}
    assert zh == {"hit@1": 0.0, "hit@3": pytest.approx(1 / 3), "hit@5": pytest.approx(2 / 3),
                  "mrr@10": pytest.approx((1 / 5 + 1 / 2) / 3), "n": 3}


def test_gold_in_the_prompt_is_counted_over_answerable_questions_a_model_saw():
    assert gold_position(["abc", "x  y"], ("x y",)) == 2
    assert gold_position(["abc"], ("x",)) is None
    outcomes = [
        Outcome(q("1", "en"), 1, in_prompt=True),
        Outcome(q("2", "zh"), 3, in_prompt=False),  # retrieved, but cut by the budget
        Outcome(q("3", "zh"), 1, in_prompt=True),
        Outcome(q("4", "en"), 1),  # no model involved: not counted
        Outcome(q("5", "en", answerable=False), None, in_prompt=False),  # unanswerable: not counted
    ]
    assert retrieval_metrics(outcomes)["in_prompt"] == pytest.approx(2 / 3)
    assert "in_prompt" not in retrieval_metrics([Outcome(q("1", "en"), 1)])


def test_retrieval_metrics_empty():
    m = retrieval_metrics([])
    assert m == {"hit@1": 0.0, "hit@3": 0.0, "hit@5": 0.0, "mrr@10": 0.0, "n": 0, "by_lang": {}}


def test_load_questions(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text('{"id": 1, "question": "什么是LoRA", "lang": "zh", "gold": ["低秩"]}\n\n'
                    '{"id": "b", "question": "capital?", "answerable": false}\n', encoding="utf-8")
    assert load_questions(path) == [
        Question("1", "什么是LoRA", "zh", True, ("低秩",)),
        Question("b", "capital?", "?", False, ()),
    ]
    path.write_text('{"id": 1, "question": "ok"}\nnot json\n', encoding="utf-8")
    with pytest.raises(RagError, match=r"qa\.jsonl:2: not a question line"):
        load_questions(path)


# --- the project's question set ---------------------------------------------------------

SETS = ["qa.jsonl", "heldout.jsonl", "heldout2.jsonl", "heldout3.jsonl", "heldout4.jsonl", "heldout5.jsonl",
        "heldout6.jsonl", "heldout7.jsonl", "heldout8.jsonl", "heldout9.jsonl", "heldout10.jsonl",
        "heldout11.jsonl", "heldout12.jsonl", "heldout13.jsonl", "heldout14.jsonl", "heldout15.jsonl",
        "heldout16.jsonl"]


@pytest.fixture(scope="module", params=SETS)
def qa(request):
    """The development set (tuning, calibration) and sixteen held-out sets (reported, never tuned on)."""
    path = PROJECT_ROOT / "eval" / request.param
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()], \
        load_questions(path)


def test_held_out_questions_are_not_development_questions():
    def questions(name: str) -> set[str]:
        return {q.question for q in load_questions(PROJECT_ROOT / "eval" / name)}

    for i, a in enumerate(SETS):
        for b in SETS[i + 1:]:
            assert questions(a) & questions(b) == set(), (a, b)


def test_question_set_shape(qa):
    rows, questions = qa
    assert len(rows) == len(questions)
    answerable = [x for x in questions if x.answerable]
    assert len(answerable) >= 40
    by_lang = Counter(x.lang for x in answerable)
    assert set(by_lang) == {"en", "zh"} and min(by_lang.values()) >= 20
    unanswerable = [x for x in questions if not x.answerable]
    assert unanswerable and all(x.gold == () for x in unanswerable)
    assert all(x.gold and all(g.strip() for g in x.gold) for x in answerable)
    ids = [x.id for x in questions]
    assert len(ids) == len(set(ids))
    assert all(x.question.strip() for x in questions)


def test_question_languages_match_detection(qa):
    from rag.lang import detect

    _, questions = qa
    assert [x.id for x in questions if detect(x.question) != x.lang] == []


def test_every_gold_substring_is_in_the_corpus(qa):
    rows, _ = qa
    corpus = {p.name: normalise(p.read_text(encoding="utf-8")) for p in (PROJECT_ROOT / "corpus").iterdir()}
    everything = "\n".join(corpus.values())
    missing = [(r["id"], g) for r in rows for g in r["gold"] if normalise(g) not in everything]
    assert missing == []
    # where a row names its document, the gold is in that document
    wrong_doc = [(r["id"], g) for r in rows if r.get("doc") for g in r["gold"] if normalise(g) not in corpus[r["doc"]]]
    assert wrong_doc == []


def test_answer_metrics_count_refusals_and_supported_claims():
    from rag.evaluation import answer_metrics
    from rag.types import Answer, Sentence

    def q(qid: str, lang: str, answerable: bool) -> Question:
        return Question(qid, "?", lang, answerable, ("x",) if answerable else ())

    grounded = Answer("?", "en", "LoRA freezes weights [1].", [], citations=[1], sentences=[
        Sentence("The steps are:", [], True, 1.0, claim=False),       # a lead-in: not counted
        Sentence("LoRA freezes weights.", [1], True, 0.8),
        Sentence("It was invented in 2019.", [], False, 0.0)])
    chinese = Answer("?", "zh", "幻觉是错误输出[1]。", [], citations=[1], retried=True, second_look="answered", sentences=[
        Sentence("幻觉是错误输出。", [1], True, 0.9), Sentence("随机种子是 42。", [1], True, 0.1, judged=0.8)])
    refused = Answer("?", "en", "The knowledge base does not cover this.", [], refused=True, refusal_reason="gate")
    wrongly = Answer("?", "zh", "知识库中没有找到相关内容。", [], refused=True, refusal_reason="model", retried=True,
                     second_look="grade")
    m = answer_metrics([(q("a", "en", True), grounded), (q("b", "zh", True), chinese),
                        (q("c", "en", False), refused), (q("d", "zh", True), wrongly)])
    assert m["refusal_recall"] == 1.0 and m["false_refusals"] == 1 / 3
    assert m["claims"] == 4 and m["supported"] == 3 / 4
    assert m["supported_by_lang"] == {"en": 0.5, "zh": 1.0}
    assert m["cited"] == 1.0 and m["refused_by"] == {"gate": 1, "model": 1}
    assert (m["judged"], m["confirmed"]) == (1, 1)
    assert (m["retried"], m["retried_answered"]) == (2, 1)
    assert (m["second_looks"], m["second_look_answered"]) == (2, 1)
