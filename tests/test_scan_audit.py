"""bench/scan_audit.py, the randomized audit against its own float64 reference: on the CPU it passes for the
plain-op forms on a fixed seed, and it fails an implementation that is slightly wrong (so it can catch one)."""

import os

import pytest

BENCH = os.path.join(os.path.dirname(__file__), "..", "bench")


@pytest.fixture
def audit(monkeypatch):
    monkeypatch.syspath_prepend(BENCH)
    import scan_audit

    return scan_audit


def test_the_plain_op_forms_pass_the_randomized_audit(audit, capsys):
    assert audit.main(["--cases", "40", "--seed", "7"]) == 0
    assert "40 cases x 3 implementations: 0 failed" in capsys.readouterr().out


def test_the_audit_fails_a_scan_that_drops_delta_bias(audit, monkeypatch, capsys):
    real = audit.selective_scan

    def without_bias(**kw):
        kw["delta_bias"] = None
        return real(**kw)

    monkeypatch.setattr(audit, "selective_scan", without_bias)
    assert audit.main(["--cases", "20", "--seed", "7", "--impls", "ref"]) == 1
    assert "FAIL ref" in capsys.readouterr().out
