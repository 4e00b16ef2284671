"""Random access to the states of one inbox level, for dissections and proofs.

A refutation game asks for the state hash at arbitrary ticks of a level, 32 at a time, and
finally for the state at one tick to prove. :class:`LevelTrace` runs a level once and keeps
the state tree at its start and at the start of every top-level call (the Snapshot ticks,
where the fast engine hands over); :meth:`LevelTrace.state_at` then reloads the nearest
earlier snapshot and runs the interpreter forward to the tick. Padding is skipped in O(1),
so a tick costs at most one kernel_run of interpretation, whatever the level's length.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from soru.base.hashes import Hash
from soru.merkle import Tree
from soru.pvm import driver, layout, vm
from soru.pvm.reveals import RevealProvider
from soru.pvm.state import InputMessage, PvmState, TickState


@dataclass(slots=True)
class LevelTrace:
    """One level's run: the snapshots taken, the level's messages, and where it ended."""

    level: int
    messages: list[bytes]
    reveals: RevealProvider
    ticks: list[int] = field(default_factory=list)
    trees: list[Tree] = field(default_factory=list)
    start_tick: int = 0
    end_tick: int = 0

    @classmethod
    def run(
        cls, state: PvmState, level: int, messages: list[bytes], reveals: RevealProvider
    ) -> LevelTrace:
        """Run ``messages`` (a whole level, markers included) on ``state``, keeping
        snapshots; ``state`` ends where ``driver.run_level`` would leave it."""
        trace = cls(level, list(messages), reveals, start_tick=state.tick)
        trace._keep(state)
        queue = [(level, counter, payload) for counter, payload in enumerate(messages)]
        while True:
            request = vm.input_request(state)
            if request.kind == "reveal":
                vm.reveal_step(state, reveals.answer(request.reveal))
            elif request.kind != "none":
                if not queue:
                    break
                vm.set_input(state, InputMessage(*queue.pop(0)))
            else:
                if state.tick_state is TickState.SNAPSHOT:
                    trace._keep(state)
                vm.compute(state, 1 if state.tick_state is TickState.SNAPSHOT else _until(state))
        trace.end_tick = state.tick
        return trace

    def _keep(self, state: PvmState) -> None:
        self.ticks.append(state.tick)
        self.trees.append(layout.state_tree(state))

    def state_at(self, tick: int) -> PvmState:
        """The state at ``tick`` (between the level's start and end, both included)."""
        if not self.start_tick <= tick <= self.end_tick:
            span = f"[{self.start_tick}, {self.end_tick}]"
            raise ValueError(f"tick {tick} is outside this level {span}")
        index = bisect.bisect_right(self.ticks, tick) - 1
        state = layout.load_state(self.trees[index])
        last = state.last_input
        consumed = last[1] if last is not None and last[0] == self.level else -1
        queue = [
            (self.level, counter, payload)
            for counter, payload in enumerate(self.messages)
            if counter > consumed
        ]
        driver.advance_to(state, tick, queue, self.reveals)
        return state

    def hash_at(self, tick: int) -> Hash:
        return layout.state_hash(self.state_at(tick))


def _until(state: PvmState) -> int:
    """Ticks to compute in one go: up to the boundary, so every Snapshot is seen."""
    return max(1, state.ticks_to_snapshot + 1)
