"""Handler factories of memory and table instructions, bulk operations included.

Loads and stores check bounds against the current memory length and trap with the spec's
"out of bounds memory access". Bulk operations (``memory.copy/fill/init``,
``table.copy/fill/init``) check the whole range first — as the spec requires, nothing is
written when any part is out of bounds — and then move at most one chunk per tick
(``ticks.MEMORY_CHUNK_BYTES``, ``ticks.TABLE_CHUNK_ELEMENTS``): the handler rewrites its
three operands on the stack to the remaining work and returns its own program counter, so
the machine state between two chunks is ordinary machine state.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from soru.wasm.errors import Trap
from soru.wasm.exec import ticks
from soru.wasm.exec.context import Ctx
from soru.wasm.runtime import MAX_PAGES, PAGE_SIZE

Handler = Callable[[], int]
OOB_MEMORY = "out of bounds memory access"
OOB_TABLE = "out of bounds table access"


_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}


def _load(width: int, signed: bool, bits: int) -> Callable[[Ctx, int, tuple], Handler]:
    """A load of ``width`` bytes into a ``bits``-wide value, sign-extended if ``signed``.

    On a real bytearray the handler reads with a precompiled :mod:`struct` format (the fast
    path); on any other memory object — the PVM's lazily loaded memory — it uses slicing,
    the container protocol of ``context``. Both give the same value and the same trap."""
    fmt = struct.Struct("<" + (_FORMATS[width].lower() if signed else _FORMATS[width]))
    mask = (1 << bits) - 1

    def factory(ctx: Ctx, pc: int, memarg: tuple) -> Handler:
        assert ctx.instance is not None
        stack, data, off, nxt = ctx.stack, ctx.instance.mems[0].data, memarg[1], pc + 1
        if type(data) is bytearray:
            unpack = fmt.unpack_from

            def load_fast() -> int:
                try:
                    (v,) = unpack(data, stack[-1] + off)
                except struct.error:
                    raise Trap(OOB_MEMORY) from None
                stack[-1] = v & mask
                return nxt

            return load_fast
        sign, from_bytes = 1 << (width * 8 - 1), int.from_bytes

        def load() -> int:
            a = stack[-1] + off
            if a + width > len(data):
                raise Trap(OOB_MEMORY)
            v = from_bytes(data[a : a + width], "little")
            stack[-1] = (((v ^ sign) - sign) if signed else v) & mask
            return nxt

        return load

    return factory


def _store(width: int) -> Callable[[Ctx, int, tuple], Handler]:
    """A store of the low ``width`` bytes of a value (struct fast path on a bytearray)."""
    fmt, mask = struct.Struct("<" + _FORMATS[width]), (1 << (width * 8)) - 1

    def factory(ctx: Ctx, pc: int, memarg: tuple) -> Handler:
        assert ctx.instance is not None
        stack, data, off, nxt = ctx.stack, ctx.instance.mems[0].data, memarg[1], pc + 1
        pop = stack.pop
        if type(data) is bytearray:
            pack = fmt.pack_into

            def store_fast() -> int:
                v = pop()
                try:
                    pack(data, pop() + off, v & mask)
                except struct.error:
                    raise Trap(OOB_MEMORY) from None
                return nxt

            return store_fast

        def store() -> int:
            v = pop()
            a = pop() + off
            if a + width > len(data):
                raise Trap(OOB_MEMORY)
            data[a : a + width] = (v & mask).to_bytes(width, "little")
            return nxt

        return store

    return factory


def _memory_size(ctx: Ctx, pc: int, imm: object) -> Handler:
    assert ctx.instance is not None
    data, push, nxt = ctx.instance.mems[0].data, ctx.stack.append, pc + 1

    def memory_size() -> int:
        push(len(data) // PAGE_SIZE)
        return nxt

    return memory_size


def _memory_grow(ctx: Ctx, pc: int, imm: object) -> Handler:
    assert ctx.instance is not None
    mem = ctx.instance.mems[0]
    data, stack, nxt = mem.data, ctx.stack, pc + 1
    limit = min(MAX_PAGES, ctx.machine.max_memory_pages)
    if mem.max is not None:
        limit = min(limit, mem.max)

    def memory_grow() -> int:
        n = stack[-1]
        old = len(data) // PAGE_SIZE
        if old + n > limit:
            stack[-1] = 0xFFFFFFFF
        else:
            data.extend(bytes(n * PAGE_SIZE))
            stack[-1] = old
        return nxt

    return memory_grow


def _chunked(
    stack: list, pc: int, chunk: int, check: Callable, move: Callable, overlap: bool = True
) -> Handler:
    """A bulk handler over operands (d, s, n) on the stack.

    ``check(d, s, n)`` traps when any part of the remaining range is out of bounds (before
    anything moves); ``move(d, s, c)`` moves ``c`` items. When source and destination may
    overlap (``overlap``) and ``d > s``, the highest chunk moves first so that the source
    stays intact — the chunked copy then equals one ``memmove``.
    """
    nxt = pc + 1

    def bulk() -> int:
        d, s, n = stack[-3], stack[-2], stack[-1]
        check(d, s, n)
        if n <= chunk:
            move(d, s, n)
            del stack[-3:]
            return nxt
        if overlap and d > s:
            move(d + n - chunk, s + n - chunk, chunk)
        else:
            move(d, s, chunk)
            stack[-3] = d + chunk
            if overlap:
                stack[-2] = s + chunk
        stack[-1] = n - chunk
        return pc

    return bulk


def _memory_copy(ctx: Ctx, pc: int, imm: object) -> Handler:
    assert ctx.instance is not None
    data = ctx.instance.mems[0].data

    def check(d: int, s: int, n: int) -> None:
        if s + n > len(data) or d + n > len(data):
            raise Trap(OOB_MEMORY)

    def move(d: int, s: int, n: int) -> None:
        data[d : d + n] = data[s : s + n]

    return _chunked(ctx.stack, pc, ticks.MEMORY_CHUNK_BYTES, check, move)


def _memory_fill(ctx: Ctx, pc: int, imm: object) -> Handler:
    assert ctx.instance is not None
    data = ctx.instance.mems[0].data

    def check(d: int, value: int, n: int) -> None:
        if d + n > len(data):
            raise Trap(OOB_MEMORY)

    def move(d: int, value: int, n: int) -> None:
        data[d : d + n] = bytes((value & 0xFF,)) * n

    return _chunked(ctx.stack, pc, ticks.MEMORY_CHUNK_BYTES, check, move, overlap=False)


def _memory_init(ctx: Ctx, pc: int, imm: tuple[int, int]) -> Handler:
    assert ctx.instance is not None
    data, seg = ctx.instance.mems[0].data, ctx.instance.datas[imm[0]]

    def check(d: int, s: int, n: int) -> None:
        if s + n > len(seg.data) or d + n > len(data):
            raise Trap(OOB_MEMORY)

    def move(d: int, s: int, n: int) -> None:
        data[d : d + n] = seg.data[s : s + n]

    return _chunked(ctx.stack, pc, ticks.MEMORY_CHUNK_BYTES, check, move)


def _data_drop(ctx: Ctx, pc: int, index: int) -> Handler:
    assert ctx.instance is not None
    seg, nxt = ctx.instance.datas[index], pc + 1

    def data_drop() -> int:
        seg.data = b""
        return nxt

    return data_drop


def _table_get(ctx: Ctx, pc: int, index: int) -> Handler:
    assert ctx.instance is not None
    elements, stack, nxt = ctx.instance.tables[index].elements, ctx.stack, pc + 1

    def table_get() -> int:
        i = stack[-1]
        if i >= len(elements):
            raise Trap(OOB_TABLE)
        stack[-1] = elements[i]
        return nxt

    return table_get


def _table_set(ctx: Ctx, pc: int, index: int) -> Handler:
    assert ctx.instance is not None
    elements, pop, nxt = ctx.instance.tables[index].elements, ctx.stack.pop, pc + 1

    def table_set() -> int:
        ref = pop()
        i = pop()
        if i >= len(elements):
            raise Trap(OOB_TABLE)
        elements[i] = ref
        return nxt

    return table_set


def _table_size(ctx: Ctx, pc: int, index: int) -> Handler:
    assert ctx.instance is not None
    elements, push, nxt = ctx.instance.tables[index].elements, ctx.stack.append, pc + 1

    def table_size() -> int:
        push(len(elements))
        return nxt

    return table_size


def _table_grow(ctx: Ctx, pc: int, index: int) -> Handler:
    assert ctx.instance is not None
    table = ctx.instance.tables[index]
    elements, stack, nxt = table.elements, ctx.stack, pc + 1
    limit = min(ticks.TABLE_GROW_MAX_ELEMENTS, 0xFFFFFFFF)
    if table.max is not None:
        limit = min(limit, table.max)

    def table_grow() -> int:
        n = stack.pop()
        old = len(elements)
        if old + n > limit:
            stack[-1] = 0xFFFFFFFF
        else:
            elements.extend([stack[-1]] * n)
            stack[-1] = old
        return nxt

    return table_grow


def _table_fill(ctx: Ctx, pc: int, index: int) -> Handler:
    assert ctx.instance is not None
    elements = ctx.instance.tables[index].elements

    def check(i: int, ref: object, n: int) -> None:
        if i + n > len(elements):
            raise Trap(OOB_TABLE)

    def move(i: int, ref: object, n: int) -> None:
        elements[i : i + n] = [ref] * n

    return _chunked(ctx.stack, pc, ticks.TABLE_CHUNK_ELEMENTS, check, move, overlap=False)


def _table_copy(ctx: Ctx, pc: int, imm: tuple[int, int]) -> Handler:
    assert ctx.instance is not None
    dst = ctx.instance.tables[imm[0]].elements
    src = ctx.instance.tables[imm[1]].elements

    def check(d: int, s: int, n: int) -> None:
        if s + n > len(src) or d + n > len(dst):
            raise Trap(OOB_TABLE)

    def move(d: int, s: int, n: int) -> None:
        dst[d : d + n] = src[s : s + n]

    return _chunked(ctx.stack, pc, ticks.TABLE_CHUNK_ELEMENTS, check, move)


def _table_init(ctx: Ctx, pc: int, imm: tuple[int, int]) -> Handler:
    assert ctx.instance is not None
    seg, dst = ctx.instance.elems[imm[0]], ctx.instance.tables[imm[1]].elements

    def check(d: int, s: int, n: int) -> None:
        if s + n > len(seg.refs) or d + n > len(dst):
            raise Trap(OOB_TABLE)

    def move(d: int, s: int, n: int) -> None:
        dst[d : d + n] = seg.refs[s : s + n]

    return _chunked(ctx.stack, pc, ticks.TABLE_CHUNK_ELEMENTS, check, move)


def _elem_drop(ctx: Ctx, pc: int, index: int) -> Handler:
    assert ctx.instance is not None
    seg, nxt = ctx.instance.elems[index], pc + 1

    def elem_drop() -> int:
        seg.refs = []
        return nxt

    return elem_drop


def memory_factories() -> dict[int, Callable]:
    """Factories of every memory and table opcode."""
    table: dict[int, Callable] = {
        0x28: _load(4, False, 32), 0x29: _load(8, False, 64),
        0x2A: _load(4, False, 32), 0x2B: _load(8, False, 64),
        0x2C: _load(1, True, 32), 0x2D: _load(1, False, 32),
        0x2E: _load(2, True, 32), 0x2F: _load(2, False, 32),
        0x30: _load(1, True, 64), 0x31: _load(1, False, 64),
        0x32: _load(2, True, 64), 0x33: _load(2, False, 64),
        0x34: _load(4, True, 64), 0x35: _load(4, False, 64),
        0x36: _store(4), 0x37: _store(8), 0x38: _store(4), 0x39: _store(8),
        0x3A: _store(1), 0x3B: _store(2), 0x3C: _store(1), 0x3D: _store(2), 0x3E: _store(4),
        0x3F: _memory_size, 0x40: _memory_grow,
        0xFC08: _memory_init, 0xFC09: _data_drop, 0xFC0A: _memory_copy, 0xFC0B: _memory_fill,
        0x25: _table_get, 0x26: _table_set,
        0xFC0C: _table_init, 0xFC0D: _elem_drop, 0xFC0E: _table_copy,
        0xFC0F: _table_grow, 0xFC10: _table_size, 0xFC11: _table_fill,
    }  # fmt: skip
    return table
