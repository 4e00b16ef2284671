"""Durability: a PVM state committed to the SQLite node store survives a killed process and
reads back with the same state hash (and runs on identically)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from soru.merkle import SQLiteStore, Tree
from soru.pvm import driver, layout
from soru.pvm.reveals import RevealProvider
from soru.tools.inputs_file import with_markers

KERNELS = Path(__file__).resolve().parents[3].parent / "shared" / "testdata" / "kernels"

WRITER = textwrap.dedent(
    """
    import sys
    from soru.merkle import SQLiteStore
    from soru.pvm import driver, layout
    from soru.pvm.reveals import RevealProvider
    from soru.tools.inputs_file import with_markers

    kernel = open(sys.argv[2], "rb").read()
    store = SQLiteStore(sys.argv[1])
    reveals = RevealProvider(None, bytes(20), 0)
    state = driver.originate(kernel, ticks_per_kernel_run=10_000)
    driver.run_level(state, 1, with_markers([b"\\x01committed"]), reveals)
    root = layout.state_tree(state).persist(store)
    store.commit("head", root)
    print(layout.state_hash(state).hex(), flush=True)
    level = 2
    while True:  # keep writing uncommitted states until killed
        driver.run_level(state, level, with_markers([b"\\x01" + bytes(3000)]), reveals)
        layout.state_tree(state).persist(store)
        level += 1
    """
)


@pytest.mark.skipif(not KERNELS.exists(), reason="shared kernels not present")
def test_committed_state_survives_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(KERNELS / "echo.wasm")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    committed = proc.stdout.readline().strip()
    time.sleep(1.0)  # let it write uncommitted states
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    store = SQLiteStore(db)
    state = layout.load_state(Tree.open(store, store.get_root("head")))
    assert layout.state_hash(state).hex() == committed
    assert state.outboxes[1] == [b"committed"]
    # The reloaded state runs on exactly like one that never left memory.
    reveals = RevealProvider(None, bytes(20), 0)
    fresh = driver.originate((KERNELS / "echo.wasm").read_bytes(), ticks_per_kernel_run=10_000)
    driver.run_level(fresh, 1, with_markers([b"\x01committed"]), reveals)
    for s in (state, fresh):
        driver.run_level(s, 2, with_markers([b"\x01after"]), reveals)
    assert layout.state_hash(state) == layout.state_hash(fresh)
    store.close()
