"""The on-disk index: FAISS + BM25 + chunks + manifest (see ``store.py``).

``python -m rag.index`` updates it from the corpus (``__main__.py``).
"""

from .store import (
    BuildReport,
    Changes,
    Index,
    Manifest,
    embedding_text,
    is_stale,
    load_index,
    plan,
    read_manifest,
    update_index,
)

__all__ = [
    "BuildReport",
    "Changes",
    "Index",
    "Manifest",
    "embedding_text",
    "is_stale",
    "load_index",
    "plan",
    "read_manifest",
    "update_index",
]
