"""Fifteenth-round trial, not part of the product (docs/EVAL.md, "Fifteenth round").

Every supported, cited claim of the dumps in docs/ that opens with yes or no: how
much of it is the question's words, and which of those its passage does not hold.

    PYTHONPATH=. .venv/bin/python docs/trials/yes_no_words.py | sort -u
"""
import json, glob, re, sys
sys.path.insert(0, '.')
from rag.lexical import tokenize
from rag import lang
qs = {}
for f in glob.glob('eval/*.jsonl'):
    for l in open(f):
        if l.strip():
            r = json.loads(l); qs[r['id']] = r
YN = re.compile(r'^\s*(?:\d+\.\s*)?(是的|是，|不是|不，|否，|对，|没错|不对|不能|可以，|不可以|yes\b|no\b)', re.I)
n = 0
for f in sorted(glob.glob('docs/answers-*-1.5b.jsonl')):
    for l in open(f):
        r = json.loads(l)
        if r['refused'] and not r.get('draft'): continue
        q = r['question']; qw = set(tokenize(q)) | set(tokenize(' '.join(r.get('queries') or [])))
        for s in (r.get('sentences') or []) + (r.get('draft') or []):
            src = s.get('source') or s['text']
            if not s.get('supported') or not s.get('claim', True) or not YN.match(src): continue
            if not s['citations']: continue
            passage = r['sources'][s['citations'][0]-1]
            ptext = passage.get('shown') or passage['text']
            words = set(tokenize(YN.sub('', src)))
            held = set(tokenize(ptext + ' ' + ' '.join(passage.get('section') or [])))
            fromq = words & qw
            missing = sorted(fromq - held)
            n += 1
            print(f"{r['id']} {'A' if r['answerable'] else 'U'} qshare={len(fromq)/max(1,len(words)):.2f} missing={missing} | {src.strip()[:120]!r}")
print(n)
