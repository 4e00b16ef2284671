"""The example kernels of ``kernels/`` for the PVM tests: built from their WAT source, run
through the driver, and the message format of the host-call interpreter kernel.

Pytest puts this directory on ``sys.path`` (the tests here are not a package), so the PVM
tests import this module by its name. Kernels are compiled with ``wasmtime.wat2wasm`` once
per session.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from soru.encoding import inbox
from soru.pvm import driver
from soru.pvm.host_functions import HOST_FUNCTIONS
from soru.pvm.reveals import RevealProvider
from soru.pvm.state import PvmState
from soru.tools.inputs_file import with_markers

KERNELS = Path(__file__).resolve().parents[3] / "kernels"
TICKS = 50_000
"""Ticks per kernel_run in the tests: small, so padding shows, and padding costs O(1)."""

ROLLUP = bytes(range(1, 21))
NO_REVEALS = RevealProvider(None, ROLLUP, 0)


@functools.cache
def build(name: str) -> bytes:
    """The binary of ``kernels/<name>.wat``."""
    return wasmtime.wat2wasm((KERNELS / f"{name}.wat").read_text(encoding="utf-8"))


def wasm(text: str) -> bytes:
    """A one-off module from WAT text."""
    return wasmtime.wat2wasm(text)


def external(payload: bytes) -> bytes:
    return inbox.External(payload).encode()


def run_levels(
    kernel: bytes,
    levels: list[list[bytes]],
    *,
    ticks: int = TICKS,
    reveals: RevealProvider = NO_REVEALS,
    state: PvmState | None = None,
    first_level: int = 1,
    **originate,
) -> tuple[PvmState, list[driver.LevelResult]]:
    """Originate ``kernel`` (unless ``state`` is given) and run one inbox level per list of
    messages (markers added); returns the state and each level's result."""
    if state is None:
        state = driver.originate(kernel, ticks_per_kernel_run=ticks, **originate)
    results = []
    for offset, messages in enumerate(levels):
        level = first_level + offset
        results.append(driver.run_level(state, level, with_markers(messages), reveals))
    return state, results


# --- the host-call interpreter (kernels/host_calls.wat) ----------------------------------------

HOST_CALL_NAMES = tuple(spec.name for spec in HOST_FUNCTIONS)
"""Function indices of the interpreter: the order of ``HOST_FUNCTIONS``."""

MEMORY_SIZE = 0x10000
MESSAGE = 0x1000
DATA = 0x1034
"""Where the data of a call message lands in the kernel's memory."""
SCRATCH = 0x3000
"""Memory the interpreter leaves alone, for destinations."""
HEADER = struct.Struct("<BHII5q")
"""The call header after the external tag: function, repeat, dump address and length, args."""


def host_call(
    name: str,
    *args: int,
    data: bytes = b"",
    dump: tuple[int, int] = (0, 0),
    repeat: int = 1,
) -> bytes:
    """The payload of an external message making the interpreter call host function
    ``name`` (wrap it with :func:`external`)."""
    padded = [_signed64(a) for a in args] + [0] * (5 - len(args))
    header = HEADER.pack(HOST_CALL_NAMES.index(name), repeat, dump[0], dump[1], *padded)
    return header + data


def _signed64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value


@dataclass(frozen=True, slots=True)
class Logged:
    """One call's result and the memory dumped after it."""

    result: int
    dump: bytes


def read_log(state: PvmState) -> list[Logged]:
    """Every entry the interpreter appended to ``/log``."""
    log = state.durable.read_all("/log") or b""
    entries, at = [], 0
    while at < len(log):
        result, length = struct.unpack_from("<qI", log, at)
        entries.append(Logged(result, log[at + 12 : at + 12 + length]))
        at += 12 + length
    return entries


class Layout:
    """Lays byte strings out in a call's data; ``put`` returns ``(address, length)``."""

    def __init__(self) -> None:
        self.data = b""

    def put(self, value: bytes | str) -> tuple[int, int]:
        raw = value.encode() if isinstance(value, str) else value
        address = DATA + len(self.data)
        self.data += raw
        return address, len(raw)


def keyed(name: str, key: bytes | str, *rest: int, **options) -> bytes:
    """A call whose first two arguments are a key laid out in the data."""
    layout = Layout()
    address, length = layout.put(key)
    return host_call(name, address, length, *rest, data=layout.data, **options)


def two_keys(name: str, source: bytes | str, destination: bytes | str) -> bytes:
    layout = Layout()
    return host_call(name, *layout.put(source), *layout.put(destination), data=layout.data)


def write(key: str, value: bytes, offset: int = 0) -> bytes:
    """``store_write(key, offset, value)``."""
    layout = Layout()
    key_at = layout.put(key)
    value_at, size = layout.put(value)
    return host_call("store_write", *key_at, offset, value_at, size, data=layout.data)
