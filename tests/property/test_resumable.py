"""Resumability of the WebAssembly machine, on random valid programs.

The machine promises (``soru.wasm.exec.machine``) that running a call in pieces —
``start`` then ``run(ticks=k)`` again and again — reaches exactly the state of running it
straight through. The PVM's proofs rest on that: a tick proven in isolation must be the tick
the honest node ran in one go. Here hypothesis builds random *valid* modules directly as
:class:`~soru.wasm.syntax.Module` records and checks, for random piece sizes, that

* instantiation tick by tick (``allocate``, ``begin_code``, ``run`` in pieces) then the call
  of ``main`` in pieces (``start``, ``run``) end exactly like ``instantiate`` then
  ``invoke`` straight through on a fresh machine: same stage and status, same results or
  trap reason, same total ticks, memory bytes and global values;
* ``run(ticks=N)`` never performs more than N ticks, and exactly N while the call goes on;
* recursion deeper than ``call_depth_limit`` ends in ``Exhaustion``, never in a Python
  ``RecursionError`` (limits 10 000 and 60 000, the PVM's).

A host call that suspends (``Suspend``, the PVM's reveal) is answered by the driver the
same way on both sides, so suspension points are split points too.

The program generator
---------------------
It writes well-typed instruction sequences over i32/i64: constants, locals, globals, every
integer operator (divisions and remainders may trap), comparisons and conversions, loads
and stores (sometimes out of bounds), ``memory.size``/``memory.grow``, ``memory.fill`` and
``memory.copy`` over sizes around and above ``ticks.MEMORY_CHUNK_BYTES`` (so that they take
several ticks, overlapping both ways), nested ``block``/``if``/``loop`` with single and
multi-value types (block parameters included), ``br``/``br_if``/``br_table``/``return``
carrying values out of nested blocks, ``select``, direct calls between a few functions
(recursion included), ``call_indirect`` through a table (mismatched types and null entries
trap), three host functions (an immediate one, a :class:`HostContinuation` that writes
memory over several ticks, and one that suspends for an answer), ``unreachable`` now and
then. Modules have one or two active data segments of up to three chunks (so
``memory.init`` takes several ticks; rarely out of bounds, a trap at instantiation) and
sometimes a start function; the machine's call depth limit is sometimes tiny (2..8), so
that ``Exhaustion`` happens in random places.

Termination is by construction:

* a loop is entered with a fresh counter local (reserved, no other code touches it) set to
  1..4, and its only back edge is ``counter -= 1; br_if`` at the end of its body — no other
  branch targets a loop label;
* every function starts by spending one unit of a global *fuel* (global 0, reserved): with
  no fuel left it returns constant results at once. Calls may form any graph, recursion
  included, and still stop.

Generator choices come from hypothesis draws, ordered simplest first, so failures shrink to
small programs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soru.wasm import opcodes
from soru.wasm.errors import Exhaustion, Trap
from soru.wasm.exec import ticks as tick_costs
from soru.wasm.exec.machine import CallSuspended, Machine, RunStatus, Suspend
from soru.wasm.runtime import HostContinuation, HostFunc, WasmFunc
from soru.wasm.syntax import (
    BlockType,
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

I32, I64 = ValType.I32, ValType.I64
CHUNK = tick_costs.MEMORY_CHUNK_BYTES
PAGE = 65536
FUEL = 8  # calls that do work, per run: bounds recursion
MAX_NEST = 4  # nesting of blocks, loops and ifs
MEM_MAX_PAGES = 3


def op(name: str, imm: object = None) -> Instr:
    return Instr(opcodes.BY_NAME[name].op, imm)


def const(t: ValType, value: int) -> Instr:
    return op("i32.const" if t == I32 else "i64.const", value & _mask(t))


def _mask(t: ValType) -> int:
    return 0xFFFFFFFF if t == I32 else 0xFFFFFFFFFFFFFFFF


def _p(t: ValType) -> str:
    return "i32" if t == I32 else "i64"


# --- host functions ---------------------------------------------------------------------------

MIX_TYPE = FuncType((I32, I64), (I64,))
SLOW_TYPE = FuncType((I32,), (I32,))


class _SlowWrite(HostContinuation):
    """A host call taking ``1 + (arg & 3)`` ticks, each writing one byte of memory."""

    def __init__(self, memory: bytearray, arg: int) -> None:
        self.memory, self.arg, self.left = memory, arg, 1 + (arg & 3)
        self.at = (arg >> 2) & 0xFF

    def step(self):
        self.left -= 1
        self.memory[self.at + self.left] = (self.arg + self.left) & 0xFF
        return None if self.left else [(self.arg * 3 + 1) & 0xFFFFFFFF]


class _Reveal(HostContinuation):
    """A host call that works one tick, then waits for data from outside (``Suspend``);
    the embedder answers with :attr:`reply`."""

    def __init__(self, memory: bytearray, arg: int) -> None:
        self.memory, self.arg, self.started = memory, arg, False
        self.reply = [(arg ^ 0x5A5A) & 0xFFFFFFFF]

    def step(self):
        if not self.started:
            self.started = True
            self.memory[(self.arg & 0x3FF) + 1] ^= 0xFF
            return None
        raise Suspend()


def host_imports() -> dict:
    """Fresh host functions (each machine gets its own)."""

    def mix(caller, args):
        a, b = args
        return [(b * 31 + a) & 0xFFFFFFFFFFFFFFFF]

    def slow(caller, args):
        return _SlowWrite(caller.mems[0].data, args[0])

    def reveal(caller, args):
        return _Reveal(caller.mems[0].data, args[0])

    return {
        ("env", "mix"): HostFunc(MIX_TYPE, mix, "mix"),
        ("env", "slow"): HostFunc(SLOW_TYPE, slow, "slow"),
        ("env", "reveal"): HostFunc(SLOW_TYPE, reveal, "reveal"),
    }


HOSTS = [("mix", MIX_TYPE), ("slow", SLOW_TYPE), ("reveal", SLOW_TYPE)]


# --- the program generator --------------------------------------------------------------------


@dataclass
class _FuncCtx:
    """The function being generated."""

    params: tuple[ValType, ...]
    results: tuple[ValType, ...]
    user_locals: list[ValType]  # declared locals open to any local.get/set/tee
    counters: int = 0  # reserved loop counters, declared after the user locals
    labels: list[tuple[ValType, ...] | None] = field(default_factory=list)  # None: a loop
    budget: int = 0

    @property
    def visible(self) -> list[ValType]:
        return [*self.params, *self.user_locals]

    def new_counter(self) -> int:
        self.counters += 1
        return len(self.params) + len(self.user_locals) + self.counters - 1


class ProgramGen:
    """Draws one random valid module (see the module docstring)."""

    def __init__(self, draw) -> None:
        self.draw = draw
        self.types: list[FuncType] = []
        self.f: _FuncCtx

    # --- drawing helpers
    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def pick(self, seq):
        return seq[self.int(0, len(seq) - 1)]

    def chance(self, percent: int) -> bool:
        """True with probability ``percent``%; shrinks to False."""
        return self.int(0, 99) >= 100 - percent

    def usually(self, percent: int) -> bool:
        """True with probability ``percent``%; shrinks to True (the common case)."""
        return self.int(0, 99) < percent

    def valtype(self) -> ValType:
        return self.pick([I32, I64])

    def type_index(self, ft: FuncType) -> int:
        if ft not in self.types:
            self.types.append(ft)
        return self.types.index(ft)

    def number(self, t: ValType) -> int:
        bits = 32 if t == I32 else 64
        k = self.int(0, 6)
        if k == 0:
            return self.int(0, 3)
        if k == 1:
            return _mask(t)  # -1
        if k == 2:
            return 1 << (bits - 1)  # the most negative value
        if k == 3:
            return self.int(0, 300)
        return self.draw(st.integers(0, _mask(t)))

    # --- the module
    def module(self) -> tuple[Module, list[int]]:
        nfuncs = self.int(1, 3)
        sigs = []
        for _ in range(nfuncs):
            params = tuple(self.valtype() for _ in range(self.int(0, 2)))
            results = tuple(self.valtype() for _ in range(self.int(0, 2)))
            sigs.append(FuncType(params, results))
        for _, ft in HOSTS:
            self.type_index(ft)
        self.func_sigs = [ft for _, ft in HOSTS] + sigs  # the function index space
        self.globals = [GlobalType(I32, True)]  # global 0: fuel
        inits = [const(I32, FUEL)]
        for _ in range(self.int(0, 3)):
            t = self.valtype()
            self.globals.append(GlobalType(t, self.usually(80)))
            inits.append(const(t, self.number(t)))
        # the table: every function, one null slot, in a drawn order
        order = list(range(len(self.func_sigs)))
        self.slots = [order.pop(self.int(0, len(order) - 1)) for _ in range(len(order))]
        self.table_size = len(self.slots) + 1
        funcs = []
        for ft in sigs:
            funcs.append(self.function(ft))
        module = Module(
            types=tuple(self.types),
            imports=tuple(
                Import("env", name, ExternKind.FUNC, self.type_index(ft)) for name, ft in HOSTS
            ),
            funcs=tuple(funcs),
            tables=(TableType(Limits(self.table_size, self.table_size), ValType.FUNCREF),),
            mems=(MemType(Limits(1, MEM_MAX_PAGES)),),
            globals=tuple(
                Global(gt, (init,)) for gt, init in zip(self.globals, inits, strict=True)
            ),
            exports=(Export("main", ExternKind.FUNC, len(HOSTS)),),
            elems=(
                Elem(
                    ValType.FUNCREF,
                    tuple((op("ref.func", i),) for i in self.slots),
                    SegmentMode.ACTIVE,
                    0,
                    (op("i32.const", 0),),
                ),
            ),
            datas=tuple(self.data_segment() for _ in range(self.int(1, 2))),
            start=self.start_function(sigs),
        )
        args = [self.number(t) for t in sigs[0].params]
        return module, args

    def data_segment(self) -> Data:
        """An active segment, some a few chunks long (``memory.init`` then takes several
        ticks), rarely out of bounds (instantiation then traps, keeping earlier writes)."""
        size = self.pick([5, 599, CHUNK + 1, 2 * CHUNK + 3])
        offset = self.int(0, PAGE - size) if self.usually(95) else PAGE - size + self.int(1, 16)
        init = bytes((i * 13 + size) & 0xFF for i in range(size))
        return Data(init, SegmentMode.ACTIVE, 0, (op("i32.const", offset),))

    def start_function(self, sigs: list[FuncType]) -> int | None:
        """Sometimes a start function: one of type [] -> [] (it runs at instantiation)."""
        candidates = [i for i, ft in enumerate(sigs) if ft == FuncType((), ())]
        if candidates and self.chance(40):
            return len(HOSTS) + self.pick(candidates)
        return None

    def function(self, ft: FuncType) -> Func:
        self.f = _FuncCtx(ft.params, ft.results, [self.valtype() for _ in range(self.int(0, 3))])
        self.f.budget = self.int(20, 100)
        self.f.labels.append(ft.results)
        body: list[Instr] = []
        # prologue: spend one fuel, or return constant results when there is none left
        body += [op("global.get", 0), op("i32.eqz"), op("if", None)]
        body += [const(t, 0) for t in ft.results] + [op("return"), op("end")]
        body += [op("global.get", 0), op("i32.const", 1), op("i32.sub"), op("global.set", 0)]
        for _ in range(self.int(2, 6)):
            body += self.stmt(5)
        body += self.values(ft.results, 4)
        body.append(op("end"))
        declared = (*self.f.user_locals, *[I32] * self.f.counters)
        return Func(self.type_index(FuncType(ft.params, ft.results)), declared, tuple(body))

    # --- values: code pushing exactly the given types
    def values(self, types: tuple[ValType, ...], d: int) -> list[Instr]:
        if len(types) >= 2 and d > 0 and self.chance(25):
            return self.block_of(types, d)
        code: list[Instr] = []
        for t in types:
            code += self.value(t, d)
        return code

    def leaf(self, t: ValType) -> list[Instr]:
        k = self.int(0, 2)
        locals_ = [i for i, lt in enumerate(self.f.visible) if lt == t]
        if k == 1 and locals_:
            return [op("local.get", self.pick(locals_))]
        globals_ = [i for i, g in enumerate(self.globals) if g.valtype == t]
        if k == 2 and globals_:
            return [op("global.get", self.pick(globals_))]
        return [const(t, self.number(t))]

    def value(self, t: ValType, d: int) -> list[Instr]:
        if d <= 0 or self.f.budget <= 0:
            return self.leaf(t)
        self.f.budget -= 1
        k = self.int(0, 17)
        p = _p(t)
        if k <= 1:
            return self.leaf(t)
        if k == 2:  # binary operator
            name = self.pick(
                [
                    "add",
                    "sub",
                    "mul",
                    "and",
                    "or",
                    "xor",
                    "shl",
                    "shr_s",
                    "shr_u",
                    "rotl",
                    "rotr",
                    "div_s",
                    "div_u",
                    "rem_s",
                    "rem_u",
                ]
            )
            rhs = self.value(t, d - 1)
            if name[:3] in ("div", "rem") and self.chance(30):
                rhs = [const(t, self.pick([0, _mask(t)]))]  # divide by zero, or overflow
            return self.value(t, d - 1) + rhs + [op(f"{p}.{name}")]
        if k == 3:  # unary operator
            names = ["clz", "ctz", "popcnt", "extend8_s", "extend16_s"]
            if t == I64:
                names.append("extend32_s")
            return self.value(t, d - 1) + [op(f"{p}.{self.pick(names)}")]
        if k == 4:  # comparison, or conversion between widths
            u = self.valtype()
            if self.chance(30):
                if t == I32:
                    return self.value(I64, d - 1) + [op("i32.wrap_i64")]
                return self.value(I32, d - 1) + [
                    op(self.pick(["i64.extend_i32_s", "i64.extend_i32_u"]))
                ]
            if t == I64:
                return self.value(I32, d - 1) + [op("i64.extend_i32_u")]
            if self.chance(20):
                return self.value(u, d - 1) + [op(f"{_p(u)}.eqz")]
            rel = self.pick(
                ["eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"]
            )
            return self.value(u, d - 1) + self.value(u, d - 1) + [op(f"{_p(u)}.{rel}")]
        if k == 5:  # load
            names = {
                I32: [
                    ("load", 2),
                    ("load8_s", 0),
                    ("load8_u", 0),
                    ("load16_s", 1),
                    ("load16_u", 1),
                ],
                I64: [
                    ("load", 3),
                    ("load8_s", 0),
                    ("load8_u", 0),
                    ("load16_s", 1),
                    ("load16_u", 1),
                    ("load32_s", 2),
                    ("load32_u", 2),
                ],
            }
            name, align = self.pick(names[t])
            return self.address(1 << align, d) + [op(f"{p}.{name}", self.memarg(align))]
        if k == 6 and len(self.f.labels) < MAX_NEST:
            return self.block_of((t,), d)
        if k == 7 and len(self.f.labels) < MAX_NEST:
            return self.if_of((t,), d)
        if k == 8 and len(self.f.labels) < MAX_NEST:
            return self.loop_of((t,), d)
        if k == 9:  # select
            return (
                self.value(t, d - 1)
                + self.value(t, d - 1)
                + self.value(I32, d - 1)
                + [op("select")]
            )
        if k == 10:  # local.tee
            locals_ = [i for i, lt in enumerate(self.f.visible) if lt == t]
            if locals_:
                return self.value(t, d - 1) + [op("local.tee", self.pick(locals_))]
        if k == 11 and t == I32:
            if self.chance(50):
                return [op("memory.size", 0)]
            return [const(I32, self.int(0, 2)), op("memory.grow", 0)]
        if k == 12:  # a direct call of a function returning exactly t
            candidates = [i for i, ft in enumerate(self.func_sigs) if ft.results == (t,)]
            if candidates:
                return self.call(self.pick(candidates), d)
        if k == 13:  # call_indirect
            return self.call_indirect((t,), d)
        if k == 14 and self.chance(10):
            return [op("unreachable")]
        if k == 15:  # a value computed after some statements
            return self.stmts(d - 1) + self.value(t, d - 1)
        return self.leaf(t)

    def address(self, width: int, d: int) -> list[Instr]:
        k = self.int(0, 15)
        if k <= 12:
            return [op("i32.const", self.int(0, 1024))]
        if k == 13:  # straddling the end of the first page: traps unless memory grew
            return [op("i32.const", PAGE - width + self.int(-4, 4))]
        if k == 14:  # in the second or third page: only after memory.grow
            return [op("i32.const", PAGE * self.int(1, 2) + self.int(0, 64))]
        return self.value(I32, d - 1)

    def memarg(self, align: int) -> MemArg:
        offset = 0 if self.usually(60) else self.pick([1, 7, 64, PAGE])
        return MemArg(self.int(0, align), offset)

    def call(self, index: int, d: int) -> list[Instr]:
        return self.values(self.func_sigs[index].params, d - 1) + [op("call", index)]

    def call_indirect(self, results: tuple[ValType, ...] | None, d: int) -> list[Instr]:
        """Code calling through the table with a type whose results are ``results`` (any
        when None); mostly a matching entry, sometimes a mismatch, null or missing one."""
        candidates = [ft for ft in self.func_sigs if results in (None, ft.results)]
        if candidates and self.usually(90):
            ft = self.pick(candidates)
        else:
            params = tuple(self.valtype() for _ in range(self.int(0, 2)))
            ft = FuncType(params, results if results is not None else (self.valtype(),))
        matching = [i for i, f in enumerate(self.slots) if self.func_sigs[f] == ft]
        if matching and self.usually(80):
            index = self.pick(matching)
        else:  # perhaps a mismatch, the null slot, or out of the table
            index = self.int(0, self.table_size) if self.usually(85) else self.number(I32)
        code = self.values(ft.params, d - 1) + [op("i32.const", index)]
        return code + [op("call_indirect", (self.type_index(ft), 0))]

    # --- structured instructions
    def blocktype(self, params: tuple[ValType, ...], results: tuple[ValType, ...]) -> BlockType:
        if not params and not results:
            return None
        if not params and len(results) == 1 and self.usually(70):
            return results[0]
        return self.type_index(FuncType(params, results))

    def block_params(self) -> tuple[ValType, ...]:
        return tuple(self.valtype() for _ in range(self.int(0, 2))) if self.chance(30) else ()

    def body(self, params, results, d: int) -> list[Instr]:
        """The inside of a block whose label is already pushed: consumes ``params``."""
        if params == results and self.chance(40):
            return self.stmts(d - 1)
        code = self.stmts(d - 1) + [op("drop")] * len(params) + self.stmts(d - 1)
        return code + self.values(results, d - 1)

    def block_of(self, results: tuple[ValType, ...], d: int) -> list[Instr]:
        params = self.block_params()
        code = self.values(params, d - 1) + [op("block", self.blocktype(params, results))]
        self.f.labels.append(results)
        code += self.body(params, results, d)
        self.f.labels.pop()
        return code + [op("end")]

    def if_of(self, results: tuple[ValType, ...], d: int) -> list[Instr]:
        params = self.block_params()
        code = self.values(params, d - 1) + self.value(I32, d - 1)
        code.append(op("if", self.blocktype(params, results)))
        self.f.labels.append(results)
        code += self.body(params, results, d)
        if params != results or self.usually(70):
            code += [op("else")] + self.body(params, results, d)
        self.f.labels.pop()
        return code + [op("end")]

    def loop_of(self, results: tuple[ValType, ...], d: int) -> list[Instr]:
        counter = self.f.new_counter()
        code = [op("i32.const", self.int(1, 4)), op("local.set", counter)]
        code.append(op("loop", self.blocktype((), results)))
        self.f.labels.append(None)  # the loop label is reached only by the back edge below
        code += self.stmts(d - 1)
        code += [op("local.get", counter), op("i32.const", 1), op("i32.sub")]
        code += [op("local.tee", counter), op("br_if", 0)]
        code += self.values(results, d - 1)
        self.f.labels.pop()
        return code + [op("end")]

    # --- statements: code with no net effect on the operand stack
    def stmts(self, d: int) -> list[Instr]:
        code: list[Instr] = []
        for _ in range(self.int(0, 3)):
            if self.f.budget <= 0:
                break
            code += self.stmt(d)
        return code

    def stmt(self, d: int) -> list[Instr]:
        self.f.budget -= 1
        k = self.int(0, 15)
        f = self.f
        if k == 0:
            return self.value(self.valtype(), d) + [op("drop")]
        if k == 1 and f.visible:
            i = self.int(0, len(f.visible) - 1)
            return self.value(f.visible[i], d) + [op("local.set", i)]
        if k == 2:
            mutable = [i for i, g in enumerate(self.globals) if g.mutable and i > 0]
            if mutable:
                i = self.pick(mutable)
                return self.value(self.globals[i].valtype, d) + [op("global.set", i)]
        if k == 5 and len(f.labels) < MAX_NEST:
            return self.block_of((), d)
        if k == 6 and len(f.labels) < MAX_NEST:
            return self.loop_of((), d)
        if k == 7 and len(f.labels) < MAX_NEST:
            return self.if_of((), d)
        if k in (8, 9):
            return self.branch(d)
        if k == 10:
            return self.bulk()
        if k == 11:  # a call of any function, its results dropped
            index = self.int(0, len(self.func_sigs) - 1)
            return self.call(index, d) + [op("drop")] * len(self.func_sigs[index].results)
        if k == 12:
            code = self.call_indirect(None, d)
            ft = self.types[code[-1].imm[0]]  # type: ignore[index]
            return code + [op("drop")] * len(ft.results)
        if k == 13 and self.chance(30):
            return self.values(f.results, d) + [op("return")]
        if k == 14:
            return [const(I32, self.int(0, 2)), op("memory.grow", 0), op("drop")]
        return self.store(d)

    def store(self, d: int) -> list[Instr]:
        t = self.valtype()
        names = [("store", 2 if t == I32 else 3), ("store8", 0), ("store16", 1)]
        if t == I64:
            names.append(("store32", 2))
        name, align = self.pick(names)
        addr = self.address(1 << align, d)
        return addr + self.value(t, d) + [op(f"{_p(t)}.{name}", self.memarg(align))]

    def branch(self, d: int) -> list[Instr]:
        """``br``, ``br_if`` or ``br_table`` to an enclosing block, if or the function."""
        targets = [
            (depth, types)
            for depth, types in enumerate(reversed(self.f.labels))
            if types is not None
        ]
        inner = targets[:-1]  # the last is the function's own label: a return
        if inner and self.usually(85):
            depth, types = self.pick(inner)
        elif self.chance(20):
            depth, types = targets[-1]
        else:
            return []
        code = self.values(types, d - 1)
        k = self.int(0, 2)
        if k == 0:  # br_if: the values stay when the branch is not taken, then are dropped
            code += self.value(I32, d - 1) + [op("br_if", depth)]
            return code + [op("drop")] * len(types)
        if k == 1:
            return code + [op("br", depth)]
        same = [dp for dp, ts in targets if ts == types]
        labels = tuple(self.pick(same) for _ in range(self.int(0, 4)))
        index = self.int(0, len(labels) + 1) if self.usually(80) else self.number(I32)
        return code + [op("i32.const", index), op("br_table", BrTable(labels, depth))]

    def bulk(self) -> list[Instr]:
        """``memory.fill`` or ``memory.copy`` of a size around the tick chunk."""
        n = self.pick([0, 1, 100, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 7, 3 * CHUNK + 100])
        k = self.int(0, 5)
        if k <= 3:
            dst = self.int(0, PAGE - n)
        elif k == 4:  # out of bounds unless memory grew: traps before writing anything
            dst = PAGE - n + self.int(1, 64)
        else:
            dst = PAGE + self.int(0, PAGE - n)
        if self.chance(40):
            return [
                op("i32.const", dst),
                const(I32, self.number(I32)),
                op("i32.const", n),
                op("memory.fill", 0),
            ]
        src = min(max(dst + self.int(-n - 8, n + 8), 0), PAGE - n)  # overlapping, either way
        return [
            op("i32.const", dst),
            op("i32.const", src),
            op("i32.const", n),
            op("memory.copy", (0, 0)),
        ]


@st.composite
def programs(draw):
    """A valid module, the arguments of its function ``main``, and machine limits."""
    module, args = ProgramGen(draw).module()
    depth_limit = draw(st.one_of(st.just(10_000), st.integers(2, 8)))
    return module, args, depth_limit


piece_sizes = st.lists(
    st.one_of(st.integers(0, 5), st.integers(1, 60), st.integers(100, 2_000)),
    min_size=1,
    max_size=6,
)


# --- running ------------------------------------------------------------------------------


HUGE = 1 << 62


def drive(machine: Machine, sizes: list[int]) -> RunStatus:
    """Run the current call to its end in pieces of ``sizes`` (cycled), answering every
    suspended host call; checks that each ``run(ticks=k)`` performs at most k ticks, and
    exactly k while the call goes on."""
    if not any(sizes):
        sizes = [*sizes, 1]
    i = 0
    while True:
        if machine.status is RunStatus.SUSPENDED:
            reveal = machine.pending
            assert isinstance(reveal, _Reveal)
            machine.answer(reveal.reply)
        k = sizes[i % len(sizes)]
        i += 1
        before = machine.ticks
        status = machine.run(ticks=k)
        done = machine.ticks - before
        assert done <= k, f"run(ticks={k}) performed {done} ticks"
        if status is RunStatus.RUNNING:
            assert done == k, f"run(ticks={k}) stopped after {done} ticks while running"
        elif status is not RunStatus.SUSPENDED:
            return status


def _outcome(machine: Machine, stage: str) -> tuple:
    if machine.status is RunStatus.DONE:
        return (stage, "done", tuple(machine.results))
    assert machine.status is RunStatus.TRAPPED, machine.status
    assert isinstance(machine.trap, Trap | Exhaustion)
    return (stage, type(machine.trap).__name__, machine.trap.reason)


def _state(machine: Machine) -> tuple:
    # the instance, found through its functions: ``instantiate`` does not return it on a trap
    instance = next(f.instance for f in machine.funcs if isinstance(f, WasmFunc))
    return (
        machine.ticks,
        bytes(instance.mems[0].data),
        tuple(g.value for g in instance.globals),
    )


def _new_machine(depth_limit: int) -> Machine:
    return Machine(call_depth_limit=depth_limit, max_memory_pages=MEM_MAX_PAGES)


def run_straight(module: Module, args: list[int], depth_limit: int) -> tuple:
    """``instantiate`` then ``invoke``, each straight through (a suspended host call is
    answered, then the call runs on straight through)."""
    machine = _new_machine(depth_limit)
    try:
        instance = machine.instantiate(module, host_imports())
    except (Trap, Exhaustion):
        return _outcome(machine, "init"), _state(machine)
    except CallSuspended as suspended:  # the start function awaits an answer
        assert suspended.instance is not None
        instance = suspended.instance
        if drive(machine, [HUGE]) is RunStatus.TRAPPED:
            return _outcome(machine, "init"), _state(machine)
    try:
        machine.invoke(instance.export("main"), args)
    except (Trap, Exhaustion, CallSuspended):
        pass
    if machine.status is RunStatus.SUSPENDED:
        drive(machine, [HUGE])
    return _outcome(machine, "main"), _state(machine)


def run_in_pieces(module: Module, args: list[int], depth_limit: int, sizes: list[int]) -> tuple:
    """``allocate`` + ``begin_code`` (instantiation tick by tick), then ``start``, each run
    in pieces of the given sizes."""
    machine = _new_machine(depth_limit)
    instance, entry = machine.allocate(module, host_imports())
    if entry is not None:
        machine.begin_code(entry)
        if drive(machine, sizes) is RunStatus.TRAPPED:
            return _outcome(machine, "init"), _state(machine)
    machine.start(instance.export("main"), args)
    drive(machine, sizes)
    return _outcome(machine, "main"), _state(machine)


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(program=programs(), sizes=piece_sizes)
def test_running_in_pieces_equals_running_straight_through(program, sizes):
    module, args, depth_limit = program
    validate_module(module)
    straight = run_straight(module, args, depth_limit)
    pieces = run_in_pieces(module, args, depth_limit, sizes)
    assert pieces[0] == straight[0]  # status and results or trap
    assert pieces[1][0] == straight[1][0]  # total ticks
    assert pieces[1][1] == straight[1][1]  # memory bytes
    assert pieces[1][2] == straight[1][2]  # global values


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(program=programs(), budget=st.integers(0, 3_000))
def test_run_never_performs_more_ticks_than_asked(program, budget):
    module, args, depth_limit = program
    machine = _new_machine(depth_limit)
    instance, entry = machine.allocate(module, host_imports())
    if entry is not None:
        machine.begin_code(entry)
    else:
        machine.start(instance.export("main"), args)
    before = machine.ticks
    status = machine.run(ticks=budget)
    assert machine.ticks - before <= budget
    if status is RunStatus.RUNNING:
        assert machine.ticks - before == budget


# --- call depth -------------------------------------------------------------------------------


def _countdown_module(indirect: bool) -> Module:
    """``f(n) = n == 0 ? 0 : f(n - 1) + 1``, recursing by ``call`` or ``call_indirect``."""
    call = [op("i32.const", 0), op("call_indirect", (0, 0))] if indirect else [op("call", 0)]
    body = (
        op("local.get", 0),
        op("i32.eqz"),
        op("if", I32),
        op("i32.const", 0),
        op("else"),
        op("local.get", 0),
        op("i32.const", 1),
        op("i32.sub"),
        *call,
        op("i32.const", 1),
        op("i32.add"),
        op("end"),
        op("end"),
    )
    return Module(
        types=(FuncType((I32,), (I32,)),),
        funcs=(Func(0, (), body),),
        tables=(TableType(Limits(1, 1), ValType.FUNCREF),),
        exports=(Export("f", ExternKind.FUNC, 0),),
        elems=(
            Elem(
                ValType.FUNCREF,
                ((op("ref.func", 0),),),
                SegmentMode.ACTIVE,
                0,
                (op("i32.const", 0),),
            ),
        ),
    )


@pytest.mark.parametrize("indirect", [False, True], ids=["call", "call_indirect"])
@pytest.mark.parametrize("limit", [10_000, 60_000])
def test_recursion_deeper_than_the_limit_is_exhaustion_never_recursion_error(limit, indirect):
    module = _countdown_module(indirect)
    validate_module(module)

    machine = Machine(call_depth_limit=limit)
    f = machine.instantiate(module).export("f")
    assert machine.invoke(f, [limit - 10]) == [limit - 10]
    with pytest.raises(Exhaustion):
        machine.invoke(f, [limit + 10])

    # the same in pieces: the call ends TRAPPED with an Exhaustion, and the machine is reusable
    machine.start(f, [limit + 10])
    status = RunStatus.RUNNING
    while status is RunStatus.RUNNING:
        status = machine.run(ticks=77_777)
    assert status is RunStatus.TRAPPED
    assert isinstance(machine.trap, Exhaustion)
    assert machine.invoke(f, [3]) == [3]
