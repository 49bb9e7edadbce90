#!/bin/bash
# Sixteenth session, fifth call (an H200): the plugin's kernels as TensorRT tactics: each advertised tactic and the
# default (0) enqueued against float64 (tests/test_trt_plugin.py), then the random problems twice more. Output in
# $OUT/session16e.log.
set -u
source bench/device_header.sh
export PYTHONUNBUFFERED=1 EDGEMV_CACHE_DIR=/tmp/c_plugin
{
device_header
python -m pytest -q -p no:cacheprovider tests/test_trt_plugin.py 2>&1 | tail -3
python -m pytest -q -p no:cacheprovider tests/test_trt_plugin.py -k random 2>&1 | tail -1
python -m pytest -q -p no:cacheprovider tests/test_trt_plugin.py -k random 2>&1 | tail -1
date -u
} 2>&1 | tee "${OUT:-/tmp}/session16e.log"
