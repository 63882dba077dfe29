"""Answer sentences into the question's language.

The corpus is Chinese. Asked to answer an English question from Chinese
passages, the small local model writes more of its own knowledge into the
English (docs/EVAL.md: 83 % of English claims supported on the dev set, 99 %
of Chinese ones). So the chain has the model draft in the passages' language,
checks each drafted sentence against the passages there, and only then puts it
into the question's language, one sentence at a time, with this translator.

A translation that is not in the target language, or that states a number or
name its source sentence does not, is rejected: the caller then shows the
checked sentence as it was drafted rather than an unchecked rendering of it.
One that adds names is asked for once more, told which: the 1.5B spells out
abbreviations ("NSP (Next Sentence Prediction)", "Long Short-Term Memory
(LSTM)"), and 15 of 319 English answers in the first-look dumps showed a
Chinese sentence for it (``rag.calibrate --translations``, docs/EVAL.md).

Chinese counts in 万 and 亿 (10^4, 10^8), English in thousands and billions, so
"1750 亿" is 175 billion, and the model, told to keep numbers as they are,
wrote "1750 billion" (held-out 7, r053). Such amounts are converted by code
before the model sees the sentence, and the number check is made against the
converted sentence.

The model is also told how the glossary renders the sentence's terms: left to
itself the 1.5B wrote "Microtuning" for 微调 and dropped "instruction" from
指令微调 (held-out 7, r030).
"""

from __future__ import annotations

import re

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from . import lang
from .llm import token_counter
from .rewrite import GLOSSARY, GLOSSARY_PATTERN
from .terms import novel_terms, split_enumeration, strip_enumeration

_NAMES = {"en": "English", "zh": "Simplified Chinese"}
_CODE = re.compile(r"^\s*```")
_AMOUNT = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(万亿|千亿|百亿|十亿|千万|百万|十万|亿|万)")
_UNIT = {"万": 1e4, "十万": 1e5, "百万": 1e6, "千万": 1e7, "亿": 1e8, "十亿": 1e9, "百亿": 1e10, "千亿": 1e11,
         "万亿": 1e12}
_SCALES = ((1e12, "trillion"), (1e9, "billion"), (1e6, "million"), (1e3, "thousand"))
# Chinese term -> English; the first English form the glossary lists is the usual one.
_TO_ENGLISH = {zh: en for en, zh in reversed(GLOSSARY.items()) if lang.has_cjk(zh)}
MAX_TERMS = 8


def glossary_terms(text: str, target: str) -> list[tuple[str, str]]:
    """The glossary's terms in ``text`` with their rendering in ``target``, longest first.

    >>> glossary_terms("指令微调让模型执行指令。", "en")
    [('指令微调', 'instruction tuning'), ('微调', 'fine-tuning')]
    >>> glossary_terms("Fine-tuning with LoRA", "zh")
    [('Fine-tuning', '微调')]
    """
    if target == "en":
        found = [(zh, en) for zh, en in _TO_ENGLISH.items() if zh in text]
    else:
        found = [(m.group(0), GLOSSARY[m.group(0).lower()]) for m in GLOSSARY_PATTERN.finditer(text)
                 if lang.has_cjk(GLOSSARY[m.group(0).lower()])]
    return sorted(dict(found).items(), key=lambda pair: len(pair[0]), reverse=True)[:MAX_TERMS]


def western_amounts(text: str) -> str:
    """Amounts counted in 万 and 亿 rewritten in thousands, millions, billions.

    >>> western_amounts("175B 表示模型拥有 1750 亿个参数，还有 1.5万条数据。")
    '175B 表示模型拥有 175 billion 个参数，还有 15 thousand 条数据。'
    """
    def rewrite(match: re.Match) -> str:
        value = float(match.group(1)) * _UNIT[match.group(2)]
        scale, word = next(((s, w) for s, w in _SCALES if value >= s), (1.0, ""))
        after = match.string[match.end():match.end() + 1]
        return f"{value / scale:.6g} {word}".strip() + (" " if lang.has_cjk(after) else "")

    return _AMOUNT.sub(rewrite, text)


class SentenceTranslator:
    def __init__(self, chat_model, max_tokens: int = 240):
        self.chat_model = chat_model
        self.max_tokens = max_tokens

    def warm_up(self) -> None:
        """Load the model now rather than in the middle of the first English answer."""
        token_counter(self.chat_model)("warm-up")  # a server's model: an estimate, nothing loads

    @staticmethod
    def messages(text: str, target: str, added: list[str] | None = None) -> list[BaseMessage]:
        """The translation prompt; ``added``: names a first attempt added, to leave out."""
        terms = glossary_terms(text, target)
        hint = (" Translate these terms so: " + "; ".join(f"{a} = {b}" for a, b in terms) + ".") if terms else ""
        if added:
            hint += (" The text does not say " + ", ".join(f'"{t}"' for t in added) + ": leave that out, and keep "
                     "abbreviations as they are written.")
        return [SystemMessage(f"You translate notes on large language models into {_NAMES[target]}. Translate the "
                              "user's text faithfully and completely: add nothing and leave nothing out. Keep code, "
                              "numbers, names and Markdown such as **bold** as they are. Reply with the translation "
                              "only." + hint),
                HumanMessage(text)]

    def translate(self, text: str, target: str) -> str:
        """``text`` in ``target`` ("en" or "zh"), or "" if no faithful translation came back.

        Code blocks and text already in the target language come back as they are.
        """
        if _CODE.match(text) or not text.strip() or lang.detect(text) == target:
            return text
        prefix, body = split_enumeration(western_amounts(text) if target == "en" else text)
        translated, added = self._attempt(body, target)
        if added:
            translated, added = self._attempt(body, target, added)
        if not translated or added:
            return ""  # no reply in the target language, or a number or name the drafted sentence does not state
        translated = strip_enumeration(translated) if prefix else translated
        # English sentences are spaced, Chinese ones are not; a line break stays.
        trail = text[len(text.rstrip()):]
        if "\n" not in trail:
            trail = " " if target == "en" else ""
        return prefix + translated + trail

    def _attempt(self, body: str, target: str, added: list[str] | None = None) -> tuple[str, list[str]]:
        """One translation of ``body`` ("" if not in ``target``) and the names and numbers it adds."""
        reply = self.chat_model.invoke(self.messages(body.strip(), target, added), max_tokens=self.max_tokens,
                                       temperature=0.0, stop=["<|im_end|>", "\n\n"])
        translated = str(reply.content).strip().strip('"“”')
        if not translated or lang.detect(translated) != target:
            return "", []
        return translated, novel_terms(translated, body)
