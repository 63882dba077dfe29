"""Names and numbers an answer cannot take from anywhere but its sources (rag.terms)."""

from __future__ import annotations

import pytest

from rag.terms import Vocabulary, apart, novel_terms, question_names, specific_terms


@pytest.mark.parametrize("question, names", [
    ("What is the capital of Australia?", ["Australia"]),
    ("Transformers: why LayerNorm?", ["LayerNorm"]),       # a capitalised first word is not a name
    ("How does LoRA compare with GPT-4 and Qwen2-72B?", ["LoRA", "GPT-4", "Qwen2-72B"]),
    ("Llama 2 是在什么开源许可证下发布的？", ["Llama"]),
    ("what is lora", []),                                  # nothing capitalised, nothing specific
    ("Why do I need Python? Does it help.", ["Python"]),     # "I" is grammar; "Does" opens a sentence
    ("What do the Chinese-LLM notes say about Ring All-Reduce?", ["LLM", "Ring", "All-Reduce"]),  # "Chinese" qualifies
])
def test_question_names(question, names):
    assert question_names(question) == names


def test_specific_terms_are_numbers_and_non_prose_words():
    assert specific_terms("2. GPT-3 has 175B parameters; its F1 is 0.9 (says OpenAI).") == \
        ["175B", "0.9", "GPT-3", "F1", "OpenAI"]
    assert specific_terms("**Model design** matters for Data and Training.") == []


def test_vocabulary_knows_words_plurals_and_glossary_translations():
    v = Vocabulary(["LoRA 冻结主权重。GAN 可以生成人脸。用知识蒸馏压缩模型。"])
    assert v.knows("lora") and v.knows("GANs")
    assert v.knows("knowledge distillation")  # the glossary's 知识蒸馏 occurs
    assert v.unknown(["LoRA", "Azure", "RLHF"]) == ["Azure", "RLHF"]
    assert Vocabulary(['vectors="glove.6B.100d"']).unknown(["GloVe", "glove.6B.100d", "BERT"]) == ["BERT"]


def test_question_names_the_passages_never_mention_are_novel_in_an_answer():
    passages = "向量数据库用于检索。"
    question = "How do I set up Azure AI Search?"
    assert novel_terms("First create an Azure resource.", passages, question) == ["Azure"]
    assert novel_terms("Vector databases store embeddings.", passages, question) == []
    assert novel_terms("它加载 GloVe 6B.100d 词向量。", 'vectors="glove.6B.100d"') == []  # case and dots aside


def test_dimensions_are_two_numbers():
    code = "transforms.Resize((256, 256))\nmodel.generate(z, image_size=256)"
    assert novel_terms("图像被生成在 256x256 的分辨率上。", code) == []
    assert novel_terms("The image is 512 × 512 pixels.", code) == ["512", "512"]


def test_code_spelling_a_thing_otherwise_still_names_it():
    """torch.device("cuda") puts the model on the GPU: "GPU" is not novel against it."""
    from rag.terms import novel_terms

    code = 'device = torch.device("cuda" if torch.cuda.is_available() else "cpu")'
    assert novel_terms("训练和测试批次被放置在 GPU 上。", code) == []
    assert novel_terms("训练和测试批次被放置在 TPU 上。", code) == ["TPU"]


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
