"""A cursor over an immutable byte string: the one place where soru reads binary primitives.

A :class:`Reader` reads bytes, fixed-width integers (little- or big-endian), LEB128 integers
and Tezos Zarith integers (``n``, ``z``) from ``data[pos:end]``, advancing ``pos``. Every
binary decoder in soru (WebAssembly modules, layer-1 operations, Micheline, proofs) reads
through it, so LEB128 and Zarith are implemented exactly once.

LEB128 with an exact bit width ``N`` follows the WebAssembly specification (section 5.2.2):

* an encoding takes at most ``ceil(N / 7)`` bytes ("integer representation too long");
* in the last allowed byte, the bits beyond ``N`` must be zero for an unsigned integer and a
  proper sign extension of bit ``N - 1`` for a signed one ("integer too large");
* shorter, padded encodings (``0x80 0x00`` for zero) are allowed.

Every failure raises a :class:`soru.base.errors.DecodeError` carrying the absolute byte
offset of the fault, or whatever subclass the caller names with ``error=``: a decoder passes
a factory that adds its own context (the WebAssembly decoder adds the section name). Reading
never raises ``IndexError``; lengths read from the input are checked against the bytes that
remain before anything is allocated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from soru.base.errors import DecodeError

ErrorFactory = Callable[[str, int], DecodeError]
"""Builds the exception to raise from a message and an absolute byte offset."""


class Reader:
    """A position in ``data`` that may not move past ``end``.

    ``pos`` and ``end`` are absolute offsets into ``data``; a :meth:`window` shares ``data``
    with its parent, so offsets in errors always refer to the whole input.
    """

    __slots__ = ("data", "pos", "end", "error")

    def __init__(
        self,
        data: bytes,
        pos: int = 0,
        end: int | None = None,
        *,
        error: ErrorFactory = DecodeError,
    ) -> None:
        limit = len(data) if end is None else end
        if not 0 <= pos <= limit <= len(data):
            raise ValueError(f"reader bounds {pos}..{limit} outside 0..{len(data)}")
        self.data = data
        self.pos = pos
        self.end = limit
        self.error = error

    # --- position --------------------------------------------------------------------------

    def fail(self, message: str, offset: int | None = None) -> NoReturn:
        """Raise the reader's error for ``message`` at ``offset`` (default: the position)."""
        raise self.error(message, self.pos if offset is None else offset)

    @property
    def remaining(self) -> int:
        """How many bytes are left before ``end``."""
        return self.end - self.pos

    def at_end(self) -> bool:
        """Whether every byte up to ``end`` has been read."""
        return self.pos >= self.end

    def expect_end(self, message: str = "unexpected content after the end") -> None:
        """Fail with ``message`` unless every byte up to ``end`` has been read."""
        if self.pos != self.end:
            self.fail(message)

    def window(self, size: int, *, error: ErrorFactory | None = None) -> Reader:
        """A reader over the next ``size`` bytes, which this reader then skips.

        Used for length-prefixed regions (a section, a function body): the window cannot
        read past the region, and the caller checks that it consumed all of it.
        """
        start = self.pos
        if size > self.end - start:
            self.fail("length out of bounds")
        self.pos = start + size
        return Reader(self.data, start, start + size, error=error or self.error)

    # --- bytes ------------------------------------------------------------------------------

    def u8(self) -> int:
        """One byte."""
        pos = self.pos
        if pos >= self.end:
            self.fail("unexpected end")
        self.pos = pos + 1
        return self.data[pos]

    def peek(self) -> int:
        """The next byte, without consuming it."""
        if self.pos >= self.end:
            self.fail("unexpected end")
        return self.data[self.pos]

    def read(self, size: int) -> bytes:
        """Exactly ``size`` bytes."""
        pos = self.pos
        if size > self.end - pos:
            self.fail("unexpected end")
        self.pos = pos + size
        return self.data[pos : pos + size]

    def rest(self) -> bytes:
        """Every byte left up to ``end``."""
        return self.read(self.end - self.pos)

    def uint_le(self, size: int) -> int:
        """An unsigned little-endian integer of ``size`` bytes (e.g. an IEEE bit pattern)."""
        return int.from_bytes(self.read(size), "little")

    def uint_be(self, size: int) -> int:
        """An unsigned big-endian integer of ``size`` bytes (Tezos ``uint8``..``int64``,
        lengths)."""
        return int.from_bytes(self.read(size), "big")

    def length(self) -> int:
        """A u32 LEB128 count of items that each take at least one more byte.

        Fails with "length out of bounds" if fewer bytes remain than the count, so a huge
        declared length can never make a caller allocate.
        """
        start = self.pos
        count = self.u32()
        if count > self.end - self.pos:
            self.fail("length out of bounds", start)
        return count

    def byte_vec(self) -> bytes:
        """A u32 LEB128 length followed by that many bytes."""
        return self.read(self.length())

    # --- LEB128 -----------------------------------------------------------------------------

    def uleb(self, bits: int) -> int:
        """An unsigned LEB128 integer that must fit in ``bits`` bits."""
        data, pos, end = self.data, self.pos, self.end
        start = pos
        last = (bits + 6) // 7 - 1  # index of the last byte an encoding may use
        result = 0
        shift = 0
        for index in range(last + 1):
            if pos >= end:
                self.fail("unexpected end", pos)
            byte = data[pos]
            pos += 1
            if index == last:
                if byte & 0x80:
                    self.fail("integer representation too long", start)
                if byte >> (bits - shift):
                    self.fail("integer too large", start)
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        self.pos = pos
        return result

    def sleb(self, bits: int) -> int:
        """A signed (two's complement) LEB128 integer that must fit in ``bits`` bits."""
        data, pos, end = self.data, self.pos, self.end
        start = pos
        last = (bits + 6) // 7 - 1
        result = 0
        shift = 0
        byte = 0
        for index in range(last + 1):
            if pos >= end:
                self.fail("unexpected end", pos)
            byte = data[pos]
            pos += 1
            if index == last:
                if byte & 0x80:
                    self.fail("integer representation too long", start)
                # Bits from the sign bit (bit N-1) to bit 6 of this byte must all be equal.
                high = byte >> (bits - shift - 1)
                if high != 0 and high != 0x7F >> (bits - shift - 1):
                    self.fail("integer too large", start)
            result |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if byte & 0x40:
            result -= 1 << shift
        self.pos = pos
        return result

    def u32(self) -> int:
        """An unsigned 32-bit LEB128 integer (indices, counts, sizes)."""
        pos = self.pos
        if pos < self.end:
            byte = self.data[pos]
            if byte < 0x80:
                self.pos = pos + 1
                return byte
        return self.uleb(32)

    def u64(self) -> int:
        """An unsigned 64-bit LEB128 integer."""
        return self.uleb(64)

    def s32(self) -> int:
        """A signed 32-bit LEB128 integer, as a Python int in ``[-2**31, 2**31)``."""
        pos = self.pos
        if pos < self.end:
            byte = self.data[pos]
            if byte < 0x80:
                self.pos = pos + 1
                return byte - 0x80 if byte & 0x40 else byte
        return self.sleb(32)

    def s33(self) -> int:
        """A signed 33-bit LEB128 integer (WebAssembly block types)."""
        return self.sleb(33)

    def s64(self) -> int:
        """A signed 64-bit LEB128 integer, as a Python int in ``[-2**63, 2**63)``."""
        pos = self.pos
        if pos < self.end:
            byte = self.data[pos]
            if byte < 0x80:
                self.pos = pos + 1
                return byte - 0x80 if byte & 0x40 else byte
        return self.sleb(64)

    # --- Zarith (Tezos ``n`` and ``z``) -----------------------------------------------------

    def _zarith_groups(self, value: int, shift: int, start: int) -> int:
        """The 7-bit groups after a first byte that had its continuation bit set; like
        Tezos, a last byte of ``0x00`` (a non-canonical trailing zero) is refused."""
        data, pos, end = self.data, self.pos, self.end
        while True:
            if pos >= end:
                self.fail("unexpected end", pos)
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                if byte == 0:
                    self.fail("Zarith integer with a trailing zero byte", start)
                self.pos = pos
                return value

    def zarith_n(self) -> int:
        """A Zarith natural number (Tezos ``n``): 7-bit groups, least significant first."""
        start = self.pos
        first = self.u8()
        if first < 0x80:
            return first
        return self._zarith_groups(first & 0x7F, 7, start)

    def zarith_z(self) -> int:
        """A Zarith integer (Tezos ``z``): the first byte holds 6 bits and the sign (bit 6).

        As in Tezos, the single byte ``0x40`` ("minus zero") reads as 0."""
        start = self.pos
        first = self.u8()
        magnitude = first & 0x3F
        if first & 0x80:
            magnitude = self._zarith_groups(magnitude, 6, start)
        return -magnitude if first & 0x40 else magnitude
