#!/bin/bash
# Nsight Compute counters of one scan launch (160 x 196 batch 128 fp16 unless told otherwise), as a short list:
#   bash bench/ncu_scan.sh --variant cuda-lean --split 4          # arguments go to bench/scan_profile.py
set -euo pipefail
reasons="barrier branch_resolving dispatch_stall long_scoreboard math_pipe_throttle mio_throttle lg_throttle \
no_instruction not_selected selected short_scoreboard wait misc"
metrics="gpu__time_duration.sum,smsp__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active"
metrics+=",smsp__warps_active.avg.per_cycle_active,smsp__inst_executed_pipe_xu.sum"
metrics+=",smsp__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active,smsp__inst_executed_pipe_fma.avg.pct_of_peak_sustained_active"
metrics+=",smsp__inst_executed_pipe_lsu.avg.pct_of_peak_sustained_active"
metrics+=",l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,sm__cycles_active.avg"
metrics+=",l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum"
metrics+=",dram__bytes_read.sum,dram__bytes_write.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed"
for r in $reasons; do metrics+=",smsp__average_warps_issue_stalled_${r}_per_issue_active.ratio"; done
ncu --clock-control none --kernel-name regex:"scan" --launch-skip 3 --launch-count 1 --metrics "$metrics" \
    python "$(dirname "$0")/scan_profile.py" "$@" 2>&1 | grep -E "^\s+(gpu__|smsp__|l1tex__|sm__|dram__)" \
    | sed -E 's/smsp__average_warps_issue_stalled_(.*)_per_issue_active.ratio/stall \1/'
