"""The engine of ``soru debug``: a PVM state driven tick by tick, with breakpoints.

A :class:`DebugSession` owns one :class:`~soru.pvm.state.PvmState` (originated from a kernel),
a queue of inbox levels waiting to be fed, the reveal provider, and the breakpoints. Every
stepping command of the debugger is one call of :meth:`DebugSession.run` with a
:class:`Goal`; the loop makes the tick the PVM asks for next —

* an **input tick** when it waits for an inbox message: the next message of the level in
  progress, or the first message of the next queued level when the goal allows a new level;
* a **reveal tick** when a host call waits for a reveal: answered from the preimage
  directory or the rollup's metadata, and reported;
* **computation ticks** otherwise, in chunks bounded by the goal, the next tick breakpoint
  and the top-level-call boundary; one at a time while a function breakpoint is armed and the
  kernel's machine runs, so that the stop lands exactly on the function's entry —

and stops when the goal is met, a breakpoint is hit, the PVM waits for input nobody queued,
a reveal cannot be answered, or the user interrupts. What happens on the way (inputs fed,
reveals answered, levels finished, the kernel's debug output) is reported through
``on_event``. The views of the state are in ``soru.tools.debugger_show``, the command
language in ``soru.tools.debugger``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from soru.base.errors import SoruError
from soru.pvm import driver, layout, vm
from soru.pvm.kernel import Phase, decode_kernel
from soru.pvm.reveals import RevealError, RevealProvider, reveal_hash
from soru.pvm.state import InputMessage, PvmState, TickState
from soru.tools.inputs_file import DEFAULT_ROLLUP, with_markers
from soru.wasm import opcodes
from soru.wasm.exec.machine import Machine
from soru.wasm.runtime import HostFunc, WasmFunc

CHUNK = 50_000
"""Machine ticks computed between checks for an interrupt (a fraction of a second)."""

MAX_REVEAL_REPORTS = 10
"""Reveals reported one by one per command; the rest are counted."""

_CALL = opcodes.BY_NAME["call"].op
_KERNEL_STATES = (
    TickState.SNAPSHOT,
    TickState.DECODE,
    TickState.LINK,
    TickState.INIT,
    TickState.EVAL,
)


class DebuggerError(SoruError):
    """A debugger command that cannot be carried out: bad syntax, bad argument, wrong state."""


class GoalKind(Enum):
    TICKS = "ticks"  # a number of ticks
    KERNEL_RUN = "kernel_run"  # to the end of the current top-level call (its boundary tick)
    RESULT = "result"  # to the end of the level in progress
    INBOX = "inbox"  # the level in progress, then one more queued level
    CONTINUE = "continue"  # until a breakpoint or the queue is empty


@dataclass(frozen=True, slots=True)
class Goal:
    kind: GoalKind
    ticks: int = 0
    new_levels: int | None = None  # queued levels the run may start (None: any)


@dataclass(frozen=True, slots=True)
class Stop:
    """Why a run ended: ``done`` (goal met), ``breakpoint``, ``input`` (waits for an inbox
    level nobody queued), ``reveal`` (unanswerable reveal), ``interrupted``, ``stuck``."""

    reason: str
    message: str = ""
    ticks: int = 0


@dataclass(slots=True)
class QueuedLevel:
    """One inbox level to feed: its number, its messages (markers included), how many went in."""

    level: int
    messages: list[bytes]
    origin: str
    fed: int = 0

    @property
    def done_feeding(self) -> bool:
        return self.fed >= len(self.messages)


@dataclass(frozen=True, slots=True)
class Breakpoint:
    number: int
    kind: str  # "function" or "tick"
    value: int
    label: str


@dataclass(slots=True)
class _Stops:
    """Program counters where the armed function breakpoints stop, for one machine."""

    machine: Machine | None = None
    pcs: dict[int, Breakpoint] = field(default_factory=dict)


def describe_message(payload: bytes) -> str:
    """An inbox message in a few words (its kind and, for externals, its bytes)."""
    if payload[:1] == b"\x01":
        body = payload[1:]
        shown = body[:16].hex() + ("…" if len(body) > 16 else "")
        return f"external, {len(body)} bytes {shown}"
    kinds = {0: "internal transfer", 1: "Start_of_level", 2: "End_of_level", 3: "Info_per_level"}
    if payload[:1] == b"\x00" and len(payload) >= 2:
        if payload[1] == 4:
            return f"Protocol_migration {payload[6:].decode('ascii', errors='replace')}"
        if payload[1] in kinds:
            return kinds[payload[1]]
    return f"raw, {len(payload)} bytes {payload[:16].hex()}"


class DebugSession:
    """A PVM under the debugger's control (see the module docstring)."""

    def __init__(
        self,
        kernel: bytes,
        reveals: RevealProvider,
        *,
        rollup: str = DEFAULT_ROLLUP,
        ticks_per_kernel_run: int | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        options = (
            {} if ticks_per_kernel_run is None else {"ticks_per_kernel_run": ticks_per_kernel_run}
        )
        self.state: PvmState = driver.originate(kernel, collect_debug=True, **options)  # type: ignore[arg-type]
        self.reveals = reveals
        self.rollup = rollup  # the destination of internal transfers in inbox files
        self.queue: deque[QueuedLevel] = deque()
        self.current: QueuedLevel | None = None  # the level being fed or processed
        self.finished: list[tuple[int, int]] = []  # (level, tick at which it was done)
        self.next_level = reveals.origination_level + 1
        self.breakpoints: dict[int, Breakpoint] = {}
        self._breakpoint_numbers = 0
        self._stops = _Stops()
        self._debug_seen = 0
        self._reveals_reported = 0
        self.interrupted = False
        self.on_event = on_event or (lambda _line: None)

    # --- inputs ----------------------------------------------------------------------------
    def queue_levels(self, levels: list[list[bytes]], origin: str) -> list[QueuedLevel]:
        """Queue levels of user messages; each gets the markers and the next level number."""
        added = []
        for messages in levels:
            queued = QueuedLevel(self.next_level, with_markers(messages), origin)
            self.next_level += 1
            self.queue.append(queued)
            added.append(queued)
        return added

    def waits_for_inbox(self) -> bool:
        return vm.input_request(self.state).kind in ("initial", "first_after")

    def level_in_progress(self) -> bool:
        """Whether a level has been started and the PVM has not yet asked for one beyond it."""
        self._close_finished_level()
        return self.current is not None

    def load_next_level(self) -> QueuedLevel:
        """Feed every message of the next queued level now (Octez's ``load inputs``)."""
        if not self.waits_for_inbox():
            raise DebuggerError(
                f"the PVM takes no inbox message now (tick state {self.state.tick_state.value}); "
                "step result first"
            )
        self._close_finished_level()
        if self.current is not None:
            raise DebuggerError(f"level {self.current.level} is still being fed")
        if not self.queue:
            raise DebuggerError("no level queued: load inputs FILE queues some")
        level = self.queue.popleft()
        self.current = level
        while not level.done_feeding:
            self._feed(level, verbose=False)
        self.on_event(f"level {level.level}: fed {len(level.messages)} messages")
        return level

    def _feed(self, level: QueuedLevel, *, verbose: bool) -> None:
        payload = level.messages[level.fed]
        vm.set_input(self.state, InputMessage(level.level, level.fed, payload))
        if verbose:
            self.on_event(
                f"input: level {level.level} message {level.fed}: {describe_message(payload)}"
            )
        level.fed += 1

    def _close_finished_level(self) -> None:
        """The PVM asks for a message beyond the current level: that level is done."""
        level = self.current
        if level is None or not level.done_feeding or not self.waits_for_inbox():
            return
        s = self.state
        self.current = None
        self.finished.append((level.level, s.tick))
        outbox = s.outboxes.get(level.level, [])
        stuck = f", stuck: {s.stuck.value}" if s.stuck is not None else ""
        self.on_event(
            f"level {level.level} done at tick {s.tick}: {len(outbox)} outbox message(s){stuck}"
        )

    # --- reveals ---------------------------------------------------------------------------
    def answer_reveal(self, request: bytes, data: bytes | None = None) -> None:
        """A reveal tick: ``data`` when given (checked), else the provider's answer."""
        if data is None:
            data = self.reveals.answer(request)
            source = "preimage directory" if request[:1] == b"\x00" else "rollup metadata"
        else:
            if request[:1] == b"\x00":
                if reveal_hash(data) != request[1:]:
                    raise DebuggerError(f"those bytes do not hash to {request[1:].hex()}")
            source = "the command line"
        vm.reveal_step(self.state, data)
        self._reveals_reported += 1
        if self._reveals_reported <= MAX_REVEAL_REPORTS:
            what = f"preimage {request[1:].hex()}" if request[:1] == b"\x00" else "metadata"
            self.on_event(f"reveal: {what} answered from {source} ({len(data)} bytes)")

    # --- breakpoints -----------------------------------------------------------------------
    def add_breakpoint(self, kind: str, value: int, label: str) -> Breakpoint:
        self._breakpoint_numbers += 1
        bp = Breakpoint(self._breakpoint_numbers, kind, value, label)
        self.breakpoints[bp.number] = bp
        self._stops = _Stops()
        return bp

    def delete_breakpoint(self, number: int) -> Breakpoint:
        bp = self.breakpoints.pop(number, None)
        if bp is None:
            raise DebuggerError(f"no breakpoint {number}")
        self._stops = _Stops()
        return bp

    def kernel_module(self):
        """The module of the running kernel, else of ``/kernel/boot.wasm`` (None if invalid)."""
        run = self.state.kernel
        if run is not None and run.decoded is not None and run.decoded.module is not None:
            return run.decoded.module
        kernel = self.state.durable.read_all("/kernel/boot.wasm")
        return None if kernel is None else decode_kernel(kernel).module

    def running_machine(self) -> Machine | None:
        """The kernel's machine while it runs code (the init program or ``kernel_run``)."""
        run = self.state.kernel
        if run is None or run.machine is None or run.instance is None:
            return None
        if run.phase not in (Phase.INIT_PROGRAM, Phase.EVAL):
            return None
        return run.machine

    def _function_stops(self, machine: Machine) -> dict[int, Breakpoint]:
        if self._stops.machine is machine:
            return self._stops.pcs
        run = self.state.kernel
        assert run is not None and run.instance is not None
        funcs = run.instance.funcs
        pcs: dict[int, Breakpoint] = {}
        for bp in self.breakpoints.values():
            if bp.kind != "function" or bp.value >= len(funcs):
                continue
            target = funcs[bp.value]
            if isinstance(target, WasmFunc):
                pcs[target.entry] = bp
            elif isinstance(target, HostFunc):  # stop before each call of the host function
                for wf in funcs:
                    if isinstance(wf, WasmFunc):
                        for i, (op, imm) in enumerate(wf.code):
                            if op == _CALL and imm == bp.value:
                                pcs[wf.entry + i] = bp
        self._stops = _Stops(machine, pcs)
        return pcs

    def _hit(self) -> Breakpoint | None:
        s = self.state
        for bp in self.breakpoints.values():
            if bp.kind == "tick" and bp.value == s.tick:
                return bp
        machine = self.running_machine()
        if machine is not None and any(b.kind == "function" for b in self.breakpoints.values()):
            return self._function_stops(machine).get(machine.pc)
        return None

    # --- running ---------------------------------------------------------------------------
    def run(self, goal: Goal) -> Stop:
        """Make ticks toward ``goal`` (see the module docstring); returns why it stopped."""
        s = self.state
        start, start_call = s.tick, s.last_top_level_call
        new_levels = goal.new_levels
        self._reveals_reported = 0
        self.interrupted = False
        made_one = False
        try:
            while True:
                self._flush_debug()
                if made_one:
                    bp = self._hit()
                    if bp is not None:
                        return Stop(
                            "breakpoint", f"breakpoint {bp.number} hit: {bp.label}", s.tick - start
                        )
                if goal.kind is GoalKind.TICKS and s.tick - start >= goal.ticks:
                    return Stop("done", "", s.tick - start)
                if goal.kind is GoalKind.KERNEL_RUN and made_one:
                    if s.last_top_level_call != start_call:
                        return Stop("done", "", s.tick - start)
                    if s.tick_state is TickState.STUCK and not (s.stuck and s.stuck.recoverable):
                        return Stop(
                            "stuck",
                            f"the PVM is stuck: {s.stuck.value if s.stuck else ''}",
                            s.tick - start,
                        )
                if self.interrupted:
                    return Stop("interrupted", f"interrupted at tick {s.tick}", s.tick - start)
                request = vm.input_request(s)
                if request.kind == "reveal":
                    try:
                        self.answer_reveal(request.reveal)
                    except RevealError as exc:
                        return Stop(
                            "reveal",
                            f"reveal not answered: {exc}; answer it with reveal preimage HEX",
                            s.tick - start,
                        )
                elif request.kind == "none":
                    vm.compute(s, self._budget(goal, start))
                else:
                    stop = self._input_tick(goal, new_levels, start)
                    if isinstance(stop, Stop):
                        return stop
                    new_levels = stop
                made_one = True
        finally:
            self._flush_debug()
            if self._reveals_reported > MAX_REVEAL_REPORTS:
                more = self._reveals_reported - MAX_REVEAL_REPORTS
                self.on_event(f"reveal: … and {more} more reveal(s) answered")

    def _input_tick(self, goal: Goal, new_levels: int | None, start: int) -> Stop | int | None:
        """Feed one message, or say why not; returns the new-level allowance left."""
        self._close_finished_level()
        s = self.state
        verbose = goal.kind is GoalKind.TICKS
        level = self.current
        if level is None:
            if new_levels == 0:
                if goal.kind is GoalKind.RESULT and s.tick == start:
                    return Stop(
                        "input",
                        "no level in progress: the PVM waits for the next "
                        "inbox level (step inbox feeds one)",
                        0,
                    )
                return Stop("done", "", s.tick - start)
            if not self.queue and goal.kind is GoalKind.INBOX and s.tick > start:
                return Stop("done", "no further level queued", s.tick - start)
            if not self.queue:
                done = "every queued level is processed; " if goal.kind is GoalKind.CONTINUE else ""
                return Stop(
                    "input",
                    f"{done}the PVM waits for an inbox level and none is queued (load inputs FILE)",
                    s.tick - start,
                )
            level = self.current = self.queue.popleft()
            if new_levels is not None:
                new_levels -= 1
            if not verbose:
                self.on_event(
                    f"level {level.level}: feeding {len(level.messages)} messages "
                    f"from tick {s.tick}"
                )
        self._feed(level, verbose=verbose)
        return new_levels

    def _budget(self, goal: Goal, start: int) -> int:
        """Computation ticks to ask for at once: padding to the boundary in one go (it costs
        nothing), else a chunk; never past the goal, a tick breakpoint or — with a function
        breakpoint armed while the kernel runs — a single machine tick."""
        s = self.state
        if s.tick_state is TickState.PADDING:
            budget = max(1, s.ticks_to_snapshot + 1)
        else:
            budget = CHUNK
        if goal.kind is GoalKind.TICKS:
            budget = min(budget, goal.ticks - (s.tick - start))
        elif goal.kind is GoalKind.KERNEL_RUN:
            budget = min(budget, max(1, s.ticks_to_snapshot + 1))
        for bp in self.breakpoints.values():
            if bp.kind == "tick" and bp.value > s.tick:
                budget = min(budget, bp.value - s.tick)
            elif bp.kind == "function" and s.tick_state in _KERNEL_STATES:
                budget = 1
        return max(1, budget)

    def _flush_debug(self) -> None:
        log = self.state.debug_log
        while self._debug_seen < len(log):
            line = log[self._debug_seen].decode("utf-8", errors="replace").rstrip("\n")
            self.on_event(f"debug: {line}")
            self._debug_seen += 1

    # --- summaries -------------------------------------------------------------------------
    def state_hash(self) -> str:
        return layout.show_state_hash(layout.state_hash(self.state))

    def status_line(self) -> str:
        """One line: tick, tick state, loading phase, abbreviated state hash."""
        s = self.state
        phase = s.kernel.phase.value if s.kernel is not None else "-"
        full = self.state_hash()
        stuck = f" ({s.stuck.value})" if s.stuck is not None else ""
        return (
            f"tick {s.tick} | {s.tick_state.value}{stuck} | phase {phase} | {full[:12]}…{full[-6:]}"
        )


def load_kernel(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DebuggerError(f"cannot read kernel {path}: {exc.strerror}") from None
