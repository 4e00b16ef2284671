"""Hand-written cases of the small-step machine (``soru.wasm.exec.machine``).

Each case builds its module as records (no decoder involved), so that a failure points at
the machine: branches carrying values out of nested blocks, multi-value blocks and loops
with parameters, ``br_table``, the traps of ``call_indirect``, chunked ``memory.copy`` and
``memory.fill`` (ticks and intermediate states), host functions, and a host call that
takes several ticks (:class:`HostContinuation`).
"""

from __future__ import annotations

import pytest

from soru.wasm import opcodes
from soru.wasm.errors import Trap
from soru.wasm.exec import ticks
from soru.wasm.exec.machine import Machine, RunStatus
from soru.wasm.runtime import HostContinuation, HostFunc
from soru.wasm.syntax import (
    BrTable,
    Data,
    Elem,
    Export,
    ExternKind,
    Func,
    FuncType,
    Import,
    Instr,
    Limits,
    MemType,
    Module,
    SegmentMode,
    TableType,
    ValType,
)
from soru.wasm.validate import validate_module

I32, I64 = ValType.I32, ValType.I64
CHUNK = ticks.MEMORY_CHUNK_BYTES
PAGE = 65536


def op(name: str, imm: object = None) -> Instr:
    return Instr(opcodes.BY_NAME[name].op, imm)


def ops(text: str) -> list[Instr]:
    """Instructions from ``"i32.const 1; local.get 0; i32.add"`` (integer immediates only)."""
    code = []
    for item in text.split(";"):
        name, *imm = item.split()
        code.append(op(name, int(imm[0], 0) if imm else None))
    return code


def module(
    *funcs: tuple[FuncType, tuple[ValType, ...], list[Instr]],
    types: tuple[FuncType, ...] = (),
    imports: tuple[tuple[str, FuncType], ...] = (),
    pages: int | None = None,
    table: list[int | None] | None = None,
    data: bytes = b"",
) -> Module:
    """A module of ``funcs`` (type, declared locals, body without its final ``end``), each
    exported as ``f0``, ``f1``…; ``types`` come first in the type section (for block and
    ``call_indirect`` type indices), then the functions' and imports' types."""
    all_types = list(types)

    def index(ft: FuncType) -> int:
        if ft not in all_types:
            all_types.append(ft)
        return all_types.index(ft)

    imps = tuple(Import("env", name, ExternKind.FUNC, index(ft)) for name, ft in imports)
    defined = tuple(Func(index(ft), locals_, (*body, op("end"))) for ft, locals_, body in funcs)
    elems: tuple[Elem, ...] = ()
    tables: tuple[TableType, ...] = ()
    if table is not None:
        tables = (TableType(Limits(len(table), len(table)), ValType.FUNCREF),)
        init = tuple(
            (op("ref.null", ValType.FUNCREF),) if f is None else (op("ref.func", f),) for f in table
        )
        elems = (Elem(ValType.FUNCREF, init, SegmentMode.ACTIVE, 0, (op("i32.const", 0),)),)
    return Module(
        types=tuple(all_types),
        imports=imps,
        funcs=defined,
        tables=tables,
        mems=(MemType(Limits(pages)),) if pages is not None else (),
        exports=tuple(Export(f"f{i}", ExternKind.FUNC, len(imps) + i) for i in range(len(defined))),
        elems=elems,
        datas=(Data(data, SegmentMode.ACTIVE, 0, (op("i32.const", 0),)),) if data else (),
    )


def instantiate(mod: Module, imports: dict | None = None):
    validate_module(mod)  # the machine runs validated modules only
    machine = Machine()
    return machine, machine.instantiate(mod, imports)


# --- branches and blocks ----------------------------------------------------------------------


def test_br_carries_a_value_out_of_two_blocks_and_drops_what_lies_beneath():
    body = [
        op("block", I32),
        op("i32.const", 100),  # stays beneath the inner block
        op("block", I32),
        *ops("i32.const 1; i32.const 2"),
        op("br", 1),  # out of both blocks with 2; 1 and 100 are dropped
        op("end"),
        *ops("drop; drop; i32.const 99"),
        op("end"),
        *ops("local.get 0; i32.add"),  # the parameter is still where it was
    ]
    machine, inst = instantiate(module((FuncType((I32,), (I32,)), (), body)))
    assert machine.invoke(inst.export("f0"), [40]) == [42]
    assert machine.stack == [] and machine.frames == []


@pytest.mark.parametrize(("cond", "expected"), [(1, 8), (0, 16)])
def test_br_if_with_a_value_out_of_nested_blocks(cond, expected):
    body = [
        op("block", I32),
        op("block", I32),
        *ops("i32.const 7; i32.const 8; local.get 0"),
        op("br_if", 1),  # taken: leaves the outer block with 8, dropping 7
        op("i32.add"),  # not taken: 7 + 8
        op("end"),
        *ops("i32.const 1; i32.add"),
        op("end"),
    ]
    machine, inst = instantiate(module((FuncType((I32,), (I32,)), (), body)))
    assert machine.invoke(inst.export("f0"), [cond]) == [expected]


def test_multi_value_block_takes_parameters_and_returns_several_results():
    block_type = FuncType((I32, I64), (I32, I64, I32))
    body = [*ops("i32.const 5; i64.const 6"), op("block", 0), op("i32.const", 7), op("end")]
    mod = module((FuncType((), (I32, I64, I32)), (), body), types=(block_type,))
    machine, inst = instantiate(mod)
    assert machine.invoke(inst.export("f0"), []) == [5, 6, 7]


def test_br_carries_two_values_out_of_a_multi_value_block():
    body = [
        op("block", 0),
        *ops("i32.const 1; i64.const 2; i32.const 3; i64.const 4"),
        op("br", 0),
        op("end"),
    ]
    pair = FuncType((), (I32, I64))
    machine, inst = instantiate(module((pair, (), body), types=(pair,)))
    assert machine.invoke(inst.export("f0"), []) == [3, 4]


def test_loop_with_a_parameter_branches_back_with_its_value():
    # n -> loop(param i32): n - 1, count the turn in local 1, again while non-zero
    body = [
        op("local.get", 0),
        op("loop", 0),
        *ops("i32.const 1; i32.sub; local.get 1; i32.const 1; i32.add; local.set 1"),
        *ops("local.tee 0; local.get 0"),
        op("br_if", 0),
        op("end"),
        op("local.get", 1),
        op("i32.add"),
    ]
    mod = module((FuncType((I32,), (I32,)), (I32,), body), types=(FuncType((I32,), (I32,)),))
    machine, inst = instantiate(mod)
    assert machine.invoke(inst.export("f0"), [5]) == [5]  # ends at 0, after 5 turns


@pytest.mark.parametrize(
    ("index", "expected"),
    [(0, 111), (1, 110), (2, 10), (3, 110), (0xFFFFFFFF, 110)],
)
def test_br_table_picks_its_label_or_the_default(index, expected):
    body = [
        op("block", I32),  # label 2
        op("block", I32),  # label 1
        op("block", I32),  # label 0
        *ops("i32.const 99; i32.const 10; local.get 0"),  # 99 is dropped by every branch
        op("br_table", BrTable((0, 1, 2), 1)),
        op("end"),
        *ops("i32.const 1; i32.add"),
        op("end"),
        *ops("i32.const 100; i32.add"),
        op("end"),
    ]
    machine, inst = instantiate(module((FuncType((I32,), (I32,)), (), body)))
    assert machine.invoke(inst.export("f0"), [index]) == [expected]


# --- call_indirect ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_index", "slot", "outcome"),
    [
        (0, 0, [7]),
        (1, 0, "indirect call type mismatch"),
        (0, 1, "uninitialized element"),
        (0, 2, "undefined element"),
    ],
)
def test_call_indirect_checks_the_entry_and_its_type(type_index, slot, outcome):
    seven = FuncType((), (I32,))
    other = FuncType((I32,), (I32,))
    caller = [op("i32.const", 1)] * (type_index == 1)
    caller += [op("i32.const", slot), op("call_indirect", (type_index, 0))]
    result = FuncType((), (I32,))
    mod = module(
        (seven, (), [op("i32.const", 7)]),
        (result, (), caller),
        types=(seven, other),
        table=[0, None],
    )
    machine, inst = instantiate(mod)
    if isinstance(outcome, list):
        assert machine.invoke(inst.export("f1"), []) == outcome
        return
    with pytest.raises(Trap) as info:
        machine.invoke(inst.export("f1"), [])
    assert info.value.reason == outcome
    assert machine.status is RunStatus.TRAPPED


# --- bulk memory ------------------------------------------------------------------------------

PATTERN = bytes((i * 7 + 3) & 0xFF for i in range(4 * CHUNK))
COPY = FuncType((I32, I32, I32), ())


def _bulk_module(name: str) -> Module:
    imm = (0, 0) if name == "memory.copy" else 0
    body = [*ops("local.get 0; local.get 1; local.get 2"), op(name, imm)]
    return module((COPY, (), body), pages=1, data=PATTERN)


@pytest.mark.parametrize(
    ("dst", "src"),
    [(1000, 1100), (1100, 1000), (100, 100), (9000, 100), (100, 9000), (0, 1), (1, 0)],
    ids=[
        "down-overlap",
        "up-overlap",
        "same",
        "apart-up",
        "apart-down",
        "by-one-down",
        "by-one-up",
    ],
)
def test_chunked_memory_copy_equals_a_memmove(dst, src):
    n = 2 * CHUNK + 123
    machine, inst = instantiate(_bulk_module("memory.copy"))
    expected = bytearray(inst.mems[0].data)
    expected[dst : dst + n] = expected[src : src + n]  # the right side is a copy: a memmove
    before = machine.ticks
    machine.invoke(inst.export("f0"), [dst, src, n])
    assert inst.mems[0].data == expected
    # three local.get, one tick per chunk, the return
    assert machine.ticks - before == 3 + ticks.bulk_ticks(n, CHUNK) + 1 == 3 + 3 + 1


def test_chunked_memory_copy_in_single_ticks_matches_the_straight_run():
    n = 3 * CHUNK + 5
    straight, inst_a = instantiate(_bulk_module("memory.copy"))
    straight.invoke(inst_a.export("f0"), [700, 200, n])
    stepped, inst_b = instantiate(_bulk_module("memory.copy"))
    stepped.start(inst_b.export("f0"), [700, 200, n])
    while stepped.run(ticks=1) is RunStatus.RUNNING:
        pass
    assert inst_b.mems[0].data == inst_a.mems[0].data
    assert stepped.ticks == straight.ticks


def test_memory_fill_moves_one_chunk_per_tick():
    n = 2 * CHUNK + 5
    machine, inst = instantiate(
        module(
            (COPY, (), [*ops("local.get 0; local.get 1; local.get 2"), op("memory.fill", 0)]),
            pages=1,
        )
    )
    data = inst.mems[0].data
    machine.start(inst.export("f0"), [10, 0x1AB, n])  # the value is truncated to a byte
    assert machine.run(ticks=3) is RunStatus.RUNNING  # the three operands
    filled = []
    for _ in range(3):
        assert machine.run(ticks=1) is RunStatus.RUNNING
        filled.append(data.count(0xAB))
    assert filled == [CHUNK, 2 * CHUNK, n]
    assert data[10 : 10 + n] == b"\xab" * n and data.count(0) == PAGE - n
    assert machine.run(ticks=1) is RunStatus.DONE  # the return


def test_memory_fill_out_of_bounds_traps_before_writing_anything():
    machine, inst = instantiate(
        module(
            (COPY, (), [*ops("local.get 0; local.get 1; local.get 2"), op("memory.fill", 0)]),
            pages=1,
        )
    )
    with pytest.raises(Trap) as info:
        machine.invoke(inst.export("f0"), [PAGE - CHUNK, 0xFF, 2 * CHUNK])
    assert info.value.reason == "out of bounds memory access"
    assert inst.mems[0].data == bytes(PAGE)


# --- host functions ---------------------------------------------------------------------------

PAIR_TO_I32 = FuncType((I32, I32), (I32,))


def test_host_function_gets_the_caller_instance_and_its_arguments_in_order():
    calls = []

    def sub(caller, args):
        calls.append((caller, list(args)))
        return [(args[0] - args[1]) & 0xFFFFFFFF]

    host = HostFunc(PAIR_TO_I32, sub, "sub")
    mod = module(
        (PAIR_TO_I32, (), [*ops("local.get 0; local.get 1; call 0; i32.const 1; i32.add")]),
        imports=(("sub", PAIR_TO_I32),),
    )
    machine, inst = instantiate(mod, {("env", "sub"): host})
    before = machine.ticks
    assert machine.invoke(inst.export("f0"), [10, 3]) == [8]
    assert calls == [(inst, [10, 3])]
    assert machine.ticks - before == 6  # two local.get, the call, const, add, return
    # called directly from outside, a host function has no caller
    assert machine.invoke(host, [1, 2]) == [0xFFFFFFFF]
    assert calls[-1] == (None, [1, 2])


class _ThreeTicks(HostContinuation):
    """A host call that needs three ticks: two steps of work, then the result."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.steps = 0

    def step(self):
        self.steps += 1
        return None if self.steps < 3 else [self.value * 2]


def test_host_continuation_takes_one_tick_per_step_and_resumes_anywhere():
    started: list[_ThreeTicks] = []

    def slow(caller, args):
        started.append(_ThreeTicks(args[0]))
        return started[-1]

    one = FuncType((I32,), (I32,))
    host = HostFunc(one, slow, "slow")
    body = [*ops("local.get 0; call 0; i32.const 1; i32.add")]
    machine, inst = instantiate(
        module((one, (), body), imports=(("slow", one),)), {("env", "slow"): host}
    )
    machine.start(inst.export("f0"), [20])
    assert machine.run(ticks=2) is RunStatus.RUNNING  # local.get, then the call
    cont = started[-1]
    assert machine.pending is cont and cont.steps == 0
    for expected_steps in (1, 2, 3):
        assert machine.run(ticks=1) is RunStatus.RUNNING
        assert cont.steps == expected_steps
    assert machine.pending is None and machine.stack[-1] == 40
    assert machine.run(ticks=10) is RunStatus.DONE
    assert machine.results == [41]

    # straight through: the same ticks; and as the entry itself, three ticks in all
    before = machine.ticks
    assert machine.invoke(inst.export("f0"), [20]) == [41]
    assert machine.ticks - before == 2 + 3 + 3  # local.get, call | 3 steps | const, add, return
    before = machine.ticks
    assert machine.invoke(host, [5]) == [10]
    assert machine.ticks - before == 3
