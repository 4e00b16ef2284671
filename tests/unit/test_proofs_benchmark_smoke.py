"""benchmarks/proofs.py runs and reports sizes within the bound (no timing assertions)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_proofs_benchmark_quick() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "proofs.py"), "--quick"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "echo.wasm" in proc.stdout and "largest proof:" in proc.stdout
    largest = int(proc.stdout.split("largest proof:")[1].split()[0])
    assert largest <= 30_000
