#!/bin/bash
# The 25 correctness cases for 'auto', 'chunked' and every kernel 'auto' may pick, in 8 parallel shards
# (`bench/scan.py --correctness --all-kernels --shard k/8`); prints each shard's lines that match $1 (a grep -E
# pattern; default: the results, failures and worst errors). Used by the closing device scripts.
set -u
for k in 0 1 2 3 4 5 6 7; do
  python bench/scan.py --correctness --all-kernels --shard $k/8 > /tmp/corr_$k.log 2>&1 &
done
wait
grep -h -E "${1:-passed|FAIL|worst}" /tmp/corr_*.log
