"""Commitments (``../shared/SORU-SPEC.md`` §2.2): what a staker claims about the rollup.

A commitment says: *after every inbox message of the levels (predecessor.inbox_level,
inbox_level], the PVM — run until it asks for the next input — is in the state
``compressed_state``, and getting there took ``number_of_ticks`` ticks since the
predecessor's state.* Commitments form a chain back to the **genesis commitment** created at
origination (predecessor = 32 zero bytes, no ticks), one link per commitment period; layer 1
cements one link after another (``soru.protocol.staking``).

Encoding, byte for byte as Octez ``Sc_rollup_commitment_repr.encoding`` (76 bytes, no
version — the hash covers exactly these bytes)::

    compressed_state  32 B   the PVM state hash (printed ``srs1…``)
    inbox_level       int32  big-endian, 0 … 2**31 - 1
    predecessor       32 B   commitment hash (printed ``src1…``)
    number_of_ticks   int64  big-endian, 0 … 2**63 - 1

The **commitment hash** is ``Blake2b-256`` (plain Tezos Blake2b, ``Tag.TEZOS``) of those 76
bytes, a :class:`CommitmentHash`.
"""

from __future__ import annotations

from dataclasses import dataclass

from soru.base.errors import DecodeError
from soru.base.hashes import HASH_SIZE, ZERO, Hash
from soru.crypto import base58
from soru.crypto.base58 import Kind
from soru.crypto.hashing import Tag, blake2b_256
from soru.encoding.reader import Reader
from soru.encoding.writer import Writer
from soru.protocol.constants import RollupConstants
from soru.protocol.errors import ProtocolError

MAX_LEVEL = 2**31 - 1
"""Inbox levels are non-negative ``int32`` (Octez ``Raw_level_repr``)."""

MAX_TICKS = 2**63 - 1
"""``number_of_ticks`` is a non-negative ``int64`` (Octez ``Number_of_ticks``)."""

COMMITMENT_SIZE = HASH_SIZE + 4 + HASH_SIZE + 8
"""The encoded size of a commitment: 76 bytes."""


class InvalidCommitment(ProtocolError):
    """A commitment with a field out of its range (negative or too large level or ticks)."""


class MalformedCommitment(InvalidCommitment, DecodeError):
    """Bytes that are not exactly one encoded commitment."""


class CommitmentHash(Hash):
    """Hash of a commitment, printed ``src1…`` (54 characters)."""

    __slots__ = ()

    def to_b58(self) -> str:
        return base58.encode(Kind.COMMITMENT_HASH, self)

    @classmethod
    def of_b58(cls, text: str) -> CommitmentHash:
        """Parse ``src1…`` text; raises the ``soru.crypto.errors`` classes on bad text."""
        return cls(base58.decode_as(Kind.COMMITMENT_HASH, text))

    def __str__(self) -> str:
        return self.to_b58()

    def __repr__(self) -> str:
        return f"CommitmentHash({self.to_b58()!r})"


ZERO_COMMITMENT_HASH = CommitmentHash(ZERO)
"""The predecessor of a genesis commitment (Octez ``Hash.zero``): no commitment hashes to it."""


@dataclass(frozen=True, slots=True)
class Commitment:
    """A staker's claim about the rollup state at the end of ``inbox_level`` (see the module
    docstring). Plain ``bytes`` given for the hashes are turned into typed hashes."""

    compressed_state: Hash
    """The PVM state hash once every message up to ``inbox_level`` has been processed."""
    inbox_level: int
    """The last inbox level whose messages are included."""
    predecessor: CommitmentHash
    """The commitment this one extends (:data:`ZERO_COMMITMENT_HASH` for a genesis)."""
    number_of_ticks: int
    """Ticks from the predecessor's state to ``compressed_state``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "compressed_state", Hash(self.compressed_state))
        object.__setattr__(self, "predecessor", CommitmentHash(self.predecessor))
        if not 0 <= self.inbox_level <= MAX_LEVEL:
            raise InvalidCommitment(f"inbox level {self.inbox_level} is not in 0..{MAX_LEVEL}")
        if not 0 <= self.number_of_ticks <= MAX_TICKS:
            raise InvalidCommitment(
                f"number of ticks {self.number_of_ticks} is not in 0..{MAX_TICKS}"
            )

    def encode(self) -> bytes:
        """The 76 bytes of SORU-SPEC §2.2 (the bytes that are hashed)."""
        writer = Writer()
        writer.raw(self.compressed_state).int32(self.inbox_level)
        writer.raw(self.predecessor).int64(self.number_of_ticks)
        return writer.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Commitment:
        """The commitment encoded in exactly ``data``; raises :class:`MalformedCommitment`
        for any other length or an out-of-range field."""
        if len(data) != COMMITMENT_SIZE:
            raise MalformedCommitment(
                f"a commitment has {COMMITMENT_SIZE} bytes, not {len(data)}", 0
            )
        reader = Reader(bytes(data), error=MalformedCommitment)
        state = reader.read(HASH_SIZE)
        level = int.from_bytes(reader.read(4), "big", signed=True)
        predecessor = reader.read(HASH_SIZE)
        ticks = int.from_bytes(reader.read(8), "big", signed=True)
        reader.expect_end()
        try:
            return cls(Hash(state), level, CommitmentHash(predecessor), ticks)
        except InvalidCommitment as error:
            raise MalformedCommitment(str(error), 0) from error

    def hash(self) -> CommitmentHash:
        """``Blake2b-256`` of :meth:`encode` (Octez ``Sc_rollup_commitment_storage.hash``)."""
        return CommitmentHash(blake2b_256(Tag.TEZOS, self.encode()))

    def __str__(self) -> str:
        state = base58.encode(Kind.STATE_HASH, self.compressed_state)
        return (
            f"commitment {self.hash()} (state {state}, inbox level {self.inbox_level}, "
            f"predecessor {self.predecessor}, {self.number_of_ticks} ticks)"
        )


def genesis_commitment(state_hash: Hash | bytes, origination_level: int) -> Commitment:
    """The commitment created at origination and stored as the first last cemented
    commitment: the genesis state at the origination level, zero predecessor, no ticks."""
    return Commitment(Hash(state_hash), origination_level, ZERO_COMMITMENT_HASH, 0)


def next_commitment_level(constants: RollupConstants, level: int) -> int:
    """The inbox level of the commitment that follows one at ``level``:
    ``level + commitment_period``.

    Octez keeps a list of past commitment periods so that a protocol upgrade that changes
    the period applies only to commitments after it (SORU-SPEC §1.1). soru's networks keep
    one period for their whole life, so no such list is needed: the period is the one in
    ``constants``.
    """
    return level + constants.commitment_period
