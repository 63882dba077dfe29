"""Names and numbers: the words an answer cannot take from anywhere but its sources.

Embedding similarity tells that a sentence is *about* a passage, not that its
particulars come from it: "The LoRA paper was written by Yann LeCun in 2019"
sits close to any passage on LoRA. Two cheap, exact checks cover that gap:

* a question that is mostly about names the knowledge base never mentions
  ("How do I set up Azure AI Search?") is refused before generation;
* an answer sentence that states a number or a specific name (or a run of
  capitalised words, as an acronym's expansion is) found in neither its
  passages nor the question is unsupported.
"""

from __future__ import annotations

import re

from . import lang
from .rewrite import GLOSSARY

# A Latin-script word, keeping "GPT-4", "Qwen2-72B" and "v1.5" whole; not a
# number's exponent ("1e-5" has no word "e-5").
_WORD = re.compile(r"(?!(?<=[0-9])[eE][-+]?[0-9])[A-Za-z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*")
# Only a Latin letter or digit before it makes a number part of a word ("GPT4",
# "x86"): "设成了50" states 50. An exponent is part of it: "1e-5" is one number.
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.-])\d+(?:[.:]\d+)*(?:[eE][-+]?\d+)?[A-Za-z%]*")
# "256x256" is two numbers, as "(256, 256)" in code is: not "256x".
_TIMES = re.compile(r"(?<=\d)\s*[x×*]\s*(?=\d)")
# List numbering: "2. ", "2) ", "(2)", "2、", and the small model's "2] ". "1.5B" is not one.
_ENUMERATION = re.compile(r"^\s*(?:[-*•]\s*)?(?:\d+\.\s|\(\d+\)|\d+[)\]、])\s*")

# Capitalised words that are grammar or generic, not names.
_COMMON = frozenset("""
i what why how which who whom whose when where is are was were do does did can could should would will shall
may might must the a an in on of to and or for with my me you your we our it its if from by as at be this that
these those not no any all some one two between about there than into more most much many instead use using used
please tell explain describe compare give list name english chinese
only based free like style level specific aware friendly
""".split())


def _specific(word: str) -> bool:
    """Mixed case, digits or an acronym: "LoRA", "GPT-4", "RLHF" — never ordinary prose."""
    return len(word) > 1 and (any(c.isupper() for c in word[1:]) or any(c.isdigit() for c in word))


def _unqualified(word: str) -> str:
    """"Chinese-LLM" -> "LLM": the Chinese-LLM notes are notes on LLMs, so a common
    word hyphenated to the start or end of a specific name is no part of it (held-out
    14's y030 was refused on "Chinese-LLM", held-out 16's a027 on "CPU-only"). "All-Reduce"
    and "Mixture-of-Experts" stay whole: what is left of them is no name by itself.

    >>> _unqualified("Chinese-LLM"), _unqualified("CPU-only"), _unqualified("All-Reduce")
    ('LLM', 'CPU', 'All-Reduce')
    >>> _unqualified("Mixture-of-Experts")
    'Mixture-of-Experts'
    """
    parts = word.split("-")
    while len(parts) > 1 and parts[0].lower() in _COMMON:
        parts.pop(0)
    while len(parts) > 1 and parts[-1].lower() in _COMMON:
        parts.pop()
    core = "-".join(parts)
    return core if _specific(core) else word


def question_names(question: str) -> list[str]:
    """The names a question asks about: specific words, and capitalised words
    that do not open a sentence ("What is the capital of Australia?" -> Australia).

    >>> question_names("How do I set up a vector index in Azure AI Search with LoRA?")
    ['Azure', 'AI', 'Search', 'LoRA']
    """
    chinese = lang.detect(question) == "zh"  # Chinese capitalises no sentence start
    names = []
    for match in _WORD.finditer(question):
        word = _unqualified(match.group(0))
        if word.lower() in _COMMON or word in names:
            continue
        before = question[: match.start()].rstrip()
        opens_sentence = not before or before[-1] in ".?!"
        if _specific(word) or (word[0].isupper() and (chinese or not opens_sentence)):
            names.append(word)
    return names


def split_enumeration(text: str) -> tuple[str, str]:
    """The list numbering ``text`` opens with, and the rest.

    >>> split_enumeration("2. **数据**：清洗。"), split_enumeration("1.5B 参数")
    (('2. ', '**数据**：清洗。'), ('', '1.5B 参数'))
    """
    match = _ENUMERATION.match(text)
    return (match.group(0), text[match.end():]) if match else ("", text)


def strip_enumeration(text: str) -> str:
    """``text`` without the list numbering it opens with.

    >>> strip_enumeration("2] 引入公平性约束。"), strip_enumeration("1.5B 参数")
    ('引入公平性约束。', '1.5B 参数')
    """
    return split_enumeration(text)[1]


def numbers_in(text: str) -> list[str]:
    """The numbers ``text`` states, units attached.

    >>> numbers_in("1.5B 参数, 80:20, 256x256 像素, 12%, 设成了50, GPT4, lr=1e-5")
    ['1.5B', '80:20', '256', '256', '12%', '50', '1e-5']
    """
    return _NUMBER.findall(_TIMES.sub(" ", text))


def specific_terms(text: str) -> list[str]:
    """Numbers (list numbering aside) and specific names stated in ``text``.

    >>> specific_terms("1. GPT-3 has 175B parameters, says OpenAI.")
    ['175B', 'GPT-3', 'OpenAI']
    >>> specific_terms("2] 引入公平性约束。"), specific_terms("(3) 审计。"), specific_terms("1.5B 参数。")
    ([], [], ['1.5B'])
    """
    text = _TIMES.sub(" ", strip_enumeration(text))
    numbers = numbers_in(text)
    return numbers + [w for w in _WORD.findall(text) if _specific(w) and w not in numbers]


# Code quoted in a sentence: `batch.label`, `no_repeat_ngram_size=2`, `generate()`.
_CODE_SPAN = re.compile(r"`([\x21-\x5f\x61-\x7e]+?)(?:\(\))?`")


def code_spans(text: str) -> list[str]:
    """The one-token pieces of code ``text`` quotes in backticks (a call's "()" aside).

    >>> code_spans("标签取自 `batch.label`，见 `model.generate()` 和 `微调`。")
    ['batch.label', 'model.generate']
    """
    return _CODE_SPAN.findall(text)


# Two or more capitalised words in a row: a proper name or an expansion
# ("Generative Pre-trained Transformer"). A gloss in brackets after Chinese
# ("模型分片加载（Model Sharding）") and a bold heading ("**Learning Rate**:")
# are the model's labels for what a passage says, not names it states.
# Whole words only: "Because LoRA's goal" is no run ("Lo" is not a word).
_TITLE_RUN = re.compile(r"\b[A-Z][a-z]+(?:-[A-Za-z]+)*\b(?:\s+[A-Z][a-z]+(?:-[A-Za-z]+)*\b)+")
_GLOSS = re.compile(r"[\u4e00-\u9fff]\s*[（(][^）)]*[）)]|\*\*[^*]+\*\*")


def title_case_names(text: str) -> list[str]:
    """The words of the runs of capitalised words in ``text`` that are not a
    gloss or a heading.

    >>> title_case_names("GPT stands for Generative Pre-trained Transformer. Thanks")
    ['Generative', 'Pre-trained', 'Transformer']
    >>> title_case_names("模型分片加载（Model Sharding）：拆分。**Learning Rate**: adjust. The Model")
    []
    >>> title_case_names("Because LoRA's goal is small. Utilizing LangChain's tools.")
    []
    """
    words = []
    for match in _TITLE_RUN.finditer(_GLOSS.sub(" ", text)):
        run = [w for w in match.group(0).split() if w.lower() not in _COMMON]
        if len(run) > 1:
            words += [w for w in run if w not in words]
    return words


def _forms(term: str) -> list[str]:
    low = term.lower()
    return [low, low[:-1]] if low.endswith("s") and len(low) > 3 else [low]  # "GANs" is "GAN"


# What code calls a thing that prose names otherwise: torch.device("cuda") is the GPU.
_ALIASES = {"cuda": ("gpu", "gpus")}
_IMPORT = re.compile(r"^\s*from\s+([\w.]+)\s+import\s+(\w+(?:\s*,\s*\w+)*)", re.MULTILINE | re.ASCII)


def import_lines(text: str) -> str:
    """``text``'s "from … import …" lines: a code file's names for what a later
    chunk of it uses (``random.normal`` after ``from jax import random``).

    >>> import_lines("from jax import random\\nx = random.normal(key)\\n")
    'from jax import random'
    """
    return "\n".join(m.group(0).strip() for m in _IMPORT.finditer(text))


def _words(text: str) -> set[str]:
    """``text``'s Latin-script words, lower-cased, with their dotted and hyphenated
    parts ("glove.6b.100d" also gives "glove"), and its numbers."""
    words = set(_WORD.findall(text.lower()))
    return words | {part for w in words for part in re.split(r"[-.]", w)} | {n.lower() for n in numbers_in(text)}


class Vocabulary:
    """The Latin-script words and numbers a set of texts contains, case-insensitively;
    an English term the glossary translates counts when its Chinese form occurs,
    and one code spells otherwise (``_ALIASES``) when code does.

    >>> Vocabulary(['device = torch.device("cuda")']).knows("GPU")
    True
    >>> v = Vocabulary(["from torch.utils.data import Dataset; GPT-3 有 3 层, 5 个头", "from jax import random, grad"])
    >>> v.knows("torch.utils.data.Dataset"), v.knows("torch.utils.data.Sampler"), v.knows("GPT-3.5")
    (True, False, False)
    >>> v.knows("jax.random.normal"), v.knows("jax.grad"), v.knows("jax.jit")
    (False, True, False)
    >>> Vocabulary(['model_name = "gpt2"']).knows("GPT-2"), Vocabulary(["GPT-2 模型"]).knows("GPT2")
    (True, True)
    """

    def __init__(self, texts):
        self.words: set[str] = set()
        glossary = dict(GLOSSARY)
        for text in texts:
            self.words |= _words(text)
            for word in _WORD.findall(text.lower()):
                self.words.add(word.replace("-", ""))  # prose's "GPT-2" is code's "gpt2"
                self.words.update(_ALIASES.get(word, ()))
            for module, names in _IMPORT.findall(text.lower()):  # from jax import random: jax.random
                self.words.update(f"{module}.{name.strip()}" for name in names.split(","))
            found = {en for en, zh in glossary.items() if zh in text}
            self.words.update(found)
            for en in found:
                del glossary[en]

    def knows(self, term: str) -> bool:
        """Whether the texts name ``term``; a qualified name counts when they name
        its qualifier and its last part ("torch.utils.data.Dataset" after
        ``from torch.utils.data import Dataset``; "model.generate")."""
        if any(form in self.words for form in _forms(term) + _forms(term.replace("-", ""))):
            return True
        qualifier, dot, name = term.lower().rpartition(".")
        # A module path only ("torch.utils.data", "jax.random" from its import): "batch.labels"
        # is not vouched for by "batch" and "labels" apart. Identifiers only: "3.5" is a number.
        return (dot == "." and "." in qualifier and qualifier[:1].isalpha() and name[:1].isalpha()
                and qualifier in self.words and self.knows(name))

    def unknown(self, terms: list[str]) -> list[str]:
        return [t for t in terms if not self.knows(t)]


def novel_terms(sentence: str, passages: str, question: str = "") -> list[str]:
    """What ``sentence`` states that its sources cannot vouch for: numbers and
    specific names found in neither ``passages`` nor ``question``, and names
    the question asks about that no passage mentions (an answer about
    "Azure AI Search" from passages that never name it is not from them).

    >>> novel_terms("1. It has 175B parameters and came out in 2019, by OpenAI.", "参数 175B")
    ['2019', 'OpenAI']
    >>> novel_terms("Create an Azure service first.", "向量数据库", "How do I set up Azure AI Search?")
    ['Azure']
    >>> novel_terms("GPT stands for Generative Pre-trained Transformer.", "加载预训练的 GPT 模型 (Transformers 库)")
    ['Generative', 'Pre-trained']
    >>> novel_terms("标签取自 `batch.label`。", "text = batch.text"), novel_terms("取自 `batch.text`。", "text = batch.text")
    (['batch.label'], [])
    """
    context = passages + " " + question
    known, lowered = Vocabulary([context]), context.lower()
    novel = [t for t in specific_terms(sentence) if not known.knows(t) and t.lower() not in lowered]
    novel += [w for w in title_case_names(sentence) if w not in novel and not known.knows(w)
              and w.lower() not in lowered and not all(known.knows(part) for part in w.split("-"))]
    # Quoted code is quoted from somewhere: "`batch.label`" is not vouched for by a
    # passage without it, however close (held-out 13, x023, cited the wrong code block).
    novel += [c for c in code_spans(sentence) if c not in novel and not known.knows(c) and c.lower() not in lowered]
    words = {w.lower() for w in _WORD.findall(sentence)}
    unknown = Vocabulary([passages]).unknown(question_names(question))
    return novel + [n for n in unknown if n.lower() in words and n not in novel]


def sentence_names(sentence: str) -> list[str]:
    """The numbers and names a sentence states: specific words, and capitalised
    words that do not open it (in Chinese, every capitalised word).

    >>> sentence_names("Adam 的学习率是 0.01。"), sentence_names("2. Layer Normalization (LN) helps.")
    (['0.01', 'Adam'], ['Normalization', 'LN'])
    """
    text = strip_enumeration(sentence)
    numbers = numbers_in(text)
    return list(dict.fromkeys(numbers + [n for n in question_names(text) if n not in numbers]))
