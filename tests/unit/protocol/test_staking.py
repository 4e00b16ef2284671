"""Commitments and stakes (SORU-SPEC §4.1–§4.3, §4.8): every error raised in a scenario where
everything else is valid (and the old value left equal), the lifecycle, dangling and old
cemented commitments, game outcomes, and a property over random operation sequences."""

from __future__ import annotations

import hashlib
from dataclasses import FrozenInstanceError, fields, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soru.base.hashes import Hash
from soru.protocol.commitment import Commitment, CommitmentHash, genesis_commitment
from soru.protocol.constants import RollupConstants
from soru.protocol.errors import ProtocolError
from soru.protocol.staking import (
    BadInboxLevel,
    Burn,
    CommitmentFromFuture,
    CommitmentPastCurfew,
    CommitmentTooOld,
    CommitmentTooRecent,
    Disputed,
    DoublePublish,
    Freeze,
    NotStaked,
    NotStakedOnLccOrAncestor,
    NoValidCommitmentToCement,
    Reward,
    StakerDoubleStake,
    StakerFundsTooLow,
    Stakes,
    TooFarAhead,
    Unfreeze,
    UnknownCommitment,
    ZeroTickCommitment,
    active_backers,
    cement,
    draw,
    find_commitment,
    get_commitment,
    is_staker,
    lcc,
    originate,
    publish_commitment,
    punish,
    recover_bond,
    remove_staker,
    staked_on,
)

C = RollupConstants(
    commitment_period=10,
    challenge_window=20,
    timeout_period=5,
    max_lookahead=100,
    max_active_outbox_levels=40,
    stake_amount=1_000,
    max_stored_cemented_commitments=3,
).check()
STAKE = C.stake_amount
RICH = 10**12
GENESIS = genesis_commitment(Hash(bytes(32)), 0)
ROOT = originate(GENESIS)


def state(tag: object) -> Hash:
    return Hash(hashlib.blake2b(repr(tag).encode(), digest_size=32).digest())


def commit(predecessor: Commitment, tag: object = "honest", ticks: int = 7) -> Commitment:
    """The commitment one period after ``predecessor``."""
    level = predecessor.inbox_level + C.commitment_period
    return Commitment(state((tag, level)), level, predecessor.hash(), ticks)


def publish(
    stakes: Stakes, staker: str, commitment: Commitment, level: int, balance: int = RICH
) -> Stakes:
    return publish_commitment(stakes, C, staker, commitment, level, balance)[0]


def snapshot(stakes: Stakes) -> tuple[Any, ...]:
    """A deep, independent copy of every field (mappings copied into fresh dicts)."""
    return tuple(
        dict(value) if isinstance(value, type(stakes.stakers)) else value
        for value in (getattr(stakes, f.name) for f in fields(stakes))
    )


def refused(error: type[ProtocolError], rule: Any, stakes: Stakes, *args: Any) -> None:
    """``rule(stakes, *args)`` raises exactly ``error`` and leaves ``stakes`` as it was."""
    before = snapshot(stakes)
    with pytest.raises(error) as caught:
        rule(stakes, *args)
    assert type(caught.value) is error
    assert snapshot(stakes) == before


C1 = commit(GENESIS)
C1_BAD = commit(GENESIS, "lie")
C2 = commit(C1)


# --- the happy lifecycle --------------------------------------------------------------------


def test_originate() -> None:
    assert lcc(ROOT) == (GENESIS.hash(), 0)
    assert ROOT.cemented == (GENESIS.hash(),)
    assert get_commitment(ROOT, GENESIS.hash()) == GENESIS
    assert not ROOT.stakers and ROOT.next_staker_index == 0


def test_lifecycle_two_stakers_one_commitment_two_bonds() -> None:
    s1, effects = publish_commitment(ROOT, C, "alice", C1, 11, STAKE)
    assert effects == (Freeze("alice", STAKE),)
    s2, effects = publish_commitment(s1, C, "bob", C1, 12, STAKE)
    assert effects == (Freeze("bob", STAKE),)
    digest = C1.hash()
    assert list(s2.commitments) == [GENESIS.hash(), digest]
    assert s2.commitments_per_level[10] == (digest,)
    assert active_backers(s2, digest) == ("alice", "bob")
    assert staked_on(s2, "alice", digest) and staked_on(s2, "bob", digest)
    assert s2.added_levels[digest] == 11 and s2.first_publication_levels[10] == 11
    assert s2.stakers["bob"].index == 1 and s2.stakers["bob"].last_staked_level == 10
    refused(NotStakedOnLccOrAncestor, recover_bond, s2, "alice")
    refused(CommitmentTooRecent, cement, s2, C, 11 + C.challenge_window - 1)
    s3, cemented = cement(s2, C, 11 + C.challenge_window)
    assert cemented == digest and lcc(s3) == (digest, 10)
    assert s3.cemented == (GENESIS.hash(), digest)
    assert digest not in s3.backers and 10 not in s3.commitments_per_level
    assert digest not in s3.added_levels and 10 not in s3.first_publication_levels
    s4, effects = recover_bond(s3, "alice")
    assert effects == (Unfreeze("alice", STAKE),)
    s5, effects = recover_bond(s4, "bob")
    assert effects == (Unfreeze("bob", STAKE),)
    assert not is_staker(s5, "alice") and not s5.stakers
    assert lcc(s2) == (GENESIS.hash(), 0) and s2.stakers.keys() == {"alice", "bob"}


def test_one_bond_covers_later_commitments() -> None:
    s1 = publish(ROOT, "alice", C1, 11)
    s2, effects = publish_commitment(s1, C, "alice", C2, 21, 0)
    assert effects == ()
    assert s2.stakers["alice"].last_staked_level == 20


def test_publishing_on_a_disputed_commitment_is_allowed() -> None:
    s = publish(publish(ROOT, "alice", C1, 11), "bob", C1_BAD, 12)
    s = publish(s, "bob", commit(C1_BAD), 21)
    assert staked_on(s, "bob", commit(C1_BAD).hash())


# --- every error of publish_commitment ------------------------------------------------------


def test_zero_tick_commitment() -> None:
    refused(
        ZeroTickCommitment, publish_commitment, ROOT, C, "alice", commit(GENESIS, ticks=0), 11, RICH
    )


def test_staker_funds_too_low() -> None:
    refused(StakerFundsTooLow, publish_commitment, ROOT, C, "alice", C1, 11, STAKE - 1)
    assert publish_commitment(ROOT, C, "alice", C1, 11, STAKE)[1] == (Freeze("alice", STAKE),)


def test_commitment_too_old() -> None:
    s, _ = cement(publish(ROOT, "alice", C1, 11), C, 31)
    assert find_commitment(s, GENESIS.hash()) == GENESIS  # the predecessor is still stored
    refused(CommitmentTooOld, publish_commitment, s, C, "bob", C1_BAD, 32, RICH)


def test_lookahead() -> None:
    s, tip = ROOT, GENESIS
    for _ in range(C.max_lookahead // C.commitment_period):
        tip = commit(tip)
        s = publish(s, "alice", tip, tip.inbox_level + 1)
    assert tip.inbox_level - s.lcc_level == C.max_lookahead  # the farthest allowed
    beyond = commit(tip)
    refused(TooFarAhead, publish_commitment, s, C, "alice", beyond, beyond.inbox_level + 1, RICH)


def test_unknown_predecessor() -> None:
    stray = Commitment(state("x"), 10, CommitmentHash(state("nothing")), 7)
    refused(UnknownCommitment, publish_commitment, ROOT, C, "alice", stray, 11, RICH)
    refused(UnknownCommitment, get_commitment, ROOT, state("nothing"))
    assert find_commitment(ROOT, state("nothing")) is None


def test_bad_inbox_level() -> None:
    early = Commitment(state("x"), 9, GENESIS.hash(), 7)
    refused(BadInboxLevel, publish_commitment, ROOT, C, "alice", early, 11, RICH)


def test_curfew() -> None:
    s = publish(ROOT, "alice", C1, 11)
    last = 11 + C.challenge_window
    refused(CommitmentPastCurfew, publish_commitment, s, C, "bob", C1_BAD, last + 1, RICH)
    refused(CommitmentPastCurfew, publish_commitment, s, C, "bob", C1, last + 1, RICH)
    assert staked_on(publish(s, "bob", C1_BAD, last), "bob", C1_BAD.hash())


def test_commitment_from_future() -> None:
    refused(CommitmentFromFuture, publish_commitment, ROOT, C, "alice", C1, 10, RICH)
    assert is_staker(publish(ROOT, "alice", C1, 11), "alice")


def test_double_publish() -> None:
    s = publish(ROOT, "alice", C1, 11)
    refused(DoublePublish, publish_commitment, s, C, "alice", C1, 12, RICH)


def test_staker_double_stake() -> None:
    s = publish(ROOT, "alice", C1, 11)
    refused(StakerDoubleStake, publish_commitment, s, C, "alice", C1_BAD, 12, RICH)


def test_restaking_after_a_loss_gets_a_fresh_index() -> None:
    s = publish(ROOT, "alice", C1, 11)
    s, _ = remove_staker(s, C, "alice")
    assert not staked_on(s, "alice", C1.hash())
    s, effects = publish_commitment(s, C, "alice", C1, 12, STAKE)
    assert effects == (Freeze("alice", STAKE),)
    assert s.stakers["alice"].index == 1 and active_backers(s, C1.hash()) == ("alice",)


# --- every error of cement ------------------------------------------------------------------


def test_no_valid_commitment_to_cement() -> None:
    refused(NoValidCommitmentToCement, cement, ROOT, C, 1_000)
    lost, _ = remove_staker(publish(ROOT, "alice", C1, 11), C, "alice")
    assert find_commitment(lost, C1.hash()) == C1  # still stored, but backed by nobody
    refused(NoValidCommitmentToCement, cement, lost, C, 1_000)


def test_disputed() -> None:
    s = publish(publish(ROOT, "alice", C1, 11), "bob", C1_BAD, 12)
    refused(Disputed, cement, s, C, 1_000)


def test_commitment_too_recent_counts_from_first_publication() -> None:
    s = publish(publish(ROOT, "alice", C1, 11), "bob", C1, 25)
    refused(CommitmentTooRecent, cement, s, C, 30)
    assert cement(s, C, 31)[1] == C1.hash()


def test_dangling_commitments_are_deleted() -> None:
    s = publish(publish(ROOT, "alice", C1, 11), "bob", C1_BAD, 12)
    on_bad = commit(C1_BAD)
    s = publish(s, "carol", on_bad, 21)
    s, effects = punish(s, C, "bob", "alice")
    assert effects == (Burn("bob", STAKE), Reward("alice", STAKE // 2))
    assert find_commitment(s, C1_BAD.hash()) == C1_BAD  # a loser's commitment stays
    cemented, _ = cement(s, C, 31)
    assert find_commitment(cemented, C1_BAD.hash()) is None
    assert C1_BAD.hash() not in cemented.backers and C1_BAD.hash() not in cemented.added_levels
    refused(
        UnknownCommitment, publish_commitment, cemented, C, "dave", commit(C1_BAD, "2"), 32, RICH
    )
    # carol's commitment extends a dangling one: never a candidate.
    refused(NoValidCommitmentToCement, cement, cemented, C, 1_000)
    assert find_commitment(s, C1_BAD.hash()) == C1_BAD  # the earlier value is untouched


def test_only_the_last_cemented_contents_are_kept() -> None:
    s, chain, now = ROOT, [GENESIS], 11
    for _ in range(5):
        chain.append(commit(chain[-1]))
        s = publish(s, "alice", chain[-1], now)
        now += C.challenge_window
        s, _ = cement(s, C, now)
        kept = chain[-C.max_stored_cemented_commitments :]
        assert s.cemented == tuple(c.hash() for c in kept)
    assert [find_commitment(s, c.hash()) for c in chain] == [None, None, None, *chain[3:]]
    assert lcc(s) == (chain[-1].hash(), 50)


# --- bonds and game outcomes ----------------------------------------------------------------


def test_recover_bond_errors() -> None:
    refused(NotStaked, recover_bond, ROOT, "alice")
    refused(NotStakedOnLccOrAncestor, recover_bond, publish(ROOT, "alice", C1, 11), "alice")


def test_recover_bond_after_staking_on_an_ancestor_of_the_lcc() -> None:
    s = publish(publish(ROOT, "alice", C1, 11), "bob", C1, 11)
    s = publish(s, "bob", C2, 21)
    s, _ = cement(cement(s, C, 31)[0], C, 41)
    assert recover_bond(s, "alice")[1] == (Unfreeze("alice", STAKE),)
    assert recover_bond(s, "bob")[1] == (Unfreeze("bob", STAKE),)


def test_remove_staker() -> None:
    refused(NotStaked, remove_staker, ROOT, C, "alice")
    s = publish(ROOT, "alice", C1, 11)
    removed, effects = remove_staker(s, C, "alice")
    assert effects == (Burn("alice", STAKE),)
    assert not is_staker(removed, "alice") and active_backers(removed, C1.hash()) == ()
    assert C1.hash() in removed.backers and is_staker(s, "alice")


def test_punish_only_a_loser_still_staked() -> None:
    s = publish(publish(ROOT, "alice", C1, 11), "bob", C1_BAD, 12)
    once, effects = punish(s, C, "bob", "alice")
    assert effects == (Burn("bob", STAKE), Reward("alice", STAKE // 2))
    again, effects = punish(once, C, "bob", "alice")
    assert effects == () and again == once


def test_draw_burns_both_bonds() -> None:
    s = publish(publish(ROOT, "alice", C1, 11), "bob", C1_BAD, 12)
    after, effects = draw(s, C, "alice", "bob")
    assert effects == (Burn("alice", STAKE), Burn("bob", STAKE))
    assert not after.stakers
    lone, effects = draw(remove_staker(s, C, "bob")[0], C, "alice", "bob")
    assert effects == (Burn("alice", STAKE),) and not lone.stakers


def test_values_are_immutable() -> None:
    s = publish(ROOT, "alice", C1, 11)
    with pytest.raises(FrozenInstanceError):
        s.lcc_level = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.stakers["eve"] = s.stakers["alice"]  # type: ignore[index]
    source = {C1.hash(): C1}
    built = replace(s, commitments=source)
    source.clear()
    assert built.commitments == {C1.hash(): C1}


# --- property: random operation sequences ---------------------------------------------------

STAKERS = ("alice", "bob", "carol")
publishes = st.tuples(
    st.just("publish"),
    st.sampled_from(STAKERS),
    st.sampled_from((1, 1, 1, 2, 3)),
    st.integers(0, 3),
    st.sampled_from((0, 0, 0, 1)),
)
operations = st.lists(
    st.one_of(
        publishes,
        publishes,
        publishes,
        st.tuples(st.just("cement")),
        st.tuples(st.just("cement")),
        st.tuples(st.just("recover"), st.sampled_from(STAKERS)),
        st.tuples(st.just("punish"), st.sampled_from(STAKERS), st.sampled_from(STAKERS)),
        st.tuples(st.just("wait"), st.integers(1, 25)),
        st.tuples(st.just("wait"), st.integers(1, 25)),
    ),
    max_size=60,
)


def _random_commitment(stakes: Stakes, ahead: int, pick: int, variant: int) -> Commitment:
    level = stakes.lcc_level + ahead * C.commitment_period
    previous = level - C.commitment_period
    options = (
        [stakes.lcc_hash]
        if previous == stakes.lcc_level
        else list(stakes.commitments_per_level.get(previous, ()))
    )
    predecessor = options[pick % len(options)] if options else CommitmentHash(state("none"))
    return Commitment(state((variant, level)), level, predecessor, 1 + variant)


def _apply(stakes: Stakes, op: tuple[Any, ...], level: int) -> Stakes:
    if op[0] == "publish":
        commitment = _random_commitment(stakes, op[2], op[3], op[4])
        return publish_commitment(stakes, C, op[1], commitment, level, RICH)[0]
    if op[0] == "cement":
        after, digest = cement(stakes, C, level)
        assert after.lcc_level == stakes.lcc_level + C.commitment_period
        assert get_commitment(after, digest).predecessor == stakes.lcc_hash
        return after
    if op[0] == "recover":
        return recover_bond(stakes, op[1])[0]
    if op[0] == "punish":
        return punish(stakes, C, op[1], op[2])[0] if op[1] != op[2] else stakes
    return stakes


@settings(max_examples=150, deadline=None)
@given(operations)
def test_random_operations_never_change_earlier_values(ops: list[tuple[Any, ...]]) -> None:
    history = [(ROOT, snapshot(ROOT))]
    stakes, level = ROOT, C.commitment_period
    for op in ops:
        level += op[1] if op[0] == "wait" else 1
        try:
            after = _apply(stakes, op, level)
        except ProtocolError:
            after = stakes
        if after.lcc_hash != stakes.lcc_hash:
            assert op[0] == "cement"
        else:
            assert after.lcc_level == stakes.lcc_level
        assert after.cemented[-1] == after.lcc_hash
        assert len(after.cemented) <= C.max_stored_cemented_commitments
        assert all(info.bond == STAKE for info in after.stakers.values())
        stakes = after
        history.append((stakes, snapshot(stakes)))
    for value, copy in history:
        assert snapshot(value) == copy
    assert (stakes.lcc_level - GENESIS.inbox_level) % C.commitment_period == 0
