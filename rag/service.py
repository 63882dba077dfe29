"""Wires the pieces: settings -> index -> retriever -> (later) the answer chain.

Entry points (``rag.ask``, ``app.py``) call this module and nothing deeper.
"""

from __future__ import annotations

import logging
import time

from .config import Settings
from .embeddings import get_embedder
from .index import BuildReport, is_stale, load_index, update_index
from .index.store import Progress
from .retrieve import Retriever
from .rewrite import GlossaryRewriter, Rewriter
from .types import Retrieval

log = logging.getLogger(__name__)


def ensure_index(settings: Settings, progress: Progress | None = None) -> BuildReport | None:
    """Build or update the index if it is missing or behind the corpus; None if it was current."""
    if not is_stale(settings):
        return None
    log.info("index in %s is missing or out of date; updating", settings.index_dir)
    return update_index(settings, progress=progress)


def rewriters_for(settings: Settings) -> list[Rewriter]:
    return [GlossaryRewriter()] if settings.glossary else []


def open_retriever(settings: Settings, progress: Progress | None = None,
                   rewriters: list[Rewriter] | None = None) -> Retriever:
    """A retriever over an up-to-date index (built first if needed)."""
    ensure_index(settings, progress)
    embedder = get_embedder(settings.embedder, settings.threads)
    index = load_index(settings, embedder)
    return Retriever(index, embedder, settings, rewriters_for(settings) if rewriters is None else rewriters)


def search(question: str, settings: Settings, k: int | None = None,
           progress: Progress | None = None) -> Retrieval:
    """Retrieve passages for one question, timing index loading too."""
    started = time.perf_counter()
    retriever = open_retriever(settings, progress)
    loaded = time.perf_counter() - started
    result = retriever(question, k=k)
    result.timings = {"load": loaded, **result.timings}
    return result


def build_chain(settings: Settings, progress: Progress | None = None):
    """The answer chain for these settings: index, retriever, LLM, translator, checker."""
    from .chain import AnswerChain
    from .citations import CitationChecker
    from .llm import get_chat_model
    from .rewrite import LLMTranslator

    chat_model = get_chat_model(settings)
    # Its own instance even when it is the answer model's file (--model qwen2.5-coder-0.5b).
    translator = LLMTranslator(get_chat_model(settings.with_(llm_model=settings.rewrite_model), instance="rewrite")
                               if settings.llm_backend == "llama-cpp" and settings.rewrite_model else chat_model)
    rewriters = rewriters_for(settings) + [translator]
    retriever = open_retriever(settings, progress, rewriters=rewriters)
    # The checker translates while the answer model is streaming. A local model
    # serves one call at a time, so with the transformers backend (no separate
    # rewrite model) it would wait on itself forever: doubtful English sentences
    # are then judged without the second look. A server takes both calls.
    separate = translator.chat_model is not chat_model or settings.llm_backend == "openai"
    checker = CitationChecker(retriever.embedder, retriever.all_vectors(),
                              translate=translator.translate if separate else None)
    return AnswerChain(retriever, chat_model, settings, rewriters, checker, translator=answer_translator(settings),
                       grader=passage_grader(settings, chat_model), judge=sentence_judge(settings, chat_model))


def passage_grader(settings: Settings, chat_model):
    """The answer model as a judge of whether the passages answer (``rag.grade``),
    with the threshold calibrated for it; None when there is none (or it is off)."""
    from .grade import PassageGrader

    threshold = settings.grade_in_force
    return PassageGrader(chat_model, threshold) if threshold > 0 else None


def sentence_judge(settings: Settings, chat_model):
    """The answer model as a second reader of the sentences the citation check
    leaves unsupported (``rag.grade``); None when it is not calibrated (or off)."""
    from .grade import SentenceJudge

    threshold = settings.judge_in_force
    return SentenceJudge(chat_model, threshold) if threshold > 0 else None


def answer_translator(settings: Settings):
    """What puts checked sentences into the question's language (``rag.translate``),
    or None to have the model write in the question's language itself.

    It works while the answer streams, so with llama-cpp it is a second instance
    of the answer model (the weights are memory-mapped, so shared). A server takes
    both calls. A transformers model would need a second copy in memory: none.
    """
    from .llm import get_chat_model
    from .translate import SentenceTranslator

    if settings.draft == "question" or settings.llm_backend == "transformers":
        return None
    return SentenceTranslator(get_chat_model(settings, instance="translate" if settings.llm_backend == "llama-cpp"
                                             else "answer"))


def refresh(chain) -> bool:
    """Point a running chain at the live index if a build has replaced it.

    The app keeps answering from the old index while a build runs; this swaps
    in the new one afterwards (loading takes well under a second). Returns
    True when it reloaded.
    """
    from .index.store import current_build

    live = current_build(chain.settings.index_dir)
    if live is None or live == chain.retriever.index.path:
        return False
    retriever = chain.retriever
    retriever.reload(load_index(chain.settings, retriever.embedder))
    chain.checker.background = retriever.all_vectors()
    return True
