"""The lines of a passage that bear on the question, when the whole will not fit.

The prompt's passage budget (``Settings.context_tokens``) holds about two of the
five passages retrieval ranks. On the ten held-out sets the answer was among
the five for 94.5 % of the answerable questions but in what the model was shown
for only 86.5 % (docs/EVAL.md, ninth round): a question about one line of a long
training script needs that line, not the script's first half. So a focused
passage that does not fit its share of the budget is cut down to the lines and
sentences nearest the question, in their own order, with "…" where something
was left out, instead of being cut at the end or left out.

The chain uses it for a second look at a question the first look, over whole
passages, refused (``Settings.focus`` "refusal", the default): lines chosen for
being near the question make passages that do not answer it look as if they
did, to the passage grader and to the model (held-out 11 answered "what is
grokking?" from them), so a focused prompt is graded against a higher bar
(docs/EVAL.md, tenth round).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .lexical import tokenize

GAP = "…"
_SENTENCE_END = re.compile(r"(?<=[。！？；])")


@dataclass(frozen=True)
class _Unit:
    text: str
    line_end: bool  # a line ends after it (otherwise the next sentence follows on the same line)


def _units(text: str) -> list[_Unit]:
    """Lines, and the sentences of a long line of prose; blank lines are dropped."""
    units = []
    for line in text.split("\n"):
        pieces = [p for p in _SENTENCE_END.split(line) if p.strip()]
        units += [_Unit(p, i == len(pieces) - 1) for i, p in enumerate(pieces)]
    return units


def lexical(terms: set[str]) -> Callable[[list[str]], list[float]]:
    """Each unit's share of the question's words ``terms``, a word counting less
    the more units of the passage it is in.

    >>> lexical({"模型", "max", "length", "生成"})(["模型训练。", "max_length=50 生成。", "模型评估。"])
    [0.5, 3.0, 0.5]
    """
    def score(units: list[str]) -> list[float]:
        tokens = [set(tokenize(u)) & terms for u in units]
        df = {t: sum(t in ts for ts in tokens) for t in terms}
        return [sum(1 / df[t] for t in ts) for ts in tokens]
    return score


class Focus:
    """Scores a passage's units by their cosine to the nearest of the queries
    (the question and its rewrites: the embedder matches across languages), plus
    a little of their ``lexical`` score, scaled to the best unit's, to break
    near-ties in favour of the question's own words. On the held-out sets this
    put the answer in front of the model for 363 of 400 answerable questions
    against 346 without cutting (docs/EVAL.md, ninth round).

    It keeps the units' vectors: a passage's lines are the same from one
    question to the next, and embedding them is most of the cost of focusing
    (0.8 s a question uncached, docs/BENCHMARKS.md)."""

    def __init__(self, embedder, lexical_weight: float = 0.05, keep: int = 50_000):
        self.embedder = embedder
        self.lexical_weight = lexical_weight
        self.keep = keep  # units: 384 floats each, ~75 MB at most
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    def vectors(self, units: list[str]) -> np.ndarray:
        """The units' vectors (at least one unit), embedding only those not kept."""
        missing = list(dict.fromkeys(u for u in units if u not in self._vectors))
        if missing:
            for unit, vector in zip(missing, self.embedder.embed_passages(missing)):
                self._vectors[unit] = vector
        for unit in units:
            self._vectors.move_to_end(unit)
        while len(self._vectors) > self.keep:
            self._vectors.popitem(last=False)
        return np.stack([self._vectors[u] for u in units])

    def relevance(self, queries: list[str]) -> Callable[[list[str]], list[float]]:
        question_vectors = self.embedder.embed_queries(list(queries))
        words = lexical(set(tokenize(" ".join(queries))))

        def score(units: list[str]) -> list[float]:
            if not units:
                return []
            cosines = (self.vectors(units) @ question_vectors.T).max(axis=1)
            overlap = words(units)
            top = max(overlap) or 1.0
            return [float(c) + self.lexical_weight * o / top for c, o in zip(cosines, overlap)]
        return score


def excerpt(text: str, relevance: Callable[[list[str]], list[float]], budget: int,
            count_tokens: Callable[[str], int]) -> str:
    """``text`` if it fits ``budget`` tokens; otherwise its first line (the
    passage's section label) and its units ``relevance`` scores highest that fit,
    each with its neighbours as room allows, in their order, gaps marked.
    "" when not even the first line and one relevant unit fit."""
    if count_tokens(text) <= budget:
        return text
    units = _units(text)
    scores = relevance([u.text for u in units])
    ranked = sorted((i for i in range(1, len(units)) if scores[i] > 0), key=lambda i: (-scores[i], i))
    chosen = {0}
    for i in ranked:  # the relevant units first, then the lines around them
        if _fits(units, chosen | {i}, budget, count_tokens):
            chosen.add(i)
    if chosen == {0}:
        return ""
    for distance in (1, 2):
        for i in sorted(chosen - {0}):  # around what was found, not around the label
            for j in (i - distance, i + distance):
                if 0 < j < len(units) and j not in chosen and _fits(units, chosen | {j}, budget, count_tokens):
                    chosen.add(j)
    return _render(units, chosen)


def _fits(units: list[_Unit], chosen: set[int], budget: int, count_tokens: Callable[[str], int]) -> bool:
    return count_tokens(_render(units, chosen)) <= budget


def _render(units: list[_Unit], chosen: set[int]) -> str:
    out, last = [], -1
    for i in sorted(chosen):
        if i > last + 1:
            out.append(GAP + "\n")
        out.append(units[i].text + ("\n" if units[i].line_end else ""))
        last = i
    if last < len(units) - 1:
        out.append(GAP)
    return "".join(out).strip()
