#!/bin/bash
# Ninth session: where the rows and short forms' instructions go, per SASS instruction. Nsight Compute's source
# counters (executed instructions per SASS line, exact) of one launch of each form at MambaVision-T's shapes, fp16,
# the model's layout, batch 128 (and the fp32 rows form at batch 256, its wide build), exported as CSV to $OUT:
#   bash bench/ncu_sass_counts.sh      # then: python bench/sass_counts.py $OUT/short_f16_b128.csv
set -u
export EDGEMV_CACHE_DIR=$(mktemp -d) PYTHONUNBUFFERED=1
out=${OUT:-/tmp}
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
run() {  # name, then bench/scan_profile.py's arguments
  local name=$1; shift
  ncu --clock-control none --kernel-name regex:scan --launch-skip 3 --launch-count 1 --section SourceCounters \
      --section LaunchStats -f -o "$out/$name" python bench/scan_profile.py "$@" > "$out/$name.log" 2>&1
  ncu -i "$out/$name.ncu-rep" --page source --csv --print-source sass > "$out/$name.csv" 2>> "$out/$name.log"
  ncu -i "$out/$name.ncu-rep" --page details --section LaunchStats 2>&1 | grep -E "Registers|Block Size|Grid" \
      >> "$out/$name.log"
  echo "$name: $(wc -l < "$out/$name.csv") lines"; tail -4 "$out/$name.log"
}
run short_f16_b128 --variant cuda-short --dim 320 --length 49 --batch 128
run rows_f16_b128 --variant cuda-rows --dim 160 --length 196 --batch 128
run rows_f32_b256 --variant cuda-rows --dim 160 --length 196 --batch 256 --dtype float32
