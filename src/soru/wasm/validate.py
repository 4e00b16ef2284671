"""Validation: whether a decoded module type-checks (spec chapter 3 and its Appendix
"Validation Algorithm"), for WebAssembly 2.0 without SIMD.

A decoded module is *valid* when every index it uses names something that exists, each
constant expression is constant and has the type its place expects, limits are in range,
there is at most one memory, export names are unique, the start function has type
``[] -> []``, ``ref.func`` names only functions the module declares outside function bodies
(its *references*: in globals, element segments and exports), and every function body
type-checks.

A body is checked in one pass, by the spec's algorithm: an operand stack of value types and a
stack of control frames. A frame remembers the block's input and output types, the operand
height at its entry and whether the rest of its body is *unreachable* (after ``br``,
``return``, ``unreachable``…). Popping below an unreachable frame's height yields
``UNKNOWN``, a type that matches anything, so dead code is still checked but
polymorphically.

This sits between ``binary`` (bytes to a Module) and ``runtime`` (which instantiates only
valid modules). Every failure raises :class:`InvalidModule` whose message starts with the
spec's wording (``type mismatch``, ``unknown local``…) and says where the fault is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from soru.wasm.errors import InvalidModule
from soru.wasm.opcodes import OPS, Imm
from soru.wasm.syntax import (
    Elem,
    ExternKind,
    Func,
    FuncType,
    GlobalType,
    Instr,
    Limits,
    MemType,
    Module,
    SegmentMode,
    TableType,
    ValType,
)

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
_END = 0x0B
_CONST_TYPES = {0x41: _I32, 0x42: _I64, 0x43: _F32, 0x44: _F64}


class _Invalid(Exception):
    """A fault found inside a function body; the body loop adds where it happened."""


def _type_name(t: int) -> str:
    return ValType(t).text if t in ValType._value2member_map_ else "unknown"


def _types_text(types: Sequence[int]) -> str:
    return "[" + " ".join(_type_name(t) for t in types) + "]"


Signature = tuple[list[int], list[int]]
"""A function or block type as plain-int lists: parameter types, result types."""


def _signature(ftype: FuncType) -> Signature:
    return [int(t) for t in ftype.params], [int(t) for t in ftype.results]


class _Context:
    """The spec's context C: what a body or constant expression may refer to, by index."""

    __slots__ = (
        "types",
        "funcs",
        "tables",
        "mems",
        "globals",
        "imported_globals",
        "elems",
        "datas",
        "has_data_count",
        "refs",
    )

    def __init__(self, module: Module) -> None:
        self.types: list[Signature] = [_signature(t) for t in module.types]
        self.funcs: list[Signature] = []
        self.tables: list[int] = []  # element type of each table
        self.mems = 0
        self.globals: list[tuple[int, bool]] = []  # (value type, mutable)
        for imp in module.imports:
            self._add_import(imp.kind, imp.desc, f"import {imp.module!r} {imp.name!r}")
        self.imported_globals = len(self.globals)
        for i, func in enumerate(module.funcs):
            self.funcs.append(self._type_at(func.type_index, f"function {i}"))
        for table in module.tables:
            self.tables.append(int(table.elem))
        self.mems += len(module.mems)
        for glob in module.globals:
            self.globals.append((int(glob.type.valtype), glob.type.mutable))
        self.elems: list[int] = [int(e.type) for e in module.elems]
        self.datas = len(module.datas)
        self.has_data_count = module.data_count is not None
        self.refs = _declared_references(module)

    def _type_at(self, index: int, where: str) -> Signature:
        if not 0 <= index < len(self.types):
            raise InvalidModule(f"unknown type {index}: {where}")
        return self.types[index]

    def _add_import(self, kind: ExternKind, desc: object, where: str) -> None:
        if kind == ExternKind.FUNC and isinstance(desc, int):
            self.funcs.append(self._type_at(desc, where))
        elif kind == ExternKind.TABLE and isinstance(desc, TableType):
            self.tables.append(int(desc.elem))
        elif kind == ExternKind.MEMORY and isinstance(desc, MemType):
            self.mems += 1
        elif kind == ExternKind.GLOBAL and isinstance(desc, GlobalType):
            self.globals.append((int(desc.valtype), desc.mutable))
        else:
            raise InvalidModule(f"import kind {kind!r} does not match its description: {where}")


def _declared_references(module: Module) -> frozenset[int]:
    """C.refs: the functions named by ``ref.func`` in globals and element segments, or
    exported. Only these may be referenced by ``ref.func`` inside function bodies."""
    refs: set[int] = set()
    exprs = [g.init for g in module.globals]
    for elem in module.elems:
        exprs.extend(elem.init)
        exprs.append(elem.offset)
    for expr in exprs:
        refs.update(instr.imm for instr in expr if instr.op == 0xD2)  # type: ignore[misc]
    refs.update(e.index for e in module.exports if e.kind == ExternKind.FUNC)
    return frozenset(refs)


# --- module-level checks ---------------------------------------------------------------------


def validate_module(module: Module) -> None:
    """Raise :class:`InvalidModule` unless ``module`` is valid; return None if it is."""
    ctx = _Context(module)
    _check_imports(module)
    for table in module.tables:
        _check_table_type(table, "table")
    for mem in module.mems:
        _check_memory_type(mem, "memory")
    if ctx.mems > 1:
        raise InvalidModule(f"multiple memories: the module has {ctx.mems}")
    for i, glob in enumerate(module.globals):
        where = f"global {ctx.imported_globals + i}"
        _check_const(ctx, glob.init, int(glob.type.valtype), where)
    for i, elem in enumerate(module.elems):
        _check_elem(ctx, elem, f"elem segment {i}")
    _check_datas(ctx, module)
    _check_start(ctx, module.start)
    _check_exports(ctx, module)
    checker = _BodyChecker(ctx)
    first = len(ctx.funcs) - len(module.funcs)
    for i, func in enumerate(module.funcs):
        checker.check(first + i, func)


def _check_imports(module: Module) -> None:
    for imp in module.imports:
        where = f"import {imp.module!r} {imp.name!r}"
        if isinstance(imp.desc, TableType):
            _check_table_type(imp.desc, where)
        elif isinstance(imp.desc, MemType):
            _check_memory_type(imp.desc, where)


def _check_limits(limits: Limits, bound: int, too_big: str, where: str) -> None:
    if limits.min > bound or (limits.max is not None and limits.max > bound):
        raise InvalidModule(f"{too_big}: {where}")
    if limits.max is not None and limits.min > limits.max:
        raise InvalidModule(f"size minimum must not be greater than maximum: {where}")


def _check_table_type(table: TableType, where: str) -> None:
    if int(table.elem) not in _REFS:
        raise InvalidModule(f"malformed reference type: {where}")
    _check_limits(table.limits, MAX_TABLE_SIZE, "table size must be at most 2^32-1", where)


def _check_memory_type(mem: MemType, where: str) -> None:
    too_big = "memory size must be at most 65536 pages (4GiB)"
    _check_limits(mem.limits, MAX_MEMORY_PAGES, too_big, where)


def _check_const(ctx: _Context, expr: Sequence[Instr], expected: int, where: str) -> None:
    """A constant expression: only constants, ``ref.null``, ``ref.func`` and ``global.get``
    of an imported immutable global, leaving exactly one value of type ``expected``."""
    stack: list[int] = []
    for op, imm in expr:
        if op in _CONST_TYPES:
            stack.append(_CONST_TYPES[op])
        elif op == 0xD0:  # ref.null
            stack.append(int(imm))  # type: ignore[call-overload]
        elif op == 0xD2:  # ref.func
            if not 0 <= imm < len(ctx.funcs):  # type: ignore[operator]
                raise InvalidModule(f"unknown function {imm}: {where}")
            stack.append(_FUNCREF)
        elif op == 0x23:  # global.get
            if not 0 <= imm < ctx.imported_globals:  # type: ignore[operator]
                raise InvalidModule(f"unknown global {imm}: {where}")
            valtype, mutable = ctx.globals[imm]  # type: ignore[index]
            if mutable:
                raise InvalidModule(f"constant expression required: {where} reads a mutable global")
            stack.append(valtype)
        else:
            name = OPS[op].name if op in OPS else hex(op)
            raise InvalidModule(f"constant expression required: {where} uses {name}")
    if stack != [expected]:
        raise InvalidModule(
            f"type mismatch: {where} produces {_types_text(stack)}, "
            f"expected [{_type_name(expected)}]"
        )


def _check_elem(ctx: _Context, elem: Elem, where: str) -> None:
    elem_type = int(elem.type)
    if elem_type not in _REFS:
        raise InvalidModule(f"type mismatch: {where} has non-reference type")
    for expr in elem.init:
        _check_const(ctx, expr, elem_type, where)
    if elem.mode == SegmentMode.ACTIVE:
        if not 0 <= elem.table < len(ctx.tables):
            raise InvalidModule(f"unknown table {elem.table}: {where}")
        if ctx.tables[elem.table] != elem_type:
            raise InvalidModule(f"type mismatch: {where} does not match table {elem.table}")
        _check_const(ctx, elem.offset, _I32, f"offset of {where}")


def _check_datas(ctx: _Context, module: Module) -> None:
    if module.data_count is not None and module.data_count != len(module.datas):
        raise InvalidModule("data count and data section have inconsistent lengths")
    for i, data in enumerate(module.datas):
        if data.mode == SegmentMode.ACTIVE:
            where = f"data segment {i}"
            if not 0 <= data.memory < ctx.mems:
                raise InvalidModule(f"unknown memory {data.memory}: {where}")
            _check_const(ctx, data.offset, _I32, f"offset of {where}")


def _check_start(ctx: _Context, start: int | None) -> None:
    if start is None:
        return
    if not 0 <= start < len(ctx.funcs):
        raise InvalidModule(f"unknown function {start}: start")
    params, results = ctx.funcs[start]
    if params or results:
        raise InvalidModule(
            f"start function {start} must have type [] -> [], "
            f"not {_types_text(params)} -> {_types_text(results)}"
        )


def _check_exports(ctx: _Context, module: Module) -> None:
    spaces = {
        ExternKind.FUNC: ("function", len(ctx.funcs)),
        ExternKind.TABLE: ("table", len(ctx.tables)),
        ExternKind.MEMORY: ("memory", ctx.mems),
        ExternKind.GLOBAL: ("global", len(ctx.globals)),
    }
    names: set[str] = set()
    for export in module.exports:
        if export.name in names:
            raise InvalidModule(f"duplicate export name {export.name!r}")
        names.add(export.name)
        what, count = spaces[export.kind]
        if not 0 <= export.index < count:
            raise InvalidModule(f"unknown {what} {export.index}: export {export.name!r}")


# --- function bodies -------------------------------------------------------------------------


class _Frame:
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


_Handler = Callable[["_BodyChecker", int, object], None]


class _BodyChecker:
    """Type-checks function bodies of one module; reused from one function to the next."""

    __slots__ = ("ctx", "vals", "ctrl", "locals")

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.vals: list[int] = []
        self.ctrl: list[_Frame] = []
        self.locals: list[int] = []

    def check(self, func_index: int, func: Func) -> None:
        """Check the body of function ``func_index``; raise InvalidModule if ill-typed."""
        params, results = self.ctx.funcs[func_index]
        self.locals = params + [int(t) for t in func.locals]
        self.vals = []
        self.ctrl = [_Frame(0x02, [], results, 0)]
        body = func.body
        pos = 0
        try:
            pos = self._run(body)
        except _Invalid as fault:
            pos = fault.args[1]
            op = body[pos].op
            name = OPS[op].name if op in OPS else hex(op)
            raise InvalidModule(
                f"{fault.args[0]} in function {func_index} at instruction {pos} ({name})"
            ) from None
        if self.ctrl or pos != len(body) - 1:
            raise InvalidModule(f"function {func_index}: body must end with its final end")

    def _run(self, body: Sequence[Instr]) -> int:
        """The hot loop: fixed-typed instructions inline, the rest through ``_HANDLERS``.
        Returns the position of the function's final ``end``. A fault is re-raised with
        its position as the second argument."""
        vals = self.vals
        ctrl = self.ctrl
        pure = _PURE
        handlers = _HANDLERS
        pos = -1
        try:
            for pos, (op, imm) in enumerate(body):  # noqa: B007 (pos read in except)
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
        return pos

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

    def pop_vals(self, types: Sequence[int]) -> list[int]:
        popped = [self.pop_expect(t) for t in reversed(types)]
        popped.reverse()
        return popped

    def push_ctrl(self, kind: int, start: list[int], end: list[int]) -> None:
        self.ctrl.append(_Frame(kind, start, end, len(self.vals)))
        self.vals.extend(start)

    def pop_ctrl(self) -> _Frame:
        if not self.ctrl:
            raise _Invalid("unexpected end of control structure")
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

    def label(self, depth: int) -> _Frame:
        if not 0 <= depth < len(self.ctrl):
            raise _Invalid(f"unknown label {depth}")
        return self.ctrl[-1 - depth]

    def block_type(self, bt: object) -> Signature:
        if bt is None:
            return [], []
        if isinstance(bt, ValType):
            return [], [int(bt)]
        if isinstance(bt, int) and 0 <= bt < len(self.ctx.types):
            return self.ctx.types[bt]
        raise _Invalid(f"unknown type {bt}")

    def table(self, index: object) -> int:
        tables = self.ctx.tables
        if not (isinstance(index, int) and 0 <= index < len(tables)):
            raise _Invalid(f"unknown table {index}")
        return tables[index]

    def memory(self, index: object) -> None:
        if not (isinstance(index, int) and 0 <= index < self.ctx.mems):
            raise _Invalid(f"unknown memory {index}")

    def elem(self, index: object) -> int:
        elems = self.ctx.elems
        if not (isinstance(index, int) and 0 <= index < len(elems)):
            raise _Invalid(f"unknown elem segment {index}")
        return elems[index]

    def data(self, index: object) -> None:
        if not self.ctx.has_data_count:
            raise _Invalid("data count section required")
        if not (isinstance(index, int) and 0 <= index < self.ctx.datas):
            raise _Invalid(f"unknown data segment {index}")

    def func(self, index: object) -> Signature:
        funcs = self.ctx.funcs
        if not (isinstance(index, int) and 0 <= index < len(funcs)):
            raise _Invalid(f"unknown function {index}")
        return funcs[index]

    def local(self, index: object) -> int:
        local_types = self.locals
        if not (isinstance(index, int) and 0 <= index < len(local_types)):
            raise _Invalid(f"unknown local {index}")
        return local_types[index]

    def global_(self, index: object) -> tuple[int, bool]:
        globals_ = self.ctx.globals
        if not (isinstance(index, int) and 0 <= index < len(globals_)):
            raise _Invalid(f"unknown global {index}")
        return globals_[index]


# --- instruction handlers: (checker, opcode, immediate) -> None ------------------------------


def _op_unreachable(c: _BodyChecker, op: int, imm: object) -> None:
    c.set_unreachable()


def _op_block(c: _BodyChecker, op: int, imm: object) -> None:
    """``block``, ``loop`` and ``if`` (which first pops its i32 condition)."""
    params, results = c.block_type(imm)
    if op == _IF:
        c.pop_expect(_I32)
    c.pop_vals(params)
    c.push_ctrl(op, params, results)


def _op_else(c: _BodyChecker, op: int, imm: object) -> None:
    if c.ctrl[-1].kind != _IF:
        raise _Invalid("else without a matching if")
    frame = c.pop_ctrl()
    c.push_ctrl(0x05, frame.start, frame.end)


def _op_end(c: _BodyChecker, op: int, imm: object) -> None:
    frame = c.pop_ctrl()
    if frame.kind == _IF and frame.start != frame.end:
        raise _Invalid(
            "type mismatch: if without else must have equal input and output types, "
            f"not {_types_text(frame.start)} -> {_types_text(frame.end)}"
        )
    c.vals.extend(frame.end)


def _op_br(c: _BodyChecker, op: int, imm: object) -> None:
    c.pop_vals(c.label(imm).label)  # type: ignore[arg-type]
    c.set_unreachable()


def _op_br_if(c: _BodyChecker, op: int, imm: object) -> None:
    c.pop_expect(_I32)
    label = c.label(imm).label  # type: ignore[arg-type]
    c.pop_vals(label)
    c.vals.extend(label)


def _op_br_table(c: _BodyChecker, op: int, imm: object) -> None:
    labels, default = imm  # type: ignore[misc]
    c.pop_expect(_I32)
    default_types = c.label(default).label
    arity = len(default_types)
    for depth in labels:
        types = c.label(depth).label
        if len(types) != arity:
            raise _Invalid(
                f"type mismatch: br_table label {depth} carries {_types_text(types)}, "
                f"the default {_types_text(default_types)}"
            )
        c.vals.extend(c.pop_vals(types))
    c.pop_vals(default_types)
    c.set_unreachable()


def _op_return(c: _BodyChecker, op: int, imm: object) -> None:
    c.pop_vals(c.ctrl[0].end)
    c.set_unreachable()


def _op_call(c: _BodyChecker, op: int, imm: object) -> None:
    params, results = c.func(imm)
    c.pop_vals(params)
    c.vals.extend(results)


def _op_call_indirect(c: _BodyChecker, op: int, imm: object) -> None:
    type_index, table_index = imm  # type: ignore[misc]
    if c.table(table_index) != _FUNCREF:
        raise _Invalid(f"type mismatch: call_indirect through table {table_index} of externref")
    if not 0 <= type_index < len(c.ctx.types):
        raise _Invalid(f"unknown type {type_index}")
    params, results = c.ctx.types[type_index]
    c.pop_expect(_I32)
    c.pop_vals(params)
    c.vals.extend(results)


def _op_ref_null(c: _BodyChecker, op: int, imm: object) -> None:
    if imm not in _REFS:
        raise _Invalid(f"type mismatch: ref.null of non-reference type {imm!r}")
    c.vals.append(int(imm))  # type: ignore[call-overload]


def _op_ref_is_null(c: _BodyChecker, op: int, imm: object) -> None:
    t = c.pop_any()
    if t != UNKNOWN and t not in _REFS:
        raise _Invalid(f"type mismatch: ref.is_null of {_type_name(t)}")
    c.vals.append(_I32)


def _op_ref_func(c: _BodyChecker, op: int, imm: object) -> None:
    c.func(imm)
    if imm not in c.ctx.refs:
        raise _Invalid(f"undeclared function reference {imm}")
    c.vals.append(_FUNCREF)


def _op_drop(c: _BodyChecker, op: int, imm: object) -> None:
    c.pop_any()


def _op_select(c: _BodyChecker, op: int, imm: object) -> None:
    """Untyped ``select`` chooses between two numeric operands of the same type."""
    c.pop_expect(_I32)
    t1 = c.pop_any()
    t2 = c.pop_any()
    if t1 not in _NUMS_OR_VEC or t2 not in _NUMS_OR_VEC:
        raise _Invalid("type mismatch: select without a type needs numeric operands")
    if t1 != t2 and t1 != UNKNOWN and t2 != UNKNOWN:
        raise _Invalid(f"type mismatch: select of {_type_name(t2)} and {_type_name(t1)}")
    c.vals.append(t1 if t1 != UNKNOWN else t2)


def _op_select_t(c: _BodyChecker, op: int, imm: object) -> None:
    types = tuple(imm)  # type: ignore[call-overload]
    if len(types) != 1:
        raise _Invalid(f"invalid result arity: typed select with {len(types)} types")
    t = int(types[0])
    c.pop_expect(_I32)
    c.pop_expect(t)
    c.pop_expect(t)
    c.vals.append(t)


def _op_local_get(c: _BodyChecker, op: int, imm: object) -> None:
    c.vals.append(c.local(imm))


def _op_local_set(c: _BodyChecker, op: int, imm: object) -> None:
    c.pop_expect(c.local(imm))


def _op_local_tee(c: _BodyChecker, op: int, imm: object) -> None:
    t = c.local(imm)
    c.pop_expect(t)
    c.vals.append(t)


def _op_global_get(c: _BodyChecker, op: int, imm: object) -> None:
    c.vals.append(c.global_(imm)[0])


def _op_global_set(c: _BodyChecker, op: int, imm: object) -> None:
    t, mutable = c.global_(imm)
    if not mutable:
        raise _Invalid(f"global is immutable: global.set of global {imm}")
    c.pop_expect(t)


def _op_table_get(c: _BodyChecker, op: int, imm: object) -> None:
    t = c.table(imm)
    c.pop_expect(_I32)
    c.vals.append(t)


def _op_table_set(c: _BodyChecker, op: int, imm: object) -> None:
    c.pop_expect(c.table(imm))
    c.pop_expect(_I32)


def _op_table_size(c: _BodyChecker, op: int, imm: object) -> None:
    c.table(imm)
    c.vals.append(_I32)


def _op_table_grow(c: _BodyChecker, op: int, imm: object) -> None:
    t = c.table(imm)
    c.pop_expect(_I32)
    c.pop_expect(t)
    c.vals.append(_I32)


def _op_table_fill(c: _BodyChecker, op: int, imm: object) -> None:
    t = c.table(imm)
    c.pop_expect(_I32)
    c.pop_expect(t)
    c.pop_expect(_I32)


def _op_table_copy(c: _BodyChecker, op: int, imm: object) -> None:
    dst, src = imm  # type: ignore[misc]
    if c.table(dst) != c.table(src):
        raise _Invalid(f"type mismatch: table.copy between tables {dst} and {src} of other types")
    c.pop_vals([_I32, _I32, _I32])


def _op_table_init(c: _BodyChecker, op: int, imm: object) -> None:
    elem, table = imm  # type: ignore[misc]
    if c.table(table) != c.elem(elem):
        raise _Invalid(f"type mismatch: elem segment {elem} does not match table {table}")
    c.pop_vals([_I32, _I32, _I32])


def _op_elem_drop(c: _BodyChecker, op: int, imm: object) -> None:
    c.elem(imm)


def _op_memarg(c: _BodyChecker, op: int, imm: object) -> None:
    """Loads and stores: a memory must exist and the alignment must not exceed the width."""
    c.memory(0)
    align = imm[0]  # type: ignore[index]
    if align > _MAX_ALIGN[op]:
        raise _Invalid(
            f"alignment must not be larger than natural: 2**{align} > {OPS[op].width} bytes"
        )
    c.apply(op)


def _op_memory(c: _BodyChecker, op: int, imm: object) -> None:
    """memory.size, memory.grow, memory.fill: ``imm`` is the memory index."""
    c.memory(imm)
    c.apply(op)


def _op_memory_copy(c: _BodyChecker, op: int, imm: object) -> None:
    dst, src = imm  # type: ignore[misc]
    c.memory(dst)
    c.memory(src)
    c.apply(op)


def _op_memory_init(c: _BodyChecker, op: int, imm: object) -> None:
    data, memory = imm  # type: ignore[misc]
    c.memory(memory)
    c.data(data)
    c.apply(op)


def _op_data_drop(c: _BodyChecker, op: int, imm: object) -> None:
    c.data(imm)


_BY_NAME: dict[str, _Handler] = {
    "unreachable": _op_unreachable, "block": _op_block, "loop": _op_block, "if": _op_block,
    "else": _op_else, "end": _op_end, "br": _op_br, "br_if": _op_br_if,
    "br_table": _op_br_table, "return": _op_return, "call": _op_call,
    "call_indirect": _op_call_indirect, "ref.null": _op_ref_null,
    "ref.is_null": _op_ref_is_null, "ref.func": _op_ref_func, "drop": _op_drop,
    "select": _op_select, "select_t": _op_select_t, "local.get": _op_local_get,
    "local.set": _op_local_set, "local.tee": _op_local_tee, "global.get": _op_global_get,
    "global.set": _op_global_set, "table.get": _op_table_get, "table.set": _op_table_set,
    "table.size": _op_table_size, "table.grow": _op_table_grow, "table.fill": _op_table_fill,
    "table.copy": _op_table_copy, "table.init": _op_table_init, "elem.drop": _op_elem_drop,
    "memory.size": _op_memory, "memory.grow": _op_memory, "memory.fill": _op_memory,
    "memory.copy": _op_memory_copy, "memory.init": _op_memory_init,
    "data.drop": _op_data_drop,
}  # fmt: skip

# Instructions whose typing is fixed and that have no index to check are typed inline by
# the hot loop from ``_PURE``: (params, the one result or None).
_PURE_IMMS = (Imm.NONE, Imm.I32, Imm.I64, Imm.F32, Imm.F64)
_SIGS: dict[int, Signature] = {
    op: ([int(t) for t in e.sig[0]], [int(t) for t in e.sig[1]])
    for op, e in OPS.items()
    if e.sig is not None
}
_PURE: dict[int, tuple[list[int], int | None]] = {
    op: (_SIGS[op][0], _SIGS[op][1][0] if _SIGS[op][1] else None)
    for op, e in OPS.items()
    if e.sig is not None and e.imm in _PURE_IMMS and e.name not in _BY_NAME
}
# Largest alignment exponent of each load and store: log2 of its width in bytes.
_MAX_ALIGN: dict[int, int] = {
    op: e.width.bit_length() - 1 for op, e in OPS.items() if e.imm == Imm.MEMARG
}
_HANDLERS: dict[int, _Handler] = {
    op: (_op_memarg if e.imm == Imm.MEMARG else _BY_NAME[e.name])
    for op, e in OPS.items()
    if op not in _PURE
}
