"""The immutable, persistent Merkle tree: a map from paths to byte values.

A :class:`Tree` maps paths — tuples of names, ``("kernel", "boot.wasm")`` — to values of at
most 4096 bytes. A path may hold a value *and* children; a path that holds neither does not
exist (removing the last value below a path removes the path), so a tree is exactly its map
of paths to values, and its root :attr:`Tree.hash` depends on that map only.

Every update returns a new tree and leaves the old one valid. The new version shares every
unchanged subtree with the old one; an update allocates O(path length × log(fan-out)) objects
and hashes nothing until a hash is asked for (then only the new objects are hashed, once).

A tree may be *lazy*: :meth:`Tree.open` gives a tree over a node store that reads a node when
an operation first needs it, and :meth:`Tree.persist` writes only the nodes the store does not
have. The same code runs on a *recording view* (:func:`soru.merkle.proof.record`) and on a
*partial tree* rebuilt from a proof, whose missing parts raise
:class:`~soru.merkle.errors.NotInProof` when touched.

What an operation touches (so what a proof of it contains): the nodes on the path and the
trie branches leading to each segment; a value only when it is returned (``get``); the
node at the end of the path only when its contents matter (``kind``, ``set``,
``delete_value``, ``children``) — ``has``, ``delete``, ``subtree``, ``subtree_hash`` and
``graft`` stop at the trie leaf that names it. ``children`` reads the whole trie of the
node (not the children themselves); ``child_count`` reads its root only; ``nth_child``
one root-to-leaf trie path.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from soru.base.hashes import Hash
from soru.merkle import trie as tries
from soru.merkle.codec import StoreStub, collect_new
from soru.merkle.nodes import (
    EMPTY,
    EMPTY_HASH,
    Branch,
    Leaf,
    Node,
    Stub,
    check_value,
    hash_of,
    key_of,
)
from soru.merkle.store import NodeStore

Path = Sequence[str]
"""A path: a sequence (normally a tuple) of names; ``()`` is the root."""

_Slot = Node | Stub


class Kind(enum.Flag):
    """What a path holds: :attr:`VALUE`, :attr:`CHILDREN`, both, or nothing (``ABSENT``)."""

    ABSENT = 0
    VALUE = 1
    CHILDREN = 2
    BOTH = 3


def _resolve(slot: _Slot) -> Node:
    return slot.resolve() if isinstance(slot, Stub) else slot


def _value_of(node: Node) -> bytes | None:
    value = node.value
    if value is None or value.__class__ is bytes:
        return value
    resolved = node.value = value.resolve()  # type: ignore[union-attr]
    return resolved


def _check_rest(path: Path, depth: int) -> None:
    """Validate the segments after ``path[depth]``, which a lookup that stopped there did not
    reach (an invalid path is an error even when its prefix is absent)."""
    for name in path[depth + 1 :]:
        key_of(name)


def _is_empty(slot: _Slot) -> bool:
    if isinstance(slot, Stub):
        return slot._hash == EMPTY_HASH
    return slot.value is None and slot.trie is None


class Tree:
    """An immutable map from paths to values, hashed as a Merkle tree.

    Build one with :meth:`empty`, :meth:`from_items` or :meth:`open`; two trees are equal
    when their root hashes are.
    """

    __slots__ = ("_root",)

    def __init__(self, root: _Slot = EMPTY) -> None:
        self._root = root

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def empty(cls) -> Tree:
        """The tree with no value at all."""
        return cls(EMPTY)

    @classmethod
    def open(cls, store: NodeStore, root: bytes) -> Tree:
        """The tree whose root hash is ``root`` in ``store``, read lazily: nothing is read
        before an operation needs it (a missing node raises ``NodeNotStored`` then)."""
        return cls(StoreStub(store, store.token, Hash(root)))

    @classmethod
    def from_items(
        cls, items: Mapping[tuple[str, ...], bytes] | Iterable[tuple[Path, bytes]]
    ) -> Tree:
        """The tree holding the given ``(path, value)`` pairs (a later pair for the same path
        wins), built in one pass — much faster than repeated :meth:`set`."""
        pairs = items.items() if isinstance(items, Mapping) else items
        # Nested dictionaries: name -> [value, children]; then post-order into nodes.
        top: list = [None, {}]
        for path, value in pairs:
            value = check_value(value)
            entry = top
            for name in path:
                key_of(name)  # validate
                children = entry[1]
                found = children.get(name)
                if found is None:
                    found = children[name] = [None, {}]
                entry = found
            entry[0] = value
        done: dict[int, Node] = {}
        todo: list = [(top, False)]
        while todo:
            entry, expanded = todo.pop()
            if not expanded:
                todo.append((entry, True))
                todo.extend((child, False) for child in entry[1].values())
                continue
            children = entry[1]
            if children:
                keyed = sorted(
                    (key_of(name), name, done.pop(id(child))) for name, child in children.items()
                )
                node = Node(entry[0], tries.build(keyed))
            else:
                node = Node(entry[0], None)
            done[id(entry)] = node
        return cls(done[id(top)])

    # --- hashing and persistence ----------------------------------------------------------

    @property
    def hash(self) -> Hash:
        """The root hash (computed once for the new parts, without reading anything)."""
        return Hash(hash_of(self._root))

    def subtree_hash(self, path: Path) -> Hash | None:
        """The hash of the subtree at ``path`` (None if the path does not exist)."""
        slot = self._find(path)
        return None if slot is None else Hash(hash_of(slot))

    def persist(self, store: NodeStore) -> Hash:
        """Write the nodes of this tree that ``store`` does not hold; returns the root hash.
        Nothing is committed: call ``store.commit(name, root)``."""
        new = collect_new(self._root, store)
        if new:
            store.put_many((node_hash, data) for node_hash, data, _ in new)
            token = store.token
            for _, _, item in new:
                item._stored = token  # type: ignore[attr-defined]
        return self.hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tree):
            return NotImplemented
        return self._root is other._root or hash_of(self._root) == hash_of(other._root)

    def __hash__(self) -> int:
        return hash(hash_of(self._root))

    def __repr__(self) -> str:
        return f"Tree({hash_of(self._root).hex()})"

    # --- reading --------------------------------------------------------------------------

    def _root_node(self) -> Node:
        root = self._root
        if isinstance(root, Stub):
            root = self._root = root.resolve()
        return root

    def _find(self, path: Path) -> _Slot | None:
        """The slot (node or stub, unresolved) at ``path``, or None if absent."""
        if not path:
            return self._root
        node = self._find_node(path[:-1])
        if node is None:
            key_of(path[-1])
            return None
        name = path[-1]
        leaf = tries.find_leaf(node, key_of(name))
        return None if leaf is None or leaf.name != name else leaf.child

    def _find_node(self, path: Path) -> Node | None:
        """The node at ``path``, resolved (and cached in its parent leaf), or None."""
        if not path:
            return self._root_node()
        node = self._root_node()
        for depth, name in enumerate(path):
            leaf = tries.find_leaf(node, key_of(name))
            if leaf is None or leaf.name != name:
                _check_rest(path, depth)
                return None
            child = leaf.child
            if isinstance(child, Stub):
                child = leaf.child = child.resolve()
            node = child
        return node

    def get(self, path: Path) -> bytes | None:
        """The value at ``path``, or None if it holds none."""
        node = self._find_node(path)
        return None if node is None else _value_of(node)

    def has(self, path: Path) -> bool:
        """Whether ``path`` exists (holds a value or children)."""
        if not path:
            return not _is_empty(self._root)
        return self._find(path) is not None

    def kind(self, path: Path) -> Kind:
        """What ``path`` holds."""
        node = self._find_node(path)
        if node is None:
            return Kind.ABSENT
        return Kind((1 if node.value is not None else 0) | (2 if node.trie is not None else 0))

    def has_value(self, path: Path) -> bool:
        """Whether ``path`` holds a value (the value itself is not read)."""
        return Kind.VALUE in self.kind(path)

    def children(self, path: Path) -> list[str]:
        """The names of the children of ``path``, sorted (by code point); [] if absent."""
        node = self._find_node(path)
        if node is None:
            return []
        return sorted(leaf.name for leaf in tries.leaves(node))

    def child_count(self, path: Path) -> int:
        """How many children ``path`` has (0 if absent), reading one trie node."""
        node = self._find_node(path)
        return 0 if node is None else tries.count(node)

    def nth_child(self, path: Path, index: int) -> str | None:
        """The name of child number ``index`` in *trie order* (the order of the hashes of
        the names, stable for a given set of names), or None when out of range; O(log n)."""
        node = self._find_node(path)
        if node is None:
            return None
        leaf = tries.nth_leaf(node, index)
        return None if leaf is None else leaf.name

    def subtree(self, path: Path) -> Tree | None:
        """The tree rooted at ``path`` (sharing its nodes, reading none of them), or None."""
        slot = self._find(path)
        return None if slot is None else Tree(slot)

    def items(self, path: Path = ()) -> Iterator[tuple[tuple[str, ...], bytes]]:
        """Every ``(path, value)`` at or below ``path``, depth first, children sorted."""
        start = self._find_node(path)
        if start is None:
            return
        todo: list[tuple[tuple[str, ...], Node]] = [(tuple(path), start)]
        while todo:
            here, node = todo.pop()
            value = _value_of(node)
            if value is not None:
                yield here, value
            below = []
            for leaf in tries.leaves(node):
                child = leaf.child
                if isinstance(child, Stub):
                    child = leaf.child = child.resolve()
                below.append((here + (leaf.name,), child))
            below.sort(key=lambda pair: pair[0][-1], reverse=True)
            todo.extend(below)

    def to_dict(self) -> dict[tuple[str, ...], bytes]:
        """The whole map (reads every node)."""
        return dict(self.items())

    # --- writing --------------------------------------------------------------------------

    def set(self, path: Path, value: bytes) -> Tree:
        """The tree with ``value`` at ``path`` (children of ``path`` are kept)."""
        value = check_value(value)

        def update(slot: _Slot | None) -> _Slot | None:
            if slot is None:
                return Node(value, None)
            return Node(value, _resolve(slot).trie)

        return self._update(path, update)

    def delete(self, path: Path) -> Tree:
        """The tree without ``path``: its value and everything below it."""
        return self._update(path, lambda slot: None)

    def delete_value(self, path: Path) -> Tree:
        """The tree without the value at ``path``; its children are kept."""

        def update(slot: _Slot | None) -> _Slot | None:
            if slot is None:
                return None
            node = _resolve(slot)
            if node.value is None:
                return slot
            return None if node.trie is None else Node(None, node.trie)

        return self._update(path, update)

    def graft(self, path: Path, subtree: Tree) -> Tree:
        """The tree in which ``path`` holds exactly ``subtree`` (an empty subtree deletes the
        path); O(length of path): the subtree is shared, not copied or read."""
        root = subtree._root
        new = None if _is_empty(root) else root
        return self._update(path, lambda slot: new)

    def copy(self, source: Path, destination: Path) -> Tree:
        """The tree in which ``destination`` holds what ``source`` holds (nothing if absent)."""
        found = self.subtree(source)
        return self.graft(destination, Tree.empty() if found is None else found)

    def move(self, source: Path, destination: Path) -> Tree:
        """:meth:`copy`, then delete ``source`` — except inside ``destination`` when
        ``destination`` is a prefix of ``source``."""
        found = self.subtree(source)
        moved = Tree.empty() if found is None else found
        return self.delete(source).graft(destination, moved)

    def _update(self, path: Path, update: Callable[[_Slot | None], _Slot | None]) -> Tree:
        """The tree in which the slot at ``path`` is ``update(old slot or None)`` (None
        deletes it); nodes left with neither value nor children are pruned."""
        if not path:
            replaced = update(self._root)
            if replaced is self._root:
                return self
            return Tree(EMPTY if replaced is None else replaced)
        levels: list[tuple[Node, str, int, list[Branch], Leaf | None]] = []
        node = self._root_node()
        last = len(path) - 1
        new: _Slot | None
        for depth, name in enumerate(path):
            key = key_of(name)
            branches: list[Branch] = []
            leaf = tries.find_leaf(node, key, branches)
            levels.append((node, name, key, branches, leaf))
            if leaf is None or leaf.name != name:
                new = update(None)
                if new is None:
                    _check_rest(path, depth)
                    return self
                for below in reversed(path[depth + 1 :]):
                    new = Node(None, Leaf(below, key_of(below), new))
                break
            child = leaf.child
            if depth == last:
                new = update(child)
                if new is child:
                    return self
                break
            if isinstance(child, Stub):
                child = leaf.child = child.resolve()
            node = child
        for depth in range(len(levels) - 1, -1, -1):
            node, name, key, branches, leaf = levels[depth]
            trie = tries.with_child(branches, leaf, name, key, new)
            if trie is None and node.value is None and depth > 0:
                new = None
            else:
                new = Node(node.value, trie, node._vhash)
        return Tree(new)  # type: ignore[arg-type]
