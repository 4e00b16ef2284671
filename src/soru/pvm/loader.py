"""The kernel loader: a kernel decoded, validated and lowered one bounded step at a time, its
whole state in the Merkle tree, so that any step can be proved like any other tick.

:func:`load_step` advances the loader by one *step*; it reads the kernel through
``kernel_reader(offset, size)`` (at most 2048 bytes a call: in the PVM, ``Durable.read`` of
``/kernel/boot.wasm``; fewer bytes, or none, past the end of the kernel) and reads and
writes the tree held by a :class:`~soru.pvm.lazy.Cell`. A step handles one *item*::

    header         the magic number and version (8 bytes)
    section        a section's id and size, and the count of a vector section; a custom
                   section's name (its contents are skipped, not read); the start function;
                   the data count; at the end of the kernel, the module-level checks
    entry          one entry of a vector section: a type, an import, a function's type
                   index, a table, a memory, a global, an export, the head of an element
                   segment or of a data segment, a function body (code entry)
    element items  up to ELEM_BATCH items of the element segment being read
    data bytes     DATA_CHUNK bytes of the data segment being read
    gather         GATHER_FACTS references of the next function body, when it names
                   more than DIRECT_FACTS functions, types, globals… (``loader_items``)

A step reads its item (at most :data:`MAX_ITEM_BYTES` of kernel, read from 32 bytes upward
only as far as the item needs), the two records below, and a bounded number of other tree
paths; it writes a bounded number of paths. So its proof is bounded for any kernel: at most
about 25,000 bytes measured (the tests report the distribution). A function body over
MAX_ITEM_BYTES — or one naming more than the gather steps hold — is not one item: it is
read in *runs* of instructions, a run a step, checked in a first pass and lowered in a
second (``loader_body``; stage ``BODY``).

A failing step raises the error ``decode_module``/``validate_module`` would raise
(:class:`DecodeError`, :class:`FloatsForbidden`, :class:`InvalidModule`), with the same
message, or :class:`LoaderLimit` for a well-formed kernel beyond the loader's bounds; the
tree is then to be discarded. Items are checked as they arrive, so when a kernel is both
malformed and invalid the loader reports the fault that comes first in the bytes (within
one function body, a malformed instruction comes before any type error, as when a module
is decoded whole and then validated). Limits (PVM limits, all :class:`LoaderLimit`, which
only contrived kernels meet): an entry other than a body of more than MAX_ITEM_BYTES; one
instruction of more than 8 KiB; a tree value over 4096 bytes (a type, an import, an
export, a function's run-length-encoded locals, a page of a body's stacks); a run reaching
more than ``loader_stack.MAX_PAGES`` pages of one stack; more than 2**24 lowered
instructions or items of one element segment.

State, under ``root`` (``wasm`` in the PVM; integers u64 big-endian unless said)::

    load/progress         stage, position, the section and entry being read (Progress)
    load/counts           lengths of the index spaces so far (Counts)
    load/func_types/<f>   function f: type index ‖ its type          (scratch, until done)
    load/declared/<f>     present if function f is declared for ref.func   (scratch)
    load/facts/<j>        gathered facts of the body being read          (scratch)
    load/body/...         a long body's runs: ``loader_body``             (scratch)
    module/types/<t>      function types (layout.encode_functype)
    module/imports/<i>    imports (``loader_items``), for Link
    module/funcs/<f>      functions by index: 1 ‖ host name for an import; for a defined
                          function 0 ‖ entry ‖ type ‖ locals (layout.encode_func)
    module/code           the lowered code: a radix vector (below) whose element pc is
                          ``zarith base ‖ op ‖ immediates`` (pc 0 and 1: halt and resume;
                          a br_table's entries in pages below it: layout.encode_code)
    module/tables/<t>     elem type ‖ maximum (layout); module/table_mins/<t> its minimum
    module/memory_max     maximum in pages (empty: none), as layout; module/memory_min
    module/globals/<g>    type and import or init expression (``loader_items``)
    module/exports/<key>  kind ‖ index ‖ name, keyed by ``loader_items.export_key``
    module/start          the start function
    module/elems/<e>      head (``loader_items``); items: a radix vector of expressions
    module/datas/<d>      head; bytes: a chunked value (``soru.merkle.chunked``, 4096)

Each of ``types``, ``imports``, ``funcs``, ``globals``, ``elems``, ``datas``, ``tables``,
``code`` holds its length once loading is done. A *radix vector* keeps element i at
``path/<d3>/<d2>/<d1>/<d0>``, the base-64 digits of i (:func:`radix_path`): appending n
consecutive elements rewrites one partial directory per level and grafts fresh ones
whole, so lowering a function writes a bounded number of paths however long it is — in a
flat vector every element would be a separate path (~450 bytes of proof each).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, replace

from soru.encoding.writer import Writer
from soru.merkle import Tree
from soru.pvm import loader_body
from soru.pvm import loader_items as items
from soru.pvm.layout import encode_instr
from soru.pvm.lazy import Cell
from soru.pvm.loader_entries import ENTRIES, EntryReader, Result
from soru.pvm.loader_state import (
    DATA_CHUNK,
    ELEM_BATCH,
    MAX_ITEM_BYTES,
    Counts,
    KernelReader,
    LoaderLimit,
    P,
    Progress,
    Stage,
    Status,
    _DictStore,
    _radix_append,
    _TreeStore,
    append_radix,
    code_path,
    radix_path,
)
from soru.wasm.binary import SECTION_NAMES
from soru.wasm.errors import DecodeError, InvalidModule
from soru.wasm.exec.machine import HALT, HALT_OP, RESUME, RESUME_OP
from soru.wasm.validate import _check_start

__all__ = [
    "DATA_CHUNK",
    "ELEM_BATCH",
    "MAX_ITEM_BYTES",
    "LoaderLimit",
    "Outcome",
    "Status",
    "append_radix",
    "check_kernel",
    "code_path",
    "count_steps",
    "load_all",
    "load_step",
    "radix_path",
]

_SECTION_RANK = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9, 12: 10, 10: 11, 11: 12}
"""Position of each non-custom section in the required order (data count precedes code)."""


class _Loader(EntryReader):
    """One step: the header, a section's head, an entry, or the end of the kernel."""

    def step(self) -> Status:
        p = self.store.get_record((*self.load, "progress"), Progress) or Progress()
        if p.stage is Stage.DONE:
            return Status(True, "loaded")
        c = self.store.get_record((*self.load, "counts"), Counts) or Counts()
        if p.stage is Stage.HEADER:
            p, c, what = self.header(p, c)
        elif p.stage is Stage.SECTION:
            p, c, what = self.section(p, c)
        elif p.stage is Stage.ELEM_ITEMS:
            p, c, what = self.elem_items(p, c)
        elif p.stage is Stage.DATA_BYTES:
            p, c, what = self.data_bytes(p, c)
        elif p.stage is Stage.BODY:
            p, c, what = loader_body.run(self, p, c)
        else:
            p, c, what = ENTRIES[p.section](self, p, c)
        self.store.set_record((*self.load, "progress"), p)
        self.store.set_record((*self.load, "counts"), c)
        return Status(p.stage is Stage.DONE, what)

    def header(self, p: Progress, c: Counts) -> Result:
        decoder, r = self.decoder(self.read(0, 8), 0, None, c)
        decoder.header(r)
        code = [Writer().zarith_n(base).getvalue() + encode_instr(op, None)
                for op, base in ((HALT_OP, HALT), (RESUME_OP, RESUME))]  # fmt: skip
        _radix_append(self.store, (*self.module, "code"), 0, code)
        return Progress(Stage.SECTION, pos=8), replace(c, code_length=len(code)), "header"

    def section(self, p: Progress, c: Counts) -> Result:
        start = p.pos
        head = self.read(start, 6)
        if not head:
            return self.finish(p, c)
        decoder, r = self.decoder(head, start, None, c)
        section_id = r.u8()
        name = SECTION_NAMES.get(section_id)
        if name is None:
            raise self.fail("malformed section id", start, None)
        decoder.section = name
        size = r.u32()
        body, end = start + r.pos, start + r.pos + size
        if size and not self.read(end - 1, 1):
            raise self.fail("length out of bounds", body, name)
        if section_id == 0:
            what = self.custom(body, end, c)
            return replace(p, pos=end), c, what
        rank = _SECTION_RANK[section_id]
        if rank <= p.rank:
            raise self.fail("unexpected content after last section", start, name)
        p = replace(p, rank=rank)
        decoder, r = self.decoder(self.read(body, min(size, 6)), body, name, c)
        value = r.u32()
        after = body + r.pos
        if section_id in (8, 12):
            if after != end:
                raise self.fail("section size mismatch", after, name)
            if section_id == 12:
                return replace(p, pos=end), replace(c, data_count=value + 1), f"section {name}"
            _check_start(self.context(c), value)
            self.put("start", items.u64(value))
            return replace(p, pos=end), c, f"section {name}"
        if value > end - after:
            raise self.fail("length out of bounds", body, name)
        if section_id == 10 and value != c.funcs - c.imported_funcs:
            raise self.fail("function and code section have inconsistent lengths", body, name)
        if value == 0:
            if after != end:
                raise self.fail("section size mismatch", after, name)
            return replace(p, pos=end), c, f"section {name} (empty)"
        entries = replace(p, stage=Stage.ENTRY, pos=after, section=section_id, end=end,
                          left=value, index=0, part=0, total=0, extra=0)  # fmt: skip
        return entries, c, f"section {name} ({value} entries)"

    def custom(self, body: int, end: int, c: Counts) -> str:
        """A custom section: its name is checked, its contents skipped."""
        name, _ = self.item(body, end, "custom", c, lambda d, r: d.name(r))
        return f"section custom {name[:40]!r}"

    def finish(self, p: Progress, c: Counts) -> Result:
        """The end of the kernel: the checks that span sections, then the vectors' lengths."""
        if c.funcs - c.imported_funcs != c.codes:
            raise self.fail("function and code section have inconsistent lengths", p.pos, "code")
        declared = c.declared_data_count
        if declared is not None and declared != c.datas:
            raise self.fail("data count and data section have inconsistent lengths", p.pos, "data")
        for name, length in (("types", c.types), ("imports", c.imports), ("funcs", c.funcs),
                             ("tables", c.tables), ("globals", c.globals),
                             ("elems", c.elems), ("datas", c.datas),
                             ("code", c.code_length)):  # fmt: skip
            self.put(name, items.u64(length))
        for scratch in ("func_types", "declared", "facts"):
            self.store.delete((*self.load, scratch))
        return replace(p, stage=Stage.DONE), c, "end"


# --- entry points -----------------------------------------------------------------------------


def load_step(cell: Cell, kernel_reader: KernelReader, *, root: P = ("wasm",)) -> Status:
    """Advance the loader whose state is under ``root`` in ``cell`` by one step (a fresh
    loader starts at the header); raises the typed error of a kernel that does not load."""
    return _Loader(_TreeStore(cell), kernel_reader, root).step()


def _bytes_reader(kernel: bytes) -> KernelReader:
    return lambda offset, size: kernel[offset : offset + size]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How loading a kernel ends: after ``steps`` steps, with ``error`` (None: loaded)."""

    steps: int
    error: DecodeError | InvalidModule | None


_OUTCOMES: OrderedDict[bytes, Outcome] = OrderedDict()


def check_kernel(kernel: bytes) -> Outcome:
    """Run every step of loading ``kernel`` without a Merkle tree (the same code on a plain
    dictionary): the number of steps, and the error that ends the last one, if any. A pure
    function of the bytes, cached by their hash (a kernel that reboots is checked once)."""
    kernel = bytes(kernel)
    key = hashlib.blake2b(kernel, digest_size=32).digest()
    found = _OUTCOMES.get(key)
    if found is not None:
        _OUTCOMES.move_to_end(key)
        return found
    loader = _Loader(_DictStore(), _bytes_reader(kernel), ("wasm",))
    steps = 0
    while True:
        steps += 1
        try:
            if loader.step().done:
                outcome = Outcome(steps, None)
                break
        except (DecodeError, InvalidModule) as error:
            outcome = Outcome(steps, error)
            break
    _OUTCOMES[key] = outcome
    if len(_OUTCOMES) > 8:
        _OUTCOMES.popitem(last=False)
    return outcome


def count_steps(kernel: bytes) -> int:
    """The number of steps loading ``kernel`` takes — up to and including the one that
    fails, for a kernel that does not load."""
    return check_kernel(kernel).steps


def load_all(kernel: bytes, *, root: P = ("wasm",), tree: Tree | None = None) -> Tree:
    """Every step of loading ``kernel`` on ``tree`` (default: empty); the tree after the
    last. Raises the typed error of a kernel that does not load."""
    cell = Cell(Tree.empty() if tree is None else tree)
    reader = _bytes_reader(bytes(kernel))
    while not load_step(cell, reader, root=root).done:
        pass
    return cell.tree
