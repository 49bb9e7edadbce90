#!/bin/bash
# Eleventh session, last call: every entry point of the scan now checks its arguments (edgemv.ops.inputs) before a
# kernel runs. The GPU tests (with the new refusal cases: a longer B, a short delta, A on the CPU, a D of one
# element, for 'auto', the Triton kernel, the CUDA C++ kernel's rows and staged forms and the registered op), then
# the host time per eager call (bench/scan_call_overhead.py; the check adds a few microseconds). Output also in
# $OUT/session11b.log.
set -u
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s11b PYTHONUNBUFFERED=1
{
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py tests/test_scan_inputs.py 2>&1 | tail -3
python bench/scan_call_overhead.py
} 2>&1 | tee "${OUT:-/tmp}/session11b.log"
