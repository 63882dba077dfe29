"""A persistent cache of passage vectors, keyed by embedder and text hash.

Passages embed at only ~5 a second on two cores, so a vector is computed once
per (embedder, text) and kept in SQLite beside the index. Writes commit batch
by batch: an interrupted build keeps what it has already paid for.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .embeddings import Embedder


class EmbeddingCache:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30)
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def key(embedder_id: str, text: str) -> str:
        return hashlib.sha256(f"{embedder_id}\x1f{text}".encode()).hexdigest()

    def get_many(self, keys: list[str], dim: int) -> dict[str, np.ndarray]:
        found = {}
        for i in range(0, len(keys), 500):  # SQLite caps the number of bound parameters
            batch = keys[i:i + 500]
            marks = ",".join("?" * len(batch))
            for key, blob in self._db.execute(f"SELECT key, vec FROM vectors WHERE key IN ({marks})", batch):
                if isinstance(blob, bytes) and len(blob) == dim * 4:  # a damaged blob is recomputed
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)",
                             [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()])
        self._db.commit()

    def embed_passages(self, embedder: Embedder, texts: list[str], batch_size: int = 8,
                       progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, int]:
        """Vectors for ``texts`` (rows in order) and how many had to be computed.

        ``progress(n)`` is called as each batch of ``n`` new vectors is done.
        """
        keys = [self.key(embedder.id, t) for t in texts]
        dim = embedder.dim
        known = self.get_many(list(dict.fromkeys(keys)), dim)
        missing = list(dict.fromkeys(k for k in keys if k not in known))
        text_of = dict(zip(keys, texts))
        for i in range(0, len(missing), batch_size):
            batch = missing[i:i + batch_size]
            vectors = embedder.embed_passages([text_of[k] for k in batch])
            fresh = dict(zip(batch, vectors))
            self.put_many(fresh)
            known.update(fresh)
            if progress:
                progress(len(batch))
        matrix = np.stack([known[k] for k in keys]) if keys else np.zeros((0, dim), dtype=np.float32)
        return matrix.astype(np.float32), len(missing)
