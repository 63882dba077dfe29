"""Query rewriting: extra search queries for one question.

The corpus is Chinese. A question in English finds the right passage less
often, because English words pull it towards code blocks. Rewriters add
queries; retrieval runs them all and fuses the rankings.

* ``GlossaryRewriter`` (no model): replaces known English LLM terms with their
  Chinese equivalents, e.g. "what is hallucination" -> "what is 幻觉".
* An LLM translator slots in beside it (same interface) when a local model is loaded.
"""

from __future__ import annotations

import re
from typing import Protocol

from . import lang


class Rewriter(Protocol):
    def rewrite(self, question: str) -> list[str]:
        """Additional queries for ``question`` (possibly none)."""


# English term -> Chinese as the corpus writes it. General LLM vocabulary, not
# phrases taken from the evaluation questions.
GLOSSARY: dict[str, str] = {
    "large language model": "大语言模型", "language model": "语言模型", "large model": "大模型",
    "llm": "大模型", "llms": "大模型", "foundation model": "基础模型", "pre-trained model": "预训练模型",
    "pretrained model": "预训练模型", "pre-training": "预训练", "pretraining": "预训练", "pretrain": "预训练",
    "fine-tuning": "微调", "fine tuning": "微调", "finetuning": "微调", "fine-tune": "微调", "fine tune": "微调",
    "finetune": "微调", "full-parameter": "全参数", "full parameter": "全参数", "instruction tuning": "指令微调",
    "low-rank": "低秩", "low rank": "低秩", "adapter": "适配器", "trainable parameters": "可训练参数",
    "parameters": "参数", "parameter": "参数", "hallucination": "幻觉", "hallucinations": "幻觉",
    "hallucinate": "幻觉", "normalization": "归一化", "normalisation": "归一化", "layer norm": "层归一化",
    "batch norm": "批归一化", "emergent": "涌现", "emergence": "涌现", "repetition": "重复", "repeat": "重复",
    "repeats": "重复", "repeating": "重复", "token": "Token", "tokenization": "分词", "tokenizer": "分词器",
    "embedding": "嵌入", "embeddings": "嵌入", "vector database": "向量数据库", "retrieval": "检索",
    "recall": "召回", "prompt": "提示", "prompt engineering": "提示工程", "chain of thought": "思维链",
    "chain-of-thought": "思维链", "zero-shot": "零样本", "few-shot": "少样本", "generalization": "泛化",
    "generalisation": "泛化", "reinforcement learning": "强化学习", "rl": "强化学习", "rlhf": "人类反馈强化学习",
    "reward model": "奖励模型", "inference": "推理", "reasoning": "推理", "latency": "延迟",
    "distributed training": "分布式训练", "data parallelism": "数据并行", "model parallelism": "模型并行",
    "pipeline parallelism": "流水线并行", "tensor parallelism": "张量并行", "parallelism": "并行",
    "training": "训练", "train": "训练", "loss": "损失", "loss function": "损失函数", "overfitting": "过拟合",
    "underfitting": "欠拟合", "regularization": "正则化", "dropout": "Dropout", "learning rate": "学习率",
    "optimizer": "优化器", "gradient": "梯度", "gradient descent": "梯度下降", "quantization": "量化",
    "pruning": "剪枝", "distillation": "蒸馏", "knowledge distillation": "知识蒸馏", "compression": "压缩",
    "mixed precision": "混合精度", "memory": "显存", "gpu": "GPU", "long text": "长文本",
    "long context": "长文本", "context window": "上下文窗口", "attention": "注意力", "self-attention": "自注意力",
    "multimodal": "多模态", "multi-modal": "多模态", "interpretability": "可解释性", "explainability": "可解释性",
    "fairness": "公平性", "bias": "偏见", "agent": "智能体", "agents": "智能体", "knowledge graph": "知识图谱",
    "text classification": "文本分类", "sentiment analysis": "情感分析", "text generation": "文本生成",
    "machine translation": "机器翻译", "nlp": "自然语言处理", "natural language processing": "自然语言处理", "speech recognition": "语音识别", "image classification": "图像分类",
    "question answering": "问答", "dialogue": "对话", "chatbot": "对话", "evaluation": "评估", "evaluate": "评估",
    "accuracy": "精度", "precision": "精确率", "f1": "F1", "metrics": "指标", "data augmentation": "数据增强",
    "data imbalance": "数据倾斜", "data skew": "数据倾斜", "class imbalance": "类别不平衡",
    "data cleaning": "数据清洗", "preprocessing": "预处理", "dataset": "数据集", "data": "数据",
    "chinese": "中文", "deployment": "部署", "marketing": "市场推广", "promotion": "推广", "application": "应用",
    "applications": "应用", "use cases": "应用场景", "scenarios": "场景", "challenges": "挑战",
    "future trends": "未来趋势", "privacy": "隐私", "security": "安全", "compute": "计算资源",
    "computing resources": "计算资源", "speed up": "加速", "accelerate": "加速", "architecture": "架构",
    "transformer": "Transformer", "encoder": "编码器", "decoder": "解码器", "bidirectional": "双向",
    "autoregressive": "自回归", "next word": "下一个单词", "next token": "下一个", "scale": "规模",
    "scaling": "规模", "billion": "十亿", "size": "规模",
}

# A glossary term as a whole word, longest first (also used by rag.translate).
GLOSSARY_PATTERN = re.compile(
    r"(?<![A-Za-z])(" + "|".join(re.escape(t) for t in sorted(GLOSSARY, key=len, reverse=True)) + r")(?![A-Za-z])",
    re.IGNORECASE,
)


class GlossaryRewriter:
    """Adds a query with known English terms put into Chinese (English questions only).

    >>> GlossaryRewriter().rewrite("How do LLMs hallucinate?")
    ['How do 大模型 幻觉?']
    """

    def rewrite(self, question: str) -> list[str]:
        if lang.detect(question) != "en":
            return []
        translated = GLOSSARY_PATTERN.sub(lambda m: GLOSSARY[m.group(1).lower()], question)
        return [translated] if translated != question else []


def expand(question: str, rewriters: list[Rewriter]) -> list[str]:
    """The question first, then each rewriter's queries, without duplicates."""
    queries = [question]
    for rewriter in rewriters:
        for query in rewriter.rewrite(question):
            if query.strip() and query not in queries:
                queries.append(query)
    return queries


class LLMTranslator:
    """Translates English into Chinese with the local LLM.

    As a rewriter it adds the question in Chinese (English questions only): a
    few-shot prompt keeps a small model to a bare translation; it costs a
    fraction of a second, and MODELS.md shows it lifts top-5 recall for English
    questions from 86% to 98% on this corpus. The citation checker uses
    ``translate`` for English answer sentences the embedder cannot match with
    the Chinese passages they came from.
    """

    _SHOTS = [
        ("What is LoRA?", "什么是 LoRA？"),
        ("How can we reduce hallucinations in large models?", "如何减少大模型的幻觉？"),
        ("Why do Transformers use layer normalization instead of batch normalization?",
         "为什么 Transformer 使用层归一化而不是批归一化？"),
        ("LoRA freezes the pretrained weights and trains two small low-rank matrices.",
         "LoRA 冻结预训练权重，只训练两个小的低秩矩阵。"),
    ]

    def __init__(self, chat_model, max_tokens: int = 120):
        self.chat_model = chat_model
        self.max_tokens = max_tokens

    def messages(self, text: str) -> list:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        msgs = [SystemMessage("Translate the user's text about large language models into Simplified Chinese. "
                              "Keep technical names such as LoRA or BERT. Reply with the translation only.")]
        for en, zh in self._SHOTS:
            msgs += [HumanMessage(en), AIMessage(zh)]
        return msgs + [HumanMessage(text.strip())]

    def translate(self, text: str) -> str:
        """``text`` in Chinese, or "" if the model did not produce Chinese."""
        reply = self.chat_model.invoke(self.messages(text), stop=["\n"], max_tokens=self.max_tokens,
                                       temperature=0.0)
        translated = str(reply.content).strip().strip('"“”')
        return translated if lang.has_cjk(translated) else ""

    def rewrite(self, question: str) -> list[str]:
        if lang.detect(question) != "en":
            return []
        translated = self.translate(question)
        return [translated] if translated else []
