"""Hybrid retrieval: dense (FAISS) + lexical (BM25), fused by reciprocal rank.

Every query variant (the question and its rewrites) is run through each
retriever; all the ranked lists are fused with RRF, score = Σ 1 / (k + rank).
RRF needs no score calibration between cosine and BM25, which is why it is
the usual choice for hybrid search.
"""

from __future__ import annotations

import time

import numpy as np

from .config import Settings
from .embeddings import Embedder
from .index import Index
from .lang import has_cjk
from .lexical import tokenize
from .rewrite import GLOSSARY, Rewriter, expand
from .terms import Vocabulary, question_names
from .types import Hit, Retrieval


def rrf(rankings: list[list[int]], k: int = 60) -> list[tuple[int, float]]:
    """Fuse ranked lists of ids; best first, ties broken by id.

    >>> rrf([[1, 2, 3], [3, 1]], k=0)
    [(1, 1.5), (3, 1.3333333333333333), (2, 0.5)]
    """
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def lexical_queries(queries: list[str]) -> list[list[str]]:
    """What BM25 searches for: each Chinese query (the question or a rewrite)
    whole, and for an English question only the names it asks about.

    The corpus is Chinese, so English prose words match only code blocks; but
    names such as "RAG" or "PyTorch" are written the same in both languages,
    and a name the corpus mentions once is what BM25 finds and embeddings miss.
    Names the glossary puts into Chinese ("LLM" -> 大模型) are left to its rewrite.

    >>> lexical_queries(["What does RAG stand for?", "RAG 代表什么？"])
    [['rag'], ['rag', '代表']]
    """
    searches = []
    for query in queries:
        if has_cjk(query):
            searches.append(tokenize(query))
        elif names := [n.lower() for n in question_names(query) if not has_cjk(GLOSSARY.get(n.lower(), ""))]:
            searches.append(names)
    return searches


class Retriever:
    """``retriever(question) -> Retrieval``; the mode is fixed when it is built.

    ``settings.retrieval`` picks "hybrid", "dense" or "lexical".
    """

    def __init__(self, index: Index, embedder: Embedder, settings: Settings, rewriters: list[Rewriter] | None = None):
        if index.manifest.embedder.get("id") != embedder.id:
            raise ValueError(f"index embedder {index.manifest.embedder.get('id')!r} != {embedder.id!r}")
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.rewriters = list(rewriters or [])
        self.use_dense = settings.retrieval in ("hybrid", "dense")
        self.use_lexical = settings.retrieval in ("hybrid", "lexical")
        self._all: np.ndarray | None = None
        self._vocabulary: Vocabulary | None = None

    def reload(self, index: Index) -> None:
        """Search ``index`` from now on (a rebuild replaced the old one)."""
        self.index = index
        self._all = self._vocabulary = None

    def all_vectors(self) -> np.ndarray:
        """Every passage vector in the index (a few hundred rows: cheap to hold)."""
        if self._all is None:
            self._all = self.index.dense.reconstruct_n(0, self.index.dense.ntotal)
        return self._all

    def vocabulary(self) -> Vocabulary:
        """The names and numbers the indexed passages mention."""
        if self._vocabulary is None:
            self._vocabulary = Vocabulary(c.text for c in self.index.chunks)
        return self._vocabulary

    def vectors(self, hits: list[Hit]) -> np.ndarray:
        """The stored passage vectors of ``hits`` (no re-embedding)."""
        if not hits:
            return np.zeros((0, self.index.dense.d), dtype=np.float32)
        return np.stack([self.index.dense.reconstruct(int(h.row)) for h in hits])

    def __call__(self, question: str, k: int | None = None, queries: list[str] | None = None) -> Retrieval:
        k = k or self.settings.top_k
        timings: dict[str, float] = {}
        started = time.perf_counter()
        if queries is None:
            queries = expand(question, self.rewriters)
            timings["rewrite"] = time.perf_counter() - started
        n = min(self.settings.candidates, len(self.index.chunks))
        rankings: list[list[int]] = []
        dense_best: dict[int, float] = {}
        lexical_best: dict[int, float] = {}
        relevance = None
        if n and self.use_dense:
            t = time.perf_counter()
            vectors = self.embedder.embed_queries(queries)
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            scores, rows = self.index.dense.search(vectors, n)
            background = np.median(vectors @ self.all_vectors().T, axis=1)
            relevance = float(np.max(scores[:, 0] - background))
            for score_row, id_row in zip(scores, rows):
                ranking = [int(i) for i in id_row if i >= 0]
                rankings.append(ranking)
                for i, s in zip(ranking, score_row):
                    dense_best[i] = max(dense_best.get(i, -1.0), float(s))
            timings["dense"] = time.perf_counter() - t
        if n and self.use_lexical:
            t = time.perf_counter()
            for tokens in lexical_queries(queries):
                found = self.index.lexical.search(tokens, n)
                rankings.append([i for i, _ in found])
                for i, s in found:
                    lexical_best[i] = max(lexical_best.get(i, 0.0), s)
            timings["lexical"] = time.perf_counter() - t
        fused = rrf(rankings, self.settings.rrf_k)[:k]
        hits = [Hit(chunk=self.index.chunks[i], score=s, dense_score=dense_best.get(i),
                    lexical_score=lexical_best.get(i), row=i) for i, s in fused]
        timings["retrieve"] = time.perf_counter() - started
        return Retrieval(question=question, queries=queries, hits=hits, timings=timings, relevance=relevance)
