"""Single-tick proofs (``soru.pvm.proof``): for real kernels, every input tick, every reveal
tick, every boundary tick, the first and last tick of every kernel_run and random ticks in
between are proven; each proof verifies, its *after* is the state hash at T+1 of the
interpreter that never left memory, and it is at most 30,000 bytes. Every kind of tick is
provable — kernel loading included (Snapshot, one loader step per Decode tick, one import
per Link tick, allocation, entry): the walk asserts that no tick was refused (``NotLazy``).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pvm_kernels import ROLLUP, build, external, host_call, keyed, write

from soru.pvm import driver, layout, vm
from soru.pvm.lazy import NotLazy
from soru.pvm.proof import MAX_PROOF_SIZE, InvalidProof, TickProof, produce_proof, verify_proof
from soru.pvm.reveals import RevealProvider
from soru.pvm.state import InputMessage, TickState
from soru.tools.inputs_file import with_markers
from soru.tools.preimages import prepare_preimages, write_preimages

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "testdata" / "kernels"
TICKS = 3000


def _walk(kernel: bytes, levels: list[list[bytes]], reveals: RevealProvider, rate: float,
          ticks: int = TICKS):  # fmt: skip
    """Run tick by tick, proving the interesting ticks (inputs, reveals, the edges of each
    kernel_run, Snapshot and every loading tick) and a random ``rate`` of the others.

    Returns (proven, not lazy, sizes, the reveal ticks proven)."""
    rng = random.Random(7)
    state = driver.originate(kernel, ticks_per_kernel_run=ticks)
    proven = not_lazy = reveals_proven = 0
    sizes: list[int] = []
    queue = [
        (lv, i, m) for lv, msgs in enumerate(levels, 1) for i, m in enumerate(with_markers(msgs))
    ]
    while True:
        request = vm.input_request(state)
        message = data = None
        if request.kind in ("initial", "first_after"):
            if not queue:
                break
            message = InputMessage(*queue.pop(0))
        elif request.kind == "reveal":
            data = reveals.answer(request.reveal)
        edge = state.ticks_to_snapshot in (0, 1, ticks - 1) or state.tick_state in (
            TickState.SNAPSHOT, TickState.DECODE, TickState.LINK, TickState.INIT)  # fmt: skip
        after = None
        if message or data is not None or edge or rng.random() < rate:
            before = layout.state_tree(state)
            try:
                proof, after = produce_proof(before, message=message, reveal=data)
            except NotLazy:
                not_lazy += 1
            else:
                verified = verify_proof(TickProof.decode(proof.encode()))
                assert verified.before == before.hash
                sizes.append(proof.size)
                proven += 1
                reveals_proven += data is not None
        if message is not None:
            vm.set_input(state, message)
        elif data is not None:
            vm.reveal_step(state, data)
        else:
            vm.compute(state, 1)
        if after is not None:
            assert after.hash == layout.state_hash(state), state.tick
    return proven, not_lazy, sizes, reveals_proven


NO_REVEALS = RevealProvider(None, ROLLUP, 0)


@pytest.mark.skipif(not SHARED.exists(), reason="shared kernels not present")
@pytest.mark.parametrize("name", ["echo.wasm", "debug_kernel.wasm"])
def test_octez_kernels(name: str) -> None:
    levels = [[external(b"hello"), external(b"x" * 100)], [external(b"again")]]
    proven, not_lazy, sizes, _ = _walk((SHARED / name).read_bytes(), levels, NO_REVEALS, 0.05)
    assert proven > 300 and max(sizes) <= MAX_PROOF_SIZE
    assert not_lazy == 0  # every kind of tick, kernel loading included, is provable


def test_host_functions_kernel() -> None:
    calls = [
        write("/a/b", b"x" * 3000),
        keyed("store_value_size", "/a/b"),
        host_call("write_output", 0x1034, 5, data=b"hello"),
        keyed("store_delete", "/a"),
    ]
    proven, not_lazy, sizes, _ = _walk(
        build("host_calls"), [[external(c) for c in calls]], NO_REVEALS, 0.05
    )
    assert proven > 100 and max(sizes) <= MAX_PROOF_SIZE and not_lazy == 0


def test_reveal_ticks(tmp_path) -> None:
    data = bytes(range(256)) * 40
    tree = prepare_preimages(data)
    reveals = RevealProvider(write_preimages(tree, tmp_path), ROLLUP, 0)
    proven, _, sizes, reveal_ticks = _walk(
        build("reveal_tree"), [[external(tree.root)]], reveals, 0.02
    )
    assert reveal_ticks >= 2 and max(sizes) <= MAX_PROOF_SIZE


def _a_proof() -> TickProof:
    state = driver.originate((SHARED / "echo.wasm").read_bytes(), ticks_per_kernel_run=TICKS)
    for i, payload in enumerate(with_markers([external(b"hi")])):
        vm.set_input(state, InputMessage(1, i, payload))
    while state.tick_state is not TickState.EVAL:
        vm.compute(state, 1)
    vm.compute(state, 30)
    proof, _ = produce_proof(layout.state_tree(state))
    return proof


@pytest.mark.skipif(not SHARED.exists(), reason="shared kernels not present")
@settings(max_examples=150, deadline=None)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_is_rejected_or_proves_another_step(position: int, bit: int) -> None:
    honest = _PROOF.encode()
    verified = verify_proof(_PROOF)
    flipped = bytearray(honest)
    flipped[position % len(flipped)] ^= 1 << bit
    try:
        other = verify_proof(TickProof.decode(bytes(flipped)))
    except InvalidProof:
        return
    assert (other.before, other.after) != (verified.before, verified.after)


def test_a_wrong_input_changes_the_step() -> None:
    state = driver.originate((SHARED / "echo.wasm").read_bytes(), ticks_per_kernel_run=TICKS)
    before = layout.state_tree(state)
    honest, _ = produce_proof(before, message=InputMessage(1, 0, b"\x00\x01"))
    forged = TickProof(honest.tree, InputMessage(1, 0, b"\x00\x02"))
    assert verify_proof(forged).after != verify_proof(honest).after
    with pytest.raises(InvalidProof):
        verify_proof(TickProof(honest.tree))  # the tick needs an input


_PROOF = _a_proof() if SHARED.exists() else None


@pytest.mark.skipif(not SHARED.exists(), reason="shared kernels not present")
def test_output_proofs() -> None:
    from soru.pvm.proof import OutputProof, produce_output_proof, verify_output_proof

    state = driver.originate((SHARED / "echo.wasm").read_bytes(), ticks_per_kernel_run=TICKS)
    driver.run_level(state, 1, with_markers([external(b"one"), external(b"two")]), NO_REVEALS)
    tree = layout.state_tree(state)
    proof = OutputProof.decode(produce_output_proof(tree, 1, 1).encode())
    assert proof.message == b"two" and verify_output_proof(proof) == tree.hash
    forged = OutputProof(1, 1, b"three", proof.tree)
    with pytest.raises(InvalidProof):
        verify_output_proof(forged)
    with pytest.raises(InvalidProof):
        verify_output_proof(OutputProof(1, 0, b"two", proof.tree))  # another place
    with pytest.raises(InvalidProof):
        produce_output_proof(tree, 1, 2)


def test_a_kernel_importing_a_host_function_twice_proves_like_any_other() -> None:
    """Addresses equal function indices even when one host function is imported twice."""
    from pvm_kernels import wasm

    kernel = wasm(
        """(module
          (import "smart_rollup_core" "write_output" (func $a (param i32 i32) (result i32)))
          (import "smart_rollup_core" "write_output" (func $b (param i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "ab")
          (func (export "kernel_run")
            (drop (call $a (i32.const 0) (i32.const 1)))
            (drop (call $b (i32.const 1) (i32.const 1)))))"""
    )
    proven, _, sizes, _ = _walk(kernel, [[external(b"x")]], NO_REVEALS, 1.0)
    assert proven > 100 and max(sizes) <= MAX_PROOF_SIZE
    state = driver.originate(kernel, ticks_per_kernel_run=TICKS)
    result = driver.run_level(state, 1, with_markers([external(b"x")]), NO_REVEALS)
    assert result.outbox == (b"a", b"b")


@pytest.mark.parametrize("passive", [False, True], ids=["active", "passive"])
def test_every_tick_of_a_kernel_with_a_large_element_segment(passive: bool) -> None:
    """Every non-padding tick — loading, allocation (element items are grafted, not
    evaluated), table.init in chunks, call_indirect — proves, replays to the interpreter's
    hash, and stays far under the bound."""
    from pvm_kernels import wasm

    n = 200
    funcs = "\n".join(f"(func $f{i} (result i32) (i32.const {i}))" for i in range(n))
    refs = " ".join(f"$f{i}" for i in range(n))
    elem = f"(elem $seg func {refs})" if passive else f"(elem (i32.const 0) func {refs})"
    init = f"(table.init $seg (i32.const 0) (i32.const 0) (i32.const {n}))" if passive else ""
    kernel = wasm(
        f"""(module (memory (export "memory") 1) (table {n} funcref) {funcs} {elem}
          (func (export "kernel_run") {init}
            (drop (call_indirect (result i32) (i32.const {n - 1})))))"""
    )
    state = driver.originate(kernel, ticks_per_kernel_run=TICKS * 20)
    queue = [InputMessage(1, i, m) for i, m in enumerate(with_markers([external(b"x")]))]
    largest = proven = 0
    while True:
        message = None
        if vm.input_request(state).kind != "none":
            if not queue:
                break
            message = queue.pop(0)
        after = None
        if state.tick_state is not TickState.PADDING:
            proof, after = produce_proof(layout.state_tree(state), message=message)
            largest, proven = max(largest, proof.size), proven + 1
        if message is not None:
            vm.set_input(state, message)
        else:
            vm.compute(state, 1)
        if after is not None:
            assert after.hash == layout.state_hash(state), state.tick
    assert proven > 100 and largest <= 12_000


def test_a_br_table_of_thousands_of_labels_loads_and_proves_a_page_of_it() -> None:
    """A br_table's entries are kept in pages below its code element: a table of 3,000
    labels loads, and the tick that branches through it reads one page."""
    from pvm_kernels import wasm

    labels = " ".join(str(i % 3) for i in range(3000))
    kernel = wasm(
        f"""(module
          (import "smart_rollup_core" "write_output" (func $out (param i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "abc")
          (func (export "kernel_run")
            (block (block (block (br_table {labels} 2 (i32.const 2500)))
                (drop (call $out (i32.const 0) (i32.const 1))) return)
              (drop (call $out (i32.const 1) (i32.const 1))) return)
            (drop (call $out (i32.const 2) (i32.const 1)))))"""
    )
    proven, not_lazy, sizes, _ = _walk(kernel, [[external(b"x")]], NO_REVEALS, 1.0)
    assert not_lazy == 0 and proven > 100 and max(sizes) <= 12_000
    state = driver.originate(kernel, ticks_per_kernel_run=TICKS)
    result = driver.run_level(state, 1, with_markers([external(b"x")]), NO_REVEALS)
    assert result.outbox == (b"b",)  # entry 2500 is label 2500 % 3 = 1


RUST = Path(__file__).resolve().parents[3] / "kernels" / "rust"


def test_every_loading_tick_of_a_compiled_rust_kernel() -> None:
    """The Rust stack VM (a 48 KB function, read in runs): every Decode, Link and Init tick
    of the PVM and a sample of its Eval ticks prove, replay to the interpreter's hash and
    stay far under the bound."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_vm", RUST / "gen_vm.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    program = gen.assemble(("push8", 5), ("push8", 7), "add", "dup", "output", "counter_inc")
    kernel = (RUST / "stack_vm.wasm").read_bytes()
    proven, not_lazy, sizes, _ = _walk(kernel, [[external(program)]], NO_REVEALS, 0.02, 200_000)
    assert not_lazy == 0 and proven > 400
    assert max(sizes) < 16_000
