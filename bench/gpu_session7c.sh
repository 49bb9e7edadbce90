#!/bin/bash
# Seventh session, closing device call 1 of 2 (docs/benchmarks.md, "The short form"): the CUDA kernel's GPU tests;
# the issue's 25 correctness cases for 'auto', 'chunked' and every kernel 'auto' may pick (the short form among them)
# in 8 parallel shards; the kernels side by side with what 'auto' picks at the 8 problems. (As run: the same commands
# as bench/gpu_final.sh without its end-to-end part.)
exec bash "$(dirname "$0")/gpu_final.sh" --no-e2e
