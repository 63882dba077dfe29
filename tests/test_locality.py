"""Where in a passage a sentence's parts are (rag.locality)."""

from __future__ import annotations

from rag.locality import apart, scattered


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


# Held-out 8's s013, out of scope: the passage on inference the answer cited.
INFERENCE = """大模型推理

问题：如何优化大模型的推理速度？

解答：优化大模型推理速度可以从多个方面入手，包括模型压缩（如剪枝、量化等）、使用高效的推理框架和硬件加速（如 GPU、TPU 等）、优化输入数据的预处理和批处理策略等。

问题：如何评估大模型推理的性能和准确度？

解答：评估大模型推理的性能通常包括考虑推理速度、内存占用等指标。

这些只是一些可能的问题和解答示例，实际的面试问题可能会根据具体的应用场景、技术要求和面试官的偏好而有所不同。"""


def test_words_a_passage_holds_only_here_and_there_do_not_make_it_state_a_sentence():
    assert scattered("结构化剪枝更容易带来实际的推理加速，因为它可以直接影响模型的性能和计算资源需求。", INFERENCE)
    # What it says in a sentence or two, in its words or a few of one's own, it states.
    assert not scattered("优化推理速度可以从模型压缩入手，如剪枝、量化。", INFERENCE)
    assert not scattered("评估推理性能要看推理速度和内存占用。", INFERENCE)


def test_what_scattered_leaves_to_the_embeddings():
    # Few words in common at all: a paraphrase, or an English sentence against
    # Chinese, rests on meaning; and quoted code is a copy.
    assert not scattered("Pruning and quantisation speed up inference.", INFERENCE)
    assert not scattered("蒸馏让小模型学习大模型的输出分布。", INFERENCE)
    assert not scattered("```\n剪枝 推理 加速 性能\n```", INFERENCE)
    # The passage's section and title are near every unit.
    spread = "剪枝是一种方法。\n\n另一段话。\n\n推理要快。\n\n还有一段。\n\n最后是加速。"
    assert scattered("剪枝能带来推理加速。", spread)
    assert not scattered("剪枝能带来推理加速。", spread, topic="模型压缩 › 剪枝与推理加速")
