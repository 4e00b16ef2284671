"""Every WebAssembly 2.0 numeric operator, exact to the bit (spec section 4.3, "Numerics").

Values are plain Python ints holding the *unsigned bit pattern* of a value: an i32 lies in
``[0, 2**32)``, an i64 in ``[0, 2**64)``, an f32 is its 32 IEEE-754 bits and an f64 its 64
bits. No operator takes or returns a Python float; floats appear only inside an operator, as
exact IEEE binary64 values.

:data:`UNARY` and :data:`BINARY` map the opcode number of every numeric operator of the opcode
table (``soru.wasm.opcodes``; constants, loads and stores excluded) to a function of one or two
bit patterns. Comparisons return 0 or 1. Operators that fault raise :class:`Trap` with the
specification's wording: ``"integer divide by zero"``, ``"integer overflow"`` (``div_s`` of the
minimum by -1; ``trunc`` of a value out of range) and ``"invalid conversion to integer"``
(``trunc`` of a NaN).

**NaN results.** Where the specification lets a NaN result be any member of a set (a
canonical NaN of either sign, or any *arithmetic* NaN — quiet bit set — once an operand is a
non-canonical NaN), this module makes one deterministic choice, the one of the reference
interpreter:

* an operator with NaN operands returns the *first* NaN operand with its quiet bit set (sign
  and payload kept); a canonical NaN operand therefore stays canonical;
* an operator producing a NaN from non-NaN operands (``inf - inf``, ``0 * inf``, ``0 / 0``,
  ``sqrt`` of a negative number) returns the positive canonical NaN;
* ``f32.demote_f64`` keeps the sign and the top 23 fraction bits of a NaN, ``f64.promote_f32``
  keeps the sign and the fraction (shifted to the top), both set the quiet bit;
* ``abs``, ``neg``, ``copysign`` and the reinterpretations are pure bit operations and never
  change a NaN's payload.

**Rounding.** CPython floats are IEEE-754 binary64 with round-to-nearest-even, so ``+ - * /``
and :func:`math.sqrt` are correctly rounded f64 operations. f32 arithmetic is computed in
binary64 and rounded once to binary32: for ``+ - * /`` and ``sqrt`` that double rounding is
provably innocuous (53 >= 2 * 24 + 2). The narrowing itself is the IEEE binary64 -> binary32
conversion that :mod:`struct` performs; it reports overflow, which we map to the infinity that
round-to-nearest gives. Integer to float conversions round the integer directly with integer
arithmetic (going through f64 would round twice).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable

from soru.wasm.errors import Trap
from soru.wasm.opcodes import BY_NAME

Unary = Callable[[int], int]
Binary = Callable[[int, int], int]

DIVIDE_BY_ZERO = "integer divide by zero"
INTEGER_OVERFLOW = "integer overflow"
INVALID_CONVERSION = "invalid conversion to integer"

MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF

F32_SIGN = 0x8000_0000
F32_INF = 0x7F80_0000
F32_QUIET = 0x0040_0000
F32_CANONICAL_NAN = F32_INF | F32_QUIET

F64_SIGN = 0x8000_0000_0000_0000
F64_INF = 0x7FF0_0000_0000_0000
F64_QUIET = 0x0008_0000_0000_0000
F64_CANONICAL_NAN = F64_INF | F64_QUIET

_pack_u32 = struct.Struct("<I").pack
_unpack_u32 = struct.Struct("<I").unpack
_pack_u64 = struct.Struct("<Q").pack
_unpack_u64 = struct.Struct("<Q").unpack
_pack_f32 = struct.Struct("<f").pack
_unpack_f32 = struct.Struct("<f").unpack
_pack_f64 = struct.Struct("<d").pack
_unpack_f64 = struct.Struct("<d").unpack


# --- integers ------------------------------------------------------------------------------


def _integer_division(width: int) -> dict[str, Binary]:
    """div_s, div_u, rem_s, rem_u of N-bit patterns: quotients truncate toward zero, a
    remainder takes the dividend's sign; dividing by zero traps, and so does the one
    quotient that does not fit (the minimum divided by -1), whose remainder is 0."""
    mask = (1 << width) - 1
    sign = 1 << (width - 1)

    def div_s(a: int, b: int) -> int:
        if b == 0:
            raise Trap(DIVIDE_BY_ZERO)
        if not (a | b) & sign:
            return a // b  # both non-negative: the common case
        if a == sign and b == mask:
            raise Trap(INTEGER_OVERFLOW)
        x, y = (a ^ sign) - sign, (b ^ sign) - sign
        q = abs(x) // abs(y)
        return (-q if (x < 0) != (y < 0) else q) & mask

    def div_u(a: int, b: int) -> int:
        if b == 0:
            raise Trap(DIVIDE_BY_ZERO)
        return a // b

    def rem_s(a: int, b: int) -> int:
        if b == 0:
            raise Trap(DIVIDE_BY_ZERO)
        if not (a | b) & sign:
            return a % b
        x = (a ^ sign) - sign
        r = abs(x) % abs((b ^ sign) - sign)
        return (-r if x < 0 else r) & mask

    def rem_u(a: int, b: int) -> int:
        if b == 0:
            raise Trap(DIVIDE_BY_ZERO)
        return a % b

    return {"div_s": div_s, "div_u": div_u, "rem_s": rem_s, "rem_u": rem_u}


def _integer_operators(width: int) -> tuple[dict[str, Unary], dict[str, Binary]]:
    """The operators ``iN.*`` on unsigned N-bit patterns, keyed by the name after the dot.

    Signed views are taken with ``(x ^ sign) - sign`` (two's complement); flipping the sign
    bit turns signed order into unsigned order, which the signed comparisons use.
    """
    mask = (1 << width) - 1
    sign = 1 << (width - 1)
    count_mask = width - 1  # shift and rotate counts are taken modulo the width

    def rotl(a: int, b: int) -> int:
        k = b & count_mask
        return ((a << k) | (a >> (width - k))) & mask

    def rotr(a: int, b: int) -> int:
        k = b & count_mask
        return ((a >> k) | (a << (width - k))) & mask

    unary: dict[str, Unary] = {
        "eqz": lambda a: 1 if a == 0 else 0,
        "clz": lambda a: width - a.bit_length(),
        "ctz": lambda a: (a & -a).bit_length() - 1 if a else width,
        "popcnt": lambda a: a.bit_count(),
    }
    binary: dict[str, Binary] = {
        "eq": lambda a, b: 1 if a == b else 0,
        "ne": lambda a, b: 1 if a != b else 0,
        "lt_s": lambda a, b: 1 if a ^ sign < b ^ sign else 0,
        "lt_u": lambda a, b: 1 if a < b else 0,
        "gt_s": lambda a, b: 1 if a ^ sign > b ^ sign else 0,
        "gt_u": lambda a, b: 1 if a > b else 0,
        "le_s": lambda a, b: 1 if a ^ sign <= b ^ sign else 0,
        "le_u": lambda a, b: 1 if a <= b else 0,
        "ge_s": lambda a, b: 1 if a ^ sign >= b ^ sign else 0,
        "ge_u": lambda a, b: 1 if a >= b else 0,
        "add": lambda a, b: (a + b) & mask,
        "sub": lambda a, b: (a - b) & mask,
        "mul": lambda a, b: (a * b) & mask,
        "and": lambda a, b: a & b,
        "or": lambda a, b: a | b,
        "xor": lambda a, b: a ^ b,
        "shl": lambda a, b: (a << (b & count_mask)) & mask,
        "shr_s": lambda a, b: (((a ^ sign) - sign) >> (b & count_mask)) & mask,
        "shr_u": lambda a, b: a >> (b & count_mask),
        "rotl": rotl,
        "rotr": rotr,
        **_integer_division(width),
    }
    return unary, binary


def _sign_extender(source_width: int, target_mask: int) -> Unary:
    """Sign-extend the low ``source_width`` bits to a pattern under ``target_mask``."""
    low = (1 << source_width) - 1
    sign = 1 << (source_width - 1)
    return lambda a: (((a & low) ^ sign) - sign) & target_mask


# --- float formats -------------------------------------------------------------------------


def _f32_to_float(a: int) -> float:
    """The (exact) binary64 value of f32 bits; NaNs only keep their NaN-ness."""
    return _unpack_f32(_pack_u32(a))[0]


def _f64_to_float(a: int) -> float:
    """The binary64 value of f64 bits."""
    return _unpack_f64(_pack_u64(a))[0]


def _f32_from_float(x: float) -> int:
    """The f32 bits of a non-NaN binary64 value, rounded to nearest, ties to even.

    :mod:`struct` refuses finite values that round to infinity; round-to-nearest gives
    infinity exactly then (from the halfway point ``FLT_MAX + ulp/2`` up, the tie going to
    the even neighbour, which is infinity).
    """
    try:
        return _unpack_u32(_pack_f32(x))[0]
    except OverflowError:
        return 0xFF80_0000 if x < 0 else F32_INF


def _f64_from_float(x: float) -> int:
    """The f64 bits of a binary64 value."""
    return _unpack_u64(_pack_f64(x))[0]


class _Format:
    """An IEEE-754 binary format as the operators see it: masks and conversions to floats."""

    __slots__ = (
        "width", "fraction", "sign", "magnitude", "inf", "quiet", "canonical_nan", "integral",
        "to_float", "from_float", "pack_pair", "unpack_pair",
    )  # fmt: skip

    def __init__(
        self,
        width: int,
        fraction: int,
        to_float: Callable[[int], float],
        from_float: Callable[[float], int],
        codes: str,
    ) -> None:
        exponent = width - 1 - fraction
        self.width = width
        self.fraction = fraction  # stored significand bits: 23 or 52
        self.sign = 1 << (width - 1)
        self.magnitude = self.sign - 1  # everything but the sign bit
        self.inf = ((1 << exponent) - 1) << fraction  # also the exponent mask
        self.quiet = 1 << (fraction - 1)
        self.canonical_nan = self.inf | self.quiet
        bias = (1 << (exponent - 1)) - 1
        # Magnitudes from here on (2**fraction and up, inf, NaN) are already integral.
        self.integral = (bias + fraction) << fraction
        self.to_float = to_float
        self.from_float = from_float
        # Two operands to two floats in two C calls: unpack_pair(pack_pair(a, b)).
        # ``codes`` are the struct codes of the bits and of the float ("If" or "Qd").
        self.pack_pair = struct.Struct("<" + codes[0] * 2).pack
        self.unpack_pair = struct.Struct("<" + codes[1] * 2).unpack


_BINARY32 = _Format(32, 23, _f32_to_float, _f32_from_float, "If")
_BINARY64 = _Format(64, 52, _f64_to_float, _f64_from_float, "Qd")


def _float_operators(fmt: _Format) -> tuple[dict[str, Unary], dict[str, Binary]]:
    """The operators ``fN.*`` on N-bit IEEE patterns, keyed by the name after the dot."""
    unary = _float_unary(fmt)
    binary = _float_arithmetic(fmt)
    binary.update(_float_comparisons(fmt))
    return unary, binary


def _nan_of_operands(fmt: _Format) -> Binary:
    """The NaN result of a binary operator whose exact result is NaN (see module docstring)."""
    magnitude, inf, quiet, canonical = fmt.magnitude, fmt.inf, fmt.quiet, fmt.canonical_nan

    def nan(a: int, b: int) -> int:
        if a & magnitude > inf:
            return a | quiet
        if b & magnitude > inf:
            return b | quiet
        return canonical

    return nan


def _float_arithmetic(fmt: _Format) -> dict[str, Binary]:
    """add, sub, mul, div, min, max and copysign of one format.

    Every NaN result comes from :func:`_nan_of_operands`: a NaN operand makes the exact
    result NaN, and so do the invalid operations, so checking the result alone suffices.
    """
    floats, bits = fmt.unpack_pair, fmt.pack_pair
    from_float, nan = fmt.from_float, _nan_of_operands(fmt)
    sign, magnitude, inf = fmt.sign, fmt.magnitude, fmt.inf

    def add(a: int, b: int) -> int:
        x, y = floats(bits(a, b))
        r = x + y
        return nan(a, b) if r != r else from_float(r)

    def sub(a: int, b: int) -> int:
        x, y = floats(bits(a, b))
        r = x - y
        return nan(a, b) if r != r else from_float(r)

    def mul(a: int, b: int) -> int:
        x, y = floats(bits(a, b))
        r = x * y
        return nan(a, b) if r != r else from_float(r)

    def div(a: int, b: int) -> int:
        x, y = floats(bits(a, b))
        if y == 0.0:  # Python raises here; IEEE gives inf, or NaN for 0/0 and NaN/0
            if x == 0.0 or x != x:
                return nan(a, b)
            return ((a ^ b) & sign) | inf
        r = x / y
        return nan(a, b) if r != r else from_float(r)

    return {
        "add": add,
        "sub": sub,
        "mul": mul,
        "div": div,
        **_float_min_max(fmt),
        "copysign": lambda a, b: (a & magnitude) | (b & sign),
    }


def _float_min_max(fmt: _Format) -> dict[str, Binary]:
    """min and max: a NaN operand makes a NaN result, and -0 is below +0."""
    floats, bits, nan = fmt.unpack_pair, fmt.pack_pair, _nan_of_operands(fmt)

    def fmin(a: int, b: int) -> int:
        x, y = floats(bits(a, b))
        if x < y:
            return a
        if y < x:
            return b
        if x == y:
            return a | b  # equal values have equal bits, except -0 and +0: min is -0
        return nan(a, b)

    def fmax(a: int, b: int) -> int:
        x, y = floats(bits(a, b))
        if x > y:
            return a
        if y > x:
            return b
        if x == y:
            return a & b  # as in min: max(-0, +0) is +0
        return nan(a, b)

    return {"min": fmin, "max": fmax}


def _float_comparisons(fmt: _Format) -> dict[str, Binary]:
    """eq, ne, lt, gt, le, ge: IEEE comparisons (NaN is unordered, -0 equals +0)."""
    floats, bits = fmt.unpack_pair, fmt.pack_pair

    def eq(a: int, b: int) -> int:
        x, y = floats(bits(a, b))
        return 1 if x == y else 0

    def ne(a: int, b: int) -> int:
        x, y = floats(bits(a, b))
        return 1 if x != y else 0

    def lt(a: int, b: int) -> int:
        x, y = floats(bits(a, b))
        return 1 if x < y else 0

    def gt(a: int, b: int) -> int:
        x, y = floats(bits(a, b))
        return 1 if x > y else 0

    def le(a: int, b: int) -> int:
        x, y = floats(bits(a, b))
        return 1 if x <= y else 0

    def ge(a: int, b: int) -> int:
        x, y = floats(bits(a, b))
        return 1 if x >= y else 0

    return {"eq": eq, "ne": ne, "lt": lt, "gt": gt, "le": le, "ge": ge}


def _float_unary(fmt: _Format) -> dict[str, Unary]:
    """abs, neg, ceil, floor, trunc, nearest and sqrt of one format."""
    to_float, from_float = fmt.to_float, fmt.from_float
    sign, magnitude, inf, quiet = fmt.sign, fmt.magnitude, fmt.inf, fmt.quiet
    canonical, integral = fmt.canonical_nan, fmt.integral

    def rounding(to_integer: Callable[[float], int]) -> Unary:
        def op(a: int) -> int:
            m = a & magnitude
            if m >= integral:  # integral already, infinite, or NaN
                return a | quiet if m > inf else a
            r = to_integer(to_float(a))
            # A zero result keeps the operand's sign: ceil(-0.5) is -0.
            return a & sign if r == 0 else from_float(float(r))

        return op

    def sqrt(a: int) -> int:
        if a & magnitude > inf:
            return a | quiet
        if a & sign and a != sign:  # negative, not -0 (whose root is -0)
            return canonical
        return from_float(math.sqrt(to_float(a)))

    return {
        "abs": lambda a: a & magnitude,
        "neg": lambda a: a ^ sign,
        "ceil": rounding(math.ceil),
        "floor": rounding(math.floor),
        "trunc": rounding(math.trunc),
        "nearest": rounding(round),  # a float's round() is exact, ties to even
        "sqrt": sqrt,
    }


# --- conversions ---------------------------------------------------------------------------


def _truncation(fmt: _Format, low: int, high: int, saturating: bool, mask: int) -> Unary:
    """``trunc`` (or ``trunc_sat``) from a float format to the integer range ``[low, high]``.

    The float is truncated toward zero exactly, then checked against the range: so
    ``i32.trunc_f32_s(-2147483648.0)`` is fine while ``-2147483904.0`` (the next f32 down)
    overflows. ``trunc`` traps on NaN and out of range; ``trunc_sat`` gives 0 for NaN and
    clamps to the range.
    """
    to_float, magnitude, inf, sign = fmt.to_float, fmt.magnitude, fmt.inf, fmt.sign

    def out_of_range(a: int) -> int:
        if not saturating:
            raise Trap(INTEGER_OVERFLOW)
        return (low if a & sign else high) & mask

    def op(a: int) -> int:
        m = a & magnitude
        if m > inf:
            if saturating:
                return 0
            raise Trap(INVALID_CONVERSION)
        if m == inf:
            return out_of_range(a)
        t = math.trunc(to_float(a))
        if t < low or t > high:
            return out_of_range(a)
        return t & mask

    return op


def _round_integer(n: int, precision: int) -> int:
    """``n`` rounded to the nearest integer with at most ``precision`` significant bits,
    ties to even — the value a float with a ``precision``-bit significand holds for ``n``."""
    m = -n if n < 0 else n
    excess = m.bit_length() - precision
    if excess <= 0:
        return n
    q = m >> excess
    rest = m & ((1 << excess) - 1)
    half = 1 << (excess - 1)
    if rest > half or (rest == half and q & 1):
        q += 1
    r = q << excess
    return -r if n < 0 else r


def _conversion(fmt: _Format, signed_width: int) -> Unary:
    """``convert`` of an integer pattern to a float format; ``signed_width`` is the operand's
    width when it is read as signed, 0 when unsigned. Rounding is done on the integer, so
    the final conversion to a float is exact."""
    precision, from_float = fmt.fraction + 1, fmt.from_float
    sign = 1 << (signed_width - 1) if signed_width else 0

    def op(a: int) -> int:
        return from_float(float(_round_integer((a ^ sign) - sign, precision)))

    return op


def _demote(a: int) -> int:
    """f32.demote_f64: round to nearest f32; a NaN keeps its sign and top fraction bits."""
    if a & _BINARY64.magnitude > F64_INF:
        return (a >> 32 & F32_SIGN) | F32_CANONICAL_NAN | (a >> 29 & 0x7F_FFFF)
    return _f32_from_float(_f64_to_float(a))


def _promote(a: int) -> int:
    """f64.promote_f32: exact; a NaN keeps its sign and fraction (moved to the top bits)."""
    if a & _BINARY32.magnitude > F32_INF:
        return (a & F32_SIGN) << 32 | F64_CANONICAL_NAN | (a & 0x7F_FFFF) << 29
    return _f64_from_float(_f32_to_float(a))


def _conversion_operators() -> dict[str, Unary]:
    """Every conversion, keyed by its full name: wrap, extend, trunc, trunc_sat, convert,
    demote, promote, reinterpret and the sign-extension operators."""
    ops: dict[str, Unary] = {
        "i32.wrap_i64": lambda a: a & MASK32,
        "i64.extend_i32_s": _sign_extender(32, MASK64),
        "i64.extend_i32_u": lambda a: a,
        "i32.extend8_s": _sign_extender(8, MASK32),
        "i32.extend16_s": _sign_extender(16, MASK32),
        "i64.extend8_s": _sign_extender(8, MASK64),
        "i64.extend16_s": _sign_extender(16, MASK64),
        "i64.extend32_s": _sign_extender(32, MASK64),
        "f32.demote_f64": _demote,
        "f64.promote_f32": _promote,
        # Values are bit patterns already: reinterpreting changes nothing.
        "i32.reinterpret_f32": lambda a: a,
        "i64.reinterpret_f64": lambda a: a,
        "f32.reinterpret_i32": lambda a: a,
        "f64.reinterpret_i64": lambda a: a,
    }
    formats = {"f32": _BINARY32, "f64": _BINARY64}
    for target, width in (("i32", 32), ("i64", 64)):
        mask = (1 << width) - 1
        ranges = {"s": (-(1 << (width - 1)), (1 << (width - 1)) - 1), "u": (0, mask)}
        for source, fmt in formats.items():
            for signedness, (low, high) in ranges.items():
                suffix = f"{source}_{signedness}"
                ops[f"{target}.trunc_{suffix}"] = _truncation(fmt, low, high, False, mask)
                ops[f"{target}.trunc_sat_{suffix}"] = _truncation(fmt, low, high, True, mask)
                signed_width = width if signedness == "s" else 0
                ops[f"{source}.convert_{target}_{signedness}"] = _conversion(fmt, signed_width)
    return ops


# --- the tables ----------------------------------------------------------------------------


def _build_tables() -> tuple[dict[int, Unary], dict[int, Binary]]:
    """Key every operator by its opcode; an unknown name fails loudly at import."""
    unary: dict[int, Unary] = {}
    binary: dict[int, Binary] = {}
    families = {
        "i32": _integer_operators(32),
        "i64": _integer_operators(64),
        "f32": _float_operators(_BINARY32),
        "f64": _float_operators(_BINARY64),
    }
    for prefix, (family_unary, family_binary) in families.items():
        unary.update((BY_NAME[f"{prefix}.{k}"].op, f) for k, f in family_unary.items())
        binary.update((BY_NAME[f"{prefix}.{k}"].op, f) for k, f in family_binary.items())
    unary.update((BY_NAME[k].op, f) for k, f in _conversion_operators().items())
    return unary, binary


UNARY, BINARY = _build_tables()
"""``UNARY[op](a)`` and ``BINARY[op](a, b)``: the numeric operator ``op`` on bit patterns."""
