#!/bin/bash
# Seventh session, fifth device call: mamba_ssm beside 'auto' with the column of mamba_ssm on the model's layout as
# its Python entry point runs it (its copies of delta, B and C, then the kernel); needs .mamba_ref carried.
set -u
export EDGEMV_CACHE_DIR=$(mktemp -d)
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
python bench/scan_vs_mamba.py --src .mamba_ref --dtypes float16 float32 --batches 128 256 2>&1 | grep -v "^  "
