"""Dataclasses that cross module lines."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """One source file, decoded to text.

    ``path`` is relative to the corpus folder (POSIX separators); ``sha256`` is
    of the raw bytes, so an unchanged file is recognised without parsing it.
    """

    path: str
    title: str
    text: str
    sha256: str


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: ``doc_text[start:end] == text``.

    ``section`` is the heading path, outermost first, e.g.
    ``("大模型开发面试题与算法编程题", "1.1 大模型的训练过程是怎样的？")``.
    """

    id: str
    doc: str
    title: str
    section: tuple[str, ...]
    text: str
    start: int
    end: int

    @property
    def section_label(self) -> str:
        return " › ".join(self.section)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "doc": self.doc,
            "title": self.title,
            "section": list(self.section),
            "text": self.text,
            "start": self.start,
            "end": self.end,
        }

    @classmethod
    def from_json(cls, data: dict) -> Chunk:
        return cls(
            id=data["id"],
            doc=data["doc"],
            title=data["title"],
            section=tuple(data["section"]),
            text=data["text"],
            start=data["start"],
            end=data["end"],
        )


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with the evidence for its rank.

    ``score`` is the fused reciprocal-rank score; ``dense_score`` (cosine) and
    ``lexical_score`` (BM25) are the best the chunk reached over all query
    variants, ``None`` where that retriever did not return it.
    """

    chunk: Chunk
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None
    row: int = -1  # position in the index, to fetch the stored vector


@dataclass
class Retrieval:
    """What retrieval did for one question: the queries it ran and what it found."""

    question: str
    queries: list[str]
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)
    # How far the best passage stands out: the largest margin, over the query
    # variants, of the top cosine over the median cosine to every passage.
    # Near 0 when nothing in the index is about the question (rag/gate.py).
    relevance: float | None = None


@dataclass
class Sentence:
    """One sentence of an answer and the passages (1-based source numbers) it cites.

    ``score`` is how well the best cited passage supports it (0..1);
    ``supported`` is that score against the calibrated threshold. ``claim`` is
    False for sentences that state nothing to check ("好的。", "The steps are:"):
    they pass, but they do not count as grounding an answer. ``source`` is the
    sentence as the model drafted it, in the passages' language, when ``text``
    is its translation: the check was made on ``source``. ``judged`` is the
    answer model's probability that the passage states the sentence, asked only
    for a claim the embedding check left unsupported (``rag.grade.SentenceJudge``);
    at the calibrated threshold it makes the sentence supported.
    """

    text: str
    citations: list[int]
    supported: bool = True
    score: float = 0.0
    claim: bool = True
    source: str = ""
    judged: float | None = None


@dataclass
class Answer:
    """What the assistant says: text with [n] markers, and what it rests on.

    ``sources`` are numbered from 1 in the order given; ``citations`` lists the
    numbers the text uses. ``refused`` means the documents do not answer.
    """

    question: str
    language: str
    text: str
    sources: list[Hit]
    sentences: list[Sentence] = field(default_factory=list)
    citations: list[int] = field(default_factory=list)
    refused: bool = False
    queries: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Why it was refused: "gate" (nothing relevant retrieved; the LLM was not
    # called), "unknown" (the question is about names the knowledge base never
    # mentions; not called either), "grade" (the model, asked whether the
    # passages state the answer, said no: rag.grade), "model" (the model said
    # the passages do not answer) or "unsupported" (too few claims supported).
    refusal_reason: str | None = None
    topics: list[str] = field(default_factory=list)  # what the documents do cover, with a refusal
    unknown_terms: list[str] = field(default_factory=list)  # with "unknown": the names never mentioned
    withdrawn: bool = False  # refused after some sentences had been streamed: they do not stand
    draft: list[Sentence] = field(default_factory=list)  # with "unsupported": the refused reply, as judged
    # Asked for again after the first reply was refused as unsupported (rag.chain): that reply, as judged.
    retried: bool = False
    first_draft: list[Sentence] = field(default_factory=list)
    relevance: float | None = None
    grade: float | None = None  # the model's "the passages answer it" probability, when graded (rag.grade)
    # The sources' text as the model was given them, by source number: cut down
    # to what bears on the question (rag.excerpt); a source not given has none.
    shown: dict[int, str] = field(default_factory=dict)
    # Refused at the first look and asked again over focused passages (rag.chain,
    # Settings.focus "refusal"): "answered", or why the second look refused too;
    # ``grade`` stays the first look's, ``focus_grade`` is the second's.
    second_look: str | None = None
    focus_grade: float | None = None
