"""Domain-tagged Blake2b (soru.crypto.hashing)."""

import hashlib

import pytest

from soru.crypto.hashing import PERSON_SIZE, Tag, blake2b_160, blake2b_256


def test_tezos_domain_is_plain_blake2b() -> None:
    data = b"hello"
    assert blake2b_256(Tag.TEZOS, data) == hashlib.blake2b(data, digest_size=32).digest()
    assert blake2b_160(Tag.TEZOS, data) == hashlib.blake2b(data, digest_size=20).digest()


def test_parts_are_concatenated() -> None:
    assert blake2b_256(Tag.MERKLE_NODE, b"ab", b"c") == blake2b_256(Tag.MERKLE_NODE, b"abc")
    assert blake2b_256(Tag.MERKLE_NODE) == blake2b_256(Tag.MERKLE_NODE, b"")


def test_domains_separate() -> None:
    digests = {blake2b_256(tag, b"same input") for tag in Tag}
    assert len(digests) == len(Tag)


def test_tags_are_unique_and_short() -> None:
    values = [tag.value for tag in Tag]
    assert len(set(values)) == len(values)
    assert all(len(value) <= PERSON_SIZE for value in values)


def test_raw_domain_bytes_allowed_but_bounded() -> None:
    assert len(blake2b_256(b"x" * 16, b"")) == 32
    with pytest.raises(ValueError):
        blake2b_256(b"x" * 17, b"")
