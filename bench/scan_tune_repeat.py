"""'auto''s tuning of one problem, repeated from scratch: the candidates' times as scan_tune measures them (logged),
to see whether its choice is stable. 160 x 196 batch 128 fp16 by default.

    python bench/scan_tune_repeat.py --layout contiguous --repeats 3
"""

import argparse
import logging
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from scan import make_inputs  # noqa: E402

from edgemv.ops import scan_tune  # noqa: E402
from edgemv.ops.scan_triton import selective_scan_triton  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=160)
    ap.add_argument("--length", type=int, default=196)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--layout", choices=["model", "contiguous"], default="contiguous")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    inp = make_inputs(args.batch, args.dim, args.length, torch.float16, "cuda", model_layout=args.layout == "model")
    os.environ.setdefault("EDGEMV_CACHE_DIR", tempfile.mkdtemp())
    for _ in range(args.repeats):
        if os.path.exists(scan_tune.tuning_file()):  # no remembered choice
            os.remove(scan_tune.tuning_file())
        scan_tune._memory.clear()
        selective_scan_triton(**inp)  # 'auto': times every candidate, logs the times and the choice
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
