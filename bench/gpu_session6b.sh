#!/bin/bash
# One device call (docs/benchmarks.md, "Host cost per call" and "mamba_ssm side by side"): the GPU tests of the CUDA
# kernel, mamba_ssm's kernel beside 'auto' (bench/scan_vs_mamba.py, its sources in .mamba_ref, carried), the host
# cost per call of each layer, then the same with the previous commit's edgemv/ops/scan_cuda.py (.baseline, carried).
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache PYTHONUNBUFFERED=1
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -2
python bench/scan_vs_mamba.py --src .mamba_ref --dtypes float16 2>&1 | grep -v "^ptxas\|^$"
echo "== host cost per call, this tree"
python bench/scan_call_overhead.py
if [ -f .baseline/scan_cuda.py ]; then
  cp .baseline/scan_cuda.py edgemv/ops/scan_cuda.py
  echo "== host cost per call, the previous scan_cuda.py"
  python bench/scan_call_overhead.py
fi
