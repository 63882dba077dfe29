"""Where in a passage a sentence's parts are.

A passage that holds a sentence's words does not thereby state it. Words in
common say a sentence is *about* a passage; what the passage relates, it
relates within a sentence or two. So the checks here cut a passage into units
(sentences and lines; a block of code whole) and ask whether some two
consecutive units hold what the sentence puts together:

* ``apart``: the names and numbers it relates ("Adam 的学习率是 0.01" from an
  optimiser list and another example's settings, lines below);
* ``scattered``: its words ("结构化剪枝更容易带来实际的推理加速，因为它可以直接影响
  模型的性能和计算资源需求", assembled from a passage on inference that says so nowhere).
"""

from __future__ import annotations

import functools
import re

from . import lang
from .excerpt import GAP
from .lexical import tokenize
from .terms import Vocabulary, sentence_names

# A passage's units: its sentences, its lines ("批量大小：64", a "X:" heading),
# and each run of code lines, as a whole: code relates what it names across lines.
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])")
_CODE_LINE = re.compile(r"^\s*(?:#|```|import\s|from\s|def\s|class\s|return\b|for\s|if\s)|[=()\[\]{}]")
_COMMENT_OR_STRING = re.compile(r"""#.*|"[^"]*"|'[^']*'""")


def _is_code(line: str) -> bool:
    """A line of code: code syntax, and no Chinese outside a comment or string."""
    body = _COMMENT_OR_STRING.sub("", line)
    return bool(_CODE_LINE.search(line)) and not lang.has_cjk(body)


def _units(passage: str) -> list[str]:
    """``passage`` cut into units: a fenced block, or a run of lines that look
    like code (a passage may begin inside a block), is one unit. A gap an excerpt
    marks is a unit too, holding nothing, and ends a block it cuts short
    (held-out 14's y032 at its second look: "```\\n学习率：0.01\\n…" and no closing fence).

    >>> _units("设置如下。\\n```\\n学习率：0.01\\n批量：64\\n```\\n如 Adam。然后 x = f(1)\\ny = g(x)")
    ['设置如下。', '```\\n学习率：0.01\\n批量：64\\n```', '如 Adam。', '然后 x = f(1)', 'y = g(x)']
    >>> _units("```\\n学习率：0.01\\n…\\n使用 Adam 优化器。")
    ['```\\n学习率：0.01', '…', '使用 Adam 优化器。']
    """
    units: list[str] = []
    fenced = code = False
    for line in (piece for whole in passage.split("\n") for piece in _with_gaps(whole)):
        if line == GAP:  # lines an excerpt left out: what follows was not next to what precedes
            units.append(GAP)
            fenced = code = False
            continue
        if not line.strip():
            continue
        opens = line.lstrip().startswith("```")
        if fenced or opens or _is_code(line):
            if code:
                units[-1] += "\n" + line
            else:
                units.append(line)
            fenced ^= opens
            code = True
        else:
            units += [u for u in _SENTENCE_END.split(line) if u.strip()]
            code = False
    return units


def _with_gaps(line: str) -> list[str]:
    """``line`` with each excerpt gap ("…", ``rag.excerpt.GAP``) a piece of its own."""
    pieces = line.split(GAP)
    return [p for i, piece in enumerate(pieces) for p in ((GAP, piece) if i else (piece,))]


def apart(sentence: str, passage: str, topic: str = "", window: int = 2) -> list[str]:
    """The names and numbers ``sentence`` states that ``passage`` holds, when no
    ``window`` consecutive sentences or lines of it hold them all; [] when some
    do, or when it holds fewer than two of them. Two lines are a "X:" heading and
    what it says of X. A name in the passage's ``topic`` (its section and title)
    is what all of it is about, so near every line ("The GLM example trains for 5
    epochs" from its code); a block of code quoted whole relates nothing.

    Words in common say a sentence is about a passage, not that its parts are
    related there: "Adam 的学习率是 0.01" joins "学习率：0.01" in an example's
    settings with "Adam" in a list of optimisers some lines above (held-out 14,
    y032), a relation the passage never states.

    >>> p = "如 Adam、AdaGrad 等优化器。\\n\\n举例：\\n批量大小：64\\n学习率：0.01\\n"
    >>> apart("Adam 的学习率是 0.01。", p), apart("批量大小为 64，学习率 0.01。", p)
    (['0.01', 'Adam'], [])
    """
    if "```" in sentence:
        return []
    holds = _unit_vocabularies(passage)
    about = Vocabulary([topic])
    where = {}
    for name in sentence_names(sentence):
        if about.knows(name):
            continue
        found = [i for i, vocabulary in enumerate(holds) if vocabulary.knows(name)]
        if found:
            where[name] = found
    if len(where) < 2:
        return []
    for start in _starts(len(holds), window):
        if all(any(start <= i < start + window for i in found) for found in where.values()):
            return []
    return list(where)


def scattered(sentence: str, passage: str, topic: str = "", window: int = 2, share: float = 0.3) -> bool:
    """Whether ``passage`` holds ``share`` of ``sentence``'s words only spread
    over it: no ``window`` consecutive units (with its ``topic``, the section and
    title, near every one) hold that many. Such a sentence is assembled from the
    passage's vocabulary, not taken from something it says (held-out 8's s013,
    out of scope: "结构化剪枝更容易带来实际的推理加速，因为它可以直接影响模型的性能和
    计算资源需求", from a passage on inference that names pruning once, among ways
    to speed it up, and never compares two kinds of it). A share, not every word:
    a short sentence of three of the passage's words in one line of it passes
    ("结构化剪枝更容易带来实际的推理加速" does, docs/EVAL.md, fourteenth round).

    Not for a sentence in another language than the passage, which shares no
    words with it by nature, nor for one that shares few with all of it (it
    rests on meaning, which the embeddings judge), nor for quoted code. The
    window and share were chosen by a scan of the supported claims of every
    first-look dump (docs/EVAL.md, fourteenth round).

    >>> p = "剪枝分为两类。\\n\\n量化也很常见。\\n\\n推理时要注意内存。\\n\\n这会带来一些开销。\\n\\n部署时需要加速。"
    >>> scattered("结构化剪枝更容易带来实际的推理加速。", p), scattered("推理时要注意内存。", p)
    (True, False)
    """
    if "```" in sentence or lang.has_cjk(sentence) != lang.has_cjk(passage):
        return False
    words = set(tokenize(sentence))
    if not words:
        return False
    held = _unit_words(passage)
    about = set(tokenize(topic))
    if len(words & about.union(*held)) < share * len(words):
        return False
    return all(len(words & about.union(*held[i:i + window])) < share * len(words)
               for i in _starts(len(held), window))


def _starts(units: int, window: int) -> range:
    """Where each run of ``window`` consecutive units starts (one run if there are fewer)."""
    return range(max(1, units - window + 1))


# A passage is checked against every sentence of a reply: cut it once.
@functools.lru_cache(maxsize=256)
def _unit_words(passage: str) -> tuple[frozenset[str], ...]:
    """Each unit's words (jieba tokens), for ``scattered``."""
    return tuple(frozenset(tokenize(u)) for u in _units(passage))


@functools.lru_cache(maxsize=256)
def _unit_vocabularies(passage: str) -> tuple[Vocabulary, ...]:
    """Each unit's names and numbers, for ``apart``."""
    return tuple(Vocabulary([u]) for u in _units(passage))
