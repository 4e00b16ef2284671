"""The global inbox of layer 1 and its proofs (SORU-SPEC §3), byte for byte as Tezos.

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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

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
from soru.pvm.state import InputMessage, InputRequest

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

_C = TypeVar("_C")
_T = TypeVar("_T")

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


# --- proofs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InboxProof:
    """A proof that a message is (or that no more message is) at some index of a level.

    ``inclusion_proof``: history cells from the snapshot back to the level's cell.
    ``message_proof``: witness cells from the level's last cell back to the message's cell
    (just the last cell for "no more messages"). ``payload``: the message, or None.
    ``index_certificate``: the other witness cells needed to certify the index of the
    level's last cell (see the module docstring)."""

    inclusion_proof: tuple[HistoryCell, ...]
    message_proof: tuple[WitnessCell, ...]
    payload: bytes | None
    index_certificate: tuple[WitnessCell, ...] = ()

    def encode(self) -> bytes:
        out = Writer().u8(PROOF_VERSION)
        self._write_octez(out)
        position = out.reserve_size()
        for cell in self.index_certificate:
            write_witness_cell(out, cell)
        out.patch_size(position)
        return out.getvalue()

    def encode_octez(self) -> bytes:
        """The Octez ``Sc_rollup_inbox_repr.proof_encoding`` binary of the same proof: what
        follows the version byte, without the certificate."""
        out = Writer()
        self._write_octez(out)
        return out.getvalue()

    def _write_octez(self, out: Writer) -> None:
        position = out.reserve_size()
        for history_cell in self.inclusion_proof:
            write_history_cell(out, history_cell)
        out.patch_size(position)
        position = out.reserve_size()
        for witness_cell in self.message_proof:
            write_witness_cell(out, witness_cell)
        out.patch_size(position)
        if self.payload is None:
            out.u8(0x00)
        else:
            out.u8(0xFF).sized(self.payload)

    @classmethod
    def decode(cls, data: bytes) -> InboxProof:
        """Strict inverse of :meth:`encode`; raises :class:`MalformedInboxProof`."""
        if len(data) > MAX_PROOF_SIZE:
            raise MalformedInboxProof(
                f"an inbox proof of {len(data)} bytes exceeds {MAX_PROOF_SIZE}"
            )
        try:
            reader = Reader(data, error=MalformedInboxProof)
            if reader.u8() != PROOF_VERSION:
                reader.fail("unknown inbox proof version", 0)
            history = _read_path(reader, read_history_cell)
            witness = _read_path(reader, read_witness_cell)
            tag = reader.u8()
            payload: bytes | None
            if tag == 0x00:
                payload = None
            elif tag == 0xFF:
                start = reader.pos
                size = reader.uint_be(4)
                if size > MESSAGE_SIZE_LIMIT:
                    reader.fail(f"a payload of {size} bytes exceeds {MESSAGE_SIZE_LIMIT}", start)
                payload = reader.read(size)
            else:
                reader.fail(f"unknown payload tag 0x{tag:02x}", reader.pos - 1)
            certificate = _read_path(reader, read_witness_cell)
            reader.expect_end("trailing bytes after the inbox proof")
        except MalformedInboxProof:
            raise
        except DecodeError as exc:  # pragma: no cover - every reader failure is typed above
            raise MalformedInboxProof(f"malformed inbox proof: {exc}") from exc
        return cls(tuple(history), tuple(witness), payload, tuple(certificate))


def _read_path(reader: Reader, read_cell: Callable[[Reader], _C]) -> list[_C]:
    """A Tezos ``list``: a 4-byte byte size, then cells that must fill it exactly."""
    start = reader.pos
    window = reader.window(reader.uint_be(4))
    cells: list[_C] = []
    while not window.at_end():
        if len(cells) == MAX_PATH_CELLS:
            window.fail(f"a proof path has at most {MAX_PATH_CELLS} cells", start)
        cells.append(read_cell(window))
    return cells


def _checked_path(
    cells: Sequence[Cell[_T]], hash_cell: Callable[[Cell[_T]], Hash], start: Hash, what: str
) -> Cell[_T]:
    """The last of ``cells``, once checked to be the minimal back path from ``start``."""
    if not cells:
        raise InboxProofError(f"the {what} is empty")
    pointers = [hash_cell(cell) for cell in cells]
    table = dict(zip(pointers, cells, strict=True))
    if len(table) != len(cells):
        raise InboxProofError(f"the {what} visits a cell twice")
    if not skip_list.valid_back_path(table.get, start, pointers[-1], pointers):
        raise InboxProofError(f"the {what} is not the minimal back path from its start")
    return cells[-1]


def _check_certificate(
    head: WitnessCell,
    head_pointer: Hash,
    path: Sequence[WitnessCell],
    certificate: Sequence[WitnessCell],
) -> None:
    """Check that ``head`` claims its true index, read with the help of ``certificate``:
    exactly the cells the reading needs beyond ``path``, in reading order, each claiming
    its true index too."""
    path_pointers = {hash_witness_cell(cell) for cell in path}
    given = [hash_witness_cell(cell) for cell in certificate]
    known: dict[Hash, WitnessCell] = dict(zip(given, certificate, strict=True))
    known.update(zip(map(hash_witness_cell, path), path, strict=True))
    indices = skip_list.certify(known.get, head_pointer)
    if indices is None:
        raise InboxProofError("the proof does not certify the index of the level's last cell")
    if head.index != indices[head_pointer]:
        raise InboxProofError(
            f"the level's last cell has index {indices[head_pointer]}, not {head.index}"
        )
    needed = [p for p in indices if p != head_pointer and p not in path_pointers]
    if given != needed:
        raise InboxProofError("the index certificate is not the cells the reading needs")
    for pointer, cell in zip(given, certificate, strict=True):
        if cell.index != indices[pointer]:
            raise InboxProofError(f"a certificate cell claims index {cell.index}")


def verify_proof(
    snapshot: HistoryCell, level: int, index: int, proof: InboxProof
) -> InputMessage | None:
    """The input the PVM reads as message ``index`` of ``level`` according to ``proof``,
    checked against ``snapshot``: that message, or ``Start_of_level`` of ``level + 1`` when
    ``index`` is just past the level's end, or None when moreover ``level`` is the snapshot's
    own level. Raises :class:`InboxProofError`. See the module docstring."""
    if index < 0:
        raise InboxProofError("a message index is non-negative")
    if not proof.inclusion_proof or proof.inclusion_proof[0] != snapshot:
        raise InboxProofError("the inclusion proof does not start at the snapshot")
    target: HistoryCell = _checked_path(
        proof.inclusion_proof, hash_history_cell, hash_history_cell(snapshot), "inclusion proof"
    )
    if target.content.level != level:
        raise InboxProofError(
            f"the inclusion proof reaches level {target.content.level}, not {level}"
        )
    head_cells = proof.message_proof
    if not head_cells:
        raise InboxProofError("the message proof is empty")
    head = head_cells[0]
    head_pointer = hash_witness_cell(head)
    if head_pointer != target.content.witness_hash:
        raise InboxProofError("the message proof does not start at the level's witness")
    message_cell: WitnessCell = _checked_path(
        head_cells, hash_witness_cell, head_pointer, "message proof"
    )
    _check_certificate(head, head_pointer, head_cells, proof.index_certificate)
    last_index = head.index
    if index == last_index + 1:
        if proof.payload is not None:
            raise InboxProofError("a payload is given past the end of the level")
        if message_cell != head:
            raise InboxProofError("past the end of a level, the message proof is its last cell")
        if target == snapshot:
            return None
        return InputMessage(level + 1, 0, START_OF_LEVEL)
    if index > last_index:
        raise InboxProofError(f"message {index} is beyond {last_index + 1}, the level's end")
    if proof.payload is None:
        raise InboxProofError(f"no payload is given for message {index}")
    if hash_message(proof.payload) != message_cell.content:
        raise InboxProofError("the payload does not hash to the proven message")
    if message_cell.index != index:
        raise InboxProofError(f"the message proof reaches message {message_cell.index}")
    return InputMessage(level, index, proof.payload)


# --- input proofs --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InboxInputProof:
    """The answer to ``first_after(level, counter)``: an inbox proof for message
    ``counter + 1`` of ``level``. Binary (Octez ``Inbox_proof`` case, without its tag):
    ``int32 level ‖ n counter ‖ u32 size ‖`` :meth:`InboxProof.encode`."""

    level: int
    counter: int
    proof: InboxProof

    def encode(self) -> bytes:
        out = Writer().int32(self.level).zarith_n(self.counter)
        return out.sized(self.proof.encode()).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> InboxInputProof:
        """Strict inverse of :meth:`encode`; raises :class:`MalformedInboxProof`."""
        reader = Reader(data, error=MalformedInboxProof)
        level = reader.uint_be(4)
        if level > MAX_LEVEL:
            reader.fail("a level is a non-negative int32", 0)
        start = reader.pos
        counter = reader.zarith_n()
        if counter > MAX_WITNESS_INDEX:
            reader.fail(f"a message counter is at most {MAX_WITNESS_INDEX}", start)
        body = reader.read(reader.uint_be(4))
        reader.expect_end("trailing bytes after the input proof")
        return cls(level, counter, InboxProof.decode(body))


@dataclass(frozen=True, slots=True)
class FirstInboxMessage:
    """The answer to the PVM's very first request: ``Start_of_level`` of the level after
    the rollup's origination. Needs no proof (and has no bytes of its own)."""


InputProof = InboxInputProof | FirstInboxMessage


def verify_input(
    snapshot: HistoryCell,
    request: InputRequest,
    proof: InputProof,
    *,
    origination_level: int,
) -> InputMessage | None:
    """What the PVM reads for ``request`` according to ``proof`` (SORU-SPEC §4.7 steps 1
    and 4, inbox part): ``initial`` takes :class:`FirstInboxMessage`, ``first_after(l, c)``
    takes an :class:`InboxInputProof` for exactly ``(l, c)``. Raises
    :class:`InboxProofError` for any other pairing or an invalid proof; None means the
    snapshot holds no further message."""
    if request.kind == "initial":
        if not isinstance(proof, FirstInboxMessage):
            raise InboxProofError("the first input of a rollup needs First_inbox_message")
        return InputMessage(origination_level + 1, 0, START_OF_LEVEL)
    if request.kind == "first_after":
        if not isinstance(proof, InboxInputProof):
            raise InboxProofError("the PVM asks for an inbox message, not the first one")
        if (proof.level, proof.counter) != (request.level, request.counter):
            raise InboxProofError(
                f"the proof answers ({proof.level}, {proof.counter}), "
                f"the PVM asks for ({request.level}, {request.counter})"
            )
        return verify_proof(snapshot, proof.level, proof.counter + 1, proof.proof)
    raise InboxProofError(f"the PVM does not ask for an inbox message ({request.kind})")


def cut_at_level(
    message: InputMessage | None, *, origination_level: int, commit_inbox_level: int
) -> InputMessage | None:
    """None for an input at or below the rollup's origination level or beyond the disputed
    commitment's inbox level (the PVM must then stay blocked), else ``message``."""
    if message is None:
        return None
    if message.level <= origination_level or message.level > commit_inbox_level:
        return None
    return message


# --- the producer's memory -----------------------------------------------------------------


@dataclass(slots=True)
class _StoredLevel:
    level: Level
    cells_by_hash: dict[Hash, WitnessCell] = field(default_factory=dict)

    def deref(self, pointer: Hash) -> WitnessCell | None:
        if not self.cells_by_hash:
            for cell in self.level.witness:
                self.cells_by_hash[hash_witness_cell(cell)] = cell
        return self.cells_by_hash.get(pointer)


def _index_of(stored: _StoredLevel, pointer: Hash) -> int:
    cell = stored.deref(pointer)
    if cell is None:  # pragma: no cover - a stored level holds all its cells
        raise MissingHistory("a witness cell is missing")
    return cell.index


class InboxHistory:
    """Everything needed to produce inbox proofs: each history cell by its hash and each
    level's messages and witness by the level's witness hash.

    Layer 1 and the rollup node build the inbox through :meth:`add_level` (or remember
    levels built elsewhere with :meth:`remember`), then :meth:`produce_proof` answers any
    ``(level, index)`` below a snapshot. This is a store: it grows; the inbox values it
    returns are the frozen records above."""

    def __init__(self) -> None:
        self._cells: dict[Hash, HistoryCell] = {}
        self._levels: dict[Hash, _StoredLevel] = {}
        self._by_level: dict[int, Hash] = {}

    @classmethod
    def from_genesis(
        cls, parameters: GenesisParameters = SANDBOX_GENESIS
    ) -> tuple[InboxHistory, Inbox]:
        """A history holding the genesis level, and the genesis inbox."""
        history = cls()
        inbox = genesis(parameters)
        history.remember(inbox, genesis_level(parameters))
        return history, inbox

    def remember(self, inbox: Inbox, level: Level) -> None:
        """Keep ``inbox``'s head cell and the ``level`` it archived."""
        cell = inbox.old_levels_messages
        if level.witness_hash != cell.content.witness_hash or level.level != cell.content.level:
            raise InboxError("the level does not match the inbox's head cell")
        self._cells[hash_history_cell(cell)] = cell
        self._levels[level.witness_hash] = _StoredLevel(level)
        self._by_level[level.level] = level.witness_hash

    def add_level(
        self,
        inbox: Inbox,
        *,
        predecessor_timestamp: int,
        predecessor: bytes,
        messages: Sequence[bytes],
        protocol_migration: str | None = None,
    ) -> Inbox:
        """:func:`add_all_messages`, remembered; returns the new inbox."""
        inbox, level = add_all_messages(
            inbox,
            predecessor_timestamp=predecessor_timestamp,
            predecessor=predecessor,
            messages=messages,
            protocol_migration=protocol_migration,
        )
        self.remember(inbox, level)
        return inbox

    def find_cell(self, pointer: Hash) -> HistoryCell | None:
        """The history cell of that hash, if remembered."""
        return self._cells.get(pointer)

    def find_level(self, level: int) -> Level | None:
        """The messages and witness of ``level``, if remembered."""
        witness_hash = self._by_level.get(level)
        return None if witness_hash is None else self._levels[witness_hash].level

    def produce_proof(
        self, snapshot: HistoryCell, level: int, index: int
    ) -> tuple[InboxProof, InputMessage | None]:
        """A proof for message ``index`` of ``level`` below ``snapshot``, and the input it
        proves (what :func:`verify_proof` returns for it). Raises :class:`MissingHistory`."""
        if index < 0:
            raise InboxError("a message index is non-negative")
        path = skip_list.search(self.find_cell, snapshot, lambda c: c.level - level)
        if path is None:
            raise MissingHistory(f"no path from the snapshot to level {level}")
        target = path[-1]
        stored = self._levels.get(target.content.witness_hash)
        if stored is None:
            raise MissingHistory(f"the messages of level {level} are not remembered")
        cells = stored.level.witness
        last_index = len(cells) - 1
        if index > last_index + 1:
            raise InboxError(f"level {level} ends at message {last_index}, not before {index}")
        head_pointer = hash_witness_cell(cells[-1])
        pointers = skip_list.back_path(stored.deref, head_pointer, min(index, last_index))
        if pointers is None:  # pragma: no cover - a stored level holds all its cells
            raise MissingHistory(f"no path to message {index} of level {level}")
        message_proof = tuple(cells[_index_of(stored, p)] for p in pointers)
        in_path = set(pointers)
        certificate_pointers = skip_list.index_certificate(stored.deref, head_pointer)
        if certificate_pointers is None:  # pragma: no cover - a stored level holds all cells
            raise MissingHistory(f"cannot certify the last index of level {level}")
        certificate = tuple(
            cells[_index_of(stored, p)] for p in certificate_pointers if p not in in_path
        )
        if index <= last_index:
            payload = stored.level.payloads[index]
            proof = InboxProof(tuple(path), message_proof, payload, certificate)
            return proof, InputMessage(level, index, payload)
        proof = InboxProof(tuple(path), message_proof, None, certificate)
        if target == snapshot:
            return proof, None
        return proof, InputMessage(level + 1, 0, START_OF_LEVEL)

    def produce_input_proof(
        self, snapshot: HistoryCell, request: InputRequest, *, origination_level: int
    ) -> tuple[InputProof, InputMessage | None]:
        """The input proof answering ``request`` and the input it proves (what
        :func:`verify_input` returns for it)."""
        if request.kind == "initial":
            return FirstInboxMessage(), InputMessage(origination_level + 1, 0, START_OF_LEVEL)
        if request.kind != "first_after":
            raise InboxError(f"the PVM does not ask for an inbox message ({request.kind})")
        proof, message = self.produce_proof(snapshot, request.level, request.counter + 1)
        return InboxInputProof(request.level, request.counter, proof), message
