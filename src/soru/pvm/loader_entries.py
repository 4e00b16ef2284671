"""The entries of the kernel's sections, one loader step each (see ``soru.pvm.loader``):
what is read, checked as ``soru.wasm.validate`` checks it, and written to the tree.

:class:`EntryReader` holds one step's access to the kernel and the state, and reads entries;
the loader proper (``soru.pvm.loader``) adds the step itself, the header and section steps
and the end of the kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from soru.encoding.reader import Reader
from soru.encoding.writer import Writer
from soru.merkle import MAX_VALUE_SIZE
from soru.merkle.chunked import CHUNKS, HEADER
from soru.pvm import loader_body
from soru.pvm import loader_items as items
from soru.pvm.layout import encode_code, encode_functype, encode_locals
from soru.pvm.loader_state import (
    _ATTEMPTS,
    _END_REASONS,
    DATA_CHUNK,
    ELEM_BATCH,
    MAX_ITEM_BYTES,
    Counts,
    KernelReader,
    LoaderLimit,
    P,
    Progress,
    Stage,
    _fits,
    _radix_append,
    _read,
)
from soru.wasm.binary import SECTION_NAMES, item_decoder
from soru.wasm.errors import DecodeError, InvalidModule
from soru.wasm.exec.lower import lower_function
from soru.wasm.syntax import ExternKind, Func, MemType, Module, SegmentMode
from soru.wasm.validate import (
    _check_const,
    _check_elem,
    _check_exports,
    _check_imports,
    _check_memory_type,
    _check_table_type,
)
from soru.wasm.validate_body import _I32, BodyChecker

Result = tuple[Progress, Counts, str]
"""What a step returns: the progress and counts after it, and what it read."""


class EntryReader:
    """One step's access to the state (``store``) and the kernel (``kernel_reader``), and
    the steps that read the entries of vector sections."""

    def __init__(self, store: Any, kernel_reader: KernelReader, root: P) -> None:
        self.store, self.kernel_reader = store, kernel_reader
        self.load: P = (*root, "load")
        self.module: P = (*root, "module")

    def read(self, offset: int, size: int) -> bytes:
        return _read(self.kernel_reader, offset, size)

    def decoder(self, data: bytes, base: int, section: str | None, c: Counts) -> Any:
        return item_decoder(data, base=base, section=section, forbid_floats=True,
                            data_count=c.declared_data_count)  # fmt: skip

    def item(self, pos: int, end: int, section: str, c: Counts, parse: Callable,
             limit: int = MAX_ITEM_BYTES) -> tuple[Any, int]:  # fmt: skip
        """Parse one item at ``pos`` (its section ends at ``end``), reading no more of the
        kernel than it needs; returns the item and the offset after it."""
        room = end - pos
        for attempt in (*_ATTEMPTS, limit):
            size = min(attempt, room, limit)
            decoder, r = self.decoder(self.read(pos, size), pos, section, c)
            try:
                return parse(decoder, r), pos + r.pos
            except DecodeError as error:
                if size >= room or error.reason not in _END_REASONS:
                    raise
                if size >= limit:
                    message = f"an entry of more than {limit} bytes is too large for the PVM"
                    raise LoaderLimit(message, pos, section) from None
        raise AssertionError("unreachable")

    def fail(self, message: str, offset: int, section: str | None) -> DecodeError:
        return DecodeError(message, offset, section)

    def put(self, *path_and_value: Any) -> None:
        *path, value = path_and_value
        self.store.set((*self.module, *path), value)

    def fact(self, ref: items.Ref) -> bytes:
        """The raw tree value behind a reference (see ``loader_items.Ref``)."""
        kind, i = ref
        if kind == "d":
            return b"\x01" if self.store.has((*self.load, "declared", str(i))) else b"\x00"
        path = {
            "f": (*self.load, "func_types"),
            "y": (*self.module, "types"),
            "g": (*self.module, "globals"),
            "t": (*self.module, "tables"),
            "e": (*self.module, "elems"),
        }[kind]
        raw = self.store.get((*path, str(i)))
        if raw is None:
            raise RuntimeError(f"the loader's state lacks {kind} {i}")
        return raw

    def declare(self, exprs: Any) -> None:
        """Record the functions named by ``ref.func`` in constant expressions."""
        for expr in exprs:
            for op, imm in expr:
                if op == 0xD2 and isinstance(imm, int):
                    self.store.set((*self.load, "declared", str(imm)), b"")

    def context(self, c: Counts) -> Any:
        """The validation context of constant expressions, exports and start (read lazily)."""
        sizes = items.Sizes(c.funcs, c.types, c.globals, c.tables, c.elems)
        ctx, _, _ = items.context(self.fact, sizes, mems=c.mems,
                                  imported_globals=c.imported_globals,
                                  datas=c.declared_data_count or 0,
                                  has_data_count=c.data_count > 0)  # fmt: skip
        return ctx

    def next_entry(self, p: Progress, pos: int) -> Progress:
        """The entry at ``p`` is done and ends at ``pos``."""
        if p.left > 1:
            return replace(p, stage=Stage.ENTRY, pos=pos, left=p.left - 1, index=p.index + 1,
                           part=0, total=0, extra=0)  # fmt: skip
        if pos != p.end:
            raise self.fail("section size mismatch", pos, SECTION_NAMES[p.section])
        return Progress(Stage.SECTION, pos=pos, rank=p.rank)

    # --- entries --------------------------------------------------------------------------

    def type_entry(self, p: Progress, c: Counts) -> Result:
        ftype, pos = self.item(p.pos, p.end, "type", c, lambda d, r: d.func_type(r))
        self.put("types", str(c.types), _fits(encode_functype(ftype), "a type", p.pos, "type"))
        return self.next_entry(p, pos), replace(c, types=c.types + 1), f"type {c.types}"

    def import_entry(self, p: Progress, c: Counts) -> Result:
        imp, pos = self.item(p.pos, p.end, "import", c, lambda d, r: d.import_entry(r))
        where = f"import {imp.module!r} {imp.name!r}"
        _check_imports(Module(imports=(imp,)))
        self.put("imports", str(c.imports), _fits(items.encode_import(imp), where, p.pos, "import"))
        desc = imp.desc
        if imp.kind == ExternKind.FUNC:
            assert isinstance(desc, int)
            if not 0 <= desc < c.types:
                raise InvalidModule(f"unknown type {desc}: {where}")
            self.define_func(c.funcs, desc)
            self.put("funcs", str(c.funcs), b"\x01" + imp.name.encode())
            c = replace(c, funcs=c.funcs + 1, imported_funcs=c.imported_funcs + 1)
        elif imp.kind == ExternKind.TABLE:
            c = self.add_table(c, desc)
        elif imp.kind == ExternKind.MEMORY:
            c = self.add_memory(c, desc)
        else:
            self.put("globals", str(c.globals), items.encode_global(desc, None, c.imports))  # type: ignore[arg-type]
            c = replace(c, globals=c.globals + 1, imported_globals=c.imported_globals + 1)
        return self.next_entry(p, pos), replace(c, imports=c.imports + 1), where

    def define_func(self, f: int, type_index: int) -> None:
        ftype = self.fact(("y", type_index))
        value = Writer().zarith_n(type_index).raw(ftype).getvalue()
        self.store.set((*self.load, "func_types", str(f)), value)

    def add_table(self, c: Counts, table: Any) -> Counts:
        maximum = b"" if table.limits.max is None else items.u64(table.limits.max)
        self.put("tables", str(c.tables), bytes((table.elem,)) + maximum)
        self.put("table_mins", str(c.tables), items.u64(table.limits.min))
        return replace(c, tables=c.tables + 1)

    def add_memory(self, c: Counts, memory: Any) -> Counts:
        if c.mems >= 1:
            raise InvalidModule(f"multiple memories: the module has {c.mems + 1}")
        limits = memory.limits
        self.put("memory_max", b"" if limits.max is None else items.u64(limits.max))
        self.put("memory_min", items.u64(limits.min))
        return replace(c, mems=c.mems + 1)

    def function_entry(self, p: Progress, c: Counts) -> Result:
        type_index, pos = self.item(p.pos, p.end, "function", c, lambda d, r: r.u32())
        if not 0 <= type_index < c.types:
            raise InvalidModule(f"unknown type {type_index}: function {c.funcs}")
        self.define_func(c.funcs, type_index)
        return self.next_entry(p, pos), replace(c, funcs=c.funcs + 1), f"function {c.funcs}"

    def table_entry(self, p: Progress, c: Counts) -> Result:
        table, pos = self.item(p.pos, p.end, "table", c, lambda d, r: d.table_type(r))
        _check_table_type(table, "table")
        return self.next_entry(p, pos), self.add_table(c, table), f"table {c.tables}"

    def memory_entry(self, p: Progress, c: Counts) -> Result:
        memory, pos = self.item(p.pos, p.end, "memory", c, lambda d, r: MemType(d.limits(r)))
        _check_memory_type(memory, "memory")
        return self.next_entry(p, pos), self.add_memory(c, memory), "memory"

    def global_entry(self, p: Progress, c: Counts) -> Result:
        glob, pos = self.item(p.pos, p.end, "global", c, lambda d, r: d.global_entry(r))
        where = f"global {c.globals}"
        _check_const(self.context(c), glob.init, int(glob.type.valtype), where)
        value = items.encode_global(glob.type, glob.init)
        self.put("globals", str(c.globals), _fits(value, where, p.pos, "global"))
        self.declare((glob.init,))
        return self.next_entry(p, pos), replace(c, globals=c.globals + 1), where

    def export_entry(self, p: Progress, c: Counts) -> Result:
        export, pos = self.item(p.pos, p.end, "export", c, lambda d, r: d.export_entry(r))
        _check_exports(self.context(c), Module(exports=(export,)))
        path = (*self.module, "exports", items.export_key(export.name))
        if self.store.has(path):
            raise InvalidModule(f"duplicate export name {export.name!r}")
        value = items.encode_export(export.kind, export.index, export.name)
        self.store.set(path, _fits(value, "an export", p.pos, "export"))
        if export.kind == ExternKind.FUNC:
            self.store.set((*self.load, "declared", str(export.index)), b"")
        if export.kind == ExternKind.MEMORY and export.index == 0:  # Init's entry check
            self.store.set((*self.module, "memory_exported"), b"")
        return self.next_entry(p, pos), c, f"export {export.name[:40]!r}"

    def elem_entry(self, p: Progress, c: Counts) -> Result:
        """The head of an element segment; its items follow in ELEM_ITEMS steps."""

        def parse(d: Any, r: Reader) -> tuple:
            head, flags = d.elem_head(r)
            return head, flags, r.pos, r.u32()

        (head, flags, count_at, count), pos = self.item(p.pos, p.end, "element", c, parse)
        if count > p.end - pos:
            raise self.fail("length out of bounds", p.pos + count_at, "element")
        where = f"elem segment {c.elems}"
        _check_elem(self.context(c), head, where)
        value = (
            bytes((head.type, head.mode)) + Writer().zarith_n(head.table).zarith_n(count).getvalue()
        )
        self.put(
            "elems",
            str(c.elems),
            _fits(value + items.encode_expr(head.offset), where, p.pos, "element"),
        )
        c = replace(c, elems=c.elems + 1)
        if count == 0:
            return self.next_entry(p, pos), c, where
        more = replace(p, stage=Stage.ELEM_ITEMS, pos=pos, part=0, total=count,
                       extra=flags | head.type << 8)  # fmt: skip
        return more, c, where

    def elem_items(self, p: Progress, c: Counts) -> Result:
        flags, elem_type = p.extra & 0xFF, p.extra >> 8
        e = c.elems - 1
        want = min(ELEM_BATCH, p.total - p.part)
        room = p.end - p.pos
        batch: list = []
        ends = 0
        for attempt in (*_ATTEMPTS, MAX_ITEM_BYTES):
            size = min(attempt, room)
            decoder, r = self.decoder(self.read(p.pos, size), p.pos, "element", c)
            try:
                while len(batch) < want:
                    batch.append(decoder.elem_item(r, flags))
                    ends = r.pos
            except DecodeError as error:  # the items that fit in this read make the batch
                if size >= room or error.reason not in _END_REASONS:
                    raise
                if not batch and size >= MAX_ITEM_BYTES:
                    message = "an element item too large for the PVM"
                    raise LoaderLimit(message, p.pos, "element") from None
                if not batch:
                    continue
            break
        where = f"elem segment {e}"
        ctx = self.context(c)
        for expr in batch:
            _check_const(ctx, expr, elem_type, where)
        self.declare(batch)
        encoded = [_fits(items.encode_expr(x), where, p.pos, "element") for x in batch]
        _radix_append(self.store, (*self.module, "elems", str(e), "items"), p.part, encoded)
        p2 = replace(p, pos=p.pos + ends, part=p.part + len(batch))
        what = f"{where} items {p.part}..{p2.part - 1}"
        if p2.part < p.total:
            return p2, c, what
        return self.next_entry(p2, p2.pos), c, what

    def data_entry(self, p: Progress, c: Counts) -> Result:
        """The head of a data segment; its bytes follow in DATA_BYTES steps."""

        def parse(d: Any, r: Reader) -> tuple:
            head = d.data_head(r)
            return head, r.pos, r.u32()

        (head, size_at, size), pos = self.item(p.pos, p.end, "data", c, parse)
        if size > p.end - pos:
            raise self.fail("length out of bounds", p.pos + size_at, "data")
        where = f"data segment {c.datas}"
        if head.mode == SegmentMode.ACTIVE:
            if not 0 <= head.memory < c.mems:
                raise InvalidModule(f"unknown memory {head.memory}: {where}")
            _check_const(self.context(c), head.offset, _I32, f"offset of {where}")
        value = bytes((head.mode,)) + Writer().zarith_n(head.memory).getvalue()
        self.put(
            "datas",
            str(c.datas),
            _fits(value + items.encode_expr(head.offset), where, p.pos, "data"),
        )
        header = items.u64(size) + DATA_CHUNK.to_bytes(2, "big")
        self.put("datas", str(c.datas), "bytes", HEADER, header)
        c = replace(c, datas=c.datas + 1)
        if size == 0:
            return self.next_entry(p, pos), c, where
        return replace(p, stage=Stage.DATA_BYTES, pos=pos, part=0, total=size), c, where

    def data_bytes(self, p: Progress, c: Counts) -> Result:
        d = c.datas - 1
        size = min(DATA_CHUNK, p.total - p.part)
        chunk = self.read(p.pos, size)
        if len(chunk) != size:
            raise self.fail("unexpected end", p.pos + len(chunk), "data")
        self.put("datas", str(d), "bytes", CHUNKS, str(p.part // DATA_CHUNK), chunk)
        p2 = replace(p, pos=p.pos + size, part=p.part + size)
        what = f"data segment {d} bytes {p.part}..{p2.part - 1}"
        if p2.part < p.total:
            return p2, c, what
        return self.next_entry(p2, p2.pos), c, what

    def code_entry(self, p: Progress, c: Counts) -> Result:
        """A function body: gather steps fetch its references, then one step validates
        and lowers it (see ``loader_items``) — or, for a long body, a run of instructions
        per step (``loader_body``)."""
        f, start, size = self.body_extent(p, c)
        if size > loader_body.SMALL_BODY:
            return loader_body.begin(self, p, c, f, start, start + size)
        decoder, r = self.decoder(self.read(start, size), start, "code", c)
        local_types, body = decoder.code_entry(r)
        sizes = items.Sizes(c.funcs, c.types, c.globals, c.tables, c.elems)
        refs = items.body_references(f, body, sizes)
        gathered = len(refs) - min(len(refs), items.DIRECT_FACTS)
        batches = -(-gathered // items.GATHER_FACTS)
        if p.part < batches:
            return self.gather(p, c, f, refs, gathered)
        known: dict[items.Ref, bytes] = {}
        for j in range(batches):
            raw = self.store.get((*self.load, "facts", str(j)))
            facts = items.decode_facts(raw or b"")
            batch = refs[j * items.GATHER_FACTS : min((j + 1) * items.GATHER_FACTS, gathered)]
            known.update(zip(batch, facts, strict=True))
        for ref in refs[gathered:]:
            known[ref] = self.fact(ref)

        def fact(ref: items.Ref) -> bytes:
            found = known.get(ref)
            if found is None:  # the references and the checker disagree: a loader bug
                raise RuntimeError(f"the body of function {f} reads {ref}, not gathered")
            return found

        ctx, types, func_types = items.context(
            fact, sizes, mems=c.mems, imported_globals=c.imported_globals,
            datas=c.declared_data_count or 0, has_data_count=c.data_count > 0,
        )  # fmt: skip
        type_index, own = items.func_fact_type(known[("f", f)])
        types.cache[type_index] = own  # lowering reads the function's own type by index
        func = Func(type_index, local_types, body)
        BodyChecker(ctx).check(f, func)
        lowered = lower_function(items.ModuleView(types), func_types, func)  # type: ignore[arg-type]
        entry = c.code_length
        code, extras = encode_code(entry, lowered)
        for value in code:
            _fits(value, "an instruction", p.pos, "code")
        _radix_append(self.store, (*self.module, "code"), entry, code, extras)
        encoded = Writer().u8(0).zarith_n(entry).raw(encode_functype(own))
        encoded.raw(encode_locals(local_types))
        self.put("funcs", str(f), _fits(encoded.getvalue(), "a function's locals", p.pos, "code"))
        if batches:
            self.store.delete((*self.load, "facts"))
        c = replace(c, codes=c.codes + 1, code_length=entry + len(code))
        return self.next_entry(p, start + size), c, f"code {p.index} (function {f})"

    def body_extent(self, p: Progress, c: Counts) -> tuple[int, int, int]:
        """The function whose body is the entry at ``p``, where the body starts, its size."""
        decoder, r = self.decoder(self.read(p.pos, min(5, p.end - p.pos)), p.pos, "code", c)
        size = r.u32()
        start = p.pos + r.pos
        if size > p.end - start:
            raise self.fail("length out of bounds", start, "code")
        return c.imported_funcs + p.index, start, size

    def gather(self, p: Progress, c: Counts, f: int, refs: list, gathered: int) -> Result:
        j = p.part
        batch = refs[j * items.GATHER_FACTS : min((j + 1) * items.GATHER_FACTS, gathered)]
        raw = items.encode_facts([self.fact(ref) for ref in batch])
        total = p.extra + len(raw)
        if total > items.MAX_FACT_BYTES or len(raw) > MAX_VALUE_SIZE:
            # too many facts for one step to read back: the body is read in runs instead
            _, start, size = self.body_extent(p, c)
            return loader_body.begin(self, p, c, f, start, start + size)
        self.store.set((*self.load, "facts", str(j)), raw)
        first = j * items.GATHER_FACTS
        what = f"gather references {first}..{first + len(batch) - 1} of code {p.index}"
        return replace(p, part=j + 1, extra=total), c, what


ENTRIES: dict[int, Callable[[Any, Progress, Counts], Result]] = {
    1: EntryReader.type_entry,
    2: EntryReader.import_entry,
    3: EntryReader.function_entry,
    4: EntryReader.table_entry,
    5: EntryReader.memory_entry,
    6: EntryReader.global_entry,
    7: EntryReader.export_entry,
    9: EntryReader.elem_entry,
    10: EntryReader.code_entry,
    11: EntryReader.data_entry,
}
"""The step that reads an entry of each vector section, by section id."""
