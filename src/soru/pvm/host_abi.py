"""The host-call ABI of ``smart_rollup_core``: error codes, limits, the environment the host
functions act on, and how they read arguments and touch the caller's memory.

It sits below :mod:`soru.pvm.host_store` (the durable-storage functions) and
:mod:`soru.pvm.host_functions` (the other functions, reveals and the table by PVM version),
which documents, function by function, the checks made and the errors they give.

Conventions
    Arguments arrive as unsigned bit patterns; Octez reads pointers as unsigned and sizes,
    offsets and counts as *signed* ``i32`` (a "negative" size is ``≥ 2^31`` unsigned).
    Results are returned as bit patterns too (−6 is ``0xFFFFFFFA``). Memory is
    ``caller.mems[0].data`` and is used only through ``len``, slicing and slice assignment
    (``soru.wasm.exec.context``), so the same code runs on a bytearray, a memory read lazily
    from the Merkle tree, or a wasmtime memory.
"""

from __future__ import annotations

from typing import Protocol

from soru.pvm.durable import MAX_KEY_LENGTH, Durable, DurableError, Key, parse_key
from soru.wasm.errors import Trap
from soru.wasm.runtime import Instance

# --- error codes and limits ----------------------------------------------------------------

KEY_TOO_LARGE = -1
INVALID_KEY = -2
NOT_A_VALUE = -3
INVALID_ACCESS = -4
VALUE_SIZE_EXCEEDED = -5
MEMORY_INVALID_ACCESS = -6
INPUT_OUTPUT_TOO_LARGE = -7
GENERIC_INVALID_ACCESS = -8
READONLY_VALUE = -9
NOT_A_NODE = -10
FULL_OUTBOX = -11
INVALID_SUBKEY_INDEX = -12
VALUE_ALREADY_EXISTS = -13

MAX_INPUT_OUTPUT_SIZE = 4096
"""Bytes of an input read, an output written, a reveal payload or answer, at most."""

INPUT_INFO_SIZE = 8
"""``read_input`` writes ``{level: i32 LE; id: i32 LE}`` at ``info_ptr``."""

HASH_SIZE = 32
"""Bytes written by ``__internal_store_get_hash`` (before truncation to ``max_size``)."""

MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF


class HostCrash(Trap):
    """A host call Octez fails on with an exception rather than an error code (a negative
    ``max_size``, no single memory): the PVM treats it as an interpreter crash."""


# --- the environment ---------------------------------------------------------------------------


class HostEnvironment(Protocol):
    """What the host functions act on; the PVM state implements it.

    ``next_input`` pops the oldest unread input as ``(level, message counter, payload)``;
    ``write_output`` appends to the current level's outbox and returns False when it is full
    (100 messages); ``debug`` receives ``write_debug`` bytes (only with ``debug=True``).
    """

    durable: Durable

    def next_input(self) -> tuple[int, int, bytes] | None: ...

    def write_output(self, payload: bytes) -> bool: ...

    def debug(self, data: bytes) -> None: ...


# --- memory ------------------------------------------------------------------------------------


def s32(value: int) -> int:
    """The 32-bit pattern ``value`` read as a signed ``i32``."""
    value &= MASK32
    return value - (1 << 32) if value & 0x8000_0000 else value


def s64(value: int) -> int:
    """The 64-bit pattern ``value`` read as a signed ``i64``."""
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


def caller_memory(caller: Instance | None):
    """The caller's memory; Octez crashes unless the caller has exactly one."""
    if caller is None or len(caller.mems) != 1:
        raise HostCrash("host functions need a caller with exactly one memory")
    return caller.mems[0].data


def in_bounds(memory, address: int, size: int) -> bool:
    """Whether ``size`` bytes at ``address`` lie inside memory (always, for no bytes)."""
    return size == 0 or address + size <= len(memory)


def load_bytes(memory, address: int, size: int) -> bytes | None:
    """``size`` (≥ 0) bytes at ``address``, or None when they leave the memory."""
    if size == 0:
        return b""
    if address + size > len(memory):
        return None
    return bytes(memory[address : address + size])


def store_bytes(memory, address: int, data: bytes) -> bool:
    """Store ``data`` at ``address``; when it runs past the end of memory, store the bytes
    that fit and return False (the reference PVM stores byte by byte)."""
    size = len(data)
    if size == 0:
        return True
    end = len(memory)
    if address + size <= end:
        memory[address : address + size] = data
        return True
    if address < end:
        memory[address:end] = data[: end - address]
    return False


def load_io(memory, address: int, size_bits: int) -> bytes | int:
    """Octez ``Aux.load_bytes``: at most 4096 bytes (−7), not negative (−8), in memory (−6)."""
    size = s32(size_bits)
    if size > MAX_INPUT_OUTPUT_SIZE:
        return INPUT_OUTPUT_TOO_LARGE
    if size < 0:
        return GENERIC_INVALID_ACCESS
    data = load_bytes(memory, address, size)
    return MEMORY_INVALID_ACCESS if data is None else data


def load_key(memory, address: int, length_bits: int) -> Key | int:
    """Octez ``load_key_from_memory``: the length first (−1, −8), then memory (−6), then
    the syntax (−2)."""
    length = s32(length_bits)
    if length > MAX_KEY_LENGTH:
        return KEY_TOO_LARGE
    if length < 0:
        return GENERIC_INVALID_ACCESS
    raw = load_bytes(memory, address, length)
    if raw is None:
        return MEMORY_INVALID_ACCESS
    try:
        return parse_key(raw)
    except DurableError as error:
        return error.code


def truncated_store(memory, dst: int, data: bytes, max_size_bits: int) -> int:
    """Store ``data`` cut to ``max_size`` bytes; the length stored, or −6."""
    max_size = s32(max_size_bits)
    if max_size < 0:
        raise HostCrash("negative max_size")
    data = data[:max_size]
    if not store_bytes(memory, dst, data):
        return MEMORY_INVALID_ACCESS
    return len(data)


def r32(value: int) -> list[int]:
    """The result list of a call returning the ``i32`` ``value``, as a bit pattern."""
    return [value & MASK32]


Args = list
"""The arguments of a host call: unsigned bit patterns, one per Wasm parameter."""
