"""'auto''s kernel choice (edgemv.ops.scan_tune): fastest candidate kept, remembered in memory and on disk.

The GPU timing itself runs in bench/scan_variants.py; here the timer is a function of the candidate, so what is
tested is the choice, the cache file and its failure modes, on CPU tensors.
"""

import json
import os
import sys

import pytest
import torch

from edgemv.ops import scan_tune

sys.path.insert(0, os.path.dirname(__file__))


def _inputs(length=49):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(2, 16, length, generator=g)
    delta = torch.randn(2, length, 16, generator=g).transpose(1, 2)  # the model's strided view
    B = torch.randn(2, 8, length, generator=g)
    return dict(u=u, delta=delta, B=B, C=B.clone(), D=torch.ones(16), z=None, delta_bias=torch.zeros(16),
                delta_softplus=True)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    from edgemv.ops import scan_cuda

    # the Triton candidates only, on any machine: where a GPU and nvcc are found the CUDA C++ kernel would join them
    # (test_cuda_kernel_is_a_candidate_where_available... tests that; the fifteenth session found these tests
    # failing on the device machine for this)
    monkeypatch.setattr(scan_cuda, "available", lambda: False)
    monkeypatch.setenv("EDGEMV_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("EDGEMV_SCAN_TUNE", raising=False)
    monkeypatch.setattr(scan_tune, "_memory", {})
    return tmp_path / "scan_tuning.json"


def _timer_preferring(winner, calls):
    # ms per candidate: the winner fastest; every run really happens (into the scratch output)
    def timer(fn):
        fn()
        return 1.0 if calls[-1] == winner else 5.0 + len(calls)
    return timer


def _recording_run(calls, fail=()):
    def run(variant, opts, out):
        calls.append((variant, opts))
        if (variant, opts) in fail:
            raise RuntimeError("out of resources")
        out.zero_()
    return run


def test_fastest_candidate_is_chosen_and_saved(cache):
    winner = scan_tune.CANDIDATES[-1]
    calls = []
    choice = scan_tune.choose(_recording_run(calls), **_inputs(), timer=_timer_preferring(winner, calls))
    assert choice == winner
    assert calls == list(scan_tune.CANDIDATES)  # each candidate timed once
    saved = json.loads(cache.read_text())
    (key, entry), = saved.items()
    assert "2x16x49" in key and entry["variant"] == winner[0] and entry["options"] == winner[1]
    assert len(entry["times_us"]) == len(scan_tune.CANDIDATES)


def test_choice_is_reused_from_memory_then_from_the_file(cache, monkeypatch):
    winner = scan_tune.CANDIDATES[1]
    calls = []
    scan_tune.choose(_recording_run(calls), **_inputs(), timer=_timer_preferring(winner, calls))

    def no_timing(fn):
        raise AssertionError("a known problem must not be timed again")

    assert scan_tune.choose(_recording_run([]), **_inputs(), timer=no_timing) == winner
    monkeypatch.setattr(scan_tune, "_memory", {})  # a new process: only the file is left
    assert scan_tune.choose(_recording_run([]), **_inputs(), timer=no_timing) == winner
    # another problem (other length) is tuned separately
    calls2 = []
    other = scan_tune.choose(_recording_run(calls2), **_inputs(length=50),
                             timer=_timer_preferring(scan_tune.CANDIDATES[0], calls2))
    assert other == scan_tune.CANDIDATES[0] and len(json.loads(cache.read_text())) == 2


def test_failing_candidate_is_skipped(cache):
    calls = []
    winner = scan_tune.CANDIDATES[2]
    choice = scan_tune.choose(_recording_run(calls, fail=(winner,)), **_inputs(),
                              timer=_timer_preferring(winner, calls))
    assert choice != winner and choice in scan_tune.CANDIDATES


@pytest.mark.parametrize("content", ["{not json", json.dumps(["a list"]),
                                     json.dumps({"x": {"variant": "warp-speed", "options": {}}})])
def test_corrupt_or_foreign_cache_file_is_ignored_and_replaced(cache, content):
    cache.write_text(content)
    calls = []
    winner = scan_tune.CANDIDATES[1]
    assert scan_tune.choose(_recording_run(calls), **_inputs(), timer=_timer_preferring(winner, calls)) == winner
    assert len(calls) == len(scan_tune.CANDIDATES)
    assert isinstance(json.loads(cache.read_text()), dict)  # valid JSON again, written in one rename
    assert not list(cache.parent.glob("*.tmp"))


def test_poisoned_saved_entry_naming_unknown_options_is_retuned(cache):
    key = scan_tune._file_key(scan_tune._problem(**_inputs()), scan_tune.CANDIDATES)
    cache.write_text(json.dumps({key: {"variant": "pipe", "options": {"block_d": 4096}}}))
    calls = []
    scan_tune.choose(_recording_run(calls), **_inputs(), timer=_timer_preferring(scan_tune.CANDIDATES[0], calls))
    assert len(calls) == len(scan_tune.CANDIDATES)


def test_tuning_can_be_switched_off(cache, monkeypatch):
    monkeypatch.setenv("EDGEMV_SCAN_TUNE", "0")
    calls = []
    assert scan_tune.choose(_recording_run(calls), **_inputs(), timer=lambda fn: 1.0) == scan_tune.DEFAULT
    assert calls == [] and not cache.exists()


def test_unwritable_cache_keeps_the_choice_in_memory(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("EDGEMV_CACHE_DIR", str(blocker / "sub"))  # a directory cannot be made under a file
    monkeypatch.setattr(scan_tune, "_memory", {})
    calls = []
    winner = scan_tune.CANDIDATES[-1]
    assert scan_tune.choose(_recording_run(calls), **_inputs(), timer=_timer_preferring(winner, calls)) == winner
    assert scan_tune.choose(_recording_run([]), **_inputs(), timer=lambda fn: 1 / 0) == winner


def test_cuda_kernel_is_a_candidate_where_available_and_keys_its_own_choices(cache, monkeypatch):
    from edgemv.ops import scan_cuda

    monkeypatch.setattr(scan_cuda, "available", lambda: False)
    assert scan_tune.candidates() == scan_tune.CANDIDATES
    calls = []
    triton_choice = scan_tune.choose(_recording_run(calls), **_inputs(),
                                     timer=_timer_preferring(scan_tune.CANDIDATES[1], calls))
    assert triton_choice == scan_tune.CANDIDATES[1] and ("cuda", {"lanes": 4}) not in calls
    # where nvcc is found the CUDA C++ kernel joins, and the choice made without it is not reused
    monkeypatch.setattr(scan_cuda, "available", lambda: True)
    monkeypatch.setattr(scan_tune, "_memory", {})
    assert scan_tune.candidates() == scan_tune.CANDIDATES + scan_tune.CUDA_CANDIDATES
    calls = []
    winner = ("cuda", {"lanes": 4})
    assert scan_tune.choose(_recording_run(calls), **_inputs(), timer=_timer_preferring(winner, calls)) == winner
    assert calls == list(scan_tune.candidates())
    keys = sorted(json.loads(cache.read_text()))
    assert len(keys) == 2 and keys[1] == keys[0] + scan_tune.CUDA_KEY
    # a saved CUDA choice is not used in a process without the kernel
    monkeypatch.setattr(scan_cuda, "available", lambda: False)
    monkeypatch.setattr(scan_tune, "_memory", {})
    assert scan_tune.choose(_recording_run([]), **_inputs(), timer=lambda fn: 1 / 0) == triton_choice


def test_a_remembered_cuda_choice_falls_back_where_the_kernel_refuses_the_inputs():
    calls = []

    def run(variant, opts, out):
        calls.append(variant)
        if variant == "cuda":
            raise ValueError("the CUDA scan kernel needs non-negative channel/state/step strides below 2**25")
        return "y"
    assert scan_tune.run_choice(run, ("cuda", {"lanes": 2}), None) == "y"
    assert calls == ["cuda", scan_tune.DEFAULT[0]]

    # a remembered rows or short form that meets rows it cannot read (e.g. a view one element in) runs the staged form
    def form_refuses(variant, opts, out):
        calls.append((variant, opts))
        if opts.get("rows") or opts.get("short"):
            raise ValueError("the rows kernel needs u contiguous along L with 8-byte aligned rows")
        return "staged"
    for form in ("rows", "short"):
        calls.clear()
        assert scan_tune.run_choice(form_refuses, ("cuda", {"lanes": 2, form: True}), None) == "staged"
        assert calls == [("cuda", {"lanes": 2, form: True}), ("cuda", {"lanes": 2})]

    def failing(variant, opts, out):  # other errors, and errors of the Triton kernels, are not hidden
        raise ValueError("bad input")
    with pytest.raises(ValueError, match="bad input"):
        scan_tune.run_choice(failing, ("seq", {"block_d": 64}), None)


def test_mixed_dtypes_are_a_problem_of_their_own(cache):
    # the CUDA C++ kernel takes one dtype only: a choice tuned on uniform inputs is not reused for mixed ones (it
    # would refuse each call and fall back), and the uniform key keeps its format
    calls = []
    uniform = _inputs()
    scan_tune.choose(_recording_run(calls), **uniform, timer=_timer_preferring(scan_tune.CANDIDATES[0], calls))
    mixed = dict(uniform, delta=uniform["delta"].half(), C=uniform["C"].bfloat16())
    calls.clear()
    scan_tune.choose(_recording_run(calls), **mixed, timer=_timer_preferring(scan_tune.CANDIDATES[-1], calls))
    assert calls == list(scan_tune.CANDIDATES)  # tuned again
    keys = sorted(json.loads(cache.read_text()))
    assert len(keys) == 2
    assert any("|float32|2x16x49|" in k for k in keys)
    assert any("|float32/float16/float32/bfloat16|2x16x49|" in k for k in keys)


def test_cuda_kernel_build_runs_in_a_thread_and_its_failure_stays_there(monkeypatch):
    """The CUDA C++ kernel's build starts beside the Triton candidates' timings (a GPU's first call), in a thread of
    its own; a build that raises is left to scan_cuda's own report and does not reach the caller."""
    import threading

    from edgemv.ops import scan_cuda

    seen = []

    def library(device):
        seen.append((threading.current_thread().name, device))
        raise RuntimeError("nvcc failed")

    monkeypatch.setattr(scan_cuda, "library", library)
    thread = scan_tune._build_beside(torch.device("cpu"))
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert seen == [("edgemv-scan-cuda-build", torch.device("cpu"))]


def test_a_failed_cuda_build_is_not_tried_again_in_the_process(monkeypatch):
    """nvcc takes seconds to fail: after one failure every later request (each CUDA candidate, each call) gets the
    first error at once, and 'auto' stops offering the kernel."""
    from edgemv.ops import scan_cuda

    attempts = []

    def failing_build(arch, defines=()):
        attempts.append(arch)
        raise RuntimeError("nvcc failed on selective_scan_n8.cu: unsupported gpu architecture")

    monkeypatch.setattr(scan_cuda, "_failed", [])
    monkeypatch.setattr(scan_cuda, "_library", failing_build)
    monkeypatch.setattr(scan_cuda, "arch", lambda device: "sm_90")
    for _ in range(3):
        with pytest.raises(RuntimeError, match="unsupported gpu architecture"):
            scan_cuda.library(torch.device("cpu"))
    assert attempts == ["sm_90"]
    assert not scan_cuda.available()


def test_the_triton_candidates_are_precompiled_before_any_timing(cache, monkeypatch):
    """choose() hands the Triton candidates (never the CUDA ones) to ``precompile`` once, with the scratch output,
    before the first timing."""
    from edgemv.ops import scan_cuda

    monkeypatch.setattr(scan_cuda, "available", lambda: True)  # the CUDA candidates join, and must be left out
    events = []
    calls = []

    def precompile(cands, out):
        events.append(("precompile", list(cands), tuple(out.shape)))

    def timer(fn):
        events.append(("time",))
        fn()
        return 1.0

    inputs = _inputs()
    scan_tune.choose(_recording_run(calls), **inputs, timer=timer, precompile=precompile)
    assert events[0] == ("precompile", list(scan_tune.CANDIDATES), tuple(inputs["u"].shape))
    assert [e for e in events[1:] if e[0] == "precompile"] == []
    assert len(calls) == len(scan_tune.CANDIDATES) + len(scan_tune.CUDA_CANDIDATES)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_precompile_compiles_every_triton_candidate_so_their_timings_compile_nothing():
    """scan_triton.precompile on a GPU: the three Triton candidates compiled together (Triton's async compile mode);
    launching them afterwards compiles nothing more, and each gives the float64 reference's result."""
    import math

    from test_scan import make, rel_err, scan_f64

    from edgemv.ops import scan_triton as st

    inp = make(3, 48, 77, torch.float16)
    ref = scan_f64(**inp)
    cuda = {k: (v.cuda() if isinstance(v, torch.Tensor) else v) for k, v in inp.items()}
    device = torch.cuda.current_device()
    kernels = (st._scan_n8_kernel, st._scan_pipe_kernel)
    for kernel in kernels:  # from scratch in this process (Triton's disk cache may still serve the binaries)
        kernel.device_caches[device][0].clear()

    def compiled():
        return sum(len(kernel.device_caches[device][0]) for kernel in kernels)

    def run(variant, opts, out):
        return st.selective_scan_triton(**cuda, variant=variant, out=out, check=False, **opts)

    out = torch.full(inp["u"].shape, float("nan"), device="cuda", dtype=torch.float16)
    assert st.precompile(run, list(scan_tune.CANDIDATES), out)
    torch.cuda.synchronize()
    assert out.isnan().all()  # compiled only: nothing ran
    assert compiled() == len(scan_tune.CANDIDATES)
    for variant, opts in scan_tune.CANDIDATES:
        out.fill_(float("nan"))
        run(variant, opts, out)
        err = rel_err(out.cpu(), ref)
        assert math.isfinite(err) and err < 2e-3, (variant, opts, err)
    assert compiled() == len(scan_tune.CANDIDATES)


def test_precompile_runs_each_candidate_in_compile_only_mode_and_steps_aside_when_a_mode_is_active():
    """On the CPU (the launches are the callback's): each candidate's run sees the compile-only flag, which is off
    again afterwards and after a failing candidate; inside another async compile mode precompile does nothing."""
    pytest.importorskip("triton")
    from concurrent.futures import ThreadPoolExecutor

    from triton.runtime._async_compile import AsyncCompileMode

    from edgemv.ops import scan_triton as st

    seen = []

    def run(variant, opts, out):
        seen.append((variant, st._compiling_only.get()))
        if variant == "pipe":
            raise RuntimeError("out of resources")  # reported later by the candidate's own timing

    assert st.precompile(run, [("seq", {}), ("pipe", {}), ("lanes", {})], None)
    assert seen == [("seq", True), ("pipe", True), ("lanes", True)] and not st._compiling_only.get()
    seen.clear()
    with ThreadPoolExecutor(1) as pool, AsyncCompileMode(pool):
        assert st.precompile(run, [("seq", {})], None) is False
    assert seen == [] and not st._compiling_only.get()
