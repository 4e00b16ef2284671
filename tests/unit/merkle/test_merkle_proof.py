"""Proofs (soru.merkle.proof): recording, partial trees, strict encoding, sizes."""

from __future__ import annotations

import random

import pytest

from soru.merkle import (
    MissingNode,
    NotInProof,
    Proof,
    ProofDecodeError,
    ProofError,
    ProofMismatch,
    SQLiteStore,
    Tree,
    produce_proof,
    record,
    verify_proof,
)
from soru.merkle.chunked import read_chunked_range, write_chunked
from soru.merkle.proof import NODE_OMITTED, NODE_PRESENT, TRIE_BRANCH, TRIE_LEAF


def sample() -> Tree:
    items = {("data", f"k{index}"): b"value %d" % index for index in range(200)}
    items[("kernel", "boot.wasm")] = bytes(4096)
    items[("kernel",)] = b"a value on a directory"
    items[("kernel", "env", "reboot")] = b"\x01"
    return Tree.from_items(items)


def test_inclusion_proof() -> None:
    tree = sample()
    value, proof = produce_proof(tree, lambda view: view.get(("data", "k17")))
    assert value == b"value 17"
    decoded = Proof.decode(proof.encode())
    assert decoded == proof and decoded.root_hash == tree.hash
    assert verify_proof(decoded, tree.hash, lambda t: t.get(("data", "k17"))) == b"value 17"
    with pytest.raises(ProofMismatch):
        verify_proof(decoded, bytes(32), lambda t: t.get(("data", "k17")))


def test_absence_proof() -> None:
    tree = sample()
    for path in [("data", "nope"), ("nothing",), ("kernel", "env", "reboot", "below")]:
        value, proof = produce_proof(tree, lambda view, p=path: view.get(p))
        assert value is None
        decoded = Proof.decode(proof.encode())
        assert verify_proof(decoded, tree.hash, lambda t, p=path: t.get(p)) is None


def test_untouched_parts_raise() -> None:
    tree = sample()
    _, proof = produce_proof(tree, lambda view: view.get(("data", "k17")))
    partial = Proof.decode(proof.encode()).tree()
    assert partial.hash == tree.hash
    with pytest.raises(NotInProof) as caught:
        partial.get(("data", "k18"))
    assert isinstance(caught.value, MissingNode) and isinstance(caught.value, ProofError)
    assert partial.get(("data",)) is None  # walked through: it is known to hold no value
    _, through = produce_proof(tree, lambda view: view.get(("kernel", "env", "reboot")))
    with pytest.raises(NotInProof):
        through.tree().get(("kernel",))  # walked through, its value was not read
    assert through.tree().kind(("kernel",)).name == "BOTH"
    with pytest.raises(NotInProof):
        partial.get(("kernel", "boot.wasm"))
    with pytest.raises(NotInProof):
        partial.children(("data",))
    assert partial.get(("data", "k17")) == b"value 17"


def test_big_value_on_the_way_costs_a_hash() -> None:
    tree = sample()
    _, proof = produce_proof(tree, lambda view: view.get(("kernel", "env", "reboot")))
    assert len(proof.encode()) < 600  # the 22-byte value of ("kernel",) is not included
    _, with_value = produce_proof(tree, lambda view: view.get(("kernel", "boot.wasm")))
    assert 4096 < len(with_value.encode()) < 4096 + 600


def test_writes_on_the_partial_tree_give_the_after_hash() -> None:
    tree = sample()

    def step(view: Tree) -> Tree:
        count = view.child_count(("data",))
        view = view.set(("data", "k5"), b"five")
        view = view.delete(("data", "k6"))
        view = view.delete_value(("kernel",))
        view = view.set(("counter",), count.to_bytes(4, "big"))
        view = view.copy(("kernel", "env"), ("backup", "env"))
        return view.move(("data", "k7"), ("moved",))

    after, proof = produce_proof(tree, step)
    assert after.hash == step(tree).hash
    replayed = verify_proof(Proof.decode(proof.encode()), tree.hash, step)
    assert replayed.hash == after.hash
    assert replayed.get(("data", "k5")) == b"five"  # written during the step


def test_empty_tree_and_untouched_root() -> None:
    _, proof = produce_proof(Tree.empty(), lambda view: view.get(("a",)))
    assert Proof.decode(proof.encode()).tree().get(("a",)) is None
    tree = sample()
    _, nothing = produce_proof(tree, lambda view: view.hash)
    assert nothing.encode() == bytes([1, NODE_OMITTED]) + tree.hash
    with pytest.raises(NotInProof):
        nothing.tree().get(())


def test_recording_a_lazily_loaded_tree(tmp_path) -> None:
    tree = sample()
    with SQLiteStore(tmp_path / "p.sqlite") as store:
        root = tree.persist(store)
        store.commit("head", root)
        lazy = Tree.open(store, root)
        value, proof = produce_proof(lazy, lambda view: view.get(("data", "k99")))
        assert value == b"value 99"
        _, reference = produce_proof(tree, lambda view: view.get(("data", "k99")))
        assert proof.encode() == reference.encode()
        # The recording view can itself be persisted (it reads through, no recording).
        view, _ = record(lazy)
        assert view.set(("new",), b"1").persist(store) == tree.set(("new",), b"1").hash


def test_partial_tree_cannot_be_persisted() -> None:
    from soru.merkle import MemoryStore

    _, proof = produce_proof(sample(), lambda view: view.get(("data", "k1")))
    with pytest.raises(NotInProof):
        proof.tree().persist(MemoryStore())


def test_proof_size_one_read_in_100k_directory() -> None:
    count = 100_000
    tree = Tree.from_items({("d", f"key{index}"): b"%08d" % index for index in range(count)})
    rng = random.Random(1)
    sizes = []
    for _ in range(20):
        key = ("d", f"key{rng.randrange(count)}")
        value, proof = produce_proof(tree, lambda view, k=key: view.get(k))
        assert value is not None
        sizes.append(len(proof.encode()))
        assert Proof.decode(proof.encode()).tree().get(key) == value
    assert max(sizes) < 2048, sizes
    # A write proves cheaply too.
    _, write = produce_proof(tree, lambda view: view.set(("d", "key5"), b"x").hash)
    assert len(write.encode()) < 2048


def test_proof_size_one_chunk_of_a_1mib_value() -> None:
    data = random.Random(2).randbytes(1 << 20)
    tree = write_chunked(Tree.empty(), ("durable", "blob"), data)
    chunk, proof = produce_proof(
        tree, lambda view: read_chunked_range(view, ("durable", "blob"), 300 * 1024, 4096)
    )
    assert chunk == data[300 * 1024 : 301 * 1024 + 3072]
    assert len(proof.encode()) < 6 * 1024, len(proof.encode())


def encoded_sample() -> tuple[bytes, bytes]:
    tree = sample()

    def step(view: Tree) -> object:
        return (
            view.get(("data", "k3")),
            view.get(("data", "absent")),
            view.kind(("kernel",)),
            view.child_count(("kernel",)),
            view.set(("data", "k9"), b"nine").hash,
        )

    _, proof = produce_proof(tree, step)
    return proof.encode(), tree.hash


def test_every_single_bit_flip_is_caught() -> None:
    data, root = encoded_sample()
    assert len(data) < 3000
    for index in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[index // 8] ^= 1 << (index % 8)
        try:
            proof = Proof.decode(bytes(flipped))
        except ProofDecodeError:
            continue
        assert proof.root_hash != root, f"bit {index} flipped unnoticed"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda data: data + b"\x00",  # trailing byte
        lambda data: data[:-1],  # truncated
        lambda data: b"\x02" + data[1:],  # version
        lambda data: b"",
        lambda data: data[:1] + b"\x07" + data[2:],  # node tag
    ],
)
def test_malformed_encodings_are_typed(mutate) -> None:
    data, _ = encoded_sample()
    with pytest.raises(ProofDecodeError):
        Proof.decode(mutate(data))


def hash_bytes(fill: int) -> bytes:
    return bytes([fill]) * 32


@pytest.mark.parametrize(
    "body",
    [
        # a node whose flags claim value kind 3
        bytes([NODE_PRESENT, 3]),
        # unknown flag bits
        bytes([NODE_PRESENT, 0x08]),
        # a leaf whose child has neither value nor children
        bytes([NODE_PRESENT, 4, TRIE_LEAF, 1]) + b"a" + bytes([NODE_PRESENT, 0]),
        # empty name
        bytes([NODE_PRESENT, 4, TRIE_LEAF, 0]),
        # non-UTF-8 name
        bytes([NODE_PRESENT, 4, TRIE_LEAF, 1, 0xFF]) + bytes([NODE_OMITTED]) + hash_bytes(1),
        # a branch over one leaf
        bytes([NODE_PRESENT, 4, TRIE_BRANCH, 0, 0, 0, 0, 1]),
        # a child branch whose bit does not increase
        bytes([NODE_PRESENT, 4, TRIE_BRANCH, 5, 0, 0, 0, 4, TRIE_BRANCH, 5, 0, 0, 0, 2]),
        # value longer than 4096 bytes
        bytes([NODE_PRESENT, 2, 0x10, 0x01]) + bytes(4097),
        # a trie tag where a node is expected
        bytes([TRIE_LEAF]),
        # a hash of the wrong size (truncated)
        bytes([NODE_OMITTED]) + bytes(31),
    ],
)
def test_handcrafted_bad_proofs(body: bytes) -> None:
    with pytest.raises(ProofDecodeError):
        Proof.decode(bytes([1]) + body)


def test_leaf_on_the_wrong_side_and_bad_counts() -> None:
    from soru.merkle.nodes import bit_of, key_of

    names = [f"n{index}" for index in range(64)]
    a = next(name for name in names if bit_of(key_of(name), 0) == 0)
    b = next(name for name in names if bit_of(key_of(name), 0) == 1)

    def leaf(name: str) -> bytes:
        return bytes([TRIE_LEAF, len(name)]) + name.encode() + bytes([NODE_PRESENT, 2, 0, 0])

    def branch(count: int, left: bytes, right: bytes) -> bytes:
        return bytes([TRIE_BRANCH, 0]) + count.to_bytes(4, "big") + left + right

    good = bytes([1, NODE_PRESENT, 4]) + branch(2, leaf(a), leaf(b))
    partial = Proof.decode(good).tree()
    assert sorted(partial.children(())) == sorted([a, b])
    assert partial.hash == Tree.empty().set((a,), b"").set((b,), b"").hash
    omitted = bytes([0x10]) + hash_bytes(3)
    assert Proof.decode(bytes([1, NODE_PRESENT, 4]) + branch(5, leaf(a), omitted))
    for bad in [
        bytes([1, NODE_PRESENT, 4]) + branch(2, leaf(b), leaf(a)),  # swapped sides
        bytes([1, NODE_PRESENT, 4]) + branch(3, leaf(a), leaf(b)),  # count is 2
        bytes([1, NODE_PRESENT, 4]) + branch(1, leaf(a), omitted),  # a branch over 1 leaf
    ]:
        with pytest.raises(ProofDecodeError):
            Proof.decode(bad)
