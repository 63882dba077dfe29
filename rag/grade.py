"""The answer model as a reader: do the passages state the answer, and does a
passage state this sentence of the answer?

**Before the answer.** The relevance gate (``rag.gate``) compares vectors. It
cannot tell a question the passages answer from one they are merely near:
"What is catastrophic forgetting?" retrieves passages on fine-tuning and
overfitting, and "How do I fix a flat tire?" retrieves a recipe for training a
model that stands out just enough. Given those passages, the small model writes
an answer from them anyway, and every sentence of it is "supported". So before
it answers, the answer model reads the passages it is about to be given and is
asked whether they state the answer (the retrieval evaluator of Corrective RAG,
Yan et al. 2024).

**After the answer.** The citation checker (``rag.citations``) matches a
sentence to a passage by embeddings and shared words. It cannot see that
"随机种子设的是 42" is what ``random_state=42`` in a code passage says: the
sentence shares one word with the code and the embeddings are far apart. A
sentence it leaves unsupported, whose every number and name is in a passage,
is put to the model as one yes/no question about that passage.

Both scores are the model's probability of "yes" against "no"
(``rag.llm.yes_probability``), with thresholds calibrated per model on the
project's questions (``python -m rag.calibrate --grade`` / ``--judge``,
docs/EVAL.md). Both prompts share the answer prompt's system prompt and
passages, so llama.cpp reuses that prefix: a question costs about as much as
reading its one line.
"""

from __future__ import annotations

from .llm import yes_probability
from .prompts import Passage, grade_messages, judge_messages


class PassageGrader:
    """``grader(question, passages) -> float``: 0..1, how surely the passages answer the question."""

    def __init__(self, chat_model, threshold: float):
        self.chat_model = chat_model
        self.threshold = threshold

    def __call__(self, question: str, passages: list[Passage]) -> float:
        return yes_probability(self.chat_model, grade_messages(question, passages))


class SentenceJudge:
    """``judge(sentence, n, passages) -> float``: 0..1, how surely passage ``n`` states the sentence."""

    def __init__(self, chat_model, threshold: float):
        self.chat_model = chat_model
        self.threshold = threshold

    def __call__(self, sentence: str, n: int, passages: list[Passage]) -> float:
        return yes_probability(self.chat_model, judge_messages(sentence, n, passages))
