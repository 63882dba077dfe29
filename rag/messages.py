"""User-facing text in the two languages users ask in. The language follows the question."""

from __future__ import annotations

from .kb import MAX_UPLOAD_BYTES
from .models import DEFAULT_MODEL, FAST_MODEL

TEXT = {
    "en": {
        "refusal": "The knowledge base does not cover this.",
        "sources": "Sources",
        "no_passages": "No passages found.",
        "unsupported": "not supported by the cited passage",
        "bare": "Model alone (no retrieval)",
        "grounded": "With retrieval (cited)",
        "covered_topics": "Topics it does cover",
        "unknown_terms": "It never mentions",
        "withdrawn": "(Withdrawn: most of this reply is not supported by the documents.)",
        "retrying": "(Withdrawn: the documents do not support that reply. Answering again from their own words…)",
    },
    "zh": {
        "refusal": "知识库中没有找到相关内容。",
        "sources": "来源",
        "no_passages": "没有找到相关段落。",
        "unsupported": "引用的段落不支持这句话",
        "bare": "仅模型（无检索）",
        "grounded": "检索增强（带引用）",
        "covered_topics": "知识库涵盖的相关主题",
        "unknown_terms": "知识库中从未提到",
        "withdrawn": "（已撤回：这段回答的大部分内容没有文档依据。）",
        "retrying": "（已撤回：这段回答没有文档依据。正在依据文档原文重新回答……）",
    },
}


def t(language: str, key: str) -> str:
    return TEXT.get(language, TEXT["en"])[key]


# Labels of the Streamlit app (app.py). Choice labels that Streamlit stores as
# values must stay the same in both languages.
UI = {
    "en": {
        "title": "LLM interview assistant",
        "caption": "Answers come only from the documents in the knowledge base, with [n] citations. Runs offline.",
                "settings": "Settings", "backend": "Backend", "model": "Model",
        "model_path": "Model (Hugging Face name or local path)", "served_model": "Model name on the server",
        "base_url": "Server base URL (OpenAI-compatible)", "need_model": "Enter a model in the sidebar to start.",
        "model_help": f"{DEFAULT_MODEL}: the default, better answers. {FAST_MODEL}: about three times faster.",
        "top_k": "Passages retrieved (top-k)", "hybrid": "Hybrid retrieval (dense + BM25)",
        "hybrid_help": "Off: dense (embedding) retrieval only.", "strict": "Strict citations",
        "strict_help": "Drop sentences that no cited passage supports (otherwise they are kept and marked [?]).",
        "compare": "Compare with no retrieval",
        "compare_help": "Also show what the model answers without the documents, next to the cited answer.",
        "agent": "Agent mode", "agent_help": "Arrives with the agent feature (multi-step tool use); not available yet.",
        "clear": "Clear conversation", "ask": "Ask about LoRA, hallucination, KV cache… (English or 中文)",
        "thinking": "Searching the documents and writing…",
        "first_build": "Building the index before the first answer…", "updating": "The index is being updated; "
        "answers use the previous index until it finishes.",
        "stage_": "Starting", "stage_read": "Reading documents", "stage_embed": "Embedding passages",
        "stage_lexical": "Building the BM25 index",
        "cited": "cited", "score": "score", "file": "File", "unsupported_legend": "not supported by a cited passage",
        "topics": "Topics the knowledge base does cover",
        "trace": "Trace", "queries": "Queries (the question and its rewrites)", "candidates": "Retrieved passages",
        "col_passage": "passage", "col_dense": "dense (cosine)", "col_bm25": "BM25", "col_fused": "fused (RRF)",
        "col_cited": "cited", "gate": "Relevance gate",
        "grade": "Passage grade (the model: do the passages state the answer?)",
        "relevance": "relevance", "threshold": "threshold",
        "judge": "Sentences the citation check missed, read by the model (does the passage state it?)",
        "confirmed": "confirmed",
        "passed": "passed", "refused": "refused", "reason": "refusal reason",
        "reason_gate": "nothing retrieved stands out from the rest of the corpus; the model was not asked",
        "reason_unknown": "most names in the question appear nowhere in the knowledge base; the model was not asked",
        "reason_grade": "asked whether the passages state the answer, the model said no; it was not asked to answer",
        "reason_model": "the model said the passages do not answer the question",
        "reason_unsupported": "too few sentences of the reply were supported by a passage",
        "retried": "Asked again: the first reply was not supported by the passages",
        "second_look": "Second look, over the passages cut down to the lines nearest the question",
        "tokens": "Tokens", "prompt_tokens": "prompt", "completion_tokens": "completion",
        "timings": "Timings", "stage": "stage", "ms": "ms", "tokens_per_s": "tokens/s",
        # knowledge-base page
        "kb_title": "Knowledge base", "kb_caption": "The documents answers are drawn from. Changes are indexed in "
        "the background; the chat keeps answering meanwhile.",
        "documents": "Documents", "passages": "Passages", "built": "Index built",
        "col_title": "title", "col_file": "file", "col_size": "size", "col_chunks": "passages",
        "col_indexed": "indexed", "col_reason": "reason",
        "no_index": "No index yet: it is built when the chat page opens, or with the button below.",
        "pending": "Not indexed yet", "removed": "Deleted, still in the index until it updates",
        "skipped": "Skipped files", "upload": "Add documents",
        "upload_help": f".txt, .md, .pdf or .docx, up to {MAX_UPLOAD_BYTES // 2**20} MB each",
        "add": "Add to knowledge base", "added": "Added {name} ({title}).",
        "duplicate": "{name} has the same content as {other}, which is already in the knowledge base: not added again.",
        "delete_label": "Document to delete", "delete": "Delete", "deleted": "Deleted {name}.",
        "update": "Update index", "rebuild": "Full rebuild", "rebuild_help": "Re-read and re-split every document "
        "(cached vectors are reused). Needed after changing the embedder.",
        "build_running": "Updating the index", "build_done": "Index updated in {seconds:.0f} s: {documents} documents, "
        "{chunks} passages ({embedded} newly embedded).", "build_current": "The index was already up to date.",
        "build_failed": "The index update failed: {error}",
    },
    "zh": {
        "title": "大模型面试助手",
        "caption": "只根据知识库中的文档回答，并标注 [n] 引用。完全离线运行。",
        "settings": "设置", "backend": "推理后端", "model": "模型",
        "model_path": "模型（Hugging Face 名称或本地路径）", "served_model": "服务端的模型名称",
        "base_url": "服务地址（OpenAI 兼容）", "need_model": "请先在侧边栏填写模型。",
        "model_help": f"{DEFAULT_MODEL}：默认，回答更好。{FAST_MODEL}：快约三倍。",
        "top_k": "检索段落数（top-k）", "hybrid": "混合检索（向量 + BM25）", "hybrid_help": "关闭时只用向量检索。",
        "strict": "严格引用", "strict_help": "删除没有被引用段落支持的句子（否则保留并标记 [?]）。",
        "compare": "与无检索回答对比", "compare_help": "同时显示模型在没有文档时的回答，与带引用的回答并排。",
        "agent": "智能体模式", "agent_help": "将随智能体功能（多步工具调用）推出，目前不可用。",
        "clear": "清空对话", "ask": "可以问 LoRA、模型幻觉、KV cache……（中文或英文）",
        "thinking": "正在检索文档并生成回答……",
        "first_build": "首次回答前正在建立索引……", "updating": "索引正在更新，完成前回答仍使用旧索引。",
        "stage_": "准备中", "stage_read": "读取文档", "stage_embed": "计算段落向量", "stage_lexical": "建立 BM25 索引",
        "cited": "已引用", "score": "得分", "file": "文件", "unsupported_legend": "引用的段落不支持这句话",
        "topics": "知识库涵盖的相关主题",
        "trace": "检索过程", "queries": "查询（原问题及改写）", "candidates": "检索到的段落",
        "col_passage": "段落", "col_dense": "向量（余弦）", "col_bm25": "BM25", "col_fused": "融合（RRF）",
        "col_cited": "已引用", "gate": "相关性门控",
        "grade": "段落评分（模型判断：段落是否给出了答案？）",
        "relevance": "相关性", "threshold": "阈值",
        "judge": "引用核对未能确认、交由模型复核的句子（段落是否陈述了这句话？）",
        "confirmed": "句得到确认",
        "passed": "通过", "refused": "拒答", "reason": "拒答原因",
        "reason_gate": "检索结果与语料整体相比并不突出，未调用模型",
        "reason_unknown": "问题中的大部分名称在知识库中从未出现，未调用模型",
        "reason_grade": "模型判断这些段落没有给出答案，因此没有让它作答",
        "reason_model": "模型认为这些段落无法回答该问题",
        "reason_unsupported": "回答中得到段落支持的句子太少",
        "retried": "重新作答：第一次的回答没有得到段落支持",
        "second_look": "二次检视：段落只保留与问题最相关的句子后再读一遍",
        "tokens": "Token 数", "prompt_tokens": "提示", "completion_tokens": "生成",
        "timings": "各阶段耗时", "stage": "阶段", "ms": "毫秒", "tokens_per_s": "token/秒",
        "kb_title": "知识库", "kb_caption": "回答所依据的文档。改动会在后台建立索引，期间对话照常可用。",
        "documents": "文档", "passages": "段落", "built": "索引建立于",
        "col_title": "标题", "col_file": "文件", "col_size": "大小", "col_chunks": "段落数",
        "col_indexed": "索引时间", "col_reason": "原因",
        "no_index": "还没有索引：打开对话页或点击下方按钮时会建立。",
        "pending": "尚未索引", "removed": "已删除，索引更新前仍在索引中",
        "skipped": "跳过的文件", "upload": "添加文档",
        "upload_help": f"支持 .txt、.md、.pdf、.docx，每个不超过 {MAX_UPLOAD_BYTES // 2**20} MB",
        "add": "添加到知识库", "added": "已添加 {name}（{title}）。",
        "duplicate": "{name} 与知识库中的 {other} 内容相同，不重复添加。",
        "delete_label": "要删除的文档", "delete": "删除", "deleted": "已删除 {name}。",
        "update": "更新索引", "rebuild": "完全重建", "rebuild_help": "重新读取并切分所有文档（复用已缓存的向量）。更换向量模型后需要。",
        "build_running": "正在更新索引", "build_done": "索引已更新，用时 {seconds:.0f} 秒：{documents} 篇文档，"
        "{chunks} 个段落（新计算 {embedded} 个向量）。", "build_current": "索引已是最新。",
        "build_failed": "索引更新失败：{error}",
    },
}


def ui(language: str, key: str) -> str:
    return UI.get(language, UI["en"])[key]
