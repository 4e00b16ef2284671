"""The demo runs end to end: the rollup lifecycle with real processes (a sandbox chain, two
rollup nodes, one lying), then the engine agreeing with itself and with wasmtime."""

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
    # the lifecycle, live: layer 1, the installer, two nodes, a game, cementation, withdrawal
    assert "layer 1 is up at http://127.0.0.1:" in proc.stdout
    assert "installer that reveals the 408-byte kernel" in proc.stdout
    assert "move: prove the step from tick" in proc.stdout
    assert "the liar lost on a one-tick proof" in proc.stdout
    assert "honest operator 105,000 tez, liar 90,000 tez" in proc.stdout
    assert "the honest commitment is cemented" in proc.stdout
    assert "executed the withdrawal from the outbox" in proc.stdout
