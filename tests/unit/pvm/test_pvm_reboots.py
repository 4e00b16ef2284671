"""Reboots (``kernels/reboot.wat``): a kernel that sets ``/kernel/env/reboot`` runs again in
the same level, each top-level call takes exactly ``ticks_per_kernel_run`` ticks, the reboot
counter the kernel sees counts down from 1000, and the 1001st run of a level is the last: the
PVM forces a yield and sets ``/readonly/kernel/env/too_many_reboot``."""

from __future__ import annotations

import struct
from pathlib import Path

from pvm_kernels import TICKS, build, external, keyed, run_levels, wasm

from soru.encoding import inbox
from soru.pvm import driver, vm
from soru.pvm.state import InputMessage, StuckReason, TickState
from soru.tools.inputs_file import with_markers

TESTDATA = Path(__file__).resolve().parents[4] / "shared" / "testdata" / "kernels"
TOO_MANY = "/readonly/kernel/env/too_many_reboot"


def target(n: int) -> bytes:
    return external(struct.pack("<I", n))


def u32(value: bytes | None) -> int | None:
    return None if value is None else struct.unpack("<I", value)[0]


def counters(state) -> list[int]:
    data = state.durable.read_all("/counters") or b""
    return [v for (v,) in struct.iter_unpack("<i", data)]


def test_a_kernel_that_asks_for_reboots_runs_again_in_the_same_level():
    state, (first, second) = run_levels(build("reboot"), [[target(5)], []])
    assert first.ticks == 6 * TICKS  # Collect, then five kernel_runs
    assert second.ticks == 2 * TICKS
    assert u32(state.durable.read_all("/count")) == 6
    # the counter the kernel sees: 1000 at the first run of a level, minus one per reboot
    assert counters(state) == [1000, 999, 998, 997, 996, 1000]
    assert state.reboot_counter == 1001
    assert u32(state.durable.read_all("/readonly/kernel/env/reboot_counter")) == 1001
    # the flag is written again at the yield so that the next inbox runs the kernel
    assert state.durable.read_all("/kernel/env/reboot") == b""
    assert state.durable.read_all(TOO_MANY) is None
    assert state.tick == 8 * TICKS and state.tick_state is TickState.COLLECT


def test_each_top_level_call_is_exactly_ticks_per_kernel_run():
    state = driver.originate(build("reboot"), ticks_per_kernel_run=TICKS)
    for counter, payload in enumerate(with_markers([target(3)])):
        vm.set_input(state, InputMessage(1, counter, payload))
    vm.compute(state, TICKS - state.tick)  # to the end of the Collect call
    starts = [state.last_top_level_call]
    while vm.input_request(state).kind == "none":
        vm.compute(state, TICKS)
        assert state.tick % TICKS == 0
        starts.append(state.last_top_level_call)
    assert starts == [TICKS, 2 * TICKS, 3 * TICKS, 4 * TICKS]
    assert state.tick == 4 * TICKS


def test_one_tick_at_a_time_at_the_boundary():
    """The boundary is the last tick of a call: Padding until it, then Snapshot."""
    state = driver.originate(build("reboot"), ticks_per_kernel_run=TICKS)
    for counter, payload in enumerate(with_markers([target(2)])):
        vm.set_input(state, InputMessage(1, counter, payload))
    assert vm.compute(state, TICKS - 1 - state.tick) == TICKS - 1 - 4
    assert state.tick == TICKS - 1 and state.tick_state is TickState.PADDING
    assert vm.compute(state, 1) == 1
    assert state.tick == TICKS and state.tick_state is TickState.SNAPSHOT
    assert state.last_top_level_call == TICKS and state.reboot_counter == 1000


def test_the_thousand_reboot_limit_forces_a_yield():
    state, (first,) = run_levels(build("reboot"), [[target(5000)]])
    assert first.ticks == (1 + 1001) * TICKS  # Collect, the first run and 1000 reboots
    assert u32(state.durable.read_all("/count")) == 1001
    assert counters(state) == list(range(1000, -1, -1))  # the last run saw 0
    # the forced yield: the flag for the kernel, a fresh counter, the reboot flag set again
    assert state.durable.read_all(TOO_MANY) == b""
    assert state.durable.read_all("/kernel/env/reboot") == b""
    assert state.reboot_counter == 1001
    assert u32(state.durable.read_all("/readonly/kernel/env/reboot_counter")) == 1001
    assert state.tick_state is TickState.COLLECT and state.stuck is None
    assert state.tick == 1002 * TICKS

    _, (second, third) = run_levels(build("reboot"), [[target(1)], []], state=state, first_level=2)
    assert u32(state.durable.read_all("/saw_too_many")) == 1  # level 2's run saw the flag
    assert counters(state)[1001:] == [1000, 1000]
    assert second.ticks == 2 * TICKS and third.ticks == 2 * TICKS
    assert state.durable.read_all(TOO_MANY) is None  # a normal yield clears it
    assert u32(state.durable.read_all("/count")) == 2


def test_echo_kernel_reboots_once_per_message():
    """Octez's echo kernel reads one message per run and reboots unless it read
    End_of_level: SOL, Info_per_level, one message, EOL — four runs."""
    echo = (TESTDATA / "echo.wasm").read_bytes()
    state, (first, second) = run_levels(
        echo, [[inbox.External(b"hello").encode()], [inbox.External(b"a").encode()] * 3]
    )
    assert first.ticks == 5 * TICKS and first.outbox == (b"hello",)
    assert second.ticks == 7 * TICKS and second.outbox == (b"a",) * 3


READ_ONE = """
(module
  (import "smart_rollup_core" "read_input" (func $read_input (param i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_write"
    (func $store_write (param i32 i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_value_size"
    (func $store_value_size (param i32 i32) (result i32)))
  (memory 1)
  (export "memory" (memory 0))
  (data (i32.const 0) "/seen")
  ;; read one message per run, append its (level, counter) to /seen, never reboot
  (func (export "kernel_run")
    (local $size i32)
    (drop (call $read_input (i32.const 0x100) (i32.const 0x200) (i32.const 64)))
    (local.set $size (call $store_value_size (i32.const 0) (i32.const 5)))
    (if (i32.lt_s (local.get $size) (i32.const 0)) (then (local.set $size (i32.const 0))))
    (drop (call $store_write (i32.const 0) (i32.const 5) (local.get $size) (i32.const 0x100)
      (i32.const 8)))))
"""


def test_unread_inputs_are_dropped_at_the_yield():
    """A kernel that reads one message per level sees the Start_of_level of each level and
    nothing else: the rest of the input buffer is emptied when it yields."""
    messages = [inbox.External(b"x").encode()] * 3
    state, results = run_levels(wasm(READ_ONE), [messages, messages])
    assert [r.ticks for r in results] == [2 * TICKS, 2 * TICKS]
    seen = list(struct.iter_unpack("<ii", state.durable.read_all("/seen")))
    assert seen == [(1, 0), (2, 0)]
    assert not state.inputs


def _used_ticks(repeat: int, ticks: int) -> tuple[int, object]:
    """Ticks a top-level call of the interpreter making ``repeat`` store_has calls spends
    before Padding (Snapshot tick included), stepping one tick at a time."""
    state = driver.originate(build("host_calls"), ticks_per_kernel_run=ticks)
    message = external(keyed("store_has", "/k", repeat=repeat))
    for counter, payload in enumerate(with_markers([message])):
        vm.set_input(state, InputMessage(1, counter, payload))
    vm.compute(state, ticks - state.tick)
    assert state.tick_state is TickState.SNAPSHOT
    start = state.tick
    while state.tick_state is not TickState.PADDING:
        if state.tick_state is TickState.STUCK:
            return state.tick - start, state
        vm.compute(state, 1)
    return state.tick - start, state


def test_a_kernel_run_may_use_every_tick_but_the_boundary():
    """A call is ``ticks_per_kernel_run`` ticks and its last one is the boundary: the kernel
    may compute for ``ticks_per_kernel_run − 1`` ticks, and one more is too many."""
    big = 1 << 40
    one, two, three = (_used_ticks(n, big)[0] for n in (1, 2, 3))
    per_call = two - one
    assert per_call > 0 and three - two == per_call  # linear in the number of calls
    budget = 2000
    fits = (budget - 1 - one) // per_call + 1  # the most calls that end before the boundary
    used, state = _used_ticks(fits, budget)
    assert used <= budget - 1 and state.tick_state is TickState.PADDING
    assert used + per_call > budget - 1
    _, state = _used_ticks(fits + 1, budget)
    assert state.tick_state is TickState.STUCK and state.stuck is StuckReason.TOO_MANY_TICKS
    assert state.tick == 2 * budget  # stuck at the boundary tick itself
