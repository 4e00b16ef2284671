"""The global inbox of layer 1 (SORU-SPEC §3), byte for byte as Tezos; its proofs are in
``soru.protocol.inbox_proof``.

Every layer-1 block appends one *level* of messages to a single inbox shared by all rollups:
``Start_of_level``, ``Info_per_level``, possibly ``Protocol_migration``, the external and
internal messages of the block, ``End_of_level`` (never an empty level). The inbox commits to
all of it with two merkelized skip lists of basis 4 (``soru.protocol.skip_list``):

* a level's **witness** ("merkelized payload hashes", printed ``srib2…``): one cell per
  message, cell index = message counter, content = ``Blake2b-256(serialized message)``
  (printed ``srib3…``); a witness cell hashes as
  ``Blake2b-256(message hash ‖ pointer_0 ‖ pointer_1 ‖ …)``;
* the **history** (printed ``srib1…``): one cell per level, content a :class:`LevelProof`
  ``{witness hash of the level's last cell; level}``; a history cell hashes as
  ``Blake2b-256(witness hash ‖ decimal text of the level ‖ pointer_0 ‖ …)`` — the level is
  hashed as ASCII digits (``Int32.to_string`` in Octez ``hash_history_proof``), not as bytes.

Neither hash covers the cell index. All hashes are plain Blake2b (``Tag.TEZOS``); the test
vectors in ``tests/unit/protocol/test_inbox.py`` come from an Octez rollup node.

Layer 1 stores only :class:`Inbox` ``{level; old_levels_messages}``: the head history cell,
whose hash is the inbox hash. A level is built by :func:`init_witness` (SOL),
:func:`add_info_per_level`, :func:`add_message` for each message, and :func:`finalize_level`
(EOL, then :func:`archive`: the next history cell, ``inbox.level + 1``);
:func:`add_all_messages` does it in one go. A refutation game freezes the head cell as its
**snapshot** (:meth:`Inbox.snapshot`).

**Proofs** (SORU-SPEC §3.2, Octez ``Sc_rollup_inbox_repr.verify_proof``). The PVM asks for
the message after ``(level, counter)``; :func:`verify_proof` checks an :class:`InboxProof`
for message ``index = counter + 1`` of ``level`` against a snapshot:

1. ``inclusion_proof`` is *the* minimal back path of history cells from the snapshot cell to
   the cell of ``level`` (:func:`soru.protocol.skip_list.valid_back_path`);
2. ``message_proof`` is the minimal back path of witness cells from the level's last cell
   (whose hash the history cell holds) to the cell of ``index``, or just the last cell;
3. ``index <= last index``: the payload is given, hashes to that cell's content, and the
   input is ``(level, index, payload)``. ``index = last index + 1``: no payload, the path is
   only the last cell, and the input is ``Start_of_level`` of ``level + 1`` (counter 0) —
   or nothing if the level's cell is the snapshot itself (the snapshot is exhausted).

**Where soru is stricter than Octez** (honest proofs pass both; hashes are unchanged). Octez
verifies a proof with the indices its cells *claim*, and neither cell hash covers the index;
it also never compares the level of the history cell it reaches with ``level``. So under
Octez's rules a proof can (a) present a valid proof of another level's message under
``level``, or (b) rewrite the last witness cell's index — e.g. 7 to 4, same hash, same pointer
count — and "prove" that the level ends early, making the PVM skip the level's last messages
(``tests/unit/protocol/test_inbox.py`` builds both). soru therefore checks that

* the history cell reached holds ``level``, and the inclusion proof starts with the snapshot
  cell itself, index included;
* every cell of a path has the index its predecessor's pointer designates
  (:func:`~soru.protocol.skip_list.valid_back_path`), so indices are as trustworthy as the
  first cell's;
* the last witness cell's index is the *certified* one, read off the hashed pointer structure
  below it (:func:`~soru.protocol.skip_list.certified_index`); the proof carries the few
  witness cells this needs (``index_certificate``, at most 3 per base-4 digit).

:func:`verify_input` answers a PVM :class:`~soru.pvm.state.InputRequest` with an input proof
(:class:`InboxInputProof`, or :class:`FirstInboxMessage` for the very first input, which is
``Start_of_level`` of ``origination_level + 1``); :func:`cut_at_level` then drops inputs
outside the disputed commitment's levels (SORU-SPEC §4.7).

Producing proofs needs what layer 1 forgets: :class:`InboxHistory` keeps every history cell
by hash and every level's messages; layer 1 and the rollup node build the inbox through it.

Encoding of an :class:`InboxProof`, version 1 (strict: trailing bytes, unknown versions and
tags, out-of-range or non-canonical cells, oversized parts are errors)::

    version u8 = 1
    Octez's ``Sc_rollup_inbox_repr.proof_encoding`` binary, byte for byte:
      u32 byte size ‖ history cells   (each: n index ‖ 32 B witness hash ‖ int32 level
                                             ‖ u32 byte size ‖ 32 B pointers)
      u32 byte size ‖ witness cells   (each: n index ‖ 32 B message hash
                                             ‖ u32 byte size ‖ 32 B pointers)
      payload: 0x00 (none) | 0xff ‖ u32 size ‖ bytes (at most 4096)
    u32 byte size ‖ witness cells of the index certificate (soru's addition)

A proof is at most :data:`MAX_PROOF_SIZE` bytes, which covers the worst case (a history path
across 2**31 levels, a witness path and a certificate across a full level, 4096 bytes of
payload).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from soru.base.errors import DecodeError, SoruError
from soru.base.hashes import Hash
from soru.crypto import base58
from soru.crypto.base58 import Kind
from soru.crypto.hashing import Tag, blake2b_256
from soru.encoding.inbox import (
    MESSAGE_SIZE_LIMIT,
    EndOfLevel,
    InfoPerLevel,
    MessageTooLarge,
    ProtocolMigration,
    StartOfLevel,
)
from soru.encoding.reader import Reader
from soru.encoding.writer import Writer
from soru.protocol import skip_list
from soru.protocol.skip_list import Cell

MAX_MESSAGES_PER_LEVEL = 1_000_000
"""``sc_rollup_max_number_of_messages_per_level`` (Octez ``constants_repr.ml``): a message
may be added while the level's last cell index is at most this."""

MAX_LEVEL = 2**31 - 1
"""Levels are non-negative ``int32`` (Octez ``Raw_level_repr``)."""

MAX_WITNESS_INDEX = MAX_MESSAGES_PER_LEVEL + 2
"""The largest index a witness cell can have: the last counted message, then EOL."""

PROOF_VERSION = 1
MAX_PROOF_SIZE = 64 * 1024
"""Largest encoded :class:`InboxProof` accepted."""
MAX_PATH_CELLS = 64
"""Largest number of cells in each part of a proof (minimal paths have at most about 46
history cells over 2**31 levels and 30 witness cells over a full level; a certificate has
at most 30)."""

DEFAULT_PROTOCOL = "alpha_current"
"""The ``Protocol_migration`` string of Octez's development protocol
(``Constants_repr.version_value``), which a fresh Octez chain writes into its genesis inbox."""


START_OF_LEVEL = StartOfLevel().encode()
END_OF_LEVEL = EndOfLevel().encode()


# --- errors --------------------------------------------------------------------------------


class InboxError(SoruError):
    """Base class of the errors of the inbox."""


class MessageLimitReached(InboxError):
    """A level would hold more messages than :data:`MAX_MESSAGES_PER_LEVEL` allows."""


class MissingHistory(InboxError):
    """A proof cannot be produced: a cell or level it needs is not remembered, or the
    level is not in the snapshot."""


class InboxProofError(InboxError):
    """An inbox proof that does not prove what is asked of it."""


class MalformedInboxProof(InboxProofError, DecodeError):
    """Bytes that are not a well-formed inbox proof."""


# --- typed hashes ----------------------------------------------------------------------------


class InboxHash(Hash):
    """Hash of a history cell (the inbox hash), printed ``srib1…``."""

    __slots__ = ()

    def to_b58(self) -> str:
        return base58.encode(Kind.INBOX_HASH, self)

    @classmethod
    def of_b58(cls, text: str) -> InboxHash:
        return cls(base58.decode_as(Kind.INBOX_HASH, text))

    def __str__(self) -> str:
        return self.to_b58()


class WitnessHash(Hash):
    """Hash of a witness cell (merkelized payload hashes), printed ``srib2…``."""

    __slots__ = ()

    def to_b58(self) -> str:
        return base58.encode(Kind.MERKELIZED_PAYLOADS_HASH, self)

    @classmethod
    def of_b58(cls, text: str) -> WitnessHash:
        return cls(base58.decode_as(Kind.MERKELIZED_PAYLOADS_HASH, text))

    def __str__(self) -> str:
        return self.to_b58()


class MessageHash(Hash):
    """Hash of a serialized inbox message, printed ``srib3…``."""

    __slots__ = ()

    def to_b58(self) -> str:
        return base58.encode(Kind.SERIALIZED_MESSAGE_HASH, self)

    @classmethod
    def of_b58(cls, text: str) -> MessageHash:
        return cls(base58.decode_as(Kind.SERIALIZED_MESSAGE_HASH, text))

    def __str__(self) -> str:
        return self.to_b58()


def hash_message(payload: bytes) -> MessageHash:
    """``Blake2b-256`` of a serialized message: the content of its witness cell."""
    return MessageHash(blake2b_256(Tag.TEZOS, payload))


# --- the per-level witness -------------------------------------------------------------------

WitnessCell = Cell[MessageHash]
"""A cell of a level's witness: index = message counter, content = the message's hash."""


def hash_witness_cell(cell: WitnessCell) -> WitnessHash:
    """``Blake2b-256(message hash ‖ back pointers…)`` (Octez
    ``Sc_rollup_inbox_merkelized_payload_hashes_repr.hash``)."""
    return WitnessHash(blake2b_256(Tag.TEZOS, cell.content, *cell.back_pointers))


def _write_message_hash(out: Writer, content: MessageHash) -> None:
    out.raw(content)


def _read_message_hash(reader: Reader) -> MessageHash:
    return MessageHash(reader.read(Hash.SIZE))


def write_witness_cell(out: Writer, cell: WitnessCell) -> None:
    cell.write(out, _write_message_hash)


def read_witness_cell(reader: Reader) -> WitnessCell:
    return Cell.read(reader, _read_message_hash, max_index=MAX_WITNESS_INDEX, pointer=WitnessHash)


def init_witness() -> WitnessCell:
    """The first cell of every level: ``Start_of_level``."""
    return skip_list.genesis(hash_message(START_OF_LEVEL))


def add_payload(witness: WitnessCell, payload: bytes) -> WitnessCell:
    """The witness after one more message, without the per-level limit (the messages the
    protocol itself pushes: ``Info_per_level``, ``End_of_level``)."""
    return skip_list.next_cell(witness, hash_witness_cell(witness), hash_message(payload))


def add_message(witness: WitnessCell, payload: bytes) -> WitnessCell:
    """The witness after one more counted message (migration, external, internal).

    Raises :class:`MessageLimitReached` past :data:`MAX_MESSAGES_PER_LEVEL` and
    :class:`~soru.encoding.inbox.MessageTooLarge` for a message over 4096 bytes."""
    if witness.index > MAX_MESSAGES_PER_LEVEL:
        raise MessageLimitReached(f"a level holds at most {MAX_MESSAGES_PER_LEVEL} messages")
    if len(payload) > MESSAGE_SIZE_LIMIT:
        raise MessageTooLarge(f"inbox message of {len(payload)} bytes exceeds 4096")
    return add_payload(witness, payload)


def info_per_level_payload(predecessor_timestamp: int, predecessor: bytes) -> bytes:
    """The serialized ``Info_per_level`` of a block whose predecessor has this timestamp
    (seconds) and 32-byte block hash."""
    return InfoPerLevel(predecessor_timestamp, bytes(predecessor)).encode()


def add_info_per_level(
    witness: WitnessCell, predecessor_timestamp: int, predecessor: bytes
) -> WitnessCell:
    """The witness after ``Info_per_level`` (pushed right after ``Start_of_level``)."""
    return add_payload(witness, info_per_level_payload(predecessor_timestamp, predecessor))


def build_witness(payloads: Sequence[bytes]) -> tuple[WitnessCell, ...]:
    """Every witness cell of a level whose serialized messages are ``payloads`` (starting
    with ``Start_of_level``), in counter order."""
    if not payloads:
        raise InboxError("a level has at least Start_of_level")
    cells = [skip_list.genesis(hash_message(payloads[0]))]
    for payload in payloads[1:]:
        cells.append(add_payload(cells[-1], payload))
    return tuple(cells)


# --- the history -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LevelProof:
    """The content of a history cell: the witness hash of a level's last cell, and the
    level. Binary: 32 bytes ‖ int32."""

    witness_hash: WitnessHash
    level: int

    def encode(self) -> bytes:
        out = Writer()
        self.write(out)
        return out.getvalue()

    def write(self, out: Writer) -> None:
        out.raw(self.witness_hash).int32(self.level)

    @classmethod
    def read(cls, reader: Reader) -> LevelProof:
        witness_hash = WitnessHash(reader.read(Hash.SIZE))
        start = reader.pos
        level = reader.uint_be(4)
        if level > MAX_LEVEL:
            reader.fail("a level is a non-negative int32", start)
        return cls(witness_hash, level)

    @classmethod
    def decode(cls, data: bytes) -> LevelProof:
        reader = Reader(data)
        proof = cls.read(reader)
        reader.expect_end("trailing bytes after a level proof")
        return proof


HistoryCell = Cell[LevelProof]
"""A cell of the inbox history: one per level."""


def hash_history_cell(cell: HistoryCell) -> InboxHash:
    """``Blake2b-256(witness hash ‖ decimal text of the level ‖ back pointers…)`` (Octez
    ``Sc_rollup_inbox_repr.hash_history_proof``)."""
    content = cell.content
    level_text = str(content.level).encode("ascii")
    return InboxHash(blake2b_256(Tag.TEZOS, content.witness_hash, level_text, *cell.back_pointers))


def _write_level_proof(out: Writer, content: LevelProof) -> None:
    content.write(out)


def write_history_cell(out: Writer, cell: HistoryCell) -> None:
    cell.write(out, _write_level_proof)


def read_history_cell(reader: Reader) -> HistoryCell:
    return Cell.read(reader, LevelProof.read, max_index=MAX_LEVEL, pointer=InboxHash)


@dataclass(frozen=True, slots=True)
class Inbox:
    """What layer 1 stores: the level of the last archived level and the history cell of
    that level (``old_levels_messages``), whose hash is the inbox hash.

    Binary (Octez ``versioned_encoding``, V1): ``0x00 ‖ int32 level ‖ history cell``."""

    level: int
    old_levels_messages: HistoryCell

    def hash(self) -> InboxHash:
        return hash_history_cell(self.old_levels_messages)

    def snapshot(self) -> HistoryCell:
        """The head history cell, which a refutation game freezes (``take_snapshot``)."""
        return self.old_levels_messages

    def current_witness(self) -> WitnessHash:
        """The witness hash of the last archived level."""
        return self.old_levels_messages.content.witness_hash

    def encode(self) -> bytes:
        out = Writer().u8(0).int32(self.level)
        write_history_cell(out, self.old_levels_messages)
        return out.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Inbox:
        """Strict inverse of :meth:`encode`; raises :class:`~soru.base.errors.DecodeError`."""
        reader = Reader(data)
        if reader.u8() != 0:
            reader.fail("unknown inbox version", 0)
        level = reader.uint_be(4)
        if level > MAX_LEVEL:
            reader.fail("a level is a non-negative int32", 1)
        cell = read_history_cell(reader)
        reader.expect_end("trailing bytes after the inbox")
        return cls(level, cell)


def archive(inbox: Inbox, witness: WitnessCell) -> Inbox:
    """The inbox with one more history cell holding ``witness`` at ``inbox.level``."""
    prev = inbox.old_levels_messages
    content = LevelProof(hash_witness_cell(witness), inbox.level)
    return Inbox(inbox.level, skip_list.next_cell(prev, hash_history_cell(prev), content))


def finalize_level(inbox: Inbox, witness: WitnessCell) -> tuple[Inbox, WitnessCell]:
    """End the current level: add ``End_of_level`` to ``witness`` and archive it as level
    ``inbox.level + 1``. Returns the new inbox and the level's last witness cell."""
    witness = add_payload(witness, END_OF_LEVEL)
    return archive(Inbox(inbox.level + 1, inbox.old_levels_messages), witness), witness


def level_payloads(
    predecessor_timestamp: int,
    predecessor: bytes,
    messages: Iterable[bytes],
    protocol_migration: str | None = None,
) -> tuple[bytes, ...]:
    """Every serialized message of a level, in order: SOL, IPL, the optional migration, the
    block's ``messages`` (serialized external and internal messages), EOL."""
    payloads = [START_OF_LEVEL, info_per_level_payload(predecessor_timestamp, predecessor)]
    if protocol_migration is not None:
        payloads.append(ProtocolMigration(protocol_migration).encode())
    payloads.extend(bytes(m) for m in messages)
    payloads.append(END_OF_LEVEL)
    return tuple(payloads)


@dataclass(frozen=True, slots=True)
class Level:
    """One archived level: its number, serialized messages (``payloads[counter]``) and
    witness cells (``witness[counter]``; the last one is what the history cell holds)."""

    level: int
    payloads: tuple[bytes, ...]
    witness: tuple[WitnessCell, ...]

    @property
    def witness_hash(self) -> WitnessHash:
        return hash_witness_cell(self.witness[-1])


def add_all_messages(
    inbox: Inbox,
    *,
    predecessor_timestamp: int,
    predecessor: bytes,
    messages: Sequence[bytes],
    protocol_migration: str | None = None,
) -> tuple[Inbox, Level]:
    """Append a whole level (Octez ``add_all_messages``): SOL, IPL of the predecessor block,
    ``Protocol_migration`` in a protocol's first block, the serialized ``messages``, EOL.
    Returns the new inbox and the archived level."""
    witness = add_info_per_level(init_witness(), predecessor_timestamp, predecessor)
    cells = [init_witness(), witness]
    middle = level_payloads(predecessor_timestamp, predecessor, messages, protocol_migration)
    for payload in middle[2:-1]:
        witness = add_message(witness, payload)
        cells.append(witness)
    inbox, witness = finalize_level(inbox, witness)
    cells.append(witness)
    return inbox, Level(inbox.level, middle, tuple(cells))


@dataclass(frozen=True, slots=True)
class GenesisParameters:
    """How a chain creates its inbox (Octez ``Sc_rollup_inbox_repr.genesis``, called once per
    chain): a first history cell for ``level`` whose witness holds SOL, ``Info_per_level``
    (``predecessor_timestamp``, ``predecessor``), ``Protocol_migration`` (``protocol``), EOL.

    Tezos mainnet did this at the Mumbai activation; a fresh Octez chain does it in its
    first block, with the genesis block as predecessor. Rollups are originated later, so no
    rollup ever reads these messages; they only fix the inbox hashes that follow."""

    level: int
    predecessor_timestamp: int = 0
    predecessor: bytes = bytes(32)
    protocol: str = DEFAULT_PROTOCOL

    def payloads(self) -> tuple[bytes, ...]:
        return level_payloads(self.predecessor_timestamp, self.predecessor, (), self.protocol)


SANDBOX_GENESIS = GenesisParameters(level=0)
"""soru's sandbox chain creates its inbox at its genesis block (level 0), with no
predecessor (timestamp 0, the zero block hash) and :data:`DEFAULT_PROTOCOL` as the
migration message."""


def genesis_level(parameters: GenesisParameters = SANDBOX_GENESIS) -> Level:
    """The genesis level: its messages and witness."""
    payloads = parameters.payloads()
    return Level(parameters.level, payloads, build_witness(payloads))


def genesis(parameters: GenesisParameters = SANDBOX_GENESIS) -> Inbox:
    """The inbox of a new chain: one history cell (index 0) for the genesis level."""
    level = genesis_level(parameters)
    content = LevelProof(level.witness_hash, parameters.level)
    return Inbox(parameters.level, skip_list.genesis(content))
