"""The refutation game (``../shared/SORU-SPEC.md`` §4.4–§4.8): two stakers who published
conflicting commitments on the same predecessor narrow their disagreement down to one tick,
which layer 1 then checks. Pure rules: each function returns a new :class:`Game` or a
:class:`Result` and never touches storage; refusals are :class:`~soru.protocol.errors.
ProtocolError` subclasses and change nothing.

States and moves (the player whose ``turn`` it is moves; a move names the section it
disputes by its start tick, ``choice``)::

    start ──► Dissecting ──dissection──► Dissecting (turn passes)
                  │ proof: valid        ──► the opponent loses     (conflict resolved)
                  │ proof: not valid    ──► Final_move (turn passes)
                  ▼
              Final_move ──proof: confirms the refuted stop──► the first prover loses
                         ──proof: does not                  ──► draw
    timeout (anyone, once the mover's clock ran out): Dissecting ─► the mover loses;
                                                      Final_move ─► draw

The start dissection is ``[(parent state, 0), (defender's state, N), (blocked, N + 1)]``
where N is the defender's ``number_of_ticks``: the refuter may dispute the final state or
the claim that the machine is blocked (asks for an input beyond the commitment's level)
after it.

**Why a single honest player always wins.** The honest player disputes only sections whose
start it agrees with and whose stop it does not (``dissection.first_disagreement``); every
dissection it accepts or plays keeps that invariant, and sections shrink (at least halve,
or go to kernel_run granularity first under the WASM rule), so the honest player reaches a
one-tick section on its turn — its proof is valid (the PVM step is deterministic and
provable at any tick) and its stop is its own hash, which differs from the opponent's claim:
the opponent loses. If instead the liar plays a proof on a one-tick section, the proof is
invalid (it would have to prove a wrong step) and the game moves to Final_move, where the
honest player's proof confirms the refuted stop: the liar loses. The liar cannot run the
honest clock down either: clocks only run on a player's own turns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum

from soru.base.hashes import Hash
from soru.protocol import staking
from soru.protocol.constants import RollupConstants
from soru.protocol.dissection import Chunk, InvalidDissection, check_dissection
from soru.protocol.errors import ProtocolError
from soru.protocol.inbox import HistoryCell
from soru.protocol.refutation_proof import (
    InvalidRefutationProof,
    ProofContext,
    RefutationProof,
    check,
)

# --- errors -------------------------------------------------------------------------------


class NoGame(ProtocolError):
    """No game between these stakers (``Sc_rollup_no_game``)."""


class GameAlreadyStarted(ProtocolError):
    """The two stakers already play a game (``Sc_rollup_game_already_started``)."""


class WrongStakerForConflictCommitment(ProtocolError):
    """A player is not staked on the commitment named for it
    (``Sc_rollup_wrong_staker_for_conflict_commitment``)."""


class NotValidCommitmentsConflict(ProtocolError):
    """The commitments are equal or have different predecessors
    (``Sc_rollup_not_valid_commitments_conflict``)."""


class MaxNumberOfParallelGamesReached(ProtocolError):
    """A player already plays ``max_parallel_games`` games
    (``Sc_rollup_max_number_of_parallel_games_reached``)."""


class RefutationGameStartTooEarly(ProtocolError):
    """The disputed level's commitment period is not over
    (``Sc_rollup_refutation_game_start_too_early``)."""


class WrongTurn(ProtocolError):
    """The mover is not the player whose turn it is (``Sc_rollup_wrong_turn``)."""


class DissectionChoiceNotFound(ProtocolError):
    """``choice`` starts no section of the current dissection
    (``Dissection_choice_not_found``)."""


class DissectingDuringFinalMove(ProtocolError):
    """A dissection played after a failed proof (``Dissecting_during_final_move``)."""


class InvalidDissectionMove(ProtocolError):
    """A dissection that breaks the dissection rules (``Dissection_*``; names the rule)."""


class TimeoutLevelNotReached(ProtocolError):
    """The player to move still has time (``Sc_rollup_timeout_level_not_reached``)."""


# --- records ------------------------------------------------------------------------------


class Player(Enum):
    """Alice is the staker with the smaller key, Bob the other (``Index.make``)."""

    ALICE = "alice"
    BOB = "bob"

    @property
    def other(self) -> Player:
        return Player.BOB if self is Player.ALICE else Player.ALICE


@dataclass(frozen=True, slots=True)
class Dissecting:
    """The players are narrowing the current dissection down."""

    dissection: tuple[Chunk, ...]
    sections: int


@dataclass(frozen=True, slots=True)
class FinalMove:
    """A one-tick proof failed: the other player must confirm ``refuted_stop``."""

    agreed_start: Chunk
    refuted_stop: Chunk


@dataclass(frozen=True, slots=True)
class Clocks:
    """Blocks left on each player's clock, and the level of the last move."""

    alice: int
    bob: int
    last_turn_level: int

    def left(self, player: Player) -> int:
        return self.alice if player is Player.ALICE else self.bob


@dataclass(frozen=True, slots=True)
class Game:
    """A game between ``alice`` and ``bob`` (stakers, ``alice < bob``) over commitments of
    ``inbox_level``; the inbox as it stood at the start (``inbox_snapshot``) is what input
    proofs are checked against."""

    alice: str
    bob: str
    turn: Player
    inbox_snapshot: HistoryCell
    start_level: int
    inbox_level: int
    state: Dissecting | FinalMove
    clocks: Clocks

    def staker(self, player: Player) -> str:
        return self.alice if player is Player.ALICE else self.bob

    def player(self, staker: str) -> Player:
        if staker == self.alice:
            return Player.ALICE
        if staker == self.bob:
            return Player.BOB
        raise NoGame(f"{staker} does not play this game")


@dataclass(frozen=True, slots=True)
class Dissect:
    """Answer the section starting at tick ``choice`` with a new dissection of it."""

    choice: int
    dissection: tuple[Chunk, ...]


@dataclass(frozen=True, slots=True)
class Prove:
    """Settle the one-tick section starting at tick ``choice`` with a proof."""

    choice: int
    proof: RefutationProof


Move = Dissect | Prove


class Reason(Enum):
    CONFLICT_RESOLVED = "conflict_resolved"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class Loser:
    """The game ends: ``loser`` loses its stake (half burned, half to the winner)."""

    reason: Reason
    loser: str


@dataclass(frozen=True, slots=True)
class Draw:
    """The game ends with both players losing their stakes."""


Result = Loser | Draw

GameKey = tuple[str, str]
"""A game's key in the rollup's table of games: ``(alice, bob)``."""


def game_key(a: str, b: str) -> GameKey:
    """The key of the game between stakers ``a`` and ``b`` (either order)."""
    return (a, b) if a < b else (b, a)


# --- starting a game ----------------------------------------------------------------------


def ongoing_games(games: Mapping[GameKey, Game], staker: str) -> int:
    """How many games ``staker`` plays."""
    return sum(1 for alice, bob in games if staker in (alice, bob))


def start_game(
    stakes: staking.Stakes,
    constants: RollupConstants,
    games: Mapping[GameKey, Game],
    *,
    refuter: str,
    defender: str,
    refuter_commitment: Hash,
    defender_commitment: Hash,
    current_level: int,
    inbox_snapshot: HistoryCell,
) -> Game:
    """The game ``refuter`` starts against ``defender`` over their conflicting commitments
    (§4.4); the refuter moves first."""
    for staker in (refuter, defender):
        if not staking.is_staker(stakes, staker):
            raise staking.NotStaked(f"{staker} is not a staker of the rollup")
    for staker, commitment in ((refuter, refuter_commitment), (defender, defender_commitment)):
        if not staking.staked_on(stakes, staker, commitment):
            raise WrongStakerForConflictCommitment(f"{staker} is not staked on {commitment}")
    theirs = staking.get_commitment(stakes, defender_commitment)
    ours = staking.get_commitment(stakes, refuter_commitment)
    if refuter_commitment == defender_commitment or ours.predecessor != theirs.predecessor:
        raise NotValidCommitmentsConflict("the commitments must differ on the same predecessor")
    if game_key(refuter, defender) in games:
        raise GameAlreadyStarted(f"{refuter} and {defender} already play a game")
    for staker in (refuter, defender):
        if ongoing_games(games, staker) >= constants.max_parallel_games:
            raise MaxNumberOfParallelGamesReached(f"{staker} plays too many games")
    if current_level < theirs.inbox_level + constants.commitment_period:
        raise RefutationGameStartTooEarly(
            f"a game on level {theirs.inbox_level} starts at level "
            f"{theirs.inbox_level + constants.commitment_period}"
        )
    parent = staking.get_commitment(stakes, theirs.predecessor)
    n = theirs.number_of_ticks
    dissection = (
        Chunk(parent.compressed_state, 0),
        Chunk(theirs.compressed_state, n),
        Chunk(None, n + 1),
    )
    alice, bob = game_key(refuter, defender)
    turn = Player.ALICE if refuter == alice else Player.BOB
    clocks = Clocks(constants.timeout_period, constants.timeout_period, current_level)
    return Game(alice, bob, turn, inbox_snapshot, current_level, theirs.inbox_level,
                Dissecting(dissection, constants.number_of_sections), clocks)  # fmt: skip


# --- moves --------------------------------------------------------------------------------


def _section(dissection: tuple[Chunk, ...], choice: int) -> tuple[Chunk, Chunk]:
    for start, stop in zip(dissection, dissection[1:], strict=False):
        if start.tick == choice:
            return start, stop
    raise DissectionChoiceNotFound(f"no section of the dissection starts at tick {choice}")


def _proven_stop(proof: RefutationProof, start: Chunk, context: ProofContext) -> Hash | None:
    """The stop state a proof establishes from ``start`` — or raise when it establishes
    nothing from there (an invalid proof, or one from another state)."""
    proven_start, proven_stop = check(proof, context)
    if proven_start != start.state_hash:
        raise InvalidRefutationProof("the proof starts from another state than the section")
    return proven_stop


def _valid_proof_from(
    proof: RefutationProof, start: Chunk, context: ProofContext
) -> tuple[bool, Hash | None]:
    try:
        return True, _proven_stop(proof, start, context)
    except InvalidRefutationProof:
        return False, None


def _tick(game: Game, mover: Player, current_level: int) -> Clocks:
    """The clocks after ``mover`` moved at ``current_level``."""
    elapsed = current_level - game.clocks.last_turn_level
    c = game.clocks
    if mover is Player.ALICE:
        return Clocks(c.alice - elapsed, c.bob, current_level)
    return Clocks(c.alice, c.bob - elapsed, current_level)


def _check_stakes(stakes: staking.Stakes, game: Game) -> Result | None:
    """A game ends at once when a player is no longer a staker (lost another game)."""
    alice_in = staking.is_staker(stakes, game.alice)
    bob_in = staking.is_staker(stakes, game.bob)
    if alice_in and bob_in:
        return None
    if not alice_in and not bob_in:
        return Draw()
    return Loser(Reason.CONFLICT_RESOLVED, game.bob if alice_in else game.alice)


def play(
    game: Game,
    stakes: staking.Stakes,
    constants: RollupConstants,
    *,
    mover: str,
    move: Move,
    current_level: int,
    origination_level: int,
    metadata: bytes,
) -> Game | Result:
    """``mover``'s ``move`` (§4.5): the game after it, or how the game ends. A proof is
    checked against the game's inbox snapshot and inbox level, and the rollup's origination
    level and ``metadata`` (address ‖ origination level, what a metadata reveal returns)."""
    context = ProofContext(game.inbox_snapshot, origination_level, game.inbox_level, metadata)
    player = game.player(mover)
    if player is not game.turn:
        raise WrongTurn(f"it is {game.staker(game.turn)}'s turn")
    ended = _check_stakes(stakes, game)
    if ended is not None:
        return ended
    opponent = game.staker(player.other)
    if isinstance(move, Dissect):
        if not isinstance(game.state, Dissecting):
            raise DissectingDuringFinalMove("the game is at its final move: play a proof")
        start, stop = _section(game.state.dissection, move.choice)
        try:
            check_dissection(start, stop, move.dissection, game.state.sections,
                             constants.ticks_per_snapshot)  # fmt: skip
        except InvalidDissection as error:
            raise InvalidDissectionMove(str(error)) from None
        state: Dissecting | FinalMove = Dissecting(tuple(move.dissection), game.state.sections)
        return replace(game, turn=player.other, state=state,
                       clocks=_tick(game, player, current_level))  # fmt: skip
    if isinstance(game.state, Dissecting):
        start, stop = _section(game.state.dissection, move.choice)
        valid, proven = _valid_proof_from(move.proof, start, context)
        if valid and stop.tick - start.tick == 1 and proven != stop.state_hash:
            return Loser(Reason.CONFLICT_RESOLVED, opponent)
        final = FinalMove(start, stop)
        return replace(game, turn=player.other, state=final,
                       clocks=_tick(game, player, current_level))  # fmt: skip
    start, stop = game.state.agreed_start, game.state.refuted_stop
    valid, proven = _valid_proof_from(move.proof, start, context)
    if valid and proven == stop.state_hash:
        return Loser(Reason.CONFLICT_RESOLVED, opponent)
    return Draw()


def timeout(game: Game, current_level: int) -> Result:
    """How the game ends when the player to move let its clock run out (§4.8); anyone may
    claim it."""
    deadline = game.clocks.last_turn_level + game.clocks.left(game.turn)
    if current_level <= deadline:
        raise TimeoutLevelNotReached(f"{game.staker(game.turn)} may move until level {deadline}")
    if isinstance(game.state, FinalMove):
        return Draw()
    return Loser(Reason.TIMEOUT, game.staker(game.turn))


def apply_result(
    stakes: staking.Stakes, constants: RollupConstants, game: Game, result: Result
) -> tuple[staking.Stakes, tuple[staking.Effect, ...]]:
    """The stakes after a game ended: a loser still staked loses its bond (half burned,
    half to the winner); a draw burns both bonds."""
    if isinstance(result, Draw):
        return staking.draw(stakes, constants, game.alice, game.bob)
    winner = game.bob if result.loser == game.alice else game.alice
    return staking.punish(stakes, constants, result.loser, winner)
