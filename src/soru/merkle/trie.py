"""Algorithms on the crit-bit trie that indexes the children of one node.

The trie is described in :mod:`soru.merkle.nodes`. Every function here is persistent (it
builds new branches along one root-to-leaf path and shares the rest), iterative (no Python
recursion proportional to the data, except :func:`build` whose depth is bounded by the 256
key bits), and resolves stubs only on the path it walks, writing the resolved object back
into its slot. A sibling that an update moves without reading (a removal promotes the
sibling of the removed leaf) stays a stub: a proof of a removal needs its hash only.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any

from soru.merkle.nodes import KEY_BITS, Branch, Child, Leaf, Node, Stub, Trie, crit_bit

_TOP = KEY_BITS - 1


def root_of(node: Node) -> Branch | Leaf | None:
    """The resolved root of a node's trie (None when the node has no children)."""
    trie: Any = node.trie
    if isinstance(trie, Stub):
        trie = node.trie = trie.resolve()
    return trie


def find_leaf(node: Node, key: int, path: list[Branch] | None = None) -> Leaf | None:
    """The leaf where a search for ``key`` ends (its name may differ: then the key is absent),
    or None for a node without children; appends the branches passed to ``path``.

    Trie objects are typed ``Any`` in the loops of this module: they are ``Branch`` or
    ``Leaf`` once resolved, which the ``__class__`` tests establish at run time."""
    trie: Any = node.trie
    if trie is None:
        return None
    if isinstance(trie, Stub):
        trie = node.trie = trie.resolve()
    while trie.__class__ is Branch:
        if path is not None:
            path.append(trie)
        if (key >> (_TOP - trie.bit)) & 1:
            sub = trie.right
            if isinstance(sub, Stub):
                sub = trie.right = sub.resolve()
        else:
            sub = trie.left
            if isinstance(sub, Stub):
                sub = trie.left = sub.resolve()
        trie = sub
    return trie


def _rebuild(path: list[Branch], end: int, key: int, sub: Trie, delta: int) -> Trie:
    """Copy ``path[:end]`` bottom-up with ``sub`` on the side of ``key``; counts += delta."""
    for index in range(end - 1, -1, -1):
        branch = path[index]
        if (key >> (_TOP - branch.bit)) & 1:
            sub = Branch(branch.bit, branch.count + delta, branch.left, sub)
        else:
            sub = Branch(branch.bit, branch.count + delta, sub, branch.right)
    return sub


def with_child(
    path: list[Branch], leaf: Leaf | None, name: str, key: int, child: Child | None
) -> Trie | None:
    """The trie in which child ``name`` is ``child`` (removed when None), given the result
    ``path``/``leaf`` of :func:`find_leaf` for ``key`` on the old trie. Removing an absent
    name is the caller's business (it is a no-op)."""
    if leaf is None:
        return None if child is None else Leaf(name, key, child)
    if leaf.name == name:
        if child is not None:
            return _rebuild(path, len(path), key, Leaf(name, key, child), 0)
        if not path:
            return None
        parent = path[-1]
        sibling = parent.left if (key >> (_TOP - parent.bit)) & 1 else parent.right
        return _rebuild(path, len(path) - 1, key, sibling, -1)
    if child is None:
        raise ValueError("with_child: removing an absent name")
    bit = crit_bit(key, leaf.key)
    index = 0
    while index < len(path) and path[index].bit < bit:
        index += 1
    if index < len(path):
        below: Trie = path[index]
        count = path[index].count
    else:
        below, count = leaf, 1
    new_leaf = Leaf(name, key, child)
    if (key >> (_TOP - bit)) & 1:
        split = Branch(bit, count + 1, below, new_leaf)
    else:
        split = Branch(bit, count + 1, new_leaf, below)
    return _rebuild(path, index, key, split, 1)


def count(node: Node) -> int:
    """The number of children of a node (reads the trie root only)."""
    trie: Any = root_of(node)
    if trie is None:
        return 0
    return 1 if trie.__class__ is Leaf else trie.count


def leaves(node: Node) -> Iterator[Leaf]:
    """Every leaf of a node's trie, in trie order (reads the whole trie, not the children)."""
    trie = root_of(node)
    if trie is None:
        return
    todo: list = [trie]
    while todo:
        item = todo.pop()
        if item.__class__ is Branch:
            right = item.right
            if isinstance(right, Stub):
                right = item.right = right.resolve()
            left = item.left
            if isinstance(left, Stub):
                left = item.left = left.resolve()
            todo.append(right)
            todo.append(left)
        else:
            yield item


def nth_leaf(node: Node, index: int) -> Leaf | None:
    """The ``index``-th leaf in trie order (None when out of range), in O(depth)."""
    trie: Any = root_of(node)
    if trie is None or index < 0:
        return None
    total = 1 if trie.__class__ is Leaf else trie.count
    if index >= total:
        return None
    while trie.__class__ is Branch:
        left: Any = trie.left
        if isinstance(left, Stub):
            left = trie.left = left.resolve()
        left_count = 1 if left.__class__ is Leaf else left.count
        if index < left_count:
            trie = left
        else:
            index -= left_count
            right: Any = trie.right
            if isinstance(right, Stub):
                right = trie.right = right.resolve()
            trie = right
    return trie


def build(entries: Sequence[tuple[int, str, Child]]) -> Trie | None:
    """The trie of a set of children given as ``(key, name, node)`` sorted by key, built
    bottom-up in O(n log n) (the bulk counterpart of repeated :func:`with_child`)."""
    if not entries:
        return None
    keys = [entry[0] for entry in entries]

    def make(low: int, high: int) -> Trie:
        if high - low == 1:
            key, name, child = entries[low]
            return Leaf(name, key, child)
        bit = crit_bit(keys[low], keys[high - 1])
        shift = _TOP - bit
        threshold = ((keys[low] >> shift) | 1) << shift
        middle = bisect_left(keys, threshold, low, high)
        return Branch(bit, high - low, make(low, middle), make(middle, high))

    return make(0, len(entries))
