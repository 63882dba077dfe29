"""``python -m rag.bench [--questions N] [--json] [--skip-cli]``: measure, in one run,

1. the answer chain against raw llama-cpp-python on the same prompt: time to
   first token (TTFT) and generation speed, warm (model loaded, the fixed
   system prompt already in the KV cache, the passages new); the chain's
   TTFT includes the passage grader's pass over the prompt (``rag.grade``);
2. retrieval latency for the no-LLM path;
3. the time from the question to the first sentence shown (checked, and
   for an English question translated from the Chinese draft), by language;
4. the end-to-end CLI (``python -m rag.ask``) in a fresh process, first run
   (cold: models and index read from disk) and second run (warm page cache);
5. the time to a refusal of an out-of-scope question that reaches the
   grader, with the first look only and with the second look over focused
   passages (``Settings.focus`` "refusal"; ``--refusals N``).

Both sides use one model file and the same decoding settings; each measured
call is preceded by a call with a different question so that only the system
prefix is cached, as in real use.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time

from . import lang
from .cli import run, setup_logging
from .config import Settings

QUESTIONS = [
    "What is LoRA?",
    "什么是模型幻觉？",
    "大模型为什么会出现复读机问题？",
    "Why do Transformers use layer normalization rather than batch normalization?",
    "How can a large model process very long documents?",
    "什么是思维链？",
]
PRIMER = "什么是涌现能力？"
# Out of scope, but near enough to the corpus to pass the gate: refused by the grader or the check.
OUT_OF_SCOPE = [
    "What is catastrophic forgetting when fine-tuning, and how can it be mitigated?",
    "RWKV 是怎么把 RNN 式的线性复杂度推理和 Transformer 式的并行训练结合起来的？",
    "How does the ROME model-editing method locate and overwrite a fact stored in the weights?",
    "推理服务里的 chunked prefill（分块预填充）是怎么平衡首 token 延迟和整体吞吐的？",
]


def _raw_stream(llama, messages, settings: Settings) -> dict:
    started, first, last, n = time.perf_counter(), None, None, 0
    for part in llama.create_chat_completion(messages, stream=True, max_tokens=settings.max_tokens,
                                             temperature=settings.temperature, top_p=0.9,
                                             repeat_penalty=settings.repeat_penalty,
                                             stop=["<|im_end|>", "</passages>"]):
        if part["choices"][0]["delta"].get("content"):
            last = time.perf_counter() - started
            if first is None:
                first = last
            n += 1
    total = time.perf_counter() - started
    # The chain's definition too: decode rate between the first and the last token.
    return {"ttft": first or total, "tokens": n, "tokens_per_s": (n - 1) / (last - first) if n > 1 and last > first else 0.0}


def bench_chain_vs_raw(settings: Settings, questions: list[str]) -> dict:
    from llama_cpp import Llama

    from .llm import to_openai_messages
    from .models import resolve_gguf
    from .service import build_chain

    chain = build_chain(settings)
    raw = Llama(model_path=str(resolve_gguf(settings.llm_model, settings.cache_dir)), n_ctx=settings.n_ctx,
                n_threads=settings.threads, n_batch=512, flash_attn=True, verbose=False)
    chain.invoke(PRIMER)  # loads everything once
    rows = []
    primer = to_openai_messages(chain.prompt(chain.retrieve(chain.rewrite(PRIMER))).messages)
    for q in questions:
        # One retrieval for both sides: the chain answers from the very prompt raw is given.
        state = chain.prompt(chain.retrieve(chain.rewrite(q)))
        _raw_stream(raw, primer, settings)
        raw_row = _raw_stream(raw, to_openai_messages(state.messages), settings)
        chain.invoke(PRIMER)
        answer = chain.answer(state)
        rows.append({"question": q, "prompt_tokens": state.prompt_tokens,
                     "raw_ttft": raw_row["ttft"], "raw_tokens_per_s": raw_row["tokens_per_s"],
                     # The passage grader (rag.grade) reads the prompt's passages first and the answer
                     # reuses them from the KV cache: the chain's TTFT is both, against raw's one pass.
                     "chain_ttft": answer.timings.get("grade", 0.0) + answer.timings["ttft"],
                     "chain_grade": answer.timings.get("grade", 0.0),
                     "chain_tokens_per_s": answer.timings.get("tokens_per_s", 0.0),
                     # what a user waits: from the question to the first token, rewriting and retrieval included
                     "chain_ttft_total": sum(answer.timings.get(k, 0.0)
                                             for k in ("rewrite", "retrieve", "prompt", "grade", "ttft")),
                     # and to the first sentence shown: checked, and for an English question translated
                     "chain_first_sentence_total": sum(answer.timings.get(k, 0.0) for k in
                                                       ("rewrite", "retrieve", "prompt", "grade", "first_sentence")),
                     "language": lang.detect(q),
                     "chain_rewrite": answer.timings.get("rewrite", 0.0),
                     "chain_retrieve": answer.timings.get("retrieve", 0.0),
                     "refused": answer.refused})
    summary = {k: statistics.median(r[k] for r in rows)
               for k in ("prompt_tokens", "raw_ttft", "chain_ttft", "chain_grade", "chain_ttft_total", "raw_tokens_per_s",
                         "chain_tokens_per_s", "chain_rewrite", "chain_retrieve")}
    for language in ("en", "zh"):
        shown = [r["chain_first_sentence_total"] for r in rows if r["language"] == language and not r["refused"]]
        if shown:
            summary[f"chain_first_sentence_{language}"] = statistics.median(shown)
    return {"rows": rows, "summary": summary}


def bench_refusals(settings: Settings, questions: list[str]) -> dict:
    """Seconds from the question to the refusal, with the first look only and with the second."""
    from .service import build_chain

    chain = build_chain(settings)
    rows = []
    for q in questions:
        row = {"question": q}
        for focus in ("off", "refusal"):
            chain.invoke(PRIMER)  # so that the question's prompt is not in the KV cache from the run before
            started = time.perf_counter()
            answer = chain.with_settings(settings.with_(focus=focus)).invoke(q)
            row[focus] = {"seconds": time.perf_counter() - started, "refused": answer.refused,
                          "reason": answer.refusal_reason, "second_look": answer.second_look}
        rows.append(row)
    # the questions the grader, the model or the check refused: those the second look reads again
    refused = [r for r in rows if r["off"]["reason"] in ("grade", "model", "unsupported") and r["refusal"]["refused"]]
    summary = {f"{focus}_median": statistics.median(r[focus]["seconds"] for r in refused) if refused else None
               for focus in ("off", "refusal")}
    return {"rows": rows, "summary": summary}


def bench_cli(question: str, settings: Settings) -> dict:
    command = [sys.executable, "-m", "rag.ask", "--index", str(settings.index_dir), "--corpus",
               str(settings.corpus_dir), "--model", settings.llm_model, question]
    out = {}
    for label in ("first", "second"):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        out[label] = time.perf_counter() - started
    command_no_llm = command[:3] + ["--no-llm"] + command[3:]
    started = time.perf_counter()
    subprocess.run(command_no_llm, check=True, capture_output=True)
    out["no_llm"] = time.perf_counter() - started
    return out


def print_chain_vs_raw(chain_vs_raw: dict) -> None:
    s = chain_vs_raw["summary"]
    print(f"  prompt tokens          {s['prompt_tokens']:.0f}")
    print(f"  TTFT raw / chain       {s['raw_ttft']:.2f} s / {s['chain_ttft']:.2f} s, of which the passage grader "
          f"{s['chain_grade']:.2f} s (chain from the question, rewriting and retrieval included: "
          f"{s['chain_ttft_total']:.2f} s)")
    print(f"  tokens/s raw / chain   {s['raw_tokens_per_s']:.1f} / {s['chain_tokens_per_s']:.1f}")
    for language, label in (("en", "English (drafted in Chinese, translated)"), ("zh", "Chinese")):
        if f"chain_first_sentence_{language}" in s:
            print(f"  first sentence shown, {label}: {s[f'chain_first_sentence_{language}']:.2f} s from the question")
    print(f"  chain rewrite, retrieve {s['chain_rewrite']:.2f} s, {s['chain_retrieve']:.3f} s")
    for row in chain_vs_raw["rows"]:
        print(f"    {row['question'][:40]:40} tokens {row['prompt_tokens']:4}  ttft {row['raw_ttft']:.2f}/{row['chain_ttft']:.2f}"
              f" (total {row['chain_ttft_total']:.2f})"
              f"  tok/s {row['raw_tokens_per_s']:.1f}/{row['chain_tokens_per_s']:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=len(QUESTIONS))
    parser.add_argument("--model", help="llama-cpp preset or .gguf path (default qwen2.5-coder-1.5b)")
    parser.add_argument("--index")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--refusals", type=int, default=len(OUT_OF_SCOPE),
                        help="out-of-scope questions timed to their refusal (0: skip)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(False)
    settings = Settings.from_env(llm_model=args.model, index_dir=args.index)
    result = {"machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()},
              "model": settings.llm_model, "threads": settings.threads, "context_tokens": settings.context_tokens}
    if args.questions:
        result["chain_vs_raw"] = bench_chain_vs_raw(settings, QUESTIONS[: args.questions])
    if args.refusals:
        result["refusals"] = bench_refusals(settings, OUT_OF_SCOPE[: args.refusals])
    if not args.skip_cli:
        result["cli_seconds"] = bench_cli("什么是模型幻觉？", settings)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return 0
    print(f"model {settings.llm_model}, {settings.threads} threads, medians over {args.questions} questions")
    if "chain_vs_raw" in result:
        print_chain_vs_raw(result["chain_vs_raw"])
    if "refusals" in result:
        r = result["refusals"]["summary"]
        if r["off_median"] is not None:
            print(f"  out of scope, to the refusal: first look only {r['off_median']:.2f} s, "
                  f"with the second look {r['refusal_median']:.2f} s (median)")
        for row in result["refusals"]["rows"]:
            print(f"    {row['question'][:40]:40} {row['off']['seconds']:.2f} s ({row['off']['reason']}) / "
                  f"{row['refusal']['seconds']:.2f} s ({row['refusal']['reason'] or 'answered'}, "
                  f"second look: {row['refusal']['second_look']})")
    if "cli_seconds" in result:
        c = result["cli_seconds"]
        print(f"  CLI end to end: first {c['first']:.1f} s, second {c['second']:.1f} s, --no-llm {c['no_llm']:.1f} s")
    return 0


if __name__ == "__main__":
    run(main)
