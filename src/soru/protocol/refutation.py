"""What a ``smart_rollup_refute`` operation carries (``../shared/SORU-SPEC.md`` §2.8): the start
of a game against an opponent, or a move in it — a dissection or a proof.

Binary encoding, as Octez's ``Sc_rollup_game_repr.refutation_encoding`` except for the proof,
which is soru's (``soru.protocol.refutation_proof``, itself versioned)::

    refutation  tag u8: 0 start ‖ player commitment hash (32) ‖ opponent commitment hash (32)
                      | 1 move  ‖ choice (zarith n) ‖ step
    step        tag u8: 0 dissection ‖ u32 byte length ‖ chunks
                      | 1 proof ‖ u32 byte length ‖ refutation proof
    chunk       state hash: u8 0 (none) | u8 255 ‖ 32 bytes   ‖ tick (zarith n)

Decoding is strict: unknown tags, lengths beyond the input or trailing bytes are a
:class:`MalformedRefutation` (a ``DecodeError``); a dissection holds at most
:data:`MAX_CHUNKS` chunks (a valid one has at most 33).
"""

from __future__ import annotations

from dataclasses import dataclass

from soru.base.errors import DecodeError
from soru.base.hashes import Hash
from soru.encoding.reader import Reader
from soru.encoding.writer import Writer
from soru.protocol.commitment import CommitmentHash
from soru.protocol.dissection import Chunk
from soru.protocol.errors import ProtocolError
from soru.protocol.game import Dissect, Move, Prove
from soru.protocol.refutation_proof import InvalidRefutationProof, RefutationProof

MAX_CHUNKS = 64


class MalformedRefutation(ProtocolError, DecodeError):
    """Bytes that are not a refutation (names what is wrong)."""


@dataclass(frozen=True, slots=True)
class Start:
    """Start a game: the player's commitment against the opponent's."""

    player_commitment: CommitmentHash
    opponent_commitment: CommitmentHash


Refutation = Start | Move
"""A refutation: start a game, or a move of it (``game.Dissect`` or ``game.Prove``)."""


def encode_chunk(out: Writer, chunk: Chunk) -> None:
    if chunk.state_hash is None:
        out.u8(0)
    else:
        out.u8(255).raw(bytes(chunk.state_hash))
    out.zarith_n(chunk.tick)


def decode_chunk(reader: Reader) -> Chunk:
    at = reader.pos
    flag = reader.u8()
    if flag == 0:
        state_hash = None
    elif flag == 255:
        state_hash = Hash(reader.read(32))
    else:
        raise MalformedRefutation(f"bad optional state hash flag {flag}", at)
    return Chunk(state_hash, reader.zarith_n())


def encode_refutation(refutation: Refutation) -> bytes:
    """The binary form of ``refutation`` (see the module docstring)."""
    out = Writer()
    if isinstance(refutation, Start):
        out.u8(0).raw(bytes(refutation.player_commitment))
        return out.raw(bytes(refutation.opponent_commitment)).getvalue()
    out.u8(1).zarith_n(refutation.choice)
    if isinstance(refutation, Dissect):
        chunks = Writer()
        for chunk in refutation.dissection:
            encode_chunk(chunks, chunk)
        return out.u8(0).sized(chunks.getvalue()).getvalue()
    return out.u8(1).sized(refutation.proof.encode()).getvalue()


def _error(message: str, offset: int) -> DecodeError:
    return MalformedRefutation(message, offset)


def decode_refutation(data: bytes) -> Refutation:
    """Strict inverse of :func:`encode_refutation`."""
    reader = Reader(bytes(data), error=_error)
    tag = reader.u8()
    if tag == 0:
        player, opponent = reader.read(32), reader.read(32)
        reader.expect_end("trailing bytes after the refutation")
        return Start(CommitmentHash(player), CommitmentHash(opponent))
    if tag != 1:
        raise MalformedRefutation(f"unknown refutation tag {tag}", 0)
    choice = reader.zarith_n()
    step_at = reader.pos
    step = reader.u8()
    body = reader.window(reader.uint_be(4))
    reader.expect_end("trailing bytes after the refutation")
    if step == 0:
        chunks: list[Chunk] = []
        while not body.at_end():
            if len(chunks) == MAX_CHUNKS:
                raise MalformedRefutation(
                    f"a dissection of more than {MAX_CHUNKS} chunks", body.pos
                )
            chunks.append(decode_chunk(body))
        return Dissect(choice, tuple(chunks))
    if step != 1:
        raise MalformedRefutation(f"unknown step tag {step}", step_at)
    try:
        proof = RefutationProof.decode(body.read(body.end - body.pos))
    except InvalidRefutationProof as error:
        raise MalformedRefutation(str(error), step_at) from None
    return Prove(choice, proof)
