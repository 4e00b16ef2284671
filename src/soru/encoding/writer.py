"""A growing byte buffer: the one place where soru writes binary primitives.

:class:`Writer` is the counterpart of :class:`soru.encoding.reader.Reader`. It appends

* fixed-width integers, **big-endian** (Tezos ``Data_encoding``: ``uint8``, ``int32``,
  ``int64``, ``uint16``, ``uint30`` lengths) or little-endian (WebAssembly bit patterns);
* LEB128 integers (WebAssembly): unsigned and signed, minimal length;
* Zarith integers (Tezos ``n`` and ``z``): LEB128-like 7-bit groups, least significant first,
  high bit = "more bytes follow"; in ``z`` the first byte carries only 6 bits of magnitude and
  bit 6 is the sign. The encoding is the shortest one, so the last byte is never ``0x00``
  (which Tezos rejects when reading);
* raw bytes, and bytes prefixed by a 4-byte big-endian length (Tezos ``bytes``/``string``
  inside an object) or by a LEB128 length (WebAssembly vectors).

Values out of range raise :class:`ValueError`: writing is done by soru itself, so a bad value
is a bug of the caller, not bad input.
"""

from __future__ import annotations

MAX_DYNAMIC_SIZE = (1 << 30) - 1
"""Largest length Tezos accepts in a 4-byte length prefix (``uint30``)."""


def encode_zarith_n(value: int) -> bytes:
    """The Zarith encoding of a natural number (Tezos ``n``)."""
    if value < 0:
        raise ValueError(f"a Zarith natural cannot be negative: {value}")
    out = bytearray()
    while True:
        group = value & 0x7F
        value >>= 7
        if value:
            out.append(group | 0x80)
        else:
            out.append(group)
            return bytes(out)


def encode_zarith_z(value: int) -> bytes:
    """The Zarith encoding of an integer (Tezos ``z``): sign in bit 6 of the first byte."""
    magnitude = -value if value < 0 else value
    first = magnitude & 0x3F
    if value < 0:
        first |= 0x40
    magnitude >>= 6
    if not magnitude:
        return bytes((first,))
    return bytes((first | 0x80,)) + encode_zarith_n(magnitude)


def encode_uleb(value: int) -> bytes:
    """The shortest unsigned LEB128 encoding of ``value``."""
    return encode_zarith_n(value)


def encode_sleb(value: int) -> bytes:
    """The shortest signed (two's complement) LEB128 encoding of ``value``."""
    out = bytearray()
    while True:
        group = value & 0x7F
        value >>= 7
        if (value == 0 and not group & 0x40) or (value == -1 and group & 0x40):
            out.append(group)
            return bytes(out)
        out.append(group | 0x80)


class Writer:
    """Bytes appended in order; :meth:`getvalue` returns what was written."""

    __slots__ = ("buffer",)

    def __init__(self) -> None:
        self.buffer = bytearray()

    def getvalue(self) -> bytes:
        """Everything written so far."""
        return bytes(self.buffer)

    def __len__(self) -> int:
        return len(self.buffer)

    # --- bytes ------------------------------------------------------------------------------

    def raw(self, data: bytes) -> Writer:
        """``data`` as is."""
        self.buffer += data
        return self

    def u8(self, value: int) -> Writer:
        """One byte."""
        self.buffer.append(value)
        return self

    # --- fixed-width integers ------------------------------------------------------------------

    def uint_be(self, value: int, size: int) -> Writer:
        """An unsigned big-endian integer of ``size`` bytes."""
        self.buffer += value.to_bytes(size, "big")
        return self

    def int_be(self, value: int, size: int) -> Writer:
        """A signed (two's complement) big-endian integer of ``size`` bytes."""
        self.buffer += value.to_bytes(size, "big", signed=True)
        return self

    def uint_le(self, value: int, size: int) -> Writer:
        """An unsigned little-endian integer of ``size`` bytes."""
        self.buffer += value.to_bytes(size, "little")
        return self

    def u16(self, value: int) -> Writer:
        """Tezos ``uint16``."""
        return self.uint_be(value, 2)

    def int32(self, value: int) -> Writer:
        """Tezos ``int32`` (signed, big-endian)."""
        return self.int_be(value, 4)

    def int64(self, value: int) -> Writer:
        """Tezos ``int64`` (signed, big-endian)."""
        return self.int_be(value, 8)

    # --- variable-length integers ---------------------------------------------------------

    def uleb(self, value: int) -> Writer:
        """Unsigned LEB128 (WebAssembly)."""
        self.buffer += encode_uleb(value)
        return self

    def sleb(self, value: int) -> Writer:
        """Signed LEB128 (WebAssembly)."""
        self.buffer += encode_sleb(value)
        return self

    def zarith_n(self, value: int) -> Writer:
        """Tezos ``n``."""
        self.buffer += encode_zarith_n(value)
        return self

    def zarith_z(self, value: int) -> Writer:
        """Tezos ``z``."""
        self.buffer += encode_zarith_z(value)
        return self

    # --- length-prefixed ----------------------------------------------------------------

    def sized(self, data: bytes) -> Writer:
        """A 4-byte big-endian length, then ``data`` (Tezos dynamic size, ``uint30``)."""
        if len(data) > MAX_DYNAMIC_SIZE:
            raise ValueError(f"{len(data)} bytes exceed a 4-byte Tezos length prefix")
        self.buffer += len(data).to_bytes(4, "big")
        self.buffer += data
        return self

    def byte_vec(self, data: bytes) -> Writer:
        """A LEB128 length, then ``data`` (WebAssembly vector of bytes)."""
        self.buffer += encode_uleb(len(data))
        self.buffer += data
        return self

    def reserve_size(self) -> int:
        """Write a placeholder 4-byte length and return its position, for
        :meth:`patch_size` once what it measures is written."""
        position = len(self.buffer)
        self.buffer += b"\x00\x00\x00\x00"
        return position

    def patch_size(self, position: int) -> None:
        """Fill the placeholder at ``position`` with the number of bytes written after it."""
        size = len(self.buffer) - position - 4
        if size > MAX_DYNAMIC_SIZE:
            raise ValueError(f"{size} bytes exceed a 4-byte Tezos length prefix")
        self.buffer[position : position + 4] = size.to_bytes(4, "big")
