"""Tokenising and BM25."""

from __future__ import annotations

import json
import math

import pytest

from rag.lexical import BM25, STOPWORDS, tokenize


@pytest.mark.parametrize("text, expected", [
    ("什么是 LoRA 模型？", ["lora", "模型"]),
    ("What is the LoRA Adapter?", ["lora", "adapter"]),
    ("如何缓解模型幻觉", ["缓解", "模型", "幻觉"]),
    ("GPT-4 和 BERT 有什么区别", ["gpt", "4", "bert", "区别"]),
    ("。，！？……", []),
    ("", []),
])
def test_tokenize_examples(text, expected):
    assert tokenize(text) == expected


def test_tokenize_drops_stopwords_and_lowercases():
    tokens = tokenize("请简述什么是 Transformer 的 Self Attention？为什么 it is important")
    assert "transformer" in tokens and "self" in tokens and "attention" in tokens
    assert all(t == t.lower() for t in tokens)
    assert not set(tokens) & STOPWORDS
    assert "请" not in tokens and "什么" not in tokens and "is" not in tokens and "?" not in tokens


def test_tokenize_search_mode_emits_words_inside_long_words():
    # search mode: the long word and the short words inside it
    assert tokenize("自然语言处理") == ["自然", "语言", "自然语言", "处理"]


def test_tokenize_drops_underscore_punctuation():
    assert "_" not in tokenize("hidden_size = config.hidden_size")


# Three documents, worked by hand (k1 = 1.5, b = 0.75):
#   n = 3, lengths 2, 3, 1, avgdl = 2
#   idf(t) = ln(1 + (n - df + 0.5) / (df + 0.5))
#   idf(lora) = ln(1 + 2.5/1.5) = ln(8/3) ~ 0.9808      (df 1)
#   idf(模型) = ln(1 + 1.5/2.5) = ln(1.6) ~ 0.4700       (df 2)
#   doc 0: len 2 -> K = 1.5 * (0.25 + 0.75 * 2/2) = 1.5
#   doc 1: len 3 -> K = 1.5 * (0.25 + 0.75 * 3/2) = 2.0625
#   score = idf * tf * 2.5 / (tf + K)
#   query [模型]:       doc0 = ln1.6 * 2.5/2.5 = 0.4700;  doc1 = ln1.6 * 5/4.0625 = 0.5785 -> doc1 first
#   query [lora, 模型]: doc0 = ln(8/3) + ln1.6 = 1.4508;  doc1 = 0.5785          -> doc0 first
DOCS = [["lora", "模型"], ["模型", "训练", "模型"], ["幻觉"]]


def test_bm25_worked_example():
    bm25 = BM25.build(DOCS)
    assert len(bm25) == 3 and bm25.avg_len == 2
    assert bm25.idf["lora"] == pytest.approx(math.log(8 / 3))
    assert bm25.idf["模型"] == pytest.approx(math.log(1.6))

    ranked = bm25.search(["模型"], k=10)
    assert [row for row, _ in ranked] == [1, 0]  # doc 2 has no query term and is left out
    assert ranked[0][1] == pytest.approx(math.log(1.6) * 5 / 4.0625)
    assert ranked[1][1] == pytest.approx(math.log(1.6))

    ranked = bm25.search(["lora", "模型"], k=10)
    assert [row for row, _ in ranked] == [0, 1]
    assert ranked[0][1] == pytest.approx(math.log(8 / 3) + math.log(1.6))

    assert bm25.search(["lora", "模型"], k=1) == ranked[:1]
    assert bm25.search(["unknown"], k=5) == []
    assert bm25.search([], k=5) == []
    # a repeated query term counts once
    assert bm25.search(["模型", "模型"], k=10) == bm25.search(["模型"], k=10)


def test_bm25_ties_break_by_row():
    bm25 = BM25.build([["x"], ["x"], ["y"]])
    assert [row for row, _ in bm25.search(["x"], k=5)] == [0, 1]


def test_bm25_save_load_round_trip(tmp_path):
    token_lists = [tokenize(t) for t in [
        "LoRA 模型是一种低秩适应方法，旨在通过微调少量参数。",
        "模型幻觉是指生成看似合理但与事实不符的内容。",
        "量化把浮点权重转换为低比特整数。",
        "",
    ]]
    bm25 = BM25.build(token_lists)
    path = tmp_path / "lexical.json"
    bm25.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "bm25/1" and data["lengths"] == [len(t) for t in token_lists]
    loaded = BM25.load(path)
    assert loaded.postings == bm25.postings and loaded.lengths == bm25.lengths
    for query in ["LoRA 低秩", "模型", "幻觉 事实", "量化 模型 参数", "没有的词"]:
        tokens = tokenize(query)
        assert loaded.search(tokens, 10) == bm25.search(tokens, 10)


def test_bm25_load_rejects_other_formats(tmp_path):
    path = tmp_path / "lexical.json"
    path.write_text(json.dumps({"format": "bm25/999", "lengths": [], "postings": {}}), encoding="utf-8")
    with pytest.raises(ValueError, match="bm25/999"):
        BM25.load(path)


def test_bm25_empty_index():
    bm25 = BM25.build([])
    assert len(bm25) == 0 and bm25.search(["x"], 5) == []
