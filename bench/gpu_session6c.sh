#!/bin/bash
# One device call (docs/benchmarks.md, "Host cost per call"): the scan's GPU tests, the host cost per call of each
# layer with this tree and with the previous commit's edgemv/ops/__init__.py and scan_cuda.py (.baseline, carried),
# alternately, twice; then mamba_ssm beside 'auto' (bench/scan_vs_mamba.py; .mamba_ref carried), eager columns too.
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache PYTHONUNBUFFERED=1
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py tests/test_scan.py 2>&1 | tail -2
mkdir -p /tmp/new && cp edgemv/ops/__init__.py edgemv/ops/scan_cuda.py /tmp/new/
for round in 1 2; do
  cp /tmp/new/__init__.py /tmp/new/scan_cuda.py edgemv/ops/
  echo "== host cost per call, this tree (round $round)"
  python bench/scan_call_overhead.py
  if [ -f .baseline/scan_cuda.py ]; then
    cp .baseline/__init__.py .baseline/scan_cuda.py edgemv/ops/
    echo "== host cost per call, the previous commit's op and scan_cuda (round $round)"
    python bench/scan_call_overhead.py
  fi
done
cp /tmp/new/__init__.py /tmp/new/scan_cuda.py edgemv/ops/
[ -d .mamba_ref ] && python bench/scan_vs_mamba.py --src .mamba_ref --dtypes float16 --no-correctness 2>&1 \
  | grep -v "^ptxas\|^$"
