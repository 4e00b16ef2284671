"""The WebAssembly 2.0 binary decoder (spec chapter 5, "Binary Format"), without SIMD.

:func:`decode_module` turns the bytes of a ``.wasm`` file into a :class:`~soru.wasm.syntax.Module`,
or raises :class:`~soru.wasm.errors.DecodeError` naming the section and the absolute byte offset
of the first malformation. It checks what the binary format alone can tell — framing, section
order, LEB128 widths, UTF-8 names, reserved bytes, opcodes and their immediates, the nesting of
``block``/``loop``/``if``/``else``/``end`` — and leaves typing to ``soru.wasm.validate``.

Instructions come out flat, in binary order (see ``soru.wasm.syntax``): a function body ends
with its final ``end``; a constant expression is stored without it. Immediates are read by the
shape the opcode table gives (``OPS[op].imm``, readers in ``soru.wasm.binary_imm``); integer
constants become unsigned bit patterns and float constants their raw IEEE bits.

With ``forbid_floats=True`` (the rollup PVM, like Tezos' PVM, runs deterministic integer-only
code) any ``f32``/``f64`` value type and any float instruction raises
:class:`~soru.wasm.errors.FloatsForbidden`.

Where the suite is stricter than the 2.0 text, the decoder follows the suite and says so:

* an alignment exponent of 32 or more is malformed ("malformed memop flags"), not merely
  invalid — no 32-bit address space can honour an alignment of 2**32 bytes;
* as an implementation limit, a function may declare at most :data:`MAX_LOCALS` locals
  (locals are expanded one per entry, so the format's 2**32 - 1 cannot be held in memory).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from soru.encoding.reader import Reader
from soru.wasm.binary_imm import MISC_PREFIX, Entry, entry_tables
from soru.wasm.errors import DecodeError, FloatsForbidden
from soru.wasm.syntax import (
    BlockType,
    CustomSection,
    Data,
    Elem,
    Export,
    Expr,
    ExternKind,
    Func,
    FuncType,
    Global,
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

MAGIC = b"\x00asm"
VERSION = b"\x01\x00\x00\x00"

MAX_LOCALS = 50_000
"""Most locals one function may declare (the limit common engines share); beyond it the
decoder reports "too many locals", as the format itself does beyond 2**32 - 1."""

_U32_MAX = 0xFFFF_FFFF

SECTION_NAMES = {
    0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory",
    6: "global", 7: "export", 8: "start", 9: "element", 10: "code", 11: "data",
    12: "data count",
}  # fmt: skip
"""Section ids and the names errors use for them."""

# Position of each non-custom section in the required order (data count precedes code).
_SECTION_RANK = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9, 12: 10, 10: 11, 11: 12}

_VALTYPES = {t.value: t for t in ValType if t is not ValType.V128}
_REFTYPES = {ValType.FUNCREF.value: ValType.FUNCREF, ValType.EXTERNREF.value: ValType.EXTERNREF}
_SIMD_PREFIX = 0xFD
_END, _ELSE = 0x0B, 0x05
_IF = 0x04
_REF_FUNC = 0xD2

# Kinds of open blocks while decoding a sequence; only an open ``if`` admits an ``else``.
_PLAIN_BLOCK, _OPEN_IF, _IF_AFTER_ELSE = 0, 1, 2


def decode_module(data: bytes, *, forbid_floats: bool = False) -> Module:
    """Decode a binary module; raise :class:`DecodeError` if the bytes are malformed.

    With ``forbid_floats``, a module that mentions a float type or instruction raises
    :class:`FloatsForbidden` (a subclass of :class:`DecodeError`).
    """
    return _ModuleDecoder(bytes(data), forbid_floats).decode()


def item_decoder(
    data: bytes,
    *,
    base: int,
    section: str | None,
    forbid_floats: bool = False,
    data_count: int | None = None,
) -> tuple[_ModuleDecoder, Reader]:
    """A decoder over ``data``, bytes that start at offset ``base`` of a module, positioned in
    ``section`` (and knowing the module's ``data_count``), and a reader over ``data``: for a
    caller that decodes a module item by item (``func_type``, ``import_entry``,
    ``elem_head``, ``code_entry``…) instead of all at once. Errors carry module offsets."""
    decoder = _ModuleDecoder(bytes(data), forbid_floats, base)
    decoder.section = section
    decoder.data_count = data_count
    return decoder, Reader(decoder.data, error=decoder.error)


class _ModuleDecoder:
    """The state of one decoding run: the section being read and what earlier ones declared."""

    def __init__(self, data: bytes, forbid_floats: bool, base: int = 0) -> None:
        self.data = data
        self.forbid_floats = forbid_floats
        self.base = base  # absolute offset of ``data[0]`` (an item read from a larger input)
        self.section: str | None = None
        self.fields: dict[str, object] = {}
        self.func_types: tuple[int, ...] = ()
        self.bodies: tuple[tuple[tuple[ValType, ...], tuple[Instr, ...]], ...] = ()
        self.data_count: int | None = None
        self.customs: list[CustomSection] = []

    # --- errors -----------------------------------------------------------------------------

    def error(self, message: str, offset: int) -> DecodeError:
        """The decode error for ``message`` at ``offset`` in the current section."""
        return DecodeError(message, self.base + offset, self.section)

    def forbid(self, what: str, offset: int) -> NoReturn:
        """Raise :class:`FloatsForbidden` for the float ``what`` found at ``offset``."""
        raise FloatsForbidden(f"floats are forbidden: {what}", self.base + offset, self.section)

    # --- module -----------------------------------------------------------------------------

    def decode(self) -> Module:
        """Header, then sections in order, then the checks that span sections."""
        r = Reader(self.data, error=self.error)
        self.header(r)
        last_rank = 0
        while not r.at_end():
            self.section = None
            start = r.pos
            section_id = r.u8()
            name = SECTION_NAMES.get(section_id)
            if name is None:
                r.fail("malformed section id", start)
            self.section = name
            body = r.window(r.u32())
            if section_id == 0:
                self.custom_section(body)
                continue
            rank = _SECTION_RANK[section_id]
            if rank <= last_rank:
                r.fail("unexpected content after last section", start)
            last_rank = rank
            _SECTION_DECODERS[section_id](self, body)
            body.expect_end("section size mismatch")
        self.section = None
        return self.assemble(r)

    def header(self, r: Reader) -> None:
        """The magic number and the version."""
        magic = self.data[:4]
        if magic != MAGIC:
            truncated = len(magic) < 4 and MAGIC.startswith(magic)
            r.fail("unexpected end" if truncated else "magic header not detected", 0)
        r.pos = 4
        version = self.data[4:8]
        if version != VERSION:
            truncated = len(version) < 4 and VERSION.startswith(version)
            r.fail("unexpected end" if truncated else "unknown binary version", 4)
        r.pos = 8

    def assemble(self, r: Reader) -> Module:
        """Check the counts that link sections together and build the module."""
        if len(self.func_types) != len(self.bodies):
            self.section = "code"
            r.fail("function and code section have inconsistent lengths")
        datas = self.fields.get("datas", ())
        if self.data_count is not None and self.data_count != len(datas):  # type: ignore[arg-type]
            self.section = "data"
            r.fail("data count and data section have inconsistent lengths")
        funcs = tuple(
            Func(type_index, local_types, body)
            for type_index, (local_types, body) in zip(self.func_types, self.bodies, strict=True)
        )
        return Module(
            funcs=funcs,
            data_count=self.data_count,
            customs=tuple(self.customs),
            **self.fields,  # type: ignore[arg-type]
        )

    # --- sections ---------------------------------------------------------------------------

    def custom_section(self, r: Reader) -> None:
        """A name and uninterpreted bytes; may appear anywhere, any number of times."""
        name = self.name(r)
        self.customs.append(CustomSection(name, r.rest()))

    def type_section(self, r: Reader) -> None:
        """Function types: ``0x60``, parameter types, result types."""
        self.fields["types"] = tuple(self.func_type(r) for _ in range(r.length()))

    def import_section(self, r: Reader) -> None:
        """Imports: module name, field name, and a description by kind."""
        self.fields["imports"] = tuple(self.import_entry(r) for _ in range(r.length()))

    def function_section(self, r: Reader) -> None:
        """The type index of each function defined in the module."""
        self.func_types = tuple(r.u32() for _ in range(r.length()))

    def table_section(self, r: Reader) -> None:
        """Tables defined in the module: reference type and limits."""
        self.fields["tables"] = tuple(self.table_type(r) for _ in range(r.length()))

    def memory_section(self, r: Reader) -> None:
        """Memories defined in the module: limits in 64 KiB pages."""
        self.fields["mems"] = tuple(MemType(self.limits(r)) for _ in range(r.length()))

    def global_section(self, r: Reader) -> None:
        """Globals: a global type and an initialising constant expression."""
        self.fields["globals"] = tuple(self.global_entry(r) for _ in range(r.length()))

    def export_section(self, r: Reader) -> None:
        """Exports: a name, a kind and an index in that kind's index space."""
        self.fields["exports"] = tuple(self.export_entry(r) for _ in range(r.length()))

    def start_section(self, r: Reader) -> None:
        """The index of the function run at instantiation."""
        self.fields["start"] = r.u32()

    def element_section(self, r: Reader) -> None:
        """Element segments (see :meth:`elem_segment`)."""
        self.fields["elems"] = tuple(self.elem_segment(r) for _ in range(r.length()))

    def data_count_section(self, r: Reader) -> None:
        """The number of data segments, declared before the code that may refer to them."""
        self.data_count = r.u32()

    def code_section(self, r: Reader) -> None:
        """Function bodies: a size, run-length encoded locals, then the instructions."""
        count_at = r.pos
        count = r.length()
        if count != len(self.func_types):
            r.fail("function and code section have inconsistent lengths", count_at)
        self.bodies = tuple(self.code_entry(r.window(r.u32())) for _ in range(count))

    def data_section(self, r: Reader) -> None:
        """Data segments (see :meth:`data_segment`)."""
        self.fields["datas"] = tuple(self.data_segment(r) for _ in range(r.length()))

    # --- items: one entry of a vector section (the PVM's loader reads them one by one) ----

    def func_type(self, r: Reader) -> FuncType:
        """A function type: ``0x60``, parameter types, result types."""
        form_at = r.pos
        if r.u8() != 0x60:
            r.fail("malformed function type", form_at)
        params = self.valtypes(r)
        return FuncType(params, self.valtypes(r))

    def import_entry(self, r: Reader) -> Import:
        """An import: module name, field name, and a description by kind."""
        module = self.name(r)
        field = self.name(r)
        kind_at = r.pos
        kind = r.u8()
        desc: int | TableType | MemType | GlobalType
        if kind == ExternKind.FUNC:
            desc = r.u32()
        elif kind == ExternKind.TABLE:
            desc = self.table_type(r)
        elif kind == ExternKind.MEMORY:
            desc = MemType(self.limits(r))
        elif kind == ExternKind.GLOBAL:
            desc = self.global_type(r)
        else:
            r.fail("malformed import kind", kind_at)
        return Import(module, field, ExternKind(kind), desc)

    def global_entry(self, r: Reader) -> Global:
        """A global: its type and its initialising constant expression."""
        global_type = self.global_type(r)
        return Global(global_type, self.const_expr(r))

    def export_entry(self, r: Reader) -> Export:
        """An export: a name, a kind and an index in that kind's index space."""
        name = self.name(r)
        kind_at = r.pos
        kind = r.u8()
        if kind > ExternKind.GLOBAL:
            r.fail("malformed export kind", kind_at)
        return Export(name, ExternKind(kind), r.u32())

    def code_entry(self, body: Reader) -> tuple[tuple[ValType, ...], tuple[Instr, ...]]:
        """A function body (the window of one code entry): its locals and instructions."""
        local_types = self.locals(body)
        instrs = self.instructions(body)
        body.expect_end("section size mismatch")
        return local_types, instrs

    # --- segments ---------------------------------------------------------------------------

    def elem_segment(self, r: Reader) -> Elem:
        """One element segment in any of the eight encodings the flags (0..7) select.

        Bit 0: passive or declarative (else active); bit 1: an explicit table index (active)
        or declarative (not active); bit 2: elements are expressions (else function indices).
        Only flags 0 and 4 omit the element kind / reference type byte.
        """
        head, flags = self.elem_head(r)
        init = tuple(self.elem_item(r, flags) for _ in range(r.length()))
        return Elem(head.type, init, head.mode, head.table, head.offset)

    def elem_head(self, r: Reader) -> tuple[Elem, int]:
        """An element segment up to the count of its items: the segment without them, and
        its flags (the count and items follow, each item read by :meth:`elem_item`)."""
        flags_at = r.pos
        flags = r.u32()
        if flags > 7:
            r.fail("malformed elements segment kind", flags_at)
        table = 0
        offset: Expr = ()
        if flags & 1:
            mode = SegmentMode.DECLARATIVE if flags & 2 else SegmentMode.PASSIVE
        else:
            mode = SegmentMode.ACTIVE
            if flags & 2:
                table = r.u32()
            offset = self.const_expr(r)
        if flags & 4:
            elem_type = ValType.FUNCREF if flags == 4 else self.reftype(r)
        else:
            if flags != 0:
                kind_at = r.pos
                if r.u8() != 0x00:
                    r.fail("malformed element kind", kind_at)
            elem_type = ValType.FUNCREF
        return Elem(elem_type, (), mode, table, offset), flags

    def elem_item(self, r: Reader, flags: int) -> Expr:
        """One item of an element segment with ``flags``: an expression, or a function
        index (bit 2 clear), which becomes ``ref.func``."""
        if flags & 4:
            return self.const_expr(r)
        return (Instr(_REF_FUNC, r.u32()),)

    def data_segment(self, r: Reader) -> Data:
        """One data segment: flags 0 (active, memory 0), 1 (passive), 2 (active, memory x)."""
        head = self.data_head(r)
        return Data(r.byte_vec(), head.mode, head.memory, head.offset)

    def data_head(self, r: Reader) -> Data:
        """A data segment up to its bytes (``init`` left empty; their length and the
        bytes follow)."""
        flags_at = r.pos
        flags = r.u32()
        if flags == 1:
            return Data(b"", SegmentMode.PASSIVE)
        if flags not in (0, 2):
            r.fail("malformed data segment kind", flags_at)
        memory = r.u32() if flags == 2 else 0
        return Data(b"", SegmentMode.ACTIVE, memory, self.const_expr(r))

    # --- types ------------------------------------------------------------------------------

    def name(self, r: Reader) -> str:
        """A length-prefixed UTF-8 string."""
        start = r.pos
        raw = r.byte_vec()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            r.fail("malformed UTF-8 encoding", start)

    def valtype(self, r: Reader) -> ValType:
        """A value type byte (v128 is refused: SIMD is not supported)."""
        start = r.pos
        byte = r.u8()
        valtype = _VALTYPES.get(byte)
        if valtype is None:
            if byte == ValType.V128:
                r.fail("SIMD is not supported (v128)", start)
            r.fail("malformed value type", start)
        if valtype.is_float and self.forbid_floats:
            self.forbid(valtype.text, start)
        return valtype

    def valtypes(self, r: Reader) -> tuple[ValType, ...]:
        """A vector of value types."""
        return tuple(self.valtype(r) for _ in range(r.length()))

    def reftype(self, r: Reader) -> ValType:
        """A reference type byte: ``funcref`` or ``externref``."""
        start = r.pos
        reftype = _REFTYPES.get(r.u8())
        if reftype is None:
            r.fail("malformed reference type", start)
        return reftype

    def limits(self, r: Reader) -> Limits:
        """Flags 0x00 (minimum only) or 0x01 (minimum and maximum), then u32 bounds."""
        flags_at = r.pos
        flags = r.u8()
        if flags > 1:
            r.fail("malformed limits flags", flags_at)
        minimum = r.u32()
        return Limits(minimum, r.u32() if flags else None)

    def table_type(self, r: Reader) -> TableType:
        """A reference type, then limits."""
        elem = self.reftype(r)
        return TableType(self.limits(r), elem)

    def global_type(self, r: Reader) -> GlobalType:
        """A value type, then 0x00 (constant) or 0x01 (mutable)."""
        valtype = self.valtype(r)
        mut_at = r.pos
        mutability = r.u8()
        if mutability > 1:
            r.fail("malformed mutability", mut_at)
        return GlobalType(valtype, bool(mutability))

    def block_type(self, r: Reader) -> BlockType:
        """``0x40`` (no result), a value type, or a non-negative s33 type index."""
        start = r.pos
        byte = r.peek()
        if byte == 0x40:
            r.pos += 1
            return None
        if byte & 0xC0 == 0x40:  # a one-byte negative s33: must be a value type
            return self.valtype(r)
        index = r.s33()
        if index < 0:
            r.fail("malformed block type", start)
        return index

    def locals(self, r: Reader) -> tuple[ValType, ...]:
        """Run-length encoded local declarations, expanded to one type per local."""
        groups = []
        total = 0
        for _ in range(r.length()):
            count_at = r.pos
            count = r.u32()
            valtype = self.valtype(r)
            total += count
            if total > _U32_MAX or total > MAX_LOCALS:
                r.fail("too many locals", count_at)
            groups.append((valtype,) * count)
        return tuple(t for group in groups for t in group)

    # --- instructions -----------------------------------------------------------------------

    def const_expr(self, r: Reader) -> Expr:
        """A constant expression: instructions up to their final ``end``, which is dropped."""
        return self.instructions(r)[:-1]

    def instructions(self, r: Reader) -> tuple[Instr, ...]:
        """Instructions up to and including the ``end`` that closes the sequence."""
        return tuple(self.instruction_run(r, [_PLAIN_BLOCK]))

    def instruction_run(
        self, r: Reader, frames: Any, limit: int = -1, stop: int = -1
    ) -> list[Instr]:
        """Instructions from ``r.pos`` until the ``end`` that empties ``frames`` — or, when
        given, ``limit`` of them, or the first one starting at ``stop`` or later (the
        kernel loader reads a long body in runs, carrying ``frames`` from one to the next).

        Blocks nest by counting, never by recursion: ``frames`` holds a marker for each open
        block (a list, or any sequence with ``append``/``pop`` and item assignment):
        ``block``/``loop``/``if`` open a frame, ``else`` must meet an open ``if`` (once),
        ``end`` closes the innermost frame.
        """
        out: list[Instr] = []
        append = out.append
        data = r.data
        table = _ONE_BYTE
        forbid = self.forbid_floats
        new_instr = tuple.__new__  # Instr(op, imm) without the NamedTuple wrapper's call
        left = limit
        while left:
            left -= 1
            start = r.pos
            if start >= stop >= 0:
                break
            if start >= r.end:
                r.fail("unexpected end of section or function", start)
            op = data[start]
            r.pos = start + 1
            entry = table[op]
            if entry is None:
                entry = self.prefixed(r, op, start)
            info, read_imm, plain = entry
            if forbid and info.uses_float:
                self.forbid(info.name, start)
            if plain is None:
                imm = r.u32() if read_imm is None else read_imm(self, r)
                append(new_instr(Instr, (info.op, imm)))
                if op <= _IF:  # block, loop, if
                    frames.append(_OPEN_IF if op == _IF else _PLAIN_BLOCK)
                continue
            append(plain)
            if op == _END:
                frames.pop()
                if not frames:
                    return out
            elif op == _ELSE:
                if frames[-1] != _OPEN_IF:
                    r.fail("else without a matching if", start)
                frames[-1] = _IF_AFTER_ELSE
        return out

    def prefixed(self, r: Reader, op: int, start: int) -> Entry:
        """The table entry of a ``0xFC``-prefixed opcode; anything else is illegal here."""
        if op == MISC_PREFIX:
            entry = _MISC.get(r.u32())
            if entry is not None:
                return entry
        elif op == _SIMD_PREFIX:
            r.fail("SIMD is not supported", start)
        r.fail("illegal opcode", start)

    def data_index(self, r: Reader) -> int:
        """A data index in code, which needs the data count section to have come first."""
        start = r.pos
        index = r.u32()
        if self.data_count is None and self.section == "code":
            r.fail("data count section required", start)
        return index


# --- tables ----------------------------------------------------------------------------------

_ONE_BYTE, _MISC = entry_tables(_ModuleDecoder)
"""The instruction loop's entry for each opcode (see :mod:`soru.wasm.binary_imm`)."""

_SECTION_DECODERS: dict[int, Callable[[_ModuleDecoder, Reader], None]] = {
    1: _ModuleDecoder.type_section,
    2: _ModuleDecoder.import_section,
    3: _ModuleDecoder.function_section,
    4: _ModuleDecoder.table_section,
    5: _ModuleDecoder.memory_section,
    6: _ModuleDecoder.global_section,
    7: _ModuleDecoder.export_section,
    8: _ModuleDecoder.start_section,
    9: _ModuleDecoder.element_section,
    10: _ModuleDecoder.code_section,
    11: _ModuleDecoder.data_section,
    12: _ModuleDecoder.data_count_section,
}
