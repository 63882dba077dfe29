"""Prompt building within a token budget, and the bundled model presets."""

from __future__ import annotations

import hashlib
import sys

import pytest

from rag.errors import ConfigError, ModelError
from rag.llm import estimate_tokens
from rag.models import PRESETS, Preset, assemble, resolve_gguf
from rag.prompts import SYSTEM, bare_messages, build_messages, is_echo, retry_messages, select_passages
from rag.types import Chunk, Hit


def _hit(text: str, n: int = 0) -> Hit:
    return Hit(chunk=Chunk(f"c{n}", "d.txt", "T", ("S",), text, 0, len(text)), score=1.0, row=n)


def test_passages_fill_the_budget_in_rank_order():
    hits = [_hit("甲" * 100 + "。", 0), _hit("乙" * 100 + "。", 1), _hit("丙" * 100 + "。", 2)]
    passages = select_passages(hits, budget_tokens=200, count_tokens=estimate_tokens)
    assert [p.n for p in passages] == [1, 2]
    assert sum(estimate_tokens(p.text) for p in passages) <= 200


def test_first_passage_is_cut_at_a_sentence_end_rather_than_left_out():
    text = "".join(f"第{i}句话讲的是一件事情。" for i in range(60))
    passages = select_passages([_hit(text)], budget_tokens=100, count_tokens=estimate_tokens)
    assert len(passages) == 1
    assert passages[0].text.endswith("。") and estimate_tokens(passages[0].text) <= 100


def test_with_focus_every_ranked_passage_is_seen_cut_down_to_what_bears_on_the_question():
    from rag.excerpt import GAP, lexical

    script = "\n".join(f"step_{i} = run(data, seed={i})" for i in range(40)) + "\nmax_length = 50\n" + \
        "\n".join(f"log_{i} = save(model)" for i in range(40))
    hits = [_hit("LoRA 冻结原模型权重。" * 30, 0), _hit(script, 1), _hit("幻觉是与事实不符的输出。" * 30, 2)]
    whole = select_passages(hits, budget_tokens=300, count_tokens=estimate_tokens)
    assert "max_length = 50" not in " ".join(p.text for p in whole)  # the script's middle never fits
    focused = select_passages(hits, 300, estimate_tokens, focus=lexical({"max", "length"}))
    assert [p.n for p in focused] == [1, 2, 3]
    script_shown = focused[1].text
    assert "max_length = 50" in script_shown and GAP in script_shown
    assert script_shown.splitlines()[0] == "(S)"  # the section label stays
    assert sum(estimate_tokens(p.text) for p in focused) <= 600


def test_an_excerpt_keeps_the_lines_around_what_it_found_in_their_order():
    from rag.excerpt import GAP, excerpt, lexical

    text = "(S)\n" + "\n".join(f"line {i} filler words here" for i in range(30)) + "\nthe answer is 42\nafter it"
    shown = excerpt(text, lexical({"answer"}), 40, estimate_tokens)
    lines = shown.splitlines()
    assert lines[0] == "(S)" and lines[1] == GAP
    assert lines.index("the answer is 42") < lines.index("after it")  # a neighbour, in order
    assert excerpt("short text", lexical({"x"}), 40, estimate_tokens) == "short text"  # fits: untouched
    assert excerpt(text, lexical({"absent"}), 40, estimate_tokens) == ""  # nothing bears on the question


def test_system_prompt_is_identical_for_every_question():
    a = build_messages("what is LoRA", "en", select_passages([_hit("LoRA。")], 100, estimate_tokens))
    b = build_messages("什么是幻觉", "zh", select_passages([_hit("幻觉。")], 100, estimate_tokens))
    assert a[0].content == b[0].content == SYSTEM
    assert "<passages>" in a[1].content and "[1]" in a[1].content
    assert "English" in a[1].content and "中文" in b[1].content


def test_the_retry_shares_the_answer_prompts_prefix_and_asks_for_the_passages_words_first():
    passages = select_passages([_hit("LoRA 冻结主权重。")], 100, estimate_tokens)
    first, again = build_messages("什么是 LoRA", "zh", passages), retry_messages("什么是 LoRA", "zh", passages)
    assert again[0].content == first[0].content == SYSTEM
    block = first[1].content[: first[1].content.index("</passages>")]
    assert again[1].content.startswith(block)  # llama.cpp reuses the prefix: only the ask is new
    assert "原样摘抄" in again[1].content and "什么是 LoRA" in again[1].content
    assert "word for word" in retry_messages("what is LoRA", "en", passages)[1].content
    assert "用简体中文" in again[1].content  # the draft language, as in the first ask
    assert is_echo("先从段落中原样摘抄回答这个问题的那一句话或那一行代码，再用简体中文一句话回答。")  # not shown if echoed


def test_bare_messages_carry_no_passages():
    messages = bare_messages("what is LoRA", "en")
    assert "<passages>" not in "".join(str(m.content) for m in messages)


def test_unknown_model_lists_the_presets(tmp_path):
    with pytest.raises(ConfigError) as err:
        resolve_gguf("gpt-5", tmp_path)
    assert all(name in str(err.value) for name in PRESETS)


def test_a_gguf_path_is_used_as_is(tmp_path):
    path = tmp_path / "mine.gguf"
    path.write_bytes(b"GGUF")
    assert resolve_gguf(str(path), tmp_path / "cache") == path


@pytest.fixture
def fake_part_packages(tmp_path, monkeypatch):
    """Two importable-by-spec packages holding data/part01.bin and data/part02.bin."""
    root = tmp_path / "site"
    blobs = [b"first half|", b"second half"]
    for i, blob in enumerate(blobs, start=1):
        pkg = root / f"fakepart{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise RuntimeError('package code must not run')\n")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(blob)
    monkeypatch.syspath_prepend(str(root))
    joined = b"".join(blobs)
    return joined, ("fakepart1", "fakepart2")


def test_parts_are_joined_verified_and_reused(tmp_path, fake_part_packages):
    joined, packages = fake_part_packages
    preset = Preset("fake", "fake.gguf", packages, len(joined), hashlib.sha256(joined).hexdigest())
    path = assemble(preset, tmp_path / "models")
    assert path.read_bytes() == joined
    mtime = path.stat().st_mtime_ns
    assert assemble(preset, tmp_path / "models") == path and path.stat().st_mtime_ns == mtime  # not rebuilt
    assert "fakepart1" not in sys.modules  # only the data files were used


def test_checksum_mismatch_is_an_error_that_says_what_to_do(tmp_path, fake_part_packages):
    joined, packages = fake_part_packages
    preset = Preset("fake", "fake.gguf", packages, len(joined), "0" * 64)
    with pytest.raises(ModelError, match="reinstall"):
        assemble(preset, tmp_path / "models")
    assert not list((tmp_path / "models").iterdir())  # nothing half-written left behind


def test_missing_part_package_names_the_package(tmp_path):
    preset = Preset("ghost", "ghost.gguf", ("no_such_part_package_xyz",), 1, "0" * 64)
    with pytest.raises(ModelError, match="no_such_part_package_xyz"):
        assemble(preset, tmp_path)


def test_the_bundled_presets_assemble_to_their_published_checksums(tmp_path):
    """The real part packages: the assembled files match MODELS.md's sha256 (cached after the first run)."""
    from rag.config import Settings

    cache = Settings().cache_dir
    for name, preset in PRESETS.items():
        path = resolve_gguf(name, cache)
        assert path.stat().st_size == preset.size


def test_focus_with_the_real_embedder_shows_the_line_of_a_lower_ranked_passage_that_answers(session_retriever):
    """Held-out n007: the translation example's last lines set max_length=50; whole
    passages in rank order spend the budget before them, focused ones do not."""
    from rag.excerpt import Focus

    retriever = session_retriever
    question = "机器翻译示例最后做翻译时，生成结果的最大长度设成了多少？"
    hits = retriever(question, k=5).hits
    answer = "model.generate(input_ids, max_length=50)"
    assert any(answer in h.chunk.text for h in hits[1:])  # retrieved, not first
    whole = select_passages(hits, 600, estimate_tokens)
    focused = select_passages(hits, 600, estimate_tokens, focus=Focus(retriever.embedder).relevance([question]))
    assert answer not in " ".join(p.text for p in whole)
    assert answer in " ".join(p.text for p in focused)
    assert sum(estimate_tokens(p.text) for p in focused) <= 600
