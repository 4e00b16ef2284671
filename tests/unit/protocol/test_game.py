"""The refutation game (``soru.protocol.game``):

1. whole games on the real PVM (Octez's echo kernel, one inbox level): an honest staker and
   a liar who lies from some tick on — in inbox collection, loading, evaluation, padding, or
   only about the final state or the tick count — play move by move with the honest and
   the lying strategy (dissect the first section it disputes, prove a one-tick section);
   the honest staker wins every game, as refuter or as defender, and the loser's stake is
   split (half burned, half to the winner);
2. each rule on its own: every refusal is a typed error that changes nothing (start checks,
   wrong turn, missing choice, invalid dissection, dissecting at the final move), the final
   move (a failed proof, then the confirmation or a draw), timeouts and clocks, a game that
   ends because a player lost its stake elsewhere.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soru.base.hashes import Hash
from soru.encoding.inbox import External
from soru.protocol import game as g
from soru.protocol import staking
from soru.protocol.commitment import Commitment, genesis_commitment
from soru.protocol.constants import SANDBOX
from soru.protocol.dissection import Chunk, first_disagreement, new_dissection
from soru.protocol.inbox_proof import InboxHistory
from soru.protocol.refutation_proof import RefutationProof
from soru.pvm import driver, layout, vm
from soru.pvm.history import LevelTrace
from soru.pvm.proof import produce_proof
from soru.pvm.reveals import RevealProvider
from soru.pvm.state import TickState

ECHO = Path(__file__).resolve().parents[4] / "shared" / "testdata" / "kernels" / "echo.wasm"
T = 100_000  # ticks per kernel_run
CONSTANTS = replace(SANDBOX, commitment_period=1, ticks_per_snapshot=T).check()
STAKE = CONSTANTS.stake_amount
HONEST, LIAR = "tz1honest", "tz1liar"
REVEALS = RevealProvider(None, bytes(20), 0)
METADATA = REVEALS.metadata()


def _lie_hash(tick: int) -> Hash:
    return Hash(hashlib.blake2b(b"a lie at %d" % tick, digest_size=32).digest())


class World:
    """One inbox level of the echo kernel, run once; the honest view of every tick."""

    def __init__(self, messages: tuple[bytes, ...] = (External(b"hi").encode(),),
                 reveals: RevealProvider = REVEALS) -> None:  # fmt: skip
        self.history, inbox = InboxHistory.from_genesis()
        self.inbox = self.history.add_level(
            inbox, predecessor_timestamp=1, predecessor=bytes(32), messages=list(messages)
        )
        level = self.history.find_level(1)
        assert level is not None
        state = driver.originate(ECHO.read_bytes(), ticks_per_kernel_run=T)
        self.genesis = genesis_commitment(layout.state_hash(state), 0)
        self.trace = LevelTrace.run(state, 1, list(level.payloads), reveals)
        self.ticks = self.trace.end_tick - self.trace.start_tick
        self.known: dict[int, Hash] = {}

    def honest(self, tick: int) -> Hash | None:
        """The honest hash at game tick ``tick`` (relative to the parent commitment)."""
        if tick > self.ticks:
            return None  # past the level the machine waits for an input beyond the commitment
        if tick not in self.known:
            self.known[tick] = self.trace.hash_at(self.trace.start_tick + tick)
        return self.known[tick]

    def commitment(self, hash_at) -> Commitment:
        final = hash_at(self.ticks)
        return Commitment(final, 1, self.genesis.hash(), self.ticks)

    def proof(self, tick: int) -> RefutationProof:
        """The true step from game tick ``tick`` — the only kind of proof anyone can make."""
        before = self.trace.state_at(self.trace.start_tick + tick)
        request = vm.input_request(before)
        given, message = None, None
        if request.kind in ("initial", "first_after"):
            given, message = self.history.produce_input_proof(
                self.inbox.snapshot(), request, origination_level=0
            )
        step, _ = produce_proof(layout.state_tree(before), message=message)
        return RefutationProof(step, given)


@pytest.fixture(scope="module")
def world() -> World:
    if not ECHO.exists():
        pytest.fail(f"{ECHO} is missing (../shared/testdata)")
    return World()


def _liar(world: World, lie: int):
    def hash_at(tick: int) -> Hash | None:
        return world.honest(tick) if tick < lie else _lie_hash(tick)

    return hash_at


def _strategy(world: World, hash_at):
    """Dispute the first section whose stop this player disagrees with: dissect it, or
    prove it when it is one tick long; at the final move, prove the agreed start's step."""

    def move(game: g.Game) -> g.Move:
        if isinstance(game.state, g.FinalMove):
            return g.Prove(game.state.agreed_start.tick, world.proof(game.state.agreed_start.tick))
        start, stop = first_disagreement(game.state.dissection, hash_at)
        if stop.tick - start.tick == 1:
            return g.Prove(start.tick, world.proof(start.tick))
        chunks = new_dissection(start, stop.tick, hash_at, CONSTANTS.number_of_sections, T)
        return g.Dissect(start.tick, tuple(chunks))

    return move


def _published(world: World, liar_commitment: Commitment) -> staking.Stakes:
    stakes = staking.originate(world.genesis)
    honest = world.commitment(world.honest)
    for staker, commitment in ((HONEST, honest), (LIAR, liar_commitment)):
        stakes, _ = staking.publish_commitment(stakes, CONSTANTS, staker, commitment, 2, STAKE)
    return stakes


def _play_out(world: World, liar_commitment: Commitment, liar_hash, refuter: str):
    """A whole game; returns (result, moves, stakes after, effects)."""
    stakes = _published(world, liar_commitment)
    honest = world.commitment(world.honest)
    own = {HONEST: honest.hash(), LIAR: liar_commitment.hash()}
    defender = LIAR if refuter == HONEST else HONEST
    game = g.start_game(stakes, CONSTANTS, {}, refuter=refuter, defender=defender,
                        refuter_commitment=own[refuter], defender_commitment=own[defender],
                        current_level=2, inbox_snapshot=world.inbox.snapshot())  # fmt: skip
    players = {HONEST: _strategy(world, world.honest), LIAR: _strategy(world, liar_hash)}
    level, moves = 2, 0
    result: g.Game | g.Result = game
    while isinstance(result, g.Game):
        game = result
        mover = game.staker(game.turn)
        level += 1
        moves += 1
        result = g.play(game, stakes, CONSTANTS, mover=mover, move=players[mover](game),
                        current_level=level, origination_level=0, metadata=METADATA)  # fmt: skip
        assert moves < 40
    assert isinstance(result, g.Loser)
    after, effects = g.apply_result(stakes, CONSTANTS, game, result)
    return result, moves, after, effects


def _first_tick(world: World, kind: TickState) -> int:
    for tick in range(0, world.ticks, 97):
        if world.trace.state_at(world.trace.start_tick + tick).tick_state is kind:
            return tick
    raise AssertionError(f"no {kind} tick")


@pytest.mark.parametrize("refuter", [HONEST, LIAR])
@pytest.mark.parametrize("where", ["collect", "decode", "eval", "padding", "final"])
def test_the_honest_staker_wins(world: World, refuter: str, where: str) -> None:
    lie = {
        "collect": 3,
        "decode": _first_tick(world, TickState.DECODE) + 5,
        "eval": _first_tick(world, TickState.EVAL) + 7,
        "padding": _first_tick(world, TickState.PADDING) + 11,
        "final": world.ticks,
    }[where]
    liar_hash = _liar(world, lie)
    result, moves, after, effects = _play_out(
        world, world.commitment(liar_hash), liar_hash, refuter
    )
    assert result == g.Loser(g.Reason.CONFLICT_RESOLVED, LIAR), (where, refuter)
    assert moves >= 2
    assert not staking.is_staker(after, LIAR) and staking.is_staker(after, HONEST)
    assert sorted(map(repr, effects)) == sorted(
        map(repr, (staking.Burn(LIAR, STAKE), staking.Reward(HONEST, STAKE // 2)))
    )


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lie=st.integers(0, 10**9), refuter=st.sampled_from([HONEST, LIAR]))
def test_the_honest_staker_wins_wherever_the_lie_starts(world: World, lie: int, refuter) -> None:
    lie %= world.ticks + 1
    liar_hash = _liar(world, lie)
    result, *_ = _play_out(world, world.commitment(liar_hash), liar_hash, refuter)
    assert result == g.Loser(g.Reason.CONFLICT_RESOLVED, LIAR), (lie, refuter)


def test_a_liar_about_the_tick_count_loses(world: World) -> None:
    """The liar commits to the honest final state, but reached in fewer ticks."""
    short = world.ticks - T  # one kernel_run less: it claims the machine blocks earlier

    def liar_hash(tick: int) -> Hash | None:
        return (
            world.honest(tick)
            if tick < short
            else (world.honest(world.ticks) if tick == short else None)
        )

    liar_commitment = Commitment(world.honest(world.ticks), 1, world.genesis.hash(), short)
    for refuter in (HONEST, LIAR):
        result, *_ = _play_out(world, liar_commitment, liar_hash, refuter)
        assert result == g.Loser(g.Reason.CONFLICT_RESOLVED, LIAR)


# --- 2. the rules one by one --------------------------------------------------------------

A, B, C = "tz1a", "tz1b", "tz1c"


def _toy():
    """Two stakers on conflicting commitments of level 1 (hashes made up: no PVM)."""
    genesis = genesis_commitment(Hash(b"\x01" * 32), 0)
    ours = Commitment(Hash(b"\x02" * 32), 1, genesis.hash(), 10)
    theirs = Commitment(Hash(b"\x03" * 32), 1, genesis.hash(), 12)
    stakes = staking.originate(genesis)
    stakes, _ = staking.publish_commitment(stakes, CONSTANTS, A, ours, 2, STAKE)
    stakes, _ = staking.publish_commitment(stakes, CONSTANTS, B, theirs, 2, STAKE)
    return stakes, genesis, ours, theirs


EMPTY_INBOX = InboxHistory.from_genesis()[1].snapshot()


def _start(stakes, ours, theirs, games=None, level=2, refuter=A, defender=B) -> g.Game:
    return g.start_game(stakes, CONSTANTS, games or {}, refuter=refuter, defender=defender,
                        refuter_commitment=ours.hash(), defender_commitment=theirs.hash(),
                        current_level=level, inbox_snapshot=EMPTY_INBOX)  # fmt: skip


def _play(game, stakes, mover, move, level=3):
    return g.play(game, stakes, CONSTANTS, mover=mover, move=move, current_level=level,
                  origination_level=0, metadata=METADATA)  # fmt: skip


def test_a_game_starts_from_the_defenders_claim() -> None:
    stakes, genesis, ours, theirs = _toy()
    game = _start(stakes, ours, theirs)
    assert (game.alice, game.bob, game.turn) == (A, B, g.Player.ALICE)  # the refuter moves
    assert game.state == g.Dissecting(
        (Chunk(genesis.compressed_state, 0), Chunk(theirs.compressed_state, 12), Chunk(None, 13)),
        32,
    )
    assert game.clocks == g.Clocks(CONSTANTS.timeout_period, CONSTANTS.timeout_period, 2)
    assert game.inbox_level == 1
    by_b = _start(stakes, theirs, ours, refuter=B, defender=A)
    assert (by_b.alice, by_b.turn) == (A, g.Player.BOB)
    assert by_b.state.dissection[1] == Chunk(ours.compressed_state, 10)  # type: ignore[union-attr]


def test_start_refusals() -> None:
    stakes, genesis, ours, theirs = _toy()
    with pytest.raises(staking.NotStaked):
        _start(stakes, ours, theirs, refuter=C)
    with pytest.raises(g.WrongStakerForConflictCommitment):
        _start(stakes, theirs, theirs)
    shared, _ = staking.publish_commitment(stakes, CONSTANTS, C, ours, 2, STAKE)
    with pytest.raises(g.NotValidCommitmentsConflict):
        _start(shared, ours, ours, defender=C)
    later = Commitment(Hash(b"\x04" * 32), 2, ours.hash(), 5)
    chained, _ = staking.publish_commitment(stakes, CONSTANTS, A, later, 3, STAKE)
    with pytest.raises(g.NotValidCommitmentsConflict):
        _start(chained, later, theirs, level=3)
    game = _start(stakes, ours, theirs)
    with pytest.raises(g.GameAlreadyStarted):
        _start(stakes, theirs, ours, games={g.game_key(A, B): game}, refuter=B, defender=A)
    one = replace(CONSTANTS, max_parallel_games=1)
    third, _ = staking.publish_commitment(stakes, CONSTANTS, C, theirs, 2, STAKE)
    with pytest.raises(g.MaxNumberOfParallelGamesReached):
        g.start_game(third, one, {g.game_key(A, B): game}, refuter=A, defender=C,
                     refuter_commitment=ours.hash(), defender_commitment=theirs.hash(),
                     current_level=2, inbox_snapshot=game.inbox_snapshot)  # fmt: skip
    with pytest.raises(g.RefutationGameStartTooEarly):
        _start(stakes, ours, theirs, level=1)


def test_move_refusals_change_nothing(world: World) -> None:
    stakes, genesis, ours, theirs = _toy()
    game = _start(stakes, ours, theirs)
    with pytest.raises(g.WrongTurn):
        _play(game, stakes, B, g.Dissect(0, ()))
    with pytest.raises(g.NoGame):
        _play(game, stakes, C, g.Dissect(0, ()))
    with pytest.raises(g.DissectionChoiceNotFound):
        _play(game, stakes, A, g.Dissect(5, ()))
    with pytest.raises(g.DissectionChoiceNotFound):
        _play(game, stakes, A, g.Dissect(13, ()))  # the last chunk starts no section
    bad = (Chunk(genesis.compressed_state, 0), Chunk(Hash(b"\x09" * 32), 12))
    with pytest.raises(g.InvalidDissectionMove):
        _play(game, stakes, A, g.Dissect(0, bad))
    assert game == _start(stakes, ours, theirs)


def test_a_failed_proof_leads_to_the_final_move_then_a_confirmation_or_a_draw(world) -> None:
    stakes, genesis, ours, theirs = _toy()
    game = _start(stakes, ours, theirs)
    wrong = world.proof(0)  # a true step, but from another state than the game's
    final = _play(game, stakes, A, g.Prove(12, wrong))
    assert isinstance(final, g.Game) and isinstance(final.state, g.FinalMove)
    assert final.state == g.FinalMove(Chunk(theirs.compressed_state, 12), Chunk(None, 13))
    assert final.turn is g.Player.BOB
    with pytest.raises(g.DissectingDuringFinalMove):
        _play(final, stakes, B, g.Dissect(12, ()), level=4)
    assert _play(final, stakes, B, g.Prove(12, wrong), level=4) == g.Draw()


def test_timeouts_and_clocks() -> None:
    stakes, genesis, ours, theirs = _toy()
    game = _start(stakes, ours, theirs)
    deadline = 2 + CONSTANTS.timeout_period
    with pytest.raises(g.TimeoutLevelNotReached):
        g.timeout(game, deadline)
    assert g.timeout(game, deadline + 1) == g.Loser(g.Reason.TIMEOUT, A)
    dissection = tuple(Chunk(genesis.compressed_state if t == 0 else Hash(bytes([40 + t]) * 32), t)
                       for t in range(0, 13))  # fmt: skip
    after = _play(game, stakes, A, g.Dissect(0, dissection), level=7)
    assert isinstance(after, g.Game) and after.turn is g.Player.BOB
    assert after.clocks == g.Clocks(CONSTANTS.timeout_period - 5, CONSTANTS.timeout_period, 7)
    assert g.timeout(after, 7 + CONSTANTS.timeout_period + 1) == g.Loser(g.Reason.TIMEOUT, B)
    final = replace(after, state=g.FinalMove(dissection[0], dissection[1]))
    assert g.timeout(final, 7 + CONSTANTS.timeout_period + 1) == g.Draw()


def test_a_player_who_lost_its_stake_elsewhere_loses_at_the_next_move() -> None:
    stakes, genesis, ours, theirs = _toy()
    game = _start(stakes, ours, theirs)
    without_b, _ = staking.remove_staker(stakes, CONSTANTS, B)
    assert _play(game, without_b, A, g.Dissect(0, ())) == g.Loser(g.Reason.CONFLICT_RESOLVED, B)
    neither, _ = staking.remove_staker(without_b, CONSTANTS, A)
    assert _play(game, neither, A, g.Dissect(0, ())) == g.Draw()
    after, effects = g.apply_result(stakes, CONSTANTS, game, g.Draw())
    assert not staking.is_staker(after, A) and not staking.is_staker(after, B)
    assert sorted(map(repr, effects)) == sorted(
        map(repr, (staking.Burn(A, STAKE), staking.Burn(B, STAKE)))
    )
