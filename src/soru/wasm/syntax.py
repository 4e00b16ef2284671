"""The abstract syntax of a WebAssembly module (spec chapter 2, "Structure").

A decoded module is a tree of frozen records. Instructions are kept *flat*, exactly in binary
order: structured instructions (``block``, ``loop``, ``if``) are followed by their body and a
separate ``else``/``end`` instruction, as in the binary format. The executor lowers this flat
form into jumps with precomputed targets (``soru.wasm.exec.lower``).

An instruction is an :class:`Instr` ``(op, imm)``: ``op`` is the opcode number from
``soru.wasm.opcodes`` (``0xFC``-prefixed opcodes are ``0xFC00 | sub``), ``imm`` its decoded
immediates, whose shape the opcode table names (``Imm``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple, cast


class ValType(IntEnum):
    """Value types, numbered by their binary encoding."""

    I32 = 0x7F
    I64 = 0x7E
    F32 = 0x7D
    F64 = 0x7C
    V128 = 0x7B
    FUNCREF = 0x70
    EXTERNREF = 0x6F

    @property
    def is_num(self) -> bool:
        return self in (ValType.I32, ValType.I64, ValType.F32, ValType.F64)

    @property
    def is_ref(self) -> bool:
        return self in (ValType.FUNCREF, ValType.EXTERNREF)

    @property
    def is_float(self) -> bool:
        return self in (ValType.F32, ValType.F64)

    @property
    def text(self) -> str:
        """The text-format name (``i32``, ``funcref``…)."""
        return _VALTYPE_TEXT[self]


_VALTYPE_TEXT = {
    ValType.I32: "i32",
    ValType.I64: "i64",
    ValType.F32: "f32",
    ValType.F64: "f64",
    ValType.V128: "v128",
    ValType.FUNCREF: "funcref",
    ValType.EXTERNREF: "externref",
}


class ExternKind(IntEnum):
    """Kinds of imports and exports, numbered by their binary encoding."""

    FUNC = 0
    TABLE = 1
    MEMORY = 2
    GLOBAL = 3


@dataclass(frozen=True, slots=True)
class FuncType:
    """A function signature: parameter types to result types."""

    params: tuple[ValType, ...]
    results: tuple[ValType, ...]

    def __str__(self) -> str:
        p = " ".join(t.text for t in self.params)
        r = " ".join(t.text for t in self.results)
        return f"[{p}] -> [{r}]"


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits of a memory (in 64 KiB pages) or a table (in elements)."""

    min: int
    max: int | None = None


@dataclass(frozen=True, slots=True)
class TableType:
    limits: Limits
    elem: ValType  # FUNCREF or EXTERNREF


@dataclass(frozen=True, slots=True)
class MemType:
    limits: Limits


@dataclass(frozen=True, slots=True)
class GlobalType:
    valtype: ValType
    mutable: bool


ExternType = FuncType | TableType | MemType | GlobalType


class Instr(NamedTuple):
    """One instruction in flat binary order: opcode number and decoded immediates."""

    op: int
    imm: object = None


class MemArg(NamedTuple):
    """Immediate of loads and stores: alignment exponent and static offset."""

    align: int
    offset: int


class BrTable(NamedTuple):
    """Immediate of ``br_table``: the label vector and the default label."""

    labels: tuple[int, ...]
    default: int


# A block type is ``None`` (no params, no results), a ValType (one result), or an int
# index into the module's type section (multi-value).
BlockType = ValType | int | None

# A constant expression: a short instruction sequence, without its final ``end``.
Expr = tuple[Instr, ...]


@dataclass(frozen=True, slots=True)
class Import:
    module: str
    name: str
    kind: ExternKind
    desc: int | TableType | MemType | GlobalType  # type index for functions


@dataclass(frozen=True, slots=True)
class Export:
    name: str
    kind: ExternKind
    index: int


@dataclass(frozen=True, slots=True)
class Func:
    """A function defined in the module: its type index, declared locals and body.

    ``locals`` lists one ValType per local (run-length encoding already expanded);
    ``body`` is flat and ends with the function's final ``end``.
    """

    type_index: int
    locals: tuple[ValType, ...]
    body: tuple[Instr, ...]


@dataclass(frozen=True, slots=True)
class Global:
    type: GlobalType
    init: Expr


class SegmentMode(IntEnum):
    ACTIVE = 0
    PASSIVE = 1
    DECLARATIVE = 2


@dataclass(frozen=True, slots=True)
class Elem:
    """An element segment: its reference type, one constant expression per element, and mode.

    For active segments, ``table`` and ``offset`` say where it is copied at instantiation.
    """

    type: ValType
    init: tuple[Expr, ...]
    mode: SegmentMode
    table: int = 0
    offset: Expr = ()


@dataclass(frozen=True, slots=True)
class Data:
    """A data segment: bytes and mode; active ones name the memory and offset expression."""

    init: bytes
    mode: SegmentMode
    memory: int = 0
    offset: Expr = ()


@dataclass(frozen=True, slots=True)
class CustomSection:
    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Module:
    """A decoded (not necessarily valid) module."""

    types: tuple[FuncType, ...] = ()
    imports: tuple[Import, ...] = ()
    funcs: tuple[Func, ...] = ()
    tables: tuple[TableType, ...] = ()
    mems: tuple[MemType, ...] = ()
    globals: tuple[Global, ...] = ()
    exports: tuple[Export, ...] = ()
    start: int | None = None
    elems: tuple[Elem, ...] = ()
    datas: tuple[Data, ...] = ()
    data_count: int | None = None
    customs: tuple[CustomSection, ...] = field(default=())

    def imported(self, kind: ExternKind) -> tuple[Import, ...]:
        """The imports of one kind, in order (they come first in that kind's index space)."""
        return tuple(i for i in self.imports if i.kind == kind)

    def func_type(self, func_index: int) -> FuncType:
        """The type of function ``func_index`` in the module's function index space."""
        imported = self.imported(ExternKind.FUNC)
        if func_index < len(imported):
            return self.types[cast(int, imported[func_index].desc)]
        return self.types[self.funcs[func_index - len(imported)].type_index]
