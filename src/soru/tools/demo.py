"""``soru demo``: the end-to-end demonstration of what soru can do today.

The full rollup lifecycle (layer 1 sandbox, two rollup nodes, a refutation game) is not built
yet; until it is, the demo exercises the layer everything stands on — the WebAssembly engine:

1. decode and validate a real Tezos kernel with floats forbidden, as the PVM will;
2. run a program straight through, then again in pieces of a few thousand ticks, and show
   that both reach the same results in the same number of ticks — and the same results as
   wasmtime, the fast engine;
3. feed it bad input and show the typed errors;
4. run the official WebAssembly core test suite (skippable with ``--no-suite``).
"""

from __future__ import annotations

import time
from pathlib import Path

from soru.base.errors import SoruError
from soru.wasm.binary import decode_module
from soru.wasm.exec.machine import Machine, RunStatus
from soru.wasm.syntax import ExternKind
from soru.wasm.validate import validate_module

ROOT = Path(__file__).resolve().parents[3]
KERNELS = ROOT.parent / "shared" / "testdata" / "kernels"
SPEC_JSON = ROOT.parent / "shared" / "testdata" / "wasm-spec-json"
EXAMPLE = ROOT / "examples" / "wasm" / "collatz.wat"


def _say(step: str) -> None:
    print(f"\n== {step}")


def _kernel_stage() -> None:
    path = KERNELS / "echo.wasm"
    _say(f"Decode and validate the Tezos echo kernel ({path.name}) with floats forbidden")
    if not path.exists():
        print(f"   (skipped: {path} not found)")
        return
    module = decode_module(path.read_bytes(), forbid_floats=True)
    validate_module(module)
    imports = ", ".join(f"{i.module}.{i.name}" for i in module.imports)
    exports = ", ".join(e.name for e in module.exports)
    funcs = len(module.imported(ExternKind.FUNC)) + len(module.funcs)
    print(f"   {path.stat().st_size} bytes, {funcs} functions; imports: {imports}")
    print(f"   exports: {exports}")


def _run_stage(limit: int, piece: int) -> None:
    import wasmtime

    binary = bytes(wasmtime.wat2wasm(EXAMPLE.read_text()))
    _say(f"Run {EXAMPLE.name}: longest Collatz chain below {limit}")
    module = decode_module(binary)
    validate_module(module)

    straight = Machine()
    export = straight.instantiate(module).exports["longest"]
    started = time.perf_counter()
    result = straight.invoke(export, [limit])  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    rate = straight.ticks / elapsed / 1e6
    print(f"   straight through: {result[0]} in {straight.ticks} ticks ({rate:.1f} M ticks/s)")

    pieces = Machine()
    pieces.start(pieces.instantiate(module).exports["longest"], [limit])  # type: ignore[arg-type]
    runs = 1
    while pieces.run(piece) is RunStatus.RUNNING:
        runs += 1
    same = pieces.results == result and pieces.ticks == straight.ticks
    print(
        f"   in {runs} pieces of {piece} ticks: {pieces.results[0]} in {pieces.ticks} ticks"
        f" -> {'identical' if same else 'DIFFERENT'}"
    )

    store = wasmtime.Store()
    instance = wasmtime.Instance(store, wasmtime.Module(store.engine, binary), [])
    longest = instance.exports(store)["longest"]
    assert isinstance(longest, wasmtime.Func)
    reference = longest(store, limit)
    print(f"   wasmtime says {reference} -> {'agrees' if reference == result[0] else 'DISAGREES'}")
    if not same or reference != result[0]:
        raise SystemExit("engine disagreement")


def _bad_input_stage() -> None:
    import wasmtime

    _say("Bad input is rejected with a typed error")
    good = bytes(wasmtime.wat2wasm(EXAMPLE.read_text()))
    floats = bytes(wasmtime.wat2wasm('(module (func (export "f") (result f32) (f32.const 1.5)))'))
    cases = [
        ("truncated module", lambda: decode_module(good[: len(good) // 2])),
        ("random bytes", lambda: decode_module(bytes(range(7, 200, 3)))),
        ("float module, floats forbidden", lambda: decode_module(floats, forbid_floats=True)),
    ]
    for label, attempt in cases:
        try:
            attempt()
            print(f"   {label}: accepted (unexpected)")
        except SoruError as exc:
            print(f"   {label}: {type(exc).__name__}: {exc}")


def _pvm_stage() -> None:
    from soru.encoding.inbox import External
    from soru.pvm import driver, layout, vm
    from soru.pvm.proof import TickProof, produce_proof, verify_proof
    from soru.pvm.reveals import RevealProvider
    from soru.pvm.state import TickState
    from soru.tools.inputs_file import with_markers

    path = KERNELS / "echo.wasm"
    _say("The PVM: the echo kernel over two inbox levels, on both engines")
    if not path.exists():
        print(f"   (skipped: {path} not found)")
        return
    kernel, reveals = path.read_bytes(), RevealProvider(None, bytes(20), 0)
    levels = [[External(b"hello").encode()], [External(b"rollup").encode()]]
    hashes = {}
    for engine in ("interpreter", "wasmtime"):
        state = driver.originate(kernel, ticks_per_kernel_run=100_000)
        for level, messages in enumerate(levels, 1):
            result = driver.run_level(state, level, with_markers(messages), reveals, engine=engine)
            hashes[(engine, level)] = layout.state_hash(state)
            if engine == "interpreter":
                shown = layout.show_state_hash(hashes[(engine, level)])
                outbox = [m.decode() for m in result.outbox]
                print(f"   level {level}: {state.tick} ticks, {shown}, outbox {outbox}")
    same = all(hashes[("interpreter", lv)] == hashes[("wasmtime", lv)] for lv in (1, 2))
    print(f"   wasmtime fast engine: {'same state hashes' if same else 'DIFFERENT HASHES'}")

    _say("A single-tick proof, checked by replaying the tick on the proof alone")
    state = driver.originate(kernel, ticks_per_kernel_run=100_000)
    for counter, payload in enumerate(with_markers(levels[0])):
        driver.settle(state, reveals)
        vm.set_input(state, driver.InputMessage(1, counter, payload))
    while state.tick_state is not TickState.EVAL:
        vm.compute(state, 1)
    vm.compute(state, 40)
    proof, after = produce_proof(layout.state_tree(state))
    verified = verify_proof(TickProof.decode(proof.encode()))
    before, after_hash = (layout.show_state_hash(h)[:16] for h in (verified.before, verified.after))
    print(f"   tick {state.tick}: a proof of {proof.size} bytes (durable storage, memory, stack")
    print(f"   and code live in one Merkle tree); verified: {before}… -> {after_hash}…")
    if not same or verified.after != after.hash:
        raise SystemExit("PVM disagreement")


def _suite_stage() -> None:
    from soru.tools import wasm_spec

    _say("The official WebAssembly core test suite (non-SIMD)")
    if not SPEC_JSON.exists():
        print(f"   (skipped: {SPEC_JSON} not found)")
        return
    started = time.perf_counter()
    report = wasm_spec.run_suite(SPEC_JSON)
    elapsed = time.perf_counter() - started
    print(
        f"   {report.passed} passed, {report.failed} failed, {report.skipped} skipped"
        f" in {elapsed:.0f} s"
    )


def run(*, suite: bool = True, limit: int = 3000, piece: int = 5000) -> int:
    """Run the demo; returns the process exit status."""
    print("soru demo — engine and PVM stages (the rollup lifecycle comes with the next layers)")
    _kernel_stage()
    _run_stage(limit, piece)
    _bad_input_stage()
    _pvm_stage()
    if suite:
        _suite_stage()
    print("\ndone.")
    return 0
