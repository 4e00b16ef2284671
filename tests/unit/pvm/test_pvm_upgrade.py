"""Kernel upgrades (``kernels/upgrade.wat``): a kernel writes a new kernel to
``/kernel/boot.wasm`` and reboots; a valid one runs next and becomes the fallback kernel; one
that cannot be decoded, linked or initialised is replaced by the fallback kernel and
``/readonly/kernel/env/upgrade_error`` tells the kernel, until a run of it returns."""

from __future__ import annotations

import pytest
from pvm_kernels import TICKS, build, external, run_levels, wasm

from soru.pvm.state import TickState

BOOT, FALLBACK = "/kernel/boot.wasm", "/readonly/kernel/boot.wasm"
UPGRADE_ERROR = "/readonly/kernel/env/upgrade_error"


def test_the_first_run_saves_the_kernel_as_fallback():
    state, (level,) = run_levels(build("upgrade"), [[]])
    assert state.durable.read_all(FALLBACK) == build("upgrade")
    assert state.durable.read_all("/who") == b"upgrader"
    assert level.ticks == 2 * TICKS


def test_an_upgrade_runs_the_new_kernel_in_the_same_level():
    new = build("upgraded")
    state, (first, second) = run_levels(build("upgrade"), [[external(new)], []])
    assert first.ticks == 3 * TICKS  # Collect, the upgrader, the new kernel
    assert first.outbox == (b"upgraded",)
    assert state.durable.read_all("/who") == b"upgraded"
    assert state.durable.read_all(BOOT) == new
    assert state.durable.read_all(FALLBACK) == new  # saved once it initialised
    assert state.durable.read_all(UPGRADE_ERROR) is None
    assert second.ticks == 2 * TICKS and second.outbox == (b"upgraded",)


def test_a_kernel_larger_than_a_store_write():
    """The upgrader writes in 2048-byte pieces; a 4000-byte kernel (a custom section pads
    it) takes two."""
    new = build("upgraded")
    name = b"pad"
    size = 4000 - len(new) - 1 - 2 - 1 - len(name)
    padding = bytes([0, *_leb128(1 + len(name) + size), len(name), *name]) + bytes(size)
    big = new + padding
    assert len(big) == 4000
    state, (first,) = run_levels(build("upgrade"), [[external(big)]])
    assert state.durable.read_all(BOOT) == big
    assert first.outbox == (b"upgraded",)


def _leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


INVALID = {
    "not wasm": lambda: b"this is not a wasm module",
    "empty": lambda: b"",
    "floats": lambda: build("floats"),
    "unknown import": lambda: build("unknown_import"),
    "truncated": lambda: build("upgraded")[:-7],
    # init errors
    "no memory": lambda: wasm('(module (func (export "kernel_run")))'),
    "data out of bounds": lambda: wasm(
        '(module (memory 1) (export "memory" (memory 0)) (data (i32.const 65535) "ab")'
        ' (func (export "kernel_run")))'
    ),
    "start traps": lambda: wasm(
        '(module (memory 1) (export "memory" (memory 0)) (func $start unreachable)'
        ' (start $start) (func (export "kernel_run")))'
    ),
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_a_failed_upgrade_restores_the_fallback_kernel(name):
    upgrader = build("upgrade")
    state, (first,) = run_levels(upgrader, [[external(INVALID[name]())]])
    assert first.ticks == 3 * TICKS  # Collect, the upgrader, the failed load (padded)
    assert state.durable.read_all(BOOT) == upgrader
    assert state.durable.read_all(FALLBACK) == upgrader
    assert state.durable.read_all(UPGRADE_ERROR) == b""
    assert state.tick_state is TickState.COLLECT and state.stuck is None

    # the next level runs the fallback kernel, which sees the flag; its return clears it
    _, (second,) = run_levels(upgrader, [[]], state=state, first_level=2)
    assert second.ticks == 2 * TICKS
    assert state.durable.read_all("/saw_upgrade_error") == b""
    assert state.durable.read_all(UPGRADE_ERROR) is None
    assert state.stuck is None


def test_an_upgrade_then_a_failed_upgrade_falls_back_to_the_new_kernel():
    """The fallback is the last kernel that initialised, not the original one."""
    upgrader = build("upgrade")
    # the upgrader installs itself again under another name: a copy with a custom section
    second_upgrader = upgrader + bytes([0, 4, 3, *b"two"])
    state, (first, second) = run_levels(
        upgrader, [[external(second_upgrader)], [external(b"garbage")]]
    )
    assert first.ticks == 3 * TICKS and second.ticks == 3 * TICKS
    assert state.durable.read_all(BOOT) == second_upgrader
    assert state.durable.read_all(FALLBACK) == second_upgrader
    assert state.durable.read_all(UPGRADE_ERROR) == b""


def test_an_upgrade_to_a_kernel_without_kernel_run_is_stuck_for_good():
    state, _ = run_levels(build("upgrade"), [[external(build("no_kernel_run"))]])
    assert state.tick_state is TickState.STUCK
    assert state.stuck is not None and not state.stuck.recoverable
