"""Streamlit chat over the interview documents. Widgets and rendering only:
the work is done by ``rag.service``.

Run with ``make app`` (listens on 127.0.0.1:8501).
"""

from __future__ import annotations

import streamlit as st

from rag import lang
from rag.chain import Delta
from rag.config import Settings
from rag.errors import RagError
from rag.messages import t
from rag.types import Answer

st.set_page_config(page_title="LLM interview assistant", page_icon="📚")


@st.cache_resource(show_spinner="Loading the index and the local model… / 正在加载索引和本地模型…")
def load_chain(settings: Settings):
    from rag.service import build_chain

    return build_chain(settings)


def show_sources(answer: Answer) -> None:
    for n, hit in enumerate(answer.sources, start=1):
        c = hit.chunk
        cited = "★ " if n in answer.citations else ""
        where = f"{c.title} › {c.section_label}" if c.section_label else c.title
        with st.expander(f"{cited}[{n}] {where} · {hit.score:.4f}"):
            st.markdown(c.text)


def main() -> None:
    st.title("LLM interview assistant · 大模型面试助手")
    st.caption("Answers only from the documents in corpus/, with [n] citations. Runs fully offline.")
    try:
        chain = load_chain(Settings.from_env())
    except RagError as exc:
        st.error(str(exc))
        st.stop()

    history = st.session_state.setdefault("history", [])
    for turn in history:
        with st.chat_message(turn["role"]):
            st.markdown(turn["text"])
            if turn.get("answer"):
                show_sources(turn["answer"])

    question = st.chat_input("Ask about LoRA, hallucination, normalisation… / 请输入问题")
    if not question:
        return
    history.append({"role": "user", "text": question})
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        placeholder, text, answer = st.empty(), "", None
        for event in chain.stream(question):
            if isinstance(event, Delta):
                text += event.text
                placeholder.markdown(text + "▌")
            else:
                answer = event
        placeholder.markdown(answer.text if answer.refused else answer.text)
        if answer.refused:
            st.info(t(lang.detect(question), "refusal"))
        show_sources(answer)
    history.append({"role": "assistant", "text": answer.text, "answer": answer})


main()
