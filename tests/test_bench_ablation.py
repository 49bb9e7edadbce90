"""bench/scan_rows_ablation.py edits the CUDA kernels' sources by exact text (one part left out per variant) and
stops on the GPU machine when a text has gone; here, on the CPU, every text it looks for must still be in the
sources, so a kernel change that moves one fails in CI rather than in a device session."""

import os
import sys

BENCH = os.path.join(os.path.dirname(__file__), "..", "bench")


def test_every_ablation_still_finds_its_text_in_the_kernels(monkeypatch):
    monkeypatch.syspath_prepend(BENCH)
    monkeypatch.setattr(sys, "argv", ["scan_rows_ablation.py"])
    import scan_rows_ablation

    assert scan_rows_ablation.missing_texts() == []
    assert all(len(v) > 1 for v in (scan_rows_ablation.ROWS_ABLATIONS, scan_rows_ablation.SHORT_ABLATIONS))
