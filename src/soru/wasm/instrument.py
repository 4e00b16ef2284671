"""Tick-counting instrumentation: a rewritten module that counts soru's ticks on any engine.

soru's machine (``soru.wasm.exec``) runs a kernel one tick at a time; the PVM's fast path runs
it on wasmtime instead, and both must agree exactly — on results, on traps and on when a
kernel runs out of ticks. :func:`instrument` rewrites a *validated* module so that, run on
any conforming engine, it keeps soru's tick count in a global and stops when it exceeds a
budget.

How ticks are counted
---------------------
Each body is lowered exactly as the machine lowers it (``lower.lower_function_traced``, the
same code, with the body index each lowered instruction comes from), so dead code, the
instructions that emit nothing (``block``, ``loop``, ``end``, ``nop``), the ``else`` jump
and the final ``RETURN`` are decided in one place. The lowered code is cut into *segments*
of straight-line code, each starting at a *leader*: the entry, every branch target, and the
instruction after every branch, ``if``, ``return``, call, and every instruction that may
trap (loads and stores, integer division, float truncation, ``call_indirect``, table
accesses, bulk operations, ``unreachable``). Before the body instruction a leader comes
from, the rewritten body adds the segment's length to the counter::

    global.get $ticks  i64.const k  i64.add  global.set $ticks

Every way into a segment passes through that point: a WebAssembly branch lands on a label
and falls through instructions that emit nothing up to it (the body is wrapped in one more
``block`` so that branches to the function's own label, which skip its final ``end``, still
pass the point where ``RETURN`` is counted). Because an instruction that may trap is always
the last of its segment, the counter is exact at a trap too: soru counts the trapping tick,
and so does the segment that ends with it.

A bulk operation (``memory.copy/fill/init``, ``table.copy/fill/init``) over ``n`` items costs
``bulk_ticks(n, chunk)`` ticks when it succeeds and one when it traps (its first tick checks
the whole range). Its segment counts one tick; ``n`` is kept in a scratch local
(``local.tee``) and, once the operation has succeeded, ``ceil(n / chunk) - 1`` more ticks are
added.

The budget
----------
A segment that ends in a transfer which could lead to unbounded or visible work — a call,
a ``return`` (the function's final ``RETURN`` included) or a backward branch (a loop's back
edge) — also compares the counter with ``$budget`` (the second new global), right after
adding its length, before any of its instructions run::

    ... i64.add  local.tee $t  global.set $ticks  local.get $t  global.get $budget
    i64.gt_u  if  unreachable  end

So nothing of a segment that ends in a call runs when soru would not have reached that
call. Other segments are counted but not compared: once the counter has passed the budget,
the engine runs at most bounded straight-line and forward code — no loop iteration, no
call, no return — before a comparison stops it. A trap there (a load out of bounds…)
happens at a tick beyond the budget, which soru would not have reached.

The contract, for a caller running the instrumented module:

* on normal completion, ``__soru_ticks`` has grown by exactly the ticks soru's ``Machine``
  spends on the call (``Machine.ticks`` after ``invoke`` minus before), and is at most the
  budget;
* the call *ran out of ticks* — from a counter ``c`` at its start, soru's
  ``run(ticks=budget - c)`` would leave it RUNNING — exactly when it trapped with
  ``__soru_ticks > __soru_budget`` (:func:`ran_out_of_ticks`);
* otherwise a trap is the kernel's own, and ``__soru_ticks`` is the tick soru traps at.

Host functions: the ``call`` of an import costs its one tick in the caller, like any call.
A host function that soru runs as a :class:`~soru.wasm.runtime.HostContinuation` taking
``s`` steps costs ``s`` more ticks; its wasmtime counterpart must add them to
``__soru_ticks`` itself (it may then trap at once when the counter exceeds the budget, or
leave it to the next comparison).

Instantiation: soru runs segment initialisation and the start function as ticked code
(``instantiate.init_code``). The rewritten module does the same: active segments become
passive, and a new start function performs exactly that program — ``table.init``/
``elem.drop`` per element segment, ``memory.init``/``data.drop`` per data segment, a ``call``
of the original start function — counted and compared like any function. After
instantiation the counter therefore equals ``Machine.ticks`` after ``Machine.instantiate``
of the same module on a fresh machine (``__soru_budget`` applies to it too). A trap during
instantiation leaves no instance, so its tick is not observable.

The engine must grow memories and tables within soru's limits — at most the machine's
``max_memory_pages`` pages and ``ticks.TABLE_GROW_MAX_ELEMENTS`` elements (wasmtime:
``Store.set_limits``) — or ``memory.grow``/``table.grow`` answer differently.

Not modelled: call depth. soru raises ``Exhaustion`` past ``call_depth_limit`` frames; an
engine overflows its own stack at another depth. A host call that suspends for outside
data (the PVM's reveals) must be answered inside the wrapper (its answer is one tick).

Cost: one counter update (a load, an add, a store) per segment, and a comparison per
call, return and loop iteration. A memory-bound loop of 28 ticks with two accesses runs
about 1.4 times slower than uninstrumented on wasmtime.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from soru.wasm import opcodes
from soru.wasm.exec import ticks
from soru.wasm.exec.lower import (
    BR,
    BR_IF,
    BR_TABLE,
    IF_FALSE,
    JUMP,
    RETURN,
    LInstr,
    lower_function_traced,
)
from soru.wasm.syntax import (
    BlockType,
    Data,
    Elem,
    Export,
    ExternKind,
    Func,
    FuncType,
    Global,
    GlobalType,
    Instr,
    Module,
    SegmentMode,
    ValType,
)

TICKS_EXPORT = "__soru_ticks"
"""Export name of the tick counter (a mutable i64 global)."""

BUDGET_EXPORT = "__soru_budget"
"""Export name of the budget (a mutable i64 global, initialised to ``budget``)."""

MAX_BUDGET = (1 << 63) - 1
"""Largest budget: counters stay far below 2**64, so unsigned comparisons never wrap."""


def _op(name: str) -> int:
    return opcodes.BY_NAME[name].op


_BLOCK, _END, _UNREACHABLE, _IF = _op("block"), _op("end"), _op("unreachable"), _op("if")
_CALL, _CALL_INDIRECT = _op("call"), _op("call_indirect")
_LOCAL_GET, _LOCAL_SET, _LOCAL_TEE = _op("local.get"), _op("local.set"), _op("local.tee")
_GLOBAL_GET, _GLOBAL_SET = _op("global.get"), _op("global.set")
_I32_CONST, _I64_CONST = _op("i32.const"), _op("i64.const")
_I32_EQZ, _I64_EXTEND_U = _op("i32.eqz"), _op("i64.extend_i32_u")
_I64_ADD, _I64_SUB, _I64_DIV_U, _I64_GT_U = (
    _op("i64.add"), _op("i64.sub"), _op("i64.div_u"), _op("i64.gt_u"),
)  # fmt: skip
_TABLE_INIT, _ELEM_DROP = _op("table.init"), _op("elem.drop")
_MEMORY_INIT, _DATA_DROP = _op("memory.init"), _op("data.drop")

BULK_CHUNKS: dict[int, int] = {
    _op("memory.copy"): ticks.MEMORY_CHUNK_BYTES,
    _op("memory.fill"): ticks.MEMORY_CHUNK_BYTES,
    _op("memory.init"): ticks.MEMORY_CHUNK_BYTES,
    _op("table.copy"): ticks.TABLE_CHUNK_ELEMENTS,
    _op("table.fill"): ticks.TABLE_CHUNK_ELEMENTS,
    _op("table.init"): ticks.TABLE_CHUNK_ELEMENTS,
}
"""Bulk operations and the items one of their ticks moves (operand ``n`` is on top)."""

MAY_TRAP: frozenset[int] = frozenset(
    {op for op, entry in opcodes.OPS.items() if entry.width}  # loads and stores
    | {_op(f"{t}.{name}") for t in ("i32", "i64") for name in ("div_s", "div_u", "rem_s", "rem_u")}
    | {_op(f"{t}.trunc_{f}_{s}") for t in ("i32", "i64") for f in ("f32", "f64") for s in "su"}
    | {_op("table.get"), _op("table.set"), _UNREACHABLE, _CALL, _CALL_INDIRECT}
    | set(BULK_CHUNKS)
)
"""Instructions whose tick may end in a trap (or, for calls, exhaustion): each ends a
segment, so that the counter is exact when it traps."""

_TRANSFERS = frozenset({JUMP, BR, BR_IF, BR_TABLE, IF_FALSE, RETURN})


@dataclass(frozen=True, slots=True)
class InstrumentInfo:
    """What :func:`instrument` added to the module.

    ``ticks_global``/``budget_global`` are global indices (exported as :data:`TICKS_EXPORT`
    and :data:`BUDGET_EXPORT`); ``init_func`` is the index of the new start function that
    runs soru's initialisation program (None when soru's is empty); ``counters`` and
    ``checks`` count the counter updates and budget comparisons inserted.
    """

    budget: int
    ticks_global: int
    budget_global: int
    init_func: int | None
    counters: int
    checks: int


def ran_out_of_ticks(ticks_value: int, budget: int) -> bool:
    """Whether a call that trapped ran out of ticks rather than faulting, from the values of
    ``__soru_ticks`` and ``__soru_budget`` after the trap (see the contract)."""
    return ticks_value > budget


def instrument(module: Module, *, budget: int) -> tuple[Module, InstrumentInfo]:
    """The tick-counting rewrite of a validated ``module`` (see the module docstring)."""
    if not 0 <= budget <= MAX_BUDGET:
        raise ValueError(f"budget {budget} outside 0..{MAX_BUDGET}")
    taken = {e.name for e in module.exports} & {TICKS_EXPORT, BUDGET_EXPORT}
    if taken:
        raise ValueError(f"the module already exports {sorted(taken)}")
    types = _Types(list(module.types))
    imported_funcs = len(module.imported(ExternKind.FUNC))
    imported_globals = len(module.imported(ExternKind.GLOBAL))
    ticks_global = imported_globals + len(module.globals)
    budget_global = ticks_global + 1

    # instantiation as code: active segments become passive, a new start function inits them
    funcs = list(module.funcs)
    init_body = _init_program(module)
    init_func = None
    if init_body:
        init_func = imported_funcs + len(funcs)
        funcs.append(Func(types.index(FuncType((), ())), (), tuple(init_body)))
    elems = tuple(
        Elem(e.type, e.init, SegmentMode.PASSIVE) if e.mode == SegmentMode.ACTIVE else e
        for e in module.elems
    )
    datas = tuple(
        Data(d.init, SegmentMode.PASSIVE) if d.mode == SegmentMode.ACTIVE else d
        for d in module.datas
    )
    staged = replace(module, types=tuple(types.types), funcs=tuple(funcs))
    func_types = [staged.func_type(i) for i in range(imported_funcs + len(funcs))]

    rewriter = _Rewriter(staged, func_types, types, ticks_global, budget_global)
    new_funcs = tuple(rewriter.function(f) for f in funcs)
    counter = GlobalType(ValType.I64, True)
    result = replace(
        module,
        types=tuple(types.types),
        funcs=new_funcs,
        globals=(
            *module.globals,
            Global(counter, (Instr(_I64_CONST, 0),)),
            Global(counter, (Instr(_I64_CONST, budget),)),
        ),
        exports=(
            *module.exports,
            Export(TICKS_EXPORT, ExternKind.GLOBAL, ticks_global),
            Export(BUDGET_EXPORT, ExternKind.GLOBAL, budget_global),
        ),
        start=init_func,
        elems=elems,
        datas=datas,
        data_count=len(datas) if datas else module.data_count,
    )
    info = InstrumentInfo(
        budget, ticks_global, budget_global, init_func, rewriter.counters, rewriter.checks
    )
    return result, info


def _init_program(module: Module) -> list[Instr]:
    """soru's initialisation program (``instantiate.init_code``) as a function body.

    Each lowered instruction there has its counterpart here, one for one: the ``CONST`` of
    an offset is the offset's constant instruction, ``CALL_ADDR`` is a ``call``, and the
    final ``RETURN`` is the body's final ``end``. Empty when soru's program is empty.
    """
    code: list[Instr] = []
    for i, e in enumerate(module.elems):
        if e.mode == SegmentMode.ACTIVE:
            code += [*_offset(e.offset), Instr(_I32_CONST, 0), Instr(_I32_CONST, len(e.init))]
            code.append(Instr(_TABLE_INIT, (i, e.table)))
        if e.mode != SegmentMode.PASSIVE:
            code.append(Instr(_ELEM_DROP, i))
    for i, d in enumerate(module.datas):
        if d.mode == SegmentMode.ACTIVE:
            code += [*_offset(d.offset), Instr(_I32_CONST, 0), Instr(_I32_CONST, len(d.init))]
            code += [Instr(_MEMORY_INIT, (i, d.memory)), Instr(_DATA_DROP, i)]
    if module.start is not None:
        code.append(Instr(_CALL, module.start))
    if code:
        code.append(Instr(_END))
    return code


def _offset(expr: tuple[Instr, ...]) -> tuple[Instr, ...]:
    if len(expr) != 1:
        raise ValueError("a segment offset must be one constant instruction (WebAssembly 2.0)")
    return expr


class _Types:
    """The module's type section, growing when a new function or block type is needed."""

    def __init__(self, types: list[FuncType]) -> None:
        self.types = types

    def index(self, ft: FuncType) -> int:
        if ft not in self.types:
            self.types.append(ft)
        return self.types.index(ft)

    def block_type(self, results: tuple[ValType, ...]) -> BlockType:
        if not results:
            return None
        if len(results) == 1:
            return results[0]
        return self.index(FuncType((), results))


class _Rewriter:
    """Rewrites function bodies of one module (see the module docstring)."""

    def __init__(
        self,
        module: Module,
        func_types: list[FuncType],
        types: _Types,
        ticks_global: int,
        budget_global: int,
    ) -> None:
        self.module = module
        self.func_types = func_types
        self.types = types
        self.ticks_global = ticks_global
        self.budget_global = budget_global
        self.counters = 0
        self.checks = 0

    def function(self, func: Func) -> Func:
        code, origins = lower_function_traced(self.module, self.func_types, func)
        ftype = self.module.types[func.type_index]
        scratch64 = len(ftype.params) + len(func.locals)  # the counter's new value
        scratch32 = scratch64 + 1  # the size operand of a bulk operation
        before: dict[int, list[Instr]] = {}  # body index -> instructions inserted before it
        after: dict[int, list[Instr]] = {}
        leaders = segment_leaders(code)
        for start, end in zip(leaders, [*leaders[1:], len(code)], strict=True):
            check = _needs_check(code, end - 1)
            before[origins[start]] = self.charge(end - start, check, scratch64)
        uses_bulk = False
        for at, (op, _imm) in enumerate(code):
            chunk = BULK_CHUNKS.get(op)
            if chunk is not None:
                uses_bulk = True
                before.setdefault(origins[at], []).append(Instr(_LOCAL_TEE, scratch32))
                after[origins[at]] = self.bulk_extra(chunk, scratch32)
        body = func.body
        last = len(body) - 1
        out = [Instr(_BLOCK, self.types.block_type(ftype.results))]
        for i, instr in enumerate(body):
            if i == last:
                out.append(Instr(_END))  # the wrapper: the function's label lands here
            inserted = before.get(i)
            if inserted:
                out += inserted
            out.append(instr)
            inserted = after.get(i)
            if inserted:
                out += inserted
        scratch = (ValType.I64, ValType.I32) if uses_bulk else (ValType.I64,)
        return Func(func.type_index, (*func.locals, *scratch), tuple(out))

    def charge(self, k: int, check: bool, scratch64: int) -> list[Instr]:
        """Add ``k`` to the counter; with ``check``, trap when it exceeds the budget."""
        self.counters += 1
        code = [Instr(_GLOBAL_GET, self.ticks_global), Instr(_I64_CONST, k), Instr(_I64_ADD)]
        if not check:
            return [*code, Instr(_GLOBAL_SET, self.ticks_global)]
        self.checks += 1
        return [
            *code,
            Instr(_LOCAL_TEE, scratch64),
            Instr(_GLOBAL_SET, self.ticks_global),
            Instr(_LOCAL_GET, scratch64),
            Instr(_GLOBAL_GET, self.budget_global),
            Instr(_I64_GT_U),
            Instr(_IF, None),
            Instr(_UNREACHABLE),
            Instr(_END),
        ]

    def bulk_extra(self, chunk: int, scratch32: int) -> list[Instr]:
        """Add ``ceil(n / chunk) - 1`` (0 when ``n`` is 0) for a bulk operation that
        succeeded: ``(n - (n != 0)) / chunk``."""
        self.counters += 1
        return [
            Instr(_LOCAL_GET, scratch32),
            Instr(_I64_EXTEND_U),
            Instr(_LOCAL_GET, scratch32),
            Instr(_I32_EQZ),
            Instr(_I32_EQZ),
            Instr(_I64_EXTEND_U),
            Instr(_I64_SUB),
            Instr(_I64_CONST, chunk),
            Instr(_I64_DIV_U),
            Instr(_GLOBAL_GET, self.ticks_global),
            Instr(_I64_ADD),
            Instr(_GLOBAL_SET, self.ticks_global),
        ]


def branch_targets(op: int, imm: object) -> tuple[int, ...]:
    """Targets (indices into the lowered code) of a lowered control instruction."""
    if op in (JUMP, IF_FALSE):
        return (imm,)  # type: ignore[return-value]
    if op in (BR, BR_IF):
        return (imm[0],)  # type: ignore[index]
    if op == BR_TABLE:
        entries: tuple[tuple[int, int, int], ...]
        default: tuple[int, int, int]
        entries, default = imm  # type: ignore[misc]
        return (*(e[0] for e in entries), default[0])
    return ()


def segment_leaders(code: list[LInstr]) -> list[int]:
    """The sorted first instructions of the segments of lowered ``code``."""
    leaders = {0}
    for at, (op, imm) in enumerate(code):
        if op in _TRANSFERS or op in MAY_TRAP:
            leaders.add(at + 1)
            leaders.update(branch_targets(op, imm))
    return sorted(at for at in leaders if at < len(code))


def _needs_check(code: list[LInstr], at: int) -> bool:
    """Whether the segment ending at ``code[at]`` compares the counter with the budget:
    it ends in a call, a return or a backward branch."""
    op, imm = code[at]
    if op in (_CALL, _CALL_INDIRECT, RETURN):
        return True
    return any(target <= at for target in branch_targets(op, imm))
