"""Each LLM backend against a real model or server: llama.cpp, transformers,
and an OpenAI-compatible server (llama-cpp-python's own, started here)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from rag import lang
from rag.config import Settings
from rag.errors import ConfigError
from rag.llm import LlamaCppChat, TransformersChat, get_chat_model
from rag.models import FAST_MODEL, resolve_gguf

PROMPT = [SystemMessage("Reply with one short sentence."), HumanMessage("Say: the sky is blue.")]


def test_models_are_not_loaded_until_used():
    model = get_chat_model(Settings(llm_model=FAST_MODEL))
    assert isinstance(model, LlamaCppChat) and isinstance(model, BaseChatModel)
    assert model is get_chat_model(Settings(llm_model=FAST_MODEL))  # reused within the process


def test_openai_backend_needs_a_base_url():
    with pytest.raises(ConfigError, match="base URL"):
        Settings(llm_backend="openai")


def test_llama_cpp_backend_streams(tmp_path):
    model = get_chat_model(Settings(llm_model=FAST_MODEL, temperature=0.0, max_tokens=24))
    pieces = [c.content for c in model.stream(PROMPT)]
    assert len(pieces) > 2 and "blue" in "".join(pieces).lower()
    assert model.get_num_tokens("什么是 LoRA") > 0


@pytest.mark.slow
def test_transformers_backend_loads_the_bundled_gguf_and_streams():
    """transformers de-quantises the 0.5B GGUF (~45 s): a real HF causal LM, offline."""
    path = resolve_gguf(FAST_MODEL, Settings().cache_dir)
    model = get_chat_model(Settings(llm_backend="transformers", llm_model=str(path), temperature=0.0, max_tokens=12))
    assert isinstance(model, TransformersChat)
    pieces = [c.content for c in model.stream(PROMPT)]
    text = "".join(pieces)
    assert len(pieces) > 1 and "blue" in text.lower(), text
    stopped = "".join(c.content for c in model.stream(PROMPT, stop=["blue"]))
    assert "blue" not in stopped.lower()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def openai_server(tmp_path_factory):
    """``python -m llama_cpp.server`` with the 0.5B model on 127.0.0.1."""
    port = _free_port()
    path = resolve_gguf(FAST_MODEL, Settings().cache_dir)
    log = open(tmp_path_factory.mktemp("server") / "server.log", "w+b")  # a pipe would fill up and stall it
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--model_alias", "qwen-0.5b",
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"llama_cpp.server exited: {log.read().decode()[-2000:]}")
        try:
            urllib.request.urlopen(url + "/models", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("llama_cpp.server did not start within 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.mark.slow
def test_openai_backend_against_a_real_server(openai_server):
    model = get_chat_model(Settings(llm_backend="openai", llm_base_url=openai_server, llm_model="qwen-0.5b",
                                    temperature=0.0, max_tokens=24))
    text = "".join(str(c.content) for c in model.stream(PROMPT))
    assert "blue" in text.lower()


@pytest.mark.slow
def test_full_chain_over_the_openai_backend(openai_server, session_index):
    from rag.service import build_chain

    settings = session_index.settings.with_(llm_backend="openai", llm_base_url=openai_server, llm_model="qwen-0.5b",
                                            temperature=0.0)
    chain = build_chain(settings)
    answer = chain.invoke("什么是 LoRA？")
    assert not answer.refused and answer.citations
    assert any("LoRA" in answer.sources[n - 1].chunk.text for n in answer.citations)
    # An English question: drafted in Chinese, translated by the server while the draft streams.
    answer = chain.invoke("What is LoRA?")
    assert not answer.refused and answer.citations
    assert any(s.source for s in answer.sentences) and lang.detect(answer.text) == "en"


def test_answers_are_translated_by_a_second_llama_cpp_instance_or_the_server_and_not_by_transformers():
    from rag.service import answer_translator

    local = answer_translator(Settings())
    assert local.chat_model is not get_chat_model(Settings()) and isinstance(local.chat_model, LlamaCppChat)
    server = Settings(llm_backend="openai", llm_base_url="http://127.0.0.1:9/v1")
    assert answer_translator(server).chat_model is get_chat_model(server)  # a server serves both calls
    assert answer_translator(Settings(llm_backend="transformers")) is None  # a second copy in memory: no
    assert answer_translator(Settings(draft="question")) is None


YES_QUESTION = [HumanMessage("Is Paris the capital of France? Reply with one word: yes or no.")]
NO_QUESTION = [HumanMessage("Is Paris the capital of Japan? Reply with one word: yes or no.")]


def test_llama_cpp_yes_probability_reads_the_models_first_token():
    """The default model knows its capitals (the 0.5B says "Yes" to both questions)."""
    from rag.llm import yes_probability

    model = get_chat_model(Settings())
    yes, no = yes_probability(model, YES_QUESTION), yes_probability(model, NO_QUESTION)
    assert 0.8 < yes <= 1 and 0 <= no < 0.2
    # A prompt already in the KV cache is read again, not skipped (batching moves the last digits).
    assert yes_probability(model, YES_QUESTION) == pytest.approx(yes, abs=0.01)


@pytest.mark.slow
def test_transformers_yes_probability_agrees_with_llama_cpp_on_the_same_weights():
    from rag.llm import yes_probability

    path = resolve_gguf(FAST_MODEL, Settings().cache_dir)
    # The settings of the backend test above: the de-quantised model is loaded once.
    hf = get_chat_model(Settings(llm_backend="transformers", llm_model=str(path), temperature=0.0, max_tokens=12))
    cpp = get_chat_model(Settings(llm_model=FAST_MODEL))
    for question in (YES_QUESTION, NO_QUESTION):
        assert yes_probability(hf, question) == pytest.approx(yes_probability(cpp, question), abs=0.1)


@pytest.mark.slow
def test_yes_probability_over_a_server_agrees_with_the_model_in_process(openai_server):
    """The server's top log-probabilities give what the logits give in process (same 0.5B weights)."""
    from rag.llm import yes_probability

    served = get_chat_model(Settings(llm_backend="openai", llm_base_url=openai_server, llm_model="qwen-0.5b"))
    local = get_chat_model(Settings(llm_model=FAST_MODEL))
    for question in (YES_QUESTION, NO_QUESTION):
        p = yes_probability(served, question)
        assert 0 < p < 1  # a probability, not the server's one word taken as 1 or 0
        assert p == pytest.approx(yes_probability(local, question), abs=0.1)
