"""A rollup's whole lifecycle through the rollup operations (``soru.protocol.rollup``), on the
real PVM and without layer 1 around it: origination of Octez's echo kernel, one inbox level
whose message the kernel echoes to its outbox (a withdrawal: a transaction to a contract),
an honest staker and a liar who publish conflicting commitments, their refutation game
played move by move with the ``smart_rollup_refute`` payloads (encoded and decoded) down to
a one-tick proof, the liar's bond split (half burned, half to the honest staker), the honest
commitment cemented after the challenge window, the withdrawal executed from the outbox
with an output proof — once — and the honest bond recovered. Then each refusal of the
rollup module itself (whitelist, whitelist updates, no game) on its own.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from soru.crypto.addresses import PublicKeyHash
from soru.encoding.inbox import External
from soru.encoding.michelson_text import parse_expression as parse
from soru.protocol import game as g
from soru.protocol import outbox, staking
from soru.protocol import rollup as r
from soru.protocol.commitment import Commitment
from soru.protocol.constants import SANDBOX
from soru.protocol.dissection import first_disagreement, new_dissection
from soru.protocol.origination import Origination, PvmKind
from soru.protocol.refutation import Start, decode_refutation, encode_refutation
from soru.pvm import layout
from soru.pvm.constants import DEFAULT_VERSION
from soru.pvm.proof import produce_output_proof
from soru.pvm.reveals import RevealProvider

from .test_game import ECHO, T, World, _lie_hash

CONSTANTS = replace(
    SANDBOX, commitment_period=1, challenge_window=4, timeout_period=10,
    max_lookahead=100, ticks_per_snapshot=T, max_active_outbox_levels=20,
).check()  # fmt: skip
STAKE = CONSTANTS.stake_amount
HONEST, LIAR = "tz1honest", "tz1liar"
WITHDRAWAL = bytes.fromhex(  # SORU-SPEC §2.6: Unit to KT1…, entrypoint "default"
    "0000000023030b01d1a37c088a1221b636bb5fccb35e05181038ba7c000000000764656661756c74"
)


def _originate(whitelist=None) -> r.Rollup:
    origination = Origination(PvmKind.WASM_2_0_0, ECHO.read_bytes(), parse("unit"), whitelist)
    return r.originate(origination, operation_hash=bytes(range(32)), index=0, level=0,
                       constants=CONSTANTS, version=DEFAULT_VERSION)  # fmt: skip


@pytest.fixture(scope="module")
def lifecycle():
    if not ECHO.exists():
        pytest.fail(f"{ECHO} is missing (../shared/testdata)")
    rollup = _originate()
    world = World((External(WITHDRAWAL).encode(),), RevealProvider(None, rollup.address.digest, 0))
    assert world.genesis.hash() == rollup.genesis_hash  # the node and layer 1 agree on genesis
    return rollup, world


def _move(world: World, game: g.Game, hash_at) -> g.Move:
    if isinstance(game.state, g.FinalMove):
        tick = game.state.agreed_start.tick
        return g.Prove(tick, world.proof(tick))
    start, stop = first_disagreement(game.state.dissection, hash_at)
    if stop.tick - start.tick == 1:
        return g.Prove(start.tick, world.proof(start.tick))
    chunks = new_dissection(start, stop.tick, hash_at, CONSTANTS.number_of_sections, T)
    return g.Dissect(start.tick, tuple(chunks))


def test_the_whole_lifecycle(lifecycle) -> None:
    rollup, world = lifecycle
    lie = world.ticks // 2 + 3

    def liar(tick: int):
        return world.honest(tick) if tick < lie else _lie_hash(tick)

    honest_commitment = Commitment(world.honest(world.ticks), 1, rollup.genesis_hash, world.ticks)
    liar_commitment = Commitment(liar(world.ticks), 1, rollup.genesis_hash, world.ticks)
    rollup, honest_hash, effects = r.publish_commitment(
        rollup, HONEST, honest_commitment, level=2, balance=STAKE
    )
    assert effects == (staking.Freeze(HONEST, STAKE),)
    rollup, liar_hash, _ = r.publish_commitment(
        rollup, LIAR, liar_commitment, level=2, balance=STAKE
    )
    with pytest.raises(staking.Disputed):
        r.cement(rollup, level=10)

    start = decode_refutation(encode_refutation(Start(liar_hash, honest_hash)))
    rollup, result, _ = r.refute(rollup, LIAR, HONEST, start, level=3,
                                 inbox_snapshot=world.inbox.snapshot())  # fmt: skip
    assert result is None and len(rollup.games) == 1
    views = {HONEST: world.honest, LIAR: liar}
    level, moves = 3, 0
    while result is None:
        (current,) = rollup.games.values()
        mover = current.staker(current.turn)
        other = HONEST if mover == LIAR else LIAR
        payload = encode_refutation(_move(world, current, views[mover]))  # as on layer 1
        level, moves = level + 1, moves + 1
        move = decode_refutation(payload)
        snapshot = world.inbox.snapshot()
        rollup, result, effects = r.refute(
            rollup, mover, other, move, level=level, inbox_snapshot=snapshot
        )
        assert moves < 40
    assert result == g.Loser(g.Reason.CONFLICT_RESOLVED, LIAR) and not rollup.games
    assert set(effects) == {staking.Burn(LIAR, STAKE), staking.Reward(HONEST, STAKE // 2)}

    with pytest.raises(staking.CommitmentTooRecent):
        r.cement(rollup, level=2 + CONSTANTS.challenge_window - 1)
    rollup, cemented = r.cement(rollup, level=2 + CONSTANTS.challenge_window)
    assert cemented == honest_hash and staking.lcc(rollup.stakes) == (honest_hash, 1)

    state = world.trace.state_at(world.trace.end_tick)
    proof = produce_output_proof(layout.state_tree(state), 1, 0)
    rollup, message = r.execute_outbox_message(rollup, honest_hash, proof.encode())
    assert outbox.encode_outbox_message(message) == WITHDRAWAL
    assert isinstance(message, outbox.TransactionBatch)
    with pytest.raises(outbox.OutboxMessageAlreadyApplied):
        r.execute_outbox_message(rollup, honest_hash, proof)

    rollup, effects = r.recover_bond(rollup, HONEST)
    assert effects == (staking.Unfreeze(HONEST, STAKE),)


def test_a_private_rollup_refuses_other_keys(lifecycle) -> None:
    _, world = lifecycle
    key = PublicKeyHash.of_b58("tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx")
    private = _originate((key,))
    commitment = Commitment(world.honest(world.ticks), 1, private.genesis_hash, world.ticks)
    with pytest.raises(r.StakerNotInWhitelist):
        r.publish_commitment(private, HONEST, commitment, level=2, balance=STAKE)
    after, _, _ = r.publish_commitment(private, str(key), commitment, level=2, balance=STAKE)
    assert staking.is_staker(after.stakes, str(key))


def test_whitelist_updates() -> None:
    key = PublicKeyHash.of_b58("tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx")
    private = _originate((key,))
    public = r._update_whitelist(private, outbox.WhitelistUpdate(None), (3, 0))
    assert public.whitelist is None and public.last_whitelist_update == (3, 0)
    with pytest.raises(r.RollupIsPublic):
        r._update_whitelist(public, outbox.WhitelistUpdate((key,)), (4, 0))
    moved = r._update_whitelist(private, outbox.WhitelistUpdate((key,)), (3, 1))
    with pytest.raises(r.OutdatedWhitelistUpdate):
        r._update_whitelist(moved, outbox.WhitelistUpdate((key,)), (3, 0))


def test_moves_and_timeouts_need_a_game(lifecycle) -> None:
    rollup, world = lifecycle
    with pytest.raises(g.NoGame):
        r.refute(rollup, HONEST, LIAR, g.Dissect(0, ()), level=3,
                 inbox_snapshot=world.inbox.snapshot())  # fmt: skip
    with pytest.raises(g.NoGame):
        r.timeout(rollup, HONEST, LIAR, level=3)
