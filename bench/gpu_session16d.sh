#!/bin/bash
# Sixteenth session, fourth call (an H200): the plugin library's tests again, now with 24 fresh random problems per
# header set (tests/test_trt_plugin.py::test_enqueue_on_random_problems), twice. Output in $OUT/session16d.log.
set -u
source bench/device_header.sh
export PYTHONUNBUFFERED=1 EDGEMV_CACHE_DIR=/tmp/c_plugin
{
device_header
python -m pytest -q -p no:cacheprovider tests/test_trt_plugin.py 2>&1 | tail -4
python -m pytest -q -p no:cacheprovider tests/test_trt_plugin.py -k random 2>&1 | tail -2
date -u
} 2>&1 | tee "${OUT:-/tmp}/session16d.log"
