"""Time one kernel over a range of batch sizes (cold, as the issue's table times), to see how the grid's waves
shape the time: e.g. the rows form at 160 x 196 has 10 one-warp blocks per batch row and 16 per SM fit (128
registers), so 132 SMs take batch 211 in one wave and batch 256 needs a second, 21%-full one.

    python bench/scan_wave_sweep.py --shape 160x196 --variant cuda --opts lanes=2 rows=1 --batches 128 211 212 256
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from scan import device_time_ms, make_inputs, scan_bytes  # noqa: E402

from edgemv.ops.scan_triton import selective_scan_triton  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="160x196")
    ap.add_argument("--dtype", default="float16")
    ap.add_argument("--variant", default="cuda")
    ap.add_argument("--opts", nargs="*", default=["lanes=2", "rows=1"], help="key=int options of the variant")
    ap.add_argument("--batches", nargs="+", type=int, default=[128, 192, 211, 212, 224, 240, 256])
    args = ap.parse_args()
    dim, length = (int(v) for v in args.shape.split("x"))
    dt = getattr(torch, args.dtype)
    opts = {k: int(v) for k, v in (o.split("=") for o in args.opts)}
    print(torch.cuda.get_device_name(), args.shape, args.dtype, args.variant, opts, flush=True)
    print("| batch | us | us per batch row | GB/s |\n|---|---|---|---|")
    for b in args.batches:
        nbytes = scan_bytes(b, dim, length, dt)
        ms = device_time_ms(lambda: (lambda x=make_inputs(b, dim, length, dt, "cuda"):
                                     selective_scan_triton(**x, variant=args.variant, **opts)), nbytes)
        print(f"| {b} | {ms * 1e3:.1f} | {ms * 1e3 / b:.3f} | {nbytes / ms / 1e6:.0f} |", flush=True)


if __name__ == "__main__":
    main()
