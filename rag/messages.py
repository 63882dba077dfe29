"""User-facing text in the two languages users ask in. The language follows the question."""

from __future__ import annotations

TEXT = {
    "en": {
        "refusal": "The knowledge base does not cover this.",
        "sources": "Sources",
        "no_passages": "No passages found.",
        "unsupported": "not supported by the cited passage",
        "bare": "Model alone (no retrieval)",
        "grounded": "With retrieval (cited)",
        "covered_topics": "Topics it does cover",
    },
    "zh": {
        "refusal": "知识库中没有找到相关内容。",
        "sources": "来源",
        "no_passages": "没有找到相关段落。",
        "unsupported": "引用的段落不支持这句话",
        "bare": "仅模型（无检索）",
        "grounded": "检索增强（带引用）",
        "covered_topics": "知识库涵盖的相关主题",
    },
}


def t(language: str, key: str) -> str:
    return TEXT.get(language, TEXT["en"])[key]
