"""Fifteenth-round count (docs/EVAL.md, "Fifteenth round", trial 4): the rows of the
first-look dumps (dev and held-out 1-16, later dumps replacing a row) where the model
answered NOT_FOUND over passages the grader passed (grade >= 0.3), and the same in
the focused dumps at the second look's bar (0.4).

    python3 docs/trials/not_found_count.py
"""
import glob
import json

for focused, bar in ((False, 0.3), (True, 0.4)):
    rows = {}
    for path in sorted(glob.glob("docs/answers-*-1.5b.jsonl")):
        if ("focus" in path) == focused and "draft-question" not in path:
            for line in open(path, encoding="utf-8"):
                row = json.loads(line)
                rows[row["id"]] = row
    found = [(i, r["answerable"], r["grade"]) for i, r in rows.items()
             if r["refusal_reason"] == "model" and (r.get("grade") or 0) >= bar]
    print("focused" if focused else "first look", f"grade >= {bar}:", len(found), found)
