"""The fast engine (``soru.pvm.fast``) against the interpreter, its reference.

Every case runs the same kernel over the same inbox twice — ``engine="interpreter"`` and
``engine="wasmtime"`` — and requires, after every level, the same state hash (durable
storage, input buffer, outboxes, tick, tick state, stuck reason, flags), the same tick count
for the level, the same outbox and the same debug output. Each case also states what the
fast engine did (:data:`soru.pvm.fast.STATS`): took the call and returned, trapped or ran out
of ticks — or deferred it to the interpreter, and why — so that a fast engine that quietly
deferred everything would fail.

The kernels: Octez's ``echo.wasm`` and ``debug_kernel.wasm`` (``../shared/testdata``), every
WAT kernel of ``kernels/``, and a few written here (a sweep kernel with a start function,
input loop, outputs, a reveal and a durable write, run at every tick budget around its
need; bounded and deep recursion; side effects before a deferral).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import wasmtime
from pvm_kernels import (
    DATA,
    MEMORY_SIZE,
    NO_REVEALS,
    ROLLUP,
    SCRATCH,
    TICKS,
    Layout,
    build,
    external,
    host_call,
    keyed,
    two_keys,
    wasm,
    write,
)

from soru.encoding import inbox
from soru.pvm import driver, fast, layout, vm
from soru.pvm.reveals import RevealError, RevealProvider, reveal_hash
from soru.pvm.state import InputMessage, PvmState, StuckReason, TickState
from soru.tools.inputs_file import with_markers

TESTDATA = Path(__file__).resolve().parents[4] / "shared" / "testdata" / "kernels"
ECHO = TESTDATA / "echo.wasm"
DEBUG_KERNEL = TESTDATA / "debug_kernel.wasm"

FAST = ("returned", "trapped", "out of ticks")


# --- the harness ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """What one level left: the state hash and the parts a reader checks first."""

    level: int
    state_hash: bytes
    tick: int
    tick_state: TickState
    stuck: StuckReason | None
    level_ticks: int
    outbox: tuple[bytes, ...]
    debug: tuple[bytes, ...]


def run(
    kernel: bytes,
    levels: list[list[bytes]],
    engine: str,
    *,
    ticks: int = TICKS,
    reveals: RevealProvider = NO_REVEALS,
    **originate,
) -> tuple[PvmState, list[Observed]]:
    state = driver.originate(kernel, ticks_per_kernel_run=ticks, collect_debug=True, **originate)
    observed = []
    for level, messages in enumerate(levels, 1):
        result = driver.run_level(state, level, with_markers(messages), reveals, engine=engine)
        observed.append(
            Observed(
                level,
                bytes(layout.state_hash(state)),
                state.tick,
                state.tick_state,
                state.stuck,
                result.ticks,
                result.outbox,
                result.debug,
            )
        )
    return state, observed


def differential(kernel: bytes, levels: list[list[bytes]], **options) -> Counter[str]:
    """Run both engines; assert they agree after every level; what the fast engine did."""
    slow_state, slow = run(kernel, levels, "interpreter", **options)
    before = Counter(fast.STATS)
    fast_state, quick = run(kernel, levels, "wasmtime", **options)
    done = Counter(fast.STATS)
    done.subtract(before)
    for a, b in zip(slow, quick, strict=True):
        assert a == b, f"level {a.level}: the engines disagree"
    assert list(slow_state.inputs) == list(fast_state.inputs)
    assert slow_state.outboxes == fast_state.outboxes
    assert slow_state.durable.tree.hash == fast_state.durable.tree.hash
    assert slow_state.reboot_counter == fast_state.reboot_counter
    del done["ticks"]
    return +done


def fast_calls(stats: Counter[str]) -> int:
    return sum(stats[outcome] for outcome in FAST)


# --- Octez's kernels -----------------------------------------------------------------------------


def transfer(payload: bytes) -> bytes:
    """An internal transfer whose Micheline payload is ``bytes`` (the echo kernel echoes it)."""
    micheline = b"\x0a" + len(payload).to_bytes(4, "big") + payload
    return inbox.Transfer(micheline, bytes(20), bytes(21), ROLLUP).encode()


ECHO_INBOXES = {
    "empty": [[], [], []],
    "one message": [[external(b"hello")]],
    "many messages": [[external(bytes([i]) * i) for i in range(1, 30)], [external(b"x")]],
    "big messages": [[external(bytes(4000)), external(b"\xff" * 4095)]],
    "transfers": [[transfer(b"to the outbox"), external(b"then this")], []],
}


@pytest.mark.parametrize("inboxes", sorted(ECHO_INBOXES))
def test_echo_kernel(inboxes):
    stats = differential(ECHO.read_bytes(), ECHO_INBOXES[inboxes])
    assert fast_calls(stats) > 0 and stats["deferred"] == 0


def test_debug_kernel_debug_output():
    stats = differential(DEBUG_KERNEL.read_bytes(), [[external(b"a")], [], [external(b"b")]])
    assert stats["returned"] == 3 and stats["deferred"] == 0


# --- the kernels of kernels/ -----------------------------------------------------------------


def target(n: int) -> bytes:
    return external(b"\x01" + n.to_bytes(4, "little"))


@pytest.mark.parametrize("reboots", [0, 3, 1200])
def test_a_kernel_that_reboots(reboots):
    """Up to the 1000-reboot limit and the forced yield."""
    stats = differential(build("reboot"), [[target(reboots)], [], [target(2)]])
    assert stats["returned"] >= min(reboots, 1001) and stats["deferred"] == 0


@pytest.mark.parametrize("fault", list(b"uzomnt"))
def test_a_trapping_kernel(fault):
    message = external(bytes([fault]) + b" and more")
    stats = differential(build("trap"), [[message], [], [message]])
    assert stats["trapped"] == 2 and stats["returned"] == 1 and stats["deferred"] == 0


def test_an_infinite_loop_runs_out_of_ticks():
    stats = differential(build("loop"), [[], [external(b"a")], []], ticks=5_000)
    assert stats == Counter({"out of ticks": 1})


def test_unbounded_recursion_defers_to_the_interpreter():
    """wasmtime's stack overflows before the interpreter's 60,000 frames: the fast engine
    defers, and the interpreter is stuck for good (call stack exhausted)."""
    state, _ = run(build("recursion"), [[]], "interpreter", ticks=200_000)
    assert state.stuck is StuckReason.CALL_STACK_EXHAUSTED
    stats = differential(build("recursion"), [[], []], ticks=200_000)
    assert stats == Counter({"deferred": 1, "deferred: wasmtime stack overflow": 1})


RECURSE = """
(module
  (import "smart_rollup_core" "store_write"
    (func $store_write (param i32 i32 i32 i32 i32) (result i32)))
  (memory 1)
  (export "memory" (memory 0))
  (data (i32.const 0) "/depth")
  (func $down (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (call $down (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))))
  (func (export "kernel_run")
    (i32.store (i32.const 16) (call $down (i32.const DEPTH)))
    (drop (call $store_write (i32.const 0) (i32.const 6) (i32.const 0) (i32.const 16)
      (i32.const 4)))))
"""


@pytest.mark.parametrize(("depth", "taken"), [(1_000, True), (50_000, False)])
def test_deep_recursion(depth, taken):
    """Recursion wasmtime can run is taken on the fast path; deeper (but within the
    interpreter's limit) overflows wasmtime's smaller stack and defers."""
    kernel = wasm(RECURSE.replace("DEPTH", str(depth)))
    state, _ = run(kernel, [[]], "interpreter", ticks=1_000_000)
    assert state.durable.read_all("/depth") == depth.to_bytes(4, "little")
    stats = differential(kernel, [[], []], ticks=1_000_000)
    if taken:
        assert stats == Counter({"returned": 2})
    else:
        assert stats["deferred: wasmtime stack overflow"] == 2 and fast_calls(stats) == 0


def test_kernel_upgrade():
    new = build("upgraded")
    stats = differential(build("upgrade"), [[external(new)], [], [external(b"not wasm")]])
    assert stats["returned"] >= 3


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("floats", "decode error"),
        ("no_kernel_run", "no kernel_run"),
        ("start_host_call", "host call during initialisation"),
        ("no_memory_export", "memory 0 not exported"),
    ],
)
def test_kernels_that_do_not_load_defer(name, reason):
    stats = differential(build(name), [[external(b"x")], []])
    assert stats[f"deferred: {reason}"] >= 1 and fast_calls(stats) == 0


def test_an_unknown_import_defers():
    stats = differential(build("unknown_import"), [[external(b"x")], []])
    assert stats["deferred"] >= 1 and fast_calls(stats) == 0


def test_a_version_without_a_host_function_defers_at_link():
    """``reveal`` is 2.0.0-r3's: under 2.0.0 the kernel does not link."""
    kernel = build("host_calls")
    stats = differential(kernel, [[external(b"x")]], version="2.0.0")
    assert stats["deferred: link error"] >= 1


# --- every host function, through the host-call interpreter kernel --------------------------------

SETUP = [write("/v", b"hello"), write("/d", b"D"), write("/d/x", b"1")]


def host_call_inbox() -> list[list[bytes]]:
    lay = Layout()
    key = lay.put("/v")
    text = lay.put(b"to layer 1")
    data = lay.data
    calls = [
        keyed("store_has", "/d"),
        keyed("store_exists", "/nothing"),
        keyed("store_list_size", "/d"),
        keyed("store_get_nth_key", "/d", 0, SCRATCH, 16, dump=(SCRATCH, 16)),
        keyed("store_value_size", "/v"),
        keyed("store_read", "/v", 1, SCRATCH, 16, dump=(SCRATCH, 8)),
        keyed("store_read", "/v", 9, SCRATCH, 16),
        keyed("store_read", "/v", 0, MEMORY_SIZE - 2, 16),
        keyed("__internal_store_get_hash", "/d", SCRATCH, 32, dump=(SCRATCH, 32)),
        keyed("store_create", "/zeros", 5000),
        keyed("store_create", "/v", 1),
        keyed("store_delete_value", "/d"),
        keyed("store_delete", "/d"),
        keyed("store_delete", "/readonly/x"),
        two_keys("store_copy", "/v", "/w"),
        two_keys("store_move", "/w", "/u"),
        two_keys("store_copy", "/missing", "/x"),
        write("/big", bytes(range(256)) * 8),
        write("/big", b"tail", offset=2048),
        write("/big", b"x", offset=9999),
        host_call("store_has", DATA, 241),
        host_call("store_has", DATA, -1),
        host_call("store_has", MEMORY_SIZE - 4, 10),
        keyed("store_has", "bad key"),
        host_call("write_output", *text, data=lay.data),
        host_call("write_output", DATA, 4097),
        host_call("write_output", *key, data=data, repeat=3),
        host_call("write_debug", *text, data=lay.data),
        host_call("read_input", SCRATCH, SCRATCH + 64, 4096, dump=(SCRATCH, 80)),
        b"a raw message the kernel reads with read_input",
        host_call("read_input", MEMORY_SIZE - 8, SCRATCH, 16),
        host_call("reveal_metadata", SCRATCH, 4096, dump=(SCRATCH, 24)),
        host_call("reveal_metadata", SCRATCH + 100, 10, dump=(SCRATCH + 100, 11)),
        host_call("reveal_metadata", MEMORY_SIZE - 4, 24),
    ]
    return [[external(m) for m in SETUP], [external(m) for m in calls], []]


def test_every_host_function():
    reveals = RevealProvider(None, ROLLUP, 1234)
    stats = differential(build("host_calls"), host_call_inbox(), reveals=reveals)
    assert stats["returned"] == 3 and stats["deferred"] == 0


def test_the_outbox_limit():
    lay = Layout()
    message = lay.put(b"out")
    many = host_call("write_output", *message, data=lay.data, repeat=120)
    stats = differential(build("host_calls"), [[external(many)], [external(many)]])
    assert stats["returned"] == 2


@pytest.fixture
def preimages(tmp_path):
    pages = [b"\x00" + (11).to_bytes(4, "big") + b"hello world", bytes(range(256)) * 16]
    for page in pages:
        (tmp_path / reveal_hash(page).hex()).write_bytes(page)
    return tmp_path, pages


def test_reveals(preimages):
    directory, pages = preimages
    lay = Layout()
    hashes = [lay.put(reveal_hash(page)) for page in pages]
    raw = lay.put(b"\x00" + reveal_hash(pages[0]))
    malformed = lay.put(b"\x07 not a reveal request")
    data = lay.data
    calls = [
        host_call("reveal_preimage", *hashes[0], SCRATCH, 4096, data=data, dump=(SCRATCH, 16)),
        host_call("reveal_preimage", *hashes[1], SCRATCH, 4096, data=data, dump=(SCRATCH, 64)),
        host_call("reveal_preimage", *hashes[1], SCRATCH + 32, 7, data=data),
        host_call("reveal_preimage", *hashes[1], MEMORY_SIZE - 4, 4096, data=data),
        host_call("reveal_preimage", hashes[0][0], 4097, SCRATCH, 4096, data=data),
        host_call("reveal", *raw, SCRATCH, 4096, data=data, dump=(SCRATCH, 16)),
        host_call("reveal", *malformed, SCRATCH, 4096, data=data),
    ]
    empty = reveal_hash(b"")  # the answer to a malformed request
    (directory / empty.hex()).write_bytes(b"")
    reveals = RevealProvider(directory, ROLLUP, 7)
    stats = differential(build("host_calls"), [[external(c) for c in calls], []], reveals=reveals)
    assert stats["returned"] == 2 and stats["deferred"] == 0


def test_a_reveal_tree(tmp_path):
    from soru.tools.preimages import prepare_preimages, write_preimages

    data = bytes(range(256)) * 40
    tree = prepare_preimages(data, max_page_size=500)
    reveals = RevealProvider(write_preimages(tree, tmp_path / "preimages"), ROLLUP, 0)
    stats = differential(build("reveal_tree"), [[external(tree.root)], []], reveals=reveals)
    assert stats["returned"] == 2


def test_an_unknown_preimage_defers_and_the_interpreter_raises(tmp_path):
    lay = Layout()
    unknown = lay.put(reveal_hash(b"nobody has this page"))
    call = external(host_call("reveal_preimage", *unknown, SCRATCH, 4096, data=lay.data))
    reveals = RevealProvider(tmp_path, ROLLUP, 0)
    before = fast.STATS["deferred: reveal not answered: RevealError"]
    with pytest.raises(RevealError):
        run(build("host_calls"), [[external(SETUP[0]), call]], "wasmtime", reveals=reveals)
    assert fast.STATS["deferred: reveal not answered: RevealError"] == before + 1


# --- exact boundaries: every tick budget around a call's need -----------------------------------

SWEEP = """
(module
  (import "smart_rollup_core" "read_input" (func $read_input (param i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "write_output" (func $write_output (param i32 i32) (result i32)))
  (import "smart_rollup_core" "reveal_metadata" (func $metadata (param i32 i32) (result i32)))
  (import "smart_rollup_core" "store_write"
    (func $store_write (param i32 i32 i32 i32 i32) (result i32)))
  (memory 1)
  (export "memory" (memory 0))
  (global $seed (mut i32) (i32.const 0))
  (data (i32.const 16) "/meta")
  (data (i32.const 32) "/seed")
  (func $start (local $i i32)
    (loop $again
      (global.set $seed (i32.add (global.get $seed) (i32.const 7)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 6)))))
  (start $start)
  (func (export "kernel_run") (local $n i32)
    (loop $next
      (local.set $n (call $read_input (i32.const 0x100) (i32.const 0x1000) (i32.const 4096)))
      (if (i32.gt_s (local.get $n) (i32.const 0))
        (then
          (drop (call $write_output (i32.const 0x1000) (local.get $n)))
          (br $next))))
    (drop (call $metadata (i32.const 0x200) (i32.const 24)))
    (drop (call $store_write (i32.const 16) (i32.const 5) (i32.const 0) (i32.const 0x200)
      (i32.const 24)))
    (i32.store (i32.const 0x300) (global.get $seed))
    (drop (call $store_write (i32.const 32) (i32.const 5) (i32.const 0) (i32.const 0x300)
      (i32.const 4)))))
"""


def call_ticks(kernel: bytes, messages: list[bytes]) -> tuple[int, int]:
    """Ticks of the first top-level call after a level's inputs, from Snapshot to Padding,
    and of its loading part (to the allocation tick), measured on the interpreter."""
    state = at_snapshot(kernel, messages, ticks=1 << 30)
    start = state.tick
    loading = None
    while state.tick_state is not TickState.PADDING:
        request = vm.input_request(state)
        if request.kind == "reveal":
            vm.reveal_step(state, NO_REVEALS.answer(request.reveal))
        else:
            vm.compute(state, 1)
        if loading is None and state.kernel is not None and state.kernel.machine is not None:
            loading = state.tick - start
    assert loading is not None
    return state.tick - start, loading


def at_snapshot(kernel: bytes, messages: list[bytes], *, ticks: int) -> PvmState:
    """A state at the Snapshot of the first kernel_run after one level of ``messages``."""
    state = driver.originate(kernel, ticks_per_kernel_run=ticks, collect_debug=True)
    for counter, payload in enumerate(with_markers(messages)):
        vm.set_input(state, InputMessage(1, counter, payload))
    vm.compute(state, state.ticks_to_snapshot + 1)
    assert state.tick_state is TickState.SNAPSHOT
    return state


def test_every_tick_budget_around_the_need():
    """From too few ticks to load, through running out in the start function, at the enter
    tick, inside the input loop, at the reveal, to just enough: the same states."""
    kernel = wasm(SWEEP)
    messages = [external(b"one"), external(b"two")]
    need, loading = call_ticks(kernel, messages)
    stats: Counter[str] = Counter()
    for ticks in range(loading - 2, need + 3):
        stats += differential(kernel, [messages, [external(b"three")]], ticks=ticks)
    assert stats["out of ticks"] > need - loading - 10
    assert stats["returned"] > 0 and stats["deferred: boundary during loading"] > 0


@pytest.mark.parametrize("fault", list(b"zmt"))
def test_every_tick_budget_around_a_trap(fault):
    """A trap at the last tick before the boundary is the kernel's; one tick later, the
    boundary comes first."""
    kernel = build("trap")
    messages = [external(bytes([fault]))]
    need, loading = call_ticks(kernel, messages)
    stats: Counter[str] = Counter()
    for ticks in range(need - 40, need + 3):
        stats += differential(kernel, [messages, []], ticks=ticks)
    assert stats["out of ticks"] == 41 and stats["trapped"] == 2  # need + 1 is the first fit


# --- the fast engine on its own ------------------------------------------------------------------

SIDE_EFFECTS_THEN = """
(module
  (import "smart_rollup_core" "read_input" (func $read_input (param i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "write_output" (func $write_output (param i32 i32) (result i32)))
  (import "smart_rollup_core" "write_debug" (func $write_debug (param i32 i32)))
  (import "smart_rollup_core" "store_write"
    (func $store_write (param i32 i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "reveal_preimage"
    (func $reveal_preimage (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  (export "memory" (memory 0))
  (data (i32.const 0) "/written")
  (data (i32.const 64) "HASH")
  (func $down (param $n i32)
    (if (local.get $n) (then (call $down (i32.sub (local.get $n) (i32.const 1))))))
  (func (export "kernel_run")
    (drop (call $read_input (i32.const 0x100) (i32.const 0x1000) (i32.const 4096)))
    (drop (call $write_output (i32.const 0) (i32.const 8)))
    (call $write_debug (i32.const 0) (i32.const 8))
    (drop (call $store_write (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 0)
      (i32.const 8)))
    THEN))
"""

THEN = {
    "overflow": "(call $down (i32.const 100000))",
    "unknown preimage": "(drop (call $reveal_preimage (i32.const 64) (i32.const 33)"
    " (i32.const 0x2000) (i32.const 4096)))",
}


@pytest.mark.parametrize("then", sorted(THEN))
def test_a_deferral_changes_nothing(then, tmp_path):
    source = SIDE_EFFECTS_THEN.replace("THEN", THEN[then])
    source = source.replace("HASH", "".join(f"\\{b:02x}" for b in reveal_hash(b"unknown")))
    kernel = wasm(source)
    state = at_snapshot(kernel, [external(b"input")], ticks=1 << 30)
    state.outboxes.setdefault(1, []).append(b"earlier")
    before = (
        layout.state_hash(state),
        list(state.inputs),
        {level: list(messages) for level, messages in state.outboxes.items()},
        list(state.debug_log),
    )
    outcome = fast.run_top_level_call(state, RevealProvider(tmp_path, ROLLUP, 0))
    assert outcome is fast.DEFERRED
    after = (
        layout.state_hash(state),
        list(state.inputs),
        {level: list(messages) for level, messages in state.outboxes.items()},
        list(state.debug_log),
    )
    assert after == before
    assert state.tick_state is TickState.SNAPSHOT and state.kernel is None


def test_the_fast_engine_starts_only_at_snapshot():
    state = driver.originate(ECHO.read_bytes())
    with pytest.raises(vm.PvmError):
        fast.run_top_level_call(state, NO_REVEALS)


def test_settle_with_a_budget_smaller_than_the_call_uses_the_interpreter():
    """A budget that ends inside the call: the interpreter's ticks, the same state."""
    kernel = ECHO.read_bytes()
    states = []
    for engine in driver.ENGINES:
        state = at_snapshot(kernel, [external(b"x")], ticks=TICKS)
        driver.settle(state, NO_REVEALS, 7, engine=engine)
        states.append((layout.state_hash(state), state.tick, state.tick_state))
    assert states[0] == states[1] and states[0][1] % TICKS == 7


def test_an_unknown_engine_is_refused():
    state = driver.originate(ECHO.read_bytes())
    with pytest.raises(ValueError, match="engine"):
        driver.settle(state, NO_REVEALS, engine="wasmer")


def test_the_memory_adapter_behaves_as_a_bytearray():
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    memory = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(1, 2)))
    adapter = fast.WasmtimeMemory(memory, store)
    model = bytearray(65536)
    for target_, data in [(slice(10, 15), b"hello"), (slice(65530, 65536), b"endend")]:
        adapter[target_] = data
        model[target_] = data
    adapter[3] = 7
    model[3] = 7
    assert len(adapter) == len(model)
    for key in [slice(0, 20), slice(65530, 65536), slice(65530, 70000), slice(5, 5), slice(9, 3)]:
        assert adapter[key] == bytes(model[key])
    assert adapter[3] == 7 and adapter[-1] == model[-1]
    with pytest.raises(ValueError):
        adapter[0:4] = b"too long"
    with pytest.raises(ValueError):
        adapter[65535:65537] = b"ab"  # past the end: the slice is one byte
    memory.grow(store, 1)
    assert len(adapter) == 2 * 65536
    adapter[100000:100003] = b"abc"
    assert adapter[99999:100004] == b"\x00abc\x00"


def test_soru_pvm_run_engine_option(tmp_path, capsys):
    from soru.cli import main

    kernel, inputs = tmp_path / "kernel.wasm", tmp_path / "inputs.json"
    kernel.write_bytes(build("reboot"))
    inputs.write_text('[[{"external": "0103000000"}], [], [{"external": "00"}]]')
    outputs = []
    for engine in driver.ENGINES:
        arguments = ["pvm", "run", "--kernel", str(kernel), "--inputs", str(inputs)]
        code = main([*arguments, "--json", "--dump-durable", "--engine", engine])
        assert code == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0].count("state_hash") == 3
