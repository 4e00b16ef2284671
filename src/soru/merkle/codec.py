"""How nodes are written to a node store and read back lazily.

A node store is content-addressed: it maps the *hash* of a node or branch (as defined in
:mod:`soru.merkle.nodes`) to the bytes below. Leaves are not stored on their own: a leaf is
written inline in its parent (the node whose only child it is, or a branch), which halves the
number of stored objects and reads. The key of a stored object is not the hash of these bytes
but the hash of the object they describe; :func:`decode_stored` trusts the key it is given.

Stored encoding, version 1 (integers big-endian)::

    stored   := 0x01 (version) body
    body     := 0x01 (node)   flags:u8 [len:u16 value] [slot]      flags: bit 0 value, bit 1
                                                                   children; other bits 0
              | 0x02 (branch) bit:u8 count:u32 slot(left) slot(right)
    slot     := 0x00 hash:32                      a stored branch
              | 0x01 len:u8 name:len hash:32      an inline leaf: child name, child node hash

A tree read from a store is made of :class:`StoreStub` objects that load their object on first
use (:meth:`soru.merkle.tree.Tree.open`); :func:`collect_new` finds what a tree has that a store
does not (objects created since the tree was loaded), so persisting writes only new nodes.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, NoReturn

from soru.merkle.errors import CorruptNode, MerkleError
from soru.merkle.nodes import (
    MAX_VALUE_SIZE,
    VERSION,
    Branch,
    Leaf,
    Node,
    Stub,
    ValueStub,
    hash_of,
    key_of,
)

if TYPE_CHECKING:
    from soru.merkle.store import NodeStore

KIND_NODE = 0x01
KIND_BRANCH = 0x02
SLOT_HASH = 0x00
SLOT_LEAF = 0x01

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class Cursor:
    """A read position in ``data``; every failure raises ``error(message, offset)``."""

    __slots__ = ("data", "pos", "error")

    def __init__(self, data: bytes, error: type[MerkleError]) -> None:
        self.data = data
        self.pos = 0
        self.error = error

    def fail(self, message: str, offset: int | None = None) -> NoReturn:
        raise self.error(message, self.pos if offset is None else offset)

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            self.fail(f"truncated: {size} bytes needed, {len(self.data) - self.pos} left")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        if self.pos >= len(self.data):
            self.fail("truncated: 1 byte needed, 0 left")
        byte = self.data[self.pos]
        self.pos += 1
        return byte

    def u16(self) -> int:
        return _U16.unpack(self.take(2))[0]

    def u32(self) -> int:
        return _U32.unpack(self.take(4))[0]

    def name(self) -> str:
        """A child name: ``len:u8`` then that many bytes of UTF-8, 1 <= len <= 255."""
        start = self.pos
        size = self.u8()
        if size == 0:
            self.fail("empty child name", start)
        raw = self.take(size)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.fail("child name is not UTF-8", start)

    def value(self) -> bytes:
        start = self.pos
        size = self.u16()
        if size > MAX_VALUE_SIZE:
            self.fail(f"value of {size} bytes exceeds {MAX_VALUE_SIZE}", start)
        return self.take(size)

    def expect_end(self) -> None:
        if self.pos != len(self.data):
            self.fail(f"{len(self.data) - self.pos} trailing bytes")


def name_field(name: str) -> bytes:
    raw = name.encode("utf-8")
    return bytes((len(raw),)) + raw


# --- lazily loaded objects ------------------------------------------------------------------


class StoreStub(Stub):
    """A node or branch in ``store``, loaded on first :meth:`resolve` (and cached)."""

    __slots__ = ("store", "token", "_object")

    def __init__(self, store: NodeStore, token: object, node_hash: bytes) -> None:
        self._hash = node_hash
        self.store = store
        self.token = token
        self._object: Node | Branch | None = None

    def resolve(self) -> Node | Branch:
        found = self._object
        if found is None:
            found = self._object = decode_stored(
                self.store.get(self._hash), self._hash, self.store, self.token
            )
        return found


def decode_stored(data: bytes, node_hash: bytes, store: NodeStore, token: object) -> Node | Branch:
    """The object stored under ``node_hash``; its children become :class:`StoreStub`."""
    cursor = Cursor(data, CorruptNode)
    if cursor.u8() != VERSION:
        cursor.fail("unknown stored node version", 0)
    kind = cursor.u8()
    result: Node | Branch
    if kind == KIND_NODE:
        flags = cursor.u8()
        if flags & ~3:
            cursor.fail("unknown node flags")
        value = cursor.value() if flags & 1 else None
        trie = _decode_slot(cursor, store, token) if flags & 2 else None
        result = Node(value, trie)
    elif kind == KIND_BRANCH:
        bit = cursor.u8()
        count = cursor.u32()
        left = _decode_slot(cursor, store, token)
        right = _decode_slot(cursor, store, token)
        result = Branch(bit, count, left, right)
    else:
        cursor.fail(f"unknown stored object kind {kind}", 1)
    cursor.expect_end()
    result._hash = node_hash
    result._stored = token
    return result


def _decode_slot(cursor: Cursor, store: NodeStore, token: object) -> Leaf | StoreStub:
    tag = cursor.u8()
    if tag == SLOT_HASH:
        return StoreStub(store, token, cursor.take(32))
    if tag == SLOT_LEAF:
        name = cursor.name()
        return Leaf(name, key_of(name), StoreStub(store, token, cursor.take(32)))
    cursor.fail(f"unknown slot tag {tag}")


def references(data: bytes) -> list[bytes]:
    """The hashes of the stored objects a stored encoding refers to (used by ``gc``)."""
    cursor = Cursor(data, CorruptNode)
    if cursor.u8() != VERSION:
        cursor.fail("unknown stored node version", 0)
    kind = cursor.u8()
    slots = 0
    if kind == KIND_NODE:
        flags = cursor.u8()
        if flags & 1:
            cursor.value()
        slots = 1 if flags & 2 else 0
    elif kind == KIND_BRANCH:
        cursor.take(5)
        slots = 2
    else:
        cursor.fail(f"unknown stored object kind {kind}", 1)
    found = []
    for _ in range(slots):
        tag = cursor.u8()
        if tag == SLOT_LEAF:
            cursor.name()
        elif tag != SLOT_HASH:
            cursor.fail(f"unknown slot tag {tag}")
        found.append(cursor.take(32))
    return found


# --- writing --------------------------------------------------------------------------------


def collect_new(root: Node | Stub, store: NodeStore) -> list[tuple[bytes, bytes, object]]:
    """``(hash, encoding, object)`` for every node and branch reachable from ``root`` that
    ``store`` does not hold.

    A store that holds an object holds everything below it (objects are written with their
    descendants in one transaction, and ``gc`` deletes only what no kept root reaches), so
    the walk stops at the first object the store holds: one loaded from or written to it
    under its current token, or — after a ``gc`` or ``rollback`` replaced the token — one
    that ``store.has`` confirms (such objects are re-marked, to be checked once only).
    Objects that never were in a store are written without asking."""
    hash_of(root)
    token = store.token
    found: list[tuple[bytes, bytes, object]] = []
    todo: list = [root]
    while todo:
        item = todo.pop()
        if isinstance(item, Stub):
            if item.__class__ is StoreStub and item.store is store and item.token is token:
                continue
            if store.has(item._hash):
                if item.__class__ is StoreStub and item.store is store:
                    item.token = token
                continue
            item = item.peek()
        stored = item._stored
        if stored is token:
            continue
        if stored is not None and store.has(item._hash):
            item._stored = token
            continue
        if item.__class__ is Node:
            flags = (1 if item.value is not None else 0) | (2 if item.trie is not None else 0)
            parts = [bytes((VERSION, KIND_NODE, flags))]
            if item.value is not None:
                value = item.value
                if isinstance(value, ValueStub):
                    value = value.resolve()
                parts.append(_U16.pack(len(value)))
                parts.append(value)
            if item.trie is not None:
                parts.append(_encode_slot(item.trie, store, token, todo))
        else:
            parts = [
                bytes((VERSION, KIND_BRANCH, item.bit)),
                _U32.pack(item.count),
                _encode_slot(item.left, store, token, todo),
                _encode_slot(item.right, store, token, todo),
            ]
        found.append((item._hash, b"".join(parts), item))
    return found


def _encode_slot(item: object, store: NodeStore, token: object, todo: list) -> bytes:
    if isinstance(item, Stub):
        if item.__class__ is StoreStub and item.store is store:
            if item.token is not token:
                todo.append(item)  # stored once; collect_new checks it is still there
            return b"\x00" + item._hash  # stored trie objects are branches
        item = item.peek()
    if item.__class__ is Leaf:
        todo.append(item.child)
        return b"\x01" + name_field(item.name) + hash_of(item.child)
    todo.append(item)
    return b"\x00" + item._hash  # type: ignore[attr-defined]
