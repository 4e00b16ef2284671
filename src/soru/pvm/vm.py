"""The tick state machine of the ``wasm_2_0_0`` PVM (``../shared/SORU-SPEC.md`` §5.2).

Three kinds of tick advance a :class:`~soru.pvm.state.PvmState` by exactly one tick each:

* :func:`set_input` — in Collect (or a terminal Stuck): take one inbox message;
* :func:`reveal_step` — when a reveal host call waits: answer it;
* :func:`compute` — otherwise: one computation tick.

:func:`compute` takes a ``budget`` and performs up to that many computation ticks at once,
stopping early whenever the PVM needs input; Padding is skipped in O(1) and Eval runs on the
WebAssembly machine in one go, so running N ticks at once equals N single ticks.
:func:`input_request` says what the next tick needs.

At the *boundary* — the last tick of a top-level call, where ``ticks_to_snapshot`` is 0 —
Padding decides: reboot into a new kernel_run (the kernel set ``/kernel/env/reboot`` and
reboots remain), or yield back to Collect for the next level. Any other state at the
boundary is stuck for good (``too many ticks``).
"""

from __future__ import annotations

from soru.encoding.inbox import TAG_EOL, TAG_INTERNAL, TAG_MIGRATION, TAG_SOL
from soru.pvm import constants as c
from soru.pvm.host_functions import HostCrash, RevealRequest, answer_reveal
from soru.pvm.kernel import KernelRun, NoKernelRun, Phase
from soru.pvm.state import (
    NO_INPUT,
    InputMessage,
    InputRequest,
    PvmState,
    StuckReason,
    TickState,
)
from soru.wasm.errors import Exhaustion
from soru.wasm.exec.machine import RunStatus


class PvmError(Exception):
    """A tick that the PVM cannot make in its current state (a caller's mistake)."""


_PROTOCOL_VERSIONS = {"nairobi_017": "2.0.0-r1", "oxford_018": "2.0.0-r3"}
"""PVM version reached on a Protocol_migration message (soru stops at 2.0.0-r3)."""


def input_request(s: PvmState) -> InputRequest:
    """What the next tick of ``s`` needs (§5.2, "Input request mapping")."""
    if s.tick_state is TickState.COLLECT or (
        s.tick_state is TickState.STUCK and s.stuck is not None and not s.stuck.recoverable
    ):
        if s.last_input is None:
            return InputRequest("initial")
        return InputRequest("first_after", *s.last_input)
    run = s.kernel
    if s.tick_state is TickState.EVAL and run is not None and run.machine is not None:
        # a reveal waits only while the kernel_run has ticks left: at the boundary, the
        # boundary tick comes first (the call ran out of ticks before its answer)
        if run.machine.status is RunStatus.SUSPENDED and s.ticks_to_snapshot > 0:
            pending = run.machine.pending
            if isinstance(pending, RevealRequest):
                return InputRequest("reveal", reveal=pending.request)
    return NO_INPUT


def set_input(s: PvmState, message: InputMessage) -> None:
    """One input tick: enqueue ``message`` (Collect) or drop it (terminal Stuck)."""
    if input_request(s).kind not in ("initial", "first_after"):
        raise PvmError(f"the PVM takes no input in state {s.tick_state.value}")
    s.tick += 1
    s.last_input = (message.level, message.counter)
    if s.tick_state is TickState.STUCK:
        return
    s.inputs.append(message)
    payload = message.payload
    if len(payload) >= 2 and payload[0] == TAG_INTERNAL:
        if payload[1] == TAG_SOL:
            _start_outbox(s, message.level)
        elif payload[1] == TAG_EOL:
            s.tick_state = TickState.PADDING
        elif payload[1] == TAG_MIGRATION:
            _migrate(s, payload[6:].decode("ascii", errors="replace"))


def reveal_step(s: PvmState, data: bytes) -> None:
    """One reveal tick: answer the pending reveal with ``data`` (the node checked it)."""
    request = input_request(s)
    if request.kind != "reveal":
        raise PvmError("no reveal is pending")
    run = s.kernel
    assert run is not None and run.machine is not None and run.instance is not None
    pending = run.machine.pending
    assert isinstance(pending, RevealRequest)
    result = answer_reveal(run.instance.mems[0].data, pending, data)
    run.machine.answer([result])
    s.tick += 1


def compute(s: PvmState, budget: int = 1) -> int:
    """Perform up to ``budget`` computation ticks; returns how many were made."""
    done = 0
    while done < budget and input_request(s) is NO_INPUT:
        if s.tick_state is TickState.COLLECT:
            break
        done += _advance(s, budget - done)
    return done


def _advance(s: PvmState, budget: int) -> int:
    """Advance within the current tick state; returns ticks made (at least 1)."""
    if s.ticks_to_snapshot <= 0:
        boundary(s)
        return 1
    state = s.tick_state
    if state is TickState.PADDING:
        n = min(budget, s.ticks_to_snapshot)
        s.tick += n
        return n
    if state is TickState.STUCK:  # the tick after a loading failure
        _recover(s)
        s.tick += 1
        return 1
    if state is TickState.SNAPSHOT:
        s.start_call()
        s.tick_state = TickState.DECODE
        s.tick += 1
        return 1
    return _advance_kernel(s, min(budget, s.ticks_to_snapshot))


def _advance_kernel(s: PvmState, budget: int) -> int:
    run = s.kernel
    assert run is not None
    if run.phase is Phase.EVAL or run.phase is Phase.INIT_PROGRAM:
        return _run_machine(s, run, budget)
    if run.phase is Phase.DECODE:
        return _loading(s, Phase.DECODE, run.decode(s, budget), TickState.LINK)
    if run.phase is Phase.LINK:
        return _loading(s, Phase.LINK, run.link(s, budget), TickState.INIT)
    s.tick += 1
    phase = run.phase
    if phase is Phase.ALLOCATE:
        error = run.allocate()
    else:
        try:
            error = run.enter()
        except NoKernelRun:
            _stuck(s, StuckReason.INVALID_MODULE)
            return 1
        if error is None:
            s.tick_state = TickState.EVAL
            save_fallback(s)
    if error is not None:
        _kernel_failure(s, phase)
    return 1


def _loading(s: PvmState, phase: Phase, step: tuple[int, str | None], then: TickState) -> int:
    """Account for Decode or Link ticks: ``step`` is (ticks made, outcome) — None while the
    phase goes on, ``""`` when it is done (the PVM moves to ``then``), else the error."""
    made, outcome = step
    s.tick += made
    if outcome == "":
        s.tick_state = then
    elif outcome is not None:
        _kernel_failure(s, phase)
    return made


def _run_machine(s: PvmState, run: KernelRun, budget: int) -> int:
    machine = run.machine
    assert machine is not None
    before = machine.ticks
    status = machine.run(budget)
    made = machine.ticks - before
    s.tick += made
    if status is RunStatus.DONE:
        if run.phase is Phase.INIT_PROGRAM:
            run.phase, run.phase_left = Phase.ENTER, 1
        else:
            end_of_call(s)
    elif status is RunStatus.TRAPPED:
        if run.phase is Phase.INIT_PROGRAM:
            _kernel_failure(s, Phase.INIT_PROGRAM)
        elif isinstance(machine.trap, Exhaustion):
            _stuck(s, StuckReason.CALL_STACK_EXHAUSTED)
        elif isinstance(machine.trap, HostCrash):  # Octez: an uncaught exception, for good
            _stuck(s, StuckReason.HOST_CRASH)
        else:
            s.durable.write_all(c.STUCK_FLAG_PATH, b"", edit_readonly=True)
            s.tick_state, s.kernel = TickState.PADDING, None
    return made


def end_of_call(s: PvmState) -> None:
    """``kernel_run`` returned: clear the failure flags and pad to the boundary."""
    s.durable.delete(c.STUCK_FLAG_PATH, edit_readonly=True)
    s.durable.delete(c.UPGRADE_ERROR_PATH, edit_readonly=True)
    s.tick_state, s.kernel = TickState.PADDING, None


def _kernel_failure(s: PvmState, phase: Phase) -> None:
    """Decode, link or init failed: stuck with the cause, for this tick (see _recover)."""
    reason = {
        Phase.DECODE: StuckReason.DECODE_ERROR,
        Phase.LINK: StuckReason.LINK_ERROR,
    }.get(phase, StuckReason.INIT_ERROR)
    s.tick_state, s.stuck, s.kernel = TickState.STUCK, reason, None


_NO_FALLBACK = {
    StuckReason.DECODE_ERROR: StuckReason.NO_FALLBACK_DECODE,
    StuckReason.LINK_ERROR: StuckReason.NO_FALLBACK_LINK,
    StuckReason.INIT_ERROR: StuckReason.NO_FALLBACK_INIT,
}


def _hash_of(durable, key: str):
    """The Merkle hash of a durable key (None if absent): equal iff the contents are."""
    return durable.subtree_hash(key) if durable.exists(key) else None


def _recover(s: PvmState) -> None:
    """The tick after a loading failure: restore a fallback kernel different from the one
    that failed (its hash is compared, not its bytes) and pad to the boundary; without one,
    the PVM is stuck for good (Octez's ``No_fallback_kernel``)."""
    durable = s.durable
    fallback = _hash_of(durable, c.FALLBACK_KERNEL_PATH)
    if fallback is not None and fallback != _hash_of(durable, c.KERNEL_BOOT_PATH):
        durable.copy(c.FALLBACK_KERNEL_PATH, c.KERNEL_BOOT_PATH)
        durable.write_all(c.UPGRADE_ERROR_PATH, b"", edit_readonly=True)
        s.tick_state, s.stuck = TickState.PADDING, None
        return
    assert s.stuck is not None
    s.stuck = _NO_FALLBACK[s.stuck]


def _stuck(s: PvmState, reason: StuckReason) -> None:
    s.tick_state, s.stuck, s.kernel = TickState.STUCK, reason, None


def save_fallback(s: PvmState) -> None:
    """The kernel initialised: it becomes the fallback kernel (an O(1) subtree copy)."""
    if _hash_of(s.durable, c.FALLBACK_KERNEL_PATH) != _hash_of(s.durable, c.KERNEL_BOOT_PATH):
        s.durable.copy(c.KERNEL_BOOT_PATH, c.FALLBACK_KERNEL_PATH, edit_readonly=True)


def boundary(s: PvmState) -> None:
    """The last tick of a top-level call (§5.2 "Status bookkeeping at a boundary")."""
    if s.tick_state is not TickState.PADDING:
        if s.tick_state is not TickState.STUCK or (s.stuck and s.stuck.recoverable):
            _stuck(s, StuckReason.TOO_MANY_TICKS)
        s.tick += 1
        return
    reboot = s.durable.read_all(c.REBOOT_FLAG_PATH) is not None
    if reboot and s.reboot_counter > 0:
        s.durable.delete(c.REBOOT_FLAG_PATH)
        s.reboot_counter -= 1
        s.tick_state = TickState.SNAPSHOT
    else:
        if reboot:
            s.durable.write_all(c.TOO_MANY_REBOOT_PATH, b"", edit_readonly=True)
        else:
            s.durable.delete(c.TOO_MANY_REBOOT_PATH, edit_readonly=True)
        s.durable.write_all(c.REBOOT_FLAG_PATH, b"")
        s.reboot_counter = c.REBOOT_COUNTER_RESET
        s.inputs.clear()
        s.inputs_read = 0
        s.tick_state = TickState.COLLECT
    counter = s.reboot_counter.to_bytes(4, "little")
    s.durable.write_all(c.REBOOT_COUNTER_PATH, counter, edit_readonly=True)
    s.last_top_level_call = s.tick + 1
    s.tick += 1


def _start_outbox(s: PvmState, level: int) -> None:
    """Start_of_level: the outbox of ``level`` becomes current; old ones expire."""
    s.outbox_level = level
    s.outboxes.setdefault(level, [])
    # Every level starts with a Start_of_level, so exactly one outbox expires here: touching
    # only it keeps this tick's work (and its proof) bounded.
    s.outboxes.pop(level - c.OUTBOX_VALIDITY_PERIOD, None)


def _migrate(s: PvmState, protocol: str) -> None:
    version = _PROTOCOL_VERSIONS.get(protocol)
    if version is not None and c.VERSIONS.index(version) > c.VERSIONS.index(s.version):
        s.version = version
        s.durable.write_all(c.VERSION_PATH, version.encode(), edit_readonly=True)


def install_kernel(s: PvmState, kernel: bytes) -> None:
    """Origination (§2.3): the version, the boot sector and the reboot flag."""
    s.durable.write_all(c.VERSION_PATH, s.version.encode(), edit_readonly=True)
    s.durable.write_all(c.KERNEL_BOOT_PATH, kernel)
    s.durable.write_all(c.REBOOT_FLAG_PATH, b"")
