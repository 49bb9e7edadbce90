#!/bin/bash
# Eleventh session: the official MambaVision (mambavision 1.2.0 on mamba_ssm's forward kernel, built from the
# carried .mamba_ref sources) beside edgemv's model, end to end on one GPU (bench/e2e_official.py; OFFICIAL_ARGS
# adds options, e.g. --profile or --select REGEX); then, with E2E_ALL=1, bench/e2e.py for every scan implementation,
# eager and both torch.compile modes. Carry .whl (the mambavision-1.2.0 and timm-1.0.15 wheels, the versions
# .ci/official installs) and .mamba_ref. Output also in $OUT/session11_*.log.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site || exit 1
export EDGEMV_CACHE_DIR=/tmp/edgemv_cache_s11 PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore::FutureWarning
{
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
python bench/e2e_official.py --src .mamba_ref ${OFFICIAL_ARGS:-}
} 2>&1 | tee "${OUT:-/tmp}/session11_official.log"
if [ "${E2E_ALL:-0}" = 1 ]; then
  python bench/e2e.py --impls triton doubling chunked ref --modes eager default reduce-overhead 2>&1 \
    | tee "${OUT:-/tmp}/session11_e2e_all.log"
fi
