"""The one mapping of the PVM state onto the Merkle tree; its root is the state hash.

Layout, version ``soru-pvm-state/2`` (integers are unsigned big-endian, 8 bytes unless
said; a *vector* is a directory whose own value is its length, u64, with children named
``0``, ``1``… holding the elements)::

    version                      b"soru-pvm-state/2"
    durable/…                    durable storage (``soru.pvm.durable`` layout), grafted
    pvm/version                  PVM version, ASCII ("2.0.0-r3")
    pvm/tick                     current tick
    pvm/tick_state               tick state name, ASCII ("collect", "eval"…)
    pvm/stuck                    stuck reason name, ASCII (absent when not stuck)
    pvm/last_top_level_call, pvm/max_nb_ticks, pvm/reboot_counter
    pvm/last_input               level u32 ‖ counter u64 (absent before the first input)
    pvm/inputs, pvm/inputs_read  the input buffer: its length, and how many inputs the kernel
                                 has read since it was last emptied; the unread input j is
                                 at pvm/inputs/<inputs_read + j>, with children info (level
                                 u32 ‖ counter u64) and payload (the message bytes)
    pvm/outbox_level             level of the current outbox (absent before the first SOL)
    pvm/outboxes/<level>         vector of the messages written at that level
    wasm/phase                   the loading phase of the running top-level call
    wasm/phase_left              ticks left in it (absent during Decode: the loader knows)
    wasm/decode_steps            loader steps made (``soru.pvm.loader``)
    wasm/kernel                  the kernel the call loads: the durable subtree of
                                 /kernel/boot.wasm, grafted at Snapshot (an O(1) copy)
    wasm/load/…, wasm/module/…   the incremental loader's state and the module it builds:
                                 code (a radix vector), functions, types, imports, globals,
                                 exports, segments — the initialisation program is
                                 appended to the code when Init allocates the module
    wasm/machine/…               the WebAssembly machine (from Init's allocation on):
        pc, status, pending_return, pending (a reveal request), stack and frames
        (vectors of values), memory (byte length, and children <i> for each 1024-byte
        chunk that is not all zeros, trailing zeros dropped), globals (vector), tables/<t>
        and elems/<i> (vectors of references), datas/<i> (chunked bytes)

A value is encoded as ``b""`` for a null reference, else 8 bytes. Every part is a function
of the state's content only, so equal states have equal hashes on any machine. Encoding the
lowered code of a kernel is cached by kernel content, so hashing a running state costs the
size of its data (memory, stack), not of its code.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, cast

from soru.base.errors import SoruError
from soru.base.hashes import Hash
from soru.crypto import base58
from soru.encoding.writer import Writer
from soru.merkle import Tree
from soru.merkle.chunked import read_chunked, write_chunked
from soru.pvm.state import InputMessage, PvmState, StuckReason, TickState
from soru.wasm.exec.lower import BR_TABLE
from soru.wasm.runtime import FuncInst, HostFunc, WasmFunc
from soru.wasm.syntax import FuncType, ValType

if TYPE_CHECKING:
    from soru.pvm.kernel import KernelRun
    from soru.wasm.exec.machine import Machine

LAYOUT_VERSION = b"soru-pvm-state/2"
"""The version of this layout *and* of the tick semantics it records (what a Decode tick
does, how code is kept): a state of another version is refused by :func:`load_state` rather
than misread. Version 2: a function's locals run-length encoded, a ``br_table``'s entries in
pages below its code element, long function bodies loaded in runs (more Decode ticks)."""
MEMORY_CHUNK = 1024

Items = dict[tuple[str, ...], bytes]


def u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


def encode_value(value: int | None) -> bytes:
    """A machine value (an unsigned bit pattern, or a null reference)."""
    return b"" if value is None else value.to_bytes(8, "big")


def encode_imm(imm: object, out: Writer) -> None:
    """Canonical encoding of an instruction's immediates: None, an int, or a tuple of them."""
    if imm is None:
        out.u8(0)
    elif isinstance(imm, int):
        out.u8(1).zarith_z(int(imm))
    elif isinstance(imm, tuple):
        out.u8(2).zarith_n(len(imm))
        for item in imm:
            encode_imm(item, out)
    else:
        raise TypeError(f"cannot encode immediate {imm!r}")


def encode_instr(op: int, imm: object) -> bytes:
    out = Writer().zarith_n(op)
    encode_imm(imm, out)
    return out.getvalue()


BR_TABLE_PAGE = 64
"""Entries of a lowered ``br_table`` kept in one page (see :func:`encode_code`)."""

CodeExtras = dict[int, dict[tuple[str, ...], bytes]]
"""Paths kept below some code elements (by index in the program), with their values."""


def encode_code(base: int, program: Iterable[tuple[int, object]]) -> tuple[list[bytes], CodeExtras]:
    """The code elements of a lowered ``program`` of the function whose code starts at
    ``base``: each ``zarith base ‖ op ‖ immediates`` (:func:`encode_instr`). A ``br_table``
    keeps only its number of entries and its default there; its entries ``(target, drop,
    arity)`` go below the element, :data:`BR_TABLE_PAGE` to a page at ``t/<k>`` (an
    immediate tuple of entries) — so a table of any size is stored in bounded values, and a
    tick that branches through it reads one page, not the table."""
    prefix = Writer().zarith_n(base).getvalue()
    values: list[bytes] = []
    extras: CodeExtras = {}
    for i, (op, imm) in enumerate(program):
        if op == BR_TABLE:
            entries, default = cast(tuple, imm)
            pages: dict[tuple[str, ...], bytes] = {}
            for k in range(0, len(entries), BR_TABLE_PAGE):
                page = Writer()
                encode_imm(tuple(entries[k : k + BR_TABLE_PAGE]), page)
                pages[("t", str(k // BR_TABLE_PAGE))] = page.getvalue()
            extras[i] = pages
            imm = (len(entries), default)
        values.append(prefix + encode_instr(op, imm))
    return values, extras


def _vector(items: Items, base: tuple[str, ...], values: Iterable[bytes]) -> None:
    count = 0
    for count, value in enumerate(values, 1):
        items[(*base, str(count - 1))] = value
    items[base] = u64(count)


def _pvm_items(s: PvmState) -> Items:
    items: Items = {
        ("version",): LAYOUT_VERSION,
        ("pvm", "version"): s.version.encode("ascii"),
        ("pvm", "tick"): u64(s.tick),
        ("pvm", "tick_state"): s.tick_state.value.encode("ascii"),
        ("pvm", "last_top_level_call"): u64(s.last_top_level_call),
        ("pvm", "max_nb_ticks"): u64(s.max_nb_ticks),
        ("pvm", "reboot_counter"): u64(s.reboot_counter),
    }
    if s.stuck is not None:
        items[("pvm", "stuck")] = s.stuck.value.encode("ascii")
    if s.last_input is not None:
        items[("pvm", "last_input")] = s.last_input[0].to_bytes(4, "big") + u64(s.last_input[1])
    for i, message in enumerate(s.inputs, s.inputs_read):
        info = message.level.to_bytes(4, "big") + u64(message.counter)
        items[("pvm", "inputs", str(i), "info")] = info
        items[("pvm", "inputs", str(i), "payload")] = message.payload
    items[("pvm", "inputs")] = u64(len(s.inputs))
    items[("pvm", "inputs_read")] = u64(s.inputs_read)
    if s.outbox_level is not None:
        items[("pvm", "outbox_level")] = u64(s.outbox_level)
    for level, messages in s.outboxes.items():
        _vector(items, ("pvm", "outboxes", str(level)), messages)
    return items


def _memory_items(items: Items, base: tuple[str, ...], data: bytes | bytearray) -> None:
    items[base] = u64(len(data))
    view = memoryview(data)
    for index, start in enumerate(range(0, len(data), MEMORY_CHUNK)):
        chunk = bytes(view[start : start + MEMORY_CHUNK]).rstrip(b"\x00")
        if chunk:
            items[(*base, str(index))] = chunk


def _machine_items(machine: Machine) -> Items:
    items: Items = {
        ("pc",): u64(machine.pc),
        ("status",): machine.status.value.encode("ascii"),
        ("pending_return",): u64(machine.pending_return),
    }
    pending = machine.pending
    if pending is not None:
        items[("pending",)] = pending.encode()  # type: ignore[attr-defined]
    _vector(items, ("stack",), (encode_value(v) for v in machine.stack))
    _vector(items, ("frames",), (u64(pc) for pc in machine.frames))
    return items


def _instance_items(items: Items, run: KernelRun) -> list[tuple[tuple[str, ...], bytes]]:
    """The instance's containers; returns the (path, bytes) of its data segments."""
    instance = run.instance
    assert instance is not None
    _memory_items(items, ("memory",), instance.mems[0].data if instance.mems else b"")
    _vector(items, ("globals",), (encode_value(g.value) for g in instance.globals))
    for t, table in enumerate(instance.tables):
        _vector(items, ("tables", str(t)), (encode_value(r) for r in table.elements))
    for e, elem in enumerate(instance.elems):  # the items are grafted by _wasm_tree
        items[("elems", str(e))] = u64(len(elem.refs))
    return [(("datas", str(d)), bytes(seg.data)) for d, seg in enumerate(instance.datas)]


def encode_functype(ft: FuncType) -> bytes:
    """``n params ‖ param types ‖ n results ‖ result types`` (zarith counts, type bytes)."""
    out = Writer().zarith_n(len(ft.params)).raw(bytes(ft.params))
    return out.zarith_n(len(ft.results)).raw(bytes(ft.results)).getvalue()


def decode_functype(reader) -> FuncType:
    """Inverse of :func:`encode_functype` (reads from a ``soru.encoding.reader.Reader``)."""
    params = tuple(ValType(b) for b in reader.read(reader.zarith_n()))
    results = tuple(ValType(b) for b in reader.read(reader.zarith_n()))
    return FuncType(params, results)


def encode_locals(local_types: Sequence[int]) -> bytes:
    """A function's declared locals, run-length encoded: ``n runs ‖ n × (count ‖ type)``
    (zarith, type byte) — 50,000 locals of one type take 5 bytes."""
    runs: list[list[int]] = []
    for t in local_types:
        if runs and runs[-1][1] == t:
            runs[-1][0] += 1
        else:
            runs.append([1, int(t)])
    out = Writer().zarith_n(len(runs))
    for count, t in runs:
        out.zarith_n(count).u8(t)
    return out.getvalue()


_VALTYPES = {int(t): t for t in ValType}


def decode_local_runs(reader) -> list[tuple[int, ValType]]:
    """The runs ``(count, type)`` of :func:`encode_locals`."""
    runs = []
    for _ in range(reader.zarith_n()):
        count, code = reader.zarith_n(), reader.u8()
        valtype = _VALTYPES.get(code)
        if valtype is None:
            raise LayoutError(f"unknown value type {code:#x} among a function's locals")
        runs.append((count, valtype))
    return runs


def decode_locals(reader) -> tuple[ValType, ...]:
    """Inverse of :func:`encode_locals`."""
    out: list[ValType] = []
    for count, valtype in decode_local_runs(reader):
        out.extend((valtype,) * count)
    return tuple(out)


def encode_func(func: FuncInst) -> bytes:
    """A function of the machine: ``0 ‖ entry ‖ type ‖ locals`` (:func:`encode_locals`) or
    ``1 ‖ host name``."""
    if isinstance(func, WasmFunc):
        out = Writer().u8(0).zarith_n(func.entry).raw(encode_functype(func.type))
        return out.raw(encode_locals(func.locals)).getvalue()
    if isinstance(func, HostFunc):
        return b"\x01" + func.name.encode("ascii")
    raise TypeError(f"cannot encode {func!r}")


def decode_wasm_func(reader) -> tuple[int, FuncType, tuple[ValType, ...]]:
    """``(entry, type, locals)`` of an encoded function, after its ``0`` byte."""
    entry = reader.zarith_n()
    ftype = decode_functype(reader)
    return entry, ftype, decode_locals(reader)


def _limit(maximum: int | None) -> bytes:
    return b"" if maximum is None else u64(maximum)


_LOADED: OrderedDict[bytes, Tree] = OrderedDict()


def _cached(key: bytes, make) -> Tree:
    found = _LOADED.get(key)
    if found is None:
        found = _LOADED[key] = make()
        if len(_LOADED) > 8:
            _LOADED.popitem(last=False)
    else:
        _LOADED.move_to_end(key)
    return found


def _loader_tree(run: KernelRun) -> Tree:
    """The loader's tree (``load/…`` and ``module/…``, see ``soru.pvm.loader``) after the
    decode steps ``run`` has made: rebuilt step by step during Decode, cached once loaded."""
    from soru.pvm.lazy import Cell
    from soru.pvm.loader import load_all, load_step

    digest = hashlib.blake2b(run.kernel, digest_size=32).digest()
    if run.phase.value != "decode":
        return _cached(b"loaded" + digest, lambda: load_all(run.kernel, root=()))
    kernel, steps = run.kernel, run.decode_steps
    done, tree = _DECODING.get(digest, (0, Tree.empty()))
    if done > steps:  # asked for an earlier step: start again
        done, tree = 0, Tree.empty()
    cell = Cell(tree)
    for _ in range(steps - done):
        load_step(cell, lambda offset, size: kernel[offset : offset + size], root=())
    _DECODING[digest] = (steps, cell.tree)
    if len(_DECODING) > 8:
        del _DECODING[next(iter(_DECODING))]
    return cell.tree


_DECODING: dict[bytes, tuple[int, Tree]] = {}
"""The last loader tree rebuilt for each kernel, by steps made: hashing tick after tick of a
Decode phase steps forward from it instead of from the start."""


def _with_init_program(run: KernelRun, loaded: Tree) -> Tree:
    """The loaded module with the machine's initialisation program appended to its code
    (as the allocation tick appends it), cached by kernel."""
    from soru.pvm.lazy import Cell
    from soru.pvm.loader_state import append_code

    machine = run.machine
    assert machine is not None
    length = int.from_bytes(loaded.get(("module", "code")) or b"", "big")

    def build() -> Tree:
        program = [(op, imm) for op, imm, _base in machine.source[length:]]
        if not program:
            return loaded
        cell = Cell(loaded)
        append_code(cell, ("module", "code"), program)
        return cell.tree

    digest = hashlib.blake2b(run.kernel, digest_size=32).digest()
    return _cached(b"running" + digest, build)


def _graft_elems(tree: Tree, loaded: Tree, run: KernelRun) -> Tree:
    """An element segment not dropped holds its items *unevaluated*: the loader's radix
    vector of constant expressions, grafted (an O(1) copy); ``table.init`` evaluates the
    ones it copies. So allocating a module costs the same whatever its segments' sizes."""
    assert run.instance is not None
    for e, elem in enumerate(run.instance.elems):
        items = loaded.subtree(("module", "elems", str(e), "items"))
        if elem.refs and items is not None:
            tree = tree.graft(("machine", "elems", str(e)), items)
            tree = tree.set(("machine", "elems", str(e)), u64(len(elem.refs)))
    return tree


def _wasm_tree(run: KernelRun) -> Tree:
    items: Items = {
        ("phase",): run.phase.value.encode("ascii"),
        ("decode_steps",): u64(run.decode_steps),
    }
    if run.phase.value != "decode":
        items[("phase_left",)] = u64(run.phase_left)
    data_segments: list[tuple[tuple[str, ...], bytes]] = []
    if run.machine is not None and run.instance is not None:
        machine_items = _machine_items(run.machine)
        data_segments = _instance_items(machine_items, run)
        items.update({("machine", *path): value for path, value in machine_items.items()})
    tree = Tree.from_items(items)
    if run.snapshot is not None:
        tree = tree.graft(("kernel",), run.snapshot)
    for path, data in data_segments:
        tree = write_chunked(tree, ("machine", *path), data)
    loaded = _loader_tree(run)
    if run.machine is not None and run.instance is not None:
        tree = _graft_elems(tree, loaded, run)
        loaded = _with_init_program(run, loaded)
    for part in ("load", "module"):
        sub = loaded.subtree((part,))
        if sub is not None:
            tree = tree.graft((part,), sub)
    return tree


def state_tree(s: PvmState) -> Tree:
    """The Merkle tree of the whole state ``s`` (see the module docstring)."""
    tree = Tree.from_items(_pvm_items(s)).graft(("durable",), s.durable.tree)
    if s.kernel is not None:
        tree = tree.graft(("wasm",), _wasm_tree(s.kernel))
    return tree


def state_hash(s: PvmState) -> Hash:
    """The state hash: the root of :func:`state_tree`."""
    return state_tree(s).hash


def show_state_hash(h: bytes) -> str:
    """A state hash printed as Tezos does, ``srs1…``."""
    return base58.encode(base58.Kind.STATE_HASH, bytes(h))


def machine_values(values: Sequence[int | None]) -> list[bytes]:
    """Encoded values, in order (for tests and the debugger)."""
    return [encode_value(v) for v in values]


# --- reading a state back ------------------------------------------------------------------


class LayoutError(SoruError):
    """A tree that is not a PVM state of this layout version."""


def _int(tree: Tree, path: tuple[str, ...], default: int | None = None) -> int:
    raw = tree.get(path)
    if raw is None:
        if default is None:
            raise LayoutError(f"missing {'/'.join(path)}")
        return default
    return int.from_bytes(raw, "big")


def _text(tree: Tree, path: tuple[str, ...]) -> str | None:
    raw = tree.get(path)
    return None if raw is None else raw.decode("ascii")


def decode_value(raw: bytes) -> int | None:
    return None if raw == b"" else int.from_bytes(raw, "big")


def _read_vector(tree: Tree, path: tuple[str, ...]) -> list[bytes]:
    count = _int(tree, path, 0)
    out = []
    for i in range(count):
        raw = tree.get((*path, str(i)))
        if raw is None:
            raise LayoutError(f"missing element {i} of {'/'.join(path)}")
        out.append(raw)
    return out


def _read_memory(tree: Tree, path: tuple[str, ...]) -> bytearray:
    size = _int(tree, path, 0)
    data = bytearray(size)
    for name in tree.children(path):
        start = int(name) * MEMORY_CHUNK
        chunk = tree.get((*path, name)) or b""
        data[start : start + len(chunk)] = chunk
    return data


def _load_pvm(tree: Tree, s: PvmState) -> None:
    s.version = _text(tree, ("pvm", "version")) or s.version
    s.tick = _int(tree, ("pvm", "tick"))
    s.tick_state = TickState(_text(tree, ("pvm", "tick_state")))
    stuck = _text(tree, ("pvm", "stuck"))
    s.stuck = StuckReason(stuck) if stuck is not None else None
    s.last_top_level_call = _int(tree, ("pvm", "last_top_level_call"))
    s.max_nb_ticks = _int(tree, ("pvm", "max_nb_ticks"))
    s.reboot_counter = _int(tree, ("pvm", "reboot_counter"))
    last = tree.get(("pvm", "last_input"))
    if last is not None:
        s.last_input = (int.from_bytes(last[:4], "big"), int.from_bytes(last[4:], "big"))
    s.inputs_read = _int(tree, ("pvm", "inputs_read"), 0)
    for n in range(_int(tree, ("pvm", "inputs"), 0)):
        i = s.inputs_read + n
        info = tree.get(("pvm", "inputs", str(i), "info")) or b""
        payload = tree.get(("pvm", "inputs", str(i), "payload"))
        if len(info) != 12 or payload is None:
            raise LayoutError(f"malformed input {i}")
        level, counter = int.from_bytes(info[:4], "big"), int.from_bytes(info[4:], "big")
        s.inputs.append(InputMessage(level, counter, payload))
    level_raw = tree.get(("pvm", "outbox_level"))
    s.outbox_level = None if level_raw is None else int.from_bytes(level_raw, "big")
    if tree.has(("pvm", "outboxes")):
        for name in sorted(tree.children(("pvm", "outboxes")), key=int):
            s.outboxes[int(name)] = _read_vector(tree, ("pvm", "outboxes", name))


def _load_machine(tree: Tree, run: KernelRun) -> None:
    """Rebuild the machine of ``run`` (allocated afresh) and restore its contents."""
    from soru.pvm.host_functions import RevealRequest
    from soru.wasm.exec.machine import RunStatus

    if run.allocate() is not None:
        raise LayoutError("the stored kernel no longer allocates")
    machine, instance = run.machine, run.instance
    assert machine is not None and instance is not None
    m = ("machine",)
    if instance.mems:
        instance.mems[0].data[:] = _read_memory(tree, (*m, "memory"))
    for g, raw in zip(instance.globals, _read_vector(tree, (*m, "globals")), strict=True):
        g.value = decode_value(raw)
    for t, table in enumerate(instance.tables):
        table.elements[:] = [decode_value(r) for r in _read_vector(tree, (*m, "tables", str(t)))]
    for e, elem in enumerate(instance.elems):  # items as allocated, unless dropped
        if _int(tree, (*m, "elems", str(e)), 0) == 0:
            elem.refs = []
    for d, seg in enumerate(instance.datas):
        seg.data = read_chunked(tree, (*m, "datas", str(d))) or b""
    machine.stack[:] = [decode_value(v) for v in _read_vector(tree, (*m, "stack"))]
    machine.frames[:] = [int.from_bytes(f, "big") for f in _read_vector(tree, (*m, "frames"))]
    machine.pc = _int(tree, (*m, "pc"))
    machine.status = RunStatus(_text(tree, (*m, "status")))
    machine.pending_return = _int(tree, (*m, "pending_return"))
    pending = tree.get((*m, "pending"))
    machine.pending = None if pending is None else RevealRequest.decode(pending)


def _load_kernel(tree: Tree, s: PvmState) -> KernelRun:
    from soru.pvm.durable import Durable
    from soru.pvm.kernel import KERNEL_KEY, KernelRun, Phase, decode_kernel

    snapshot = tree.subtree(("kernel",))
    kernel = b""
    if snapshot is not None:
        durable = Durable(Tree.empty().graft(KERNEL_KEY, snapshot))
        kernel = durable.read_all("/kernel/boot.wasm") or b""
    decoded = decode_kernel(kernel)
    phase = Phase(_text(tree, ("phase",)))
    run = KernelRun(kernel, decoded, phase, snapshot=snapshot)
    if phase is Phase.DECODE:
        run.phase_left = decoded.decode_ticks - _int(tree, ("decode_steps",))
        return run
    past_link = phase is not Phase.LINK
    if past_link and run.finish_link(s, s.version) is not None:
        raise LayoutError("the stored kernel no longer links")
    if tree.has(("machine",)):
        _load_machine(tree, run)
    run.phase = phase  # after allocation, which resets it
    run.phase_left = _int(tree, ("phase_left",))
    return run


def load_state(tree: Tree) -> PvmState:
    """The state whose tree is ``tree`` (the inverse of :func:`state_tree`)."""
    from soru.pvm.durable import Durable

    if tree.get(("version",)) != LAYOUT_VERSION:
        raise LayoutError(f"not a {LAYOUT_VERSION.decode()} state")
    s = PvmState(durable=Durable(tree.subtree(("durable",)) or Tree.empty()))
    _load_pvm(tree, s)
    wasm = tree.subtree(("wasm",))
    if wasm is not None:
        s.kernel = _load_kernel(wasm, s)
    return s


def decode_imm(reader) -> object:
    """Inverse of :func:`encode_imm` (strict: unknown tags are a LayoutError)."""
    tag = reader.u8()
    if tag == 0:
        return None
    if tag == 1:
        return reader.zarith_z()
    if tag == 2:
        return tuple(decode_imm(reader) for _ in range(reader.zarith_n()))
    raise LayoutError(f"unknown immediate tag {tag}")
