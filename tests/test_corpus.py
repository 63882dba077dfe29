"""Reading documents: encodings, markdown, Word, PDF, broken files, titles."""

from __future__ import annotations

import hashlib
import logging
import random
import re

import pytest

from helpers import make_pdf
from rag.corpus import list_files, read_document, scan, title_of
from rag.errors import DocumentError

TEXT = "大模型的训练过程\n\n预训练之后再进行指令微调。\n"


def test_utf8_text(tmp_path):
    (tmp_path / "a.txt").write_bytes(TEXT.encode("utf-8"))
    doc = read_document(tmp_path, "a.txt")
    assert doc.text == TEXT
    assert doc.title == "大模型的训练过程"
    assert doc.path == "a.txt"
    assert doc.sha256 == hashlib.sha256(TEXT.encode("utf-8")).hexdigest()


def test_utf8_bom_and_crlf_are_normalised(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbf" + TEXT.replace("\n", "\r\n").encode("utf-8"))
    doc = read_document(tmp_path, "a.txt")
    assert doc.text == TEXT
    assert "\r" not in doc.text and not doc.text.startswith("\ufeff")


def test_gb18030_text_is_read_with_a_warning(tmp_path, caplog):
    raw = TEXT.encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the test file really is not UTF-8
    (tmp_path / "gb.txt").write_bytes(raw)
    with caplog.at_level(logging.WARNING, logger="rag.corpus"):
        doc = read_document(tmp_path, "gb.txt")
    assert doc.text == TEXT
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("gb.txt" in r.getMessage() and "GB18030" in r.getMessage() for r in warnings)


def test_utf8_reads_without_warning(tmp_path, caplog):
    (tmp_path / "a.md").write_text(TEXT, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="rag.corpus"):
        read_document(tmp_path, "a.md")
    assert not caplog.records


def test_markdown_title_is_first_heading(tmp_path):
    (tmp_path / "notes.md").write_text("前言一句。\n\n# 注意力机制\n\n## 自注意力\n\n正文。\n", encoding="utf-8")
    doc = read_document(tmp_path, "notes.md")
    assert doc.title == "注意力机制"
    assert "## 自注意力" in doc.text


def test_docx_with_heading(tmp_path):
    import docx

    d = docx.Document()
    d.add_paragraph("大模型微调指南", style="Heading 1")
    d.add_paragraph("LoRA 是一种低秩适应方法。")
    d.add_paragraph("")
    d.add_paragraph("全参数微调", style="Heading 2")
    d.add_paragraph("更新模型的全部参数。")
    d.save(tmp_path / "guide.docx")
    doc = read_document(tmp_path, "guide.docx")
    assert doc.text == "# 大模型微调指南\n\nLoRA 是一种低秩适应方法。\n\n## 全参数微调\n\n更新模型的全部参数。"
    assert doc.title == "大模型微调指南"


def test_docx_headings_drive_chunk_sections(tmp_path):
    import docx

    from rag.chunking import chunk_document

    d = docx.Document()
    d.add_paragraph("指南", style="Heading 1")
    d.add_paragraph("第一节", style="Heading 2")
    d.add_paragraph("第一节正文。")
    d.add_paragraph("第二节", style="Heading 2")
    d.add_paragraph("第二节正文。")
    d.save(tmp_path / "g.docx")
    sections = [c.section for c in chunk_document(read_document(tmp_path, "g.docx"))]
    assert sections == [("第一节",), ("第二节",)]


def test_hand_made_pdf_has_correct_xref_and_text(tmp_path):
    data = make_pdf("Hello LoRA adapters")
    # check the xref table by hand: every in-use entry points at "N 0 obj"
    xref_at = int(re.search(rb"startxref\n(\d+)\n", data).group(1))
    assert data[xref_at:xref_at + 4] == b"xref"
    entries = re.findall(rb"(\d{10}) 00000 n \n", data[xref_at:])
    assert len(entries) == 5
    for number, offset in enumerate(entries, start=1):
        assert data[int(offset):].startswith(f"{number} 0 obj".encode())

    from pypdf import PdfReader

    (tmp_path / "hello.pdf").write_bytes(data)
    reader = PdfReader(str(tmp_path / "hello.pdf"), strict=True)
    assert len(reader.pages) == 1
    assert reader.pages[0].extract_text().strip() == "Hello LoRA adapters"
    doc = read_document(tmp_path, "hello.pdf")
    assert doc.text == "Hello LoRA adapters"
    assert doc.title == "Hello LoRA adapters"


def _random_bytes(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(n))


@pytest.mark.parametrize("name, data, reason", [
    ("broken.pdf", _random_bytes(3000, 1), "broken PDF"),
    ("truncated.pdf", make_pdf("Hello")[:120], "broken PDF"),
    ("broken.docx", _random_bytes(3000, 2), "broken Word file"),
    ("notzip.docx", b"PK\x03\x04" + _random_bytes(500, 3), "broken Word file"),
    ("bad.txt", b"\xff\xfe\xfd\x80" * 20, "not valid UTF-8 or GB18030"),
    ("empty.md", b"  \n\n\t\n", "no text found"),
])
def test_broken_files_raise_document_error_naming_the_file(tmp_path, name, data, reason):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(DocumentError) as info:
        read_document(tmp_path, name)
    message = str(info.value)
    assert message.startswith(name + ":")
    assert reason in message


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(DocumentError, match="missing.txt"):
        read_document(tmp_path, "missing.txt")
    (tmp_path / "x.rtf").write_text("hi", encoding="utf-8")
    with pytest.raises(DocumentError, match=r"x\.rtf: unsupported file type '\.rtf'"):
        read_document(tmp_path, "x.rtf")


def test_scan_skips_bad_files_and_reads_the_rest(tmp_path, caplog):
    import docx

    (tmp_path / "good.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "nested.md").write_text("# 嵌套\n\n内容。\n", encoding="utf-8")
    (tmp_path / "hello.pdf").write_bytes(make_pdf("Hello PDF"))
    d = docx.Document()
    d.add_paragraph("Word 文档内容。")
    d.save(tmp_path / "word.docx")
    (tmp_path / "broken.pdf").write_bytes(_random_bytes(2000, 4))
    (tmp_path / "broken.docx").write_bytes(_random_bytes(2000, 5))
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\xfd\x80" * 20)
    # ignored: hidden files and folders, unsupported suffixes
    (tmp_path / ".hidden.txt").write_text("秘密", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.md").write_text("# 不该读\n", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "README").write_text("no suffix", encoding="utf-8")

    with caplog.at_level(logging.WARNING, logger="rag.corpus"):
        docs, skipped = scan(tmp_path)
    assert sorted(d.path for d in docs) == ["good.txt", "hello.pdf", "sub/nested.md", "word.docx"]
    assert sorted(s.path for s in skipped) == ["bad.txt", "broken.docx", "broken.pdf"]
    for s in skipped:
        assert s.reason.startswith(s.path + ":")
    assert sum("skipping" in r.getMessage() for r in caplog.records) == 3

    hashes = list_files(tmp_path).hashes
    assert set(hashes) == {"good.txt", "hello.pdf", "sub/nested.md", "word.docx", "bad.txt", "broken.docx",
                           "broken.pdf"}
    assert hashes["good.txt"] == hashlib.sha256(TEXT.encode()).hexdigest()

    only_docs, only_skipped = scan(tmp_path, only={"good.txt", "broken.pdf"})
    assert [d.path for d in only_docs] == ["good.txt"] and [s.path for s in only_skipped] == ["broken.pdf"]


def test_missing_corpus_folder(tmp_path):
    with pytest.raises(DocumentError, match="corpus folder not found"):
        list_files(tmp_path / "nope")


@pytest.mark.parametrize("text, expected", [
    ("\n### 自拟标题：深入理解大语言模型\n正文", "深入理解大语言模型"),
    ("前言\n\n# 真正的标题\n", "真正的标题"),
    ("**大模型面试题**\n正文", "大模型面试题"),
    ("   \n  第一行标题  \n第二行", "第一行标题"),
    ("标题：LoRA 原理", "LoRA 原理"),
    ("## 自拟标题: English Title", "English Title"),
    ("", "fallback-name"),
    ("**  **\n", "fallback-name"),
    ("长" * 200, "长" * 120),
])
def test_title_of(text, expected):
    assert title_of(text, fallback="fallback-name") == expected
