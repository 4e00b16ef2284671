"""Commitments (SORU-SPEC §2.2): the 76-byte encoding, its Blake2b-256 hash checked against
an independent hashlib computation over hand-assembled bytes, ``src1…`` text, strict
decoding, range checks, genesis and the next commitment level."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soru.base.errors import DecodeError
from soru.base.hashes import Hash, InvalidHash
from soru.crypto.errors import BadChecksum, WrongKind
from soru.protocol.commitment import (
    COMMITMENT_SIZE,
    MAX_LEVEL,
    MAX_TICKS,
    ZERO_COMMITMENT_HASH,
    Commitment,
    CommitmentHash,
    InvalidCommitment,
    MalformedCommitment,
    genesis_commitment,
    next_commitment_level,
)
from soru.protocol.constants import MAINNET, SANDBOX
from soru.protocol.errors import ProtocolError

STATE = bytes(range(32))
PREDECESSOR = bytes(range(100, 132))

# Hand-assembled: state ‖ int32 BE 0x01020304 ‖ predecessor ‖ int64 BE 0x0102030405060708.
HAND_BYTES = STATE + b"\x01\x02\x03\x04" + PREDECESSOR + b"\x01\x02\x03\x04\x05\x06\x07\x08"
SAMPLE = Commitment(Hash(STATE), 0x01020304, CommitmentHash(PREDECESSOR), 0x0102030405060708)

ZERO_B58 = "src12UJzB8mg7yU6nWPzicH7ofJbFjyJEbHvwtZdfRXi8DQHNp1LY8"
"""The genesis predecessor (32 zero bytes) as printed by ``octez-codec`` (the ``predecessor``
of a ``smart_rollup_publish`` example encoded with Octez)."""

commitments = st.builds(
    Commitment,
    st.binary(min_size=32, max_size=32),
    st.integers(0, MAX_LEVEL),
    st.binary(min_size=32, max_size=32),
    st.integers(0, MAX_TICKS),
)


def test_encoding_is_the_76_hand_assembled_bytes() -> None:
    assert len(HAND_BYTES) == COMMITMENT_SIZE == 76
    assert SAMPLE.encode() == HAND_BYTES


def test_hash_is_blake2b_256_of_the_encoding() -> None:
    expected = hashlib.blake2b(HAND_BYTES, digest_size=32).digest()
    digest = SAMPLE.hash()
    assert isinstance(digest, CommitmentHash)
    assert digest == expected


def test_genesis_hash_is_independent_hash_of_its_bytes() -> None:
    genesis = genesis_commitment(STATE, 7)
    raw = STATE + (7).to_bytes(4, "big") + bytes(32) + bytes(8)
    assert genesis.encode() == raw
    assert genesis.hash() == hashlib.blake2b(raw, digest_size=32).digest()
    assert genesis.predecessor == ZERO_COMMITMENT_HASH and genesis.number_of_ticks == 0


def test_b58_of_zero_matches_octez() -> None:
    assert ZERO_COMMITMENT_HASH.to_b58() == ZERO_B58
    assert str(ZERO_COMMITMENT_HASH) == ZERO_B58
    assert CommitmentHash.of_b58(ZERO_B58) == bytes(32)


def test_b58_round_trip() -> None:
    digest = SAMPLE.hash()
    text = str(digest)
    assert text.startswith("src1") and len(text) == 54
    parsed = CommitmentHash.of_b58(text)
    assert parsed == digest and isinstance(parsed, CommitmentHash)
    assert repr(digest) == f"CommitmentHash({text!r})"


def test_b58_rejects_other_kinds_and_bad_checksums() -> None:
    from soru.crypto import base58

    state_text = base58.encode(base58.Kind.STATE_HASH, STATE)
    with pytest.raises(WrongKind):
        CommitmentHash.of_b58(state_text)
    text = ZERO_B58
    altered = text[:-1] + ("9" if text[-1] != "9" else "8")
    with pytest.raises(BadChecksum):
        CommitmentHash.of_b58(altered)


def test_decode_round_trip() -> None:
    assert Commitment.decode(HAND_BYTES) == SAMPLE


@pytest.mark.parametrize("size", [0, 1, 75, 77, 152])
def test_decode_refuses_any_other_length(size: int) -> None:
    data = (HAND_BYTES * 3)[:size]
    with pytest.raises(MalformedCommitment):
        Commitment.decode(data)


def test_decode_refuses_out_of_range_fields() -> None:
    negative_level = STATE + b"\xff\xff\xff\xff" + PREDECESSOR + bytes(8)
    negative_ticks = STATE + bytes(4) + PREDECESSOR + b"\x80" + bytes(7)
    for data in (negative_level, negative_ticks):
        with pytest.raises(MalformedCommitment) as caught:
            Commitment.decode(data)
        assert isinstance(caught.value, DecodeError)
        assert isinstance(caught.value, ProtocolError)


def test_range_checks() -> None:
    for level in (-1, MAX_LEVEL + 1):
        with pytest.raises(InvalidCommitment):
            Commitment(Hash(STATE), level, ZERO_COMMITMENT_HASH, 1)
    for ticks in (-1, MAX_TICKS + 1):
        with pytest.raises(InvalidCommitment):
            Commitment(Hash(STATE), 1, ZERO_COMMITMENT_HASH, ticks)
    edge = Commitment(Hash(STATE), MAX_LEVEL, ZERO_COMMITMENT_HASH, MAX_TICKS)
    assert Commitment.decode(edge.encode()) == edge


def test_hash_fields_are_typed_and_checked() -> None:
    built = Commitment(STATE, 3, PREDECESSOR, 1)  # type: ignore[arg-type]
    assert type(built.compressed_state) is Hash
    assert type(built.predecessor) is CommitmentHash
    with pytest.raises(InvalidHash):
        Commitment(Hash(STATE), 3, bytes(31), 1)  # type: ignore[arg-type]


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SAMPLE.inbox_level = 5  # type: ignore[misc]


def test_str_names_the_b58_hashes() -> None:
    text = str(SAMPLE)
    assert str(SAMPLE.hash()) in text and "srs1" in text and str(SAMPLE.predecessor) in text


def test_next_commitment_level() -> None:
    assert next_commitment_level(MAINNET, 100) == 160
    assert next_commitment_level(SANDBOX, 0) == SANDBOX.commitment_period


@given(commitments)
def test_encoding_round_trips(commitment: Commitment) -> None:
    data = commitment.encode()
    assert len(data) == COMMITMENT_SIZE
    assert Commitment.decode(data) == commitment
    assert commitment.hash() == hashlib.blake2b(data, digest_size=32).digest()
