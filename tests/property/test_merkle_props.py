"""Properties of soru.merkle, checked with hypothesis.

* the tree behaves like a dictionary of paths (a model), whatever the operations;
* the hash depends on the content only: same content, same hash (whatever the history);
  different content, different hash;
* trees survive a store round trip;
* every recorded proof verifies: re-running a script on the partial tree gives the same
  results and the same after-hash; on the partial tree every read either gives the true
  answer or raises NotInProof — never a wrong answer;
* every recorded proof is minimal: leaving out any one of its nodes or values makes the
  replay raise NotInProof;
* a flipped bit in an encoded proof is rejected or changes the root hash.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soru.merkle import (
    MemoryStore,
    NotInProof,
    Proof,
    ProofDecodeError,
    Tree,
    record,
)
from soru.merkle.nodes import (
    Branch,
    Leaf,
    MissingStub,
    MissingValue,
    Node,
    Stub,
    hash_of,
    node_value_hash,
)

settings.register_profile(
    "merkle", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=150
)
SETTINGS = settings.get_profile("merkle")

segments = st.sampled_from(["a", "b", "c", "dd", "é", "0"])
paths = st.lists(segments, min_size=0, max_size=3).map(tuple)
nonroot_paths = st.lists(segments, min_size=1, max_size=3).map(tuple)
values = st.binary(max_size=24)
contents = st.dictionaries(nonroot_paths, values, max_size=25)

Model = dict[tuple[str, ...], bytes]


def below(path: tuple[str, ...], prefix: tuple[str, ...]) -> bool:
    return path[: len(prefix)] == prefix


def model_apply(model: Model, op: tuple) -> Model:
    name = op[0]
    model = dict(model)
    if name == "set":
        model[op[1]] = op[2]
    elif name == "delete":
        model = {p: v for p, v in model.items() if not below(p, op[1])}
    elif name == "delete_value":
        model.pop(op[1], None)
    elif name in ("copy", "move"):
        source, target = op[1], op[2]
        moved = {p[len(source) :]: v for p, v in model.items() if below(p, source)}
        if name == "move":
            model = {p: v for p, v in model.items() if not below(p, source)}
        model = {p: v for p, v in model.items() if not below(p, target)}
        model.update({target + p: v for p, v in moved.items()})
    return model


def tree_apply(tree: Tree, op: tuple) -> Tree:
    name = op[0]
    if name == "set":
        return tree.set(op[1], op[2])
    if name == "delete":
        return tree.delete(op[1])
    if name == "delete_value":
        return tree.delete_value(op[1])
    if name == "copy":
        return tree.copy(op[1], op[2])
    if name == "move":
        return tree.move(op[1], op[2])
    raise AssertionError(op)


writes = st.one_of(
    st.tuples(st.just("set"), paths, values),
    st.tuples(st.just("delete"), paths),
    st.tuples(st.just("delete_value"), paths),
    st.tuples(st.just("copy"), paths, paths),
    st.tuples(st.just("move"), paths, paths),
)
reads = st.one_of(
    st.tuples(st.sampled_from(["get", "has", "kind", "children", "count", "hash"]), paths),
    st.tuples(st.just("nth"), paths, st.integers(-1, 6)),
)


def read(tree: Tree, op: tuple) -> object:
    name, path = op[0], op[1]
    if name == "get":
        return tree.get(path)
    if name == "has":
        return tree.has(path)
    if name == "kind":
        return tree.kind(path).value
    if name == "children":
        return tree.children(path)
    if name == "count":
        return tree.child_count(path)
    if name == "hash":
        return tree.subtree_hash(path)
    if name == "nth":
        return tree.nth_child(path, op[2])
    raise AssertionError(op)


def run(tree: Tree, script: list[tuple]) -> tuple[list[object], bytes]:
    results = []
    for op in script:
        if op[0] in ("get", "has", "kind", "children", "count", "hash", "nth"):
            results.append(read(tree, op))
        else:
            tree = tree_apply(tree, op)
    return results, tree.hash


def model_children(model: Model, path: tuple[str, ...]) -> list[str]:
    return sorted({p[len(path)] for p in model if len(p) > len(path) and below(p, path)})


@SETTINGS
@given(contents, st.lists(writes, max_size=25))
def test_tree_behaves_like_its_model(start: Model, ops: list[tuple]) -> None:
    tree, model = Tree.from_items(start), dict(start)
    for op in ops:
        tree, model = tree_apply(tree, op), model_apply(model, op)
    assert tree.to_dict() == model
    assert tree.hash == Tree.from_items(model).hash
    for path in list(model)[:5]:
        for depth in range(len(path) + 1):
            prefix = path[:depth]
            assert tree.children(prefix) == model_children(model, prefix)
            assert tree.child_count(prefix) == len(model_children(model, prefix))


@SETTINGS
@given(contents, st.randoms(use_true_random=False), st.lists(st.tuples(nonroot_paths, values)))
def test_hash_is_independent_of_history(content: Model, rng, junk: list) -> None:
    items = list(content.items())
    rng.shuffle(items)
    one = Tree.empty()
    for path, value in items:
        one = one.set(path, value)
    two = Tree.empty()
    for path, value in junk:  # write things, then remove them again
        two = two.set(path, value)
    rng.shuffle(items)
    for path, value in items:
        two = two.set(path, value)
    for path, _ in junk:
        if path not in content:
            two = two.delete_value(path)
    for path, value in content.items():  # junk may have overwritten some values
        two = two.set(path, value)
    assert two.to_dict() == content
    assert one.hash == two.hash == Tree.from_items(content).hash


@SETTINGS
@given(contents, contents)
def test_different_content_different_hash(first: Model, second: Model) -> None:
    same = first == second
    assert (Tree.from_items(first).hash == Tree.from_items(second).hash) == same


@SETTINGS
@given(contents, st.lists(writes, max_size=8))
def test_store_roundtrip(start: Model, ops: list[tuple]) -> None:
    store = MemoryStore()
    tree = Tree.from_items(start)
    tree.persist(store)
    for op in ops:
        tree = tree_apply(Tree.open(store, tree.hash), op)
        tree.persist(store)
    loaded = Tree.open(store, tree.hash)
    assert loaded.to_dict() == tree.to_dict()
    assert loaded.hash == tree.hash


wide_contents = st.builds(
    lambda base, width: {**base, **{("w", f"{i}"): b"%d" % i for i in range(width)}},
    contents,
    st.integers(0, 300),
)
scripts = st.lists(st.one_of(reads, writes), max_size=20)


@SETTINGS
@given(wide_contents, scripts, st.lists(paths, max_size=10))
def test_recorded_proofs_verify(start: Model, script: list[tuple], probes: list) -> None:
    tree = Tree.from_items(start)
    expected = run(tree, script)
    view, recorder = record(tree)
    assert run(view, script) == expected
    proof = recorder.proof()
    encoded = proof.encode()
    decoded = Proof.decode(encoded)
    assert decoded.encode() == encoded
    assert decoded.root_hash == tree.hash
    assert run(decoded.tree(), script) == expected
    # Anything else either answers truly or raises NotInProof.
    partial = decoded.tree()
    for path in probes + list(start)[:10] + [("w", "7"), ("w", "nope")]:
        for op in [("get", path), ("has", path), ("kind", path), ("children", path)]:
            try:
                answer = read(partial, op)
            except NotInProof:
                continue
            assert answer == read(tree, op)


def included_parts(root: object) -> list[tuple[object, str]]:
    """``(object, slot)`` for every node, trie item and value a partial tree holds in full."""
    found: list[tuple[object, str]] = []
    todo = [] if isinstance(root, Stub) else [root]
    while todo:
        item = todo.pop()
        if isinstance(item, Node):
            if item.value is not None and item.value.__class__ is bytes:
                found.append((item, "value"))
            slots = ["trie"] if item.trie is not None else []
        elif isinstance(item, Branch):
            slots = ["left", "right"]
        else:
            assert isinstance(item, Leaf)
            slots = ["child"]
        for slot in slots:
            below = getattr(item, slot)
            if not isinstance(below, Stub):
                found.append((item, slot))
                todo.append(below)
    return found


@SETTINGS
@given(wide_contents, scripts)
def test_recorded_proofs_are_minimal(start: Model, script: list[tuple]) -> None:
    tree = Tree.from_items(start)
    expected = run(tree, script)
    view, recorder = record(tree)
    run(view, script)
    partial = Proof.decode(recorder.proof().encode())
    root = partial.root
    hash_of(root)
    if not isinstance(root, Stub):
        try:
            run(Tree(MissingStub(hash_of(root))), script)
            raise AssertionError("the root is in the proof but the replay did not need it")
        except NotInProof:
            pass
    for item, slot in included_parts(root):
        original = getattr(item, slot)
        if slot == "value":
            stand_in: object = MissingValue(node_value_hash(item))  # type: ignore[arg-type]
        else:
            stand_in = MissingStub(hash_of(original))
        setattr(item, slot, stand_in)
        try:
            run(Tree(root), script)
            raise AssertionError(f"{slot} of {item!r} is in the proof but was not needed")
        except NotInProof:
            pass
        finally:
            setattr(item, slot, original)
    assert run(Tree(root), script) == expected


@SETTINGS
@given(wide_contents, scripts, st.data())
def test_flipped_bits_are_caught(start: Model, script: list[tuple], data) -> None:
    tree = Tree.from_items(start)
    view, recorder = record(tree)
    run(view, script)
    encoded = recorder.proof().encode()
    for _ in range(20):
        index = data.draw(st.integers(0, len(encoded) * 8 - 1))
        flipped = bytearray(encoded)
        flipped[index // 8] ^= 1 << (index % 8)
        try:
            proof = Proof.decode(bytes(flipped))
        except ProofDecodeError:
            continue
        assert proof.root_hash != tree.hash
