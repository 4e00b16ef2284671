"""Every ``smart_rollup_core`` host function and every error code it returns, reached from
outside the PVM: the host-call interpreter kernel (``kernels/host_calls.wat``) makes one call
per inbox message, with the arguments the test chose, and logs the result to durable storage.
Also the 100-message outbox limit, read-only paths, and the reveals."""

from __future__ import annotations

import pytest
from pvm_kernels import (
    DATA,
    HOST_CALL_NAMES,
    MEMORY_SIZE,
    ROLLUP,
    SCRATCH,
    Layout,
    build,
    external,
    host_call,
    keyed,
    read_log,
    run_levels,
    two_keys,
    write,
)

from soru.encoding import inbox
from soru.pvm.host_functions import HOST_FUNCTIONS
from soru.pvm.reveals import RevealProvider, reveal_hash
from soru.pvm.state import StuckReason, TickState

SETUP = [write("/v", b"hello"), write("/d", b"D"), write("/d/x", b"1")]
"""Durable storage every case starts from: /v = "hello", /d = "D" with a sub-key /d/x."""


def calls(*messages: bytes, reveals=None, setup=SETUP, **options):
    """Run the interpreter over one level of calls (after ``SETUP``); the logged results of
    the calls (setup excluded) and the state."""
    extra = {} if reveals is None else {"reveals": reveals}
    kernel = build("host_calls")
    state, results = run_levels(
        kernel, [[external(m) for m in [*setup, *messages]]], **extra, **options
    )
    log = read_log(state)
    assert [e.result for e in log[: len(setup)]] == [0] * len(setup)
    return log[len(setup) :], state, results[0]


def test_the_interpreter_reaches_every_host_function():
    assert HOST_CALL_NAMES == tuple(spec.name for spec in HOST_FUNCTIONS)
    assert len(HOST_CALL_NAMES) == 19


def test_one_kernel_run_per_level_and_exact_ticks():
    log, state, result = calls(keyed("store_has", "/v"))
    assert log[0].result == 1
    assert result.ticks == 2 * state.max_nb_ticks  # Collect, then one kernel_run
    assert state.tick_state is TickState.COLLECT and state.stuck is None


# --- key errors, for every function that takes a key ------------------------------------------

KEYED = {
    "store_has": (),
    "store_list_size": (),
    "store_get_nth_key": (0, SCRATCH, 16),
    "store_delete": (),
    "store_value_size": (),
    "store_read": (0, SCRATCH, 16),
    "store_write": (0, DATA, 0),
    "__internal_store_get_hash": (SCRATCH, 32),
    "store_delete_value": (),
    "store_create": (4,),
    "store_exists": (),
}


@pytest.mark.parametrize("name", sorted(KEYED))
def test_key_errors(name):
    rest = KEYED[name]
    too_long = host_call(name, DATA, 241, *rest)
    negative = host_call(name, DATA, -1, *rest)
    out_of_memory = host_call(name, MEMORY_SIZE - 4, 10, *rest)
    bad_syntax = keyed(name, "no/leading/slash", *rest)
    empty_segment = keyed(name, "/a//b", *rest)
    bad_char = keyed(name, "/a b", *rest)
    log, _, _ = calls(too_long, negative, out_of_memory, bad_syntax, empty_segment, bad_char)
    assert [e.result for e in log] == [-1, -8, -6, -2, -2, -2]


@pytest.mark.parametrize("name", ["store_copy", "store_move"])
def test_key_errors_of_both_keys(name):
    layout = Layout()
    good = layout.put("/v")
    data = layout.data
    log, _, _ = calls(
        host_call(name, DATA, 241, *good, data=data),
        host_call(name, *good, DATA, 241, data=data),
        host_call(name, *good, DATA, -1, data=data),
        host_call(name, *good, MEMORY_SIZE - 1, 2, data=data),
        two_keys(name, "/v", "bad"),
    )
    assert [e.result for e in log] == [-1, -1, -8, -6, -2]


def test_a_key_of_241_bytes_is_too_large_and_240_is_fine():
    key240 = "/" + "k" * 239
    log, _, _ = calls(
        write(key240, b"x"), keyed("store_has", key240), keyed("store_has", key240 + "k")
    )
    assert [e.result for e in log] == [0, 1, -1]


# --- each function, its results and its own error codes ---------------------------------------


def test_read_input():
    """The call reads the message after its own (index 6: SOL, Info_per_level, three setup
    calls, the call); the kernel sees the whole message, external tag included."""
    following = external(b"the next message")
    info, dst = SCRATCH, SCRATCH + 64
    log, _, _ = calls(
        host_call("read_input", info, dst, 4096, dump=(info, 64 + len(following))),
        b"the next message",
        host_call("read_input", info, dst, 5, dump=(dst, 6)),
        b"truncated to five",
        host_call("read_input", MEMORY_SIZE - 8, dst, 16),  # info not strictly inside
        host_call("read_input", info, MEMORY_SIZE - 16, 16),  # destination not strictly inside
        host_call("read_input", info, dst, -1),
        host_call("read_input", info, dst, 4096, repeat=2),  # End_of_level, then nothing
    )
    first, truncated, *errors = log
    assert first.result == len(following)
    assert first.dump[:8] == (1).to_bytes(4, "little") + (6).to_bytes(4, "little")
    assert first.dump[64:] == following
    # five bytes written; the sixth is still the previous message's
    assert (truncated.result, truncated.dump) == (5, b"\x01trun" + following[5:6])
    assert [e.result for e in errors] == [-6, -6, -6, 0]


def test_read_input_bounds_are_strict():
    """Octez wants ``address + length < memory size``: a buffer ending exactly at the end of
    memory is refused, one byte earlier is fine."""
    log, _, _ = calls(
        host_call("read_input", MEMORY_SIZE - 9, SCRATCH, 16),
        b"x",
        host_call("read_input", SCRATCH, MEMORY_SIZE - 17, 16),
        b"y",
    )
    assert [e.result for e in log] == [2, 2]


def test_write_output():
    layout = Layout()
    message = layout.put(b"to layer 1")
    log, state, result = calls(
        host_call("write_output", *message, data=layout.data),
        host_call("write_output", DATA, 4097),
        host_call("write_output", DATA, -1),
        host_call("write_output", MEMORY_SIZE - 2, 3),
        host_call("write_output", DATA, 0),
        host_call("write_output", SCRATCH, 4096),
    )
    assert [e.result for e in log] == [0, -7, -8, -6, 0, 0]
    assert result.outbox == (b"to layer 1", b"", bytes(4096))


def test_the_101st_output_of_a_level_fails_with_full_outbox():
    layout = Layout()
    message = layout.put(b"out")
    log, state, result = calls(
        host_call("write_output", *message, data=layout.data, repeat=100),
        host_call("write_output", *message, data=layout.data),
        host_call("write_output", *message, data=layout.data, repeat=5),
    )
    assert [e.result for e in log] == [0, -11, -11]
    assert result.outbox == (b"out",) * 100
    # the next level has an outbox of its own
    _, (next_level,) = run_levels(
        build("host_calls"),
        [[external(host_call("write_output", *message, data=layout.data))]],
        state=state,
        first_level=2,
    )
    assert next_level.outbox == (b"out",)
    assert read_log(state)[-1].result == 0
    assert state.outboxes[1] == [b"out"] * 100


def test_write_debug():
    layout = Layout()
    text = layout.put(b"hello debug")
    log, _, result = calls(host_call("write_debug", *text, data=layout.data), collect_debug=True)
    assert log[0].result == 0
    assert result.debug == (b"hello debug",)
    # the PVM proper ignores it
    _, _, result = calls(host_call("write_debug", *text, data=layout.data))
    assert result.debug == ()


def test_store_has_and_exists():
    log, _, _ = calls(
        keyed("store_has", "/nothing"),
        keyed("store_has", "/v"),
        keyed("store_has", "/d/x"),
        keyed("store_delete_value", "/d"),
        keyed("store_has", "/d"),
        write("/d", b"again"),
        keyed("store_has", "/d"),
        keyed("store_exists", "/d"),
        keyed("store_exists", "/nothing"),
        keyed("store_exists", "/v"),
    )
    assert [e.result for e in log] == [0, 1, 1, 0, 2, 0, 3, 1, 0, 1]


def test_store_list_size_and_get_nth_key():
    """Children are listed in an order of soru's choosing (the function is deprecated in
    Tezos for that reason); indices 0 … list_size − 1 name each child once, the value as ""."""
    names = [
        keyed("store_get_nth_key", "/d", i, SCRATCH + 32 * i, 16, dump=(SCRATCH + 32 * i, 16))
        for i in range(3)
    ]
    log, _, _ = calls(
        write("/d/longer_name", b"."),
        keyed("store_list_size", "/d"),
        keyed("store_list_size", "/v"),
        keyed("store_list_size", "/nothing"),
        *names,
        keyed("store_get_nth_key", "/nothing", 0, SCRATCH, 16),
        keyed("store_get_nth_key", "/d", 3, SCRATCH, 16),
        keyed("store_get_nth_key", "/d", -1, SCRATCH, 16),
        keyed("store_get_nth_key", "/d", 1 << 40, SCRATCH, 16),
        keyed("store_get_nth_key", "/v", 0, MEMORY_SIZE, 16),  # "" stores nothing, anywhere
    )
    assert [e.result for e in log[1:4]] == [3, 1, 0]
    listed = sorted(e.dump[: e.result] for e in log[4:7])
    assert listed == [b"", b"longer_name", b"x"]
    assert [e.result for e in log[7:]] == [-10, -12, -12, -12, 0]


def test_store_get_nth_key_names():
    log, _, _ = calls(
        write("/dir/abc", b"1"),
        keyed("store_get_nth_key", "/dir", 0, SCRATCH, 16, dump=(SCRATCH, 3)),
        keyed("store_get_nth_key", "/dir", 0, SCRATCH + 100, 2, dump=(SCRATCH + 100, 3)),
        keyed("store_get_nth_key", "/dir", 0, MEMORY_SIZE - 2, 16),
    )
    assert (log[1].result, log[1].dump) == (3, b"abc")
    assert (log[2].result, log[2].dump) == (2, b"ab\x00")  # cut to max_size
    assert log[3].result == -6


def test_store_delete_and_delete_value():
    log, state, _ = calls(
        keyed("store_delete_value", "/d"),
        keyed("store_has", "/d"),
        keyed("store_delete", "/d"),
        keyed("store_has", "/d"),
        keyed("store_delete", "/nothing"),
        keyed("store_delete_value", "/nothing"),
    )
    assert [e.result for e in log] == [0, 2, 0, 0, 0, 0]
    assert state.durable.read_all("/v") == b"hello"


def test_store_copy_and_move():
    log, state, _ = calls(
        two_keys("store_copy", "/d", "/copy"),
        two_keys("store_copy", "/nothing", "/copy2"),
        two_keys("store_move", "/v", "/moved"),
        two_keys("store_move", "/nothing", "/moved2"),
        keyed("store_has", "/v"),
        keyed("store_has", "/copy"),
    )
    assert [e.result for e in log] == [0, -10, 0, -10, 0, 3]
    durable = state.durable
    assert durable.read_all("/copy") == b"D" and durable.read_all("/copy/x") == b"1"
    assert durable.read_all("/moved") == b"hello"


def test_store_value_size():
    log, _, _ = calls(
        keyed("store_value_size", "/v"),
        keyed("store_value_size", "/nothing"),
        keyed("store_delete_value", "/d"),
        keyed("store_value_size", "/d"),
    )
    assert [e.result for e in log] == [5, -3, 0, -3]


def test_store_read():
    log, _, _ = calls(
        keyed("store_read", "/v", 0, SCRATCH, 16, dump=(SCRATCH, 5)),
        keyed("store_read", "/v", 2, SCRATCH + 8, 2, dump=(SCRATCH + 8, 3)),
        keyed("store_read", "/v", 0, SCRATCH, 2049),
        keyed("store_read", "/nothing", 0, SCRATCH, 16),
        keyed("store_read", "/v", 5, SCRATCH, 16),
        keyed("store_read", "/v", -1, SCRATCH, 16),
        keyed("store_read", "/v", 0, SCRATCH, -1),
        keyed("store_read", "/v", 0, MEMORY_SIZE - 2, 16, dump=(MEMORY_SIZE - 2, 2)),
        keyed("store_read", "/v", 0, SCRATCH, 2048),
    )
    assert (log[0].result, log[0].dump) == (5, b"hello")
    assert (log[1].result, log[1].dump) == (2, b"ll\x00")
    assert [e.result for e in log[2:8]] == [-7, -3, -4, -4, -8, -6]
    assert log[7].dump == b"he"  # what fits is written
    assert log[8].result == 5


def test_store_write():
    layout = Layout()
    key = layout.put("/v")
    source = layout.put(b"HELLO, WORLD")
    readonly = layout.put("/readonly/x")
    data = layout.data
    log, state, _ = calls(
        host_call("store_write", *key, 5, *source, data=data),  # append at the end
        host_call("store_write", *key, 0, source[0], 1, data=data),  # overwrite
        host_call("store_write", *key, 18, *source, data=data),  # past the end
        host_call("store_write", *key, -1, *source, data=data),
        host_call("store_write", *key, 0, source[0], -1, data=data),  # i32 overflow
        host_call("store_write", *key, 0, MEMORY_SIZE - 4, 8, data=data),
        host_call("store_write", *readonly, 0, *source, data=data),
        host_call("store_write", *key, 0, SCRATCH, 2049, data=data),
        host_call("store_write", *key, 0, SCRATCH, 2048, data=data),
    )
    assert [e.result for e in log] == [0, 0, -4, -8, -5, -6, -9, -7, 0]
    assert state.durable.read_all("/v")[:17] == bytes(17)
    assert len(state.durable.read_all("/v")) == 2048


def test_store_write_then_grow():
    layout = Layout()
    key = layout.put("/v")
    source = layout.put(b"HELLO, WORLD")
    log, state, _ = calls(
        host_call("store_write", *key, 5, *source, data=layout.data),
        host_call("store_write", *key, 0, source[0], 1, data=layout.data),
    )
    assert state.durable.read_all("/v") == b"Hello" + b"HELLO, WORLD"


def test_store_get_hash():
    log, _, _ = calls(
        keyed("__internal_store_get_hash", "/d", SCRATCH, 32, dump=(SCRATCH, 32)),
        keyed("__internal_store_get_hash", "/d", SCRATCH + 64, 8, dump=(SCRATCH + 64, 9)),
        keyed("__internal_store_get_hash", "/nothing", SCRATCH, 32),
        keyed("__internal_store_get_hash", "/d", MEMORY_SIZE - 8, 32),
        two_keys("store_copy", "/d", "/e"),
        keyed("__internal_store_get_hash", "/e", SCRATCH, 32, dump=(SCRATCH, 32)),
        keyed("__internal_store_get_hash", "/v", SCRATCH, 32, dump=(SCRATCH, 32)),
    )
    full, cut, missing, out, _copy, copied, other = log
    assert full.result == 32 and full.dump != bytes(32)
    assert cut.result == 8 and cut.dump == full.dump[:8] + b"\x00"
    assert (missing.result, out.result) == (-10, -6)
    assert copied.dump == full.dump  # equal subtrees, equal hashes
    assert other.dump != full.dump


def test_store_create():
    log, state, _ = calls(
        keyed("store_create", "/new", 3000),
        keyed("store_value_size", "/new"),
        keyed("store_create", "/new", 1),
        keyed("store_create", "/v", 1),
        keyed("store_create", "/neg", -1),
        keyed("store_create", "/readonly/new", 1),
        keyed("store_create", "/empty", 0),
        keyed("store_has", "/empty"),
    )
    assert [e.result for e in log] == [0, 3000, -13, -13, -5, -9, 0, 1]
    assert state.durable.read_all("/new") == bytes(3000)


# --- read-only paths ---------------------------------------------------------------------------


def test_writes_under_readonly_fail_with_readonly_value():
    log, state, _ = calls(
        write("/readonly/kernel/env/stuck", b""),
        write("/readonly/wasm_version", b"9.9.9"),
        keyed("store_create", "/readonly/x", 1),
        keyed("store_delete", "/readonly/wasm_version"),
        keyed("store_delete", "/readonly"),
        keyed("store_delete_value", "/readonly/wasm_version"),
        two_keys("store_copy", "/v", "/readonly/v"),
        two_keys("store_move", "/v", "/readonly/v"),
        two_keys("store_move", "/readonly/wasm_version", "/version"),
        # reading them, and copying from them, is fine
        keyed("store_read", "/readonly/wasm_version", 0, SCRATCH, 16, dump=(SCRATCH, 8)),
        two_keys("store_copy", "/readonly/wasm_version", "/version"),
    )
    assert [e.result for e in log] == [-9] * 9 + [8, 0]
    assert log[9].dump == b"2.0.0-r3"
    assert state.durable.read_all("/version") == b"2.0.0-r3"
    assert state.durable.read_all("/readonly/kernel/env/stuck") is None
    assert state.durable.read_all("/v") == b"hello"


def test_the_root_is_readonly():
    log, _, _ = calls(
        host_call("store_delete", DATA, 0),
        host_call("store_write", DATA, 0, 0, DATA, 1),
        keyed("store_has", ""),
    )
    assert [e.result for e in log] == [-9, -9, 2]


# --- reveals -----------------------------------------------------------------------------------


@pytest.fixture
def preimages(tmp_path):
    page = b"\x00" + (11).to_bytes(4, "big") + b"hello world"
    (tmp_path / reveal_hash(page).hex()).write_bytes(page)
    return tmp_path, page


def test_reveal_metadata():
    reveals = RevealProvider(None, ROLLUP, 1234)
    log, state, _ = calls(
        host_call("reveal_metadata", SCRATCH, 4096, dump=(SCRATCH, 24)),
        host_call("reveal_metadata", SCRATCH + 100, 10, dump=(SCRATCH + 100, 11)),
        reveals=reveals,
    )
    assert log[0].result == 24
    assert log[0].dump == ROLLUP + (1234).to_bytes(4, "big")
    assert (log[1].result, log[1].dump) == (10, ROLLUP[:10] + b"\x00")


def test_reveal_preimage(preimages):
    directory, page = preimages
    layout = Layout()
    hash_at = layout.put(reveal_hash(page))
    reveals = RevealProvider(directory, ROLLUP, 0)
    data = layout.data
    log, state, _ = calls(
        host_call("reveal_preimage", *hash_at, SCRATCH, 4096, data=data, dump=(SCRATCH, 16)),
        host_call("reveal_preimage", *hash_at, SCRATCH + 32, 7, data=data, dump=(SCRATCH + 32, 8)),
        host_call("reveal_preimage", hash_at[0], 4097, SCRATCH, 4096, data=data),
        host_call("reveal_preimage", hash_at[0], -1, SCRATCH, 4096, data=data),
        host_call("reveal_preimage", MEMORY_SIZE - 16, 33, SCRATCH, 4096, data=data),
        host_call("reveal_preimage", *hash_at, MEMORY_SIZE - 4, 4096, data=data),
        reveals=reveals,
    )
    assert (log[0].result, log[0].dump) == (len(page), page)
    assert (log[1].result, log[1].dump) == (7, page[:7] + b"\x00")
    assert [e.result for e in log[2:]] == [-7, -8, -6, -6]


def test_generic_reveal(preimages):
    directory, page = preimages
    layout = Layout()
    raw = layout.put(b"\x00" + reveal_hash(page))
    metadata = layout.put(b"\x01")
    reveals = RevealProvider(directory, ROLLUP, 7)
    data = layout.data
    log, _, _ = calls(
        host_call("reveal", *raw, SCRATCH, 4096, data=data, dump=(SCRATCH, len(page))),
        host_call("reveal", *metadata, SCRATCH, 4096, data=data, dump=(SCRATCH, 24)),
        host_call("reveal", raw[0], 4097, SCRATCH, 4096, data=data),
        host_call("reveal", raw[0], -1, SCRATCH, 4096, data=data),
        host_call("reveal", MEMORY_SIZE - 1, 2, SCRATCH, 4096, data=data),
        reveals=reveals,
    )
    assert (log[0].result, log[0].dump) == (len(page), page)
    assert (log[1].result, log[1].dump) == (24, ROLLUP + (7).to_bytes(4, "big"))
    assert [e.result for e in log[2:]] == [-7, -8, -6]


def test_each_reveal_is_one_tick_and_the_level_still_pads_exactly(preimages):
    directory, page = preimages
    layout = Layout()
    hash_at = layout.put(reveal_hash(page))
    message = host_call("reveal_preimage", *hash_at, SCRATCH, 4096, data=layout.data, repeat=3)
    log, state, result = calls(message, reveals=RevealProvider(directory, ROLLUP, 0))
    assert log[0].result == len(page)
    assert result.ticks == 2 * state.max_nb_ticks


def test_unknown_function_index_is_the_kernels_business():
    message = bytes([200]) + host_call("read_input")[1:]
    (logged,), _, _ = calls(message)
    assert logged.result == -1000


def test_host_functions_follow_the_version():
    """A kernel importing ``store_exists`` (r2) and ``reveal`` (r3) cannot run as 2.0.0-r1."""
    state, _ = run_levels(
        build("host_calls"), [[external(keyed("store_has", "/v"))]], version="2.0.0-r1"
    )
    assert state.durable.read_all("/log") is None
    assert state.stuck is not None


def test_a_negative_max_size_crashes_the_pvm_for_good():
    """Octez fails ``store_get_nth_key`` with a negative ``max_size`` by an uncaught
    exception (an interpreter crash, terminal); soru is stuck with ``host function crash``."""
    _, state, result = calls(keyed("store_get_nth_key", "/d", 0, SCRATCH, -1))
    assert state.tick_state is TickState.STUCK
    assert state.stuck is StuckReason.HOST_CRASH
    assert result.ticks < 2 * state.max_nb_ticks
    assert len(read_log(state)) == len(SETUP)  # the crashing call logged nothing


def test_a_protocol_migration_upgrades_the_pvm_version():
    """Protocol_migration messages move a 2.0.0 rollup to 2.0.0-r1 (Nairobi), then 2.0.0-r3
    (Oxford), and never back; ``/readonly/wasm_version`` follows."""

    def migrate(state, level, protocol):
        message = inbox.ProtocolMigration(protocol).encode()
        run_levels(build("reboot"), [[message]], state=state, first_level=level)
        return state.version, state.durable.read_all("/readonly/wasm_version")

    state, _ = run_levels(build("reboot"), [[]], version="2.0.0")
    assert state.durable.read_all("/readonly/wasm_version") == b"2.0.0"
    assert migrate(state, 2, "nairobi_017") == ("2.0.0-r1", b"2.0.0-r1")
    assert migrate(state, 3, "oxford_018") == ("2.0.0-r3", b"2.0.0-r3")
    assert migrate(state, 4, "nairobi_017") == ("2.0.0-r3", b"2.0.0-r3")
    assert state.stuck is None


def test_a_malformed_reveal_gets_the_empty_preimage_of_the_well_known_hash():
    """The PVM turns an undecodable ``reveal`` payload into a request for the well-known
    hash, Blake2b-256 of nothing; the node answers it without a preimage file (Octez
    ``interpreter.ml``: ``Reveal_raw_data hash when equal hash well_known_reveal_hash``)."""
    layout = Layout()
    garbage = layout.put(b"\x07garbage")
    well_known = layout.put(reveal_hash(b""))
    log, state, _ = calls(
        host_call("reveal", *garbage, SCRATCH, 4096, data=layout.data),
        host_call("reveal_preimage", *well_known, SCRATCH, 4096, data=layout.data),
    )
    assert [e.result for e in log] == [0, 0]
    assert state.stuck is None
