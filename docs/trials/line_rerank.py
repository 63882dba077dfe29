"""Fifteenth-round trial, not part of the product (docs/EVAL.md, "Fifteenth round").

Would ranking passages by their best line, as the focus scores lines, put the
gold passage higher? For every answerable question of dev and held-out 1-16 it
retrieves the top N (default 10) with the queries its first-look dump recorded
and writes, per question, the fused order, each passage's best-line score and
where the gold is, to /tmp/rerank<N>.json; the EVAL section reads it.

    PYTHONPATH=. .venv/bin/python docs/trials/line_rerank.py 10
"""
import json, glob, sys
sys.path.insert(0, '.')
from rag.config import Settings
from rag.calibrate import _chain
from rag.evaluation import gold_position
from rag.excerpt import _units
qs = {}
files = ['eval/qa.jsonl'] + [f'eval/heldout{n}.jsonl' for n in ['', *range(2, 17)]]
for f in files:
    for l in open(f):
        if l.strip():
            r = json.loads(l); qs[r['id']] = (f, r)
rows = {}
for f in sorted(glob.glob('docs/answers-*-1.5b.jsonl')):
    if 'focus' in f: continue
    for l in open(f):
        r = json.loads(l)
        if r['id'] in qs and r['id'] not in rows: rows[r['id']] = r
chain = _chain(Settings.from_env())
chunks = chain.retriever.index.chunks
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10
out = []
for i, (f, q) in qs.items():
    if not q['answerable'] or i not in rows: continue
    queries = rows[i]['queries']
    ret = chain.retriever(q['question'], k=N, queries=queries)
    rel = chain.focus.relevance(queries)
    best = []
    for h in ret.hits:
        us = [u.text for u in _units(h.chunk.text)] or [h.chunk.text]
        best.append(max(rel(us)))
    gold = tuple(q['gold'])
    base = gold_position([h.chunk.text for h in ret.hits], gold)
    out.append({'id': i, 'set': f, 'base': base, 'fused': [h.score for h in ret.hits], 'best': best,
                'gold_at': [bool(gold_position([h.chunk.text], gold)) for h in ret.hits]})
json.dump(out, open(f'/tmp/rerank{N}.json', 'w'))
print(len(out))


def hits_at(order, k):
    return sum(any(r['gold_at'][i] for i in order(r)[:k]) for r in out)


fused = lambda r: list(range(len(r['fused'])))
by_line = lambda r: sorted(range(len(r['best'])), key=lambda i: -r['best'][i])


def mixed(weight):
    """RRF of the fused order and the best-line order, the latter weighted."""
    def order(r):
        a, b = fused(r), by_line(r)
        score = {i: 1 / (61 + a.index(i)) + weight / (61 + b.index(i)) for i in a}
        return sorted(a, key=lambda i: -score[i])
    return order


for k in (1, 3, 5, 10):
    print(f"hit@{k}: fused {hits_at(fused, k)}, best line {hits_at(by_line, k)}, "
          f"RRF 1:1 {hits_at(mixed(1), k)}, RRF 1:0.5 {hits_at(mixed(.5), k)} (of {len(out)})")
