"""Errors of the crypto layer: text that is not a valid Tezos b58check value, a key that
contradicts itself, a watermark that names nothing.

Every class derives from :class:`CryptoError` (itself a
:class:`soru.base.errors.SoruError`), so callers can catch "bad key, hash or address text"
as one thing, and tests can check the precise reason by class.
"""

from __future__ import annotations

from soru.base.errors import SoruError


class CryptoError(SoruError):
    """Base class of the crypto layer's errors."""


class Base58Error(CryptoError):
    """Text that is not a valid b58check encoding of a known Tezos value."""


class InvalidCharacter(Base58Error):
    """A character outside the Bitcoin base58 alphabet (``0``, ``O``, ``I``, ``l``, …)."""


class BadChecksum(Base58Error):
    """The last four bytes are not the double-SHA-256 checksum of the rest."""


class UnknownPrefix(Base58Error):
    """A valid b58check string whose leading bytes name no kind soru knows."""


class WrongLength(Base58Error):
    """A known prefix followed by a payload of the wrong size (or bytes of the wrong size
    given to the encoder, or to a key or signature constructor)."""


class WrongKind(Base58Error):
    """A valid b58check value of another kind than the one expected (e.g. a ``KT1`` where a
    ``tz1`` was required)."""


class KeyMismatch(Base58Error):
    """A 98-character ``edsk…`` secret key (seed ‖ public key) whose public half is not the
    public key of its seed: a corrupt key, refused rather than silently repaired."""


class BadWatermark(CryptoError):
    """A signing watermark soru does not know, or a chain id missing where the watermark needs
    one (block header, endorsement) or given where it has none (generic operation)."""
