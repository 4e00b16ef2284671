"""The fast engine: a whole top-level call of the PVM run on wasmtime, with soru's ticks.

The interpreter (``soru.pvm.vm``) is the reference: it runs a kernel one tick at a time. A
rollup node mostly needs the state at the *end* of each top-level call, so when the PVM sits
at Snapshot — the first tick of a call — :func:`run_top_level_call` runs the call's kernel
on wasmtime and leaves the state exactly where the interpreter would leave it after that
call's Eval: same durable storage, input buffer, outboxes, tick, tick state, stuck reason
and flags, hence the same state hash. Unlike Octez's fast execution (which pads every call
to ``max_nb_ticks`` and never counts), soru counts: the kernel runs instrumented
(``soru.wasm.instrument``), so the tick at which it returns, traps or runs out of ticks is
the interpreter's to the tick.

One call, as the interpreter ticks it and as this module computes it (``L`` is
``ticks_to_snapshot`` at Snapshot, so the boundary tick comes after ``L`` ticks)::

    Snapshot  1 tick                                      computed
    Decode    decode_ticks(kernel)                        computed (decoding is cached)
    Link      max(1, imports)                             computed (checked as kernel.py)
    Init      1 allocation tick                           computed
              the initialisation program (segments, start) on wasmtime, counted
              1 enter tick (checks kernel_run, saves the fallback kernel)
    Eval      kernel_run on wasmtime, counted
    --> Padding (returned: flags cleared; trapped: stuck flag written), or
    --> the boundary reached before the end: terminal Stuck "too many ticks"

The machine's part gets the budget ``B = L − (1 + decode + link + 1)``: the instrumented
counter starts at 0 for the initialisation program, the enter tick adds one, ``kernel_run``
continues from there, and the call ran out of ticks exactly when the counter passed ``B``
(:func:`soru.wasm.instrument.ran_out_of_ticks`). Then the state is put at the boundary tick
in the phase it was in, and the interpreter's own boundary rule (``vm.boundary``) makes
the last tick, so that terminal Stuck is written by the same code as in the interpreter.

Host functions are the very callables of :func:`soru.pvm.host_functions.host_functions`,
wrapped: wasmtime's signed arguments become soru's unsigned bit patterns, and the caller's
memory is a :class:`WasmtimeMemory` (``len``, slicing, slice assignment over
``wasmtime.Memory``). A host call costs its one call tick, which the instrumented caller
counts. A reveal is answered at once from the :class:`~soru.pvm.reveals.RevealProvider`
and costs the one more tick the interpreter spends on ``reveal_step`` — provided the
interpreter would reach that tick (the counter is still below the budget after the call;
otherwise the call ran out of ticks before asking).

What defers. :func:`run_top_level_call` returns :data:`DEFERRED` having changed nothing
(durable tree, input buffer, outboxes and debug log are restored) whenever it cannot decide
cheaply and exactly; the caller then runs the call on the interpreter. It defers on:

* too few ticks left for loading (the interpreter reaches the boundary inside Decode/Link);
* a kernel that does not decode, does not link for the PVM version, or fails a check of
  the enter tick (one memory, memory 0 exported, ``kernel_run : [] -> []``) — cheap in the
  interpreter, which restores the fallback kernel or gets stuck;
* a host call during initialisation (Octez refuses it; the interpreter's rule decides);
* a trap during initialisation (an init failure: fallback kernel or stuck);
* a reveal the provider cannot answer (the interpreter raises the same error at the same
  tick), a host crash (``HostCrash``: a terminal Stuck), any unexpected exception;
* wasmtime's stack overflow, and any wasmtime error that is not the kernel's own trap.

Call depth. The interpreter allows 60,000 frames and then is stuck for good; wasmtime
overflows at a depth that depends on frame sizes. wasmtime runs here with a wasm stack of
:data:`WASM_STACK_BYTES` (384 KiB): every wasm frame holds at least its 8-byte return
address, so wasmtime overflows before 49,152 frames, below the interpreter's limit — a
kernel that would exhaust the interpreter's stack always overflows wasmtime first and
defers, and a kernel that wasmtime runs to the end never went deeper than the interpreter
allows.

Compiled modules (instrumented, encoded, compiled and pre-linked) are cached by kernel
content; a kernel that reboots a thousand times is compiled once.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Any

import wasmtime

from soru.pvm import constants as c
from soru.pvm import vm
from soru.pvm.host_functions import (
    HOST_FUNCTIONS,
    RevealRequest,
    answer_reveal,
    host_functions,
)
from soru.pvm.kernel import decode_kernel, link_imports, link_ticks
from soru.pvm.reveals import RevealProvider
from soru.pvm.state import PvmState, TickState
from soru.wasm.encode import encode_module
from soru.wasm.errors import LinkError
from soru.wasm.exec import ticks as tick_costs
from soru.wasm.instrument import (
    BUDGET_EXPORT,
    MAX_BUDGET,
    TICKS_EXPORT,
    instrument,
    ran_out_of_ticks,
)
from soru.wasm.runtime import MAX_PAGES, PAGE_SIZE, HostContinuation
from soru.wasm.syntax import Export, ExternKind, FuncType, Module, ValType

WASM_STACK_BYTES = 384 * 1024
"""wasmtime's stack for wasm frames: at 8 bytes a frame at least, fewer than the
interpreter's 60,000 frames fit (see the module docstring)."""

INIT_EXPORT = "__soru_init"
"""Export name of the initialisation program in the module run here (not a start function,
so that it runs after the budget is set, on an instance that is cached once compiled)."""

MEMORY_EXPORT = "__soru_memory"
"""Export name of memory 0, through which host functions reach the kernel's memory."""

_KERNEL_TRAPS = frozenset(
    {
        wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS,
        wasmtime.TrapCode.TABLE_OUT_OF_BOUNDS,
        wasmtime.TrapCode.INDIRECT_CALL_TO_NULL,
        wasmtime.TrapCode.BAD_SIGNATURE,
        wasmtime.TrapCode.INTEGER_OVERFLOW,
        wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO,
        wasmtime.TrapCode.BAD_CONVERSION_TO_INTEGER,
        wasmtime.TrapCode.UNREACHABLE,
    }
)
"""wasmtime traps that are the kernel's own (the instrumentation's budget trap is an
``unreachable`` too; the counter tells them apart)."""


class Outcome(Enum):
    """How :func:`run_top_level_call` ended the call."""

    RETURNED = "returned"  # kernel_run returned: Padding, flags cleared
    TRAPPED = "trapped"  # the kernel trapped: Padding, stuck flag written
    OUT_OF_TICKS = "out of ticks"  # the boundary came first: terminal Stuck
    DEFERRED = "deferred"  # nothing changed: run the call on the interpreter


DEFERRED = Outcome.DEFERRED

STATS: Counter[str] = Counter()
"""What :func:`run_top_level_call` did in this process: calls by outcome, deferrals also by
``"deferred: <reason>"``, and ``"ticks"``, the ticks of the calls it decided (from Snapshot
to where it left the state) — for tests, benchmarks and the curious."""


# --- wasmtime: one engine, one linker with every host function --------------------------------

_WT_TYPES = {ValType.I32: wasmtime.ValType.i32, ValType.I64: wasmtime.ValType.i64}
_MASK = {ValType.I32: 0xFFFF_FFFF, ValType.I64: 0xFFFF_FFFF_FFFF_FFFF}
_SIGN = {ValType.I32: 0x8000_0000, ValType.I64: 0x8000_0000_0000_0000}


class _Defer(Exception):
    """Raised inside a host call: the fast engine cannot decide this call."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _OutOfTicks(Exception):
    """Raised inside a reveal: the interpreter reaches the boundary before answering it."""


_ACTIVE = threading.local()
"""The call being run on this thread (its :class:`_Session`), for the host functions."""

_LOCK = threading.Lock()
_RUNTIME: tuple[wasmtime.Engine, wasmtime.Linker] | None = None


def _runtime() -> tuple[wasmtime.Engine, wasmtime.Linker]:
    """The engine and the linker defining every ``smart_rollup_core`` function (created once;
    a host function reaches the running call through :data:`_ACTIVE`)."""
    global _RUNTIME
    with _LOCK:
        if _RUNTIME is None:
            config = wasmtime.Config()
            config.max_wasm_stack = WASM_STACK_BYTES
            engine = wasmtime.Engine(config)
            linker = wasmtime.Linker(engine)
            for spec in HOST_FUNCTIONS:
                wt_type = wasmtime.FuncType(
                    [_WT_TYPES[t]() for t in spec.type.params],
                    [_WT_TYPES[t]() for t in spec.type.results],
                )
                linker.define_func(
                    c.HOST_MODULE, spec.name, wt_type, _dispatcher(spec.name, spec.type)
                )
            _RUNTIME = engine, linker
        return _RUNTIME


def _dispatcher(name: str, ftype: FuncType):
    masks = tuple(_MASK[t] for t in ftype.params)
    result = ftype.results[0] if ftype.results else None

    def call(*args: int):
        session: _Session = _ACTIVE.session
        values = session.host_call(name, [a & m for a, m in zip(args, masks, strict=True)])
        if result is None:
            return None
        value = values[0]
        return value - (_SIGN[result] << 1) if value & _SIGN[result] else value

    return call


class WasmtimeMemory:
    """A ``wasmtime.Memory`` seen as soru's host functions see memory: ``len``, slicing
    (bytes) and slice assignment of as many bytes as the slice covers (a memory does not
    change size by assignment). The address is fetched at each access: memory may move
    when it grows."""

    __slots__ = ("_memory", "_store")

    def __init__(self, memory: wasmtime.Memory, store: wasmtime.Store) -> None:
        self._memory, self._store = memory, store

    def __len__(self) -> int:
        return self._memory.data_len(self._store)

    def _base(self) -> int:
        return ctypes.addressof(self._memory.data_ptr(self._store).contents)

    def _range(self, key: slice | int) -> tuple[int, int]:
        size = len(self)
        if isinstance(key, int):
            index = key + size if key < 0 else key
            if not 0 <= index < size:
                raise IndexError("memory index out of range")
            return index, index + 1
        start, stop, step = key.indices(size)
        if step != 1:
            raise ValueError("memory slices have no step")
        return start, max(start, stop)

    def __getitem__(self, key: slice | int) -> bytes | int:
        start, stop = self._range(key)
        data = ctypes.string_at(self._base() + start, stop - start) if stop > start else b""
        return data[0] if isinstance(key, int) else data

    def __setitem__(self, key: slice | int, value) -> None:
        start, stop = self._range(key)
        data = bytes((value,)) if isinstance(key, int) else bytes(value)
        if len(data) != stop - start:
            raise ValueError("a memory does not change size by assignment")
        if data:
            ctypes.memmove(self._base() + start, data, len(data))


class _MemInst:
    __slots__ = ("data",)

    def __init__(self, data: WasmtimeMemory) -> None:
        self.data = data


class _Caller:
    """What a host function sees of its caller: ``mems[0].data``."""

    __slots__ = ("mems",)

    def __init__(self, memory: WasmtimeMemory) -> None:
        self.mems = [_MemInst(memory)]


# --- compiled kernels ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A kernel ready for wasmtime, or why it never will be (``problem``)."""

    module: Module | None  # soru's decoded module
    decode_ticks: int
    pre: wasmtime.InstancePre | None
    has_init: bool
    problem: str | None


_CACHE: OrderedDict[bytes, _Compiled] = OrderedDict()
_CACHE_SIZE = 8


def _compiled(kernel: bytes) -> _Compiled:
    key = hashlib.blake2b(kernel, digest_size=32).digest()
    with _LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            return found
    result = _compile(kernel)
    with _LOCK:
        _CACHE[key] = result
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return result


def _compile(kernel: bytes) -> _Compiled:
    decoded = decode_kernel(kernel)
    module = decoded.module
    if module is None:
        return _Compiled(None, decoded.decode_ticks, None, False, "decode error")
    problem = _entry_problem(module)
    if problem is not None:
        return _Compiled(module, decoded.decode_ticks, None, False, problem)
    engine, linker = _runtime()
    try:
        instrumented, info = instrument(module, budget=MAX_BUDGET)
        memory = next(e for e in module.exports if e.kind == ExternKind.MEMORY and e.index == 0)
        exports = [*instrumented.exports]
        if memory.name != MEMORY_EXPORT:
            exports.append(Export(MEMORY_EXPORT, ExternKind.MEMORY, 0))
        if info.init_func is not None:
            exports.append(Export(INIT_EXPORT, ExternKind.FUNC, info.init_func))
        runnable = replace(instrumented, start=None, exports=tuple(exports))
        compiled = wasmtime.Module(engine, encode_module(runnable))
        pre = linker.instantiate_pre(compiled)
    except (ValueError, wasmtime.WasmtimeError) as exc:  # e.g. a clashing export name
        return _Compiled(module, decoded.decode_ticks, None, False, f"not compiled: {exc}")
    return _Compiled(module, decoded.decode_ticks, pre, info.init_func is not None, None)


def _entry_problem(module: Module) -> str | None:
    """What the enter tick would refuse (``kernel.check_entry``), or what the fast engine
    leaves to the interpreter; None when the kernel can be entered."""
    if module.imported(ExternKind.MEMORY) or len(module.mems) != 1:
        return "not exactly one memory"
    if not any(e.kind == ExternKind.MEMORY and e.index == 0 for e in module.exports):
        return "memory 0 not exported"
    names = {e.name for e in module.exports}
    if INIT_EXPORT in names or (MEMORY_EXPORT in names and not _exports_memory_as(module)):
        return "export names taken"
    entry = next((e for e in module.exports if e.name == c.KERNEL_ENTRY), None)
    if entry is None or entry.kind != ExternKind.FUNC:
        return "no kernel_run"
    if module.func_type(entry.index) != FuncType((), ()):
        return "kernel_run is not [] -> []"
    return None


def _exports_memory_as(module: Module) -> bool:
    return any(
        e.name == MEMORY_EXPORT and e.kind == ExternKind.MEMORY and e.index == 0
        for e in module.exports
    )


# --- one top-level call ------------------------------------------------------------------------


class _Snapshot:
    """What a call may change before it is decided, to put back when deferring: every field
    of the state, the durable tree (immutable: keeping it is enough), the input buffer, the
    current outbox and the debug log."""

    def __init__(self, s: PvmState) -> None:
        self.fields = {f.name: getattr(s, f.name) for f in fields(s)}
        self.tree = s.durable.tree
        self.inputs = list(s.inputs)
        self.debug = len(s.debug_log)
        level = s.outbox_level
        outbox = s.outboxes.get(level) if level is not None else None
        self.outbox = (level, None if outbox is None else list(outbox))

    def restore(self, s: PvmState) -> None:
        for name, value in self.fields.items():
            setattr(s, name, value)
        s.durable.tree = self.tree
        s.inputs.clear()
        s.inputs.extend(self.inputs)
        del s.debug_log[self.debug :]
        level, messages = self.outbox
        if level is not None:
            if messages is None:
                s.outboxes.pop(level, None)
            else:
                s.outboxes[level][:] = messages


class _Session:
    """One top-level call on wasmtime: the host functions, the memory, the counter."""

    def __init__(self, s: PvmState, hosts, reveals: RevealProvider | None, budget: int):
        self.state = s
        self.hosts = hosts
        self.reveals = reveals
        self.budget = budget
        self.initialising = True
        self.store = wasmtime.Store(_runtime()[0])
        self.store.set_limits(
            memory_size=MAX_PAGES * PAGE_SIZE, table_elements=tick_costs.TABLE_GROW_MAX_ELEMENTS
        )
        self.exports: Any = None  # the instance's exports (wasmtime._instance.InstanceExports)
        self.caller: _Caller | None = None
        self.counter: wasmtime.Global | None = None

    def instantiate(self, pre: wasmtime.InstancePre) -> None:
        exports = pre.instantiate(self.store).exports(self.store)
        memory, counter, budget = (
            exports[MEMORY_EXPORT],
            exports[TICKS_EXPORT],
            exports[BUDGET_EXPORT],
        )
        assert isinstance(memory, wasmtime.Memory)
        assert isinstance(counter, wasmtime.Global) and isinstance(budget, wasmtime.Global)
        budget.set_value(self.store, self.budget)
        self.exports, self.counter = exports, counter
        self.caller = _Caller(WasmtimeMemory(memory, self.store))

    @property
    def ticks(self) -> int:
        assert self.counter is not None
        return self.counter.value(self.store)

    @ticks.setter
    def ticks(self, value: int) -> None:
        assert self.counter is not None
        self.counter.set_value(self.store, value)

    def call(self, name: str) -> None:
        assert self.exports is not None
        func = self.exports[name]
        assert isinstance(func, wasmtime.Func)
        func(self.store)

    def host_call(self, name: str, args: list[int]) -> list[int]:
        if self.initialising:
            raise _Defer("host call during initialisation")
        results = self.hosts[name].fn(self.caller, args)
        if isinstance(results, HostContinuation):
            if not isinstance(results, RevealRequest):
                raise _Defer(f"host continuation {type(results).__name__}")
            return [self.reveal(results)]
        return results

    def reveal(self, request: RevealRequest) -> int:
        """The reveal tick, as the interpreter makes it once the machine suspends: only if
        a tick is left before the boundary."""
        ticks = self.ticks
        if ticks >= self.budget:
            raise _OutOfTicks()
        if self.reveals is None:
            raise _Defer("no reveal provider")
        try:
            data = self.reveals.answer(request.request)
        except Exception as exc:  # the interpreter's settle raises it at the same tick
            raise _Defer(f"reveal not answered: {type(exc).__name__}") from exc
        assert self.caller is not None
        result = answer_reveal(self.caller.mems[0].data, request, data)
        self.ticks = ticks + 1
        return result


def run_top_level_call(s: PvmState, reveals: RevealProvider | None = None) -> Outcome:
    """Run the top-level call starting at ``s`` (at Snapshot) on wasmtime (module docstring).

    Returns how it ended — ``s`` is then where the interpreter leaves it after the call's
    Eval (Padding, or the terminal Stuck past the boundary) — or :data:`DEFERRED`, having
    changed nothing, when the interpreter must run this call.
    """
    if s.tick_state is not TickState.SNAPSHOT:
        raise vm.PvmError(
            f"the fast engine starts a top-level call at Snapshot, not {s.tick_state.value}"
        )
    if not isinstance(s, PvmState):  # e.g. a state read lazily from a tree, for a proof
        STATS["deferred: not a PvmState"] += 1
        STATS[DEFERRED.value] += 1
        return DEFERRED
    snapshot = _Snapshot(s)
    start = s.tick
    try:
        outcome = _run(s, reveals)
    except _Defer as defer:
        snapshot.restore(s)
        STATS[f"deferred: {defer.reason}"] += 1
        STATS[DEFERRED.value] += 1
        return DEFERRED
    except Exception as exc:  # anything unexpected: the interpreter will meet it too
        snapshot.restore(s)
        STATS[f"deferred: {type(exc).__name__}"] += 1
        STATS[DEFERRED.value] += 1
        return DEFERRED
    except BaseException:
        snapshot.restore(s)
        raise
    STATS[outcome.value] += 1
    STATS["ticks"] += s.tick - start
    return outcome


def _run(s: PvmState, reveals: RevealProvider | None) -> Outcome:
    window = s.ticks_to_snapshot  # ticks before the boundary tick
    kernel = s.durable.read_all(c.KERNEL_BOOT_PATH) or b""
    compiled = _compiled(kernel)
    if compiled.problem is not None:
        raise _Defer(compiled.problem)
    assert compiled.module is not None and compiled.pre is not None
    hosts = host_functions(s, s.version, debug=s.collect_debug)
    try:
        link_imports(compiled.module, hosts)
    except LinkError as exc:
        raise _Defer("link error") from exc
    loading = 1 + compiled.decode_ticks + link_ticks(compiled.module) + 1
    budget = window - loading  # ticks the machine may make before the boundary
    if budget < 1:
        raise _Defer("boundary during loading")
    start = s.tick

    session = _Session(s, hosts, reveals, budget)
    try:
        session.instantiate(compiled.pre)
    except wasmtime.WasmtimeError as exc:
        raise _Defer("instantiation refused") from exc
    _ACTIVE.session = session
    try:
        if compiled.has_init:
            ended = _guarded(session, INIT_EXPORT)
            if ended is Outcome.OUT_OF_TICKS:
                return _out_of_ticks(s, TickState.INIT)
            if ended is Outcome.TRAPPED:
                raise _Defer("trap during initialisation")
        session.initialising = False
        if session.ticks + 1 > budget:  # the enter tick is past the boundary
            return _out_of_ticks(s, TickState.INIT)
        session.ticks += 1
        vm.save_fallback(s)
        ended = _guarded(session, c.KERNEL_ENTRY)
    finally:
        _ACTIVE.session = None
    if ended is Outcome.OUT_OF_TICKS:
        return _out_of_ticks(s, TickState.EVAL)
    s.tick = start + loading + session.ticks
    if ended is Outcome.TRAPPED:
        s.durable.write_all(c.STUCK_FLAG_PATH, b"", edit_readonly=True)
        s.tick_state, s.kernel = TickState.PADDING, None
        return Outcome.TRAPPED
    vm.end_of_call(s)
    return Outcome.RETURNED


def _guarded(session: _Session, name: str) -> Outcome:
    """Call an export; RETURNED, TRAPPED (the kernel's own trap) or OUT_OF_TICKS, else
    :class:`_Defer`."""
    try:
        session.call(name)
    except _OutOfTicks:
        return Outcome.OUT_OF_TICKS
    except wasmtime.Trap as trap:
        if ran_out_of_ticks(session.ticks, session.budget):
            return Outcome.OUT_OF_TICKS
        if trap.trap_code == wasmtime.TrapCode.STACK_OVERFLOW:
            raise _Defer("wasmtime stack overflow") from trap
        if trap.trap_code not in _KERNEL_TRAPS:
            raise _Defer(f"wasmtime trap {trap.trap_code}") from trap
        return Outcome.TRAPPED
    except wasmtime.WasmtimeError as exc:
        raise _Defer("wasmtime error") from exc
    return Outcome.RETURNED


def _out_of_ticks(s: PvmState, phase: TickState) -> Outcome:
    """The boundary came before the end of the call: put the state at the boundary tick in
    the phase it was in, and let the interpreter's boundary rule make that tick."""
    s.tick = s.last_top_level_call + s.max_nb_ticks - 1
    s.tick_state, s.kernel = phase, None
    vm.boundary(s)
    return Outcome.OUT_OF_TICKS
