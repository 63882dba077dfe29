"""Retrieval: RRF, the Retriever's modes (fake embedder), query rewriting, and the real model."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import EXTRA_DOC, TINY_DOCS, FakeEmbedder, write_docs
from rag.config import Settings
from rag.index import embedding_text, load_index, update_index
from rag.index.store import Index
from rag.lang import detect, has_cjk
from rag.lexical import tokenize
from rag.retrieve import Retriever, lexical_queries, rrf
from rag.rewrite import GLOSSARY, GlossaryRewriter, expand

# --- rrf -------------------------------------------------------------------------------


def test_rrf_hand_computed():
    # k = 60: item 1 -> 1/61 + 1/62; item 3 -> 1/63 + 1/61; item 2 -> 1/62
    fused = rrf([[1, 2, 3], [3, 1]], k=60)
    assert [item for item, _ in fused] == [1, 3, 2]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1][1] == pytest.approx(1 / 61 + 1 / 63)
    assert fused[2][1] == pytest.approx(1 / 62)


def test_rrf_docstring_and_ties():
    assert rrf([[1, 2, 3], [3, 1]], k=0) == [(1, 1.5), (3, 1 / 3 + 1), (2, 0.5)]
    assert rrf([[2], [1]], k=60) == [(1, 1 / 61), (2, 1 / 61)]  # ties broken by id
    assert rrf([], k=60) == [] and rrf([[]], k=60) == []


# --- Retriever over a tiny index built with a fake embedder ------------------------------

class SpyLexical:
    """Wraps the BM25 index and records the token lists it is searched with."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[list[str]] = []

    def __len__(self):
        return len(self.inner)

    def search(self, tokens, k):
        self.calls.append(list(tokens))
        return self.inner.search(tokens, k)


@pytest.fixture(scope="module")
def fake_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("fake-index")
    corpus = write_docs(root / "corpus", {**TINY_DOCS, EXTRA_DOC[0]: EXTRA_DOC[1]})
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", cache_dir=root / "cache")
    embedder = FakeEmbedder()
    update_index(settings, embedder=embedder)
    return settings, embedder, load_index(settings, embedder)


def make_retriever(fake_index, mode: str, rewriters=None, **changes):
    settings, _, index = fake_index
    embedder = FakeEmbedder()  # fresh call records, same id and vectors
    spy = SpyLexical(index.lexical)
    spied = Index(path=index.path, manifest=index.manifest, chunks=index.chunks, dense=index.dense, lexical=spy)
    retriever = Retriever(spied, embedder, settings.with_(retrieval=mode, **changes),
                          [GlossaryRewriter()] if rewriters is None else rewriters)
    return retriever, embedder, spy


def test_fake_index_shape(fake_index):
    _, _, index = fake_index
    assert len(index.chunks) == 5
    assert index.dense.ntotal == 5 and len(index.lexical) == 5


def test_dense_mode_scores_are_cosines(fake_index):
    retriever, embedder, spy = make_retriever(fake_index, "dense")
    question = "什么是模型幻觉？"
    result = retriever(question, k=5)
    assert spy.calls == []  # no BM25 in dense mode
    assert embedder.query_calls == [[question]]
    assert set(result.timings) >= {"rewrite", "dense", "retrieve"} and "lexical" not in result.timings
    q = embedder.vector(question)
    expected = sorted(((float(q @ embedder.vector(embedding_text(c))), c.id) for c in retriever.index.chunks),
                      key=lambda sc: -sc[0])
    assert [h.chunk.id for h in result.hits] == [cid for _, cid in expected]
    for hit, (cosine, _) in zip(result.hits, expected):
        assert hit.dense_score == pytest.approx(cosine, abs=1e-5)
        assert hit.lexical_score is None
    assert result.hits[0].chunk.section == ("什么是幻觉？",)
    assert [h.score for h in result.hits] == [pytest.approx(1 / (60 + r)) for r in range(1, 6)]


def test_lexical_mode_uses_bm25_only(fake_index):
    retriever, embedder, spy = make_retriever(fake_index, "lexical")
    result = retriever("如何缓解幻觉", k=3)
    assert embedder.query_calls == []  # no embedding in lexical mode
    assert spy.calls == [tokenize("如何缓解幻觉")]
    found = spy.inner.search(tokenize("如何缓解幻觉"), 50)
    assert [h.chunk for h in result.hits] == [retriever.index.chunks[i] for i, _ in found[:3]]
    for hit, (_, score) in zip(result.hits, found):
        assert hit.lexical_score == pytest.approx(score)
        assert hit.dense_score is None
    assert result.hits[0].chunk.section == ("如何缓解幻觉？",)
    assert "dense" not in result.timings and "lexical" in result.timings


def test_hybrid_is_rrf_of_dense_and_lexical(fake_index):
    question = "多头注意力是什么"
    dense, _, _ = make_retriever(fake_index, "dense")
    lexical, _, _ = make_retriever(fake_index, "lexical")
    hybrid, embedder, spy = make_retriever(fake_index, "hybrid")
    d = dense(question, k=5).hits
    lx = lexical(question, k=5).hits
    h = hybrid(question, k=5).hits
    chunks = hybrid.index.chunks
    row = {c.id: i for i, c in enumerate(chunks)}
    expected = rrf([[row[x.chunk.id] for x in d], [row[x.chunk.id] for x in lx]], k=60)
    assert [(row[x.chunk.id], x.score) for x in h] == [(i, pytest.approx(s)) for i, s in expected]
    top = h[0]
    assert top.chunk.section == ("多头注意力",)
    assert top.dense_score is not None and top.lexical_score is not None
    assert len(spy.calls) == 1 and len(embedder.query_calls) == 1


def test_english_question_searches_bm25_for_its_names_only(fake_index):
    retriever, embedder, spy = make_retriever(fake_index, "hybrid")
    result = retriever("what does a Transformer rely on", k=3)
    assert result.queries == ["what does a Transformer rely on"]  # the glossary keeps "Transformer" as is
    assert spy.calls == [["transformer"]]  # the rest is English prose: only the name goes to BM25
    assert embedder.query_calls == [["what does a Transformer rely on"]]
    assert "Transformer" in result.hits[0].chunk.text and result.hits[0].lexical_score is not None


def test_english_question_without_names_skips_bm25(fake_index):
    retriever, _, spy = make_retriever(fake_index, "hybrid", rewriters=[])
    result = retriever("how do large models make things up", k=3)
    assert spy.calls == []
    assert all(h.lexical_score is None for h in result.hits)


@pytest.mark.parametrize("queries, expected", [
    (["What does RAG stand for?"], [["rag"]]),
    (["How do LLMs use GPT-4 on a GPU?"], [["gpt-4", "gpu"]]),  # "LLMs" is the glossary's 大模型
    (["What is the capital of Australia?", "澳大利亚的首都是什么？"], [["australia"], tokenize("澳大利亚的首都是什么？")]),
    (["how does it work"], []),
])
def test_lexical_queries(queries, expected):
    assert lexical_queries(queries) == expected


def test_english_question_runs_bm25_on_its_chinese_rewrite_only(fake_index):
    retriever, embedder, spy = make_retriever(fake_index, "hybrid")
    result = retriever("what is hallucination", k=3)
    assert result.queries == ["what is hallucination", "what is 幻觉"]
    assert spy.calls == [tokenize("what is 幻觉")] == [["幻觉"]]
    assert embedder.query_calls == [["what is hallucination", "what is 幻觉"]]
    assert "幻觉" in result.hits[0].chunk.text


def test_chinese_question_runs_bm25_once(fake_index):
    retriever, _, spy = make_retriever(fake_index, "hybrid")
    result = retriever("什么是量化？")
    assert result.queries == ["什么是量化？"]
    assert spy.calls == [tokenize("什么是量化？")]
    assert len(result.hits) == 5  # settings.top_k
    assert "量化" in result.hits[0].chunk.text


def test_k_and_explicit_queries(fake_index):
    retriever, embedder, spy = make_retriever(fake_index, "hybrid", top_k=2, candidates=3)
    assert len(retriever("注意力").hits) == 2
    result = retriever("ignored", k=1, queries=["量化", "幻觉"])
    assert result.queries == ["量化", "幻觉"] and len(result.hits) == 1
    assert "rewrite" not in result.timings
    assert embedder.query_calls[-1] == ["量化", "幻觉"]
    assert spy.calls[-2:] == [tokenize("量化"), tokenize("幻觉")]


def test_retriever_refuses_an_index_from_another_embedder(fake_index):
    settings, _, index = fake_index
    with pytest.raises(ValueError, match="fake:other"):
        Retriever(index, FakeEmbedder(id="fake:other"), settings)


def test_empty_index_gives_no_hits(tmp_path):
    (tmp_path / "corpus").mkdir()
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", cache_dir=tmp_path / "c")
    embedder = FakeEmbedder()
    update_index(settings, embedder=embedder)
    index = load_index(settings, embedder)
    assert index.chunks == [] and index.dense.ntotal == 0
    assert Retriever(index, embedder, settings)("什么是幻觉").hits == []


# --- rewriting and language ----------------------------------------------------------------

@pytest.mark.parametrize("question, expected", [
    ("How do LLMs hallucinate?", ["How do 大模型 幻觉?"]),
    ("What is LLM fine-tuning?", ["What is 大模型 微调?"]),
    ("Explain LARGE LANGUAGE MODEL pretraining", ["Explain 大语言模型 预训练"]),
    ("what is knowledge distillation", ["what is 知识蒸馏"]),  # longest term wins
    ("what is LoRA", []),  # nothing to translate
    ("the trainer retrains", []),  # no match inside longer words
    ("什么是 fine-tuning？", []),  # Chinese questions are not rewritten
    ("", []),
])
def test_glossary_rewriter(question, expected):
    assert GlossaryRewriter().rewrite(question) == expected


def test_glossary_values_are_what_the_corpus_writes():
    assert GLOSSARY["hallucination"] == "幻觉" and GLOSSARY["low-rank"] == "低秩"
    assert all(key == key.lower() for key in GLOSSARY)


class ListRewriter:
    def __init__(self, *queries):
        self.queries = list(queries)

    def rewrite(self, question):
        return list(self.queries)


def test_expand_keeps_order_and_dedupes():
    rewriters = [ListRewriter("a", "q", "b", "a"), ListRewriter("", "  ", "b", "c")]
    assert expand("q", rewriters) == ["q", "a", "b", "c"]
    assert expand("q", []) == ["q"]
    assert expand("How do LLMs hallucinate?", [GlossaryRewriter(), GlossaryRewriter()]) == [
        "How do LLMs hallucinate?", "How do 大模型 幻觉?"]


@pytest.mark.parametrize("text, language", [
    ("什么是LoRA？", "zh"), ("what is LoRA", "en"), ("", "en"), ("LoRA 和 QLoRA 的区别", "zh"),
    ("What does 幻觉 mean in LLM output", "en"),
])
def test_detect(text, language):
    assert detect(text) == language


def test_has_cjk():
    assert has_cjk("what is 幻觉") and not has_cjk("what is LoRA?") and not has_cjk("")


# --- the real model on the real corpus ------------------------------------------------

def test_real_english_lora_question(session_retriever):
    result = session_retriever("what is LoRA")
    assert result.queries == ["what is LoRA"]
    assert "LoRA 模型是一种低秩适应方法" in result.hits[0].chunk.text
    assert result.hits[0].lexical_score is not None  # the name "LoRA" went to BM25
    assert len(result.hits) == 5
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)


def test_real_name_mentioned_once_is_found(session_retriever):
    # "RAG" occurs once in the corpus, in a list of terms; the embedding of the
    # question alone ranks it nowhere near the top five.
    result = session_retriever("What does RAG stand for in the large-model field?")
    top = [h for h in result.hits[:3] if "RAG (检索增强生成)" in h.chunk.text]
    assert top and top[0].lexical_score is not None


def test_real_chinese_hallucination_question(session_retriever):
    result = session_retriever("什么是模型幻觉？")
    top3 = result.hits[:3]
    assert any("幻觉" in h.chunk.text and any("幻觉" in s for s in h.chunk.section) for h in top3)
    assert top3[0].dense_score is not None and top3[0].lexical_score is not None


def test_real_rewritten_english_question(session_retriever):
    result = session_retriever("How can hallucinations in large language models be reduced?")
    assert len(result.queries) == 2 and has_cjk(result.queries[1])
    assert any("幻觉" in h.chunk.text for h in result.hits[:3])


def test_service_search(session_index):
    from rag.service import search

    result = search("什么是LoRA", session_index.settings, k=3)
    assert len(result.hits) == 3
    assert "LoRA" in result.hits[0].chunk.text
    assert "load" in result.timings and result.timings["load"] >= 0
    assert np.isfinite([h.score for h in result.hits]).all()


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_real_modes(session_retriever, session_index, mode):
    from helpers import CountingEmbedder

    embedder = CountingEmbedder(session_retriever.embedder)
    retriever = Retriever(session_retriever.index, embedder, session_index.settings.with_(retrieval=mode))
    result = retriever("LoRA 低秩适应的原理是什么？", k=3)
    assert "LoRA 模型是一种低秩适应方法" in result.hits[0].chunk.text
    dense_used = mode in ("dense", "hybrid")
    lexical_used = mode in ("lexical", "hybrid")
    assert bool(embedder.queries) == dense_used
    assert all((h.dense_score is not None) == dense_used for h in result.hits)
    assert all((h.lexical_score is not None) == lexical_used for h in result.hits[:1])
