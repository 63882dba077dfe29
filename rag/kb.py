"""The knowledge base as the app manages it: uploads, deletions, the document
list and index builds that run in the background while the chat goes on.

No Streamlit here: ``app.py`` draws the widgets and calls these functions, so
they can be tested on real files without a browser.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import corpus
from .config import Settings
from .errors import DocumentError, IndexBusy, IndexMissing, RagError
from .index.store import BuildReport, Manifest, read_manifest, update_index

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_NAME_CHARS = 100


class UploadRejected(RagError):
    """An uploaded file is not added: wrong type, too large, unreadable, or its name is taken."""


# --- uploads ----------------------------------------------------------------------

# Anything but letters and digits (any script, so Chinese names survive), and a
# few harmless marks, becomes "_": no separators, quotes, shell or control characters.
_UNSAFE = re.compile(r"[^\w\-. ()（）]+", re.UNICODE)


def safe_filename(name: str) -> str:
    """A file name that cannot leave the corpus folder, hide itself or surprise a shell.

    Browsers send a bare name, but a client may send any string: only the last
    path component is kept, "..", leading dots and unsafe characters go.

    >>> safe_filename("../../etc/大模型 面试?.md")
    '大模型 面试.md'
    """
    name = unicodedata.normalize("NFC", name).replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")  # control and format characters
    name = re.sub(r"\.{2,}", ".", _UNSAFE.sub("_", name))
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    stem, suffix = stem.strip(" ._")[:MAX_NAME_CHARS], suffix.strip(" ._")
    if not stem:
        raise UploadRejected("the file name is empty once unsafe characters are removed; rename the file")
    return f"{stem}.{suffix}" if suffix else stem


def validate_upload(name: str, data: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """The safe name for an upload, or ``UploadRejected`` saying what is wrong with it."""
    safe = safe_filename(name)
    suffix = Path(safe).suffix.lower()
    if suffix not in corpus.SUFFIXES:
        raise UploadRejected(f"{name}: unsupported file type {suffix or '(none)'}; "
                             f"supported: {', '.join(corpus.SUFFIXES)}")
    if not data:
        raise UploadRejected(f"{name}: the file is empty")
    if len(data) > max_bytes:
        raise UploadRejected(f"{name}: {len(data) / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit")
    return safe


@dataclass(frozen=True)
class Saved:
    """What ``save_upload`` did: ``path`` was written, or the bytes are already there as ``duplicate_of``."""

    name: str
    path: str | None = None
    title: str = ""
    duplicate_of: str | None = None


def find_duplicate(corpus_dir: Path, digest: str, manifest: Manifest | None = None) -> str | None:
    """The corpus file (or indexed document) whose bytes have this sha256, if any."""
    for path, other in corpus.list_files(corpus_dir).hashes.items():
        if other == digest:
            return path
    if manifest is not None:
        for path, entry in manifest.files.items():
            if entry.get("sha256") == digest:
                return path
    return None


def save_upload(corpus_dir: Path, name: str, data: bytes, max_bytes: int = MAX_UPLOAD_BYTES,
                manifest: Manifest | None = None) -> Saved:
    """Check an upload and put it into the corpus folder, atomically.

    A file with the same bytes as one already there is not saved again (the
    index would skip it as a duplicate anyway). The bytes are written to a
    hidden temporary file (the indexer ignores hidden files), read back with
    the indexer's own reader so a broken PDF is refused now rather than listed
    as skipped later, then hard-linked to its name: the document appears whole
    or not at all, and an existing file of that name is never overwritten.
    """
    corpus_dir = Path(corpus_dir)
    safe = validate_upload(name, data, max_bytes)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    duplicate = find_duplicate(corpus_dir, hashlib.sha256(data).hexdigest(), manifest)
    if duplicate is not None:
        return Saved(name=safe, duplicate_of=duplicate)
    suffix = Path(safe).suffix
    temp = corpus_dir / f".upload-{uuid.uuid4().hex}{suffix}"
    try:
        with open(temp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            document = corpus.read_document(corpus_dir, temp.name)
        except DocumentError as exc:
            raise UploadRejected(str(exc).replace(temp.name, safe)) from exc
        try:
            os.link(temp, corpus_dir / safe)
        except FileExistsError:
            raise UploadRejected(f"a different document named {safe} is already in the knowledge base; "
                                 f"delete it first or rename the file") from None
    finally:
        temp.unlink(missing_ok=True)
    return Saved(name=safe, path=safe, title=document.title)


def delete_document(corpus_dir: Path, rel: str) -> Path:
    """Remove one document from the corpus folder (the next index update drops its passages)."""
    root = Path(corpus_dir).resolve()
    path = (root / rel).resolve()
    if root not in path.parents:
        raise DocumentError(f"{rel}: not a document in the knowledge base")
    if not path.is_file() or path.suffix.lower() not in corpus.SUFFIXES:
        raise DocumentError(f"{rel}: no such document in {corpus_dir}")
    path.unlink()
    return path


# --- the document list ----------------------------------------------------------------

@dataclass(frozen=True)
class DocumentInfo:
    path: str
    title: str
    bytes: int
    chunks: int
    indexed_at: str  # ISO 8601, UTC


@dataclass
class Listing:
    """The knowledge base as the index sees it, and how the folder differs from it."""

    documents: list[DocumentInfo] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # path -> reason
    pending: list[str] = field(default_factory=list)       # in the folder, not (yet) in the index
    removed: list[str] = field(default_factory=list)       # in the index, gone from the folder
    built: str | None = None                               # when the live index was built

    @property
    def chunks(self) -> int:
        return sum(d.chunks for d in self.documents)


def list_documents(settings: Settings) -> Listing:
    """Indexed documents (from the live manifest), skipped files with reasons, and files not indexed yet."""
    on_disk = corpus.list_files(settings.corpus_dir).hashes
    try:
        manifest = read_manifest(settings.index_dir)
    except IndexMissing:
        return Listing(pending=sorted(on_disk))
    documents = [DocumentInfo(path, entry.get("title") or Path(path).stem, int(entry.get("bytes", 0)),
                              int(entry.get("chunks", 0)), entry.get("indexed_at", ""))
                 for path, entry in manifest.files.items()]
    known = {**{p: e["sha256"] for p, e in manifest.files.items()},
             **{p: e["sha256"] for p, e in manifest.skipped.items()}}
    return Listing(
        documents=sorted(documents, key=lambda d: d.title.lower()),
        skipped={path: entry.get("reason", "") for path, entry in manifest.skipped.items()},
        pending=sorted(p for p, digest in on_disk.items() if known.get(p) != digest),
        removed=sorted(p for p in manifest.files if p not in on_disk),
        built=manifest.created or None,
    )


# --- background builds ---------------------------------------------------------------------

# Share of the whole build each stage of update_index takes, for one progress bar.
_STAGES = {"read": (0.0, 0.1), "embed": (0.1, 0.95), "lexical": (0.95, 1.0)}


class BuildJob:
    """``update_index`` in a daemon thread, with its progress, outcome and error readable at any time.

    The app's chat keeps answering from the index it loaded: a build writes a
    new folder and switches only at the end, and ``rag.service.refresh`` then
    moves a chain to it. ``on_success`` runs in the build thread with the report.
    """

    def __init__(self, settings: Settings, full: bool = False,
                 on_success: Callable[[BuildReport], None] | None = None):
        self.settings = settings
        self.full = full
        self.on_success = on_success
        self.state = "pending"  # pending -> running -> done | failed
        self.stage, self.done, self.total = "", 0, 0
        self.report: BuildReport | None = None
        self.error: str | None = None
        self.started_at = self.finished_at = 0.0
        self._thread = threading.Thread(target=self._run, name="index-build", daemon=True)

    def start(self) -> BuildJob:
        self.state, self.started_at = "running", time.time()
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the build; True when it has finished."""
        self._thread.join(timeout)
        return not self.running

    @property
    def running(self) -> bool:
        return self.state in ("pending", "running")

    @property
    def fraction(self) -> float:
        """Overall progress, 0..1, across the stages."""
        if self.state == "done":
            return 1.0
        low, high = _STAGES.get(self.stage, (0.0, 0.0))
        share = self.done / self.total if self.total else 0.0
        return max(0.0, min(1.0, low + (high - low) * share))

    def _progress(self, stage: str, done: int, total: int) -> None:
        self.stage, self.done, self.total = stage, done, total

    def _run(self) -> None:
        try:
            self.report = update_index(self.settings, full=self.full, progress=self._progress)
            if self.on_success is not None:
                self.on_success(self.report)
            self.state = "done"
        except RagError as exc:
            self.error, self.state = str(exc), "failed"
        except Exception as exc:  # a thread's exception would otherwise vanish; the page shows it
            log.exception("index build failed")
            self.error, self.state = f"{type(exc).__name__}: {exc}", "failed"
        finally:
            self.finished_at = time.time()


class Indexer:
    """One build at a time for one index folder in this process; the latest job stays readable."""

    def __init__(self):
        self.job: BuildJob | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    @property
    def failed(self) -> bool:
        return self.job is not None and self.job.state == "failed"

    def start(self, settings: Settings, full: bool = False,
              on_success: Callable[[BuildReport], None] | None = None) -> BuildJob:
        with self._lock:
            if self.running:
                raise IndexBusy("the index is already being updated; wait for that build to finish")
            self.job = BuildJob(settings, full, on_success).start()
            return self.job
