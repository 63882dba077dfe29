"""Test helpers: a deterministic fake embedder, wrappers that count or fail,
small corpora and a hand-made PDF. Imported by the tests as ``helpers``."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

from rag.embeddings import Embedder

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class FakeEmbedder(Embedder):
    """Deterministic bag-of-character-bigrams vectors (crc32-hashed into ``dim``
    buckets, L2-normalised). Texts sharing characters are close; no model."""

    def __init__(self, id: str = "fake:bigrams-v1", dim: int = 64):
        self.id = id
        self._dim = dim
        self.passage_calls: list[list[str]] = []
        self.query_calls: list[list[str]] = []

    @property
    def dim(self) -> int:
        return self._dim

    def vector(self, text: str) -> np.ndarray:
        v = np.zeros(self._dim, dtype=np.float32)
        chars = [c for c in text.lower() if not c.isspace()]
        for a, b in zip(chars, chars[1:] + [""]):
            v[zlib.crc32((a + b).encode("utf-8")) % self._dim] += 1.0
        norm = np.linalg.norm(v)
        if norm == 0:
            v[0] = 1.0
            return v
        return v / norm

    def embed_queries(self, texts):
        self.query_calls.append(list(texts))
        return np.stack([self.vector(t) for t in texts]) if texts else np.zeros((0, self._dim), np.float32)

    def embed_passages(self, texts):
        self.passage_calls.append(list(texts))
        return np.stack([self.vector(t) for t in texts]) if texts else np.zeros((0, self._dim), np.float32)


class CountingEmbedder(Embedder):
    """Wraps a real embedder (same id, same vectors) and records every passage text it embeds."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.id = inner.id
        self.passages: list[str] = []
        self.queries: list[str] = []

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_queries(self, texts):
        self.queries.extend(texts)
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts):
        self.passages.extend(texts)
        return self.inner.embed_passages(texts)


class FailingEmbedder(CountingEmbedder):
    """Embeds ``ok_batches`` passage batches, then raises on the next one (a crash mid-build)."""

    def __init__(self, inner: Embedder, ok_batches: int = 1):
        super().__init__(inner)
        self.ok_batches = ok_batches
        self.batches = 0

    def embed_passages(self, texts):
        if self.batches >= self.ok_batches:
            raise RuntimeError("simulated crash while embedding")
        self.batches += 1
        return super().embed_passages(texts)


# --- small corpora -------------------------------------------------------------

TINY_DOCS = {
    "attention.md": (
        "# 注意力机制\n\n"
        "## 什么是自注意力？\n\n"
        "自注意力让序列中的每个位置都能关注其他所有位置。它是 Transformer 的核心组件。\n\n"
        "## 多头注意力\n\n"
        "多头注意力并行计算多组注意力，再把结果拼接起来。\n"
    ),
    "quant.txt": (
        "模型量化\n\n"
        "量化把浮点权重转换为低比特整数，从而减少显存占用并加快推理。\n\n"
        "常见方法有训练后量化和量化感知训练。\n"
    ),
}

EXTRA_DOC = (
    "extra.md",
    "# 模型幻觉\n\n"
    "## 什么是幻觉？\n\n"
    "模型幻觉是指生成看似合理但与事实不符的内容。\n\n"
    "## 如何缓解幻觉？\n\n"
    "缓解方法包括检索增强生成和人工审核。\n",
)


def write_docs(folder: Path, docs: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def many_section_doc(n: int, topic: str = "主题") -> str:
    """A markdown document with ``n`` sections, each a separate chunk."""
    parts = [f"# {topic}合集\n"]
    for i in range(1, n + 1):
        parts.append(f"## {topic}问题 {i}\n\n这是关于{topic}的第 {i} 个问题的回答，内容各不相同，编号 {i * 7919}。\n")
    return "\n".join(parts)


# --- a hand-made PDF ---------------------------------------------------------------

def make_pdf(text: str) -> bytes:
    """A minimal valid one-page PDF showing ``text`` in Helvetica, with a correct xref table."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode() + b"0000000000 65535 f \n"
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n".encode()
    return bytes(out)


# --- subprocesses -------------------------------------------------------------------

def run_module(module: str, *args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """``python -m module args`` from the project root, capturing text output."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=PROJECT_ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout, **kwargs)


class Grader:
    """A passage grader with a fixed verdict."""

    def __init__(self, grade: float, threshold: float = 0.3):
        self.grade, self.threshold = grade, threshold
        self.asked: list[tuple[str, int]] = []

    def __call__(self, question: str, passages: list) -> float:
        self.asked.append((question, len(passages)))
        return self.grade
