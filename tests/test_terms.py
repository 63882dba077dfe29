"""Names and numbers an answer cannot take from anywhere but its sources (rag.terms)."""

from __future__ import annotations

import pytest

from rag.terms import Vocabulary, novel_terms, question_names, specific_terms


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
    # An abbreviation is a name the glossary translates too (held-out 16's a026 was refused on "RL").
    assert Vocabulary(["大模型与强化学习"]).unknown(["RL", "RLHF"]) == ["RLHF"]


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
