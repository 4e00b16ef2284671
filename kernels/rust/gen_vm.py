"""Generates ``stack_vm_ops.rs``: the interpreter of the stack VM of ``stack_vm.rs``, one
function whose ``match`` has an arm per opcode (a few hundred), so that LLVM emits one long
function with a large ``br_table`` and deeply nested blocks.

    python3 kernels/rust/gen_vm.py        # rewrites kernels/rust/stack_vm_ops.rs

The opcodes: :data:`FIXED` (stack, arithmetic, accumulator, durable key-value store,
counter, outbox, debug, jumps), then :data:`MIX_COUNT` generated ``mix<k>`` opcodes, each a
short random (seeded, so reproducible) sequence of :data:`MIX_KINDS` steps applied to the
top of the stack. :data:`MIXES` holds those sequences; the tests read them to evaluate
programs with their own model of the VM. :func:`assemble` encodes a program.

An opcode below 0x80 is one byte; a larger one is two bytes, ``0x80 | op >> 8`` then
``op & 0xff``.
"""

from __future__ import annotations

import random
from pathlib import Path

FIXED = (
    # name, immediate bytes
    ("halt", 0),
    ("push8", 1),
    ("push32", 4),
    ("push64", 8),
    ("dup", 0),
    ("drop", 0),
    ("swap", 0),
    ("over", 0),
    ("rot", 0),
    ("pick", 1),
    ("depth", 0),
    ("add", 0),
    ("sub", 0),
    ("mul", 0),
    ("divu", 0),
    ("remu", 0),
    ("and", 0),
    ("or", 0),
    ("xor", 0),
    ("shl", 0),
    ("shru", 0),
    ("shrs", 0),
    ("rotl", 0),
    ("rotr", 0),
    ("eq", 0),
    ("ne", 0),
    ("ltu", 0),
    ("gtu", 0),
    ("lts", 0),
    ("gts", 0),
    ("min", 0),
    ("max", 0),
    ("not", 0),
    ("neg", 0),
    ("clz", 0),
    ("ctz", 0),
    ("popcnt", 0),
    ("bswap", 0),
    ("acc_load", 0),
    ("acc_store", 0),
    ("acc_add", 0),
    ("kv_store", 0),
    ("kv_load", 0),
    ("kv_has", 0),
    ("kv_delete", 0),
    ("counter_inc", 0),
    ("output", 0),
    ("output_n", 0),
    ("debug", 0),
    ("jnz", 1),
    ("jmp", 1),
    ("level", 0),
    ("msg_id", 0),
)

MIX_COUNT = 360
SEED = 20240611

MIX_KINDS = {
    # kind: (number of constants, Rust statement: {0}, {1} the constants, x the top of the
    # stack, a the accumulator)
    "add": (1, "x = x.wrapping_add({0});"),
    "sub": (1, "x = x.wrapping_sub({0});"),
    "mul": (1, "x = x.wrapping_mul({0});"),
    "xor": (1, "x ^= {0};"),
    "and": (1, "x &= {0};"),
    "or": (1, "x |= {0};"),
    "rotl": (1, "x = x.rotate_left({0});"),
    "rotr": (1, "x = x.rotate_right({0});"),
    "xorshr": (1, "x ^= x >> {0};"),
    "xorshl": (1, "x ^= x << {0};"),
    "sar": (1, "x = ((x as i64) >> {0}) as u64;"),
    "not": (0, "x = !x;"),
    "bswap": (0, "x = x.swap_bytes();"),
    "divu": (1, "x /= {0};"),
    "remu": (1, "x %= {0};"),
    "min": (1, "x = core::cmp::min(x, {0});"),
    "max": (1, "x = core::cmp::max(x, {0});"),
    "adda": (0, "x = x.wrapping_add(a);"),
    "xora": (0, "x ^= a;"),
    "toacc": (0, "a = a.wrapping_add(x);"),
    "popadd": (0, "x = x.wrapping_add(x.count_ones() as u64);"),
    "clzxor": (0, "x ^= x.leading_zeros() as u64;"),
    "cond": (2, "x = if x & 1 == 1 {{ x.wrapping_add({0}) }} else {{ x ^ {1} }};"),
    "mulhi": (1, "x = ((x as u128 * {0} as u128) >> 64) as u64;"),
}
_SHIFTS = {"rotl", "rotr", "xorshr", "xorshl", "sar"}


def _constant(kind: str, rng: random.Random) -> int:
    if kind in _SHIFTS:
        return rng.randrange(1, 64)
    if kind in ("divu", "remu"):
        return rng.randrange(2, 1 << rng.choice((8, 16, 32, 63)))
    if kind == "mul":
        return rng.getrandbits(64) | 1
    return rng.getrandbits(64)


def _mixes() -> tuple[tuple[tuple[str, tuple[int, ...]], ...], ...]:
    rng = random.Random(SEED)
    kinds = sorted(MIX_KINDS)
    mixes = []
    for _ in range(MIX_COUNT):
        steps = []
        for _ in range(rng.randrange(2, 6)):
            kind = rng.choice(kinds)
            steps.append((kind, tuple(_constant(kind, rng) for _ in range(MIX_KINDS[kind][0]))))
        mixes.append(tuple(steps))
    return tuple(mixes)


MIXES = _mixes()
"""The steps of ``mix<k>``: ``(kind, constants)`` each."""

NAMES = tuple(name for name, _ in FIXED) + tuple(f"mix{k}" for k in range(MIX_COUNT))
OPCODES = {name: op for op, name in enumerate(NAMES)}
IMMEDIATE = {name: size for name, size in FIXED}

# Statuses a program ends with (also in stack_vm.rs).
OK, UNDERFLOW, OVERFLOW, BAD_OPCODE, TRUNCATED, OUT_OF_FUEL, BAD_JUMP = range(7)
STACK = 32
FUEL = 10_000


def encode_op(op: int) -> bytes:
    return bytes([op]) if op < 0x80 else bytes([0x80 | op >> 8, op & 0xFF])


def assemble(*program: str | tuple[str, int]) -> bytes:
    """A program: each item an opcode name, or ``(name, immediate)``."""
    out = bytearray()
    for item in program:
        name, imm = (item, None) if isinstance(item, str) else item
        out += encode_op(OPCODES[name])
        size = IMMEDIATE.get(name, 0)
        if size:
            out += (imm % (1 << 8 * size)).to_bytes(size, "little")
        elif imm is not None:
            raise ValueError(f"{name} takes no immediate")
    return bytes(out)


# --- the Rust source ---------------------------------------------------------------------------

_FIXED_ARMS = {
    "halt": "return OK;",
    "push8": "let v = imm!(1); push!(v);",
    "push32": "let v = imm!(4); push!(v);",
    "push64": "let v = imm!(8); push!(v);",
    "dup": "let a = peek!(0); push!(a);",
    "drop": "let _ = pop!();",
    "swap": "need!(2); st.swap(sp - 1, sp - 2);",
    "over": "let a = peek!(1); push!(a);",
    "rot": "need!(3); let a = st[sp - 3]; st[sp - 3] = st[sp - 2]; st[sp - 2] = st[sp - 1]; "
    "st[sp - 1] = a;",
    "pick": "let n = imm!(1) as usize; let a = peek!(n); push!(a);",
    "depth": "push!(sp as u64);",
    "add": "bin!(|a: u64, b: u64| a.wrapping_add(b));",
    "sub": "bin!(|a: u64, b: u64| a.wrapping_sub(b));",
    "mul": "bin!(|a: u64, b: u64| a.wrapping_mul(b));",
    "divu": "bin!(|a: u64, b: u64| if b == 0 { 0 } else { a / b });",
    "remu": "bin!(|a: u64, b: u64| if b == 0 { 0 } else { a % b });",
    "and": "bin!(|a: u64, b: u64| a & b);",
    "or": "bin!(|a: u64, b: u64| a | b);",
    "xor": "bin!(|a: u64, b: u64| a ^ b);",
    "shl": "bin!(|a: u64, b: u64| a << (b & 63));",
    "shru": "bin!(|a: u64, b: u64| a >> (b & 63));",
    "shrs": "bin!(|a: u64, b: u64| ((a as i64) >> (b & 63)) as u64);",
    "rotl": "bin!(|a: u64, b: u64| a.rotate_left((b & 63) as u32));",
    "rotr": "bin!(|a: u64, b: u64| a.rotate_right((b & 63) as u32));",
    "eq": "bin!(|a: u64, b: u64| (a == b) as u64);",
    "ne": "bin!(|a: u64, b: u64| (a != b) as u64);",
    "ltu": "bin!(|a: u64, b: u64| (a < b) as u64);",
    "gtu": "bin!(|a: u64, b: u64| (a > b) as u64);",
    "lts": "bin!(|a: u64, b: u64| ((a as i64) < (b as i64)) as u64);",
    "gts": "bin!(|a: u64, b: u64| ((a as i64) > (b as i64)) as u64);",
    "min": "bin!(|a: u64, b: u64| core::cmp::min(a, b));",
    "max": "bin!(|a: u64, b: u64| core::cmp::max(a, b));",
    "not": "un!(|a: u64| !a);",
    "neg": "un!(|a: u64| a.wrapping_neg());",
    "clz": "un!(|a: u64| a.leading_zeros() as u64);",
    "ctz": "un!(|a: u64| a.trailing_zeros() as u64);",
    "popcnt": "un!(|a: u64| a.count_ones() as u64);",
    "bswap": "un!(|a: u64| a.swap_bytes());",
    "acc_load": "push!(*acc);",
    "acc_store": "*acc = pop!();",
    "acc_add": "let a = pop!(); *acc = acc.wrapping_add(a);",
    "kv_store": "let k = pop!(); let v = pop!(); write_u64(&kv_path(k), v);",
    "kv_load": "let k = pop!(); let v = read_u64(&kv_path(k)); push!(v);",
    "kv_has": "let k = pop!(); let p = kv_path(k); "
    "let r = unsafe { store_has(p.as_ptr(), p.len()) }; push!(r as u64);",
    "kv_delete": "let k = pop!(); let p = kv_path(k); "
    "unsafe { store_delete(p.as_ptr(), p.len()) };",
    "counter_inc": "let c = read_u64(COUNTER).wrapping_add(1); write_u64(COUNTER, c); push!(c);",
    "output": "let a = pop!(); let b = a.to_le_bytes(); "
    "unsafe { write_output(b.as_ptr(), b.len()) };",
    "output_n": "let n = pop!(); if n > sp as u64 { return UNDERFLOW; } let n = n as usize; "
    "let mut out = [0u8; 8 * STACK]; "
    "for i in 0..n { out[8 * i..8 * i + 8].copy_from_slice(&st[sp - n + i].to_le_bytes()); } "
    "sp -= n; unsafe { write_output(out.as_ptr(), 8 * n) };",
    "debug": "debug_top(if sp == 0 { None } else { Some(st[sp - 1]) });",
    "jnz": "let r = imm!(1) as u8 as i8; let a = pop!(); if a != 0 { jump!(r); }",
    "jmp": "let r = imm!(1) as u8 as i8; jump!(r);",
    "level": "push!(level as u64);",
    "msg_id": "push!(id as u64);",
}

_HEADER = """\
// GENERATED by gen_vm.py -- do not edit; run `python3 kernels/rust/gen_vm.py`.
// {count} opcodes: {fixed} fixed, {mixes} generated (mix0..mix{last}).

/// Runs `prog` on a fresh stack; `acc` is the persistent accumulator. The program's status.
#[inline(never)]
fn exec(prog: &[u8], level: u32, id: u32, acc: &mut u64) -> u32 {{
    let mut st = [0u64; STACK];
    let mut sp: usize = 0;
    let mut pc: usize = 0;
    let mut fuel: u32 = FUEL;
    macro_rules! need {{ ($n:expr) => {{ if sp < $n {{ return UNDERFLOW; }} }}; }}
    macro_rules! pop {{ () => {{{{ need!(1); sp -= 1; st[sp] }}}}; }}
    macro_rules! peek {{ ($n:expr) => {{{{ need!($n + 1); st[sp - 1 - $n] }}}}; }}
    macro_rules! push {{ ($v:expr) => {{{{
        let v: u64 = $v;
        if sp == STACK {{ return OVERFLOW; }}
        st[sp] = v;
        sp += 1;
    }}}}; }}
    macro_rules! imm {{ ($n:expr) => {{{{
        if prog.len() - pc < $n {{ return TRUNCATED; }}
        let mut v: u64 = 0;
        let mut i = 0;
        while i < $n {{ v |= (prog[pc + i] as u64) << (8 * i); i += 1; }}
        pc += $n;
        v
    }}}}; }}
    macro_rules! un {{ ($f:expr) => {{{{ need!(1); st[sp - 1] = ($f)(st[sp - 1]); }}}}; }}
    macro_rules! bin {{ ($f:expr) => {{{{
        need!(2);
        st[sp - 2] = ($f)(st[sp - 2], st[sp - 1]);
        sp -= 1;
    }}}}; }}
    macro_rules! jump {{ ($r:expr) => {{{{
        let to = pc as isize + $r as isize;
        if to < 0 || to as usize > prog.len() {{ return BAD_JUMP; }}
        pc = to as usize;
    }}}}; }}
    while pc < prog.len() {{
        if fuel == 0 {{ return OUT_OF_FUEL; }}
        fuel -= 1;
        let b = prog[pc];
        pc += 1;
        let op: u32 = if b < 0x80 {{
            b as u32
        }} else {{
            if pc == prog.len() {{ return TRUNCATED; }}
            let n = prog[pc];
            pc += 1;
            ((b & 0x7f) as u32) << 8 | n as u32
        }};
        match op {{
"""

_FOOTER = """\
            _ => return BAD_OPCODE,
        }
    }
    OK
}
"""


def _rust_constant(value: int) -> str:
    return f"{value:#x}_u64" if value > 9 else f"{value}"


def _mix_arm(steps) -> str:
    body = []
    for kind, constants in steps:
        template = MIX_KINDS[kind][1]
        if kind in _SHIFTS:
            body.append(template.format(*constants))
        else:
            body.append(template.format(*(_rust_constant(c) for c in constants)))
    kinds = {kind for kind, _ in steps}
    prologue = ["need!(1);", "let mut x = st[sp - 1];"]
    epilogue = ["st[sp - 1] = x;"]
    if "toacc" in kinds:
        prologue.append("let mut a = *acc;")
        epilogue.append("*acc = a;")
    elif kinds & {"adda", "xora"}:
        prologue.append("let a = *acc;")
    return " ".join([*prologue, *body, *epilogue])


def rust_source() -> str:
    out = [_HEADER.format(count=len(NAMES), fixed=len(FIXED), mixes=MIX_COUNT, last=MIX_COUNT - 1)]
    for op, name in enumerate(NAMES):
        if name in _FIXED_ARMS:
            body = _FIXED_ARMS[name]
        else:
            body = _mix_arm(MIXES[int(name[3:])])
        out.append(f"            // {name}\n            {op} => {{ {body} }}\n")
    out.append(_FOOTER)
    return "".join(out)


if __name__ == "__main__":
    target = Path(__file__).with_name("stack_vm_ops.rs")
    target.write_text(rust_source(), encoding="utf-8")
    print(f"{target}: {len(NAMES)} opcodes")
