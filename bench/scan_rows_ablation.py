"""Where the rows form's (or the short form's) time goes: the kernel with one part left out at a time (its results
are then wrong; only the time is read), fp16 on the model's layout, batch 128 and 256, on one GPU: the rows form at
160 x 196, the short form at 320 x 49.

Each variant is the library's source (edgemv/ops/cuda) copied into a temporary folder with one textual change, built
with nvcc and launched with the same parameter block as the library's own form; the differences of the times say
what each part costs (docs/benchmarks.md). Nothing here changes the library.

    python bench/scan_rows_ablation.py
    python bench/scan_rows_ablation.py --form short
"""

import argparse

import concurrent.futures
import ctypes
import os
import shutil
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from scan import copy_bandwidth, device_time_ms, scan_bytes  # noqa: E402
from scan_rows import rows_inputs  # noqa: E402

from edgemv.ops import scan_cuda  # noqa: E402

ROWS, SHORT = "scan_rows.cuh", "scan_short.cuh"
# the step both forms call (scan_rows.cuh): its shuffle adds the other lane's states
NO_SHUFFLE = [(ROWS, "return acc + __shfl_xor_sync(0xffffffffu, acc, 1);  // the other lane's states", "return acc;")]
# variant: [(header, text in it, its replacement)]
ROWS_ABLATIONS = {
    "as shipped": [],
    "no y stores": [(ROWS, "if (y_off[j] >= 0 && grp < nv)", "if (y_off[j] >= 0 && grp < nv && s_y[0].x == 12345u)")],
    "no softplus (delta + bias only)": [
        (ROWS, "step_size<E, SOFTPLUS>(x[e] + bias[e])", "(x[e] + bias[e])"),
        (ROWS, "step_size<E, SOFTPLUS>(x[e] + bias[0])", "(x[e] + bias[0])")],
    "no B, C loads (constants staged)": [
        (ROWS, "if (FULL || t0 + 2 * k + bc_step < length) r.bc[k] = q2[k * two_steps];",
         "r.bc[k] = from_f<E>(0.01f * k);"),
        (ROWS, "r.bc[n] = bp[n * sbn];", "r.bc[n] = from_f<E>(0.01f * n);"),
        (ROWS, "r.bc[N + n] = cp[n * scn];", "r.bc[N + n] = from_f<E>(0.02f * n);")],
    "no u loads (constants)": [
        (ROWS, "if (FULL || grp < nv) r.u[j] = *reinterpret_cast<const uint2*>(u_t0 + u_off[j]);",
         "if (FULL || grp < nv) r.u[j] = make_uint2(0x3c003c00u + j, 0x3c003c00u);")],
    "no delta loads (constants)": [
        (ROWS, "if (FULL || t0 + dt_step + k * ROW_STEPS < length) r.dt[k] = *reinterpret_cast<const uint2*>(q);",
         "if (FULL || t0 + dt_step + k * ROW_STEPS < length) r.dt[k] = make_uint2(0xbc00bc00u + k, 0xbc00bc00u);")],
    "no shuffle (each lane's 4 states only)": NO_SHUFFLE,
    "no B, C shared reads (the first two steps' values for all)": [
        (ROWS, "if (t + 1 < TT) read_bc(s_bc, t + 1, part, ring[(t + 1) & 1]);",
         "if (t + 1 < TT && t == 0) read_bc(s_bc, t + 1, part, ring[(t + 1) & 1]);")],
}
SHORT_ABLATIONS = {
    "as shipped": [],
    "no scan (load, stage, store)": [
        (SHORT, "  for (; t0 + GROUP <= length; t0 += GROUP) {", "  for (; t0 < 0; t0 += GROUP) {"),
        (SHORT, "  for (int t = t0; t < length; ++t) {", "  for (int t = length; t < length; ++t) {")],
    "no y stores": [(SHORT, "if (word < words) reinterpret_cast<uint2*>(y_run)[word]",
                     "if (word < words && h[0] == 12345.0f) reinterpret_cast<uint2*>(y_run)[word]")],
    "no softplus (delta + bias only)": [
        (SHORT, "step_size<E, SOFTPLUS>(x[e] + bias[e])", "(x[e] + bias[e])")],
    "no B, C loads (constants staged)": [  # the 8-byte groups (the model's aligned rows) and a value per lane
        (SHORT, "const uint2 w = *reinterpret_cast<const uint2*>(q + k * stride);",
         "const uint2 w = make_uint2(0x3c003c00u + k, 0x3c003c00u);"),
        (SHORT, "bc[k] = to_bits(q[2 * k * sl]);", "bc[k] = to_bits(from_f<E>(0.01f * k));")],
    "no u loads (constants)": [
        (SHORT, "if (lane + i * WARP < words) uw[i] = reinterpret_cast<const uint2*>(u_run)[lane + i * WARP];",
         "uw[i] = make_uint2(0x3c003c00u + i, 0x3c003c00u);")],
    "no delta loads (constants)": [
        (SHORT, "if (in && dt_step + k * ROW_STEPS < length) dw[k] = "
         "*reinterpret_cast<const uint2*>(q + k * ROW_STEPS * p.sdt_l);",
         "dw[k] = make_uint2(0xbc00bc00u + k, 0xbc00bc00u);")],
    "no shuffle (each lane's 4 states only)": NO_SHUFFLE,
}
FORMS = {  # form: (ablations, entry point, shape, _checked_params options)
    "rows": (ROWS_ABLATIONS, "edgemv_scan_rows_cuda", (160, 196), {"rows": True, "short": False}),
    "short": (SHORT_ABLATIONS, "edgemv_scan_short_cuda", (320, 49), {"rows": False, "short": True}),
}


def missing_texts(source_dir=scan_cuda.SOURCE_DIR):
    """(form, variant, header, text) of every change whose text the sources no longer hold (none when the
    ablations still follow the kernels; tests/test_bench_ablation.py checks that on the CPU)."""
    missing = []
    for form, (ablations, *_) in FORMS.items():
        for label, changes in ablations.items():
            for header, old, _new in changes:
                with open(os.path.join(source_dir, header)) as f:
                    if old not in f.read():
                        missing.append((form, label, header, old))
    return missing


def build_variant(label, changes, root, entry):
    folder = os.path.join(root, label.replace(" ", "_").replace(",", "").replace("(", "").replace(")", ""))
    shutil.copytree(scan_cuda.SOURCE_DIR, folder)
    for header, old, new in changes:
        path = os.path.join(folder, header)
        with open(path) as f:
            text = f.read()
        if old not in text:
            raise SystemExit(f"{label}: the text to change is not in {header} any more: {old!r}")
        with open(path, "w") as f:
            f.write(text.replace(old, new))
    arch = scan_cuda.arch(torch.device("cuda"))
    so = scan_cuda.build(scan_cuda.nvcc(), [f"-arch={arch}", "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC"],
                         os.path.join(folder, "selective_scan_n8.cu"), "ablation", include_dirs=(folder,))
    lib = ctypes.CDLL(so)
    scan_cuda.check_params(lib)
    fn = getattr(lib, entry)
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    return fn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--form", choices=list(FORMS), default="rows")
    args = ap.parse_args()
    ablations, entry, (dim, length), opts = FORMS[args.form]
    root = tempfile.mkdtemp()
    with concurrent.futures.ThreadPoolExecutor(len(ablations)) as pool:
        fns = dict(zip(ablations, pool.map(lambda kv: build_variant(kv[0], kv[1], root, entry),
                                           ablations.items())))
    copy_gbs = copy_bandwidth("cuda", mib=256, rep=100)
    print(f"{torch.cuda.get_device_name()}, copy bandwidth {copy_gbs:.0f} GB/s\n")
    print(f"| variant ({args.form} form, {dim} x {length} fp16, model's layout) | b128 (us) | b256 (us) |")
    print("|---|---|---|")
    g = torch.Generator(device="cuda").manual_seed(1)
    for label, fn in fns.items():
        cells = []
        for batch in (128, 256):
            def make():
                inp = rows_inputs(batch, dim, length, torch.float16, layout="model", gen=g)
                out = torch.empty_like(inp["u"])
                p, y, keep = scan_cuda._checked_params(**inp, out=out, lanes=2, **opts)

                def call():
                    scan_cuda.launch(fn, p, inp["u"], 2)
                    return keep, y
                return call
            cells.append(f"{device_time_ms(make, scan_bytes(batch, dim, length, torch.float16)) * 1e3:.1f}")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
