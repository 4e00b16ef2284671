"""A rollup's commitments and stakes (``../shared/SORU-SPEC.md`` §4.1–§4.3, §4.8), as pure
rules over an immutable :class:`Stakes` value.

Stakers publish :class:`~soru.protocol.commitment.Commitment` s, one per commitment period,
each extending a previous one back to the **last cemented commitment** (LCC). Anyone may
dispute a commitment by a refutation game (``soru.protocol.game``) while its challenge window
is open; once it is over and no conflict is left, anyone may **cement** the commitment: it
becomes the LCC, final.

A commitment at inbox level ``L`` (always ``LCC level + k · commitment_period``)::

    published ──cement: its predecessor is the LCC, it is the only such commitment of L
      │          with an active backer, challenge_window blocks passed since it was
      │          first published──────────────────────────────────▶ cemented (the LCC)
      ├─ all its backers lost games ─▶ inactive: never a candidate; deleted when L is cemented
      └─ another commitment of L is cemented ─▶ dangling: deleted with its metadata
    cemented ──max_stored_cemented_commitments newer ones cemented──▶ contents deleted

A staker (an account key such as ``tz1…``) and its bond::

    none ──first publish: Freeze(stake)──▶ staker (index i, last staked level)
    staker ──publish again: no new bond (one bond covers all its commitments)──▶ staker
    staker ──recover_bond, its last staked level ≤ LCC level: Unfreeze(bond)──▶ none
    staker ──loses a game: Burn(bond), Reward(winner, stake // 2)──▶ none
    staker ──draw: Burn(bond)──▶ none

A loser's commitments are not deleted: backers are recorded by **staker index**, and the
loser's index is gone, so they no longer count as backed (a key that stakes again gets a fresh
index). They can never be cemented, and neither can their successors backed by nobody else.

Every rule validates completely, then builds a **new** :class:`Stakes` (the old value is
never changed) and returns the bond movements as :data:`Effect` s, which layer 1 applies to
balances; the rules only read the ``balance`` they are given. Errors are
:class:`~soru.protocol.errors.ProtocolError` subclasses named after the Octez errors (id in
each docstring). Whitelists of private rollups are checked by the caller, not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from types import MappingProxyType
from typing import TypeVar

from soru.base.hashes import Hash
from soru.protocol.commitment import Commitment, CommitmentHash, next_commitment_level
from soru.protocol.constants import RollupConstants
from soru.protocol.errors import ProtocolError

# --- errors ------------------------------------------------------------------------------


class ZeroTickCommitment(ProtocolError):
    """A commitment of 0 ticks (Octez ``Sc_rollup_zero_tick_commitment``)."""


class StakerFundsTooLow(ProtocolError):
    """A new staker's balance is below the stake (Octez ``Sc_rollup_staker_funds_too_low``)."""


class CommitmentTooOld(ProtocolError):
    """A commitment not after the LCC (Octez ``Sc_rollup_commitment_too_old``)."""


class TooFarAhead(ProtocolError):
    """A commitment more than ``max_lookahead`` levels after the LCC
    (Octez ``Sc_rollup_too_far_ahead``)."""


class UnknownCommitment(ProtocolError):
    """A commitment hash with no stored contents (Octez ``Sc_rollup_unknown_commitment``)."""


class BadInboxLevel(ProtocolError):
    """A commitment not one period after its predecessor (Octez ``Sc_rollup_bad_inbox_level``)."""


class CommitmentPastCurfew(ProtocolError):
    """A commitment for an inbox level whose first commitment was published more than a
    challenge window ago (Octez ``Sc_rollup_commitment_past_curfew``)."""


class CommitmentFromFuture(ProtocolError):
    """A commitment whose inbox level is not before the current level
    (Octez ``Sc_rollup_commitment_from_future``)."""


class DoublePublish(ProtocolError):
    """A staker publishing a commitment it already backs (Octez ``Sc_rollup_double_publish``)."""


class StakerDoubleStake(ProtocolError):
    """A staker backing two different commitments of one inbox level
    (Octez ``Sc_rollup_staker_double_stake``)."""


class Disputed(ProtocolError):
    """Two commitments of the next level are candidates for cementation
    (Octez ``Sc_rollup_disputed``)."""


class NoValidCommitmentToCement(ProtocolError):
    """No commitment of the next level extends the LCC with an active backer
    (Octez ``Sc_rollup_no_valid_commitment_to_cement``)."""


class CommitmentTooRecent(ProtocolError):
    """The candidate's challenge window is not over (Octez ``Sc_rollup_commitment_too_recent``)."""


class NotStaked(ProtocolError):
    """An account that is not a staker of the rollup (Octez ``Sc_rollup_not_staked``)."""


class NotStakedOnLccOrAncestor(ProtocolError):
    """A bond recovered while the staker backs a commitment after the LCC
    (Octez ``Sc_rollup_not_staked_on_lcc_or_ancestor``)."""


# --- effects -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Freeze:
    """Move ``amount`` mutez from ``staker``'s balance into its rollup bond."""

    staker: str
    amount: int


@dataclass(frozen=True, slots=True)
class Unfreeze:
    """Give ``staker``'s bond of ``amount`` mutez back to its balance."""

    staker: str
    amount: int


@dataclass(frozen=True, slots=True)
class Burn:
    """Destroy ``staker``'s bond of ``amount`` mutez (it lost a game)."""

    staker: str
    amount: int


@dataclass(frozen=True, slots=True)
class Reward:
    """Mint ``amount`` mutez to ``staker``'s balance (it won a game)."""

    staker: str
    amount: int


Effect = Freeze | Unfreeze | Burn | Reward
"""A bond movement a rule asks layer 1 to apply."""


# --- the value ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StakerInfo:
    """What the rollup knows of one staker."""

    index: int
    """Its staker index, fresh for each new bond (backings are recorded by index)."""
    last_staked_level: int
    """The highest inbox level of a commitment it backs (its bond is locked until cemented)."""
    bond: int
    """The mutez frozen when it became a staker."""


@dataclass(frozen=True, slots=True)
class Stakes:
    """Everything layer 1 keeps about a rollup's commitments and stakers. The mappings are
    read-only views of dictionaries private to this value (made in ``__post_init__``)."""

    lcc_hash: CommitmentHash
    """The last cemented commitment."""
    lcc_level: int
    """Its inbox level."""
    cemented: tuple[CommitmentHash, ...]
    """The recently cemented commitments whose contents are kept, oldest first, the LCC last
    (at most ``max_stored_cemented_commitments``)."""
    commitments: Mapping[CommitmentHash, Commitment]
    """Stored contents: published, not yet cemented or deleted, and the recently cemented."""
    added_levels: Mapping[CommitmentHash, int]
    """The level at which each uncemented commitment was first published."""
    first_publication_levels: Mapping[int, int]
    """Per uncemented inbox level, when its first commitment was published (the curfew)."""
    stakers: Mapping[str, StakerInfo]
    """The active stakers by account key."""
    next_staker_index: int
    """The index the next new staker gets."""
    backers: Mapping[CommitmentHash, frozenset[int]]
    """The indices of the stakers who published each uncemented commitment (active or not)."""
    commitments_per_level: Mapping[int, tuple[CommitmentHash, ...]]
    """The uncemented commitments of each inbox level, in publication order."""

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Mapping):
                object.__setattr__(self, field.name, MappingProxyType(dict(value)))
        object.__setattr__(self, "lcc_hash", CommitmentHash(self.lcc_hash))
        object.__setattr__(self, "cemented", tuple(self.cemented))


_K = TypeVar("_K")
_V = TypeVar("_V")


def _with(mapping: Mapping[_K, _V], key: _K, value: _V) -> dict[_K, _V]:
    return {**mapping, key: value}


def _without(mapping: Mapping[_K, _V], keys: Iterable[_K]) -> dict[_K, _V]:
    dropped = set(keys)
    return {key: value for key, value in mapping.items() if key not in dropped}


# --- queries -----------------------------------------------------------------------------


def lcc(stakes: Stakes) -> tuple[CommitmentHash, int]:
    """The last cemented commitment's hash and inbox level."""
    return stakes.lcc_hash, stakes.lcc_level


def find_commitment(stakes: Stakes, commitment: Hash) -> Commitment | None:
    """The stored contents of ``commitment``, or None."""
    return stakes.commitments.get(CommitmentHash(commitment))


def get_commitment(stakes: Stakes, commitment: Hash) -> Commitment:
    """The stored contents of ``commitment``; raises :class:`UnknownCommitment`."""
    found = find_commitment(stakes, commitment)
    if found is None:
        raise UnknownCommitment(f"no commitment {CommitmentHash(commitment)} is stored")
    return found


def is_staker(stakes: Stakes, staker: str) -> bool:
    """Whether ``staker`` has a bond in the rollup."""
    return staker in stakes.stakers


def staked_on(stakes: Stakes, staker: str, commitment: Hash) -> bool:
    """Whether ``staker`` is a staker and, with its current bond, published ``commitment``."""
    info = stakes.stakers.get(staker)
    return info is not None and info.index in stakes.backers.get(CommitmentHash(commitment), ())


def active_backers(stakes: Stakes, commitment: Hash) -> tuple[str, ...]:
    """The stakers still holding the bond with which they published ``commitment``, in the
    order they became stakers."""
    indices = stakes.backers.get(CommitmentHash(commitment), frozenset())
    backing = [(info.index, key) for key, info in stakes.stakers.items() if info.index in indices]
    return tuple(key for _, key in sorted(backing))


# --- origination -------------------------------------------------------------------------


def originate(genesis: Commitment) -> Stakes:
    """The stakes of a new rollup: ``genesis`` is the LCC, there is no staker."""
    digest = genesis.hash()
    return Stakes(
        lcc_hash=digest,
        lcc_level=genesis.inbox_level,
        cemented=(digest,),
        commitments={digest: genesis},
        added_levels={},
        first_publication_levels={},
        stakers={},
        next_staker_index=0,
        backers={},
        commitments_per_level={},
    )


# --- publishing (§4.1) -------------------------------------------------------------------


def publish_commitment(
    stakes: Stakes,
    constants: RollupConstants,
    staker: str,
    commitment: Commitment,
    current_level: int,
    balance: int,
) -> tuple[Stakes, tuple[Effect, ...]]:
    """``staker`` publishes ``commitment`` at block ``current_level``, having ``balance``
    mutez; a first commitment freezes ``constants.stake_amount`` (:class:`Freeze`).

    Checks, in Octez's order: ticks ≠ 0; funds for a new staker; after the LCC, within the
    lookahead; a stored predecessor one period before; the curfew; not from the future;
    not already published by this staker, and no other commitment of the level backed.
    """
    if commitment.number_of_ticks == 0:
        raise ZeroTickCommitment("a commitment must cover at least one tick")
    info = stakes.stakers.get(staker)
    if info is None and balance < constants.stake_amount:
        raise StakerFundsTooLow(
            f"{staker} has {balance} mutez, a stake needs {constants.stake_amount}"
        )
    _check_refinement(stakes, constants, commitment, current_level)
    digest = commitment.hash()
    effects: tuple[Effect, ...] = ()
    if info is None:
        info = StakerInfo(stakes.next_staker_index, commitment.inbox_level, constants.stake_amount)
        effects = (Freeze(staker, constants.stake_amount),)
    _check_backing(stakes, info.index, digest, commitment.inbox_level)
    return _record(stakes, staker, info, commitment, digest, current_level), effects


def _check_refinement(
    stakes: Stakes, constants: RollupConstants, commitment: Commitment, current_level: int
) -> None:
    """Steps 4–8 of §4.1 (Octez ``assert_refine_conditions_met``)."""
    level = commitment.inbox_level
    if level <= stakes.lcc_level:
        raise CommitmentTooOld(f"inbox level {level} is not after the LCC's {stakes.lcc_level}")
    if level - stakes.lcc_level > constants.max_lookahead:
        raise TooFarAhead(
            f"inbox level {level} is more than {constants.max_lookahead} after the LCC's"
        )
    predecessor = get_commitment(stakes, commitment.predecessor)
    if level != next_commitment_level(constants, predecessor.inbox_level):
        raise BadInboxLevel(
            f"inbox level {level} is not one period after the predecessor's "
            f"{predecessor.inbox_level}"
        )
    first = stakes.first_publication_levels.get(level)
    if first is not None and current_level - first > constants.challenge_window:
        raise CommitmentPastCurfew(
            f"the first commitment of inbox level {level} was published at level {first}"
        )
    if level >= current_level:
        raise CommitmentFromFuture(f"inbox level {level} is not before level {current_level}")


def _check_backing(stakes: Stakes, index: int, digest: CommitmentHash, level: int) -> None:
    """Step 10 of §4.1: the staker of ``index`` does not back ``digest`` yet, nor any other
    commitment of ``level``."""
    if index in stakes.backers.get(digest, ()):
        raise DoublePublish(f"the staker already published {digest}")
    for other in stakes.commitments_per_level.get(level, ()):
        if other != digest and index in stakes.backers.get(other, ()):
            raise StakerDoubleStake(f"the staker already backs {other} at inbox level {level}")


def _record(
    stakes: Stakes,
    staker: str,
    info: StakerInfo,
    commitment: Commitment,
    digest: CommitmentHash,
    current_level: int,
) -> Stakes:
    """Step 9 of §4.1: store the (validated) publication."""
    level = commitment.inbox_level
    on_level = stakes.commitments_per_level.get(level, ())
    return replace(
        stakes,
        commitments=_with(stakes.commitments, digest, commitment),
        added_levels=_with(
            stakes.added_levels, digest, stakes.added_levels.get(digest, current_level)
        ),
        first_publication_levels=_with(
            stakes.first_publication_levels,
            level,
            stakes.first_publication_levels.get(level, current_level),
        ),
        stakers=_with(
            stakes.stakers,
            staker,
            replace(info, last_staked_level=max(info.last_staked_level, level)),
        ),
        next_staker_index=max(stakes.next_staker_index, info.index + 1),
        backers=_with(
            stakes.backers, digest, stakes.backers.get(digest, frozenset()) | {info.index}
        ),
        commitments_per_level=_with(
            stakes.commitments_per_level,
            level,
            on_level if digest in on_level else (*on_level, digest),
        ),
    )


# --- cementing (§4.2) --------------------------------------------------------------------


def cement(
    stakes: Stakes, constants: RollupConstants, current_level: int
) -> tuple[Stakes, CommitmentHash]:
    """Cement the commitment of the level after the LCC (anyone may ask): the only one that
    extends the LCC with an active backer, once its challenge window is over.

    Then it is the LCC; the level's other ("dangling") commitments are deleted with their
    metadata; of the cemented commitments only the last ``max_stored_cemented_commitments``
    keep their contents."""
    level = next_commitment_level(constants, stakes.lcc_level)
    on_level = stakes.commitments_per_level.get(level, ())
    candidates = [digest for digest in on_level if _is_candidate(stakes, digest)]
    if len(candidates) > 1:
        raise Disputed(f"inbox level {level} has {len(candidates)} backed commitments")
    if not candidates:
        raise NoValidCommitmentToCement(
            f"no backed commitment of inbox level {level} extends the LCC"
        )
    (chosen,) = candidates
    ready = stakes.added_levels[chosen] + constants.challenge_window
    if current_level < ready:
        raise CommitmentTooRecent(f"{chosen} can be cemented from level {ready}")
    return _cemented(stakes, constants, chosen, level, on_level), chosen


def _is_candidate(stakes: Stakes, digest: CommitmentHash) -> bool:
    """Whether ``digest`` extends the LCC and has a backer still holding its bond."""
    return stakes.commitments[digest].predecessor == stakes.lcc_hash and bool(
        active_backers(stakes, digest)
    )


def _cemented(
    stakes: Stakes,
    constants: RollupConstants,
    chosen: CommitmentHash,
    level: int,
    on_level: tuple[CommitmentHash, ...],
) -> Stakes:
    """``stakes`` once ``chosen`` (of inbox ``level``) is cemented."""
    dangling = [digest for digest in on_level if digest != chosen]
    cemented = (*stakes.cemented, chosen)
    keep = constants.max_stored_cemented_commitments
    forgotten = cemented[:-keep]
    return replace(
        stakes,
        lcc_hash=chosen,
        lcc_level=level,
        cemented=cemented[-keep:],
        commitments=_without(stakes.commitments, (*dangling, *forgotten)),
        added_levels=_without(stakes.added_levels, on_level),
        first_publication_levels=_without(stakes.first_publication_levels, (level,)),
        backers=_without(stakes.backers, on_level),
        commitments_per_level=_without(stakes.commitments_per_level, (level,)),
    )


# --- bonds (§4.3, §4.8) ------------------------------------------------------------------


def recover_bond(stakes: Stakes, staker: str) -> tuple[Stakes, tuple[Effect, ...]]:
    """Give ``staker`` its bond back (anyone may ask) once everything it backs is cemented
    or at the LCC's level: its last staked level is at most the LCC's."""
    info = _get_staker(stakes, staker)
    if info.last_staked_level > stakes.lcc_level:
        raise NotStakedOnLccOrAncestor(
            f"{staker} backs a commitment of inbox level {info.last_staked_level}, "
            f"after the LCC's {stakes.lcc_level}"
        )
    return _drop_staker(stakes, staker), (Unfreeze(staker, info.bond),)


def remove_staker(
    stakes: Stakes, constants: RollupConstants, staker: str
) -> tuple[Stakes, tuple[Effect, ...]]:
    """``staker`` lost a game: its bond is burned and its index removed, so the commitments
    it published stay stored but no longer count as backed by it.

    The bond burned is the one it froze (``constants.stake_amount`` at the time); ``constants``
    is taken so that every rule of a game's outcome has the same shape."""
    info = _get_staker(stakes, staker)
    return _drop_staker(stakes, staker), (Burn(staker, info.bond),)


def punish(
    stakes: Stakes, constants: RollupConstants, loser: str, winner: str
) -> tuple[Stakes, tuple[Effect, ...]]:
    """Octez ``apply_game_result`` for a loser: if ``loser`` is still a staker, its bond is
    burned and ``winner`` gets ``stake_amount // 2``; if it already lost its bond elsewhere,
    nothing happens (no reward)."""
    if not is_staker(stakes, loser):
        return stakes, ()
    stakes, effects = remove_staker(stakes, constants, loser)
    return stakes, (*effects, Reward(winner, constants.stake_amount // 2))


def draw(
    stakes: Stakes, constants: RollupConstants, alice: str, bob: str
) -> tuple[Stakes, tuple[Effect, ...]]:
    """Octez ``apply_game_result`` for a draw: both players' bonds are burned, nobody is
    rewarded (a player who already lost its bond elsewhere has nothing left to burn)."""
    effects: tuple[Effect, ...] = ()
    for player in (alice, bob):
        if is_staker(stakes, player):
            stakes, burned = remove_staker(stakes, constants, player)
            effects = (*effects, *burned)
    return stakes, effects


def _get_staker(stakes: Stakes, staker: str) -> StakerInfo:
    info = stakes.stakers.get(staker)
    if info is None:
        raise NotStaked(f"{staker} is not a staker of the rollup")
    return info


def _drop_staker(stakes: Stakes, staker: str) -> Stakes:
    return replace(stakes, stakers=_without(stakes.stakers, (staker,)))
