"""The answer chain, in LangChain's expression language (LCEL):

    question -> rewrite -> retrieve -> gate -> prompt -> grade -> LLM -> citations -> judge -> translate -> Answer
                                                          (a reply the check refuses, graded answerable: LLM once more)
                                       (refused after the gate: the same from a focused prompt, against a higher bar)

``AnswerChain.runnable()`` is ``prepare | generate``: ``prepare`` is two
``RunnableLambda`` steps over a ``State``; ``generate`` is a
``RunnableGenerator`` that refuses at once when the gate finds nothing
relevant or the model, reading the passages, finds they do not state the
answer (``rag.grade``), and otherwise streams the model's reply sentence by sentence, each
sentence's citations checked before it is emitted. A sentence the check leaves
unsupported is put to the model itself once the reply is complete
(``rag.grade.SentenceJudge``). A reply the check refuses is asked for once
more, the passage's own words first (``prompts.retry_messages``): a ``Retry``
event tells a reader to clear what it showed. The model drafts in the
passages' language; a sentence is put into the question's language only
after it has been checked (``rag.translate``). A question refused by the
grader, the model or the check takes a second look over the passages cut to
the lines that bear on it (``_second_look``). It ends with the ``Answer``.
Nothing runs at import time.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field, replace

from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda

from . import lang
from .citations import CitationChecker, SentenceBuffer, parse_markers, render, stands
from .config import Settings
from .excerpt import Focus
from .gate import RelevanceGate, closest_topics
from .grade import PassageGrader, SentenceJudge
from .llm import token_counter
from .messages import t
from .prompts import (NOT_FOUND, Passage, bare_messages, bare_words, build_messages, is_echo, is_label, retry_messages,
                      select_passages)
from .retrieve import Retriever
from .rewrite import Rewriter, expand
from .translate import SentenceTranslator
from .types import Answer, Retrieval, Sentence


@dataclass
class Delta:
    """A checked sentence of the answer, as soon as it is complete."""

    text: str
    sentence: Sentence


@dataclass
class Retry:
    """The reply so far did not stand and is withdrawn; the model is answering again."""

    withdrawn: bool  # some of it had been shown


@dataclass
class State:
    question: str
    language: str = "en"  # the question's: the answer is shown in it
    draft_language: str = "en"  # the one the model writes in
    queries: list[str] = field(default_factory=list)
    retrieval: Retrieval | None = None
    passages: list[Passage] = field(default_factory=list)
    messages: list[BaseMessage] = field(default_factory=list)
    prompt_tokens: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def translating(self) -> bool:
        return self.draft_language != self.language

    @property
    def rewordings(self) -> list[str]:
        """The question's other forms retrieval searched with (its Chinese translation)."""
        return self.queries[1:]

    @property
    def shown(self) -> dict[int, str]:
        return {p.n: p.text for p in self.passages}


class AnswerChain:
    def __init__(self, retriever: Retriever, chat_model, settings: Settings, rewriters: list[Rewriter],
                 checker: CitationChecker, gate: RelevanceGate | None = None,
                 translator: SentenceTranslator | None = None, grader: PassageGrader | None = None,
                 judge: SentenceJudge | None = None, focus: Focus | None = None):
        self.retriever = retriever
        self.focus = focus or Focus(retriever.embedder)
        self.gate = gate or RelevanceGate(settings.gate_threshold)
        self.chat_model = chat_model
        self.settings = settings
        self.rewriters = rewriters
        self.checker = checker
        self.translator = translator
        self.grader = grader
        self.judge = judge
        self.count_tokens = token_counter(chat_model)

    # -- the steps ------------------------------------------------------------

    def rewrite(self, question: str) -> State:
        started = time.perf_counter()
        state = State(question=question.strip(), language=lang.detect(question))
        state.queries = expand(state.question, self.rewriters)
        state.timings["rewrite"] = time.perf_counter() - started
        return state

    def retrieve(self, state: State, k: int | None = None) -> State:
        started = time.perf_counter()
        state.retrieval = self.retriever(state.question, k=k or self.settings.top_k, queries=state.queries)
        state.timings["retrieve"] = time.perf_counter() - started
        return state

    def prompt(self, state: State, focus: bool | None = None) -> State:
        """The passages (focused with ``focus``; by default as ``Settings.focus``
        says for a first look) and the messages for the model."""
        started = time.perf_counter()
        state.passages = self.passages(state.retrieval.hits, state.queries, focus)
        state.draft_language = self.draft_language(state)
        state.messages = build_messages(state.question, state.draft_language, state.passages)
        state.prompt_tokens = sum(self.count_tokens(str(m.content)) for m in state.messages)
        state.timings["prompt"] = time.perf_counter() - started
        return state

    def passages(self, hits: list, queries: list[str] = (), focus: bool | None = None) -> list[Passage]:
        """The passages the model is given for these hits, within the prompt budget:
        whole, in rank order, or with ``focus`` (default: ``Settings.focus`` is
        "always") each cut down to what bears on ``queries`` (the question and its rewrites)."""
        if focus is None:
            focus = self.settings.focus == "always"
        relevance = self.focus.relevance(queries) if focus and queries else None
        return select_passages(hits, self.settings.context_tokens, self.count_tokens, focus=relevance)

    def draft_language(self, state: State) -> str:
        """The passages' language when a translator can put the checked sentences
        into the question's; the question's otherwise."""
        if self.translator is None or self.settings.draft == "question" or not state.passages:
            return state.language
        return lang.detect(" ".join(p.text for p in state.passages))

    def generate(self, states: Iterator[State]) -> Iterator[Delta | Retry | Answer]:
        for state in states:
            decision = self.gate(state.retrieval, self.retriever.vocabulary())
            if not decision.passed:
                yield self._refusal(state, decision.reason, {"ttft": 0.0, "generate": 0.0},
                                    unknown_terms=decision.unknown)
                continue
            state = self.prompt(state)
            answer = yield from self._answer(state)
            if answer.refused and self.settings.focus == "refusal":
                answer = yield from self._second_look(state, answer)
            yield answer

    def _answer(self, state: State, threshold: float | None = None) -> Generator[Delta | Retry, None, Answer]:
        """The grade, then the reply (``_generate``) or, under ``threshold`` (default: the grader's), a refusal."""
        grade = self.grade(state)
        if grade is not None and grade < (self.grader.threshold if threshold is None else threshold):
            return self._refusal(state, "grade", {"ttft": 0.0, "generate": 0.0}, grade=grade)
        return (yield from self._generate(state, grade))

    def _second_look(self, state: State, refused: Answer) -> Generator[Delta | Retry, None, Answer]:
        """A refused question asked once more over the same hits focused
        (``rag.excerpt``): every ranked passage cut down to its lines nearest the
        question, so that an answer in a passage the budget left out, or deep in a
        long one, is in front of the model (Corrective RAG's knowledge refinement,
        taken as the corrective action). Graded, against a higher bar
        (``Settings.second_look_in_force``: focused lines look more on topic than
        whole passages), and checked like the first look; nothing answered at the
        first look changes. When focusing shows nothing
        new, or the second look refuses too, the first refusal stands."""
        focused = self.prompt(replace(state, timings=dict(state.timings)), focus=True)
        if focused.shown == state.shown:
            return refused
        if refused.withdrawn:
            yield Retry(withdrawn=True)
        answer = yield from self._answer(focused, self.settings.second_look_in_force)
        if answer.refused:
            timings = {f"second_look_{k}": v for k, v in answer.timings.items() if k in ("prompt", "grade", "generate")}
            return replace(refused, second_look=answer.refusal_reason, focus_grade=answer.grade,
                           timings={**refused.timings, **timings})
        timings = {f"first_look_{k}": v for k, v in refused.timings.items() if k in ("grade", "generate")}
        return replace(answer, second_look="answered", grade=refused.grade, focus_grade=answer.grade,
                       timings={**answer.timings, **timings})

    def grade(self, state: State) -> float | None:
        """The model's probability that the passages state the answer, or None without a grader."""
        if self.grader is None:
            return None
        started = time.perf_counter()
        grade = round(self.grader(state.question, state.passages), 4)
        state.timings["grade"] = time.perf_counter() - started
        return grade

    def _generate(self, state: State, grade: float | None = None) -> Generator[Delta | Retry, None, Answer]:
        """The answer, streamed; a reply refused as unsupported is asked for once
        more (``retries``) with ``retry_messages`` (same passages: llama.cpp reuses the prefix).
        Asked to copy the answering words first, the model often writes what the
        check can tie to a passage; for a value in code it mostly repeats its
        first reply (docs/EVAL.md, eighth round). The second reply passes the
        same checks as the first."""
        answer = yield from self._attempt(state, grade)
        if answer.refusal_reason == "unsupported" and self.retries(grade):
            yield Retry(withdrawn=answer.withdrawn)
            first = answer
            state.messages = retry_messages(state.question, state.draft_language, state.passages)
            answer = yield from self._attempt(state, grade)
            # Times count from the question, as a reader waits: the first attempt included.
            spent = first.timings["generate"]
            timings = {**answer.timings, "first_attempt": spent, "generate": spent + answer.timings["generate"]}
            if "first_sentence" in timings:
                timings["first_sentence"] += spent
            answer = replace(answer, retried=True, first_draft=first.draft, timings=timings)
        return answer

    def retries(self, grade: float | None) -> bool:
        """Whether a reply refused as unsupported is asked for again: only when the
        grader found the passages state the answer, surely enough (``retry_in_force``).
        Out of scope, a second try is only a second chance to invent something the
        check misses ("boil an egg for about 7 minutes [1]")."""
        threshold = self.settings.retry_in_force
        return threshold > 0 and grade is not None and grade >= threshold

    def _attempt(self, state: State, grade: float | None = None) -> Generator[Delta, None, Answer]:
        """Stream one reply to ``state.messages`` sentence by sentence, each checked
        against the passages; return the Answer (or refusal) it makes.

        A sentence is shown once the supported claims so far are at least as
        many as the unsupported ones; until then it is held back, so a reply
        that starts off ungrounded shows nothing. A claim the check leaves
        unsupported but a passage could still state (its numbers and names are
        there) waits for the judge, which reads it once the reply is complete:
        the model is busy writing until then. Nothing after such a sentence is
        shown before it, so no verdict shown changes. At the end the reply becomes
        a refusal unless it ``stands``: some of its claims, and at least a quarter
        of them, supported (``rag.citations``). ``Answer.withdrawn`` tells when
        some of a refused reply had been shown.
        With ``strict`` unsupported sentences are dropped; otherwise they are
        flagged [?]. A sentence the model repeats is dropped (the small model's
        "repeater" failure); a shown one is translated into the question's
        language if the draft is in another.
        """
        started = time.perf_counter()
        vectors = self.retriever.vectors([p.hit for p in state.passages])
        buffer, raw = SentenceBuffer(), ""
        checked: list[Sentence] = []  # every sentence of the reply, as judged
        kept: list[Sentence] = []     # those shown
        held_back: list[int] = []     # (positions in checked) waiting for enough support or the judge
        doubtful: dict[int, int] = {}  # position in checked -> the passage the judge is to read
        first = last = None
        pieces, maybe_refusal, paused = 0, True, 0.0
        spent = {"translate": 0.0}  # and "first_sentence": when the first sentence was shown

        def grounding() -> tuple[int, int]:
            """Supported claims and all claims so far; lead-ins and the like count for neither."""
            claims = [s for s in checked if s.claim]
            return sum(s.supported for s in claims), len(claims)

        def show() -> Iterator[Delta]:
            for i in held_back:
                s = checked[i]
                if state.translating:
                    begun = time.perf_counter()
                    s = self._translated(s, state.language)
                    spent["translate"] += time.perf_counter() - begun
                    if _said(s.text, kept):
                        continue  # two drafted sentences, one translation ("主要包括以下步骤：" twice)
                kept.append(s)
                spent.setdefault("first_sentence", time.perf_counter() - started)
                yield Delta(render([s], state.language), s)
            held_back.clear()

        def emit(raw_sentence: str) -> Iterator[Delta]:
            bare = parse_markers(raw_sentence)[0]
            if NOT_FOUND in raw_sentence or is_echo(bare) or is_label(bare, state.passages):
                return  # the question asked back, the prompt's wording or a passage's header, "see passage [1]"
            if _said(bare, checked):
                return  # said before: the small model's "repeater" failure
            sentence = self.checker.check([raw_sentence], state.passages, vectors, state.question,
                                          state.rewordings)[0]
            checked.append(sentence)
            target = self.checker.candidate(sentence, state.passages, vectors, state.question) if self.judge else None
            if target is not None:
                doubtful[len(checked) - 1] = target
            elif self.settings.strict and not sentence.supported:
                return
            held_back.append(len(checked) - 1)
            supported, claims = grounding()
            if not doubtful and supported and 2 * supported >= claims:
                yield from show()

        for chunk in self.chat_model.stream(state.messages, stop=["<|im_end|>", "</passages>"]):
            text = str(chunk.content)
            if not text:
                continue
            last = time.perf_counter() - started
            if first is None:
                first, translating_before = last, spent["translate"]
            paused = spent["translate"] - translating_before  # generation waits while a sentence is translated
            pieces += 1
            raw += text
            if maybe_refusal and raw.lstrip().startswith(NOT_FOUND[: len(raw.lstrip())]):
                continue  # this may be the refusal token: hold it back
            for piece in buffer.feed(raw if maybe_refusal else text):
                yield from emit(piece)
            maybe_refusal = False
        for piece in buffer.flush():
            yield from emit(piece)
        total = time.perf_counter() - started
        timings = {"ttft": first if first is not None else total, "generate": total}
        if pieces > 1 and last - paused > first:
            timings["tokens_per_s"] = (pieces - 1) / (last - paused - first)  # decode rate, first to last token
        extra = {"prompt_tokens": state.prompt_tokens, "completion_tokens": pieces, "grade": grade}
        if raw.strip().startswith(NOT_FOUND):
            return self._refusal(state, "model", timings, **extra)
        if doubtful:
            timings["judge"] = self._judge(state, checked, doubtful)
            if self.settings.strict:
                held_back[:] = [i for i in held_back if checked[i].supported]
        supported, claims = grounding()
        if not stands(supported, claims):
            return self._refusal(state, "unsupported", timings, withdrawn=bool(kept), draft=checked, **extra)
        yield from show()  # the tail, flagged: the reply as a whole stands
        if state.translating:
            timings.update(translate=spent["translate"], generate=time.perf_counter() - started)
        if "first_sentence" in spent:  # what a reader waits for: held back, checked, translated
            timings["first_sentence"] = spent["first_sentence"]
        return Answer(question=state.question, language=state.language, text=render(kept, state.language).strip(),
                      sources=state.retrieval.hits, shown=state.shown, sentences=kept,
                      citations=sorted({n for s in kept for n in s.citations}), queries=state.queries,
                      timings=self._timings(state, timings), relevance=state.retrieval.relevance, **extra)

    def _judge(self, state: State, checked: list[Sentence], doubtful: dict[int, int]) -> float:
        """Put each doubtful claim to the judge; one it confirms is supported and
        cites the passage it was read against. Returns the seconds it took."""
        started = time.perf_counter()
        for i, n in doubtful.items():
            p = round(self.judge(checked[i].text, n, state.passages), 4)
            confirmed = p >= self.judge.threshold
            checked[i] = replace(checked[i], judged=p, supported=confirmed,
                                 citations=[n] if confirmed else checked[i].citations)
        return time.perf_counter() - started

    def _translated(self, sentence: Sentence, language: str) -> Sentence:
        """The checked sentence in ``language``; as drafted if no faithful translation came back."""
        text = self.translator.translate(sentence.text, language)
        return replace(sentence, text=text, source=sentence.text) if text and text != sentence.text else sentence

    def _refusal(self, state: State, reason: str, timings: dict, **extra) -> Answer:
        return Answer(question=state.question, language=state.language, text=t(state.language, "refusal"),
                      sources=state.retrieval.hits, shown=state.shown, refused=True, refusal_reason=reason,
                      topics=closest_topics(state.retrieval), queries=state.queries,
                      timings=self._timings(state, timings), relevance=state.retrieval.relevance, **extra)

    @staticmethod
    def _timings(state: State, timings: dict) -> dict:
        return {**state.retrieval.timings, **state.timings, **timings}

    def with_settings(self, settings: Settings) -> AnswerChain:
        """This chain with other per-question settings (top-k, retrieval mode,
        strictness): the same models, index, checker, gate, grader, translator and
        judge, so changing a setting reloads nothing. The new retriever keeps the
        index this one has, even if a build replaces it mid-answer."""
        r = self.retriever
        return AnswerChain(Retriever(r.index, r.embedder, settings, r.rewriters), self.chat_model, settings,
                           self.rewriters, self.checker, self.gate, translator=self.translator, grader=self.grader,
                           judge=self.judge, focus=self.focus)

    # -- composition ----------------------------------------------------------

    def runnable(self) -> Runnable:
        # The prompt is built inside generate, after the gate: a refused
        # question costs no tokenisation either.
        prepare = RunnableLambda(self.rewrite) | RunnableLambda(self.retrieve)
        return prepare | RunnableGenerator(self.generate)

    def stream_bare(self, question: str) -> Iterator[str]:
        """The model alone, no passages: what retrieval protects the user from."""
        language = lang.detect(question)
        for chunk in self.chat_model.stream(bare_messages(question, language), stop=["<|im_end|>"]):
            if chunk.content:
                yield str(chunk.content)

    def stream(self, question: str) -> Iterator[Delta | Answer]:
        return self.runnable().stream(question)

    def invoke(self, question: str) -> Answer:
        return _final(self.stream(question))

    def answer(self, state: State) -> Answer:
        """The answer to a question already rewritten and retrieved: ``rag.eval``
        scores the retrieval and then answers from the very same passages
        (the query translation is not bit-for-bit repeatable, see EVAL.md)."""
        return _final(self.generate(iter([state])))


def _said(text: str, sentences: list[Sentence]) -> bool:
    """Whether one of ``sentences`` says ``text``, spacing and punctuation aside."""
    return bare_words(text) in {bare_words(s.text) for s in sentences}


def _final(events: Iterator[Delta | Answer]) -> Answer:
    answer = None
    for event in events:
        if isinstance(event, Answer):
            answer = event
    return answer
