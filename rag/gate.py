"""Refusal before generation: is anything retrieved actually about the question?

The signal is ``Retrieval.relevance``: how far the best passage's cosine
stands above the question's median cosine to every passage in the index.
A question the documents cover has a passage that stands out; "What is the
capital of Australia?" is about equally (dis)similar to everything. The
threshold is calibrated on the project's question set with
``python -m rag.calibrate`` (docs/EVAL.md records how).

Similarity cannot tell "How do I set up Azure AI Search?" from a question
about vector indexes in general, so a second, exact test looks at the names
the question asks about: when most of them appear nowhere in the knowledge
base, the documents cannot be about it (see ``rag.terms``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .terms import Vocabulary, question_names
from .types import Retrieval


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    relevance: float | None
    threshold: float
    unknown: list[str] = field(default_factory=list)  # the question's names the knowledge base never mentions

    @property
    def reason(self) -> str | None:
        """Why it refused: "unknown" (names never mentioned) or "gate" (nothing stands out)."""
        return None if self.passed else "unknown" if self.unknown else "gate"


class RelevanceGate:
    """``gate(retrieval, vocabulary) -> GateDecision``; a threshold of 0 turns the similarity test off."""

    def __init__(self, threshold: float):
        self.threshold = threshold

    def __call__(self, retrieval: Retrieval, vocabulary: Vocabulary | None = None) -> GateDecision:
        def decide(passed: bool, unknown: list[str] | None = None) -> GateDecision:
            return GateDecision(passed, retrieval.relevance, self.threshold, unknown or [])

        if not retrieval.hits:
            return decide(False)
        if vocabulary is not None:
            names = question_names(retrieval.question)
            unknown = vocabulary.unknown(names)
            # Most, not any: "LayerNorm rather than BatchNorm, as in CNNs?" is
            # still about LayerNorm when the documents never say "CNN".
            if 2 * len(unknown) > len(names):
                return decide(False, unknown)
        if retrieval.relevance is None or self.threshold <= 0:  # no dense signal (lexical-only mode)
            return decide(True)
        return decide(retrieval.relevance >= self.threshold)


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
