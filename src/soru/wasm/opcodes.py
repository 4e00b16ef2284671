"""The one opcode table: every instruction of WebAssembly 2.0 (without SIMD).

For each opcode it records the text name, the shape of its immediates (:class:`Imm`), and —
for instructions whose typing is fixed — the operand and result types. The decoder reads
immediates by ``imm``; the validator types fixed instructions by ``params``/``results`` and
handles the rest (``sig is None``) by name; the executor binds a handler to every opcode and
takes its tick cost from ``soru.wasm.exec.ticks``.

Opcodes after the ``0xFC`` prefix are numbered ``0xFC00 | sub``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

from soru.wasm.syntax import ValType

I32, I64, F32, F64 = ValType.I32, ValType.I64, ValType.F32, ValType.F64


class Imm(Enum):
    """Shapes of immediates, as the binary format lays them out."""

    NONE = auto()
    BLOCKTYPE = auto()  # block, loop, if: BlockType
    LABEL = auto()  # br, br_if: label index
    BR_TABLE = auto()  # BrTable
    FUNC = auto()  # call, ref.func: function index
    CALL_INDIRECT = auto()  # (type index, table index)
    LOCAL = auto()  # local index
    GLOBAL = auto()  # global index
    TABLE = auto()  # table index
    MEMARG = auto()  # MemArg(align, offset)
    MEMORY = auto()  # memory index (a reserved 0x00 byte in 2.0)
    I32 = auto()  # i32.const: unsigned 32-bit pattern
    I64 = auto()  # i64.const: unsigned 64-bit pattern
    F32 = auto()  # f32.const: 32-bit IEEE pattern
    F64 = auto()  # f64.const: 64-bit IEEE pattern
    SELECT_T = auto()  # typed select: tuple of ValType
    REFTYPE = auto()  # ref.null: ValType
    DATA_MEMORY = auto()  # memory.init: (data index, memory index)
    DATA = auto()  # data.drop: data index
    MEMORY_MEMORY = auto()  # memory.copy: (dst memory, src memory)
    ELEM_TABLE = auto()  # table.init: (elem index, table index)
    ELEM = auto()  # elem.drop: elem index
    TABLE_TABLE = auto()  # table.copy: (dst table, src table)


@dataclass(frozen=True, slots=True)
class OpInfo:
    """What the table knows of one opcode.

    ``sig`` is ``(params, results)`` when the instruction's typing is fixed, else ``None``.
    ``width`` is the access width in bytes of loads and stores (0 otherwise).
    ``uses_float`` marks instructions that the float ban (PVM) rejects.
    """

    op: int
    name: str
    imm: Imm = Imm.NONE
    sig: tuple[tuple[ValType, ...], tuple[ValType, ...]] | None = None
    width: int = 0
    uses_float: bool = False


OPS: dict[int, OpInfo] = {}
BY_NAME: dict[str, OpInfo] = {}


def _add(op: int, name: str, imm: Imm = Imm.NONE, sig=None, width: int = 0) -> None:
    uses_float = "f32" in name or "f64" in name
    if sig is not None:
        uses_float = uses_float or any(t.is_float for t in sig[0] + sig[1])
    info = OpInfo(op, name, imm, sig, width, uses_float)
    OPS[op] = info
    BY_NAME[name] = info


def _sig(params: str, results: str):
    code = {"i": I32, "I": I64, "f": F32, "F": F64}
    return tuple(code[c] for c in params), tuple(code[c] for c in results)


# --- control -------------------------------------------------------------------------------
_add(0x00, "unreachable")
_add(0x01, "nop", sig=((), ()))
_add(0x02, "block", Imm.BLOCKTYPE)
_add(0x03, "loop", Imm.BLOCKTYPE)
_add(0x04, "if", Imm.BLOCKTYPE)
_add(0x05, "else")
_add(0x0B, "end")
_add(0x0C, "br", Imm.LABEL)
_add(0x0D, "br_if", Imm.LABEL)
_add(0x0E, "br_table", Imm.BR_TABLE)
_add(0x0F, "return")
_add(0x10, "call", Imm.FUNC)
_add(0x11, "call_indirect", Imm.CALL_INDIRECT)

# --- reference -----------------------------------------------------------------------------
_add(0xD0, "ref.null", Imm.REFTYPE)
_add(0xD1, "ref.is_null")
_add(0xD2, "ref.func", Imm.FUNC)

# --- parametric ----------------------------------------------------------------------------
_add(0x1A, "drop")
_add(0x1B, "select")
_add(0x1C, "select_t", Imm.SELECT_T)

# --- variable ------------------------------------------------------------------------------
_add(0x20, "local.get", Imm.LOCAL)
_add(0x21, "local.set", Imm.LOCAL)
_add(0x22, "local.tee", Imm.LOCAL)
_add(0x23, "global.get", Imm.GLOBAL)
_add(0x24, "global.set", Imm.GLOBAL)

# --- table ---------------------------------------------------------------------------------
_add(0x25, "table.get", Imm.TABLE)
_add(0x26, "table.set", Imm.TABLE)
_add(0xFC0C, "table.init", Imm.ELEM_TABLE)
_add(0xFC0D, "elem.drop", Imm.ELEM, sig=((), ()))
_add(0xFC0E, "table.copy", Imm.TABLE_TABLE)
_add(0xFC0F, "table.grow", Imm.TABLE)
_add(0xFC10, "table.size", Imm.TABLE)
_add(0xFC11, "table.fill", Imm.TABLE)

# --- memory --------------------------------------------------------------------------------
_LOADS = [
    (0x28, "i32.load", "i", 4), (0x29, "i64.load", "I", 8),
    (0x2A, "f32.load", "f", 4), (0x2B, "f64.load", "F", 8),
    (0x2C, "i32.load8_s", "i", 1), (0x2D, "i32.load8_u", "i", 1),
    (0x2E, "i32.load16_s", "i", 2), (0x2F, "i32.load16_u", "i", 2),
    (0x30, "i64.load8_s", "I", 1), (0x31, "i64.load8_u", "I", 1),
    (0x32, "i64.load16_s", "I", 2), (0x33, "i64.load16_u", "I", 2),
    (0x34, "i64.load32_s", "I", 4), (0x35, "i64.load32_u", "I", 4),
]  # fmt: skip
for _op, _name, _t, _w in _LOADS:
    _add(_op, _name, Imm.MEMARG, _sig("i", _t), _w)
_STORES = [
    (0x36, "i32.store", "i", 4), (0x37, "i64.store", "I", 8),
    (0x38, "f32.store", "f", 4), (0x39, "f64.store", "F", 8),
    (0x3A, "i32.store8", "i", 1), (0x3B, "i32.store16", "i", 2),
    (0x3C, "i64.store8", "I", 1), (0x3D, "i64.store16", "I", 2),
    (0x3E, "i64.store32", "I", 4),
]  # fmt: skip
for _op, _name, _t, _w in _STORES:
    _add(_op, _name, Imm.MEMARG, _sig("i" + _t, ""), _w)
_add(0x3F, "memory.size", Imm.MEMORY, _sig("", "i"))
_add(0x40, "memory.grow", Imm.MEMORY, _sig("i", "i"))
_add(0xFC08, "memory.init", Imm.DATA_MEMORY, _sig("iii", ""))
_add(0xFC09, "data.drop", Imm.DATA, _sig("", ""))
_add(0xFC0A, "memory.copy", Imm.MEMORY_MEMORY, _sig("iii", ""))
_add(0xFC0B, "memory.fill", Imm.MEMORY, _sig("iii", ""))

# --- numeric: constants --------------------------------------------------------------------
_add(0x41, "i32.const", Imm.I32, _sig("", "i"))
_add(0x42, "i64.const", Imm.I64, _sig("", "I"))
_add(0x43, "f32.const", Imm.F32, _sig("", "f"))
_add(0x44, "f64.const", Imm.F64, _sig("", "F"))


def _numeric_block(first: int, prefix: str, t: str, names: list[str], shape: str) -> None:
    """Add consecutive opcodes ``prefix.name`` of one shape: test, rel, un or bin."""
    sigs = {"test": (t, "i"), "rel": (t + t, "i"), "un": (t, t), "bin": (t + t, t)}
    for i, name in enumerate(names):
        _add(first + i, f"{prefix}.{name}", sig=_sig(*sigs[shape]))


_INT_REL = ["eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"]
_FLOAT_REL = ["eq", "ne", "lt", "gt", "le", "ge"]
_INT_UN = ["clz", "ctz", "popcnt"]
_INT_BIN = [
    "add", "sub", "mul", "div_s", "div_u", "rem_s", "rem_u",
    "and", "or", "xor", "shl", "shr_s", "shr_u", "rotl", "rotr",
]  # fmt: skip
_FLOAT_UN = ["abs", "neg", "ceil", "floor", "trunc", "nearest", "sqrt"]
_FLOAT_BIN = ["add", "sub", "mul", "div", "min", "max", "copysign"]

_numeric_block(0x45, "i32", "i", ["eqz"], "test")
_numeric_block(0x46, "i32", "i", _INT_REL, "rel")
_numeric_block(0x50, "i64", "I", ["eqz"], "test")
_numeric_block(0x51, "i64", "I", _INT_REL, "rel")
_numeric_block(0x5B, "f32", "f", _FLOAT_REL, "rel")
_numeric_block(0x61, "f64", "F", _FLOAT_REL, "rel")
_numeric_block(0x67, "i32", "i", _INT_UN, "un")
_numeric_block(0x6A, "i32", "i", _INT_BIN, "bin")
_numeric_block(0x79, "i64", "I", _INT_UN, "un")
_numeric_block(0x7C, "i64", "I", _INT_BIN, "bin")
_numeric_block(0x8B, "f32", "f", _FLOAT_UN, "un")
_numeric_block(0x92, "f32", "f", _FLOAT_BIN, "bin")
_numeric_block(0x99, "f64", "F", _FLOAT_UN, "un")
_numeric_block(0xA0, "f64", "F", _FLOAT_BIN, "bin")

# --- numeric: conversions ------------------------------------------------------------------
_CONVERSIONS = [
    (0xA7, "i32.wrap_i64", "I", "i"),
    (0xA8, "i32.trunc_f32_s", "f", "i"), (0xA9, "i32.trunc_f32_u", "f", "i"),
    (0xAA, "i32.trunc_f64_s", "F", "i"), (0xAB, "i32.trunc_f64_u", "F", "i"),
    (0xAC, "i64.extend_i32_s", "i", "I"), (0xAD, "i64.extend_i32_u", "i", "I"),
    (0xAE, "i64.trunc_f32_s", "f", "I"), (0xAF, "i64.trunc_f32_u", "f", "I"),
    (0xB0, "i64.trunc_f64_s", "F", "I"), (0xB1, "i64.trunc_f64_u", "F", "I"),
    (0xB2, "f32.convert_i32_s", "i", "f"), (0xB3, "f32.convert_i32_u", "i", "f"),
    (0xB4, "f32.convert_i64_s", "I", "f"), (0xB5, "f32.convert_i64_u", "I", "f"),
    (0xB6, "f32.demote_f64", "F", "f"),
    (0xB7, "f64.convert_i32_s", "i", "F"), (0xB8, "f64.convert_i32_u", "i", "F"),
    (0xB9, "f64.convert_i64_s", "I", "F"), (0xBA, "f64.convert_i64_u", "I", "F"),
    (0xBB, "f64.promote_f32", "f", "F"),
    (0xBC, "i32.reinterpret_f32", "f", "i"), (0xBD, "i64.reinterpret_f64", "F", "I"),
    (0xBE, "f32.reinterpret_i32", "i", "f"), (0xBF, "f64.reinterpret_i64", "I", "F"),
    (0xC0, "i32.extend8_s", "i", "i"), (0xC1, "i32.extend16_s", "i", "i"),
    (0xC2, "i64.extend8_s", "I", "I"), (0xC3, "i64.extend16_s", "I", "I"),
    (0xC4, "i64.extend32_s", "I", "I"),
    (0xFC00, "i32.trunc_sat_f32_s", "f", "i"), (0xFC01, "i32.trunc_sat_f32_u", "f", "i"),
    (0xFC02, "i32.trunc_sat_f64_s", "F", "i"), (0xFC03, "i32.trunc_sat_f64_u", "F", "i"),
    (0xFC04, "i64.trunc_sat_f32_s", "f", "I"), (0xFC05, "i64.trunc_sat_f32_u", "f", "I"),
    (0xFC06, "i64.trunc_sat_f64_s", "F", "I"), (0xFC07, "i64.trunc_sat_f64_u", "F", "I"),
]  # fmt: skip
for _op, _name, _a, _r in _CONVERSIONS:
    _add(_op, _name, sig=_sig(_a, _r))

del _op, _name, _t, _w, _a, _r


def info(op: int) -> OpInfo:
    """The table entry of ``op``; raises KeyError for an unknown opcode."""
    return OPS[op]


def name(op: int) -> str:
    """The text name of ``op`` (``"0x??"`` when unknown), for messages."""
    entry = OPS.get(op)
    return entry.name if entry else f"0x{op:02x}"
