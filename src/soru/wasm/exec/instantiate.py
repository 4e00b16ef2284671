"""Instantiation (spec 4.5.4), split into allocation and an initialisation *program*.

:func:`allocate` resolves and type-checks the imports, allocates every function, table,
memory, global and segment, lowers and loads the function bodies, and collects the exports.

:func:`init_code` returns the rest of instantiation as ordinary lowered code — for each
active element segment ``const offset; const 0; const n; table.init; elem.drop``, for each
declarative one ``elem.drop``, for each active data segment the ``memory.init`` analogue,
then a call of the start function — which the machine runs tick by tick like any other
code. Initialising a module therefore costs bounded work per tick, and a trap in the middle
leaves exactly the writes the specification says it leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import cast

from soru.wasm.errors import LinkError
from soru.wasm.exec import lower
from soru.wasm.exec.lower import CALL_ADDR, CONST, RETURN, LInstr
from soru.wasm.runtime import (
    DataInst,
    ElemInst,
    Extern,
    FuncInst,
    GlobalInst,
    HostFunc,
    Instance,
    MemInst,
    TableInst,
    WasmFunc,
)
from soru.wasm.syntax import (
    Expr,
    ExternKind,
    GlobalType,
    Import,
    Limits,
    MemType,
    Module,
    SegmentMode,
    TableType,
)

_TABLE_INIT, _ELEM_DROP, _MEMORY_INIT, _DATA_DROP = 0xFC0C, 0xFC0D, 0xFC08, 0xFC09


def _limits_match(actual: Limits, expected: Limits) -> bool:
    """Import subtyping of limits: at least the minimum, and within the maximum if any."""
    if actual.min < expected.min:
        return False
    if expected.max is None:
        return True
    return actual.max is not None and actual.max <= expected.max


def _check_import(module: Module, imp: Import, ext: Extern | None) -> None:
    where = f"{imp.module}.{imp.name}"
    if ext is None:
        raise LinkError(f"unknown import {where}")
    ok = False
    if imp.kind == ExternKind.FUNC:
        ok = isinstance(ext, FuncInst) and ext.type == module.types[imp.desc]  # type: ignore[index]
    elif imp.kind == ExternKind.TABLE:
        want = imp.desc
        ok = (
            isinstance(ext, TableInst)
            and isinstance(want, TableType)
            and ext.type.elem == want.elem
            and _limits_match(ext.limits, want.limits)
        )
    elif imp.kind == ExternKind.MEMORY:
        ok = isinstance(ext, MemInst) and isinstance(imp.desc, MemType)
        ok = ok and _limits_match(ext.limits, imp.desc.limits)  # type: ignore[union-attr]
    elif imp.kind == ExternKind.GLOBAL:
        ok = isinstance(ext, GlobalInst) and isinstance(imp.desc, GlobalType)
        ok = ok and ext.type == imp.desc  # type: ignore[union-attr]
    if not ok:
        raise LinkError(f"incompatible import type for {where}")


def const_value(
    expr: Expr, func_addr: Callable[[int], int], global_value: Callable[[int], int | None]
) -> int | None:
    """Value of a (validated) constant expression, given the address of function i and the
    value of global i (the PVM evaluates from its state tree with the same function)."""
    value: int | None = None
    for op, imm in expr:
        if op in (0x41, 0x42, 0x43, 0x44):
            value = imm  # type: ignore[assignment]
        elif op == 0xD0:
            value = None
        elif op == 0xD2:
            value = func_addr(cast(int, imm))
        elif op == 0x23:
            value = global_value(cast(int, imm))
        else:
            raise LinkError(f"unsupported constant instruction 0x{op:x}")
    return value


def eval_const(expr: Expr, instance: Instance) -> int | None:
    """Value of a (validated) constant expression in ``instance``."""
    return const_value(expr, lambda i: instance.funcs[i].addr, lambda i: instance.globals[i].value)


def _owned(machine, func: FuncInst) -> bool:
    return 0 <= func.addr < len(machine.funcs) and machine.funcs[func.addr] is func


def allocate(machine, module: Module, imports: Mapping[tuple[str, str], Extern]) -> Instance:
    """Resolve imports and allocate the instance of a validated module in ``machine``."""
    instance = Instance(module)
    for imp in module.imports:
        ext = imports.get((imp.module, imp.name))
        _check_import(module, imp, ext)
        if isinstance(ext, HostFunc) and ext in instance.funcs:
            # The same host function imported twice by one module: a second function
            # instance, so that in a one-module machine an address is a function's index
            # (indistinguishable in WebAssembly 2.0, which cannot compare function refs).
            ext = HostFunc(ext.type, ext.fn, ext.name)
        if isinstance(ext, FuncInst) and not _owned(machine, ext):
            machine.add_func(ext)  # a host function gets its address on first import
        getattr(instance, _SPACE[imp.kind]).append(ext)
    new_funcs = []
    for index, func in enumerate(module.funcs):
        wf = WasmFunc(module.types[func.type_index], instance, index, func.locals)
        machine.add_func(wf)
        new_funcs.append(wf)
    instance.funcs.extend(new_funcs)
    for g in module.globals:
        instance.globals.append(GlobalInst(g.type, eval_const(g.init, instance)))
    instance.tables.extend(TableInst(t) for t in module.tables)
    instance.mems.extend(MemInst(m) for m in module.mems)
    for e in module.elems:
        instance.elems.append(ElemInst(e.type, [eval_const(x, instance) for x in e.init]))
    instance.datas.extend(DataInst(d.init) for d in module.datas)
    for exp in module.exports:
        instance.exports[exp.name] = getattr(instance, _SPACE[exp.kind])[exp.index]
    _load_functions(machine, module, instance, new_funcs)
    return instance


_SPACE = {
    ExternKind.FUNC: "funcs",
    ExternKind.TABLE: "tables",
    ExternKind.MEMORY: "mems",
    ExternKind.GLOBAL: "globals",
}


def _load_functions(machine, module: Module, instance: Instance, funcs: list[WasmFunc]) -> None:
    """Lower every body, fix every entry point, then bind handlers (calls need entries)."""
    func_types = [f.type for f in instance.funcs]
    bodies = [lower.lower_function(module, func_types, f) for f in module.funcs]
    pc = len(machine.code)
    for wf, code in zip(funcs, bodies, strict=True):
        wf.entry, wf.code = pc, code
        pc += len(code)
    for code in bodies:
        machine.load(code, instance)


@dataclass(frozen=True, slots=True)
class SegmentInit:
    """What initialisation needs of a segment: its mode, the table or memory it targets,
    its length, and (active segments) its evaluated offset."""

    mode: SegmentMode
    target: int
    size: int
    offset: int | None = None


def init_program(
    elems: Iterable[SegmentInit], datas: Iterable[SegmentInit], start: int | None
) -> list[LInstr]:
    """The initialisation program (see the module docstring); ``start`` is the address of
    the start function, if any."""
    code: list[LInstr] = []
    for i, e in enumerate(elems):
        if e.mode == SegmentMode.ACTIVE:
            code += [(CONST, e.offset), (CONST, 0), (CONST, e.size)]
            code.append((_TABLE_INIT, (i, e.target)))
        if e.mode != SegmentMode.PASSIVE:
            code.append((_ELEM_DROP, i))
    for i, d in enumerate(datas):
        if d.mode == SegmentMode.ACTIVE:
            code += [(CONST, d.offset), (CONST, 0), (CONST, d.size)]
            code += [(_MEMORY_INIT, (i, d.target)), (_DATA_DROP, i)]
    if start is not None:
        code.append((CALL_ADDR, start))
    if code:
        code.append((RETURN, (0, 0)))
    return code


def init_code(module: Module, instance: Instance) -> list[LInstr]:
    """The initialisation program of an allocated instance."""

    def offset(mode: SegmentMode, expr: Expr) -> int | None:
        return eval_const(expr, instance) if mode == SegmentMode.ACTIVE else None

    elems = [SegmentInit(e.mode, e.table, len(e.init), offset(e.mode, e.offset))
             for e in module.elems]  # fmt: skip
    datas = [SegmentInit(d.mode, d.memory, len(d.init), offset(d.mode, d.offset))
             for d in module.datas]  # fmt: skip
    start = None if module.start is None else instance.funcs[module.start].addr
    return init_program(elems, datas, start)
