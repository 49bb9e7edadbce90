#!/bin/bash
# Seventeenth session: where MambaVision-T's first eager call (batch 128, fp16) spends its time, from empty caches,
# each case in a fresh process: (1) nvcc's build beside the tuning, as a user meets it; (2) the CUDA kernel built
# first; (3) as (2) with the tuning's timings at rep 5 ms instead of 20 (do the choices change?); (4) as (2) again
# (Triton's compiles cached by then? no: every run gets new cache folders). Output in $OUT/session17b.log.
set -u
source bench/device_header.sh
export PYTHONUNBUFFERED=1
{
device_header
echo "== 1: empty caches, nvcc beside the tuning"; python bench/first_call_profile.py
echo "== 2: CUDA kernel built first"; python bench/first_call_profile.py --prebuilt
echo "== 3: CUDA kernel built first, rep 5 ms"; python bench/first_call_profile.py --prebuilt --rep 5
echo "== 4: CUDA kernel built first (repeat of 2)"; python bench/first_call_profile.py --prebuilt
date -u
} 2>&1 | tee "${OUT:-/tmp}/session17b.log"
