"""End to end: the real app (``streamlit run app.py``) driven in Debian's Chromium through Playwright.

A copy of corpus/ and an empty index folder in tmp: the app builds the index on
its first page load, answers in English and Chinese with citations, refuses an
out-of-scope question, then takes an upload on the knowledge-base page and
answers from it without a restart. Screenshots go to a temporary folder, or to
the folder in RAG_SCREENSHOTS: ``RAG_SCREENSHOTS=docs/screenshots`` refreshes the
README's pictures.

The model is the fast preset (qwen2.5-coder-0.5b): five answers with the
default 1.5B model take several minutes on two cores, over this suite's budget.
Needs /usr/bin/chromium and a CJK font (scripts/system-deps.sh installs both).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import PROJECT_ROOT

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(os.environ.get("RAG_SCREENSHOTS") or Path(tempfile.gettempdir()) / "rag-e2e-screenshots")
KV_DOC = Path(__file__).parent / "e2e_docs" / "kv_cache.md"
ANSWER_TIMEOUT = 300_000  # ms: two cores, possibly shared with other work
START_TIMEOUT = 600       # s: the first page load builds the index and loads the model
FAILURE_SHOT = Path("/tmp") / "rag-e2e-failure.png"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"streamlit did not come up:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory, session_index):
    """The app on a free loopback port over a copy of the corpus and a fresh index folder."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/system-deps.sh")
    root = tmp_path_factory.mktemp("e2e")
    shutil.copytree(PROJECT_ROOT / "corpus", root / "corpus")
    (root / "index").mkdir()
    # Only the vector cache is copied from the session's index (the same corpus, so
    # embedding is skipped); the app still builds the index itself on first load.
    shutil.copy(session_index.index_dir / "embeddings.sqlite", root / "index" / "embeddings.sqlite")
    port = free_port()
    env = {**os.environ, "RAG_CORPUS": str(root / "corpus"), "RAG_INDEX": str(root / "index"),
           "RAG_MODEL": "qwen2.5-coder-0.5b", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           # One llama.cpp thread: with two, a core taken by anything else (the browser drawing the
           # stream, another job) stalls every token at llama.cpp's thread barrier (seen: 50x slower).
           "RAG_THREADS": "1"}
    log = root / "streamlit.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
             "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        yield {"url": url, "corpus": root / "corpus", "index": root / "index", "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server["url"])
        yield page
        browser.close()


# --- driving the page ---------------------------------------------------------------------------

def answer_box(page, index: int):
    return page.locator(f".st-key-answer-{index}")


def ask(page, question: str, index: int) -> tuple[object, bool]:
    """Type a question; wait for the complete answer (its trace expander is drawn last).
    Also reports whether a partial answer (with the streaming cursor) was seen on the way."""
    box = page.get_by_test_id("stChatInputTextArea")
    box.wait_for(timeout=START_TIMEOUT * 1000)
    box.fill(question)
    box.press("Enter")
    answer = answer_box(page, index)
    trace = answer.locator('[data-testid="stExpander"]').filter(has_text=re.compile("Trace|检索过程"))
    deadline, streamed = time.time() + ANSWER_TIMEOUT / 1000, False
    while time.time() < deadline and trace.count() == 0:
        try:
            streamed = streamed or "▌" in answer.inner_text(timeout=1000)
        except Exception:  # the container is not drawn yet
            pass
        time.sleep(0.5)
    if trace.count() != 1:
        page.screenshot(path=str(FAILURE_SHOT), full_page=True)
        raise AssertionError(f"no complete answer to {question!r} after {ANSWER_TIMEOUT / 1000:.0f} s; "
                             f"the page is in {FAILURE_SHOT}; it shows:\n{page.inner_text('body')[-2000:]}")
    return answer, streamed


def open_expander(expander) -> None:
    expander.locator("summary").click()
    expander.locator('[data-testid="stExpanderDetails"]').wait_for(state="visible")


def cited_sources(answer):
    """The source expanders whose title says the answer cites them."""
    cited_title = answer.page.locator("summary").filter(has_text=re.compile(r"✓ (cited|已引用)"))
    return answer.locator('[data-testid="stExpander"]').filter(has=cited_title)


HIDE_CHAT_BOX = '[data-testid="stBottom"] { display: none !important; }'  # it floats over the page's bottom


def shot(page, name: str, *parts, height: int = 1000) -> None:
    """A screenshot of the page, or of the region holding ``parts``, in a viewport ``height`` tall."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": height})
    # Hidden before measuring: hiding it reflows the page.
    style = page.add_style_tag(content=HIDE_CHAT_BOX)
    try:
        page.wait_for_timeout(500)  # the page reflows to the new size
        clip = None
        if parts:
            parts[-1].scroll_into_view_if_needed()
            page.wait_for_timeout(500)  # and scrolls smoothly
            boxes = [p.bounding_box() for p in parts]
            top, bottom = min(b["y"] for b in boxes), max(b["y"] + b["height"] for b in boxes)
            left, right = min(b["x"] for b in boxes), max(b["x"] + b["width"] for b in boxes)
            clip = {"x": left - 12, "y": max(0, top - 12), "width": right - left + 24, "height": bottom - top + 24}
        page.screenshot(path=str(SCREENSHOTS / name), clip=clip)
    finally:
        style.evaluate("node => node.remove()")
        page.set_viewport_size({"width": 1400, "height": 1000})


def chat_turn(page, answer):
    """The question's and the answer's chat bubbles."""
    messages = page.get_by_test_id("stChatMessage")
    return messages.nth(messages.count() - 2), answer


def go_to(page, label: str) -> None:
    page.get_by_test_id("stSidebar").get_by_text(label).click()


# --- the test --------------------------------------------------------------------------------------

def test_chat_and_knowledge_base_in_the_browser(page, server):
    # English, with a citation; the cited source holds the LoRA passage, highlighted.
    answer, streamed_en = ask(page, "what is LoRA", 1)
    text = answer.locator('[data-testid="stMarkdownContainer"]').first.inner_text()
    assert re.search(r"\[\d+\]", text), text
    source = cited_sources(answer).first
    open_expander(source)
    passage = source.locator('[data-testid="stExpanderDetails"]').inner_text()
    assert "LoRA" in passage
    assert source.locator("mark").count() >= 1
    shot(page, "chat-answer-source.png", height=1700)

    trace = answer.locator('[data-testid="stExpander"]').filter(has_text="Trace")
    open_expander(trace)
    details = trace.inner_text()
    for word in ("Queries", "dense (cosine)", "BM25", "fused (RRF)", "Relevance gate", "prompt", "generate"):
        assert word in details, word
    shot(page, "trace.png", trace, height=1400)

    # Chinese: a cited Chinese answer with Chinese labels.
    answer, streamed_zh = ask(page, "什么是模型幻觉？", 3)
    text = answer.locator('[data-testid="stMarkdownContainer"]').first.inner_text()
    assert re.search(r"\[\d+\]", text) and re.search(r"[\u4e00-\u9fff]{5}", text), text
    assert "来源" in answer.inner_text()
    assert cited_sources(answer).count() >= 1
    assert streamed_en or streamed_zh, "no partial answer was ever shown: the answer did not stream"

    # Out of scope: a refusal, not an answer.
    answer, _ = ask(page, "What is the capital of Australia?", 5)
    alert = answer.locator('[data-testid="stAlert"]')
    assert "The knowledge base does not cover this." in alert.first.inner_text()
    assert "It never mentions: Australia" in answer.inner_text()
    assert cited_sources(answer).count() == 0
    shot(page, "refusal.png", *chat_turn(page, answer))

    # Upload a document about KV cache, which the corpus does not cover, and wait for the index.
    go_to(page, "Knowledge base")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(KV_DOC))
    page.get_by_role("button", name="Add to knowledge base").click()
    page.get_by_text("Added kv_cache.md").wait_for(timeout=60_000)
    page.get_by_text("Index updated").wait_for(timeout=ANSWER_TIMEOUT)
    table = page.locator('[data-testid="stTable"]').first
    assert "KV cache：大模型推理加速" in table.inner_text()
    assert (server["corpus"] / "kv_cache.md").read_bytes() == KV_DOC.read_bytes()
    shot(page, "knowledge-base.png", height=1000)

    # Back in the chat, the same server process answers from the new document.
    go_to(page, "Chat")
    answer, _ = ask(page, "什么是 KV cache？", 7)
    text = answer.locator('[data-testid="stMarkdownContainer"]').first.inner_text()
    assert re.search(r"\[\d+\]", text), text
    kv_sources = cited_sources(answer).filter(has_text="KV cache：大模型推理加速")
    assert kv_sources.count() >= 1, answer.inner_text()
    open_expander(kv_sources.first)
    assert "kv_cache.md" in kv_sources.first.inner_text()
    assert page.get_by_test_id("stException").count() == 0
