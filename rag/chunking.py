"""Structure-aware, Chinese-aware splitting of documents into chunks.

The corpus is interview Q&A: markdown headings, bold numbered questions with
``**题目：**`` / ``**答案：**`` blocks, numbered lists, code fences, and (in plain
text files) short title lines followed by paragraphs. We split on that
structure first, so a question stays with its answer and a code block with
its question, then on sentence ends (。！？；) to the target size, with
sentence-aligned overlap.

Every chunk is an exact span of its document: ``doc.text[c.start:c.end] == c.text``.
Only whitespace and promotion lines ("scan the QR code ...") fall between chunks.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from .types import Chunk, Document

CHUNKER_VERSION = 2

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
# A line that is all bold and does not end in a colon: "**1. 什么是大模型开发？**".
# "**答案：**" ends in a colon and is a label, not a heading.
_BOLD_HEADING = re.compile(r"^\*\*([^*]+?)\*\*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST_MARK = re.compile(r"^(\d+[.、)）]|[-*•+]\s|[（(]\d+[)）])")
_CLAUSE_END = tuple("。！？；：:，,、…!?;.")
_CN_ENUMERATED = re.compile(r"^[一二三四五六七八九十]+[、.]")
_BOILERPLATE = re.compile(r"二维码|扫码|扫描下方|关注公众号|公众号回复|加群|免费领取|点赞.{0,6}收藏|私信我")
# Sentence ends: Chinese and ASCII terminators (with closing quotes/brackets), and line breaks.
_SENTENCE_END = re.compile(r"[。！？；!?;][”’\"'」』）)]*|\n|\.(?=\s)")

BOLD_LEVEL = 7   # deeper than any markdown heading
PLAIN_LEVEL = 1  # plain-text files have one level of titles


@dataclass
class _Block:
    kind: str          # "heading" | "body" | "boilerplate"
    start: int
    end: int
    level: int = 0
    heading: str = ""


@dataclass
class _Section:
    path: tuple[str, ...]
    start: int
    end: int = 0
    level: int = 0
    bodies: list[tuple[int, int]] = field(default_factory=list)


def chunk_document(doc: Document, size: int = 500, overlap: int = 100, chunker: str = "structure") -> list[Chunk]:
    """Split ``doc`` into chunks of about ``size`` characters.

    >>> from rag.types import Document
    >>> d = Document("a.md", "T", "# T\\n\\n## Q1\\n\\nA1。\\n\\n## Q2\\n\\nA2。", "0")
    >>> [(c.section, c.text) for c in chunk_document(d)]
    [(('Q1',), '# T\\n\\n## Q1\\n\\nA1。'), (('Q2',), '## Q2\\n\\nA2。')]
    """
    if chunker == "fixed":
        spans = [(s, e, ()) for s, e in _fixed_windows(doc.text, size, overlap)]
    else:
        spans = []
        for section in _sections(doc, size):
            spans.extend((s, e, section.path) for s, e in _pack(doc.text, section, size, overlap))
    chunks = []
    for start, end, path in spans:
        start, end = _trim(doc.text, start, end)
        if start < end:
            text = doc.text[start:end]
            chunks.append(Chunk(id=chunk_id(doc.path, path, text), doc=doc.path, title=doc.title,
                                section=path, text=text, start=start, end=end))
    return chunks


def chunk_id(doc: str, section: tuple[str, ...], text: str) -> str:
    """A hash of the chunk's content and where it stands: stable across rebuilds,
    changed by any edit to the passage."""
    payload = "\x1f".join((doc, *section, text)).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()[:20]


def is_boilerplate(line: str) -> bool:
    """Promotion lines that carry no interview content.

    >>> is_boilerplate("需要的小伙伴扫描下方二维码，我会给你发的哈～")
    True
    """
    return bool(_BOILERPLATE.search(line)) and len(line.strip()) < 120


# --- structure ---------------------------------------------------------------

def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line, end excluding the newline."""
    out, pos = [], 0
    for line in text.split("\n"):
        out.append((pos, pos + len(line)))
        pos += len(line) + 1
    return out


def _blocks(text: str) -> list[_Block]:
    lines = _lines(text)
    plain_titles = not any(_MD_HEADING.match(text[s:e]) for s, e in lines)
    blocks: list[_Block] = []
    fence_start = None
    body: list[int] = []  # start, end of the paragraph being collected

    def flush():
        if body:
            blocks.append(_Block("body", body[0], body[1]))
            body.clear()

    for i, (s, e) in enumerate(lines):
        line = text[s:e]
        stripped = line.strip()
        if fence_start is not None:
            if _FENCE.match(line):
                blocks.append(_Block("body", fence_start, e))
                fence_start = None
            continue
        if _FENCE.match(line):
            flush()
            fence_start = s
            continue
        if not stripped:
            flush()
            continue
        heading = _heading(line, lines, i, text, plain_titles)
        if heading:
            flush()
            level, title = heading
            blocks.append(_Block("heading", s, e, level, title))
        elif is_boilerplate(line):
            flush()
            blocks.append(_Block("boilerplate", s, e))
        elif body:
            body[1] = e
        else:
            body[:] = [s, e]
    if fence_start is not None:  # unclosed fence: keep it as text
        blocks.append(_Block("body", fence_start, lines[-1][1]))
    flush()
    return blocks


def _heading(line: str, lines, i: int, text: str, plain_titles: bool) -> tuple[int, str] | None:
    stripped = line.strip()
    match = _MD_HEADING.match(stripped)
    if match:
        return len(match.group(1)), _clean_heading(match.group(2))
    match = _BOLD_HEADING.match(stripped)
    if match and not match.group(1).rstrip().endswith(("：", ":")):
        return BOLD_LEVEL, _clean_heading(match.group(1))
    if plain_titles and _looks_like_title(stripped):
        before = i == 0 or not text[lines[i - 1][0]:lines[i - 1][1]].strip()
        after = i + 1 >= len(lines) or not text[lines[i + 1][0]:lines[i + 1][1]].strip()
        if before and after:
            # "一、原理" under "LoRA 原理与使用技巧" is a sub-title, not a sibling.
            return PLAIN_LEVEL + bool(_CN_ENUMERATED.match(stripped)), stripped
    return None


def _looks_like_title(line: str) -> bool:
    """A short line that is not a sentence, a clause or a list item."""
    return (2 <= len(line) <= 40 and not line.endswith(_CLAUSE_END) and not _LIST_MARK.match(line)
            and not line.startswith(("|", ">", "*")))


def _clean_heading(text: str) -> str:
    return re.sub(r"\*\*|__|`", "", text).strip()


def _sections(doc: Document, size: int) -> list[_Section]:
    """Group blocks under their heading path; a heading with no body of its own
    joins the next section, so its line is never orphaned."""
    sections: list[_Section] = []
    stack: list[tuple[int, str]] = []
    current = _Section(path=(), start=0)

    def close(end: int):
        # A heading with nothing after it (end of file, before a promotion line) is still text.
        if current.bodies or doc.text[current.start:end].strip():
            current.end = end
            sections.append(current)

    for block in _blocks(doc.text):
        if block.kind == "heading":
            # A heading with no body, or a one-line lead-in ("…主要如下：") whose
            # sub-sections follow, is carried into the next section.
            lead_in = block.level > current.level and block.start - current.start < size // 4
            if not current.bodies or lead_in:
                pending_start, carried = current.start, current.bodies
            else:
                close(block.start)
                pending_start, carried = block.start, []
            while stack and stack[-1][0] >= block.level:
                stack.pop()
            if block.heading != doc.title:  # the title heading is the document, not a section
                stack.append((block.level, block.heading))
            current = _Section(path=tuple(h for _, h in stack), start=pending_start,
                               level=block.level, bodies=carried)
        elif block.kind == "boilerplate":
            close(block.start)
            current = _Section(path=current.path, start=block.end, level=current.level)
        else:
            current.bodies.append((block.start, block.end))
    close(len(doc.text))
    return sections


# --- packing -----------------------------------------------------------------

def _pack(text: str, section: _Section, size: int, overlap: int) -> list[tuple[int, int]]:
    """Whole section if it is at most 1.6 × size (a question stays with its
    answer); otherwise paragraphs, then sentences, greedily up to ``size``."""
    start, end = _trim(text, section.start, section.end)
    longest = size * 8 // 5
    if end - start <= longest:
        return [(start, end)]
    pieces: list[tuple[int, int]] = []
    first = True
    for s, e in section.bodies or [(start, end)]:
        if first:
            s, first = start, False  # the heading lines travel with the first paragraph
        if e - s <= size:
            pieces.append((s, e))
        else:
            pieces.extend(_split_long(text, s, e, size))
    boundaries = _sentence_boundaries(text, start, end)
    out: list[tuple[int, int]] = []
    cur_start, cur_end = pieces[0]
    for s, e in pieces[1:]:
        # A fragment ("**答案：**" before its code) grows past the target rather than stand alone.
        small = cur_end - cur_start < size // 3
        if e - cur_start <= size or (small and e - cur_start <= longest):
            cur_end = e
        else:
            out.append((cur_start, cur_end))
            cur_start, cur_end = s, e
    if out and cur_end - cur_start < size // 3 and cur_end - out[-1][0] <= longest:
        cur_start = out.pop()[0]  # a short tail joins the chunk before it
    out.append((cur_start, cur_end))
    # Overlap never takes a chunk past the longest allowed.
    return [out[0]] + [(_overlap_start(boundaries, s, min(overlap, longest - (e - s))), e) for s, e in out[1:]]


def _split_long(text: str, start: int, end: int, size: int) -> list[tuple[int, int]]:
    """Cut a paragraph at sentence ends into pieces of at most ``size``; a single
    sentence longer than that is cut hard."""
    cuts = [b for b in _sentence_boundaries(text, start, end) if start < b < end] + [end]
    pieces, piece_start, last = [], start, start
    for cut in cuts:
        if cut - piece_start > size and last > piece_start:
            pieces.append((piece_start, last))
            piece_start = last
        while cut - piece_start > size:  # no sentence end in reach
            pieces.append((piece_start, piece_start + size))
            piece_start += size
        last = cut
    if piece_start < end:
        pieces.append((piece_start, end))
    return [(s, e) for s, e in (_trim(text, s, e) for s, e in pieces) if s < e]


def _sentence_boundaries(text: str, start: int, end: int) -> list[int]:
    return [m.end() for m in _SENTENCE_END.finditer(text, start, end)]


def _overlap_start(boundaries: list[int], start: int, overlap: int) -> int:
    """Move ``start`` back to the earliest sentence start within ``overlap`` characters."""
    for b in boundaries:
        if start - overlap <= b < start:
            return b
    return start


def _fixed_windows(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """The naive baseline: fixed windows of ``size`` characters, ``overlap`` apart."""
    step = max(1, size - overlap)
    return [(s, min(s + size, len(text))) for s in range(0, max(1, len(text) - overlap), step)]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
