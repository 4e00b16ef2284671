"""Merkle proofs: record what a computation reads, rebuild it as a partial tree elsewhere.

A proof is produced by running a computation — one PVM tick, one lookup — on a *recording
view* of a tree, and checked by running the **same** computation on the *partial tree* the
proof decodes to. There is no second, hand-written verifier::

    view, recorder = record(tree)         # view: a Tree behaving exactly like `tree`
    after = step(view)                    # the step reads and writes as usual
    proof = recorder.proof()              # every node the step touched, the rest as hashes

    partial = Proof.decode(proof.encode()).tree()   # on the verifier's side
    # partial.hash == tree.hash; step(partial) reads exactly what step(view) read, and
    # step(partial).hash == after.hash. Touching anything else raises NotInProof.

The view is an ordinary :class:`~soru.merkle.tree.Tree` whose nodes are copied, one at a time,
from the recorded tree the first time the computation touches them (a :class:`RecordStub`
stands for each untouched one); every tree derived from the view by writes keeps recording. A
value counts as touched only when it is returned (``get``), so a step that walks through a
node holding 4 KiB pays 32 bytes for it. The proof is the touched part: touched nodes in full,
their untouched neighbours as hashes. The partial tree is the same kind of tree with
:class:`~soru.merkle.nodes.MissingStub` in place of the hashes: reads of those raise
:class:`~soru.merkle.errors.NotInProof`; writes work and produce the after-hash.

Inclusion and absence proofs are the special case of a computation that reads one path::

    value, proof = produce_proof(tree, lambda view: view.get(("durable", "a")))
    verify_proof(proof, trusted_root, lambda t: t.get(("durable", "a")))  # -> value or None

For an absent path the proof holds the trie path ending at the leaf where the search stops
(a different name, or a node without children): the partial tree answers ``None`` too.

Encoding, version 1 (integers big-endian; nothing may follow the root item)::

    proof     := 0x01 node_item
    node_item := 0x00 hash:32                       a node left out
               | 0x01 flags:u8 [value] [trie_item]  a node
                 flags bits 0-1: 0 no value | 1 value left out: hash:32 follows
                                 | 2 value: len:u16 (<= 4096) bytes follow
                 flags bit 2: has children, a trie_item follows; other bits zero;
                 a node with neither value nor children only as the root (empty tree)
    trie_item := 0x10 hash:32                       a subtrie left out
               | 0x11 bit:u8 count:u32 trie_item(left) trie_item(right)
               | 0x12 len:u8 name:len node_item     a child: its name (UTF-8) and node

Decoding is strict: unknown versions, tags and flags, truncation, trailing bytes, oversized
values, empty or non-UTF-8 names, branch bits that do not increase downwards, counts below 2
or inconsistent with known subtries, and leaves whose name's key disagrees with the branches
above them raise :class:`~soru.merkle.errors.ProofDecodeError`. Every other byte is covered
by the root hash: changing it changes the hash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from soru.base.hashes import Hash
from soru.merkle.codec import Cursor, name_field
from soru.merkle.errors import ProofDecodeError, ProofMismatch
from soru.merkle.nodes import (
    VERSION,
    Branch,
    Leaf,
    MissingStub,
    MissingValue,
    Node,
    Stub,
    ValueStub,
    bit_of,
    hash_of,
    key_of,
    node_value_hash,
)
from soru.merkle.tree import Tree

T = TypeVar("T")

NODE_OMITTED = 0x00
NODE_PRESENT = 0x01
TRIE_OMITTED = 0x10
TRIE_BRANCH = 0x11
TRIE_LEAF = 0x12
VALUE_NONE = 0
VALUE_OMITTED = 1
VALUE_PRESENT = 2
HAS_CHILDREN = 4

_U32_MAX = 0xFFFFFFFF


# --- recording ------------------------------------------------------------------------------


class RecordStub(Stub):
    """An object of the recorded tree that the computation has not touched yet. Resolving it
    makes a copy (with a :class:`RecordStub` for each of its own slots): the copy's presence
    in the view is the record that it was touched."""

    __slots__ = ("_original", "_object")

    def __init__(self, original: Node | Branch | Leaf | Stub) -> None:
        self._hash = original._hash or hash_of(original)
        self._original = original
        self._object: Node | Branch | Leaf | None = None

    def resolve(self) -> Node | Branch | Leaf:
        found = self._object
        if found is None:
            original = self._original
            if isinstance(original, Stub):
                original = original.resolve()
            found = self._object = _recording_copy(original)
        return found

    def peek(self) -> Node | Branch | Leaf:
        original = self._original
        return original.peek() if isinstance(original, Stub) else original


class RecordValueStub(ValueStub):
    """The value of a recorded node, not yet read."""

    __slots__ = ("_node", "_value")

    def __init__(self, node: Node) -> None:
        value_hash = node_value_hash(node)
        if value_hash is None:
            raise ValueError("a value stub for a node without a value")
        self._hash = value_hash
        self._node = node
        self._value: bytes | None = None

    def resolve(self) -> bytes:
        found = self._value
        if found is None:
            value = self._node.value
            if value is None:
                raise ValueError("a value stub for a node without a value")
            found = self._value = value.resolve() if isinstance(value, ValueStub) else value
        return found


def _recording_copy(original: Node | Branch | Leaf) -> Node | Branch | Leaf:
    copy: Node | Branch | Leaf
    if isinstance(original, Node):
        node = original
        copy = Node(
            None if node.value is None else RecordValueStub(node),
            None if node.trie is None else RecordStub(node.trie),
            node_value_hash(node),
        )
    elif isinstance(original, Branch):
        branch = original
        copy = Branch(branch.bit, branch.count, RecordStub(branch.left), RecordStub(branch.right))
    else:
        leaf = original
        copy = Leaf(leaf.name, leaf.key, RecordStub(leaf.child))
    copy._hash = original._hash or hash_of(original)
    return copy


class Recorder:
    """Keeps the root of a recording view; :meth:`proof` is what was touched so far."""

    __slots__ = ("_root",)

    def __init__(self, root: RecordStub) -> None:
        self._root = root

    def proof(self) -> Proof:
        """The touched part of the recorded tree, as a proof."""
        return Proof.decode(_encode(self._root))


def record(tree: Tree) -> tuple[Tree, Recorder]:
    """A view of ``tree`` that records what is touched, and its recorder."""
    root = RecordStub(tree._root)
    return Tree(root), Recorder(root)


# --- the proof ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Proof:
    """A partial tree: the nodes a computation touched, the others as hashes."""

    root: Node | Stub

    @property
    def root_hash(self) -> Hash:
        """The hash of the tree the proof was produced on."""
        return Hash(hash_of(self.root))

    def tree(self) -> Tree:
        """The partial tree: touching a left-out part raises ``NotInProof``."""
        return Tree(self.root)

    def encode(self) -> bytes:
        return _encode(self.root)

    @classmethod
    def decode(cls, data: bytes) -> Proof:
        """Parse an encoded proof; raises :class:`ProofDecodeError` (see module docstring)."""
        return cls(_decode(bytes(data)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Proof):
            return NotImplemented
        return self.encode() == other.encode()

    def __hash__(self) -> int:
        return hash(self.encode())


def produce_proof(tree: Tree, step: Callable[[Tree], T]) -> tuple[T, Proof]:
    """Run ``step`` on a recording view of ``tree``: its result, and the proof of it."""
    view, recorder = record(tree)
    result = step(view)
    return result, recorder.proof()


def verify_proof(proof: Proof, root: bytes, step: Callable[[Tree], T]) -> T:
    """Run ``step`` on the partial tree of ``proof``, after checking the proof is about the
    tree whose hash is ``root``; raises :class:`ProofMismatch` or, if ``step`` touches what
    the proof leaves out, ``NotInProof``."""
    if proof.root_hash != root:
        raise ProofMismatch(f"proof is about tree {proof.root_hash.hex()}, not {Hash(root).hex()}")
    return step(proof.tree())


# --- encoding -------------------------------------------------------------------------------


def _touched(item: object) -> object | None:
    """The object behind a slot if it is part of the proof, else None (a hash only)."""
    if isinstance(item, Stub):
        return item._object if item.__class__ is RecordStub else None
    return item


def _encode(root: Node | Stub) -> bytes:
    out = [bytes((VERSION,))]
    todo: list[tuple[bool, Any]] = [(True, root)]
    while todo:
        is_node, item = todo.pop()
        found: Any = _touched(item)
        if found is None:
            out.append(bytes((NODE_OMITTED if is_node else TRIE_OMITTED,)))
            out.append(item._hash)
            continue
        cls = found.__class__
        if cls is Node:
            value = found.value
            if value.__class__ is RecordValueStub and value._value is not None:
                value = value._value
            flags = HAS_CHILDREN if found.trie is not None else 0
            if value is None:
                out.append(bytes((NODE_PRESENT, flags | VALUE_NONE)))
            elif value.__class__ is bytes:
                out.append(bytes((NODE_PRESENT, flags | VALUE_PRESENT)))
                out.append(len(value).to_bytes(2, "big"))
                out.append(value)
            else:
                out.append(bytes((NODE_PRESENT, flags | VALUE_OMITTED)))
                out.append(value._hash)
            if found.trie is not None:
                todo.append((False, found.trie))
        elif cls is Branch:
            out.append(bytes((TRIE_BRANCH, found.bit)))
            out.append(found.count.to_bytes(4, "big"))
            todo.append((False, found.right))
            todo.append((False, found.left))
        else:
            out.append(bytes((TRIE_LEAF,)))
            out.append(name_field(found.name))
            todo.append((True, found.child))
    return b"".join(out)


def _leaf_count(item: object) -> int | None:
    if isinstance(item, Leaf):
        return 1
    if isinstance(item, Branch):
        return item.count
    return None


def _decode(data: bytes) -> Node | Stub:
    """The root of the partial tree ``data`` encodes (see the module docstring); iterative,
    so depth is bounded by the data only."""
    cursor = Cursor(data, ProofDecodeError)
    if cursor.u8() != VERSION:
        cursor.fail("unknown proof version", 0)
    # Frames of items waiting for their sub-items:
    #   ["node", value]            a node whose trie comes next
    #   ["leaf", name, key]        a trie leaf whose node comes next
    #   ["branch", bit, count, [subtries so far], offset]
    # A node item comes next at the root and under a leaf; a trie item everywhere else.
    frames: list[list] = []
    while True:
        if not frames or frames[-1][0] == "leaf":
            item = _read_node_item(cursor, frames)
        else:
            item = _read_trie_item(cursor, frames)
        if item is not None:
            root = _hand_up(cursor, frames, item)
            if root is not None:
                return root


def _read_node_item(cursor: Cursor, frames: list[list]) -> Any:
    """Read a ``node_item``: a left-out node or a node without children, returned; or a node
    with children, pushed as a frame waiting for its trie (None)."""
    start = cursor.pos
    tag = cursor.u8()
    if tag == NODE_OMITTED:
        return MissingStub(cursor.take(32))
    if tag != NODE_PRESENT:
        cursor.fail(f"unknown node tag {tag:#x}", start)
    flags = cursor.u8()
    kind = flags & 3
    if flags & ~7 or kind == 3:
        cursor.fail(f"unknown node flags {flags:#x}", start + 1)
    value: bytes | ValueStub | None = None
    if kind == VALUE_OMITTED:
        value = MissingValue(cursor.take(32))
    elif kind == VALUE_PRESENT:
        value = cursor.value()
    if flags & HAS_CHILDREN:
        frames.append(["node", value])
        return None
    if value is None and frames:
        cursor.fail("a child node with neither value nor children", start)
    return Node(value, None)


def _read_trie_item(cursor: Cursor, frames: list[list]) -> Any:
    """Read a ``trie_item``: a left-out subtrie, returned; or a branch waiting for its two
    subtries, or a leaf waiting for its node, pushed as a frame (None). A branch's bit must
    lie below its parent's, a leaf's key on the side of every branch above it that it is
    reached by."""
    start = cursor.pos
    tag = cursor.u8()
    if tag == TRIE_OMITTED:
        return MissingStub(cursor.take(32))
    if tag == TRIE_BRANCH:
        bit = cursor.u8()
        count = cursor.u32()
        if count < 2:
            cursor.fail(f"a branch over {count} leaves", start)
        top = frames[-1]
        if top[0] == "branch" and bit <= top[1]:
            cursor.fail(f"branch bit {bit} not below its parent's {top[1]}", start)
        frames.append(["branch", bit, count, [], start])
        return None
    if tag != TRIE_LEAF:
        cursor.fail(f"unknown trie tag {tag:#x}", start)
    name = cursor.name()
    key = key_of(name)
    for frame in reversed(frames):
        if frame[0] != "branch":
            break
        if bit_of(key, frame[1]) != len(frame[3]):
            cursor.fail(f"child {name!r} on the wrong side of bit {frame[1]}", start)
    frames.append(["leaf", name, key])
    return None


def _hand_up(cursor: Cursor, frames: list[list], item: Any) -> Node | Stub | None:
    """Hand the finished ``item`` to the frames waiting for it, completing every frame that
    it completes; the root once the whole proof is read (nothing may follow), else None (a
    branch now waits for its right subtrie)."""
    while frames:
        frame = frames[-1]
        if frame[0] == "node":
            frames.pop()
            item = Node(frame[1], item)
        elif frame[0] == "leaf":
            frames.pop()
            item = Leaf(frame[1], frame[2], item)
        else:
            subtries = frame[3]
            subtries.append(item)
            if len(subtries) == 1:
                return None
            frames.pop()
            item = _close_branch(cursor, frame[1], frame[2], subtries, frame[4])
    cursor.expect_end()
    return item


def _close_branch(cursor: Cursor, bit: int, total: int, subtries: list, start: int) -> Branch:
    """The branch over ``subtries`` (left, right), once its ``total`` leaf count is checked
    against theirs: equal when both are known, at least one per left-out subtrie."""
    left, right = subtries
    counts = [_leaf_count(left), _leaf_count(right)]
    known = sum(count for count in counts if count is not None)
    unknown = counts.count(None)
    if (unknown == 0 and total != known) or total < known + unknown:
        cursor.fail(f"branch count {total} inconsistent with its subtries", start)
    return Branch(bit, total, left, right)
