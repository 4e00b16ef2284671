"""The operations of soru's layer-1 sandbox: what an account asks the chain to do, and the
one binary form in which it is hashed, signed and stored.

The rollup operations carry exactly what Tezos's carry (``../shared/SORU-SPEC.md`` §1.6,
with Tezos's manager-operation tags 200–207); a plain transfer of tez is tag 108. The
envelope is soru's own (documented here, versioned): no gas, fees or branch — the sandbox
has none of them — but a counter per account against replays, like Tezos::

    operation  version u8 = 1 ‖ source (22-byte contract, an implicit account)
               ‖ counter (zarith) ‖ tag u8 ‖ content
    content    108 transfer:    destination (22) ‖ amount mutez (zarith)
               200 originate:   kind u8 ‖ u32 kernel length ‖ kernel ‖ parameters type
                                (Micheline, u32 length) ‖ whitelist (u8 0 | 255 ‖ u32 n ‖
                                n × 21-byte key hash)
               201 add messages: u32 count ‖ count × (u32 length ‖ message)
               202 cement:      rollup (20)
               203 publish:     rollup (20) ‖ commitment (76 bytes, §2.2)
               204 refute:      rollup (20) ‖ opponent (22) ‖ u32 length ‖ refutation
               205 timeout:     rollup (20) ‖ alice (22) ‖ bob (22)
               206 execute outbox message: rollup (20) ‖ cemented commitment (32)
                                ‖ u32 length ‖ output proof
               207 recover bond: rollup (20) ‖ staker (22)

Decoding is strict (:class:`MalformedOperation`): unknown tags, lengths beyond the input,
messages over 4096 bytes, trailing bytes, and any form other than the one ``encode``
writes — a Micheline parameters type must be in its most compact form, although Micheline
itself reads the longer ones too — so an operation has exactly one encoding. An
operation's hash is the Blake2b-256 of these bytes; signing is the crypto layer's
(``soru.crypto.keys``) over the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from soru.base.errors import DecodeError, SoruError
from soru.crypto.addresses import (
    ContractHash,
    PublicKeyHash,
    RollupAddress,
    decode_contract,
    encode_contract,
)
from soru.crypto.hashing import Tag, blake2b_256
from soru.crypto.keys import (
    PublicKey,
    SecretKey,
    Signature,
    Watermark,
    check_operation_signature,
    sign_operation,
)
from soru.encoding.micheline import Node, decode_expression, encode_expression
from soru.encoding.reader import Reader
from soru.encoding.writer import Writer
from soru.protocol.commitment import Commitment, CommitmentHash
from soru.protocol.origination import Origination, PvmKind
from soru.protocol.refutation import Refutation, decode_refutation, encode_refutation

VERSION = 1
MAX_MESSAGE_SIZE = 4096
MAX_OPERATION_SIZE = 1 << 20
"""Bytes of one encoded operation, at most (a sandbox bound: Tezos's is 32 KiB, which an
uninstalled kernel of more than ~24 KiB cannot fit — see the installer)."""


class MalformedOperation(DecodeError):
    """Bytes that are not an operation (names what is wrong and where)."""


# --- contents -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transfer:
    """Move ``amount`` mutez to ``destination``."""

    destination: PublicKeyHash | ContractHash
    amount: int


@dataclass(frozen=True, slots=True)
class OriginateRollup:
    origination: Origination


@dataclass(frozen=True, slots=True)
class AddMessages:
    """External messages for the shared inbox (each ≤ 4096 bytes once framed)."""

    messages: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Cement:
    rollup: RollupAddress


@dataclass(frozen=True, slots=True)
class Publish:
    rollup: RollupAddress
    commitment: Commitment


@dataclass(frozen=True, slots=True)
class Refute:
    rollup: RollupAddress
    opponent: PublicKeyHash
    refutation: Refutation


@dataclass(frozen=True, slots=True)
class Timeout:
    rollup: RollupAddress
    alice: PublicKeyHash
    bob: PublicKeyHash


@dataclass(frozen=True, slots=True)
class ExecuteOutboxMessage:
    rollup: RollupAddress
    cemented_commitment: CommitmentHash
    output_proof: bytes


@dataclass(frozen=True, slots=True)
class RecoverBond:
    rollup: RollupAddress
    staker: PublicKeyHash


Content = (
    Transfer | OriginateRollup | AddMessages | Cement | Publish | Refute | Timeout
    | ExecuteOutboxMessage | RecoverBond
)  # fmt: skip

TAGS: dict[type, int] = {
    Transfer: 108,
    OriginateRollup: 200,
    AddMessages: 201,
    Cement: 202,
    Publish: 203,
    Refute: 204,
    Timeout: 205,
    ExecuteOutboxMessage: 206,
    RecoverBond: 207,
}
"""Each content's tag (Tezos's manager-operation tags)."""


@dataclass(frozen=True, slots=True)
class Operation:
    """``content``, asked by implicit account ``source`` as its operation number
    ``counter`` (one more than its previous one)."""

    source: PublicKeyHash
    counter: int
    content: Content

    def encode(self) -> bytes:
        out = Writer().u8(VERSION).raw(encode_contract(self.source)).zarith_n(self.counter)
        out.u8(TAGS[type(self.content)])
        _WRITERS[type(self.content)](out, self.content)
        return out.getvalue()

    def hash(self) -> bytes:
        """The operation hash: Blake2b-256 of the encoding."""
        return blake2b_256(Tag.TEZOS, self.encode())

    @classmethod
    def decode(cls, data: bytes) -> Operation:
        if len(data) > MAX_OPERATION_SIZE:
            raise MalformedOperation(f"an operation of {len(data)} bytes is too large", 0)
        data = bytes(data)
        reader = Reader(data, error=MalformedOperation)
        if reader.u8() != VERSION:
            raise MalformedOperation("unknown operation version", 0)
        source = _implicit(reader)
        counter = reader.zarith_n()
        at = reader.pos
        tag = reader.u8()
        read = _READERS.get(tag)
        if read is None:
            raise MalformedOperation(f"unknown operation tag {tag}", at)
        content = read(reader)
        reader.expect_end("trailing bytes after the operation")
        operation = cls(source, counter, content)
        if operation.encode() != data:  # its hash and signature are over its encoding
            raise MalformedOperation("not the canonical encoding of the operation", at)
        return operation


# --- writing ------------------------------------------------------------------------------


def _sized(out: Writer, data: bytes) -> None:
    out.uint_be(len(data), 4).raw(data)


def _write_originate(out: Writer, c: OriginateRollup) -> None:
    o = c.origination
    out.u8(o.kind)
    _sized(out, o.kernel)
    _sized(out, encode_expression(o.parameters_type))
    if o.whitelist is None:
        out.u8(0)
        return
    out.u8(255).uint_be(len(o.whitelist), 4)
    for key in o.whitelist:
        out.raw(key.encode())


def _write_messages(out: Writer, c: AddMessages) -> None:
    out.uint_be(len(c.messages), 4)
    for message in c.messages:
        _sized(out, message)


_WRITERS: dict[type, Callable[[Writer, Any], object]] = {
    Transfer: lambda out, c: out.raw(encode_contract(c.destination)).zarith_n(c.amount),
    OriginateRollup: _write_originate,
    AddMessages: _write_messages,
    Cement: lambda out, c: out.raw(c.rollup.digest),
    Publish: lambda out, c: out.raw(c.rollup.digest).raw(c.commitment.encode()),
    Refute: lambda out, c: _sized(
        out.raw(c.rollup.digest).raw(encode_contract(c.opponent)), encode_refutation(c.refutation)
    ),
    Timeout: lambda out, c: (
        out.raw(c.rollup.digest).raw(encode_contract(c.alice)).raw(encode_contract(c.bob))
    ),
    ExecuteOutboxMessage: lambda out, c: _sized(
        out.raw(c.rollup.digest).raw(bytes(c.cemented_commitment)), c.output_proof
    ),
    RecoverBond: lambda out, c: out.raw(c.rollup.digest).raw(encode_contract(c.staker)),
}


# --- reading ------------------------------------------------------------------------------


def _implicit(reader: Reader) -> PublicKeyHash:
    at = reader.pos
    try:
        contract = decode_contract(reader.read(22))
    except DecodeError as error:
        raise MalformedOperation(f"bad account: {error}", at) from None
    if not isinstance(contract, PublicKeyHash):
        raise MalformedOperation("expected an implicit account (tz…), got a contract", at)
    return contract


def _key_hash(reader: Reader) -> PublicKeyHash:
    at = reader.pos
    try:
        return PublicKeyHash.decode(reader.read(21))
    except DecodeError as error:
        raise MalformedOperation(f"bad key hash: {error}", at) from None


def _rollup(reader: Reader) -> RollupAddress:
    return RollupAddress(reader.read(20))


def _bytes(reader: Reader, limit: int = MAX_OPERATION_SIZE) -> bytes:
    at = reader.pos
    size = reader.uint_be(4)
    if size > limit:
        raise MalformedOperation(f"a field of {size} bytes exceeds {limit}", at)
    return reader.read(size)


def _read_transfer(reader: Reader) -> Transfer:
    at = reader.pos
    try:
        destination = decode_contract(reader.read(22))
    except DecodeError as error:
        raise MalformedOperation(f"bad destination: {error}", at) from None
    return Transfer(destination, reader.zarith_n())


def _read_originate(reader: Reader) -> OriginateRollup:
    at = reader.pos
    try:
        kind = PvmKind(reader.u8())
    except ValueError:
        raise MalformedOperation("unknown PVM kind", at) from None
    kernel = _bytes(reader)
    at = reader.pos
    encoded = _bytes(reader)
    try:
        parameters_type: Node = decode_expression(encoded)
    except DecodeError as error:
        raise MalformedOperation(f"bad parameters type: {error}", at) from None
    if encode_expression(parameters_type) != encoded:  # e.g. a generic 0x09 prim, "-0"
        raise MalformedOperation("a parameters type not in its most compact form", at)
    at = reader.pos
    flag = reader.u8()
    whitelist = None
    if flag == 255:
        count = reader.uint_be(4)
        if count > 1000:
            raise MalformedOperation(f"a whitelist of {count} keys", at)
        whitelist = tuple(_key_hash(reader) for _ in range(count))
    elif flag != 0:
        raise MalformedOperation(f"bad optional flag {flag}", at)
    return OriginateRollup(Origination(kind, kernel, parameters_type, whitelist))


def _read_messages(reader: Reader) -> AddMessages:
    at = reader.pos
    count = reader.uint_be(4)
    if count > reader.end - reader.pos:
        raise MalformedOperation(f"{count} messages cannot fit", at)
    return AddMessages(tuple(_bytes(reader, MAX_MESSAGE_SIZE) for _ in range(count)))


def _read_refute(reader: Reader) -> Refute:
    rollup, opponent = _rollup(reader), _implicit(reader)
    at = reader.pos
    try:
        refutation = decode_refutation(_bytes(reader))
    except DecodeError as error:
        raise MalformedOperation(f"bad refutation: {error}", at) from None
    return Refute(rollup, opponent, refutation)


def _read_publish(reader: Reader) -> Publish:
    rollup = _rollup(reader)
    at = reader.pos
    try:
        return Publish(rollup, Commitment.decode(reader.read(76)))
    except DecodeError as error:
        raise MalformedOperation(f"bad commitment: {error}", at) from None


_READERS: dict[int, Callable[[Reader], Content]] = {
    108: _read_transfer,
    200: _read_originate,
    201: _read_messages,
    202: lambda r: Cement(_rollup(r)),
    203: _read_publish,
    204: _read_refute,
    205: lambda r: Timeout(_rollup(r), _implicit(r), _implicit(r)),
    206: lambda r: ExecuteOutboxMessage(_rollup(r), CommitmentHash(r.read(32)), _bytes(r)),
    207: lambda r: RecoverBond(_rollup(r), _implicit(r)),
}


# --- signed operations ------------------------------------------------------------------------


class InvalidSignature(SoruError):
    """A signed operation whose key is not its source's, or whose signature does not check."""


@dataclass(frozen=True, slots=True)
class SignedOperation:
    """An operation as it is injected: the operation's bytes, the source's public key, and
    its Ed25519 signature of them under the generic-operation watermark (0x03), as Tezos
    signs manager operations. Binary: ``u32 length ‖ operation ‖ public key (33) ‖
    signature (64)``; its hash (Blake2b-256 of these bytes) names it in receipts and RPCs."""

    operation: Operation
    public_key: PublicKey
    signature: Signature

    @classmethod
    def sign(cls, operation: Operation, secret: SecretKey) -> SignedOperation:
        signature = sign_operation(secret, Watermark.GENERIC_OPERATION, operation.encode())
        return cls(operation, secret.public_key(), signature)

    def check(self) -> None:
        """Raise :class:`InvalidSignature` unless the key is the source's and signed it."""
        if self.public_key.hash() != self.operation.source:
            raise InvalidSignature(f"the key is not {self.operation.source}'s")
        payload = self.operation.encode()
        if not check_operation_signature(
            self.public_key, Watermark.GENERIC_OPERATION, payload, self.signature
        ):
            raise InvalidSignature(f"the signature of {self.operation.source} does not check")

    def encode(self) -> bytes:
        out = Writer()
        _sized(out, self.operation.encode())
        return out.raw(self.public_key.encode()).raw(self.signature.raw).getvalue()

    def hash(self) -> bytes:
        return blake2b_256(Tag.TEZOS, self.encode())

    @classmethod
    def decode(cls, data: bytes) -> SignedOperation:
        """Strict inverse of :meth:`encode` (the signature is not checked: :meth:`check`)."""
        reader = Reader(bytes(data), error=MalformedOperation)
        operation = Operation.decode(_bytes(reader))
        at = reader.pos
        try:
            public_key = PublicKey.decode(reader.read(33))
        except DecodeError as error:
            raise MalformedOperation(f"bad public key: {error}", at) from None
        signature = Signature(reader.read(64))
        reader.expect_end("trailing bytes after the signed operation")
        return cls(operation, public_key, signature)
