"""The entry points, run as real subprocesses."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from helpers import TINY_DOCS, run_module, write_docs
from rag.index.store import current_build

LORA = "LoRA 模型是一种低秩适应方法"


def index_args(session_index) -> list[str]:
    return ["--corpus", str(session_index.corpus_dir), "--index", str(session_index.index_dir)]


def cached_vectors(index_dir) -> int:
    with sqlite3.connect(index_dir / "embeddings.sqlite") as db:
        return db.execute("SELECT count(*) FROM vectors").fetchone()[0]


def test_ask_no_llm_prints_passages(session_index):
    before = (session_index.index_dir / "CURRENT").read_text()
    proc = run_module("rag.ask", "--no-llm", *index_args(session_index), "what is LoRA")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    blocks = out.split("\n\n[")
    assert len(blocks) == 5  # five passages
    first = blocks[0]
    header = first.splitlines()[0]
    assert header.startswith("[1] ") and " › " in header and "(score " in header
    assert "LoRA" in header.split(" › ", 1)[1]  # the section part of "title › section"
    assert LORA in first
    assert all(line.startswith("    ") for line in first.splitlines()[1:] if line)  # indented text
    assert (session_index.index_dir / "CURRENT").read_text() == before  # not rebuilt


def test_ask_json(session_index):
    proc = run_module("rag.ask", "--no-llm", "--json", "--k", "3", *index_args(session_index), "what", "is", "LoRA")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"question", "answer", "refused", "citations", "sources", "timings"}
    assert data["question"] == "what is LoRA"
    assert data["answer"] is None and data["refused"] is False and data["citations"] == []
    assert len(data["sources"]) == 3
    for n, source in enumerate(data["sources"], start=1):
        assert set(source) == {"n", "doc", "title", "section", "text", "score", "start", "end"}
        assert source["n"] == n
        corpus_text = (session_index.corpus_dir / source["doc"]).read_text(encoding="utf-8")
        assert corpus_text[source["start"]:source["end"]] == source["text"]
    assert LORA in data["sources"][0]["text"]
    assert "LoRA" in data["sources"][0]["section"]
    scores = [s["score"] for s in data["sources"]]
    assert scores == sorted(scores, reverse=True)
    assert {"load", "retrieve"} <= set(data["timings"])


def test_ask_builds_a_missing_index_first(tmp_path):
    corpus = write_docs(tmp_path / "corpus", TINY_DOCS)
    index = tmp_path / "index"
    proc = run_module("rag.ask", "--no-llm", "--json", "--corpus", str(corpus), "--index", str(index), "什么是量化？")
    assert proc.returncode == 0, proc.stderr
    assert (index / "CURRENT").exists() and current_build(index).is_dir()
    data = json.loads(proc.stdout)
    assert len(data["sources"]) == 3  # the whole tiny corpus
    assert "量化" in data["sources"][0]["text"] and data["sources"][0]["doc"] == "quant.txt"


def test_index_twice_second_is_up_to_date(tmp_path):
    corpus = write_docs(tmp_path / "corpus", TINY_DOCS)
    index = tmp_path / "index"
    args = ["--corpus", str(corpus), "--index", str(index), "--quiet"]
    first = run_module("rag.index", *args)
    assert first.returncode == 0, first.stderr
    assert "indexed 2 documents, 3 chunks" in first.stdout and "3 passages embedded" in first.stdout
    build = (index / "CURRENT").read_text()
    vectors = cached_vectors(index)
    second = run_module("rag.index", *args)
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout and "2 documents, 3 chunks" in second.stdout
    # nothing was embedded or rebuilt
    assert cached_vectors(index) == vectors == 3
    assert (index / "CURRENT").read_text() == build
    assert "embedded" not in second.stdout


def test_index_reports_skipped_files(tmp_path):
    corpus = write_docs(tmp_path / "corpus", TINY_DOCS)
    (corpus / "broken.docx").write_bytes(b"not a zip file at all")
    proc = run_module("rag.index", "--corpus", str(corpus), "--index", str(tmp_path / "index"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "skipped broken.docx: broken Word file" in proc.stderr
    assert "indexed 2 documents" in proc.stdout


@pytest.mark.parametrize("module", ["rag.index", "rag.eval"])
def test_bad_chunker_is_a_usage_error(tmp_path, module):
    extra = ["--qa", str(tmp_path / "qa.jsonl")] if module == "rag.eval" else []
    proc = run_module(module, "--chunker", "sentences", "--corpus", str(tmp_path), "--index", str(tmp_path / "i"),
                      *extra)
    assert proc.returncode == 2
    assert "unknown chunker 'sentences'" in proc.stderr and "structure, fixed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "i").exists()


def test_bad_env_setting_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_RETRIEVAL", "semantic")
    proc = run_module("rag.index", "--corpus", str(tmp_path), "--index", str(tmp_path / "i"))
    assert proc.returncode == 2 and "hybrid, dense, lexical" in proc.stderr


def test_corrupt_index_exits_1_with_rebuild_hint(tmp_path, session_index):
    shutil.copytree(session_index.corpus_dir, tmp_path / "corpus")
    shutil.copytree(session_index.index_dir, tmp_path / "index")
    dense = current_build(tmp_path / "index") / "dense.faiss"
    dense.write_bytes(dense.read_bytes()[:1000])
    proc = run_module("rag.ask", "--no-llm", "--corpus", str(tmp_path / "corpus"), "--index", str(tmp_path / "index"),
                      "what is LoRA")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and "python -m rag.index --full" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_eval_json(tmp_path, session_index):
    qa = tmp_path / "qa.jsonl"
    rows = [
        {"id": "t1", "question": "what is LoRA", "lang": "en", "answerable": True, "gold": [LORA]},
        {"id": "t2", "question": "什么是模型幻觉？", "lang": "zh", "answerable": True, "gold": ["模型幻觉是指"]},
        {"id": "t3", "question": "澳大利亚的首都是哪里？", "lang": "zh", "answerable": False, "gold": []},
    ]
    qa.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    proc = run_module("rag.eval", "--qa", str(qa), "--no-llm", "--json", *index_args(session_index))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert {"hit@1", "hit@3", "hit@5", "mrr@10", "n", "by_lang"} <= set(metrics)
    assert metrics["n"] == 2  # the unanswerable question is not scored
    assert set(metrics["by_lang"]) == {"en", "zh"}
    assert metrics["by_lang"]["en"]["n"] == metrics["by_lang"]["zh"]["n"] == 1
    assert metrics["by_lang"]["en"]["hit@1"] == 1.0  # LoRA comes first
    assert metrics["hit@5"] == 1.0
    assert 0.5 < metrics["mrr@10"] <= 1.0
    assert metrics["hit@1"] <= metrics["hit@3"] <= metrics["hit@5"]
    assert metrics["settings"]["chunker"] == "structure"


@pytest.mark.slow
def test_eval_retrieval_only_says_whether_the_gold_reached_the_prompt(tmp_path, session_index, monkeypatch):
    """The full retrieval path with the real 0.5B model: the passage budget decides what the model sees."""
    qa = tmp_path / "qa.jsonl"
    rows = [{"id": "t1", "question": "what is LoRA", "lang": "en", "answerable": True, "gold": [LORA]},
            {"id": "t2", "question": "什么是模型幻觉？", "lang": "zh", "answerable": True, "gold": ["模型幻觉是指"]}]
    qa.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")

    def in_prompt(budget: int) -> float:
        monkeypatch.setenv("RAG_CONTEXT_TOKENS", str(budget))
        proc = run_module("rag.eval", "--qa", str(qa), "--retrieval-only", "--json", "--model", "qwen2.5-coder-0.5b",
                          *index_args(session_index))
        assert proc.returncode == 0, proc.stderr
        metrics = json.loads(proc.stdout)
        assert metrics["hit@5"] == 1.0
        return metrics["in_prompt"]

    assert in_prompt(600) == 1.0
    # A budget of one token still shows the first passage, cut to its first
    # sentences: LoRA's definition comes later in its passage than that.
    assert in_prompt(1) < 1.0


@pytest.mark.slow
def test_eval_answers_with_the_real_model_and_dumps_every_answer(tmp_path, session_index):
    """``rag.eval`` end to end: the 0.5B answers from the passages the retrieval metrics scored."""
    qa, dump = tmp_path / "qa.jsonl", tmp_path / "answers.jsonl"
    rows = [{"id": "t1", "question": "什么是 LoRA？", "lang": "zh", "answerable": True, "gold": [LORA]},
            {"id": "t2", "question": "澳大利亚的首都是哪里？", "lang": "zh", "answerable": False, "gold": []}]
    qa.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    proc = run_module("rag.eval", "--qa", str(qa), "--json", "--dump", str(dump), "--model", "qwen2.5-coder-0.5b",
                      *index_args(session_index))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert metrics["mode"] == "answers" and metrics["hit@1"] == 1.0 and metrics["in_prompt"] == 1.0
    assert metrics["answers"]["refusal_recall"] == 1.0
    answers = {r["id"]: r for r in map(json.loads, dump.read_text(encoding="utf-8").splitlines())}
    assert set(answers) == {"t1", "t2"}
    assert answers["t2"]["refused"] and answers["t2"]["answer"] == "知识库中没有找到相关内容。"
    lora = answers["t1"]
    assert len(lora["sources"]) == 5 and LORA in lora["sources"][0]["text"]  # top_k of the scored ranking
    assert not lora["refused"] and lora["citations"] and lora["sentences"]


@pytest.mark.slow
def test_bench_reports_ttft_speed_and_first_sentence_by_language(session_index, monkeypatch):
    """``rag.bench`` runs (it is how BENCHMARKS.md is made); its figures are not judged here."""
    monkeypatch.setenv("RAG_CORPUS", str(session_index.corpus_dir))
    monkeypatch.setenv("RAG_INDEX", str(session_index.index_dir))
    # The timeout guards against a hang, not speed (figures are for rag.bench itself): on a
    # slow or shared runner two questions and a refusal have taken over 300 s.
    proc = run_module("rag.bench", "--questions", "2", "--refusals", "1", "--skip-cli", "--json",
                      "--model", "qwen2.5-coder-0.5b", timeout=900)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    rows, summary = result["chain_vs_raw"]["rows"], result["chain_vs_raw"]["summary"]
    assert [r["language"] for r in rows] == ["en", "zh"]  # "What is LoRA?", "什么是模型幻觉？"
    for row in rows:
        assert row["prompt_tokens"] > 100 and row["raw_ttft"] > 0 and row["chain_ttft"] > 0
        assert row["chain_ttft_total"] >= row["chain_ttft"]
    answered = [r for r in rows if not r["refused"]]
    assert answered and all(r["chain_first_sentence_total"] >= r["chain_ttft_total"] for r in answered)
    assert {f"chain_first_sentence_{r['language']}" for r in answered} <= set(summary)
    (refusal,) = result["refusals"]["rows"]  # an out-of-scope question, first look only and with the second
    assert refusal["off"]["seconds"] > 0 and refusal["refusal"]["seconds"] > 0
    assert refusal["off"]["second_look"] is None


def test_eval_bad_question_file_exits_1(tmp_path, session_index):
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"id": "x"}\n', encoding="utf-8")
    proc = run_module("rag.eval", "--qa", str(qa), "--no-llm", *index_args(session_index))
    assert proc.returncode == 1 and "qa.jsonl:1: not a question line" in proc.stderr
