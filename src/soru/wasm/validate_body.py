"""Function-body type checking (the spec Appendix's "Validation Algorithm") against a
:class:`~soru.wasm.validate_context.Context`; ``validate`` does the module-level checks and
calls :class:`BodyChecker`.

A body is checked in one pass: an operand stack of value types and a stack of control frames.
A frame remembers the block's input and output types, the operand height at its entry and
whether the rest of its body is *unreachable*; popping below an unreachable frame's height
yields ``UNKNOWN``, a type that matches anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from soru.wasm.errors import InvalidModule
from soru.wasm.opcodes import OPS, Imm, OpInfo
from soru.wasm.syntax import BrTable, Func, Instr, ValType
from soru.wasm.validate_context import Context, Signature

UNKNOWN = 0
"""The operand type of the spec's algorithm that stands for any type in unreachable code."""

_I32, _I64, _F32, _F64 = int(ValType.I32), int(ValType.I64), int(ValType.F32), int(ValType.F64)
_V128, _FUNCREF, _EXTERNREF = int(ValType.V128), int(ValType.FUNCREF), int(ValType.EXTERNREF)
_REFS = frozenset((_FUNCREF, _EXTERNREF))
_NUMS_OR_VEC = frozenset((_I32, _I64, _F32, _F64, _V128, UNKNOWN))

MAX_MEMORY_PAGES = 65536
"""A memory holds at most 2^16 pages of 64 KiB (4 GiB)."""

MAX_TABLE_SIZE = 2**32 - 1
"""A table holds at most 2^32 - 1 elements."""

_LOOP = 0x03
_IF = 0x04
_CONST_TYPES = {0x41: _I32, 0x42: _I64, 0x43: _F32, 0x44: _F64}


class _Invalid(Exception):
    """A fault found inside a function body; the body loop adds where it happened."""


def _index(index: object, count: int, what: str) -> int:
    """``index`` if it names one of ``count`` things; else fault with "unknown <what>"."""
    if isinstance(index, int) and 0 <= index < count:
        return index
    raise _Invalid(f"unknown {what} {index}")


def _pair(imm: object) -> tuple[int, int]:
    """The two indices of a two-index immediate (``call_indirect``, ``table.copy``…)."""
    if isinstance(imm, tuple) and len(imm) == 2:
        return imm[0], imm[1]
    raise _Invalid(f"malformed immediate {imm!r}")


_TYPE_NAMES = {int(t): t.text for t in ValType}


def _type_name(t: int) -> str:
    return _TYPE_NAMES.get(t, "unknown")


def _types_text(types: Sequence[int]) -> str:
    return "[" + " ".join(_type_name(t) for t in types) + "]"


# --- the body checker ------------------------------------------------------------------------


class Frame:
    """A control frame: the block's opcode, input and output types, the types a branch to
    it carries (``label``), the operand height at entry, and whether the rest is dead."""

    __slots__ = ("kind", "start", "end", "label", "height", "unreachable")

    def __init__(self, kind: int, start: list[int], end: list[int], height: int) -> None:
        self.kind = kind
        self.start = start
        self.end = end
        self.label = start if kind == _LOOP else end
        self.height = height
        self.unreachable = False


_Handler = Callable[["BodyChecker", int, object], None]


class BodyChecker:
    """Type-checks function bodies of one module; reused from one function to the next."""

    __slots__ = ("ctx", "vals", "ctrl", "locals")

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.vals: list[int] = []
        self.ctrl: list[Frame] = []
        self.locals: list[int] = []

    def check(self, func_index: int, func: Func) -> None:
        """Check the body of function ``func_index``; raise InvalidModule if ill-typed."""
        params, results = self.ctx.funcs[func_index]
        self.start(params + [int(t) for t in func.locals], results)
        pos = self.feed(func_index, func.body)
        if self.ctrl or pos != len(func.body) - 1:
            raise InvalidModule(f"function {func_index}: body must end with its final end")

    def start(self, local_types: Any, results: list[int],
              vals: Any = None, ctrl: Any = None) -> None:  # fmt: skip
        """Begin a body whose locals (parameters first) have ``local_types``. A body may be
        checked in pieces (:meth:`feed` called on consecutive runs of instructions); the
        state is ``vals`` and ``ctrl`` (given: stacks kept elsewhere, such as the kernel
        loader's in the Merkle tree, holding :class:`Frame` items), and the locals."""
        self.locals = local_types  # type: ignore[assignment]
        self.vals = [] if vals is None else vals
        self.ctrl = [Frame(0x02, [], results, 0)] if ctrl is None else ctrl

    def feed(self, func_index: int, body: Sequence[Instr], first: int = 0) -> int:
        """Check ``body``, the instructions from number ``first`` of function ``func_index``;
        return the position in ``body`` of the function's final ``end`` (-1: not reached)."""
        try:
            return self._run(body)
        except _Invalid as fault:
            pos = fault.args[1]
            op = body[pos].op
            name = OPS[op].name if op in OPS else hex(op)
            raise InvalidModule(
                f"{fault.args[0]} in function {func_index} at instruction {first + pos} ({name})"
            ) from None

    def _run(self, body: Sequence[Instr]) -> int:
        """The hot loop: fixed-typed instructions inline, the rest through ``_HANDLERS``.
        Returns the position of the function's final ``end`` (-1: none). A fault is re-raised with
        its position as the second argument."""
        vals = self.vals
        ctrl = self.ctrl
        local_types = self.locals
        local_count = len(local_types)
        pure = _PURE
        handlers = _HANDLERS
        pos = -1
        try:
            for pos, (op, imm) in enumerate(body):  # noqa: B007 (pos read in except)
                if op == 0x20 and type(imm) is int and 0 <= imm < local_count:  # local.get
                    vals.append(local_types[imm])
                    continue
                sig = pure.get(op)
                if sig is not None:
                    params, result = sig
                    if params:
                        n = len(params)
                        top = len(vals)
                        if top - ctrl[-1].height >= n and vals[top - n :] == params:
                            del vals[top - n :]
                        else:
                            self.pop_vals(params)
                    if result:
                        vals.append(result)
                    continue
                handler = handlers.get(op)
                if handler is None:
                    raise _Invalid(f"unknown instruction {op:#x}")
                handler(self, op, imm)
                if not ctrl:
                    return pos
        except _Invalid as fault:
            raise _Invalid(fault.args[0], pos) from None
        return -1

    # operand stack -----------------------------------------------------------------------

    def pop_any(self) -> int:
        frame = self.ctrl[-1]
        if len(self.vals) == frame.height:
            if frame.unreachable:
                return UNKNOWN
            raise _Invalid("type mismatch: expected a value, found an empty stack")
        return self.vals.pop()

    def pop_expect(self, expect: int) -> int:
        actual = self.pop_any()
        if actual != expect and actual != UNKNOWN and expect != UNKNOWN:
            raise _Invalid(
                f"type mismatch: expected {_type_name(expect)}, found {_type_name(actual)}"
            )
        return actual

    def pop_vals(self, types: list[int]) -> list[int]:
        """Pop operands of ``types`` (last on top); return the types found (some UNKNOWN)."""
        vals = self.vals
        n = len(types)
        top = len(vals)
        if top - self.ctrl[-1].height >= n and vals[top - n :] == types:
            del vals[top - n :]
            return types
        popped = [self.pop_expect(t) for t in reversed(types)]
        popped.reverse()
        return popped

    def push_ctrl(self, kind: int, start: list[int], end: list[int]) -> None:
        self.ctrl.append(Frame(kind, start, end, len(self.vals)))
        self.vals.extend(start)

    def pop_ctrl(self) -> Frame:
        frame = self.ctrl[-1]
        self.pop_vals(frame.end)
        if len(self.vals) != frame.height:
            extra = _types_text(self.vals[frame.height :])
            raise _Invalid(f"type mismatch: values {extra} remain at the end of the block")
        self.ctrl.pop()
        return frame

    def set_unreachable(self) -> None:
        frame = self.ctrl[-1]
        del self.vals[frame.height :]
        frame.unreachable = True

    def apply(self, op: int) -> None:
        """Pop and push the fixed types that the opcode table gives ``op``."""
        params, results = _SIGS[op]
        self.pop_vals(params)
        self.vals.extend(results)

    # index lookups ----------------------------------------------------------------------

    def label(self, depth: object) -> Frame:
        return self.ctrl[-1 - _index(depth, len(self.ctrl), "label")]

    def block_type(self, bt: object) -> Signature:
        if bt is None:
            return [], []
        if isinstance(bt, ValType):
            return [], [int(bt)]
        if isinstance(bt, int) and 0 <= bt < len(self.ctx.types):
            return self.ctx.types[bt]
        raise _Invalid(f"unknown type {bt}")

    def table(self, index: object) -> int:
        return self.ctx.tables[_index(index, len(self.ctx.tables), "table")]

    def memory(self, index: object) -> None:
        _index(index, self.ctx.mems, "memory")

    def elem(self, index: object) -> int:
        return self.ctx.elems[_index(index, len(self.ctx.elems), "elem segment")]

    def data(self, index: object) -> None:
        if not self.ctx.has_data_count:
            raise _Invalid("data count section required")
        _index(index, self.ctx.datas, "data segment")

    def func(self, index: object) -> Signature:
        return self.ctx.funcs[_index(index, len(self.ctx.funcs), "function")]

    def local(self, index: object) -> int:
        return self.locals[_index(index, len(self.locals), "local")]

    def global_(self, index: object) -> tuple[int, bool]:
        return self.ctx.globals[_index(index, len(self.ctx.globals), "global")]

    # instruction handlers: op_<name>(opcode, immediate), found by name in _HANDLERS --

    def op_unreachable(self, op: int, imm: object) -> None:
        self.set_unreachable()

    def op_block(self, op: int, imm: object) -> None:
        """``block``, ``loop`` and ``if`` (which first pops its i32 condition)."""
        params, results = self.block_type(imm)
        if op == _IF:
            self.pop_expect(_I32)
        self.pop_vals(params)
        self.push_ctrl(op, params, results)

    def op_else(self, op: int, imm: object) -> None:
        if self.ctrl[-1].kind != _IF:
            raise _Invalid("else without a matching if")
        frame = self.pop_ctrl()
        self.push_ctrl(0x05, frame.start, frame.end)

    def op_end(self, op: int, imm: object) -> None:
        frame = self.pop_ctrl()
        if frame.kind == _IF and frame.start != frame.end:
            raise _Invalid(
                "type mismatch: if without else must have equal input and output types, "
                f"not {_types_text(frame.start)} -> {_types_text(frame.end)}"
            )
        self.vals.extend(frame.end)

    def op_br(self, op: int, imm: object) -> None:
        self.pop_vals(self.label(imm).label)
        self.set_unreachable()

    def op_br_if(self, op: int, imm: object) -> None:
        self.pop_expect(_I32)
        label = self.label(imm).label
        self.pop_vals(label)
        self.vals.extend(label)

    def op_br_table(self, op: int, imm: object) -> None:
        if not isinstance(imm, BrTable):
            raise _Invalid(f"malformed immediate {imm!r}")
        labels, default = imm
        self.pop_expect(_I32)
        default_types = self.label(default).label
        arity = len(default_types)
        for depth in labels:
            types = self.label(depth).label
            if len(types) != arity:
                raise _Invalid(
                    f"type mismatch: br_table label {depth} carries {_types_text(types)}, "
                    f"the default {_types_text(default_types)}"
                )
            self.vals.extend(self.pop_vals(types))
        self.pop_vals(default_types)
        self.set_unreachable()

    def op_return(self, op: int, imm: object) -> None:
        self.pop_vals(self.ctrl[0].end)
        self.set_unreachable()

    def op_call(self, op: int, imm: object) -> None:
        params, results = self.func(imm)
        self.pop_vals(params)
        self.vals.extend(results)

    def op_call_indirect(self, op: int, imm: object) -> None:
        type_index, table_index = _pair(imm)
        if self.table(table_index) != _FUNCREF:
            raise _Invalid(f"type mismatch: call_indirect through table {table_index} of externref")
        if not 0 <= type_index < len(self.ctx.types):
            raise _Invalid(f"unknown type {type_index}")
        params, results = self.ctx.types[type_index]
        self.pop_expect(_I32)
        self.pop_vals(params)
        self.vals.extend(results)

    def op_ref_null(self, op: int, imm: object) -> None:
        if not (isinstance(imm, int) and imm in _REFS):
            raise _Invalid(f"type mismatch: ref.null of non-reference type {imm!r}")
        self.vals.append(int(imm))

    def op_ref_is_null(self, op: int, imm: object) -> None:
        t = self.pop_any()
        if t != UNKNOWN and t not in _REFS:
            raise _Invalid(f"type mismatch: ref.is_null of {_type_name(t)}")
        self.vals.append(_I32)

    def op_ref_func(self, op: int, imm: object) -> None:
        self.func(imm)
        if imm not in self.ctx.refs:
            raise _Invalid(f"undeclared function reference {imm}")
        self.vals.append(_FUNCREF)

    def op_drop(self, op: int, imm: object) -> None:
        self.pop_any()

    def op_select(self, op: int, imm: object) -> None:
        """Untyped ``select`` chooses between two numeric operands of the same type."""
        self.pop_expect(_I32)
        t1 = self.pop_any()
        t2 = self.pop_any()
        if t1 not in _NUMS_OR_VEC or t2 not in _NUMS_OR_VEC:
            raise _Invalid("type mismatch: select without a type needs numeric operands")
        if t1 != t2 and t1 != UNKNOWN and t2 != UNKNOWN:
            raise _Invalid(f"type mismatch: select of {_type_name(t2)} and {_type_name(t1)}")
        self.vals.append(t1 if t1 != UNKNOWN else t2)

    def op_select_t(self, op: int, imm: object) -> None:
        if not (isinstance(imm, tuple) and len(imm) == 1):
            raise _Invalid(f"invalid result arity: typed select with types {imm!r}")
        t = int(imm[0])
        self.pop_expect(_I32)
        self.pop_expect(t)
        self.pop_expect(t)
        self.vals.append(t)

    def op_local_get(self, op: int, imm: object) -> None:
        self.vals.append(self.local(imm))

    def op_local_set(self, op: int, imm: object) -> None:
        self.pop_expect(self.local(imm))

    def op_local_tee(self, op: int, imm: object) -> None:
        t = self.local(imm)
        self.pop_expect(t)
        self.vals.append(t)

    def op_global_get(self, op: int, imm: object) -> None:
        self.vals.append(self.global_(imm)[0])

    def op_global_set(self, op: int, imm: object) -> None:
        t, mutable = self.global_(imm)
        if not mutable:
            raise _Invalid(f"global is immutable: global.set of global {imm}")
        self.pop_expect(t)

    def op_table(self, op: int, imm: object) -> None:
        """table.get, set, size, grow and fill: fixed types around the table's element type."""
        element = self.table(imm)
        params, results = _TABLE_SIGS[op]
        self.pop_vals([t or element for t in params])
        self.vals.extend(t or element for t in results)

    def op_table_copy(self, op: int, imm: object) -> None:
        dst, src = _pair(imm)
        if self.table(dst) != self.table(src):
            raise _Invalid(
                f"type mismatch: table.copy between tables {dst} and {src} of other types"
            )
        self.pop_vals([_I32, _I32, _I32])

    def op_table_init(self, op: int, imm: object) -> None:
        elem, table = _pair(imm)
        if self.table(table) != self.elem(elem):
            raise _Invalid(f"type mismatch: elem segment {elem} does not match table {table}")
        self.pop_vals([_I32, _I32, _I32])

    def op_elem_drop(self, op: int, imm: object) -> None:
        self.elem(imm)

    def op_memarg(self, op: int, imm: object) -> None:
        """Loads and stores: a memory must exist and the alignment must not exceed the width."""
        self.memory(0)
        align, _offset = _pair(imm)
        if align > _MAX_ALIGN[op]:
            raise _Invalid(
                f"alignment must not be larger than natural: 2**{align} > {OPS[op].width} bytes"
            )
        self.apply(op)

    def op_memory(self, op: int, imm: object) -> None:
        """memory.size, memory.grow, memory.fill: ``imm`` is the memory index."""
        self.memory(imm)
        self.apply(op)

    def op_memory_copy(self, op: int, imm: object) -> None:
        dst, src = _pair(imm)
        self.memory(dst)
        self.memory(src)
        self.apply(op)

    def op_memory_init(self, op: int, imm: object) -> None:
        data, memory = _pair(imm)
        self.memory(memory)
        self.data(data)
        self.apply(op)

    def op_data_drop(self, op: int, imm: object) -> None:
        self.data(imm)


# Handlers shared by several opcodes; every other opcode ``a.b`` is handled by ``op_a_b``.
_SHARED_HANDLERS = {
    "loop": "block", "if": "block",
    "memory.size": "memory", "memory.grow": "memory", "memory.fill": "memory",
    "table.get": "table", "table.set": "table", "table.size": "table",
    "table.grow": "table", "table.fill": "table",
}  # fmt: skip
# Types of the table instructions that ``op_table`` checks; 0 is the table's element type.
_TABLE_SIGS: dict[int, Signature] = {
    0x25: ([_I32], [0]), 0x26: ([_I32, 0], []), 0xFC10: ([], [_I32]),
    0xFC0F: ([0, _I32], [_I32]), 0xFC11: ([_I32, 0, _I32], []),
}  # fmt: skip


def _find_handler(entry: OpInfo) -> _Handler | None:
    """The method of :class:`BodyChecker` that types ``entry``, if it has one."""
    if entry.imm == Imm.MEMARG:
        name = "memarg"
    else:
        name = _SHARED_HANDLERS.get(entry.name, entry.name).replace(".", "_")
    return getattr(BodyChecker, "op_" + name, None)


# Instructions whose typing is fixed and that have no index to check are typed inline by
# the hot loop from ``_PURE``: (params, the one result or None).
_SIGS: dict[int, Signature] = {
    op: ([int(t) for t in e.sig[0]], [int(t) for t in e.sig[1]])
    for op, e in OPS.items()
    if e.sig is not None
}
_PURE: dict[int, tuple[list[int], int | None]] = {
    op: (_SIGS[op][0], _SIGS[op][1][0] if _SIGS[op][1] else None)
    for op, e in OPS.items()
    if e.sig is not None and len(e.sig[1]) <= 1 and _find_handler(e) is None
}
_HANDLERS: dict[int, _Handler] = {
    op: handler for op, e in OPS.items() if op not in _PURE and (handler := _find_handler(e))
}
# Largest alignment exponent of each load and store: log2 of its width in bytes.
_MAX_ALIGN: dict[int, int] = {
    op: e.width.bit_length() - 1 for op, e in OPS.items() if e.imm == Imm.MEMARG
}
