"""The small-step machine: explicit state, one tick per dispatch, resumable at any tick.

State (all plain data, nothing on the Python call stack between ticks):

* ``stack``  — the value stack: each frame's locals followed by its operands;
* ``frames`` — the return program counter of every active call (its length is the depth);
* ``pc``     — the program counter into ``code``, the machine's lowered code: every
  function of every instantiated module, laid end to end, each instruction bound to its
  handler (see ``context`` and the ``handlers_*`` modules); ``source`` keeps, for every
  program counter, the lowered instruction and the base its targets are relative to;
* the store — ``funcs`` and the tables, memories, globals and segments they refer to;
* ``pending`` — a host call in progress (:class:`~soru.wasm.runtime.HostContinuation`).

``run(ticks=N)`` performs at most N ticks — ``pc = code[pc]()`` — and returns; running in
pieces reaches exactly the state of running straight through. Two reserved program counters
exist: ``HALT`` (the return address of the outermost call) and ``RESUME`` (a host call in
progress takes one tick per ``step``).

Transitions: ``start`` → RUNNING → (``run``)* → DONE (``results``) | TRAPPED (``trap``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import Enum

from soru.base.errors import SoruError
from soru.wasm.errors import Exhaustion, Trap
from soru.wasm.exec import instantiate as _inst
from soru.wasm.exec.context import Ctx
from soru.wasm.exec.handlers_control import CONTROL_FACTORIES, call_handler
from soru.wasm.exec.handlers_memory import memory_factories
from soru.wasm.exec.handlers_numeric import numeric_factories
from soru.wasm.exec.lower import CONST, LInstr
from soru.wasm.runtime import (
    AwaitingData,
    Extern,
    FuncInst,
    HostContinuation,
    HostFunc,
    Instance,
    WasmFunc,
)
from soru.wasm.syntax import Module

FACTORIES: dict[int, Callable[..., Callable[[], int]]] = {
    **numeric_factories(),
    **memory_factories(),
    **CONTROL_FACTORIES,
}
FACTORIES[CONST] = FACTORIES[0x41]

HALT, RESUME = 0, 1
HALT_OP, RESUME_OP = 0x1FFFE, 0x1FFFF
"""Pseudo-opcodes naming the two reserved instructions in ``Machine.source``."""


class RunStatus(Enum):
    IDLE = "idle"  # nothing started
    RUNNING = "running"  # started, ticks remain to be run
    DONE = "done"  # the outermost call returned; results are in ``results``
    TRAPPED = "trapped"  # a Trap or Exhaustion ended the call; it is in ``trap``
    SUSPENDED = "suspended"  # a host call awaits data from outside (see ``Suspend``)


class Suspend(Exception):
    """Raised by a :class:`HostContinuation`'s ``step`` when it needs data from outside the
    machine (the PVM's reveal ticks): ``run`` stops *before* that tick, with the status
    SUSPENDED; the embedder later calls :meth:`Machine.answer` with the call's results."""


class _Halt(Exception):
    """Raised by the HALT instruction: the outermost call has returned."""


class Machine:
    """A WebAssembly store and the one thread of execution running on it."""

    def __init__(self, *, call_depth_limit: int = 10_000, max_memory_pages: int = 65536) -> None:
        self.call_depth_limit = call_depth_limit
        self.max_memory_pages = max_memory_pages
        self.stack: list = []
        self.frames: list[int] = []
        self.funcs: list[FuncInst] = []
        self.code: list = [self._halt, self._resume]
        self.source: list[tuple[int, object, int]] = [
            (HALT_OP, None, HALT),
            (RESUME_OP, None, RESUME),
        ]
        self.pc = HALT
        self.ticks = 0
        self.status = RunStatus.IDLE
        self.results: list = []
        self.trap: Trap | Exhaustion | None = None
        self.pending: HostContinuation | None = None
        self.pending_return = HALT

    # --- loading --------------------------------------------------------------------------
    def add_func(self, func: FuncInst) -> int:
        """Give ``func`` an address in this machine."""
        func.addr = len(self.funcs)
        self.funcs.append(func)
        return func.addr

    def load(self, code: Sequence[LInstr], instance: Instance | None) -> int:
        """Append lowered code bound to ``instance``; returns its entry program counter."""
        base = len(self.code)
        ctx = Ctx(self, instance, base)
        self.code.extend(FACTORIES[op](ctx, base + i, imm) for i, (op, imm) in enumerate(code))
        self.source.extend((op, imm, base) for op, imm in code)
        return base

    def instantiate(
        self, module: Module, imports: Mapping[tuple[str, str], Extern] | None = None
    ) -> Instance:
        """Link, allocate and initialise a *validated* module (spec 4.5.4).

        Raises ``LinkError`` when an import is missing or mismatched, and ``Trap`` when a
        segment is out of bounds or the start function traps (the module is then
        "uninstantiable"; writes already made to imported tables or memories remain).
        """
        instance, entry = self.allocate(module, imports)
        if entry is not None:
            self.begin_code(entry)
            try:
                self._finish()
            except CallSuspended as suspended:
                suspended.instance = instance  # finish it with answer() and run()
                raise
        return instance

    def allocate(
        self, module: Module, imports: Mapping[tuple[str, str], Extern] | None = None
    ) -> tuple[Instance, int | None]:
        """The first half of :meth:`instantiate`: link and allocate, and load the
        initialisation program without running it. Returns the instance and the program's
        entry (``None`` when there is nothing to initialise); run it with
        :meth:`begin_code` and :meth:`run` to finish instantiation tick by tick."""
        instance = _inst.allocate(self, module, imports or {})
        init = _inst.init_code(module, instance)
        return instance, (self.load(init, instance) if init else None)

    def begin_code(self, entry: int) -> None:
        """Start running loaded code at ``entry`` as an outermost call with no arguments."""
        self._begin(entry, [])

    # --- running --------------------------------------------------------------------------
    def invoke(self, func: FuncInst, args: Sequence, *, max_ticks: int | None = None) -> list:
        """Call ``func`` with ``args`` and run to completion; returns the results.

        Raises ``Trap``/``Exhaustion`` from the guest. With ``max_ticks``, raises
        ``TickLimit`` when the call has not finished in that many ticks (the call can then
        be continued with :meth:`run`).
        """
        self.start(func, args)
        return self._finish(max_ticks)

    def start(self, func: FuncInst, args: Sequence) -> None:
        """Prepare a call of ``func``; :meth:`run` then performs its ticks."""
        if len(args) != len(func.type.params):
            raise TypeError(f"{func!r} takes {len(func.type.params)} arguments, got {len(args)}")
        if isinstance(func, HostFunc):
            self._begin(HALT, [])
            results = func.fn(None, list(args))
            if isinstance(results, HostContinuation):
                self.pc = self.suspend(results, HALT)
                if results.awaits_data:
                    self.status = RunStatus.SUSPENDED
            else:
                self.stack[:] = list(results)
            return
        if not isinstance(func, WasmFunc):
            raise TypeError(f"cannot call {func!r}")
        self._begin(func.entry, args, func)

    def _begin(self, entry: int, args: Sequence, func: WasmFunc | None = None) -> None:
        self.stack[:] = list(args)
        if func is not None:
            self.stack.extend(0 if not t.is_ref else None for t in func.locals)
        self.frames[:] = [HALT]
        self.pc = entry
        self.status = RunStatus.RUNNING
        self.results = []
        self.trap = None

    def _finish(self, max_ticks: int | None = None) -> list:
        status = self.run(max_ticks if max_ticks is not None else 1 << 62)
        if status is RunStatus.TRAPPED:
            assert self.trap is not None
            raise self.trap
        if status is RunStatus.RUNNING:
            raise TickLimit(self.ticks)
        if status is RunStatus.SUSPENDED:
            raise CallSuspended("a host call awaits data from outside: answer() it, then run()")
        return self.results

    def run(self, ticks: int) -> RunStatus:
        """Perform at most ``ticks`` ticks of the current call; returns the status."""
        if self.status is not RunStatus.RUNNING:
            return self.status
        code, pc, done = self.code, self.pc, 0
        try:
            for done in range(ticks):  # noqa: B007 - ``done`` counts ticks on exceptions
                pc = code[pc]()
            else:
                done = ticks
        except _Halt:
            pass
        except AwaitingData:  # the tick that parked the host call is done: suspend after it
            self.ticks += done + 1
            self.pc = RESUME
            self.status = RunStatus.SUSPENDED
            return self.status
        except Suspend:
            self.ticks += done
            self.pc = pc
            self.status = RunStatus.SUSPENDED
            return self.status
        except (Trap, Exhaustion) as exc:
            done += 1
            self._stop(RunStatus.TRAPPED)
            self.trap = exc
            self.ticks += done
            self.pc = pc
            return self.status
        except RecursionError:  # pragma: no cover - the machine never recurses in Python
            raise
        self.ticks += done
        self.pc = pc
        if pc == HALT:
            self.results = list(self.stack)
            self._stop(RunStatus.DONE)
        return self.status

    def _stop(self, status: RunStatus) -> None:
        self.stack.clear()
        self.frames.clear()
        self.pending = None
        self.status = status

    # --- reserved instructions ------------------------------------------------------------
    def _halt(self) -> int:
        raise _Halt()

    def _resume(self) -> int:
        assert self.pending is not None
        results = self.pending.step()
        if results is None:
            return RESUME
        self.pending = None
        self.stack.extend(results)
        return self.pending_return

    def answer(self, results: Sequence) -> None:
        """Finish a SUSPENDED host call with ``results``; that is one tick."""
        if self.status is not RunStatus.SUSPENDED:
            raise RuntimeError("the machine is not waiting for an answer")
        self.stack.extend(results)
        self.pending = None
        self.pc = self.pending_return
        self.status = RunStatus.RUNNING
        self.ticks += 1

    def suspend(self, continuation: HostContinuation, return_pc: int) -> int:
        """Park a multi-tick host call; the machine steps it at ``RESUME`` once per tick."""
        self.pending = continuation
        self.pending_return = return_pc
        return RESUME

    def call_handler(self, func: FuncInst, return_pc: int):
        """A handler that enters ``func`` and returns to ``return_pc`` (for embedders)."""
        return call_handler(Ctx(self, None, 0), return_pc, func)


class CallSuspended(SoruError):
    """``invoke``/``instantiate`` reached a host call that waits for outside data (a PVM
    reveal); the machine is SUSPENDED and can be finished with ``answer`` and ``run``.
    From ``instantiate``, ``instance`` is the instance being initialised."""

    instance: Instance | None = None


class TickLimit(SoruError):
    """``invoke(max_ticks=N)`` ran N ticks without finishing."""

    def __init__(self, ticks: int) -> None:
        super().__init__(f"tick limit reached after {ticks} ticks")
        self.ticks = ticks
