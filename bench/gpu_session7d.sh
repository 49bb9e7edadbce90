#!/bin/bash
# Seventh session, closing device call 2 of 2: mamba_ssm's forward kernel beside 'auto' (bench/scan_vs_mamba.py; needs
# the ignored .mamba_ref folder carried), then MambaVision-T end to end with 'auto'.
set -u
export EDGEMV_CACHE_DIR=$(mktemp -d)
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python bench/scan_vs_mamba.py --src .mamba_ref 2>&1 | grep -v "^  "
python bench/e2e.py --impls triton --modes eager reduce-overhead 2>&1 | tail -8
