"""Host time of one eager scan call per kernel (what an eager forward pays per mixer beyond the GPU time), at
MambaVision-T's level-2 shape on the model's layout: the mean wall time of 200 back-to-back calls, then one sync.

    python bench/scan_call_overhead.py
"""

import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from scan import make_inputs  # noqa: E402

from edgemv.ops.scan_triton import selective_scan_triton  # noqa: E402


def main():
    for batch in (1, 128):
        inp = make_inputs(batch, 160, 196, torch.float16, "cuda", model_layout=True)
        for label, kw in (("seq 64", dict(variant="seq", block_d=64)), ("cuda lanes 2", dict(variant="cuda", lanes=2)),
                          ("cuda lanes 4", dict(variant="cuda", lanes=4)), ("auto", dict(variant="auto"))):
            for _ in range(20):
                selective_scan_triton(**inp, **kw)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(200):
                selective_scan_triton(**inp, **kw)
            host = (time.perf_counter() - t0) / 200
            torch.cuda.synchronize()
            total = (time.perf_counter() - t0) / 200
            print(f"batch {batch:3d} {label:14s} host {host * 1e6:7.1f} us per call, with the GPU {total * 1e6:7.1f} us")


if __name__ == "__main__":
    main()
