"""The PVM state read lazily from its Merkle tree: what one tick touches, and nothing more.

``LazyPvmState`` (``soru.pvm.lazy_state``) stands in for the PVM state over a tree laid
out by ``soru.pvm.layout``: the *same* tick state machine (``soru.pvm.vm``), the same WebAssembly
``Machine.run`` and the same instruction handlers run on it. Every container they use is a
view onto tree paths — the value stack and frames are :class:`LazyVector`, memory is
:class:`LazyMemory` (1024-byte chunks), globals, tables and segments likewise, and the
instruction at the program counter is decoded from the tree and bound to its handler only
when it runs. Writes go straight into the tree held by a :class:`Cell`.

Run on a *recording* tree (``soru.merkle.record``) a tick reads exactly the nodes its proof
must contain; run on the partial tree rebuilt from a proof, touching anything else raises
``NotInProof``. That is the "one step function, two backends" of ARCHITECTURE.md: nothing
here knows the rules, it only knows where the state lives.

Every kind of tick runs lazily: Snapshot grafts the kernel, each Decode tick is one bounded
step of the incremental loader (``soru.pvm.loader``), each Link tick checks one import, and
the Init ticks that allocate and enter the module are in ``soru.pvm.lazy_init``.
:class:`NotLazy` guards the few operations that would read a kernel whole. The state
object itself, and one lazy tick, are in ``soru.pvm.lazy_state``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

from soru.base.errors import SoruError
from soru.encoding.reader import Reader
from soru.merkle import Tree
from soru.merkle.chunked import chunked_length, read_chunked_range, write_chunked
from soru.pvm import constants, layout
from soru.pvm.host_functions import RevealRequest
from soru.wasm.exec.context import Ctx
from soru.wasm.exec.lower import BR_TABLE
from soru.wasm.exec.machine import FACTORIES, HALT, RESUME, Machine, RunStatus
from soru.wasm.runtime import FuncInst, HostFunc, WasmFunc
from soru.wasm.syntax import ValType

P = tuple[str, ...]


class NotLazy(SoruError):
    """An operation that would read a whole kernel, which no tick may do."""


class Cell:
    """The current tree of a lazily run tick (replaced on every write)."""

    __slots__ = ("tree",)

    def __init__(self, tree: Tree) -> None:
        self.tree = tree

    def get(self, path: P) -> bytes | None:
        return self.tree.get(path)

    def set(self, path: P, value: bytes) -> None:
        self.tree = self.tree.set(path, value)

    def delete(self, path: P) -> None:
        self.tree = self.tree.delete(path)

    def int(self, path: P, default: int = 0) -> int:
        raw = self.tree.get(path)
        return default if raw is None else int.from_bytes(raw, "big")


class LazyVector:
    """The list protocol over a tree vector (``path`` holds the length, ``path/<i>`` items)."""

    def __init__(self, cell: Cell, path: P, encode: Callable, decode: Callable) -> None:
        self.cell, self.path, self.encode, self.decode = cell, path, encode, decode
        self._len: int | None = None

    def __len__(self) -> int:
        if self._len is None:
            self._len = self.cell.int(self.path)
        return self._len

    def _set_len(self, n: int) -> None:
        self._len = n
        self.cell.set(self.path, layout.u64(n))

    def _index(self, i: int) -> int:
        n = len(self)
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise IndexError(i)
        return j

    def _get(self, j: int) -> Any:
        raw = self.cell.get((*self.path, str(j)))
        if raw is None:
            raise layout.LayoutError(f"missing element {j} of {'/'.join(self.path)}")
        return self.decode(raw)

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self._get(j) for j in range(*i.indices(len(self)))]
        return self._get(self._index(i))

    def __setitem__(self, i: int | slice, value: Any) -> None:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if (start, stop, step) == (0, len(self), 1) and stop != len(value):
                self.clear()  # the whole vector replaced (``stack[:] = …``)
                self.extend(value)
                return
            if step != 1 or stop - start != len(value):
                raise ValueError("only same-size or whole-vector slice assignment is supported")
            for offset, v in enumerate(value):
                self.cell.set((*self.path, str(start + offset)), self.encode(v))
            return
        self.cell.set((*self.path, str(self._index(i))), self.encode(value))

    def __delitem__(self, i: slice) -> None:
        start, stop, _ = i.indices(len(self))
        n = len(self)
        if stop <= start:
            return
        kept = [self._get(j) for j in range(stop, n)]
        for offset, v in enumerate(kept):
            self.cell.set((*self.path, str(start + offset)), self.encode(v))
        for j in range(start + len(kept), n):
            self.cell.delete((*self.path, str(j)))
        self._set_len(start + len(kept))

    def append(self, value: Any) -> None:
        n = len(self)
        self.cell.set((*self.path, str(n)), self.encode(value))
        self._set_len(n + 1)

    def extend(self, values: Any) -> None:
        for v in values:
            self.append(v)

    def pop(self) -> Any:
        n = len(self)
        if n == 0:
            raise IndexError("pop from an empty vector")
        value = self._get(n - 1)
        self.cell.delete((*self.path, str(n - 1)))
        self._set_len(n - 1)
        return value

    def clear(self) -> None:
        for j in range(len(self)):
            self.cell.delete((*self.path, str(j)))
        self._set_len(0)

    def __iter__(self) -> Iterator[Any]:
        return iter(self[:])

    def __bool__(self) -> bool:
        return len(self) > 0


def _value(raw: bytes) -> int | None:
    return layout.decode_value(raw)


def _u64(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


class LazyMemory:
    """The bytearray protocol over the sparse 1024-byte chunks of a memory in the tree."""

    def __init__(self, cell: Cell, path: P) -> None:
        self.cell, self.path = cell, path
        self._len: int | None = None

    def __len__(self) -> int:
        if self._len is None:
            self._len = self.cell.int(self.path)
        return self._len

    def _chunk(self, index: int) -> bytes:
        raw = self.cell.get((*self.path, str(index))) or b""
        return raw + bytes(layout.MEMORY_CHUNK - len(raw))

    def __getitem__(self, i: slice) -> bytes:
        start, stop, _ = i.indices(len(self))
        if stop <= start:
            return b""
        size = layout.MEMORY_CHUNK
        first, last = start // size, (stop - 1) // size
        data = b"".join(self._chunk(c) for c in range(first, last + 1))
        return data[start - first * size : stop - first * size]

    def __setitem__(self, i: slice, data: bytes) -> None:
        start, stop, _ = i.indices(len(self))
        if stop - start != len(data):
            raise ValueError("memory writes keep the size")
        size, position = layout.MEMORY_CHUNK, start
        while position < stop:
            index, offset = divmod(position, size)
            take = min(size - offset, stop - position)
            chunk = bytearray(self._chunk(index))
            chunk[offset : offset + take] = data[position - start : position - start + take]
            stored = bytes(chunk).rstrip(b"\x00")
            if stored:
                self.cell.set((*self.path, str(index)), stored)
            else:
                self.cell.delete((*self.path, str(index)))
            position += take

    def extend(self, data: bytes) -> None:
        if any(data):
            raise ValueError("memory grows with zeros only")
        self._len = len(self) + len(data)
        self.cell.set(self.path, layout.u64(self._len))


class LazyBytes:
    """A read-only chunked value (a data segment), sliced by ranges."""

    def __init__(self, cell: Cell, path: P) -> None:
        self.cell, self.path = cell, path

    def __len__(self) -> int:
        return chunked_length(self.cell.tree, self.path) or 0

    def __getitem__(self, i: slice) -> bytes:
        start, stop, _ = i.indices(len(self))
        return read_chunked_range(self.cell.tree, self.path, start, max(0, stop - start))


class _Segment:
    """A data segment (``data``) or element segment (``refs``) that a drop empties."""

    def __init__(self, cell: Cell, path: P, kind: str) -> None:
        self.cell, self.path, self.kind = cell, path, kind

    @property
    def data(self) -> LazyBytes:
        return LazyBytes(self.cell, self.path)

    @data.setter
    def data(self, value: bytes) -> None:
        self.cell.tree = write_chunked(self.cell.tree, self.path, bytes(value))

    @property
    def refs(self) -> LazyRefs:
        return LazyRefs(self.cell, self.path)

    @refs.setter
    def refs(self, value: list) -> None:
        if value:
            raise ValueError("an element segment is only ever emptied (elem.drop)")
        self.cell.delete(self.path)
        self.cell.set(self.path, layout.u64(0))


class LazyRefs:
    """An element segment's references: its length at ``path``, its items the loader's
    unevaluated constant expressions (a radix vector), evaluated when read."""

    def __init__(self, cell: Cell, path: P) -> None:
        from soru.pvm.loader_state import radix_path  # the loader builds on these cells

        self.cell, self.path, self.radix_path = cell, path, radix_path

    def __len__(self) -> int:
        return self.cell.int(self.path)

    def _ref(self, i: int) -> int | None:
        from soru.pvm.loader_items import decode_expr

        raw = self.cell.get(self.radix_path(self.path, i))
        if raw is None:
            raise layout.LayoutError(f"missing item {i} of {'/'.join(self.path)}")
        value: int | None = None
        for op, imm in decode_expr(Reader(raw)):
            if op == 0xD2:  # ref.func: an address is a function index in the PVM
                value = imm  # type: ignore[assignment]
            elif op == 0xD0:
                value = None
            else:
                raise layout.LayoutError(f"element item {i} is not a reference constant")
        return value

    def __getitem__(self, i: slice) -> list:
        start, stop, _ = i.indices(len(self))
        return [self._ref(j) for j in range(start, stop)]


class _Global:
    def __init__(self, cell: Cell, path: P) -> None:
        self.cell, self.path = cell, path

    @property
    def value(self) -> int | None:
        raw = self.cell.get(self.path)
        if raw is None:
            raise layout.LayoutError(f"missing global {'/'.join(self.path)}")
        return _value(raw)

    @value.setter
    def value(self, v: int | None) -> None:
        self.cell.set(self.path, layout.encode_value(v))


class _Container:
    """A memory or table: its contents (``data`` or ``elements``) and its maximum."""

    def __init__(self, contents: Any, maximum: int | None, elem: ValType | None = None):
        self.data = self.elements = contents
        self.max = maximum
        self.elem = elem


class _Indexed:
    """A sequence whose items are made on demand by ``make(i)`` (and then kept)."""

    def __init__(self, make: Callable[[int], Any], size: Callable[[], int] | None = None):
        self.make, self.size = make, size
        self.items: dict[int, Any] = {}

    def __len__(self) -> int:
        if self.size is None:
            raise TypeError("this sequence has no known length")
        return self.size()

    def __getitem__(self, i: int) -> Any:
        if i not in self.items:
            self.items[i] = self.make(i)
        return self.items[i]


class LazyModule:
    """The running module's static facts and instance containers, read from ``wasm/``."""

    def __init__(self, cell: Cell, hosts: dict[str, HostFunc]) -> None:
        self.cell, self.hosts = cell, hosts
        base: P = ("wasm", "module")
        self.types = _Indexed(
            lambda i: layout.decode_functype(Reader(self._get((*base, "types", str(i)))))
        )
        self.funcs = _Indexed(self._func)
        self.mems = _Indexed(self._memory, lambda: int(cell.tree.has((*base, "memory_max"))))
        self.tables = _Indexed(self._table)
        m: P = ("wasm", "machine")
        self.globals = _Indexed(lambda i: _Global(cell, (*m, "globals", str(i))))
        self.elems = _Indexed(lambda i: _Segment(cell, (*m, "elems", str(i)), "elem"))
        self.datas = _Indexed(lambda i: _Segment(cell, (*m, "datas", str(i)), "data"))
        self.module = self  # handlers reach types as ``instance.module.types``

    def _get(self, path: P) -> bytes:
        raw = self.cell.get(path)
        if raw is None:
            raise layout.LayoutError(f"missing {'/'.join(path)}")
        return raw

    def _func(self, addr: int) -> FuncInst:
        reader = Reader(self._get(("wasm", "module", "funcs", str(addr))))
        if reader.u8() == 1:
            host = self.hosts[reader.rest().decode("ascii")]
            host.addr = addr
            return host
        entry, ftype, local_types = layout.decode_wasm_func(reader)
        func = WasmFunc(ftype, self, addr, local_types)  # type: ignore[arg-type]
        func.entry, func.addr = entry, addr
        return func

    def _memory(self, i: int) -> _Container:
        raw = self._get(("wasm", "module", "memory_max"))
        maximum = int.from_bytes(raw, "big") if raw else None
        return _Container(LazyMemory(self.cell, ("wasm", "machine", "memory")), maximum)

    def _table(self, t: int) -> _Container:
        raw = self._get(("wasm", "module", "tables", str(t)))
        maximum = int.from_bytes(raw[1:], "big") if len(raw) > 1 else None
        path = ("wasm", "machine", "tables", str(t))
        elements = LazyVector(self.cell, path, layout.encode_value, _value)
        return _Container(elements, maximum, ValType(raw[0]))


class _BrTableEntries(Sequence):
    """The entries of a lowered ``br_table`` (``layout.encode_code``), a page read when one
    of its entries is asked for."""

    def __init__(self, cell: Cell, path: P, length: int) -> None:
        self.cell, self.path, self.length = cell, path, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: Any) -> Any:
        if type(i) is not int or not 0 <= i < self.length:
            raise IndexError(i)
        k, at = divmod(i, layout.BR_TABLE_PAGE)
        raw = self.cell.get((*self.path, "t", str(k)))
        if raw is None:
            raise layout.LayoutError(f"missing {'/'.join(self.path)}/t/{k}")
        page: Any = layout.decode_imm(Reader(raw))
        return page[at]


class LazyCode:
    """``code[pc]``: the instruction at ``pc`` decoded from the tree and bound on demand."""

    def __init__(self, cell: Cell, machine: Machine, module: LazyModule) -> None:
        self.cell, self.machine, self.module = cell, machine, module
        from soru.pvm.loader_state import code_path  # the loader builds on these cells

        self.code_path = code_path

    def __getitem__(self, pc: int) -> Callable[[], int]:
        if pc == HALT:
            return self.machine._halt
        if pc == RESUME:
            return self.machine._resume
        raw = self.cell.get(self.code_path(("wasm",), pc))
        if raw is None:
            raise layout.LayoutError(f"no instruction at program counter {pc}")
        reader = Reader(raw)
        base, op = reader.zarith_n(), reader.zarith_n()
        imm = layout.decode_imm(reader)
        if op == BR_TABLE:  # (count, default): the entries are in pages below
            length, default = cast(tuple, imm)
            imm = (_BrTableEntries(self.cell, self.code_path(("wasm",), pc), length), default)
        ctx = Ctx(self.machine, self.module, base)  # type: ignore[arg-type]
        return FACTORIES[op](ctx, pc, imm)


def lazy_machine(cell: Cell, module: LazyModule) -> Machine:
    """A :class:`Machine` whose every container is a view onto ``wasm/machine``."""
    from soru.pvm.layout import LayoutError

    m: P = ("wasm", "machine")
    machine = Machine(call_depth_limit=constants.CALL_STACK_LIMIT)
    machine.stack = LazyVector(cell, (*m, "stack"), layout.encode_value, _value)  # type: ignore[assignment]
    machine.frames = LazyVector(cell, (*m, "frames"), layout.u64, _u64)  # type: ignore[assignment]
    machine.funcs = module.funcs  # type: ignore[assignment]
    machine.code = LazyCode(cell, machine, module)  # type: ignore[assignment]
    status = cell.get((*m, "status"))
    if status is None:
        raise LayoutError("missing wasm/machine/status")
    machine.status = RunStatus(status.decode("ascii"))
    machine.pc = cell.int((*m, "pc"))
    machine.pending_return = cell.int((*m, "pending_return"))
    pending = cell.get((*m, "pending"))
    machine.pending = None if pending is None else RevealRequest.decode(pending)
    return machine


def save_machine(cell: Cell, machine: Machine) -> None:
    """Write back the machine's registers (its containers wrote themselves)."""
    m: P = ("wasm", "machine")
    cell.set((*m, "pc"), layout.u64(machine.pc))
    cell.set((*m, "status"), machine.status.value.encode("ascii"))
    cell.set((*m, "pending_return"), layout.u64(machine.pending_return))
    if machine.pending is None:
        cell.delete((*m, "pending"))
    else:
        cell.set((*m, "pending"), machine.pending.encode())  # type: ignore[attr-defined]
