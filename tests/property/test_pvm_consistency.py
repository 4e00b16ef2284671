"""Consistency of the PVM: running N ticks at once equals N single ticks with the whole
state written to a Merkle node store and read back between each tick.

Kernels: Octez's echo and debug kernels (``../shared/testdata/kernels``). Inputs and the
number of ticks are drawn by hypothesis; ``ticks_per_kernel_run`` is small so that every
phase (Collect, Padding, Snapshot, Decode, Link, Init, Eval, the boundary) is crossed.
"""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soru.merkle import MemoryStore, Tree
from soru.pvm import driver, layout, vm
from soru.pvm.state import InputMessage
from soru.tools.inputs_file import with_markers

KERNELS = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "kernels"
pytestmark = pytest.mark.skipif(not KERNELS.exists(), reason="shared kernels not present")


def _fresh(kernel: bytes, messages: list[bytes]):
    state = driver.originate(kernel, ticks_per_kernel_run=1500)
    for counter, payload in enumerate(with_markers(messages)):
        vm.set_input(state, InputMessage(1, counter, payload))
    return state


def _round_trip(state, store: MemoryStore):
    root = layout.state_tree(state).persist(store)
    return layout.load_state(Tree.open(store, root))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kernel=st.sampled_from(["echo.wasm", "debug_kernel.wasm"]),
    messages=st.lists(st.binary(max_size=40).map(lambda b: b"\x01" + b), max_size=3),
    ticks=st.integers(min_value=1, max_value=2600),
    start=st.integers(min_value=0, max_value=6000),
)
def test_n_ticks_at_once_equal_n_single_ticks_through_the_store(kernel, messages, ticks, start):
    code = (KERNELS / kernel).read_bytes()
    straight, stepped = _fresh(code, messages), _fresh(code, messages)
    vm.compute(straight, start)
    vm.compute(stepped, start)
    store = MemoryStore()
    vm.compute(straight, ticks)
    for _ in range(ticks):
        if vm.input_request(stepped).kind != "none":
            break
        vm.compute(stepped, 1)
        stepped = _round_trip(stepped, store)
    assert stepped.tick == straight.tick
    assert stepped.tick_state == straight.tick_state
    assert layout.state_hash(stepped) == layout.state_hash(straight)
    assert stepped.outboxes == straight.outboxes


def test_every_tick_of_a_level_round_trips() -> None:
    """Tick by tick through one whole level of echo, the reloaded state never diverges."""
    code = (KERNELS / "echo.wasm").read_bytes()
    straight, stepped = _fresh(code, [b"\x01hello"]), _fresh(code, [b"\x01hello"])
    store = MemoryStore()
    while vm.input_request(straight).kind == "none":
        vm.compute(straight, 1)
        vm.compute(stepped, 1)
        stepped = _round_trip(stepped, store)
        assert layout.state_hash(stepped) == layout.state_hash(straight), straight.tick
    assert straight.outboxes == {1: [b"hello"]}
