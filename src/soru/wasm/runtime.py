"""Runtime structures (spec chapter 4.2): the instances a machine's store is made of.

* :class:`WasmFunc` — a function defined by a module: its type, its instance, and the
  program counter of its lowered code in the machine (``entry``).
* :class:`HostFunc` — a function supplied from Python. ``fn(caller, args)`` returns the
  results, or a :class:`HostContinuation` when the call takes several ticks.
* :class:`TableInst`, :class:`MemInst`, :class:`GlobalInst` — mutable containers; the machine
  binds its handlers to the very list/bytearray objects they hold, so their identity never
  changes (memory grows in place).
* :class:`ElemInst`, :class:`DataInst` — segments kept for ``table.init``/``memory.init``
  until dropped.
* :class:`Instance` — a module instance: the module's index spaces mapped to the above, and
  its exports.

Every value is an int holding its unsigned bit pattern; a reference is ``None`` (null) or an
int (a function address in the machine, or a host's externref value).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from soru.wasm.syntax import (
    FuncType,
    GlobalType,
    Limits,
    MemType,
    Module,
    TableType,
    ValType,
)

PAGE_SIZE = 65536
MAX_PAGES = 65536


class FuncInst:
    """A function instance; ``addr`` is its index in the machine's function list."""

    __slots__ = ("type", "addr")

    def __init__(self, type: FuncType) -> None:
        self.type = type
        self.addr = -1


class WasmFunc(FuncInst):
    """A function defined by a module instance.

    ``locals`` are the declared locals (after the parameters); ``entry`` is the program
    counter of its first lowered instruction in the machine's code.
    """

    __slots__ = ("instance", "index", "locals", "entry", "code")

    def __init__(self, type: FuncType, instance: Instance, index: int, locals: tuple[ValType, ...]):
        super().__init__(type)
        self.instance = instance
        self.index = index
        self.locals = locals
        self.entry = -1
        self.code: list = []

    def __repr__(self) -> str:
        return f"<wasm func {self.index} {self.type} at pc {self.entry}>"


class HostContinuation:
    """A host call still in progress: the machine calls :meth:`step` once per tick.

    ``step`` returns ``None`` while the call goes on, and the results when it is done. A
    continuation the PVM must prove mid-way is a plain record the PVM can serialise.

    ``awaits_data``: the call cannot go on before data comes from outside the machine (a
    PVM reveal). The machine is then SUSPENDED at the end of the very tick that parks the
    continuation — so that every state a tick reaches is *the* state at that tick: no
    zero-tick step turns a running machine into a suspended one.
    """

    awaits_data = False

    def step(self) -> Sequence[int] | None:  # pragma: no cover - interface
        raise NotImplementedError


class AwaitingData(Exception):
    """Raised by the host-call handler once it parked a continuation that awaits data:
    the tick is complete, and the machine suspends after it."""


HostFn = Callable[["Instance | None", list], "Sequence[int] | HostContinuation"]


class HostFunc(FuncInst):
    """A function implemented in Python. ``fn(caller_instance, args)`` returns the results
    (a sequence of ints of the declared result types) or a :class:`HostContinuation`."""

    __slots__ = ("fn", "name")

    def __init__(self, type: FuncType, fn: HostFn, name: str = "") -> None:
        super().__init__(type)
        self.fn = fn
        self.name = name

    def __repr__(self) -> str:
        return f"<host func {self.name or '?'} {self.type}>"


class TableInst:
    """A table: a list of references (``None`` or an int), with its type and maximum."""

    __slots__ = ("type", "elements", "max")

    def __init__(self, type: TableType, fill: int | None = None) -> None:
        self.type = type
        self.elements: list = [fill] * type.limits.min
        self.max = type.limits.max

    @property
    def limits(self) -> Limits:
        return Limits(len(self.elements), self.max)


class MemInst:
    """A linear memory: a bytearray whose length is a multiple of the 64 KiB page."""

    __slots__ = ("type", "data", "max")

    def __init__(self, type: MemType) -> None:
        self.type = type
        self.data = bytearray(type.limits.min * PAGE_SIZE)
        self.max = type.limits.max

    @property
    def pages(self) -> int:
        return len(self.data) // PAGE_SIZE

    @property
    def limits(self) -> Limits:
        return Limits(self.pages, self.max)


class GlobalInst:
    """A global variable: its type and current value."""

    __slots__ = ("type", "value")

    def __init__(self, type: GlobalType, value: int | None = 0) -> None:
        self.type = type
        self.value = value


class ElemInst:
    """An element segment's references, emptied by ``elem.drop``."""

    __slots__ = ("type", "refs")

    def __init__(self, type: ValType, refs: list) -> None:
        self.type = type
        self.refs = refs


class DataInst:
    """A data segment's bytes, emptied by ``data.drop``."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


Extern = FuncInst | TableInst | MemInst | GlobalInst


@dataclass(slots=True, eq=False)
class Instance:
    """A module instance: each index space of the module mapped to runtime objects."""

    module: Module
    funcs: list[FuncInst] = field(default_factory=list)
    tables: list[TableInst] = field(default_factory=list)
    mems: list[MemInst] = field(default_factory=list)
    globals: list[GlobalInst] = field(default_factory=list)
    elems: list[ElemInst] = field(default_factory=list)
    datas: list[DataInst] = field(default_factory=list)
    exports: dict[str, Extern] = field(default_factory=dict)

    def export(self, name: str) -> Extern:
        """The export called ``name``; raises KeyError naming it when there is none."""
        try:
            return self.exports[name]
        except KeyError:
            raise KeyError(f"no export named {name!r}") from None


def default_value(t: ValType) -> int | None:
    """The zero value of a type: 0 for numbers, null for references."""
    return None if t.is_ref else 0
