"""Fixtures for the parity check against the official ``mambavision`` package (``pytest -m official``).

The official model needs ``mamba_ssm`` (a CUDA extension). ``stub/`` holds our own CPU stand-in that provides
``mamba_ssm.ops.selective_scan_interface.selective_scan_fn``; it is put first on ``sys.path`` only when an
official test actually runs, so default test runs never see it.
"""

import importlib
import os
import sys
from pathlib import Path

import pytest

STUB_DIR = Path(__file__).parent / "stub"
_ROWS = []  # (test, variant, input, what, rel. error, max abs error, seconds) for the closing table


@pytest.fixture(scope="session")
def official():
    """The official ``mambavision.models.mamba_vision`` module, running on the stub scan; skips without it."""
    if str(STUB_DIR) not in sys.path:
        sys.path.insert(0, str(STUB_DIR))
    for name in [m for m in sys.modules if m == "mamba_ssm" or m.startswith("mamba_ssm.")]:
        del sys.modules[name]  # a real mamba_ssm imported earlier would need CUDA: use the stand-in
    try:
        import mamba_ssm  # noqa: F401  (our stub)
        module = importlib.import_module("mambavision.models.mamba_vision")
    except ImportError as exc:  # the package or one of its plain deps (timm, einops) is missing
        pytest.skip(f"official mambavision package not importable ({exc}); run .ci/official")
    assert Path(mamba_ssm.__file__).resolve().is_relative_to(STUB_DIR.resolve()), mamba_ssm.__file__
    return module


@pytest.fixture(scope="session")
def official_repo():
    """A checkout of NVlabs/MambaVision (for its detection/segmentation backbone file), from $MAMBAVISION_REPO."""
    root = os.environ.get("MAMBAVISION_REPO")
    if not root:
        pytest.skip("set MAMBAVISION_REPO to a checkout of NVlabs/MambaVision to test its detection backbone file")
    path = Path(root) / "object_detection" / "tools" / "mamba_vision.py"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return Path(root)


@pytest.fixture
def record():
    def _record(**row):
        _ROWS.append(row)
    return _record


def pytest_terminal_summary(terminalreporter):
    if not _ROWS:
        return
    tr = terminalreporter
    tr.section("edgemv vs official mambavision")
    tr.write_line(f"{'check':<34} {'variant':<11} {'input':<14} {'output':<10} {'rel.err':>10} {'max abs':>10} {'s':>6}")
    for r in _ROWS:
        tr.write_line(f"{r['check']:<34} {r['variant']:<11} {r['input']:<14} {r['output']:<10} "
                      f"{r['rel']:>10.2e} {r['maxabs']:>10.2e} {r['seconds']:>6.1f}")
    out = os.environ.get("EDGEMV_OFFICIAL_REPORT")
    if out:
        import json

        Path(out).write_text(json.dumps(_ROWS, indent=1))
