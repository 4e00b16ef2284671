"""``soru demo``: the end-to-end demonstration.

1. **the rollup lifecycle, live** (``soru.tools.lifecycle``): a layer-1 sandbox chain, a
   kernel originated through the installer, two rollup nodes — one honest, one lying from a
   tick on — their refutation game played move by move down to a one-tick proof, the liar's
   stake split, the honest commitment cemented, a withdrawal executed from the outbox on
   layer 1; all as real processes talking HTTP on loopback;

and under the hood, the layers it stands on:

2. decode and validate a real Tezos kernel with floats forbidden, as the PVM does;
3. run a program straight through, then again in pieces of a few thousand ticks, and show
   that both reach the same results in the same number of ticks — and the same results as
   wasmtime, the fast engine;
4. feed it bad input and show the typed errors;
5. run the echo kernel in the PVM over two inbox levels on both engines (same state hashes)
   and prove one tick;
6. play a dissection game between the honest PVM and one that lies from some tick on, down
   to one tick, settled by a refutation proof checked as layer 1 checks it;
7. run the official WebAssembly core test suite (skippable with ``--no-suite``).
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


def _game_stage() -> None:
    """A dissection game between the honest PVM and a lying one, settled by a proof."""
    import hashlib

    from soru.base.hashes import Hash
    from soru.encoding.inbox import External
    from soru.protocol.dissection import Chunk, check_dissection, first_disagreement, new_dissection
    from soru.protocol.inbox_proof import InboxHistory
    from soru.pvm import driver, layout
    from soru.pvm.history import LevelTrace
    from soru.pvm.reveals import RevealProvider
    from soru.pvm.state import TickState

    path = KERNELS / "echo.wasm"
    _say("A refutation game: the honest PVM against one that lies from some tick on")
    if not path.exists():
        print(f"   (skipped: {path} not found)")
        return
    history, inbox = InboxHistory.from_genesis()
    inbox = history.add_level(
        inbox, predecessor_timestamp=1, predecessor=bytes(32), messages=[External(b"hi").encode()]
    )
    level = history.find_level(1)
    if level is None:
        raise SystemExit("the inbox lost its level")
    payloads, reveals = list(level.payloads), RevealProvider(None, bytes(20), 0)
    kernel_run = 100_000
    state = driver.originate(path.read_bytes(), ticks_per_kernel_run=kernel_run)
    trace = LevelTrace.run(state, 1, payloads, reveals)
    known: dict[int, Hash] = {}

    def honest(tick: int) -> Hash:
        if tick not in known:
            known[tick] = trace.hash_at(tick)
        return known[tick]

    lie = next(t for t in range(2 * kernel_run, 3 * kernel_run)
               if trace.state_at(t).tick_state is TickState.EVAL) + 7  # fmt: skip

    def liar(tick: int) -> Hash:
        if tick < lie:
            return honest(tick)
        return Hash(hashlib.blake2b(b"a lie at %d" % tick, digest_size=32).digest())

    start, stop = (
        Chunk(honest(trace.start_tick), trace.start_tick),
        Chunk(liar(trace.end_tick), trace.end_tick),
    )
    claim = layout.show_state_hash(stop.state_hash)[:14]  # type: ignore[arg-type]
    print(f"   the level spans ticks {start.tick}..{stop.tick}; the liar's first wrong hash is")
    print(f"   at tick {lie} (inside a kernel_run); it claims the level ends in {claim}…")
    players = [("honest", honest), ("liar", liar)]
    move = 0
    while stop.tick - start.tick > 1:
        (name, mover), (other_name, other) = players[move % 2], players[(move + 1) % 2]
        dissection = new_dissection(start, stop.tick, mover, ticks_per_snapshot=kernel_run)
        check_dissection(start, stop, dissection, ticks_per_snapshot=kernel_run)
        start, stop = first_disagreement(dissection, other)
        print(
            f"   move {move + 1}: {name} cuts the section in {len(dissection) - 1};"
            f" {other_name} disputes ticks {start.tick}..{stop.tick}"
        )
        move += 1
    _settle_game(trace, history, inbox, reveals, start, stop, liar)


def _settle_game(trace, history, inbox, reveals, start, stop, liar) -> None:
    """The one-tick section left: the honest proof, checked by layer 1's rule."""
    from soru.protocol.refutation_proof import ProofContext, RefutationProof, check
    from soru.pvm import layout, vm
    from soru.pvm.proof import produce_proof

    before = trace.state_at(start.tick)
    request = vm.input_request(before)
    given, message = None, None
    if request.kind in ("initial", "first_after"):
        given, message = history.produce_input_proof(inbox.snapshot(), request, origination_level=0)
    step, _ = produce_proof(layout.state_tree(before), message=message)
    game = ProofContext(inbox.snapshot(), 0, 1, reveals.metadata())
    proven_start, proven_stop = check(RefutationProof(step, given), game)
    if proven_stop is None:
        raise SystemExit("the disputed tick is blocked: not expected here")
    loser = "liar" if proven_stop != liar(stop.tick) else "honest"
    proven = layout.show_state_hash(proven_stop)[:14]
    print(f"   one tick left ({start.tick} -> {stop.tick}): a {step.size}-byte proof, checked by")
    print(f"   layer 1's rule, proves {proven}…")
    print(f"   that is the honest hash, not the liar's: the {loser}'s claim is refuted")
    if loser != "liar" or proven_start != start.state_hash:
        raise SystemExit("the refutation game went wrong")


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


def _lifecycle_stage() -> None:
    import tempfile

    from soru.tools import lifecycle

    _say("The rollup lifecycle: layer 1, the installer, an honest node and a lying one")
    path = KERNELS / "echo.wasm"
    if not path.exists():
        print(f"   (skipped: {path} not found)")
        return
    with tempfile.TemporaryDirectory(prefix="soru-demo-") as workdir:
        if not lifecycle.run(Path(workdir), path.read_bytes()):
            raise SystemExit("the lifecycle did not complete")


def run(*, suite: bool = True, limit: int = 3000, piece: int = 5000) -> int:
    """Run the demo; returns the process exit status."""
    print("soru demo — the rollup lifecycle, then the engine, PVM and proof stages under it")
    _lifecycle_stage()
    _say("Under the hood")
    _kernel_stage()
    _run_stage(limit, piece)
    _bad_input_stage()
    _pvm_stage()
    _game_stage()
    if suite:
        _suite_stage()
    print("\ndone.")
    return 0
