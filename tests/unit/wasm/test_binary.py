"""Unit tests of the binary Reader (LEB128) and the WebAssembly module decoder.

Modules are built by hand from small helpers below, so each test shows the exact bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soru.base.errors import DecodeError as BaseDecodeError
from soru.encoding.reader import Reader
from soru.wasm.binary import MAX_LOCALS, decode_module
from soru.wasm.errors import DecodeError, FloatsForbidden
from soru.wasm.syntax import (
    BrTable,
    Data,
    Elem,
    ExternKind,
    FuncType,
    Instr,
    Limits,
    MemArg,
    SegmentMode,
    ValType,
)

KERNELS = Path(__file__).resolve().parents[3] / ".." / "shared" / "testdata" / "kernels"

I32, I64, F32, F64 = 0x7F, 0x7E, 0x7D, 0x7C
END, DROP = 0x0B, 0x1A

# --- byte builders ----------------------------------------------------------------------------


def uleb(value: int, pad_to: int = 0) -> bytes:
    """Unsigned LEB128, optionally padded with 0x80 continuation bytes to ``pad_to`` bytes."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | 0x80)
        if value == 0:
            break
    while len(out) < pad_to:
        out.append(0x80)
    out[-1] &= 0x7F
    return bytes(out)


def sleb(value: int) -> bytes:
    """Signed LEB128, shortest form."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def vec(items: list[bytes]) -> bytes:
    return uleb(len(items)) + b"".join(items)


def blob(raw: bytes) -> bytes:
    """A length-prefixed byte string."""
    return uleb(len(raw)) + raw


def name(text: str) -> bytes:
    return blob(text.encode())


def section(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + uleb(len(payload)) + payload


def module(*sections: bytes) -> bytes:
    return b"\x00asm\x01\x00\x00\x00" + b"".join(sections)


def functype(params: bytes = b"", results: bytes = b"") -> bytes:
    return b"\x60" + vec([bytes([t]) for t in params]) + vec([bytes([t]) for t in results])


def body(code: bytes, local_groups: list[tuple[int, int]] = ()) -> bytes:
    """A code entry: size, run-length locals, instructions (which must end with END)."""
    payload = vec([uleb(n) + bytes([t]) for n, t in local_groups]) + code
    return uleb(len(payload)) + payload


def one_func(code: bytes, *, params: bytes = b"", results: bytes = b"", locals_=()) -> bytes:
    """A module with one function of the given type and body, plus a memory."""
    return module(
        section(1, vec([functype(params, results)])),
        section(3, vec([b"\x00"])),
        section(5, vec([b"\x00\x01"])),
        section(10, vec([body(code, list(locals_))])),
    )


def decode_body(code: bytes, **kwargs) -> tuple[Instr, ...]:
    return decode_module(one_func(code, **kwargs)).funcs[0].body


# --- Reader: LEB128 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "bits", "value"),
    [
        (b"\x00", 32, 0),
        (b"\x7f", 32, 127),
        (b"\x80\x01", 32, 128),
        (b"\x80\x80\x80\x80\x00", 32, 0),  # padded to the maximum width
        (b"\xff\xff\xff\xff\x0f", 32, 2**32 - 1),
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 64, 2**64 - 1),
        (b"\x01", 1, 1),
        (b"\xff\x01", 8, 255),
    ],
)
def test_uleb_accepts(raw: bytes, bits: int, value: int) -> None:
    r = Reader(raw)
    assert r.uleb(bits) == value
    assert r.at_end()


@pytest.mark.parametrize(
    ("raw", "bits", "message"),
    [
        (b"\xff\xff\xff\xff\x1f", 32, "integer too large"),  # bit 32 set
        (b"\x82\x80\x80\x80\x70", 32, "integer too large"),
        (b"\x80\x80\x80\x80\x80\x00", 32, "integer representation too long"),
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 64, "integer too large"),
        (b"\x02", 1, "integer too large"),
        (b"\x81\x00", 1, "integer representation too long"),
        (b"\x80", 32, "unexpected end"),
        (b"", 32, "unexpected end"),
    ],
)
def test_uleb_rejects(raw: bytes, bits: int, message: str) -> None:
    with pytest.raises(BaseDecodeError, match=message):
        Reader(raw).uleb(bits)


@pytest.mark.parametrize(
    ("raw", "bits", "value"),
    [
        (b"\x7f", 32, -1),
        (b"\x40", 32, -64),
        (b"\x3f", 32, 63),
        (b"\xff\xff\xff\xff\x07", 32, 2**31 - 1),
        (b"\x80\x80\x80\x80\x78", 32, -(2**31)),
        (b"\xff\xff\xff\xff\x7f", 32, -1),  # padded -1, proper sign extension
        (b"\xff\xff\xff\xff\x0f", 33, 2**32 - 1),
        (b"\x80\x80\x80\x80\x70", 33, -(2**32)),
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00", 64, 2**63 - 1),
        (b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x7f", 64, -(2**63)),
    ],
)
def test_sleb_accepts(raw: bytes, bits: int, value: int) -> None:
    r = Reader(raw)
    assert r.sleb(bits) == value
    assert r.at_end()


@pytest.mark.parametrize(
    ("raw", "bits", "message"),
    [
        (b"\xff\xff\xff\xff\x0f", 32, "integer too large"),  # 2**32 - 1 is not an s32
        (b"\x80\x80\x80\x80\x70", 32, "integer too large"),  # sign bits disagree
        (b"\xff\xff\xff\xff\x4f", 32, "integer too large"),
        (b"\x80\x80\x80\x80\x1f", 32, "integer too large"),
        (b"\xff\xff\xff\xff\xff\x7f", 32, "integer representation too long"),
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 64, "integer too large"),
        (b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x7e", 64, "integer too large"),
        (b"\xff", 64, "unexpected end"),
    ],
)
def test_sleb_rejects(raw: bytes, bits: int, message: str) -> None:
    with pytest.raises(BaseDecodeError, match=message):
        Reader(raw).sleb(bits)


@given(st.integers(0, 2**32 - 1), st.integers(0, 5))
def test_u32_round_trips_with_padding(value: int, pad: int) -> None:
    raw = uleb(value, pad_to=pad)
    r = Reader(raw)
    assert r.u32() == value
    assert r.at_end()


@given(st.integers(-(2**63), 2**63 - 1))
def test_s64_round_trips(value: int) -> None:
    r = Reader(sleb(value))
    assert r.s64() == value
    assert r.at_end()


@given(st.integers(-(2**31), 2**31 - 1))
def test_s32_round_trips(value: int) -> None:
    assert Reader(sleb(value)).s32() == value


def test_reader_errors_carry_offset_and_custom_class() -> None:
    class MyError(BaseDecodeError):
        pass

    r = Reader(b"\x00\x01\xff", error=MyError)
    r.u8()
    r.u8()
    with pytest.raises(MyError) as caught:
        r.u32()
    assert caught.value.offset == 3  # where the missing byte would be


def test_reader_window_and_lengths() -> None:
    r = Reader(b"\x03abcdef")
    inner = r.window(r.u8())
    assert inner.read(3) == b"abc" and inner.at_end()
    assert r.pos == 4 and r.rest() == b"def"
    with pytest.raises(BaseDecodeError, match="unexpected end"):
        inner.u8()
    with pytest.raises(BaseDecodeError, match="length out of bounds"):
        Reader(b"\x05ab").byte_vec()
    with pytest.raises(BaseDecodeError, match="length out of bounds"):
        Reader(b"\xff\xff\xff\xff\x0f").length()  # never allocates 4 G items
    assert Reader(b"\x00\x00\x80\x3f").uint_le(4) == 0x3F800000


# --- modules ----------------------------------------------------------------------------------


def test_empty_module() -> None:
    decoded = decode_module(module())
    assert decoded.types == () and decoded.funcs == () and decoded.start is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "unexpected end"),
        (b"\x00as", "unexpected end"),
        (b"\x01asm\x01\x00\x00\x00", "magic header not detected"),
        (b"\x00asm\x01\x00", "unexpected end"),
        (b"\x00asm\x02\x00\x00\x00", "unknown binary version"),
    ],
)
def test_header(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_module(data)


def test_function_body_is_flat_and_keeps_its_end() -> None:
    code = bytes([0x20, 0x00, 0x41]) + sleb(-1) + bytes([0x6A, END])
    decoded = decode_module(one_func(code, params=bytes([I32]), results=bytes([I32])))
    assert decoded.types == (FuncType((ValType.I32,), (ValType.I32,)),)
    assert decoded.funcs[0].type_index == 0
    assert decoded.funcs[0].body == (
        Instr(0x20, 0),
        Instr(0x41, 0xFFFF_FFFF),  # i32.const -1 as its unsigned bit pattern
        Instr(0x6A),
        Instr(END),
    )


def test_constants_are_bit_patterns() -> None:
    code = (
        bytes([0x42]) + sleb(-2) + bytes([DROP])
        + bytes([0x43]) + bytes.fromhex("0000803f") + bytes([DROP])  # f32 1.0
        + bytes([0x44]) + bytes.fromhex("000000000000f0bf") + bytes([DROP, END])  # f64 -1.0
    )  # fmt: skip
    instrs = decode_body(code)
    assert instrs[0] == Instr(0x42, 2**64 - 2)
    assert instrs[2] == Instr(0x43, 0x3F80_0000)
    assert instrs[4] == Instr(0x44, 0xBFF0_0000_0000_0000)


def test_locals_are_expanded() -> None:
    decoded = decode_module(one_func(bytes([END]), locals_=[(2, I32), (0, I64), (1, I64)]))
    assert decoded.funcs[0].locals == (ValType.I32, ValType.I32, ValType.I64)


def test_too_many_locals() -> None:
    over_format = [(2**32 - 1, I32), (2, I64)]
    with pytest.raises(DecodeError, match="too many locals"):
        decode_module(one_func(bytes([END]), locals_=over_format))
    with pytest.raises(DecodeError, match="too many locals"):
        decode_module(one_func(bytes([END]), locals_=[(MAX_LOCALS + 1, I32)]))
    decoded = decode_module(one_func(bytes([END]), locals_=[(MAX_LOCALS, I32)]))
    assert len(decoded.funcs[0].locals) == MAX_LOCALS


def test_block_types() -> None:
    code = bytes([0x02, 0x40, END, 0x03, I32, END, 0x02]) + uleb(0) + bytes([END, END])
    instrs = decode_body(code)
    assert [i.imm for i in instrs if i.op in (0x02, 0x03)] == [None, ValType.I32, 0]
    with pytest.raises(DecodeError, match="malformed block type"):
        decode_body(bytes([0x02, 0xFF, 0x7F, END, END]))  # a two-byte negative s33
    with pytest.raises(DecodeError, match="malformed value type"):
        decode_body(bytes([0x02, 0x60, END, END]))


def test_structured_instructions_balance() -> None:
    code = bytes([0x41, 0x01, 0x04, 0x40, 0x01, 0x05, 0x01, END, END])
    assert [i.op for i in decode_body(code)] == [0x41, 0x04, 0x01, 0x05, 0x01, END, END]
    bad = [
        (bytes([0x02, 0x40, 0x05, END, END]), "else without a matching if"),
        (bytes([0x41, 0, 0x04, 0x40, 0x05, 0x05, END, END]), "else without a matching if"),
        (bytes([0x05, END]), "else without a matching if"),
        (bytes([0x02, 0x40, END]), "unexpected end of section or function"),
        (bytes([END, 0x01]), "section size mismatch"),  # bytes after the final end
    ]
    for code, message in bad:
        with pytest.raises(DecodeError, match=message):
            decode_body(code)


def test_immediates() -> None:
    code = (
        bytes([0x41, 0x00, 0x28, 0x02, 0x10, DROP])  # i32.load align=2 offset=16
        + bytes([0x0E, 0x02, 0x00, 0x01, 0x00])  # br_table [0 1] 0
        + bytes([0x3F, 0x00, DROP])  # memory.size
        + bytes([0xD0, 0x6F, DROP])  # ref.null extern
        + bytes([0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0x1C, 0x01, I32, DROP])  # select (i32)
        + bytes([0xFC, 0x0E, 0x01, 0x02])  # table.copy 1 2
        + bytes([0xFC, 0x0C, 0x03, 0x00])  # table.init elem 3, table 0
        + bytes([0x11, 0x05, 0x00])  # call_indirect type 5, table 0
        + bytes([END])
    )
    imms = [i.imm for i in decode_body(code) if i.imm is not None]
    assert imms == [
        0, MemArg(2, 16), BrTable((0, 1), 0), 0, ValType.EXTERNREF, 0, 0, 0,
        (ValType.I32,), (1, 2), (3, 0), (5, 0),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (bytes([0x3F, 0x01, DROP, END]), "zero byte expected"),
        (bytes([0x3F, 0x80, 0x00, DROP, END]), "zero byte expected"),
        (bytes([0x41, 0x00, 0x28, 0x20, 0x00, DROP, END]), "malformed memop flags"),
        (bytes([0xD0, 0x7F, DROP, END]), "malformed reference type"),
        (bytes([0x06, END]), "illegal opcode"),
        (bytes([0xFC, 0x20, END]), "illegal opcode"),
        (bytes([0xFD, 0x0C, END]), "SIMD is not supported"),
        (bytes([0xFC, 0x09, 0x00, END]), "data count section required"),
    ],
)
def test_malformed_code(code: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message) as caught:
        decode_body(code)
    assert caught.value.section == "code"


def test_error_names_section_and_offset() -> None:
    data = module(section(1, vec([b"\x61"])))
    with pytest.raises(DecodeError) as caught:
        decode_module(data)
    assert caught.value.section == "type"
    assert caught.value.offset == 11  # the bad form byte
    assert "type section" in str(caught.value)


def test_imports_exports_globals_start() -> None:
    imports = [
        name("env") + name("f") + b"\x00\x00",
        name("env") + name("t") + b"\x01\x70\x01\x01\x02",
        name("env") + name("m") + b"\x02\x00\x03",
        name("env") + name("g") + b"\x03\x7e\x01",
    ]
    data = module(
        section(1, vec([functype()])),
        section(2, vec(imports)),
        section(3, vec([b"\x00"])),
        section(6, vec([b"\x7f\x00\x41\x2a\x0b"])),
        section(7, vec([name("run") + b"\x00\x01", name("g2") + b"\x03\x01"])),
        section(8, b"\x01"),
        section(10, vec([body(bytes([END]))])),
    )
    decoded = decode_module(data)
    assert [i.kind for i in decoded.imports] == list(ExternKind)
    assert decoded.imports[1].desc.limits == Limits(1, 2)
    assert decoded.imports[2].desc.limits == Limits(3)
    assert decoded.imports[3].desc.mutable
    assert decoded.globals[0].init == (Instr(0x41, 42),)  # without its final end
    assert [(e.name, e.kind, e.index) for e in decoded.exports] == [
        ("run", ExternKind.FUNC, 1),
        ("g2", ExternKind.GLOBAL, 1),
    ]
    assert decoded.start == 1


def test_all_element_segment_encodings() -> None:
    offset = b"\x41\x00\x0b"
    expr = b"\xd2\x00\x0b"
    segments = [
        b"\x00" + offset + vec([b"\x00"]),
        b"\x01\x00" + vec([b"\x00"]),
        b"\x02\x01" + offset + b"\x00" + vec([b"\x00"]),
        b"\x03\x00" + vec([b"\x00"]),
        b"\x04" + offset + vec([expr]),
        b"\x05\x6f" + vec([b"\xd0\x6f\x0b"]),
        b"\x06\x01" + offset + b"\x70" + vec([expr]),
        b"\x07\x70" + vec([expr]),
    ]
    elems = decode_module(module(section(9, vec(segments)))).elems
    ref_func = ((Instr(0xD2, 0),),)
    const = (Instr(0x41, 0),)
    funcref, active = ValType.FUNCREF, SegmentMode.ACTIVE
    assert elems == (
        Elem(funcref, ref_func, active, 0, const),
        Elem(funcref, ref_func, SegmentMode.PASSIVE),
        Elem(funcref, ref_func, active, 1, const),
        Elem(funcref, ref_func, SegmentMode.DECLARATIVE),
        Elem(funcref, ref_func, active, 0, const),
        Elem(ValType.EXTERNREF, ((Instr(0xD0, ValType.EXTERNREF),),), SegmentMode.PASSIVE),
        Elem(funcref, ref_func, active, 1, const),
        Elem(funcref, ref_func, SegmentMode.DECLARATIVE),
    )
    with pytest.raises(DecodeError, match="malformed elements segment kind"):
        decode_module(module(section(9, vec([b"\x08"]))))


def test_all_data_segment_encodings() -> None:
    segments = [
        b"\x00\x41\x01\x0b" + blob(b"a"),
        b"\x01" + blob(b"bc"),
        b"\x02\x00\x41\x02\x0b\x00",
    ]
    data = module(section(5, vec([b"\x00\x01"])), section(12, b"\x03"), section(11, vec(segments)))
    decoded = decode_module(data)
    assert decoded.data_count == 3
    assert decoded.datas == (
        Data(b"a", SegmentMode.ACTIVE, 0, (Instr(0x41, 1),)),
        Data(b"bc", SegmentMode.PASSIVE),
        Data(b"", SegmentMode.ACTIVE, 0, (Instr(0x41, 2),)),
    )
    mismatch = module(section(12, b"\x01"))
    with pytest.raises(DecodeError, match="data count and data section"):
        decode_module(mismatch)


def test_data_count_allows_data_drop() -> None:
    data = module(
        section(1, vec([functype()])),
        section(3, vec([b"\x00"])),
        section(12, b"\x01"),
        section(10, vec([body(bytes([0xFC, 0x09, 0x00, END]))])),
        section(11, vec([b"\x01" + blob(b"x")])),
    )
    assert decode_module(data).funcs[0].body[0] == Instr(0xFC09, 0)


def test_custom_sections_anywhere_with_utf8_names() -> None:
    data = module(
        section(0, name("first") + b"\x01\x02"),
        section(1, vec([])),
        section(0, name("naïve ✓") + b""),
    )
    decoded = decode_module(data)
    assert [(c.name, c.data) for c in decoded.customs] == [("first", b"\x01\x02"), ("naïve ✓", b"")]
    for bad_name in (b"\x01\xff", b"\x03\xed\xa0\x80", b"\x02\xc0\x80"):  # bad, surrogate, overlong
        with pytest.raises(DecodeError, match="malformed UTF-8 encoding"):
            decode_module(module(section(0, bad_name)))


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ([section(1, vec([])), section(1, vec([]))], "unexpected content after last section"),
        ([section(3, vec([])), section(1, vec([]))], "unexpected content after last section"),
        ([section(10, vec([])), section(12, b"\x00")], "unexpected content after last section"),
        ([section(13, b"")], "malformed section id"),
        ([section(1, vec([functype()]) + b"\x00")], "section size mismatch"),
        ([b"\x01\x09" + vec([functype()])], "length out of bounds"),
        ([section(3, vec([b"\x00"]))], "function and code section have inconsistent lengths"),
        ([section(10, vec([body(bytes([END]))]))], "function and code section"),
        ([section(2, vec([name("a") + name("b") + b"\x04\x00"]))], "malformed import kind"),
        ([section(7, vec([name("a") + b"\x04\x00"]))], "malformed export kind"),
        ([section(6, vec([b"\x7f\x02\x41\x00\x0b"]))], "malformed mutability"),
        ([section(5, vec([b"\x02\x00"]))], "malformed limits flags"),
        ([section(1, vec([functype(bytes([0x7B]))]))], "SIMD is not supported"),
        ([section(11, vec([b"\x03"]))], "malformed data segment kind"),
    ],
)
def test_malformed_modules(sections: list[bytes], message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_module(module(*sections))


def test_huge_declared_lengths_are_refused_before_allocating() -> None:
    for section_id in (1, 2, 3, 4, 5, 6, 7, 9, 10, 11):
        with pytest.raises(DecodeError, match="length out of bounds"):
            decode_module(module(section(section_id, uleb(2**32 - 1))))
    br_table = bytes([0x0E]) + uleb(2**32 - 1) + bytes([END])
    with pytest.raises(DecodeError, match="length out of bounds"):
        decode_body(br_table)


def test_deep_nesting_does_not_recurse() -> None:
    depth = 20_000
    code = bytes([0x02, 0x40]) * depth + bytes([END]) * (depth + 1)
    assert len(decode_body(code)) == 2 * depth + 1


# --- floats -----------------------------------------------------------------------------------

FLOAT_MODULES = {
    "type": one_func(bytes([END]), params=bytes([F32])),
    "result": one_func(bytes([0x43, 0, 0, 0, 0, END]), results=bytes([F32])),
    "local": one_func(bytes([END]), locals_=[(1, F64)]),
    "instruction": one_func(bytes([0x41, 0x00, 0xBE, DROP, END])),  # f32.reinterpret_i32
    "const": one_func(bytes([0x44]) + bytes(8) + bytes([DROP, END])),
    "saturating": one_func(bytes([0x41, 0x00, 0xFC, 0x00, DROP, END])),  # i32.trunc_sat_f32_s
    "select": one_func(bytes([0x41, 0, 0x41, 0, 0x41, 0, 0x1C, 0x01, F32, DROP, END])),
    "block": one_func(bytes([0x02, F64, 0x44]) + bytes(8) + bytes([END, DROP, END])),
    "global": module(section(6, vec([bytes([F32, 0x00, 0x43, 0, 0, 0, 0, END])]))),
    "import": module(section(2, vec([name("m") + name("g") + bytes([0x03, F64, 0x00])]))),
}


@pytest.mark.parametrize("where", sorted(FLOAT_MODULES))
def test_floats_forbidden(where: str) -> None:
    data = FLOAT_MODULES[where]
    decode_module(data)  # well-formed
    with pytest.raises(FloatsForbidden, match="floats are forbidden") as caught:
        decode_module(data, forbid_floats=True)
    assert isinstance(caught.value, DecodeError)
    assert caught.value.offset is not None


def test_integer_module_passes_the_float_ban() -> None:
    code = bytes([0x41, 0x01, 0x41, 0x02, 0x6A, DROP, END])
    decode_module(one_func(code, params=bytes([I64])), forbid_floats=True)


# --- kernels and speed ------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["echo.wasm", "debug_kernel.wasm"])
def test_kernels_decode_without_floats(kernel: str) -> None:
    path = KERNELS / kernel
    if not path.is_file():
        pytest.skip(f"kernel not found at {path}")
    decoded = decode_module(path.read_bytes(), forbid_floats=True)
    assert "kernel_run" in {e.name for e in decoded.exports}
    assert all(i.module == "smart_rollup_core" for i in decoded.imports)


def test_large_module_decodes_quickly() -> None:
    """About 400 KB of typical integer code decodes well under a second."""
    code = (
        bytes([0x20, 0x00, 0x41]) + sleb(-12345) + bytes([0x6A, 0x21, 0x01])  # local.set 1 (+)
        + bytes([0x20, 0x01, 0x28, 0x02, 0x08, 0x36, 0x02, 0x10])  # store (load 8) at 16
        + bytes([0x02, 0x40, 0x20, 0x01, 0x45, 0x0D, 0x00, 0x20, 0x00, 0x10, 0x00, DROP, END])
        + bytes([0x42]) + sleb(2**40 + 7) + bytes([0x1A])
    ) * 40 + bytes([0x20, 0x00, END])  # fmt: skip
    count = 400_000 // len(code)
    data = module(
        section(1, vec([functype(bytes([I32, I32]), bytes([I32]))])),
        section(3, vec([b"\x00"] * count)),
        section(5, vec([b"\x00\x01"])),
        section(10, vec([body(code, [(1, I64)])] * count)),
    )
    assert len(data) > 390_000
    decoded = decode_module(data, forbid_floats=True)
    assert len(decoded.funcs) == count
