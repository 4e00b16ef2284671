"""Inbox proofs (``../shared/SORU-SPEC.md`` §3.2): that message n of level l is in the inbox a
game's snapshot names, or that a level has no more messages; the input a PVM's request gets
(:func:`verify_input`), ``cut_at_level``, and :class:`InboxHistory`, the producer's memory of
every cell and payload. The inbox itself (witness, history, genesis) is ``soru.protocol.inbox``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from soru.base.errors import DecodeError
from soru.base.hashes import Hash
from soru.encoding.inbox import (
    MESSAGE_SIZE_LIMIT,
)
from soru.encoding.reader import Reader
from soru.encoding.writer import Writer
from soru.protocol import skip_list
from soru.protocol.inbox import (
    MAX_LEVEL,
    MAX_PATH_CELLS,
    MAX_PROOF_SIZE,
    MAX_WITNESS_INDEX,
    PROOF_VERSION,
    SANDBOX_GENESIS,
    START_OF_LEVEL,
    GenesisParameters,
    HistoryCell,
    Inbox,
    InboxError,
    InboxProofError,
    Level,
    MalformedInboxProof,
    MissingHistory,
    WitnessCell,
    add_all_messages,
    genesis,
    genesis_level,
    hash_history_cell,
    hash_message,
    hash_witness_cell,
    read_history_cell,
    read_witness_cell,
    write_history_cell,
    write_witness_cell,
)
from soru.protocol.skip_list import Cell
from soru.pvm.state import InputMessage, InputRequest

_C = TypeVar("_C")
_T = TypeVar("_T")

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
