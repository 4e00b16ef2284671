"""The instrumented module, run on wasmtime, counts exactly soru's ticks.

Every case runs one module twice: on soru's :class:`Machine`, and instrumented
(:func:`soru.wasm.instrument.instrument`) on wasmtime; results or trap, and the tick count,
must be equal — after instantiation and after each call. With a budget ``B`` below the ticks
a call needs, soru's ``run(ticks=B)`` leaves it RUNNING and wasmtime traps with
``__soru_ticks > __soru_budget``; at ``B`` equal to the ticks needed, both finish.

:class:`Twin` is the harness (the property tests use it too): host functions are written
once, for soru (:class:`HostFunc`, possibly a :class:`HostContinuation`), and wrapped for
wasmtime so that they add their extra ticks to ``__soru_ticks`` themselves.
"""

from __future__ import annotations

import json
import math
import random
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import wasmtime

from soru.base.errors import SoruError
from soru.wasm import opcodes
from soru.wasm.binary import decode_module
from soru.wasm.encode import encode_module
from soru.wasm.errors import Exhaustion
from soru.wasm.exec import lower
from soru.wasm.exec import ticks as tick_costs
from soru.wasm.exec.machine import Machine, RunStatus, Suspend
from soru.wasm.instrument import (
    BUDGET_EXPORT,
    MAX_BUDGET,
    TICKS_EXPORT,
    instrument,
    ran_out_of_ticks,
    segment_leaders,
)
from soru.wasm.runtime import MAX_PAGES, PAGE_SIZE, HostContinuation, HostFunc, WasmFunc
from soru.wasm.syntax import Export, ExternKind, FuncType, Module, SegmentMode, ValType
from soru.wasm.validate import validate_module

ROOT = Path(__file__).resolve().parents[3]
SPEC_JSON = ROOT.parent / "shared" / "testdata" / "wasm-spec-json"
COLLATZ = ROOT / "examples" / "wasm" / "collatz.wat"

I32, I64 = ValType.I32, ValType.I64
HUGE = 1 << 62

# --- the harness ------------------------------------------------------------------------------

_WT_TYPES = {
    ValType.I32: wasmtime.ValType.i32,
    ValType.I64: wasmtime.ValType.i64,
    ValType.F32: wasmtime.ValType.f32,
    ValType.F64: wasmtime.ValType.f64,
    ValType.FUNCREF: wasmtime.ValType.funcref,
    ValType.EXTERNREF: wasmtime.ValType.externref,
}

# soru's trap reasons for each wasmtime trap code
_REASONS = {
    wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS: {"out of bounds memory access"},
    wasmtime.TrapCode.TABLE_OUT_OF_BOUNDS: {"out of bounds table access", "undefined element"},
    wasmtime.TrapCode.INDIRECT_CALL_TO_NULL: {"uninitialized element"},
    wasmtime.TrapCode.BAD_SIGNATURE: {"indirect call type mismatch"},
    wasmtime.TrapCode.INTEGER_OVERFLOW: {"integer overflow"},
    wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO: {"integer divide by zero"},
    wasmtime.TrapCode.BAD_CONVERSION_TO_INTEGER: {"invalid conversion to integer"},
    wasmtime.TrapCode.UNREACHABLE: {"unreachable"},
}

DONE, TRAP, OUT_OF_TICKS, EXHAUSTION = "done", "trap", "out of ticks", "exhaustion"


@dataclass(frozen=True)
class Outcome:
    """How a call (or an instantiation) ended, and the ticks it spent (at most its cap).

    ``detail``: the results (normalised) when done; soru's trap reason, or wasmtime's trap
    code, when trapped.
    """

    kind: str
    detail: object = None
    ticks: int | None = None


def agree(soru: Outcome, fast: Outcome) -> bool:
    """Equal outcomes; exhaustion (call depth, not modelled) only needs to be an ending."""
    if EXHAUSTION in (soru.kind, fast.kind):
        return {soru.kind, fast.kind} <= {EXHAUSTION, OUT_OF_TICKS, TRAP}
    if soru.kind != fast.kind or soru.ticks != fast.ticks:
        return False
    if soru.kind == TRAP:
        return fast.detail not in _REASONS or soru.detail in _REASONS[fast.detail]
    return soru.detail == fast.detail


def _bits(t: ValType) -> int:
    return 32 if t in (ValType.I32, ValType.F32) else 64


def _signed(value: int, t: ValType) -> int:
    bits = _bits(t)
    return value - (1 << bits) if value >> (bits - 1) else value


def normalise(value: object, t: ValType) -> object:
    """A result as comparable data: ints as unsigned patterns, floats as bit patterns (any
    NaN as "nan": the specification leaves its bits open), references as "null"/"ref"."""
    if t in (ValType.I32, ValType.I64):
        return value & ((1 << _bits(t)) - 1)  # type: ignore[operator]
    if t in (ValType.F32, ValType.F64):
        if isinstance(value, float):
            if math.isnan(value):
                return "nan"
            return int.from_bytes(struct.pack("<f" if t == ValType.F32 else "<d", value), "little")
        magnitude = value & ((1 << (_bits(t) - 1)) - 1)  # type: ignore[operator]
        return "nan" if magnitude > (0x7F800000 if t == ValType.F32 else 0x7FF << 52) else value
    return "null" if value is None else "ref"


Hosts = Mapping[tuple[str, str], HostFunc]


def default_answer(continuation: HostContinuation) -> list[int]:
    """The embedder's answer to a suspended host call (the property tests' reveal)."""
    return continuation.reply  # type: ignore[attr-defined]


class _SoruSide:
    """The module on soru's machine."""

    def __init__(self, module: Module, hosts: Hosts, answer, max_memory_pages: int) -> None:
        self.machine = Machine(max_memory_pages=max_memory_pages)
        self.answer = answer
        self.instance = None
        instance, entry = self.machine.allocate(module, hosts)
        self.init = Outcome(DONE, (), 0)
        if entry is not None:
            self.machine.begin_code(entry)
            self.init = self.outcome(HUGE, ())
        if self.init.kind == DONE:
            self.instance = instance

    def drive(self, cap: int) -> tuple[RunStatus, int]:
        """Run the current call for at most ``cap`` ticks; answering a suspended host call
        is one of them."""
        machine, spent = self.machine, 0
        while True:
            before = machine.ticks
            status = machine.run(cap - spent)
            spent += machine.ticks - before
            if status is not RunStatus.SUSPENDED:
                return status, spent
            if spent == cap:
                return RunStatus.RUNNING, spent
            machine.answer(self.answer(machine.pending))
            spent += 1

    def outcome(self, cap: int, results: tuple[ValType, ...]) -> Outcome:
        status, spent = self.drive(cap)
        if status is RunStatus.RUNNING:
            return Outcome(OUT_OF_TICKS, None, spent)
        if status is RunStatus.DONE:
            values = tuple(map(normalise, self.machine.results, results))
            return Outcome(DONE, values, spent)
        trap = self.machine.trap
        if isinstance(trap, Exhaustion):
            return Outcome(EXHAUSTION, None, spent)
        return Outcome(TRAP, trap.reason, spent)  # type: ignore[union-attr]

    def call(self, name: str, args: list[int], cap: int) -> Outcome:
        assert self.instance is not None
        func = self.instance.export(name)
        assert isinstance(func, WasmFunc)
        self.machine.start(func, args)
        return self.outcome(cap, func.type.results)


class _MemoryView:
    """The byte access a soru host function makes (``caller.mems[0].data[i]``), on a
    wasmtime memory."""

    def __init__(self, memory: wasmtime.Memory, caller: wasmtime.Caller) -> None:
        self.memory, self.caller = memory, caller
        self.data = self

    def __len__(self) -> int:
        return self.memory.data_len(self.caller)

    def __getitem__(self, i: int) -> int:
        return self.memory.read(self.caller, i, i + 1)[0]

    def __setitem__(self, i: int, value: int) -> None:
        self.memory.write(self.caller, bytes((value,)), i)


class _CallerView:
    def __init__(self, caller: wasmtime.Caller) -> None:
        memory = caller.get("memory")
        self.mems = [_MemoryView(memory, caller)] if isinstance(memory, wasmtime.Memory) else []


def host_ticks(continuation: HostContinuation, answer) -> tuple[list[int], int]:
    """Run a host continuation to its end as soru's machine would, one step per tick (a
    suspension is answered, which is a tick); returns the results and the ticks."""
    ticks = 0
    while True:
        ticks += 1
        try:
            results = continuation.step()
        except Suspend:
            return list(answer(continuation)), ticks
        if results is not None:
            return list(results), ticks


def wasmtime_host(store: wasmtime.Store, host: HostFunc, answer) -> wasmtime.Func:
    """``host`` for wasmtime: its extra ticks (a continuation's steps) go to the counter."""
    params, results = host.type.params, host.type.results
    wt_type = wasmtime.FuncType([_WT_TYPES[t]() for t in params], [_WT_TYPES[t]() for t in results])

    def call(caller: wasmtime.Caller, *args):
        unsigned = [a & ((1 << _bits(t)) - 1) for a, t in zip(args, params, strict=True)]
        values = host.fn(_CallerView(caller), unsigned)  # type: ignore[arg-type]
        if isinstance(values, HostContinuation):
            values, extra = host_ticks(values, answer)
            counter = caller[TICKS_EXPORT]
            assert isinstance(counter, wasmtime.Global)
            counter.set_value(caller, wasmtime.Val.i64(counter.value(caller) + extra))
        out = [_signed(v, t) for v, t in zip(values, results, strict=True)]
        return None if not out else out[0] if len(out) == 1 else out

    return wasmtime.Func(store, wt_type, call, access_caller=True)


class _FastSide:
    """The instrumented module on wasmtime, with soru's limits on growing memories and
    tables (``memory.grow``/``table.grow`` beyond them return -1 on both engines)."""

    def __init__(
        self,
        compiled: wasmtime.Module,
        module: Module,
        hosts: Hosts,
        answer,
        max_memory_pages: int,
    ) -> None:
        self.store = wasmtime.Store(_ENGINE)
        self.store.set_limits(
            memory_size=max_memory_pages * PAGE_SIZE,
            table_elements=tick_costs.TABLE_GROW_MAX_ELEMENTS,
        )
        self.module = module
        imports = [wasmtime_host(self.store, hosts[(i.module, i.name)], answer)  # type: ignore[arg-type]
                   for i in module.imports]  # fmt: skip
        try:
            self.instance = wasmtime.Instance(self.store, compiled, imports)
        except wasmtime.Trap as trap:  # the counter went with the instance
            self.init = Outcome(TRAP, trap.trap_code, None)
            return
        exports = self.instance.exports(self.store)
        self.exports = exports
        self.counter, self.budget = exports[TICKS_EXPORT], exports[BUDGET_EXPORT]
        self.init = Outcome(DONE, (), self.ticks)

    @property
    def ticks(self) -> int:
        return self.counter.value(self.store)  # type: ignore[union-attr]

    def call(self, name: str, args: list[int], cap: int) -> Outcome:
        index = next(e.index for e in self.module.exports if e.name == name)
        ftype = self.module.func_type(index)
        self.counter.set_value(self.store, wasmtime.Val.i64(0))  # type: ignore[union-attr]
        self.budget.set_value(self.store, wasmtime.Val.i64(cap))  # type: ignore[union-attr]
        func = self.exports[name]
        try:
            signed = [_signed(a, t) for a, t in zip(args, ftype.params, strict=True)]
            values = func(self.store, *signed)  # type: ignore[operator]
        except wasmtime.Trap as trap:
            ticks = self.ticks
            if ran_out_of_ticks(ticks, cap):
                return Outcome(OUT_OF_TICKS, None, cap)
            if trap.trap_code == wasmtime.TrapCode.STACK_OVERFLOW:
                return Outcome(EXHAUSTION, None, ticks)
            return Outcome(TRAP, trap.trap_code, ticks)
        ticks = self.ticks
        assert ticks <= cap
        if len(ftype.results) == 1:
            values = [values]
        elif values is None:
            values = []
        return Outcome(DONE, tuple(map(normalise, values, ftype.results)), ticks)


_ENGINE = wasmtime.Engine()


def _with_memory_export(module: Module) -> Module:
    """The module exporting its memory as ``memory`` (host functions reach it there)."""
    has_memory = module.mems or module.imported(ExternKind.MEMORY)
    if not has_memory or any(e.name == "memory" for e in module.exports):
        return module
    return replace(module, exports=(*module.exports, Export("memory", ExternKind.MEMORY, 0)))


class Compiled:
    """A module, instrumented and compiled once for wasmtime; :meth:`twin` instantiates it
    on both engines."""

    def __init__(
        self,
        module: Module,
        hosts: Callable[[], Hosts] = dict,
        answer=default_answer,
        budget: int = MAX_BUDGET,
        max_memory_pages: int = MAX_PAGES,
    ) -> None:
        self.module = _with_memory_export(module)
        self.max_memory_pages = max_memory_pages
        self.instrumented, self.info = instrument(self.module, budget=budget)
        self.compiled = wasmtime.Module(_ENGINE, encode_module(self.instrumented))
        self.hosts, self.answer = hosts, answer

    def twin(self) -> Twin:
        return Twin(self)

    def fast(self) -> _FastSide:
        """An instance on wasmtime alone."""
        return _FastSide(
            self.compiled, self.module, self.hosts(), self.answer, self.max_memory_pages
        )


class Twin:
    """One module instantiated on soru's machine and, instrumented, on wasmtime."""

    def __init__(self, compiled: Compiled) -> None:
        pages = compiled.max_memory_pages
        self.soru = _SoruSide(compiled.module, compiled.hosts(), compiled.answer, pages)
        self.fast = compiled.fast()
        assert agree(self.soru.init, self.fast.init) or (
            self.soru.init.kind == self.fast.init.kind == TRAP  # ticks lost with the instance
        ), (self.soru.init, self.fast.init)

    @property
    def ready(self) -> bool:
        return self.soru.init.kind == DONE

    def call(self, name: str, args: list[int], cap: int = HUGE) -> tuple[Outcome, Outcome]:
        return self.soru.call(name, args, cap), self.fast.call(name, args, cap)

    def check(self, name: str, args: list[int], cap: int = HUGE) -> Outcome:
        """Call on both engines, assert they agree, return soru's outcome."""
        soru, fast = self.call(name, args, cap)
        assert agree(soru, fast), f"{name}{tuple(args)} cap {cap}: soru {soru}, wasmtime {fast}"
        return soru


def check_budgets(compiled: Compiled, name: str, args: list[int], *, every: bool = False) -> int:
    """The call's ticks ``n`` on both engines; then, on fresh twins, every budget (or a
    spread of them) around it: below ``n`` both run out of ticks, from ``n`` on both end
    as without a budget. Returns ``n``."""
    full = compiled.twin().check(name, args)
    n = full.ticks
    assert n is not None
    if full.kind == EXHAUSTION:
        return n
    budgets = range(n + 2) if every else {0, 1, 2, n // 3, n // 2, n - 2, n - 1, n, n + 1}
    for budget in sorted(b for b in budgets if b >= 0):
        outcome = compiled.twin().check(name, args, budget)
        if budget < n:
            assert outcome.kind == OUT_OF_TICKS and outcome.ticks == budget
        else:
            assert outcome == full
    return n


def wat(text: str) -> Module:
    module = decode_module(bytes(wasmtime.wat2wasm(text)))
    validate_module(module)
    return module


# --- the lowering hook and the shape of the rewrite --------------------------------------------


def op(name: str, imm: object = None):
    from soru.wasm.syntax import Instr

    return Instr(opcodes.BY_NAME[name].op, imm)


BRANCHY = """(module
  (func (export "f") (param i32) (result i32)
    (block (result i32)
      (i32.const 1)
      (br_if 0 (local.get 0))
      (drop)
      (loop (br_if 0 (i32.const 0)))
      (return (i32.const 2))
      (i32.const 3) (drop))))"""


def test_traced_lowering_is_lowering_with_the_origin_of_each_instruction():
    module = wat(BRANCHY)
    func = module.funcs[0]
    code, origins = lower.lower_function_traced(module, [module.func_type(0)], func)
    assert code == lower.lower_function(module, [module.func_type(0)], func)
    assert len(origins) == len(code)
    body = func.body
    # block, then: i32.const 1, local.get, br_if, drop, loop, i32.const 0, br_if, end,
    # i32.const 2, return, (dead: i32.const 3, drop), end, end
    names = [opcodes.name(body[i].op) for i in origins]
    assert names == ["i32.const", "local.get", "br_if", "drop", "i32.const", "br_if",
                     "i32.const", "return", "end"]  # fmt: skip
    assert origins[-1] == len(body) - 1  # the final RETURN comes from the final end
    assert all(origins[i] < origins[i + 1] for i in range(len(origins) - 1))


def test_segment_leaders_of_branchy_code():
    module = wat(BRANCHY)
    code, _ = lower.lower_function_traced(module, [module.func_type(0)], module.funcs[0])
    # 0 const, 1 local.get, 2 br_if -> 8, 3 drop, 4 const, 5 br_if -> 4, 6 const, 7 return,
    # 8 RETURN
    assert segment_leaders(code) == [0, 3, 4, 6, 8]


def test_rewrite_is_valid_and_exports_counter_and_budget():
    module = wat(BRANCHY)
    out, info = instrument(module, budget=1000)
    validate_module(out)
    exports = {e.name: e for e in out.exports}
    assert exports[TICKS_EXPORT].index == info.ticks_global
    assert exports[BUDGET_EXPORT].index == info.budget_global
    assert out.globals[-1].init == (op("i64.const", 1000),)
    assert info.init_func is None and out.start is None
    assert info.counters == 5 and info.checks == 3  # the loop's back edge, return, RETURN
    assert out.funcs[0].locals == (I64,)
    assert out.funcs[0].body[0] == op("block", I32)
    assert decode_module(encode_module(out)) == out


def test_instantiation_becomes_a_counted_start_function():
    module = wat("""(module
      (memory 1) (table 2 funcref)
      (func $s) (func $t)
      (elem (i32.const 0) $s $t) (elem declare func $s) (elem $p funcref (ref.func $s))
      (data (i32.const 5) "hello") (data $q "passive")
      (start $s))""")
    out, info = instrument(module, budget=MAX_BUDGET)
    validate_module(out)
    assert out.start == info.init_func == 2
    assert [e.mode for e in out.elems] == [SegmentMode.PASSIVE, SegmentMode.DECLARATIVE,
                                           SegmentMode.PASSIVE]  # fmt: skip
    assert [d.mode for d in out.datas] == [SegmentMode.PASSIVE] * 2
    assert out.data_count == 2
    twin = Compiled(module).twin()
    # 3 consts + table.init + elem.drop; elem.drop; 3 consts + memory.init + data.drop;
    # call + the start function's RETURN; the program's RETURN
    assert twin.fast.ticks == twin.soru.machine.ticks == 5 + 1 + 5 + 2 + 1


def test_refuses_a_budget_out_of_range_and_taken_export_names():
    module = wat('(module (func (export "__soru_ticks")))')
    with pytest.raises(ValueError):
        instrument(module, budget=0)
    with pytest.raises(ValueError):
        instrument(wat("(module)"), budget=-1)
    with pytest.raises(ValueError):
        instrument(wat("(module)"), budget=MAX_BUDGET + 1)
    assert instrument(wat("(module)"), budget=0)[1].init_func is None


# --- programs, tick for tick ------------------------------------------------------------------

FEATURES = """(module
  (type $i2i (func (param i32) (result i32)))
  (memory 1 3)
  (table $t 600 funcref)
  (table $u 4 funcref)
  (global $g (mut i32) (i32.const 0))
  (elem (table $u) (i32.const 0) func $inc $dbl)
  (elem $pe funcref (ref.func $inc) (ref.func $dbl) (ref.null func))
  (data $d "0123456789abcdef0123456789abcdef")
  (func $inc (type $i2i) (i32.add (local.get 0) (i32.const 1)))
  (func $dbl (type $i2i) (i32.mul (local.get 0) (i32.const 2)))
  (func (export "br_if") (param i32) (result i32)
    (block (result i32) (br_if 0 (i32.const 7) (local.get 0)) (drop) (i32.const 9)))
  (func (export "br_table") (param i32) (result i32)
    (block (block (block (br_table 0 1 2 1 (local.get 0))) (return (i32.const 10)))
      (return (i32.const 11)))
    (i32.const 12))
  (func (export "br_table_values") (param i32) (result i32)
    (block (result i32) (block (result i32)
      (br_table 0 1 (i32.const 5) (local.get 0))) (i32.const 1) (i32.add)))
  (func (export "if_no_else") (param i32) (result i32) (local i32)
    (if (local.get 0) (then (local.set 1 (i32.const 5))))
    (local.get 1))
  (func (export "if_else") (param i32) (result i32)
    (if (result i32) (local.get 0) (then (i32.const 1)) (else (i32.const 2))))
  (func (export "empty_branches") (param i32)
    (if (local.get 0) (then) (else)) (if (local.get 0) (then (nop))))
  (func (export "sum") (param i32) (result i32) (local i32)
    (block (loop
      (br_if 1 (i32.eqz (local.get 0)))
      (local.set 1 (i32.add (local.get 1) (local.get 0)))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br 0)))
    (local.get 1))
  (func (export "nested_loops") (param i32) (result i32) (local i32 i32)
    (loop $outer
      (local.set 2 (local.get 0))
      (loop $inner
        (local.set 1 (i32.add (local.get 1) (local.get 2)))
        (br_if $inner (local.tee 2 (i32.sub (local.get 2) (i32.const 1)))))
      (br_if $outer (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))
    (local.get 1))
  (func (export "to_function_label") (param i32) (result i32)
    (i32.const 1) (br_if 0 (i32.eq (local.get 0) (i32.const 1))) (drop)
    (drop (block (result i32) (br_table 0 1 (i32.const 4) (local.get 0))))
    (i32.const 2) (br 0) (i32.const 3) (i32.add))
  (func (export "dead") (param i32) (result i32)
    (if (local.get 0) (then (return (i32.const 1)) (drop (i32.const 5))
                            (block (loop (br 0))) (unreachable)))
    (unreachable) (i32.const 3) (br 0))
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "rem") (param i64 i64) (result i64) (i64.rem_u (local.get 0) (local.get 1)))
  (func (export "load") (param i32) (result i64)
    (i64.add (i64.load (local.get 0)) (i64.load8_s offset=3 (local.get 0))))
  (func (export "store") (param i32 i64)
    (i64.store32 (local.get 0) (local.get 1)) (global.set $g (i32.const 4)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "fill") (param i32 i32) (memory.fill (local.get 0) (i32.const 7) (local.get 1)))
  (func (export "copy") (param i32 i32 i32)
    (memory.copy (local.get 0) (local.get 1) (local.get 2)))
  (func (export "init") (param i32 i32 i32)
    (memory.init $d (local.get 0) (local.get 1) (local.get 2)))
  (func (export "drop_data") (data.drop $d))
  (func (export "table_fill") (param i32 i32)
    (table.fill $t (local.get 0) (ref.func $inc) (local.get 1)))
  (func (export "table_copy") (param i32 i32 i32)
    (table.copy $t $t (local.get 0) (local.get 1) (local.get 2)))
  (func (export "table_init") (param i32 i32 i32)
    (table.init $t $pe (local.get 0) (local.get 1) (local.get 2)))
  (func (export "table_get") (param i32) (result i32)
    (ref.is_null (table.get $t (local.get 0))))
  (func (export "indirect") (param i32 i32) (result i32)
    (call_indirect $t (type $i2i) (local.get 1) (local.get 0)))
  (func (export "indirect_u") (param i32 i32) (result i32)
    (call_indirect $u (type $i2i) (local.get 1) (local.get 0)))
  (func $fac (export "fac") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0)) (then (i64.const 1))
      (else (i64.mul (local.get 0) (call $fac (i64.sub (local.get 0) (i64.const 1)))))))
  (func (export "multi") (param i32) (result i32 i32)
    (local.get 0) (i32.const 1)
    (block (param i32 i32) (result i32 i32)
      (br_if 0 (local.get 0))
      (i32.add) (i32.const 3)))
  (func (export "select") (param i32) (result i32)
    (select (i32.const 4) (call $dbl (i32.const 5)) (local.get 0)))
  (func (export "unreachable") (unreachable)))"""

FEATURE_CALLS: list[tuple[str, list[int]]] = [
    ("br_if", [0]), ("br_if", [1]),
    ("br_table", [0]), ("br_table", [1]), ("br_table", [2]), ("br_table", [3]),
    ("br_table", [99]),
    ("br_table_values", [0]), ("br_table_values", [1]), ("br_table_values", [7]),
    ("if_no_else", [0]), ("if_no_else", [1]), ("if_else", [0]), ("if_else", [3]),
    ("empty_branches", [0]), ("empty_branches", [1]),
    ("sum", [0]), ("sum", [1]), ("sum", [10]), ("nested_loops", [3]),
    ("to_function_label", [0]), ("to_function_label", [1]), ("to_function_label", [2]),
    ("dead", [0]), ("dead", [1]),
    ("div", [7, 2]), ("div", [7, 0]), ("div", [0x80000000, 0xFFFFFFFF]),
    ("rem", [7, 0]), ("rem", [7, 5]),
    ("load", [0]), ("load", [65528]), ("load", [65529]), ("load", [0xFFFFFFFF]),
    ("store", [65532, 5]), ("store", [65533, 5]),
    ("grow", [1]), ("grow", [5]),
    ("fill", [0, 0]), ("fill", [10, 1]), ("fill", [0, 2048]), ("fill", [0, 2049]),
    ("fill", [100, 10_000]), ("fill", [60_000, 10_000]), ("fill", [65536, 0]),
    ("fill", [65537, 0]),
    ("copy", [0, 100, 4096]), ("copy", [100, 0, 6145]), ("copy", [0, 65000, 1000]),
    ("init", [0, 0, 32]), ("init", [0, 1, 32]), ("init", [65530, 0, 6]),
    ("table_fill", [0, 600]), ("table_fill", [1, 600]), ("table_fill", [0, 257]),
    ("table_copy", [0, 100, 500]), ("table_copy", [100, 0, 300]),
    ("table_init", [0, 0, 3]), ("table_init", [0, 1, 3]), ("table_init", [598, 0, 2]),
    ("table_get", [0]), ("table_get", [600]),
    ("indirect_u", [0, 5]), ("indirect_u", [1, 5]), ("indirect_u", [2, 5]),
    ("indirect_u", [4, 5]), ("indirect", [0, 5]),
    ("fac", [0]), ("fac", [5]), ("fac", [20]),
    ("multi", [0]), ("multi", [1]), ("select", [0]), ("select", [1]),
    ("unreachable", []),
]  # fmt: skip


@pytest.fixture(scope="module")
def features() -> Compiled:
    return Compiled(wat(FEATURES))


def test_feature_calls_agree_in_sequence(features: Compiled):
    """The calls one after another on one instance (state carries over, as it does in soru)."""
    twin = features.twin()
    kinds = set()
    for name, args in FEATURE_CALLS:
        kinds.add(twin.check(name, args).kind)
    assert kinds == {DONE, TRAP}


@pytest.mark.parametrize(("name", "args"), FEATURE_CALLS, ids=lambda x: str(x))
def test_feature_calls_agree_at_every_budget(features: Compiled, name: str, args: list[int]):
    n = features.twin().check(name, args).ticks
    assert n is not None
    check_budgets(features, name, args, every=n <= 150)


def test_bulk_operations_cost_their_chunks(features: Compiled):
    twin = features.twin()
    base = twin.check("fill", [0, 0]).ticks
    assert base == 5  # local.get, i32.const, local.get, memory.fill (one tick), RETURN
    for n, chunks in [(1, 1), (2048, 1), (2049, 2), (3 * 2048, 3), (3 * 2048 + 1, 4)]:
        assert twin.check("fill", [0, n]).ticks == base - 1 + chunks
    # out of bounds: the first tick checks the whole range, and traps
    oob = Outcome(TRAP, "out of bounds memory access", 4)
    assert twin.check("fill", [65535, 3 * 2048]) == oob


COUNTING_HOSTS = """(module
  (import "env" "add" (func $add (param i32 i32) (result i32)))
  (import "env" "slow" (func $slow (param i32) (result i32)))
  (memory 1)
  (func (export "run") (param i32) (result i32) (local i32)
    (loop
      (local.set 1 (call $add (local.get 1) (call $slow (local.get 0))))
      (br_if 0 (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))
    (local.get 1))
  (func (export "direct") (param i32) (result i32) (call $slow (local.get 0)))
  (func (export "via_start") (result i32) (i32.load (i32.const 0)))
  (func $start (i32.store (i32.const 0) (call $slow (i32.const 3))))
  (start $start))"""


class _Steps(HostContinuation):
    """``1 + arg % 4`` steps (each writing a byte), then ``arg * 2``."""

    def __init__(self, memory, arg: int) -> None:
        self.memory, self.arg, self.left = memory, arg, 1 + arg % 4

    def step(self):
        self.left -= 1
        self.memory[100 + self.left] = self.arg & 0xFF
        return None if self.left else [self.arg * 2 & 0xFFFFFFFF]


def counting_hosts() -> dict:
    return {
        ("env", "add"): HostFunc(FuncType((I32, I32), (I32,)), lambda c, a: [sum(a) & 0xFFFFFFFF]),
        ("env", "slow"): HostFunc(
            FuncType((I32,), (I32,)), lambda c, a: _Steps(c.mems[0].data, a[0])
        ),
    }


def test_host_calls_cost_one_tick_and_continuations_their_steps():
    compiled = Compiled(wat(COUNTING_HOSTS), counting_hosts)
    twin = compiled.twin()
    # call $start; [two consts, call $slow and its 1 + 3 % 4 steps, store, RETURN]; RETURN
    assert twin.fast.ticks == twin.soru.machine.ticks == 1 + (2 + 1 + 4 + 1 + 1) + 1
    for arg in range(4):
        # local.get, call (1 + 1 + arg % 4 steps), RETURN
        assert twin.check("direct", [arg]).ticks == 1 + 1 + (1 + arg % 4) + 1
    twin.check("via_start", [])
    for arg in (1, 2, 7):
        check_budgets(compiled, "run", [arg], every=True)


def test_collatz_example():
    compiled = Compiled(wat(COLLATZ.read_text()))
    twin = compiled.twin()
    for limit in range(0, 40):
        twin.check("longest", [limit])
    for n in (1, 2, 27, 97, 1 << 40):
        twin.check("steps", [n])
    assert check_budgets(compiled, "longest", [30]) > 1000
    check_budgets(compiled, "steps", [27], every=True)


# --- the spec suite ---------------------------------------------------------------------------

TICK_CAP = 200_000
"""Calls longer than this are cut off: both engines must then say "out of ticks"."""


def _spec_modules():
    """Each valid, import-free module of the suite with the i32/i64 invocations made of it."""
    for script in sorted(SPEC_JSON.glob("*/*.json")):
        commands = json.loads(script.read_text())["commands"]
        i = 0
        while i < len(commands):
            command = commands[i]
            i += 1
            if command["type"] != "module" or not command.get("filename", "").endswith(".wasm"):
                continue
            calls = []
            while i < len(commands) and commands[i]["type"] != "module":
                action = commands[i].get("action")
                i += 1
                if not action or action["type"] != "invoke" or "module" in action:
                    continue
                if all(a["type"] in ("i32", "i64") for a in action["args"]):
                    calls.append((action["field"], [int(a["value"]) for a in action["args"]]))
            try:
                module = decode_module((script.parent / command["filename"]).read_bytes())
                validate_module(module)
            except SoruError:
                continue
            if not module.imports:
                yield f"{script.parent.name}/{command['filename']}", module, calls


def _random_calls(module: Module, rng: random.Random) -> list[tuple[str, list[int]]]:
    calls = []
    for export in module.exports:
        if export.kind != ExternKind.FUNC:
            continue
        params = module.func_type(export.index).params
        if all(t in (I32, I64) for t in params):
            for _ in range(2):
                calls.append((export.name, [_random_int(t, rng) for t in params]))
    return calls


def _random_int(t: ValType, rng: random.Random) -> int:
    bits = _bits(t)
    return rng.choice([0, 1, 2, 5, 100, (1 << bits) - 1, 1 << (bits - 1), rng.getrandbits(bits)])


@pytest.mark.slow
def test_spec_suite_modules_agree_tick_for_tick():
    """Every import-free module of the suite, instantiated on both engines; every i32/i64
    invocation of the suite and random calls of every export taking only i32/i64, in
    order; and for a few calls of each module, a budget just below their ticks and one at
    random, on fresh twins replaying the calls before them."""
    rng = random.Random(20)
    modules = calls_made = budget_checks = cut_off = 0
    for where, module, suite_calls in _spec_modules():
        try:
            compiled = Compiled(module)
        except wasmtime.WasmtimeError:
            continue  # wasmtime refuses the module (e.g. an implementation limit)
        twin = compiled.twin()
        if not twin.ready:
            continue
        modules += 1
        calls = suite_calls + _random_calls(module, rng)
        ticks = []
        for name, args in calls:
            soru, fast = twin.call(name, args, TICK_CAP)
            assert agree(soru, fast), f"{where} {name}{tuple(args)}: soru {soru}, wasmtime {fast}"
            calls_made += 1
            ticks.append(soru.ticks)
            if soru.kind in (OUT_OF_TICKS, EXHAUSTION):  # the states may now differ
                cut_off += 1
                break
        for k in rng.sample(range(len(ticks)), min(3, len(ticks))):
            n = ticks[k]
            for budget in {n - 1, rng.randrange(n)} if n else ():
                replay = compiled.twin()
                for name, args in calls[:k]:
                    replay.check(name, args, TICK_CAP)
                name, args = calls[k]
                assert replay.check(name, args, budget).kind in (OUT_OF_TICKS, EXHAUSTION)
                budget_checks += 1
    assert modules > 900 and calls_made > 15_000 and budget_checks > 1_500
    assert cut_off < 40


# --- guards -----------------------------------------------------------------------------------


def test_infinite_loops_run_out_of_ticks_at_every_budget():
    compiled = Compiled(
        wat("""(module
      (func (export "spin") (loop (br 0)))
      (func (export "spin_if") (loop (br_if 0 (i32.const 1))))
      (func $r (export "recurse") (call $r)))""")
    )
    for name in ("spin", "spin_if"):
        for budget in (0, 1, 2, 3, 1000, 12_345):
            assert compiled.twin().check(name, [], budget) == Outcome(OUT_OF_TICKS, None, budget)
    assert compiled.twin().check("recurse", [], 5000) == Outcome(OUT_OF_TICKS, None, 5000)


_EDGES = {
    I32: [0, 1, 2, 31, 32, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF],
    I64: [0, 1, 2, 63, 64, (1 << 63) - 1, 1 << 63, (1 << 64) - 1],
    ValType.F32: [0, 0x80000000, 0x3F800000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x4F000000,
                  0xCF000001, 0x5F800000],
    ValType.F64: [0, 1 << 63, 0x3FF0 << 48, 0x7FF0 << 48, 0xFFF0 << 48, 0x7FF8 << 48,
                  0x41E0 << 48, 0xC3E0 << 48, 0x43F0 << 48],
}  # fmt: skip


def test_every_operator_that_can_trap_ends_a_segment():
    """Run every fixed-signature operator on soru with edge operands: any that traps must be
    in MAY_TRAP (otherwise the counter would not be exact at its trap)."""
    from itertools import product

    from soru.wasm.errors import Trap
    from soru.wasm.instrument import MAY_TRAP
    from soru.wasm.syntax import Func, Instr

    trapping = set()
    for code, entry in opcodes.OPS.items():
        if entry.sig is None or entry.width or not entry.sig[0] and not entry.sig[1]:
            continue
        if entry.imm not in (opcodes.Imm.NONE,):
            continue  # constants, memory.size/grow…: no operands to vary
        params, results = entry.sig
        body = (*(Instr(0x20, i) for i in range(len(params))), Instr(code), Instr(0x0B))
        module = Module(types=(FuncType(params, results),), funcs=(Func(0, (), body),))
        machine = Machine()
        func = machine.instantiate(replace(module, exports=(Export("f", ExternKind.FUNC, 0),)))
        f = func.export("f")
        for args in product(*(_EDGES[t] for t in params)):
            try:
                machine.invoke(f, list(args))
            except Trap:
                trapping.add(code)
                break
    assert len(trapping) == 16  # integer divisions and remainders, float truncations
    assert trapping <= MAY_TRAP, sorted(opcodes.name(c) for c in trapping - MAY_TRAP)
