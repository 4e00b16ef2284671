"""Inbox message encodings (SORU-SPEC §2.4): every kind round-trips, Transfer payloads are
delimited by the Micheline decoder, and malformed messages raise ``DecodeError``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soru.base.errors import DecodeError
from soru.crypto.addresses import ContractHash, PublicKeyHash, RollupAddress
from soru.encoding.inbox import (
    MESSAGE_SIZE_LIMIT,
    EndOfLevel,
    External,
    InboxMessage,
    InfoPerLevel,
    MessageTooLarge,
    ProtocolMigration,
    StartOfLevel,
    Transfer,
    decode_message,
)
from soru.encoding.micheline import (
    Bytes,
    Int,
    Prim,
    String,
    decode_expression,
    encode_expression,
)
from soru.encoding.michelson_text import parse_expression

# The wasm debugger's defaults (Octez docs): sender KT1…, source tz1…, rollup sr1….
SENDER = ContractHash.of_b58("KT18amZmM5W7qDWVt2pH6uj7sCEd3kbzLrHT").digest
SOURCE = PublicKeyHash.of_b58("tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx").encode()
DESTINATION = RollupAddress.of_b58("sr1Ghq66tYK9y3r8CC1Tf8i8m5nxh8nTvZEf").digest
BLOCK = bytes(range(32))


def transfer(payload: bytes) -> Transfer:
    return Transfer(payload, SENDER, SOURCE, DESTINATION)


MESSAGES: list[tuple[InboxMessage, str]] = [
    (StartOfLevel(), "0001"),
    (EndOfLevel(), "0002"),
    (InfoPerLevel(1_700_000_000, BLOCK), "0003" + "000000006553f100" + BLOCK.hex()),
    (ProtocolMigration("oxford_018"), "0004" + "0000000a" + b"oxford_018".hex()),
    (External(b""), "01"),
    (External(b"\x00hello"), "010068656c6c6f"),
    (
        transfer(encode_expression(parse_expression('Pair "x" 0x0a'))),
        "0000" + "0707" + "010000000178" + "0a000000010a" + SENDER.hex() + SOURCE.hex()
        + DESTINATION.hex(),
    ),
    (transfer(bytes.fromhex("030b")), "0000030b" + SENDER.hex() + SOURCE.hex() + DESTINATION.hex()),
]  # fmt: skip


@pytest.mark.parametrize(("message", "hex_"), MESSAGES)
def test_encoding_and_round_trip(message: InboxMessage, hex_: str) -> None:
    assert message.encode().hex() == hex_
    assert decode_message(bytes.fromhex(hex_)) == message


def test_info_per_level_is_42_bytes() -> None:
    assert len(InfoPerLevel(-1, BLOCK).encode()) == 42
    assert decode_message(InfoPerLevel(-1, BLOCK).encode()) == InfoPerLevel(-1, BLOCK)


def test_transfer_payload_decodes_to_the_michelson_value() -> None:
    message = decode_message(MESSAGES[6][0].encode())
    assert isinstance(message, Transfer)
    assert decode_expression(message.payload) == Prim("Pair", [String("x"), Bytes(b"\n")])
    assert message.sender == SENDER and message.source == SOURCE
    assert message.destination == DESTINATION


@pytest.mark.parametrize("size", [0, 1, 100, MESSAGE_SIZE_LIMIT - 68])
def test_bytes_transfer_layout(size: int) -> None:
    """The echo kernel's reading (SORU-SPEC §2.4): ``00 00 | 0a <len:4> <bytes> | sender 20 |
    source 21 | destination 20``, so the raw bytes start at offset 7 and have length
    ``len(message) - 68``."""
    raw = bytes((i * 7) % 256 for i in range(size))
    encoded = transfer(encode_expression(Bytes(raw))).encode()
    assert encoded[:3] == b"\x00\x00\x0a"
    assert int.from_bytes(encoded[3:7], "big") == size
    assert encoded[7 : len(encoded) - 61] == raw
    assert len(encoded) - 68 == size
    assert decode_message(encoded) == transfer(encode_expression(Bytes(raw)))


@pytest.mark.parametrize(
    "hex_",
    [
        "",  # empty
        "02",  # unknown outer tag
        "00",  # internal without inner tag
        "0006",  # unknown internal tag
        "000100",  # trailing byte after Start_of_level
        "000200",  # trailing byte after End_of_level
        "0003" + "00" * 39,  # Info_per_level one byte short
        "0003" + "00" * 41,  # Info_per_level one byte long
        "0004" + "00000005" + "6162",  # Protocol_migration length past the end
        "0000" + "0b",  # Transfer payload with an unknown Micheline tag
        "0000" + "030b" + "00" * 60,  # Transfer missing one address byte
        "0000" + "030b" + "00" * 62,  # Transfer with an extra byte
        "0000" + "0100000009" + "00" * 61,  # payload string running into the addresses
    ],
)
def test_malformed_messages(hex_: str) -> None:
    with pytest.raises(DecodeError):
        decode_message(bytes.fromhex(hex_))


def test_size_limit() -> None:
    assert len(External(bytes(MESSAGE_SIZE_LIMIT - 1)).encode()) == MESSAGE_SIZE_LIMIT
    with pytest.raises(MessageTooLarge):
        External(bytes(MESSAGE_SIZE_LIMIT)).encode()
    with pytest.raises(MessageTooLarge):
        decode_message(b"\x01" + bytes(MESSAGE_SIZE_LIMIT))
    with pytest.raises(MessageTooLarge):
        transfer(encode_expression(Bytes(bytes(MESSAGE_SIZE_LIMIT - 67)))).encode()


_payloads = st.recursive(
    st.one_of(
        st.builds(Int, st.integers()),
        st.builds(String, st.text(max_size=8)),
        st.builds(Bytes, st.binary(max_size=8)),
        st.just(Prim("Unit")),
    ),
    lambda children: st.builds(Prim, st.sampled_from(["Pair", "Left", "Right", "Some"]),
                               st.lists(children, min_size=1, max_size=2)),
    max_leaves=10,
)  # fmt: skip


@given(_payloads, st.binary(min_size=20, max_size=20), st.binary(min_size=20, max_size=20))
def test_transfer_round_trip(payload: Prim, sender: bytes, destination: bytes) -> None:
    message = Transfer(encode_expression(payload), sender, SOURCE, destination)
    assert decode_message(message.encode()) == message


@given(st.binary(max_size=MESSAGE_SIZE_LIMIT - 1))
def test_external_round_trip(payload: bytes) -> None:
    assert decode_message(External(payload).encode()) == External(payload)


@given(st.integers(-(2**63), 2**63 - 1), st.binary(min_size=32, max_size=32))
def test_info_per_level_round_trip(timestamp: int, block: bytes) -> None:
    message = InfoPerLevel(timestamp, block)
    assert decode_message(message.encode()) == message
