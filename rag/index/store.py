"""Build, update and load the on-disk index: FAISS + BM25 + chunks + manifest.

Layout of the index folder::

    index/
      CURRENT               name of the live build (replaced atomically)
      builds/<build-id>/    manifest.json, chunks.jsonl, dense.faiss, lexical.json
      embeddings.sqlite     passage-vector cache, shared by all builds

A build is written into a fresh folder and only then made live by replacing
``CURRENT``, so a crash or Ctrl-C at any moment leaves the previous index
loadable. Folders not named by ``CURRENT`` are removed by the next build.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import corpus
from ..chunking import CHUNKER_VERSION, chunk_document
from ..config import Settings
from ..embedding_cache import EmbeddingCache
from ..embeddings import Embedder, get_embedder
from ..errors import DocumentError, IndexBusy, IndexCorrupt, IndexIncompatible, IndexMissing
from ..lexical import BM25, tokenize
from ..types import Chunk

log = logging.getLogger(__name__)

FORMAT = "rag-interview-index"
FORMAT_VERSION = 1
FILES = ("chunks.jsonl", "dense.faiss", "lexical.json")

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class Manifest:
    embedder: dict            # {"id", "dim"}
    chunking: dict            # Settings.chunking_params() + chunker version
    files: dict[str, dict]    # path -> {"sha256", "title", "chunks", "bytes", "indexed_at"}
    skipped: dict[str, dict]  # path -> {"sha256", "reason"}
    counts: dict              # {"documents", "chunks"}
    checksums: dict[str, str] = field(default_factory=dict)
    created: str = ""
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @classmethod
    def from_json(cls, data: dict) -> Manifest:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class Index:
    """A loaded index: rows of ``dense`` and ``lexical`` are positions in ``chunks``."""

    path: Path
    manifest: Manifest
    chunks: list[Chunk]
    dense: object  # faiss.Index
    lexical: BM25


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rechunk: bool = False  # chunking settings differ: every document is split again

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.deleted or self.rechunk)


@dataclass
class BuildReport:
    changes: Changes
    skipped: list[corpus.Skipped]
    documents: int
    chunks: int
    embedded: int      # vectors computed now (the rest came from the cache)
    seconds: float
    build: str | None  # the live build's name; None when nothing needed doing

    @property
    def up_to_date(self) -> bool:
        return self.build is None


def embedding_text(chunk: Chunk) -> str:
    """What is embedded and BM25-indexed: the heading path gives a passage its topic."""
    return f"{chunk.section_label or chunk.title}\n{chunk.text}"


def chunking_params(settings: Settings) -> dict:
    return {**settings.chunking_params(), "version": CHUNKER_VERSION}


# --- reading -----------------------------------------------------------------

def current_build(index_dir: Path) -> Path | None:
    pointer = Path(index_dir) / "CURRENT"
    if not pointer.exists():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    return Path(index_dir) / "builds" / name if name else None


def read_manifest(index_dir: Path) -> Manifest:
    build = current_build(index_dir)
    if build is None:
        raise IndexMissing(f"no index in {index_dir}; build one with `python -m rag.index`")
    try:
        data = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
        manifest = Manifest.from_json(data)
    except (OSError, ValueError, TypeError) as exc:
        raise IndexCorrupt(f"the index manifest in {build} is unreadable ({exc}); {_rebuild_hint(index_dir)}") from exc
    if manifest.format != FORMAT or manifest.format_version != FORMAT_VERSION:
        raise IndexIncompatible(
            f"the index in {index_dir} has format {manifest.format} v{manifest.format_version}, "
            f"this program reads {FORMAT} v{FORMAT_VERSION}; {_rebuild_hint(index_dir)}")
    return manifest


def check_compatible(manifest: Manifest, embedder_id: str, index_dir: Path) -> None:
    built_with = manifest.embedder.get("id")
    if built_with != embedder_id:
        raise IndexIncompatible(
            f"the index in {index_dir} was built with embedder {built_with!r}, but the settings ask for "
            f"{embedder_id!r}; {_rebuild_hint(index_dir)}")


def load_index(settings: Settings, embedder: Embedder | None = None) -> Index:
    """Load the live build, checking format, embedder and file checksums."""
    import faiss

    embedder = embedder or get_embedder(settings.embedder, settings.threads)
    manifest = read_manifest(settings.index_dir)
    check_compatible(manifest, embedder.id, settings.index_dir)
    build = current_build(settings.index_dir)
    for name in FILES:
        path = build / name
        if not path.exists() or _sha256(path) != manifest.checksums.get(name):
            raise IndexCorrupt(f"{path} is missing or does not match its checksum; {_rebuild_hint(settings.index_dir)}")
    try:
        chunks = [Chunk.from_json(json.loads(line))
                  for line in (build / "chunks.jsonl").read_text(encoding="utf-8").splitlines() if line]
        dense = faiss.read_index(str(build / "dense.faiss"))
        lexical = BM25.load(build / "lexical.json")
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise IndexCorrupt(f"cannot read the index in {build} ({exc}); {_rebuild_hint(settings.index_dir)}") from exc
    if not (len(chunks) == dense.ntotal == len(lexical) == manifest.counts.get("chunks")):
        raise IndexCorrupt(f"the parts of the index in {build} disagree on the number of chunks; "
                           f"{_rebuild_hint(settings.index_dir)}")
    return Index(path=build, manifest=manifest, chunks=chunks, dense=dense, lexical=lexical)


def plan(settings: Settings, manifest: Manifest | None) -> Changes:
    """What an update would do, from file hashes alone (no parsing, no models)."""
    on_disk = corpus.list_files(settings.corpus_dir).hashes
    changes = Changes()
    known = {} if manifest is None else {
        **{p: e["sha256"] for p, e in manifest.files.items()},
        **{p: e["sha256"] for p, e in manifest.skipped.items()},
    }
    for path, digest in on_disk.items():
        if path not in known:
            changes.added.append(path)
        elif known[path] != digest:
            changes.changed.append(path)
        else:
            changes.unchanged.append(path)
    changes.deleted = sorted(set(known) - set(on_disk))
    changes.rechunk = manifest is not None and manifest.chunking != chunking_params(settings)
    return changes


def is_stale(settings: Settings) -> bool:
    """True when the index is missing or the corpus/chunking settings have moved on."""
    try:
        manifest = read_manifest(settings.index_dir)
    except IndexMissing:
        return True
    return plan(settings, manifest).any


# --- writing -----------------------------------------------------------------

def update_index(settings: Settings, full: bool = False, progress: Progress | None = None,
                 embedder: Embedder | None = None) -> BuildReport:
    """Bring the index up to date with the corpus, embedding only new text.

    ``full`` ignores the previous build (vectors still come from the cache) and
    is the way to switch embedders.
    """
    started = time.perf_counter()
    embedder = embedder or get_embedder(settings.embedder, settings.threads)
    index_dir = Path(settings.index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with _build_lock(index_dir):
        previous = None if full else _previous(settings, embedder)
        changes = plan(settings, previous.manifest if previous else None)
        if previous is not None and not changes.any:
            return BuildReport(changes, [corpus.Skipped(p, e["reason"]) for p, e in previous.manifest.skipped.items()],
                               len(previous.manifest.files), len(previous.chunks), 0,
                               time.perf_counter() - started, None)

        reuse = set() if previous is None or changes.rechunk else set(changes.unchanged)
        old_by_doc: dict[str, list[Chunk]] = {}
        if previous is not None:
            for chunk in previous.chunks:
                old_by_doc.setdefault(chunk.doc, []).append(chunk)
        chunks, files, skipped = _collect(settings, changes, reuse, old_by_doc, previous, progress)
        chunks = list({c.id: c for c in chunks}.values())  # a passage repeated within a section, once

        texts = [embedding_text(c) for c in chunks]
        cache = EmbeddingCache(index_dir / "embeddings.sqlite")
        try:
            done = 0
            todo = _count_missing(cache, embedder, texts)

            def tick(n: int) -> None:
                nonlocal done
                done += n
                if progress:
                    progress("embed", done, todo)

            if progress:
                progress("embed", 0, todo)
            vectors, embedded = cache.embed_passages(embedder, texts, progress=tick)
        finally:
            cache.close()
        if progress:
            progress("lexical", 0, 1)
        lexical = BM25.build([tokenize(t) for t in texts])
        if progress:
            progress("lexical", 1, 1)

        manifest = Manifest(
            embedder={"id": embedder.id, "dim": int(vectors.shape[1]) if len(vectors) else embedder.dim},
            chunking=chunking_params(settings),
            files=files,
            skipped={s.path: {"sha256": _sha256(settings.corpus_dir / s.path), "reason": s.reason,
                              "duplicate_of": s.duplicate_of} for s in skipped},
            counts={"documents": len(files), "chunks": len(chunks)},
            created=_now(),
        )
        build = _write_build(index_dir, manifest, chunks, vectors, lexical)
        _cleanup(index_dir, keep=build)
        log.info("index %s: %d documents, %d chunks, %d embedded", build, len(files), len(chunks), embedded)
        return BuildReport(changes, skipped, len(files), len(chunks), embedded, time.perf_counter() - started, build)


@dataclass
class _Previous:
    manifest: Manifest
    chunks: list[Chunk]


def _previous(settings: Settings, embedder: Embedder) -> _Previous | None:
    """The live build's manifest and chunks, or None if there is none.

    An index built for another embedder or format is refused rather than
    silently replaced: the user asked for an update, not a rebuild.
    """
    try:
        manifest = read_manifest(settings.index_dir)
    except IndexMissing:
        return None
    check_compatible(manifest, embedder.id, settings.index_dir)
    index = load_index(settings, embedder)  # also verifies checksums
    return _Previous(index.manifest, index.chunks)


def _collect(settings, changes, reuse, old_by_doc, previous, progress):
    """Chunks and manifest entries for every file: reused from the previous build
    where unchanged, read and split otherwise. A file whose bytes equal an
    indexed file's is skipped as a duplicate (and re-examined on every build,
    in case the original goes away)."""
    chunks: list[Chunk] = []
    files: dict[str, dict] = {}
    skipped: list[corpus.Skipped] = []
    to_read = sorted(p for p in changes.added + changes.changed + changes.unchanged if p not in reuse)
    for path in sorted(reuse):
        if path in previous.manifest.files:
            chunks.extend(old_by_doc.get(path, []))
            files[path] = previous.manifest.files[path]
        elif previous.manifest.skipped[path].get("duplicate_of"):
            to_read.append(path)
        else:  # a file that failed last time and has not changed still fails
            skipped.append(corpus.Skipped(path, previous.manifest.skipped[path]["reason"]))
    indexed_by_hash = {entry["sha256"]: path for path, entry in files.items()}
    for i, path in enumerate(to_read):
        if progress:
            progress("read", i, len(to_read))
        try:
            doc = corpus.read_document(settings.corpus_dir, path)
        except DocumentError as exc:
            log.warning("skipping %s", exc)
            skipped.append(corpus.Skipped(path, str(exc)))
            continue
        if doc.sha256 in indexed_by_hash:
            original = indexed_by_hash[doc.sha256]
            skipped.append(corpus.Skipped(path, f"{path}: same content as {original}, not indexed twice", original))
            continue
        indexed_by_hash[doc.sha256] = path
        doc_chunks = chunk_document(doc, settings.chunk_size, settings.chunk_overlap, settings.chunker)
        chunks.extend(doc_chunks)
        files[path] = {"sha256": doc.sha256, "title": doc.title, "chunks": len(doc_chunks),
                       "bytes": (settings.corpus_dir / path).stat().st_size, "indexed_at": _now()}
    if progress:
        progress("read", len(to_read), len(to_read))
    order = {p: i for i, p in enumerate(sorted(files))}
    chunks.sort(key=lambda c: (order.get(c.doc, 0), c.start))
    return chunks, dict(sorted(files.items())), skipped


def _count_missing(cache: EmbeddingCache, embedder: Embedder, texts: list[str]) -> int:
    keys = list(dict.fromkeys(cache.key(embedder.id, t) for t in texts))
    return len(keys) - len(cache.get_many(keys, embedder.dim))


def _write_build(index_dir: Path, manifest: Manifest, chunks: list[Chunk], vectors: np.ndarray, lexical: BM25) -> str:
    import faiss

    name = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:8]
    build = index_dir / "builds" / name
    build.mkdir(parents=True)
    with open(build / "chunks.jsonl", "w", encoding="utf-8") as f:
        for chunk in chunks:
            f.write(json.dumps(chunk.to_json(), ensure_ascii=False) + "\n")
    dense = faiss.IndexFlatIP(int(manifest.embedder["dim"]))
    if len(vectors):
        dense.add(np.ascontiguousarray(vectors, dtype=np.float32))
    faiss.write_index(dense, str(build / "dense.faiss"))
    lexical.save(build / "lexical.json")
    manifest.checksums = {n: _sha256(build / n) for n in FILES}
    (build / "manifest.json").write_text(json.dumps(asdict(manifest), ensure_ascii=False, indent=1), encoding="utf-8")
    for path in [*(build / n for n in (*FILES, "manifest.json")), build]:
        _fsync(path)
    # The switch: one atomic rename of a one-line file.
    pointer_tmp = index_dir / f".CURRENT.{uuid.uuid4().hex}"
    pointer_tmp.write_text(name + "\n", encoding="utf-8")
    _fsync(pointer_tmp)
    os.replace(pointer_tmp, index_dir / "CURRENT")
    _fsync(index_dir)
    return name


def _cleanup(index_dir: Path, keep: str) -> None:
    """Remove builds that are not live: old ones and ones a crash left half-written."""
    for path in (index_dir / "builds").iterdir():
        if path.name != keep:
            shutil.rmtree(path, ignore_errors=True)
    for path in index_dir.glob(".CURRENT.*"):
        path.unlink(missing_ok=True)


@contextmanager
def _build_lock(index_dir: Path):
    with open(index_dir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise IndexBusy(f"another process is building the index in {index_dir}; try again when it finishes") from exc
            raise
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _rebuild_hint(index_dir: Path) -> str:
    return f"rebuild it with `python -m rag.index --full --index {index_dir}`"


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
