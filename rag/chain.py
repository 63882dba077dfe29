"""The answer chain, in LangChain's expression language (LCEL):

    question -> rewrite -> retrieve -> prompt -> LLM -> citations -> Answer

``AnswerChain.runnable()`` is ``prepare | generate``: ``prepare`` is three
``RunnableLambda`` steps over a ``State``; ``generate`` is a
``RunnableGenerator`` that streams the model's reply sentence by sentence,
each sentence's citations checked before it is emitted, and ends with the
``Answer``. Nothing runs at import time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda

from . import lang
from .citations import CitationChecker, SentenceBuffer, render
from .config import Settings
from .llm import token_counter
from .messages import t
from .prompts import NOT_FOUND, Passage, build_messages, select_passages
from .retrieve import Retriever
from .rewrite import Rewriter, expand
from .types import Answer, Retrieval, Sentence


@dataclass
class Delta:
    """A checked sentence of the answer, as soon as it is complete."""

    text: str
    sentence: Sentence


@dataclass
class State:
    question: str
    language: str = "en"
    queries: list[str] = field(default_factory=list)
    retrieval: Retrieval | None = None
    passages: list[Passage] = field(default_factory=list)
    messages: list[BaseMessage] = field(default_factory=list)
    prompt_tokens: int = 0
    timings: dict[str, float] = field(default_factory=dict)


class AnswerChain:
    def __init__(self, retriever: Retriever, chat_model, settings: Settings, rewriters: list[Rewriter],
                 checker: CitationChecker):
        self.retriever = retriever
        self.chat_model = chat_model
        self.settings = settings
        self.rewriters = rewriters
        self.checker = checker
        self.count_tokens = token_counter(chat_model)

    # -- the steps ------------------------------------------------------------

    def rewrite(self, question: str) -> State:
        started = time.perf_counter()
        state = State(question=question.strip(), language=lang.detect(question))
        state.queries = expand(state.question, self.rewriters)
        state.timings["rewrite"] = time.perf_counter() - started
        return state

    def retrieve(self, state: State) -> State:
        started = time.perf_counter()
        state.retrieval = self.retriever(state.question, k=self.settings.top_k, queries=state.queries)
        state.timings["retrieve"] = time.perf_counter() - started
        return state

    def prompt(self, state: State) -> State:
        started = time.perf_counter()
        state.passages = select_passages(state.retrieval.hits, self.settings.context_tokens, self.count_tokens)
        state.messages = build_messages(state.question, state.language, state.passages)
        state.prompt_tokens = sum(self.count_tokens(str(m.content)) for m in state.messages)
        state.timings["prompt"] = time.perf_counter() - started
        return state

    def generate(self, states: Iterator[State]) -> Iterator[Delta | Answer]:
        for state in states:
            yield from self._generate(state)

    def _generate(self, state: State) -> Iterator[Delta | Answer]:
        started = time.perf_counter()
        vectors = self.retriever.vectors([p.hit for p in state.passages])
        buffer, raw, sentences, first, last, pieces, held = SentenceBuffer(), "", [], None, None, 0, True

        def check(raw_sentence: str) -> Iterator[Delta]:
            if NOT_FOUND in raw_sentence:
                return
            sentence = self.checker.check([raw_sentence], state.passages, vectors, state.language)[0]
            sentences.append(sentence)
            yield Delta(render([sentence], state.language), sentence)

        for chunk in self.chat_model.stream(state.messages, stop=["<|im_end|>", "</passages>"]):
            text = str(chunk.content)
            if not text:
                continue
            last = time.perf_counter() - started
            if first is None:
                first = last
            pieces += 1
            raw += text
            if held and raw.lstrip().startswith(NOT_FOUND[: len(raw.lstrip())]):
                continue  # this may be the refusal token: hold it back
            for piece in buffer.feed(raw if held else text):
                yield from check(piece)
            held = False
        for piece in buffer.flush():
            yield from check(piece)
        total = time.perf_counter() - started
        timings = {**state.retrieval.timings, **state.timings, "ttft": first or total, "generate": total}
        if pieces > 1 and last > first:
            timings["tokens_per_s"] = (pieces - 1) / (last - first)  # decode rate, first to last token
        refused = raw.strip().startswith(NOT_FOUND) or not sentences
        text = t(state.language, "refusal") if refused else render(sentences, state.language).strip()
        citations = sorted({n for s in sentences for n in s.citations})
        yield Answer(question=state.question, language=state.language, text=text,
                     sources=state.retrieval.hits, sentences=[] if refused else sentences,
                     citations=[] if refused else citations, refused=refused, queries=state.queries,
                     timings=timings, prompt_tokens=state.prompt_tokens, completion_tokens=pieces)

    # -- composition ----------------------------------------------------------

    def runnable(self) -> Runnable:
        prepare = RunnableLambda(self.rewrite) | RunnableLambda(self.retrieve) | RunnableLambda(self.prompt)
        return prepare | RunnableGenerator(self.generate)

    def stream(self, question: str) -> Iterator[Delta | Answer]:
        return self.runnable().stream(question)

    def invoke(self, question: str) -> Answer:
        answer = None
        for event in self.stream(question):
            if isinstance(event, Answer):
                answer = event
        return answer
