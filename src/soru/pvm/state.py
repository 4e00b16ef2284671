"""The state of the ``wasm_2_0_0`` PVM and what it asks of the outside world.

:class:`PvmState` holds everything the PVM is: durable storage, the tick counter and the tick
state, the reboot bookkeeping, the input buffer, the outboxes, and — while a kernel is being
loaded or runs — the loading progress and the WebAssembly machine. It is the working
configuration of the interpreter; ``soru.pvm.layout`` maps it onto the Merkle tree whose root
is the state hash.

Tick states (``../shared/SORU-SPEC.md`` §5.2)::

    Collect --input*--> Collect --End_of_level--> Padding
    Padding --(boundary, reboot flag, counter > 0)--> Snapshot --> Decode --> Link --> Init
            --> Eval --(return | trap)--> Padding
    Padding --(boundary, otherwise)--> Collect
    Decode/Link/Init failure --> Padding (fallback kernel restored) | Stuck (recoverable)
    any non-Padding state at the boundary, or call stack exhausted --> Stuck (terminal)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from soru.pvm import constants

if TYPE_CHECKING:
    from soru.pvm.durable import Durable
    from soru.pvm.kernel import KernelRun


class TickState(Enum):
    COLLECT = "collect"
    PADDING = "padding"
    SNAPSHOT = "snapshot"
    DECODE = "decode"
    LINK = "link"
    INIT = "init"
    EVAL = "eval"
    STUCK = "stuck"


class StuckReason(Enum):
    """Why the PVM is stuck. The first three last one tick: the next tick restores the
    fallback kernel (and pads to the boundary) or, without one, is stuck for good with the
    matching ``NO_FALLBACK_*`` reason. All others are terminal (as in Octez)."""

    DECODE_ERROR = "decode error"
    LINK_ERROR = "link error"
    INIT_ERROR = "init error"
    NO_FALLBACK_DECODE = "no fallback kernel: decode error"
    NO_FALLBACK_LINK = "no fallback kernel: link error"
    NO_FALLBACK_INIT = "no fallback kernel: init error"
    INVALID_MODULE = "invalid module: no kernel_run function exported"
    TOO_MANY_TICKS = "too many ticks"
    CALL_STACK_EXHAUSTED = "call stack exhausted"
    HOST_CRASH = "host function crash"

    @property
    def recoverable(self) -> bool:
        return self in (StuckReason.DECODE_ERROR, StuckReason.LINK_ERROR, StuckReason.INIT_ERROR)


@dataclass(frozen=True, slots=True)
class InputMessage:
    """One inbox message as the kernel reads it: its level, index in the level, and bytes."""

    level: int
    counter: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class InputRequest:
    """What the PVM needs to make its next tick.

    ``kind`` is ``"none"`` (it can compute), ``"initial"`` (the first inbox message ever),
    ``"first_after"`` (the message after ``(level, counter)``), or ``"reveal"`` (the answer
    to the binary reveal request ``reveal``).
    """

    kind: str
    level: int = 0
    counter: int = 0
    reveal: bytes = b""


NO_INPUT = InputRequest("none")


@dataclass(slots=True)
class PvmState:
    """The whole PVM state (see the module docstring). Mutated in place by ``soru.pvm.vm``."""

    durable: Durable
    version: str = constants.DEFAULT_VERSION
    tick: int = 0
    tick_state: TickState = TickState.COLLECT
    stuck: StuckReason | None = None
    last_top_level_call: int = 0
    max_nb_ticks: int = constants.TICKS_PER_KERNEL_RUN
    reboot_counter: int = constants.REBOOT_COUNTER_RESET
    inputs: deque[InputMessage] = field(default_factory=deque)
    inputs_read: int = 0  # inputs the kernel has read since the buffer was last emptied
    last_input: tuple[int, int] | None = None
    outbox_level: int | None = None
    outboxes: dict[int, list[bytes]] = field(default_factory=dict)
    kernel: KernelRun | None = None
    debug_log: list[bytes] = field(default_factory=list)
    collect_debug: bool = False  # keep write_debug output (not state: never hashed)

    # --- the host-function environment (soru.pvm.host_functions) ---------------------------
    def next_input(self) -> tuple[int, int, bytes] | None:
        """Pop the oldest unread input, as ``(level, counter, payload)``."""
        if not self.inputs:
            return None
        message = self.inputs.popleft()
        self.inputs_read += 1
        return message.level, message.counter, message.payload

    def write_output(self, payload: bytes) -> bool:
        """Append to the current level's outbox; False when it is full (or there is none)."""
        if self.outbox_level is None:
            return False
        outbox = self.outboxes.setdefault(self.outbox_level, [])
        if len(outbox) >= constants.OUTBOX_MESSAGE_LIMIT:
            return False
        outbox.append(bytes(payload))
        return True

    def debug(self, data: bytes) -> None:
        """``write_debug``: not part of the state; kept for the node's and debugger's logs."""
        self.debug_log.append(bytes(data))

    def start_call(self) -> None:
        """The Snapshot tick: a top-level call starts loading the kernel."""
        from soru.pvm.kernel import KernelRun

        self.kernel = KernelRun.start(self.durable)

    @property
    def ticks_to_snapshot(self) -> int:
        """Ticks left before the boundary tick of the current top-level call (§5.2)."""
        return self.max_nb_ticks - 1 - (self.tick - self.last_top_level_call)
