"""Refusal before generation: is anything retrieved actually about the question?

The signal is ``Retrieval.relevance``: how far the best passage's cosine
stands above the question's median cosine to every passage in the index.
A question the documents cover has a passage that stands out; "What is the
capital of Australia?" is about equally (dis)similar to everything. The
threshold is calibrated on the project's question set with
``python -m rag.calibrate`` (docs/EVAL.md records how).
"""

from __future__ import annotations

from dataclasses import dataclass

from .types import Retrieval


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    relevance: float | None
    threshold: float


class RelevanceGate:
    """``gate(retrieval) -> GateDecision``; a threshold of 0 lets everything through."""

    def __init__(self, threshold: float):
        self.threshold = threshold

    def __call__(self, retrieval: Retrieval) -> GateDecision:
        if not retrieval.hits:
            return GateDecision(False, retrieval.relevance, self.threshold)
        if retrieval.relevance is None or self.threshold <= 0:  # no dense signal (lexical-only mode)
            return GateDecision(True, retrieval.relevance, self.threshold)
        return GateDecision(retrieval.relevance >= self.threshold, retrieval.relevance, self.threshold)


def closest_topics(retrieval: Retrieval, limit: int = 3) -> list[str]:
    """The headings of the nearest passages, for "here is what it does cover"."""
    topics: list[str] = []
    for hit in retrieval.hits:
        label = hit.chunk.section[-1] if hit.chunk.section else hit.chunk.title
        if label not in topics:
            topics.append(label)
        if len(topics) == limit:
            break
    return topics
