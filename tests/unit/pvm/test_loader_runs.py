"""Long function bodies, read by the kernel loader a run of instructions per step
(``soru.pvm.loader_body``):

1. with the run rule shrunk so that *every* body is read in runs of a few instructions,
   every valid module of the WebAssembly spec suite and every kernel loads to exactly the
   code ``lower_function`` gives — and to the very module tree of the one-step path —; every
   malformed or invalid module fails with the error class *and message* of
   ``decode_module`` + ``validate_module``, at the step ``count_steps`` counts;
2. a long kernel (a body of tens of KiB with 3,000 locals, 300 nested blocks, a 400-label
   ``br_table``, 700 distinct callees, loops, ifs, indirect calls) loads to the lowered code,
   every loader step of it is proven in under 30,000 bytes (sizes printed with ``-rP``), and
   it runs on the PVM to the same state hash on the interpreter and the wasmtime engine;
3. what stays a PVM limit is a typed ``LoaderLimit``: one instruction longer than
   ``MAX_INSTR_BYTES``, and a step that reaches too far down a stack.
"""

from __future__ import annotations

import random

import pytest
import wasmtime
from pvm_kernels import NO_REVEALS
from test_loader import (
    _check_loaded,
    _kernels,
    _prove_every_step,
    _reference,
    _report,
    _step_all,
    _suite_modules,
)

from soru.pvm import driver, layout, loader, loader_body, loader_stack
from soru.pvm.loader import LoaderLimit, check_kernel, count_steps, load_all
from soru.pvm.proof import MAX_PROOF_SIZE
from soru.tools.inputs_file import with_markers
from soru.wasm.binary import decode_module
from soru.wasm.errors import FloatsForbidden
from soru.wasm.syntax import Module


@pytest.fixture
def forced_runs(monkeypatch):
    """Every body read in runs of at most 3 instructions starting within 16 bytes."""
    monkeypatch.setattr(loader_body, "SMALL_BODY", -1)
    monkeypatch.setattr(loader_body, "RUN_INSTRS", 3)
    monkeypatch.setattr(loader_body, "RUN_BYTES", 16)
    monkeypatch.setattr(loader_body, "_WINDOWS", (20, 64, 16 + loader_body.MAX_INSTR_BYTES))
    loader._OUTCOMES.clear()  # check_kernel's cache holds outcomes under the usual rule
    yield
    loader._OUTCOMES.clear()


def test_every_suite_module_loads_or_fails_alike_in_runs(forced_runs) -> None:
    cases = _suite_modules()
    if not cases:
        pytest.fail("WebAssembly spec suite not found (../shared/testdata/wasm-spec-json)")
    loaded = rejected = 0
    for filename, _kind, data in cases:
        expected = _reference(data)
        outcome = check_kernel(data)
        if isinstance(expected, Module):
            if isinstance(outcome.error, FloatsForbidden):
                continue
            assert outcome.error is None, (filename, outcome.error)
            tree, steps = _step_all(data)
            assert steps == outcome.steps, filename
            _check_loaded(tree, expected)
            loaded += 1
        else:
            assert type(outcome.error) is type(expected), (filename, outcome.error, expected)
            assert str(outcome.error) == str(expected), filename
            rejected += 1
    print(f"in runs: {loaded} modules loaded as lowered, {rejected} rejected alike")
    assert loaded > 600 and rejected > 1500


@pytest.mark.parametrize("name", sorted(_kernels()))
def test_kernels_load_to_the_same_module_in_runs(name: str, monkeypatch) -> None:
    kernel = _kernels()[name]
    one_step = check_kernel(kernel)
    module = None if one_step.error else load_all(kernel).subtree(("wasm", "module"))
    monkeypatch.setattr(loader_body, "SMALL_BODY", -1)
    monkeypatch.setattr(loader_body, "RUN_INSTRS", 2)
    loader._OUTCOMES.clear()
    try:
        in_runs = check_kernel(kernel)
        assert repr(in_runs.error) == repr(one_step.error)
        if module is not None:
            assert load_all(kernel).subtree(("wasm", "module")) == module
            assert in_runs.steps > one_step.steps
    finally:
        loader._OUTCOMES.clear()


# --- 2. a long kernel ---------------------------------------------------------------------------


def long_kernel(seed: int = 7, nfuncs: int = 700, depth: int = 300, reps: int = 40) -> bytes:
    """A kernel whose ``$long`` is far beyond one step: ``kernel_run`` calls it and writes
    its result to ``/r``."""
    rng = random.Random(seed)
    out = [
        "(module",
        '(import "smart_rollup_core" "store_write"'
        " (func $store_write (param i32 i32 i32 i32 i32) (result i32)))",
        '(memory (export "memory") 1)',
        '(data (i32.const 0) "/r")',
        "(global $acc (mut i64) (i64.const 0))",
        "(type $ii (func (param i32) (result i32)))",
        f"(table {nfuncs} funcref)",
    ]
    out += [
        f"(func $f{f} (param i32) (result i32) (i32.add (local.get 0) (i32.const {f})))"
        for f in range(nfuncs)
    ]
    out.append("(elem (i32.const 0) func " + " ".join(f"$f{f}" for f in range(nfuncs)) + ")")
    mixed = [rng.choice(["i32", "i64"]) for _ in range(2797)]
    local_types = " ".join(["i32"] * 200 + mixed + ["i32"])
    labels = " ".join(str(rng.randrange(depth)) for _ in range(400))
    body = [
        "(block " * depth
        + f"(br_table {labels} 0 (i32.and (local.get 0) (i32.const 255)))"
        + ")" * depth
    ]
    for r in range(reps):
        body += [f"(local.set 1 (call $f{rng.randrange(nfuncs)} (local.get 1)))" for _ in range(30)]
        body.append(
            "(local.set 1 (call_indirect (type $ii) (local.get 1)"
            f" (i32.const {rng.randrange(nfuncs)})))"
        )
        body.append(
            "(if (i32.and (local.get 1) (i32.const 1))"
            " (then (local.set 1 (i32.mul (local.get 1) (i32.const 3))))"
            " (else (local.set 1 (i32.add (local.get 1) (i32.const 5)))))"
        )
        body.append(
            f"(block $out (loop $l (local.set {2 + r} (i32.add (local.get {2 + r}) (i32.const 1)))"
            f" (br_if $l (i32.lt_u (local.get {2 + r}) (i32.const 3)))"
            " (br_if $out (i32.eqz (local.get 1)))))"
        )
        body.append(
            "(global.set $acc (i64.add (global.get $acc) (i64.extend_i32_u (local.get 1))))"
        )
        body.append("(local.set 2999 (i32.add (local.get 2999) (local.get 1)))")
    body.append("(i32.add (local.get 1) (local.get 2999))")
    out.append(f"(func $long (param i32 i32) (result i32) (local {local_types}) {' '.join(body)})")
    out.append(
        '(func (export "kernel_run")'
        " (i32.store (i32.const 16) (call $long (i32.const 3) (i32.const 11)))"
        " (drop (call $store_write (i32.const 0) (i32.const 2) (i32.const 0) (i32.const 16)"
        " (i32.const 4))))"
    )
    out.append(")")
    return bytes(wasmtime.wat2wasm("\n".join(out)))


def test_a_long_kernel_loads_to_the_lowered_code() -> None:
    kernel = long_kernel(reps=120)
    module = decode_module(kernel)
    assert len(module.funcs[-2].body) > 15_000
    outcome = check_kernel(kernel)
    assert outcome.error is None
    tree, steps = _step_all(kernel)
    assert steps == outcome.steps
    _check_loaded(tree, _reference(kernel))  # type: ignore[arg-type]


def test_every_step_of_a_long_kernel_is_provable() -> None:
    kernel = long_kernel()
    sizes, trees = _prove_every_step(kernel, verify_every=5)
    assert len(trees) == count_steps(kernel)
    assert len(sizes["run:"]) > 100  # the long body was read in runs
    assert _report(f"long kernel ({len(kernel)} bytes)", sizes) < MAX_PROOF_SIZE


def test_a_long_kernel_runs_alike_on_both_engines() -> None:
    kernel = long_kernel()
    hashes = {}
    for engine in ("interpreter", "wasmtime"):
        state = driver.originate(kernel, ticks_per_kernel_run=50_000_000)
        for level in (1, 2):
            driver.run_level(state, level, with_markers([]), NO_REVEALS, engine=engine)
        hashes[engine] = layout.state_hash(state)
        assert state.durable.value_size("/r") == 4
    assert hashes["interpreter"] == hashes["wasmtime"]


# --- 3. what stays a limit ----------------------------------------------------------------------


def test_an_instruction_over_the_limit_is_a_loader_limit() -> None:
    labels = " ".join(["0"] * (loader_body.MAX_INSTR_BYTES + loader_body.RUN_BYTES + 10))
    body = "i32.const 0 drop " * 3000  # long enough to be read in runs
    table = f"(block (br_table {labels} 0 (i32.const 0)))"
    kernel = wasmtime.wat2wasm(f"(module (func {body} {table}))")
    error = check_kernel(bytes(kernel)).error
    assert isinstance(error, LoaderLimit) and "instruction of more than" in str(error)


def test_a_step_reaching_too_far_down_a_stack_is_a_loader_limit(monkeypatch) -> None:
    monkeypatch.setattr(loader_stack, "MAX_PAGES", 2)
    monkeypatch.setattr(loader_body, "SMALL_BODY", -1)
    depth = 200  # a br_table to labels 0..199 reads the frames of 200 blocks: 13 pages
    labels = " ".join(str(d) for d in range(depth))
    text = "(block " * depth + f"(br_table {labels} 0 (i32.const 0))" + ")" * depth
    loader._OUTCOMES.clear()
    try:
        error = check_kernel(bytes(wasmtime.wat2wasm(f"(module (func {text}))"))).error
    finally:
        loader._OUTCOMES.clear()
    assert isinstance(error, LoaderLimit) and "too far down" in str(error)
