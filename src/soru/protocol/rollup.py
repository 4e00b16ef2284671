"""A smart rollup as layer 1 keeps it, and the rollup operations applied to it
(``../shared/SORU-SPEC.md`` §1.5, §4, §7): one immutable :class:`Rollup` value per rollup,
and one function per operation that validates it completely, then returns the new value
with what layer 1 must do besides (bond movements, the outbox message to carry out).

    originate ─▶ Rollup (genesis commitment = LCC)
    publish_commitment · cement · recover_bond          (``staking``)
    refute: start a game · move (dissection, proof)    (``game``, ``refutation``)
    timeout                                             (``game``)
    execute_outbox_message                              (``outbox``)

The inbox is not here: layer 1 keeps one inbox for every rollup and passes its current
head (``inbox_snapshot``) to the operation that starts a game. Balances are not here
either: the rules read the balance they are given and return
:data:`~soru.protocol.staking.Effect` s. A refused operation raises a
:class:`~soru.protocol.errors.ProtocolError` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from soru.base.hashes import Hash
from soru.crypto.addresses import PublicKeyHash, RollupAddress
from soru.encoding.micheline import Node
from soru.protocol import game as games
from soru.protocol import outbox, staking
from soru.protocol.commitment import Commitment, CommitmentHash
from soru.protocol.constants import RollupConstants
from soru.protocol.errors import ProtocolError
from soru.protocol.inbox import HistoryCell
from soru.protocol.origination import (
    Origination,
    PvmKind,
    check_whitelist,
    genesis,
    rollup_address,
)
from soru.protocol.refutation import Refutation, Start
from soru.pvm.proof import OutputProof


class StakerNotInWhitelist(ProtocolError):
    """A key outside a private rollup's whitelist publishes or plays
    (``Sc_rollup_staker_not_in_whitelist``)."""


class RollupIsPublic(ProtocolError):
    """A whitelist update for a rollup made public for good (``Sc_rollup_is_public``)."""


class OutdatedWhitelistUpdate(ProtocolError):
    """A whitelist update not newer than the last applied one
    (``Sc_rollup_outdated_whitelist_update``)."""


@dataclass(frozen=True, slots=True)
class Rollup:
    """Everything layer 1 knows of one rollup: its identity and parameters, its commitments
    and stakes, the games being played, the outbox messages executed, its whitelist."""

    address: RollupAddress
    kind: PvmKind
    origination_level: int
    parameters_type: Node
    genesis_hash: CommitmentHash
    constants: RollupConstants
    stakes: staking.Stakes
    games: Mapping[games.GameKey, games.Game]
    applied: outbox.AppliedOutputs
    whitelist: tuple[PublicKeyHash, ...] | None = None
    last_whitelist_update: tuple[int, int] | None = None
    """(outbox level, index) of the last whitelist update applied."""
    boot_sector: bytes = b""
    """The kernel it was originated with (what a rollup node starts its PVM from)."""

    @property
    def metadata(self) -> bytes:
        """What a metadata reveal returns: the address ‖ the origination level (int32)."""
        return bytes(self.address.digest) + self.origination_level.to_bytes(4, "big")


def _games(mapping: Mapping[games.GameKey, games.Game]) -> Mapping[games.GameKey, games.Game]:
    return MappingProxyType(dict(mapping))


def originate(
    origination: Origination,
    *,
    operation_hash: bytes,
    index: int,
    level: int,
    constants: RollupConstants,
    version: str,
) -> Rollup:
    """The rollup that ``origination`` (number ``index`` in the operation of
    ``operation_hash``, included at ``level``) creates; ``constants.ticks_per_snapshot`` is
    the ticks of its kernel runs."""
    _, first = genesis(
        origination, level, ticks_per_kernel_run=constants.ticks_per_snapshot, version=version
    )
    return Rollup(
        address=rollup_address(operation_hash, index),
        kind=origination.kind,
        origination_level=level,
        parameters_type=origination.parameters_type,
        genesis_hash=first.hash(),
        constants=constants,
        stakes=staking.originate(first),
        games=_games({}),
        applied=outbox.AppliedOutputs(),
        whitelist=origination.whitelist,
        boot_sector=origination.kernel,
    )


def _check_whitelisted(rollup: Rollup, staker: str) -> None:
    if rollup.whitelist is not None and staker not in {str(k) for k in rollup.whitelist}:
        raise StakerNotInWhitelist(f"{staker} is not in the whitelist of {rollup.address}")


def publish_commitment(
    rollup: Rollup, staker: str, commitment: Commitment, *, level: int, balance: int
) -> tuple[Rollup, CommitmentHash, tuple[staking.Effect, ...]]:
    """``smart_rollup_publish``: the rollup after ``staker`` published ``commitment``, its
    hash, and the bond frozen for a new staker."""
    _check_whitelisted(rollup, staker)
    stakes, effects = staking.publish_commitment(
        rollup.stakes, rollup.constants, staker, commitment, level, balance
    )
    return replace(rollup, stakes=stakes), commitment.hash(), effects


def cement(rollup: Rollup, *, level: int) -> tuple[Rollup, CommitmentHash]:
    """``smart_rollup_cement``: the rollup with its next commitment cemented."""
    stakes, cemented = staking.cement(rollup.stakes, rollup.constants, level)
    return replace(rollup, stakes=stakes), cemented


def recover_bond(rollup: Rollup, staker: str) -> tuple[Rollup, tuple[staking.Effect, ...]]:
    """``smart_rollup_recover_bond`` (anyone may send it for ``staker``)."""
    stakes, effects = staking.recover_bond(rollup.stakes, staker)
    return replace(rollup, stakes=stakes), effects


def _ended(
    rollup: Rollup, game: games.Game, result: games.Result
) -> tuple[Rollup, tuple[staking.Effect, ...]]:
    """The rollup after ``game`` ended with ``result``: the game removed, the stakes paid."""
    stakes, effects = games.apply_result(rollup.stakes, rollup.constants, game, result)
    left = {key: g for key, g in rollup.games.items() if key != (game.alice, game.bob)}
    return replace(rollup, stakes=stakes, games=_games(left)), effects


Outcome = tuple[Rollup, games.Result | None, tuple[staking.Effect, ...]]
"""What a refutation or a timeout leaves: the rollup, how the game ended (None: it goes
on), and the bond movements of its end."""


def refute(
    rollup: Rollup,
    player: str,
    opponent: str,
    refutation: Refutation,
    *,
    level: int,
    inbox_snapshot: HistoryCell,
) -> Outcome:
    """``smart_rollup_refute``: ``player`` starts a game against ``opponent``
    (``inbox_snapshot`` is the inbox's current head) or moves in their game."""
    _check_whitelisted(rollup, player)
    if isinstance(refutation, Start):
        game = games.start_game(
            rollup.stakes, rollup.constants, rollup.games,
            refuter=player, defender=opponent,
            refuter_commitment=refutation.player_commitment,
            defender_commitment=refutation.opponent_commitment,
            current_level=level, inbox_snapshot=inbox_snapshot,
        )  # fmt: skip
        key = (game.alice, game.bob)
        return replace(rollup, games=_games({**rollup.games, key: game})), None, ()
    key = games.game_key(player, opponent)
    current = rollup.games.get(key)
    if current is None:
        raise games.NoGame(f"no game between {player} and {opponent}")
    after = games.play(
        current, rollup.stakes, rollup.constants, mover=player, move=refutation,
        current_level=level, origination_level=rollup.origination_level,
        metadata=rollup.metadata,
    )  # fmt: skip
    if isinstance(after, games.Game):
        return replace(rollup, games=_games({**rollup.games, key: after})), None, ()
    ended, effects = _ended(rollup, current, after)
    return ended, after, effects


def timeout(rollup: Rollup, a: str, b: str, *, level: int) -> Outcome:
    """``smart_rollup_timeout`` (anyone may send it): the game of ``a`` and ``b`` ends
    because the player to move let its clock run out."""
    current = rollup.games.get(games.game_key(a, b))
    if current is None:
        raise games.NoGame(f"no game between {a} and {b}")
    result = games.timeout(current, level)
    ended, effects = _ended(rollup, current, result)
    return ended, result, effects


def execute_outbox_message(
    rollup: Rollup, cemented_commitment: Hash, output_proof: OutputProof | bytes
) -> tuple[Rollup, outbox.OutboxMessage]:
    """``smart_rollup_execute_outbox_message`` (anyone may send it): the rollup with the
    message marked executed, and the message for layer 1 to carry out — its transactions,
    or (done here) a whitelist update."""
    applied, message, out_level, index = outbox.execute_outbox_message(
        rollup.stakes, rollup.constants, rollup.applied, cemented_commitment, output_proof
    )
    after = replace(rollup, applied=applied)
    if isinstance(message, outbox.WhitelistUpdate):
        after = _update_whitelist(after, message, (out_level, index))
    return after, message


def _update_whitelist(
    rollup: Rollup, update: outbox.WhitelistUpdate, position: tuple[int, int]
) -> Rollup:
    """A whitelist update (§1.5): a list replaces the whitelist, none makes the rollup
    public for good; updates apply in (outbox level, index) order."""
    if rollup.whitelist is None:
        raise RollupIsPublic(f"{rollup.address} is public: its whitelist cannot change")
    if rollup.last_whitelist_update is not None and position <= rollup.last_whitelist_update:
        raise OutdatedWhitelistUpdate(f"a whitelist update at {position} is not the newest")
    if update.whitelist is not None:
        check_whitelist(update.whitelist)
    return replace(rollup, whitelist=update.whitelist, last_whitelist_update=position)
