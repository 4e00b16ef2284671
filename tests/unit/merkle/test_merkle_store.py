"""Node stores (soru.merkle.store): lazy loading, incremental writes, roots, gc, durability."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from soru.merkle import (
    CorruptNode,
    MemoryStore,
    NodeNotStored,
    SQLiteStore,
    StoreError,
    Tree,
    UnknownRoot,
)
from soru.merkle.codec import references


def keyed(count: int, prefix: str = "k") -> dict[tuple[str, ...], bytes]:
    return {("data", f"{prefix}{index}"): b"value %d" % index for index in range(count)}


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "memory":
        yield MemoryStore()
    else:
        opened = SQLiteStore(tmp_path / "nodes.sqlite")
        yield opened
        opened.close()


def test_roundtrip_through_a_store(store) -> None:
    tree = Tree.from_items(keyed(500)).set(("x",), b"root-level").set((), b"root value")
    root = tree.persist(store)
    store.commit("head", root)
    loaded = Tree.open(store, store.get_root("head"))
    assert loaded.hash == root
    assert loaded.to_dict() == tree.to_dict()
    assert Tree.from_items(loaded.to_dict()).hash == root


def test_empty_tree_persists(store) -> None:
    root = Tree.empty().persist(store)
    store.commit("empty", root)
    assert Tree.open(store, root).to_dict() == {}
    assert Tree.open(store, root).hash == Tree.empty().hash


def test_lazy_loading_reads_only_the_path(tmp_path: Path) -> None:
    count = 20_000
    path = tmp_path / "lazy.sqlite"
    with SQLiteStore(path) as writer:
        writer.commit("head", Tree.from_items(keyed(count)).persist(writer))
    with SQLiteStore(path) as reader:
        tree = Tree.open(reader, reader.get_root("head"))
        assert reader.reads == 0
        assert tree.hash == reader.get_root("head") and reader.reads == 0
        assert tree.get(("data", "k1234")) == b"value 1234"
        first = reader.reads
        # root node, "data" node, its trie branches (leaves are inline), the value's node
        assert first <= 2.5 * math.log2(count) + 3, first
        assert tree.get(("data", "k1234")) == b"value 1234"
        assert reader.reads == first  # cached in the tree
        assert tree.get(("data", "absent")) is None
        assert reader.reads <= first + 2.5 * math.log2(count)


def test_writes_only_new_nodes(store) -> None:
    count = 5000
    tree = Tree.from_items(keyed(count))
    store.commit("v1", tree.persist(store))
    before = len(store)
    lazy = Tree.open(store, store.get_root("v1"))
    changed = lazy.set(("data", "k42"), b"new").set(("data", "fresh"), b"added")
    store.commit("v2", changed.persist(store))
    added = len(store) - before
    assert added <= 2 * (2.5 * math.log2(count) + 3), added
    assert changed.persist(store) == changed.hash
    assert len(store) - before == added  # nothing more to write
    assert Tree.open(store, store.get_root("v2")).get(("data", "fresh")) == b"added"
    assert Tree.open(store, store.get_root("v1")).get(("data", "k42")) == b"value 42"


def test_copy_between_stores(tmp_path: Path) -> None:
    source = MemoryStore()
    tree = Tree.from_items(keyed(300))
    root = tree.persist(source)
    lazy = Tree.open(source, root).set(("data", "k1"), b"changed")
    with SQLiteStore(tmp_path / "copy.sqlite") as target:
        target.commit("head", lazy.persist(target))
        assert Tree.open(target, lazy.hash).to_dict() == lazy.to_dict()


def test_roots(store) -> None:
    assert store.find_root("head") is None
    with pytest.raises(UnknownRoot):
        store.get_root("head")
    one = Tree.empty().set(("a",), b"1")
    two = Tree.empty().set(("a",), b"2")
    store.commit("head", one.persist(store))
    store.commit("other", two.persist(store))
    store.commit("head", two.persist(store))
    assert store.roots() == {"head": two.hash, "other": two.hash}


def test_missing_and_corrupt_nodes(store) -> None:
    with pytest.raises(NodeNotStored):
        Tree.open(store, bytes(32)).get(("a",))
    with pytest.raises(NodeNotStored):
        store.get(bytes(32))
    assert not store.has(bytes(32))
    for bad in [b"", b"\x02\x01\x00", b"\x01\x07", b"\x01\x01\x00\x00", b"\x01\x01\x01\x10\x00"]:
        key = bytes([len(bad)]) * 32
        store.put(key, bad)
        with pytest.raises(CorruptNode):
            Tree.open(store, key).get(("a",))


def test_gc_keeps_exactly_the_reachable_nodes(store) -> None:
    v1 = Tree.from_items(keyed(2000))
    store.commit("v1", v1.persist(store))
    v2 = v1.set(("data", "k7"), b"seven").delete(("data", "k8")).set(("more",), b"x")
    store.commit("v2", v2.persist(store))
    orphan = v2.set(("orphan",), b"never committed")
    orphan.persist(store)
    alone = MemoryStore()
    v2.persist(alone)
    deleted = store.gc([v2.hash])
    assert deleted > 0
    assert store.roots() == {"v2": v2.hash}
    assert store.reachable([v2.hash]) == set(alone.nodes)
    assert len(store) == len(alone)
    assert Tree.open(store, v2.hash).to_dict() == v2.to_dict()
    # After gc the store's token changed: persisting v1 again writes what gc removed.
    v1.persist(store)
    assert Tree.open(store, v1.hash).to_dict() == v1.to_dict()
    assert store.gc() > 0  # default: keep the named roots (v2 only)
    assert len(store) == len(alone)


def test_references_match_the_tree() -> None:
    store = MemoryStore()
    tree = Tree.from_items({("a", "b"): b"1", ("a", "c"): b"2", ("d",): b"3"})
    tree.persist(store)
    edges = sum(len(references(data)) for data in store.nodes.values())
    assert edges == len(store) - 1  # a tree: every stored object but the root has a parent


def test_sqlite_rollback_and_close_discard_uncommitted(tmp_path: Path) -> None:
    path = tmp_path / "rollback.sqlite"
    with SQLiteStore(path) as store:
        committed = Tree.empty().set(("a",), b"1")
        store.commit("head", committed.persist(store))
        pending = committed.set(("b",), b"2")
        pending.persist(store)
        store.rollback()
        assert not store.has(pending.hash)
        pending.persist(store)  # the token changed: written again
        assert store.has(pending.hash)
    with SQLiteStore(path) as store:
        assert not store.has(pending.hash)
        assert store.get_root("head") == committed.hash


def test_sqlite_format_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "format.sqlite"
    SQLiteStore(path).close()
    database = sqlite3.connect(path)
    database.execute("UPDATE meta SET value = 99 WHERE key = 'format'")
    database.commit()
    database.close()
    with pytest.raises(StoreError):
        SQLiteStore(path)
    with pytest.raises(StoreError):
        SQLiteStore(tmp_path / "other.sqlite", synchronous="SOMETIMES")


CHILD = textwrap.dedent(
    """
    import sys
    from soru.merkle import SQLiteStore, Tree

    store = SQLiteStore(sys.argv[1])
    first = Tree.from_items(
        {("data", f"k{i}"): b"first %d" % i for i in range(3000)}
    )
    store.commit("head", first.persist(store))
    print(first.hash.hex(), flush=True)
    tree = first
    round = 0
    while True:
        round += 1
        batch = {("big", str(round), f"x{i}"): b"%d" % i * 40 for i in range(2000)}
        tree = tree.graft(("big", str(round)), Tree.from_items(batch).subtree(("big", str(round))))
        tree.persist(store)
        if round == 2:
            print("writing", flush=True)
    """
)


def test_sqlite_survives_sigkill_mid_write(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    try:
        first_hash = child.stdout.readline().strip()  # type: ignore[union-attr]
        assert len(first_hash) == 64
        assert child.stdout.readline().strip() == "writing"  # type: ignore[union-attr]
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
        if child.stdout:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    with SQLiteStore(path) as store:
        root = store.get_root("head")
        assert root.hex() == first_hash
        tree = Tree.open(store, root)
        expected = {("data", f"k{i}"): b"first %d" % i for i in range(3000)}
        assert tree.to_dict() == expected
        assert Tree.from_items(expected).hash == root
        database = sqlite3.connect(path)
        assert database.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        database.close()
        # Nothing written after the commit survived: the nodes are exactly the first tree's.
        assert store.reachable([root]) == set(
            row[0] for row in sqlite3.connect(path).execute("SELECT hash FROM nodes")
        )


def test_persist_after_gc_writes_only_the_change(store) -> None:
    v1 = Tree.from_items(keyed(3000))
    store.commit("v1", v1.persist(store))
    lazy = Tree.open(store, v1.hash)
    assert lazy.get(("data", "k5")) == b"value 5"
    assert store.gc() == 0
    reads, size = store.reads, len(store)
    v2 = lazy.set(("data", "k6"), b"six")
    store.commit("v2", v2.persist(store))
    assert store.reads - reads <= 2.5 * math.log2(3000) + 5  # the path, not the whole tree
    assert len(store) - size <= 2.5 * math.log2(3000) + 5
    assert Tree.open(store, v2.hash).to_dict() == v2.to_dict()
    # A tree whose unloaded nodes gc removed cannot be persisted again: typed error.
    store.gc([Tree.empty().persist(store)])
    with pytest.raises(NodeNotStored):
        Tree.open(store, v2.hash).get(("data", "k1"))
