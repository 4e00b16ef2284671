"""The persistent Merkle tree (soru.merkle.tree): operations, canonical hashing, sharing."""

from __future__ import annotations

import math

import pytest

from soru.base.hashes import Hash
from soru.merkle import (
    EMPTY_HASH,
    MAX_VALUE_SIZE,
    InvalidPath,
    Kind,
    MemoryStore,
    Tree,
    ValueTooLarge,
)
from soru.merkle import trie as tries
from soru.merkle.chunked import (
    ChunkedValueError,
    chunked_length,
    read_chunked,
    read_chunked_range,
    write_chunked,
)
from soru.merkle.nodes import Branch, Leaf


def sample() -> Tree:
    return (
        Tree.empty()
        .set(("kernel", "boot.wasm"), b"\x00asm")
        .set(("kernel", "env", "reboot"), b"")
        .set(("kernel",), b"dir and value")
        .set(("readonly", "wasm_version"), b"2.0.0")
    )


def test_get_set_roundtrip() -> None:
    tree = sample()
    assert tree.get(("kernel", "boot.wasm")) == b"\x00asm"
    assert tree.get(("kernel", "env", "reboot")) == b""
    assert tree.get(("kernel",)) == b"dir and value"
    assert tree.get(("kernel", "env")) is None
    assert tree.get(("nothing", "here")) is None
    assert tree.get(()) is None
    assert tree.to_dict() == {
        ("kernel",): b"dir and value",
        ("kernel", "boot.wasm"): b"\x00asm",
        ("kernel", "env", "reboot"): b"",
        ("readonly", "wasm_version"): b"2.0.0",
    }


def test_old_versions_stay_valid() -> None:
    first = Tree.empty().set(("a",), b"1")
    second = first.set(("a",), b"2")
    third = second.delete(("a",))
    assert first.get(("a",)) == b"1"
    assert second.get(("a",)) == b"2"
    assert third.get(("a",)) is None
    assert len({first.hash, second.hash, third.hash}) == 3


def test_kinds_and_has() -> None:
    tree = sample()
    assert tree.kind(("kernel",)) is Kind.BOTH
    assert tree.kind(("kernel", "env")) is Kind.CHILDREN
    assert tree.kind(("kernel", "boot.wasm")) is Kind.VALUE
    assert tree.kind(("missing",)) is Kind.ABSENT
    assert not tree.kind(("missing",))
    assert tree.has(("kernel", "env")) and not tree.has(("kernel", "nope"))
    assert tree.has_value(("kernel",)) and not tree.has_value(("kernel", "env"))
    assert tree.has(()) and not Tree.empty().has(())


def test_children_and_counts() -> None:
    tree = sample()
    assert tree.children(("kernel",)) == ["boot.wasm", "env"]
    assert tree.children(()) == ["kernel", "readonly"]
    assert tree.children(("kernel", "boot.wasm")) == []
    assert tree.children(("missing",)) == []
    assert tree.child_count(("kernel",)) == 2
    assert tree.child_count(("kernel", "boot.wasm")) == 0
    names = {tree.nth_child(("kernel",), index) for index in range(2)}
    assert names == {"boot.wasm", "env"}
    assert tree.nth_child(("kernel",), 2) is None
    assert tree.nth_child(("kernel",), -1) is None
    assert tree.nth_child(("missing",), 0) is None


def test_nth_child_enumerates_a_big_directory() -> None:
    names = [f"n{index}" for index in range(300)]
    tree = Tree.from_items({("d", name): b"" for name in names})
    assert tree.child_count(("d",)) == 300
    listed = [tree.nth_child(("d",), index) for index in range(300)]
    assert sorted(listed) == sorted(names)  # type: ignore[type-var]


def test_delete_removes_subtree_and_prunes_empty_parents() -> None:
    tree = sample()
    pruned = tree.delete(("kernel", "env", "reboot"))
    assert not pruned.has(("kernel", "env"))
    assert pruned.children(("kernel",)) == ["boot.wasm"]
    gone = tree.delete(("kernel",))
    assert gone.to_dict() == {("readonly", "wasm_version"): b"2.0.0"}
    assert tree.delete(("readonly",)).delete(("kernel",)).hash == EMPTY_HASH
    assert tree.delete(()).hash == EMPTY_HASH
    assert tree.delete(("no", "such")) is tree


def test_delete_value_keeps_children() -> None:
    tree = sample()
    stripped = tree.delete_value(("kernel",))
    assert stripped.kind(("kernel",)) is Kind.CHILDREN
    assert stripped.get(("kernel", "boot.wasm")) == b"\x00asm"
    leafless = tree.delete_value(("readonly", "wasm_version"))
    assert not leafless.has(("readonly",))
    assert tree.delete_value(("kernel", "env")) is tree
    assert tree.delete_value(("absent",)) is tree
    assert tree.set((), b"root").delete_value(()).hash == tree.hash


def test_same_content_same_hash_regardless_of_history() -> None:
    one = Tree.empty().set(("a", "b"), b"1").set(("c",), b"2").set(("a",), b"3")
    two = Tree.empty().set(("a",), b"3").set(("c",), b"2").set(("a", "b"), b"1")
    three = (
        Tree.empty()
        .set(("x", "y", "z"), b"junk")
        .set(("a", "b"), b"old")
        .set(("c",), b"2")
        .set(("a", "b"), b"1")
        .set(("a",), b"3")
        .delete(("x",))
    )
    assert one.hash == two.hash == three.hash
    assert one == two and hash(one) == hash(two)
    assert Tree.from_items(one.to_dict()).hash == one.hash
    assert one.set(("a",), b"4").hash != one.hash
    assert one.set(("a", "b"), b"").hash != one.delete(("a", "b")).hash


def test_value_versus_empty_value_versus_child() -> None:
    hashes = {
        Tree.empty().set(("a",), b"").hash,
        Tree.empty().set(("a", "b"), b"").hash,
        Tree.empty().set(("b",), b"").hash,
        Tree.empty().set(("a",), b"\x00").hash,
        Tree.empty().hash,
    }
    assert len(hashes) == 5


def test_subtree_graft_copy_move() -> None:
    tree = sample()
    kernel = tree.subtree(("kernel",))
    assert kernel is not None
    assert kernel.get(("boot.wasm",)) == b"\x00asm"
    assert kernel.hash == tree.subtree_hash(("kernel",))
    assert tree.subtree(("nope",)) is None and tree.subtree_hash(("nope",)) is None
    assert tree.subtree(()) is not None and tree.subtree(()).hash == tree.hash  # type: ignore[union-attr]
    grafted = tree.graft(("backup", "kernel"), kernel)
    assert grafted.subtree_hash(("backup", "kernel")) == kernel.hash
    assert grafted.get(("backup", "kernel", "env", "reboot")) == b""
    assert tree.copy(("kernel",), ("backup", "kernel")).hash == grafted.hash
    moved = tree.move(("kernel",), ("old",))
    assert not moved.has(("kernel",))
    assert moved.subtree_hash(("old",)) == kernel.hash
    assert tree.graft(("kernel",), Tree.empty()).hash == tree.delete(("kernel",)).hash
    assert tree.graft((), kernel).hash == kernel.hash
    # Copying into itself takes the old version of the source.
    nested = tree.copy(("kernel",), ("kernel", "env", "copy"))
    assert nested.get(("kernel", "env", "copy", "env", "reboot")) == b""
    assert tree.copy(("absent",), ("kernel",)).hash == tree.delete(("kernel",)).hash


def test_invalid_paths_are_typed() -> None:
    tree = sample()
    for bad in [("",), ("a", ""), ("x" * 256,), (b"bytes",), (3,), ("\ud800",)]:
        with pytest.raises(InvalidPath):
            tree.get(bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidPath):
            tree.set(bad, b"v")  # type: ignore[arg-type]
        with pytest.raises(InvalidPath):
            Tree.from_items({bad: b"v"})  # type: ignore[dict-item]
    assert tree.set(("é" * 127,), b"ok").get(("é" * 127,)) == b"ok"


def test_value_size_limit() -> None:
    tree = Tree.empty().set(("big",), bytes(MAX_VALUE_SIZE))
    assert len(tree.get(("big",)) or b"") == MAX_VALUE_SIZE
    with pytest.raises(ValueTooLarge):
        tree.set(("big",), bytes(MAX_VALUE_SIZE + 1))
    with pytest.raises(ValueTooLarge):
        Tree.from_items({("big",): bytes(MAX_VALUE_SIZE + 1)})
    with pytest.raises(TypeError):
        tree.set(("x",), "text")  # type: ignore[arg-type]
    assert tree.set(("ba",), bytearray(b"ab")).get(("ba",)) == b"ab"


def test_deep_paths_need_no_recursion() -> None:
    path = tuple(f"s{index}" for index in range(3000))
    tree = Tree.empty().set(path, b"deep")
    assert tree.get(path) == b"deep"
    assert isinstance(tree.hash, Hash)
    assert Tree.from_items({path: b"deep"}).hash == tree.hash
    store = MemoryStore()
    root = tree.persist(store)
    assert Tree.open(store, root).get(path) == b"deep"
    assert tree.delete(path).hash == EMPTY_HASH


def trie_depth(tree: Tree, path: tuple[str, ...]) -> int:
    node = tree._find_node(path)
    assert node is not None
    deepest = 0
    todo = [(tries.root_of(node), 1)]
    while todo:
        item, depth = todo.pop()
        deepest = max(deepest, depth)
        if isinstance(item, Branch):
            todo.extend([(item.left, depth + 1), (item.right, depth + 1)])
        else:
            assert isinstance(item, Leaf)
    return deepest


def test_trie_is_balanced_and_canonical() -> None:
    count = 5000
    items = {("dir", f"{index}"): b"" for index in range(count)}
    bulk = Tree.from_items(items)
    depth = trie_depth(bulk, ("dir",))
    assert depth <= 3 * math.log2(count), depth
    step = Tree.empty()
    for path in reversed(list(items)):
        step = step.set(path, b"")
    assert step.hash == bulk.hash
    assert bulk.child_count(("dir",)) == count


def test_structural_sharing_in_the_store() -> None:
    count = 20_000
    tree = Tree.from_items({("data", f"k{index}"): b"%d" % index for index in range(count)})
    store = MemoryStore()
    tree.persist(store)
    assert len(store) == 2 * count + 1  # a node per value, count - 1 branches, two dirs
    same = Tree.from_items({("data", f"k{index}"): b"v" for index in range(count)})
    shared = MemoryStore()
    same.persist(shared)
    assert len(shared) == count + 2  # equal value nodes are stored once
    worst = 0
    for index in range(0, count, 997):
        tree = tree.set(("data", f"k{index}"), b"changed")
        before = len(store)
        tree.persist(store)
        worst = max(worst, len(store) - before)
    # The path: root, data node, the trie branches down to the leaf, the value node.
    assert worst <= 3 * math.log2(count) + 4, worst


def test_chunked_values() -> None:
    data = bytes(index % 251 for index in range(10_000))
    tree = write_chunked(Tree.empty(), ("blob",), data)
    assert chunked_length(tree, ("blob",)) == 10_000
    assert read_chunked(tree, ("blob",)) == data
    assert read_chunked_range(tree, ("blob",), 4000, 200) == data[4000:4200]
    assert read_chunked_range(tree, ("blob",), 9990, 100) == data[9990:]
    assert read_chunked_range(tree, ("blob",), 20_000, 5) == b""
    assert tree.child_count(("blob", "chunks")) == 3
    small = write_chunked(Tree.empty(), ("b",), data, chunk_size=512)
    assert read_chunked_range(small, ("b",), 1000, 1000) == data[1000:2000]
    empty = write_chunked(Tree.empty(), ("e",), b"")
    assert read_chunked(empty, ("e",)) == b""
    assert read_chunked(tree, ("nothing",)) is None
    rewritten = write_chunked(tree, ("blob",), b"short")
    assert read_chunked(rewritten, ("blob",)) == b"short"
    with pytest.raises(ChunkedValueError):
        write_chunked(tree, ("x",), data, chunk_size=MAX_VALUE_SIZE + 1)
    with pytest.raises(ChunkedValueError):
        read_chunked_range(tree, ("nothing",), 0, 1)
    with pytest.raises(ChunkedValueError):
        read_chunked(tree.delete(("blob", "chunks", "1")), ("blob",))
