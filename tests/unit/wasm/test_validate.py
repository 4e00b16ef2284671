"""Unit tests of ``soru.wasm.validate`` on hand-built modules.

Each case builds a small :class:`Module` record directly (no decoder) and checks that the
validator accepts it, or rejects it with :class:`InvalidModule` whose message starts with the
spec's wording.
"""

from __future__ import annotations

import pytest

from soru.wasm.errors import InvalidModule
from soru.wasm.opcodes import BY_NAME, OPS
from soru.wasm.syntax import (
    BrTable,
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
from soru.wasm.validate import validate_module
from soru.wasm.validate_body import _HANDLERS, _PURE

I32, I64, F32, F64 = ValType.I32, ValType.I64, ValType.F32, ValType.F64
FUNCREF, EXTERNREF = ValType.FUNCREF, ValType.EXTERNREF


def i(name: str, imm: object = None) -> Instr:
    """An instruction by its text name."""
    return Instr(BY_NAME[name].op, imm)


def func_module(
    body: list[Instr],
    params: tuple[ValType, ...] = (),
    results: tuple[ValType, ...] = (),
    locals_: tuple[ValType, ...] = (),
    **fields: object,
) -> Module:
    """A module whose function 0 has the given type and body (the final end is added)."""
    types = (FuncType(params, results),) + tuple(fields.pop("types", ()))  # type: ignore[arg-type]
    func = Func(0, locals_, tuple(body) + (i("end"),))
    return Module(types=types, funcs=(func,), **fields)  # type: ignore[arg-type]


def assert_invalid(module: Module, reason: str) -> None:
    with pytest.raises(InvalidModule) as caught:
        validate_module(module)
    assert str(caught.value).startswith(reason), str(caught.value)


def test_every_opcode_is_handled() -> None:
    assert set(OPS) == set(_PURE) | set(_HANDLERS)
    assert not set(_PURE) & set(_HANDLERS)


def test_empty_module_is_valid() -> None:
    validate_module(Module())


def test_arithmetic_and_locals() -> None:
    body = [i("local.get", 0), i("i32.const", 1), i("i32.add"), i("local.tee", 1)]
    validate_module(func_module(body, params=(I32,), results=(I32,), locals_=(I32,)))


def test_operand_type_mismatch() -> None:
    body = [i("i64.const", 1), i("i32.const", 1), i("i32.add")]
    assert_invalid(func_module(body, results=(I32,)), "type mismatch")


def test_result_missing_and_extra() -> None:
    assert_invalid(func_module([], results=(I32,)), "type mismatch")
    assert_invalid(func_module([i("i32.const", 0)]), "type mismatch")


def test_fault_names_function_and_position() -> None:
    with pytest.raises(InvalidModule, match=r"in function 0 at instruction 2 \(i32.add\)"):
        validate_module(func_module([i("i64.const", 1), i("i32.const", 1), i("i32.add")]))


def test_unknown_local_global_function_type() -> None:
    assert_invalid(func_module([i("local.get", 1)], params=(I32,)), "unknown local")
    assert_invalid(func_module([i("global.get", 0), i("drop")]), "unknown global")
    assert_invalid(func_module([i("call", 1)]), "unknown function")
    assert_invalid(func_module([i("block", 5), i("end")]), "unknown type")
    assert_invalid(Module(funcs=(Func(0, (), (i("end"),)),)), "unknown type")


def test_unreachable_makes_stack_polymorphic() -> None:
    validate_module(func_module([i("unreachable"), i("i32.add")], results=(I32,)))
    validate_module(func_module([i("i64.const", 0), i("return"), i("select")], results=(I64,)))
    # Known values below the polymorphic base still have to match.
    body = [i("unreachable"), i("i64.const", 0), i("i32.add")]
    assert_invalid(func_module(body, results=(I32,)), "type mismatch")


def test_multi_value_blocks_with_params() -> None:
    pair = FuncType((I32, I32), (I64, I32))
    body = [
        i("i32.const", 1), i("i32.const", 2),
        i("block", 1), i("i32.add"), i("i64.extend_i32_u"), i("i32.const", 0), i("end"),
        i("drop"), i("drop"),
    ]  # fmt: skip
    validate_module(func_module(body, types=(pair,)))
    # A loop label carries the loop's parameters.
    body = [i("i32.const", 1), i("loop", 2), i("br", 0), i("end"), i("drop")]
    loop_type = FuncType((I32,), (I32,))
    validate_module(func_module(body, types=(pair, loop_type)))


def test_if_without_else_needs_equal_types() -> None:
    body = [i("i32.const", 1), i("if", I32), i("i32.const", 1), i("end"), i("drop")]
    assert_invalid(func_module(body), "type mismatch")
    body = [
        i("i32.const", 1), i("if", I32), i("i32.const", 1), i("else"), i("i32.const", 2),
        i("end"), i("drop"),
    ]  # fmt: skip
    validate_module(func_module(body))


def test_branches() -> None:
    assert_invalid(func_module([i("br", 1)]), "unknown label")
    body = [i("block", I32), i("i32.const", 0), i("i32.const", 1), i("br_if", 0), i("end")]
    validate_module(func_module(body, results=(I32,)))


def test_br_table_arity_and_unknown_stack() -> None:
    body = [
        i("block", I32), i("block", F32), i("unreachable"),
        i("br_table", BrTable((0,), 1)), i("end"), i("drop"), i("i32.const", 0), i("end"),
        i("drop"),
    ]  # fmt: skip
    # Labels [f32] and [i32] have the same arity: fine with an unknown operand.
    validate_module(func_module(body))
    body = [
        i("block", I32), i("block"), i("i32.const", 0), i("br_table", BrTable((0,), 1)),
        i("end"), i("i32.const", 0), i("end"), i("drop"),
    ]  # fmt: skip
    assert_invalid(func_module(body), "type mismatch")


def test_select() -> None:
    body = [i("i32.const", 1), i("i32.const", 2), i("i32.const", 0), i("select")]
    validate_module(func_module(body, results=(I32,)))
    body = [i("ref.null", FUNCREF), i("ref.null", FUNCREF), i("i32.const", 0), i("select")]
    assert_invalid(func_module(body, results=(FUNCREF,)), "type mismatch")
    body[-1] = i("select_t", (FUNCREF,))
    validate_module(func_module(body, results=(FUNCREF,)))
    body[-1] = i("select_t", ())
    assert_invalid(func_module(body, results=(FUNCREF,)), "invalid result arity")
    body = [i("unreachable"), i("select")]
    validate_module(func_module(body, results=(F64,)))


def test_globals_and_constant_expressions() -> None:
    imported = Import("env", "g", ExternKind.GLOBAL, GlobalType(I32, False))
    mutable = Import("env", "m", ExternKind.GLOBAL, GlobalType(I32, True))
    ok = Global(GlobalType(I32, True), (i("global.get", 0),))
    validate_module(Module(imports=(imported,), globals=(ok,)))
    assert_invalid(Module(imports=(mutable,), globals=(ok,)), "constant expression required")
    own = Global(GlobalType(I32, False), (i("i32.const", 0),))
    reads_own = Global(GlobalType(I32, False), (i("global.get", 0),))
    assert_invalid(Module(globals=(own, reads_own)), "unknown global")
    computed = Global(GlobalType(I32, False), (i("i32.const", 0), i("i32.ctz")))
    assert_invalid(Module(globals=(computed,)), "constant expression required")
    wrong = Global(GlobalType(I64, False), (i("i32.const", 0),))
    assert_invalid(Module(globals=(wrong,)), "type mismatch")
    assert_invalid(Module(globals=(Global(GlobalType(I32, False), ()),)), "type mismatch")


def test_global_set_immutable() -> None:
    glob = Global(GlobalType(I32, False), (i("i32.const", 0),))
    body = [i("i32.const", 1), i("global.set", 0)]
    assert_invalid(func_module(body, globals=(glob,)), "global is immutable")


def test_memory_rules() -> None:
    mem = (MemType(Limits(1)),)
    load = [i("i32.const", 0), i("i32.load", MemArg(2, 0)), i("drop")]
    validate_module(func_module(load, mems=mem))
    assert_invalid(func_module(load), "unknown memory")
    wide = [i("i32.const", 0), i("i32.load8_u", MemArg(1, 0)), i("drop")]
    assert_invalid(func_module(wide, mems=mem), "alignment must not be larger than natural")
    huge = [i("i32.const", 0), i("i64.load", MemArg(2**32 - 1, 0)), i("drop")]
    assert_invalid(func_module(huge, mems=mem), "alignment must not be larger than natural")
    assert_invalid(Module(mems=mem * 2), "multiple memories")
    big = "memory size must be at most 65536 pages (4GiB)"
    assert_invalid(Module(mems=(MemType(Limits(65537)),)), big)
    assert_invalid(Module(mems=(MemType(Limits(0, 65537)),)), big)
    inverted = "size minimum must not be greater than maximum"
    assert_invalid(Module(mems=(MemType(Limits(2, 1)),)), inverted)


def test_data_segments_and_data_count() -> None:
    mem = (MemType(Limits(1)),)
    passive = (Data(b"x", SegmentMode.PASSIVE),)
    body = [i("i32.const", 0)] * 3 + [i("memory.init", (0, 0)), i("data.drop", 0)]
    validate_module(func_module(body, mems=mem, datas=passive, data_count=1))
    body = [i("data.drop", 1)]
    assert_invalid(func_module(body, mems=mem, datas=passive, data_count=1), "unknown data")
    active = (Data(b"x", SegmentMode.ACTIVE, 0, (i("i32.const", 0),)),)
    assert_invalid(Module(datas=active), "unknown memory")
    bad_offset = (Data(b"x", SegmentMode.ACTIVE, 0, (i("i64.const", 0),)),)
    assert_invalid(Module(mems=mem, datas=bad_offset), "type mismatch")


def test_tables_and_elements() -> None:
    table = (TableType(Limits(1), FUNCREF),)
    seg = Elem(FUNCREF, ((i("ref.func", 0),),), SegmentMode.ACTIVE, 0, (i("i32.const", 0),))
    validate_module(func_module([], tables=table, elems=(seg,)))
    ext = Elem(EXTERNREF, (), SegmentMode.ACTIVE, 0, (i("i32.const", 0),))
    assert_invalid(func_module([], tables=table, elems=(ext,)), "type mismatch")
    assert_invalid(func_module([], elems=(seg,)), "unknown table")
    body = [i("i32.const", 0)] * 3 + [i("table.init", (1, 0))]
    assert_invalid(func_module(body, tables=table, elems=(seg,)), "unknown elem segment")
    body = [i("i32.const", 0), i("call_indirect", (0, 0))]
    assert_invalid(func_module(body), "unknown table")
    ext_table = (TableType(Limits(1), EXTERNREF),)
    assert_invalid(func_module(body, tables=ext_table), "type mismatch")
    validate_module(func_module(body, tables=table))


def test_ref_func_must_be_declared() -> None:
    body = [i("ref.func", 0), i("drop")]
    assert_invalid(func_module(body), "undeclared function reference")
    exported = (Export("f", ExternKind.FUNC, 0),)
    validate_module(func_module(body, exports=exported))
    declared = Elem(FUNCREF, ((i("ref.func", 0),),), SegmentMode.DECLARATIVE)
    validate_module(func_module(body, elems=(declared,)))
    assert_invalid(func_module(body, start=0), "undeclared function reference")


def test_exports_and_start() -> None:
    twice = (Export("a", ExternKind.FUNC, 0), Export("a", ExternKind.FUNC, 0))
    assert_invalid(func_module([], exports=twice), "duplicate export name")
    assert_invalid(func_module([], exports=(Export("t", ExternKind.TABLE, 0),)), "unknown table")
    assert_invalid(func_module([], start=1), "unknown function")
    assert_invalid(func_module([], params=(I32,), start=0), "start function")
    validate_module(func_module([], start=0))


def test_large_body_validates() -> None:
    chunk = [
        i("local.get", 0), i("i32.const", 7), i("i32.add"), i("local.set", 0),
        i("block"), i("local.get", 0), i("br_if", 0), i("end"),
        i("i32.const", 0), i("i32.load", MemArg(2, 4)), i("drop"), i("call", 0),
    ]  # fmt: skip
    module = func_module(chunk * 20_000, locals_=(I32,), mems=(MemType(Limits(1)),))
    validate_module(module)  # speed is measured in benchmarks/, never in tests
