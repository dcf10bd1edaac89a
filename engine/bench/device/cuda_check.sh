#!/usr/bin/env bash
# The check to run when a CUDA GPU is at hand (about 5 minutes on an H100): exactness and
# speed of speculative edits against greedy on random-weight models of the two Qwen catalog
# shapes, on transformers' model (the native GGUF decoder and its kernels are CPU-only), in
# bfloat16 and float32, plus the exactness property tests run on the GPU.
#
#   bash engine/bench/device/cuda_check.sh [OUT]        # rows and summaries under OUT
#
# Needs torch with CUDA and transformers; the rest of the package's dependencies are only
# imported by the parts this does not run, so no install is needed on a machine that has
# those two. Exit status: non-zero if any output differs from greedy in float32.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=${1:-${OUT:-cuda-check}}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} SPECEDIT_THREADS=1
python3 - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device"
print(torch.__version__, torch.cuda.get_device_name(0))
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
status=0
for size in 0.5b 1.5b; do
  for dtype in bfloat16 float32; do
    python3 -m engine.cli bench --synthetic --arch qwen2 --size "$size" --device cuda \
      --dtype "$dtype" --methods greedy,speculative --synthetic-tokens 256 --limit 8 \
      --out "$out/$size-$dtype" | tee "$out/$size-$dtype.txt"
    if [ "$dtype" = float32 ] && grep -q ",False," "$out/$size-$dtype/rows.csv"; then
      echo "cuda-check: $size float32: an output differs from greedy" >&2
      status=1
    fi
  done
done
SPECEDIT_TEST_DEVICE=cuda python3 -m pytest -q -p no:cacheprovider \
  tests/engine/decode/test_exactness.py -k "not native" 2>&1 | tee "$out/exactness.txt" || status=1
exit $status
