"""Random access to the state hash at any tick of a level (``soru.pvm.history``): equal to
the hash reached by running tick by tick, at random ticks, at the level's edges and at
every kernel_run boundary."""

from __future__ import annotations

import random

import pytest
from pvm_kernels import NO_REVEALS, build, external

from soru.pvm import driver, layout, vm
from soru.pvm.history import LevelTrace
from soru.pvm.state import InputMessage
from soru.tools.inputs_file import with_markers

TICKS = 2000


@pytest.mark.parametrize("engine", ["interpreter", "wasmtime"])
def test_hash_at_equals_running_tick_by_tick(engine: str) -> None:
    kernel = build("reboot")
    messages = with_markers([external(bytes([3]))])
    state = driver.originate(kernel, ticks_per_kernel_run=TICKS)
    driver.run_level(state, 1, with_markers([]), NO_REVEALS)
    stepped = layout.load_state(layout.state_tree(state))
    trace = LevelTrace.run(state, 2, messages, NO_REVEALS, engine=engine)
    assert len(trace.ticks) >= 3  # level start and several kernel_runs

    expected = {stepped.tick: layout.state_hash(stepped)}
    queue = [InputMessage(2, i, m) for i, m in enumerate(messages)]
    while stepped.tick < trace.end_tick:
        if vm.input_request(stepped).kind == "none":
            vm.compute(stepped, 1)
        else:
            vm.set_input(stepped, queue.pop(0))
        expected[stepped.tick] = layout.state_hash(stepped)
    assert layout.state_hash(state) == expected[trace.end_tick]

    rng = random.Random(5)
    probes = set(rng.sample(sorted(expected), 60)) | set(trace.ticks) | {trace.end_tick}
    probes |= {t + d for t in trace.ticks for d in (-1, 1) if t + d in expected}
    for tick in sorted(probes):
        assert trace.hash_at(tick) == expected[tick], tick
