#!/bin/bash
# Thirteenth session, first call (c914cf3's sources: the rows form's "16-bit only" check moved inside
# rows::bc_pairs<E>, a host-side change not yet run on a GPU): the GPU tests of the CUDA kernels, the table
# for the fastest path ('triton': correctness of 'triton' and 'chunked' on the 25 cases first, then timings with the
# copy bandwidth of the same run), then a randomized audit against the independent float64 reference (shapes,
# layouts and values drawn fresh). Output in $OUT/session13.log.
set -u
source bench/device_header.sh
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s13 PYTHONUNBUFFERED=1
{
device_header --build
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py 2>&1 | tail -2
python bench/scan.py --impls triton --out "${OUT:-/tmp}" 2>&1 | grep -v "^$"
python bench/scan_audit.py --device cuda --impls auto triton chunked --cases 400 --time-limit 90 2>&1 | tail -8
date -u
} 2>&1 | tee "${OUT:-/tmp}/session13.log"
