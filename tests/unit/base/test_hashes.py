"""The typed 32-byte hash (soru.base.hashes)."""

import pytest

from soru.base.errors import DecodeError
from soru.base.hashes import ZERO, Hash, InvalidHash


def test_hash_is_bytes_of_32() -> None:
    value = Hash(bytes(range(32)))
    assert isinstance(value, bytes) and len(value) == 32
    assert value == bytes(range(32))
    assert Hash(value) is value
    assert Hash.from_hex(value.hex()) == value
    assert repr(value).startswith("Hash('0001")
    assert str(value) == value.hex()
    assert ZERO == bytes(32)


@pytest.mark.parametrize("bad", [b"", bytes(31), bytes(33)])
def test_wrong_length_is_typed(bad: bytes) -> None:
    with pytest.raises(InvalidHash):
        Hash(bad)


def test_bad_hex_and_type() -> None:
    with pytest.raises(InvalidHash):
        Hash.from_hex("zz" * 32)
    with pytest.raises(InvalidHash):
        Hash.from_hex("00" * 31)
    with pytest.raises(InvalidHash):
        Hash("00" * 32)  # type: ignore[arg-type]
    assert issubclass(InvalidHash, DecodeError)
