"""Benchmark of soru.merkle: get/set on a 100 000-key tree in memory and over SQLite, and
proof sizes. The peer is a plain ``dict`` doing the same gets and sets in the same process
(it hashes nothing and shares nothing: the ratio is the price of a persistent Merkle tree).

Run: ``.venv/bin/python benchmarks/merkle.py [--keys N]``
"""

from __future__ import annotations

import argparse
import gc
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from soru.merkle import SQLiteStore, Tree, produce_proof
from soru.merkle.chunked import read_chunked_range, write_chunked


def rate(count: int, action: Callable[[], object]) -> tuple[float, float]:
    """Operations per second of ``action`` (which does ``count`` operations), and seconds."""
    start = time.perf_counter()
    action()
    elapsed = time.perf_counter() - start
    return count / elapsed, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--ops", type=int, default=20_000)
    args = parser.parse_args()
    keys, ops = args.keys, args.ops
    rng = random.Random(7)
    paths = [("durable", "data", f"key{index}") for index in range(keys)]
    items = {path: b"%016d" % index for index, path in enumerate(paths)}
    probe = [paths[rng.randrange(keys)] for _ in range(ops)]
    print(f"soru.merkle benchmark: {keys} keys under one directory, {ops} operations each")

    def report(label: str, per_second: float, peer: float | None = None) -> None:
        ratio = f"   dict is {peer / per_second:6.1f}x faster" if peer else ""
        print(f"  {label:<44} {per_second:>12,.0f} ops/s{ratio}")

    # Peer: a dict.
    peer_map = dict(items)
    dict_get, _ = rate(ops, lambda: [peer_map.get(path) for path in probe])

    def dict_sets() -> None:
        for path in probe:
            peer_map[path] = b"x"

    dict_set, _ = rate(ops, dict_sets)

    _, built = rate(keys, lambda: Tree.from_items(items))
    tree = Tree.from_items(items)
    _, hashed = rate(keys, lambda: tree.hash)
    print(f"  build with from_items: {built:.2f} s, first root hash: {hashed:.2f} s")
    incremental = Tree.empty()

    def build_by_sets() -> None:
        nonlocal incremental
        for path in paths[:ops]:
            incremental = incremental.set(path, items[path])

    report("set, building a tree from empty", rate(ops, build_by_sets)[0])

    # Memory.
    report("get (memory)", rate(ops, lambda: [tree.get(path) for path in probe])[0], dict_get)
    updated = tree

    def sets() -> None:
        nonlocal updated
        for path in probe:
            updated = updated.set(path, b"x")

    report("set, hash deferred (memory)", rate(ops, sets)[0], dict_set)
    report("  then one root hash over all of them", rate(ops, lambda: updated.hash)[0])
    stepped = tree

    def set_and_hash() -> None:
        nonlocal stepped
        for path in probe[: ops // 4]:
            stepped = stepped.set(path, b"y")
            stepped.hash  # noqa: B018 - the hash is the work measured

    report("set + root hash after each (memory)", rate(ops // 4, set_and_hash)[0], dict_set)
    # Full collections of the cyclic garbage collector scan every live node; a node process
    # that keeps a big tree should gc.freeze() it (trees hold no reference cycles).
    gc.freeze()
    stepped = tree
    report("  the same after gc.freeze()", rate(ops // 4, set_and_hash)[0], dict_set)
    gc.unfreeze()

    # SQLite.
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "bench.sqlite"
        with SQLiteStore(database) as store:
            start = time.perf_counter()
            store.commit("head", tree.persist(store))
            print(f"  persist + commit of the tree to SQLite: {time.perf_counter() - start:.2f} s")
        with SQLiteStore(database) as store:
            lazy = Tree.open(store, store.get_root("head"))
            cold, _ = rate(ops, lambda: [lazy.get(path) for path in probe])
            report("get, cold: lazily loading (SQLite)", cold, dict_get)
            print(f"  {'':<44} {store.reads / ops:12.1f} node reads per get")
            report(
                "get, warm (SQLite-backed tree)", rate(ops, lambda: [lazy.get(p) for p in probe])[0]
            )
            batch = 100
            version = lazy

            def commits() -> None:
                nonlocal version
                for start_index in range(0, ops // 4, batch):
                    for path in probe[start_index : start_index + batch]:
                        version = version.set(path, b"z")
                    store.commit("head", version.persist(store))

            report(f"set, persist + commit every {batch} (SQLite)", rate(ops // 4, commits)[0])
            fresh = Tree.open(store, store.get_root("head"))
            reads_before = store.reads
            fresh.get(probe[0])
            print(f"  one get on a freshly opened tree reads {store.reads - reads_before} nodes")

    # Proofs.
    sizes = []
    for path in probe[:200]:
        _, proof = produce_proof(tree, lambda view, p=path: view.get(p))
        sizes.append(len(proof.encode()))
    print(
        f"  proof of one get among {keys} keys: mean {sum(sizes) / len(sizes):.0f} B, "
        f"max {max(sizes)} B"
    )
    _, write_proof = produce_proof(tree, lambda view: view.set(probe[0], b"w").hash)
    print(f"  proof of one set among {keys} keys: {len(write_proof.encode())} B")
    produced, _ = rate(
        200, lambda: [produce_proof(tree, lambda view, p=p: view.get(p)) for p in probe[:200]]
    )
    report("proofs of one get produced", produced)
    blob = write_chunked(Tree.empty(), ("durable", "blob"), rng.randbytes(1 << 20))
    _, chunk_proof = produce_proof(
        blob, lambda view: read_chunked_range(view, ("durable", "blob"), 512 * 1024, 4096)
    )
    print(f"  proof of one 4 KiB chunk of a 1 MiB value: {len(chunk_proof.encode())} B")


if __name__ == "__main__":
    main()
