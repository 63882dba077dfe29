"""Retrieval metrics over a question file.

A line of the question file::

    {"id": "q001", "question": "...", "lang": "en", "answerable": true, "gold": ["substring", ...]}

A retrieved chunk is a hit when its text contains any gold substring once
whitespace is collapsed (so line breaks in the source do not matter).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import RagError
from . import lang
from .types import Answer, Chunk

KS = (1, 3, 5)
MRR_AT = 10


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    lang: str
    answerable: bool
    gold: tuple[str, ...]


@dataclass
class Outcome:
    """Where (1-based) the first gold chunk came, or None if not in the top ``MRR_AT``."""

    question: Question
    rank: int | None
    top: list[str] = field(default_factory=list)  # ids of the retrieved chunks
    # Whether a gold substring is in the passages as the model sees them (the
    # prompt budget may leave out lower-ranked ones or cut the last); None
    # when no model is involved.
    in_prompt: bool | None = None


def load_questions(path: Path) -> list[Question]:
    questions = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            questions.append(Question(id=str(row["id"]), question=row["question"], lang=row.get("lang", "?"),
                                      answerable=bool(row.get("answerable", True)), gold=tuple(row.get("gold", []))))
        except (ValueError, KeyError, TypeError) as exc:
            raise RagError(f"{path}:{n}: not a question line ({exc})") from exc
    return questions


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def first_hit_rank(chunks: list[Chunk], gold: tuple[str, ...]) -> int | None:
    """1-based rank of the first chunk containing any gold substring.

    >>> from rag.types import Chunk
    >>> c = lambda t: Chunk("i", "d", "t", (), t, 0, len(t))
    >>> first_hit_rank([c("abc"), c("low  rank\\nmatrix")], ("rank matrix",))
    2
    """
    return gold_position([chunk.text for chunk in chunks], gold)


def gold_position(texts: list[str], gold: tuple[str, ...]) -> int | None:
    """1-based position of the first text containing any gold substring, or None."""
    needles = [normalise(g) for g in gold if g.strip()]
    for position, text in enumerate(texts, start=1):
        if any(n in normalise(text) for n in needles):
            return position
    return None


def retrieval_metrics(outcomes: list[Outcome]) -> dict:
    """hit@1/3/5 and MRR@10 over the answerable questions, overall and per language;
    with a model, also ``in_prompt``: the share whose gold is in the passages it is given."""
    def summary(rows: list[Outcome]) -> dict:
        n = len(rows)
        out = {f"hit@{k}": (sum(1 for o in rows if o.rank and o.rank <= k) / n if n else 0.0) for k in KS}
        out[f"mrr@{MRR_AT}"] = sum(1.0 / o.rank for o in rows if o.rank) / n if n else 0.0
        out["n"] = n
        return out

    answerable = [o for o in outcomes if o.question.answerable]
    result = summary(answerable)
    known = [o for o in answerable if o.in_prompt is not None]
    if known:  # "context recall": the answer is in front of the model at all
        result["in_prompt"] = sum(o.in_prompt for o in known) / len(known)
    result["by_lang"] = {lang: summary([o for o in answerable if o.question.lang == lang])
                         for lang in sorted({o.question.lang for o in answerable})}
    return result


def answer_metrics(pairs: list[tuple[Question, Answer]]) -> dict:
    """Answer-level metrics.

    * ``refusal_recall``: share of unanswerable questions refused;
    * ``false_refusals``: share of answerable questions refused;
    * ``supported``: share of answer sentences that make a claim (lead-ins such as
      "The steps are:" aside) supported by their citations, also by language;
    * ``cited`` / ``in_language``: shares of the non-refused answers with at least
      one valid citation / written in the question's language;
    * ``refused_by``: how refusals came about (gate, model, unsupported);
    * ``judged`` / ``confirmed``: claims of the shown answers the citation check
      left doubtful and put to the sentence judge, and how many it confirmed;
    * ``retried`` / ``retried_answered``: replies refused as unsupported and asked
      for again, and how many of the second replies stood;
    * ``second_looks`` / ``second_look_answered``: questions refused at the first
      look and read again over focused passages, and how many were then answered.
    """
    answered = [(q, a) for q, a in pairs if not a.refused]
    unanswerable = [a for q, a in pairs if not q.answerable]
    answerable = [a for q, a in pairs if q.answerable]
    claims = {lg: [s for q, a in answered if q.lang == lg for s in a.sentences if s.claim] for lg in ("en", "zh")}
    sentences = claims["en"] + claims["zh"]
    reasons: dict[str, int] = {}
    for _, a in pairs:
        if a.refused:
            reasons[a.refusal_reason or "?"] = reasons.get(a.refusal_reason or "?", 0) + 1
    n = len(answered)
    return {
        "n": len(pairs),
        "answered": n,
        "refusal_recall": sum(a.refused for a in unanswerable) / len(unanswerable) if unanswerable else 0.0,
        "false_refusals": sum(a.refused for a in answerable) / len(answerable) if answerable else 0.0,
        "supported": sum(s.supported for s in sentences) / len(sentences) if sentences else 0.0,
        "supported_by_lang": {lg: round(sum(s.supported for s in c) / len(c), 4) for lg, c in claims.items() if c},
        "claims": len(sentences),
        "cited": sum(1 for _, a in answered if a.citations) / n if n else 0.0,
        "in_language": sum(1 for q, a in answered if lang.detect(a.text) == q.lang) / n if n else 0.0,
        "mean_seconds": sum(a.timings.get("rewrite", 0) + a.timings.get("retrieve", 0) + a.timings.get("prompt", 0)
                            + a.timings.get("generate", 0) for _, a in pairs) / len(pairs) if pairs else 0.0,
        "refused_by": reasons,
        "judged": sum(s.judged is not None for s in sentences),
        "confirmed": sum(s.judged is not None and s.supported for s in sentences),
        "retried": sum(a.retried for _, a in pairs),
        "retried_answered": sum(a.retried for _, a in answered),
        "second_looks": sum(a.second_look is not None for _, a in pairs),
        "second_look_answered": sum(a.second_look == "answered" for _, a in pairs),
    }
