"""Fifteenth-round count (docs/EVAL.md, "Fifteenth round", the change): the sentences of
every dump in docs/ that ``rag.prompts.is_echo`` now drops as stopping before their value.

    PYTHONPATH=. .venv/bin/python docs/trials/dangling.py
"""
import glob
import json

from rag.citations import parse_markers
from rag.prompts import _DANGLING
from rag.terms import split_enumeration

seen = set()
for path in sorted(glob.glob("docs/answers-*.jsonl")):
    for line in open(path, encoding="utf-8"):
        row = json.loads(line)
        for key in ("sentences", "draft", "first_draft"):
            for s in row.get(key) or []:
                bare = parse_markers(s.get("source") or s["text"])[0]
                text = split_enumeration(bare)[1].lstrip("-*• ").replace("**", "").strip()
                if len(text) >= 12 and _DANGLING.search(text) and text not in seen:
                    seen.add(text)
                    print(row["id"], text)
print(len(seen), "sentences")
