"""The rollup parameters of a network (``../shared/SORU-SPEC.md`` §1.1, §1.3): how often
commitments are made, how long they can be challenged, the stake, the game's limits.

Block-counted values follow the Mumbai–Oxford era (15 s blocks) in :data:`MAINNET`; the
:data:`SANDBOX` profile shrinks the windows so that a whole lifecycle — publish, challenge,
refute, cement, withdraw — runs in seconds on a local chain. Every value is a parameter of
the network: tests and the sandbox build their own with :func:`dataclasses.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass

from soru.protocol.errors import ProtocolError
from soru.pvm import constants as pvm

MUTEZ_PER_TEZ = 1_000_000


class InvalidConstants(ProtocolError):
    """A parameter set that breaks a constraint of ``constants_repr.check_constants``."""


@dataclass(frozen=True, slots=True)
class RollupConstants:
    """The ``sc_rollup`` parametric constants soru uses (names without their ``_in_blocks``
    suffix: every period is counted in layer-1 blocks; amounts in mutez)."""

    commitment_period: int = 60
    challenge_window: int = 80_640
    timeout_period: int = 40_320
    """Blocks on each player's clock in a refutation game."""
    max_lookahead: int = 172_800
    max_active_outbox_levels: int = 80_640
    stake_amount: int = 10_000 * MUTEZ_PER_TEZ
    number_of_sections: int = 32
    max_outbox_messages_per_level: int = 100
    max_stored_cemented_commitments: int = 5
    max_parallel_games: int = 32
    """Ongoing games one staker may play at once."""
    ticks_per_snapshot: int = pvm.TICKS_PER_KERNEL_RUN

    def check(self) -> RollupConstants:
        """``self`` if it satisfies ``check_constants`` (and soru's own positivity needs)."""
        if self.commitment_period <= 0:
            raise InvalidConstants("the commitment period must be positive")
        for name in ("challenge_window", "stake_amount", "timeout_period"):
            if getattr(self, name) < 0:
                raise InvalidConstants(f"{name} must not be negative")
        if self.max_lookahead <= self.commitment_period:
            raise InvalidConstants("max_lookahead must exceed the commitment period")
        if self.max_lookahead <= self.challenge_window:
            raise InvalidConstants("max_lookahead must exceed the challenge window")
        if self.max_stored_cemented_commitments <= 0:
            raise InvalidConstants("at least one cemented commitment must be stored")
        if self.number_of_sections < 2 or self.max_parallel_games <= 0:
            raise InvalidConstants("a game needs at least 2 sections and 1 parallel game")
        if self.ticks_per_snapshot <= 0:
            raise InvalidConstants("ticks_per_snapshot must be positive")
        return self


MAINNET = RollupConstants().check()
"""Mumbai–Oxford values: 60-block commitment period, 80,640-block challenge window, 40,320
blocks per player clock, 172,800 lookahead, 10,000 tez stake, 32 sections."""

SANDBOX = RollupConstants(
    commitment_period=60,
    challenge_window=120,
    timeout_period=300,
    max_lookahead=1_000,
    max_active_outbox_levels=240,
).check()
"""A local chain's: commitments every 60 blocks as on mainnet, but a 120-block challenge
window so that cementing comes within seconds, and 300-block clocks — long enough for a node
on a loaded machine to compute its move at a block every 0.1 s, short enough to see a
timeout."""
