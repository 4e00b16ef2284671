"""The kernel loader's state and limits: the records it keeps in the tree (:class:`Progress`,
:class:`Counts`), the two stores it runs on (a Merkle tree through a ``Cell``, or plain
dictionaries for :func:`soru.pvm.loader.count_steps`), radix vectors, and the bounds that make
every step provable (see ``soru.pvm.loader``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from soru.encoding.reader import Reader
from soru.encoding.writer import Writer
from soru.merkle import MAX_VALUE_SIZE, Tree
from soru.pvm.lazy import Cell
from soru.wasm.errors import DecodeError

P = tuple[str, ...]
KernelReader = Callable[[int, int], bytes]

MAX_ITEM_BYTES = 12 * 1024
"""Kernel bytes one item may take, at most — an entry, a custom section's name, a function
body read in one step (a longer body is read in runs: ``loader_body``); another item over it
is a :class:`LoaderLimit`. A step proves the bytes it reads (plus up to two partial
2048-byte chunks of durable storage) and a bounded number of tree paths; 12 KiB keeps the
worst step measured under 25,000 bytes of proof, the bound being 30,000 (see
``tests/unit/pvm/test_loader.py``)."""

READ_MAX = 2048
"""Bytes one call of the kernel reader returns, at most (``Durable.read``)."""
DATA_CHUNK = 4096
"""Data segment bytes per step, and the chunk size of the stored segment."""
ELEM_BATCH = 16
"""Element segment items per step, at most."""
RADIX_BITS, RADIX_DEPTH = 6, 4
"""A radix vector: 64 children per directory, 4 levels, 2**24 elements at most."""

_ATTEMPTS = (32, 512, 4096)
_END_REASONS = frozenset(
    {"unexpected end", "length out of bounds", "unexpected end of section or function"}
)


class LoaderLimit(DecodeError):
    """A well-formed kernel beyond what the loader can prove in one step (a PVM limit)."""


class Stage(IntEnum):
    HEADER = 0
    SECTION = 1
    ENTRY = 2
    ELEM_ITEMS = 3
    DATA_BYTES = 4
    DONE = 5
    BODY = 6  # a long function body, a run per step (``loader_body``)


_PROGRESS_FIELDS = ("pos", "section", "end", "left", "index", "part", "total", "extra", "rank")


@dataclass(frozen=True, slots=True)
class Progress:
    """Where the loader is: the stage, the next kernel offset, the section being read (id,
    end offset, entries left, index of the next entry, rank in the section order) and, in
    an entry that takes several steps, ``part`` of ``total`` done (element items, data
    bytes, gathered batches) and an ``extra`` (element flags and type; fact bytes)."""

    stage: Stage = Stage.HEADER
    pos: int = 0
    section: int = 0
    end: int = 0
    left: int = 0
    index: int = 0
    part: int = 0
    total: int = 0
    extra: int = 0
    rank: int = 0

    def encode(self) -> bytes:
        out = Writer().u8(self.stage)
        for name in _PROGRESS_FIELDS:
            out.zarith_n(getattr(self, name))
        return out.getvalue()

    @classmethod
    def decode(cls, raw: bytes) -> Progress:
        reader = Reader(raw)
        stage = Stage(reader.u8())
        fields = {name: reader.zarith_n() for name in _PROGRESS_FIELDS}
        reader.expect_end()
        return cls(stage, **fields)


_COUNT_FIELDS = (
    "types", "imports", "funcs", "imported_funcs", "tables", "mems", "globals",
    "imported_globals", "elems", "datas", "data_count", "codes", "code_length",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Counts:
    """The lengths of the module's index spaces so far; ``data_count`` is one more than the
    data count section's value (0: none); ``codes`` bodies were read and ``code_length``
    instructions written."""

    types: int = 0
    imports: int = 0
    funcs: int = 0
    imported_funcs: int = 0
    tables: int = 0
    mems: int = 0
    globals: int = 0
    imported_globals: int = 0
    elems: int = 0
    datas: int = 0
    data_count: int = 0
    codes: int = 0
    code_length: int = 0

    def encode(self) -> bytes:
        out = Writer()
        for name in _COUNT_FIELDS:
            out.zarith_n(getattr(self, name))
        return out.getvalue()

    @classmethod
    def decode(cls, raw: bytes) -> Counts:
        reader = Reader(raw)
        fields = {name: reader.zarith_n() for name in _COUNT_FIELDS}
        reader.expect_end()
        return cls(**fields)

    @property
    def declared_data_count(self) -> int | None:
        return None if self.data_count == 0 else self.data_count - 1


@dataclass(frozen=True, slots=True)
class Status:
    """What a step did (``item``), and whether the kernel is now loaded."""

    done: bool
    item: str


# --- where the state lives ------------------------------------------------------------------


class _TreeStore:
    """The loader's view of a :class:`Cell`."""

    keeps_grafts = True

    def __init__(self, cell: Cell) -> None:
        self.cell = cell

    def get(self, path: P) -> bytes | None:
        return self.cell.get(path)

    def has(self, path: P) -> bool:
        return self.cell.tree.has(path)

    def set(self, path: P, value: bytes) -> None:
        self.cell.set(path, value)

    def delete(self, path: P) -> None:
        self.cell.delete(path)

    def put_fresh(self, path: P, values: dict[P, bytes]) -> None:
        """Make ``path`` hold exactly ``values`` (it held nothing): one graft."""
        self.cell.tree = self.cell.tree.graft(path, Tree.from_items(values))

    def get_record(self, path: P, kind: Any) -> Any:
        raw = self.cell.get(path)
        return None if raw is None else kind.decode(raw)

    def set_record(self, path: P, record: Any) -> None:
        self.cell.set(path, record.encode())


class _DictStore:
    """The same operations on a dictionary of paths: :func:`soru.pvm.loader.count_steps`
    runs the very steps without hashing anything."""

    keeps_grafts = False
    """Fresh directories (lowered code, element items) are not kept: the loader never reads
    them back, so the steps cannot tell."""

    def __init__(self) -> None:
        self.values: dict[P, Any] = {}
        self.children: dict[P, set[str]] = {}

    def get(self, path: P) -> Any:
        return self.values.get(path)

    def has(self, path: P) -> bool:
        return path in self.values or path in self.children

    def set(self, path: P, value: Any) -> None:
        if path not in self.values:
            child = path
            while child:
                parent = child[:-1]
                names = self.children.get(parent)
                if names is None:
                    self.children[parent] = {child[-1]}
                elif child[-1] in names:
                    break
                else:
                    names.add(child[-1])
                child = parent
        self.values[path] = value

    def delete(self, path: P) -> None:
        todo = [path]
        while todo:
            here = todo.pop()
            self.values.pop(here, None)
            todo.extend((*here, name) for name in self.children.pop(here, ()))
        names = self.children.get(path[:-1])
        if names is not None:
            names.discard(path[-1])

    def put_fresh(self, path: P, values: dict[P, bytes]) -> None:
        raise NotImplementedError("a dictionary store keeps no grafts")

    def get_record(self, path: P, kind: Any) -> Any:
        return self.get(path)  # records are kept as objects: nothing to encode

    def set_record(self, path: P, record: Any) -> None:
        self.set(path, record)


# --- radix vectors ----------------------------------------------------------------------------

_FAN = 1 << RADIX_BITS


_DIGITS = tuple(str(d) for d in range(_FAN))
_SHIFTS = tuple(RADIX_BITS * (RADIX_DEPTH - 1 - level) for level in range(RADIX_DEPTH))


def radix_path(base: P, index: int, level: int = 0) -> P:
    """The path of element ``index`` of the radix vector at ``base`` (with ``level``, of
    that element below its ancestor directory at ``level``)."""
    if not 0 <= index < _FAN**RADIX_DEPTH:
        raise IndexError(index)
    mask = _FAN - 1
    return (*base, *(_DIGITS[index >> shift & mask] for shift in _SHIFTS[level:]))


def code_path(root: P, pc: int) -> P:
    """Where the lowered instruction at ``pc`` is kept."""
    return radix_path((*root, "module", "code"), pc)


def _radix_append(store: Any, base: P, start: int, values: list[bytes],
                  extras: dict[int, dict[P, bytes]] | None = None) -> None:  # fmt: skip
    """Write ``values`` as elements ``start…`` of the radix vector at ``base`` (whose
    elements before ``start`` exist and after do not), with ``extras[i]`` (paths and values)
    below element ``start + i``: directories that hold only new elements are grafted whole."""
    stop = start + len(values)
    if stop > _FAN**RADIX_DEPTH:
        raise LoaderLimit("more lowered code or element items than the PVM holds", None, None)
    below = extras or {}

    def fill(prefix: P, level: int, lo: int) -> None:
        span = _FAN ** (RADIX_DEPTH - level)
        if lo >= start:
            fresh = {}
            for i in range(lo, min(lo + span, stop)):
                here = radix_path((), i, level)
                fresh[here] = values[i - start]
                for path, value in below.get(i - start, {}).items():
                    fresh[(*here, *path)] = value
            store.put_fresh(prefix, fresh)
            return
        child = span // _FAN
        first, last = max(lo, start), min(lo + span, stop) - 1
        for digit in range((first - lo) // child, (last - lo) // child + 1):
            fill((*prefix, str(digit)), level + 1, lo + digit * child)

    if values and store.keeps_grafts:
        fill(base, 0, 0)


def append_radix(cell: Cell, base: P, start: int, values: list[bytes]) -> None:
    """Append ``values`` to the radix vector at ``base`` in ``cell``, which holds ``start``
    elements."""
    _radix_append(_TreeStore(cell), base, start, values)


def append_code(cell: Cell, code: P, program: list[tuple[int, object]]) -> int:
    """Append ``program`` to the lowered code at ``code`` in ``cell`` (a radix vector whose
    own value is its length), its instructions based at that length as one function's are
    (``layout.encode_code``), and record the new length, which it returns. For Init, which
    appends the initialisation program to the module's code."""
    from soru.pvm import layout

    start = int.from_bytes(cell.get(code) or b"", "big")
    values, extras = layout.encode_code(start, program)
    _radix_append(_TreeStore(cell), code, start, values, extras)
    cell.set(code, layout.u64(start + len(values)))
    return start + len(values)


def _read(kernel_reader: KernelReader, offset: int, size: int) -> bytes:
    """``size`` kernel bytes from ``offset`` (fewer at the end), READ_MAX per call."""
    parts, got = [], 0
    while got < size:
        chunk = kernel_reader(offset + got, min(READ_MAX, size - got))
        if not chunk:
            break
        parts.append(bytes(chunk))
        got += len(chunk)
    return b"".join(parts)


def _fits(value: bytes, what: str, offset: int | None, section: str | None) -> bytes:
    if len(value) > MAX_VALUE_SIZE:
        raise LoaderLimit(f"{what} too large for the PVM ({len(value)} bytes)", offset, section)
    return value
