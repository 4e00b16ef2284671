"""The demo runs end to end and shows the engine agreeing with itself and with wasmtime."""

import subprocess
import sys


def test_demo_runs_and_agrees() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "soru", "demo", "--no-suite"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "-> identical" in proc.stdout
    assert "-> agrees" in proc.stdout
    assert "FloatsForbidden" in proc.stdout
    assert "wasmtime fast engine: same state hashes" in proc.stdout
    assert "verified: srs1" in proc.stdout
    assert "the liar's claim is refuted" in proc.stdout
