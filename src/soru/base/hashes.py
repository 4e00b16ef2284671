"""Typed 32-byte hashes.

:class:`Hash` is an immutable ``bytes`` of exactly 32 bytes: a Merkle root, a node hash, a
state hash. Being a ``bytes`` subclass it compares, hashes and concatenates like the raw
digest, while its constructor guarantees the length. Producing a hash is the business of
``soru.crypto.hashing``; this module only gives the result a type.
"""

from __future__ import annotations

from soru.base.errors import DecodeError

HASH_SIZE = 32


class InvalidHash(DecodeError):
    """Bytes or text that are not a 32-byte hash."""


class Hash(bytes):
    """An immutable 32-byte digest."""

    __slots__ = ()

    SIZE = HASH_SIZE

    def __new__(cls, value: bytes | bytearray | memoryview) -> Hash:
        if value.__class__ is cls:
            return value
        if not isinstance(value, bytes | bytearray | memoryview):
            raise InvalidHash(f"a hash is built from bytes, not {type(value).__name__}")
        if len(value) != HASH_SIZE:
            raise InvalidHash(f"a hash has {HASH_SIZE} bytes, not {len(value)}")
        return super().__new__(cls, value)

    @classmethod
    def from_hex(cls, text: str) -> Hash:
        """Parse 64 hexadecimal digits."""
        try:
            raw = bytes.fromhex(text)
        except (ValueError, TypeError) as error:
            raise InvalidHash(f"not hexadecimal: {text!r}") from error
        return cls(raw)

    def __repr__(self) -> str:
        return f"Hash({self.hex()!r})"

    def __str__(self) -> str:
        return self.hex()


ZERO = Hash(bytes(HASH_SIZE))
"""The all-zero hash, a placeholder that no real content hashes to."""
