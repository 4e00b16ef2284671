"""Handler factories of control, call, parametric, variable and reference instructions.

Branches unwind with the counts lowering computed (``drop`` values beneath the ``arity``
kept ones); calls push only the return program counter on the frame stack, because locals
are addressed relative to the top of the value stack (see ``lower``).
"""

from __future__ import annotations

from collections.abc import Callable

from soru.wasm.errors import Exhaustion, Trap
from soru.wasm.exec import lower
from soru.wasm.exec.context import Ctx
from soru.wasm.runtime import (
    AwaitingData,
    FuncInst,
    HostContinuation,
    HostFunc,
    WasmFunc,
    default_value,
)

Handler = Callable[[], int]


def _unwinder(stack: list, drop: int, arity: int) -> Callable[[], None]:
    """A function removing ``drop`` values beneath the top ``arity`` ones."""
    if arity:
        lo, hi = -(drop + arity), -arity

        def unwind() -> None:
            del stack[lo:hi]
    else:

        def unwind() -> None:
            del stack[-drop:]

    return unwind


def _jump(ctx: Ctx, pc: int, target: int) -> Handler:
    dest = ctx.base + target

    def jump() -> int:
        return dest

    return jump


def _br(ctx: Ctx, pc: int, imm: tuple[int, int, int]) -> Handler:
    target, drop, arity = imm
    dest, unwind = ctx.base + target, _unwinder(ctx.stack, drop, arity)

    def br() -> int:
        unwind()
        return dest

    return br


def _br_if(ctx: Ctx, pc: int, imm: tuple[int, int, int]) -> Handler:
    target, drop, arity = imm
    dest, nxt, pop = ctx.base + target, pc + 1, ctx.stack.pop
    if drop == 0:

        def br_if() -> int:
            return dest if pop() else nxt

        return br_if
    unwind = _unwinder(ctx.stack, drop, arity)

    def br_if_unwind() -> int:
        if pop():
            unwind()
            return dest
        return nxt

    return br_if_unwind


def _br_table(ctx: Ctx, pc: int, imm: tuple) -> Handler:
    """``entries`` is any sequence (the PVM's lazy code reads a table's entries from the
    tree): only the entry taken is looked at, each bound on its first use."""
    entries, default = imm
    n = len(entries)
    targets: list[Handler | None] = [None] * n
    fallback = _br(ctx, pc, default) if default[1] else _jump(ctx, pc, default[0])
    pop = ctx.stack.pop

    def br_table() -> int:
        i = pop()
        if i >= n:
            return fallback()
        target = targets[i]
        if target is None:
            e = entries[i]
            target = targets[i] = _br(ctx, pc, e) if e[1] else _jump(ctx, pc, e[0])
        return target()

    return br_table


def _if_false(ctx: Ctx, pc: int, target: int) -> Handler:
    dest, nxt, pop = ctx.base + target, pc + 1, ctx.stack.pop

    def if_false() -> int:
        return nxt if pop() else dest

    return if_false


def _return(ctx: Ctx, pc: int, imm: tuple[int, int]) -> Handler:
    drop, arity = imm
    ret = ctx.frames.pop
    if drop == 0:
        return ret
    unwind = _unwinder(ctx.stack, drop, arity)

    def return_() -> int:
        unwind()
        return ret()

    return return_


def _unreachable(ctx: Ctx, pc: int, imm: object) -> Handler:
    def unreachable() -> int:
        raise Trap("unreachable")

    return unreachable


def call_handler(ctx: Ctx, nxt: int, func: FuncInst) -> Handler:
    """A handler entering ``func`` and returning to ``nxt``."""
    if isinstance(func, HostFunc):
        return _host_call(ctx, nxt, func)
    assert isinstance(func, WasmFunc)
    frames, extend, limit = ctx.frames, ctx.stack.extend, ctx.machine.call_depth_limit
    push_frame = frames.append
    zeros = [default_value(t) for t in func.locals]
    entry = func.entry

    if zeros:

        def call() -> int:
            if len(frames) >= limit:
                raise Exhaustion()
            push_frame(nxt)
            extend(zeros)
            return entry
    else:

        def call() -> int:
            if len(frames) >= limit:
                raise Exhaustion()
            push_frame(nxt)
            return entry

    return call


def _host_call(ctx: Ctx, nxt: int, func: HostFunc) -> Handler:
    stack, machine, caller = ctx.stack, ctx.machine, ctx.instance
    nparams, fn = len(func.type.params), func.fn

    def host_call() -> int:
        if nparams:
            args = stack[-nparams:]
            del stack[-nparams:]
        else:
            args = []
        results = fn(caller, args)
        if isinstance(results, HostContinuation):
            resume = machine.suspend(results, nxt)
            if results.awaits_data:
                raise AwaitingData()
            return resume
        stack.extend(results)
        return nxt

    return host_call


def _call(ctx: Ctx, pc: int, index: int) -> Handler:
    assert ctx.instance is not None
    return call_handler(ctx, pc + 1, ctx.instance.funcs[index])


def _call_addr(ctx: Ctx, pc: int, addr: int) -> Handler:
    return call_handler(ctx, pc + 1, ctx.machine.funcs[addr])


def _call_indirect(ctx: Ctx, pc: int, imm: tuple[int, int]) -> Handler:
    assert ctx.instance is not None
    type_index, table_index = imm
    expected = ctx.instance.module.types[type_index]
    elements = ctx.instance.tables[table_index].elements
    funcs, pop, nxt = ctx.machine.funcs, ctx.stack.pop, pc + 1
    cache: dict[int, Handler] = {}

    def call_indirect() -> int:
        i = pop()
        if i >= len(elements):
            raise Trap("undefined element")
        addr = elements[i]
        if addr is None:
            raise Trap("uninitialized element")
        handler = cache.get(addr)
        if handler is None:
            func = funcs[addr]
            if func.type != expected:
                raise Trap("indirect call type mismatch")
            handler = cache[addr] = call_handler(ctx, nxt, func)
        return handler()

    return call_indirect


def _drop(ctx: Ctx, pc: int, imm: object) -> Handler:
    pop, nxt = ctx.stack.pop, pc + 1

    def drop() -> int:
        pop()
        return nxt

    return drop


def _select(ctx: Ctx, pc: int, imm: object) -> Handler:
    stack, nxt = ctx.stack, pc + 1
    pop = stack.pop

    def select() -> int:
        c = pop()
        b = pop()
        if not c:
            stack[-1] = b
        return nxt

    return select


def _local_get(ctx: Ctx, pc: int, k: int) -> Handler:
    stack, nxt = ctx.stack, pc + 1
    push = stack.append

    def local_get() -> int:
        push(stack[k])
        return nxt

    return local_get


def _local_set(ctx: Ctx, pc: int, k: int) -> Handler:
    stack, nxt = ctx.stack, pc + 1
    pop = stack.pop

    def local_set() -> int:
        v = pop()
        stack[k] = v
        return nxt

    return local_set


def _local_tee(ctx: Ctx, pc: int, k: int) -> Handler:
    stack, nxt = ctx.stack, pc + 1

    def local_tee() -> int:
        stack[k] = stack[-1]
        return nxt

    return local_tee


def _global_get(ctx: Ctx, pc: int, index: int) -> Handler:
    assert ctx.instance is not None
    g, push, nxt = ctx.instance.globals[index], ctx.stack.append, pc + 1

    def global_get() -> int:
        push(g.value)
        return nxt

    return global_get


def _global_set(ctx: Ctx, pc: int, index: int) -> Handler:
    assert ctx.instance is not None
    g, pop, nxt = ctx.instance.globals[index], ctx.stack.pop, pc + 1

    def global_set() -> int:
        g.value = pop()
        return nxt

    return global_set


def _ref_null(ctx: Ctx, pc: int, imm: object) -> Handler:
    push, nxt = ctx.stack.append, pc + 1

    def ref_null() -> int:
        push(None)
        return nxt

    return ref_null


def _ref_is_null(ctx: Ctx, pc: int, imm: object) -> Handler:
    stack, nxt = ctx.stack, pc + 1

    def ref_is_null() -> int:
        stack[-1] = 1 if stack[-1] is None else 0
        return nxt

    return ref_is_null


def _ref_func(ctx: Ctx, pc: int, index: int) -> Handler:
    assert ctx.instance is not None
    addr, push, nxt = ctx.instance.funcs[index].addr, ctx.stack.append, pc + 1

    def ref_func() -> int:
        push(addr)
        return nxt

    return ref_func


CONTROL_FACTORIES: dict[int, Callable[..., Handler]] = {
    lower.JUMP: _jump,
    lower.BR: _br,
    lower.BR_IF: _br_if,
    lower.BR_TABLE: _br_table,
    lower.IF_FALSE: _if_false,
    lower.RETURN: _return,
    lower.CALL_ADDR: _call_addr,
    0x00: _unreachable,
    0x10: _call,
    0x11: _call_indirect,
    0x1A: _drop,
    0x1B: _select,
    0x1C: _select,
    0x20: _local_get,
    0x21: _local_set,
    0x22: _local_tee,
    0x23: _global_get,
    0x24: _global_set,
    0xD0: _ref_null,
    0xD1: _ref_is_null,
    0xD2: _ref_func,
}
