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
from soru.pvm import driver, layout
from soru.pvm.reveals import RevealProvider
from soru.pvm.state import PvmState


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
        cls,
        state: PvmState,
        level: int,
        messages: list[bytes],
        reveals: RevealProvider,
        *,
        engine: str = "interpreter",
    ) -> LevelTrace:
        """Run ``messages`` (a whole level, markers included) on ``state`` as
        ``driver.run_level`` does, keeping a snapshot at the start of every top-level call."""
        trace = cls(level, list(messages), reveals, start_tick=state.tick)
        trace._keep(state)
        driver.run_level(
            state, level, trace.messages, reveals, engine=engine, on_snapshot=trace._keep
        )
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
