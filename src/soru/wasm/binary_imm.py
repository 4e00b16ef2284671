"""How the binary decoder reads each opcode's immediates: the entry tables its instruction
loop dispatches on (spec 5.4, "Instructions").

Every opcode of ``soru.wasm.opcodes.OPS`` gets an :data:`Entry` ``(info, read_imm, plain)``:
an opcode without immediates shares one ``plain`` :class:`~soru.wasm.syntax.Instr`; one whose
immediate is a single u32 index has neither (the loop reads the index inline, the common
case); any other has the ``read_imm`` its immediate shape (``OpInfo.imm``) calls for. Integer
constants become unsigned bit patterns, float constants their raw IEEE bits.

A few readers need the decoder's own state or type readers (block types, reference types,
data indices that need the data count section); :func:`entry_tables` takes them from the
decoder class, so that this module needs nothing from ``soru.wasm.binary``, which builds its
tables once, at import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from soru.encoding.reader import Reader
from soru.wasm.opcodes import OPS, Imm, OpInfo
from soru.wasm.syntax import BrTable, Instr, MemArg, ValType

MISC_PREFIX = 0xFC
"""The prefix byte of the two-byte (``0xFC n``) opcodes: saturating truncations, bulk memory
and table operations."""

_U32_MAX = 0xFFFF_FFFF
_U64_MASK = 0xFFFF_FFFF_FFFF_FFFF

ImmReader = Callable[[Any, Reader], object]
"""Reads the immediates of one instruction: ``read_imm(decoder, reader)``."""

Entry = tuple[OpInfo, ImmReader | None, Instr | None]
"""How the instruction loop handles an opcode: ``(info, read_imm, plain)``. ``plain`` is the
shared Instr of an opcode without immediates; otherwise ``read_imm`` reads the immediates, or
is None when they are a single u32 index (the common case, read inline)."""


def _zero_byte(r: Reader) -> int:
    """A reserved memory index: exactly one zero byte in 2.0 (not a LEB128 zero)."""
    start = r.pos
    if r.u8() != 0:
        r.fail("zero byte expected", start)
    return 0


def _memarg(r: Reader) -> MemArg:
    """Alignment exponent (below 32, see ``soru.wasm.binary``) and offset, both u32."""
    start = r.pos
    align = r.u32()
    if align >= 32:
        r.fail("malformed memop flags", start)
    return MemArg(align, r.u32())


def _br_table(r: Reader) -> BrTable:
    """A vector of label indices, then the default label."""
    labels = tuple(r.u32() for _ in range(r.length()))
    return BrTable(labels, r.u32())


def _select_types(d: Any, r: Reader) -> tuple[ValType, ...]:
    """The result types of a typed ``select`` (the validator requires exactly one)."""
    return d.valtypes(r)


_INDEX_IMMS = frozenset({Imm.LABEL, Imm.FUNC, Imm.LOCAL, Imm.GLOBAL, Imm.TABLE, Imm.ELEM})


def _imm_readers(decoder: Any) -> dict[Imm, ImmReader]:
    """The reader of every immediate shape but a single index; ``decoder`` is the decoder
    class, whose ``block_type``, ``reftype`` and ``data_index`` read three of them."""
    return {
        Imm.BLOCKTYPE: decoder.block_type,
        Imm.BR_TABLE: lambda d, r: _br_table(r),
        Imm.CALL_INDIRECT: lambda d, r: (r.u32(), r.u32()),
        Imm.MEMARG: lambda d, r: _memarg(r),
        Imm.MEMORY: lambda d, r: _zero_byte(r),
        Imm.I32: lambda d, r: r.s32() & _U32_MAX,
        Imm.I64: lambda d, r: r.s64() & _U64_MASK,
        Imm.F32: lambda d, r: r.uint_le(4),
        Imm.F64: lambda d, r: r.uint_le(8),
        Imm.SELECT_T: _select_types,
        Imm.REFTYPE: decoder.reftype,
        Imm.DATA_MEMORY: lambda d, r: (d.data_index(r), _zero_byte(r)),
        Imm.DATA: decoder.data_index,
        Imm.MEMORY_MEMORY: lambda d, r: (_zero_byte(r), _zero_byte(r)),
        Imm.ELEM_TABLE: lambda d, r: (r.u32(), r.u32()),
        Imm.TABLE_TABLE: lambda d, r: (r.u32(), r.u32()),
    }


def entry_tables(decoder: Any) -> tuple[list[Entry | None], dict[int, Entry]]:
    """The entries of the one-byte opcodes, indexed by opcode (None: no such opcode), and
    of the ``0xFC``-prefixed ones, by their second (u32) opcode; ``decoder`` is the decoder
    class (see :func:`_imm_readers`)."""
    readers = _imm_readers(decoder)

    def entry(info: OpInfo) -> Entry:
        if info.imm is Imm.NONE:
            return (info, None, Instr(info.op))
        if info.imm in _INDEX_IMMS:
            return (info, None, None)
        return (info, readers[info.imm], None)

    one_byte = [entry(OPS[op]) if op in OPS else None for op in range(0x100)]
    misc = {op & 0xFF: entry(info) for op, info in OPS.items() if op >> 8 == MISC_PREFIX}
    return one_byte, misc
