"""Smoke test of ``benchmarks/pvm.py``: the ``--quick`` run completes, reports the three
engines and their ratios, and the interpreter and the fast engine agree (same ticks and state
hash after every level, no call deferred). Timings are never checked (tests do not depend on
the machine's speed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pvm_benchmark_quick_run_reports_every_engine():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "pvm.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for engine in ("interpreter", "fast engine", "raw wasmtime"):
        assert engine in out
    assert "kernel_runs/s" in out and "ticks/s" in out
    assert "ratio fast/interpreter" in out and "ratio raw wasmtime/fast" in out
    assert "MISMATCH" not in out
    assert "deferred 0 of" in out
