#!/bin/bash
# Seventeenth session (an H200): the GPU tests of the scan, its tuning and the plugin after the session's changes
# (the plugin's enqueue test split into a helper that skips y beyond float16's range; the CUDA kernels' batch limit),
# then the limit on the GPU itself: batch 65,536 refused by the CUDA form, run by 'auto' (Triton) against float64.
# Output in $OUT/session17.log.
set -u
source bench/device_header.sh
export PYTHONUNBUFFERED=1 EDGEMV_CACHE_DIR=/tmp/c17
{
device_header
python -m pytest -q -p no:cacheprovider tests/test_scan_cuda_gpu.py tests/test_scan_tune.py tests/test_trt_plugin.py \
  tests/test_scan.py 2>&1 | tail -3
python - <<'PY'
import sys, torch
sys.path.insert(0, "tests")
from test_scan import make, rel_err, scan_f64
from edgemv.ops import scan_cuda, selective_scan
inp = make(65536, 8, 4, torch.float16, model_layout=False)
cuda = {k: (v.cuda() if isinstance(v, torch.Tensor) else v) for k, v in inp.items()}
try:
    scan_cuda.selective_scan_cuda(**cuda, lanes=2)
    print("batch 65536, CUDA form: ran (unexpected)")
except scan_cuda.FormRefusal as exc:
    print("batch 65536, CUDA form refused:", exc)
y = selective_scan(**cuda, impl="auto")
torch.cuda.synchronize()
print(f"batch 65536, 'auto': rel err vs float64 {rel_err(y.cpu(), scan_f64(**inp)):.2e} (fp16 bound 2e-3)")
PY
date -u
} 2>&1 | tee "${OUT:-/tmp}/session17.log"
