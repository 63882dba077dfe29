"""Sixteenth-round trial (docs/EVAL.md, "Sixteenth round"): yes/no questions asked to
quote the passage's sentence first, then say yes or no (yes_no_form.patch).

Writes the trial's two inputs to a folder (default /tmp/yes_no): ``questions.jsonl``,
the 51 questions of eval/*.jsonl that ``is_yes_no`` picks, and ``old.jsonl``, their rows
in the committed dumps (dev and held-out 1-16, a later dump's row replacing an earlier
one's, as the pooled replay reads them). Run it with the patch applied; then:

    git apply docs/trials/yes_no_form.patch
    PYTHONPATH=. .venv/bin/python docs/trials/yes_no_form.py
    RAG_GATE=0 RAG_GRADE=1e-9 RAG_RETRY=1e-9 .venv/bin/python -m rag.eval --qa /tmp/yes_no/questions.jsonl \\
        --json --dump docs/trials/answers-yes-no-form-1.5b.jsonl
    git apply -R docs/trials/yes_no_form.patch
    for d in /tmp/yes_no/old.jsonl docs/trials/answers-yes-no-form-1.5b.jsonl; do
        .venv/bin/python -m rag.calibrate --replay $d --recheck --questions /tmp/yes_no/questions.jsonl --json
    done
"""
import glob
import json
import os
import sys

from rag.prompts import is_yes_no

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/yes_no"
os.makedirs(out, exist_ok=True)
questions = [json.loads(line) for path in sorted(glob.glob("eval/*.jsonl")) for line in open(path, encoding="utf-8")]
picked = [q for q in questions if is_yes_no(q["question"])]
dumps = ["docs/answers-dev-1.5b.jsonl"]
for n in ["", *range(2, 17)]:
    dumps += [p for p in (f"docs/answers-heldout{n}-1.5b.jsonl", f"docs/answers-heldout{n}-retry-1.5b.jsonl",
                          f"docs/answers-heldout{n}-rerun-1.5b.jsonl") if os.path.exists(p)]
ids = {q["id"] for q in picked}
old = {}
for path in dumps:
    for line in open(path, encoding="utf-8"):
        row = json.loads(line)
        if row["id"] in ids:
            old[row["id"]] = row
for name, rows in (("questions.jsonl", picked), ("old.jsonl", old.values())):
    with open(os.path.join(out, name), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
print(len(picked), "questions,", sum(not q["answerable"] for q in picked), "out of scope;", len(old), "old rows")
