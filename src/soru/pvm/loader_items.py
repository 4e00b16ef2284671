"""What the kernel loader (``soru.pvm.loader``) keeps of each item, and how a function body
is checked against the module read lazily from the tree.

**Encodings** of the module's items in the tree (integers ``zarith`` unless said; ``u8``
one byte; ``u64`` eight bytes big-endian; an *expression* is ``n ‖ n × instruction``, each
instruction ``op ‖ immediates`` as ``soru.pvm.layout.encode_instr``)::

    type          layout.encode_functype
    import        kind u8 ‖ len ‖ module ‖ len ‖ name ‖ description:
                  function: type index | table: elem type u8 ‖ limits
                  | memory: limits | global: value type u8 ‖ mutable u8
    limits        flags u8 (1: has a maximum) ‖ minimum u64 ‖ maximum u64 (if any)
    global        value type u8 ‖ mutable u8 ‖ 0 ‖ import index  |  … ‖ 1 ‖ init expression
    elem segment  elem type u8 ‖ mode u8 ‖ table ‖ item count ‖ offset expression
    data segment  mode u8 ‖ memory ‖ offset expression
    export        kind u8 ‖ index ‖ the name (UTF-8), under the key :func:`export_key`
    function      (loader scratch) type index ‖ layout.encode_functype

**Function bodies.** Validating and lowering a body needs the signature of every function
it calls, the types of its blocks and indirect calls, the globals, tables and element
segments it names, and whether the functions it takes references of are declared. These are
its *references* (:func:`body_references`): the distinct ones, in order of first use, each
read from the tree as a *fact* (the raw value at its path). A body step may read only
:data:`DIRECT_FACTS` of them itself; the others are fetched beforehand by *gather* steps,
:data:`GATHER_FACTS` per step, which store them as one compact value per batch. The body
step then validates with :class:`~soru.wasm.validate_body.BodyChecker` over a
:class:`~soru.wasm.validate_body.Context` whose parts are views onto these facts, and lowers
with :func:`~soru.wasm.exec.lower.lower_function` over the same views. So a body's proof
holds its bytes, the compact facts and a bounded number of tree paths, however many
functions it calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from soru.crypto.hashing import Tag, hasher_256
from soru.encoding.reader import Reader
from soru.encoding.writer import Writer
from soru.pvm.layout import decode_functype, decode_imm, encode_instr
from soru.wasm.opcodes import OPS, Imm
from soru.wasm.syntax import (
    Expr,
    ExternKind,
    FuncType,
    GlobalType,
    Import,
    Instr,
    Limits,
    MemType,
    TableType,
)
from soru.wasm.validate_body import Context, Signature

DIRECT_FACTS = 4
"""References a body step reads from the tree itself (the last ones in order of first use)."""

GATHER_FACTS = 16
"""References one gather step reads from the tree."""

MAX_FACT_BYTES = 4096
"""Bytes of gathered facts one body step may read back, at most (typical bodies need tens
of bytes: a function signature is 3 to 10); a body that needs more is read in runs
(``loader_body``), each naming a few."""

# --- encodings ----------------------------------------------------------------------------


def u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


def encode_expr(expr: Expr) -> bytes:
    out = Writer().zarith_n(len(expr))
    for op, imm in expr:
        out.raw(encode_instr(op, imm))
    return out.getvalue()


def decode_expr(reader: Reader) -> Expr:
    return tuple(Instr(reader.zarith_n(), decode_imm(reader)) for _ in range(reader.zarith_n()))


def encode_limits(limits: Limits) -> bytes:
    if limits.max is None:
        return b"\x00" + u64(limits.min)
    return b"\x01" + u64(limits.min) + u64(limits.max)


def encode_import(imp: Import) -> bytes:
    module, name = imp.module.encode(), imp.name.encode()
    out = Writer().u8(imp.kind).zarith_n(len(module)).raw(module).zarith_n(len(name)).raw(name)
    desc = imp.desc
    if isinstance(desc, int):
        out.zarith_n(desc)
    elif isinstance(desc, TableType):
        out.u8(desc.elem).raw(encode_limits(desc.limits))
    elif isinstance(desc, MemType):
        out.raw(encode_limits(desc.limits))
    elif isinstance(desc, GlobalType):
        out.u8(desc.valtype).u8(desc.mutable)
    return out.getvalue()


def encode_global(gtype: GlobalType, init: Expr | None, import_index: int = 0) -> bytes:
    """A global: its type, then the import it comes from or its init expression."""
    head = bytes((gtype.valtype, gtype.mutable))
    if init is None:
        return head + b"\x00" + Writer().zarith_n(import_index).getvalue()
    return head + b"\x01" + encode_expr(init)


def global_type_of(fact: bytes) -> tuple[int, bool]:
    """(value type, mutable) of an encoded global."""
    return fact[0], bool(fact[1])


def table_elem_of(fact: bytes) -> int:
    """The element type of a table (``tables/<t>`` is ``elem type ‖ maximum``)."""
    return fact[0]


def elem_type_of(fact: bytes) -> int:
    return fact[0]


def func_fact_type(fact: bytes) -> tuple[int, FuncType]:
    """(type index, signature) of a function's scratch entry."""
    reader = Reader(fact)
    type_index = reader.zarith_n()
    return type_index, decode_functype(reader)


_export_hasher = hasher_256(Tag.MERKLE_KEY)


def export_key(name: str) -> str:
    """The tree name of export ``name``: ``=name`` when that is a valid tree name (1 to 255
    UTF-8 bytes), else ``#`` and the hex Blake2b of the name (the value keeps the name)."""
    raw = name.encode("utf-8")
    if len(raw) <= 254:
        return "=" + name
    return "#" + _export_hasher(raw).hexdigest()


def encode_export(kind: ExternKind, index: int, name: str) -> bytes:
    return bytes((kind,)) + Writer().zarith_n(index).getvalue() + name.encode("utf-8")


# --- references of a body -----------------------------------------------------------------

Ref = tuple[str, int]
"""A reference of a body: ``("f", i)`` function i's signature, ``("y", i)`` type i,
``("g", i)`` global i, ``("t", i)`` table i, ``("e", i)`` element segment i, ``("d", i)``
whether function i is declared (may be named by ``ref.func``)."""


class Sizes:
    """The lengths of the module's index spaces so far (a reference beyond one is not read:
    the checker rejects it by its index alone)."""

    __slots__ = ("f", "y", "g", "t", "e")

    def __init__(self, funcs: int, types: int, globals_: int, tables: int, elems: int):
        self.f, self.y, self.g, self.t, self.e = funcs, types, globals_, tables, elems

    def has(self, kind: str, index: object) -> bool:
        bound = getattr(self, "f" if kind == "d" else kind)
        return type(index) is int and 0 <= index < bound


_REF_KINDS: dict[Imm, tuple[str, ...]] = {
    Imm.FUNC: ("f",),
    Imm.GLOBAL: ("g",),
    Imm.TABLE: ("t",),
    Imm.ELEM: ("e",),
    Imm.CALL_INDIRECT: ("y", "t"),
    Imm.ELEM_TABLE: ("e", "t"),
    Imm.TABLE_TABLE: ("t", "t"),
}
_REF_FUNC = 0xD2


def body_references(func_index: int, body: Sequence[Instr], sizes: Sizes) -> list[Ref]:
    """The distinct references of function ``func_index``'s body, in order of first use;
    its own signature first."""
    seen: dict[Ref, None] = {("f", func_index): None}
    for op, imm in body:
        info = OPS.get(op)
        if info is None:
            continue
        if info.imm is Imm.BLOCKTYPE:
            if type(imm) is int and sizes.has("y", imm):
                seen.setdefault(("y", imm), None)
            continue
        kinds = _REF_KINDS.get(info.imm)
        if kinds is None:
            continue
        indices = imm if len(kinds) == 2 and isinstance(imm, tuple) else (imm,)
        for kind, index in zip(kinds, indices, strict=False):
            if sizes.has(kind, index):
                seen.setdefault((kind, index), None)  # type: ignore[arg-type]
        if op == _REF_FUNC and sizes.has("d", imm):
            seen.setdefault(("d", imm), None)  # type: ignore[arg-type]
    return list(seen)


def encode_facts(facts: Sequence[bytes]) -> bytes:
    out = Writer()
    for fact in facts:
        out.zarith_n(len(fact)).raw(fact)
    return out.getvalue()


def decode_facts(raw: bytes) -> list[bytes]:
    reader = Reader(raw)
    facts = []
    while not reader.at_end():
        facts.append(reader.read(reader.zarith_n()))
    return facts


# --- views for the validator and the lowerer ----------------------------------------------


class View(Sequence):
    """A sequence of ``length`` items, each made by ``make(i)`` when first asked for."""

    def __init__(self, length: int, make: Callable[[int], Any]) -> None:
        self.length, self.make = length, make
        self.cache: dict[int, Any] = {}

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: Any) -> Any:
        if type(i) is not int or not 0 <= i < self.length:
            raise IndexError(i)
        found = self.cache.get(i)
        if found is None:
            found = self.cache[i] = self.make(i)
        return found


class Declared:
    """``f in refs``: whether function f may be named by ``ref.func`` in a body."""

    def __init__(self, is_declared: Callable[[int], bool]) -> None:
        self.is_declared = is_declared

    def __contains__(self, f: object) -> bool:
        return type(f) is int and self.is_declared(f)


def signature(ft: FuncType) -> Signature:
    return [int(t) for t in ft.params], [int(t) for t in ft.results]


class ModuleView:
    """What lowering reads of a module: its types, by index."""

    def __init__(self, types: Sequence[FuncType]) -> None:
        self.types = types


def context(
    fact: Callable[[Ref], bytes],
    sizes: Sizes,
    *,
    mems: int,
    imported_globals: int,
    datas: int,
    has_data_count: bool,
) -> tuple[Context, View, View]:
    """A validation context whose parts read facts through ``fact`` (only those asked for),
    and the views of types and function types as lowering wants them."""
    types = View(sizes.y, lambda i: decode_functype(Reader(fact(("y", i)))))
    func_types = View(sizes.f, lambda i: func_fact_type(fact(("f", i)))[1])
    ctx = Context.of(
        types=View(sizes.y, lambda i: signature(types[i])),
        funcs=View(sizes.f, lambda i: signature(func_types[i])),
        tables=View(sizes.t, lambda i: table_elem_of(fact(("t", i)))),
        mems=mems,
        globals=View(sizes.g, lambda i: global_type_of(fact(("g", i)))),
        imported_globals=imported_globals,
        elems=View(sizes.e, lambda i: elem_type_of(fact(("e", i)))),
        datas=datas,
        has_data_count=has_data_count,
        refs=Declared(lambda f: fact(("d", f)) == b"\x01"),
    )
    return ctx, types, func_types
