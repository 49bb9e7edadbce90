#!/bin/bash
# Seventh session, second device call: the short form after its staging was made leaner (u kept as loaded, y written
# over it, 8-step unrolled groups), its GPU tests, and its register budget (SHORT_MIN_BLOCKS) at 320 x 49.
set -u
export EDGEMV_CACHE_DIR=$(mktemp -d)
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py -k short 2>&1 | tail -1
python bench/scan_rows.py --shape 320 49 --kernels "staged 4" "short 2" --layouts model contiguous
for mb in 16 24; do
  python bench/scan_rows.py --shape 320 49 --kernels "short 2" --layouts model contiguous --dtypes float16 \
    --define SHORT_MIN_BLOCKS=$mb 2>&1 | grep -E "defines|passed|^\| float"
done
