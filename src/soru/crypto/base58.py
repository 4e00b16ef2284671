"""Base58Check, and the one table of the Tezos b58check prefixes soru knows.

Tezos prints hashes, keys and addresses as *b58check* text (``src/lib_crypto/base58.ml``):

    text     = base58(prefix ‖ payload ‖ checksum)
    checksum = first 4 bytes of SHA-256(SHA-256(prefix ‖ payload))

with the Bitcoin alphabet; each leading zero byte becomes a leading ``1``. The *prefix* is a
few bytes chosen per kind of value so that every value of that kind prints with the same
leading characters and the same length: a 20-byte Ed25519 public key hash (prefix
``06 a1 9f``) always prints as ``tz1…`` in 36 characters. :data:`ENCODINGS` lists, for each
:class:`Kind`, the prefix bytes, the payload size and the printed length (checked by the unit
tests: the zero payload and the all-``ff`` payload both print with the kind's name and length).

:func:`encode` and :func:`decode` convert; :func:`decode_as` additionally requires a kind.
Failures raise the :mod:`soru.crypto.errors` classes. The 4-byte checksum uses SHA-256 here
because Tezos does; it is a checksum of the text form, not a hash domain of soru (those live in
:mod:`soru.crypto.hashing`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from soru.crypto.errors import (
    BadChecksum,
    InvalidCharacter,
    UnknownPrefix,
    WrongKind,
    WrongLength,
)

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
"""The Bitcoin base58 alphabet (no ``0``, ``O``, ``I``, ``l``)."""

_DIGIT = {char: index for index, char in enumerate(ALPHABET)}
CHECKSUM_SIZE = 4


class Kind(StrEnum):
    """A kind of b58check value; its value is the printed prefix (unique per kind)."""

    # Chain (32-byte Blake2b hashes unless said).
    BLOCK_HASH = "B"
    OPERATION_HASH = "o"
    PROTOCOL_HASH = "P"
    CONTEXT_HASH = "Co"
    CHAIN_ID = "Net"  # 4 bytes
    SCRIPT_EXPR_HASH = "expr"
    # Accounts and contracts (20-byte Blake2b-160 hashes).
    ED25519_PUBLIC_KEY_HASH = "tz1"
    SECP256K1_PUBLIC_KEY_HASH = "tz2"
    P256_PUBLIC_KEY_HASH = "tz3"
    BLS12_381_PUBLIC_KEY_HASH = "tz4"
    CONTRACT_HASH = "KT1"
    # Smart rollups (SORU-SPEC §2.1).
    SMART_ROLLUP_ADDRESS = "sr1"
    COMMITMENT_HASH = "src1"
    STATE_HASH = "srs1"
    INBOX_HASH = "srib1"
    MERKELIZED_PAYLOADS_HASH = "srib2"
    SERIALIZED_MESSAGE_HASH = "srib3"
    REVEAL_HASH = "scrrh1"
    PVM_INPUT_HASH = "scd1"
    L2_MESSAGE_ID = "scmsg"
    # Keys and signatures.
    ED25519_PUBLIC_KEY = "edpk"
    ED25519_SEED = "edsk"  # the 32-byte seed form of an Ed25519 secret key
    SECP256K1_PUBLIC_KEY = "sppk"
    P256_PUBLIC_KEY = "p2pk"
    BLS12_381_PUBLIC_KEY = "BLpk"
    ED25519_SIGNATURE = "edsig"
    SECP256K1_SIGNATURE = "spsig1"
    P256_SIGNATURE = "p2sig"
    BLS12_381_SIGNATURE = "BLsig"
    GENERIC_SIGNATURE = "sig"


@dataclass(frozen=True, slots=True)
class Encoding:
    """How one kind is printed: ``prefix`` bytes, then ``size`` payload bytes, giving a text
    of ``text_length`` characters that starts with ``kind.value``."""

    kind: Kind
    prefix: bytes
    size: int
    text_length: int


def _entry(kind: Kind, prefix: tuple[int, ...], size: int, text_length: int) -> Encoding:
    return Encoding(kind, bytes(prefix), size, text_length)


# Prefix bytes as in Octez `base58.ml` (decimal, like its OCaml string escapes), the smart
# rollup ones from `smart_rollup_*.ml` / SORU-SPEC §2.1, KT1 from `contract_hash.ml`,
# expr from the protocol's `script_expr_hash.ml`.
ENCODINGS: dict[Kind, Encoding] = {
    e.kind: e
    for e in (
        _entry(Kind.BLOCK_HASH, (1, 52), 32, 51),
        _entry(Kind.OPERATION_HASH, (5, 116), 32, 51),
        _entry(Kind.PROTOCOL_HASH, (2, 170), 32, 51),
        _entry(Kind.CONTEXT_HASH, (79, 199), 32, 52),
        _entry(Kind.CHAIN_ID, (87, 82, 0), 4, 15),
        _entry(Kind.SCRIPT_EXPR_HASH, (13, 44, 64, 27), 32, 54),
        _entry(Kind.ED25519_PUBLIC_KEY_HASH, (6, 161, 159), 20, 36),
        _entry(Kind.SECP256K1_PUBLIC_KEY_HASH, (6, 161, 161), 20, 36),
        _entry(Kind.P256_PUBLIC_KEY_HASH, (6, 161, 164), 20, 36),
        _entry(Kind.BLS12_381_PUBLIC_KEY_HASH, (6, 161, 166), 20, 36),
        _entry(Kind.CONTRACT_HASH, (2, 90, 121), 20, 36),
        _entry(Kind.SMART_ROLLUP_ADDRESS, (6, 124, 117), 20, 36),
        _entry(Kind.COMMITMENT_HASH, (17, 165, 134, 138), 32, 54),
        _entry(Kind.STATE_HASH, (17, 165, 235, 240), 32, 54),
        _entry(Kind.INBOX_HASH, (3, 255, 138, 145, 110), 32, 55),
        _entry(Kind.MERKELIZED_PAYLOADS_HASH, (3, 255, 138, 145, 140), 32, 55),
        _entry(Kind.SERIALIZED_MESSAGE_HASH, (3, 255, 138, 145, 170), 32, 55),
        _entry(Kind.REVEAL_HASH, (230, 206, 128, 200, 196), 32, 56),
        _entry(Kind.PVM_INPUT_HASH, (1, 118, 125, 135), 20, 37),
        _entry(Kind.L2_MESSAGE_ID, (3, 250, 179, 247, 196), 32, 55),
        _entry(Kind.ED25519_PUBLIC_KEY, (13, 15, 37, 217), 32, 54),
        _entry(Kind.ED25519_SEED, (13, 15, 58, 7), 32, 54),
        _entry(Kind.SECP256K1_PUBLIC_KEY, (3, 254, 226, 86), 33, 55),
        _entry(Kind.P256_PUBLIC_KEY, (3, 178, 139, 127), 33, 55),
        _entry(Kind.BLS12_381_PUBLIC_KEY, (6, 149, 135, 204), 48, 76),
        _entry(Kind.ED25519_SIGNATURE, (9, 245, 205, 134, 18), 64, 99),
        _entry(Kind.SECP256K1_SIGNATURE, (13, 115, 101, 19, 63), 64, 99),
        _entry(Kind.P256_SIGNATURE, (54, 240, 44, 52), 64, 98),
        _entry(Kind.BLS12_381_SIGNATURE, (40, 171, 64, 207), 96, 142),
        _entry(Kind.GENERIC_SIGNATURE, (4, 130, 43), 64, 96),
    )
}

ED25519_SECRET_KEY_PREFIX = bytes((43, 246, 78, 7))
ED25519_SECRET_KEY_SIZE = 64
"""The legacy NaCl form of an Ed25519 secret key (Octez ``Prefix.ed25519_secret_key``): the
32-byte seed followed by the 32-byte public key, printed ``edsk…`` in 98 characters. It has no
:class:`Kind` because a kind's value is its printed prefix and ``edsk`` already names the
54-character seed form, the one Octez prints; :mod:`soru.crypto.keys` accepts this form on input
only (:func:`decode` does not know it and raises :class:`UnknownPrefix`)."""


# --- plain base58 ------------------------------------------------------------------------


def encode_raw(data: bytes) -> str:
    """Base58 text of ``data`` (no checksum): one ``1`` per leading zero byte."""
    zeros = len(data) - len(data.lstrip(b"\x00"))
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(ALPHABET[remainder])
    return "1" * zeros + "".join(reversed(digits))


def decode_raw(text: str) -> bytes:
    """The bytes of base58 ``text`` (no checksum); raises :class:`InvalidCharacter`."""
    number = 0
    for position, char in enumerate(text):
        digit = _DIGIT.get(char)
        if digit is None:
            raise InvalidCharacter(f"{char!r} at position {position} is not a base58 digit")
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * zeros + body


def checksum(data: bytes) -> bytes:
    """The first four bytes of SHA-256(SHA-256(data))."""
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()[:CHECKSUM_SIZE]


def encode_check(data: bytes) -> str:
    """Base58Check text of ``data``: ``data`` followed by its checksum, in base58."""
    return encode_raw(data + checksum(data))


def decode_check(text: str) -> bytes:
    """The bytes of Base58Check ``text``, checksum verified and removed."""
    raw = decode_raw(text)
    if len(raw) < CHECKSUM_SIZE:
        raise BadChecksum(f"{text!r} is too short to hold a checksum")
    data, check = raw[:-CHECKSUM_SIZE], raw[-CHECKSUM_SIZE:]
    if checksum(data) != check:
        raise BadChecksum(f"{text!r} has a bad checksum")
    return data


# --- Tezos kinds --------------------------------------------------------------------------


def encode(kind: Kind, payload: bytes) -> str:
    """The b58check text of a ``kind`` value; raises :class:`WrongLength` if ``payload``
    does not have the kind's size."""
    encoding = ENCODINGS[kind]
    if len(payload) != encoding.size:
        raise WrongLength(f"a {kind.name} has {encoding.size} bytes, not {len(payload)}")
    return encode_check(encoding.prefix + bytes(payload))


def decode(text: str) -> tuple[Kind, bytes]:
    """The kind and payload of b58check ``text``.

    Raises :class:`InvalidCharacter`, :class:`BadChecksum`, :class:`UnknownPrefix` (no known
    prefix) or :class:`WrongLength` (a known prefix with a payload of another size)."""
    data = decode_check(text)
    prefixed = False
    for encoding in ENCODINGS.values():
        if data.startswith(encoding.prefix):
            prefixed = True
            if len(data) == len(encoding.prefix) + encoding.size:
                return encoding.kind, data[len(encoding.prefix) :]
    if prefixed:
        raise WrongLength(f"{text!r} has a known prefix but a payload of the wrong size")
    raise UnknownPrefix(f"{text!r} starts with no known b58check prefix")


def decode_as(kind: Kind, text: str) -> bytes:
    """The payload of b58check ``text``, which must be of ``kind`` (else :class:`WrongKind`)."""
    found, payload = decode(text)
    if found is not kind:
        raise WrongKind(f"expected a {kind.name} ({kind.value}…), got a {found.name}")
    return payload
