"""The durable-storage host functions of ``smart_rollup_core`` (``store_*`` and
``__internal_store_get_hash``): a key read from the caller's memory, one operation of
:class:`~soru.pvm.durable.Durable`, a result code.

Each function loads its key(s) with :func:`~soru.pvm.host_abi.load_key` and turns a
:class:`~soru.pvm.durable.DurableError` into its error code; the order of the checks and
the cost of each call are documented with the table in :mod:`soru.pvm.host_functions`,
which registers these functions by name and PVM version.
"""

from __future__ import annotations

from collections.abc import Callable

from soru.pvm.durable import MAX_STORE_IO_SIZE, Durable, DurableError, Key
from soru.pvm.host_abi import (
    MASK64,
    MEMORY_INVALID_ACCESS,
    VALUE_SIZE_EXCEEDED,
    Args,
    HostEnvironment,
    caller_memory,
    in_bounds,
    load_bytes,
    load_key,
    r32,
    s32,
    s64,
    store_bytes,
    truncated_store,
)
from soru.wasm.runtime import Instance

StoreImpl = Callable[[HostEnvironment, "Instance | None", Args], list[int]]
"""A durable-storage host function: it never suspends the machine, it returns one result."""


def store_has(env: HostEnvironment, caller: Instance | None, args: Args) -> list[int]:
    """``store_has(key_ptr, key_len) -> i32``: 0 nothing, 1 a value only, 2 sub-keys only,
    3 a value and sub-keys."""
    key = load_key(caller_memory(caller), args[0], args[1])
    if isinstance(key, int):
        return r32(key)
    has_value = env.durable.has_value(key)
    children = env.durable.list_size(key)
    if has_value:
        return r32(1 if children == 1 else 3)
    return r32(0 if children == 0 else 2)


def store_exists(env: HostEnvironment, caller: Instance | None, args: Args) -> list[int]:
    """``store_exists(key_ptr, key_len) -> i32``: 1 if anything is at the key, else 0."""
    key = load_key(caller_memory(caller), args[0], args[1])
    if isinstance(key, int):
        return r32(key)
    return r32(1 if env.durable.exists(key) else 0)


def _keyed(operation: Callable[[Durable, Key], int | None]) -> StoreImpl:
    def host(env: HostEnvironment, caller: Instance | None, args: Args) -> list[int]:
        key = load_key(caller_memory(caller), args[0], args[1])
        if isinstance(key, int):
            return r32(key)
        try:
            result = operation(env.durable, key)
        except DurableError as error:
            return r32(error.code)
        return r32(0 if result is None else result)

    return host


store_delete = _keyed(Durable.delete)
"""``store_delete(key_ptr, key_len) -> i32``: delete the value and every sub-key; 0."""

store_delete_value = _keyed(Durable.delete_value)
"""``store_delete_value(key_ptr, key_len) -> i32``: delete the value only; 0."""

store_value_size = _keyed(Durable.value_size)
"""``store_value_size(key_ptr, key_len) -> i32``: the size of the value."""


def store_create(env: HostEnvironment, caller: Instance | None, args: Args) -> list[int]:
    """``store_create(key_ptr, key_len, size) -> i32``: a zero-filled value; 0."""
    key = load_key(caller_memory(caller), args[0], args[1])
    if isinstance(key, int):
        return r32(key)
    try:
        env.durable.create(key, s32(args[2]))
    except DurableError as error:
        return r32(error.code)
    return r32(0)


def store_list_size(env: HostEnvironment, caller: Instance | None, args: Args) -> list[int]:
    """``store_list_size(key_ptr, key_len) -> i64``: the number of children, the value
    counting as one (errors are negative i64)."""
    key = load_key(caller_memory(caller), args[0], args[1])
    if isinstance(key, int):
        return [key & MASK64]
    return [env.durable.list_size(key) & MASK64]


def store_get_nth_key(env: HostEnvironment, caller: Instance | None, args: Args) -> list[int]:
    """``store_get_nth_key(key_ptr, key_len, index: i64, dst, max_size) -> i32``: the name
    of child ``index`` (``""`` for the value) at ``dst``, cut to ``max_size``; its length."""
    memory = caller_memory(caller)
    key = load_key(memory, args[0], args[1])
    if isinstance(key, int):
        return r32(key)
    try:
        name = env.durable.nth_key(key, s64(args[2]))
    except DurableError as error:
        return r32(error.code)
    return r32(truncated_store(memory, args[3], name.encode("ascii"), args[4]))


def store_get_hash(env: HostEnvironment, caller: Instance | None, args: Args) -> list[int]:
    """``__internal_store_get_hash(key_ptr, key_len, dst, max_size) -> i32``: the 32-byte
    hash of the subtree at the key (soru's Merkle hash) at ``dst``, cut to ``max_size``."""
    memory = caller_memory(caller)
    key = load_key(memory, args[0], args[1])
    if isinstance(key, int):
        return r32(key)
    try:
        digest = env.durable.subtree_hash(key)
    except DurableError as error:
        return r32(error.code)
    return r32(truncated_store(memory, args[2], bytes(digest), args[3]))


def _two_keys(operation: Callable[[Durable, Key, Key], None]) -> StoreImpl:
    def host(env: HostEnvironment, caller: Instance | None, args: Args) -> list[int]:
        memory = caller_memory(caller)
        source = load_key(memory, args[0], args[1])
        if isinstance(source, int):
            return r32(source)
        destination = load_key(memory, args[2], args[3])
        if isinstance(destination, int):
            return r32(destination)
        try:
            operation(env.durable, source, destination)
        except DurableError as error:
            return r32(error.code)
        return r32(0)

    return host


store_copy = _two_keys(Durable.copy)
"""``store_copy(from_ptr, from_len, to_ptr, to_len) -> i32``: the destination becomes a copy
of the source subtree; 0."""

store_move = _two_keys(Durable.move)
"""``store_move(from_ptr, from_len, to_ptr, to_len) -> i32``: the source subtree moves to the
destination; 0."""


def store_read(env: HostEnvironment, caller: Instance | None, args: Args) -> list[int]:
    """``store_read(key_ptr, key_len, offset, dst, max_bytes) -> i32``: up to ``max_bytes``
    (≤ 2048) bytes of the value from ``offset`` at ``dst``; the number of bytes read."""
    memory = caller_memory(caller)
    key = load_key(memory, args[0], args[1])
    if isinstance(key, int):
        return r32(key)
    try:
        data = env.durable.read(key, s32(args[2]), s32(args[4]))
    except DurableError as error:
        return r32(error.code)
    if not store_bytes(memory, args[3], data):
        return r32(MEMORY_INVALID_ACCESS)
    return r32(len(data))


def store_write(env: HostEnvironment, caller: Instance | None, args: Args) -> list[int]:
    """``store_write(key_ptr, key_len, offset, src, num_bytes) -> i32``: write the bytes into
    the value from ``offset`` (≤ its size), growing or creating it; 0."""
    memory = caller_memory(caller)
    key = load_key(memory, args[0], args[1])
    if isinstance(key, int):
        return r32(key)
    size = env.durable.find_value_size(key) or 0
    num_bytes = s32(args[4])
    if s32(size + num_bytes) < size:  # Octez's i32 overflow check, before anything else
        return r32(VALUE_SIZE_EXCEEDED)
    src = args[3]
    if not in_bounds(memory, src, num_bytes):
        return r32(MEMORY_INVALID_ACCESS)
    # Octez loads all ``num_bytes`` before refusing more than 2048; one byte more than the
    # limit gives the same outcome (read-only key, then too large) at a bounded cost.
    payload = load_bytes(memory, src, min(num_bytes, MAX_STORE_IO_SIZE + 1))
    assert payload is not None
    try:
        env.durable.write(key, s32(args[2]), payload)
    except DurableError as error:
        return r32(error.code)
    return r32(0)
