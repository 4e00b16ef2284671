"""Durable storage: the kernel's persistent key-value store, kept in the PVM's Merkle tree.

Durable storage is what survives between kernel runs (``../shared/SORU-SPEC.md`` §5.4): a
tree of *keys* where each key may hold a *value* (a byte string of up to 2^31 − 1 bytes)
and sub-keys at the same time. Kernels reach it through the ``store_*`` host functions
(``soru.pvm.host_functions``); the PVM itself uses it for the kernel, its fallback and its
flags. This module knows the rules of keys and values and nothing of WebAssembly memory:
each operation raises a :class:`DurableError` subclass whose ``code`` is the error code the
host function returns for it.

Keys (as Octez ``Durable.key_of_string_exn``)
    A key is ``/seg1/seg2/…``: each segment non-empty, made of ``[A-Za-z0-9._-]``; at most
    240 bytes (250 − ``len("/durable")`` − ``len("/@")``). The empty key ``""`` is valid and
    names the root. Keys whose first segment is ``readonly`` — and the root — are read-only
    for kernels: writes, deletions, and copies or moves onto them fail with
    :class:`ReadonlyValue` unless the PVM passes ``edit_readonly=True``.

Layout in the Merkle tree (``durable.tree`` is the durable root; the PVM grafts it into its
state tree)::

    seg1/…/segN/@             the value of key /seg1/…/segN: its length, u64 big-endian
    seg1/…/segN/@/<i>         chunk i (decimal, no leading zeros) of that value

The value marker ``@`` cannot be a key segment, so a value never collides with a key, and
the value counts as one child of its key exactly as in Octez (``store_list_size``), listed
with the empty name (``store_get_nth_key``). Chunk i covers bytes ``[2048·i, 2048·(i+1))``;
as a read or write moves at most 2048 bytes, it touches the length and at most two chunks.
Chunks are stored *canonically*: a chunk is present only if it holds a non-zero byte, and
its trailing zero bytes are not stored. So a zero-filled value of any size costs one node
(``store_create`` is O(1)), and the tree — hence its hash — depends only on the logical
contents of the values, not on how they were written.

Cost of one operation (the PVM proves a host call in one tick): every operation walks the
key's path (at most 120 segments) once; ``read``/``write`` then touch the value node and at
most two chunks; ``create`` one node; ``delete``, ``delete_value``, ``copy``, ``move`` and
``graft`` rewrite the path only (a subtree is shared by ``Tree.graft``, never copied or
read); ``list_size`` reads one trie root; ``nth_key`` one root-to-leaf trie path;
``subtree_hash`` nothing below the key. Only :meth:`Durable.read_all` and
:meth:`Durable.write_all`, which the PVM uses for whole values (the kernel, flags), are
proportional to the value's size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from soru.base.errors import SoruError
from soru.base.hashes import Hash
from soru.merkle import Tree

MAX_KEY_LENGTH = 240
"""Bytes in a key, at most (Octez ``Durable.max_key_length``)."""

MAX_STORE_IO_SIZE = 2048
"""Bytes one ``store_read``/``store_write`` moves, at most (Octez ``max_store_io_size``)."""

MAX_VALUE_SIZE = 2**31 - 1
"""Bytes in a value, at most: sizes are returned as non-negative ``i32``."""

CHUNK_SIZE = 2048
"""Bytes per chunk of a value in the tree (soru's layout; Octez uses 512)."""

VALUE_MARKER = "@"
"""The tree name under a key's path that holds the key's value."""

READONLY_SEGMENT = "readonly"

_KEY_SYNTAX = re.compile(rb"(?:/[A-Za-z0-9._-]+)*")
_LENGTH_SIZE = 8


# --- errors ------------------------------------------------------------------------------------


class DurableError(SoruError):
    """A durable-storage operation that cannot be done; ``code`` is the host-function error
    code (``smart_rollup_core``) that reports it to the kernel."""

    code: int = 0


class KeyTooLarge(DurableError):
    """A key longer than :data:`MAX_KEY_LENGTH` bytes."""

    code = -1


class InvalidKey(DurableError):
    """Bytes that are not a key (see the module docstring for the syntax)."""

    code = -2


class ValueNotFound(DurableError):
    """The key holds no value (``Store_not_a_value``)."""

    code = -3


class OutOfBounds(DurableError):
    """An offset outside the value (``Store_invalid_access``)."""

    code = -4


class ValueSizeExceeded(DurableError):
    """A value would exceed :data:`MAX_VALUE_SIZE` bytes, or a size is negative."""

    code = -5


class IOTooLarge(DurableError):
    """More than :data:`MAX_STORE_IO_SIZE` bytes asked of one read or write."""

    code = -7


class GenericInvalidAccess(DurableError):
    """A negative byte count or write offset (Octez fails on them with an exception that
    its host functions report as ``Generic_invalid_access``)."""

    code = -8


class ReadonlyValue(DurableError):
    """A write, deletion, or copy/move destination under ``/readonly`` (or the root)."""

    code = -9


class TreeNotFound(DurableError):
    """Nothing at the key: no value and no sub-keys (``Store_not_a_node``)."""

    code = -10


class IndexTooLarge(DurableError):
    """A sub-key index outside ``[0, list_size)`` (``Store_invalid_subkey_index``)."""

    code = -12


class ValueAlreadyExists(DurableError):
    """``create`` on a key that already holds a value."""

    code = -13


# --- keys --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Key:
    """A parsed key: its segments (``()`` for the root) and whether kernels may modify it."""

    path: tuple[str, ...]
    readonly: bool

    def __str__(self) -> str:
        return "".join("/" + segment for segment in self.path)

    @property
    def value_path(self) -> tuple[str, ...]:
        """Where the key's value lives in the tree."""
        return self.path + (VALUE_MARKER,)


def parse_key(key: str | bytes | bytearray | Key) -> Key:
    """Parse a key; raises :class:`KeyTooLarge` or :class:`InvalidKey`."""
    if isinstance(key, Key):
        return key
    raw = key.encode("utf-8", "surrogateescape") if isinstance(key, str) else bytes(key)
    if len(raw) > MAX_KEY_LENGTH:
        raise KeyTooLarge(f"a key has at most {MAX_KEY_LENGTH} bytes, not {len(raw)}")
    if _KEY_SYNTAX.fullmatch(raw) is None:
        raise InvalidKey(f"invalid durable key {raw!r}")
    path = tuple(raw[1:].decode("ascii").split("/")) if raw else ()
    return Key(path, not path or path[0] == READONLY_SEGMENT)


KeyLike = str | bytes | bytearray | Key


def _writable(key: Key, edit_readonly: bool) -> Key:
    if key.readonly and not edit_readonly:
        raise ReadonlyValue(f"key {str(key)!r} is read-only")
    return key


# --- the store ---------------------------------------------------------------------------------


def _encode_length(size: int) -> bytes:
    return size.to_bytes(_LENGTH_SIZE, "big")


def _chunk_name(index: int) -> str:
    return str(index)


class Durable:
    """Durable storage over an immutable Merkle tree.

    ``tree`` is the current tree; every modification replaces it with a new tree (the old one
    stays valid, so a caller may keep it to roll back). All methods take keys as text, bytes
    or :class:`Key`.
    """

    __slots__ = ("tree",)

    def __init__(self, tree: Tree | None = None) -> None:
        self.tree = Tree.empty() if tree is None else tree

    def __repr__(self) -> str:
        return f"Durable({self.tree.hash.hex()})"

    # --- queries ---------------------------------------------------------------------------

    def exists(self, key: KeyLike) -> bool:
        """Whether anything (a value or sub-keys) is at ``key``; the root always exists."""
        k = parse_key(key)
        return not k.path or self.tree.has(k.path)

    def has_value(self, key: KeyLike) -> bool:
        """Whether ``key`` holds a value."""
        return self.tree.has(parse_key(key).value_path)

    def list_size(self, key: KeyLike) -> int:
        """The number of children of ``key``, its value counting as one (0 if absent)."""
        return self.tree.child_count(parse_key(key).path)

    def nth_key(self, key: KeyLike, index: int) -> str:
        """The name of child ``index`` of ``key`` — ``""`` for the key's own value.

        Children are numbered in the tree's trie order (the order of the hashes of their
        names: stable, and O(log n) to index). Octez lists small directories by name and
        large ones in hash order (Irmin inodes), which is why the host function is
        deprecated; a kernel can rely only on indices ``0 … list_size − 1`` naming every
        child once. Raises :class:`TreeNotFound` or :class:`IndexTooLarge`.
        """
        k = parse_key(key)
        if not (not k.path or self.tree.has(k.path)):
            raise TreeNotFound(f"nothing at {str(k)!r}")
        name = self.tree.nth_child(k.path, index) if index >= 0 else None
        if name is None:
            raise IndexTooLarge(f"{str(k)!r} has no child number {index}")
        return "" if name == VALUE_MARKER else name

    def subtree_hash(self, key: KeyLike) -> Hash:
        """The hash of the subtree at ``key`` (soru's Merkle hash, not Irmin's); raises
        :class:`TreeNotFound`."""
        k = parse_key(key)
        if not k.path:
            return self.tree.hash
        found = self.tree.subtree_hash(k.path)
        if found is None:
            raise TreeNotFound(f"nothing at {str(k)!r}")
        return found

    def find_value_size(self, key: KeyLike) -> int | None:
        """The size of the value at ``key``, or None if it holds none."""
        raw = self.tree.get(parse_key(key).value_path)
        return None if raw is None else int.from_bytes(raw, "big")

    def value_size(self, key: KeyLike) -> int:
        """The size of the value at ``key``; raises :class:`ValueNotFound`."""
        size = self.find_value_size(key)
        if size is None:
            raise ValueNotFound(f"no value at {str(parse_key(key))!r}")
        return size

    def read(self, key: KeyLike, offset: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` bytes of the value at ``key`` from ``offset`` (fewer at its end).

        Checked in Octez's order: ``max_bytes`` > 2048 → :class:`IOTooLarge`; no value →
        :class:`ValueNotFound`; ``offset`` not in ``[0, size)`` → :class:`OutOfBounds` (so an
        empty value cannot be read at all); ``max_bytes`` < 0 → :class:`GenericInvalidAccess`.
        """
        if max_bytes > MAX_STORE_IO_SIZE:
            raise IOTooLarge(f"a read moves at most {MAX_STORE_IO_SIZE} bytes, not {max_bytes}")
        k = parse_key(key)
        size = self.value_size(k)
        if not 0 <= offset < size:
            raise OutOfBounds(f"offset {offset} outside the value of {size} bytes")
        if max_bytes < 0:
            raise GenericInvalidAccess(f"negative byte count {max_bytes}")
        end = min(offset + max_bytes, size)
        return self._read_range(k.value_path, size, offset, end)

    def read_all(self, key: KeyLike) -> bytes | None:
        """The whole value at ``key``, or None (O(size): for the PVM, not for host calls)."""
        k = parse_key(key)
        size = self.find_value_size(k)
        if size is None:
            return None
        return self._read_range(k.value_path, size, 0, size)

    def _read_range(self, vpath: tuple[str, ...], size: int, start: int, end: int) -> bytes:
        if start >= end:
            return b""
        parts = []
        get = self.tree.get
        for index in range(start // CHUNK_SIZE, (end - 1) // CHUNK_SIZE + 1):
            base = index * CHUNK_SIZE
            stored = get(vpath + (_chunk_name(index),)) or b""
            lo, hi = max(start, base) - base, min(end, base + CHUNK_SIZE) - base
            piece = stored[lo:hi]
            parts.append(piece + bytes(hi - lo - len(piece)))
        return b"".join(parts)

    # --- modifications ---------------------------------------------------------------------

    def write(self, key: KeyLike, offset: int, data: bytes, *, edit_readonly: bool = False) -> None:
        """Write ``data`` into the value at ``key`` from ``offset``, growing the value (and
        creating it, even for empty ``data``, when absent).

        Checked in Octez's order: read-only key → :class:`ReadonlyValue`; more than 2048
        bytes → :class:`IOTooLarge`; ``offset`` beyond the end → :class:`OutOfBounds`;
        negative ``offset`` → :class:`GenericInvalidAccess`; a size beyond 2^31 − 1 →
        :class:`ValueSizeExceeded`.
        """
        k = _writable(parse_key(key), edit_readonly)
        if len(data) > MAX_STORE_IO_SIZE:
            raise IOTooLarge(f"a write moves at most {MAX_STORE_IO_SIZE} bytes, not {len(data)}")
        size = self.find_value_size(k)
        old = 0 if size is None else size
        if offset > old:
            raise OutOfBounds(f"offset {offset} beyond the value of {old} bytes")
        if offset < 0:
            raise GenericInvalidAccess(f"negative offset {offset}")
        new = max(old, offset + len(data))
        if new > MAX_VALUE_SIZE:
            raise ValueSizeExceeded(f"a value holds at most {MAX_VALUE_SIZE} bytes")
        vpath = k.value_path
        tree = self.tree
        if size != new:
            tree = tree.set(vpath, _encode_length(new))
        end = offset + len(data)
        index = offset // CHUNK_SIZE
        while index * CHUNK_SIZE < end:
            base = index * CHUNK_SIZE
            cpath = vpath + (_chunk_name(index),)
            lo, hi = offset - base if offset > base else 0, min(end - base, CHUNK_SIZE)
            chunk = bytearray(tree.get(cpath) or b"")
            if len(chunk) < hi:
                chunk.extend(bytes(hi - len(chunk)))
            chunk[lo:hi] = data[base + lo - offset : base + hi - offset]
            stripped = bytes(chunk).rstrip(b"\x00")
            tree = tree.set(cpath, stripped) if stripped else tree.delete(cpath)
            index += 1
        self.tree = tree

    def write_all(self, key: KeyLike, value: bytes, *, edit_readonly: bool = False) -> None:
        """Make ``value`` the whole value at ``key``, replacing any previous one (O(size): for
        the PVM, not for host calls). Raises :class:`ReadonlyValue`, :class:`ValueSizeExceeded`."""
        k = _writable(parse_key(key), edit_readonly)
        if len(value) > MAX_VALUE_SIZE:
            raise ValueSizeExceeded(f"a value holds at most {MAX_VALUE_SIZE} bytes")
        items: dict[tuple[str, ...], bytes] = {(): _encode_length(len(value))}
        for index, start in enumerate(range(0, len(value), CHUNK_SIZE)):
            chunk = bytes(value[start : start + CHUNK_SIZE]).rstrip(b"\x00")
            if chunk:
                items[(_chunk_name(index),)] = chunk
        self.tree = self.tree.graft(k.value_path, Tree.from_items(items))

    def create(self, key: KeyLike, size: int, *, edit_readonly: bool = False) -> None:
        """Create a zero-filled value of ``size`` bytes at ``key`` in O(1).

        Checked in Octez's order: ``size`` outside ``[0, 2^31 − 1]`` →
        :class:`ValueSizeExceeded`; read-only key → :class:`ReadonlyValue`; a value already
        there → :class:`ValueAlreadyExists`.
        """
        if not 0 <= size <= MAX_VALUE_SIZE:
            raise ValueSizeExceeded(f"a value holds 0 to {MAX_VALUE_SIZE} bytes, not {size}")
        k = _writable(parse_key(key), edit_readonly)
        if self.tree.has(k.value_path):
            raise ValueAlreadyExists(f"{str(k)!r} already holds a value")
        self.tree = self.tree.set(k.value_path, _encode_length(size))

    def delete(self, key: KeyLike, *, edit_readonly: bool = False) -> None:
        """Delete the value at ``key`` and every key below it (nothing there is no error)."""
        k = _writable(parse_key(key), edit_readonly)
        self.tree = self.tree.delete(k.path)

    def delete_value(self, key: KeyLike, *, edit_readonly: bool = False) -> None:
        """Delete only the value at ``key``; its sub-keys stay (nothing there is no error)."""
        k = _writable(parse_key(key), edit_readonly)
        self.tree = self.tree.delete(k.value_path)

    def copy(self, source: KeyLike, destination: KeyLike, *, edit_readonly: bool = False) -> None:
        """Make ``destination`` hold exactly what ``source`` holds (value and sub-keys),
        replacing what it held; O(1) in the size of the subtree.

        The source may be read-only. Checked in Octez's order: read-only destination →
        :class:`ReadonlyValue`; nothing at the source → :class:`TreeNotFound`.
        """
        src = parse_key(source)
        dst = _writable(parse_key(destination), edit_readonly)
        self.tree = self.tree.graft(dst.path, self._get_subtree(src))

    def move(self, source: KeyLike, destination: KeyLike, *, edit_readonly: bool = False) -> None:
        """Move what ``source`` holds to ``destination`` (replacing what it held): take the
        source subtree, delete the source, graft the subtree at the destination — Octez's
        order, which also fixes the outcome when one key is a prefix of the other.

        Checked in Octez's order: read-only source, then read-only destination →
        :class:`ReadonlyValue`; nothing at the source → :class:`TreeNotFound`.
        """
        src = _writable(parse_key(source), edit_readonly)
        dst = _writable(parse_key(destination), edit_readonly)
        moved = self._get_subtree(src)
        self.tree = self.tree.delete(src.path).graft(dst.path, moved)

    def _get_subtree(self, key: Key) -> Tree:
        if not key.path:
            return self.tree
        found = self.tree.subtree(key.path)
        if found is None:
            raise TreeNotFound(f"nothing at {str(key)!r}")
        return found
