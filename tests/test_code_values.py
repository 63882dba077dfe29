"""rag.code_values: a value set in a passage's code, stated in prose."""

from __future__ import annotations

import pytest

from rag.code_values import bindings, states_code_value

CODE = """
train_data, test_data = train_test_split(data, test_size=0.2, random_state=42)
optimizer = optim.Adam(model.parameters(), lr=0.001)
batch_size = 32
vocab = build_vocab(texts, max_size=10000)
output = model.generate(input_ids, max_length=50, num_return_sequences=1, do_sample=True, temperature=0.9)
if context not in self.model:
    return None
for epoch in range(3):
    print(f"Final loss: {loss:.4f}")
for _ in range(100):
    pass
"""


def test_bindings_are_the_numbers_code_sets_with_their_identifiers():
    found = {(b.identifier, b.value) for b in bindings(CODE)}
    assert {("test_size", "0.2"), ("random_state", "42"), ("lr", "0.001"), ("batch_size", "32"),
            ("max_length", "50"), ("temperature", "0.9"), ("epoch", "3"), ("loss", "4"), ("do_sample", "True"),
            ("return", "None")} <= found
    assert not any(value == "100" for _, value in found)  # "for _ in range(100)" names nothing
    assert bindings("LoRA 在特定层中注入低秩矩阵，秩为 8。") == []  # prose sets nothing


@pytest.mark.parametrize("sentence, question", [
    ("生成结果的最大长度设成了50。", "生成结果的最大长度设成了多少？"),
    ("随机种子设的是 42。", "随机种子设的是多少？"),
    ("最终损失值保留四位小数。", "损失值保留几位小数？"),   # a Chinese count, and {loss:.4f}
    ("学习率是 0.001，批大小是 32。", ""),
    ("0.001 的学习率", ""),                                # the name after the number
    ("By default, `max_length` is set to 50.", "What max_length is passed to generate()?"),
    ("The learning rate is 0.001 and the batch size is 32.", ""),
    ("训练了 3 个 epoch。", "训练几个 epoch？"),
    ("do_sample 设为 True。", ""),                                      # a literal
    ("如果这个上下文在训练中从没出现过，会返回 None。", "如果上下文从没出现过，会返回什么？"),
    # the first 1 names nothing; the second, "返回一条候选序列", names num_return_sequences
    ("默认情况下，这个参数是 1，表示只返回一条候选序列。", "每次让模型返回几条候选序列？"),
])
def test_a_value_the_code_sets_stated_in_prose(sentence, question):
    assert states_code_value(sentence, CODE, question)


@pytest.mark.parametrize("sentence, question, why", [
    ("学习率是 42。", "", "42 is the random seed's, not the learning rate's"),
    ("学习率是 32，批大小是 0.001。", "", "the roles swapped"),
    ("损失值保留5位小数。", "", "the code keeps four"),
    ("最大长度设成了50，这样翻译更准确、更流畅，也更节省显存。", "最大长度设成了多少？", "a claim beyond the value"),
    ("批大小是 10000。", "", "10000 is max_size's: 大小 alone does not name an identifier of general words"),
    ("结果是 50。", "", "no identifier named"),
    ("LoRA 冻结原模型的权重。", "", "no value at all"),
    ("生成时 do_sample 设为 False。", "", "the code sets True"),
    ("最大长度是 50，学习率也是 50。", "", "one value named rightly once and wrongly once"),
])
def test_what_the_code_does_not_set_is_not_stated(sentence, question, why):
    assert not states_code_value(sentence, CODE, question), why


def test_nothing_is_stated_by_a_passage_without_code():
    assert not states_code_value("秩设为 8。", "LoRA 的秩一般设为 8，可以按任务调整。")


MODEL = """
class SentimentAnalysisModel(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_dim, output_dim, n_layers, drop_out):
        self.rnn = nn.RNN(embedding_dim, hidden_dim, num_layers=n_layers, dropout=drop_out, batch_first=True)
        self.dropout = nn.Dropout(drop_out)
        self.head = nn.Linear(hidden_dim, output_dim, bias=True)
p = 0.5
"""


def test_a_variable_the_code_passes_on_stated_in_prose():
    """Held-out 13, x050: "丢弃率取自 `drop_out` 参数" states what nn.Dropout is given."""
    found = {(b.identifier, b.value) for b in bindings(MODEL)}
    assert {("num_layers", "n_layers"), ("dropout", "drop_out"), ("self.dropout", "drop_out"),
            ("nn.Dropout", "drop_out")} <= found
    assert ("head", "hidden_dim") not in found  # a call of several arguments: which one is "what it takes"?
    question = "情感分析模型里单独定义的那个 Dropout 层，丢弃率取自哪个构造参数？"
    assert states_code_value("在构造函数中，Dropout 层的丢弃率取自 `drop_out` 参数。", MODEL, question)
    assert states_code_value("RNN 的层数取自 n_layers。", MODEL, "RNN 的层数取自哪个参数？")
    assert not states_code_value("RNN 的层数取自 drop_out。", MODEL, "RNN 的层数取自哪个参数？")  # the wrong role
    assert not states_code_value("丢弃率取自 `hidden_dim` 参数。", MODEL, question)  # passed, but not as that
    # a number is judged by what sets numbers: nn.Dropout(drop_out) does not contradict p = 0.5
    assert states_code_value("p 设为 0.5。", MODEL, "p 是多少？")
