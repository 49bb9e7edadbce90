"""Which N = 8 Triton scan kernel 'auto' runs: measured once per problem on the GPU at hand, then remembered.

The fastest kernel depends on the shape, the batch, the input layout (the model passes strided views; other callers
contiguous tensors) and the GPU: on an H200 the register-pipelined kernel is 1.6x faster than the prefetching one at
320 x 49 batch 256 and slower at 160 x 196 batch 128, and the lanes kernel wins only on contiguous inputs
(docs/benchmarks.md). A fixed table from one card would be wrong on a Jetson, so the first call of a problem times
every candidate on its own inputs (device time from CUDA-graph replays, ``triton.testing.do_bench_cudagraph``) and
keeps the fastest, in memory and in a JSON file
(``$EDGEMV_CACHE_DIR`` or ``~/.cache/edgemv``, ``scan_tuning.json``), keyed by GPU, dtype, sizes, options and which
strides are 1. The first call of a new problem therefore compiles and times the candidates (seconds each; with six
candidates the first eager forward of MambaVision-T took 59 s on an H200, with three fewer); later processes read
the file.
Where the CUDA C++ kernel is available (edgemv.ops.scan_cuda: nvcc found, ``EDGEMV_SCAN_CUDA`` not 0) it is a
candidate too: its staged form with 2 and 4 lanes per channel, its rows form (u contiguous along L) and its short
form (L up to 64, u contiguous) with 2; the file key says whether it was, so a choice made without it is not reused
where it could win. On a GPU's first call its build (nvcc, a separate process) starts in a thread while the Triton
candidates compile (together, in a thread pool: ``scan_triton.precompile``) and are timed.
A call made while a CUDA graph is being captured cannot time anything and takes the default 'seq';
``EDGEMV_SCAN_TUNE=0`` switches tuning off (always 'seq').
"""

import functools
import json
import logging
import os

import torch

from ..atomic import write_json_atomic

__all__ = ["CANDIDATES", "CUDA_CANDIDATES", "CUDA_KEY", "DEFAULT", "candidates", "choose", "run_choice", "tuning_file"]

log = logging.getLogger(__name__)

# (variant, options of selective_scan_triton); the first is the default when nothing can be measured. These three
# were the fastest at one or more of the 8 problems measured on an H200 (2 shapes x batch 128/256 x the model's and
# contiguous layouts, docs/benchmarks.md); pipe(64, tile) and the 'lanes' kernels never were, and each candidate
# costs a compile and a timing on a problem's first call, so they are left out (still callable by name).
CANDIDATES = (
    ("seq", {"block_d": 64}),
    ("pipe", {"block_d": 64}),
    ("pipe", {"block_d": 32, "tile": True}),
)
# the CUDA C++ kernel (selective_scan_triton's variant 'cuda'). Its rows form with 2 lanes per channel was the
# fastest kernel at 160 x 196 on an H200 in every layout (5.2x mamba_ssm's time at batch 128 fp16 on the model's);
# it takes only L a multiple of 4 (16-bit) or 2 (fp32) and u contiguous along L, so the staged form stays for the
# rest (with 4 lanes the fastest on contiguous 320 x 49; docs/benchmarks.md). The rows form with 1 lane per channel
# was slower everywhere and is not built. The short form reads u and y as one contiguous run per block, whatever L is:
# written for MambaVision's last level (L = 49), which the rows form cannot take in 16 bits.
# Where a candidate cannot take the inputs its timing fails and it is not an option.
CUDA_CANDIDATES = (
    ("cuda", {"lanes": 2}),
    ("cuda", {"lanes": 4}),
    ("cuda", {"lanes": 2, "rows": True}),
    ("cuda", {"lanes": 2, "short": True}),
)
# in the tuning file's key: which CUDA candidates were timed (a choice made among fewer is made again)
CUDA_KEY = "|cuda-rows-short"

DEFAULT = CANDIDATES[0]
_memory = {}


def candidates() -> tuple:
    """'auto''s candidates in this process: the Triton kernels, and the CUDA C++ kernel where it is available."""
    from . import scan_cuda

    return CANDIDATES + (CUDA_CANDIDATES if scan_cuda.available() else ())


def tuning_file() -> str:
    root = os.environ.get("EDGEMV_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "edgemv")
    return os.path.join(root, "scan_tuning.json")


@functools.lru_cache(maxsize=None)
def _gpu_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def _problem(u, delta, B, C, D, z, delta_bias, delta_softplus) -> tuple:
    # what the choice depends on, cheap to build (this runs on every call of the op): device, dtypes (u's, and
    # delta's, B's and C's where they differ from it: the CUDA C++ kernel takes one dtype only), sizes, options,
    # which strides are 1
    dtype = u.dtype if u.dtype == delta.dtype == B.dtype == C.dtype else (u.dtype, delta.dtype, B.dtype, C.dtype)
    return (u.device, dtype, tuple(u.shape),
            (D is not None, z is not None, delta_bias is not None, bool(delta_softplus)),
            tuple(s == 1 for s in (*u.stride(), *delta.stride(), *B.stride(), *C.stride())))


def _file_key(problem: tuple, cands: tuple) -> str:
    # the problem as the tuning file names it (the GPU by name: the file outlives the process), and whether the
    # CUDA C++ kernel was among the candidates
    device, dtype, (batch, dim, length), flags, ones = problem
    dtypes = "/".join(str(d)[6:] for d in (dtype if isinstance(dtype, tuple) else (dtype,)))
    return (f"{_gpu_name(device)}|{dtypes}|{batch}x{dim}x{length}|{''.join('1' if f else '0' for f in flags)}"
            f"|{''.join('1' if o else 's' for o in ones)}" + (CUDA_KEY if len(cands) > len(CANDIDATES) else ""))


def _load_file() -> dict:
    try:
        with open(tuning_file()) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save(key, choice):
    # merge with what other processes wrote, then replace the file in one rename (never a half-written file)
    try:
        data = _load_file()
        data[key] = choice
        write_json_atomic(tuning_file(), data)
    except OSError as exc:  # a read-only home: keep the choice in memory only
        log.debug("scan tuning not saved: %s", exc)


def _as_choice(entry, cands):
    try:
        variant, opts = entry["variant"], dict(entry["options"])
    except (KeyError, TypeError):
        return None
    return (variant, opts) if any(variant == v and opts == o for v, o in cands) else None


def choose(run, u, delta, B, C, D, z, delta_bias, delta_softplus, timer=None, precompile=None):
    """(variant, options) for this problem; ``run(variant, options, out)`` runs one candidate.

    ``timer(fn)`` gives fn's time in ms (default: ``triton.testing.do_bench_cudagraph``, median).
    ``precompile(candidates, out)``, where given, compiles the Triton candidates together before the timings
    (scan_triton.precompile: in parallel, instead of one by one as each is first timed).
    """
    if os.environ.get("EDGEMV_SCAN_TUNE", "1") == "0":
        return DEFAULT
    problem = _problem(u, delta, B, C, D, z, delta_bias, delta_softplus)
    if problem in _memory:
        return _memory[problem]
    cands = candidates()
    key = _file_key(problem, cands)
    saved = _as_choice(_load_file().get(key), cands)
    if saved is not None:
        _memory[problem] = saved
        return saved
    if u.is_cuda and torch.cuda.is_current_stream_capturing():
        return DEFAULT  # nothing can be timed inside a capture; not remembered, so a later eager call still tunes
    if timer is None:
        from triton.testing import do_bench_cudagraph

        def timer(fn):
            # device time, from replays of a CUDA graph of many calls: timed call by call (do_bench), the CUDA
            # kernel's host cost (about 35 us per ctypes launch) hid its device time and 'auto' took a kernel 1.5x
            # slower (docs/benchmarks.md)
            return do_bench_cudagraph(fn, rep=20, return_mode="median")

    scratch = torch.empty(u.shape, device=u.device, dtype=u.dtype)
    building = _build_beside(u.device) if u.is_cuda and len(cands) > len(CANDIDATES) else None
    if precompile is not None:
        precompile([c for c in cands if c[0] != "cuda"], scratch)
    times = {}
    for i, (variant, opts) in enumerate(cands):
        if variant == "cuda" and building is not None:
            building.join()
            building = None
        try:
            times[i] = timer(lambda: run(variant, opts, scratch))
        except Exception as exc:  # e.g. out of registers on a smaller GPU: that candidate is not an option there
            log.debug("scan candidate %s %s failed: %s", variant, opts, exc)
    best = cands[min(times, key=times.get)] if times else DEFAULT
    log.info("selective scan %s: %s %s (%s)", key, best[0], best[1],
             ", ".join(f"{cands[i][0]}{cands[i][1]} {t * 1e3:.1f} us" for i, t in times.items()))
    _memory[problem] = best
    _save(key, {"variant": best[0], "options": best[1],
                "times_us": {f"{cands[i][0]} {json.dumps(cands[i][1], sort_keys=True)}": round(t * 1e3, 2)
                             for i, t in times.items()}})
    return best


def _build_beside(device):
    """Start the CUDA C++ kernel's build in a thread (returned), so that nvcc (a separate process: 12 s on 16 cores, 30
    or more on fewer) runs while the Triton candidates, which come first, compile and are timed. A built library
    returns at once; a failed build is logged by scan_cuda and leaves its candidates out."""
    import threading

    from . import scan_cuda

    def build():
        try:
            scan_cuda.library(device)
        except Exception:  # noqa: BLE001 - reported by scan_cuda.library; its candidates then fail to time
            pass

    thread = threading.Thread(target=build, name="edgemv-scan-cuda-build", daemon=True)
    thread.start()
    return thread


def run_choice(run, choice, out):
    """``run(variant, options, out)`` for the chosen kernel. A problem's choice is keyed by which strides are 1, not
    by their size, so a remembered 'cuda' choice can meet inputs the CUDA kernel cannot index (a stride of 2^25
    elements or more; for its rows and short forms also rows or sequences that are not 8-byte aligned); those run the
    staged CUDA kernel (for a rows or short choice) or the default kernel instead of failing."""
    variant, opts = choice
    try:
        return run(variant, opts, out)
    except ValueError as exc:
        if variant != "cuda":
            raise
        # the rows and short forms also need 8-byte aligned rows (the short form: sequences), which the key does not
        # record either: the staged form next
        fallback = ("cuda", {"lanes": opts["lanes"]}) if opts.get("rows") or opts.get("short") else DEFAULT
        log.debug("CUDA scan kernel refused this call (%s); running %s", exc, fallback)
        return run_choice(run, fallback, out)
