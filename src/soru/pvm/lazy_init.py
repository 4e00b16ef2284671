"""The two Init ticks that set a loaded module up, run on the state tree: allocation, entry.

Allocation builds ``wasm/machine`` from the module the loader left in ``wasm/module``
exactly as ``soru.pvm.layout`` writes the interpreter's freshly allocated machine: the
memory (its length; zero chunks are absent), globals, tables of nulls, element segments
(their unevaluated items grafted), data segments (their chunked bytes grafted: O(1) copies),
and the initialisation program (``soru.wasm.exec.instantiate.init_program``, the function
the interpreter uses) appended to the code. Entry checks the exports (one memory, exported
as memory 0; ``kernel_run`` of type ``[] -> []``) and starts ``kernel_run`` on the lazy
machine.

Bound: allocation reads every global and segment head of the module (never a segment's
items or bytes).
"""

from __future__ import annotations

from soru.encoding.reader import Reader
from soru.merkle.chunked import chunked_length
from soru.pvm import layout
from soru.pvm.lazy import Cell, LazyModule
from soru.pvm.loader_items import decode_expr, export_key
from soru.pvm.loader_state import append_code
from soru.wasm.exec.instantiate import SegmentInit, const_value, init_program
from soru.wasm.exec.machine import Machine, RunStatus
from soru.wasm.runtime import PAGE_SIZE
from soru.wasm.syntax import Expr, ExternKind, FuncType, SegmentMode

P = tuple[str, ...]
MODULE: P = ("wasm", "module")
MACHINE: P = ("wasm", "machine")


class EntryError(Exception):
    """An entry check failed: ``no_kernel_run`` says whether it is the terminal kind."""

    def __init__(self, message: str, no_kernel_run: bool) -> None:
        super().__init__(message)
        self.no_kernel_run = no_kernel_run


def _eval(expr: Expr, globals_: list) -> int | None:
    """A constant expression's value (an address is an index in the PVM's machine)."""
    return const_value(expr, lambda i: i, globals_.__getitem__)


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


def _segments(cell: Cell, values: list) -> tuple[list[SegmentInit], list[SegmentInit]]:
    """Graft element segments (unevaluated) and data segments into the machine; returns
    what the initialisation program needs of them."""
    elems, datas = [], []
    for e in range(cell.int((*MODULE, "elems"))):
        mode, table, count, offset = _elem_head(cell, e)
        items = cell.tree.subtree((*MODULE, "elems", str(e), "items"))
        target = (*MACHINE, "elems", str(e))
        if count and items is not None:  # unevaluated: see layout._graft_elems
            cell.tree = cell.tree.graft(target, items)
        cell.set(target, layout.u64(count))
        active = mode == SegmentMode.ACTIVE
        elems.append(
            SegmentInit(SegmentMode(mode), table, count, _eval(offset, values) if active else None)
        )
    for d in range(cell.int((*MODULE, "datas"))):
        reader = Reader(cell.get((*MODULE, "datas", str(d))) or b"")
        mode, memory = reader.u8(), reader.zarith_n()
        offset = decode_expr(reader)
        data = cell.tree.subtree((*MODULE, "datas", str(d), "bytes"))
        if data is not None:
            cell.tree = cell.tree.graft((*MACHINE, "datas", str(d)), data)
        size = chunked_length(cell.tree, (*MODULE, "datas", str(d), "bytes")) or 0
        active = mode == SegmentMode.ACTIVE
        datas.append(
            SegmentInit(SegmentMode(mode), memory, size, _eval(offset, values) if active else None)
        )
    return elems, datas


def allocate(cell: Cell) -> bool:
    """The allocation tick; returns whether there is an initialisation program to run."""
    if cell.tree.has((*MODULE, "memory_min")):
        pages = cell.int((*MODULE, "memory_min"))
        cell.set((*MACHINE, "memory"), layout.u64(pages * PAGE_SIZE))
    values = _globals(cell)
    for t in range(cell.int((*MODULE, "tables"))):
        minimum = cell.int((*MODULE, "table_mins", str(t)))
        _vector(cell, (*MACHINE, "tables", str(t)), [layout.encode_value(None)] * minimum)
    elems, datas = _segments(cell, values)
    start = cell.int((*MODULE, "start")) if cell.tree.has((*MODULE, "start")) else None
    program = init_program(elems, datas, start)
    base = cell.int((*MODULE, "code"))
    if program:
        append_code(cell, (*MODULE, "code"), program)
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
