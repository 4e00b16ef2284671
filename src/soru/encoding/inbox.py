"""Inbox message encodings (``../shared/SORU-SPEC.md`` §2.4), byte for byte as Tezos.

A serialized inbox message is at most 4096 bytes and starts with a tag byte:

* ``0x00`` internal, then an inner tag:
  ``0x00`` Transfer ``{payload: Micheline; sender: 20 B (KT1 hash); source: 21 B
  (public key hash with its curve tag); destination: 20 B (rollup address hash)}``,
  ``0x01`` Start_of_level, ``0x02`` End_of_level,
  ``0x03`` Info_per_level ``{predecessor_timestamp: int64; predecessor: 32 B block hash}``,
  ``0x04`` Protocol_migration ``{protocol: 4-byte length + ASCII}``;
* ``0x01`` external, then the raw bytes (no length prefix).

Messages are plain frozen records with ``encode``; :func:`decode_message` is strict. The
Micheline payload of a Transfer is kept as its binary encoding (it is self-delimiting).
"""

from __future__ import annotations

from dataclasses import dataclass

from soru.base.errors import DecodeError

MESSAGE_SIZE_LIMIT = 4096

TAG_INTERNAL, TAG_EXTERNAL = 0x00, 0x01
TAG_TRANSFER, TAG_SOL, TAG_EOL, TAG_IPL, TAG_MIGRATION = 0x00, 0x01, 0x02, 0x03, 0x04


class MessageTooLarge(DecodeError):
    """A serialized inbox message over 4096 bytes."""


@dataclass(frozen=True, slots=True)
class StartOfLevel:
    def encode(self) -> bytes:
        return bytes((TAG_INTERNAL, TAG_SOL))


@dataclass(frozen=True, slots=True)
class EndOfLevel:
    def encode(self) -> bytes:
        return bytes((TAG_INTERNAL, TAG_EOL))


@dataclass(frozen=True, slots=True)
class InfoPerLevel:
    """Timestamp (seconds) and hash of the predecessor of the level's block."""

    predecessor_timestamp: int
    predecessor: bytes

    def encode(self) -> bytes:
        if len(self.predecessor) != 32:
            raise ValueError("a block hash has 32 bytes")
        ts = self.predecessor_timestamp.to_bytes(8, "big", signed=True)
        return bytes((TAG_INTERNAL, TAG_IPL)) + ts + self.predecessor


@dataclass(frozen=True, slots=True)
class ProtocolMigration:
    protocol: str

    def encode(self) -> bytes:
        name = self.protocol.encode("ascii")
        return bytes((TAG_INTERNAL, TAG_MIGRATION)) + len(name).to_bytes(4, "big") + name


@dataclass(frozen=True, slots=True)
class Transfer:
    """A deposit from a layer-1 contract: Micheline ``payload`` (binary), ``sender`` (the
    20-byte KT1 hash), ``source`` (21-byte public key hash), ``destination`` (20-byte rollup
    address hash)."""

    payload: bytes
    sender: bytes
    source: bytes
    destination: bytes

    def encode(self) -> bytes:
        if (len(self.sender), len(self.source), len(self.destination)) != (20, 21, 20):
            raise ValueError("sender, source and destination have 20, 21 and 20 bytes")
        head = bytes((TAG_INTERNAL, TAG_TRANSFER))
        return _checked(head + self.payload + self.sender + self.source + self.destination)


@dataclass(frozen=True, slots=True)
class External:
    """An external message: any bytes, meaning is up to the kernel."""

    payload: bytes

    def encode(self) -> bytes:
        return _checked(bytes((TAG_EXTERNAL,)) + self.payload)


InboxMessage = StartOfLevel | EndOfLevel | InfoPerLevel | ProtocolMigration | Transfer | External


def _checked(encoded: bytes) -> bytes:
    if len(encoded) > MESSAGE_SIZE_LIMIT:
        raise MessageTooLarge(f"inbox message of {len(encoded)} bytes exceeds 4096")
    return encoded


def micheline_length(data: bytes, offset: int) -> int:
    """Length of the binary Micheline expression starting at ``offset`` (strict)."""
    from soru.encoding.micheline import expression_length

    return expression_length(data, offset)


def decode_message(data: bytes) -> InboxMessage:
    """Decode one serialized inbox message; raises DecodeError when malformed."""
    if len(data) > MESSAGE_SIZE_LIMIT:
        raise MessageTooLarge(f"inbox message of {len(data)} bytes exceeds 4096")
    if not data:
        raise DecodeError("empty inbox message", 0)
    if data[0] == TAG_EXTERNAL:
        return External(bytes(data[1:]))
    if data[0] != TAG_INTERNAL or len(data) < 2:
        raise DecodeError(f"unknown inbox message tag 0x{data[0]:02x}", 0)
    tag, body = data[1], bytes(data[2:])
    if tag in (TAG_SOL, TAG_EOL):
        if body:
            raise DecodeError("trailing bytes after a level marker", 2)
        return StartOfLevel() if tag == TAG_SOL else EndOfLevel()
    if tag == TAG_IPL:
        if len(body) != 40:
            raise DecodeError("Info_per_level has 40 bytes of payload", 2)
        return InfoPerLevel(int.from_bytes(body[:8], "big", signed=True), body[8:])
    if tag == TAG_MIGRATION:
        size = int.from_bytes(body[:4], "big") if len(body) >= 4 else -1
        if size != len(body) - 4:
            raise DecodeError("bad Protocol_migration length", 2)
        return ProtocolMigration(body[4:].decode("ascii", errors="replace"))
    if tag == TAG_TRANSFER:
        end = micheline_length(data, 2)
        rest = bytes(data[end:])
        if len(rest) != 61:
            raise DecodeError("Transfer needs sender, source and destination", end)
        return Transfer(bytes(data[2:end]), rest[:20], rest[20:41], rest[41:])
    raise DecodeError(f"unknown internal message tag 0x{tag:02x}", 1)
