#!/bin/bash
# Seventeenth session: docs/model.md's fast-inference recipe on first calls after the Triton candidates compile
# together (bench/compile_shapes.py: MambaVision-T, fp16, channels_last, torch.compile(mode="reduce-overhead"),
# batch 128/128/128/64/64/128/32/64/128), with empty edgemv, Triton and Inductor caches but the CUDA C++ kernel built
# first, as the 2026-11-28 02:24 measurement was. Output in $OUT/session17e.log.
set -u
source bench/device_header.sh
export PYTHONUNBUFFERED=1 EDGEMV_CACHE_DIR=/tmp/c17e TRITON_CACHE_DIR=/tmp/t17e TORCHINDUCTOR_CACHE_DIR=/tmp/i17e
{
device_header --build
python bench/compile_shapes.py
date -u
} 2>&1 | tee "${OUT:-/tmp}/session17e.log"
