"""Fifteenth-round trial, not part of the product (docs/EVAL.md, "Fifteenth round").

A look at the next five passages (ranks 6-10), focused, graded against the
second look's bar and checked, for the given dump rows (the queries their
first-look dumps recorded); one JSON line per row to OUT.

    PYTHONPATH=. .venv/bin/python docs/trials/next_passages.py ID,ID,... OUT.jsonl
"""
import json, glob, sys
sys.path.insert(0, '.')
from dataclasses import replace
from rag.config import Settings
from rag.calibrate import _chain
from rag.chain import State
from rag.evaluation import gold_position
from rag.ask import answer_json
ids = sys.argv[1].split(',')
out = sys.argv[2]
qs = {}
for f in glob.glob('eval/*.jsonl'):
    for l in open(f):
        if l.strip():
            r = json.loads(l); qs[r['id']] = r
rows = {}
for f in sorted(glob.glob('docs/answers-*-1.5b.jsonl')):
    if 'focus' in f: continue
    for l in open(f):
        r = json.loads(l)
        if r['id'] in ids and r['id'] not in rows: rows[r['id']] = r
settings = Settings.from_env()
chain = _chain(settings)
with open(out, 'w') as fo:
    for i in ids:
        q, row = qs[i], rows[i]
        state = State(question=q['question'], language=row['lang'])
        state.queries = row['queries']
        state = chain.retrieve(state, k=2 * settings.top_k)
        state.retrieval = replace(state.retrieval, hits=state.retrieval.hits[settings.top_k:])
        state = chain.prompt(state, focus=True)
        gen = chain._answer(state, settings.second_look_in_force)
        try:
            while True: next(gen)
        except StopIteration as e:
            a = e.value
        gold = gold_position([p.text for p in state.passages], tuple(q['gold'])) if q['answerable'] else None
        fo.write(json.dumps({'id': i, 'lang': q['lang'], 'answerable': q['answerable'], 'gold_shown': gold,
                             **answer_json(a)}, ensure_ascii=False) + '\n')
        fo.flush()
        print(i, q['answerable'], a.refused, a.refusal_reason, a.grade, gold, flush=True)
