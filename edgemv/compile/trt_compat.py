"""TensorRT version shim: the API differences between TensorRT 10.x, 11.x and TensorRT-RTX, in one place.

What differs, and what this module does about it (checked against tensorrt_rtx 1.7.1; TensorRT facts from the
deployment notes in docs/export.md):

- Precision. TensorRT 10.x is weakly typed by default: FP16/INT8/FP8 come from builder flags (``BuilderFlag.FP16``
  ...) plus, for INT8/FP8, explicit Q/DQ nodes. TensorRT 11 and TensorRT-RTX are strongly typed only: there are no
  precision flags, tensor dtypes and Q/DQ nodes in the graph decide. :func:`configure_precision` sets flags where
  they exist and does nothing where they do not, so one explicit-Q/DQ ONNX builds on all three.
- Network creation. 10.x: flag 0 is explicit batch (EXPLICIT_BATCH is deprecated); ``STRONGLY_TYPED`` exists from
  10.0 and is the only mode of 11.x/RTX. :func:`create_network`.
- Target GPU. TensorRT 10.x/11.x build for the GPU they run on (a Jetson engine is built on the Jetson).
  TensorRT-RTX builds ahead of time on a machine without a GPU: ``IBuilderConfig.num_compute_capabilities`` and
  ``set_compute_capability(ComputeCapability.SM86, index)`` choose the targets (SM75, SM80, SM86, SM89, SM120,
  SM121 in 1.7; CURRENT needs a GPU). FP8 cannot target sm_86 (the builder refuses: "HW-specific datatypes:
  fp8_e4m3"), so FP8 builds go to sm_89 and newer only. :func:`set_targets`.
- Workspace: ``set_memory_pool_limit(MemoryPoolType.WORKSPACE, n)`` on all of them (``max_workspace_size`` is gone).
- Plugins: Python "quickly deployable plugins" (``tensorrt.plugin``) from 10.7; ICumulativeLayer from 10.8; neither
  exists on JetPack 6 (10.3). :class:`TrtInfo` records which are present.
- Plugin layers from the ONNX parser, TensorRT-RTX only: its parser opens its own library again by the unversioned
  name ``libtensorrt_rtx.so`` when it adds a plugin layer, and the pip wheel ships only ``libtensorrt_rtx.so.1``; the
  parser then throws inside a function that may not throw and the process ends (``std::terminate``, 1.7.1).
  :func:`unversioned_library_dir` gives that name in a folder for a child process's LD_LIBRARY_PATH.

Nothing here is imported by ``import edgemv``; the TensorRT module is imported inside functions.
"""

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from ..errors import EdgemvError

__all__ = ["TrtInfo", "import_tensorrt", "create_network", "configure_precision", "set_targets",
           "set_workspace", "parse_onnx", "quiet_logger", "unversioned_library_dir", "DEFAULT_TARGETS",
           "FP8_TARGETS"]

DEFAULT_TARGETS = ("sm_86", "sm_89")  # Ampere desktop (closest to Orin's sm_87) and Ada
FP8_TARGETS = ("sm_89",)  # FP8 needs Ada or newer


@dataclass(frozen=True)
class TrtInfo:
    """Which TensorRT is loaded and what its API offers."""

    module_name: str  # "tensorrt" or "tensorrt_rtx"
    version: str
    major: int
    minor: int
    is_rtx: bool
    strongly_typed_only: bool  # no FP16/INT8/FP8 builder flags
    aot_targets: bool  # can build for a chosen compute capability without a GPU
    quick_plugins: bool  # tensorrt.plugin (10.7+)
    cumulative_layer: bool  # ICumulativeLayer (10.8+)
    module: object = field(repr=False, compare=False, default=None)


def _version_tuple(text: str) -> Tuple[int, int]:
    parts = (text.split(".") + ["0", "0"])[:2]
    return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)


def import_tensorrt(prefer: Sequence[str] = ("tensorrt", "tensorrt_rtx")) -> TrtInfo:
    """Import the first TensorRT flavour that is installed (standard TensorRT first, then TensorRT-RTX).

    Raises EdgemvError naming the package to install when none is.
    """
    import importlib

    errors = []
    for name in prefer:
        try:
            trt = importlib.import_module(name)
        except Exception as exc:  # ImportError, or a stub wheel failing at import
            errors.append(f"{name}: {exc}")
            continue
        major, minor = _version_tuple(trt.__version__)
        is_rtx = name == "tensorrt_rtx"
        return TrtInfo(
            module_name=name, version=trt.__version__, major=major, minor=minor, is_rtx=is_rtx,
            strongly_typed_only=is_rtx or major >= 11,
            aot_targets=hasattr(trt, "ComputeCapability") and hasattr(trt.IBuilderConfig, "set_compute_capability"),
            quick_plugins=not is_rtx and (major, minor) >= (10, 7),
            cumulative_layer=hasattr(trt.INetworkDefinition, "add_cumulative"),
            module=trt,
        )
    raise EdgemvError("no TensorRT found: install TensorRT-RTX with `pip install tensorrt-rtx` "
                      f"(or edgemv[trt-rtx]); tried {'; '.join(errors)}")


def create_network(builder, info: TrtInfo, strongly_typed: bool = True):
    """An explicit-batch network; strongly typed where the flavour has the flag (always so on 11.x/RTX)."""
    trt = info.module
    flags = 0
    if strongly_typed and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return builder.create_network(flags)


def configure_precision(config, info: TrtInfo, precision: str, strongly_typed: bool = True) -> List[str]:
    """Set the builder flags a weakly typed TensorRT 10.x needs for ``precision``; returns the flags set.

    With a strongly typed network (or on 11.x/RTX) nothing is set: the graph's dtypes and Q/DQ nodes decide.
    """
    trt = info.module
    if strongly_typed or info.strongly_typed_only:
        return []
    wanted = {"fp32": [], "fp16": ["FP16"], "int8": ["FP16", "INT8"], "fp8": ["FP16", "FP8"]}[precision]
    set_flags = []
    for name in wanted:
        flag = getattr(trt.BuilderFlag, name, None)
        if flag is not None:
            config.set_flag(flag)
            set_flags.append(name)
    return set_flags


def set_targets(config, info: TrtInfo, targets: Sequence[str]) -> List[str]:
    """Choose the compute capabilities to build for ('sm_86', 'sm_89', ...) where the flavour builds ahead of time.

    Returns the targets set; on TensorRT 10.x/11.x (builds for the local GPU) returns [] and sets nothing.
    """
    if not info.aot_targets or not targets:
        return []
    trt = info.module
    members = trt.ComputeCapability.__members__
    chosen = []
    for target in targets:
        key = target.upper().replace("_", "")  # sm_86 -> SM86
        if key not in members:
            known = ", ".join(k for k in members if k.startswith("SM"))
            raise EdgemvError(f"{info.module_name} {info.version} cannot target {target}; it knows {known}")
        chosen.append((target, members[key]))
    config.num_compute_capabilities = len(chosen)
    for index, (_, cc) in enumerate(chosen):
        if not config.set_compute_capability(cc, index):
            raise EdgemvError(f"{info.module_name} refused compute capability {chosen[index][0]}")
    return [t for t, _ in chosen]


def set_workspace(config, info: TrtInfo, nbytes: int) -> None:
    trt = info.module
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(nbytes))


def parse_onnx(network, info: TrtInfo, logger, path: str) -> Tuple[object, List[str]]:
    """Parse an ONNX file (external data beside it is found through the path); returns (parser, error lines)."""
    trt = info.module
    parser = trt.OnnxParser(network, logger)
    ok = parser.parse_from_file(str(path))
    errors = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        where = f" (node {err.node()}: {err.node_name()} {err.node_operator()})" if err.node() >= 0 else ""
        errors.append(f"{err.desc()}{where}")
    if not ok and not errors:
        errors.append("the ONNX parser failed without a message")
    return parser, errors


def quiet_logger(info: TrtInfo, level: str = "ERROR"):
    """A logger that keeps TensorRT's messages (in ``.messages``) instead of printing them."""
    trt = info.module

    class _Collect(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.messages = []

        def log(self, severity, msg):
            self.messages.append((str(severity), msg))

    logger = _Collect()
    logger.min_severity = getattr(trt.ILogger.Severity, level)
    return logger


def unversioned_library_dir(info: TrtInfo, folder: str) -> Optional[str]:
    """Make ``folder`` hold ``libtensorrt_rtx.so`` (a link to the wheel's ``libtensorrt_rtx.so.1``) where TensorRT-RTX's
    libraries lack that name; returns ``folder``, or None when nothing is needed (standard TensorRT, or a TensorRT-RTX
    whose folder has the name, as its tar archive does).

    dlopen reads LD_LIBRARY_PATH once, when a process starts: the folder serves a child process, not this one.
    """
    import importlib
    import os

    if not info.is_rtx:
        return None
    try:
        libs = os.path.dirname(importlib.import_module("tensorrt_rtx_libs").__file__)
    except Exception:  # not the pip wheel: a tar install keeps its own links
        return None
    versioned = sorted(n for n in os.listdir(libs) if n.startswith("libtensorrt_rtx.so."))
    if os.path.exists(os.path.join(libs, "libtensorrt_rtx.so")) or not versioned:
        return None
    link = os.path.join(folder, "libtensorrt_rtx.so")
    if not os.path.lexists(link):
        os.symlink(os.path.realpath(os.path.join(libs, versioned[0])), link)
    return folder


def optional_info() -> Optional[TrtInfo]:
    """TrtInfo if any TensorRT flavour imports, else None (for reports)."""
    try:
        return import_tensorrt()
    except EdgemvError:
        return None
