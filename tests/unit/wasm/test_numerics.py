"""Tests of ``soru.wasm.numerics``: the operator tables cover the opcode table, hand-picked edge
cases give the specification's results, and every operator agrees with wasmtime (a real
engine) on edge values and on random inputs — exactly, except where the specification allows
several NaNs, where both must fall in the allowed set."""

from __future__ import annotations

import itertools
import struct
from fractions import Fraction

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soru.wasm.errors import Trap
from soru.wasm.numerics import (
    BINARY,
    DIVIDE_BY_ZERO,
    F32_CANONICAL_NAN,
    F32_INF,
    F64_CANONICAL_NAN,
    F64_INF,
    INTEGER_OVERFLOW,
    INVALID_CONVERSION,
    MASK32,
    MASK64,
    UNARY,
)
from soru.wasm.opcodes import BY_NAME, OPS, OpInfo
from soru.wasm.syntax import ValType

I32, I64, F32, F64 = ValType.I32, ValType.I64, ValType.F32, ValType.F64
WIDTH = {I32: 32, I64: 64, F32: 32, F64: 64}
F32_NEG_INF = F32_INF | 0x8000_0000
F64_NEG_INF = F64_INF | 0x8000_0000_0000_0000


def f32(x: float) -> int:
    """The f32 bits of ``x`` (which must be exactly representable, or be rounded)."""
    return struct.unpack("<I", struct.pack("<f", x))[0]


def f64(x: float) -> int:
    """The f64 bits of ``x``."""
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def neg32(x: int) -> int:
    return -x & MASK32


def neg64(x: int) -> int:
    return -x & MASK64


def is_numeric(info: OpInfo) -> bool:
    """The operators numerics.py must provide: typed i32/i64/f32/f64 ops but constants,
    loads and stores."""
    prefix, _, rest = info.name.partition(".")
    if info.sig is None or prefix not in ("i32", "i64", "f32", "f64"):
        return False
    return rest != "const" and not rest.startswith(("load", "store"))


NUMERIC = {op: info for op, info in OPS.items() if is_numeric(info)}


def run(name: str, *args: int) -> int:
    op = BY_NAME[name].op
    return UNARY[op](*args) if len(args) == 1 else BINARY[op](*args)


# --- coverage ------------------------------------------------------------------------------


def test_tables_cover_exactly_the_numeric_operators() -> None:
    assert not set(UNARY) & set(BINARY)
    assert set(UNARY) | set(BINARY) == set(NUMERIC)
    for op in UNARY:
        assert len(NUMERIC[op].sig[0]) == 1, NUMERIC[op].name
    for op in BINARY:
        assert len(NUMERIC[op].sig[0]) == 2, NUMERIC[op].name
    assert len(NUMERIC) > 120  # the table itself has not lost a block


# --- hand-picked edge cases ----------------------------------------------------------------

OVERFLOW = Trap(INTEGER_OVERFLOW)
DIV0 = Trap(DIVIDE_BY_ZERO)
INVALID = Trap(INVALID_CONVERSION)
NAN32, NAN64 = F32_CANONICAL_NAN, F64_CANONICAL_NAN

INTEGER_CASES = [
    ("i32.add", (MASK32, 1), 0),
    ("i32.sub", (0, 1), MASK32),
    ("i32.mul", (0x7FFF_FFFF, 0x7FFF_FFFF), 1),
    ("i64.mul", (1 << 32, 1 << 32), 0),
    ("i32.div_s", (0x8000_0000, MASK32), OVERFLOW),
    ("i64.div_s", (1 << 63, MASK64), OVERFLOW),
    ("i32.div_s", (1, 0), DIV0),
    ("i32.div_u", (1, 0), DIV0),
    ("i64.rem_s", (1, 0), DIV0),
    ("i64.rem_u", (1, 0), DIV0),
    ("i32.div_s", (neg32(7), 2), neg32(3)),
    ("i32.div_s", (7, neg32(2)), neg32(3)),
    ("i32.div_s", (0x8000_0000, 2), 0xC000_0000),
    ("i32.div_u", (neg32(7), 2), 0x7FFF_FFFC),
    ("i32.rem_s", (neg32(7), 2), neg32(1)),
    ("i32.rem_s", (7, neg32(2)), 1),
    ("i32.rem_s", (0x8000_0000, MASK32), 0),
    ("i64.rem_s", (1 << 63, MASK64), 0),
    ("i64.div_s", (neg64(1), 2), 0),
    ("i32.clz", (0,), 32),
    ("i32.clz", (0x8000_0000,), 0),
    ("i64.clz", (1,), 63),
    ("i32.ctz", (0,), 32),
    ("i64.ctz", (0,), 64),
    ("i64.ctz", (1 << 63,), 63),
    ("i32.popcnt", (MASK32,), 32),
    ("i64.popcnt", (0x5555_5555_5555_5555,), 32),
    ("i32.eqz", (0,), 1),
    ("i64.eqz", (1 << 63,), 0),
    ("i32.shl", (1, 33), 2),
    ("i64.shl", (1, 64), 1),
    ("i64.shl", (3, 63), 1 << 63),
    ("i32.shr_s", (0x8000_0000, 31), MASK32),
    ("i32.shr_s", (0x8000_0000, 32), 0x8000_0000),
    ("i32.shr_u", (0x8000_0000, 31), 1),
    ("i64.shr_s", (1 << 63, 0xFFFF_FFFF_FFFF_FF3F), MASK64),
    ("i32.rotl", (0x8000_0001, 1), 3),
    ("i32.rotr", (0x8000_0001, 1), 0xC000_0000),
    ("i32.rotl", (0x1234_5678, 32), 0x1234_5678),
    ("i64.rotl", (1 << 63, 1), 1),
    ("i64.rotr", (1, 65), 1 << 63),
    ("i32.lt_s", (0x8000_0000, 0), 1),
    ("i32.lt_u", (0x8000_0000, 0), 0),
    ("i32.gt_s", (0, MASK32), 1),
    ("i64.le_s", (MASK64, 0), 1),
    ("i64.ge_u", (MASK64, 0), 1),
    ("i32.extend8_s", (0x80,), 0xFFFF_FF80),
    ("i32.extend8_s", (0x17F,), 0x7F),
    ("i32.extend16_s", (0x8000,), 0xFFFF_8000),
    ("i64.extend8_s", (0xFF,), MASK64),
    ("i64.extend32_s", (0x1_7FFF_FFFF,), 0x7FFF_FFFF),
    ("i64.extend_i32_s", (0x8000_0000,), 0xFFFF_FFFF_8000_0000),
    ("i64.extend_i32_u", (0x8000_0000,), 0x8000_0000),
    ("i32.wrap_i64", (0x1_0000_0005,), 5),
]

FLOAT_CASES = [
    ("f32.add", (f32(1.0), f32(2.0)), f32(3.0)),
    ("f32.add", (0x7F7F_FFFF, 0x7300_0000), F32_INF),  # FLT_MAX + ulp/2: tie to even, inf
    ("f32.add", (0x7F7F_FFFF, 0x72FF_FFFF), 0x7F7F_FFFF),
    ("f32.sub", (0xFF7F_FFFF, 0x7300_0000), F32_NEG_INF),
    ("f32.add", (f32(1.0), 0x3380_0000), f32(1.0)),  # 1 + 2**-24: tie to even
    ("f32.add", (f32(1.0), 0x3380_0001), 0x3F80_0001),
    ("f32.add", (f32(0.0), f32(-0.0)), f32(0.0)),
    ("f32.add", (f32(-0.0), f32(-0.0)), f32(-0.0)),
    ("f64.sub", (f64(1.0), f64(1.0)), 0),
    ("f32.add", (F32_INF, F32_NEG_INF), NAN32),
    ("f32.mul", (f32(0.0), F32_INF), NAN32),
    ("f32.mul", (f32(-0.0), f32(1.0)), f32(-0.0)),
    ("f32.mul", (1, f32(0.5)), 0),  # 2**-150: tie to even, +0
    ("f32.mul", (3, f32(0.5)), 2),
    ("f32.mul", (1, f32(-0.5)), f32(-0.0)),
    ("f32.div", (f32(1.0), f32(3.0)), 0x3EAA_AAAB),
    ("f32.div", (f32(1.0), f32(-0.0)), F32_NEG_INF),
    ("f32.div", (f32(-1.0), f32(-0.0)), F32_INF),
    ("f32.div", (f32(0.0), f32(0.0)), NAN32),
    ("f32.div", (F32_INF, F32_INF), NAN32),
    ("f64.div", (f64(1.0), 0), F64_INF),
    ("f64.div", (0, f64(-0.0)), NAN64),
    ("f64.div", (f64(1e308), f64(1e-308)), F64_INF),
    # NaN operands: the first one, quietened; sign and payload kept.
    ("f32.add", (0x7FA0_0000, f32(1.0)), 0x7FE0_0000),
    ("f32.add", (f32(1.0), 0xFFA0_0001), 0xFFE0_0001),
    ("f32.add", (0x7FC0_0001, 0xFFA0_0000), 0x7FC0_0001),
    ("f64.mul", (0x7FF0_0000_0000_0001, 0), 0x7FF8_0000_0000_0001),
    ("f64.div", (0xFFF8_0000_0000_0000, 0), 0xFFF8_0000_0000_0000),
    # Bit operations never touch a NaN's payload.
    ("f32.neg", (0x7FA0_0000,), 0xFFA0_0000),
    ("f32.abs", (0xFFA0_0000,), 0x7FA0_0000),
    ("f32.abs", (f32(-0.0),), 0),
    ("f32.copysign", (0x7FA0_0000, 0x8000_0000), 0xFFA0_0000),
    ("f64.copysign", (f64(1.0), F64_CANONICAL_NAN | 1 << 63), f64(-1.0)),
    ("f64.neg", (0,), f64(-0.0)),
    # min and max: -0 < +0, NaN wins.
    ("f32.min", (f32(0.0), f32(-0.0)), f32(-0.0)),
    ("f32.min", (f32(-0.0), f32(0.0)), f32(-0.0)),
    ("f32.max", (f32(-0.0), f32(0.0)), 0),
    ("f64.max", (0, f64(-0.0)), 0),
    ("f64.min", (0, f64(-0.0)), f64(-0.0)),
    ("f32.min", (f32(1.0), 0x7FA0_0000), 0x7FE0_0000),
    ("f32.min", (0xFFC0_0000, f32(1.0)), 0xFFC0_0000),
    ("f32.max", (F32_NEG_INF, f32(-3.0)), f32(-3.0)),
    ("f64.min", (F64_NEG_INF, F64_INF), F64_NEG_INF),
    # Comparisons: NaN is unordered, -0 == +0.
    ("f32.eq", (f32(0.0), f32(-0.0)), 1),
    ("f32.eq", (NAN32, NAN32), 0),
    ("f32.ne", (NAN32, NAN32), 1),
    ("f32.lt", (f32(-0.0), f32(0.0)), 0),
    ("f32.le", (f32(-0.0), f32(0.0)), 1),
    ("f32.gt", (NAN32, f32(1.0)), 0),
    ("f32.ge", (F32_INF, 0x7F7F_FFFF), 1),
    ("f32.lt", (1, 2), 1),
    ("f64.lt", (F64_NEG_INF, f64(-1e308)), 1),
    ("f64.ge", (0x7FF0_0000_0000_0001, 0x7FF0_0000_0000_0001), 0),
    # Rounding to integral values; a zero result keeps the operand's sign.
    ("f32.nearest", (f32(0.5),), 0),
    ("f32.nearest", (f32(1.5),), f32(2.0)),
    ("f32.nearest", (f32(2.5),), f32(2.0)),
    ("f32.nearest", (f32(-0.5),), f32(-0.0)),
    ("f32.nearest", (f32(-3.5),), f32(-4.0)),
    ("f32.nearest", (f32(8388605.5),), f32(8388606.0)),
    ("f32.nearest", (f32(8388609.0),), f32(8388609.0)),
    ("f64.nearest", (f64(4503599627370495.5),), f64(4503599627370496.0)),
    ("f64.nearest", (f64(0.49999999999999994),), 0),
    ("f64.nearest", (f64(-0.49999999999999994),), f64(-0.0)),
    ("f32.ceil", (f32(-0.5),), f32(-0.0)),
    ("f32.ceil", (1,), f32(1.0)),
    ("f32.floor", (0x8000_0001,), f32(-1.0)),
    ("f32.floor", (f32(-0.0),), f32(-0.0)),
    ("f32.trunc", (f32(-0.9),), f32(-0.0)),
    ("f64.trunc", (f64(-1.5),), f64(-1.0)),
    ("f64.floor", (f64(-4503599627370495.5),), f64(-4503599627370496.0)),
    ("f32.ceil", (0x7FA0_0000,), 0x7FE0_0000),
    ("f32.floor", (F32_NEG_INF,), F32_NEG_INF),
    ("f32.sqrt", (f32(4.0),), f32(2.0)),
    ("f32.sqrt", (f32(2.0),), 0x3FB5_04F3),
    ("f64.sqrt", (f64(2.0),), 0x3FF6_A09E_667F_3BCD),
    ("f32.sqrt", (f32(-0.0),), f32(-0.0)),
    ("f32.sqrt", (f32(-1.0),), NAN32),
    ("f64.sqrt", (F64_NEG_INF,), NAN64),
    ("f64.sqrt", (F64_INF,), F64_INF),
    ("f32.sqrt", (0xFFA0_0000,), 0xFFE0_0000),
]

CONVERSION_CASES = [
    ("i32.trunc_f32_s", (0xCF00_0000,), 0x8000_0000),  # -2147483648.0
    ("i32.trunc_f32_s", (0xCF00_0001,), OVERFLOW),  # -2147483904.0
    ("i32.trunc_f32_s", (0x4F00_0000,), OVERFLOW),
    ("i32.trunc_f32_s", (0x4EFF_FFFF,), 0x7FFF_FF80),
    ("i32.trunc_f32_s", (NAN32,), INVALID),
    ("i32.trunc_f32_s", (F32_INF,), OVERFLOW),
    ("i32.trunc_f32_u", (f32(-0.9),), 0),
    ("i32.trunc_f32_u", (f32(-1.0),), OVERFLOW),
    ("i32.trunc_f32_u", (0x4F7F_FFFF,), 0xFFFF_FF00),
    ("i32.trunc_f32_u", (0x4F80_0000,), OVERFLOW),
    ("i32.trunc_f64_s", (f64(-2147483648.9),), 0x8000_0000),
    ("i32.trunc_f64_s", (f64(-2147483649.0),), OVERFLOW),
    ("i32.trunc_f64_s", (f64(2147483647.9),), 0x7FFF_FFFF),
    ("i32.trunc_f64_s", (f64(2147483648.0),), OVERFLOW),
    ("i32.trunc_f64_u", (f64(4294967295.9),), MASK32),
    ("i32.trunc_f64_u", (f64(4294967296.0),), OVERFLOW),
    ("i64.trunc_f64_s", (0xC3E0_0000_0000_0000,), 1 << 63),
    ("i64.trunc_f64_s", (0xC3E0_0000_0000_0001,), OVERFLOW),
    ("i64.trunc_f64_s", (0x43E0_0000_0000_0000,), OVERFLOW),
    ("i64.trunc_f64_s", (0x43DF_FFFF_FFFF_FFFF,), 0x7FFF_FFFF_FFFF_FC00),
    ("i64.trunc_f64_u", (0x43EF_FFFF_FFFF_FFFF,), 0xFFFF_FFFF_FFFF_F800),
    ("i64.trunc_f64_u", (0x43F0_0000_0000_0000,), OVERFLOW),
    ("i64.trunc_f32_s", (0xDF00_0000,), 1 << 63),
    ("i64.trunc_f32_s", (0xDF00_0001,), OVERFLOW),
    ("i64.trunc_f64_s", (0x7FF0_0000_0000_0001,), INVALID),
    ("i64.trunc_f32_u", (0xFFC0_0000,), INVALID),
    ("i32.trunc_sat_f32_s", (NAN32,), 0),
    ("i32.trunc_sat_f32_s", (F32_INF,), 0x7FFF_FFFF),
    ("i32.trunc_sat_f32_s", (F32_NEG_INF,), 0x8000_0000),
    ("i32.trunc_sat_f32_s", (0xCF00_0001,), 0x8000_0000),
    ("i32.trunc_sat_f32_u", (f32(-1.0),), 0),
    ("i32.trunc_sat_f32_u", (F32_INF,), MASK32),
    ("i64.trunc_sat_f64_s", (f64(1e300),), 0x7FFF_FFFF_FFFF_FFFF),
    ("i64.trunc_sat_f64_s", (f64(-1e300),), 1 << 63),
    ("i64.trunc_sat_f64_u", (f64(-1e300),), 0),
    ("i64.trunc_sat_f64_u", (0xFFF8_0000_0000_0000,), 0),
    ("i32.trunc_sat_f64_s", (f64(-2147483648.9),), 0x8000_0000),
    ("i64.trunc_sat_f32_u", (f32(1.5),), 1),
    # int -> float rounds the integer once (via f64, i64 -> f32 would round twice).
    ("f32.convert_i64_s", (0x0020_0000_2000_0001,), 0x5A00_0001),
    ("f32.convert_i64_s", (neg64(0x0020_0000_2000_0001),), 0xDA00_0001),
    ("f32.convert_i64_u", (0x8000_0080_0000_0001,), 0x5F00_0001),
    ("f32.convert_i64_u", (MASK64,), 0x5F80_0000),
    ("f32.convert_i64_s", (1 << 63,), 0xDF00_0000),
    ("f32.convert_i32_s", (0x0100_0001,), 0x4B80_0000),  # tie to even, down
    ("f32.convert_i32_s", (0x0100_0003,), 0x4B80_0002),  # tie to even, up
    ("f32.convert_i32_s", (0x8000_0000,), 0xCF00_0000),
    ("f32.convert_i32_s", (MASK32,), f32(-1.0)),
    ("f32.convert_i32_u", (MASK32,), 0x4F80_0000),
    ("f64.convert_i64_s", (0x0020_0000_0000_0001,), f64(2.0**53)),
    ("f64.convert_i64_u", (MASK64,), 0x43F0_0000_0000_0000),
    ("f64.convert_i64_u", (0x8000_0000_0000_0401,), 0x43E0_0000_0000_0001),
    ("f64.convert_i64_u", (0x8000_0000_0000_0400,), 0x43E0_0000_0000_0000),
    ("f64.convert_i32_s", (0x8000_0000,), f64(-2147483648.0)),
    ("f64.convert_i32_u", (MASK32,), f64(4294967295.0)),
    # demote rounds to nearest even, overflowing to inf from FLT_MAX + ulp/2 on.
    ("f32.demote_f64", (0x47EF_FFFF_F000_0000,), F32_INF),
    ("f32.demote_f64", (0x47EF_FFFF_EFFF_FFFF,), 0x7F7F_FFFF),
    ("f32.demote_f64", (0xC7EF_FFFF_F000_0000,), F32_NEG_INF),
    ("f32.demote_f64", (0x7FEF_FFFF_FFFF_FFFF,), F32_INF),
    ("f32.demote_f64", (0x3690_0000_0000_0000,), 0),  # 2**-150
    ("f32.demote_f64", (0x3690_0000_0000_0001,), 1),
    ("f32.demote_f64", (0x36A8_0000_0000_0000,), 2),  # 3 * 2**-150
    ("f32.demote_f64", (1,), 0),
    ("f32.demote_f64", (f64(-0.0),), f32(-0.0)),
    ("f32.demote_f64", (0x3FF0_0000_1000_0000,), f32(1.0)),
    ("f32.demote_f64", (0x3FF0_0000_3000_0000,), 0x3F80_0002),
    ("f32.demote_f64", (NAN64,), NAN32),
    ("f32.demote_f64", (NAN64 | 1 << 63,), NAN32 | 1 << 31),
    ("f32.demote_f64", (0x7FF4_0000_0000_0000,), 0x7FE0_0000),
    ("f64.promote_f32", (0x7F7F_FFFF,), 0x47EF_FFFF_E000_0000),
    ("f64.promote_f32", (1,), 0x36A0_0000_0000_0000),
    ("f64.promote_f32", (NAN32,), NAN64),
    ("f64.promote_f32", (0xFFA0_0001,), 0xFFFC_0000_2000_0000),
    ("i32.reinterpret_f32", (0x7FA0_0000,), 0x7FA0_0000),
    ("f64.reinterpret_i64", (0xFFF0_0000_0000_0001,), 0xFFF0_0000_0000_0001),
]


def case_id(case: tuple) -> str:
    name, args, _ = case
    return f"{name}({','.join(hex(a) for a in args)})"


@pytest.mark.parametrize(
    "name, args, expected",
    INTEGER_CASES + FLOAT_CASES + CONVERSION_CASES,
    ids=[case_id(c) for c in INTEGER_CASES + FLOAT_CASES + CONVERSION_CASES],
)
def test_edge_case(name: str, args: tuple[int, ...], expected: int | Trap) -> None:
    if isinstance(expected, Trap):
        with pytest.raises(Trap) as raised:
            run(name, *args)
        assert raised.value.reason == expected.reason
    else:
        assert hex(run(name, *args)) == hex(expected)


# --- exact rounding, against rational arithmetic -------------------------------------------


def exact_f32(q: Fraction) -> int:
    """The f32 bits nearest to the rational ``q``, ties to even — an independent reference."""
    sign = 0x8000_0000 if q < 0 else 0
    q = abs(q)
    if q == 0:
        return sign
    exponent = q.numerator.bit_length() - q.denominator.bit_length()
    if Fraction(2) ** exponent > q:
        exponent -= 1
    exponent = max(exponent, -126)  # below: subnormals, all with the quantum 2**-149
    significand = round(q / Fraction(2) ** (exponent - 23))  # Fraction rounds ties to even
    if significand == 1 << 24:
        significand, exponent = 1 << 23, exponent + 1
    if exponent > 127:
        return sign | F32_INF
    if significand < 1 << 23:
        return sign | significand
    return sign | (exponent + 127) << 23 | (significand - (1 << 23))


def f32_value(bits: int) -> Fraction:
    return Fraction(struct.unpack("<f", struct.pack("<I", bits))[0])


FINITE_F64 = st.floats(allow_nan=False, allow_infinity=False)
FINITE_F32 = st.floats(width=32, allow_nan=False, allow_infinity=False).map(f32)


# Around FLT_MAX + ulp/2, 2**-150 and 3 * 2**-150, and (shifted) around 1 + 2**-24.
DEMOTE_BOUNDARIES = [0x47EF_FFFF_F000_0000, 0x3690_0000_0000_0000, 0x36A8_0000_0000_0000]
NEAR_BOUNDARIES = st.builds(
    lambda b, d, e: struct.unpack("<d", struct.pack("<Q", b + d + (e << 52)))[0],
    st.sampled_from(DEMOTE_BOUNDARIES + [0x3FF0_0000_1000_0000]),
    st.integers(-2, 2),
    st.integers(-20, 20),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(FINITE_F64, NEAR_BOUNDARIES))
def test_demote_rounds_exactly(x: float) -> None:
    sign = f64(x) >> 32 & 0x8000_0000  # Fraction has no -0; demote keeps the sign always
    assert run("f32.demote_f64", f64(x)) == exact_f32(Fraction(x)) | sign


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["add", "sub", "mul", "div"]), FINITE_F32, FINITE_F32)
def test_f32_arithmetic_rounds_exactly(operator: str, a: int, b: int) -> None:
    x, y = f32_value(a), f32_value(b)
    if operator == "div" and y == 0:
        return
    exact = {"add": x + y, "sub": x - y, "mul": x * y}[operator] if operator != "div" else x / y
    result = run(f"f32.{operator}", a, b)
    if exact == 0:  # the sign of an exact zero follows IEEE rules, checked elsewhere
        assert result & 0x7FFF_FFFF == 0
    else:
        assert result == exact_f32(exact)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.integers(0, MASK64),
        st.builds(lambda m, s: m << s, st.integers(0, 1 << 30), st.integers(0, 34)),
    )
)
def test_integer_to_f32_rounds_exactly(n: int) -> None:
    n &= MASK64
    assert run("f32.convert_i64_u", n) == exact_f32(Fraction(n))
    assert run("f32.convert_i64_s", n) == exact_f32(Fraction(n - (n >> 63 << 64)))
    assert run("f32.convert_i32_u", n & MASK32) == exact_f32(Fraction(n & MASK32))


# --- differential testing against wasmtime -------------------------------------------------

CARRIER = {I32: "i32", I64: "i64", F32: "i32", F64: "i64"}
TO_FLOAT = {F32: "f32.reinterpret_i32", F64: "f64.reinterpret_i64"}
FROM_FLOAT = {F32: "i32.reinterpret_f32", F64: "i64.reinterpret_f64"}


def wasm_function(info: OpInfo) -> str:
    """A function applying ``info``'s operator to integer carriers of its operands' bits."""
    params, results = info.sig
    header = "".join(f" (param {CARRIER[t]})" for t in params)
    body = []
    for i, t in enumerate(params):
        body.append(f"local.get {i}")
        if t in TO_FLOAT:
            body.append(TO_FLOAT[t])
    body.append(info.name)
    if results[0] in FROM_FLOAT:
        body.append(FROM_FLOAT[results[0]])
    return f'(func (export "{info.name}"){header} (result {CARRIER[results[0]]}) {" ".join(body)})'


class Wasmtime:
    """One wasmtime instance exporting every numeric operator."""

    def __init__(self) -> None:
        text = "(module " + "\n".join(wasm_function(i) for i in NUMERIC.values()) + ")"
        self.store = wasmtime.Store()
        module = wasmtime.Module(self.store.engine, wasmtime.wat2wasm(text))
        exports = wasmtime.Instance(self.store, module, []).exports(self.store)
        self.functions = {info.name: exports[info.name] for info in NUMERIC.values()}

    def call(self, info: OpInfo, args: tuple[int, ...]) -> int | str:
        """The result bits, or the trap message."""
        widths = [WIDTH[t] for t in info.sig[0]]
        signed = [a - (1 << w) if a >> (w - 1) else a for a, w in zip(args, widths, strict=True)]
        try:
            result = self.functions[info.name](self.store, *signed)
        except wasmtime.Trap as trap:
            return str(trap)
        return result & ((1 << WIDTH[info.sig[1][0]]) - 1)


@pytest.fixture(scope="module")
def engine() -> Wasmtime:
    return Wasmtime()


FLOAT_FORMAT = {F32: (0x7FFF_FFFF, F32_INF, 1 << 22), F64: ((1 << 63) - 1, F64_INF, 1 << 51)}
BIT_OPERATORS = ("abs", "neg", "copysign", "reinterpret_i32", "reinterpret_i64")


def nan_kind(bits: int, t: ValType) -> str | None:
    """``"canonical"``, ``"arithmetic"`` (quiet, other payload), ``"signalling"`` or None."""
    magnitude, inf, quiet = FLOAT_FORMAT[t]
    m = bits & magnitude
    if m <= inf:
        return None
    if m == inf | quiet:
        return "canonical"
    return "arithmetic" if m & quiet else "signalling"


def check_against_wasmtime(engine: Wasmtime, info: OpInfo, args: tuple[int, ...]) -> None:
    """Our result equals wasmtime's, up to the freedom the specification leaves NaNs."""
    theirs = engine.call(info, args)
    try:
        ours = run(info.name, *args)
    except Trap as trap:
        assert isinstance(theirs, str) and trap.reason in theirs, (info.name, args, theirs)
        return
    assert not isinstance(theirs, str), (info.name, args, theirs)
    result_type = info.sig[1][0]
    assert 0 <= ours < 1 << WIDTH[result_type]
    nan_result = result_type in FLOAT_FORMAT and nan_kind(ours, result_type) is not None
    if not nan_result or info.name.partition(".")[2] in BIT_OPERATORS:
        assert hex(ours) == hex(theirs), (info.name, [hex(a) for a in args])
        return
    # nans{z*}: canonical if every NaN operand is canonical, else any arithmetic NaN.
    operand_kinds = [
        nan_kind(a, t) for a, t in zip(args, info.sig[0], strict=True) if t in FLOAT_FORMAT
    ]
    allowed = {"canonical"}
    if any(kind in ("arithmetic", "signalling") for kind in operand_kinds):
        allowed.add("arithmetic")
    for bits in (ours, theirs):
        kind = nan_kind(bits, result_type)
        assert kind in allowed, (info.name, [hex(a) for a in args], hex(bits))


def float_edges(bits: list[int], values: list[float], pack) -> list[int]:
    return sorted(set(bits) | {pack(v) for v in values} | {pack(-v) for v in values})


I32_EDGES = sorted(
    {0, 1, 2, 3, 7, 31, 32, 33, 63, 64, 65, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF}
    | {0x0100_0001, 0x0100_0003, 0x7FFF_FFC0, 0x1234_5678}
    | {0x7FFF_FFFF, 0x8000_0000, 0x8000_0001, 0xFFFF_FFFE, MASK32, neg32(7)}
)
I64_EDGES = sorted(
    set(I32_EDGES)
    | {0x0020_0000_2000_0001, 0x0020_0000_0000_0001, 0x8000_0080_0000_0001, 0x8000_0000_0000_0401}
    | {0x7FFF_FFFF_FFFF_FFFF, 1 << 63, (1 << 63) + 1, MASK64, MASK64 - 1, 1 << 32, 1 << 53}
    | {0xFFFF_FFFF_8000_0000, 0x1_0000_0005, 0x0123_4567_89AB_CDEF, 0xFFFF_FFFF_FFFF_FC00}
)
F32_EDGES = float_edges(
    [1, 2, 3, 0x007F_FFFF, 0x0080_0000, 0x7F7F_FFFF, 0x7300_0000, 0x3380_0001]
    + [0x7FC0_0000, 0xFFC0_0000, 0x7FA0_0000, 0xFFA0_0001, 0x7FC0_0001, 0x7F80_0001]
    + [0xCF00_0000, 0xCF00_0001, 0x4F00_0000, 0x4EFF_FFFF, 0x4F7F_FFFF, 0x4F80_0000]
    + [0xDF00_0000, 0xDF00_0001, 0x5F00_0000, 0x5EFF_FFFF, 0x5F7F_FFFF, 0x5F80_0000],
    [0.0, 1.0, 0.5, 1.5, 2.5, 3.5, 0.9, 3.0, 2.0**23, 8388605.5, float("inf")],
    f32,
)
F64_EDGES = float_edges(
    [1, 0x000F_FFFF_FFFF_FFFF, 0x0010_0000_0000_0000, 0x7FEF_FFFF_FFFF_FFFF]
    + [0x7FF8_0000_0000_0000, 0x7FF0_0000_0000_0001, 0xFFF4_0000_2000_0000, 0x7FF8_0000_0000_0001]
    + [0x47EF_FFFF_E000_0000, 0x47EF_FFFF_F000_0000, 0x47EF_FFFF_EFFF_FFFF, 0x3690_0000_0000_0000]
    + [0x3690_0000_0000_0001, 0x36A8_0000_0000_0000, 0x36A0_0000_0000_0000, 0x3FF0_0000_1000_0000]
    + [0x43E0_0000_0000_0000, 0x43DF_FFFF_FFFF_FFFF, 0xC3E0_0000_0000_0001, 0x43F0_0000_0000_0000]
    + [0x43EF_FFFF_FFFF_FFFF, 0x3FDF_FFFF_FFFF_FFFF],
    [0.0, 1.0, 0.5, 1.5, 2.5, 0.9, 1 / 3, 2147483647.9, 2147483648.0, 2147483648.9]
    + [2147483649.0, 4294967295.9, 4294967296.0, 4503599627370495.5, 1e300, float("inf")],
    f64,
)
EDGES = {I32: I32_EDGES, I64: I64_EDGES, F32: F32_EDGES, F64: F64_EDGES}
OPERATOR_NAMES = sorted(info.name for info in NUMERIC.values())


@pytest.mark.parametrize("name", OPERATOR_NAMES)
def test_agrees_with_wasmtime_on_edge_values(engine: Wasmtime, name: str) -> None:
    info = BY_NAME[name]
    for args in itertools.product(*(EDGES[t] for t in info.sig[0])):
        check_against_wasmtime(engine, info, args)


def bit_patterns(t: ValType) -> st.SearchStrategy[int]:
    """Random operands biased toward edges: edge values and their bit neighbours, any bits,
    shaped integers (rounding ties), and floats that round-trip the format."""
    width = WIDTH[t]
    mask = (1 << width) - 1
    edges = st.sampled_from(EDGES[t])
    choices = [
        edges,
        st.builds(lambda e, d: (e + d) & mask, edges, st.integers(-3, 3)),
        st.integers(0, mask),
        st.builds(
            lambda m, s, sign: ((m << s) | sign) & mask,
            st.integers(0, 1 << 26),
            st.integers(0, width),
            st.sampled_from([0, 1 << (width - 1)]),
        ),
    ]
    if t in FLOAT_FORMAT:
        pack = f32 if t is F32 else f64
        choices.append(st.floats(width=width, allow_nan=False).map(pack))
    return st.one_of(*choices)


@pytest.mark.parametrize("name", OPERATOR_NAMES)
def test_agrees_with_wasmtime_on_random_inputs(engine: Wasmtime, name: str) -> None:
    info = BY_NAME[name]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.tuples(*(bit_patterns(t) for t in info.sig[0])))
    def agrees(args: tuple[int, ...]) -> None:
        check_against_wasmtime(engine, info, args)

    agrees()
