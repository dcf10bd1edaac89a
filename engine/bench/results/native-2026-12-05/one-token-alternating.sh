#!/usr/bin/env bash
# One-token pass at two threads, ours against llama-bench's decode, alternating three rounds on
# a quiet machine (background runs paused); each side's every repetition kept.
set -u
OUT=${OUT:-results}
BIN=${BIN:?the folder of llama-bench}
mkdir -p "$OUT"
pids=$(pgrep -f "engine.cli (eval|bench)")
[ -n "$pids" ] && kill -STOP $pids
echo "paused: $pids at $(date -Is)" > $OUT/log.txt
for round in 1 2 3; do
  for m in qwen2.5-coder-0.5b-instruct qwen2.5-coder-1.5b-instruct; do
    f=$HOME/.cache/speculative-edits/gguf/$m.gguf
    echo "== round $round $m llama-bench" >> $OUT/log.txt
    $BIN/llama-bench -m $f -t 2 -d 400 -p 0 -n 32 -r 3 -o jsonl >> $OUT/log.txt 2>/dev/null
    echo "== round $round $m ours" >> $OUT/log.txt
    python -m engine.bench.pass_profile --model $m --context 400 --tokens 1 --prefill 0 \
      --threads 2 --clock wall --no-split --repeats 5 2>&1 | grep "pass:" >> $OUT/log.txt
  done
done
[ -n "$pids" ] && kill -CONT $pids
echo "resumed at $(date -Is)" >> $OUT/log.txt
