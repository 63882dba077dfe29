"""The only module that knows LLM backends. Each is a LangChain chat model:

* ``llama-cpp`` — llama-cpp-python over a GGUF file (the default: a bundled preset);
* ``transformers`` — any Hugging Face causal LM by path or name (a GGUF file too);
* ``openai`` — any OpenAI-compatible server (vLLM, Ollama, llama.cpp's server) by base URL.

Nothing loads at import time; ``get_chat_model`` builds one per settings and
the weights load on the first call, once per process.
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from .config import Settings
from .errors import ModelError
from .models import PRESETS, resolve_gguf

log = logging.getLogger(__name__)

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def to_openai_messages(messages: list[BaseMessage]) -> list[dict]:
    return [{"role": _ROLES.get(m.type, "user"), "content": m.content} for m in messages]


class _StreamingChat(BaseChatModel):
    """Shared plumbing: subclasses implement ``_deltas`` (text pieces) only."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    max_tokens: int = 320
    temperature: float = 0.1
    repeat_penalty: float = 1.1

    def _deltas(self, messages: list[BaseMessage], stop: list[str] | None, **overrides: Any) -> Iterator[str]:
        """Text pieces of the reply; ``overrides`` may set max_tokens and temperature for one call."""
        raise NotImplementedError

    def _option(self, overrides: dict, name: str):
        value = overrides.get(name)
        return getattr(self, name) if value is None else value

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for text in self._deltas(messages, stop, **kwargs):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
            if run_manager:
                run_manager.on_llm_new_token(text, chunk=chunk)
            yield chunk

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        text = "".join(self._deltas(messages, stop, **kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


class LlamaCppChat(_StreamingChat):
    """llama-cpp-python. One ``Llama`` per model and process; calls are
    serialised because a context is not thread-safe. llama-cpp-python reuses the
    KV cache for the prefix a prompt shares with the previous one, so a fixed
    system prompt is processed once. (Its RAM state cache would also survive
    interleaved prompts, but saving the state costs ~0.8 s after every reply.)"""

    model_path: str
    n_ctx: int = 4096
    n_threads: int = 2
    _llama: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    @property
    def llama(self):
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ModelError("llama-cpp-python is not installed; run `make app`") from exc
            log.info("loading %s", self.model_path)
            try:
                # flash attention cuts prompt processing time by ~10% on CPU.
                self._llama = Llama(model_path=self.model_path, n_ctx=self.n_ctx, n_threads=self.n_threads,
                                    n_batch=512, flash_attn=True, verbose=False)
            except (ValueError, RuntimeError) as exc:
                raise ModelError(f"cannot load {self.model_path}: {exc}") from exc
            # Free it before the interpreter tears down the C bindings it needs to do so.
            atexit.register(self._llama.close)

        return self._llama

    def get_num_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False))

    def yes_probability(self, messages: list[BaseMessage]) -> float:
        import llama_cpp

        with self._lock:
            # One token is sampled; the logits it was sampled from stay in the context.
            self.llama.create_chat_completion(to_openai_messages(messages), max_tokens=1, temperature=0.0)
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.llama.ctx, -1),
                                           shape=(self.llama.n_vocab(),)).copy()
        return yes_share(logits, lambda word: self.llama.tokenize(word.encode("utf-8"), add_bos=False))

    def _deltas(self, messages, stop, **overrides):
        with self._lock:
            stream = self.llama.create_chat_completion(
                to_openai_messages(messages), stream=True, max_tokens=self._option(overrides, "max_tokens"),
                stop=stop or None, temperature=self._option(overrides, "temperature"),
                repeat_penalty=self.repeat_penalty, top_p=0.9)
            for part in stream:
                text = part["choices"][0]["delta"].get("content")
                if text:
                    yield text


class TransformersChat(_StreamingChat):
    """A Hugging Face causal LM on the CPU. ``model`` is a folder or hub name; a
    ``.gguf`` file is de-quantised by transformers (slow, but it works offline)."""

    model: str
    n_threads: int = 2
    _pipe: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "transformers"

    def _load(self):
        if self._pipe is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            torch.set_num_threads(self.n_threads)
            path = Path(self.model)
            kwargs = {"gguf_file": path.name} if path.suffix == ".gguf" else {}
            source = str(path.parent) if kwargs else self.model
            try:
                tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
                model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **kwargs)
            except (OSError, ValueError) as exc:
                raise ModelError(f"cannot load transformers model {self.model!r}: {exc}") from exc
            model.eval()
            self._pipe = (tokenizer, model)
        return self._pipe

    def get_num_tokens(self, text: str) -> int:
        tokenizer, _ = self._load()
        return len(tokenizer.encode(text, add_special_tokens=False))

    def yes_probability(self, messages: list[BaseMessage]) -> float:
        import torch

        tokenizer, model = self._load()
        with self._lock, torch.no_grad():
            inputs = tokenizer.apply_chat_template(to_openai_messages(messages), add_generation_prompt=True,
                                                   return_tensors="pt", return_dict=True)
            logits = model(**inputs).logits[0, -1].float().numpy()
        return yes_share(logits, lambda word: tokenizer.encode(word, add_special_tokens=False))

    def _deltas(self, messages, stop, **overrides):
        from transformers import TextIteratorStreamer

        tokenizer, model = self._load()
        with self._lock:
            inputs = tokenizer.apply_chat_template(to_openai_messages(messages), add_generation_prompt=True,
                                                   return_tensors="pt", return_dict=True)
            streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
            temperature = self._option(overrides, "temperature")
            sampling = ({"do_sample": True, "temperature": temperature, "top_p": 0.9}
                        if temperature > 0.05 else {"do_sample": False})
            worker = threading.Thread(target=model.generate, kwargs={
                **inputs, "streamer": streamer, "max_new_tokens": self._option(overrides, "max_tokens"),
                "repetition_penalty": self.repeat_penalty, **sampling})
            worker.start()
            text = ""
            try:
                for piece in streamer:
                    text += piece
                    cut = _first_stop(text, stop)
                    if cut is not None:
                        # Emit what comes before the stop sequence; generation finishes in the background.
                        yield piece[: max(0, len(piece) - (len(text) - cut))]
                        break
                    yield piece
            finally:
                worker.join()


YES, NO = ("yes", "Yes", " yes", " Yes"), ("no", "No", " no", " No")


def yes_share(logits: np.ndarray, tokenize: Callable[[str], list[int]]) -> float:
    """P(the reply starts "yes") / (P("yes") + P("no")), from next-token logits.

    >>> vocab = {"yes": 0, "no": 1, "maybe": 2}
    >>> round(yes_share(np.log(np.array([0.6, 0.2, 0.2])), lambda w: [vocab.get(w.strip().lower(), 2)]), 2)
    0.75
    """
    p = np.exp(logits - logits.max())
    ids = {word: tokens[0] for word in YES + NO if (tokens := tokenize(word))}
    yes = p[sorted({ids[w] for w in YES if w in ids})].sum()
    no = p[sorted({ids[w] for w in NO if w in ids})].sum()
    return float(yes / (yes + no)) if yes + no > 0 else 0.5


def yes_probability(chat_model, messages: list[BaseMessage]) -> float:
    """How surely ``chat_model`` would begin its reply to ``messages`` with "yes"
    rather than "no" (0..1). A probability, not a sampled word, so that a
    threshold can be calibrated on it. A server is asked for the first token's
    log-probabilities; one that gives none is taken at its word (1 or 0)."""
    if isinstance(chat_model, (LlamaCppChat, TransformersChat)):
        return chat_model.yes_probability(messages)
    reply = chat_model.bind(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=10).invoke(messages)
    content = (reply.response_metadata.get("logprobs") or {}).get("content") or []
    if content and content[0].get("top_logprobs"):
        top: dict[str, float] = {}
        for t in content[0]["top_logprobs"]:  # "Yes", " yes", "yes": one word, their probabilities added
            word = t["token"].strip().lower()
            top[word] = top.get(word, 0.0) + float(np.exp(t["logprob"]))
        yes, no = top.get("yes", 0.0), top.get("no", 0.0)
        if yes + no > 0:
            return float(yes / (yes + no))
    return 1.0 if str(reply.content).strip().lower().startswith("yes") else 0.0


def _first_stop(text: str, stop: list[str] | None) -> int | None:
    positions = [text.find(s) for s in stop or [] if s and s in text]
    return min(positions) if positions else None


def _openai_chat(settings: Settings) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(base_url=settings.llm_base_url, api_key=settings.llm_api_key or "not-needed",
                      model=settings.llm_model, temperature=settings.temperature, max_tokens=settings.max_tokens,
                      frequency_penalty=0.3, streaming=True, timeout=300, max_retries=1)


def get_chat_model(settings: Settings, instance: str = "answer") -> BaseChatModel:
    """The chat model the settings name; the same object for the same settings and
    ``instance``. A local model serves one call at a time, so a job that runs while
    the answer streams (translating for the citation checker) needs its own instance."""
    return _chat_model(settings.llm_backend, settings.llm_model, settings.llm_base_url, settings.llm_api_key,
                       str(settings.cache_dir), settings.threads, settings.n_ctx, settings.max_tokens,
                       settings.temperature, settings.repeat_penalty, instance)


@functools.lru_cache(maxsize=4)
def _chat_model(backend, model, base_url, api_key, cache_dir, threads, n_ctx, max_tokens, temperature,
                repeat_penalty, instance) -> BaseChatModel:
    common = {"max_tokens": max_tokens, "temperature": temperature, "repeat_penalty": repeat_penalty}
    if backend == "llama-cpp":
        path = resolve_gguf(model, Path(cache_dir))
        return LlamaCppChat(model_path=str(path), n_ctx=n_ctx, n_threads=threads, **common)
    if backend == "transformers":
        source = str(resolve_gguf(model, Path(cache_dir))) if model in PRESETS else model
        return TransformersChat(model=source, n_threads=threads, **common)
    settings = Settings(llm_backend=backend, llm_model=model, llm_base_url=base_url, llm_api_key=api_key,
                        max_tokens=max_tokens, temperature=temperature)
    return _openai_chat(settings)


def token_counter(chat_model) -> callable:
    """The model's own tokenizer where we have it; otherwise an estimate
    (a server's tokenizer is not ours to call: ~0.8 token per Chinese character,
    ~4 characters per token elsewhere)."""
    if isinstance(chat_model, (LlamaCppChat, TransformersChat)):
        return chat_model.get_num_tokens
    return estimate_tokens


def estimate_tokens(text: str) -> int:
    """A rough token count, rounded up.

    >>> estimate_tokens("什么是 LoRA")
    4
    """
    cjk = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
    return int(cjk * 0.8 + (len(text) - cjk) / 4 + 0.999)
