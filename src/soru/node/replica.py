"""What a rollup node computes from layer 1: its own copy of the shared inbox, and the PVM run
over every inbox level after the rollup's origination — kept so that it can give the state
hash at any tick, prove any tick, and prove any outbox message.

    add_level(level, timestamp, hash, payloads)   the inbox grows (checked against layer 1's
                                                  payloads); the PVM runs the level if the
                                                  rollup reads it
    state_at(tick) · hash_at(tick) · proof(tick, snapshot) · output_proof(level, l, i)

Ticks are the PVM's own (absolute, from the genesis state). The state before each level is
kept (a Merkle tree: structure shared, cheap); a level's inner ticks are replayed from its
snapshots (``soru.pvm.history.LevelTrace``) when a game asks for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from soru.base.errors import SoruError
from soru.base.hashes import Hash
from soru.merkle import Tree
from soru.protocol.inbox import Inbox
from soru.protocol.inbox_proof import InboxHistory
from soru.protocol.refutation_proof import Metadata, RawData, RefutationProof
from soru.pvm import driver, layout, vm
from soru.pvm.history import LevelTrace
from soru.pvm.proof import OutputProof, produce_output_proof, produce_proof
from soru.pvm.reveals import RevealProvider
from soru.pvm.state import PvmState


class ReplicaError(SoruError):
    """The node's copy disagrees with layer 1, or lacks what was asked."""


@dataclass(frozen=True, slots=True)
class LevelRun:
    """One inbox level the PVM ran: its messages, the ticks it spans, the states around."""

    level: int
    payloads: tuple[bytes, ...]
    start_tick: int
    end_tick: int
    before: Tree
    after: Tree


class Replica:
    """The inbox and the PVM of one rollup, as far as layer 1 has gone."""

    def __init__(
        self,
        boot_sector: bytes,
        origination_level: int,
        reveals: RevealProvider,
        *,
        ticks_per_kernel_run: int,
        version: str,
        engine: str = "wasmtime",
    ) -> None:
        self.origination_level, self.reveals, self.engine = origination_level, reveals, engine
        self.history, inbox = InboxHistory.from_genesis()
        self.inboxes: dict[int, Inbox] = {0: inbox}
        self.state = driver.originate(boot_sector, ticks_per_kernel_run=ticks_per_kernel_run,
                                      version=version)  # fmt: skip
        self.genesis = layout.state_tree(self.state)
        self.runs: dict[int, LevelRun] = {}
        self._traces: dict[int, LevelTrace] = {}

    @property
    def level(self) -> int:
        """The last inbox level added."""
        return max(self.inboxes)

    def add_level(
        self, level: int, timestamp: int, predecessor: bytes, payloads: list[bytes]
    ) -> None:
        """Layer 1's level ``level`` (its predecessor block's timestamp and hash, and the
        level's messages with their markers)."""
        if level != self.level + 1:
            raise ReplicaError(f"level {level} after level {self.level}")
        inbox = self.history.add_level(
            self.inboxes[self.level], predecessor_timestamp=timestamp,
            predecessor=predecessor, messages=payloads[2:-1],
        )  # fmt: skip
        found = self.history.find_level(level)
        if found is None or list(found.payloads) != payloads:
            raise ReplicaError(f"inbox level {level} does not rebuild as layer 1 has it")
        self.inboxes[level] = inbox
        if level > self.origination_level:
            self._run(level, tuple(payloads))

    def _run(self, level: int, payloads: tuple[bytes, ...]) -> None:
        last = self.runs.get(level - 1)  # the state is only changed by running levels
        before = self.genesis if last is None else last.after
        start = self.state.tick
        driver.run_level(self.state, level, list(payloads), self.reveals, engine=self.engine)
        after = layout.state_tree(self.state)
        self.runs[level] = LevelRun(level, payloads, start, self.state.tick, before, after)

    # --- looking back -----------------------------------------------------------------------

    def tick_after(self, level: int) -> int:
        """The PVM's tick once ``level`` is processed (the genesis tick for earlier levels)."""
        run = self.runs.get(level)
        if run is not None:
            return run.end_tick
        if level <= self.origination_level:
            return 0
        raise ReplicaError(f"level {level} is not processed yet")

    def state_after(self, level: int) -> Tree:
        run = self.runs.get(level)
        if run is not None:
            return run.after
        if level <= self.origination_level:
            return self.genesis
        raise ReplicaError(f"level {level} is not processed yet")

    def _trace(self, tick: int) -> LevelTrace:
        for run in self.runs.values():
            if run.start_tick <= tick <= run.end_tick:
                trace = self._traces.get(run.level)
                if trace is None:
                    state = layout.load_state(run.before)
                    trace = LevelTrace.run(state, run.level, list(run.payloads), self.reveals,
                                           engine=self.engine)  # fmt: skip
                    self._traces[run.level] = trace
                return trace
        raise ReplicaError(f"tick {tick} is in no processed level")

    def state_at(self, tick: int) -> PvmState:
        if tick == 0 and not self.runs:
            return layout.load_state(self.genesis)
        return self._trace(tick).state_at(tick)

    def hash_at(self, tick: int) -> Hash:
        return layout.state_hash(self.state_at(tick))

    def proof(self, tick: int, snapshot_level: int) -> RefutationProof:
        """The proof of the step from ``tick``, its input proven against the inbox as it
        was after ``snapshot_level`` (a game's snapshot)."""
        state = self.state_at(tick)
        request = vm.input_request(state)
        given: object = None
        message = reveal = None
        if request.kind in ("initial", "first_after"):
            snapshot = self.inboxes[snapshot_level].snapshot()
            given, message = self.history.produce_input_proof(
                snapshot, request, origination_level=self.origination_level
            )
        elif request.kind == "reveal":
            reveal = self.reveals.answer(request.reveal)
            given = Metadata() if request.reveal == b"\x01" else RawData(reveal)
        step, _ = produce_proof(layout.state_tree(state), message=message, reveal=reveal)
        return RefutationProof(step, given)  # type: ignore[arg-type]

    def output_proof(self, commitment_level: int, level: int, index: int) -> OutputProof:
        """Proof that outbox message ``index`` of ``level`` is in the state of the commitment
        of ``commitment_level``."""
        return produce_output_proof(self.state_after(commitment_level), level, index)

    def outbox(self, level: int) -> list[bytes]:
        """The messages the kernel wrote at ``level``."""
        run = self.runs.get(level)
        if run is None:
            return []
        state = layout.load_state(run.after)
        return list(state.outboxes.get(level, ()))
