"""The outbox (``../shared/SORU-SPEC.md`` §2.6, §7): what a rollup asks layer 1 to do, and the
rule that lets anyone execute it once a cemented commitment covers it.

While processing inbox level ``L`` a kernel writes **outbox messages** (``write_output``):
they sit in the PVM state's outbox of ``L`` at index 0, 1, … Once a cemented commitment's
state holds them, anyone may send ``smart_rollup_execute_outbox_message`` with that commitment
and an **output proof** (``soru.pvm.proof.OutputProof``) of one message; layer 1 checks it
(:func:`execute_outbox_message`), records it as applied so that it runs only once
(:class:`AppliedOutputs`), and carries out the decoded message: transactions become internal
operations from the rollup to ``KT1`` contracts (amount 0), a whitelist update replaces or
drops a private rollup's whitelist (§1.5). Carrying out the effects is layer 1's business;
this module only validates and decodes.

Message encoding, byte for byte as Octez ``Sc_rollup_outbox_message_repr.encoding`` (at
most 4096 bytes in all; integers big-endian)::

    00  untyped batch      len:4 transaction*            (JSON kind "untyped")
    01  typed batch        len:4 typed_transaction*      (kind "typed", since Nairobi)
    02  whitelist update   00 (None: the rollup becomes public)
                         | ff len:4 public_key_hash*     (21 bytes each; since Oxford)
    03  canonical rollup signal (U025/alpha): refused here, :class:`UnsupportedOutboxMessage`

    transaction       = parameters ‖ destination ‖ entrypoint
    typed_transaction = parameters ‖ parameters_ty ‖ destination ‖ entrypoint
    parameters, parameters_ty   Micheline binary, self-delimiting (``soru.encoding.micheline``)
    destination                 01 ‖ KT1 hash (20) ‖ 00   (originated contracts only)
    entrypoint                  len:4 ‖ name               (``default`` written out)

Decoding (:func:`decode_outbox_message`) is strict where Octez is: size, tags, lengths,
the ``opt`` byte, trailing bytes. It is stricter in two places. An entrypoint must be 1–31
characters of ``[a-zA-Z0-9_.%@]``: Octez decodes any name of ≤ 31 bytes and only fails
later, when no contract has such an entrypoint, so the operation fails either way. The
padding byte after a ``KT1`` hash must be zero (as ``soru.crypto.addresses`` requires
everywhere): Octez skips it unread, and every writer (Octez, the kernel SDK) writes zero.
Like Octez (``Entrypoint_repr.of_string_lax``), an empty entrypoint reads as ``default``.
Whitelists are not checked for emptiness or repeated keys here: that is the whitelist
update's rule at execution (Octez ``Sc_rollup_duplicated_key_in_whitelist``).

**Replay protection** (Octez ``Sc_rollup_outbox_storage``): layer 1 keeps, per rollup, one
slot per ``level mod max_active_outbox_levels`` holding a level and the bitset of its
executed message indices. A message executes at most once: its bit set for its level means
:class:`OutboxMessageAlreadyApplied`; a *newer* level in its slot means
:class:`OutboxLevelExpired` (unreachable while the level window of :func:`execute_outbox_message`
holds and the constant does not change — Octez keeps it as a guard, and so does soru).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType

from soru.base.errors import DecodeError
from soru.base.hashes import Hash
from soru.crypto.addresses import (
    CONTRACT_SIZE,
    PUBLIC_KEY_HASH_SIZE,
    ContractHash,
    PublicKeyHash,
    decode_contract,
    encode_contract,
)
from soru.encoding.inbox import MESSAGE_SIZE_LIMIT
from soru.encoding.micheline import (
    MichelineError,
    Node,
    decode_expression_at,
    encode_expression,
)
from soru.encoding.reader import Reader
from soru.encoding.writer import Writer
from soru.protocol.commitment import Commitment, CommitmentHash
from soru.protocol.constants import RollupConstants
from soru.protocol.errors import ProtocolError
from soru.protocol.staking import Stakes, find_commitment
from soru.pvm.proof import InvalidProof, OutputProof, verify_output_proof

MAX_OUTBOX_MESSAGE_SIZE = MESSAGE_SIZE_LIMIT
"""An encoded outbox message is at most 4096 bytes (Octez ``sc_rollup_message_size_limit``)."""

DEFAULT_ENTRYPOINT = "default"
MAX_ENTRYPOINT_LENGTH = 31
ENTRYPOINT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.%@")
"""The characters of a Michelson entrypoint name (those of a ``%`` field annotation)."""


class OutboxTag(IntEnum):
    """The first byte of an encoded outbox message."""

    UNTYPED_BATCH = 0x00
    TYPED_BATCH = 0x01
    WHITELIST_UPDATE = 0x02
    CANONICAL_ROLLUP_SIGNAL = 0x03


_NONE, _SOME = 0x00, 0xFF
"""The ``opt`` flag byte of Tezos Data_encoding."""


# --- errors ------------------------------------------------------------------------------


class InvalidOutboxMessage(ProtocolError):
    """An outbox message value that cannot be encoded: a bad entrypoint, a transaction whose
    type presence does not match its batch, over 4096 bytes once encoded (Octez
    ``Error_encode_outbox_message``, id
    ``smart_rollup_outbox_message_repr.error_encoding_outbox_message``)."""


class MalformedOutboxMessage(InvalidOutboxMessage, DecodeError):
    """Bytes that are not exactly one outbox message; the text names the problem (Octez
    ``Error_decode_outbox_message``, id
    ``smart_rollup_outbox_message_repr.error_decoding_outbox_message``)."""


class UnsupportedOutboxMessage(MalformedOutboxMessage):
    """A well-tagged outbox message soru does not implement: ``Canonical_rollup_signal``
    (tag 3, U025/alpha), which only the chain's configured canonical rollup may send."""


class InvalidLastCementedCommitment(ProtocolError):
    """The commitment named is neither the LCC nor one of the cemented commitments whose
    contents are still stored (Octez ``Sc_rollup_invalid_last_cemented_commitment``, id
    ``smart_rollup_invalid_last_cemented_commitment``)."""


class InvalidOutputProof(ProtocolError):
    """The output proof does not check, or is rooted at another state than the commitment's
    ``compressed_state`` (Octez ``Sc_rollup_invalid_output_proof``, id
    ``smart_rollup_invalid_output_proof``)."""


class InvalidOutboxLevel(ProtocolError):
    """The message's outbox level is not in ``(lcc_level - max_active_outbox_levels,
    lcc_level]`` (Octez ``Sc_rollup_invalid_outbox_level``, id
    ``smart_rollup_invalid_outbox_level``)."""


class InvalidOutboxMessageIndex(ProtocolError):
    """A message index not below ``max_outbox_messages_per_level`` (Octez
    ``Sc_rollup_invalid_outbox_message_index``, id
    ``smart_rollup_invalid_outbox_message_index``)."""


class OutboxLevelExpired(ProtocolError):
    """A newer outbox level occupies the message's replay-protection slot (Octez
    ``Sc_rollup_outbox_level_expired``, id ``smart_rollup_outbox_level_expired``)."""


class OutboxMessageAlreadyApplied(ProtocolError):
    """The message was executed before (Octez ``Sc_rollup_outbox_message_already_applied``,
    id ``smart_rollup_outbox_message_already_applied``)."""


# --- messages ----------------------------------------------------------------------------


def check_entrypoint(name: str) -> str:
    """``name`` if it is an entrypoint name: 1–31 characters of :data:`ENTRYPOINT_CHARS`;
    raises :class:`InvalidOutboxMessage`."""
    if not 0 < len(name) <= MAX_ENTRYPOINT_LENGTH:
        raise InvalidOutboxMessage(
            f"an entrypoint has 1 to {MAX_ENTRYPOINT_LENGTH} characters, not {len(name)}"
        )
    bad = sorted(set(name) - ENTRYPOINT_CHARS)
    if bad:
        raise InvalidOutboxMessage(f"entrypoint {name!r} has characters {''.join(bad)!r}")
    return name


@dataclass(frozen=True, slots=True)
class Transaction:
    """A call of ``destination``'s ``entrypoint`` with ``parameters``, sent by the rollup with
    no tez. ``parameters_ty`` is the Michelson type to check the parameters against in a
    typed batch; in an untyped batch (None) layer 1 takes the entrypoint's type from the
    contract."""

    destination: ContractHash
    entrypoint: str
    parameters: Node
    parameters_ty: Node | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.destination, ContractHash):
            raise InvalidOutboxMessage("outbox transactions go to originated contracts (KT1)")
        check_entrypoint(self.entrypoint)

    def _write(self, writer: Writer) -> None:
        writer.raw(_micheline(self.parameters))
        if self.parameters_ty is not None:
            writer.raw(_micheline(self.parameters_ty))
        writer.raw(encode_contract(self.destination))
        writer.sized(self.entrypoint.encode("ascii"))


@dataclass(frozen=True, slots=True)
class TransactionBatch:
    """Transactions layer 1 runs in order, all or none (``Atomic_transaction_batch``). In a
    ``typed`` batch (tag 1) every transaction has a ``parameters_ty``, in an untyped one
    (tag 0) none has."""

    transactions: tuple[Transaction, ...]
    typed: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "transactions", tuple(self.transactions))
        for transaction in self.transactions:
            if (transaction.parameters_ty is not None) != self.typed:
                kind = "typed" if self.typed else "untyped"
                raise InvalidOutboxMessage(f"a transaction of a {kind} batch has the wrong form")

    def encode(self) -> bytes:
        """The tag-0 or tag-1 message; raises :class:`InvalidOutboxMessage` over 4096 bytes."""
        writer = Writer()
        writer.u8(OutboxTag.TYPED_BATCH if self.typed else OutboxTag.UNTYPED_BATCH)
        size_at = writer.reserve_size()
        for transaction in self.transactions:
            transaction._write(writer)
        writer.patch_size(size_at)
        return _within_limit(writer.getvalue())


@dataclass(frozen=True, slots=True)
class WhitelistUpdate:
    """The new whitelist of a private rollup: the keys that may publish commitments, or None
    to make the rollup public for good (``Whitelist_update``)."""

    whitelist: tuple[PublicKeyHash, ...] | None

    def __post_init__(self) -> None:
        if self.whitelist is not None:
            object.__setattr__(self, "whitelist", tuple(self.whitelist))

    def encode(self) -> bytes:
        """The tag-2 message; raises :class:`InvalidOutboxMessage` over 4096 bytes."""
        writer = Writer().u8(OutboxTag.WHITELIST_UPDATE)
        if self.whitelist is None:
            writer.u8(_NONE)
        else:
            writer.u8(_SOME).sized(b"".join(key.encode() for key in self.whitelist))
        return _within_limit(writer.getvalue())


OutboxMessage = TransactionBatch | WhitelistUpdate
"""A message a kernel can ask layer 1 to execute."""


def _micheline(node: Node) -> bytes:
    try:
        return encode_expression(node)
    except MichelineError as error:
        raise InvalidOutboxMessage(f"parameters that cannot be encoded: {error}") from error


def _within_limit(data: bytes) -> bytes:
    if len(data) > MAX_OUTBOX_MESSAGE_SIZE:
        raise InvalidOutboxMessage(
            f"an outbox message of {len(data)} bytes exceeds {MAX_OUTBOX_MESSAGE_SIZE}"
        )
    return data


def encode_outbox_message(message: OutboxMessage) -> bytes:
    """The binary form of ``message`` (see the module docstring)."""
    return message.encode()


# --- decoding ----------------------------------------------------------------------------


def decode_outbox_message(data: bytes) -> OutboxMessage:
    """The message encoded in exactly ``data``; raises :class:`MalformedOutboxMessage` (or
    its subclass :class:`UnsupportedOutboxMessage` for a canonical rollup signal)."""
    data = bytes(data)
    if len(data) > MAX_OUTBOX_MESSAGE_SIZE:
        raise MalformedOutboxMessage(
            f"an outbox message of {len(data)} bytes exceeds {MAX_OUTBOX_MESSAGE_SIZE}",
            MAX_OUTBOX_MESSAGE_SIZE,
        )
    reader = Reader(data, error=MalformedOutboxMessage)
    if reader.at_end():
        reader.fail("an empty outbox message")
    tag = reader.u8()
    message: OutboxMessage
    if tag in (OutboxTag.UNTYPED_BATCH, OutboxTag.TYPED_BATCH):
        message = _read_batch(reader, typed=tag == OutboxTag.TYPED_BATCH)
    elif tag == OutboxTag.WHITELIST_UPDATE:
        message = _read_whitelist_update(reader)
    elif tag == OutboxTag.CANONICAL_ROLLUP_SIGNAL:
        raise UnsupportedOutboxMessage("canonical rollup signals are not supported", 0)
    else:
        reader.fail(f"unknown outbox message tag 0x{tag:02x}", 0)
    reader.expect_end("trailing bytes after the outbox message")
    return message


def _read_batch(reader: Reader, *, typed: bool) -> TransactionBatch:
    window = _read_sized(reader, "transaction list")
    transactions = []
    while not window.at_end():
        parameters = _read_micheline(window, "parameters")
        parameters_ty = _read_micheline(window, "parameters type") if typed else None
        destination = _read_destination(window)
        entrypoint = _read_entrypoint(window)
        transactions.append(Transaction(destination, entrypoint, parameters, parameters_ty))
    return TransactionBatch(tuple(transactions), typed)


def _read_sized(reader: Reader, what: str) -> Reader:
    start = reader.pos
    size = reader.uint_be(4)
    if size > reader.remaining:
        reader.fail(f"the {what} claims {size} bytes, {reader.remaining} remain", start)
    return reader.window(size)


def _read_micheline(reader: Reader, what: str) -> Node:
    """A Micheline expression that ends within ``reader``'s window."""
    try:
        node, end = decode_expression_at(reader.data[: reader.end], reader.pos)
    except DecodeError as error:
        reader.fail(f"malformed {what}: {error}", error.offset)
    reader.pos = end
    return node


def _read_destination(reader: Reader) -> ContractHash:
    start = reader.pos
    raw = reader.read(CONTRACT_SIZE)
    try:
        contract = decode_contract(raw)
    except DecodeError as error:
        reader.fail(f"malformed destination: {error}", start)
    if not isinstance(contract, ContractHash):
        reader.fail("the destination is an implicit account, not a KT1 contract", start)
    return contract


def _read_entrypoint(reader: Reader) -> str:
    window = _read_sized(reader, "entrypoint")
    start, raw = window.pos, window.rest()
    if not raw:
        return DEFAULT_ENTRYPOINT
    try:
        return check_entrypoint(raw.decode("ascii"))
    except (UnicodeDecodeError, InvalidOutboxMessage) as error:
        reader.fail(f"malformed entrypoint {raw!r}: {error}", start)


def _read_whitelist_update(reader: Reader) -> WhitelistUpdate:
    flag_at = reader.pos
    flag = reader.u8()
    if flag == _NONE:
        return WhitelistUpdate(None)
    if flag != _SOME:
        reader.fail(f"option flag 0x{flag:02x} is neither 0x00 nor 0xff", flag_at)
    window = _read_sized(reader, "whitelist")
    keys = []
    while not window.at_end():
        start = window.pos
        try:
            keys.append(PublicKeyHash.decode(window.read(PUBLIC_KEY_HASH_SIZE)))
        except DecodeError as error:
            window.fail(f"malformed public key hash: {error}", start)
    return WhitelistUpdate(tuple(keys))


# --- replay protection -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppliedLevel:
    """The executed messages of one outbox level: bit ``i`` of ``bitset`` set means message
    ``i`` was executed."""

    level: int
    bitset: int


APPLIED_OUTPUTS_VERSION = 1


@dataclass(frozen=True, slots=True)
class AppliedOutputs:
    """A rollup's replay protection: per slot ``level mod max_active_outbox_levels``, the last
    level that had a message executed there and which of its messages were (Octez
    ``Applied_outbox_messages``). ``slots`` is a read-only view made in ``__post_init__``.

    Encoding, version 1: ``version u8 ‖ count u32 ‖ (slot u32 ‖ level int32 ‖ bitset n)*``
    with slots strictly increasing and bitsets non-zero."""

    slots: Mapping[int, AppliedLevel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "slots", MappingProxyType(dict(self.slots)))

    def encode(self) -> bytes:
        writer = Writer().u8(APPLIED_OUTPUTS_VERSION).uint_be(len(self.slots), 4)
        for slot in sorted(self.slots):
            entry = self.slots[slot]
            writer.uint_be(slot, 4).int32(entry.level).zarith_n(entry.bitset)
        return writer.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> AppliedOutputs:
        """Strict inverse of :meth:`encode`; raises ``DecodeError``."""
        reader = Reader(bytes(data))
        if reader.u8() != APPLIED_OUTPUTS_VERSION:
            reader.fail("unknown applied outputs version", 0)
        slots: dict[int, AppliedLevel] = {}
        previous = -1
        for _ in range(reader.uint_be(4)):
            start = reader.pos
            slot, level = reader.uint_be(4), reader.uint_be(4)
            bitset = reader.zarith_n()
            if slot <= previous:
                reader.fail("slots out of order", start)
            previous = slot
            if level >= 2**31 or bitset == 0:
                reader.fail("a negative level or an empty bitset", start)
            slots[slot] = AppliedLevel(level, bitset)
        reader.expect_end("trailing bytes after the applied outputs")
        return cls(slots)


def _check_index(constants: RollupConstants, index: int) -> None:
    if not 0 <= index < constants.max_outbox_messages_per_level:
        raise InvalidOutboxMessageIndex(
            f"message index {index} is not in 0..{constants.max_outbox_messages_per_level - 1}"
        )


def is_applied(applied: AppliedOutputs, constants: RollupConstants, level: int, index: int) -> bool:
    """Whether message ``index`` of outbox ``level`` was executed (as far as the slot of
    ``level`` still remembers)."""
    entry = applied.slots.get(level % constants.max_active_outbox_levels)
    if entry is None or entry.level != level or index < 0:
        return False
    return bool(entry.bitset >> index & 1)


def mark(
    applied: AppliedOutputs, constants: RollupConstants, level: int, index: int
) -> AppliedOutputs:
    """``applied`` with message ``index`` of outbox ``level`` executed (Octez
    ``record_applied_message``). Raises :class:`InvalidOutboxMessageIndex`,
    :class:`OutboxLevelExpired` if a newer level holds the slot,
    :class:`OutboxMessageAlreadyApplied` if the message's bit is set; an older level in the
    slot is forgotten."""
    _check_index(constants, index)
    if level < 0:
        raise InvalidOutboxLevel(f"outbox level {level} is negative")
    slot = level % constants.max_active_outbox_levels
    entry = applied.slots.get(slot)
    bitset = 0
    if entry is not None and entry.level > level:
        raise OutboxLevelExpired(f"level {entry.level} holds the slot of outbox level {level}")
    if entry is not None and entry.level == level:
        if entry.bitset >> index & 1:
            raise OutboxMessageAlreadyApplied(f"message {index} of level {level} was executed")
        bitset = entry.bitset
    return AppliedOutputs({**applied.slots, slot: AppliedLevel(level, bitset | 1 << index)})


# --- execution (§7) ----------------------------------------------------------------------


def execute_outbox_message(
    stakes: Stakes,
    constants: RollupConstants,
    applied: AppliedOutputs,
    cemented_commitment: Hash,
    output_proof: OutputProof | bytes,
) -> tuple[AppliedOutputs, OutboxMessage, int, int]:
    """Validate the execution of the message proven by ``output_proof`` in the state of
    ``cemented_commitment``; returns the new replay protection, the decoded message (for
    layer 1 to carry out), its outbox level and its index. ``output_proof`` may be given as
    the bytes of the operation.

    Checks, in Octez's order (``Sc_rollup_operations.execute_outbox_message``): the
    commitment is cemented and stored; the proof checks and is rooted at its state; the
    level is active; the message decodes; the index is in range and the message was not
    executed. Nothing is returned unless every check passes."""
    commitment = _get_cemented(stakes, cemented_commitment)
    proof = _check_output_proof(output_proof, commitment)
    _check_outbox_level(stakes, constants, proof.level)
    message = decode_outbox_message(proof.message)
    return mark(applied, constants, proof.level, proof.index), message, proof.level, proof.index


def _get_cemented(stakes: Stakes, commitment: Hash) -> Commitment:
    """Step 1: the LCC or a cemented commitment whose contents are still stored."""
    digest = CommitmentHash(commitment)
    found = find_commitment(stakes, digest)
    if digest not in stakes.cemented or found is None:
        raise InvalidLastCementedCommitment(
            f"{digest} is not a cemented commitment whose contents are stored"
        )
    return found


def _check_output_proof(output_proof: OutputProof | bytes, commitment: Commitment) -> OutputProof:
    """Step 2: the proof is well formed, checks, and its state is the commitment's."""
    try:
        if not isinstance(output_proof, OutputProof):
            output_proof = OutputProof.decode(bytes(output_proof))
        state = verify_output_proof(output_proof)
    except InvalidProof as error:
        raise InvalidOutputProof(str(error)) from error
    if state != commitment.compressed_state:
        raise InvalidOutputProof("the proof is rooted at another state than the commitment's")
    return output_proof


def _check_outbox_level(stakes: Stakes, constants: RollupConstants, level: int) -> None:
    """Step 3: ``lcc_level - max_active_outbox_levels < level <= lcc_level``."""
    low = stakes.lcc_level - constants.max_active_outbox_levels
    if not low < level <= stakes.lcc_level:
        raise InvalidOutboxLevel(
            f"outbox level {level} is not in ({low}, {stakes.lcc_level}] (active levels)"
        )
