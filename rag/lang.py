"""Which language a question is in, so replies and refusals can follow it."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")


def detect(text: str) -> str:
    """``"zh"`` when Chinese characters outnumber Latin words, else ``"en"``.

    >>> detect("什么是LoRA？"), detect("what is LoRA"), detect("")
    ('zh', 'en', 'en')
    """
    return "zh" if len(_CJK.findall(text)) > len(_LATIN_WORD.findall(text)) else "en"


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))
