"""Regression: the tick of a reveal host call ends with the machine suspended.

Found while proving the ticks of an installer: the call tick of ``reveal_preimage`` used to
leave the machine *running* with the request parked, and a further step that made no tick
suspended it — two different states at one tick. A game whose one-tick section started
there would have had the honest player's proof end in a state other than its claimed hash
at the next tick. Now every state a tick reaches is the state at that tick: stepping one
tick at a time and replaying a level from its snapshots agree, and the proof of the reveal
tick ends in the state at the next tick.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from soru.encoding.inbox import External
from soru.node.replica import Replica
from soru.protocol.inbox_proof import InboxHistory
from soru.protocol.refutation_proof import ProofContext, check
from soru.pvm import layout, vm
from soru.pvm.constants import DEFAULT_VERSION
from soru.pvm.reveals import RevealProvider
from soru.pvm.state import InputMessage
from soru.tools.installer import build_installer

ECHO = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "kernels" / "echo.wasm"


def test_the_reveal_tick_is_one_state(tmp_path: Path) -> None:
    if not ECHO.exists():
        pytest.fail(f"{ECHO} is missing (../shared/testdata)")
    reveals = RevealProvider(tmp_path, bytes(20), 0)
    installer = build_installer(ECHO.read_bytes(), tmp_path)
    replica = Replica(installer, 0, reveals, ticks_per_kernel_run=100_000,
                      version=DEFAULT_VERSION, engine="wasmtime")  # fmt: skip
    history, inbox = InboxHistory.from_genesis()
    history.add_level(inbox, predecessor_timestamp=0, predecessor=bytes(32),
                      messages=[External(b"hi").encode()])  # fmt: skip
    level = history.find_level(1)
    assert level is not None
    replica.add_level(1, 0, bytes(32), list(level.payloads))
    run = replica.runs[1]
    state = layout.load_state(run.before)
    queue = [InputMessage(1, i, p) for i, p in enumerate(level.payloads)]
    reveal_ticks = []
    while state.tick < run.end_tick:
        request = vm.input_request(state)
        before = state.tick
        if request.kind == "reveal":
            reveal_ticks.append(state.tick)
            vm.reveal_step(state, reveals.answer(request.reveal))
        elif request.kind != "none":
            vm.set_input(state, queue.pop(0))
        else:
            vm.compute(state, 1)
        assert state.tick == before + 1, f"a step at tick {before} made no tick"
        if state.tick in {t + d for t in reveal_ticks for d in (0, 1)}:
            assert layout.state_hash(state) == replica.hash_at(state.tick)
    assert layout.state_hash(state) == layout.state_hash(layout.load_state(run.after))
    assert reveal_ticks  # the installer revealed the kernel
    context = ProofContext(replica.inboxes[1].snapshot(), 0, 1, reveals.metadata())
    for tick in reveal_ticks:
        assert vm.input_request(replica.state_at(tick)).kind == "reveal"
        _, after = check(replica.proof(tick, 1), context)
        assert after == replica.hash_at(tick + 1)


KERNELS = ("host_calls", "reboot", "upgrade", "trap", "loop", "recursion", "start_host_call")


@pytest.mark.parametrize("name", KERNELS)
def test_every_single_step_makes_exactly_one_tick(name: str) -> None:
    """For the example kernels over two levels stepped one tick at a time: each step —
    compute, input or reveal — moves the tick by exactly one (no state change without a
    tick, no tick skipped)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "pvm"))
    from pvm_kernels import build, external

    from soru.pvm import driver
    from soru.tools.inputs_file import with_markers

    state = driver.originate(bytes(build(name)), ticks_per_kernel_run=4_000)
    queue = [InputMessage(level, i, payload)
             for level in (1, 2)
             for i, payload in enumerate(with_markers([external(b"\x00" * 8)]))]  # fmt: skip
    steps = 0
    while steps < 40_000:
        request = vm.input_request(state)
        before = state.tick
        if request.kind in ("initial", "first_after"):
            if not queue:
                break
            vm.set_input(state, queue.pop(0))
        elif request.kind == "reveal":
            break  # these kernels reveal nothing but through the installer (tested above)
        else:
            vm.compute(state, 1)
        assert state.tick == before + 1, f"{name}: a step at tick {before} made no tick"
        steps += 1
    assert not queue
