"""The binary encoder is the decoder's inverse: every module of the spec suite and the Tezos
kernels round-trips, every immediate shape and segment form is written the way the decoder
reads it, and wasmtime accepts what comes out."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

from soru.wasm.binary import decode_module
from soru.wasm.encode import _IMM_WRITERS, encode_instructions, encode_module
from soru.wasm.errors import DecodeError
from soru.wasm.opcodes import BY_NAME, Imm
from soru.wasm.syntax import (
    BrTable,
    CustomSection,
    Data,
    Elem,
    Export,
    ExternKind,
    Func,
    FuncType,
    Global,
    GlobalType,
    Import,
    Instr,
    Limits,
    MemArg,
    MemType,
    Module,
    SegmentMode,
    TableType,
    ValType,
)

TESTDATA = Path(__file__).resolve().parents[4] / "shared" / "testdata"
SPEC_MODULES = sorted((TESTDATA / "wasm-spec-json").glob("*/*.wasm"))
KERNELS = sorted((TESTDATA / "kernels").glob("*.wasm"))

I32, I64, F32, F64 = ValType.I32, ValType.I64, ValType.F32, ValType.F64
FUNCREF, EXTERNREF = ValType.FUNCREF, ValType.EXTERNREF


def op(name: str, imm: object = None) -> Instr:
    return Instr(BY_NAME[name].op, imm)


def roundtrip(module: Module) -> bytes:
    data = encode_module(module)
    assert decode_module(data) == module
    return data


def test_testdata_is_present():
    assert len(SPEC_MODULES) > 2000
    assert len(KERNELS) >= 2


def test_every_decodable_spec_module_roundtrips():
    decoded = 0
    for path in SPEC_MODULES:
        try:
            module = decode_module(path.read_bytes())
        except DecodeError:
            continue  # the suite's malformed modules
        decoded += 1
        assert decode_module(encode_module(module)) == module, path.name
    assert decoded > 2500


@pytest.mark.parametrize("path", KERNELS, ids=lambda p: p.name)
def test_kernels_roundtrip_byte_for_byte(path: Path):
    """The kernels use canonical encodings throughout, so even the bytes come back."""
    data = path.read_bytes()
    module = decode_module(data, forbid_floats=True)
    assert roundtrip(module) == data


def test_every_immediate_shape_has_a_writer():
    assert set(_IMM_WRITERS) == set(Imm)


def test_instructions_with_every_immediate_shape():
    body = (
        op("block", None), op("block", I64), op("loop", 0), op("if", 0), op("else"), op("end"),
        op("end"), op("end"), op("end"),
        op("br", 0), op("br_if", 1), op("br_table", BrTable((0, 1, 0), 1)), op("return"),
        op("call", 0), op("call_indirect", (0, 1)),
        op("ref.null", EXTERNREF), op("ref.is_null"), op("ref.func", 0),
        op("drop"), op("select"), op("select_t", (I64,)), op("select_t", ()),
        op("local.get", 300), op("local.set", 0), op("local.tee", 1),
        op("global.get", 2), op("global.set", 0),
        op("table.get", 1), op("table.set", 0), op("table.init", (3, 1)), op("elem.drop", 2),
        op("table.copy", (1, 0)), op("table.grow", 0), op("table.size", 1), op("table.fill", 0),
        op("i32.load", MemArg(2, 0)), op("i64.store32", MemArg(2, 0xFFFF_FFFF)),
        op("memory.size", 0), op("memory.grow", 0), op("memory.init", (1, 0)),
        op("data.drop", 1), op("memory.copy", (0, 0)), op("memory.fill", 0),
        op("i32.const", 0), op("i32.const", 0x7FFF_FFFF), op("i32.const", 0x8000_0000),
        op("i32.const", 0xFFFF_FFFF), op("i32.const", 64), op("i32.const", 0xFFFF_FFBF),
        op("i64.const", 0), op("i64.const", 1 << 63), op("i64.const", (1 << 64) - 1),
        op("i64.const", (1 << 63) - 1),
        op("f32.const", 0x7FC0_0001), op("f64.const", 0xFFF0_0000_0000_0000),
        op("i32.trunc_sat_f32_s"), op("i64.trunc_sat_f64_u"), op("i32.add"), op("nop"),
        op("unreachable"),
        op("end"),
    )  # fmt: skip
    module = Module(
        types=(FuncType((), ()), FuncType((I32,), (I64, I64))),
        funcs=(Func(0, (I32, I32, I64, *[F32] * 298), body),),
        datas=(Data(b"", SegmentMode.PASSIVE), Data(b"x", SegmentMode.PASSIVE)),
        data_count=2,
    )
    roundtrip(module)


def test_signed_leb128_of_integer_constants():
    """i32.const holds an unsigned pattern and is written as a signed LEB128."""
    assert encode_instructions([op("i32.const", 0xFFFF_FFFF)]) == b"\x41\x7f"
    assert encode_instructions([op("i32.const", 64)]) == b"\x41\xc0\x00"
    assert encode_instructions([op("i64.const", 1 << 63)]) == b"\x42" + b"\x80" * 9 + b"\x7f"
    assert encode_instructions([op("memory.fill", 0)]) == b"\xfc\x0b\x00"


def test_all_sections_and_segment_forms():
    f0 = (op("ref.func", 0),)
    null = (op("ref.null", FUNCREF),)
    module = Module(
        types=(FuncType((), ()), FuncType((I32, I64), (F64,))),
        imports=(
            Import("env", "f", ExternKind.FUNC, 1),
            Import("env", "t", ExternKind.TABLE, TableType(Limits(1, None), EXTERNREF)),
            Import("env", "m", ExternKind.MEMORY, MemType(Limits(1, 2))),
            Import("env", "g", ExternKind.GLOBAL, GlobalType(I32, False)),
            Import("ünï", "cödé", ExternKind.GLOBAL, GlobalType(I64, True)),
        ),
        funcs=(Func(0, (I32, I32, I64, I32), (op("nop"), op("end"))),),
        tables=(TableType(Limits(3, 10), FUNCREF), TableType(Limits(0, 0), EXTERNREF)),
        globals=(
            Global(GlobalType(I32, True), (op("global.get", 0),)),
            Global(GlobalType(FUNCREF, False), (op("ref.func", 1),)),
        ),
        exports=(Export("run", ExternKind.FUNC, 1), Export("", ExternKind.TABLE, 0)),
        start=1,
        elems=(
            Elem(FUNCREF, (f0, f0), SegmentMode.ACTIVE, 0, (op("i32.const", 0),)),  # flags 0
            Elem(FUNCREF, (f0,), SegmentMode.PASSIVE),  # 1
            Elem(FUNCREF, (f0,), SegmentMode.ACTIVE, 1, (op("global.get", 0),)),  # 2
            Elem(FUNCREF, (f0,), SegmentMode.DECLARATIVE),  # 3
            Elem(FUNCREF, (null,), SegmentMode.ACTIVE, 0, (op("i32.const", 1),)),  # 4
            Elem(EXTERNREF, ((op("ref.null", EXTERNREF),),), SegmentMode.PASSIVE),  # 5
            Elem(EXTERNREF, (), SegmentMode.ACTIVE, 0, (op("i32.const", 0),)),  # 6, table 0
            Elem(FUNCREF, (f0, null), SegmentMode.DECLARATIVE),  # 7
        ),
        datas=(
            Data(b"abc", SegmentMode.ACTIVE, 0, (op("i32.const", 8),)),
            Data(b"", SegmentMode.PASSIVE),
            Data(bytes(range(256)), SegmentMode.ACTIVE, 3, (op("global.get", 0),)),
        ),
        data_count=3,
        customs=(CustomSection("name", b"\x00\x01"), CustomSection("", b"")),
    )
    data = roundtrip(module)
    assert data.endswith(b"\x00\x01\x00")  # the custom sections come last, in order


def test_empty_module_is_just_the_header():
    assert roundtrip(Module()) == b"\x00asm\x01\x00\x00\x00"


def test_wasmtime_accepts_reencoded_spec_modules():
    """A sample of valid modules, re-encoded, still compiles on another engine."""
    engine = wasmtime.Engine()
    checked = 0
    for path in SPEC_MODULES[::25]:
        data = path.read_bytes()
        try:
            wasmtime.Module.validate(engine, data)
        except wasmtime.WasmtimeError:
            continue
        try:
            module = decode_module(data)
        except DecodeError:
            continue  # beyond WebAssembly 2.0 without SIMD (wasmtime has more proposals)
        wasmtime.Module.validate(engine, encode_module(module))
        checked += 1
    assert checked > 40
