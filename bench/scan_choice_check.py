"""Does 'auto' pick the kernel that is fastest where the issue's table times it?

'auto' (edgemv.ops.scan_tune) times each candidate with ``do_bench_cudagraph`` on one set of inputs, which after the
first replay lie in L2 when they fit (320 x 49 batch 256 fp16 is 24.5 MB; an H100 has 50 MB of L2, an H200 60 MB).
The issue's table (bench/scan.py) times with rotating input sets, 4x the L2 size, so the data come from device
memory. This prints, per problem, every candidate's time both ways, and what a fresh tuning chooses, so a choice
that is right hot and wrong cold shows. Written for the thirteenth session's unexplained H100 figure (320 x 49
fp16 batch 256: 28.3 us in the table, 22.9 us in an A/B of the short form alone).

    python bench/scan_choice_check.py --shapes 320x49 160x196 --batches 256 128
"""

import argparse
import logging
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from scan import device_time_ms, make_inputs, scan_bytes  # noqa: E402

from edgemv.ops import scan_tune  # noqa: E402
from edgemv.ops.scan_triton import selective_scan_triton  # noqa: E402


def hot_us(fn):
    from triton.testing import do_bench_cudagraph

    return do_bench_cudagraph(fn, rep=20, return_mode="median") * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", nargs="+", default=["320x49", "160x196"])
    ap.add_argument("--batches", nargs="+", type=int, default=[256])
    ap.add_argument("--dtype", default="float16", choices=["float16", "float32", "bfloat16"])
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="  %(message)s")
    os.environ.setdefault("EDGEMV_CACHE_DIR", tempfile.mkdtemp())
    dt = getattr(torch, args.dtype)
    print(torch.cuda.get_device_name(), f"torch {torch.__version__}", flush=True)
    print("\n| D x L | batch | kernel | hot (tuner's timing) us | cold (table's timing) us | picked by 'auto' |")
    print("|---|---|---|---|---|---|")
    for shape in args.shapes:
        dim, length = (int(v) for v in shape.split("x"))
        for b in args.batches:
            inp = make_inputs(b, dim, length, dt, "cuda")
            scan_tune._memory.clear()
            if os.path.exists(scan_tune.tuning_file()):
                os.remove(scan_tune.tuning_file())
            selective_scan_triton(**inp)  # a fresh tuning (logged), remembered for the cold 'auto' row
            picked = next(iter(scan_tune._memory.values()))  # the one problem tuned since the clear
            nbytes = scan_bytes(b, dim, length, dt)
            rows = [(f"{v} {o}", v, o) for v, o in scan_tune.candidates()] + [("auto", None, None)]
            for name, v, o in rows:
                def call(x=inp):
                    if v is None:
                        return selective_scan_triton(**x)
                    return selective_scan_triton(**x, variant=v, **o)
                try:
                    hot = hot_us(call)
                    cold = device_time_ms(lambda: (lambda x=make_inputs(b, dim, length, dt, "cuda"): call(x)),
                                          nbytes) * 1e3
                except Exception as exc:  # a form that cannot take these inputs (e.g. rows at L = 49 in 16 bits)
                    print(f"| {dim} x {length} | {b} | {name} | refused: {str(exc)[:60]} | | |")
                    continue
                mark = f"{picked[0]} {picked[1]}" if v is None else ("yes" if (v, o) == picked else "")
                print(f"| {dim} x {length} | {b} | {name} | {hot:.1f} | {cold:.1f} | {mark} |", flush=True)


if __name__ == "__main__":
    main()
