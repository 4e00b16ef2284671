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

Constant expressions (global initializers, segment offsets and elements) may read only
*imported* immutable globals, as in WebAssembly 2.0 and its test suite (later versions also
allow earlier globals of the module itself).

This sits between ``binary`` (bytes to a Module) and ``runtime`` (which instantiates only
valid modules). Every failure raises :class:`InvalidModule` whose message starts with the
spec's wording (``type mismatch``, ``unknown local``…) and says where the fault is.
"""

from __future__ import annotations

from collections.abc import Sequence

from soru.wasm.errors import InvalidModule
from soru.wasm.opcodes import OPS
from soru.wasm.syntax import (
    Elem,
    ExternKind,
    Instr,
    Limits,
    MemType,
    Module,
    SegmentMode,
    TableType,
)
from soru.wasm.validate_body import (
    _CONST_TYPES,
    _FUNCREF,
    _I32,
    _REFS,
    MAX_MEMORY_PAGES,
    MAX_TABLE_SIZE,
    UNKNOWN,
    BodyChecker,
    _type_name,
    _types_text,
)
from soru.wasm.validate_context import Context


def validate_module(module: Module) -> None:
    """Raise :class:`InvalidModule` unless ``module`` is valid; return None if it is."""
    ctx = Context(module)
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
    checker = BodyChecker(ctx)
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


def _check_const(ctx: Context, expr: Sequence[Instr], expected: int, where: str) -> None:
    """A constant expression: only constants, ``ref.null``, ``ref.func`` and ``global.get``
    of an imported immutable global, leaving exactly one value of type ``expected``."""
    stack: list[int] = []
    for op, imm in expr:
        if op in _CONST_TYPES:
            stack.append(_CONST_TYPES[op])
        elif op == 0xD0:  # ref.null
            stack.append(int(imm) if isinstance(imm, int) else UNKNOWN)
        elif op == 0xD2:  # ref.func
            if not (isinstance(imm, int) and 0 <= imm < len(ctx.funcs)):
                raise InvalidModule(f"unknown function {imm}: {where}")
            stack.append(_FUNCREF)
        elif op == 0x23:  # global.get
            if not (isinstance(imm, int) and 0 <= imm < ctx.imported_globals):
                raise InvalidModule(f"unknown global {imm}: {where}")
            valtype, mutable = ctx.globals[imm]
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


def _check_elem(ctx: Context, elem: Elem, where: str) -> None:
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


def _check_datas(ctx: Context, module: Module) -> None:
    if module.data_count is not None and module.data_count != len(module.datas):
        raise InvalidModule("data count and data section have inconsistent lengths")
    for i, data in enumerate(module.datas):
        if data.mode == SegmentMode.ACTIVE:
            where = f"data segment {i}"
            if not 0 <= data.memory < ctx.mems:
                raise InvalidModule(f"unknown memory {data.memory}: {where}")
            _check_const(ctx, data.offset, _I32, f"offset of {where}")


def _check_start(ctx: Context, start: int | None) -> None:
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


def _check_exports(ctx: Context, module: Module) -> None:
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
