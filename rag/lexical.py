"""BM25 over jieba tokens, saved as plain JSON.

Chinese has no spaces, so text is cut with jieba's search mode (which also
emits the short words inside long ones: 大模型 -> 模型, 大模型); ASCII words
are lower-cased; punctuation and a small list of question words are dropped.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import Counter
from pathlib import Path

FORMAT = "bm25/1"

_WORD = re.compile(r"[^\W_]", re.UNICODE)  # a letter, digit or CJK character
# Words that say "this is a question" rather than what it is about.
STOPWORDS = frozenset(
    """的 了 是 在 和 与 及 或 等 吗 呢 吧 啊 什么 怎么 怎样 如何 为什么 哪些 哪个 一个 一些 这个 那个 这些 那些
    有 有哪些 请 简述 解释 说明 介绍 描述 我们 你 我 它 其 之 对 中 把 被 会 能 可以 进行 通过 以及 主要 什么样
    a an the of to in on for and or is are was were be been what which how why when who whom does do did
    can could should would with by as at from that this these those it its into about explain describe
    please tell me you your i we they""".split()
)

_jieba_lock = threading.Lock()
_jieba = None


def _cutter():
    global _jieba
    with _jieba_lock:
        if _jieba is None:
            import logging

            import jieba

            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _jieba = jieba
    return _jieba


def tokenize(text: str) -> list[str]:
    """Search-mode jieba tokens, lower-cased, without punctuation or stopwords.

    >>> tokenize("什么是 LoRA 模型？")
    ['lora', '模型']
    """
    tokens = []
    for token in _cutter().lcut_for_search(text.lower()):
        token = token.strip()
        if token and _WORD.search(token) and token not in STOPWORDS:
            tokens.append(token)
    return tokens


class BM25:
    """Okapi BM25 with the usual k1 = 1.5, b = 0.75."""

    def __init__(self, postings: dict[str, dict[int, int]], lengths: list[int], k1: float = 1.5, b: float = 0.75):
        self.postings = postings
        self.lengths = lengths
        self.k1, self.b = k1, b
        n = len(lengths)
        self.avg_len = (sum(lengths) / n) if n else 0.0
        self.idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in postings.items()}

    @classmethod
    def build(cls, token_lists: list[list[str]]) -> BM25:
        postings: dict[str, dict[int, int]] = {}
        for i, tokens in enumerate(token_lists):
            for term, tf in Counter(tokens).items():
                postings.setdefault(term, {})[i] = tf
        return cls(postings, [len(t) for t in token_lists])

    def __len__(self) -> int:
        return len(self.lengths)

    def search(self, query_tokens: list[str], k: int) -> list[tuple[int, float]]:
        """(row, score) pairs, best first; rows with no query term are left out."""
        scores: dict[int, float] = {}
        for term in set(query_tokens):
            postings = self.postings.get(term)
            if not postings:
                continue
            idf = self.idf[term]
            for row, tf in postings.items():
                norm = self.k1 * (1 - self.b + self.b * self.lengths[row] / (self.avg_len or 1))
                scores[row] = scores.get(row, 0.0) + idf * tf * (self.k1 + 1) / (tf + norm)
        return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]

    def save(self, path: Path) -> None:
        data = {
            "format": FORMAT,
            "k1": self.k1,
            "b": self.b,
            "lengths": self.lengths,
            "postings": {t: [[r, tf] for r, tf in p.items()] for t, p in self.postings.items()},
        }
        Path(path).write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> BM25:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown lexical index format {data.get('format')!r}")
        postings = {t: {r: tf for r, tf in p} for t, p in data["postings"].items()}
        return cls(postings, data["lengths"], data["k1"], data["b"])
