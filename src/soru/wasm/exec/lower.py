"""Lowering: a validated function body, flat and structured, becomes straight-line code.

WebAssembly control flow is structured (``block``/``loop``/``if`` … ``end``) and its operand
stack height at every instruction is known statically once the module is valid. Lowering
uses both facts so that the machine needs no label stack and no frame pointer at run time:

* ``block``, ``loop``, ``end``, ``nop`` emit nothing; ``if`` becomes a conditional jump and
  ``else`` an unconditional one; every branch carries its resolved target, the number of
  values it keeps (the label's arity) and the number of values it drops beneath them.
* Locals live on the value stack beneath the operands, so ``local.get i`` at operand height
  ``h`` in a function with ``L`` locals reads ``stack[i - L - h]`` — a constant negative
  index. ``return`` drops ``L + h - n`` values beneath its ``n`` results.
* Code after an unconditional transfer (``br``, ``br_table``, ``return``, ``unreachable``)
  up to the end of its block is dead and is not emitted.

The result is a list of :data:`LInstr` ``(op, imm)``: ``op`` is a WebAssembly opcode, or
one of the pseudo-opcodes below for lowered control; targets are indices into that list.
This list is plain data — it is what a machine state refers to by program counter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from soru.wasm import opcodes
from soru.wasm.syntax import BlockType, BrTable, Func, FuncType, Instr, Module, ValType

LInstr = tuple[int, object]

# Pseudo-opcodes of lowered control (outside the WebAssembly opcode space).
JUMP = 0x10000  # imm: target
BR = 0x10001  # imm: (target, drop, arity) — unconditional branch that unwinds
BR_IF = 0x10002  # imm: (target, drop, arity)
BR_TABLE = 0x10003  # imm: (tuple of (target, drop, arity), default (target, drop, arity))
IF_FALSE = 0x10004  # imm: target taken when the popped condition is zero
RETURN = 0x10005  # imm: (drop, arity)
CONST = 0x10006  # imm: value (any type) — used by instantiation code
CALL_ADDR = 0x10007  # imm: function address in the machine (instantiation's start call)

PSEUDO_NAMES = {
    JUMP: "jump",
    BR: "br",
    BR_IF: "br_if",
    BR_TABLE: "br_table",
    IF_FALSE: "if_false",
    RETURN: "return",
    CONST: "const",
    CALL_ADDR: "call_addr",
}

_OP_BLOCK, _OP_LOOP, _OP_IF, _OP_ELSE, _OP_END = 0x02, 0x03, 0x04, 0x05, 0x0B
_OP_BR, _OP_BR_IF, _OP_BR_TABLE, _OP_RETURN = 0x0C, 0x0D, 0x0E, 0x0F
_OP_UNREACHABLE, _OP_NOP, _OP_CALL, _OP_CALL_INDIRECT = 0x00, 0x01, 0x10, 0x11
_OP_LOCAL_GET, _OP_LOCAL_SET, _OP_LOCAL_TEE = 0x20, 0x21, 0x22

# Operand-stack effect (pops, pushes) of instructions whose typing is not in the opcode table.
_EFFECTS: dict[int, tuple[int, int]] = {
    0x1A: (1, 0),  # drop
    0x1B: (3, 1),  # select
    0x1C: (3, 1),  # select t
    0x23: (0, 1),  # global.get
    0x24: (1, 0),  # global.set
    0x25: (1, 1),  # table.get
    0x26: (2, 0),  # table.set
    0xD0: (0, 1),  # ref.null
    0xD1: (1, 1),  # ref.is_null
    0xD2: (0, 1),  # ref.func
    0xFC0C: (3, 0),  # table.init
    0xFC0E: (3, 0),  # table.copy
    0xFC0F: (2, 1),  # table.grow
    0xFC10: (0, 1),  # table.size
    0xFC11: (3, 0),  # table.fill
}


def stack_effect(op: int) -> tuple[int, int]:
    """(pops, pushes) of a non-control instruction with fixed arity."""
    effect = _EFFECTS.get(op)
    if effect is not None:
        return effect
    sig = opcodes.OPS[op].sig
    if sig is None:
        raise KeyError(f"no fixed stack effect for {opcodes.name(op)}")
    return len(sig[0]), len(sig[1])


def block_arity(module: Module, bt: BlockType) -> tuple[int, int]:
    """(params, results) of a block type."""
    if bt is None:
        return 0, 0
    if isinstance(bt, ValType):
        return 0, 1
    ft = module.types[bt]
    return len(ft.params), len(ft.results)


@dataclass(slots=True)
class _Ctrl:
    """A structured block being lowered."""

    is_loop: bool
    height: int  # operand height at entry, beneath the block's params
    params: int
    results: int
    start: int  # loop: branch target
    patches: list[tuple[int, int]] = field(default_factory=list)  # (instr index, slot)
    if_patch: int | None = None  # index of the IF_FALSE still to resolve
    dead: bool = False

    @property
    def label_arity(self) -> int:
        return self.params if self.is_loop else self.results


class _Lowerer:
    """Walks one flat body once, tracking the static operand height."""

    def __init__(self, module: Module, func_types: list[FuncType], ftype: FuncType, nlocals: int):
        self.module = module
        self.func_types = func_types
        self.nlocals = nlocals
        self.code: list[list] = []
        self.h = 0
        self.ctrls = [_Ctrl(False, 0, 0, len(ftype.results), 0)]
        self.dead_depth = 0  # nesting depth of blocks opened inside dead code
        self.at = 0  # index in the body of the instruction being lowered
        self.origins: list[int] = []  # for each emitted instruction, ``at`` when emitted

    def emit(self, op: int, imm: object = None) -> int:
        self.code.append([op, imm])
        self.origins.append(self.at)
        return len(self.code) - 1

    def branch_spec(self, depth: int, at: int, slot: int) -> tuple[int, int, int]:
        """(target, drop, arity) of a branch to label ``depth``; registers a patch if forward."""
        ctrl = self.ctrls[-1 - depth]
        arity = ctrl.label_arity
        drop = self.h - arity - ctrl.height
        if ctrl.is_loop:
            return ctrl.start, drop, arity
        ctrl.patches.append((at, slot))
        return -1, drop, arity

    def mark_dead(self) -> None:
        self.ctrls[-1].dead = True

    def run(self, body: tuple[Instr, ...]) -> list[LInstr]:
        for self.at, (op, imm) in enumerate(body):
            if self.ctrls[-1].dead and op not in (_OP_ELSE, _OP_END):
                if op in (_OP_BLOCK, _OP_LOOP, _OP_IF):
                    self.dead_depth += 1
                continue
            if self.dead_depth and op == _OP_END:
                self.dead_depth -= 1
                continue
            if self.dead_depth and op == _OP_ELSE:
                continue
            self.step(op, imm)
        return [(op, _frozen(op, imm)) for op, imm in self.code]

    def step(self, op: int, imm: object) -> None:
        handler: Callable[[_Lowerer, Any], None] | None = _CONTROL.get(op)
        if handler is not None:
            handler(self, imm)
            return
        if op in (_OP_LOCAL_GET, _OP_LOCAL_SET, _OP_LOCAL_TEE):
            self.local(op, cast(int, imm))
            return
        if op == _OP_CALL:
            ft = self.func_types[cast(int, imm)]
            self.emit(op, imm)
            self.h += len(ft.results) - len(ft.params)
            return
        if op == _OP_CALL_INDIRECT:
            ft = self.module.types[cast(tuple, imm)[0]]
            self.emit(op, imm)
            self.h += len(ft.results) - len(ft.params) - 1
            return
        if op == _OP_NOP:
            return
        pops, pushes = stack_effect(op)
        self.emit(op, imm)
        self.h += pushes - pops

    def local(self, op: int, index: int) -> None:
        if op == _OP_LOCAL_GET:
            self.emit(op, index - self.nlocals - self.h)
            self.h += 1
        elif op == _OP_LOCAL_SET:
            self.h -= 1
            self.emit(op, index - self.nlocals - self.h)
        else:
            self.emit(op, index - self.nlocals - self.h)

    # --- structured control ---------------------------------------------------------------
    def block(self, imm: BlockType, is_loop: bool = False) -> None:
        params, results = block_arity(self.module, imm)
        self.ctrls.append(_Ctrl(is_loop, self.h - params, params, results, len(self.code)))

    def if_(self, imm: BlockType) -> None:
        self.h -= 1
        params, results = block_arity(self.module, imm)
        at = self.emit(IF_FALSE, -1)
        self.ctrls.append(_Ctrl(False, self.h - params, params, results, at, if_patch=at))

    def else_(self, _imm: object) -> None:
        ctrl = self.ctrls[-1]
        if not ctrl.dead:
            at = self.emit(JUMP, -1)
            ctrl.patches.append((at, -1))
        if ctrl.if_patch is not None:
            self.code[ctrl.if_patch][1] = len(self.code)
            ctrl.if_patch = None
        ctrl.dead = False
        self.h = ctrl.height + ctrl.params

    def end(self, _imm: object) -> None:
        ctrl = self.ctrls.pop()
        here = len(self.code)
        if not self.ctrls:  # the function's final end: branches to its label return
            if not ctrl.dead or ctrl.patches:
                self.emit(RETURN, (self.nlocals, ctrl.results))
            for at, slot in ctrl.patches:
                self.resolve(at, slot, here)
            return
        if ctrl.if_patch is not None:
            self.code[ctrl.if_patch][1] = here
        for at, slot in ctrl.patches:
            self.resolve(at, slot, here)
        self.h = ctrl.height + ctrl.results

    def resolve(self, at: int, slot: int, target: int) -> None:
        instr = self.code[at]
        if slot == -1:
            instr[1] = target
        elif instr[0] == BR_TABLE:  # [entries, default] while lowering: patched in place
            table = instr[1]
            if slot == len(table[0]):
                table[1] = (target, *table[1][1:])
            else:
                table[0][slot] = (target, *table[0][slot][1:])
        else:
            instr[1] = (target, *instr[1][1:])

    def br(self, depth: int) -> None:
        at = len(self.code)
        spec = self.branch_spec(depth, at, 0)
        if spec[1] == 0:
            self.emit(JUMP, spec[0])
            if spec[0] == -1:
                self.ctrls[-1 - depth].patches[-1] = (at, -1)
        else:
            self.emit(BR, spec)
        self.mark_dead()

    def br_if(self, depth: int) -> None:
        self.h -= 1
        at = len(self.code)
        self.emit(BR_IF, self.branch_spec(depth, at, 0))

    def br_table(self, imm: BrTable) -> None:
        self.h -= 1
        at = len(self.code)
        entries = [self.branch_spec(d, at, i) for i, d in enumerate(imm.labels)]
        default = self.branch_spec(imm.default, at, len(imm.labels))
        self.emit(BR_TABLE, [entries, default])
        self.mark_dead()

    def return_(self, _imm: object) -> None:
        n = self.ctrls[0].results
        self.emit(RETURN, (self.nlocals + self.h - n, n))
        self.mark_dead()

    def unreachable(self, _imm: object) -> None:
        self.emit(_OP_UNREACHABLE)
        self.mark_dead()


def _frozen(op: int, imm: object) -> object:
    """The immutable immediate of a lowered instruction (br_table's is patched as lists)."""
    if op == BR_TABLE:
        table = cast(list, imm)
        return (tuple(table[0]), table[1])
    return imm


_CONTROL: dict[int, Callable[[_Lowerer, Any], None]] = {
    _OP_BLOCK: lambda lw, imm: lw.block(imm),
    _OP_LOOP: lambda lw, imm: lw.block(imm, is_loop=True),
    _OP_IF: _Lowerer.if_,
    _OP_ELSE: _Lowerer.else_,
    _OP_END: _Lowerer.end,
    _OP_BR: _Lowerer.br,
    _OP_BR_IF: _Lowerer.br_if,
    _OP_BR_TABLE: _Lowerer.br_table,
    _OP_RETURN: _Lowerer.return_,
    _OP_UNREACHABLE: _Lowerer.unreachable,
}


def lower_function(module: Module, func_types: list[FuncType], func: Func) -> list[LInstr]:
    """Lower one validated function body to straight-line code (see the module docstring).

    ``func_types`` is the type of every function in the module's function index space.
    """
    return lower_function_traced(module, func_types, func)[0]


def lower_function_traced(
    module: Module, func_types: list[FuncType], func: Func
) -> tuple[list[LInstr], list[int]]:
    """:func:`lower_function`, and for each lowered instruction the index in ``func.body`` of
    the instruction it comes from (a function's final ``RETURN`` comes from its final
    ``end``). Instructions that emit nothing — structure, ``nop``, dead code — appear in no
    origin. ``soru.wasm.instrument`` uses this to count ticks exactly as lowering emits them.
    """
    ftype = module.types[func.type_index]
    nlocals = len(ftype.params) + len(func.locals)
    lowerer = _Lowerer(module, func_types, ftype, nlocals)
    return lowerer.run(func.body), lowerer.origins
