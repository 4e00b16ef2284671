"""The WebAssembly 2.0 binary encoder (spec chapter 5), the inverse of the decoder.

:func:`encode_module` writes a :class:`~soru.wasm.syntax.Module` as the bytes of a ``.wasm``
file such that ``decode_module(encode_module(m)) == m`` for every module ``m`` the decoder
produces. It is how soru hands a rewritten module (see ``soru.wasm.instrument``) to another
engine.

Where the binary format offers several spellings of the same record, the encoder picks the
canonical one (the decoder gives equal records for all of them):

* integers take their shortest LEB128 form; local declarations are grouped by runs of one
  type;
* an element segment of ``funcref`` whose every element is a single ``ref.func`` is written
  with function indices (flags 0, 1, 2 or 3), any other with expressions (4, 5, 6 or 7);
  flags 0 and 4 (an active segment of table 0 without an explicit table) are used whenever
  they can express the segment;
* a data segment of memory 0 is written with flags 0;
* empty sections are omitted, a data count section is written when ``data_count`` is set.

Custom sections are kept with their names and bytes, in order, after the data section: the
``Module`` record does not remember where they stood among the others (the ``name``
section, the one engines read, belongs there anyway).

Primitives come from ``soru.encoding.writer``, the one place LEB128 is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from soru.encoding.writer import Writer, encode_sleb, encode_uleb
from soru.wasm.binary import MAGIC, VERSION
from soru.wasm.opcodes import OPS, Imm
from soru.wasm.syntax import (
    BlockType,
    CustomSection,
    Data,
    Elem,
    Expr,
    ExternKind,
    Func,
    GlobalType,
    Import,
    Instr,
    Limits,
    MemType,
    Module,
    SegmentMode,
    TableType,
    ValType,
)

_END = 0x0B
_REF_FUNC = 0xD2
_MISC_PREFIX = 0xFC
_EMPTY_BLOCK = 0x40


def encode_module(module: Module) -> bytes:
    """The binary encoding of ``module`` (see the module docstring)."""
    w = Writer()
    w.raw(MAGIC).raw(VERSION)
    sections: list[tuple[int, bytes | None]] = [
        (1, _vector(module.types, _func_type)),
        (2, _vector(module.imports, _import)),
        (3, _vector(module.funcs, _func_index)),
        (4, _vector(module.tables, _table_type)),
        (5, _vector(module.mems, _mem_type)),
        (6, _vector(module.globals, _global)),
        (7, _vector(module.exports, _export)),
        (8, None if module.start is None else encode_uleb(module.start)),
        (9, _vector(module.elems, _elem)),
        (12, None if module.data_count is None else encode_uleb(module.data_count)),
        (10, _vector(module.funcs, _code)),
        (11, _vector(module.datas, _data)),
    ]
    for section_id, body in sections:
        if body is not None:
            w.u8(section_id).byte_vec(body)
    for custom in module.customs:
        w.u8(0).byte_vec(_custom(custom))
    return w.getvalue()


def encode_instructions(instrs: Iterable[Instr]) -> bytes:
    """The bytes of a flat instruction sequence (a body keeps its own final ``end``)."""
    out = bytearray()
    for op, imm in instrs:
        if op > 0xFF:
            out.append(_MISC_PREFIX)
            out += encode_uleb(op & 0xFF)
        else:
            out.append(op)
        write = _IMM_WRITERS[OPS[op].imm]
        if write is not None:
            write(out, imm)
    return bytes(out)


# --- sections -------------------------------------------------------------------------------


_T = TypeVar("_T")


def _vector(items: tuple[_T, ...], write_item: Callable[[Writer, _T], None]) -> bytes | None:
    """A section body holding a vector of ``items``, or None when there are none."""
    if not items:
        return None
    w = Writer()
    w.uleb(len(items))
    for item in items:
        write_item(w, item)
    return w.getvalue()


def _valtypes(w: Writer, types: tuple[ValType, ...]) -> None:
    w.uleb(len(types))
    for t in types:
        w.u8(t)


def _func_type(w: Writer, ft) -> None:
    w.u8(0x60)
    _valtypes(w, ft.params)
    _valtypes(w, ft.results)


def _name(w: Writer, name: str) -> None:
    w.byte_vec(name.encode("utf-8"))


def _limits(w: Writer, limits: Limits) -> None:
    if limits.max is None:
        w.u8(0).uleb(limits.min)
    else:
        w.u8(1).uleb(limits.min).uleb(limits.max)


def _func_index(w: Writer, func: Func) -> None:
    w.uleb(func.type_index)


def _mem_type(w: Writer, mem: MemType) -> None:
    _limits(w, mem.limits)


def _table_type(w: Writer, table: TableType) -> None:
    w.u8(table.elem)
    _limits(w, table.limits)


def _global_type(w: Writer, gt: GlobalType) -> None:
    w.u8(gt.valtype).u8(1 if gt.mutable else 0)


def _import(w: Writer, imp: Import) -> None:
    _name(w, imp.module)
    _name(w, imp.name)
    w.u8(imp.kind)
    desc = imp.desc
    if imp.kind == ExternKind.FUNC:
        assert isinstance(desc, int)
        w.uleb(desc)
    elif imp.kind == ExternKind.TABLE:
        assert isinstance(desc, TableType)
        _table_type(w, desc)
    elif imp.kind == ExternKind.MEMORY:
        assert isinstance(desc, MemType)
        _limits(w, desc.limits)
    else:
        assert isinstance(desc, GlobalType)
        _global_type(w, desc)


def _expr(w: Writer, expr: Expr) -> None:
    """A constant expression and its final ``end``."""
    w.raw(encode_instructions(expr)).u8(_END)


def _global(w: Writer, g) -> None:
    _global_type(w, g.type)
    _expr(w, g.init)


def _export(w: Writer, export) -> None:
    _name(w, export.name)
    w.u8(export.kind).uleb(export.index)


def _elem(w: Writer, elem: Elem) -> None:
    """An element segment with the flags the module docstring describes."""
    indices = elem.type == ValType.FUNCREF and all(
        len(e) == 1 and e[0].op == _REF_FUNC for e in elem.init
    )
    flags = 0 if indices else 4
    if elem.mode == SegmentMode.PASSIVE:
        flags |= 1
    elif elem.mode == SegmentMode.DECLARATIVE:
        flags |= 3
    elif elem.table != 0 or elem.type != ValType.FUNCREF:
        flags |= 2
    w.uleb(flags)
    if elem.mode == SegmentMode.ACTIVE:
        if flags & 2:
            w.uleb(elem.table)
        _expr(w, elem.offset)
    if indices:
        if flags != 0:
            w.u8(0x00)  # element kind: funcref
        w.uleb(len(elem.init))
        for (ref_func,) in elem.init:
            w.uleb(ref_func.imm)  # type: ignore[arg-type]
    else:
        if flags != 4:
            w.u8(elem.type)
        w.uleb(len(elem.init))
        for expr in elem.init:
            _expr(w, expr)


def _code(w: Writer, func) -> None:
    """A function body: its size, the run-length encoded locals, the instructions."""
    body = Writer()
    runs: list[list] = []
    for t in func.locals:
        if runs and runs[-1][1] == t:
            runs[-1][0] += 1
        else:
            runs.append([1, t])
    body.uleb(len(runs))
    for count, t in runs:
        body.uleb(count).u8(t)
    body.raw(encode_instructions(func.body))
    w.byte_vec(body.getvalue())


def _data(w: Writer, data: Data) -> None:
    if data.mode == SegmentMode.PASSIVE:
        w.uleb(1)
    else:
        if data.memory == 0:
            w.uleb(0)
        else:
            w.uleb(2).uleb(data.memory)
        _expr(w, data.offset)
    w.byte_vec(data.init)


def _custom(custom: CustomSection) -> bytes:
    w = Writer()
    _name(w, custom.name)
    return w.raw(custom.data).getvalue()


# --- immediates -----------------------------------------------------------------------------

ImmWriter = Callable[[bytearray, Any], None]


def _u32(out: bytearray, value) -> None:
    out += encode_uleb(value)


def _pair(out: bytearray, value) -> None:
    out += encode_uleb(value[0])
    out += encode_uleb(value[1])


def _block_type(out: bytearray, bt: BlockType) -> None:
    if bt is None:
        out.append(_EMPTY_BLOCK)
    elif isinstance(bt, ValType):
        out.append(bt)
    else:
        out += encode_sleb(bt)


def _br_table(out: bytearray, imm) -> None:
    out += encode_uleb(len(imm.labels))
    for label in imm.labels:
        out += encode_uleb(label)
    out += encode_uleb(imm.default)


def _signed(bits: int) -> ImmWriter:
    """An integer constant: its unsigned bit pattern, written as a signed LEB128."""
    sign, span = 1 << (bits - 1), 1 << bits

    def write(out: bytearray, value) -> None:
        out += encode_sleb(value - span if value & sign else value)

    return write


def _float(size: int) -> ImmWriter:
    def write(out: bytearray, bits) -> None:
        out += bits.to_bytes(size, "little")

    return write


def _select_types(out: bytearray, types) -> None:
    out += encode_uleb(len(types))
    out += bytes(types)


def _byte(out: bytearray, value: int) -> None:
    out.append(value)


def _data_memory(out: bytearray, imm: tuple[int, int]) -> None:
    """``memory.init``: a data index, then a reserved memory byte."""
    _u32(out, imm[0])
    out.append(imm[1])


def _memory_memory(out: bytearray, imm: tuple[int, int]) -> None:
    """``memory.copy``: two reserved memory bytes."""
    out.append(imm[0])
    out.append(imm[1])


_IMM_WRITERS: dict[Imm, ImmWriter | None] = {
    Imm.NONE: None,
    Imm.BLOCKTYPE: _block_type,
    Imm.LABEL: _u32,
    Imm.BR_TABLE: _br_table,
    Imm.FUNC: _u32,
    Imm.CALL_INDIRECT: _pair,
    Imm.LOCAL: _u32,
    Imm.GLOBAL: _u32,
    Imm.TABLE: _u32,
    Imm.MEMARG: _pair,
    Imm.MEMORY: _byte,  # a reserved memory index: one byte, 0 in 2.0
    Imm.I32: _signed(32),
    Imm.I64: _signed(64),
    Imm.F32: _float(4),
    Imm.F64: _float(8),
    Imm.SELECT_T: _select_types,
    Imm.REFTYPE: _byte,
    Imm.DATA_MEMORY: _data_memory,
    Imm.DATA: _u32,
    Imm.MEMORY_MEMORY: _memory_memory,
    Imm.ELEM_TABLE: _pair,
    Imm.ELEM: _u32,
    Imm.TABLE_TABLE: _pair,
}
