"""Streamlit app: a cited chat over the interview documents, and a page to manage them.

Run with ``make app`` (listens on 127.0.0.1:8501). Widgets and rendering only:
answers come from ``rag.service`` / ``rag.chain``, knowledge-base work from
``rag.kb``. Labels follow the language of the user's latest question.
"""

from __future__ import annotations

import html
import re
import time
from datetime import datetime

import pandas as pd
import streamlit as st

from rag import lang
from rag.chain import AnswerChain, Delta, Retry
from rag.citations import render, support_span
from rag.config import LLM_BACKENDS, Settings
from rag.corpus import SUFFIXES
from rag.errors import IndexBusy, RagError
from rag.index import is_stale
from rag.kb import MAX_UPLOAD_BYTES, Indexer, delete_document, list_documents, save_upload
from rag.messages import UI, t, ui
from rag.models import DEFAULT_MODEL, PRESETS
from rag.service import refresh
from rag.types import Answer

st.set_page_config(page_title="LLM interview assistant · 大模型面试助手", page_icon="📚", layout="wide")



# --- resources shared by every session of this process ------------------------------

@st.cache_resource(show_spinner="Loading the local model and the index… / 正在加载本地模型和索引…")
def load_chain(settings: Settings) -> AnswerChain:
    from rag.service import build_chain

    chain = build_chain(settings)
    chain.count_tokens("warm-up")  # llama.cpp reads its weights on first use: pay that here, not in the first answer
    if chain.translator is not None:
        chain.translator.warm_up()
    loaded_chains().add(settings)
    return chain


@st.cache_resource
def loaded_chains() -> set:
    """Settings whose chain is loaded: such a chain can keep answering while the index is rebuilt."""
    return set()


@st.cache_resource
def indexer_for(index_dir: str) -> Indexer:
    return Indexer()


# Options that change per question without reloading anything (see AnswerChain.with_settings).
_PER_QUESTION = {"top_k": Settings().top_k, "retrieval": "hybrid", "strict": False}


def model_settings(settings: Settings) -> Settings:
    """The settings that decide what is loaded (models, index), with per-question options at their defaults."""
    return settings.with_(**_PER_QUESTION)


# --- sidebar ------------------------------------------------------------------------------

def ui_language() -> str:
    """The language of the latest question, including one submitted in this very run."""
    pending = st.session_state.get("question")
    if pending:
        st.session_state["ui_language"] = lang.detect(pending)
    return st.session_state.get("ui_language", "en")


# Streamlit stores a radio's or selectbox's choice as its displayed text, so these
# labels must not change with the language: they are the same in both.
PAGES = {"chat": ":material/forum: Chat · 对话", "kb": ":material/library_books: Knowledge base · 知识库"}


def sidebar(env: Settings, language: str) -> tuple[str, Settings, bool]:
    """The page, the settings the sidebar picks and whether to compare with the bare model."""
    bar = st.sidebar
    page = bar.radio("page", list(PAGES), key="page", label_visibility="collapsed", format_func=PAGES.get)
    bar.subheader(ui(language, "settings"))
    backend = bar.selectbox(ui(language, "backend"), LLM_BACKENDS, index=LLM_BACKENDS.index(env.llm_backend),
                            key="backend")
    model, base_url = model_inputs(env, backend, language)
    top_k = bar.slider(ui(language, "top_k"), 1, 10, value=min(env.top_k, 10), key="top_k")
    hybrid = bar.checkbox(ui(language, "hybrid"), value=env.retrieval == "hybrid", help=ui(language, "hybrid_help"),
                        key="hybrid")
    strict = bar.checkbox(ui(language, "strict"), value=env.strict, help=ui(language, "strict_help"), key="strict")
    compare = bar.checkbox(ui(language, "compare"), value=False, help=ui(language, "compare_help"), key="compare")
    bar.checkbox(ui(language, "agent"), value=False, disabled=True, help=ui(language, "agent_help"), key="agent")
    bar.button(ui(language, "clear"), on_click=lambda: st.session_state.pop("history", None))
    settings = env.with_(llm_backend=backend, llm_model=model, llm_base_url=base_url, top_k=top_k,
                         retrieval="hybrid" if hybrid else "dense", strict=strict)
    return page, settings, compare


def model_inputs(env: Settings, backend: str, language: str) -> tuple[str, str]:
    """The model (and server) fields for the chosen backend; the environment's values preset them."""
    bar = st.sidebar
    same = env.llm_backend == backend
    if backend == "llama-cpp":
        options = list(PRESETS) + ([env.llm_model] if same and env.llm_model not in PRESETS else [])
        model = bar.selectbox(ui(language, "model"), options, key="model_preset", help=ui(language, "model_help"),
                              index=options.index(env.llm_model) if same else options.index(DEFAULT_MODEL))
        return model, env.llm_base_url
    if backend == "transformers":
        return bar.text_input(ui(language, "model_path"), value=env.llm_model if same else "", key="model_hf"), ""
    base_url = bar.text_input(ui(language, "base_url"), value=env.llm_base_url or "http://127.0.0.1:8000/v1",
                              key="base_url")
    model = bar.text_input(ui(language, "served_model"), value=env.llm_model if same else "", key="model_served")
    return model, base_url


# --- index builds ---------------------------------------------------------------------------

def build_text(job, language: str) -> str:
    text = ui(language, f"stage_{job.stage}") if f"stage_{job.stage}" in UI["en"] else job.stage
    return f"{text} {job.done}/{job.total}" if job.total else text


def wait_for_build(indexer: Indexer, language: str) -> None:
    """Show the build's progress until it ends, then start the page again (the first run needs the index)."""
    job = indexer.job
    bar = st.progress(0.0, text=ui(language, "first_build"))
    while job.running:
        bar.progress(job.fraction, text=f"{ui(language, 'first_build')} {build_text(job, language)}")
        time.sleep(0.25)
    if job.state == "failed":
        st.error(ui(language, "build_failed").format(error=job.error))
        st.stop()
    st.rerun()


def ready_chain(settings: Settings, language: str) -> AnswerChain:
    """The loaded chain for these settings, the index built or updated first where needed.

    A chain already loaded keeps answering while its index is updated in the
    background; one not loaded yet waits for the build, showing its progress.
    """
    base = model_settings(settings)
    indexer = indexer_for(str(settings.index_dir))
    loaded = base in loaded_chains()
    if not indexer.running and not indexer.failed and is_stale(base):
        indexer.start(base)  # a missing index, or documents changed outside the app
    if indexer.running:
        if not loaded:
            wait_for_build(indexer, language)
        st.caption(":material/hourglass_top: " + ui(language, "updating"))
    try:
        return load_chain(base)
    except IndexBusy:  # a build started by another session or process between the check and the load
        if indexer.running:
            wait_for_build(indexer, language)
        raise


# --- rendering answers ---------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~$])")
_LINE = re.compile(r"^(\s*(?:[-*+]\s+|\d+[.)]\s+|#{1,6}\s+)?)(.*?)(\s*)$")
_UNSUPPORTED_STYLE = "background-color: rgba(255, 75, 75, 0.13); border-bottom: 2px dotted #e03131;"


def md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def sentence_html(text: str, supported: bool, language: str) -> str:
    """One answer sentence as markdown. The model's text is HTML-escaped (the page allows
    HTML for highlighting); a sentence no passage supports is shaded line by line, so the
    tags never straddle a markdown block such as a list item. A code block is left as it is:
    markdown shows its content literally, and its [?] stands after the fence."""
    if text.lstrip().startswith("```"):
        return text
    text = html.escape(text, quote=False)
    if supported:
        return text
    title = html.escape(ui(language, "unsupported_legend"))

    def shade(match: re.Match) -> str:
        lead, body, tail = match.groups()
        return f'{lead}<span style="{_UNSUPPORTED_STYLE}" title="{title}">{body}</span>{tail}' if body else match[0]

    return "\n".join(_LINE.sub(shade, line) for line in text.split("\n"))


def answer_markdown(sentences: list[tuple[str, bool]], language: str) -> str:
    return "".join(sentence_html(text, supported, language) for text, supported in sentences)


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def passage_html(text: str, spans: list[tuple[int, int]]) -> str:
    """The passage, HTML-escaped, with the supporting spans in <mark>. One line of HTML
    (newlines as <br>) so markdown leaves it alone; "$" escaped so it is not read as maths."""
    parts, pos = [], 0

    def esc(s: str) -> str:
        return html.escape(s, quote=False).replace("$", "&#36;")

    for start, end in merge_spans(spans):
        parts += [esc(text[pos:start]), "<mark>", esc(text[start:end]), "</mark>"]
        pos = end
    parts.append(esc(text[pos:]))
    body = "".join(parts).replace("\n", "<br>")
    return f'<div style="line-height: 1.7; font-size: 0.95rem;">{body}</div>'


def supporting_spans(chain: AnswerChain, answer: Answer) -> dict[int, list[tuple[int, int]]]:
    """For each cited source, the passage sentences closest to the answer sentences citing it.
    Computed once when the answer is complete and kept with it: reruns only redraw."""
    spans: dict[int, list[tuple[int, int]]] = {}
    for sentence in answer.sentences:
        for n in sentence.citations:
            passage = answer.sources[n - 1].chunk.text
            # the drafted sentence, in the passage's language, where the answer shows a translation
            spans.setdefault(n, []).append(support_span(chain.retriever.embedder, sentence.source or sentence.text,
                                                        passage))
    return spans


def show_text(answer: Answer) -> None:
    if answer.refused:
        st.warning(answer.text, icon=":material/block:")
        if answer.withdrawn:
            st.caption(t(answer.language, "withdrawn"))
        if answer.unknown_terms:
            st.caption(f"{t(answer.language, 'unknown_terms')}: " + ", ".join(md_escape(x) for x in answer.unknown_terms))
        if answer.topics:
            st.caption(f"{ui(answer.language, 'topics')}: " + " · ".join(md_escape(x) for x in answer.topics))
        return
    pairs = [(render([s], answer.language), s.supported) for s in answer.sentences]
    st.markdown(answer_markdown(pairs, answer.language), unsafe_allow_html=True)
    if any(not s.supported for s in answer.sentences):
        st.caption(f"[?] = {ui(answer.language, 'unsupported_legend')}")


def show_sources(answer: Answer, spans: dict[int, list[tuple[int, int]]]) -> None:
    language = answer.language
    st.markdown(f"**{t(language, 'sources')}**")
    for n, hit in enumerate(answer.sources, start=1):
        c = hit.chunk
        where = md_escape(f"{c.title} › {c.section_label}" if c.section_label else c.title)
        cited = f" · ✓ {ui(language, 'cited')}" if n in answer.citations else ""
        with st.expander(f"\\[{n}\\] {where} · {ui(language, 'score')} {hit.score:.4f}{cited}"):
            st.markdown(passage_html(c.text, spans.get(n, [])), unsafe_allow_html=True)
            st.caption(f"{ui(language, 'file')}: {md_escape(c.doc)}")


# Stages in the order they run (answer.timings merges retrieval's and the chain's dicts).
_STAGE_ORDER = {k: i for i, k in enumerate(("load", "rewrite", "dense", "lexical", "retrieve", "prompt", "grade",
                                             "first_attempt", "ttft", "generate"))}


def score(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def show_trace(answer: Answer, threshold: float, grade_threshold: float = 0.0, judge_threshold: float = 0.0) -> None:
    """How the answer came about: queries, every candidate's scores, the gate, tokens, timings."""
    L = answer.language
    with st.expander(ui(L, "trace"), icon=":material/manage_search:"):
        st.markdown(f"**{ui(L, 'queries')}**")
        st.markdown("\n".join(f"{i}. {md_escape(q)}" for i, q in enumerate(answer.queries, start=1)))
        st.markdown(f"**{ui(L, 'candidates')}**")
        rows = [{"#": n, ui(L, "col_passage"): f"{h.chunk.title} › {h.chunk.section_label}".strip(" ›"),
                 ui(L, "col_dense"): score(h.dense_score, 3), ui(L, "col_bm25"): score(h.lexical_score, 2),
                 ui(L, "col_fused"): score(h.score, 4), ui(L, "col_cited"): "✓" if n in answer.citations else ""}
                for n, h in enumerate(answer.sources, start=1)]
        if rows:
            st.table(pd.DataFrame(rows).set_index("#"))
        relevance = score(answer.relevance, 3)
        passed = not (answer.refused and answer.refusal_reason in ("gate", "unknown"))
        verdict = ui(L, "passed") if passed else ui(L, "refused")
        above = answer.relevance is None or answer.relevance >= threshold
        gate = (f"**{ui(L, 'gate')}:** {ui(L, 'relevance')} {relevance} {'≥' if above else '<'} "
                f"{ui(L, 'threshold')} {threshold:.3f} → {verdict}")
        if answer.grade is not None:  # the model read the passages: do they state the answer?
            above = answer.grade >= grade_threshold
            gate += (f"  \n**{ui(L, 'grade')}:** {answer.grade:.2f} {'≥' if above else '<'} "
                     f"{ui(L, 'threshold')} {grade_threshold:.2f} → {ui(L, 'passed' if above else 'refused')}")
        if answer.second_look:  # refused at first, read again over focused passages
            looked = ui(L, "passed" if answer.second_look == "answered" else "refused")
            graded = f"{ui(L, 'grade')} {answer.focus_grade:.2f} → " if answer.focus_grade is not None else ""
            gate += f"  \n**{ui(L, 'second_look')}:** {graded}{looked}"
        judged = [s.judged for s in answer.sentences or answer.draft if s.judged is not None]
        if judged:  # sentences the embedding check missed, read by the model
            confirmed = sum(p >= judge_threshold for p in judged)
            gate += (f"  \n**{ui(L, 'judge')}:** {confirmed}/{len(judged)} {ui(L, 'confirmed')} "
                     f"({ui(L, 'threshold')} {judge_threshold:.2f})")
        if answer.retried:
            gate += f"  \n**{ui(L, 'retried')}**"
        if answer.refused:
            reason = answer.refusal_reason or ""
            gate += f"  \n**{ui(L, 'reason')}:** `{reason}` — {ui(L, 'reason_' + reason) if reason else ''}"
        st.markdown(gate)
        st.markdown(f"**{ui(L, 'tokens')}:** {ui(L, 'prompt_tokens')} {answer.prompt_tokens} · "
                    f"{ui(L, 'completion_tokens')} {answer.completion_tokens}")
        st.markdown(f"**{ui(L, 'timings')}**")
        stages = sorted((k for k in answer.timings if k != "tokens_per_s"), key=lambda k: _STAGE_ORDER.get(k, 99))
        timings = [{ui(L, "stage"): k, ui(L, "ms"): f"{answer.timings[k] * 1000:.0f}"} for k in stages]
        st.table(pd.DataFrame(timings).set_index(ui(L, "stage")))
        if "tokens_per_s" in answer.timings:
            st.caption(f"{ui(L, 'tokens_per_s')}: {answer.timings['tokens_per_s']:.1f}")


def show_turn(turn: dict) -> None:
    """An answer from the history: text (beside the bare model's, when compared), sources, trace."""
    answer = turn["answer"]
    if turn.get("bare") is not None:
        grounded, bare = st.columns(2)
        with grounded:
            st.markdown(f"**{t(answer.language, 'grounded')}**")
            show_text(answer)
        with bare:
            st.markdown(f"**{t(answer.language, 'bare')}**")
            st.markdown(html.escape(turn["bare"], quote=False))
    else:
        show_text(answer)
    show_details(turn)


def show_details(turn: dict) -> None:
    answer = turn["answer"]
    if not answer.refused:
        show_sources(answer, turn["spans"])
    show_trace(answer, turn["threshold"], turn.get("grade_threshold", 0.0), turn.get("judge_threshold", 0.0))


# --- the chat page -------------------------------------------------------------------------

def stream_answer(chain: AnswerChain, question: str, language: str) -> Answer:
    """Draw each checked sentence as it arrives; return the final Answer."""
    placeholder = st.empty()
    placeholder.markdown(f"_{ui(language, 'thinking')}_")
    sentences: list[tuple[str, bool]] = []
    answer = None
    for event in chain.stream(question):
        if isinstance(event, Delta):
            sentences.append((event.text, event.sentence.supported))
            placeholder.markdown(answer_markdown(sentences, language) + " ▌", unsafe_allow_html=True)
        elif isinstance(event, Retry):  # what was shown does not stand; the second reply replaces it
            sentences.clear()
            placeholder.markdown(f"_{t(language, 'retrying') if event.withdrawn else ui(language, 'thinking')}_")
        else:
            answer = event
    placeholder.empty()
    show_text(answer)
    return answer


def stream_bare(chain: AnswerChain, question: str) -> str:
    placeholder, text = st.empty(), ""
    for piece in chain.stream_bare(question):
        text += piece
        placeholder.markdown(html.escape(text, quote=False) + " ▌")
    placeholder.markdown(html.escape(text, quote=False))
    return text


def answer_question(chain: AnswerChain, question: str, compare: bool) -> dict:
    language = lang.detect(question)
    bare = None
    if compare:
        grounded_col, bare_col = st.columns(2)
        with grounded_col:
            st.markdown(f"**{t(language, 'grounded')}**")
            answer = stream_answer(chain, question, language)
        with bare_col:
            st.markdown(f"**{t(language, 'bare')}**")
            bare = stream_bare(chain, question)
    else:
        answer = stream_answer(chain, question, language)
    turn = {"role": "assistant", "answer": answer, "bare": bare, "threshold": chain.settings.gate_threshold,
            "grade_threshold": chain.settings.grade_in_force, "judge_threshold": chain.settings.judge_in_force,
            "spans": {} if answer.refused else supporting_spans(chain, answer)}
    show_details(turn)
    return turn


def chat_page(settings: Settings, compare: bool, language: str) -> None:
    st.title(ui(language, "title"))
    st.caption(ui(language, "caption"))
    history = st.session_state.setdefault("history", [])
    for i, turn in enumerate(history):
        with st.chat_message(turn["role"]):
            if turn["role"] == "user":
                st.markdown(md_escape(turn["text"]))
            else:
                with st.container(key=f"answer-{i}"):  # a stable handle (CSS class st-key-answer-N) for browser tests
                    show_turn(turn)
    if settings.llm_backend != "llama-cpp" and not settings.llm_model.strip():
        st.info(ui(language, "need_model"))
        return
    base = ready_chain(settings, language)
    question = st.chat_input(ui(language, "ask"), key="question")
    if not question:
        return
    # A build may have replaced the index since the last question (the knowledge-base page,
    # another session, `python -m rag.index`): move the loaded chain to it, a small file read otherwise.
    refresh(base)
    history.append({"role": "user", "text": question})
    with st.chat_message("user"):
        st.markdown(md_escape(question))
    with st.chat_message("assistant"), st.container(key=f"answer-{len(history)}"):
        turn = answer_question(base.with_settings(settings), question, compare)
    history.append(turn)


# --- the knowledge-base page ----------------------------------------------------------------

def notify(kind: str, text: str) -> None:
    """A message that survives the rerun that follows a change."""
    st.session_state.setdefault("kb_notices", []).append((kind, text))


def show_notices() -> None:
    for kind, text in st.session_state.pop("kb_notices", []):
        getattr(st, kind)(text)


def start_build(indexer: Indexer, settings: Settings, full: bool = False) -> None:
    try:
        indexer.start(model_settings(settings), full=full)
    except IndexBusy as exc:
        notify("warning", str(exc))


def build_status(indexer: Indexer, language: str) -> None:
    """The latest build: a progress bar that refreshes itself while it runs, then its outcome."""
    job = indexer.job
    if job is None:
        return
    if job.running:
        st.progress(job.fraction, text=f"{ui(language, 'build_running')}: {build_text(job, language)}")
        st.session_state["kb_watching"] = job.started_at
    elif st.session_state.get("kb_watching") == job.started_at:
        st.session_state["kb_watching"] = None
        st.rerun()  # the whole page: the document list changed
    elif job.state == "failed":
        st.error(ui(language, "build_failed").format(error=job.error))
    elif job.report is not None:
        r = job.report
        if r.up_to_date:
            st.success(ui(language, "build_current"))
        else:
            st.success(ui(language, "build_done").format(seconds=r.seconds, documents=r.documents,
                                                          chunks=r.chunks, embedded=r.embedded))


def documents_table(listing, language: str) -> None:
    rows = [{ui(language, "col_title"): d.title, ui(language, "col_file"): d.path,
             ui(language, "col_size"): f"{d.bytes / 1024:.1f} KB", ui(language, "col_chunks"): d.chunks,
             ui(language, "col_indexed"): local_time(d.indexed_at)} for d in listing.documents]
    if rows:
        st.table(pd.DataFrame(rows))


def local_time(iso: str | None) -> str:
    if not iso:
        return "—"
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def upload_form(settings: Settings, indexer: Indexer, language: str) -> None:
    with st.form("upload", clear_on_submit=True):
        files = st.file_uploader(ui(language, "upload"), type=[s.lstrip(".") for s in SUFFIXES],
                                 accept_multiple_files=True, help=ui(language, "upload_help"),
                                 max_upload_size=MAX_UPLOAD_BYTES // 2**20)
        submitted = st.form_submit_button(ui(language, "add"), disabled=indexer.running, type="primary")
    if not (submitted and files):
        return
    added = 0
    for file in files:
        try:
            saved = save_upload(settings.corpus_dir, file.name, file.getvalue())
        except RagError as exc:
            notify("error", str(exc))
            continue
        if saved.duplicate_of:
            notify("info", ui(language, "duplicate").format(name=saved.name, other=saved.duplicate_of))
        else:
            notify("success", ui(language, "added").format(name=saved.name, title=saved.title))
            added += 1
    if added:
        start_build(indexer, settings)
    st.rerun()


def manage_buttons(settings: Settings, indexer: Indexer, listing, language: str) -> None:
    paths = [d.path for d in listing.documents] + listing.pending
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    with left:
        target = st.selectbox(ui(language, "delete_label"), paths, index=None, key="delete_target")
    with right:
        if st.button(ui(language, "delete"), disabled=indexer.running or target is None, icon=":material/delete:"):
            try:
                delete_document(settings.corpus_dir, target)
                notify("success", ui(language, "deleted").format(name=target))
                start_build(indexer, settings)
            except RagError as exc:
                notify("error", str(exc))
            st.rerun()
    one, two, _ = st.columns([1, 1, 3])
    if one.button(ui(language, "update"), disabled=indexer.running, icon=":material/sync:"):
        start_build(indexer, settings)
        st.rerun()
    if two.button(ui(language, "rebuild"), disabled=indexer.running, help=ui(language, "rebuild_help"),
                  icon=":material/restart_alt:"):
        start_build(indexer, settings, full=True)
        st.rerun()


def kb_page(settings: Settings, language: str) -> None:
    st.title(ui(language, "kb_title"))
    st.caption(ui(language, "kb_caption"))
    indexer = indexer_for(str(settings.index_dir))
    show_notices()
    # Polls once a second while a build runs; nothing polls when idle.
    st.fragment(build_status, run_every=1.0 if indexer.running else None)(indexer, language)
    listing = list_documents(settings)
    docs, chunks, built = st.columns(3)
    docs.metric(ui(language, "documents"), len(listing.documents))
    chunks.metric(ui(language, "passages"), listing.chunks)
    built.metric(ui(language, "built"), local_time(listing.built))
    if listing.built is None:
        st.info(ui(language, "no_index"))
    documents_table(listing, language)
    if listing.pending:
        st.info(f"**{ui(language, 'pending')}:** " + ", ".join(md_escape(p) for p in listing.pending))
    if listing.removed:
        st.info(f"**{ui(language, 'removed')}:** " + ", ".join(md_escape(p) for p in listing.removed))
    if listing.skipped:
        with st.expander(f"{ui(language, 'skipped')} ({len(listing.skipped)})"):
            st.table(pd.DataFrame([{ui(language, "col_file"): p, ui(language, "col_reason"): r}
                                   for p, r in listing.skipped.items()]))
    upload_form(settings, indexer, language)
    manage_buttons(settings, indexer, listing, language)


# --- entry point ----------------------------------------------------------------------------

def main() -> None:
    language = ui_language()
    try:
        env = Settings.from_env()
        page, settings, compare = sidebar(env, language)
        if page == "kb":
            kb_page(settings, language)
        else:
            chat_page(settings, compare, language)
    except RagError as exc:
        st.error(str(exc), icon=":material/error:")


main()
