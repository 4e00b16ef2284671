"""Stuck states: a kernel that traps sets ``/readonly/kernel/env/stuck`` and the rollup goes
on (``kernels/trap.wat``); a kernel_run that never ends (``loop.wat``) or exhausts the call
stack (``recursion.wat``) is stuck for good; a kernel that cannot be loaded never raises out
of the PVM. Where soru and Octez (``src/lib_scoru_wasm/wasm_vm.ml``, ``test/test_init.ml``)
disagree, the test states Octez's behaviour (they all agree now)."""

from __future__ import annotations

import struct

import pytest
from pvm_kernels import TICKS, build, external, run_levels

from soru.pvm import layout, vm
from soru.pvm.state import StuckReason, TickState

STUCK_FLAG = "/readonly/kernel/env/stuck"


def u32(value: bytes | None) -> int | None:
    return None if value is None else struct.unpack("<I", value)[0]


FAULTS = {
    "unreachable": b"u",
    "divide by zero": b"z",
    "integer overflow": b"o",
    "memory out of bounds": b"m",
    "empty table slot": b"n",
    "indirect call type mismatch": b"t",
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_trap_sets_the_stuck_flag_and_the_next_level_runs(fault):
    message = external(FAULTS[fault] + b" and more")
    state, (first, second, third) = run_levels(build("trap"), [[message], [], []])
    durable = state.durable
    # the trap ends the call; what the kernel wrote before it stays
    assert durable.read_all("/last") == message
    assert first.ticks == 2 * TICKS
    # the next level runs the kernel again, which sees the flag; its return clears it
    assert u32(durable.read_all("/runs")) == 3
    assert u32(durable.read_all("/saw_stuck")) == 2
    assert durable.read_all(STUCK_FLAG) is None
    assert second.ticks == third.ticks == 2 * TICKS
    assert state.tick_state is TickState.COLLECT and state.stuck is None


def test_the_stuck_flag_after_the_trapping_level():
    state, _ = run_levels(build("trap"), [[external(b"u")]])
    assert state.durable.read_all(STUCK_FLAG) == b""
    assert state.tick_state is TickState.COLLECT and state.stuck is None
    assert state.durable.read_all("/kernel/env/reboot") == b""


def test_an_endless_kernel_run_is_stuck_for_good():
    state, (first,) = run_levels(build("loop"), [[]])
    assert first.ticks == 2 * TICKS  # it ran until the end of its call
    assert state.tick_state is TickState.STUCK
    assert state.stuck is StuckReason.TOO_MANY_TICKS
    hash_after_first = layout.state_hash(state)

    # stuck for good: each input is one tick and nothing runs
    _, (second, third) = run_levels(
        build("loop"), [[external(b"a"), external(b"b")], []], state=state, first_level=2
    )
    assert second.ticks == 5 and third.ticks == 3
    assert state.stuck is StuckReason.TOO_MANY_TICKS
    assert {message.level for message in state.inputs} == {1}  # later inputs are not queued
    assert vm.input_request(state).kind == "first_after"
    assert vm.input_request(state).level == 3
    assert layout.state_hash(state) != hash_after_first  # the tick and last input moved on


def test_unbounded_recursion_exhausts_the_call_stack():
    ticks = 200_000
    state, (first, second) = run_levels(build("recursion"), [[], []], ticks=ticks)
    assert state.tick_state is TickState.STUCK
    assert state.stuck is StuckReason.CALL_STACK_EXHAUSTED
    assert ticks < first.ticks < 2 * ticks  # stuck before the end of the call
    assert second.ticks == 3


def test_an_endless_loop_is_stuck_even_with_a_bigger_budget():
    state, (first,) = run_levels(build("loop"), [[]], ticks=3 * TICKS)
    assert first.ticks == 6 * TICKS and state.stuck is StuckReason.TOO_MANY_TICKS


# --- kernels that cannot be loaded, at origination (no fallback kernel) -----------------------

UNLOADABLE = {
    "not wasm": lambda: b"\x00asm but not really",
    "floats": lambda: build("floats"),
    "unknown import": lambda: build("unknown_import"),
    "no kernel_run": lambda: build("no_kernel_run"),
}


@pytest.mark.parametrize("name", sorted(UNLOADABLE))
def test_an_unloadable_kernel_never_raises_out_of_the_pvm(name):
    state, results = run_levels(UNLOADABLE[name](), [[external(b"hello")], []])
    assert state.stuck is not None
    assert all(not r.outbox for r in results)
    assert state.durable.read_all("/readonly/kernel/boot.wasm") is None  # never initialised
    layout.state_hash(state)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("not wasm", StuckReason.NO_FALLBACK_DECODE),
        ("floats", StuckReason.NO_FALLBACK_DECODE),
        ("unknown import", StuckReason.NO_FALLBACK_LINK),
    ],
)
def test_the_phase_that_refused_the_kernel(name, reason):
    state, _ = run_levels(UNLOADABLE[name](), [[]])
    assert state.stuck is reason


@pytest.mark.parametrize("name", sorted(UNLOADABLE))
def test_an_unloadable_kernel_without_fallback_is_stuck_for_good(name):
    state, (first, second) = run_levels(UNLOADABLE[name](), [[], [external(b"x")]])
    assert state.tick_state is TickState.STUCK
    assert state.stuck is not None and not state.stuck.recoverable
    assert second.ticks == 4  # stuck for good: one tick per input
    assert vm.input_request(state).kind == "first_after"


def test_a_kernel_that_does_not_export_its_memory_does_not_run():
    state, (first,) = run_levels(build("no_memory_export"), [[]])
    assert first.outbox == ()
    assert state.stuck is not None


def test_a_host_call_in_the_start_function_is_an_init_error():
    state, (first,) = run_levels(build("start_host_call"), [[]])
    assert first.outbox == ()
    assert state.stuck is not None
