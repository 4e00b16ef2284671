"""The rollup node: follows layer 1 over its RPC and does, at each new head, what an operator
of a Tezos rollup node in "operator" mode does (``../shared/SORU-SPEC.md`` §8):

    follow     add every new inbox level to the replica (the PVM runs it)
    commit     publish a commitment for every commitment period it has processed
    cement     cement the next commitment once its challenge window is over
    refute     start a game against each staker of a conflicting commitment, and play its
               turn in every game: dissect the first section it disagrees with, or prove
               the one-tick section; claim a timeout when the opponent's clock ran out
    execute    execute the outbox messages of cemented levels (withdrawals)

A single honest node always wins its games (``soru.protocol.game``): it only ever states
hashes it computed. :class:`LoserMode` makes a node lie from a tick of a level on — for tests
and the demo, as Octez's ``--loser-mode`` does.

Each :meth:`RollupNode.step` reads the head, catches up, and injects what it has to; it
remembers what it injected so that it does not repeat an operation before layer 1 answers,
and tries again one that failed.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soru.base.hashes import Hash
from soru.crypto.addresses import PublicKeyHash, RollupAddress
from soru.crypto.keys import SecretKey
from soru.l1 import operations as ops
from soru.l1.client import RpcClient, RpcError
from soru.node.replica import Replica
from soru.protocol import game as games
from soru.protocol.commitment import Commitment, CommitmentHash
from soru.protocol.constants import RollupConstants
from soru.protocol.dissection import Chunk, first_disagreement, new_dissection
from soru.protocol.refutation import Start
from soru.pvm.reveals import RevealProvider

MAX_TRIES = 3
"""How many times the node sends an operation that layer 1 refused before giving up."""


@dataclass(frozen=True, slots=True)
class LoserMode:
    """Lie about every state from ``tick`` ticks into the processing of inbox ``level`` on."""

    level: int
    tick: int


class RollupNode:
    """An operator node of rollup ``rollup`` that signs with ``operator``."""

    def __init__(self, client: RpcClient, rollup: str, operator: SecretKey,
                 constants: RollupConstants, *, version: str, preimages: Any = None,
                 loser: LoserMode | None = None, log: Any = None) -> None:  # fmt: skip
        self.client, self.rollup, self.operator = client, rollup, operator
        self.address = RollupAddress.of_b58(rollup)
        self.me = str(operator.public_key().hash())
        self.constants, self.loser, self.log = constants, loser, log or (lambda _m: None)
        view = client.rollup(rollup)
        self.origination_level = view["origination_level"]
        directory = None if preimages is None else Path(preimages)
        reveals = RevealProvider(directory, self.address.digest, self.origination_level)
        self.replica = Replica(client.boot_sector(rollup), self.origination_level, reveals,
                               ticks_per_kernel_run=constants.ticks_per_snapshot,
                               version=version)  # fmt: skip
        self.published: dict[int, CommitmentHash] = {}
        self.pending: dict[tuple, str] = {}
        self.done: set[tuple] = set()
        self.failures: dict[tuple, int] = {}
        self.to_execute: set[tuple[int, int]] = set()  # (level, index) of cemented outboxes
        self.outbox_scanned = self.origination_level  # levels whose outbox was looked at
        self.counter = -1
        self.lock = threading.RLock()
        """Held by :meth:`step` and by the node's RPC server (``soru.node.rpc``) while it
        reads: an answer never sees a half-made step."""

    # --- the loop -------------------------------------------------------------------------

    def step(self) -> None:
        """Catch up with layer 1's head and act (holding :attr:`lock`)."""
        with self.lock:
            self._step()

    def _step(self) -> None:
        head = self.client.header()["level"]
        while self.replica.level < head:
            level = self.replica.level + 1
            found = self.client.inbox_level(level)
            self.replica.add_level(level, found["predecessor_timestamp"],
                                   bytes.fromhex(found["predecessor"]),
                                   [bytes.fromhex(m) for m in found["messages"]])  # fmt: skip
        self._settle()
        view = self.client.rollup(self.rollup)
        self._commit(head, view)
        self._cement(head, view)
        self._refute(head, view)
        self._play(head, view)
        self._execute(view)

    def _inject(self, key: tuple, content: ops.Content, what: str) -> None:
        """Sign and inject ``content`` for ``key`` — unless an operation for ``key`` is
        waiting for its block or was applied (a failed one may be tried again)."""
        if key in self.pending or key in self.done or self.failures.get(key, 0) >= MAX_TRIES:
            return
        chain_counter = self.client.contract(self.me)["counter"]
        self.counter = max(self.counter, chain_counter) + 1
        try:
            self.pending[key] = self.client.sign_and_inject(self.operator, content, self.counter)
        except RpcError as error:
            self.log(f"injection of {key[0]} refused: {error}")
            self.counter = chain_counter
            return
        self.log(f"injected: {what}")

    def _settle(self) -> None:
        """Learn what became of the operations injected so far."""
        for key, operation in list(self.pending.items()):
            try:
                receipt = self.client.receipt(operation)
            except RpcError as error:
                if error.status == 404:
                    continue  # not in a block yet
                raise
            del self.pending[key]
            if receipt["status"] == "applied":
                self.done.add(key)
            else:
                self.failures[key] = self.failures.get(key, 0) + 1
                self.log(f"{key[0]} {receipt['status']}: {receipt['error']}")
                self.counter = -1  # resynchronise with layer 1's counter

    # --- hashes: honest, or lying ----------------------------------------------------------

    def _hash(self, tick: int) -> Hash:
        """The state hash this node claims at PVM tick ``tick``."""
        if self.loser is not None:
            run = self.replica.runs.get(self.loser.level)
            if run is not None and tick >= run.start_tick + self.loser.tick:
                return Hash(hashlib.blake2b(b"soru loser %d" % tick, digest_size=32).digest())
        return self.replica.hash_at(tick)

    def _commitment(self, level: int, predecessor: CommitmentHash) -> Commitment:
        previous = level - self.constants.commitment_period
        start, end = self.replica.tick_after(previous), self.replica.tick_after(level)
        return Commitment(self._hash(end), level, predecessor, end - start)

    # --- commit, cement ---------------------------------------------------------------------

    def _commit(self, head: int, view: dict) -> None:
        for digest, stored in view["commitments"].items():  # ours, even from before a restart
            if self.me in stored["stakers"]:
                self.published.setdefault(stored["inbox_level"], CommitmentHash.of_b58(digest))
        lcc = view["last_cemented_commitment"]
        predecessor = CommitmentHash.of_b58(lcc["hash"])
        level = lcc["inbox_level"] + self.constants.commitment_period
        for known_level, digest in sorted(self.published.items()):
            if known_level >= level:
                predecessor, level = digest, known_level + self.constants.commitment_period
        while level <= self.replica.level and level < head:
            commitment = self._commitment(level, predecessor)
            digest = commitment.hash()
            what = f"commitment {digest.to_b58()[:12]}… for inbox level {level}"
            self._inject(("publish", level), ops.Publish(self.address, commitment), what)
            self.published[level] = digest
            predecessor, level = digest, level + self.constants.commitment_period

    def _cement(self, head: int, view: dict) -> None:
        lcc = view["last_cemented_commitment"]
        level = lcc["inbox_level"] + self.constants.commitment_period
        candidates = [c for c in view["commitments"].values()
                      if c["inbox_level"] == level and c["predecessor"] == lcc["hash"]
                      and c["stakers"]]  # fmt: skip
        if len(candidates) == 1:
            if candidates[0]["added_level"] + self.constants.challenge_window <= head + 1:
                what = f"cement the commitment of inbox level {level}"
                self._inject(("cement", level), ops.Cement(self.address), what)

    # --- refute ----------------------------------------------------------------------------

    def _refute(self, head: int, view: dict) -> None:
        """Start a game against each staker of a commitment that conflicts with one of ours,
        once layer 1 allows it (a commitment period after the disputed level)."""
        playing = {(g["alice"], g["bob"]) for g in view["games"]}
        ours = {digest.to_b58() for digest in self.published.values()}
        mine = {d: c for d, c in view["commitments"].items() if d in ours}
        for digest, commitment in view["commitments"].items():
            for own, own_commitment in mine.items():
                conflict = (commitment["inbox_level"] == own_commitment["inbox_level"]
                            and commitment["predecessor"] == own_commitment["predecessor"]
                            and digest != own)  # fmt: skip
                if not conflict or self.me not in own_commitment["stakers"]:
                    continue
                if head + 1 < commitment["inbox_level"] + self.constants.commitment_period:
                    continue
                for staker in commitment["stakers"]:
                    if staker != self.me and games.game_key(self.me, staker) not in playing:
                        start = Start(CommitmentHash.of_b58(own), CommitmentHash.of_b58(digest))
                        refute = ops.Refute(self.address, PublicKeyHash.of_b58(staker), start)
                        what = f"start a refutation game against {staker}"
                        self._inject(("start", staker, own), refute, what)

    def _play(self, head: int, view: dict) -> None:
        for game in view["games"]:
            if self.me not in (game["alice"], game["bob"]):
                continue
            opponent = game["bob"] if game["alice"] == self.me else game["alice"]
            if game["turn"] != self.me:
                clocks = game["clocks"]
                left = clocks[0] if game["turn"] == game["alice"] else clocks[1]
                if head + 1 > clocks[2] + left:
                    timeout = ops.Timeout(self.address, PublicKeyHash.of_b58(game["alice"]),
                                          PublicKeyHash.of_b58(game["bob"]))  # fmt: skip
                    what = f"claim the timeout of {opponent}"
                    self._inject(("timeout", opponent, clocks[2]), timeout, what)
                continue
            move = self._move(game)
            key = ("move", opponent, game["start_level"], repr(game["state"]))
            refute = ops.Refute(self.address, PublicKeyHash.of_b58(opponent), move)
            self._inject(key, refute, _describe(move))

    def _game_ticks(self, game: dict) -> tuple[int, int]:
        """(the PVM tick of the game's tick 0, the ticks our commitment claims)."""
        level = game["inbox_level"]
        base = self.replica.tick_after(level - self.constants.commitment_period)
        return base, self.replica.tick_after(level) - base

    def _move(self, game: dict) -> games.Move:
        base, ticks = self._game_ticks(game)

        def claim(tick: int) -> Hash | None:
            return None if tick > ticks else self._hash(base + tick)

        snapshot_level = game["start_level"] - 1
        state = game["state"]
        if "final_move" in state:
            tick = state["final_move"][0]
            return games.Prove(tick, self.replica.proof(base + tick, snapshot_level))
        dissection = [Chunk(None if h is None else Hash(bytes.fromhex(h)), t)
                      for h, t in state["dissecting"]]  # fmt: skip
        start, stop = first_disagreement(dissection, claim)
        if stop.tick - start.tick == 1:
            return games.Prove(start.tick, self.replica.proof(base + start.tick, snapshot_level))
        chunks = new_dissection(start, stop.tick, claim, self.constants.number_of_sections,
                                self.constants.ticks_per_snapshot)  # fmt: skip
        return games.Dissect(start.tick, tuple(chunks))

    # --- execute -----------------------------------------------------------------------------

    def _execute(self, view: dict) -> None:
        """Execute every outbox message of the cemented levels this node wrote down."""
        lcc = view["last_cemented_commitment"]
        lcc_level = lcc["inbox_level"]
        if (
            lcc_level <= self.origination_level
            or lcc["hash"] != self.published.get(lcc_level, CommitmentHash(bytes(32))).to_b58()
        ):
            return
        for level in range(self.outbox_scanned + 1, lcc_level + 1):  # each level once
            self.to_execute.update((level, i) for i in range(len(self.replica.outbox(level))))
        self.outbox_scanned = max(self.outbox_scanned, lcc_level)
        for level, index in sorted(self.to_execute):
            key = ("execute", level, index)
            if key in self.done or self.failures.get(key, 0) >= MAX_TRIES:
                self.to_execute.discard((level, index))
                continue
            if key in self.pending:
                continue
            proof = self.replica.output_proof(lcc_level, level, index).encode()
            cemented = CommitmentHash.of_b58(lcc["hash"])
            execute = ops.ExecuteOutboxMessage(self.address, cemented, proof)
            what = f"execute outbox message {index} of level {level}"
            self._inject(key, execute, what)


def _describe(move: games.Move) -> str:
    if isinstance(move, games.Prove):
        return f"move: prove the step from tick {move.choice} ({len(move.proof.encode())} bytes)"
    first, last = move.dissection[0].tick, move.dissection[-1].tick
    sections = len(move.dissection) - 1
    return f"move: cut ticks {first:,}..{last:,} into {sections} sections"
