"""The ``show`` views of ``soru debug``: each turns part of the PVM state into lines of text.

Every view is a function ``(session, args) -> list[str]`` that raises
:class:`~soru.tools.debugger_session.DebuggerError` on bad arguments or when the state has
nothing to show (no kernel code running for ``memory``, ``stack``, ``values``, ``code``).

:class:`KernelView` reads the running kernel's code for people. The machine runs lowered code
(``soru.wasm.exec.lower``): every function laid end to end, each with an ``entry`` program
counter, and a frame stack holding only return program counters. So the function at a
program counter is found from the entry ranges, a caller is at the call instruction just
before its frame's return pc, and an instruction is printed as the module wrote it (lowering
again, with each lowered instruction's origin in the body) with the lowered form beside it
where lowering changed it (branches, ``if``, ``end``).
"""

from __future__ import annotations

import bisect
import weakref
from dataclasses import dataclass
from typing import Any

from soru.base.errors import SoruError
from soru.encoding.reader import Reader
from soru.pvm import vm
from soru.tools.debugger_session import DebuggerError, DebugSession, describe_message
from soru.wasm import opcodes
from soru.wasm.exec import lower
from soru.wasm.exec.machine import RESUME, Machine
from soru.wasm.opcodes import Imm
from soru.wasm.runtime import Instance, WasmFunc
from soru.wasm.syntax import ExternKind, Module

_CALL = opcodes.BY_NAME["call"].op

MAX_DUMP = 65536
"""Bytes ``show memory`` prints at most."""

KEY_PREVIEW = 1024
"""Bytes of a durable value ``show key`` prints."""

MESSAGES_SHOWN = 10
"""Messages of a queued level ``show inbox`` lists."""


# --- the running kernel's code ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrameView:
    """One activation of the call stack: the function and the instruction it is at."""

    func_index: int | None  # in the module's function index space; None: init program
    label: str
    pc: int
    offset: int
    instruction: str
    role: str  # "next" (about to run), "calls" (waits for a callee), "host call"


def function_names(module: Module) -> dict[int, str]:
    """Names for the function index space: imports, exports, then the ``name`` section."""
    names: dict[int, str] = {}
    funcs = [imp for imp in module.imports if imp.kind == ExternKind.FUNC]
    for index, imp in enumerate(funcs):
        names[index] = imp.name
    for export in module.exports:
        if export.kind == ExternKind.FUNC:
            names.setdefault(export.index, export.name)
    for custom in module.customs:
        if custom.name == "name":
            names.update(_name_section_functions(custom.data))
    return names


def _name_section_functions(data: bytes) -> dict[int, str]:
    """The function-names subsection (id 1) of a ``name`` custom section; {} if malformed."""
    found: dict[int, str] = {}
    try:
        reader = Reader(data)
        while not reader.at_end():
            ident, size = reader.u8(), reader.length()
            sub = reader.window(size)
            if ident == 1:
                for _ in range(sub.length()):
                    index = sub.u32()
                    found[index] = sub.byte_vec().decode("utf-8", errors="replace")
    except (SoruError, ValueError):
        return {}
    return found


def format_instruction(op: int, imm: Any, names: dict[int, str] | None = None) -> str:
    """A WebAssembly instruction in text form with its immediates (``i32.load offset=4``)."""
    info = opcodes.OPS.get(op)
    if info is None:
        return f"0x{op:x} {imm!r}"
    kind, text = info.imm, info.name
    if kind is Imm.NONE or kind is Imm.MEMORY:
        return text
    if kind is Imm.MEMARG:
        offset, align = imm.offset, imm.align
        return f"{text} offset={offset} align={1 << align}"
    if kind is Imm.I32 or kind is Imm.I64:
        bits = 32 if kind is Imm.I32 else 64
        value = int(imm)
        signed = value - (1 << bits) if value >> (bits - 1) else value
        return f"{text} {signed}"
    if kind is Imm.FUNC:
        name = (names or {}).get(int(imm))
        return f"{text} {imm}" + (f" <{name}>" if name else "")
    if kind is Imm.CALL_INDIRECT:
        type_index, table = imm
        return f"{text} (type {type_index}) table {table}"
    if kind is Imm.BR_TABLE:
        labels = " ".join(str(x) for x in imm.labels)
        return f"{text} {labels} {imm.default}".replace("  ", " ")
    if kind is Imm.BLOCKTYPE:
        if imm is None:
            return text
        return f"{text} (result {imm.text})" if hasattr(imm, "text") else f"{text} (type {imm})"
    if isinstance(imm, tuple):
        return " ".join([text, *(getattr(x, "text", str(x)) for x in imm)])
    return f"{text} {getattr(imm, 'text', imm)}"


def format_lowered(op: int, imm: Any, names: dict[int, str] | None = None) -> str:
    """An instruction of the machine's lowered code (targets are offsets in the function)."""
    if op in (lower.BR, lower.BR_IF):
        target, drop, arity = imm
        return f"{lower.PSEUDO_NAMES[op]} → {target} (keep {arity}, drop {drop})"
    if op == lower.BR_TABLE:
        entries, default = imm
        return f"br_table → {' '.join(str(e[0]) for e in entries)} default {default[0]}"
    if op == lower.RETURN:
        drop, arity = imm
        return f"return (keep {arity}, drop {drop})"
    if op in lower.PSEUDO_NAMES:
        return f"{lower.PSEUDO_NAMES[op]} {imm}" if op != lower.JUMP else f"jump → {imm}"
    if op in (0x20, 0x21, 0x22):  # locals are addressed from the top of the value stack
        return f"{opcodes.name(op)} [stack {imm}]"
    return format_instruction(op, imm, names)


class KernelView:
    """The running kernel's functions by program counter, with names and instruction text."""

    def __init__(self, module: Module, instance: Instance) -> None:
        self.module = module
        self.instance = instance
        self.names = function_names(module)
        self.index_of: dict[int, int] = {}  # id(WasmFunc) -> function index space
        self.ranges: list[tuple[int, int, WasmFunc]] = []
        for index, func in enumerate(instance.funcs):
            if isinstance(func, WasmFunc) and func.instance is instance:
                self.index_of[id(func)] = index
                self.ranges.append((func.entry, func.entry + len(func.code), func))
        self.ranges.sort(key=lambda r: r[0])
        self._origins: dict[int, list[int] | None] = {}

    def label(self, index: int) -> str:
        name = self.names.get(index)
        return f"func {index}" + (f" <{name}>" if name else "")

    def locate(self, pc: int) -> tuple[WasmFunc | None, int]:
        """The function holding ``pc`` and the offset in it; (None, pc) outside every one."""
        at = bisect.bisect_right(self.ranges, pc, key=lambda r: r[0]) - 1
        if at >= 0:
            entry, end, func = self.ranges[at]
            if pc < end:
                return func, pc - entry
        return None, pc

    def origins(self, func: WasmFunc) -> list[int] | None:
        """For each lowered instruction of ``func``, its index in the body (lowering again,
        once per function, with the origins kept)."""
        if id(func) not in self._origins:
            func_types = [f.type for f in self.instance.funcs]
            body = self.module.funcs[func.index]
            _, origins = lower.lower_function_traced(self.module, func_types, body)
            self._origins[id(func)] = origins if len(origins) == len(func.code) else None
        return self._origins[id(func)]

    def instruction(self, func: WasmFunc, offset: int) -> str:
        """The instruction at ``offset`` of ``func`` as written in the module, with the
        machine's lowered form beside it where lowering changed it."""
        op, imm = func.code[offset]
        lowered = format_lowered(op, imm, self.names)
        origins = self.origins(func)
        if origins is None:
            return lowered
        body_op, body_imm = self.module.funcs[func.index].body[origins[offset]]
        text = format_instruction(body_op, body_imm, self.names)
        return text if body_op == op else f"{text}  [{lowered}]"

    def at(self, pc: int, role: str) -> FrameView:
        func, offset = self.locate(pc)
        if func is None:
            return FrameView(None, "init program", pc, pc, "(instantiation code)", role)
        index = self.index_of[id(func)]
        return FrameView(index, self.label(index), pc, offset, self.instruction(func, offset), role)

    def host_frame(self, call_pc: int) -> FrameView:
        """The frame of a host function in progress, called from the call at ``call_pc``."""
        func, offset = self.locate(call_pc)
        index = None
        if func is not None:
            op, imm = func.code[offset]
            index = imm if op == _CALL else None
        label = "host function" if index is None else self.label(index)
        return FrameView(index, label, RESUME, 0, "(host call in progress)", "host call")

    def call_stack(self, machine: Machine) -> list[FrameView]:
        """Innermost first: derived from ``pc`` and the frames' return program counters (the
        caller of a frame is at the call instruction just before its return pc)."""
        views = []
        if machine.pc == RESUME:  # a host function in progress; its caller is one below
            call_pc = machine.pending_return - 1
            views.append(self.host_frame(call_pc))
            views.append(self.at(call_pc, "calls"))
        else:
            views.append(self.at(machine.pc, "next"))
        for return_pc in reversed(machine.frames[1:]):
            views.append(self.at(return_pc - 1, "calls"))
        return views


_VIEWS: weakref.WeakKeyDictionary[Machine, KernelView] = weakref.WeakKeyDictionary()


def kernel_view(session: DebugSession) -> tuple[Machine, KernelView]:
    """The running kernel's machine and its view; raises when no kernel code runs."""
    machine = session.running_machine()
    run = session.state.kernel
    if machine is None or run is None or run.instance is None or run.decoded is None:
        phase = f", phase {run.phase.value}" if run is not None else ""
        raise DebuggerError(
            f"no kernel code is running (tick state {session.state.tick_state.value}{phase}); "
            "step into Init or Eval first"
        )
    view = _VIEWS.get(machine)
    if view is None:
        assert run.decoded.module is not None
        view = _VIEWS[machine] = KernelView(run.decoded.module, run.instance)
    return machine, view


# --- the views ---------------------------------------------------------------------------


def parse_int(text: str, what: str, minimum: int = 0) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise DebuggerError(f"{what} must be an integer, not {text!r}") from None
    if value < minimum:
        raise DebuggerError(f"{what} must be at least {minimum}, not {value}")
    return value


def printable(data: bytes) -> str:
    """Bytes as text, with '.' for anything not printable ASCII."""
    return "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in data)


def hex_dump(data: bytes, address: int = 0) -> list[str]:
    """Lines of 16 bytes: address, hex, text."""
    lines = []
    for at in range(0, len(data), 16):
        row = data[at : at + 16]
        cells = " ".join(f"{b:02x}" for b in row)
        lines.append(f"  {address + at:08x}  {cells:<47}  |{printable(row)}|")
    return lines


def _bytes_line(data: bytes) -> str:
    return f'{data.hex()}  "{printable(data)}"' if data else "(empty)"


def needed_input(session: DebugSession) -> str:
    request = vm.input_request(session.state)
    if request.kind == "none":
        return "none (computing)"
    if request.kind == "initial":
        return "an inbox message (the first one)"
    if request.kind == "first_after":
        return f"the inbox message after level {request.level} message {request.counter}"
    if request.reveal[:1] == b"\x00":
        return f"reveal of preimage {request.reveal[1:].hex()}"
    if request.reveal == b"\x01":
        return "reveal of the rollup metadata"
    return f"reveal {request.reveal.hex()}"


def status(session: DebugSession, args: list[str]) -> list[str]:
    if args:
        raise DebuggerError("usage: show status")
    s = session.state
    left = s.ticks_to_snapshot
    if session.level_in_progress():
        level = session.current
        assert level is not None
        progress = f"{level.level} in progress ({level.fed} of {len(level.messages)} messages fed)"
    elif session.finished:
        progress = f"{session.finished[-1][0]} done at tick {session.finished[-1][1]}"
    else:
        progress = "none yet"
    if s.stuck is not None and not s.stuck.recoverable:
        call = "none: the PVM is stuck for good (inputs are still read, and dropped)"
    else:
        call = (
            f"began at tick {s.last_top_level_call}; {max(0, left)} tick(s) to its boundary, "
            f"the next call begins at tick {s.tick + max(0, left) + 1}"
        )
    run = s.kernel
    phase = "- (no kernel loaded)" if run is None else run.phase.value
    if run is not None and run.machine is not None:
        phase += f", machine tick {run.machine.ticks}"
    rows = [
        ("tick", str(s.tick)),
        ("tick state", s.tick_state.value),
        ("stuck", "no" if s.stuck is None else s.stuck.value),
        ("phase", phase),
        ("top-level call", call),
        ("reboot counter", str(s.reboot_counter)),
        ("input needed", needed_input(session)),
        ("level", f"{progress}; {len(session.queue)} level(s) queued"),
        ("outbox level", "none yet" if s.outbox_level is None else str(s.outbox_level)),
        ("state hash", session.state_hash()),
    ]
    width = max(len(name) for name, _ in rows)
    return [f"{name:<{width}}  {value}" for name, value in rows]


def inbox(session: DebugSession, args: list[str]) -> list[str]:
    if args:
        raise DebuggerError("usage: show inbox")
    lines = []
    if session.level_in_progress():
        level = session.current
        assert level is not None
        lines.append(
            f"level in progress: {level.level} ({level.fed} of {len(level.messages)} messages fed)"
        )
    lines.append(f"queued levels: {len(session.queue)}")
    for queued in session.queue:
        lines.append(f"  level {queued.level} ({len(queued.messages)} messages, {queued.origin})")
        for i, payload in enumerate(queued.messages[:MESSAGES_SHOWN]):
            lines.append(f"    {i}: {describe_message(payload)}")
        if len(queued.messages) > MESSAGES_SHOWN:
            lines.append(f"    … {len(queued.messages) - MESSAGES_SHOWN} more")
    buffer = session.state.inputs
    lines.append(f"PVM input buffer: {len(buffer)} message(s)")
    for message in buffer:
        lines.append(
            f"  level {message.level} message {message.counter}: "
            f"{describe_message(message.payload)}"
        )
    return lines


def outbox(session: DebugSession, args: list[str]) -> list[str]:
    if args[:2] == ["at", "level"]:  # the Octez debugger's spelling
        args = args[2:]
    if len(args) > 1:
        raise DebuggerError("usage: show outbox [LEVEL]")
    s = session.state
    if args:
        level = parse_int(args[0], "the level", 0)
    elif s.outbox_level is None:
        return ["no outbox yet (the PVM has read no Start_of_level)"]
    else:
        level = s.outbox_level
    messages = s.outboxes.get(level)
    if messages is None:
        known = ", ".join(str(lv) for lv in sorted(s.outboxes)) or "none"
        raise DebuggerError(f"no outbox at level {level} (outboxes: {known})")
    lines = [f"outbox of level {level}: {len(messages)} message(s)"]
    lines += [f"  {i}: {_bytes_line(m)}" for i, m in enumerate(messages)]
    return lines


def _key_text(text: str) -> str:
    return "" if text == "/" else text.rstrip("/") if text != "/" else text


def key(session: DebugSession, args: list[str]) -> list[str]:
    if len(args) != 1:
        raise DebuggerError("usage: show key KEY")
    durable = session.state.durable
    name = _key_text(args[0])
    value = durable.read_all(name)
    if value is None:
        children = durable.list_size(name)
        hint = f"; it has {children} sub-key(s): show keys {args[0]}" if children else ""
        return [f"no value at {args[0]}{hint}"]
    if len(value) <= 32:
        return [f"{args[0]}: {len(value)} byte(s)", f"  {_bytes_line(value)}"]
    lines = [f"{args[0]}: {len(value)} bytes"] + hex_dump(value[:KEY_PREVIEW])
    if len(value) > KEY_PREVIEW:
        lines.append(f"  … {len(value) - KEY_PREVIEW} more bytes")
    return lines


def keys(session: DebugSession, args: list[str]) -> list[str]:
    if len(args) > 1:
        raise DebuggerError("usage: show keys [KEY]")
    shown = args[0] if args else "/"
    name = _key_text(shown)
    durable = session.state.durable
    if not durable.exists(name):
        raise DebuggerError(f"nothing at {shown}")
    children = sorted(durable.nth_key(name, i) for i in range(durable.list_size(name)))
    lines = [f"{shown}: {len(children)} entr{'y' if len(children) == 1 else 'ies'}"]
    for child in children:
        if child == "":
            size = len(durable.read_all(name) or b"")
            lines.append(f"  (its own value, {size} bytes)")
            continue
        path = f"{name}/{child}"
        notes = []
        if durable.has_value(path):
            notes.append(f"value, {len(durable.read_all(path) or b'')} bytes")
        subkeys = durable.list_size(path) - (1 if durable.has_value(path) else 0)
        if subkeys:
            notes.append(f"{subkeys} sub-key(s)")
        lines.append(f"  {child}{'/' if subkeys else ''}  ({', '.join(notes)})")
    return lines


def memory(session: DebugSession, args: list[str]) -> list[str]:
    if len(args) == 5 and args[0] == "at" and args[2] == "for" and args[4] == "bytes":
        args = [args[1], args[3]]  # the Octez debugger's spelling
    if len(args) != 2:
        raise DebuggerError("usage: show memory ADDR LEN (or: show memory at ADDR for LEN bytes)")
    address = parse_int(args[0], "the address", 0)
    length = parse_int(args[1], "the length", 1)
    run = session.state.kernel
    if run is None or run.instance is None or not run.instance.mems:
        raise DebuggerError(
            f"no kernel memory now (tick state {session.state.tick_state.value}): "
            "it exists from the Init tick that allocates it to the end of kernel_run"
        )
    data = run.instance.mems[0].data
    if length > MAX_DUMP:
        raise DebuggerError(f"at most {MAX_DUMP} bytes at once")
    if address + length > len(data):
        raise DebuggerError(
            f"{address:#x}+{length} is past the end of memory ({len(data):#x} bytes)"
        )
    return hex_dump(bytes(data[address : address + length]), address)


def stack(session: DebugSession, args: list[str]) -> list[str]:
    if args:
        raise DebuggerError("usage: show stack")
    machine, view = kernel_view(session)
    frames = view.call_stack(machine)
    lines = [f"call stack: {len(frames)} frame(s), innermost first"]
    for depth, frame in enumerate(frames):
        if frame.role == "host call":
            lines.append(f"  #{depth} {frame.label}: host call in progress")
        else:
            lines.append(
                f"  #{depth} {frame.label} +{frame.offset}: {frame.instruction}  ({frame.role})"
            )
    return lines


def values(session: DebugSession, args: list[str]) -> list[str]:
    if len(args) > 1:
        raise DebuggerError("usage: show values [N]")
    count = parse_int(args[0], "the number of values", 1) if args else 8
    machine, _view = kernel_view(session)
    stack_values = machine.stack
    lines = [f"value stack: {len(stack_values)} value(s) (locals and operands), top first"]
    for i, value in enumerate(reversed(stack_values[-count:])):
        shown = "null" if value is None else f"{value} ({value:#x})"
        lines.append(f"  [{i}] {shown}")
    if len(stack_values) > count:
        lines.append(f"  … {len(stack_values) - count} more")
    return lines


def code(session: DebugSession, args: list[str]) -> list[str]:
    if len(args) > 1:
        raise DebuggerError("usage: show code [N]")
    around = parse_int(args[0], "the number of instructions", 0) if args else 5
    machine, view = kernel_view(session)
    frame = view.call_stack(machine)[0]
    if frame.role == "host call":
        frame = view.call_stack(machine)[1]
    func, offset = view.locate(frame.pc)
    if func is None:
        return [f"{frame.label}: {frame.instruction}"]
    first, last = max(0, offset - around), min(len(func.code) - 1, offset + around)
    lines = [f"{frame.label}, instructions {first}–{last} of {len(func.code)}:"]
    for i in range(first, last + 1):
        mark = "=>" if i == offset else "  "
        lines.append(f"  {mark} {i:4}  {view.instruction(func, i)}")
    return lines
