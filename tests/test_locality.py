"""Where in a passage a sentence's parts are (rag.locality)."""

from __future__ import annotations

from rag.locality import apart


# Held-out 14's y032 and held-out 13's w018: the example's settings and the list of optimisers.
SETTINGS = """### 5. 大模型的训练过程如何优化？
* **自适应优化器（Adaptive Optimizer）：** 如 Adam、AdaGrad 等，可以自适应调整学习率，提高训练效果。
* **批量大小调整（Batch Size Adjustment）：** 根据硬件资源和模型规模，调整批量大小。

**举例：** 假设我们有一个大模型，其训练过程如下：

```
学习率：0.01
批量大小：64
训练时间：20 小时
```
"""


def test_names_and_numbers_a_passage_holds_only_lines_apart_are_not_related_by_it():
    assert apart("Adam 优化器的学习率给的是 0.01。", SETTINGS) == ["0.01", "Adam"]
    assert apart("The Adam optimizer uses a learning rate of 0.01.", SETTINGS) == ["0.01", "Adam"]
    # What the passage relates it vouches for: a block's settings, a line and the next.
    assert apart("举例里学习率是 0.01，批量大小是 64，训练 20 小时。", SETTINGS) == []
    assert apart("Adam and AdaGrad adjust the learning rate themselves.", SETTINGS) == []
    assert apart("Adam 能自适应调整学习率。", SETTINGS) == []  # one name relates nothing


def test_the_passages_topic_and_its_code_relate_to_all_of_it():
    code = "# GLM 文本分类\n```python\nmodel = GLMModel()\nnum_epochs = 5\nfor epoch in range(num_epochs):\n    x = 1\n    y = 2\n    z = 3\n\n    batch_size = 16\n```\n训练完成。"
    # The code is one unit: what it sets, it sets together, however many lines apart.
    assert apart("It trains for 5 epochs with a batch size of 16.", code) == []
    # A name in the section's label is what the whole passage is about.
    prose = "GLM 是通用语言模型。\n它有很多用途。\n另一段。\n它在 2021 年发布。"
    assert apart("GLM 在 2021 年发布。", prose) == ["2021", "GLM"]
    assert apart("GLM 在 2021 年发布。", prose, topic="ChatGLM 面试题 › GLM 简介") == []
    # A block of code copied into a reply is checked as a copy, not as relations.
    assert apart("```python\nopt = Adam(lr=0.01)\n```", SETTINGS) == []


def test_lines_an_excerpt_left_out_keep_what_was_around_them_apart():
    """Held-out 14's y032 at its second look: the excerpt cut the settings block short
    ("```\\n学习率：0.01\\n…") and brought the Adam line up to it."""
    excerpt = "举例：\n```\n学习率：0.01\n…\n* **自适应优化器：** 使用 Adam 优化器。"
    assert apart("Adam 的学习率是 0.01。", excerpt) == ["0.01", "Adam"]
    whole = "举例：\n```\n学习率：0.01\n```\n* **自适应优化器：** 使用 Adam 优化器。"
    assert apart("Adam 的学习率是 0.01。", whole) == []  # the passage itself puts them side by side


def test_apart_knows_a_name_in_every_spelling_the_name_check_knows():
    """``apart`` finds a name where ``novel_terms`` would: by its Chinese form
    (the glossary's), or without its hyphen. It once looked for the exact word only,
    so "Layer Normalization" and "GPT-2" were held nowhere and related nothing."""
    prose = "层归一化用于 Transformer。\n另一行。\n第三行。\n举例：批大小为 64。"
    assert apart("Layer Normalization 的批大小是 64。", prose) == ["64", "Normalization"]
    assert apart("Layer Normalization 用于 Transformer。", prose) == []
    code = 'model_name = "gpt2"\n\n说明一。\n说明二。\n说明三。\n它的学习率是 1e-5。'
    assert apart("GPT-2 的学习率是 1e-5。", code) == ["1e-5", "GPT-2"]

