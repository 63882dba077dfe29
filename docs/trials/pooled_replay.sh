#!/bin/bash
# The pooled replay of docs/EVAL.md ("Against the issue's targets"): every held-out set's dumps
# (1-16, with their retry and rerun rows), their focused dumps for the second look, and
# their question files, at the defaults. Extra arguments go to rag.calibrate.
#   bash docs/trials/pooled_replay.sh > pooled.json
cd "$(dirname "$0")/../.."
D=""; F=""; Q=""
for n in "" 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do
  D+="docs/answers-heldout$n-1.5b.jsonl,"
  for s in retry rerun; do [ -f docs/answers-heldout$n-$s-1.5b.jsonl ] && D+="docs/answers-heldout$n-$s-1.5b.jsonl,"; done
  F+="docs/answers-heldout$n-focus-1.5b.jsonl,"
  Q+="eval/heldout$n.jsonl,"
done
.venv/bin/python -m rag.calibrate --replay "${D%,}" --recheck --second-look "${F%,}" --questions "${Q%,}" --json "$@"
