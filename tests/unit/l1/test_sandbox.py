"""The running sandbox chain (``soru.l1.sandbox``) and its file (``soru.l1.store``): signed
operations are checked at injection; blocks are written as they are baked; reopening the
file replays them to the same state, receipts included; a file that does not replay to its
own hashes, or is not a chain file, is refused; a process killed while baking leaves a chain
that reopens at its last whole block.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from soru.crypto.keys import SecretKey
from soru.l1 import operations as ops
from soru.l1.operations import InvalidSignature, MalformedOperation, SignedOperation
from soru.l1.sandbox import Sandbox, SandboxConfig
from soru.l1.store import ChainStore, StoreError

ALICE = SecretKey.from_seed(bytes(range(32)))
BOB = SecretKey.from_seed(bytes(range(1, 33)))
A, B = ALICE.public_key().hash(), BOB.public_key().hash()
CONFIG = SandboxConfig({str(A): 1_000_000, str(B): 1_000_000})


def _transfer(secret: SecretKey, counter: int, to, amount: int) -> bytes:
    operation = ops.Operation(secret.public_key().hash(), counter, ops.Transfer(to, amount))
    return SignedOperation.sign(operation, secret).encode()


def test_injected_operations_are_checked_and_baked(tmp_path: Path) -> None:
    sandbox = Sandbox.create(tmp_path / "chain.db", CONFIG)
    digest = sandbox.inject(_transfer(ALICE, 1, B, 250))
    forged = SignedOperation.decode(_transfer(ALICE, 2, B, 1))
    with pytest.raises(InvalidSignature):  # Bob's key for Alice's operation
        sandbox.inject(
            SignedOperation(forged.operation, BOB.public_key(), forged.signature).encode()
        )
    tampered = bytearray(_transfer(ALICE, 2, B, 1))
    tampered[-1] ^= 1
    with pytest.raises(InvalidSignature):
        sandbox.inject(bytes(tampered))
    with pytest.raises(MalformedOperation):
        sandbox.inject(b"\x00\x01")
    assert len(sandbox.mempool) == 1
    block, receipts = sandbox.bake()
    assert block.level == 1 and [r.status for r in receipts] == ["applied"]
    assert sandbox.receipts[digest].status == "applied"
    assert sandbox.state.accounts[str(B)].balance == 1_000_250
    sandbox.close()


def test_a_chain_file_replays_to_the_same_state(tmp_path: Path) -> None:
    path = tmp_path / "chain.db"
    sandbox = Sandbox.create(path, CONFIG)
    for counter in range(1, 6):
        sandbox.inject(_transfer(ALICE, counter, B, counter))
        sandbox.inject(_transfer(BOB, counter, A, 2 * counter))
        sandbox.bake()
    sandbox.inject(_transfer(ALICE, 99, B, 1))  # rejected: bad counter, not written
    sandbox.bake()
    head, accounts, receipts = sandbox.state.block_hash, sandbox.state.accounts, sandbox.receipts
    sandbox.close()
    again = Sandbox.open(path)
    assert again.state.block_hash == head and again.state.level == 6
    assert dict(again.state.accounts) == dict(accounts)
    assert {k: v for k, v in receipts.items() if v.status != "rejected"} == again.receipts


def test_a_corrupt_or_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "chain.db"
    sandbox = Sandbox.create(path, CONFIG)
    sandbox.inject(_transfer(ALICE, 1, B, 7))
    sandbox.bake()
    sandbox.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE blocks SET hash = ? WHERE level = 1", (bytes(32),))
    with pytest.raises(StoreError):
        Sandbox.open(path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError):
        Sandbox.open(junk)
    with pytest.raises(StoreError):
        Sandbox.open(tmp_path / "missing.db")
    with pytest.raises(StoreError):
        Sandbox.create(path, CONFIG)


_BAKER = """
import sys
from soru.crypto.keys import SecretKey
from soru.l1 import operations as ops
from soru.l1.operations import SignedOperation
from soru.l1.sandbox import Sandbox
sandbox = Sandbox.open(sys.argv[1])
alice = SecretKey.from_seed(bytes(range(32)))
bob = SecretKey.from_seed(bytes(range(1, 33))).public_key().hash()
counter = sandbox.state.accounts[str(alice.public_key().hash())].counter
print("ready", flush=True)
while True:
    counter += 1
    op = ops.Operation(alice.public_key().hash(), counter, ops.Transfer(bob, 1))
    sandbox.inject(SignedOperation.sign(op, alice).encode())
    sandbox.bake()
"""


def test_a_killed_baker_leaves_a_chain_that_reopens(tmp_path: Path) -> None:
    path = tmp_path / "chain.db"
    Sandbox.create(path, CONFIG).close()
    process = subprocess.Popen([sys.executable, "-c", _BAKER, str(path)],
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until some blocks are written
            with sqlite3.connect(path) as db:
                if db.execute("SELECT count(*) FROM blocks").fetchone()[0] >= 20:
                    break
            time.sleep(0.05)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    reopened = Sandbox.open(path)
    level = reopened.state.level
    assert level >= 20
    assert reopened.state.accounts[str(B)].balance == 1_000_000 + level
    assert reopened.state.accounts[str(A)].counter == level


def test_an_operation_injected_twice_keeps_its_receipt_and_is_stored_once(
    tmp_path: Path,
) -> None:
    """Found by ``tests/property/test_l1_props.py`` (replay): the rejected copy of an
    operation overwrote the receipt of the applied one, and was written to the file."""
    path = tmp_path / "chain.db"
    sandbox = Sandbox.create(path, CONFIG)
    transfer = _transfer(ALICE, 1, B, 5)
    digest = sandbox.inject(transfer)
    sandbox.inject(transfer)
    _, receipts = sandbox.bake()
    assert [r.status for r in receipts] == ["applied", "rejected"]
    assert sandbox.receipts[digest].status == "applied"
    sandbox.inject(transfer)  # again, a block later: rejected, and still applied
    sandbox.bake()
    assert sandbox.receipts[digest].status == "applied"
    head = sandbox.state.block_hash
    sandbox.close()
    store = ChainStore.open(path)
    assert [len(block.operations) for block in store.blocks()] == [1, 0]
    store.close()
    again = Sandbox.open(path)
    assert again.state.block_hash == head and again.receipts[digest].status == "applied"
    again.close()
