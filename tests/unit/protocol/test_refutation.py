"""The ``smart_rollup_refute`` payload (``soru.protocol.refutation``): every kind of
refutation round-trips byte for byte, and malformed bytes are a typed error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soru.base.hashes import Hash
from soru.protocol.commitment import CommitmentHash
from soru.protocol.dissection import Chunk
from soru.protocol.game import Dissect, Prove
from soru.protocol.refutation import (
    MAX_CHUNKS,
    MalformedRefutation,
    Start,
    decode_refutation,
    encode_refutation,
)

from .test_game import ECHO, World

hashes = st.binary(min_size=32, max_size=32).map(Hash)
chunks = st.builds(Chunk, st.one_of(st.none(), hashes), st.integers(0, 2**64))


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_start_round_trips(player: bytes, opponent: bytes) -> None:
    start = Start(CommitmentHash(player), CommitmentHash(opponent))
    data = encode_refutation(start)
    assert len(data) == 65 and data[0] == 0
    assert decode_refutation(data) == start


@given(st.integers(0, 2**62), st.lists(chunks, max_size=33))
def test_dissections_round_trip(choice: int, dissection: list[Chunk]) -> None:
    move = Dissect(choice, tuple(dissection))
    assert decode_refutation(encode_refutation(move)) == move


def test_a_proof_round_trips() -> None:
    if not ECHO.exists():
        pytest.fail(f"{ECHO} is missing")
    move = Prove(7, World().proof(7))
    data = encode_refutation(move)
    decoded = decode_refutation(data)
    assert isinstance(decoded, Prove) and decoded.choice == 7
    assert encode_refutation(decoded) == data


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x02",
        b"\x00" + bytes(63),  # a start one byte short
        b"\x00" + bytes(65),  # trailing byte
        b"\x01\x00\x02\x00\x00\x00\x00",  # unknown step
        b"\x01\x00\x00\x00\x00\x00\x05\x00",  # chunks longer than the input
        b"\x01\x00\x00\x00\x00\x00\x02\x07\x00",  # bad optional flag
        b"\x01\x00\x00\x00\x00\x00\x00\x00",  # trailing byte after the step
        b"\x01\x00\x01\x00\x00\x00\x01\x09",  # not a refutation proof
    ],
)
def test_malformed_refutations_are_typed_errors(data: bytes) -> None:
    with pytest.raises(MalformedRefutation):
        decode_refutation(data)


def test_a_dissection_has_a_bounded_number_of_chunks() -> None:
    many = Dissect(0, tuple(Chunk(None, t) for t in range(MAX_CHUNKS + 1)))
    with pytest.raises(MalformedRefutation):
        decode_refutation(encode_refutation(many))
