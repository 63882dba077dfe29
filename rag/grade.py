"""Refusal before the answer, by reading: do the passages state the answer?

The relevance gate (``rag.gate``) compares vectors. It cannot tell a question
the passages answer from one they are merely near: "What is catastrophic
forgetting?" retrieves passages on fine-tuning and overfitting, and "How do I
fix a flat tire?" retrieves a recipe for training a model that stands out just
enough. Given those passages, the small model writes an answer from them
anyway, and every sentence of it is "supported".

So before it answers, the answer model reads the passages it is about to be
given and is asked whether they state the answer (the retrieval evaluator of
Corrective RAG, Yan et al. 2024). The score is its probability of "yes"
against "no" (``rag.llm.yes_probability``), and the threshold is calibrated
per model on the project's questions (``python -m rag.calibrate --grade``,
docs/EVAL.md). The question shares its system prompt and passages with the
answer prompt, so llama.cpp reuses that prefix and the check costs about as
much as reading the question twice.
"""

from __future__ import annotations

from .llm import yes_probability
from .prompts import Passage, grade_messages


class PassageGrader:
    """``grader(question, passages) -> float``: 0..1, how surely the passages answer the question."""

    def __init__(self, chat_model, threshold: float):
        self.chat_model = chat_model
        self.threshold = threshold

    def __call__(self, question: str, passages: list[Passage]) -> float:
        return yes_probability(self.chat_model, grade_messages(question, passages))
