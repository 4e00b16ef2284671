"""The proof that ends a refutation game: one PVM tick and the input it consumed, proven
(``../shared/SORU-SPEC.md`` §4.7, Octez ``Sc_rollup_proof_repr.valid``).

A :class:`RefutationProof` pairs a single-tick proof (``soru.pvm.proof.TickProof``) with the
proof of its input: an inbox proof (``soru.protocol.inbox_proof``) for an inbox message, the
revealed page for a raw-data reveal, the rollup's metadata, or nothing. :func:`check` does
what layer 1 does with it:

1. read the state the tick starts from and what it asks for (its *input request*);
2. check the input proof against that request and the game's inbox snapshot — the message
   must be exactly the one the inbox holds, a page must hash to the requested reveal hash,
   metadata must be this rollup's — and cut inputs outside ``(origination level, commitment
   inbox level]`` (the PVM is then *blocked*: the proof's stop is ``None``);
3. check the tick consumed exactly that input, and replay it: the stop state.

Encoding, version 1: ``version u8 ‖ input tag u8 ‖ input ‖ u32 length ‖ tick proof`` with
tags 0 none, 1 inbox proof (sized ``InboxInputProof``), 2 first inbox message, 3 raw data
(u16 length ‖ page), 4 metadata. Strict: trailing bytes and unknown tags are errors.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from soru.base.errors import DecodeError, SoruError
from soru.base.hashes import Hash
from soru.encoding.reader import Reader
from soru.encoding.writer import Writer
from soru.protocol.inbox import HistoryCell
from soru.protocol.inbox_proof import (
    FirstInboxMessage,
    InboxInputProof,
    InboxProofError,
    cut_at_level,
    verify_input,
)
from soru.pvm.proof import InvalidProof, TickProof, proven_request, verify_proof

VERSION = 1
MAX_PAGE = 4096


class InvalidRefutationProof(SoruError):
    """A refutation proof that does not establish its step (names the reason)."""


@dataclass(frozen=True, slots=True)
class RawData:
    """The page answering a raw-data reveal."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Metadata:
    """The rollup's metadata answers a metadata reveal (its content is layer 1's)."""


InputProof = InboxInputProof | FirstInboxMessage | RawData | Metadata | None


@dataclass(frozen=True, slots=True)
class RefutationProof:
    pvm_step: TickProof
    input_proof: InputProof = None

    def encode(self) -> bytes:
        out, proof = Writer().u8(VERSION), self.input_proof
        if proof is None:
            out.u8(0)
        elif isinstance(proof, InboxInputProof):
            out.u8(1).sized(proof.encode())
        elif isinstance(proof, FirstInboxMessage):
            out.u8(2)
        elif isinstance(proof, RawData):
            out.u8(3).uint_be(len(proof.data), 2).raw(proof.data)
        else:
            out.u8(4)
        return out.sized(self.pvm_step.encode()).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> RefutationProof:
        try:
            reader = Reader(data)
            if reader.u8() != VERSION:
                raise InvalidRefutationProof("unknown refutation proof version")
            tag = reader.u8()
            proof: InputProof = None
            if tag == 1:
                proof = InboxInputProof.decode(reader.read(reader.uint_be(4)))
            elif tag == 2:
                proof = FirstInboxMessage()
            elif tag == 3:
                size = reader.uint_be(2)
                if size > MAX_PAGE:
                    raise InvalidRefutationProof(f"a page of {size} bytes exceeds {MAX_PAGE}")
                proof = RawData(reader.read(size))
            elif tag == 4:
                proof = Metadata()
            elif tag != 0:
                raise InvalidRefutationProof(f"unknown input proof tag {tag}")
            step = TickProof.decode(reader.read(reader.uint_be(4)))
            reader.expect_end("trailing bytes after the refutation proof")
            return cls(step, proof)
        except (DecodeError, InvalidProof) as exc:
            raise InvalidRefutationProof(f"malformed refutation proof: {exc}") from exc


@dataclass(frozen=True, slots=True)
class ProofContext:
    """What layer 1 knows of the game a proof ends: the inbox snapshot the game took, the
    rollup's origination level, the disputed commitments' inbox level, the metadata."""

    snapshot: HistoryCell
    origination_level: int
    commitment_inbox_level: int
    metadata: bytes  # rollup address (20 B) ‖ origination level (int32 big-endian)


def _expected_input(proof: RefutationProof, game: ProofContext, request) -> tuple[str, object]:
    """("message", InputMessage | None) or ("reveal", bytes) or ("none", None)."""
    given = proof.input_proof
    if given is None:
        if request.kind != "none":
            raise InvalidRefutationProof(f"the state asks for an input ({request.kind})")
        return "none", None
    if isinstance(given, (InboxInputProof, FirstInboxMessage)):
        message = verify_input(
            game.snapshot, request, given, origination_level=game.origination_level
        )
        cut = cut_at_level(
            message,
            origination_level=game.origination_level,
            commit_inbox_level=game.commitment_inbox_level,
        )
        return "message", cut
    if request.kind != "reveal":
        raise InvalidRefutationProof(f"the state asks for no reveal ({request.kind})")
    if isinstance(given, RawData):
        wanted = request.reveal
        digest = hashlib.blake2b(given.data, digest_size=32).digest()
        if wanted != b"\x00\x00" + digest:
            raise InvalidRefutationProof("the page does not hash to the requested reveal hash")
        return "reveal", given.data
    if request.reveal != b"\x01":
        raise InvalidRefutationProof("the state asks for another reveal than the metadata")
    return "reveal", game.metadata


def check(proof: RefutationProof, game: ProofContext) -> tuple[Hash, Hash | None]:
    """The (start, stop) state hashes the proof establishes; stop is None when the PVM is
    blocked (it asks for an input the inbox does not hold for this game). Raises
    :class:`InvalidRefutationProof`."""
    step = proof.pvm_step
    try:
        start, request = proven_request(step)
        kind, expected = _expected_input(proof, game, request)
        if kind == "message" and expected is None:
            if step.message is not None or step.reveal is not None:
                raise InvalidRefutationProof("the tick consumed an input the game cuts off")
            return start, None
        if (kind == "message" and step.message != expected) or (
            kind == "reveal" and step.reveal != expected
        ):
            raise InvalidRefutationProof("the tick consumed another input than the proven one")
        verified = verify_proof(step)
    except (InvalidProof, InboxProofError) as exc:
        raise InvalidRefutationProof(str(exc)) from exc
    return start, verified.after
