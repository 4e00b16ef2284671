"""Driving the PVM through whole inbox levels: what a rollup node and ``soru pvm run`` do.

:func:`originate` makes the genesis state of a kernel; :func:`run_level` feeds one level's
messages (markers included), computes until the PVM asks for the next input, and answers
every reveal on the way from a :class:`~soru.pvm.reveals.RevealProvider`.

Two engines reach the same states: ``"interpreter"`` runs every tick on soru's machine;
``"wasmtime"`` runs each whole top-level call that starts at Snapshot with the fast engine
(:mod:`soru.pvm.fast`) when the budget covers the call, and the interpreter for the rest
(loading, padding, collecting inputs, and any call the fast engine defers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from soru.base.errors import SoruError
from soru.pvm import constants, fast, vm
from soru.pvm.durable import Durable
from soru.pvm.reveals import RevealProvider
from soru.pvm.state import InputMessage, PvmState, TickState

STEP_BUDGET = 1 << 62

ENGINES = ("interpreter", "wasmtime")


def originate(
    kernel: bytes,
    *,
    ticks_per_kernel_run: int = constants.TICKS_PER_KERNEL_RUN,
    version: str = constants.DEFAULT_VERSION,
    collect_debug: bool = False,
) -> PvmState:
    """The genesis state of a rollup whose boot sector is ``kernel`` (§2.3)."""
    state = PvmState(durable=Durable(), version=version, max_nb_ticks=ticks_per_kernel_run)
    state.collect_debug = collect_debug
    vm.install_kernel(state, kernel)
    return state


@dataclass(frozen=True, slots=True)
class LevelResult:
    """What one level did: ticks it took, the outbox written, the debug output."""

    level: int
    ticks: int
    outbox: tuple[bytes, ...]
    debug: tuple[bytes, ...]


def settle(
    state: PvmState,
    reveals: RevealProvider,
    budget: int = STEP_BUDGET,
    *,
    engine: str = "interpreter",
    on_snapshot: Callable[[PvmState], None] | None = None,
) -> int:
    """Compute (answering reveals) until the PVM needs an inbox message, or ``budget`` ticks
    are made; returns ticks. ``engine`` is one of :data:`ENGINES`; ``on_snapshot`` sees the
    state at the start of every top-level call (where the fast engine takes over)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}, not one of {', '.join(ENGINES)}")
    start = state.tick
    while state.tick - start < budget:
        request = vm.input_request(state)
        left = budget - (state.tick - start)
        if request.kind == "reveal":
            vm.reveal_step(state, reveals.answer(request.reveal))
        elif request.kind == "none":
            if on_snapshot is not None and state.tick_state is TickState.SNAPSHOT:
                on_snapshot(state)
            if engine == "wasmtime":
                if (
                    state.tick_state is TickState.SNAPSHOT
                    and left > state.ticks_to_snapshot  # the call's ticks, boundary included
                    and fast.run_top_level_call(state, reveals) is not fast.DEFERRED
                ):
                    continue
            if engine == "wasmtime" or on_snapshot is not None:
                # no further than this call's boundary: a reboot's Snapshot comes back here
                left = min(left, max(1, state.ticks_to_snapshot + 1))
            vm.compute(state, left)
        else:
            break
    return state.tick - start


def run_level(
    state: PvmState,
    level: int,
    messages: list[bytes],
    reveals: RevealProvider,
    *,
    engine: str = "interpreter",
    on_snapshot: Callable[[PvmState], None] | None = None,
) -> LevelResult:
    """Feed ``messages`` (a whole level, markers included) and settle (with ``engine`` and
    ``on_snapshot``, as :func:`settle`)."""
    start = state.tick
    debug_start = len(state.debug_log)
    for counter, payload in enumerate(messages):
        settle(state, reveals, engine=engine, on_snapshot=on_snapshot)
        vm.set_input(state, InputMessage(level, counter, payload))
    settle(state, reveals, engine=engine, on_snapshot=on_snapshot)
    return LevelResult(
        level,
        state.tick - start,
        tuple(state.outboxes.get(level, ())),
        tuple(state.debug_log[debug_start:]),
    )


class InboxExhausted(SoruError):
    """The inbox ran out before the requested tick."""


def advance_to(
    state: PvmState,
    tick: int,
    messages: list[tuple[int, int, bytes]],
    reveals: RevealProvider,
) -> InputMessage | bytes | None:
    """Advance ``state`` to exactly ``tick`` (consuming ``messages``, a queue of (level,
    counter, payload)); returns the input the *next* tick needs (a message or revealed data),
    or None when it computes or the inbox has no more. Raises :class:`InboxExhausted` if the
    messages run out before ``tick``."""
    while True:
        request = vm.input_request(state)
        if request.kind == "reveal":
            data = reveals.answer(request.reveal)
            if state.tick >= tick:
                return data
            vm.reveal_step(state, data)
        elif request.kind != "none":
            if state.tick >= tick:  # the next tick takes the next message, if there is one
                return InputMessage(*messages[0]) if messages else None
            if not messages:
                raise InboxExhausted(f"the inbox ends at tick {state.tick}, before {tick}")
            vm.set_input(state, InputMessage(*messages.pop(0)))
        elif state.tick >= tick:
            return None
        else:
            vm.compute(state, tick - state.tick)
