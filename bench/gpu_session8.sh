#!/bin/bash
# Eighth session, device calls 1-2: the short form pipelined (a block takes k sequences of the batch, each one's
# loads out before the previous one's scan; commit "experiment: the short form pipelined", reverted by the next commit:
# slower at every batch) against the one-shot short form at 320 x 49, and its register budget (SHORT_PIPE_MIN_BLOCKS:
# 16, the default, and 12). GPU tests of the forms first. Output also in $OUT/session8.log.
# It needs that commit's tree: git checkout 3f884ef (the kernels "short 2 x2" .. are gone since).
set -u
export EDGEMV_CACHE_DIR=$(mktemp -d)
LOG=${OUT:-/tmp}/session8.log
{
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -2
python bench/scan_rows.py --shape 320 49 --kernels "short 2" "short 2 x2" "short 2 x3" "short 2 x4" \
  --layouts model contiguous
for mb in 12; do
  python bench/scan_rows.py --shape 320 49 --kernels "short 2" "short 2 x2" "short 2 x4" --layouts model \
    --dtypes float16 --define SHORT_PIPE_MIN_BLOCKS=$mb 2>&1 | grep -E "defines|passed|^\| float"
done
} 2>&1 | tee "$LOG"
