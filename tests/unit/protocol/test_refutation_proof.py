"""Refutation proofs (SORU-SPEC §4.7): a tick proof with the proof of its input, checked
against a game's inbox snapshot — for every input tick of the echo kernel over a real
two-level inbox, plus the blocked case and forgeries."""

from __future__ import annotations

from pathlib import Path

import pytest

from soru.encoding.inbox import External
from soru.protocol.inbox_proof import FirstInboxMessage, InboxHistory, InboxInputProof
from soru.protocol.refutation_proof import (
    InvalidRefutationProof,
    Metadata,
    ProofContext,
    RawData,
    RefutationProof,
    check,
)
from soru.pvm import driver, layout, vm
from soru.pvm.proof import TickProof, produce_proof
from soru.pvm.reveals import RevealProvider
from soru.pvm.state import InputMessage

KERNELS = Path(__file__).resolve().parents[3].parent / "shared" / "testdata" / "kernels"
pytestmark = pytest.mark.skipif(not KERNELS.exists(), reason="shared kernels not present")
TICKS = 2000


def _inbox(levels: list[list[bytes]]):
    history, inbox = InboxHistory.from_genesis()
    for level, messages in enumerate(levels, 1):
        inbox = history.add_level(
            inbox, predecessor_timestamp=level, predecessor=bytes([level]) * 32, messages=messages
        )
    return history, inbox


def _game(inbox, commitment_level: int) -> ProofContext:
    return ProofContext(inbox.snapshot(), 0, commitment_level, bytes(20) + (0).to_bytes(4, "big"))


def test_every_input_tick_of_a_level_is_a_valid_refutation_step() -> None:
    levels = [[External(b"hello").encode()], [External(b"world").encode()]]
    history, inbox = _inbox(levels)
    game = _game(inbox, commitment_level=2)
    state = driver.originate((KERNELS / "echo.wasm").read_bytes(), ticks_per_kernel_run=TICKS)
    checked = 0
    for level in (1, 2):
        payloads = history.find_level(level).payloads
        for counter, payload in enumerate(payloads):
            driver.settle(state, RevealProvider(None, bytes(20), 0))
            request = vm.input_request(state)
            message = InputMessage(level, counter, payload)
            step, after = produce_proof(layout.state_tree(state), message=message)
            given, proven = history.produce_input_proof(game.snapshot, request, origination_level=0)
            assert proven == message
            proof = RefutationProof.decode(RefutationProof(step, given).encode())
            start, stop = check(proof, game)
            assert start == layout.state_hash(state) and stop == after.hash
            vm.set_input(state, message)
            assert stop == layout.state_hash(state)
            checked += 1
    assert checked == sum(len(history.find_level(lv).payloads) for lv in (1, 2))

    # After the last message the PVM asks for more: the snapshot holds none, so it is blocked.
    driver.settle(state, RevealProvider(None, bytes(20), 0))
    request = vm.input_request(state)
    given, proven = history.produce_input_proof(game.snapshot, request, origination_level=0)
    assert proven is None
    step, _ = produce_proof(layout.state_tree(state), message=InputMessage(3, 0, b"\x00\x01"))
    with pytest.raises(InvalidRefutationProof):  # consuming an input the inbox lacks
        check(RefutationProof(step, given), game)
    blocked = TickProof(step.tree)  # the same state, no input consumed
    assert check(RefutationProof(blocked, given), game) == (layout.state_hash(state), None)


def test_forgeries_are_rejected() -> None:
    levels = [[External(b"hello").encode()]]
    history, inbox = _inbox(levels)
    game = _game(inbox, commitment_level=1)
    state = driver.originate((KERNELS / "echo.wasm").read_bytes(), ticks_per_kernel_run=TICKS)
    payloads = history.find_level(1).payloads
    first, _ = produce_proof(layout.state_tree(state), message=InputMessage(1, 0, payloads[0]))
    assert check(RefutationProof(first, FirstInboxMessage()), game)[1] is not None
    with pytest.raises(InvalidRefutationProof):  # the state asks for an input
        check(RefutationProof(first, None), game)
    with pytest.raises(InvalidRefutationProof):  # a reveal where a message is asked for
        check(RefutationProof(first, RawData(b"x")), game)
    with pytest.raises(InvalidRefutationProof):
        check(RefutationProof(first, Metadata()), game)
    vm.set_input(state, InputMessage(1, 0, payloads[0]))
    request = vm.input_request(state)
    given, message = history.produce_input_proof(game.snapshot, request, origination_level=0)
    assert isinstance(given, InboxInputProof) and message is not None
    forged_message = InputMessage(1, 1, b"\x01forged")
    forged, _ = produce_proof(layout.state_tree(state), message=forged_message)
    with pytest.raises(InvalidRefutationProof):  # the tick reads another message
        check(RefutationProof(forged, given), game)
    other = InboxInputProof(given.level, given.counter + 1, given.proof)
    honest, _ = produce_proof(layout.state_tree(state), message=message)
    with pytest.raises(InvalidRefutationProof):  # an input proof for another place
        check(RefutationProof(honest, other), game)
    with pytest.raises(InvalidRefutationProof):
        RefutationProof.decode(RefutationProof(honest, given).encode() + b"\x00")
    beyond = _game(inbox, commitment_level=0)  # level 1 is past this commitment: blocked
    assert check(RefutationProof(TickProof(honest.tree), given), beyond)[1] is None


def test_a_reveal_tick_needs_the_page_of_the_requested_hash() -> None:
    import wasmtime

    from soru.pvm.reveals import reveal_hash

    page = b"a page of revealed data"
    wanted = reveal_hash(page)
    data = "".join(f"\\{b:02x}" for b in wanted)
    kernel = wasmtime.wat2wasm(
        f"""(module
          (import "smart_rollup_core" "reveal_preimage"
            (func $reveal (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "{data}")
          (func (export "kernel_run")
            (drop (call $reveal (i32.const 0) (i32.const 33) (i32.const 100) (i32.const 4096)))))"""
    )
    history, inbox = _inbox([[]])
    game = _game(inbox, commitment_level=1)
    state = driver.originate(kernel, ticks_per_kernel_run=TICKS)
    for counter, payload in enumerate(history.find_level(1).payloads):
        vm.set_input(state, InputMessage(1, counter, payload))
    while vm.input_request(state).kind != "reveal":
        vm.compute(state, 1)
    step, after = produce_proof(layout.state_tree(state), reveal=page)
    assert check(RefutationProof(step, RawData(page)), game)[1] == after.hash
    with pytest.raises(InvalidRefutationProof):  # another page
        check(RefutationProof(step, RawData(page + b"!")), game)
    forged, _ = produce_proof(layout.state_tree(state), reveal=page + b"!")
    with pytest.raises(InvalidRefutationProof):  # a tick that read another page
        check(RefutationProof(forged, RawData(page)), game)
    with pytest.raises(InvalidRefutationProof):
        check(RefutationProof(step, Metadata()), game)
    assert RevealProvider(None, bytes(20), 0).metadata() == game.metadata
