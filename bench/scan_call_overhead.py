"""Host time of one eager scan call (what an eager forward pays per mixer beyond the GPU time), at MambaVision-T's
level-2 shape on the model's layout, for each layer of the call: the wall time per call of 100 back-to-back calls
(host), then the same with a sync at the end (with the GPU; where the host time is above the GPU's, the GPU waits),
each the best of 10 such runs (the device machine's host is shared, and single runs differed by 2x).

    python bench/scan_call_overhead.py
"""

import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from scan import make_inputs  # noqa: E402

import edgemv.ops  # noqa: E402
from edgemv.ops.scan_cuda import selective_scan_cuda  # noqa: E402
from edgemv.ops.scan_triton import selective_scan_triton  # noqa: E402


def main():
    for batch in (1, 128):
        inp = make_inputs(batch, 160, 196, torch.float16, "cuda", model_layout=True)
        layers = (
            ("edgemv.ops.selective_scan, impl 'triton' ('auto' kernel: what the model calls)",
             lambda: edgemv.ops.selective_scan(**inp, impl="triton")),
            ("selective_scan_triton, variant 'auto'", lambda: selective_scan_triton(**inp, variant="auto")),
            ("selective_scan_triton, seq 64", lambda: selective_scan_triton(**inp, variant="seq", block_d=64)),
            ("selective_scan_cuda, rows form", lambda: selective_scan_cuda(**inp, lanes=2, rows=True)),
            ("selective_scan_cuda, staged, lanes 2", lambda: selective_scan_cuda(**inp, lanes=2)),
        )
        for label, fn in layers:
            for _ in range(20):
                fn()
            host = total = float("inf")
            for _ in range(10):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(100):
                    fn()
                host = min(host, (time.perf_counter() - t0) / 100)
                torch.cuda.synchronize()
                total = min(total, (time.perf_counter() - t0) / 100)
            print(f"batch {batch:3d} | {label:80s} | host {host * 1e6:6.1f} us per call | with the GPU "
                  f"{total * 1e6:6.1f} us")


if __name__ == "__main__":
    main()
