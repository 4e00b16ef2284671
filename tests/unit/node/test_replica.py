"""The node's replica (``soru.node.replica``): for ticks all over a level — the first and
last, the kernel_run boundaries, the input ticks, random ones — the proof it makes checks
as layer 1 checks it (``refutation_proof.check`` against the game's inbox snapshot), and
ends in the state the replica gives for the next tick; the replica's inbox is layer 1's.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from soru.encoding.inbox import External
from soru.node.replica import Replica, ReplicaError
from soru.protocol.inbox_proof import InboxHistory
from soru.protocol.refutation_proof import ProofContext, check
from soru.pvm import vm
from soru.pvm.constants import DEFAULT_VERSION
from soru.pvm.reveals import RevealProvider

ECHO = Path(__file__).resolve().parents[4] / "shared" / "testdata" / "kernels" / "echo.wasm"
T = 20_000


@pytest.fixture(scope="module")
def replica() -> Replica:
    if not ECHO.exists():
        pytest.fail(f"{ECHO} is missing (../shared/testdata)")
    reveals = RevealProvider(None, bytes(20), 0)
    replica = Replica(ECHO.read_bytes(), 0, reveals, ticks_per_kernel_run=T,
                      version=DEFAULT_VERSION)  # fmt: skip
    history, inbox = InboxHistory.from_genesis()
    for level, messages in ((1, [b"hello", b"again"]), (2, [b"three"])):
        inbox = history.add_level(inbox, predecessor_timestamp=level, predecessor=bytes(32),
                                  messages=[External(m).encode() for m in messages])  # fmt: skip
        found = history.find_level(level)
        assert found is not None
        replica.add_level(level, level, bytes(32), list(found.payloads))
    assert replica.inboxes[2].hash() == inbox.hash()  # the same inbox as layer 1's
    return replica


def test_proofs_of_ticks_all_over_a_level_end_at_the_next_tick(replica: Replica) -> None:
    run = replica.runs[2]
    rng = random.Random(4)
    ticks = {run.start_tick, run.end_tick - 1, *range(run.start_tick, run.start_tick + 8)}
    ticks |= {run.start_tick + k * T + d for k in range(1, 4) for d in (-1, 0, 1)}
    ticks |= {rng.randrange(run.start_tick, run.end_tick) for _ in range(25)}
    context = ProofContext(replica.inboxes[2].snapshot(), 0, 2, bytes(24))
    inputs = 0
    for tick in sorted(t for t in ticks if run.start_tick <= t < run.end_tick):
        inputs += vm.input_request(replica.state_at(tick)).kind != "none"
        start, stop = check(replica.proof(tick, 2), context)
        assert start == replica.hash_at(tick), tick
        assert stop == replica.hash_at(tick + 1), tick
    assert inputs >= 3  # SOL, Info_per_level, the message… were among the proven ticks


def test_levels_come_in_order_and_as_layer_1_has_them(replica: Replica) -> None:
    with pytest.raises(ReplicaError):
        replica.add_level(5, 0, bytes(32), [])
    with pytest.raises(ReplicaError):
        replica.tick_after(9)
