#!/bin/bash
# One device call (docs/benchmarks.md, "Coalesced u and y in the rows form"): the GPU tests of the CUDA kernel, the
# rows form with coalesced u and y (this tree; build knobs ROWS_MIN_BLOCKS 12 (then the default), 14, 16), then the previous
# commit's scan_rows.cuh (.baseline, carried) with the same script, all at 160 x 196.
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache PYTHONUNBUFFERED=1
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -2
echo "== this tree"
python bench/scan_rows.py --batches 64 128 256 --dtypes float16 float32 --kernels "rows 2" --layouts model contiguous
for mb in 14 16; do
  echo "== this tree, ROWS_MIN_BLOCKS=$mb"
  python bench/scan_rows.py --batches 128 256 --dtypes float16 --kernels "rows 2" --layouts model contiguous \
    --define ROWS_MIN_BLOCKS=$mb | grep -E "^\||correctness:"
done
if [ -f .baseline/scan_rows.cuh ]; then
  cp .baseline/scan_rows.cuh edgemv/ops/cuda/scan_rows.cuh
  echo "== the previous scan_rows.cuh"
  python bench/scan_rows.py --batches 64 128 256 --dtypes float16 float32 --kernels "rows 2" --layouts model contiguous \
    | grep -E "^\||correctness:"
fi
