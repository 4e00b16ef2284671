"""Long function bodies: checked, then lowered, a *run* of instructions per loader step.

A body of up to :data:`SMALL_BODY` bytes takes one step (``loader_entries.code_entry``).
A longer one — or one that names more than the gather steps may hold — is read in runs: a
run is the instructions that start within :data:`RUN_BYTES` bytes of its first, at most
:data:`RUN_INSTRS` of them, and no more than :data:`RUN_FACTS` distinct references (the
signatures, types, globals… it names, read from the tree by the step itself). The rule
depends only on the bytes, so both passes over a body cut it into the same runs:

1. **check** (phase 0): each run is type-checked (``BodyChecker.feed``) and lowered
   without writing code (``Lowerer`` with unknown targets), to learn where each block's
   ``else`` and ``end`` land: its *targets*, written when the block ends.
2. **lower** (phase 1): each run is lowered again, its forward branches taking their
   targets from the first pass, and its code appended to ``module/code``. Nothing written
   is ever rewritten, so no step patches code that an earlier step wrote.

Between steps the state lives under ``load/body`` (deleted when the body is done)::

    state     the run position and the lowering counters (:class:`BodyState`)
    vals      the checker's operand types          (a TreeStack, 64 a page)
    frames    the checker's control frames         (16 a page)
    ctrls     the lowerer's blocks                 (16 a page)
    nest      the decoder's nesting markers        (64 a page)
    targets   each block's else and end: a radix vector by block ordinal

A step reads its run's bytes (at most RUN_BYTES and the tail of its last instruction), up to
RUN_FACTS facts, the pages of the stacks its instructions reach and the function's record;
its proof stays bounded however long the body is (the tests measure it). What remains a
PVM limit (:class:`LoaderLimit`): one instruction longer than :data:`MAX_INSTR_BYTES` (a
``br_table`` of thousands of labels), one lowered instruction over 4096 bytes, a step
reaching more than ``loader_stack.MAX_PAGES`` pages of one stack.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, fields, replace
from typing import Any

from soru.encoding.reader import Reader
from soru.encoding.writer import Writer
from soru.pvm import loader_items as items
from soru.pvm.layout import (
    decode_functype,
    decode_local_runs,
    encode_code,
    encode_functype,
    encode_locals,
)
from soru.pvm.loader_stack import BYTES, PageCodec, TreeStack
from soru.pvm.loader_state import (
    _END_REASONS,
    MAX_ITEM_BYTES,
    Counts,
    LoaderLimit,
    Progress,
    Stage,
    _fits,
    _radix_append,
    radix_path,
)
from soru.wasm.errors import DecodeError, InvalidModule
from soru.wasm.exec.lower import Ctrl, Lowerer
from soru.wasm.syntax import Instr
from soru.wasm.validate_body import BodyChecker, Frame

SMALL_BODY = MAX_ITEM_BYTES
"""Bodies up to this many bytes are checked and lowered in one step."""

RUN_BYTES = 2048
"""A run holds the instructions that start within this many bytes of its first."""

RUN_INSTRS = 128
"""Instructions in a run, at most."""

RUN_FACTS = 8
"""Distinct references (facts) a run may name, at most."""

MAX_INSTR_BYTES = 8192
"""Bytes of one instruction, at most (a PVM limit)."""

_WINDOWS = (RUN_BYTES + 64, RUN_BYTES + 1024, RUN_BYTES + MAX_INSTR_BYTES)
"""Kernel bytes a run step reads, tried in turn until its last instruction fits."""

_PLAIN_BLOCK = 0  # the decoder's marker of the function's own block (binary._PLAIN_BLOCK)


@dataclass(frozen=True, slots=True)
class BodyState:
    """Where a long body is: ``phase`` (0 check, 1 lower), function ``func`` whose code
    starts at ``entry``, instructions from kernel offset ``start`` to ``end``, the next run
    at ``pos`` (instruction number ``at``, lowered pc ``pc`` in the function, ``total`` pcs
    in all once checked), the lowerer's operand height ``h``, ``dead`` blocks opened in
    dead code and ``ordinals`` blocks opened, ``nlocals`` locals (parameters included), and
    the lengths of the four stacks."""

    phase: int = 0
    func: int = 0
    entry: int = 0
    start: int = 0
    end: int = 0
    pos: int = 0
    at: int = 0
    pc: int = 0
    total: int = 0
    h: int = 0
    dead: int = 0
    ordinals: int = 1
    nlocals: int = 0
    vals: int = 0
    frames: int = 0
    ctrls: int = 0
    nest: int = 0
    failed: int = 0  # the check failed (the error is at load/body/error)

    def encode(self) -> bytes:
        out = Writer()
        for f in fields(self):
            out.zarith_n(getattr(self, f.name))
        return out.getvalue()

    @classmethod
    def decode(cls, raw: bytes) -> BodyState:
        reader = Reader(raw)
        state = cls(*(reader.zarith_n() for _ in fields(cls)))
        reader.expect_end()
        return state


# --- how the stacks' elements are kept ----------------------------------------------------


def _types(out: Writer, types: list[int]) -> None:
    out.zarith_n(len(types)).raw(bytes(types))


def _encode_frames(frames: list[Frame]) -> bytes:
    out = Writer()
    for f in frames:
        out.u8(f.kind).u8(f.unreachable).zarith_n(f.height)
        _types(out, f.start)
        _types(out, f.end)
    return out.getvalue()


def _decode_frames(raw: bytes) -> list[Frame]:
    reader, frames = Reader(raw), []
    while not reader.at_end():
        kind, unreachable, height = reader.u8(), reader.u8(), reader.zarith_n()
        start = list(reader.read(reader.zarith_n()))
        frame = Frame(kind, start, list(reader.read(reader.zarith_n())), height)
        frame.unreachable = bool(unreachable)
        frames.append(frame)
    return frames


_CTRL_INTS = ("height", "params", "results", "start", "ordinal")


def _encode_ctrls(ctrls: list[Ctrl]) -> bytes:
    out = Writer()
    for c in ctrls:
        out.u8(c.is_loop | c.if_open << 1 | c.dead << 2 | c.branched << 3)
        for name in _CTRL_INTS:
            out.zarith_n(getattr(c, name))
        out.zarith_n(c.else_pc + 1).zarith_n(c.end_pc + 1)
    return out.getvalue()


def _decode_ctrls(raw: bytes) -> list[Ctrl]:
    reader, ctrls = Reader(raw), []
    while not reader.at_end():
        flags = reader.u8()
        ctrl = Ctrl(bool(flags & 1), 0, 0, 0, 0, if_open=bool(flags & 2), dead=bool(flags & 4),
                    branched=bool(flags & 8))  # fmt: skip
        for name in _CTRL_INTS:
            setattr(ctrl, name, reader.zarith_n())
        ctrl.else_pc, ctrl.end_pc = reader.zarith_n() - 1, reader.zarith_n() - 1
        ctrls.append(ctrl)
    return ctrls


FRAMES = PageCodec(16, _encode_frames, _decode_frames)
CTRLS = PageCodec(16, _encode_ctrls, _decode_ctrls)


class _Locals:
    """The types of a function's locals, parameters first, from their runs ``(count,
    type)``: ``len`` and indexing, without expanding 50,000 locals at every step."""

    __slots__ = ("starts", "types", "length")

    def __init__(self, runs: list[tuple[int, int]]) -> None:
        self.starts: list[int] = []
        self.types: list[int] = []
        self.length = 0
        for count, valtype in runs:
            if count:
                self.starts.append(self.length)
                self.types.append(valtype)
                self.length += count

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> int:
        if not 0 <= i < self.length:
            raise IndexError(i)
        return self.types[bisect_right(self.starts, i) - 1]


def _unknown_targets(ordinal: int) -> tuple[int, int]:
    return -1, -1


# --- the steps ----------------------------------------------------------------------------


class _Body:
    """One step's view of the long body being read (``reader``: the loader's EntryReader)."""

    def __init__(self, reader: Any, state: BodyState) -> None:
        self.reader, self.store, self.st = reader, reader.store, state
        self.base = (*reader.load, "body")

    def stack(self, name: str, codec: PageCodec, what: str) -> TreeStack:
        return TreeStack(self.store, (*self.base, name), getattr(self.st, name), codec, what)

    def save(self, state: BodyState) -> None:
        self.store.set_record((*self.base, "state"), state)

    def targets(self, ordinal: int) -> tuple[int, int]:
        raw = self.store.get(radix_path((*self.base, "targets"), ordinal))
        if raw is None:  # the first pass wrote every block's: a loader bug
            raise RuntimeError(f"no targets for block {ordinal} of function {self.st.func}")
        reader = Reader(raw)
        return reader.zarith_n() - 1, reader.zarith_n() - 1

    def func_record(self) -> tuple[Any, _Locals]:
        """The function's type and its locals' types, parameters first."""
        reader = Reader(self.store.get((*self.reader.module, "funcs", str(self.st.func))))
        reader.u8()
        reader.zarith_n()  # the entry
        ftype = decode_functype(reader)
        runs = [(1, int(t)) for t in ftype.params]
        runs += [(count, int(t)) for count, t in decode_local_runs(reader)]
        return ftype, _Locals(runs)

    def decode_run(self, c: Counts, sizes: items.Sizes) -> tuple[list[Instr], TreeStack, int]:
        """The next run's instructions, the decoder's nesting after them, and the offset
        after the last (see the module docstring for the rule)."""
        st, room = self.st, self.st.end - self.st.pos
        for window in _WINDOWS:
            size = min(window, room)
            try:
                instrs, nest, after = self._decode(c, size, RUN_INSTRS)
                cut = _cut(instrs, sizes)
                if cut < len(instrs):
                    instrs, nest, after = self._decode(c, size, cut)
                return instrs, nest, after
            except DecodeError as error:
                if size >= room or error.reason not in _END_REASONS:
                    raise
                if window == _WINDOWS[-1]:
                    message = f"an instruction of more than {MAX_INSTR_BYTES} bytes is too large"
                    raise LoaderLimit(message + " for the PVM", st.pos, "code") from None
        raise AssertionError("unreachable")

    def _decode(self, c: Counts, size: int, limit: int) -> tuple[list[Instr], TreeStack, int]:
        st = self.st
        nest = self.stack("nest", BYTES, "blocks")
        decoder, r = self.reader.decoder(self.reader.read(st.pos, size), st.pos, "code", c)
        instrs = decoder.instruction_run(r, nest, limit, RUN_BYTES)
        after = st.pos + r.pos
        if not nest and after != st.end:
            raise DecodeError("section size mismatch", after, "code")
        return instrs, nest, after

    def lowerer(self, ctx_views: tuple, targets: Any) -> Lowerer:
        types, func_types = ctx_views
        st = self.st
        lw = Lowerer(items.ModuleView(types), func_types, 0, st.nlocals, targets)  # type: ignore[arg-type]
        lw.ctrls = self.stack("ctrls", CTRLS, "blocks")  # (the function's block is in it)
        lw.h, lw.dead_depth, lw.ordinals, lw.first = st.h, st.dead, st.ordinals, st.pc
        return lw


def _cut(instrs: list[Instr], sizes: items.Sizes) -> int:
    """How many of ``instrs`` a run takes so as to name at most RUN_FACTS references."""
    seen: set[items.Ref] = set()
    for k, instr in enumerate(instrs):
        new = [ref for ref in items.body_references(-1, (instr,), sizes)[1:] if ref not in seen]
        if len(seen) + len(new) > RUN_FACTS:
            return max(k, 1)
        seen.update(new)
    return len(instrs)


def begin(reader: Any, p: Progress, c: Counts, f: int, start: int, end: int) -> tuple:
    """The head of a long body (``start``..``end`` in the kernel): its locals, the
    function's record, and the state of the runs to come."""
    local_types, pos = reader.item(start, end, "code", c, lambda d, r: d.locals(r))
    _, own = items.func_fact_type(reader.fact(("f", f)))
    entry = c.code_length
    record = Writer().u8(0).zarith_n(entry).raw(encode_functype(own))
    record.raw(encode_locals(local_types))
    reader.put("funcs", str(f), _fits(record.getvalue(), "a function's locals", start, "code"))
    reader.store.delete((*reader.load, "facts"))
    state = BodyState(func=f, entry=entry, start=pos, end=end, pos=pos,
                      nlocals=len(own.params) + len(local_types))  # fmt: skip
    body = _Body(reader, state)
    body.save(_fresh_stacks(body, state, len(own.results), check=True))
    what = f"code {p.index} (function {f}): locals of a long body"
    return replace(p, stage=Stage.BODY, part=0, total=0, extra=0), c, what


def _fresh_stacks(body: _Body, state: BodyState, results: int, *, check: bool) -> BodyState:
    """The stacks at the start of a pass: the function's own block, nothing else."""
    end_pc = -1 if check else body.targets(0)[1]
    first = Ctrl(False, 0, 0, results, 0, end_pc=end_pc)
    ctrls = TreeStack(body.store, (*body.base, "ctrls"), 0, CTRLS, "blocks")
    ctrls.append(first)
    nest = TreeStack(body.store, (*body.base, "nest"), 0, BYTES, "blocks")
    nest.append(_PLAIN_BLOCK)
    stacks = [ctrls, nest]
    frames_len = 0
    if check:
        ftype, _ = body.func_record()
        frames = TreeStack(body.store, (*body.base, "frames"), 0, FRAMES, "control frames")
        frames.append(Frame(0x02, [], [int(t) for t in ftype.results], 0))
        stacks.append(frames)
        frames_len = 1
    for stack in stacks:
        stack.flush()
    return replace(state, ctrls=1, nest=1, frames=frames_len, vals=0)


def run(reader: Any, p: Progress, c: Counts) -> tuple:
    """One run of the long body being read: checked (phase 0) or lowered (phase 1)."""
    st = reader.store.get_record((*reader.load, "body", "state"), BodyState)
    body = _Body(reader, st)
    sizes = items.Sizes(c.funcs, c.types, c.globals, c.tables, c.elems)
    instrs, nest, after = body.decode_run(c, sizes)
    done = not nest
    if st.failed:
        return _after_failure(body, p, c, nest, after, len(instrs), done)
    known = {ref: reader.fact(ref) for ref in items.body_references(-1, instrs, sizes)[1:]}
    ctx, types, func_types = items.context(
        known.__getitem__, sizes, mems=c.mems, imported_globals=c.imported_globals,
        datas=c.declared_data_count or 0, has_data_count=c.data_count > 0,
    )  # fmt: skip
    phase = "check" if st.phase == 0 else "lower"
    what = f"run: {phase} code {p.index} (function {st.func}) from instruction {st.at}"
    if st.phase == 0:
        try:
            lw = _check(body, ctx, (types, func_types), instrs, done)
        except InvalidModule as error:
            body.store.set((*body.base, "error"), str(error).encode())
            body.st = replace(body.st, failed=1)
            return _after_failure(body, p, c, nest, after, len(instrs), done)
    else:
        lw = body.lowerer((types, func_types), body.targets)
        code = lw.run(instrs, st.at)
        encoded, extras = encode_code(st.entry, code)
        for value in encoded:
            _fits(value, "an instruction", st.pos, "code")
        _radix_append(reader.store, (*reader.module, "code"), st.entry + st.pc, encoded, extras)
    for stack in (nest, lw.ctrls):
        stack.flush()
    new = replace(body.st, pos=after, at=st.at + len(instrs), pc=lw.pc, h=lw.h, dead=lw.dead_depth,
                  ordinals=lw.ordinals, ctrls=len(lw.ctrls), nest=len(nest))  # fmt: skip
    if not done:
        body.save(new)
        return p, c, what
    if st.phase == 0:  # the second pass starts over
        ftype, _ = body.func_record()
        again = replace(BodyState(), func=st.func, entry=st.entry, start=st.start, end=st.end,
                        pos=st.start, total=lw.pc, nlocals=st.nlocals, phase=1)  # fmt: skip
        body.save(_fresh_stacks(body, again, len(ftype.results), check=False))
        return p, c, what
    if lw.pc != st.total:  # both passes lower the same instructions: a loader bug if not
        raise RuntimeError(f"function {st.func}: lowered {lw.pc} instructions, then {st.total}")
    reader.store.delete((*reader.load, "body"))
    c = replace(c, codes=c.codes + 1, code_length=st.entry + lw.pc)
    return reader.next_entry(replace(p, stage=Stage.ENTRY), st.end), c, what


def _after_failure(body: _Body, p: Progress, c: Counts, nest: TreeStack, after: int,
                   count: int, done: bool) -> tuple:  # fmt: skip
    """A run after the check failed: only decoded, for a malformed instruction further on
    is reported first (as a module that fails to decode is, before any validation). At
    the end of the body, the check's error."""
    if done:
        raise InvalidModule(body.store.get((*body.base, "error")).decode())
    nest.flush()
    body.save(replace(body.st, pos=after, at=body.st.at + count, nest=len(nest)))
    return p, c, f"run: decode code {p.index} (function {body.st.func}) from {body.st.at}"


def _check(body: _Body, ctx: Any, views: tuple, instrs: list[Instr], done: bool) -> Lowerer:
    """Phase 0 of a run: type-check it, lower it without code, record the blocks' targets."""
    st = body.st
    _, local_types = body.func_record()
    vals = body.stack("vals", BYTES, "operand types")
    frames = body.stack("frames", FRAMES, "control frames")
    checker = BodyChecker(ctx)
    checker.start(local_types, [], vals, frames)
    final = checker.feed(st.func, instrs, st.at)
    if (final >= 0) != done:
        raise InvalidModule(f"function {st.func}: body must end with its final end")
    lw = body.lowerer(views, _unknown_targets)
    lw.run(instrs, st.at)
    for ctrl in lw.ended:
        value = Writer().zarith_n(ctrl.else_pc + 1).zarith_n(ctrl.end_pc + 1).getvalue()
        body.store.set(radix_path((*body.base, "targets"), ctrl.ordinal), value)
    for stack in (vals, frames):
        stack.flush()
    body.st = replace(st, vals=len(vals), frames=len(frames))
    return lw
