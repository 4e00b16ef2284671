"""Driving the PVM through whole inbox levels: what a rollup node and ``soru pvm run`` do.

:func:`originate` makes the genesis state of a kernel; :func:`run_level` feeds one level's
messages (markers included), computes until the PVM asks for the next input, and answers
every reveal on the way from a :class:`~soru.pvm.reveals.RevealProvider`.
"""

from __future__ import annotations

from dataclasses import dataclass

from soru.pvm import constants, vm
from soru.pvm.durable import Durable
from soru.pvm.reveals import RevealProvider
from soru.pvm.state import InputMessage, PvmState

STEP_BUDGET = 1 << 62


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


def settle(state: PvmState, reveals: RevealProvider, budget: int = STEP_BUDGET) -> int:
    """Compute (answering reveals) until the PVM needs an inbox message; returns ticks."""
    start = state.tick
    while state.tick - start < budget:
        request = vm.input_request(state)
        if request.kind == "reveal":
            vm.reveal_step(state, reveals.answer(request.reveal))
        elif request.kind == "none":
            vm.compute(state, budget - (state.tick - start))
        else:
            break
    return state.tick - start


def run_level(
    state: PvmState, level: int, messages: list[bytes], reveals: RevealProvider
) -> LevelResult:
    """Feed ``messages`` (a whole level, markers included) and settle."""
    start = state.tick
    debug_start = len(state.debug_log)
    for counter, payload in enumerate(messages):
        settle(state, reveals)
        vm.set_input(state, InputMessage(level, counter, payload))
    settle(state, reveals)
    return LevelResult(
        level,
        state.tick - start,
        tuple(state.outboxes.get(level, ())),
        tuple(state.debug_log[debug_start:]),
    )
