"""The objects a Merkle tree is made of, and how each is hashed.

A tree maps *paths* (tuples of names) to byte values; a path may hold a value and children
at the same time. It is built from three kinds of immutable objects:

* :class:`Node` — one path. It holds its value (``None`` when it has none) and the root of a
  *trie* indexing its children (``None`` when it has none).
* :class:`Branch` and :class:`Leaf` — the trie of a node's children: a **crit-bit
  (Patricia) binary trie** keyed by ``key(name)``, the 256 bits of a domain-separated Blake2b
  hash of the child name. A leaf holds one child (its name and its :class:`Node`); a branch
  splits its leaves on bit ``bit`` of the key (0 = left, 1 = right), where ``bit`` is the
  first bit on which the keys below it differ, and it counts the leaves below it. The shape
  of such a trie depends only on the *set* of names, never on insertion order, and hashing
  names keeps it balanced (depth about log2(n)) whatever names a kernel picks, so reaching
  or proving one child of an n-child directory costs O(log n) hashes.

Content, not history, determines everything: a node other than the root always holds a value
or a child (operations prune nodes that become empty), so two trees with the same map of paths
to values have the same objects and the same hashes.

Hashes (version 1; ``H[tag](bytes)`` is 32-byte Blake2b personalized with ``tag`` from
:class:`soru.crypto.hashing.Tag`; integers big-endian; ``||`` concatenation)::

    key(name)      = H[MERKLE_KEY](utf8(name))                 as a 256-bit integer, bit 0
                                                               the most significant
    value hash     = H[MERKLE_VALUE](0x01 || value)
    node hash      = H[MERKLE_NODE](0x01 || flags:u8 || value hash (if flags & 1)
                                          || trie hash (if flags & 2))
                     flags: bit 0 = has a value, bit 1 = has children
    leaf hash      = H[MERKLE_LEAF](0x01 || len:u8 || utf8(name) || node hash of the child)
    branch hash    = H[MERKLE_BRANCH](0x01 || bit:u8 || count:u32 || left hash || right hash)

The trie hash of a node is the hash of its trie's root (a leaf when it has one child).

**Laziness.** Any slot that refers to a node, a branch, a leaf or a value may instead hold a
*stub*: an object that knows only the hash of what it stands for and can :meth:`Stub.resolve`
it — from a node store (``codec.StoreStub``), from the tree being recorded for a proof
(``proof.RecordStub``), or not at all (:class:`MissingStub`, a part a proof leaves out, whose
resolution raises :class:`~soru.merkle.errors.NotInProof`). Code that walks the tree resolves
a stub when it needs the contents and writes the result back into the slot (a cache: the
content is the same). Hashing never resolves a stub; hashes are computed lazily, once, by
:func:`hash_of`, without recursion.

Values are at most :data:`MAX_VALUE_SIZE` (4096) bytes; bigger data is chunked by the caller
(see ``soru.merkle.chunked``). Names are non-empty strings of at most 255 UTF-8 bytes.
"""

from __future__ import annotations

import struct
from typing import Any

from soru.crypto.hashing import Tag, hasher_256
from soru.merkle.errors import InvalidPath, MerkleError, NotInProof, ValueTooLarge

VERSION = 1
"""Version byte of every node hash preimage, stored node and proof of this module's format."""
MAX_VALUE_SIZE = 4096
"""Largest value a path may hold, in bytes."""
MAX_NAME_SIZE = 255
"""Largest path segment (child name), in UTF-8 bytes."""
KEY_BITS = 256
"""Width of a trie key: the size of a Blake2b-256 digest in bits."""

_VERSION_BYTE = bytes((VERSION,))
_BRANCH_HEAD = struct.Struct(">BBI")
_key_hasher = hasher_256(Tag.MERKLE_KEY)
_value_hasher = hasher_256(Tag.MERKLE_VALUE)
_node_hasher = hasher_256(Tag.MERKLE_NODE)
_leaf_hasher = hasher_256(Tag.MERKLE_LEAF)
_branch_hasher = hasher_256(Tag.MERKLE_BRANCH)


class Stub:
    """Stands for an object (node, branch or leaf) known by its hash ``_hash`` only."""

    __slots__ = ("_hash",)

    _hash: bytes

    def resolve(self) -> Any:
        """The object itself (a ``Node`` in a child slot, a ``Branch`` or ``Leaf`` in a trie
        slot); may load it (and cache it) or raise a ``MissingNode``."""
        raise NotImplementedError

    def peek(self) -> Any:
        """The object, without any side effect visible to a recorder (used to persist)."""
        return self.resolve()


class MissingStub(Stub):
    """A part of a partial tree that its proof leaves out: only its hash is known."""

    __slots__ = ()

    def __init__(self, node_hash: bytes) -> None:
        self._hash = node_hash

    def resolve(self) -> Any:
        raise NotInProof(self._hash)


class ValueStub:
    """Stands for a value known by its value hash ``_hash`` only."""

    __slots__ = ("_hash",)

    _hash: bytes

    def resolve(self) -> bytes:
        raise NotImplementedError


class MissingValue(ValueStub):
    """A value a proof leaves out (the proof has its hash only)."""

    __slots__ = ()

    def __init__(self, value_hash: bytes) -> None:
        self._hash = value_hash

    def resolve(self) -> bytes:
        raise NotInProof(self._hash, f"value {self._hash.hex()} is not in the proof")


class Node:
    """One path of the tree: an optional value and an optional trie of children.

    ``_hash`` and ``_vhash`` (the value hash) are computed on demand; ``_stored`` is the
    token of the node store known to hold this node (see ``codec``).
    """

    __slots__ = ("value", "trie", "_hash", "_vhash", "_stored")

    def __init__(self, value: Value | None, trie: Trie | None, vhash: bytes | None = None) -> None:
        self.value = value
        self.trie = trie
        self._hash: bytes | None = None
        self._vhash = vhash
        self._stored: object = None


class Leaf:
    """One child in a trie: its ``name``, ``key(name)`` and its node (or a stub)."""

    __slots__ = ("name", "key", "child", "_hash")

    def __init__(self, name: str, key: int, child: Child) -> None:
        self.name = name
        self.key = key
        self.child = child
        self._hash: bytes | None = None


class Branch:
    """An inner trie node: leaves whose key has bit ``bit`` clear go left, set go right.

    ``count`` is the number of leaves below (at least 2), so a directory's size and its
    n-th child are found in O(log n).
    """

    __slots__ = ("bit", "count", "left", "right", "_hash", "_stored")

    def __init__(self, bit: int, count: int, left: Trie, right: Trie) -> None:
        self.bit = bit
        self.count = count
        self.left = left
        self.right = right
        self._hash: bytes | None = None
        self._stored: object = None


Trie = Branch | Leaf | Stub
"""What a trie slot holds."""
Child = Node | Stub
"""What a leaf's child slot holds."""
Value = bytes | ValueStub
"""What a node's value slot holds (besides None)."""

EMPTY = Node(None, None)
"""The root of the empty tree (shared)."""


# --- names and keys -------------------------------------------------------------------------

_KEY_CACHE: dict[str, int] = {}
_KEY_CACHE_LIMIT = 1 << 17


def name_bytes(name: object) -> bytes:
    """The UTF-8 encoding of a path segment; raises :class:`InvalidPath` if it is no name."""
    if not isinstance(name, str):
        raise InvalidPath(f"a path segment is a str, not {type(name).__name__}")
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidPath(f"path segment {name!r} is not encodable in UTF-8") from error
    if not 0 < len(raw) <= MAX_NAME_SIZE:
        raise InvalidPath(f"a path segment has 1 to {MAX_NAME_SIZE} bytes, not {len(raw)}")
    return raw


def key_of(name: str) -> int:
    """The trie key of a child name (validating the name); memoised."""
    try:
        key = _KEY_CACHE.get(name)
    except TypeError:  # unhashable
        key = None
    if key is None:
        digest = _key_hasher(name_bytes(name)).digest()
        key = int.from_bytes(digest, "big")
        if len(_KEY_CACHE) >= _KEY_CACHE_LIMIT:
            _KEY_CACHE.clear()
        _KEY_CACHE[name] = key
    return key


def bit_of(key: int, bit: int) -> int:
    """Bit ``bit`` (0 = most significant) of a trie key."""
    return (key >> (KEY_BITS - 1 - bit)) & 1


def crit_bit(key_a: int, key_b: int) -> int:
    """The first bit on which two different keys differ."""
    diff = key_a ^ key_b
    if not diff:
        raise MerkleError("two child names with the same trie key (a Blake2b collision)")
    return KEY_BITS - diff.bit_length()


def check_value(value: object) -> bytes:
    """A value as immutable ``bytes``; raises :class:`ValueTooLarge` beyond the limit."""
    if value.__class__ is not bytes:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"a value is bytes, not {type(value).__name__}")
        value = bytes(value)
    if len(value) > MAX_VALUE_SIZE:
        raise ValueTooLarge(f"a value holds at most {MAX_VALUE_SIZE} bytes, not {len(value)}")
    return value


# --- hashing --------------------------------------------------------------------------------


def value_hash(value: bytes) -> bytes:
    """The hash of a value."""
    state = _value_hasher(_VERSION_BYTE)
    state.update(value)
    return state.digest()


def node_value_hash(node: Node) -> bytes | None:
    """The hash of a node's value (None if it has none), memoised on the node."""
    vhash = node._vhash
    if vhash is None:
        value = node.value
        if value is None:
            return None
        vhash = value._hash if isinstance(value, ValueStub) else value_hash(value)
        node._vhash = vhash
    return vhash


def leaf_hash_of(name: str, child_hash: bytes) -> bytes:
    raw = name.encode("utf-8")
    return _leaf_hasher(_VERSION_BYTE + bytes((len(raw),)) + raw + child_hash).digest()


def branch_hash_of(bit: int, count: int, left_hash: bytes, right_hash: bytes) -> bytes:
    return _branch_hasher(_BRANCH_HEAD.pack(VERSION, bit, count) + left_hash + right_hash).digest()


def node_hash_of(vhash: bytes | None, trie_hash: bytes | None) -> bytes:
    flags = (1 if vhash is not None else 0) | (2 if trie_hash is not None else 0)
    preimage = bytes((VERSION, flags))
    if vhash is not None:
        preimage += vhash
    if trie_hash is not None:
        preimage += trie_hash
    return _node_hasher(preimage).digest()


EMPTY_HASH = node_hash_of(None, None)
"""The hash of the empty tree."""


def hash_of(obj: Node | Branch | Leaf | Stub) -> bytes:
    """The hash of a node, branch, leaf or stub; computes (iteratively) and memoises the
    hashes still unknown below it, never resolving a stub."""
    known = obj._hash
    if known is not None:
        return known
    branch_hasher = _branch_hasher
    branch_head = _BRANCH_HEAD.pack
    todo: list = [obj]
    while todo:
        item = todo[-1]
        if item._hash is not None:
            todo.pop()
            continue
        cls = item.__class__
        if cls is Branch:
            left_hash = item.left._hash
            right_hash = item.right._hash
            if left_hash is None or right_hash is None:
                if left_hash is None:
                    todo.append(item.left)
                if right_hash is None:
                    todo.append(item.right)
                continue
            item._hash = branch_hasher(
                branch_head(VERSION, item.bit, item.count) + left_hash + right_hash
            ).digest()
        elif cls is Leaf:
            child_hash = item.child._hash
            if child_hash is None:
                todo.append(item.child)
                continue
            item._hash = leaf_hash_of(item.name, child_hash)
        else:
            trie = item.trie
            trie_hash = None
            if trie is not None:
                trie_hash = trie._hash
                if trie_hash is None:
                    todo.append(trie)
                    continue
            item._hash = node_hash_of(node_value_hash(item), trie_hash)
        todo.pop()
    return obj._hash  # type: ignore[return-value]
