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

from collections.abc import Callable, Sequence
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
class Ctrl:
    """A structured block being lowered (``ordinal``: its rank among the blocks lowered in
    the function, the function's own block being 0)."""

    is_loop: bool
    height: int  # operand height at entry, beneath the block's params
    params: int
    results: int
    start: int  # loop: branch target
    ordinal: int = 0
    patches: list[tuple[int, int]] = field(default_factory=list)  # (instr index, slot)
    if_open: bool = False  # an ``if`` whose false branch target is still to come
    dead: bool = False
    branched: bool = False  # some branch targets this block's end
    else_pc: int = -1  # where the false branch of an ``if`` goes (once known)
    end_pc: int = -1  # where the block's end is (once known)

    @property
    def label_arity(self) -> int:
        return self.params if self.is_loop else self.results


Targets = Callable[[int], tuple[int, int]]
"""For a block's ordinal, ``(else_pc, end_pc)``: where its ``if`` jumps when false and where
its end is (``-1``: not needed). Lowering in runs (:class:`Lowerer` with ``targets``) takes
them from a first pass instead of patching branches emitted earlier."""


class Lowerer:
    """Walks one flat body, tracking the static operand height.

    By default the whole body is lowered at once and forward branches are patched when their
    block ends. Given ``targets``, the body may be lowered in *runs* (``run`` called on
    consecutive pieces, the state carried by the attributes): forward branches then take
    their targets from ``targets``, nothing is patched, and ``code`` holds the current run's
    instructions only, the first at ``first``. A first pass with ``targets`` giving ``-1``
    computes the real targets: each block's ``else_pc``/``end_pc`` when it is popped
    (``ended``).
    """

    def __init__(self, module: Module, func_types: Sequence[FuncType], results: int,
                 nlocals: int, targets: Targets | None = None) -> None:  # fmt: skip
        self.module = module
        self.func_types = func_types
        self.nlocals = nlocals
        self.targets = targets
        self.code: list[list] = []
        self.first = 0  # pc of code[0]
        self.h = 0
        self.ctrls: Any = [Ctrl(False, 0, 0, results, 0)]
        self.ordinals = 1  # blocks opened so far, the function's own included
        self.dead_depth = 0  # nesting depth of blocks opened inside dead code
        self.at = 0  # index in the body of the instruction being lowered
        self.origins: list[int] = []  # for each emitted instruction, ``at`` when emitted
        self.ended: list[Ctrl] = []  # blocks popped (kept only with ``targets``)

    @property
    def pc(self) -> int:
        return self.first + len(self.code)

    def emit(self, op: int, imm: object = None) -> int:
        self.code.append([op, imm])
        self.origins.append(self.at)
        return self.pc - 1

    def branch_spec(self, depth: int, at: int, slot: int) -> tuple[int, int, int]:
        """(target, drop, arity) of a branch to label ``depth``; registers a patch if forward."""
        ctrl = self.ctrls[-1 - depth]
        arity = ctrl.label_arity
        drop = self.h - arity - ctrl.height
        if ctrl.is_loop:
            return ctrl.start, drop, arity
        ctrl.branched = True
        if self.targets is not None:
            return ctrl.end_pc, drop, arity
        ctrl.patches.append((at, slot))
        return -1, drop, arity

    def mark_dead(self) -> None:
        self.ctrls[-1].dead = True

    def run(self, body: Sequence[Instr], at: int = 0) -> list[LInstr]:
        """Lower ``body`` (whose first instruction is number ``at`` of the function's)."""
        for self.at, (op, imm) in enumerate(body, at):
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
        handler: Callable[[Lowerer, Any], None] | None = _CONTROL.get(op)
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
    def push(self, ctrl: Ctrl) -> None:
        ctrl.ordinal = self.ordinals
        self.ordinals += 1
        if self.targets is not None and not ctrl.is_loop:
            ctrl.else_pc, ctrl.end_pc = self.targets(ctrl.ordinal)
        self.ctrls.append(ctrl)

    def block(self, imm: BlockType, is_loop: bool = False) -> None:
        params, results = block_arity(self.module, imm)
        self.push(Ctrl(is_loop, self.h - params, params, results, self.pc))

    def if_(self, imm: BlockType) -> None:
        self.h -= 1
        params, results = block_arity(self.module, imm)
        ctrl = Ctrl(False, self.h - params, params, results, self.pc, if_open=True)
        self.push(ctrl)
        at = self.emit(IF_FALSE, ctrl.else_pc)
        if self.targets is None:
            ctrl.start = at  # the IF_FALSE to patch

    def else_(self, _imm: object) -> None:
        ctrl = self.ctrls[-1]
        if not ctrl.dead:
            at = self.emit(JUMP, ctrl.end_pc)
            if self.targets is None:
                ctrl.patches.append((at, -1))
        if ctrl.if_open:
            if self.targets is None:
                self.code[ctrl.start][1] = self.pc
            elif ctrl.else_pc == -1:  # the first pass: the target is known now
                ctrl.else_pc = self.pc
            ctrl.if_open = False
        ctrl.dead = False
        self.h = ctrl.height + ctrl.params

    def end(self, _imm: object) -> None:
        ctrl = self.ctrls.pop()
        here = self.pc
        if ctrl.if_open:
            if self.targets is None:
                self.code[ctrl.start][1] = here
            elif ctrl.else_pc == -1:
                ctrl.else_pc = here
        if self.targets is not None:
            ctrl.end_pc = here
            self.ended.append(ctrl)
        for at, slot in ctrl.patches:
            self.resolve(at, slot, here)
        if not self.ctrls:  # the function's final end: branches to its label return
            if not ctrl.dead or ctrl.branched:
                self.emit(RETURN, (self.nlocals, ctrl.results))
            return
        self.h = ctrl.height + ctrl.results

    def resolve(self, at: int, slot: int, target: int) -> None:
        if self.targets is not None:
            return
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
        at = self.pc
        spec = self.branch_spec(depth, at, 0)
        if spec[1] == 0:
            self.emit(JUMP, spec[0])
            ctrl = self.ctrls[-1 - depth]
            if not ctrl.is_loop and self.targets is None:
                ctrl.patches[-1] = (at, -1)
        else:
            self.emit(BR, spec)
        self.mark_dead()

    def br_if(self, depth: int) -> None:
        self.h -= 1
        at = self.pc
        self.emit(BR_IF, self.branch_spec(depth, at, 0))

    def br_table(self, imm: BrTable) -> None:
        self.h -= 1
        at = self.pc
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


_CONTROL: dict[int, Callable[[Lowerer, Any], None]] = {
    _OP_BLOCK: lambda lw, imm: lw.block(imm),
    _OP_LOOP: lambda lw, imm: lw.block(imm, is_loop=True),
    _OP_IF: Lowerer.if_,
    _OP_ELSE: Lowerer.else_,
    _OP_END: Lowerer.end,
    _OP_BR: Lowerer.br,
    _OP_BR_IF: Lowerer.br_if,
    _OP_BR_TABLE: Lowerer.br_table,
    _OP_RETURN: Lowerer.return_,
    _OP_UNREACHABLE: Lowerer.unreachable,
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
    lowerer = Lowerer(module, func_types, len(ftype.results), nlocals)
    return lowerer.run(func.body), lowerer.origins
