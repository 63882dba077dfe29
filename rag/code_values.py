"""Values set in a passage's code, stated in prose.

Asked "what maximum length does the translation example generate?", the model
answers "生成结果的最大长度设成了50" from ``model.generate(input_ids, max_length=50)``.
The citation check compares words and embeddings; a Chinese sentence shares
almost no words with a line of Python, so it used to leave such a sentence
unsupported, and the right answer was refused (docs/EVAL.md, ninth round).

This module reads the code for what it sets (a *binding*: an identifier and
its value, from ``max_length=50``, ``for epoch in range(3)``, ``{loss:.4f}`` or
``return None``), and accepts a sentence as stating it when

* every value the sentence states (a number, a Chinese count such as 四位, or
  None/True/False) is bound in the passage to the identifier the sentence
  names nearest it, in the same clause, in the identifier's own words
  (``max_length``) or in Chinese (最大长度); and no mention of it is next to
  another identifier: "学习率为 42" does not stand on ``random_state=42``;
* and the rest of the sentence says nothing else: its words are the passage's,
  the question's, the bound identifiers' (in either language), or a few words
  of setting ("设成", "默认"), in the same share the citation check asks of a
  sentence copied from a passage.

Only values are matched here: a name in code is checked as any name is (``rag.terms``).
A sentence that quotes a passage's code in backticks is tied to it the same way
(``quotes_code``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .lexical import tokenize
from .terms import code_spans

# A number, or one of Python's literals: what a sentence can state exactly.
_LITERAL = r"-?\d+(?:\.\d+)?(?:e-?\d+)?|None|True|False"
# max_length=50, lr = 0.001, do_sample=True, max_length: 128 (a type-annotated or YAML-like setting)
_ASSIGNED = re.compile(rf"(?<![\w.])([A-Za-z_][A-Za-z0-9_]*)\s*(?:=|:)\s*({_LITERAL})(?![\w.])")
# return None
_RETURNED = re.compile(rf"\b(return)\s+({_LITERAL})(?![\w.])")
# for epoch in range(3)
_LOOP = re.compile(r"\bfor\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\s+range\(\s*(\d+)\s*\)")
# f"{loss:.4f}": the value shown to four decimals
_DECIMALS = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_.]*?)(?:\(\))?\s*:\s*\.(\d)f\s*\}")
# A variable passed on: dropout=drop_out (a keyword argument), and a call's one
# argument, named by what it is assigned to and by the callee (self.dropout = nn.Dropout(drop_out)).
_IDENTIFIER = r"(?!(?:None|True|False)\b)[A-Za-z_][A-Za-z0-9_]*"
_PASSED = re.compile(rf"(?<![\w.])([A-Za-z_][A-Za-z0-9_]*)\s*=\s*({_IDENTIFIER})(?=\s*[,)])")
_CALLED = re.compile(rf"(?<![\w.])([A-Za-z_][\w.]*)\s*=\s*([A-Za-z_][\w.]*)\(\s*({_IDENTIFIER})\s*\)")

# The words an identifier is made of, as prose says them (mostly in Chinese; an
# abbreviation also spelled out): general programming vocabulary, not phrases
# from any question. A part maps to the words a sentence may use for it.
_SAID: dict[str, tuple[str, ...]] = {
    "max": ("最大", "最长", "最多"), "min": ("最小", "最少"), "length": ("长度", "最长"), "len": ("长度", "length"),
    "seed": ("种子",), "random": ("随机",), "state": ("状态",), "size": ("大小", "尺寸"),
    "batch": ("批", "批次", "批量", "批大小"), "epoch": ("轮", "轮数", "周期"), "epochs": ("轮", "轮数", "周期"),
    "lr": ("学习率", "learning rate"), "learning": ("学习",), "rate": ("率",), "hidden": ("隐藏", "隐层"),
    "dim": ("维", "维度", "dimension"), "embedding": ("嵌入", "词向量"), "embed": ("嵌入", "词向量"),
    "layers": ("层", "层数"), "layer": ("层",), "num": ("数", "数量", "个数", "number"), "dropout": ("丢弃",),
    "test": ("测试",), "train": ("训练",), "loss": ("损失",), "labels": ("标签", "类别"),
    "label": ("标签", "类别"), "classes": ("类别", "类"), "vocab": ("词表", "词汇"), "device": ("设备",),
    "temperature": ("温度",), "beams": ("束",), "steps": ("步", "步数"), "step": ("步",),
    "warmup": ("预热",), "weight": ("权重",), "decay": ("衰减",), "momentum": ("动量",),
    "output": ("输出",), "input": ("输入",), "heads": ("头",), "ratio": ("比例",),
    "return": ("返回",), "sequences": ("序列",), "sequence": ("序列",), "ngram": ("n-gram",),
    "repeat": ("重复",), "decimals": ("小数",), "sample": ("采样",), "shuffle": ("打乱",),
    "split": ("划分", "拆分", "切分"),
    "truncation": ("截断",), "padding": ("填充",),
}
# Parts too general to say which identifier a sentence means: "size" is batch_size's and hidden_size's.
_GENERIC = frozenset("max min num n size dim rate state value count type id ids total no".split())
# What a count is of: "四位小数", "一条候选序列".
_MEASURES = "位个层轮次类种步条项列行"
# Words of setting a value, and the measure words after a count, which state nothing beyond it.
_SETTING = frozenset("设 设成 设为 设置 设置成 设置为 设定 设定为 定为 取 取值 值 为 是 了 默认 情况 情况下 下 保留 表示 "
                     "参数 set sets setting default defaults value equal equals uses use used".split()) | set(_MEASURES)
_CHINESE_DIGITS = {"一": "1", "二": "2", "两": "2", "三": "3", "四": "4", "五": "5", "六": "6", "七": "7",
                   "八": "8", "九": "9", "十": "10"}
_COUNTED = re.compile(rf"([一二两三四五六七八九十])(?=\s*[{_MEASURES}])")
_CODE_QUOTE = re.compile(r"`[^`]*`")
_CLAUSE = re.compile(r"[，,；;。！？!?\n]|\.(?=\s|$)")
_VALUE = re.compile(r"(?<![A-Za-z0-9_.])(?:-?\d+(?:\.\d+)?(?:e-?\d+)?(?![\w.]*\d)|(?:None|True|False)(?![\w]))")


@dataclass(frozen=True)
class Binding:
    identifier: str  # as written: "max_length", "loss"
    value: str       # "50", "0.001"
    parts: tuple[str, ...]  # "max", "length"


def _parts(identifier: str, *extra: str) -> tuple[str, ...]:
    words = re.sub(r"([a-z])([A-Z])", r"\1_\2", identifier.split(".")[-1]).lower().split("_")
    return tuple(w for w in (*words, *extra) if w)


def bindings(code: str) -> list[Binding]:
    """The values the text's code sets, each with its identifier.

    >>> [(b.identifier, b.value) for b in bindings('generate(ids, max_length=50)\\nfor epoch in range(3):\\n'
    ...                                               'print(f"Final loss: {loss:.4f}")')]
    [('max_length', '50'), ('epoch', '3'), ('loss', '4')]
    """
    found = [Binding(m.group(1), _number(m.group(2)), _parts(m.group(1))) for m in _ASSIGNED.finditer(code)]
    found += [Binding(m.group(1), m.group(2), _parts(m.group(1))) for m in _LOOP.finditer(code)]
    found += [Binding(m.group(1), m.group(2), _parts(m.group(1))) for m in _RETURNED.finditer(code)]
    found += [Binding(m.group(1), m.group(2), _parts(m.group(1), "decimals")) for m in _DECIMALS.finditer(code)]
    found += [Binding(m.group(1), m.group(2), _parts(m.group(1))) for m in _PASSED.finditer(code)]
    found += [Binding(name, m.group(3), _parts(name)) for m in _CALLED.finditer(code) for name in m.group(1, 2)]
    return [b for b in found if b.parts]  # "for _ in range(100)" names nothing


def _number(text: str) -> str:
    """1e-3 and 0.001 are one value; the literals are themselves."""
    return str(float(text)) if text[:1].isdigit() and "e" in text.lower() else text


def _is_variable(value: str) -> bool:
    return bool(re.fullmatch(_IDENTIFIER, value))


def _values(sentence: str, variables: set[str] = frozenset()) -> tuple[list[tuple[int, str]], str]:
    """The values ``sentence`` states, with their positions in the text returned
    with them, where Chinese counts are digits: "四位小数" states 4; and where it
    names one of the ``variables`` the code passes on."""
    text = _COUNTED.sub(lambda m: _CHINESE_DIGITS[m.group(1)], sentence)
    found = [(m.start(), _number(m.group())) for m in _VALUE.finditer(text)]
    found += [(m.start(), name) for name in variables for m in re.finditer(rf"(?<![\w.]){re.escape(name)}(?!\w)", text)]
    return sorted(found), text


def _mentions(text: str, found: list[Binding]) -> list[tuple[int, int, Binding]]:
    """Where ``text`` names each binding's identifier, as (start, end, binding): a
    specific part of it, in English or Chinese; an identifier of general parts
    only (``max_size``) is named only by all of them."""
    lowered, out = text.lower(), []
    for b in found:
        specific = [p for p in b.parts if p not in _GENERIC]
        spans = {part: [m.span() for word in (part, *_SAID.get(part, ()))
                        for m in re.finditer(_pattern(word), lowered)] for part in specific or b.parts}
        if specific:
            out += [(start, end, b) for at in spans.values() for start, end in at]
        elif all(spans.values()):  # from the first part's start to the last one's end
            every = [span for at in spans.values() for span in at]
            out.append((min(s for s, _ in every), max(e for _, e in every), b))
    return out


def _pattern(word: str) -> str:
    return rf"(?<![a-z]){re.escape(word)}(?![a-z])" if word.isascii() else re.escape(word)


def _named_at(position: int, text: str, mentions: list[tuple[int, int, Binding]]) -> list[Binding]:
    """The bindings the clause around ``position`` names nearest it: the last
    mention before it ("学习率为 0.001"), else the first after ("0.001 的学习率")."""
    start = max((m.end() for m in _CLAUSE.finditer(text, 0, position)), default=0)
    end = next((m.start() for m in _CLAUSE.finditer(text, position)), len(text))
    before = [(e, b) for s, e, b in mentions if start <= s and e <= position]
    after = [(s, b) for s, e, b in mentions if position < s and e <= end]
    if before:
        last = max(e for e, _ in before)
        return [b for e, b in before if e == last]
    first = min((s for s, _ in after), default=None)
    return [b for s, b in after if s == first]


def states_code_value(sentence: str, passage: str, question: str = "", share: float = 0.7) -> bool:
    """Whether ``sentence`` states values ``passage``'s code sets, and nothing more
    (the module's rule; ``share``: of its words that must be accounted for).

    >>> code = 'output = model.generate(input_ids, max_length=50)\\ntrain_test_split(data, random_state=42)'
    >>> states_code_value("生成结果的最大长度设成了50。", code, "生成结果的最大长度设成了多少？")
    True
    >>> states_code_value("随机种子设的是 42。", code), states_code_value("最大长度是 42。", code)
    (True, False)
    >>> states_code_value("最大长度设成了50，这样翻译更准确、更流畅。", code, "最大长度设成了多少？")
    False
    >>> code = "self.rnn = nn.RNN(dim, num_layers=n_layers)\\nself.dropout = nn.Dropout(drop_out)"
    >>> states_code_value("Dropout 层的丢弃率取自 `drop_out` 参数。", code, "丢弃率取自哪个参数？")
    True
    >>> states_code_value("层数取自 `drop_out` 参数。", code, "层数取自哪个参数？")
    False
    """
    found = bindings(passage)
    if not found:
        return False
    values, text = _values(sentence, {b.value for b in found if _is_variable(b.value)})
    if not values:
        return False
    # A number is named by what sets numbers, a variable by what takes one: "dropout
    # 设为 0.5" is not contradicted by nn.Dropout(drop_out) passing a variable.
    mentions = {kind: _mentions(text, [b for b in found if _is_variable(b.value) == kind]) for kind in (False, True)}
    used: list[Binding] = []
    for value in {v for _, v in values}:
        # Each value must be named rightly somewhere ("这个参数是 1，表示只返回一条候选序列":
        # the second 1), and nowhere wrongly ("学习率是 42" for random_state=42).
        named = [_named_at(position, text, mentions[_is_variable(value)]) for position, v in values if v == value]
        if any(bs and all(b.value != value for b in bs) for bs in named):
            return False
        match = [b for bs in named for b in bs if b.value == value]
        if not match:
            return False
        used += match
    accounted = set(tokenize(passage)) | set(tokenize(question)) | _SETTING | {v.lower() for _, v in values}
    accounted |= set(tokenize(" ".join(w for b in used for p in b.parts for w in (p, *_SAID.get(p, ())))))
    words = tokenize(text)
    return bool(words) and sum(w in accounted for w in words) >= share * len(words)


def quotes_code(sentence: str, passage: str, question: str = "", share: float = 0.7) -> bool:
    """Whether ``sentence`` quotes code that ``passage`` holds, in backticks, says
    in words what the quoted line is about, and says nothing else: "标签是从
    `batch.label` 取出来的" for ``labels = batch.label`` (标签 is what the line's
    ``labels`` says), which shares two words with the line it quotes.

    The words about the line must be the line's own (or ``_SAID``'s for them):
    "计算准确率的 helper 是 `train_model`" and "批次迭代器是用 `TabularDataset`
    生成的" quote real code for what its line does not do (held-out u015,
    n040), in the question's words. The rest of the sentence is the passage's,
    the question's or words of setting, in ``share``.

    >>> code = "def train(model, iterator):\\n    for batch in iterator:\\n        labels = batch.label\\n"
    >>> quotes_code("标签是从 `batch.label` 取出来的。", code, "标签是从哪个属性取出来的？")
    True
    >>> quotes_code("标签是从 `batch.y` 取出来的。", code, "标签是从哪个属性取出来的？")
    False
    >>> quotes_code("计算准确率的函数是 `train`。", code, "计算准确率的函数是哪个？")
    False
    >>> quotes_code("在训练中，计算准确率的函数是 `train`。", code, "训练中计算准确率的函数是哪个？")
    False
    >>> quotes_code("标签取自 `batch.label`，这样训练更稳定、收敛更快。", code, "标签取自哪里？")
    False
    """
    spans = code_spans(sentence)
    lines = [line for line in passage.lower().splitlines() if any(span.lower() in line for span in spans)]
    if not spans or not all(any(span.lower() in line for line in lines) for span in spans):
        return False
    parts = {p for line in lines for word in re.findall(r"[a-z_][a-z0-9_]*", line) for p in _parts(word)}
    said = set(tokenize(" ".join(w for p in parts for w in (p, *_SAID.get(p, ())))))
    for quote in _CODE_QUOTE.finditer(sentence):  # each quote's own clause says what its line is about
        start = max((m.end() for m in _CLAUSE.finditer(sentence, 0, quote.start())), default=0)
        end = next((m.start() for m in _CLAUSE.finditer(sentence, quote.end())), len(sentence))
        if not said & set(tokenize(_CODE_QUOTE.sub(" ", sentence[start:end]))):
            return False
    accounted = set(tokenize(passage)) | set(tokenize(question)) | _SETTING | set(tokenize(" ".join(spans)))
    words = tokenize(sentence)
    return bool(words) and sum(w in accounted for w in words) >= share * len(words)
