#!/bin/bash
# Tenth session, first call: the GPU tests (the wide build's resident-block counts are now cached per device, a
# host-code change of the ninth session's review not yet run on a GPU), then the randomized audit
# (bench/scan_audit.py) on CUDA for every implementation, 4 seeds in parallel, 7 minutes each (every new shape,
# N, dtype and option set compiles Triton kernels, and 'auto' tunes its candidates on it: a first run of 120 cases
# per seed did not finish in 10 minutes). Output also in $OUT/session10.log.
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s10 PYTHONUNBUFFERED=1
{
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
[ "${AUDIT_ONLY:-0}" = 1 ] || python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -2
for seed in 101 202 303 404; do
  python bench/scan_audit.py --device cuda --impls auto triton chunked doubling ref --cases 200 --seed $seed \
    --max-elements 20000000 --time-limit 400 --verbose > /tmp/audit_$seed.log 2>&1 &
done
wait
cat /tmp/audit_*.log
} 2>&1 | tee "${OUT:-/tmp}/session10.log"
