#!/bin/bash
# Eighth session, closing device call: bench/gpu_final.sh (GPU tests, the 25 correctness cases for every
# kernel 'auto' may pick, 'auto''s picks and times, MambaVision-T end to end) on the final tree, output also in
# $OUT/session8f.log.
set -u
bash bench/gpu_final.sh 2>&1 | tee "${OUT:-/tmp}/session8f.log"
