"""The binary form of layer-1 operations (``soru.l1.operations``): an operation has exactly
one encoding, and bytes that are not one raise ``MalformedOperation`` — both found by
``tests/property/test_l1_props.py``."""

from __future__ import annotations

import pytest

from soru.crypto.keys import SecretKey
from soru.encoding.micheline import Prim, encode_expression
from soru.l1 import operations as ops
from soru.l1.operations import MalformedOperation, Operation
from soru.protocol.origination import Origination, PvmKind

A = SecretKey.from_seed(bytes(range(32))).public_key().hash()
ORIGINATION = Operation(
    A, 1, ops.OriginateRollup(Origination(PvmKind.WASM_2_0_0, b"k", Prim("unit")))
)


def _origination_bytes(parameters_type: bytes, whitelist: bytes = b"\x00") -> bytes:
    """:data:`ORIGINATION`'s bytes with another parameters type and whitelist."""
    data, unit = ORIGINATION.encode(), encode_expression(Prim("unit"))
    cut = data.index(len(unit).to_bytes(4, "big") + unit)
    return data[:cut] + len(parameters_type).to_bytes(4, "big") + parameters_type + whitelist


def test_the_compact_form_decodes() -> None:
    data = _origination_bytes(encode_expression(Prim("unit")))
    assert data == ORIGINATION.encode() and Operation.decode(data) == ORIGINATION


@pytest.mark.parametrize(
    "longer",
    [
        bytes.fromhex("096c0000000000000000"),  # unit in the generic form
        bytes.fromhex("046c00000000"),  # unit with an empty annotation string
        bytes.fromhex("0040"),  # the integer 0 written as "minus zero"
    ],
)
def test_a_parameters_type_in_a_longer_form_is_refused(longer: bytes) -> None:
    """Micheline reads these forms but writes shorter ones. Accepted, one operation had
    several encodings, and its hash and signature were over the one it re-encodes to,
    not over the bytes that were sent."""
    with pytest.raises(MalformedOperation):
        Operation.decode(_origination_bytes(longer))


def test_a_whitelisted_key_hash_of_an_unknown_curve_is_malformed() -> None:
    """It raised the bare ``DecodeError`` of the key hash, not ``MalformedOperation``."""
    whitelist = b"\xff" + (1).to_bytes(4, "big") + b"\x04" + bytes(20)
    with pytest.raises(MalformedOperation):
        Operation.decode(_origination_bytes(encode_expression(Prim("unit")), whitelist))
