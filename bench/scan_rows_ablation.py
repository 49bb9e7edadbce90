"""Where the rows form's time goes: the kernel with one part left out at a time (its results are then wrong; only
the time is read), at 160 x 196 fp16 on the model's layout, batch 128 and 256, on one GPU.

Each variant is the library's source (edgemv/ops/cuda) copied into a temporary folder with one textual change, built
with nvcc and launched with the same parameter block as the library's own rows form; the differences of the times
say what each part costs (docs/benchmarks.md). Nothing here changes the library.

    python bench/scan_rows_ablation.py
"""

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

# variant: [(text in scan_rows.cuh, its replacement)]
ABLATIONS = {
    "as shipped": [],
    "no y stores": [("if (y_off[j] >= 0 && grp < nv)", "if (y_off[j] >= 0 && grp < nv && s_y[0].x == 12345u)")],
    "no softplus (delta + bias only)": [
        ("step_size<E, SOFTPLUS>(x[e] + bias[e])", "(x[e] + bias[e])"),
        ("step_size<E, SOFTPLUS>(x[e] + bias[0])", "(x[e] + bias[0])")],
    "no B, C loads (constants staged)": [
        ("r.bc[k] = (FULL || t0 + 2 * k + bc_step < length) ? q2[k * two_steps] : from_f<E>(0.0f);",
         "r.bc[k] = from_f<E>(0.01f * k);"),
        ("r.bc[n] = in ? bp[n * sbn] : from_f<E>(0.0f);", "r.bc[n] = from_f<E>(0.01f * n);"),
        ("r.bc[N + n] = in ? cp[n * scn] : from_f<E>(0.0f);", "r.bc[N + n] = from_f<E>(0.02f * n);")],
    "no u loads (constants)": [
        ("if (FULL || grp < nv) r.u[j] = *reinterpret_cast<const uint2*>(u_t0 + u_off[j]);",
         "if (FULL || grp < nv) r.u[j] = make_uint2(0x3c003c00u + j, 0x3c003c00u);")],
    "no delta loads (constants)": [
        ("if (FULL || t0 + dt_step + k * ROW_STEPS < length) r.dt[k] = *reinterpret_cast<const uint2*>(q);",
         "if (FULL || t0 + dt_step + k * ROW_STEPS < length) r.dt[k] = make_uint2(0xbc00bc00u + k, 0xbc00bc00u);")],
    "no shuffle (each lane's 4 states only)": [
        ("acc += __shfl_xor_sync(0xffffffffu, acc, 1);", "")],
    "no B, C shared reads (the first two steps' values for all)": [
        ("if (t + 1 < TT) read_step(t + 1, ring[(t + 1) & 1]);",
         "if (t + 1 < TT && t == 0) read_step(t + 1, ring[(t + 1) & 1]);")],
}


def build_variant(label, changes, root):
    folder = os.path.join(root, label.replace(" ", "_").replace(",", "").replace("(", "").replace(")", ""))
    shutil.copytree(scan_cuda.SOURCE_DIR, folder)
    path = os.path.join(folder, "scan_rows.cuh")
    with open(path) as f:
        text = f.read()
    for old, new in changes:
        if old not in text:
            raise SystemExit(f"{label}: the text to change is not in scan_rows.cuh any more: {old!r}")
        text = text.replace(old, new)
    with open(path, "w") as f:
        f.write(text)
    arch = scan_cuda.arch(torch.device("cuda"))
    so = scan_cuda.build(scan_cuda.nvcc(), [f"-arch={arch}", "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC"],
                         os.path.join(folder, "selective_scan_n8.cu"), "ablation", include_dirs=(folder,))
    lib = ctypes.CDLL(so)
    scan_cuda.check_params(lib)
    lib.edgemv_scan_rows_cuda.restype = ctypes.c_int
    lib.edgemv_scan_rows_cuda.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    return lib


def main():
    root = tempfile.mkdtemp()
    with concurrent.futures.ThreadPoolExecutor(len(ABLATIONS)) as pool:
        libs = dict(zip(ABLATIONS, pool.map(lambda kv: build_variant(kv[0], kv[1], root), ABLATIONS.items())))
    copy_gbs = copy_bandwidth("cuda", mib=256, rep=100)
    print(f"{torch.cuda.get_device_name()}, copy bandwidth {copy_gbs:.0f} GB/s\n")
    print("| variant (160 x 196 fp16, model's layout) | b128 (us) | b256 (us) |\n|---|---|---|")
    g = torch.Generator(device="cuda").manual_seed(1)
    for label, lib in libs.items():
        cells = []
        for batch in (128, 256):
            def make():
                inp = rows_inputs(batch, 160, 196, torch.float16, layout="model", gen=g)
                out = torch.empty_like(inp["u"])
                p, y, keep = scan_cuda._checked_params(**inp, out=out, lanes=2, rows=True)

                def call():
                    scan_cuda.launch(lib.edgemv_scan_rows_cuda, p, inp["u"], 2)
                    return keep, y
                return call
            cells.append(f"{device_time_ms(make, scan_bytes(batch, 160, 196, torch.float16)) * 1e3:.1f}")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
