#!/bin/bash
# One device call (docs/benchmarks.md, "B and C read along N"): the GPU tests of the CUDA kernel, the rows form
# (bench/scan_rows.py: correctness, then times in three layouts) with this tree and with the previous commit's
# scan_rows.cuh (.baseline, carried), then 'auto' and the kernels side by side (bench/scan_variants.py, this tree).
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache PYTHONUNBUFFERED=1
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -2
echo "== this tree"
python bench/scan_rows.py --kernels "rows 2" | grep -E "^\||correctness"
cp edgemv/ops/cuda/scan_rows.cuh /tmp/scan_rows_new.cuh
if [ -f .baseline/scan_rows.cuh ]; then
  cp .baseline/scan_rows.cuh edgemv/ops/cuda/scan_rows.cuh
  echo "== the previous scan_rows.cuh"
  python bench/scan_rows.py --kernels "rows 2" | grep -E "^\||correctness"
  cp /tmp/scan_rows_new.cuh edgemv/ops/cuda/scan_rows.cuh
fi
python bench/scan_variants.py 2>&1 | grep -E "rows|auto|copy"
