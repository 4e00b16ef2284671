"""The ``show`` views of ``soru debug``: each turns part of the PVM state into lines of text.

Every view is a function ``(session, args) -> list[str]`` that raises
:class:`~soru.tools.debugger_session.DebuggerError` on bad arguments or when the state has
nothing to show (no kernel code running for ``memory``, ``stack``, ``values``, ``code``).
"""

from __future__ import annotations

from soru.pvm import vm
from soru.tools.debugger_session import DebuggerError, DebugSession, describe_message

MAX_DUMP = 65536
"""Bytes ``show memory`` prints at most."""

KEY_PREVIEW = 1024
"""Bytes of a durable value ``show key`` prints."""

MESSAGES_SHOWN = 10
"""Messages of a queued level ``show inbox`` lists."""


def _int(text: str, what: str, minimum: int = 0) -> int:
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
    run = s.kernel
    phase = "- (no kernel loaded)" if run is None else run.phase.value
    if run is not None and run.machine is not None:
        phase += f", machine tick {run.machine.ticks}"
    rows = [
        ("tick", str(s.tick)),
        ("tick state", s.tick_state.value),
        ("stuck", "no" if s.stuck is None else s.stuck.value),
        ("phase", phase),
        (
            "top-level call",
            f"began at tick {s.last_top_level_call}; {max(0, left)} tick(s) to its boundary, "
            f"the next call begins at tick {s.tick + max(0, left) + 1}",
        ),
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
        level = _int(args[0], "the level", 0)
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
    address = _int(args[0], "the address", 0)
    length = _int(args[1], "the length", 1)
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
    machine, view = session.kernel_view()
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
    count = _int(args[0], "the number of values", 1) if args else 8
    machine, _view = session.kernel_view()
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
    around = _int(args[0], "the number of instructions", 0) if args else 5
    machine, view = session.kernel_view()
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
