"""Smoke test of ``benchmarks/wasm_engine.py``: the ``--quick`` run completes and reports
every workload on every engine. Timings are never checked (tests do not depend on the
machine's speed); only that the report is there and the engines agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wasm_engine_benchmark_quick_run_reports_every_workload_and_engine():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "wasm_engine.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for workload in ("arith", "memory", "fib"):
        assert workload in out
    for engine in ("soru", "pywasm", "wasmtime"):
        assert engine in out
    assert "MISMATCH" not in out
    assert "geomean" in out
