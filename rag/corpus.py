"""Find and read documents: text, markdown, PDF and Word files.

A file that cannot be read raises ``DocumentError``; ``scan`` collects those as
``Skipped`` entries so one bad file never stops the rest from being indexed.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import DocumentError
from .types import Document

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md", ".pdf", ".docx")

# "自拟标题：…" ("my own title: …") and similar labels are not part of a title.
_TITLE_LABEL = re.compile(r"^[^：:]{0,6}标题[：:]\s*")
_HEADING_MARKS = re.compile(r"^#{1,6}\s+|^\*\*|\*\*$")


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str
    duplicate_of: str | None = None


@dataclass
class CorpusFiles:
    """What is on disk: relative path -> sha256 of the bytes."""

    root: Path
    hashes: dict[str, str]


def list_files(root: Path) -> CorpusFiles:
    """Hash every supported file under ``root`` (hidden files and folders skipped).

    ``list_files(Path("corpus")).hashes`` maps each relative path to its sha256,
    e.g. ``{'000_d929c9f6467bbbce.txt': '5f1c…', …}``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DocumentError(f"corpus folder not found: {root}")
    hashes = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and path.suffix.lower() in SUFFIXES:
            hashes[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return CorpusFiles(root=root, hashes=hashes)


def read_document(root: Path, rel: str) -> Document:
    """Read one file into a ``Document`` with a human title."""
    path = Path(root) / rel
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{rel}: cannot read file ({exc.strerror or exc})") from exc
    suffix = path.suffix.lower()
    if suffix in (".txt", ".md"):
        text = _decode(raw, rel)
    elif suffix == ".pdf":
        text = _read_pdf(path, rel)
    elif suffix == ".docx":
        text = _read_docx(path, rel)
    else:
        raise DocumentError(f"{rel}: unsupported file type {suffix!r}; supported: {', '.join(SUFFIXES)}")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DocumentError(f"{rel}: no text found in the file")
    return Document(path=rel, title=title_of(text, fallback=Path(rel).stem), text=text,
                    sha256=hashlib.sha256(raw).hexdigest())


def scan(root: Path, only: set[str] | None = None) -> tuple[list[Document], list[Skipped]]:
    """Read every document (or just those in ``only``); bad files become ``Skipped``."""
    files = list_files(root)
    documents, skipped = [], []
    for rel in files.hashes:
        if only is not None and rel not in only:
            continue
        try:
            documents.append(read_document(root, rel))
        except DocumentError as exc:
            log.warning("skipping %s", exc)
            skipped.append(Skipped(path=rel, reason=str(exc)))
    return documents, skipped


def title_of(text: str, fallback: str = "") -> str:
    """The first markdown heading, else the first non-empty line, cleaned.

    >>> title_of("\\n### 自拟标题：深入理解大语言模型\\n正文")
    '深入理解大语言模型'
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    heading = next((line for line in lines if line.startswith("#")), None)
    candidate = heading or (lines[0] if lines else "")
    candidate = _TITLE_LABEL.sub("", _HEADING_MARKS.sub("", candidate).strip()).strip()
    return candidate[:120] or fallback


def _decode(raw: bytes, rel: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{rel}: not valid UTF-8 or GB18030 text") from exc
    log.warning("%s is not UTF-8; read it as GB18030", rel)
    return text


def _read_pdf(path: Path, rel: str) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(str(path))
        return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)
    except (PyPdfError, ValueError, KeyError, OSError) as exc:
        raise DocumentError(f"{rel}: broken PDF ({exc})") from exc


def _read_docx(path: Path, rel: str) -> str:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, ValueError, KeyError, OSError) as exc:
        raise DocumentError(f"{rel}: broken Word file ({exc})") from exc
    except Exception as exc:  # zipfile.BadZipFile and lxml errors vary by version
        raise DocumentError(f"{rel}: broken Word file ({type(exc).__name__}: {exc})") from exc
    parts = []
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name or "") if paragraph.style is not None else ""
        # Keep Word's heading structure as markdown so the chunker sees sections.
        match = re.match(r"Heading (\d)", style)
        if match or style == "Title":
            level = int(match.group(1)) if match else 1
            text = "#" * min(level, 6) + " " + text
        parts.append(text)
    return "\n\n".join(parts)
