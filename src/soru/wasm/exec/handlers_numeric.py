"""Handler factories of numeric instructions.

The integer operators that dominate real programs are written out here, once per operator,
with the width (mask, sign bit) as a parameter, so that a tick is a single closure call with
no further dispatch. Every other numeric operator (floats, conversions, trapping divisions…)
binds the exact implementation from :mod:`soru.wasm.numerics`.
"""

from __future__ import annotations

from collections.abc import Callable

from soru.wasm import numerics
from soru.wasm.exec.context import Ctx

Handler = Callable[[], int]
Factory = Callable[[Ctx, int, object], Handler]

M32, M64 = 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF
S32, S64 = 0x80000000, 0x8000000000000000


def _const(ctx: Ctx, pc: int, imm: object) -> Handler:
    push, nxt = ctx.stack.append, pc + 1

    def const() -> int:
        push(imm)
        return nxt

    return const


def _arith(kind: str, mask: int) -> Factory:
    """add/sub/mul/and/or/xor of one width."""

    def factory(ctx: Ctx, pc: int, imm: object) -> Handler:
        stack, nxt = ctx.stack, pc + 1
        pop = stack.pop
        if kind == "add":

            def h() -> int:
                b = pop()
                stack[-1] = (stack[-1] + b) & mask
                return nxt
        elif kind == "sub":

            def h() -> int:
                b = pop()
                stack[-1] = (stack[-1] - b) & mask
                return nxt
        elif kind == "mul":

            def h() -> int:
                b = pop()
                stack[-1] = (stack[-1] * b) & mask
                return nxt
        elif kind == "and":

            def h() -> int:
                b = pop()
                stack[-1] &= b
                return nxt
        elif kind == "or":

            def h() -> int:
                b = pop()
                stack[-1] |= b
                return nxt
        else:  # xor

            def h() -> int:
                b = pop()
                stack[-1] ^= b
                return nxt

        return h

    return factory


def _shift(kind: str, bits: int) -> Factory:
    """shl/shr_u/shr_s of one width; the count is taken modulo the width."""
    mask, sign, cmask = (1 << bits) - 1, 1 << (bits - 1), bits - 1

    def factory(ctx: Ctx, pc: int, imm: object) -> Handler:
        stack, nxt = ctx.stack, pc + 1
        pop = stack.pop
        if kind == "shl":

            def h() -> int:
                b = pop() & cmask
                stack[-1] = (stack[-1] << b) & mask
                return nxt
        elif kind == "shr_u":

            def h() -> int:
                b = pop() & cmask
                stack[-1] >>= b
                return nxt
        else:

            def h() -> int:
                b = pop() & cmask
                stack[-1] = (((stack[-1] ^ sign) - sign) >> b) & mask
                return nxt

        return h

    return factory


def _compare(kind: str, sign: int) -> Factory:
    """eq/ne and the ordered comparisons of one width; signed ones flip the sign bit."""

    def factory(ctx: Ctx, pc: int, imm: object) -> Handler:
        stack, nxt = ctx.stack, pc + 1
        pop = stack.pop
        flip = sign if kind.endswith("_s") else 0
        rel = kind.split("_")[0]
        if rel == "eq":

            def h() -> int:
                b = pop()
                stack[-1] = 1 if stack[-1] == b else 0
                return nxt
        elif rel == "ne":

            def h() -> int:
                b = pop()
                stack[-1] = 1 if stack[-1] != b else 0
                return nxt
        elif rel == "lt":

            def h() -> int:
                b = pop() ^ flip
                stack[-1] = 1 if (stack[-1] ^ flip) < b else 0
                return nxt
        elif rel == "gt":

            def h() -> int:
                b = pop() ^ flip
                stack[-1] = 1 if (stack[-1] ^ flip) > b else 0
                return nxt
        elif rel == "le":

            def h() -> int:
                b = pop() ^ flip
                stack[-1] = 1 if (stack[-1] ^ flip) <= b else 0
                return nxt
        else:

            def h() -> int:
                b = pop() ^ flip
                stack[-1] = 1 if (stack[-1] ^ flip) >= b else 0
                return nxt

        return h

    return factory


def _eqz(ctx: Ctx, pc: int, imm: object) -> Handler:
    stack, nxt = ctx.stack, pc + 1

    def eqz() -> int:
        stack[-1] = 1 if stack[-1] == 0 else 0
        return nxt

    return eqz


def _unary(fn: Callable[[int], int]) -> Factory:
    def factory(ctx: Ctx, pc: int, imm: object) -> Handler:
        stack, nxt = ctx.stack, pc + 1

        def unary() -> int:
            stack[-1] = fn(stack[-1])
            return nxt

        return unary

    return factory


def _binary(fn: Callable[[int, int], int]) -> Factory:
    def factory(ctx: Ctx, pc: int, imm: object) -> Handler:
        stack, nxt = ctx.stack, pc + 1
        pop = stack.pop

        def binary() -> int:
            b = pop()
            stack[-1] = fn(stack[-1], b)
            return nxt

        return binary

    return factory


def _wrap(ctx: Ctx, pc: int, imm: object) -> Handler:
    stack, nxt = ctx.stack, pc + 1

    def wrap() -> int:
        stack[-1] &= M32
        return nxt

    return wrap


def numeric_factories() -> dict[int, Factory]:
    """Factories of every numeric opcode: constants, the inlined integer operators, and the
    rest bound to :mod:`soru.wasm.numerics`."""
    table: dict[int, Factory] = {}
    for op, unary in numerics.UNARY.items():
        table[op] = _unary(unary)
    for op, binary in numerics.BINARY.items():
        table[op] = _binary(binary)
    for op in (0x41, 0x42, 0x43, 0x44):
        table[op] = _const
    table[0x45] = table[0x50] = _eqz
    table[0xA7] = _wrap
    rels = ["eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"]
    for i, rel in enumerate(rels):
        table[0x46 + i] = _compare(rel, S32)
        table[0x51 + i] = _compare(rel, S64)
    for base, mask, bits in ((0x6A, M32, 32), (0x7C, M64, 64)):
        for off, kind in ((0, "add"), (1, "sub"), (2, "mul"), (7, "and"), (8, "or"), (9, "xor")):
            table[base + off] = _arith(kind, mask)
        for off, kind in ((10, "shl"), (11, "shr_s"), (12, "shr_u")):
            table[base + off] = _shift(kind, bits)
    return table
