"""Chunking: hypothesis properties over messy text, plus hand-worked examples."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rag.chunking import _fixed_windows, _lines, chunk_document, chunk_id, is_boilerplate
from rag.corpus import read_document, title_of
from rag.types import Document

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies -----------------------------------------------------------------

CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
EMOJI = st.sampled_from("🙂🚀🤖👍🔥")
ANY_CHAR = st.one_of(CJK, ASCII, EMOJI, st.sampled_from("\n\n\n 。，！？；：、"))

cjk_words = st.text(CJK, min_size=1, max_size=12)
ascii_words = st.text(st.sampled_from("abcdefghij LoRA"), min_size=1, max_size=20)
sentence = st.builds(lambda body, end: body + end,
                     st.text(st.one_of(CJK, EMOJI, st.sampled_from("LoRA GPT ，、")), min_size=1, max_size=70),
                     st.sampled_from(["。", "！", "？", "；", "."]))
paragraph = st.lists(sentence, min_size=1, max_size=8).map("".join)
english = st.lists(st.builds(lambda w: w.strip().capitalize() + ".", ascii_words), min_size=1, max_size=5).map(" ".join)
md_heading = st.builds(lambda level, title: "#" * level + " " + title, st.integers(1, 4), cjk_words)
bold_question = st.builds(lambda n, q: f"**{n}. {q}？**", st.integers(1, 99), cjk_words)
question_line = sentence.map(lambda s: "**题目：** " + s)
answer_line = sentence.map(lambda s: "**答案：** " + s)
code_fence = st.lists(ascii_words, min_size=1, max_size=4).map(lambda ls: "```python\n" + "\n".join(ls) + "\n```")
boilerplate = st.sampled_from([
    "需要的小伙伴扫描下方二维码，我会给你发的哈～",
    "扫描下方二维码，免费领取学习资料",
    "关注公众号回复“大模型”获取全部资料",
])
plain_title = st.one_of(cjk_words, st.sampled_from(["一、原理", "二、使用技巧", "TOKEN", "深度学习 Norm"]))
long_run = st.integers(50, 700).map(lambda n: "长" * n)
soup = st.text(ANY_CHAR, max_size=200)

any_line = st.one_of(paragraph, english, md_heading, bold_question, question_line, answer_line, code_fence,
                     boilerplate, plain_title, long_run, soup, st.just(""))
separator = st.sampled_from(["\n", "\n\n", "\n\n\n", "\n \n"])


@st.composite
def messy_text(draw):
    lines = draw(st.lists(any_line, max_size=30))
    seps = draw(st.lists(separator, min_size=len(lines), max_size=len(lines)))
    return "".join(line + sep for line, sep in zip(lines, seps))


body = st.one_of(paragraph, english, question_line, answer_line, code_fence, long_run)


@st.composite
def well_formed_text(draw):
    """Every heading has a body after it; boilerplate only follows a body."""
    parts = []
    for _ in range(draw(st.integers(1, 8))):
        heading = draw(st.one_of(st.none(), md_heading, bold_question))
        if heading:
            parts.append(heading)
        for _ in range(draw(st.integers(1, 3))):
            parts.append(draw(body))
            if draw(st.integers(0, 5)) == 0:
                parts.append(draw(boilerplate))
    return "\n\n".join(parts) + draw(st.sampled_from(["", "\n"]))


sizes = st.integers(50, 600).flatmap(lambda size: st.tuples(st.just(size), st.integers(0, size // 2)))


def make_doc(text: str, path: str = "doc.md") -> Document:
    return Document(path=path, title=title_of(text, fallback="doc"), text=text, sha256="0")


def uncovered(doc: Document, chunks) -> list[str]:
    """Non-whitespace text outside every chunk, ignoring boilerplate lines."""
    covered = bytearray(len(doc.text))
    for c in chunks:
        covered[c.start:c.end] = b"\x01" * (c.end - c.start)
    missing = []
    for s, e in _lines(doc.text):
        line = doc.text[s:e]
        if is_boilerplate(line):
            continue
        if any(not covered[i] and not doc.text[i].isspace() for i in range(s, e)):
            missing.append(line)
    return missing


# --- properties ---------------------------------------------------------------------

@PROPERTY
@given(messy_text(), sizes)
def test_chunks_are_exact_ordered_spans_with_content_ids(text, size_overlap):
    size, overlap = size_overlap
    doc = make_doc(text)
    chunks = chunk_document(doc, size=size, overlap=overlap)
    for c in chunks:
        assert doc.text[c.start:c.end] == c.text
        assert c.text == c.text.strip() and c.text
        assert c.doc == doc.path and c.title == doc.title
        assert c.id == chunk_id(doc.path, c.section, c.text)
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)
    # stable: chunking the same file again gives the same ids, in order; another file, other ids
    assert [c.id for c in chunk_document(doc, size=size, overlap=overlap)] == [c.id for c in chunks]
    moved = chunk_document(make_doc(text, path="renamed/other.txt"), size=size, overlap=overlap)
    assert not {c.id for c in moved} & {c.id for c in chunks}


@PROPERTY
@given(messy_text(), sizes)
def test_chunk_length_within_what_pack_guarantees(text, size_overlap):
    # _pack: whole sections up to 1.6 x size; merged pieces up to 1.6 x size;
    # then _overlap_start moves the start back by up to `overlap` characters.
    size, overlap = size_overlap
    for c in chunk_document(make_doc(text), size=size, overlap=overlap):
        assert len(c.text) <= size * 8 // 5 + overlap


# size 100, overlap 50 (1.6 x size = 160): a 90-character paragraph, a 26-character one that is too
# small to stand alone, then a 100-character one. The last two merge (127 <= 160), and the overlap
# then prepends 40 more characters of the first paragraph: a 170-character chunk.
LONG_OVERLAP_EXAMPLE = ("# 标题\n\n" + "一二三四五六七八九。" * 9 + "\n\n" + "短段落短段落短段落短段落。" * 2
                        + "\n\n" + "长" * 99 + "。\n")


@PROPERTY
@given(messy_text(), sizes)
@example(LONG_OVERLAP_EXAMPLE, (100, 50))
def test_chunk_length_at_most_1_6_times_size(text, size_overlap):
    size, overlap = size_overlap
    for c in chunk_document(make_doc(text), size=size, overlap=overlap):
        assert len(c.text) <= size * 8 // 5


def test_overlap_is_shortened_so_a_chunk_stays_within_1_6_size():
    """Size 100, overlap 50: the second chunk may take only the overlap that keeps it <= 160."""
    chunks = chunk_document(make_doc(LONG_OVERLAP_EXAMPLE), size=100, overlap=50)
    assert all(len(c.text) <= 160 for c in chunks)
    assert "短段落" in chunks[-1].text


@PROPERTY
@given(well_formed_text(), sizes)
def test_every_non_boilerplate_character_is_covered_when_headings_have_bodies(text, size_overlap):
    size, overlap = size_overlap
    doc = make_doc(text)
    assert uncovered(doc, chunk_document(doc, size=size, overlap=overlap)) == []


@PROPERTY
@given(messy_text(), sizes)
@example("# 第一节\n\n第一节的正文。\n\n# 结尾标题\n", (500, 100))
def test_every_non_boilerplate_character_is_covered(text, size_overlap):
    size, overlap = size_overlap
    doc = make_doc(text)
    assert uncovered(doc, chunk_document(doc, size=size, overlap=overlap)) == []


@pytest.mark.parametrize("text", [
    "# 第一节\n\n第一节的正文。\n\n# 结尾标题\n",   # trailing heading
    "# 标题\n扫描下方二维码\n正文内容。\n",                        # heading then boilerplate
    "LoRA 简介\n",                                                 # a one-line plain-text file
])
def test_heading_without_body_is_still_indexed(text):
    doc = make_doc(text)
    assert uncovered(doc, chunk_document(doc)) == []


@PROPERTY
@given(st.text(st.sampled_from(" \n\t\u3000\r"), max_size=50), sizes)
def test_whitespace_only_documents_have_no_chunks(text, size_overlap):
    size, overlap = size_overlap
    assert chunk_document(make_doc(text), size=size, overlap=overlap) == []
    assert chunk_document(make_doc(text), size=size, overlap=overlap, chunker="fixed") == []


@PROPERTY
@given(st.text(ANY_CHAR, max_size=3000), sizes)
def test_fixed_windows_have_exact_size_except_the_last(text, size_overlap):
    size, overlap = size_overlap
    windows = _fixed_windows(text, size, overlap)
    assert windows[0][0] == 0 and windows[-1][1] == len(text)
    for (s, e), (s2, _) in zip(windows, windows[1:]):
        assert e - s == size
        assert s2 - s == size - overlap
    assert windows[-1][1] - windows[-1][0] <= size
    # chunks are exactly those windows with surrounding whitespace trimmed
    expected = [text[s:e].strip() for s, e in windows if text[s:e].strip()]
    chunks = chunk_document(make_doc(text), size=size, overlap=overlap, chunker="fixed")
    assert [c.text for c in chunks] == expected
    assert all(c.section == () and text[c.start:c.end] == c.text for c in chunks)


@PROPERTY
@given(st.text(st.one_of(CJK, EMOJI, st.sampled_from("abc。，")), min_size=1, max_size=3000), sizes)
def test_fixed_chunks_without_whitespace_have_exact_size_except_the_last(text, size_overlap):
    size, overlap = size_overlap
    chunks = chunk_document(make_doc(text), size=size, overlap=overlap, chunker="fixed")
    assert all(len(c.text) == size for c in chunks[:-1])
    assert 0 < len(chunks[-1].text) <= size and chunks[-1].end == len(text)
    assert "".join(c.text[: size - overlap] for c in chunks[:-1]) + chunks[-1].text == text


# --- worked examples ----------------------------------------------------------------

def test_docstring_example():
    d = Document("a.md", "T", "# T\n\n## Q1\n\nA1。\n\n## Q2\n\nA2。", "0")
    assert [(c.section, c.text) for c in chunk_document(d)] == [
        (("Q1",), "# T\n\n## Q1\n\nA1。"), (("Q2",), "## Q2\n\nA2。")]


def test_bold_question_with_answer_and_code_stays_one_chunk():
    text = (
        "# 算法编程题\n\n"
        "**1. 如何用 Python 实现快速排序？**\n\n"
        "**题目：** 请用 Python 实现快速排序，并说明时间复杂度。\n\n"
        "**答案：**\n\n"
        "```python\n"
        "def quick_sort(xs):\n"
        "    if len(xs) <= 1:\n"
        "        return xs\n"
        "\n"
        "    pivot, *rest = xs\n"
        "    return quick_sort([x for x in rest if x < pivot]) + [pivot] + quick_sort([x for x in rest if x >= pivot])\n"
        "```\n\n"
        "**2. 什么是二分查找？**\n\n"
        "**题目：** 简述二分查找。\n\n**答案：** 在有序数组中每次折半查找。\n"
    )
    chunks = chunk_document(make_doc(text), size=200, overlap=40)
    first = chunks[0]
    assert first.section == ("1. 如何用 Python 实现快速排序？",)
    for part in ("**1. 如何用 Python", "**题目：**", "**答案：**", "```python", "return quick_sort(", "```"):
        assert part in first.text
    assert first.text.endswith("```")
    assert chunks[1].section == ("2. 什么是二分查找？",)
    assert chunks[1].text.startswith("**2. 什么是二分查找？**")
    assert len(chunks) == 2


def test_long_section_splits_at_sentence_ends():
    sentences = [f"第{i}句话讲的是一个独立的知识点，内容足够长以便切分" + "。" for i in range(1, 31)]
    text = "# 文档\n\n## 长章节\n\n" + "".join(sentences) + "\n"
    size, overlap = 100, 30
    doc = make_doc(text)
    chunks = chunk_document(doc, size=size, overlap=overlap)
    assert len(chunks) > 3
    assert chunks[0].start == 0
    for c in chunks:
        assert c.text.endswith("。")
        assert c.section == ("长章节",)
    for c in chunks[1:]:
        assert text[c.start - 1] == "。", f"chunk starts mid-sentence: {c.text[:20]!r}"
        assert c.text.startswith("第")
    # consecutive chunks overlap by whole sentences and together cover every sentence
    joined = set()
    for c in chunks:
        joined.update(re.findall(r"第\d+句", c.text))
    assert joined == {f"第{i}句" for i in range(1, 31)}
    assert any(a.end > b.start for a, b in zip(chunks, chunks[1:])), "expected sentence-aligned overlap"


def test_sentence_longer_than_size_is_cut_hard():
    text = "# 文档\n\n## 超级\n\n" + "长" * 250 + "。短句。\n"
    chunks = chunk_document(make_doc(text), size=100, overlap=0)
    assert all(len(c.text) <= 160 for c in chunks)
    assert "".join(c.text for c in chunks).count("长") == 250
    assert any(not c.text.endswith("。") for c in chunks)  # a hard cut mid-sentence was needed


def test_boilerplate_line_never_inside_a_chunk():
    promo = "AI 大模型学习路线大纲+系统学习课程，需要的小伙伴扫描下方二维码，我会给你发的哈～"
    assert is_boilerplate(promo)
    text = f"# 标题\n\n第一段正文。\n{promo}\n第二段正文。\n\n{promo}\n\n## 第二节\n\n第三段。\n"
    chunks = chunk_document(make_doc(text), size=500, overlap=100)
    assert chunks and all("二维码" not in c.text for c in chunks)
    assert any("第一段正文" in c.text for c in chunks) and any("第二段正文" in c.text for c in chunks)


def test_is_boilerplate_examples():
    assert is_boilerplate("需要的小伙伴扫描下方二维码，我会给你发的哈～")
    assert is_boilerplate("欢迎点赞、收藏")
    assert not is_boilerplate("二维码" + "很长的正文内容" * 30)  # long lines are content
    assert not is_boilerplate("LoRA 模型是一种低秩适应方法。")


PLAIN_004_STYLE = (
    "AI 大模型常见面试题\n\n"
    "导语段落。\n\n"
    "大模型 LoRA 原理与使用技巧\n\n"
    "大模型 LoRA 的原理与使用技巧主要如下：\n\n"
    "一、原理\n\n"
    "LoRA 是一种低秩适应方法。\n\n"
    "二、使用技巧\n\n"
    "1. 选择合适的基模型。\n\n"
    "深度学习 Norm\n\n"
    "归一化很重要。\n"
)


def test_plain_title_lines_become_nested_sections():
    doc = make_doc(PLAIN_004_STYLE, path="004.txt")
    assert doc.title == "AI 大模型常见面试题"
    by_section = {c.section: c for c in chunk_document(doc)}
    assert set(by_section) == {
        (),  # the document title is the document, not a section
        ("大模型 LoRA 原理与使用技巧", "一、原理"),
        ("大模型 LoRA 原理与使用技巧", "二、使用技巧"),
        ("深度学习 Norm",),  # a sibling title pops the stack
    }
    principle = by_section[("大模型 LoRA 原理与使用技巧", "一、原理")]
    # the lead-in line ("…主要如下：") travels with the first sub-section
    assert principle.text.startswith("大模型 LoRA 原理与使用技巧\n\n大模型 LoRA 的原理与使用技巧主要如下：")
    assert principle.text.endswith("LoRA 是一种低秩适应方法。")


def test_list_items_and_sentences_are_not_titles():
    text = "标题\n\n1. 第一项\n\n这是一句话。\n\n- 列表\n"
    sections = {c.section for c in chunk_document(make_doc(text, "x.txt"))}
    assert sections == {()}


# --- the real corpus -------------------------------------------------------------

@pytest.fixture(scope="module")
def real_chunks():
    from helpers import PROJECT_ROOT
    from rag.corpus import scan

    docs, skipped = scan(PROJECT_ROOT / "corpus")
    assert skipped == [] and len(docs) == 5
    return docs, {d.path: chunk_document(d) for d in docs}


def test_real_corpus_lora_chunk(real_chunks):
    _, chunks = real_chunks
    lora = [c for cs in chunks.values() for c in cs if "LoRA 模型是一种低秩适应方法" in c.text]
    assert len(lora) == 1
    assert any("LoRA" in part for part in lora[0].section)
    assert lora[0].section[-1] == "一、原理"


def test_real_corpus_titles_are_not_file_names(real_chunks):
    docs, chunks = real_chunks
    doc003 = next(d for d in docs if d.path.startswith("003_"))
    assert doc003.title == "深入理解大语言模型原理与工程实践——全参数微调技术解析与面试题解析"
    for c in chunks[doc003.path]:
        assert c.title == doc003.title
        assert "003_" not in c.title and not c.title.endswith(".txt")


def test_real_corpus_properties(real_chunks):
    docs, chunks = real_chunks
    for doc in docs:
        cs = chunks[doc.path]
        assert cs, doc.path
        assert all(doc.text[c.start:c.end] == c.text for c in cs)
        assert all(len(c.text) <= 500 * 8 // 5 for c in cs)
        assert uncovered(doc, cs) == []
        assert all("二维码" not in c.text for c in cs)


def test_read_document_then_chunk_is_deterministic(real_chunks):
    from helpers import PROJECT_ROOT

    docs, chunks = real_chunks
    again = read_document(PROJECT_ROOT / "corpus", docs[0].path)
    assert [c.id for c in chunk_document(again)] == [c.id for c in chunks[docs[0].path]]


def test_editing_one_section_changes_only_its_chunk_id():
    before = "# 文档\n\n## 甲\n\n甲的内容。\n\n## 乙\n\n乙的内容。\n"
    after = before.replace("乙的内容。", "乙的内容已修改。")
    ids_before = [c.id for c in chunk_document(make_doc(before))]
    ids_after = [c.id for c in chunk_document(make_doc(after))]
    assert len(ids_before) == len(ids_after) == 2
    assert ids_before[0] == ids_after[0]
    assert ids_before[1] != ids_after[1]
    # the id depends on the heading path and title too, not only the text
    assert chunk_id("T", ("甲",), "x") != chunk_id("T", ("乙",), "x") != chunk_id("U", ("乙",), "x")
    assert len(ids_before[0]) == 20 and int(ids_before[0], 16) >= 0
