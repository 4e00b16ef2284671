"""Dissections (SORU-SPEC §4.6): the validity rule, the honest player's dissection, and a
game between an honest and a lying hash function that always ends on the lie's first tick."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soru.base.hashes import Hash
from soru.protocol.dissection import (
    Chunk,
    InvalidDissection,
    check_dissection,
    expected_sections,
    first_disagreement,
    new_dissection,
)


def honest(tick: int) -> Hash:
    return Hash(hashlib.blake2b(b"honest %d" % tick, digest_size=32).digest())


def liar_from(lie: int):
    def hash_at(tick: int) -> Hash:
        if tick < lie:
            return honest(tick)
        return Hash(hashlib.blake2b(b"lie %d" % tick, digest_size=32).digest())

    return hash_at


def test_section_counts() -> None:
    assert expected_sections(1000) == 32 and expected_sections(32) == 32
    assert expected_sections(31) == 31 and expected_sections(2) == 2
    with pytest.raises(InvalidDissection):
        expected_sections(1)


def test_the_rules() -> None:
    start, stop = Chunk(honest(0), 0), Chunk(liar_from(0)(100), 100)
    good = new_dissection(start, 100, honest)
    check_dissection(start, stop, good)
    bad = {
        "too few": good[:-2] + [good[-1]],
        "wrong start": [Chunk(honest(1), 0)] + good[1:],
        "agrees with the stop": good[:-1] + [stop],
        "not increasing": good[:3] + [good[2]] + good[4:],
        "blocked then not": good[:5] + [Chunk(None, good[5].tick)] + good[6:],
    }
    for name, dissection in bad.items():
        with pytest.raises(InvalidDissection):
            check_dissection(start, stop, dissection)
        assert name


@given(
    distance=st.integers(min_value=2, max_value=10**12),
    lie=st.floats(min_value=0.0, max_value=1.0),
)
def test_the_honest_player_always_narrows_to_the_first_lie(distance: int, lie: float) -> None:
    first_lie = 1 + int(lie * (distance - 1))
    liar = liar_from(first_lie)
    start, stop = Chunk(honest(0), 0), Chunk(liar(distance), distance)
    rounds = 0
    while stop.tick - start.tick > 1:
        mover, other = (honest, liar) if rounds % 2 == 0 else (liar, honest)
        dissection = new_dissection(start, stop.tick, mover)
        check_dissection(start, stop, dissection)
        start, stop = first_disagreement(dissection, other)
        rounds += 1
    assert stop.tick == first_lie and start.tick == first_lie - 1
    assert rounds <= 2 * 9  # 32 sections a move: log32(10**12) < 8


@given(
    snaps=st.integers(min_value=1, max_value=5000),
    tail=st.integers(min_value=0, max_value=999),
    lie=st.floats(min_value=0.0, max_value=1.0),
)
def test_the_wasm_rule_finds_the_guilty_kernel_run_then_the_tick(snaps, tail, lie) -> None:
    """With ticks_per_snapshot, sections longer than a kernel_run are cut at its
    boundaries, and the game still ends on the lie's first tick."""
    t = 1000
    distance = snaps * t + tail
    if distance < 2:
        return
    first_lie = 1 + int(lie * (distance - 1))
    liar = liar_from(first_lie)
    start, stop = Chunk(honest(0), 0), Chunk(liar(distance), distance)
    rounds = 0
    while stop.tick - start.tick > 1:
        mover, other = (honest, liar) if rounds % 2 == 0 else (liar, honest)
        dissection = new_dissection(start, stop.tick, mover, ticks_per_snapshot=t)
        check_dissection(start, stop, dissection, ticks_per_snapshot=t)
        if stop.tick - start.tick > t:
            assert all(c.tick % t == 0 for c in dissection[1:-1])
        start, stop = first_disagreement(dissection, other)
        rounds += 1
    assert (start.tick, stop.tick) == (first_lie - 1, first_lie)


def test_the_wasm_rule_refuses_unaligned_cuts() -> None:
    t = 1000
    start, stop = Chunk(honest(0), 0), Chunk(liar_from(0)(10 * t), 10 * t)
    good = new_dissection(start, stop.tick, honest, ticks_per_snapshot=t)
    assert [c.tick for c in good] == [i * t for i in range(11)]
    check_dissection(start, stop, good, ticks_per_snapshot=t)
    shifted = good[:3] + [Chunk(honest(2 * t + 1), 2 * t + 1)] + good[4:]
    with pytest.raises(InvalidDissection):
        check_dissection(start, stop, shifted, ticks_per_snapshot=t)
    generic = new_dissection(start, stop.tick, honest)  # 32 sections, unaligned
    with pytest.raises(InvalidDissection):
        check_dissection(start, stop, generic, ticks_per_snapshot=t)
