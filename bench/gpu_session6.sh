#!/bin/bash
# One device call (docs/benchmarks.md, "Ceiling of the scan's arithmetic"): the arithmetic-only ceiling program
# (bench/cuda/scan_ceiling.cu) at batch 128 and 256, then Nsight Compute counters of the rows form at 160 x 196
# batch 256 fp16 on the model's layout, with the pipes' utilisation and the SM clock.
set -u
nvcc -arch=sm_90 -O3 -o /tmp/scan_ceiling bench/cuda/scan_ceiling.cu && /tmp/scan_ceiling 128 256
export EDGEMV_CACHE_DIR=$(mktemp -d)
python -c "import torch; from edgemv.ops import scan_cuda; scan_cuda.library(torch.device('cuda'))"  # build once
for b in 128 256; do
  echo "== ncu cuda-rows batch $b"
  bash bench/ncu_scan.sh --variant cuda-rows --batch $b 2>&1 | head -40
done
echo "== ncu pipes, batch 256"
m="sm__cycles_elapsed.avg.per_second,sm__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active"
m+=",sm__pipe_fma_cycles_active.avg.pct_of_peak_sustained_active,sm__pipe_alu_cycles_active.avg.pct_of_peak_sustained_active"
m+=",l1tex__data_pipe_lsu_wavefronts_mem_shared.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active"
ncu --clock-control none --kernel-name regex:"scan" --launch-skip 3 --launch-count 1 --metrics "$m" \
  python bench/scan_profile.py --variant cuda-rows --batch 256 2>&1 | grep -E "^\s+(sm__|l1tex__)|ERR|rror" | head
