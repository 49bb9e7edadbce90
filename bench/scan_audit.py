"""A randomized audit of the scan against an independent float64 reference, on shapes, layouts and values drawn
fresh each run (the way an outside checker would test it, not the fixed case set of bench/scan.py).

Each case draws batch, channels, L, N, dtype, which of D / z / delta_bias / softplus are given, the size of delta,
and a layout for every tensor (contiguous; strided slices of a wider buffer; transposed storage; B and C as slices
of an x_proj-like output with a random dt_rank), then runs every implementation asked for. Before each call the
caching allocator is filled with NaN (a block allocated, filled and freed), so an element a kernel leaves unwritten
shows up. Errors are relative L2 errors against float64, judged by bench/scan.py's check_output (the issue's bounds).

    python bench/scan_audit.py --cases 200                              # CPU: ref, chunked, doubling
    python bench/scan_audit.py --device cuda --impls auto triton chunked --cases 300
"""

import argparse
import math
import os
import random
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from edgemv.ops import selective_scan  # noqa: E402
from scan import TOL, check_output  # noqa: E402  (the bench scripts' one correctness rule and bounds)


def reference_f64(u, delta, A, B, C, D, z, delta_bias, delta_softplus):
    """The recurrence written out once more, step by step, in float64 (independent of the library's code)."""
    u, d, A, B, C = (t.double().cpu() for t in (u, delta, A, B, C))
    if delta_bias is not None:
        d = d + delta_bias.double().cpu()[:, None]
    if delta_softplus:  # log(1 + e^x), written so it cannot overflow
        d = torch.where(d > 0, d + torch.log1p(torch.exp(-d)), torch.log1p(torch.exp(d)))
    batch, dim, length = u.shape
    state = torch.zeros(batch, dim, A.shape[1], dtype=torch.float64)
    y = torch.empty(batch, dim, length, dtype=torch.float64)
    for t in range(length):
        step = d[:, :, t]
        state = torch.exp(step[..., None] * A[None]) * state + (step * u[:, :, t])[..., None] * B[:, None, :, t]
        y[:, :, t] = (state * C[:, None, :, t]).sum(-1)
    if D is not None:
        y = y + u * D.double().cpu()[:, None]
    if z is not None:
        zz = z.double().cpu()
        y = y * zz / (1 + torch.exp(-zz))
    return y


def laid_out(values, rng, device):
    """``values`` (batch, channels, L) in one of several storage layouts, same values."""
    kind = rng.choice(["contiguous", "transposed", "padded", "channel_major"])
    b, c, length = values.shape
    if kind == "transposed":  # stored (batch, L, channels), as a linear layer's output
        return values.transpose(1, 2).contiguous().transpose(1, 2).to(device)
    if kind == "padded":  # a slice of a wider buffer along L
        pad = rng.randint(1, 5)
        buf = torch.full((b, c, length + pad), float("nan"), dtype=values.dtype)
        buf[..., :length] = values
        return buf.to(device)[..., :length]
    if kind == "channel_major":  # stored (channels, batch, L)
        return values.permute(1, 0, 2).contiguous().permute(1, 0, 2).to(device)
    return values.to(device)


def draw_case(rng, gen):
    """One random case: (description, inputs on the CPU, the layouts' RNG state)."""
    batch = rng.choice([1, 2, 3, 5, 8, 16])
    dim = rng.choice([1, 3, 8, 16, 24, 40, 96, 100, 160, 190, 320])
    length = rng.choice([1, 2, 3, 5, 7, 16, 31, 49, 63, 64, 65, 100, 128, 196, 255, 256, 300, 513])
    n = rng.choice([8, 8, 8, 16, 4, 1, 3, 12])  # not only powers of two
    dtype = rng.choice([torch.float32, torch.float16, torch.bfloat16])
    big = rng.random() < 0.4
    flags = {k: rng.random() < 0.6 for k in ("D", "z", "delta_bias", "softplus")}

    def r(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen) * scale

    a_log = r(dim, n, scale=0.5) + (math.log(20) if big else 0.0)  # big: |delta A| up to tens
    A = -torch.exp(a_log)
    if rng.random() < 0.3:  # S4D-real initialisation, as untrained weights
        A = -torch.arange(1, n + 1, dtype=torch.float32).repeat(dim, 1)
    delta = (r(batch, dim, length, scale=0.5) + (1.0 if big else -4.0))
    if not flags["softplus"]:
        delta = delta.abs() * (1.0 if big else 0.01)
    u = r(batch, dim, length)
    dt_rank = rng.randint(1, 12)
    xdbl = r(batch, length, dt_rank + 2 * n)
    xdbl = xdbl.to(dtype)
    B, C = xdbl[..., dt_rank:dt_rank + n].transpose(1, 2), xdbl[..., dt_rank + n:].transpose(1, 2)
    inputs = dict(u=u.to(dtype), delta=delta.to(dtype), A=A, B=B, C=C,
                  D=r(dim) if flags["D"] else None,
                  z=r(batch, dim, length).to(dtype) if flags["z"] else None,
                  # without softplus delta must stay positive, so the bias does too
                  delta_bias=(r(dim, scale=0.5) if flags["softplus"] else r(dim, scale=0.01).abs())
                  if flags["delta_bias"] else None,
                  delta_softplus=flags["softplus"])
    xproj_layout = rng.random() < 0.5
    desc = (f"b{batch} d{dim} L{length} N{n} {str(dtype)[6:]} {'big' if big else 'small'} "
            + " ".join(k for k, v in flags.items() if v) + (f" xproj(r={dt_rank})" if xproj_layout else ""))
    return desc, inputs, xproj_layout, xdbl, dt_rank


def place(inputs, xproj_layout, xdbl, dt_rank, rng, device):
    """The inputs on ``device`` in random layouts; B and C either strided slices of x_proj's output or laid out."""
    out = dict(inputs)
    for key in ("u", "delta", "z"):
        if out[key] is not None:
            out[key] = laid_out(out[key], rng, device)
    n = inputs["A"].shape[1]
    if xproj_layout:
        x = xdbl.to(device)
        out["B"] = x[..., dt_rank:dt_rank + n].transpose(1, 2)
        out["C"] = x[..., dt_rank + n:].transpose(1, 2)
    else:
        out["B"] = laid_out(inputs["B"].contiguous(), rng, device)
        out["C"] = laid_out(inputs["C"].contiguous(), rng, device)
    for key in ("A", "D", "delta_bias"):
        if out[key] is not None:
            out[key] = out[key].to(device)
    return out


def poison_allocator(device, nbytes):
    """Leave NaN in the caching allocator's free blocks, so an output the kernel does not fully write is caught."""
    if device.type == "cuda":
        torch.full((nbytes // 4 + 1024,), float("nan"), device=device)  # freed at once, its NaN left behind


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--impls", nargs="+", default=["ref", "chunked", "doubling"])
    p.add_argument("--cases", type=int, default=100)
    p.add_argument("--seed", type=int, default=None, help="default: the clock")
    p.add_argument("--time-limit", type=float, default=None,
                   help="draw no new case after this many seconds (on CUDA each new shape compiles kernels)")
    p.add_argument("--verbose", action="store_true", help="a line per case")
    p.add_argument("--max-elements", type=int, default=3_000_000, help="skip draws larger than this (CPU time)")
    args = p.parse_args(argv)

    seed = int(time.time()) if args.seed is None else args.seed
    print(f"seed {seed}, device {args.device}, impls {args.impls}")
    rng, gen = random.Random(seed), torch.Generator().manual_seed(seed)
    device = torch.device(args.device)
    worst = {(impl, dt): 0.0 for impl in args.impls for dt in TOL}
    failures, done, start = [], 0, time.time()
    while done < args.cases and (args.time_limit is None or time.time() - start < args.time_limit):
        desc, inputs, xproj_layout, xdbl, dt_rank = draw_case(rng, gen)
        u = inputs["u"]
        if u.numel() * inputs["A"].shape[1] > args.max_elements:
            continue
        ref = reference_f64(**inputs)
        errors = []
        for impl in args.impls:
            placed = place(inputs, xproj_layout, xdbl, dt_rank, rng, device)
            poison_allocator(device, u.numel() * 4)
            raised = ""
            try:
                y = selective_scan(**placed, impl=impl).cpu()
                err, ok = check_output(y, ref, u.dtype)
                ok = ok and y.shape == u.shape
            except Exception as e:  # a refusal is a failure too: every implementation takes every case
                err, ok, raised = float("nan"), False, f" [{type(e).__name__}: {e}]"
            errors.append(f"{impl} {err:.2e}")
            if math.isfinite(err):
                worst[(impl, u.dtype)] = max(worst[(impl, u.dtype)], err)
            if not ok:
                failures.append(f"{impl}: {desc}{raised}: error {err:.3g}")
        done += 1
        if args.verbose:
            print(f"{done:4d} {time.time() - start:6.1f}s {desc}: " + ", ".join(errors), flush=True)
    print(f"{done} cases x {len(args.impls)} implementations: {len(failures)} failed")
    for line in failures[:40]:
        print("  FAIL", line)
    print("| impl | " + " | ".join(str(dt)[6:] for dt in TOL) + " |")
    print("|---|" + "---|" * len(TOL))
    for impl in args.impls:
        print(f"| {impl} | " + " | ".join(f"{worst[(impl, dt)]:.2e}" for dt in TOL) + " |")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
