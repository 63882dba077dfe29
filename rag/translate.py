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
"""

from __future__ import annotations

import re

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from . import lang
from .llm import token_counter
from .terms import novel_terms, split_enumeration, strip_enumeration

_NAMES = {"en": "English", "zh": "Simplified Chinese"}
_CODE = re.compile(r"^\s*```")


class SentenceTranslator:
    def __init__(self, chat_model, max_tokens: int = 240):
        self.chat_model = chat_model
        self.max_tokens = max_tokens

    def warm_up(self) -> None:
        """Load the model now rather than in the middle of the first English answer."""
        token_counter(self.chat_model)("warm-up")  # a server's model: an estimate, nothing loads

    @staticmethod
    def messages(text: str, target: str) -> list[BaseMessage]:
        return [SystemMessage(f"You translate notes on large language models into {_NAMES[target]}. Translate the "
                              "user's text faithfully and completely: add nothing and leave nothing out. Keep code, "
                              "numbers, names and Markdown such as **bold** as they are. Reply with the translation "
                              "only."),
                HumanMessage(text)]

    def translate(self, text: str, target: str) -> str:
        """``text`` in ``target`` ("en" or "zh"), or "" if no faithful translation came back.

        Code blocks and text already in the target language come back as they are.
        """
        if _CODE.match(text) or not text.strip() or lang.detect(text) == target:
            return text
        prefix, body = split_enumeration(text)
        reply = self.chat_model.invoke(self.messages(body.strip(), target), max_tokens=self.max_tokens,
                                       temperature=0.0, stop=["<|im_end|>", "\n\n"])
        translated = str(reply.content).strip().strip('"“”')
        if not translated or lang.detect(translated) != target:
            return ""
        if novel_terms(translated, body):
            return ""  # a number or name the drafted sentence does not state
        translated = strip_enumeration(translated) if prefix else translated
        # English sentences are spaced, Chinese ones are not; a line break stays.
        trail = text[len(text.rstrip()):]
        if "\n" not in trail:
            trail = " " if target == "en" else ""
        return prefix + translated + trail
