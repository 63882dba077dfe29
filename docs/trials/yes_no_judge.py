"""Fifteenth-round trial, not part of the product (docs/EVAL.md, "Fifteenth round").

The same claims as yes_no_words.py, each put to the answer model as a sentence
judge (rag.grade.SentenceJudge) against the passage it cites: does its "yes"
separate the claims a reader finds wrong?

    PYTHONPATH=. .venv/bin/python docs/trials/yes_no_judge.py
"""
import json, glob, re, sys
sys.path.insert(0, '.')
from rag.config import Settings
from rag.calibrate import _chain, model_passages, rows_by_text
from rag.grade import SentenceJudge
YN = re.compile(r'^\s*(?:\d+\.\s*)?(是的|是，|不是|不，|否，|对，|没错|不对|不能|可以，|不可以|yes\b|no\b)', re.I)
chain = _chain(Settings.from_env())
row_of = rows_by_text(chain.retriever.index)
judge = SentenceJudge(chain.chat_model, 0.5)  # off by default for the bundled models
seen = set()
for f in sorted(glob.glob('docs/answers-*-1.5b.jsonl')):
    for l in open(f):
        r = json.loads(l)
        if r['refused'] and not r.get('draft'): continue
        for s in (r.get('sentences') or []) + (r.get('draft') or []):
            src = (s.get('source') or s['text']).strip()
            if not s.get('supported') or not s.get('claim', True) or not YN.match(src) or not s['citations'] or src in seen: continue
            seen.add(src)
            passages, _ = model_passages(chain, r, row_of)
            n = s['citations'][0]
            if n not in [p.n for p in passages]: continue
            p = judge(src, n, passages)
            print(f"{r['id']} {p:.3f} {src[:100]!r}", flush=True)
