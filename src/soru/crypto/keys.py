"""Ed25519 keys and signatures, byte for byte as Tezos signs with them (``tz1`` accounts).

An implicit ``tz1`` account is an Ed25519 key pair (RFC 8032; Octez ``src/lib_crypto/ed25519.ml``):

* a :class:`SecretKey` is a 32-byte **seed**, printed ``edsk…`` in 54 characters. Octez also
  reads a legacy 98-character ``edsk…``: the 64-byte NaCl secret key, seed ‖ public key
  (:data:`soru.crypto.base58.ED25519_SECRET_KEY_PREFIX`); soru reads it too, and prints the
  seed form;
* a :class:`PublicKey` is 32 bytes, printed ``edpk…``; its binary form in operations is
  33 bytes, the curve tag ``00`` then the key (Octez ``Signature.Public_key.encoding``);
  :meth:`PublicKey.hash` is the account, the Blake2b-160 of the 32 key bytes (``tz1…``);
* a :class:`Signature` is 64 bytes, printed ``edsig…``; the curve-less ``sig…`` form (Octez
  ``generic_signature``) is read as well.

What gets signed. :meth:`SecretKey.sign` and :meth:`PublicKey.verify` are plain Ed25519 over
the given bytes, as RFC 8032 defines it. Tezos never signs a message directly: Octez
``Ed25519.sign ?watermark sk msg`` signs the Blake2b-256 digest of ``watermark ‖ msg``, where
the watermark says what the bytes are (Octez ``Signature.bytes_of_watermark``):

=====================  ===================================
:class:`Watermark`     watermark bytes
=====================  ===================================
``BLOCK_HEADER``       ``01 ‖ chain id (4 bytes)``
``ENDORSEMENT``        ``02 ‖ chain id (4 bytes)``
``GENERIC_OPERATION``  ``03`` (manager operations: transfers, rollup operations, …)
=====================  ===================================

so that a signature on one kind of bytes can never be replayed as another.
:func:`sign_operation` and :func:`check_operation_signature` do exactly that, and
:func:`signing_digest` is the 32 bytes Ed25519 actually signs. ``octez-client sign bytes 0x03…``
produces the same signature as ``sign_operation(key, Watermark.GENERIC_OPERATION, …)``.

Verification never raises for a signature that does not match: it answers ``False``. Only
malformed inputs (wrong sizes, bad text) raise, with the :mod:`soru.crypto.errors` classes.
Ed25519 itself comes from libsodium (PyNaCl); it agrees with Octez's HACL* on every honestly
made signature. On crafted ones libsodium is the stricter: it refuses public keys and signature
points of small order, which HACL*'s cofactorless check does not single out, so a signature
crafted under such a degenerate key that Octez might accept is refused here (never the
reverse).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import IntEnum

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from soru.base.errors import DecodeError
from soru.crypto.addresses import Curve, PublicKeyHash
from soru.crypto.base58 import (
    ED25519_SECRET_KEY_PREFIX,
    ED25519_SECRET_KEY_SIZE,
    Kind,
    decode,
    decode_as,
    decode_check,
    encode,
)
from soru.crypto.errors import BadWatermark, KeyMismatch, WrongKind, WrongLength
from soru.crypto.hashing import Tag, blake2b_160, blake2b_256

SEED_SIZE = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
ENCODED_PUBLIC_KEY_SIZE = 33
CHAIN_ID_SIZE = 4

TAG_ED25519 = Curve.ED25519.value
"""The curve tag of an Ed25519 public key in its binary form (as for the key hash)."""


def _check_size(data: bytes, size: int, what: str) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"a {what} is made of bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) != size:
        raise WrongLength(f"an Ed25519 {what} has {size} bytes, not {len(data)}")
    return data


@dataclass(frozen=True, slots=True)
class Signature:
    """An Ed25519 signature: 64 bytes (``R ‖ S``), printed ``edsig…``."""

    raw: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "raw", _check_size(self.raw, SIGNATURE_SIZE, "signature"))

    @classmethod
    def of_b58(cls, text: str) -> Signature:
        """Parse ``edsig…`` (99 characters) or the generic ``sig…`` (96 characters)."""
        kind, payload = decode(text)
        if kind not in (Kind.ED25519_SIGNATURE, Kind.GENERIC_SIGNATURE):
            raise WrongKind(f"expected an Ed25519 signature (edsig…, sig…), got a {kind.name}")
        return cls(payload)

    def to_b58(self) -> str:
        """The ``edsig…`` text."""
        return encode(Kind.ED25519_SIGNATURE, self.raw)

    def to_generic_b58(self) -> str:
        """The curve-less ``sig…`` text (what Taquito and RPCs sometimes print)."""
        return encode(Kind.GENERIC_SIGNATURE, self.raw)

    def __str__(self) -> str:
        return self.to_b58()


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 public key: 32 bytes (a compressed curve point), printed ``edpk…``.

    Any 32 bytes are accepted, as in Octez; bytes that are no usable point simply verify
    nothing."""

    raw: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "raw", _check_size(self.raw, PUBLIC_KEY_SIZE, "public key"))

    @classmethod
    def of_b58(cls, text: str) -> PublicKey:
        """Parse ``edpk…`` text (54 characters)."""
        return cls(decode_as(Kind.ED25519_PUBLIC_KEY, text))

    def to_b58(self) -> str:
        """The ``edpk…`` text."""
        return encode(Kind.ED25519_PUBLIC_KEY, self.raw)

    def encode(self) -> bytes:
        """The 33-byte binary form: curve tag ``00`` ‖ key."""
        return bytes((TAG_ED25519,)) + self.raw

    @classmethod
    def decode(cls, data: bytes) -> PublicKey:
        """Parse exactly 33 bytes; any other curve tag is refused (soru signs with Ed25519
        only)."""
        if len(data) != ENCODED_PUBLIC_KEY_SIZE:
            raise DecodeError(f"an Ed25519 public key has 33 bytes, not {len(data)}", 0)
        if data[0] != TAG_ED25519:
            raise DecodeError(f"public key tag 0x{data[0]:02x} is not Ed25519 (0x00)", 0)
        return cls(bytes(data[1:]))

    def hash(self) -> PublicKeyHash:
        """The account of this key: ``tz1`` + Blake2b-160 of the 32 key bytes."""
        return PublicKeyHash(Curve.ED25519, blake2b_160(Tag.TEZOS, self.raw))

    def verify(self, message: bytes, signature: Signature | bytes) -> bool:
        """Whether ``signature`` is this key's plain Ed25519 signature of ``message``.

        Answers ``False`` for any signature that does not match, including one under a
        key that is no valid point; raises :class:`WrongLength` only if ``signature`` is given
        as bytes of the wrong size."""
        if not isinstance(signature, Signature):
            signature = Signature(signature)
        try:
            VerifyKey(self.raw).verify(bytes(message), signature.raw)
        except BadSignatureError:
            return False
        return True

    def __str__(self) -> str:
        return self.to_b58()


@dataclass(frozen=True, slots=True, repr=False)
class SecretKey:
    """An Ed25519 secret key: its 32-byte seed, printed ``edsk…`` (54 characters).

    Its ``repr`` names the account, never the seed."""

    seed: bytes
    _signing: SigningKey = field(init=False, compare=False)
    _public: PublicKey = field(init=False, compare=False)

    def __post_init__(self) -> None:
        seed = _check_size(self.seed, SEED_SIZE, "seed")
        signing = SigningKey(seed)
        object.__setattr__(self, "seed", seed)
        object.__setattr__(self, "_signing", signing)
        object.__setattr__(self, "_public", PublicKey(bytes(signing.verify_key)))

    @classmethod
    def generate(cls) -> SecretKey:
        """A fresh key from the operating system's random source."""
        return cls(os.urandom(SEED_SIZE))

    @classmethod
    def from_seed(cls, seed: bytes) -> SecretKey:
        """The key of a 32-byte seed (RFC 8032's "secret key")."""
        return cls(seed)

    @classmethod
    def of_b58(cls, text: str) -> SecretKey:
        """Parse ``edsk…``: the 54-character seed, or the legacy 98-character seed ‖ public
        key (whose public half must be the seed's: else :class:`KeyMismatch`)."""
        data = decode_check(text)
        if not data.startswith(ED25519_SECRET_KEY_PREFIX):
            return cls(decode_as(Kind.ED25519_SEED, text))
        payload = data[len(ED25519_SECRET_KEY_PREFIX) :]
        if len(payload) != ED25519_SECRET_KEY_SIZE:
            raise WrongLength(
                f"a 98-character edsk holds {ED25519_SECRET_KEY_SIZE} bytes, not {len(payload)}"
            )
        key = cls(payload[:SEED_SIZE])
        if key.public_key().raw != payload[SEED_SIZE:]:
            raise KeyMismatch(f"{text[:10]}…: its public half is not its seed's public key")
        return key

    def to_b58(self) -> str:
        """The 54-character ``edsk…`` text of the seed."""
        return encode(Kind.ED25519_SEED, self.seed)

    def public_key(self) -> PublicKey:
        """The public key of this seed."""
        return self._public

    def sign(self, message: bytes) -> Signature:
        """The plain Ed25519 signature of ``message`` (deterministic, RFC 8032). Tezos signs
        digests with a watermark: see :func:`sign_operation`."""
        return Signature(self._signing.sign(bytes(message)).signature)

    def __repr__(self) -> str:
        return f"SecretKey(<{self._public.hash()}>)"


class Watermark(IntEnum):
    """What signed bytes are: the first byte of the watermark (Octez ``Signature.watermark``)."""

    BLOCK_HEADER = 0x01
    """A block header; followed by the 4-byte chain id."""
    ENDORSEMENT = 0x02
    """An endorsement; followed by the 4-byte chain id."""
    GENERIC_OPERATION = 0x03
    """Any other operation (manager operations); alone."""


_NEEDS_CHAIN_ID = frozenset((Watermark.BLOCK_HEADER, Watermark.ENDORSEMENT))


def watermark_bytes(watermark: int, chain_id: bytes | None = None) -> bytes:
    """The bytes a :class:`Watermark` puts before what is signed.

    ``chain_id`` (4 bytes) is required for block headers and endorsements and refused for
    generic operations (:class:`BadWatermark`); an unknown watermark is refused too."""
    try:
        known = Watermark(watermark)
    except ValueError:
        raise BadWatermark(f"unknown signing watermark {watermark!r}") from None
    if known in _NEEDS_CHAIN_ID:
        if chain_id is None:
            raise BadWatermark(f"the {known.name} watermark needs a chain id")
        if len(chain_id) != CHAIN_ID_SIZE:
            raise WrongLength(f"a chain id has {CHAIN_ID_SIZE} bytes, not {len(chain_id)}")
        return bytes((known,)) + bytes(chain_id)
    if chain_id is not None:
        raise BadWatermark(f"the {known.name} watermark takes no chain id")
    return bytes((known,))


def signing_digest(watermark: int, payload: bytes, *, chain_id: bytes | None = None) -> bytes:
    """The 32 bytes Tezos signs for ``payload``: Blake2b-256(watermark ‖ payload)."""
    return blake2b_256(Tag.TEZOS, watermark_bytes(watermark, chain_id), bytes(payload))


def sign_operation(
    secret: SecretKey, watermark: int, payload: bytes, *, chain_id: bytes | None = None
) -> Signature:
    """Sign ``payload`` as Tezos does: Ed25519 over :func:`signing_digest`.

    For an operation, ``payload`` is its forged bytes (branch ‖ contents) and ``watermark``
    is :attr:`Watermark.GENERIC_OPERATION`."""
    return secret.sign(signing_digest(watermark, payload, chain_id=chain_id))


def check_operation_signature(
    public_key: PublicKey,
    watermark: int,
    payload: bytes,
    signature: Signature | bytes,
    *,
    chain_id: bytes | None = None,
) -> bool:
    """Whether ``signature`` is ``public_key``'s Tezos signature of ``payload`` under
    ``watermark`` (the check :func:`sign_operation` passes). ``False`` for any mismatch."""
    return public_key.verify(signing_digest(watermark, payload, chain_id=chain_id), signature)
