"""Selective scan on CUDA: correctness of 'triton' and 'chunked' against a float64 reference, then timings.

    python bench/scan.py                 # correctness + timings at MambaVision-T shapes, table last
    python bench/scan.py --smoke         # a few cases, one shape (first check on a new machine)
    python bench/scan.py --correctness   # only the correctness cases of 'triton' and 'chunked' against float64
    python bench/scan.py --correctness --all-kernels --shard 0/8   # and of each kernel 'auto' may pick; case 0::8
    python bench/scan.py --sweep         # also sweep the Triton tile sizes (BLOCK_D, BLOCK_L, warps)
    python bench/scan.py --quick         # a few minutes (no new timing starts after 4): the Triton kernels (seq,
                                         # par) vs float64, copy bandwidth, timings at 160x196 and 320x49,
                                         # batch 128/256, fp16/fp32, tile sweep
    python bench/scan.py --cpu           # CPU: time 'ref' against 'chunked' (chunk lengths) for 'auto'

Bytes counted per call: u, delta, B, C read once and y written once (A, D, delta_bias are negligible). Times are
medians of triton.testing.do_bench (which clears L2 before each run) on the layouts the model passes (delta, B and
C are strided views), and the copy bandwidth is a large device-to-device copy measured in the same run.
"""

import argparse
import itertools
import json
import math
import os
import platform
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from edgemv.ops import selective_scan_chunked, selective_scan_doubling, selective_scan_ref  # noqa: E402
from edgemv.ops.scan_cuda import FormRefusal  # noqa: E402


def scan_f64(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """Independent sequential reference in float64."""
    u, d = u.double(), delta.double()
    if delta_bias is not None:
        d = d + delta_bias.double()[:, None]
    if delta_softplus:
        d = F.softplus(d)
    A, B, C = A.double(), B.double(), C.double()
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for t in range(u.shape[2]):
        h = torch.exp(d[:, :, t, None] * A) * h + (d[:, :, t] * u[:, :, t])[..., None] * B[:, None, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1))
    y = torch.stack(ys, -1)
    if D is not None:
        y = y + u * D.double()[:, None]
    if z is not None:
        y = y * F.silu(z.double())
    return y


def make_inputs(batch, dim, length, dtype, device, big=False, has_d=True, has_z=False, has_bias=True,
                model_layout=True, n=8, gen=None, dt_rank=None):
    """Random inputs; with ``model_layout`` delta, B, C are the strided views MambaVision's mixer passes: B and C
    slices of x_proj's (batch, L, dt_rank + 2 n) output, dt_rank by default the model's, ceil(2 dim / 16) for a
    mixer of dim channels per branch (20 at 160 channels, 40 at 320: rows of B and C 8-byte aligned in 16 and 32 bits;
    before the ninth session these scripts used 5, unaligned)."""
    g = gen
    r = lambda *s: torch.randn(*s, generator=g, device=device)  # noqa: E731
    u = r(batch, dim, length).to(dtype)
    A = -torch.exp(r(dim, n) * 0.5 + (1.0 if big else 0.0))
    if big:  # |delta * A| up to ~50: softplus'd large steps
        delta = (torch.rand(batch, length, dim, generator=g, device=device) * 12).to(dtype)
    else:
        delta = (r(batch, length, dim) - 2.0).to(dtype)
    if not model_layout:
        delta = delta.contiguous()
    delta = delta.transpose(1, 2)
    rank = -(-2 * dim // 16) if dt_rank is None else dt_rank
    xdbl = r(batch, length, rank + 2 * n).to(dtype)
    B, C = xdbl[..., rank:rank + n].transpose(1, 2), xdbl[..., rank + n:].transpose(1, 2)
    if not model_layout:
        delta, B, C = delta.contiguous(), B.contiguous(), C.contiguous()
    D = r(dim) if has_d else None
    z = r(batch, dim, length).to(dtype) if has_z else None
    bias = (r(dim) * 0.5 - (0.0 if big else 1.0)) if has_bias else None
    return dict(u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=bias, delta_softplus=True)


TOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}


def poisoned(u):
    """An output tensor of u's shape and dtype filled with NaN: an element the kernel leaves unwritten fails."""
    return torch.full(u.shape, float("nan"), dtype=u.dtype, device=u.device)


def check_output(y, ref, dtype):
    """(relative L2 error of ``y`` against the float64 reference ``ref``, passed): passed when y has ``dtype`` and
    the error is finite and below ``TOL[dtype]``. The one correctness rule of the bench scripts."""
    err = ((y.double() - ref).norm() / ref.norm().clamp_min(1e-300)).item()
    return err, y.dtype == dtype and math.isfinite(err) and err < TOL[dtype]


def _run_case(impl, inp):
    """'kernel<i>' runs candidate i of edgemv.ops.scan_tune directly; other names go through the custom op's dispatch."""
    from edgemv.ops.op import run_impl

    if impl.startswith("kernel"):
        from edgemv.ops.scan_triton import selective_scan_triton
        from edgemv.ops.scan_tune import candidates

        variant, opts = candidates()[int(impl[len("kernel"):])]
        return selective_scan_triton(**inp, variant=variant, out=poisoned(inp["u"]), **opts)
    return run_impl(impl, **inp)


def correctness_cases(smoke=False):
    """The issue's case set: (batch, dim, L, dtype, big delta, z, D, delta_bias, model layout); every L, dim,
    batch, dtype and option appears."""
    cases = []
    Ls = [1, 2, 7, 49, 64, 196, 256, 1024]
    dims = [8, 160, 320, 784]
    batches = [1, 3, 16]
    dtypes = [torch.float32, torch.float16, torch.bfloat16]
    for i, L in enumerate(Ls):  # covering set: every L, dim, batch, dtype and option appears
        for j, dt in enumerate(dtypes):
            dim = dims[(i + j) % 4]
            b = batches[(i + 2 * j) % 3]
            cases.append((b, dim, L, dt, bool((i + j) % 2), (i + j) % 3 == 0, (i % 2) == 0, j != 1, (i + j) % 2 == 0))
    cases.append((16, 784, 1024, torch.float16, True, True, True, True, True))
    if smoke:
        cases = cases[::5]
    return cases


def correctness(impls, device, smoke=False, shard=(0, 1)):
    g = torch.Generator(device=device)
    g.manual_seed(int(time.time()))
    cases = correctness_cases(smoke)[shard[0]::shard[1]]  # --shard K/N: N processes compile in parallel
    rows, worst, skipped = [], {}, {}
    for (b, dim, L, dt, big, has_z, has_d, has_bias, model_layout) in cases:
        inp = make_inputs(b, dim, L, dt, device, big, has_d, has_z, has_bias, model_layout, gen=g)
        ref = scan_f64(**inp)
        for impl in impls:
            try:
                y = _run_case(impl, inp)
            except FormRefusal:  # the CUDA kernel's rows and short forms take only some inputs: not a failure
                skipped[impl] = skipped.get(impl, 0) + 1
                continue
            err, passed = check_output(y, ref, dt)
            key = (impl, str(dt).split(".")[-1])
            worst[key] = max(worst.get(key, 0.0), err)
            rows.append(dict(impl=impl, batch=b, dim=dim, L=L, dtype=str(dt), big=big, z=has_z, D=has_d,
                             bias=has_bias, err=err, passed=passed))
            if not passed:
                print(f"FAIL {impl} b={b} D={dim} L={L} {dt} big={big} z={has_z} D={has_d} bias={has_bias} "
                      f"model_layout={model_layout} err={err:.3e} dtype_ok={y.dtype == dt}", flush=True)
    n_fail = sum(not r["passed"] for r in rows)
    print(f"correctness: {len(rows) - n_fail}/{len(rows)} passed"
          + (f" (not run, inputs the kernel does not take: {skipped})" if skipped else ""))
    for (impl, dt), e in sorted(worst.items()):
        print(f"  worst rel err {impl:8s} {dt:9s} {e:.2e} (tol {TOL[getattr(torch, dt)]:.0e})")
    return rows, n_fail


def copy_bandwidth(device, mib=512, rep=300):
    """Device-to-device copy bandwidth in GB/s, bytes read + written, of a ``mib`` MiB buffer."""
    from triton.testing import do_bench

    x = torch.empty(mib * 2**20, dtype=torch.uint8, device=device).random_()
    y = torch.empty_like(x)
    ms = do_bench(lambda: y.copy_(x), warmup=50, rep=rep, return_mode="median")
    return 2 * x.numel() / (ms * 1e-3) / 1e9


def scan_bytes(b, dim, L, dtype, n=8):
    e = torch.finfo(dtype).bits // 8
    return e * (3 * b * dim * L + 2 * b * n * L)


def device_time_ms(make_fn, nbytes, reps=20):
    """Median device time of one call, from CUDA-graph replays over rotating input sets.

    The graph runs the call on K different input sets (K * bytes >= 4x the L2 size), so the data come from device
    memory as they would in a model, and launch overhead is out of the number.
    """
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    k = int(min(64, max(2, math.ceil(4 * l2 / nbytes))))
    fns = [make_fn() for _ in range(k)]
    for f in fns:
        f()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for f in fns:
            f()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        graph.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / k)
    del graph
    return sorted(times)[len(times) // 2]


def _fn_for(impl, inp, cfg=None):
    """A call of one implementation; 'triton-par' / 'triton-seq' force a Triton kernel variant ('triton' = default).

    ``cfg``: (BLOCK_D, BLOCK_L, num_warps) for 'seq', (BLOCK_D, num_warps[, poly]) for 'par'.
    """
    from edgemv.ops.scan_triton import selective_scan_triton

    if impl.startswith("triton"):
        variant = impl.split("-")[1] if "-" in impl else None
        if variant == "par":
            bd, nw, poly = (tuple(cfg or ()) + (None, None, None))[:3]
            return lambda: selective_scan_triton(**inp, block_d=bd, num_warps=nw, variant="par", poly=poly)
        bd, bl, nw, pf = (tuple(cfg or ()) + (None,) * 4)[:4]
        return lambda: selective_scan_triton(**inp, block_d=bd, block_l=bl, num_warps=nw, variant=variant,
                                             prefetch=pf)
    if impl == "chunked":
        return lambda: selective_scan_chunked(**inp)
    return lambda: selective_scan_ref(**inp)


# mamba_ssm's CUDA forward kernel at batch 128 fp16 on an H200, in ms (issue 3's bar, measured by the issue's author)
MAMBA_SSM_MS = {(160, 196): 0.121, (320, 49): 0.131}


def vs_mamba_ssm(dim, L, batch, dtype, ms):
    """'1.9x': the speed-up over mamba_ssm's kernel of a time of ``ms``, where its time is known (MAMBA_SSM_MS's
    shapes, batch 128, dtype 'float16'); '' otherwise."""
    bar = MAMBA_SSM_MS.get((dim, L))
    return f"{bar / ms:.1f}x" if bar and batch == 128 and dtype == "float16" else ""


def print_table(rows, show_tile):
    """The timing rows as a Markdown table (for docs/benchmarks.md), with the speed-up over mamba_ssm's kernel."""
    tile_head, tile_rule = ("tile | ", "---|") if show_tile else ("", "")
    print(f"\n| kernel | D x L | batch | dtype | {tile_head}device time (us) | eager call (us) | GB/s | % of copy "
          "| vs mamba_ssm b128 fp16 |")
    print(f"|---|---|---|---|{tile_rule}---|---|---|---|---|")
    for r in rows:
        speed = vs_mamba_ssm(r["dim"], r["L"], r["batch"], r["dtype"], r["ms"])
        tile = f"{r['cfg']} | " if show_tile else ""
        print(f"| {r['impl']} | {r['dim']} x {r['L']} | {r['batch']} | {r['dtype']} | {tile}{r['ms'] * 1e3:.1f} | "
              f"{r['eager_ms'] * 1e3:.1f} | {r['gbs']:.0f} | {100 * r['frac_copy']:.1f}% | {speed} |")


def timings(device, impls, batches, shapes, dtypes, copy_gbs):
    """Device time (graph replays, rotating inputs) and eager time (do_bench: launch overhead included)."""
    from triton.testing import do_bench

    from edgemv.ops.scan_triton import pick_config

    rows = []
    for (dim, L), b, dt, impl in itertools.product(shapes, batches, dtypes, impls):
        if impl == "ref" and (b != 128 or dt != torch.float16):
            continue
        nbytes = scan_bytes(b, dim, L, dt)
        ms = device_time_ms(lambda: _fn_for(impl, make_inputs(b, dim, L, dt, device)), nbytes,
                            reps=20 if impl != "ref" else 3)
        inp = make_inputs(b, dim, L, dt, device)
        eager = do_bench(_fn_for(impl, inp), warmup=25, rep=100 if impl != "ref" else 20, return_mode="median")
        gbs = nbytes / (ms * 1e-3) / 1e9
        rows.append(dict(impl=impl, dim=dim, L=L, batch=b, dtype=str(dt).split(".")[-1], ms=ms, eager_ms=eager,
                         gbs=gbs, frac_copy=gbs / copy_gbs,
                         config=pick_config(dim, L) if impl == "triton" else None))
        print(f"  {impl:8s} {dim}x{L} b={b} {rows[-1]['dtype']:8s} device {ms*1e3:8.1f} us  eager {eager*1e3:8.1f} us"
              f"  {gbs:6.0f} GB/s {100*gbs/copy_gbs:5.1f}% of copy", flush=True)
    return rows


def sweep(device, shapes, batch=256, dtype=torch.float16):
    """--sweep: the tiles (BLOCK_D, BLOCK_L, warps) of SEQ_SWEEP with prefetch distance 2 (the default)."""
    rows = []
    for (dim, L) in shapes:
        nbytes = scan_bytes(batch, dim, L, dtype)
        for cfg in [c[:3] for c in SEQ_SWEEP if c[3] == 2]:
            try:
                ms = device_time_ms(lambda: _fn_for("triton-seq", make_inputs(batch, dim, L, dtype, device), cfg),
                                    nbytes, reps=10)
            except Exception as exc:  # out of resources etc.
                print(f"  sweep {dim}x{L} {cfg}: {type(exc).__name__}: {str(exc)[:100]}", flush=True)
                continue
            rows.append(dict(dim=dim, L=L, batch=batch, cfg=cfg, ms=ms))
            print(f"  sweep {dim}x{L} b={batch} BLOCK_D,BLOCK_L,warps={cfg}: {ms*1e3:7.1f} us", flush=True)
    return rows


def cpu_auto(threads):
    torch.set_num_threads(threads)

    def tmin(f, n=9):
        f()
        ts = []
        for _ in range(n):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
        return min(ts) * 1e3

    print(f"CPU, {threads} threads, torch {torch.__version__}: min of 9 runs, ms")
    for (dim, L), b in itertools.product(((160, 196), (320, 49), (160, 1024), (320, 256)), (1, 8, 32)):
        inp = make_inputs(b, dim, L, torch.float32, "cpu")
        row = [f"ref {tmin(lambda: selective_scan_ref(**inp)):7.2f}",
               f"doubling {tmin(lambda: selective_scan_doubling(**inp)):7.2f}"]
        if b <= 8:
            for c in (7, 10, 16):
                if c <= L:
                    row.append(f"c{c} {tmin(lambda: selective_scan_chunked(**inp, chunk=c)):7.2f}")
        print(f"{dim}x{L} b={b}: " + "  ".join(row), flush=True)


QUICK_CASES = [  # (batch, dim, L, dtype, big, has_z, has_d, has_bias, model_layout)
    (3, 160, 196, torch.float16, True, False, True, True, True),
    (16, 320, 49, torch.float32, False, True, True, True, True),
    (2, 8, 1, torch.float32, True, True, False, False, False),
    (3, 160, 7, torch.bfloat16, False, False, True, True, True),
    (2, 320, 1024, torch.float16, True, False, True, True, False),
    (1, 8, 2048, torch.float32, False, True, True, True, True),
]
# tile sweep of the sequential kernel: (BLOCK_D, BLOCK_L, num_warps, L1 prefetch distance in trips)
SEQ_SWEEP = [(64, 8, 1, 2), (32, 8, 1, 2), (64, 8, 1, 1), (64, 8, 2, 2), (128, 8, 4, 2), (64, 4, 1, 2),
             (64, 8, 1, 0)]


def quick(device, out_dir, budget_s=240.0):
    """One short run: both Triton variants against float64 (poisoned outputs), copy bandwidth, timings, tile sweep.

    Stops starting new timings after ``budget_s`` seconds so the table always comes out.
    """
    import triton
    from triton.testing import do_bench

    from edgemv.ops.scan_triton import pick_config, pick_par_config, selective_scan_triton

    t0 = time.time()
    name = torch.cuda.get_device_name()
    print(f"{name}, torch {torch.__version__}, triton {triton.__version__}, CUDA {torch.version.cuda}", flush=True)
    g = torch.Generator(device=device)
    g.manual_seed(1234)
    corr, n_fail = [], 0
    for (b, dim, L, dt, big, has_z, has_d, has_bias, layout) in QUICK_CASES:
        inp = make_inputs(b, dim, L, dt, device, big, has_d, has_z, has_bias, layout, gen=g)
        ref = scan_f64(**inp)
        for variant in ("par", "seq"):
            if variant == "seq" and L > 1024:
                continue
            try:
                y = selective_scan_triton(**inp, variant=variant, out=poisoned(inp["u"]))
                torch.cuda.synchronize()
                err, ok = check_output(y, ref, dt)
            except Exception as exc:
                print(f"ERROR {variant} {b}x{dim}x{L}: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
                err, ok = float("nan"), False
            n_fail += not ok
            corr.append(dict(variant=variant, batch=b, dim=dim, L=L, dtype=str(dt), big=big, z=has_z,
                             model_layout=layout, err=err, passed=ok))
            print(f"  {'ok  ' if ok else 'FAIL'} {variant} b={b} {dim}x{L} {str(dt)[6:]:8s} big={big:d} z={has_z:d} "
                  f"D={has_d:d} bias={has_bias:d} strided={layout:d} rel err {err:.2e} (tol {TOL[dt]:.0e})"
                  f"  [{time.time() - t0:.0f}s]", flush=True)
    copy_gbs = copy_bandwidth(device, mib=256, rep=100)
    print(f"device-to-device copy: {copy_gbs:.0f} GB/s (read + write)  [{time.time() - t0:.0f}s]", flush=True)
    rows = []
    shapes, f16, f32 = ((160, 196), (320, 49)), torch.float16, torch.float32
    # most wanted first (the time budget cuts the tail): the default kernel at every shape/batch/dtype, then the
    # tile sweep, then 'par' for comparison
    plan = [("triton-seq", sh, b, dt, None) for sh in shapes for b in (128, 256) for dt in (f16, f32)]
    plan += [("triton-seq", sh, b, f16, cfg) for sh in shapes for b in (128, 256) for cfg in SEQ_SWEEP[1:]]
    plan += [("triton-par", sh, 128, f16, None) for sh in shapes]
    for impl, (dim, L), b, dt, cfg in plan:
        if time.time() - t0 > budget_s:
            print(f"  time budget reached: skipped {impl} {dim}x{L} b={b} {dt} {cfg}", flush=True)
            continue
        nbytes = scan_bytes(b, dim, L, dt)
        try:
            ms = device_time_ms(lambda: _fn_for(impl, make_inputs(b, dim, L, dt, device), cfg), nbytes, reps=10)
            eager = do_bench(_fn_for(impl, make_inputs(b, dim, L, dt, device), cfg), warmup=10, rep=40,
                             return_mode="median")
        except Exception as exc:
            print(f"  {impl} {dim}x{L} {cfg}: {type(exc).__name__}: {str(exc)[:200]}", flush=True)
            continue
        gbs = nbytes / (ms * 1e-3) / 1e9
        if impl == "triton-par":
            cfg = cfg or pick_par_config(dim, L)
        elif cfg is None:
            cfg = pick_config(dim, L)
        rows.append(dict(impl=impl, dim=dim, L=L, batch=b, dtype=str(dt).split(".")[-1], ms=ms, eager_ms=eager,
                         gbs=gbs, frac_copy=gbs / copy_gbs, cfg=cfg))
        print(f"  {impl:10s} {dim}x{L} b={b} {rows[-1]['dtype']:8s} cfg={cfg} device {ms * 1e3:7.1f} us  eager "
              f"{eager * 1e3:7.1f} us  {gbs:5.0f} GB/s {100 * gbs / copy_gbs:5.1f}%  [{time.time() - t0:.0f}s]",
              flush=True)
    with open(os.path.join(out_dir, "scan_quick.json"), "w") as f:
        json.dump(dict(device=name, torch=torch.__version__, triton=triton.__version__, copy_gbs=copy_gbs,
                       correctness=corr, timings=rows), f, indent=1)
    print_table(rows, show_tile=True)
    print(f"\ncopy bandwidth {copy_gbs:.0f} GB/s; correctness {len(corr) - n_fail}/{len(corr)} passed; {name}; "
          f"{time.time() - t0:.0f}s")
    return n_fail


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--cpu", action="store_true")
    ap.add_argument("--quick", action="store_true", help="one short run: Triton variants, copy bandwidth, table")
    ap.add_argument("--correctness", action="store_true", help="only the correctness cases ('triton', 'chunked')")
    ap.add_argument("--all-kernels", action="store_true",
                    help="correctness also of every N = 8 kernel 'auto' may pick (edgemv.ops.scan_tune.candidates(): the CUDA C++ kernel too where nvcc is found)")
    ap.add_argument("--shard", default="0/1", help="K/N: only every N-th correctness case from the K-th")
    ap.add_argument("--impls", nargs="*", default=["triton", "chunked", "ref"],
                    help="the implementations timed in the table (correctness always checks 'triton' and 'chunked')")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    args = ap.parse_args()
    if args.cpu:
        cpu_auto(args.threads)
        return
    if args.quick:
        sys.exit(1 if quick("cuda", args.out) else 0)
    import triton

    device = "cuda"
    name = torch.cuda.get_device_name()
    print(f"{name}, torch {torch.__version__}, triton {triton.__version__}, CUDA {torch.version.cuda}, "
          f"python {platform.python_version()}", flush=True)
    impls = ["triton", "chunked"]
    if args.all_kernels:
        from edgemv.ops.scan_tune import candidates

        impls += [f"kernel{i}" for i in range(len(candidates()))]
    shard = tuple(int(v) for v in args.shard.split("/"))
    rows, n_fail = correctness(impls, device, smoke=args.smoke, shard=shard)
    if args.correctness:
        sys.exit(1 if n_fail else 0)
    copy_gbs = copy_bandwidth(device)
    print(f"device-to-device copy: {copy_gbs:.0f} GB/s (read + write)", flush=True)
    shapes = ((160, 196), (320, 49))
    batches = (128,) if args.smoke else (64, 128, 256)
    dtypes = (torch.float16,) if args.smoke else (torch.float16, torch.float32)
    impls = ("triton",) if args.smoke else tuple(args.impls)
    srows = sweep(device, shapes) if args.sweep else []
    trows = timings(device, impls, batches, shapes, dtypes, copy_gbs)
    with open(os.path.join(args.out, "scan_bench.json"), "w") as f:
        json.dump(dict(device=name, torch=torch.__version__, triton=triton.__version__, copy_gbs=copy_gbs,
                       correctness=rows, timings=trows, sweep=srows), f, indent=1)
    print_table(trows, show_tile=False)
    print(f"\ncopy bandwidth {copy_gbs:.0f} GB/s; correctness {len(rows) - n_fail}/{len(rows)} passed; {name}")
    sys.exit(1 if n_fail else 0)


if __name__ == "__main__":
    main()
