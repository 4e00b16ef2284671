"""Ed25519 keys and signatures against vectors published outside soru.

Where the vectors come from:

* RFC 8032 §7.1, tests 1 and 2: seed, public key, message, signature of plain Ed25519.
* Octez ``src/lib_crypto/test/key_encoding_vectors.ml`` (``ed25519_key_encodings``): a seed
  in hex with the ``tz1``, ``edpk`` and ``edsk`` Octez derives from it.
* The Octez sandbox accounts (``src/bin_client/octez-init-sandboxed-client.sh``,
  ``BOOTSTRAP{1..5}_{IDENTITY,PUBLIC,SECRET}``): ``edsk`` (54 characters), ``edpk``, ``tz1``.
* Taquito's ``InMemorySigner`` tests (``packages/taquito-signer/test/taquito-signer.spec.ts``,
  "Tz1 64 bytes" and "Tz1 32 bytes"): a 98-character and a 54-character ``edsk``, their
  ``edpk`` and ``tz1``, the 98-character form of the second, and the ``sig…`` signature of
  the bytes ``1234`` under the generic-operation watermark ``03`` — a Tezos signature
  (Ed25519 over Blake2b-256 of ``03 1234``) made by independent code.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soru.base.errors import DecodeError
from soru.crypto import base58
from soru.crypto.addresses import Curve, PublicKeyHash
from soru.crypto.base58 import Kind
from soru.crypto.errors import (
    BadChecksum,
    BadWatermark,
    CryptoError,
    InvalidCharacter,
    KeyMismatch,
    UnknownPrefix,
    WrongKind,
    WrongLength,
)
from soru.crypto.keys import (
    PublicKey,
    SecretKey,
    Signature,
    Watermark,
    check_operation_signature,
    sign_operation,
    signing_digest,
    watermark_bytes,
)

RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3970"
        "1cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613"
        "d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]

OCTEZ_KEY_ENCODINGS = [
    (
        "98b94d2fa3f98746d3c8b2d1cdde21e43d95b260d8665503a47f5d33da3586d4",
        "tz1SodoUsWVe1Yey9eMFbqRUtNpBWfir5NRr",
        "edpkufnz668CdgnVC4X5KRvJoXCMgicr29Tjmr5vxGzvMdipwkTZmM",
        "edsk3qAQSJaDBSYN2PCMdv7BuJoBKeRyDFq5uPAwDfFRAhQdwHxPMN",
    ),
    (
        "cd8c3ff8fa653379b8e215aeafc215c79eb3916860c8d799c9238ebacff746c3",
        "tz1hzyx6kUgxkM8DeWDQ8Zd1jqTdkHFjMRMT",
        "edpktkyJU8x7cyDuFPFqR7W5fAGB2jgZF38YD57K7jXxRAPUutt2q5",
        "edsk4ERiv9CNq5KqVnAisihtXskKQLopY9Ux2gNuQbH61zahXx9xjR",
    ),
    (
        "90dd420fc784303a312cd6197ab82f1876119316b88a497c2d69d963c25fc5fe",
        "tz1SksgUtxybzXWTGFk6vYGZUn2c1pw4UdXa",
        "edpktppVJVhoLCs27UwX9BFEPN4Q3BTiLpv8y4ipHUQmxPki17w79A",
        "edsk3mheGYWcVbuNbrYmP4gQfeGyfogmyZ8UTyWZWbyBSPBp1o8rxt",
    ),
]

BOOTSTRAP_ACCOUNTS = [
    (
        "edsk3gUfUPyBSfrS9CCgmCiQsTCHGkviBDusMxDJstFtojtc1zcpsh",
        "edpkuBknW28nW72KG6RoHtYW7p12T6GKc7nAbwYX5m8Wd9sDVC9yav",
        "tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx",
    ),
    (
        "edsk39qAm1fiMjgmPkw1EgQYkMzkJezLNewd7PLNHTkr6w9XA2zdfo",
        "edpktzNbDAUjUk697W7gYg2CRuBQjyPxbEg8dLccYYwKSKvkPvjtV9",
        "tz1gjaF81ZRRvdzjobyfVNsAeSC6PScjfQwN",
    ),
    (
        "edsk4ArLQgBTLWG5FJmnGnT689VKoqhXwmDPBuGx3z4cvwU9MmrPZZ",
        "edpkuTXkJDGcFd5nh6VvMz8phXxU3Bi7h6hqgywNFi1vZTfQNnS1RV",
        "tz1faswCTDciRzE4oJ9jn2Vm2dvjeyA9fUzU",
    ),
    (
        "edsk2uqQB9AY4FvioK2YMdfmyMrer5R8mGFyuaLLFfSRo8EoyNdht3",
        "edpkuFrRoDSEbJYgxRtLx2ps82UdaYc1WwfS9sE11yhauZt5DgCHbU",
        "tz1b7tUupMgCNw2cCLpKTkSD1NZzB5TkP2sv",
    ),
    (
        "edsk4QLrcijEffxV31gGdN2HU7UpyJjA8drFoNcmnB28n89YjPNRFm",
        "edpkv8EUUH68jmo3f7Um5PezmfGrRF24gnfLpH3sVNwJnV5bVCxL2n",
        "tz1ddb9NMYHZi5UzPdzTZMYQQZoMub195zgv",
    ),
]

TAQUITO_64 = (
    "edskS3DtVSbWbPD1yviMGebjYwWJtruMjDcfAZsH9uba22EzK"
    "eYhmQkkraFosFETmEMfFNVcDYQ5QbFerj9ozDKroXZ6mb5oxV"
)
TAQUITO_64_PK = "edpkvJELH15q7a8ShGRsoULGxLQfUQaGahwRTFywCsnWPPdwnmASRH"
TAQUITO_64_PKH = "tz1RvhdZ5pcjD19vCCK9PgZpnmErTba3dsBs"
TAQUITO_64_SIG = (
    "sigeeho3jK4MZKsyqcTc9mjhtz9w6enG3AFniufgUXCuXFW7"
    "VjShxLoNmxqkQSRYUwP1LHRMere5LrvxcqLgU9KmDGN356Yz"
)
TAQUITO_32 = "edsk4TjJWEszkHKono7XMnepVqwi37FrpbVt1KCsifJeAGimxheShG"
TAQUITO_32_AS_64 = (
    "edskS8rh49SrQHQxMu5sVsyRXX3Kaodfgbk8qqtTFjxSg2tJb"
    "LEtbMnimfJzSz7TTZQeP7EMhZoegHbQWa548RcXJP9kn2J8P8"
)
TAQUITO_32_PK = "edpkuhmrbunxumoiVdQuxBZUPMmwkPt7yLtY5Qnua3VJVTLWr3vXXa"
TAQUITO_32_PKH = "tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv"
TAQUITO_32_SIG = (
    "sigpKAnfQGzG4Rk5pV7z9mx2TL9veQCHD7qN4PhsUZMj1Bqs"
    "umBoApBS9Ue616vKVymxrzfZE2L4h27zzxRUVy6BNPRMpufb"
)

MAINNET_CHAIN_ID = bytes.fromhex("7a06a770")  # NetXdQprcVkpaWU

BOOTSTRAP1 = SecretKey.of_b58(BOOTSTRAP_ACCOUNTS[0][0])


# --- vectors ----------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032)
def test_rfc8032(seed: str, public: str, message: str, signature: str) -> None:
    """Plain Ed25519, checked against the RFC independently of any Tezos source."""
    key = SecretKey.from_seed(bytes.fromhex(seed))
    assert key.public_key().raw.hex() == public
    assert key.sign(bytes.fromhex(message)).raw.hex() == signature
    assert key.public_key().verify(bytes.fromhex(message), Signature(bytes.fromhex(signature)))


@pytest.mark.parametrize(("seed", "pkh", "public", "secret"), OCTEZ_KEY_ENCODINGS)
def test_octez_key_encodings(seed: str, pkh: str, public: str, secret: str) -> None:
    key = SecretKey.from_seed(bytes.fromhex(seed))
    assert key.to_b58() == secret
    assert key.public_key().to_b58() == public
    assert key.public_key().hash().to_b58() == pkh
    assert SecretKey.of_b58(secret) == key
    assert PublicKey.of_b58(public) == key.public_key()


@pytest.mark.parametrize(("secret", "public", "pkh"), BOOTSTRAP_ACCOUNTS)
def test_octez_sandbox_accounts(secret: str, public: str, pkh: str) -> None:
    key = SecretKey.of_b58(secret)
    assert key.to_b58() == secret
    assert key.public_key() == PublicKey.of_b58(public)
    assert str(key.public_key()) == public
    assert key.public_key().hash() == PublicKeyHash.of_b58(pkh)
    assert str(key.public_key().hash()) == pkh


def test_taquito_64_byte_secret_key_and_signature() -> None:
    key = SecretKey.of_b58(TAQUITO_64)
    assert str(key.public_key()) == TAQUITO_64_PK
    assert str(key.public_key().hash()) == TAQUITO_64_PKH
    assert len(key.to_b58()) == 54 and key.to_b58().startswith("edsk")
    signature = sign_operation(key, Watermark.GENERIC_OPERATION, bytes.fromhex("1234"))
    assert signature.to_generic_b58() == TAQUITO_64_SIG
    assert Signature.of_b58(TAQUITO_64_SIG) == signature
    assert Signature.of_b58(signature.to_b58()) == signature
    assert check_operation_signature(
        key.public_key(), Watermark.GENERIC_OPERATION, bytes.fromhex("1234"), signature
    )


def test_taquito_32_byte_seed_and_signature() -> None:
    key = SecretKey.of_b58(TAQUITO_32)
    assert key.to_b58() == TAQUITO_32
    assert SecretKey.of_b58(TAQUITO_32_AS_64) == key
    assert str(key.public_key()) == TAQUITO_32_PK
    assert str(key.public_key().hash()) == TAQUITO_32_PKH
    signature = Signature.of_b58(TAQUITO_32_SIG)
    assert sign_operation(key, Watermark.GENERIC_OPERATION, bytes.fromhex("1234")) == signature
    assert check_operation_signature(
        PublicKey.of_b58(TAQUITO_32_PK), 0x03, bytes.fromhex("1234"), signature
    )


def test_operation_signature_is_ed25519_over_blake2b_of_watermarked_bytes() -> None:
    payload = b"forged operation bytes"
    digest = hashlib.blake2b(b"\x03" + payload, digest_size=32).digest()
    assert signing_digest(Watermark.GENERIC_OPERATION, payload) == digest
    signature = sign_operation(BOOTSTRAP1, Watermark.GENERIC_OPERATION, payload)
    assert signature == BOOTSTRAP1.sign(digest)
    assert BOOTSTRAP1.public_key().verify(digest, signature)
    assert not BOOTSTRAP1.public_key().verify(payload, signature)


def test_watermarks() -> None:
    assert watermark_bytes(Watermark.GENERIC_OPERATION) == b"\x03"
    assert watermark_bytes(3) == b"\x03"
    assert watermark_bytes(Watermark.BLOCK_HEADER, MAINNET_CHAIN_ID) == b"\x01" + MAINNET_CHAIN_ID
    assert watermark_bytes(Watermark.ENDORSEMENT, MAINNET_CHAIN_ID) == b"\x02" + MAINNET_CHAIN_ID
    payload = b"header"
    signature = sign_operation(
        BOOTSTRAP1, Watermark.BLOCK_HEADER, payload, chain_id=MAINNET_CHAIN_ID
    )
    public = BOOTSTRAP1.public_key()
    assert check_operation_signature(
        public, Watermark.BLOCK_HEADER, payload, signature, chain_id=MAINNET_CHAIN_ID
    )
    # The same bytes under another watermark or chain are another message.
    assert not check_operation_signature(
        public, Watermark.ENDORSEMENT, payload, signature, chain_id=MAINNET_CHAIN_ID
    )
    assert not check_operation_signature(
        public, Watermark.BLOCK_HEADER, payload, signature, chain_id=b"\x00" * 4
    )
    generic = sign_operation(BOOTSTRAP1, Watermark.GENERIC_OPERATION, payload)
    assert generic != signature
    assert not check_operation_signature(
        public, Watermark.BLOCK_HEADER, payload, generic, chain_id=MAINNET_CHAIN_ID
    )


@pytest.mark.parametrize(
    ("watermark", "chain_id", "error"),
    [
        (Watermark.BLOCK_HEADER, None, BadWatermark),
        (Watermark.ENDORSEMENT, None, BadWatermark),
        (Watermark.GENERIC_OPERATION, MAINNET_CHAIN_ID, BadWatermark),
        (0x00, None, BadWatermark),
        (0x04, None, BadWatermark),
        (0x11, MAINNET_CHAIN_ID, BadWatermark),
        (Watermark.BLOCK_HEADER, b"\x00" * 3, WrongLength),
    ],
)
def test_bad_watermarks(watermark: int, chain_id: bytes | None, error: type[Exception]) -> None:
    with pytest.raises(error):
        watermark_bytes(watermark, chain_id)
    with pytest.raises(error):
        sign_operation(BOOTSTRAP1, watermark, b"", chain_id=chain_id)


# --- binary forms and printing ----------------------------------------------------------


def test_public_key_binary_form() -> None:
    public = BOOTSTRAP1.public_key()
    encoded = public.encode()
    assert len(encoded) == 33 and encoded[0] == 0
    assert PublicKey.decode(encoded) == public
    assert public.hash().curve is Curve.ED25519
    for bad in (encoded[:-1], encoded + b"\x00", b"\x01" + encoded[1:], b""):
        with pytest.raises(DecodeError):
            PublicKey.decode(bad)


def test_secret_key_repr_hides_the_seed() -> None:
    text = repr(BOOTSTRAP1)
    assert "tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx" in text
    assert BOOTSTRAP1.seed.hex() not in text
    assert BOOTSTRAP1.to_b58() not in text
    assert BOOTSTRAP1.to_b58() not in str(BOOTSTRAP1)


def test_keys_are_values() -> None:
    again = SecretKey.from_seed(BOOTSTRAP1.seed)
    assert again == BOOTSTRAP1 and hash(again) == hash(BOOTSTRAP1)
    assert again.public_key() == BOOTSTRAP1.public_key()
    assert {again.public_key(), BOOTSTRAP1.public_key()} == {BOOTSTRAP1.public_key()}
    assert SecretKey.from_seed(bytearray(BOOTSTRAP1.seed)) == BOOTSTRAP1


def test_generate() -> None:
    first, second = SecretKey.generate(), SecretKey.generate()
    assert first != second
    signature = first.sign(b"hello")
    assert first.public_key().verify(b"hello", signature)
    assert not second.public_key().verify(b"hello", signature)


# --- tampering: False, never an exception -----------------------------------------------


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes((data[index] ^ 0x01,)) + data[index + 1 :]


def test_tampered_signature_message_or_key_is_refused() -> None:
    message = b"transfer 10 tez"
    public = BOOTSTRAP1.public_key()
    signature = BOOTSTRAP1.sign(message)
    assert public.verify(message, signature)
    for index in range(64):
        assert not public.verify(message, Signature(_flip(signature.raw, index)))
    for index in range(len(message)):
        assert not public.verify(_flip(message, index), signature)
    assert not public.verify(message + b"\x00", signature)
    assert not public.verify(b"", signature)
    for index in range(32):
        assert not PublicKey(_flip(public.raw, index)).verify(message, signature)
    other = SecretKey.of_b58(BOOTSTRAP_ACCOUNTS[1][0]).public_key()
    assert not other.verify(message, signature)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00" * 32,  # not a point
        b"\xff" * 32,  # not canonical
        b"\x01" + b"\x00" * 31,  # the neutral element
    ],
)
def test_degenerate_public_keys_verify_nothing(raw: bytes) -> None:
    public = PublicKey(raw)
    assert not public.verify(b"", Signature(b"\x00" * 64))
    assert not public.verify(b"m", BOOTSTRAP1.sign(b"m"))
    assert public.hash().curve is Curve.ED25519


def test_tampered_operation_signature_is_refused() -> None:
    payload = bytes(range(100))
    public = BOOTSTRAP1.public_key()
    generic = Watermark.GENERIC_OPERATION
    signature = sign_operation(BOOTSTRAP1, generic, payload)
    assert check_operation_signature(public, generic, payload, signature)
    assert check_operation_signature(public, generic, payload, signature.raw)
    assert not check_operation_signature(public, generic, _flip(payload, 50), signature)
    assert not check_operation_signature(
        public, generic, payload, Signature(_flip(signature.raw, 7))
    )
    # The watermark is part of what is signed: the raw signature of the payload is not valid.
    assert not check_operation_signature(public, generic, payload, BOOTSTRAP1.sign(payload))


# --- malformed input: typed errors ------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "size"),
    [(SecretKey, 32), (SecretKey.from_seed, 32), (PublicKey, 32), (Signature, 64)],
)
def test_wrong_sizes(make: object, size: int) -> None:
    assert callable(make)
    for length in (0, size - 1, size + 1, 64 if size == 32 else 32):
        with pytest.raises(WrongLength):
            make(b"\x00" * length)


def test_verify_with_a_malformed_signature_raises() -> None:
    with pytest.raises(WrongLength):
        BOOTSTRAP1.public_key().verify(b"", b"\x00" * 63)
    with pytest.raises(WrongLength):
        check_operation_signature(BOOTSTRAP1.public_key(), 3, b"", b"\x00" * 65)


def _flip_last_char(text: str) -> str:
    return text[:-1] + ("2" if text[-1] != "2" else "3")


def test_malformed_text() -> None:
    secret, public, pkh = BOOTSTRAP_ACCOUNTS[0]
    signature = BOOTSTRAP1.sign(b"x").to_b58()
    for parse, text in (
        (SecretKey.of_b58, secret),
        (SecretKey.of_b58, TAQUITO_64),
        (PublicKey.of_b58, public),
        (Signature.of_b58, signature),
    ):
        with pytest.raises(BadChecksum):
            parse(_flip_last_char(text))
        with pytest.raises(InvalidCharacter):
            parse(text[:-1] + "0")
        with pytest.raises(WrongKind):
            parse(pkh)
    with pytest.raises(WrongKind):
        SecretKey.of_b58(public)  # never read a public key as a secret one, nor the reverse
    with pytest.raises(WrongKind):
        PublicKey.of_b58(secret)
    with pytest.raises(WrongKind):
        Signature.of_b58(public)
    with pytest.raises(UnknownPrefix):
        PublicKey.of_b58(TAQUITO_64)  # the 98-character edsk is a secret key only


def test_wrong_payload_sizes_in_text() -> None:
    seed_prefix = base58.ENCODINGS[Kind.ED25519_SEED].prefix
    with pytest.raises(WrongLength):
        SecretKey.of_b58(base58.encode_check(seed_prefix + b"\x00" * 31))
    prefix = base58.ED25519_SECRET_KEY_PREFIX
    for size in (32, 63, 65):
        with pytest.raises(WrongLength):
            SecretKey.of_b58(base58.encode_check(prefix + b"\x00" * size))
    pk_prefix = base58.ENCODINGS[Kind.ED25519_PUBLIC_KEY].prefix
    with pytest.raises(WrongLength):
        PublicKey.of_b58(base58.encode_check(pk_prefix + b"\x00" * 33))


def test_64_byte_secret_key_with_a_foreign_public_half() -> None:
    other = SecretKey.of_b58(BOOTSTRAP_ACCOUNTS[1][0]).public_key()
    text = base58.encode_check(base58.ED25519_SECRET_KEY_PREFIX + BOOTSTRAP1.seed + other.raw)
    assert len(text) == 98 and text.startswith("edsk")
    with pytest.raises(KeyMismatch):
        SecretKey.of_b58(text)
    good = base58.encode_check(
        base58.ED25519_SECRET_KEY_PREFIX + BOOTSTRAP1.seed + BOOTSTRAP1.public_key().raw
    )
    assert SecretKey.of_b58(good) == BOOTSTRAP1


def test_errors_are_crypto_errors() -> None:
    for error in (KeyMismatch, BadWatermark, WrongLength, WrongKind):
        assert issubclass(error, CryptoError)


def test_legacy_prefix_prints_edsk_in_98_characters() -> None:
    """The check Octez makes when it registers the encoding (``check_encoded_prefix``)."""
    for fill in (b"\x00", b"\xff"):
        text = base58.encode_check(base58.ED25519_SECRET_KEY_PREFIX + fill * 64)
        assert text.startswith("edsk") and len(text) == 98


# --- properties --------------------------------------------------------------------------

seeds = st.binary(min_size=32, max_size=32)


@given(seeds, st.binary(max_size=200))
def test_round_trips(seed: bytes, message: bytes) -> None:
    key = SecretKey.from_seed(seed)
    public = key.public_key()
    assert SecretKey.of_b58(key.to_b58()) == key
    legacy = base58.encode_check(base58.ED25519_SECRET_KEY_PREFIX + seed + public.raw)
    assert SecretKey.of_b58(legacy) == key
    assert PublicKey.of_b58(public.to_b58()) == public
    assert PublicKey.decode(public.encode()) == public
    assert PublicKeyHash.of_b58(public.hash().to_b58()) == public.hash()
    signature = key.sign(message)
    assert Signature.of_b58(signature.to_b58()) == signature
    assert Signature.of_b58(signature.to_generic_b58()) == signature
    assert public.verify(message, signature)
    assert key.sign(message) == signature  # deterministic
    operation = sign_operation(key, Watermark.GENERIC_OPERATION, message)
    assert check_operation_signature(public, Watermark.GENERIC_OPERATION, message, operation)


@given(seeds, st.binary(max_size=64), st.data())
def test_any_single_bit_flip_is_refused(seed: bytes, message: bytes, data: st.DataObject) -> None:
    key = SecretKey.from_seed(seed)
    signature = key.sign(message)
    bit = data.draw(st.integers(min_value=0, max_value=64 * 8 - 1))
    flipped = bytearray(signature.raw)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert not key.public_key().verify(message, Signature(bytes(flipped)))
