"""Attach, check and repair ``[n]`` citation markers.

Small models often leave markers out or put them on the wrong passage. Each
answer sentence is compared with every passage the model was given: cosine
similarity of embeddings (works across languages) plus the share of the
sentence's jieba tokens found in the passage (catches copied wording). A
sentence without a marker gets its best passage if that passage supports it;
a marker pointing at a passage that does not exist is dropped.

The small multilingual embedder matches an English sentence with the Chinese
passage it translates much less surely than a Chinese one (docs/EVAL.md): an
English sentence that no Chinese passage supports is translated by the local
model and checked once more, so the cost falls only on the doubtful ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from . import lang
from .code_values import quotes_code, states_code_value
from .embeddings import Embedder
from .lexical import tokenize
from .locality import apart, scattered
from .prompts import Passage
from .terms import import_lines, novel_terms
from .types import Sentence

MARKER = re.compile(
    r"\s*[\[【]\s*(?:passage|source|ref|段落|来源|文档|资料)?\s*(\d{1,2}(?:\s*[,，、]\s*\d{1,2})*)\s*[\]】]",
    re.IGNORECASE)
_END = re.compile(r"[。！？!?]|\.(?=\s|$|\[|【)|\n")
# A code fence's opening line, a markdown heading, a section label as the app shows one.
_NOT_A_CLAIM = re.compile(r"```[\w+-]*$|#{1,6}\s|\([^)]*›")
_ENUMERATOR = re.compile(r"\s*(?:[-*•]\s*)?\d{1,2}\.")  # "2. " opens a list item; it ends nothing


def parse_markers(sentence: str) -> tuple[str, list[int]]:
    """The sentence without markers, and the numbers the markers name.

    >>> parse_markers("LoRA 冻结主权重 [1][3]。")
    ('LoRA 冻结主权重。', [1, 3])
    """
    numbers: list[int] = []
    for match in MARKER.finditer(sentence):
        for part in re.split(r"[,，、]", match.group(1)):
            n = int(part)
            if n not in numbers:
                numbers.append(n)
    return MARKER.sub("", sentence), numbers


def split_sentences(text: str) -> list[str]:
    """Sentences with the markers and spaces that follow them; joined, they give ``text``.

    >>> split_sentences("A is B [1]. C is D.[2] 好。")
    ['A is B [1]. ', 'C is D.[2] ', '好。']
    >>> split_sentences("1. Data first. 2. Then the model.")
    ['1. Data first. ', '2. Then the model.']
    """
    sentences, rest = [], text
    while rest:
        end = _sentence_end(rest, final=True)
        sentences.append(rest[:end])
        rest = rest[end:]
    return sentences


def _sentence_end(text: str, final: bool) -> int | None:
    """Where the first sentence of ``text`` ends (after its trailing markers and
    spaces), or None if that is not yet known because more text may follow."""
    if text.lstrip().startswith("```"):  # a code block is one unit: it ends at its closing fence
        opening = text.index("```")
        closing = text.find("```", opening + 3)
        if closing < 0:
            return len(text) if final else None
        pos = closing + 3
    else:
        match = next((m for m in _END.finditer(text) if not _ENUMERATOR.fullmatch(text, 0, m.end())), None)
        if not match:
            return len(text) if final else None
        pos = match.end()
    while True:
        marker = MARKER.match(text, pos)
        if marker:
            pos = marker.end()
            continue
        if pos < len(text) and text[pos].isspace():
            pos += 1
            continue
        break
    if pos >= len(text) and not final:
        return None  # a marker may still come
    if not final and text[pos:].lstrip().startswith(("[", "【")) and not MARKER.match(text, pos):
        return None  # a marker is being written
    return pos


class SentenceBuffer:
    """Turns a stream of text deltas into complete sentences."""

    def __init__(self):
        self.buffer = ""

    def feed(self, delta: str) -> Iterator[str]:
        self.buffer += delta
        while True:
            end = _sentence_end(self.buffer, final=False)
            if end is None:
                return
            sentence, self.buffer = self.buffer[:end], self.buffer[end:]
            yield sentence

    def flush(self) -> Iterator[str]:
        if self.buffer:
            yield from split_sentences(self.buffer)
        self.buffer = ""


@dataclass(frozen=True)
class Thresholds:
    """Calibrated on the project's own answers (docs/EVAL.md).

    Raw e5 cosines depend on the language (Chinese text sits ~0.08 higher than
    English against this Chinese corpus), so the dense signal is the margin of
    a passage over the sentence's median similarity to every passage in the
    index: how much closer this passage is than the knowledge base at large.
    """

    margin_full: float = 0.06  # a margin this large counts as full support
    support: float = 0.45      # combined score at which a passage supports a sentence
    overlap_full: float = 0.7  # in the passage's language, this share of words in common is support on its own
    min_chars: int = 6         # shorter "sentences" ("好的。") carry no claim


class CitationChecker:
    def __init__(self, embedder: Embedder, background: np.ndarray, thresholds: Thresholds | None = None,
                 translate: Callable[[str], str] | None = None):
        self.embedder = embedder
        self.background = background  # every passage vector in the index
        self.t = thresholds or Thresholds()
        self.translate = translate  # English -> Chinese, "" when it fails; optional

    def scores(self, texts: list[str], passages: list[Passage], passage_vectors: np.ndarray) -> np.ndarray:
        """Support of each sentence (rows) by each passage (columns), 0..1."""
        if not texts or not passages:
            return np.zeros((len(texts), len(passages)))
        vectors = self.embedder.embed_queries(texts)
        cos = vectors @ np.asarray(passage_vectors).T
        baseline = np.median(vectors @ self.background.T, axis=1, keepdims=True) if len(self.background) else 0.0
        dense = np.clip((cos - baseline) / self.t.margin_full, 0.0, 1.0)
        passage_tokens = [set(tokenize(p.text)) for p in passages]
        overlap = np.zeros_like(dense)
        for i, text in enumerate(texts):
            tokens = set(tokenize(text))
            if tokens:
                for j, ptokens in enumerate(passage_tokens):
                    overlap[i, j] = len(tokens & ptokens) / len(tokens)
        combined = 0.5 * dense + 0.5 * overlap
        # A sentence that shares none of a passage's words is not taken from it,
        # however close the embeddings ("澳大利亚的首都是堪培拉" sits near a passage
        # about LLaMA's uses, and near a code block). Only an English sentence
        # against a Chinese passage may rest on similarity alone: a translation
        # shares no words. (A code block, even with Chinese comments, is "en".)
        # The other way round, in the passage's own language a sentence made
        # mostly of its words is copied from it, even when the passage as a whole
        # is about more than the sentence and the embeddings say so ("GPT、T5等
        # 预训练模型都是不错的选择" from a five-step recipe; "the batch size is 16" from code).
        passage_languages = [lang.detect(p.text) for p in passages]
        sentence_languages = [lang.detect(text) for text in texts]
        translated = np.array([[sl == "en" and pl == "zh" for pl in passage_languages] for sl in sentence_languages])
        same = np.array([[sl == pl for pl in passage_languages] for sl in sentence_languages])
        copied = same & (overlap >= self.t.overlap_full)
        combined = np.where(copied, np.maximum(overlap, combined), combined)
        return np.where(translated, np.maximum(dense, combined), combined)

    def check(self, raw_sentences: list[str], passages: list[Passage], passage_vectors: np.ndarray,
              question: str = "", rewordings: Sequence[str] = ()) -> list[Sentence]:
        """Verify each sentence against the passages and repair its markers.

        A marker to a passage that does not exist is dropped; a marker to one
        that does not support the sentence is moved to the passage that does,
        or removed; a sentence without markers gets its supporting passage.
        ``supported`` is False when no passage supports the sentence, and also
        when it states a number or name the supporting passage itself does not
        contain (``rag.terms.novel_terms``): similarity says a sentence is
        *about* the passage, not that its particulars come from it ("the LoRA
        paper appeared in 2019 [1]"), or holds two of them only lines apart
        (``rag.locality.apart``), or holds its words only spread over it
        (``rag.locality.scattered``). A sentence stating the values a passage's
        code sets is supported by that passage (``rag.code_values``).
        For the code-value rule the question's ``rewordings`` (the forms
        retrieval searched with) count as its words: a Chinese draft of an
        English question restates it in Chinese. Not for numbers and names: the
        small model's "translation" of a question sometimes answers it
        ("Layer Normalization 是在 2016 年被引入的", held-out 9, t051).
        """
        context = " ".join(p.text for p in passages)
        numbers = [p.n for p in passages]
        # A chunk of code is read with its file's imports, which may sit in another passage.
        imports = import_lines(context)
        text_of = {p.n: f"{p.text}\n{imports}" for p in passages}
        topic_of = {p.n: p.topic for p in passages}
        parsed = [parse_markers(s) for s in raw_sentences]
        claims = [i for i, (bare, _) in enumerate(parsed) if self.is_claim(bare)]
        texts = [parsed[i][0].strip() for i in claims]
        matrix = self._cross_lingual(texts, passages, passage_vectors,
                                     self.scores(texts, passages, passage_vectors))
        out: list[Sentence] = []
        for i, (bare, cited) in enumerate(parsed):
            cited = [n for n in cited if n in numbers]
            novel = novel_terms(bare, context, question)
            if i not in claims:  # "好的。", "The steps are:": nothing to check but their names
                out.append(Sentence(text=bare, citations=[] if novel else cited, supported=not novel,
                                    score=0.0 if novel else 1.0, claim=False))
                continue
            row = matrix[claims.index(i)]
            score_of = {n: float(row[numbers.index(n)]) for n in numbers}
            best = max(numbers, key=score_of.get) if numbers else None
            # A passage supports the sentence when it is close enough and holds
            # the sentence's numbers and names itself: "boil it for 10 minutes"
            # is not vouched for by one passage because "训练时间：10 小时" is in another.
            # Nor by one that holds them only lines apart, or holds the sentence's
            # words only here and there (``rag.locality``): it is about the
            # passage, not from it.
            backing = [n for n in numbers if score_of[n] >= self.t.support
                       and not (novel or novel_terms(bare, text_of[n], question)
                                or apart(bare, text_of[n], topic_of[n])
                                or scattered(bare, text_of[n], topic_of[n]))]
            if not backing and not novel:
                backing = self.stating_code(bare, passages, question, rewordings)
                score_of.update({n: max(score_of[n], self.t.overlap_full) for n in backing})
            kept = [n for n in cited if n in backing]
            if not kept and backing:
                kept = [max(backing, key=score_of.get)]
            score = max((score_of[n] for n in kept), default=score_of.get(best, 0.0))
            out.append(Sentence(text=bare, citations=kept, supported=bool(kept), score=round(score, 3)))
        return out

    def stating_code(self, bare: str, passages: list[Passage], question: str = "",
                     rewordings: Sequence[str] = ()) -> list[int]:
        """The passages whose code sets the values ``bare`` states in prose, or
        holds the code it quotes, and that hold its names ("最大长度设成了50" for
        ``max_length=50``): words and embeddings cannot tie prose to a line of
        code (``rag.code_values``)."""
        asked = " ".join((question, *rewordings))
        imports = import_lines(" ".join(p.text for p in passages))
        return [p.n for p in passages
                if (states_code_value(bare, p.text, asked, self.t.overlap_full)
                    or quotes_code(bare, p.text, asked, self.t.overlap_full))
                and not novel_terms(bare, f"{p.text}\n{imports}", question)]

    def candidate(self, sentence: Sentence, passages: list[Passage], passage_vectors: np.ndarray,
                  question: str = "") -> int | None:
        """For a claim this checker left unsupported: the passage that could still
        state it, for a reader to judge (``rag.grade.SentenceJudge``), or None.

        The closest passage that holds every number and name of the sentence.
        None when no passage does: a sentence with a number or name of its own
        is not from the passages, whoever reads them.
        """
        if sentence.supported or not sentence.claim or novel_terms(sentence.text, " ".join(
                p.text for p in passages), question):
            return None
        vouching = [j for j, p in enumerate(passages) if not novel_terms(sentence.text, p.text, question)]
        if not vouching:
            return None
        row = self.scores([sentence.text], [passages[j] for j in vouching],
                          np.asarray(passage_vectors)[vouching])[0]
        return passages[vouching[int(row.argmax())]].n

    def is_claim(self, bare: str) -> bool:
        """Very short sentences ("好的。"), lead-ins ("The steps are:"), questions
        (a heading the model copies: "2. How can large models handle longer text?"),
        headings, section labels and a code fence's opening line state nothing to check.

        >>> c = CitationChecker(None, np.zeros((0, 2)))
        >>> [c.is_claim(s) for s in ("LoRA 冻结原权重。", "步骤如下：", "为什么要归一化？", "```python",
        ...                          "### 5. 模型评估", "(算法编程题库 › 5. 模型评估)", "(算法编程题库 › 4.")]
        [True, False, False, False, False, False, False]
        """
        text = bare.strip()
        return (len(text) >= self.t.min_chars and not text.endswith((":", "：", "?", "？"))
                and not _NOT_A_CLAIM.match(text))

    def _cross_lingual(self, texts: list[str], passages: list[Passage], passage_vectors: np.ndarray,
                       matrix: np.ndarray) -> np.ndarray:
        """Rescore English sentences that no Chinese passage supports, in Chinese."""
        if self.translate is None or not any(lang.has_cjk(p.text) for p in passages):
            return matrix
        doubtful = [i for i, text in enumerate(texts)
                    if matrix[i].max(initial=0.0) < self.t.support and not lang.has_cjk(text)]
        translated = {i: self.translate(texts[i]) for i in doubtful}
        translated = {i: text for i, text in translated.items() if text}
        if translated:
            rows = list(translated)
            again = self.scores([translated[i] for i in rows], passages, passage_vectors)
            matrix = matrix.copy()
            matrix[rows] = np.maximum(matrix[rows], again)
        return matrix


def support_span(embedder: Embedder, sentence: str, passage_text: str) -> tuple[int, int]:
    """The (start, end) of the passage sentence closest to ``sentence``: the words
    to highlight when a user opens a cited source.

    With "LoRA freezes the weights" and the passage "甲。LoRA 冻结主权重。乙。" it
    is (2, 13), the middle sentence.
    """
    spans, start = [], 0
    for match in _END.finditer(passage_text):
        if passage_text[start:match.end()].strip():
            spans.append((start, match.end()))
        start = match.end()
    if passage_text[start:].strip():
        spans.append((start, len(passage_text)))
    # Titles and lead-ins ("…主要如下：") introduce content rather than state it:
    # prefer spans that end like a sentence.
    stated = [(s, e) for s, e in spans if passage_text[s:e].rstrip().endswith(tuple("。！？；.!?;"))]
    spans = stated or spans
    if not spans:
        return 0, len(passage_text)
    vectors = embedder.embed_passages([passage_text[s:e].strip() for s, e in spans])
    query = embedder.embed_queries([parse_markers(sentence)[0]])[0]
    s, e = spans[int(np.argmax(vectors @ query))]
    while s < e and passage_text[s].isspace():
        s += 1
    return s, e


# A reply is an answer only if at least this share of its claims is
# supported: one grounded line does not vouch for a page of invented steps.
# Chosen on the dev set, where no answerable question fell under it;
# docs/EVAL.md shows what it costs on the held-out sets.
MIN_SUPPORTED_SHARE = 0.25


def stands(supported: int, claims: int, share: float = MIN_SUPPORTED_SHARE) -> bool:
    """Whether a reply with ``supported`` of its ``claims`` supported is an answer
    (``share``: another rule, for ``rag.calibrate --replay --with-share``).

    >>> stands(1, 4), stands(1, 5), stands(0, 0), stands(1, 4, share=0.5)
    (True, False, False, False)
    """
    return supported > 0 and supported >= share * claims


UNSUPPORTED = "[?]"


def render(sentences: list[Sentence], language: str) -> str:
    """Sentences with their markers: "… [1]." in English, "……[1]。" in Chinese;
    a sentence no passage supports is flagged with [?]."""
    parts = []
    for s in sentences:
        text = s.text
        if s.citations or not s.supported:
            marks = "".join(f"[{n}]" for n in s.citations) or UNSUPPORTED
            stripped = text.rstrip()
            trail = text[len(stripped):]
            end = len(stripped)
            while end and stripped[end - 1] in "。！？!?.；;：:":
                end -= 1
            # After a code block the marker goes on its own line: "``` [1]" would not close the fence.
            sep = "\n" if stripped.endswith("```") else " " if language == "en" else ""
            text = f"{stripped[:end]}{sep}{marks}{stripped[end:]}{trail}"
        parts.append(text)
    return "".join(parts)
