#!/bin/bash
# Ninth session, closing device call: bench/gpu_final.sh (GPU tests, the 25 correctness cases for every
# kernel 'auto' may pick, 'auto''s picks and times, MambaVision-T end to end) on the final tree, then the short
# form's per-instruction counts again (320 x 49 fp16 batch 128, the model's layout and dt_rank; the first call's
# profile had the benches' old dt_rank of 5, B and C unaligned). Output also in $OUT/session9b.log and
# $OUT/short_f16_b128_after.csv.
set -u
export PYTHONUNBUFFERED=1
out=${OUT:-/tmp}
{
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
bash bench/gpu_final.sh
export EDGEMV_CACHE_DIR=$(mktemp -d)
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"
for rank in 40 5; do
  ncu --clock-control none --kernel-name regex:scan --launch-skip 3 --launch-count 1 --section SourceCounters \
      -f -o /tmp/short_$rank python bench/scan_profile.py --variant cuda-short --dim 320 --length 49 --batch 128 \
      --dt-rank $rank > /dev/null 2>&1
  ncu -i /tmp/short_$rank.ncu-rep --page source --csv --print-source sass > "$out/short_f16_b128_rank$rank.csv"
  python bench/sass_counts.py "$out/short_f16_b128_rank$rank.csv" | sed -n 1p
done
} 2>&1 | tee "$out/session9b.log"
