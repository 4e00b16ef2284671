"""The two Init ticks that set a loaded module up, run on the state tree: allocation, entry.

Allocation builds ``wasm/machine`` from the module the loader left in ``wasm/module``
exactly as ``soru.pvm.layout`` writes the interpreter's freshly allocated machine: the
memory (its length; zero chunks are absent), globals, tables of nulls, element segments
(evaluated references), data segments (their chunked bytes grafted, an O(1) copy), and the
initialisation program (``soru.wasm.exec.instantiate.init_code``'s sequence) appended to the
code. Entry checks the exports (one memory, exported as memory 0; ``kernel_run`` of type
``[] -> []``) and starts ``kernel_run`` on the lazy machine.

Bound: allocation reads every global, element item and segment head of the module; kernels
with very large element segments make this tick large (see ``soru.pvm.lazy``).
"""

from __future__ import annotations

from typing import cast

from soru.encoding.reader import Reader
from soru.encoding.writer import Writer
from soru.merkle.chunked import chunked_length
from soru.pvm import layout
from soru.pvm.lazy import Cell, LazyModule
from soru.pvm.loader_items import decode_expr, export_key
from soru.pvm.loader_state import append_radix
from soru.wasm.exec.lower import CALL_ADDR, CONST, RETURN
from soru.wasm.exec.machine import Machine, RunStatus
from soru.wasm.runtime import PAGE_SIZE
from soru.wasm.syntax import Expr, ExternKind, FuncType, SegmentMode

P = tuple[str, ...]
MODULE: P = ("wasm", "module")
MACHINE: P = ("wasm", "machine")
_TABLE_INIT, _ELEM_DROP, _MEMORY_INIT, _DATA_DROP = 0xFC0C, 0xFC0D, 0xFC08, 0xFC09


class EntryError(Exception):
    """An entry check failed: ``no_kernel_run`` says whether it is the terminal kind."""

    def __init__(self, message: str, no_kernel_run: bool) -> None:
        super().__init__(message)
        self.no_kernel_run = no_kernel_run


def _eval(expr: Expr, globals_: list) -> int | None:
    """A constant expression's value (as ``instantiate.eval_const``; an address is an index
    in the PVM's one-module machine)."""
    value: int | None = None
    for op, imm in expr:
        if op in (0x41, 0x42, 0x43, 0x44, 0xD2):
            value = imm  # type: ignore[assignment]
        elif op == 0xD0:
            value = None
        elif op == 0x23:
            value = globals_[cast(int, imm)]
        else:
            raise layout.LayoutError(f"not a constant instruction: 0x{op:x}")
    return value


def _vector(cell: Cell, path: P, values: list[bytes]) -> None:
    cell.delete(path)
    for i, value in enumerate(values):
        cell.set((*path, str(i)), value)
    cell.set(path, layout.u64(len(values)))


def _globals(cell: Cell) -> list:
    values: list = []
    for g in range(cell.int((*MODULE, "globals"))):
        raw = cell.get((*MODULE, "globals", str(g))) or b""
        if len(raw) < 3 or raw[2] != 1:
            raise layout.LayoutError(f"global {g} is imported: a kernel cannot import globals")
        values.append(_eval(decode_expr(Reader(raw[3:])), values))
    _vector(cell, (*MACHINE, "globals"), [layout.encode_value(v) for v in values])
    return values


def _elem_head(cell: Cell, e: int) -> tuple[int, int, int, Expr]:
    """(mode, table, count, offset) of element segment ``e``."""
    reader = Reader(cell.get((*MODULE, "elems", str(e))) or b"")
    reader.u8()  # reference type
    mode, table, count = reader.u8(), reader.zarith_n(), reader.zarith_n()
    return mode, table, count, decode_expr(reader)


def _segments(cell: Cell, values: list) -> list:
    """Evaluate element segments, graft data segments; returns the init program."""
    program: list = []
    for e in range(cell.int((*MODULE, "elems"))):
        mode, table, count, offset = _elem_head(cell, e)
        items = cell.tree.subtree((*MODULE, "elems", str(e), "items"))
        target = (*MACHINE, "elems", str(e))
        if count and items is not None:  # unevaluated: see layout._graft_elems
            cell.tree = cell.tree.graft(target, items)
        cell.set(target, layout.u64(count))
        if mode == SegmentMode.ACTIVE:
            program += [(CONST, _eval(offset, values)), (CONST, 0), (CONST, count)]
            program.append((_TABLE_INIT, (e, table)))
        if mode != SegmentMode.PASSIVE:
            program.append((_ELEM_DROP, e))
    for d in range(cell.int((*MODULE, "datas"))):
        reader = Reader(cell.get((*MODULE, "datas", str(d))) or b"")
        mode, memory = reader.u8(), reader.zarith_n()
        offset = decode_expr(reader)
        data = cell.tree.subtree((*MODULE, "datas", str(d), "bytes"))
        if data is not None:
            cell.tree = cell.tree.graft((*MACHINE, "datas", str(d)), data)
        if mode == SegmentMode.ACTIVE:
            size = chunked_length(cell.tree, (*MODULE, "datas", str(d), "bytes")) or 0
            program += [(CONST, _eval(offset, values)), (CONST, 0), (CONST, size)]
            program += [(_MEMORY_INIT, (d, memory)), (_DATA_DROP, d)]
    return program


def allocate(cell: Cell) -> bool:
    """The allocation tick; returns whether there is an initialisation program to run."""
    if cell.tree.has((*MODULE, "memory_min")):
        pages = cell.int((*MODULE, "memory_min"))
        cell.set((*MACHINE, "memory"), layout.u64(pages * PAGE_SIZE))
    values = _globals(cell)
    for t in range(cell.int((*MODULE, "tables"))):
        minimum = cell.int((*MODULE, "table_mins", str(t)))
        _vector(cell, (*MACHINE, "tables", str(t)), [layout.encode_value(None)] * minimum)
    program = _segments(cell, values)
    if cell.tree.has((*MODULE, "start")):
        program.append((CALL_ADDR, cell.int((*MODULE, "start"))))
    base = cell.int((*MODULE, "code"))
    if program:
        program.append((RETURN, (0, 0)))
        prefix = Writer().zarith_n(base).getvalue()
        encoded = [prefix + layout.encode_instr(op, imm) for op, imm in program]
        append_radix(cell, (*MODULE, "code"), base, encoded)
        cell.set((*MODULE, "code"), layout.u64(base + len(encoded)))
    _vector(cell, (*MACHINE, "stack"), [])
    _vector(cell, (*MACHINE, "frames"), [layout.u64(0)] if program else [])
    cell.set((*MACHINE, "pc"), layout.u64(base if program else 0))
    status = RunStatus.RUNNING if program else RunStatus.IDLE
    cell.set((*MACHINE, "status"), status.value.encode("ascii"))
    cell.set((*MACHINE, "pending_return"), layout.u64(0))
    return bool(program)


def enter(cell: Cell, machine: Machine, module: LazyModule) -> None:
    """The entry tick's checks, then ``kernel_run`` starts; raises :class:`EntryError`."""
    if not cell.tree.has((*MODULE, "memory_min")):
        raise EntryError("a kernel needs exactly one memory, it has 0", False)
    if not cell.tree.has((*MODULE, "memory_exported")):
        raise EntryError("the module must export memory 0", False)
    raw = cell.get((*MODULE, "exports", export_key("kernel_run")))
    if raw is None or raw[0] != ExternKind.FUNC:
        raise EntryError("no kernel_run function exported", True)
    index = Reader(raw[1:]).zarith_n()
    func = module.funcs[index]
    if func.type != FuncType((), ()):
        raise EntryError("kernel_run must have type [] -> []", True)
    machine.start(func, [])

