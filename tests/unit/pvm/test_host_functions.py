"""The ``smart_rollup_core`` host functions: signatures and version gating, every error code
each function can return (in Octez's order), limits at their boundaries, reveals, and a kernel
calling them through the WebAssembly machine."""

from __future__ import annotations

from collections import deque
from types import SimpleNamespace

import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

from soru.base.errors import DecodeError
from soru.crypto.hashing import Tag, blake2b_256
from soru.pvm.durable import MAX_STORE_IO_SIZE, MAX_VALUE_SIZE, Durable
from soru.pvm.host_functions import (
    HOST_FUNCTIONS,
    WELL_KNOWN_REVEAL_HASH,
    WELL_KNOWN_REVEAL_REQUEST,
    HostCrash,
    RevealRequest,
    UnknownVersion,
    answer_reveal,
    host_functions,
    is_well_formed_reveal,
)
from soru.wasm.binary import decode_module
from soru.wasm.exec.machine import Machine, RunStatus, Suspend
from soru.wasm.syntax import FuncType, ValType

PAGE = 65536
I32, I64 = ValType.I32, ValType.I64


class Env:
    """A host environment: durable storage, an input queue, one outbox, a debug log."""

    def __init__(self) -> None:
        self.durable = Durable()
        self.inputs: deque[tuple[int, int, bytes]] = deque()
        self.outbox: list[bytes] = []
        self.logs: list[bytes] = []

    def next_input(self):
        return self.inputs.popleft() if self.inputs else None

    def write_output(self, payload: bytes) -> bool:
        if len(self.outbox) >= 100:
            return False
        self.outbox.append(payload)
        return True

    def debug(self, data: bytes) -> None:
        self.logs.append(data)


class Kernel:
    """A caller with one page of memory and the host functions of a version."""

    def __init__(self, version: str = "2.0.0-r3", *, debug: bool = False, pages: int = 1):
        self.env = Env()
        self.memory = bytearray(pages * PAGE)
        self.caller = SimpleNamespace(mems=[SimpleNamespace(data=self.memory)])
        self.funcs = host_functions(self.env, version, debug=debug)
        self.next_free = 0x1000

    def put(self, data: bytes | str, at: int | None = None) -> tuple[int, int]:
        """Place bytes in memory; returns (address, length)."""
        raw = data.encode() if isinstance(data, str) else data
        if at is None:
            at, self.next_free = self.next_free, self.next_free + len(raw) + 16
        self.memory[at : at + len(raw)] = raw
        return at, len(raw)

    def call(self, name: str, *args: int):
        """Call with signed or unsigned ints; returns the signed result (None for no result,
        or the RevealRequest)."""
        func = self.funcs[name]
        bits = [
            a & (0xFFFFFFFF if t == I32 else 0xFFFFFFFFFFFFFFFF)
            for a, t in zip(args, func.type.params, strict=True)
        ]
        result = func.fn(self.caller, bits)
        if isinstance(result, RevealRequest):
            return result
        if not result:
            return None
        (value,) = result
        width = 32 if func.type.results[0] == I32 else 64
        assert 0 <= value < 1 << width
        return value - (1 << width) if value >> (width - 1) else value

    def key(self, name: str, key: str | bytes, *rest: int):
        return self.call(name, *self.put(key), *rest)


# --- the table -----------------------------------------------------------------------------------

SIGNATURES = {
    "read_input": ([I32] * 3, [I32]),
    "write_output": ([I32] * 2, [I32]),
    "write_debug": ([I32] * 2, []),
    "store_has": ([I32] * 2, [I32]),
    "store_exists": ([I32] * 2, [I32]),
    "store_delete": ([I32] * 2, [I32]),
    "store_delete_value": ([I32] * 2, [I32]),
    "store_create": ([I32] * 3, [I32]),
    "store_value_size": ([I32] * 2, [I32]),
    "store_list_size": ([I32] * 2, [I64]),
    "store_get_nth_key": ([I32, I32, I64, I32, I32], [I32]),
    "__internal_store_get_hash": ([I32] * 4, [I32]),
    "store_copy": ([I32] * 4, [I32]),
    "store_move": ([I32] * 4, [I32]),
    "store_read": ([I32] * 5, [I32]),
    "store_write": ([I32] * 5, [I32]),
    "reveal_preimage": ([I32] * 4, [I32]),
    "reveal_metadata": ([I32] * 2, [I32]),
    "reveal": ([I32] * 4, [I32]),
}

V0 = {
    "read_input",
    "write_output",
    "write_debug",
    "store_has",
    "store_list_size",
    "store_get_nth_key",
    "store_delete",
    "store_copy",
    "store_move",
    "store_value_size",
    "reveal_preimage",
    "reveal_metadata",
    "store_read",
    "store_write",
}
V1 = V0 | {"__internal_store_get_hash", "store_delete_value", "store_create"}
V2 = V1 | {"store_exists"}
V3 = V2 | {"reveal"}


def test_signatures():
    assert {spec.name for spec in HOST_FUNCTIONS} == set(SIGNATURES)
    for name, (params, results) in SIGNATURES.items():
        func = host_functions(Env(), "2.0.0-r3")[name]
        assert func.type == FuncType(tuple(params), tuple(results)), name
        assert func.name == name


@pytest.mark.parametrize(
    ("version", "names"), [("2.0.0", V0), ("2.0.0-r1", V1), ("2.0.0-r2", V2), ("2.0.0-r3", V3)]
)
def test_version_gating(version, names):
    assert set(host_functions(Env(), version)) == names


def test_unknown_version():
    with pytest.raises(UnknownVersion):
        host_functions(Env(), "2.0.0-r4")


def test_a_caller_without_exactly_one_memory_crashes():
    k = Kernel()
    for caller in (None, SimpleNamespace(mems=[])):
        with pytest.raises(HostCrash):
            k.funcs["store_has"].fn(caller, [0, 0])
        with pytest.raises(HostCrash):
            k.funcs["write_debug"].fn(caller, [0, 0])


# --- read_input ----------------------------------------------------------------------------------


def test_read_input():
    k = Kernel()
    k.env.inputs.extend([(7, 3, b"hello"), (7, 4, b"x" * 4096)])
    assert k.call("read_input", 0x100, 0x200, 100) == 5
    assert k.memory[0x200:0x205] == b"hello"
    assert k.memory[0x100:0x108] == (7).to_bytes(4, "little") + (3).to_bytes(4, "little")
    assert k.call("read_input", 0x100, 0x200, 10_000) == 4096  # max_bytes clamped to 4096
    assert k.memory[0x100:0x108] == (7).to_bytes(4, "little") + (4).to_bytes(4, "little")
    k.memory[0x100:0x108] = b"untouch!"
    assert k.call("read_input", 0x100, 0x200, 100) == 0  # no more input
    assert k.memory[0x100:0x108] == b"untouch!"


def test_read_input_truncates():
    k = Kernel()
    k.env.inputs.append((1, 0, b"abcdef"))
    assert k.call("read_input", 0, 16, 3) == 3
    assert k.memory[16:20] == b"abc\x00"
    assert not k.env.inputs  # the rest of the message is gone


def test_read_input_bounds_are_strict():
    k = Kernel()
    k.env.inputs.append((1, 0, b"abc"))
    assert k.call("read_input", PAGE - 8, 0, 4) == -6  # ends exactly at the end: refused
    assert k.call("read_input", 0, PAGE - 4, 4) == -6
    assert k.call("read_input", 0, 0, -1) == -6  # a negative max_bytes
    assert k.call("read_input", 0xFFFFFFF0, 0, 4) == -6
    assert k.env.inputs  # nothing consumed on an error
    assert k.call("read_input", 0x10, PAGE - 5, 4) == 3
    assert k.memory[PAGE - 5 : PAGE - 2] == b"abc"
    k.env.inputs.append((1, 1, b"def"))
    assert k.call("read_input", PAGE - 9, 0x10, 4) == 3
    assert k.memory[PAGE - 9 : PAGE - 1] == b"\x01\x00\x00\x00\x01\x00\x00\x00"


def test_read_input_max_bytes_clamped_before_the_bounds_check():
    k = Kernel()
    k.env.inputs.append((1, 0, b"abc"))
    assert k.call("read_input", 0, PAGE - 4097, 1 << 30) == 3


# --- write_output and write_debug ----------------------------------------------------------------


def test_write_output_limits():
    k = Kernel()
    src, _ = k.put(b"m" * 4097)
    assert k.call("write_output", src, 4096) == 0
    assert k.env.outbox == [b"m" * 4096]
    assert k.call("write_output", src, 4097) == -7
    assert k.call("write_output", src, -1) == -8
    assert k.call("write_output", PAGE - 10, 11) == -6
    assert k.call("write_output", PAGE + 10, 0) == 0  # nothing to read: no bounds to break
    assert len(k.env.outbox) == 2


def test_write_output_full_outbox():
    k = Kernel()
    src, n = k.put(b"out")
    for _ in range(100):
        assert k.call("write_output", src, n) == 0
    assert k.call("write_output", src, n) == -11
    assert len(k.env.outbox) == 100


def test_write_debug():
    quiet = Kernel()
    assert quiet.call("write_debug", *quiet.put(b"hi")) is None
    assert quiet.env.logs == []
    loud = Kernel(debug=True)
    assert loud.call("write_debug", *loud.put(b"hi")) is None
    assert loud.call("write_debug", PAGE - 1, 2) is None
    assert loud.env.logs == [b"hi", b"Error code: -6"]


# --- keys ----------------------------------------------------------------------------------------

KEYED = [
    ("store_has", ()),
    ("store_exists", ()),
    ("store_delete", ()),
    ("store_delete_value", ()),
    ("store_create", (1,)),
    ("store_value_size", ()),
    ("store_list_size", ()),
    ("store_get_nth_key", (0, 0x100, 10)),
    ("__internal_store_get_hash", (0x100, 32)),
    ("store_read", (0, 0x100, 10)),
    ("store_write", (0, 0x100, 1)),
    ("store_copy", (0x10, 2)),
    ("store_move", (0x10, 2)),
]


@pytest.mark.parametrize(("name", "rest"), KEYED)
def test_key_errors(name, rest):
    k = Kernel()
    k.put(b"/x", 0x10)
    assert k.key(name, "/" + "a" * 240, *rest) == -1  # 241 bytes
    assert k.key(name, "/" + "!" * 240, *rest) == -1  # too long wins over invalid
    assert k.key(name, "/a@b", *rest) == -2
    assert k.key(name, "/a/", *rest) == -2
    assert k.call(name, PAGE - 2, 3, *rest) == -6
    assert k.call(name, PAGE - 1, 3, *rest) == -6
    assert k.call(name, 0, -1, *rest) == -8  # a negative length
    assert k.key(name, "/" + "a" * 239, *rest) >= -13  # 240 bytes: a valid key


@pytest.mark.parametrize(("name", "_rest"), KEYED[:2])
def test_a_zero_length_key_anywhere_is_the_root(name, _rest):
    k = Kernel()
    k.env.durable.write_all("/a", b"")
    assert k.call(name, 0xFFFFFFFF, 0) in (1, 2)


def test_second_key_errors():
    k = Kernel()
    k.env.durable.write_all("/a", b"v")
    src, n = k.put("/a")
    for name in ("store_copy", "store_move"):
        assert k.call(name, src, n, *k.put("/" + "b" * 240)) == -1
        assert k.call(name, src, n, *k.put("/b!")) == -2
        assert k.call(name, src, n, PAGE - 1, 2) == -6
        assert k.call(name, *k.put("/bad!"), PAGE - 1, 2) == -2  # the source is read first


# --- store_has, store_exists ---------------------------------------------------------------------


def test_store_has():
    k = Kernel()
    root = "/thequickbrownfoxjumpedoverthelazydog/THEQUICKBROWNFOXJUMPEDOVERTHELAZYDOG/0123456789."
    for key in (root, root + "/one", root + "/two/three"):
        k.env.durable.write_all(key, b"true")
    assert k.key("store_has", root) == 3
    assert k.key("store_has", root + "/one") == 1
    assert k.key("store_has", root + "/two") == 2
    assert k.key("store_has", "/test/path") == 0
    assert k.key("store_has", "") == 2


def test_store_exists():
    k = Kernel()
    k.env.durable.write_all("/foo/bar", b"/foobar")
    assert k.key("store_exists", "/foo") == 1
    assert k.key("store_exists", "/foo/bar") == 1
    assert k.key("store_exists", "/bar") == 0
    assert k.key("store_exists", "") == 1
    assert k.call("store_exists", 21 * PAGE, 5) == -6


# --- deletion, creation, sizes -------------------------------------------------------------------


def test_store_delete_and_delete_value():
    k = Kernel()
    for key in ("/a/short/path", "/a/short/path/one", "/a/long/path"):
        k.env.durable.write_all(key, b"true")
    assert k.key("store_delete_value", "/a/short/path") == 0
    assert k.key("store_has", "/a/short/path") == 2
    assert k.key("store_delete", "/a/short/path") == 0
    assert k.key("store_has", "/a/short/path") == 0
    assert k.key("store_delete", "/never/there") == 0
    k.env.durable.write_all("/readonly/x", b"", edit_readonly=True)
    for name in ("store_delete", "store_delete_value"):
        assert k.key(name, "/readonly/x") == -9
        assert k.key(name, "/readonly") == -9
        assert k.key(name, "") == -9
    assert k.env.durable.has_value("/readonly/x")


def test_store_create():
    k = Kernel()
    k.env.durable.write_all("/a/path", b"a value of sorts")
    assert k.key("store_create", "/a/new/path", 1024) == 0
    assert k.env.durable.read_all("/a/new/path") == bytes(1024)
    assert k.key("store_create", "/a/path", 116) == -13
    assert k.env.durable.value_size("/a/path") == 16
    assert k.key("store_create", "/a/other", 0xFFFFFFFF) == -5
    assert k.key("store_create", "/readonly/x", -1) == -5  # size before read-only
    assert k.key("store_create", "/readonly/x", 1) == -9
    assert k.key("store_create", "/max", MAX_VALUE_SIZE) == 0
    assert k.key("store_value_size", "/max") == MAX_VALUE_SIZE


def test_store_value_size():
    k = Kernel()
    k.env.durable.write_all("/a", b"12345")
    assert k.key("store_value_size", "/a") == 5
    assert k.key("store_value_size", "/b") == -3
    assert k.key("store_value_size", "/a!") == -2


def test_store_list_size():
    k = Kernel()
    for key in ("/a/short/path", "/a/short/path/one", "/a/short/path/two"):
        k.env.durable.write_all(key, b"true")
    assert k.key("store_list_size", "/a/short/path") == 3
    assert k.key("store_list_size", "/nothing") == 0
    raw = k.funcs["store_list_size"].fn(k.caller, [*k.put("/" + "a" * 240)])
    assert raw == [0xFFFFFFFFFFFFFFFF]  # -1 as an i64


# --- store_get_nth_key and the hash --------------------------------------------------------------


def test_store_get_nth_key():
    k = Kernel()
    for key in ("/a/short/path", "/a/short/path/one", "/a/short/path/three"):
        k.env.durable.write_all(key, b"true")
    names = [k.env.durable.nth_key("/a/short/path", i) for i in range(3)]
    assert sorted(names) == ["", "one", "three"]
    src, n = k.put("/a/short/path")
    for index, name in enumerate(names):
        k.memory[0x100:0x110] = bytes(16)
        assert k.call("store_get_nth_key", src, n, index, 0x100, 3600) == len(name)
        assert k.memory[0x100:0x110] == name.encode().ljust(16, b"\x00")
    three = names.index("three")
    assert k.call("store_get_nth_key", src, n, three, 0x200, 3) == 3
    assert k.memory[0x200:0x204] == b"thr\x00"
    assert k.call("store_get_nth_key", src, n, 3, 0x100, 10) == -12
    assert k.call("store_get_nth_key", src, n, -1, 0x100, 10) == -12
    assert k.call("store_get_nth_key", src, n, 1 << 40, 0x100, 10) == -12
    assert k.key("store_get_nth_key", "/nothing", 0, 0x100, 10) == -10
    assert k.call("store_get_nth_key", src, n, three, PAGE - 2, 10) == -6
    assert k.memory[PAGE - 2 :] == b"th"  # the bytes that fit were written
    value = names.index("")
    assert k.call("store_get_nth_key", src, n, value, PAGE + 5, 10) == 0  # nothing to write
    with pytest.raises(HostCrash):
        k.call("store_get_nth_key", src, n, three, 0x100, -1)


def test_store_get_hash():
    k = Kernel()
    k.env.durable.write_all("/foo/bar", b"/foobar")
    expected = bytes(k.env.durable.subtree_hash("/foo"))
    src, n = k.put("/foo")
    assert k.call("__internal_store_get_hash", src, n, 0x100, 32) == 32
    assert k.memory[0x100:0x120] == expected
    assert k.call("__internal_store_get_hash", src, n, 0x200, 100) == 32
    assert k.call("__internal_store_get_hash", src, n, 0x300, 5) == 5
    assert k.memory[0x300:0x306] == expected[:5] + b"\x00"
    assert k.key("__internal_store_get_hash", "/bar", 0x100, 32) == -10
    assert k.call("__internal_store_get_hash", 21 * PAGE, n, 0x100, 32) == -6
    assert k.call("__internal_store_get_hash", src, n, 21 * PAGE, 32) == -6
    with pytest.raises(HostCrash):
        k.call("__internal_store_get_hash", src, n, 0x100, -5)
    assert k.key("__internal_store_get_hash", "", 0x400, 32) == 32
    assert k.memory[0x400:0x420] == bytes(k.env.durable.tree.hash)


# --- copy and move -------------------------------------------------------------------------------


def test_store_copy():
    k = Kernel()
    for key in ("/a/short/path", "/a/short/path/one", "/a/long/path/two"):
        k.env.durable.write_all(key, b"a very long value")
    assert k.call("store_copy", *k.put("/a/short/path/one"), *k.put("/a/long/path")) == 0
    assert k.env.durable.read_all("/a/long/path") == b"a very long value"
    assert not k.env.durable.exists("/a/long/path/two")
    assert k.call("store_copy", *k.put("/a/missing"), *k.put("/a/long/path")) == -10
    assert k.call("store_copy", *k.put("/a/missing"), *k.put("/readonly/x")) == -9
    assert k.call("store_copy", *k.put("/a/short"), *k.put("")) == -9
    k.env.durable.write_all("/readonly/src", b"ro", edit_readonly=True)
    assert k.call("store_copy", *k.put("/readonly/src"), *k.put("/w")) == 0
    assert k.env.durable.read_all("/w") == b"ro"


def test_store_move():
    k = Kernel()
    for key in ("/a/short/path", "/a/long/path", "/a/long/path/one"):
        k.env.durable.write_all(key, b"a very long value")
    assert k.call("store_move", *k.put("/a/short/path"), *k.put("/a/long/path")) == 0
    assert not k.env.durable.exists("/a/short/path")
    assert not k.env.durable.exists("/a/long/path/one")
    assert k.call("store_move", *k.put("/a/short/path"), *k.put("/a/x")) == -10
    k.env.durable.write_all("/readonly/src", b"ro", edit_readonly=True)
    assert k.call("store_move", *k.put("/readonly/src"), *k.put("/w")) == -9
    assert k.call("store_move", *k.put("/a/long"), *k.put("/readonly/dst")) == -9
    assert k.call("store_move", *k.put("/missing"), *k.put("/readonly/dst")) == -9


# --- store_read and store_write ------------------------------------------------------------------


def test_store_read():
    k = Kernel()
    content = bytes(range(256)) * 20  # 5120 bytes
    k.env.durable.write_all("/v", content)
    src, n = k.put("/v")
    assert k.call("store_read", src, n, 100, 0x2000, 2048) == 2048
    assert k.memory[0x2000 : 0x2000 + 2048] == content[100:2148]
    assert k.call("store_read", src, n, 5000, 0x2000, 2048) == 120  # cut at the end
    assert k.call("store_read", src, n, 0, 0x2000, 2049) == -7
    assert k.call("store_read", src, n, 5120, 0x2000, 1) == -4
    assert k.call("store_read", src, n, -1, 0x2000, 1) == -4
    assert k.call("store_read", src, n, 0, 0x2000, -1) == -8
    assert k.key("store_read", "/none", 0, 0x2000, 10) == -3
    assert k.key("store_read", "/none", 0, 0x2000, 2049) == -7  # too large first
    assert k.call("store_read", src, n, 0, PAGE - 3, 10) == -6
    assert k.memory[PAGE - 3 :] == content[:3]  # the bytes that fit were written
    assert k.call("store_read", src, n, 0, PAGE + 3, 0) == 0


def test_store_write():
    k = Kernel()
    k.env.durable.write_all("/a/path", b"a value of sorts")
    key = k.put("/a/path")
    data = k.put(b"a value of sorts")
    assert k.call("store_write", *key, 5, *data) == 0
    assert k.env.durable.read_all("/a/path") == b"a val" + b"a value of sorts"
    new = k.put("/a/new/path")
    assert k.call("store_write", *new, 1, *data) == -4
    assert k.call("store_write", *new, 0, *data) == 0
    assert k.env.durable.read_all("/a/new/path") == b"a value of sorts"


def test_store_write_limits_and_order():
    k = Kernel()
    src, _ = k.put(bytes(range(256)) * 9)
    key = k.put("/v")
    assert k.call("store_write", *key, 0, src, 2048) == 0
    assert k.call("store_write", *key, 0, src, 2049) == -7
    assert k.key("store_write", "/readonly/v", 0, src, 2049) == -9  # read-only first
    assert k.call("store_write", *key, 2049, src, 1) == -4
    assert k.call("store_write", *key, -1, src, 1) == -8
    assert k.call("store_write", *key, 2049, src, -1) == -5  # negative size: overflow
    assert k.call("store_write", *key, 0, PAGE - 10, 11) == -6
    assert k.call("store_write", *key, 0, PAGE - 10, 3000) == -6  # memory before too large
    assert k.call("store_write", *key, 0, 0, MAX_VALUE_SIZE) == -5  # 2048 + size overflows
    assert k.key("store_write", "/fresh", 0, 0, MAX_VALUE_SIZE) == -6  # nothing is read
    assert k.key("store_write", "/readonly/v", 0, PAGE - 1, 2) == -6  # memory before read-only
    assert k.env.durable.value_size("/v") == 2048
    assert k.call("store_write", *key, 2048, PAGE + 5, 0) == 0  # zero bytes anywhere


def test_store_write_overflow_check_ignores_the_offset():
    k = Kernel()
    k.env.durable.create("/big", MAX_VALUE_SIZE)
    src, _ = k.put(b"x")
    assert k.key("store_write", "/big", 0, src, 1) == -5
    assert k.key("store_write", "/big", 0, src, 0) == 0


def test_store_write_creates_empty_values():
    k = Kernel()
    assert k.key("store_write", "/empty", 0, 0, 0) == 0
    assert k.key("store_value_size", "/empty") == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5000), st.binary(max_size=MAX_STORE_IO_SIZE)), max_size=12)
)
def test_write_then_read_through_host_functions(writes):
    k = Kernel()
    model = bytearray()
    key = k.put("/v")
    for offset, data in writes:
        src, n = k.put(data, 0x8000)
        result = k.call("store_write", *key, offset, src, n)
        if offset > len(model):
            assert result == -4
        else:
            assert result == 0
            model[offset : offset + n] = data
    for offset in range(0, len(model), 1500):
        got = k.call("store_read", *key, offset, 0x100, MAX_STORE_IO_SIZE)
        assert got == min(MAX_STORE_IO_SIZE, len(model) - offset)
        assert k.memory[0x100 : 0x100 + got] == model[offset : offset + got]


# --- reveals -------------------------------------------------------------------------------------

HASH = b"\x00" + bytes(range(32))


def test_reveal_preimage_request():
    k = Kernel("2.0.0")
    request = k.call("reveal_preimage", *k.put(HASH), 0x100, 4096)
    assert request == RevealRequest(b"\x00" + HASH, 0x100, 4096)
    assert request.request == b"\x00" + HASH
    with pytest.raises(Suspend):
        request.step()


def test_reveal_preimage_errors():
    k = Kernel()
    assert k.call("reveal_preimage", *k.put(bytes(4097)), 0, 10) == -7
    assert k.call("reveal_preimage", 0, -1, 0, 10) == -8
    assert k.call("reveal_preimage", PAGE - 10, 33, 0, 10) == -6
    short = k.call("reveal_preimage", *k.put(HASH[1:]), 0, 10)  # a 32-byte hash
    assert short.payload == b"\x00" + HASH[1:]
    assert short.request == WELL_KNOWN_REVEAL_REQUEST


def test_reveal_metadata_request():
    k = Kernel()
    request = k.call("reveal_metadata", 0x100, 24)
    assert request == RevealRequest(b"\x01", 0x100, 24)
    assert request.request == b"\x01"
    assert k.call("reveal_metadata", PAGE * 9, 24).dst == PAGE * 9  # memory is not looked at


@pytest.mark.parametrize(
    ("payload", "well_formed"),
    [
        (b"\x00" + HASH, True),
        (b"\x01", True),
        (b"\x03", True),
        (b"\x02" + (5).to_bytes(4, "big") + b"\x01" + (2).to_bytes(2, "big"), True),
        (b"\x02" + (5).to_bytes(4, "big") + b"\x01" + b"\xff\xff", True),  # page -1: decodes
        (b"\x02" + b"\xff\xff\xff\xff" + b"\x01" + b"\x00\x02", False),  # negative level
        (b"\x02" + bytes(6), False),
        (b"\x00" + HASH + b"\x00", False),  # trailing bytes
        (b"\x00\x01" + HASH[1:], False),  # unknown hash scheme
        (b"\x01\x00", False),
        (b"\x04" + bytes(9), False),  # adaptive DAL pages: not in Oxford's encoding
        (b"", False),
        (b"\xff", False),
    ],
)
def test_generic_reveal(payload, well_formed):
    k = Kernel("2.0.0-r3")
    request = k.call("reveal", *k.put(payload), 0x100, 4096)
    assert request.payload == payload
    assert is_well_formed_reveal(payload) is well_formed
    assert request.request == (payload if well_formed else WELL_KNOWN_REVEAL_REQUEST)


def test_generic_reveal_errors():
    k = Kernel()
    assert k.call("reveal", *k.put(bytes(4097)), 0, 10) == -7
    assert k.call("reveal", 0, -5, 0, 10) == -8
    assert k.call("reveal", PAGE - 1, 2, 0, 10) == -6


def test_well_known_hash_is_the_hash_of_nothing():
    assert WELL_KNOWN_REVEAL_HASH == b"\x00" + blake2b_256(Tag.TEZOS, b"")
    assert WELL_KNOWN_REVEAL_HASH.hex() == (
        "000e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
    )


def test_answer_reveal():
    memory = bytearray(PAGE)
    page = bytes(range(256)) * 20
    assert answer_reveal(memory, RevealRequest(b"\x01", 0x100, 24), b"m" * 24) == 24
    assert memory[0x100:0x119] == b"m" * 24 + b"\x00"
    assert answer_reveal(memory, RevealRequest(b"\x01", 0x200, 10), b"n" * 24) == 10
    assert memory[0x200:0x20B] == b"n" * 10 + b"\x00"
    assert answer_reveal(memory, RevealRequest(b"", 0x1000, 10_000), page) == 4096  # <= 4096
    assert answer_reveal(memory, RevealRequest(b"", 0x300, 0xFFFFFFFF), b"abc") == 3  # unsigned
    assert answer_reveal(memory, RevealRequest(b"", 0x400, 0), b"abc") == 0
    assert answer_reveal(memory, RevealRequest(b"", PAGE - 2, 10), b"abc") == 0xFFFFFFFA  # -6
    assert memory[PAGE - 2 :] == b"ab"


@given(st.binary(max_size=4097), st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF))
def test_reveal_request_round_trip(payload, dst, max_bytes):
    request = RevealRequest(payload, dst, max_bytes)
    assert RevealRequest.decode(request.encode()) == request


def test_reveal_request_decode_errors():
    for bad in (b"", b"\x01" + bytes(8), b"\x00" + bytes(7), b"\x00" + bytes(8) + bytes(4098)):
        with pytest.raises(DecodeError):
            RevealRequest.decode(bad)


# --- through the machine -------------------------------------------------------------------------

KERNEL = """
(module
  (import "smart_rollup_core" "store_write"
    (func $store_write (param i32 i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_read"
    (func $store_read (param i32 i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "reveal_metadata"
    (func $reveal_metadata (param i32 i32) (result i32)))
  (import "smart_rollup_core" "write_output"
    (func $write_output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "/counter")
  (data (i32.const 16) "hello, durable")
  (global $results (export "results") (mut i64) (i64.const 0))
  (func (export "kernel_run")
    (local $r i32)
    ;; write 14 bytes at /counter, read 5 of them back from offset 7 into 0x100
    (drop (call $store_write (i32.const 0) (i32.const 8) (i32.const 0)
                             (i32.const 16) (i32.const 14)))
    (local.set $r (call $store_read (i32.const 0) (i32.const 8) (i32.const 7)
                                    (i32.const 0x100) (i32.const 5)))
    ;; reveal the metadata to 0x200, then output it
    (local.set $r (i32.add (local.get $r)
                           (call $reveal_metadata (i32.const 0x200) (i32.const 64))))
    (drop (call $write_output (i32.const 0x200) (i32.const 24)))
    (global.set $results (i64.extend_i32_u (local.get $r)))))
"""


def test_a_kernel_through_the_machine():
    env = Env()
    funcs = host_functions(env, "2.0.0")
    module = decode_module(wasmtime.wat2wasm(KERNEL), forbid_floats=True)
    machine = Machine()
    instance = machine.instantiate(
        module, {("smart_rollup_core", imp.name): funcs[imp.name] for imp in module.imports}
    )
    machine.start(instance.exports["kernel_run"], [])
    assert machine.run(10_000) is RunStatus.SUSPENDED
    pending = machine.pending
    assert isinstance(pending, RevealRequest) and pending.request == b"\x01"
    memory = instance.mems[0].data
    metadata = bytes(range(20)) + (1234).to_bytes(4, "big")
    machine.answer([answer_reveal(memory, pending, metadata)])
    assert machine.run(10_000) is RunStatus.DONE
    assert env.durable.read_all("/counter") == b"hello, durable"
    assert memory[0x100:0x105] == b"durab"
    assert instance.exports["results"].value == 5 + 24
    assert env.outbox == [metadata]
