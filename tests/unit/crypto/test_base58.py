"""b58check and addresses against vectors published outside soru.

Where the vectors come from:

* ``tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx`` (Octez sandbox ``bootstrap1``): hash
  ``02298c03…ac78``, forged as the contract ``0000 02298c03…ac78`` in Taquito's local-forging
  tests; its public key ``edpkuBknW28n…`` (Octez sandbox parameters) hashes to it.
* ``tz1gjaF81ZRRvdzjobyfVNsAeSC6PScjfQwN`` forged as ``0000 e7670f32…a63c`` in the same tests.
* ``KT1ThEdxfUcWUwqsdergy3QnbCWGHSUHeHJq``: Octez docs (``smart_rollup_node.rst``) use it as a
  debugger sender; the outbox example of the same docs (SORU-SPEC §2.6) encodes a KT1
  destination as ``01 d1a37c08…ba7c 00``.
* The wasm debugger's default sender, source and rollup are the all-zero hashes (the Octez
  docs call them the "zero addresses").
* ``NetXdQprcVkpaWU`` is Tezos mainnet's chain id, ``7a06a770`` in binary (also the last bytes
  of a signed multisig payload in public Tezos tooling).
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soru.base.errors import DecodeError
from soru.crypto import base58
from soru.crypto.addresses import (
    ContractHash,
    Curve,
    PublicKeyHash,
    RollupAddress,
    decode_contract,
    encode_contract,
    parse_contract,
)
from soru.crypto.base58 import ENCODINGS, Kind
from soru.crypto.errors import (
    BadChecksum,
    Base58Error,
    CryptoError,
    InvalidCharacter,
    UnknownPrefix,
    WrongKind,
    WrongLength,
)

BOOTSTRAP1 = "tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx"
BOOTSTRAP1_HASH = "02298c03ed7d454a101eb7022bc95f7e5f41ac78"
BOOTSTRAP1_PK = "edpkuBknW28nW72KG6RoHtYW7p12T6GKc7nAbwYX5m8Wd9sDVC9yav"
KT1_DOCS = "KT1ThEdxfUcWUwqsdergy3QnbCWGHSUHeHJq"
KT1_DOCS_HASH = "d1a37c088a1221b636bb5fccb35e05181038ba7c"

VECTORS = [
    (BOOTSTRAP1, Kind.ED25519_PUBLIC_KEY_HASH, BOOTSTRAP1_HASH),
    (
        "tz1gjaF81ZRRvdzjobyfVNsAeSC6PScjfQwN",
        Kind.ED25519_PUBLIC_KEY_HASH,
        "e7670f32038107a59a2b9cfefae36ea21f5aa63c",
    ),
    (KT1_DOCS, Kind.CONTRACT_HASH, KT1_DOCS_HASH),
    ("KT18amZmM5W7qDWVt2pH6uj7sCEd3kbzLrHT", Kind.CONTRACT_HASH, "00" * 20),
    ("tz1Ke2h7sDdakHJQh8WX4Z372du1KChsksyU", Kind.ED25519_PUBLIC_KEY_HASH, "00" * 20),
    ("sr163Lv22CdE8QagCwf48PWDTquk6isQwv57", Kind.SMART_ROLLUP_ADDRESS, "00" * 20),
    ("NetXdQprcVkpaWU", Kind.CHAIN_ID, "7a06a770"),
]


def test_every_prefix_prints_its_name_and_length() -> None:
    """The check Octez makes when registering an encoding: the smallest and the largest
    payload both print with the kind's leading characters and the same length."""
    for kind, encoding in ENCODINGS.items():
        for fill in (b"\x00", b"\xff"):
            text = base58.encode(kind, fill * encoding.size)
            assert text.startswith(kind.value), kind
            assert len(text) == encoding.text_length, kind


def test_no_two_kinds_can_be_confused() -> None:
    for kind, encoding in ENCODINGS.items():
        for other, other_encoding in ENCODINGS.items():
            if kind is not other and encoding.size == other_encoding.size:
                assert not other_encoding.prefix.startswith(encoding.prefix)


@pytest.mark.parametrize(("text", "kind", "payload"), VECTORS)
def test_known_vectors(text: str, kind: Kind, payload: str) -> None:
    assert base58.decode(text) == (kind, bytes.fromhex(payload))
    assert base58.decode_as(kind, text) == bytes.fromhex(payload)
    assert base58.encode(kind, bytes.fromhex(payload)) == text


def test_bootstrap1_public_key_hashes_to_its_address() -> None:
    public_key = base58.decode_as(Kind.ED25519_PUBLIC_KEY, BOOTSTRAP1_PK)
    assert hashlib.blake2b(public_key, digest_size=20).hexdigest() == BOOTSTRAP1_HASH


def test_raw_base58_keeps_leading_zeros() -> None:
    assert base58.encode_raw(b"") == ""
    assert base58.encode_raw(b"\x00\x00\x01") == "112"
    assert base58.decode_raw("112") == b"\x00\x00\x01"
    assert base58.decode_raw("") == b""


@given(st.sampled_from(sorted(ENCODINGS)), st.data())
def test_round_trip(kind: Kind, data: st.DataObject) -> None:
    payload = data.draw(st.binary(min_size=ENCODINGS[kind].size, max_size=ENCODINGS[kind].size))
    text = base58.encode(kind, payload)
    assert base58.decode(text) == (kind, payload)


@given(st.binary(max_size=80))
def test_check_round_trip(data: bytes) -> None:
    assert base58.decode_check(base58.encode_check(data)) == data


def _flip_last_char(text: str) -> str:
    last = text[-1]
    return text[:-1] + ("2" if last != "2" else "3")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (_flip_last_char(BOOTSTRAP1), BadChecksum),
        (BOOTSTRAP1[:-1] + "0", InvalidCharacter),
        ("tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSI", InvalidCharacter),
        ("1", BadChecksum),
        (base58.encode_check(b"\xff\xff\xff" + bytes(20)), UnknownPrefix),
        (base58.encode_check(bytes((6, 161, 159)) + bytes(19)), WrongLength),
        (base58.encode_check(bytes((6, 161, 159)) + bytes(21)), WrongLength),
    ],
)
def test_decode_errors(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        base58.decode(text)


def test_error_hierarchy() -> None:
    for error in (BadChecksum, InvalidCharacter, UnknownPrefix, WrongLength, WrongKind):
        assert issubclass(error, Base58Error) and issubclass(error, CryptoError)


def test_decode_as_checks_the_kind() -> None:
    with pytest.raises(WrongKind):
        base58.decode_as(Kind.CONTRACT_HASH, BOOTSTRAP1)


def test_encode_checks_the_size() -> None:
    with pytest.raises(WrongLength):
        base58.encode(Kind.ED25519_PUBLIC_KEY_HASH, bytes(19))


# --- addresses ------------------------------------------------------------------------------


def test_implicit_contract_binary() -> None:
    """Taquito's forging tests write bootstrap1 as a contract: 00 (implicit) 00 (ed25519)."""
    contract = parse_contract(BOOTSTRAP1)
    assert contract == PublicKeyHash(Curve.ED25519, bytes.fromhex(BOOTSTRAP1_HASH))
    assert contract.encode() == bytes.fromhex("00" + BOOTSTRAP1_HASH)
    assert encode_contract(contract) == bytes.fromhex("0000" + BOOTSTRAP1_HASH)
    assert decode_contract(encode_contract(contract)) == contract
    assert str(contract) == BOOTSTRAP1


def test_originated_contract_binary() -> None:
    """The outbox example of the Octez docs: 01 ‖ KT1 hash ‖ 00."""
    contract = parse_contract(KT1_DOCS)
    assert contract == ContractHash(bytes.fromhex(KT1_DOCS_HASH))
    assert encode_contract(contract) == bytes.fromhex("01" + KT1_DOCS_HASH + "00")
    assert decode_contract(bytes.fromhex("01" + KT1_DOCS_HASH + "00")) == contract
    assert ContractHash.of_b58(KT1_DOCS).to_b58() == KT1_DOCS


@pytest.mark.parametrize(
    ("text", "curve"),
    [
        ("tz2VGBaXuS6rnaa5hpC92qkgadRJKdEbeGwc", Curve.SECP256K1),
        ("tz3WEJYwJ6pPwVbSL8FrSoAXRmFHHZTuEnMA", Curve.P256),
        (base58.encode(Kind.BLS12_381_PUBLIC_KEY_HASH, bytes(range(20))), Curve.BLS12_381),
    ],
)
def test_public_key_hash_curves(text: str, curve: Curve) -> None:
    pkh = PublicKeyHash.of_b58(text)
    assert pkh.curve is curve
    assert pkh.encode()[0] == curve.value
    assert PublicKeyHash.decode(pkh.encode()) == pkh
    assert pkh.to_b58() == text


def test_rollup_address() -> None:
    text = "sr1Ghq66tYK9y3r8CC1Tf8i8m5nxh8nTvZEf"  # mainnet canonical rollup (SORU-SPEC §2.6)
    address = RollupAddress.of_b58(text)
    assert len(address.digest) == 20 and str(address) == text
    with pytest.raises(WrongKind):
        RollupAddress.of_b58(KT1_DOCS)


@pytest.mark.parametrize(
    "data",
    [
        "02" + "00" * 21,  # unknown contract tag
        "01" + KT1_DOCS_HASH + "01",  # non-zero padding
        "0004" + "00" * 20,  # unknown curve
        "01" + KT1_DOCS_HASH,  # too short
        "0000" + BOOTSTRAP1_HASH + "00",  # too long
    ],
)
def test_contract_decode_errors(data: str) -> None:
    with pytest.raises(DecodeError):
        decode_contract(bytes.fromhex(data))


def test_parse_errors() -> None:
    with pytest.raises(WrongKind):
        parse_contract("sr163Lv22CdE8QagCwf48PWDTquk6isQwv57")
    with pytest.raises(WrongKind):
        PublicKeyHash.of_b58(KT1_DOCS)
    with pytest.raises(DecodeError):
        PublicKeyHash.decode(bytes(20))
    with pytest.raises(WrongLength):
        ContractHash(bytes(19))
