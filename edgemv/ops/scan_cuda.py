"""The N = 8 selective scan as a CUDA C++ kernel (``edgemv/ops/cuda/selective_scan_n8.cu``), built with nvcc on first
use and launched through ctypes on torch's current stream.

Why a CUDA C++ kernel beside the Triton ones: Triton gives no control over which lane holds which state, over
shared-memory layouts or over how a chunk's loads are addressed. The kernel has two forms (docs/scan.md):

- staged (the default; any strides): each chunk of 32 steps is staged in shared memory (delta's bias and softplus
  computed once per element), one-warp blocks with 2 or 4 lanes per channel (``lanes``: 4 or 2 states each);
- rows (``rows=True``; u and y contiguous along L, delta along L or along D, 8-byte aligned rows, no z;
  :func:`rows_refusal` says what it cannot take): each lane scans its channel's row, 2 lanes per channel; u and y
  pass through shared memory in whole 8-byte groups of rows, moved by the warp a sector at a time; float32 grids
  just over one wave run a build with fewer registers and more blocks per SM (:func:`rows_wide_build`);
- short (``short=True``; L up to :data:`SHORT_MAX_L`, u and y contiguous, delta contiguous or along D, no z;
  :func:`short_refusal`): as rows, but a block reads its channels' whole sequences at once, u and y as one
  contiguous run of 8-byte words whatever L is (MambaVision's last level has L = 49, whose 16-bit rows the rows form
  cannot read).

On an H200 at 160 x 196 batch 128 fp16 the rows form takes 23 us (4.0x mamba_ssm's kernel timed beside it), the
staged one 36 us and the best Triton kernel 53-61 us; at 320 x 49 the short form 14-16 us (6.4-7.0x), the staged one
22-26 (docs/benchmarks.md). 'auto' (edgemv.ops.scan_tune) times the forms beside the Triton kernels when the kernel
is available.

Available means: a CUDA device, nvcc (``$EDGEMV_NVCC``, ``$CUDA_HOME/bin/nvcc`` or the PATH), and
``EDGEMV_SCAN_CUDA`` not set to 0. The build (12 s on 16 cores with nvcc's --split-compile, 32 s without; once per
source, compiler, flags and GPU architecture) goes to ``$EDGEMV_CACHE_DIR`` (default ``~/.cache/edgemv``)
``/cuda/``, written under a temporary name and renamed. A failed build is reported once and makes the kernel
unavailable for the rest of the process.

The same source compiles with g++ for the CPU through ``cuda/cpu_emulation.h`` (one thread per lane; float32
only): :func:`selective_scan_cpu_emulation`, how the tests check its indexing and arithmetic without a GPU.
"""

import ctypes
import functools
import glob
import hashlib
import logging
import os
import shutil
import subprocess

import torch

from .inputs import check_scan_inputs
from ..atomic import atomic_output
from ..toolchain import find_nvcc, split_compile_flags

__all__ = ["FormRefusal", "LANES", "ROWS_LANES", "SHORT_MAX_L", "arch", "available", "build", "cpu_build", "cxx",
           "form_refusal", "launch", "nvcc", "rows_refusal", "rows_wide_build", "short_refusal", "selective_scan_cuda",
           "selective_scan_cpu_emulation"]

log = logging.getLogger(__name__)

SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cuda")
SOURCE = os.path.join(SOURCE_DIR, "selective_scan_n8.cu")
LANES = (1, 2, 4)  # lanes per channel in the scan (8 / lanes states each)
ROWS_LANES = (2,)  # those of the rows form (the kernel is written for 1 or 2; 1 was slower everywhere measured)
SHORT_MAX_L = 64  # the longest sequence of the short form (cuda/scan_short.cuh, short_form::MAX_L)
MAX_BATCH = 65535  # every form's grid has one row of blocks per sequence (gridDim.y; cuda kMaxBatch)
_DTYPES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
_failed = []  # a build that failed once in this process (its message)


class Params(ctypes.Structure):
    # mirrors struct Params in cuda/scan_common.cuh (checked against edgemv_scan_params_size() at load)
    _fields_ = ([(name, ctypes.c_void_p) for name in ("u", "dt", "B", "C", "z", "A", "D", "bias", "y")]
                + [(name, ctypes.c_int64) for name in (
                    "dim", "length", "su_b", "su_d", "su_l", "sdt_b", "sdt_d", "sdt_l", "sA_d", "sA_n",
                    "sB_b", "sB_n", "sB_l", "sC_b", "sC_n", "sC_l", "sz_b", "sz_d", "sz_l", "sy_b", "sy_d", "sy_l")]
                + [(name, ctypes.c_int) for name in ("has_d", "has_z", "has_bias", "softplus", "A_dtype", "D_dtype",
                                                      "bias_dtype")])


def cache_dir() -> str:
    root = os.environ.get("EDGEMV_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "edgemv")
    return os.path.join(root, "cuda")


def nvcc():
    """Path of nvcc: ``$EDGEMV_NVCC``, ``$CUDA_HOME/bin/nvcc`` or the PATH; None when none is there."""
    return find_nvcc()


def cxx():
    """The C++ compiler of the CPU emulation: ``$CXX`` or g++ on the PATH (None when neither)."""
    return os.environ.get("CXX") or shutil.which("g++")


def build(compiler, flags, source, name, include_dirs=(SOURCE_DIR,)):
    """Compile ``source`` into a shared library in the cache, once per source, headers, compiler and flags; its path.
    Every header in ``include_dirs`` goes into the hash, whichever the source includes."""
    with open(source, "rb") as f:
        src = f.read()
    for folder in include_dirs:
        for header in sorted(glob.glob(os.path.join(folder, "*.h")) + glob.glob(os.path.join(folder, "*.cuh"))):
            with open(header, "rb") as f:
                src += os.path.basename(header).encode() + f.read()
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout
    flags = list(flags) + [arg for d in include_dirs for arg in ("-I", d)]
    tag = hashlib.sha256(src + version.encode() + " ".join(flags).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir(), f"{name}_{tag}.so")
    if not os.path.exists(path):
        with atomic_output(path) as tmp:
            res = subprocess.run([compiler, *flags, "-o", tmp, source], capture_output=True, text=True)
            if res.returncode != 0:
                raise RuntimeError(f"{os.path.basename(compiler)} failed on {os.path.basename(source)}: "
                                   f"{res.stderr.strip()[-2000:]}")
    return path


def check_params(lib):
    lib.edgemv_scan_params_size.restype = ctypes.c_int
    if lib.edgemv_scan_params_size() != ctypes.sizeof(Params):
        raise RuntimeError("the CUDA scan kernel's parameter block does not match edgemv.ops.scan_cuda.Params")


@functools.lru_cache(maxsize=None)
def _library(arch: str, defines: tuple = ()):
    compiler = nvcc()
    if compiler is None:
        raise RuntimeError("the CUDA scan kernel needs nvcc (set EDGEMV_NVCC or CUDA_HOME, or put nvcc on the PATH)")
    path = build(compiler, [f"-arch={arch}", "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC",
                            *split_compile_flags(compiler)] + [f"-D{d}" for d in defines], SOURCE, f"scan_n8_{arch}")
    lib = ctypes.CDLL(path)
    check_params(lib)
    for fn in (lib.edgemv_scan_n8_cuda, lib.edgemv_scan_rows_cuda, lib.edgemv_scan_short_cuda):
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    lib.edgemv_scan_rows_wide.restype = ctypes.c_int
    lib.edgemv_scan_rows_wide.argtypes = [ctypes.c_longlong, ctypes.c_int, ctypes.c_int]
    return lib


@functools.lru_cache(maxsize=None)
def _arch_of(index: int) -> str:
    major, minor = torch.cuda.get_device_capability(index)
    return f"sm_{major}{minor}"


def arch(device) -> str:
    """nvcc's -arch for a CUDA device ('sm_90'), looked up once per device (this runs on every scan call)."""
    return _arch_of(device.index if device.index is not None else torch.cuda.current_device())


def library(device, defines=()):
    """The kernel's library for ``device``'s architecture (built on first use); ``defines``: ("NAME=VALUE", ...) for
    the build-time knobs of the source (each set is its own library; bench/scan_lean_sweep.py)."""
    if _failed and not defines:  # failed once: not again for each candidate and call (nvcc takes seconds to fail)
        raise RuntimeError(f"the CUDA scan kernel's build failed earlier in this process: {_failed[0][:300]}")
    try:
        return _library(arch(device), tuple(defines))
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        if not defines and not _failed:
            log.warning("the CUDA scan kernel is not available: %s", str(exc).splitlines()[0])
            _failed.append(str(exc))
        raise


def available() -> bool:
    """True when the kernel can be used here: a CUDA device, nvcc, ``EDGEMV_SCAN_CUDA`` not 0, no failed build."""
    return (os.environ.get("EDGEMV_SCAN_CUDA", "1") != "0" and not _failed and torch.cuda.is_available()
            and nvcc() is not None)


def _output(u, out):
    """y: ``out`` after its checks, or a new (batch, D, L) tensor of u's dtype."""
    if out is not None and (out.shape != u.shape or out.dtype != u.dtype or out.device != u.device):
        raise ValueError("out must be a (batch, D, L) tensor of u's dtype on u's device")
    return out if out is not None else torch.empty(u.shape, device=u.device, dtype=u.dtype)


def _weights(A, D, delta_bias):
    """A, D and delta_bias as the kernels read them: as stored when fp32, fp16 or bf16 (no conversion per call),
    other dtypes as a float32 copy; D and delta_bias contiguous."""
    A = A if A.dtype in _DTYPES else A.float()
    D = (D if D.dtype in _DTYPES else D.float()).contiguous() if D is not None else None
    bias = (delta_bias if delta_bias.dtype in _DTYPES else delta_bias.float()).contiguous() \
        if delta_bias is not None else None
    return A, D, bias


def _addresses(u, delta, B, C, z, A, D, bias, y):
    """Params' leading fields: the tensors' addresses, in its order (0 for an absent tensor)."""
    return tuple(t.data_ptr() if t is not None else 0 for t in (u, delta, B, C, z, A, D, bias, y))


def prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus, out):
    """(params, y, tensors to keep alive) for one call; checks what the kernel assumes."""
    batch, dim, length = u.shape
    if A.shape[1] != 8:
        raise ValueError(f"the CUDA scan kernel is written for N=8, got N={A.shape[1]}")
    if u.dtype not in _DTYPES or any(t.dtype != u.dtype for t in (delta, B, C) + ((z,) if z is not None else ())):
        raise ValueError("u, delta, B, C (and z) must share one dtype: float32, float16 or bfloat16")
    y = _output(u, out)
    # offsets within one (32 channels, 32 steps) chunk are 32-bit (the batch offset is 64-bit)
    for t in (u, delta, B, C, y) + ((z,) if z is not None else ()):
        if min(t.stride()) < 0 or max(t.stride()[1:]) * 64 >= 2**31:
            raise ValueError("the CUDA scan kernel needs non-negative channel/state/step strides below 2**25")
    A, D, bias = _weights(A, D, delta_bias)
    sz = z.stride() if z is not None else (0, 0, 0)
    p = Params(*_addresses(u, delta, B, C, z, A, D, bias, y), dim, length, *u.stride(), *delta.stride(),
               *A.stride(), *B.stride(), *C.stride(), *sz, *y.stride(),
               int(D is not None), int(z is not None), int(bias is not None), int(bool(delta_softplus)),
               _DTYPES[A.dtype], _DTYPES[D.dtype] if D is not None else 0,
               _DTYPES[bias.dtype] if bias is not None else 0)
    return p, y, (A, D, bias)


class FormRefusal(ValueError):
    """The rows or short form cannot take these inputs (rows_refusal / short_refusal give the reason); the staged
    form takes any strides, and callers that try a form run it or another kernel instead."""


def _both_forms_refusal(form, z, lanes):
    """What the rows and short forms share: 2 lanes per channel (ROWS_LANES), no z."""
    if lanes not in ROWS_LANES:
        return f"the {form} kernel takes lanes {ROWS_LANES}, got {lanes}"
    if z is not None:
        return f"the {form} kernel does not take z"
    return None


def rows_refusal(u, delta, z, y, lanes):
    """Why the rows form cannot take these tensors (None when it can). It reads u and writes y along L with 8-byte
    accesses, so each needs unit stride along L and 8-byte aligned rows, and L a multiple of the elements per 8 bytes;
    delta the same, or contiguous along D (the model's layout) with 8-byte aligned steps and D a multiple of the
    elements per 8 bytes; a sequence's rows (D x the channel stride) within 2^31 elements. It is built with 2 lanes
    per channel (ROWS_LANES) and takes no z."""
    if reason := _both_forms_refusal("rows", z, lanes):
        return reason
    size = u.element_size()
    vec = 8 // size
    if u.shape[2] % vec:
        return f"the rows kernel needs L to be a multiple of {vec} for {u.dtype}, got {u.shape[2]}"
    if max(u.stride(1), y.stride(1)) * u.shape[1] + u.shape[2] >= 2**31:  # its 32-bit row offsets
        return "the rows kernel needs each sequence's rows of u and y within 2**31 elements"

    def aligned(t, unit_dim):
        return (t.stride(unit_dim) == 1 and t.data_ptr() % 8 == 0
                and all((t.stride(i) * size) % 8 == 0 for i in range(3) if i != unit_dim))
    for name, t in (("u", u), ("y", y)):
        if not aligned(t, 2):
            return f"the rows kernel needs {name} contiguous along L with 8-byte aligned rows"
    if not (aligned(delta, 2) or (aligned(delta, 1) and u.shape[1] % vec == 0)):
        return (f"the rows kernel needs delta contiguous along L or along D (then D a multiple of {vec}) with "
                f"8-byte aligned rows")
    return None


def short_refusal(u, delta, z, y, lanes):
    """Why the short form cannot take these tensors (None when it can). A block reads its channels' rows of u as one
    run of 8-byte words and writes y the same way, so each needs unit stride along L, channel stride L and 8-byte
    aligned sequences; delta the same, or contiguous along D with 8-byte aligned steps and D a multiple of the elements
    per 8 bytes. L from 1 to SHORT_MAX_L, a sequence within 2^31 elements, 2 lanes per channel, no z."""
    if reason := _both_forms_refusal("short", z, lanes):
        return reason
    batch, dim, length = u.shape
    if not 1 <= length <= SHORT_MAX_L:
        return f"the short kernel takes L from 1 to {SHORT_MAX_L}, got {length}"
    if dim * length >= 2**31:
        return "the short kernel needs each sequence within 2**31 elements"
    size = u.element_size()
    vec = 8 // size

    def aligned(t, i):  # steps along dimension i of t keep 8-byte alignment (batch 1 takes no step)
        return (t.stride(i) * size) % 8 == 0 or (i == 0 and batch == 1)

    def flat(t):  # a sequence's rows one after another, its start 8-byte aligned
        return ((t.stride(2) == 1 or length == 1) and t.stride(1) == length and t.data_ptr() % 8 == 0
                and aligned(t, 0))
    for name, t in (("u", u), ("y", y)):
        if not flat(t):
            return f"the short kernel needs {name} contiguous along L and D with 8-byte aligned sequences"
    along_d = (delta.stride(1) == 1 and delta.data_ptr() % 8 == 0 and dim % vec == 0
               and aligned(delta, 0) and aligned(delta, 2))
    if not (flat(delta) or along_d):
        return (f"the short kernel needs delta contiguous along L and D, or along D (then D a multiple of {vec}), "
                f"with 8-byte aligned steps")
    return None


def form_refusal(u, delta, z, y, lanes, rows=False, short=False):
    """Why the chosen form (rows, short, or with neither the staged one, which takes any strides) cannot take these
    tensors (None when it can)."""
    if rows:
        return rows_refusal(u, delta, z, y, lanes)
    if short:
        return short_refusal(u, delta, z, y, lanes)
    return None


_POINTERS = 9  # Params' leading fields (_addresses); the rest (sizes, strides, flags) is the layout's
_layouts = {}  # _layout_key -> the Params fields after the pointers, for a layout that passed the checks


def _layout_key(u, delta, A, B, C, D, z, delta_bias, delta_softplus, y, lanes, rows, short):
    """Everything the checks of prepare(), rows_refusal() and short_refusal() read, except the addresses, of which
    only whether u, delta and y are 8-byte aligned: calls with one key take the same launch."""
    opt = lambda t: None if t is None else (t.dtype, t.shape, t.stride())  # noqa: E731
    return (u.device, u.dtype, u.shape, u.stride(), delta.dtype, delta.shape, delta.stride(), opt(A), opt(B), opt(C),
            opt(D), opt(z), opt(delta_bias), y.dtype, y.shape, y.stride(), bool(delta_softplus), lanes, rows, short,
            (u.data_ptr() | delta.data_ptr() | y.data_ptr()) % 8 == 0)


def _checked_params(u, delta, A, B, C, D, z, delta_bias, delta_softplus, out, lanes, rows, short):
    """prepare()'s (params, y, tensors to keep alive) after the checks of the lanes and, for the rows and short
    forms, of the layout (ValueError naming what is wrong).

    The checks and the Params they build cost about 25 us of Python per call, more than the kernel's device time
    at MambaVision's sizes; a layout that passed them once is remembered, and a later call with the same layout
    only fills in its addresses (docs/benchmarks.md, "Host cost per call")."""
    if lanes not in LANES:
        raise ValueError(f"lanes must be one of {LANES}, got {lanes}")
    if rows and short:
        raise ValueError("choose one of rows and short")
    y = _output(u, out)
    key = _layout_key(u, delta, A, B, C, D, z, delta_bias, delta_softplus, y, lanes, rows, short)
    layout = _layouts.get(key)
    if layout is None:
        if u.shape[0] > MAX_BATCH:
            raise FormRefusal(f"the CUDA kernels take a batch up to {MAX_BATCH} (one grid row per sequence), "
                              f"got {u.shape[0]}")
        p, y, keep = prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus, y)
        if reason := form_refusal(u, delta, z, y, lanes, rows, short):
            raise FormRefusal(reason)
        if len(_layouts) >= 4096:  # many shapes (dynamic sizes): start again rather than grow without bound
            _layouts.clear()
        _layouts[key] = tuple(getattr(p, name) for name, _ in Params._fields_[_POINTERS:])
        return p, y, keep
    A, D, bias = _weights(A, D, delta_bias)
    p = Params(*_addresses(u, delta, B, C, z, A, D, bias, y), *layout)
    return p, y, (A, D, bias)


def selective_scan_cuda(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, out=None,
                        lanes=4, rows=False, short=False, defines=(), check=True):
    """Same contract as :func:`edgemv.ops.selective_scan` for N = 8; CUDA tensors. ``lanes``: lanes per channel (1, 2
    or 4); ``out``: a (batch, D, L) tensor of u's dtype to write y into. The staged kernel takes any strides;
    ``rows=True`` runs the rows form (cuda/scan_rows.cuh), ``short=True`` the short form (cuda/scan_short.cuh); each
    raises :class:`FormRefusal` (a ValueError) for inputs it cannot take (:func:`rows_refusal`,
    :func:`short_refusal`). ``check=False`` skips :func:`~edgemv.ops.inputs.check_scan_inputs` (shapes, dtypes,
    devices), for callers that have run it."""
    if check:
        check_scan_inputs(u, delta, A, B, C, D, z, delta_bias)
    p, y, keep = _checked_params(u, delta, A, B, C, D, z, delta_bias, delta_softplus, out, lanes, rows, short)
    if y.numel() == 0:
        return y
    lib = library(u.device, defines)
    launch(_entry(lib, "cuda", rows, short), p, u, lanes)
    del keep  # the launch is queued; the caching allocator keeps the float32 copies' memory for the stream
    return y


def rows_wide_build(u, defines=()) -> bool:
    """Whether the rows form runs its wide build (float32: 96 registers, 20 one-warp blocks per SM) for u's shape:
    when it takes the grid in one wave and the default build does not, on u's device (cuda/scan_rows.cuh)."""
    with torch.cuda.device(u.device):
        return bool(library(u.device, defines).edgemv_scan_rows_wide(u.shape[1], _DTYPES[u.dtype], u.shape[0]))


def _entry(lib, suffix, rows, short):
    """The C entry point of a form: edgemv_scan_{short,rows,n8}_{cuda,cpu}."""
    return getattr(lib, f"edgemv_scan_{'short' if short else 'rows' if rows else 'n8'}_{suffix}")


def launch(fn, params, u, lanes):
    """Call a kernel's C entry point ``fn(params, dtype code, lanes, batch, stream)`` on torch's current stream of
    u's device; a failed launch raises."""
    index = u.device.index
    stream = ctypes.c_void_p(torch._C._cuda_getCurrentRawStream(index))  # no Stream object: a few us less per call
    args = (ctypes.addressof(params), _DTYPES[u.dtype], int(lanes), u.shape[0], stream)
    if index == torch.cuda.current_device():
        rc = fn(*args)
    else:
        with torch.cuda.device(index):
            rc = fn(*args)
    if rc != 0:
        raise RuntimeError(f"the CUDA scan kernel failed to launch (cudaError {rc})")


def cpu_build(source=SOURCE, name="scan_n8_cpu", defines=()):
    """Compile ``source`` (by default the kernel's) for the CPU emulation (g++, EDGEMV_CPU_EMULATION, the kernels'
    headers on the include path) into a shared library in the cache; its path."""
    compiler = cxx()
    if compiler is None:
        raise RuntimeError("the CPU emulation of the CUDA scan kernel needs g++ (C++20)")
    # (no strict aliasing: the kernels read 16-bit pairs through reinterpret_cast, which nvcc allows and g++ need not)
    return build(compiler, ["-std=c++20", "-O1", "-fno-strict-aliasing", "-pthread", "-fPIC", "-shared",
                            "-DEDGEMV_CPU_EMULATION", "-x", "c++"]
                 + [f"-D{d}" for d in defines], source, name)


@functools.lru_cache(maxsize=None)
def _cpu_library(defines: tuple = ()):
    lib = ctypes.CDLL(cpu_build(defines=defines))
    check_params(lib)
    for fn in (lib.edgemv_scan_n8_cpu, lib.edgemv_scan_rows_cpu, lib.edgemv_scan_short_cpu):
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    return lib


def selective_scan_cpu_emulation(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, out=None,
                                 lanes=1, rows=False, short=False, defines=()):
    """The kernel's source compiled with g++ and run on the CPU (CPU tensors of float32, float16 or bfloat16, the 16-bit
    types emulated): a test of its logic. ``defines``: build knobs ("NAME=VALUE", ...), e.g. LEAN_FAST_SOFTPLUS=1 for
    the 16-bit inputs' softplus."""
    if u.dtype not in _DTYPES or u.device.type != "cpu":
        raise ValueError("the CPU emulation takes CPU tensors of float32, float16 or bfloat16")
    check_scan_inputs(u, delta, A, B, C, D, z, delta_bias)
    p, y, keep = _checked_params(u, delta, A, B, C, D, z, delta_bias, delta_softplus, out, lanes, rows, short)
    if y.numel():
        lib = _cpu_library(tuple(defines))
        if _entry(lib, "cpu", rows, short)(ctypes.addressof(p), _DTYPES[u.dtype], int(lanes), u.shape[0]) != 0:
            raise RuntimeError("the CPU emulation refused the call")
    del keep
    return y
