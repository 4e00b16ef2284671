"""Tezos account, contract and rollup addresses: their b58check text and their binary forms.

Three kinds of 20-byte hashes name things on layer 1:

* an implicit account is a :class:`PublicKeyHash`: a curve and the Blake2b-160 of the public
  key, printed ``tz1`` (Ed25519), ``tz2`` (secp256k1), ``tz3`` (P-256) or ``tz4`` (BLS12-381);
* an originated contract is a :class:`ContractHash`, printed ``KT1…``;
* a smart rollup is a :class:`RollupAddress`, printed ``sr1…``.

Binary forms (Octez ``Signature.Public_key_hash.encoding``, ``Contract_repr.encoding``), used
in inbox and outbox messages:

* public key hash, 21 bytes: curve tag (0 Ed25519, 1 secp256k1, 2 P-256, 3 BLS12-381) ‖ hash;
* contract, 22 bytes: ``00 ‖ public key hash (21)`` for an implicit account,
  ``01 ‖ KT1 hash (20) ‖ 00`` (one padding byte) for an originated contract;
* ``KT1`` hash and rollup address alone (as in a Transfer message): the 20 bytes.

Decoding is strict: wrong sizes, unknown tags and a non-zero padding byte raise
:class:`soru.base.errors.DecodeError` (Octez ignores the padding byte's value; it always writes
zero). Parsing text raises the :mod:`soru.crypto.errors` classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from soru.base.errors import DecodeError
from soru.crypto.base58 import Kind, decode, decode_as, encode
from soru.crypto.errors import WrongKind, WrongLength

HASH_SIZE = 20
PUBLIC_KEY_HASH_SIZE = 21
CONTRACT_SIZE = 22

TAG_IMPLICIT, TAG_ORIGINATED = 0x00, 0x01


class Curve(IntEnum):
    """Signature scheme of an implicit account; the value is its binary tag."""

    ED25519 = 0
    SECP256K1 = 1
    P256 = 2
    BLS12_381 = 3


_KIND_OF_CURVE = {
    Curve.ED25519: Kind.ED25519_PUBLIC_KEY_HASH,
    Curve.SECP256K1: Kind.SECP256K1_PUBLIC_KEY_HASH,
    Curve.P256: Kind.P256_PUBLIC_KEY_HASH,
    Curve.BLS12_381: Kind.BLS12_381_PUBLIC_KEY_HASH,
}
_CURVE_OF_KIND = {kind: curve for curve, kind in _KIND_OF_CURVE.items()}


def _check_hash(digest: bytes, what: str) -> None:
    if len(digest) != HASH_SIZE:
        raise WrongLength(f"a {what} hash has {HASH_SIZE} bytes, not {len(digest)}")


@dataclass(frozen=True, slots=True)
class PublicKeyHash:
    """An implicit account: ``tz1``/``tz2``/``tz3``/``tz4`` + 20-byte hash."""

    curve: Curve
    digest: bytes

    def __post_init__(self) -> None:
        _check_hash(self.digest, "public key")
        object.__setattr__(self, "curve", Curve(self.curve))

    @classmethod
    def of_b58(cls, text: str) -> PublicKeyHash:
        """Parse ``tz1…``, ``tz2…``, ``tz3…`` or ``tz4…`` text."""
        kind, payload = decode(text)
        curve = _CURVE_OF_KIND.get(kind)
        if curve is None:
            raise WrongKind(f"expected a public key hash (tz1…tz4), got a {kind.name}")
        return cls(curve, payload)

    def to_b58(self) -> str:
        return encode(_KIND_OF_CURVE[self.curve], self.digest)

    def encode(self) -> bytes:
        """The 21-byte binary form: curve tag ‖ hash."""
        return bytes((self.curve,)) + self.digest

    @classmethod
    def decode(cls, data: bytes) -> PublicKeyHash:
        """Parse exactly 21 bytes."""
        if len(data) != PUBLIC_KEY_HASH_SIZE:
            raise DecodeError(f"a public key hash has 21 bytes, not {len(data)}", 0)
        if data[0] not in _KIND_OF_CURVE:
            raise DecodeError(f"unknown public key hash tag 0x{data[0]:02x}", 0)
        return cls(Curve(data[0]), bytes(data[1:]))

    def __str__(self) -> str:
        return self.to_b58()


@dataclass(frozen=True, slots=True)
class ContractHash:
    """An originated contract: ``KT1`` + 20-byte hash."""

    digest: bytes

    def __post_init__(self) -> None:
        _check_hash(self.digest, "contract")

    @classmethod
    def of_b58(cls, text: str) -> ContractHash:
        return cls(decode_as(Kind.CONTRACT_HASH, text))

    def to_b58(self) -> str:
        return encode(Kind.CONTRACT_HASH, self.digest)

    def __str__(self) -> str:
        return self.to_b58()


@dataclass(frozen=True, slots=True)
class RollupAddress:
    """A smart rollup: ``sr1`` + 20-byte hash (its binary form is the 20 bytes)."""

    digest: bytes

    def __post_init__(self) -> None:
        _check_hash(self.digest, "rollup address")

    @classmethod
    def of_b58(cls, text: str) -> RollupAddress:
        return cls(decode_as(Kind.SMART_ROLLUP_ADDRESS, text))

    def to_b58(self) -> str:
        return encode(Kind.SMART_ROLLUP_ADDRESS, self.digest)

    def __str__(self) -> str:
        return self.to_b58()


Contract = PublicKeyHash | ContractHash
"""A layer-1 account that can send or receive: implicit (``tz…``) or originated (``KT1…``)."""


def parse_contract(text: str) -> Contract:
    """Parse ``tz1…``/``tz2…``/``tz3…``/``tz4…`` or ``KT1…`` text."""
    kind, payload = decode(text)
    if kind is Kind.CONTRACT_HASH:
        return ContractHash(payload)
    curve = _CURVE_OF_KIND.get(kind)
    if curve is None:
        raise WrongKind(f"expected an account or contract (tz1…tz4, KT1), got a {kind.name}")
    return PublicKeyHash(curve, payload)


def encode_contract(contract: Contract) -> bytes:
    """The 22-byte binary form of a contract."""
    if isinstance(contract, PublicKeyHash):
        return bytes((TAG_IMPLICIT,)) + contract.encode()
    return bytes((TAG_ORIGINATED,)) + contract.digest + b"\x00"


def decode_contract(data: bytes) -> Contract:
    """Parse exactly 22 bytes (strict: the padding byte of a ``KT1`` must be zero)."""
    if len(data) != CONTRACT_SIZE:
        raise DecodeError(f"a contract has 22 bytes, not {len(data)}", 0)
    if data[0] == TAG_IMPLICIT:
        try:
            return PublicKeyHash.decode(bytes(data[1:]))
        except DecodeError as error:
            raise DecodeError(f"bad implicit contract: {error}", 1) from None
    if data[0] == TAG_ORIGINATED:
        if data[21] != 0:
            raise DecodeError("non-zero padding after a KT1 hash", 21)
        return ContractHash(bytes(data[1:21]))
    raise DecodeError(f"unknown contract tag 0x{data[0]:02x}", 0)
