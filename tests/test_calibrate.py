"""rag.calibrate: the gate's threshold rule and the citation checker's calibration table."""

from __future__ import annotations

import json

import pytest

from helpers import PROJECT_ROOT, run_module
from rag.calibrate import choose_threshold, citation_pairs
from rag.errors import RagError


def answer(qid: str, section: str, sentence: str, passage: str, answerable: bool = True, refused: bool = False):
    return {"id": qid, "lang": "zh", "answerable": answerable, "refused": refused, "question": f"问题 {qid}",
            "sources": [{"section": section, "text": passage}], "sentences": [{"text": sentence}]}


def test_choose_threshold_refuses_at_most_the_allowed_share():
    assert choose_threshold([0.05, 0.02, 0.06, 0.03], 0.0) == 0.02
    assert choose_threshold([0.05, 0.02, 0.06, 0.03], 0.25) == 0.03
    assert choose_threshold([], 0.1) == 0.0


def test_gate_sweep_counts_what_the_whole_pipeline_refuses_at_each_threshold(tmp_path):
    dump = tmp_path / "answers.jsonl"
    rows = [{"id": "a1", "answerable": True, "refused": False, "refusal_reason": None, "relevance": 0.021},
            {"id": "a2", "answerable": True, "refused": True, "refusal_reason": "unsupported", "relevance": 0.05},
            {"id": "u1", "answerable": False, "refused": False, "refusal_reason": None, "relevance": 0.018},
            {"id": "u2", "answerable": False, "refused": True, "refusal_reason": "unknown", "relevance": 0.04}]
    dump.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    proc = run_module("rag.calibrate", "--gate-sweep", str(dump), "--json")
    assert proc.returncode == 0, proc.stderr
    table = json.loads(proc.stdout)["table"]
    # thresholds: off, then just above each relevance (0.018, 0.021, 0.04, 0.05)
    assert [round(r["threshold"], 3) for r in table] == [0.0, 0.018, 0.021, 0.04, 0.05]
    assert [(r["unanswerable_refused"], r["answerable_refused"]) for r in table] == [
        (1, 1),  # the later layers alone
        (2, 1),  # the gate adds the off-topic question
        (2, 2),  # then costs an answerable one
        (2, 2), (2, 2)]  # the rest were refused anyway
    rows[2].update(refused=True, refusal_reason="gate")
    dump.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    proc = run_module("rag.calibrate", "--gate-sweep", str(dump))
    assert proc.returncode == 1 and "RAG_GATE=0" in proc.stderr


def test_citation_pairs_put_each_sentence_with_its_own_and_another_sections_passages():
    answers = [answer("a", "S1", "甲句。", "甲段"), answer("b", "S2", "乙句。", "乙段"),
               answer("c", "S3", "丙句。", "丙段", answerable=False), answer("d", "S4", "丁句。", "丁段", refused=True)]
    pairs = citation_pairs(answers)
    assert [(own, sentence, texts) for own, _, sentence, texts, _ in pairs] == [
        (True, "甲句。", ["甲段"]), (False, "甲句。", ["乙段"]), (True, "乙句。", ["乙段"]), (False, "乙句。", ["甲段"])]


@pytest.mark.slow
def test_citation_calibration_table_separates_own_from_other_passages(session_index, session_retriever, tmp_path):
    chunks = {c.section_label: c for c in session_retriever.index.chunks}
    lora = next(c for label, c in chunks.items() if "LoRA" in c.text and "低秩" in c.text)
    hallucination = next(c for label, c in chunks.items() if "幻觉" in c.text and c.section_label != lora.section_label)
    dump = tmp_path / "answers.jsonl"
    rows = [answer("a", lora.section_label, "LoRA 在大模型的特定层中注入低秩矩阵进行微调。", lora.text),
            answer("b", hallucination.section_label, "模型幻觉是指模型生成与事实不符的内容。", hallucination.text)]
    dump.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    out = run_module("rag.calibrate", "--citations", str(dump), "--json", "--index", str(session_index.settings.index_dir),
                     "--corpus", str(session_index.settings.corpus_dir))
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    row = next(r for r in data["table"] if r["threshold"] == 0.45)
    assert data["pairs"] == 4 and row["zh_own"] == 1.0 and row["zh_other"] == 0.0


def test_sample_sentences_is_seeded_and_skips_refusals_and_fragments():
    from rag.calibrate import sample_sentences

    shown = answer("a", "S1", "LoRA 在特定层中注入低秩矩阵进行微调。", "甲段")
    shown["sentences"] = [{"text": "LoRA 在特定层中注入低秩矩阵进行微调。", "supported": True, "score": 0.9, "citations": [1]},
                          {"text": "好的。", "supported": True, "score": 1.0, "citations": []}]
    refused = answer("b", "S2", "模型幻觉是指模型生成与事实不符的内容。", "乙段", refused=True)
    picked = sample_sentences([shown, refused], 5, seed=1)
    assert [(p["id"], p["passage"]) for p in picked] == [("a", "甲段")]
    assert sample_sentences([shown, refused], 5, seed=1) == picked


def test_replay_applies_the_judge_threshold_to_the_claims_the_check_left_doubtful(tmp_path):
    def row(qid, answerable, reason, sentences):
        key = "draft" if reason == "unsupported" else "sentences"
        return {"id": qid, "lang": "zh", "answerable": answerable, "refused": reason is not None,
                "refusal_reason": reason, "relevance": 0.05, "grade": 0.6, key: sentences}

    ok, doubtful = {"supported": True}, lambda p: {"supported": False, "judged": p}
    rows = [row("a1", True, "unsupported", [doubtful(0.7)]),             # confirmed only by the judge
            row("a2", True, None, [ok, doubtful(0.7), doubtful(0.5)]),  # answered either way
            row("u1", False, "unsupported", [doubtful(0.5), {"supported": False}])]
    dump = tmp_path / "answers.jsonl"
    dump.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    def replayed(judge: str) -> dict:
        proc = run_module("rag.calibrate", "--replay", str(dump), "--with-judge", judge, "--with-grade", "0.3",
                          "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    off, at_06, at_04 = replayed("0"), replayed("0.6"), replayed("0.4")
    assert (off["answerable_refused"], off["unanswerable_refused"], off["supported"]) == (1, 1, round(1 / 3, 4))
    assert (at_06["answerable_refused"], at_06["unanswerable_refused"]) == (0, 1)
    assert at_06["supported"] == 0.75  # a1's claim, and two of a2's three
    assert (at_04["answerable_refused"], at_04["unanswerable_refused"]) == (0, 0)  # too low: u1 is answered


def test_replay_applies_another_answer_level_share(tmp_path):
    row = {"id": "a1", "lang": "zh", "answerable": True, "refused": False, "refusal_reason": None,
           "relevance": 0.05, "grade": 0.6, "sentences": [{"supported": True}, {"supported": False},
                                                          {"supported": False}]}
    dump = tmp_path / "answers.jsonl"
    dump.write_text(json.dumps(row) + "\n", encoding="utf-8")

    def refused(*flags: str) -> int:
        proc = run_module("rag.calibrate", "--replay", str(dump), "--json", *flags)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)["answerable_refused"]

    assert (refused(), refused("--with-share", "0.3"), refused("--with-share", "0.5")) == (0, 0, 1)


def test_a_later_dump_replaces_the_rows_of_the_questions_it_re_ran(tmp_path):
    from rag.calibrate import load_answers

    full, again = tmp_path / "full.jsonl", tmp_path / "again.jsonl"
    full.write_text('{"id": "a", "v": 1}\n{"id": "b", "v": 1}\n', encoding="utf-8")
    again.write_text('{"id": "b", "v": 2}\n', encoding="utf-8")
    assert load_answers(f"{full},{again}") == [{"id": "a", "v": 1}, {"id": "b", "v": 2}]


def test_replay_under_the_retry_threshold_counts_a_retried_row_as_its_refused_first_reply(tmp_path):
    first = [{"supported": False}]
    rows = [{"id": "a1", "lang": "zh", "answerable": True, "refused": False, "refusal_reason": None,
             "relevance": 0.05, "grade": 0.6, "retried": True, "first_draft": first,
             "sentences": [{"supported": True}, {"supported": False}]},
            {"id": "u1", "lang": "en", "answerable": False, "refused": True, "refusal_reason": "unsupported",
             "relevance": 0.05, "grade": 0.6, "retried": True, "first_draft": first, "draft": first}]
    dump = tmp_path / "answers.jsonl"
    dump.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    def replayed(*flags: str) -> dict:
        proc = run_module("rag.calibrate", "--replay", str(dump), "--with-grade", "0.3", "--json", *flags)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    with_retry, without, above = replayed("--with-retry", "0.5"), replayed("--with-retry", "0"), replayed(
        "--with-retry", "0.7")
    assert (with_retry["retry"], with_retry["answerable_refused"], with_retry["supported"]) == (0.5, 0, 0.5)
    assert (without["retry"], without["answerable_refused"], without["claims"]) == (0, 1, 0)
    assert above["answerable_refused"] == 1  # the grade, 0.6, is under the threshold
    assert with_retry["unanswerable_refused"] == without["unanswerable_refused"] == 1
    assert without["refused_by"] == {"unsupported": 2}


def test_judge_calibration_puts_doubtful_claims_to_the_model_and_writes_its_verdicts(session_retriever, tmp_path):
    """``rag.calibrate --judge --write`` with a model that says "yes": the doubtful claim
    (on topic, nothing the passage lacks) is asked about and stored; a supported one and
    one with a number no passage holds are not."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from rag.calibrate import calibrate_judge
    from rag.chain import AnswerChain
    from rag.citations import CitationChecker

    def yes():
        while True:
            yield AIMessage("yes")

    r = session_retriever
    chain = AnswerChain(r, GenericFakeChatModel(messages=yes()), r.settings, r.rewriters,
                        CitationChecker(r.embedder, r.all_vectors()))
    hits = r("什么是 LoRA？", k=3).hits
    sentences = [{"text": "LoRA 在大模型的特定层中注入低秩矩阵。", "citations": [1], "supported": True},
                 {"text": "这种做法在实践中很常见。", "citations": [], "supported": False},
                 {"text": "LoRA 论文发表于 2019 年。", "citations": [], "supported": False}]
    row = {"id": "a", "lang": "zh", "answerable": True, "refused": False, "refusal_reason": None,
           "question": "什么是 LoRA？", "relevance": 0.05, "grade": 0.6, "sentences": sentences,
           "sources": [{"section": h.chunk.section_label, "text": h.chunk.text} for h in hits]}
    dump = tmp_path / "answers.jsonl"
    dump.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    assert calibrate_judge(chain, str(dump), negatives=0, seed=5, write=True, as_json=True) == 0
    judged = [s.get("judged") for s in json.loads(dump.read_text(encoding="utf-8"))["sentences"]]
    assert judged == [None, 1.0, None]


def test_recheck_supports_what_the_current_checker_supports_and_replay_counts_it(session_retriever):
    """``--replay --recheck``: claims a dump left unsupported are checked again by
    the current checker (here: a value the passage's code sets, stated in Chinese),
    against the passages the row's model was given; what it still rejects stays so."""
    from rag.calibrate import recheck, replay
    from rag.chain import AnswerChain
    from rag.citations import CitationChecker

    retriever = session_retriever
    code = next(c for c in retriever.index.chunks if "predicted_ids = model.generate(input_ids, max_length=50)" in c.text)
    chain = AnswerChain(retriever, object(), retriever.settings, [],
                        CitationChecker(retriever.embedder, retriever.all_vectors()))

    def row(qid: str, claim: str) -> dict:
        return {"id": qid, "lang": "zh", "answerable": True, "refused": True, "refusal_reason": "unsupported",
                "relevance": 0.05, "grade": 0.5, "question": "机器翻译示例最后做翻译时，生成结果的最大长度设成了多少？",
                "sources": [{"text": code.text}],
                "draft": [{"text": claim, "citations": [], "supported": False, "score": 0.3, "claim": True}]}

    rows = [row("right", "生成结果的最大长度设成了50。"), row("wrong", "生成结果的最大长度设成了60。")]
    again = recheck(chain, rows)
    assert again[0]["draft"][0]["supported"] and again[0]["draft"][0]["rechecked"]
    assert again[0]["draft"][0]["citations"] == [1]
    assert not again[1]["draft"][0]["supported"]
    assert not rows[0]["draft"][0]["supported"]  # the rows given are left as they were
    before, after = replay(rows, 0.02, 0.3, 0.0), replay(again, 0.02, 0.3, 0.0)
    assert (before["answerable_refused"], after["answerable_refused"]) == (2, 1)
    assert after["refused_answerable"] == ["wrong:unsupported"]


def test_recheck_takes_support_from_an_expansion_no_passage_states(session_retriever):
    """A rule that takes support away since the dumps, runs of capitalised words, is
    applied to the claims a dump judged supported (held-out 11's v010); a claim with
    one name and no such run is left as it was."""
    from rag.calibrate import recheck, replay
    from rag.chain import AnswerChain
    from rag.citations import CitationChecker

    retriever = session_retriever
    gpt = next(c for c in retriever.index.chunks if "GPT2Tokenizer" in c.text and "Generative" not in c.text)
    chain = AnswerChain(retriever, object(), retriever.settings, [],
                        CitationChecker(retriever.embedder, retriever.all_vectors()))
    rows = [{"id": qid, "lang": "en", "answerable": True, "refused": False, "refusal_reason": None,
             "relevance": 0.05, "grade": 0.5, "question": "What is the full English name behind the abbreviation GPT?",
             "sources": [{"text": gpt.text}],
             "sentences": [{"text": claim, "citations": [1], "supported": True, "score": 0.72, "claim": True}]}
            for qid, claim in (("expanded", "GPT stands for Generative Pre-trained Transformer [1]."),
                               ("stated", "The passage loads a pretrained model with GPT2Tokenizer [1]."))]
    again = recheck(chain, rows)
    assert [r["sentences"][0]["supported"] for r in again] == [False, True]
    assert again[0]["sentences"][0]["rechecked"] and "rechecked" not in again[1]["sentences"][0]
    assert replay(again, 0.02, 0.3, 0.0)["refused_answerable"] == ["expanded:unsupported"]


def test_recheck_applies_the_rules_of_the_thirteenth_round_to_what_a_dump_showed(session_retriever):
    """Names a passage holds only lines apart (held-out 14's y032) and a reply made of a heading
    of the passages' headers (held-out 5's n003): both were shown as supported answers."""
    from rag.calibrate import recheck, replay
    from rag.chain import AnswerChain
    from rag.citations import CitationChecker

    retriever = session_retriever
    guide = next(c for c in retriever.index.chunks if "学习率：0.01" in c.text and "Adam" in c.text)
    chain = AnswerChain(retriever, object(), retriever.settings, [],
                        CitationChecker(retriever.embedder, retriever.all_vectors()))

    def row(qid: str, *claims: str) -> dict:
        return {"id": qid, "lang": "zh", "answerable": True, "refused": False, "refusal_reason": None,
                "relevance": 0.05, "grade": 0.5, "question": "训练过程优化的例子里学习率是多少？",
                "sources": [{"text": guide.text}],
                "sentences": [{"text": c, "citations": [1], "supported": True, "score": 0.8, "claim": True}
                              for c in claims]}

    heading = guide.section[0]  # "领域典型问题/面试题库"
    rows = [row("apart", "Adam 的学习率是 0.01。"), row("heading", heading),
            row("stated", "举例中学习率是 0.01，批量大小是 64。")]
    again = recheck(chain, rows)
    assert again[0]["sentences"][0]["supported"] is False and again[0]["sentences"][0]["rechecked"]
    assert again[1]["sentences"] == [], heading  # no longer shown
    assert again[2]["sentences"][0]["supported"] and "rechecked" not in again[2]["sentences"][0]
    assert replay(again, 0.02, 0.3, 0.0)["refused_answerable"] == ["apart:unsupported", "heading:unsupported"]


def test_replay_gives_a_refused_question_its_second_look_over_focused_passages():
    from rag.calibrate import replay

    def row(qid, answerable, reason, grade, supported=True):
        return {"id": qid, "answerable": answerable, "lang": "en", "refused": reason is not None,
                "refusal_reason": reason, "relevance": 0.05, "grade": grade,
                "sentences": [{"claim": True, "supported": supported}]}

    first = [row("a", True, None, 0.8), row("b", True, None, 0.2), row("c", True, "unsupported", 0.5),
             row("u", False, None, 0.25), row("v", False, "unknown", None), row("w", False, None, 0.1)]
    second = [row("b", True, None, 0.4), row("c", True, "unsupported", 0.5), row("u", False, None, 0.35),
              row("a", True, "model", 0.1)]  # a first look that answered is never looked at again
    plain = replay(first, 0.02, 0.3)
    assert plain["refused_answerable"] == ["b:grade", "c:unsupported"] and "second_look_answered" not in plain
    looked = replay(first, 0.02, 0.3, second=second)
    assert looked["refused_answerable"] == ["c:unsupported"] and looked["answered_unanswerable"] == ["u"]
    assert looked["second_look_answered"] == ["b", "u"] and looked["second_look_missing"] == ["w"]
    assert looked["claims"] == 3 and looked["supported"] == 1.0
    assert replay(first, 0.02, 0.36, second=second)["answered_unanswerable"] == []  # graded again, at the same bar
    higher = replay(first, 0.02, 0.3, second=second, second_grade=0.38)  # or a higher one for focused passages
    assert higher["answered_unanswerable"] == [] and higher["second_look_answered"] == ["b"]
    assert higher["second_grade"] == 0.38


def test_gold_whereabouts_says_whether_the_answer_was_shown_retrieved_or_missing(session_retriever, tmp_path):
    """``--replay --questions``: where each refused answerable question's gold text was."""
    from rag.calibrate import gold_whereabouts
    from rag.chain import AnswerChain
    from rag.citations import CitationChecker

    retriever = session_retriever
    chain = AnswerChain(retriever, object(), retriever.settings, [],
                        CitationChecker(retriever.embedder, retriever.all_vectors()))
    lora = next(c for c in retriever.index.chunks if "低秩" in c.text)
    other = next(c for c in retriever.index.chunks if "低秩" not in c.text and "LoRA" not in c.text)
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"id": i, "question": f"问题{i}", "lang": "zh", "gold": ["低秩"]}) + "\n"
                                 for i in ("shown", "retrieved", "missing")), encoding="utf-8")

    def row(qid, sources):
        return {"id": qid, "sources": [{"text": c.text, "shown": c.text if shown else None} for c, shown in sources]}

    rows = [row("shown", [(other, True), (lora, True)]), row("retrieved", [(other, True), (lora, False)]),
            row("missing", [(other, True)])]
    assert gold_whereabouts(chain, rows, str(questions)) == {
        "shown": ["shown"], "retrieved": ["retrieved"], "missing": ["missing"]}
    with pytest.raises(RagError, match="none of the question files"):
        gold_whereabouts(chain, [row("elsewhere", [])], str(questions))


@pytest.mark.slow
def test_grade_cache_grades_dumped_rows_live_in_three_cache_states(session_index):
    """The real 0.5B as grader over two held-out 13 rows (graded by the 1.5B when dumped)."""
    from rag.calibrate import grade_cache, grade_cache_summary, load_answers
    from rag.grade import PassageGrader
    from rag.service import build_chain

    chain = build_chain(session_index.settings.with_(llm_model="qwen2.5-coder-0.5b", temperature=0.0))
    chain.grader = PassageGrader(chain.chat_model, 0.3)
    answers = load_answers(str(PROJECT_ROOT / "docs" / "answers-heldout13-1.5b.jsonl"))
    rows = grade_cache(chain, answers, 2, seed=1)
    assert len(rows) == 2
    dumped = {a["id"]: a["grade"] for a in answers}
    for r in rows:
        assert r["dump"] == dumped[r["id"]] and 0.15 <= r["dump"] <= 0.6
        assert all(0.0 <= r[k] <= 1.0 for k in ("after_other", "again", "fresh"))
    summary = grade_cache_summary(rows, 0.3)
    assert summary["rows"] == rows and set(summary["verdict_differs"]) <= {r["id"] for r in rows}
