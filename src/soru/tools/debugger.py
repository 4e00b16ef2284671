"""``soru debug``: a step debugger for kernels, after ``octez-smart-rollup-wasm-debugger``.

A session originates a rollup from a kernel and reads commands — typed at a prompt, piped on
stdin, or from a ``--script`` file, one per line, ``#`` starting a comment — and prints what
each does. Scripted and piped commands are echoed (``> step tick``) so a transcript reads
well. The commands (``help`` lists them) queue inbox levels, step the PVM by ticks, top-level
calls, levels or to a breakpoint, and show the state: status, inbox, outbox, durable keys,
and — while kernel code runs — its memory, call stack, value stack and code.

Reveals are answered automatically from the preimage directory and the rollup's metadata;
each answer is reported. A command that cannot be carried out prints ``error: …`` and the
session goes on; a bug in soru prints one ``internal error: …`` line and the session goes on.
The stepping engine is ``soru.tools.debugger_session``; the views, ``soru.tools.debugger_show``.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from soru.base.errors import SoruError
from soru.crypto.addresses import RollupAddress
from soru.pvm import vm
from soru.pvm.reveals import RevealProvider
from soru.tools import debugger_show
from soru.tools.debugger_session import (
    DebuggerError,
    DebugSession,
    Goal,
    GoalKind,
    Stop,
    load_kernel,
)
from soru.tools.debugger_show import parse_int
from soru.tools.inputs_file import DEFAULT_ROLLUP, load_levels
from soru.wasm.syntax import ExternKind

PROMPT = "(soru debug) "
HELP = [
    ("load inputs FILE", "queue the levels of an inbox file (the Octez debugger's JSON)"),
    ("load inputs", "feed the next queued level into the PVM's input buffer now"),
    ("step tick [N]", "make N ticks (1 by default), feeding queued inputs as needed"),
    ("step kernel_run", "run to the end of the current top-level call"),
    ("step result", "run to the end of the level in progress (the PVM asks for more input)"),
    ("step inbox", "finish the level in progress, then feed and settle the next queued level"),
    ("continue", "run until a breakpoint, or until every queued level is processed"),
    ("break function N|NAME", "stop when function N is entered (a host function: called)"),
    ("break tick T", "stop when the PVM reaches tick T"),
    ("break", "list the breakpoints"),
    ("delete N", "remove breakpoint N"),
    ("show status", "tick, tick state, phase, boundary, reboots, input needed, state hash"),
    ("show inbox", "queued levels and the PVM's input buffer"),
    ("show outbox [LEVEL]", "the outbox of LEVEL (by default the current one)"),
    ("show key KEY", "a durable value, as hex and text"),
    ("show keys [KEY]", "the sub-keys of KEY (by default the root)"),
    ("show memory ADDR LEN", "hex dump of the kernel's memory (or: at ADDR for LEN bytes)"),
    ("show stack", "the kernel's call stack, innermost first"),
    ("show values [N]", "the top N values of the value stack (8 by default)"),
    ("show code [N]", "N instructions before and after the current one (5 by default)"),
    ("reveal preimage HEX", "answer a pending preimage reveal with these bytes"),
    ("help", "this list"),
    ("quit", "end the session"),
]


class Debugger:
    """The command language over a :class:`DebugSession`; prints to ``out``."""

    def __init__(self, session: DebugSession, out: TextIO) -> None:
        self.session = session
        self.out = out
        session.on_event = self.say
        self.failures = 0
        self._handlers: dict[str, Callable[[list[str]], None]] = {
            "load": self.cmd_load,
            "step": self.cmd_step,
            "continue": self.cmd_continue,
            "break": self.cmd_break,
            "delete": self.cmd_delete,
            "show": self.cmd_show,
            "reveal": self.cmd_reveal,
            "help": self.cmd_help,
        }

    def say(self, line: str = "") -> None:
        print(line, file=self.out, flush=True)

    # --- the loop --------------------------------------------------------------------------
    def execute(self, line: str) -> bool:
        """Carry out one command line; False when the session should end."""
        words = line.split("#", 1)[0].split()
        if not words:
            return True
        if words[0] in ("quit", "exit"):
            return False
        try:
            handler = self._handlers.get(words[0])
            if handler is None:
                raise DebuggerError(f"unknown command {words[0]!r} (help lists the commands)")
            handler(words[1:])
        except SoruError as exc:
            self.failures += 1
            self.say(f"error: {exc}")
        except KeyboardInterrupt:
            self.say("interrupted")
        except Exception as exc:  # noqa: BLE001 - a bug in soru must not end the session
            self.failures += 1
            self.say(f"internal error: {type(exc).__name__}: {exc}")
        return True

    def run_lines(self, lines: Iterable[str], *, echo: bool) -> None:
        for raw in lines:
            line = raw.rstrip("\n")
            if not line.split("#", 1)[0].strip():
                continue
            if echo:
                self.say(f"> {line.strip()}")
            if not self.execute(line):
                return

    def interact(self) -> None:
        try:
            import readline  # noqa: F401 - line editing and history at the prompt
        except ImportError:  # pragma: no cover
            pass
        while True:
            try:
                line = input(PROMPT)
            except EOFError:
                self.say()
                return
            except KeyboardInterrupt:
                self.say()
                continue
            if not self.execute(line):
                return

    # --- inputs ----------------------------------------------------------------------------
    def cmd_load(self, args: list[str]) -> None:
        if not args or args[0] != "inputs" or len(args) > 2:
            raise DebuggerError("usage: load inputs [FILE]")
        if len(args) == 1:
            level = self.session.load_next_level()
            self.say(f"level {level.level} is in the input buffer")
            self.say(self.session.status_line())
            return
        self.load_file(args[1])

    def load_file(self, path: str) -> None:
        levels = load_levels(Path(path), self.session.rollup)
        added = self.session.queue_levels(levels, path)
        if added:
            numbers = (
                f"{added[0].level}" if len(added) == 1 else f"{added[0].level}–{added[-1].level}"
            )
            self.say(f"queued {len(added)} level(s) from {path}: level {numbers}")
        else:
            self.say(f"{path} holds no level")

    # --- stepping --------------------------------------------------------------------------
    def cmd_step(self, args: list[str]) -> None:
        what = args[0] if args else "tick"
        if what == "tick" and len(args) <= 2:
            ticks = parse_int(args[1], "the number of ticks", 1) if len(args) == 2 else 1
            self.run(Goal(GoalKind.TICKS, ticks=ticks))
        elif what == "kernel_run" and len(args) == 1:
            self.run(Goal(GoalKind.KERNEL_RUN, new_levels=1))
        elif what == "result" and len(args) == 1:
            self.run(Goal(GoalKind.RESULT, new_levels=0))
        elif what == "inbox" and len(args) == 1:
            self.run(Goal(GoalKind.INBOX, new_levels=1))
        else:
            raise DebuggerError("usage: step tick [N] | step kernel_run | step result | step inbox")

    def cmd_continue(self, args: list[str]) -> None:
        if args:
            raise DebuggerError("usage: continue")
        self.run(Goal(GoalKind.CONTINUE))

    def run(self, goal: Goal) -> None:
        """Run toward ``goal`` with Ctrl-C stopping the run (between chunks), not the session."""
        session = self.session
        previous = None
        if threading.current_thread() is threading.main_thread():

            def interrupt(_signum, _frame) -> None:
                session.interrupted = True

            previous = signal.signal(signal.SIGINT, interrupt)
        try:
            stop = session.run(goal)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        self.report(stop)

    def report(self, stop: Stop) -> None:
        if stop.message:
            self.say(stop.message)
        if stop.reason == "breakpoint":
            try:
                machine, view = debugger_show.kernel_view(self.session)
                frame = view.call_stack(machine)[0]
                self.say(f"  at {frame.label} +{frame.offset}: {frame.instruction}")
            except DebuggerError:
                pass
        self.say(self.session.status_line())

    # --- breakpoints -----------------------------------------------------------------------
    def cmd_break(self, args: list[str]) -> None:
        session = self.session
        if not args:
            if not session.breakpoints:
                self.say("no breakpoints")
            for bp in session.breakpoints.values():
                self.say(f"{bp.number}: {bp.label}")
            return
        if len(args) != 2 or args[0] not in ("function", "tick"):
            raise DebuggerError("usage: break function N|NAME | break tick T")
        if args[0] == "tick":
            tick = parse_int(args[1], "the tick", 0)
            bp = session.add_breakpoint("tick", tick, f"tick {tick}")
            late = " (already past)" if tick <= session.state.tick else ""
            self.say(f"breakpoint {bp.number}: tick {tick}{late}")
            return
        index, label = self.resolve_function(args[1])
        bp = session.add_breakpoint("function", index, label)
        self.say(f"breakpoint {bp.number}: {label}")

    def resolve_function(self, text: str) -> tuple[int, str]:
        """A function of the kernel by index or name, and how to describe its breakpoint."""
        module = self.session.kernel_module()
        if module is None:
            raise DebuggerError("the kernel does not decode: no functions to break on")
        names = debugger_show.function_names(module)
        imported = sum(1 for imp in module.imports if imp.kind == ExternKind.FUNC)
        total = imported + len(module.funcs)
        if text.lstrip("-").isdigit() or text.startswith("0x"):
            index = parse_int(text, "the function index", 0)
        else:
            matches = [i for i, name in names.items() if name == text.lstrip("$")]
            if not matches:
                raise DebuggerError(f"no function named {text!r}")
            index = matches[0]
        if index >= total:
            raise DebuggerError(f"the kernel has {total} functions (0 to {total - 1}), not {index}")
        name = names.get(index)
        shown = f"function {index}" + (f" <{name}>" if name else "")
        if index < imported:
            return index, f"{shown}: host function called"
        return index, f"{shown} entered"

    def cmd_delete(self, args: list[str]) -> None:
        if len(args) != 1:
            raise DebuggerError("usage: delete N")
        bp = self.session.delete_breakpoint(parse_int(args[0], "the breakpoint number", 1))
        self.say(f"deleted breakpoint {bp.number} ({bp.label})")

    # --- reveals ---------------------------------------------------------------------------
    def cmd_reveal(self, args: list[str]) -> None:
        if len(args) != 2 or args[0] != "preimage":
            raise DebuggerError("usage: reveal preimage HEX")
        request = vm.input_request(self.session.state)
        if request.kind != "reveal" or request.reveal[:1] != b"\x00":
            raise DebuggerError("no preimage reveal is pending")
        try:
            data = bytes.fromhex(args[1])
        except ValueError:
            raise DebuggerError(f"not hex: {args[1]!r}") from None
        self.session.answer_reveal(request.reveal, data)
        self.say(self.session.status_line())

    # --- views -----------------------------------------------------------------------------
    def cmd_show(self, args: list[str]) -> None:
        views = {
            "status": debugger_show.status,
            "inbox": debugger_show.inbox,
            "outbox": debugger_show.outbox,
            "key": debugger_show.key,
            "keys": debugger_show.keys,
            "subkeys": debugger_show.keys,
            "memory": debugger_show.memory,
            "stack": debugger_show.stack,
            "values": debugger_show.values,
            "code": debugger_show.code,
        }
        if not args or args[0] not in views:
            raise DebuggerError(f"usage: show {'|'.join(views)} …")
        for line in views[args[0]](self.session, args[1:]):
            self.say(line)

    def cmd_help(self, args: list[str]) -> None:
        width = max(len(usage) for usage, _ in HELP)
        for usage, summary in HELP:
            if not args or usage.split()[0] == args[0]:
                self.say(f"  {usage:<{width}}  {summary}")


def main(
    kernel: str,
    *,
    inputs: str | None = None,
    preimages: str | None = None,
    rollup: str = DEFAULT_ROLLUP,
    origination_level: int = 0,
    ticks_per_kernel_run: int | None = None,
    script: str | None = None,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
) -> int:
    """Run a debugging session; returns the exit status (1 when a scripted command failed)."""
    stdin = sys.stdin if stdin is None else stdin
    out = sys.stdout if out is None else out
    kernel_bytes = load_kernel(kernel)
    reveals = RevealProvider(
        Path(preimages) if preimages else None,
        RollupAddress.of_b58(rollup).digest,
        origination_level,
    )
    lines: list[str] | None = None
    if script is not None:
        try:
            lines = Path(script).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise DebuggerError(f"cannot read script {script}: {exc.strerror}") from None
    session = DebugSession(
        kernel_bytes, reveals, rollup=rollup, ticks_per_kernel_run=ticks_per_kernel_run
    )
    debugger = Debugger(session, out)
    state = session.state
    debugger.say(
        f"soru debug: kernel {kernel} ({len(kernel_bytes)} bytes), PVM {state.version}, "
        f"{state.max_nb_ticks} ticks per kernel_run"
    )
    where = f"preimages from {preimages}" if preimages else "no preimage directory"
    debugger.say(
        f"reveals are answered automatically: {where}; metadata {rollup}, "
        f"origination level {origination_level}"
    )
    if inputs is not None:
        debugger.load_file(inputs)
    debugger.say(session.status_line())
    if lines is not None:
        debugger.run_lines(lines, echo=True)
        return 1 if debugger.failures else 0
    if stdin.isatty():
        debugger.say("type help for the commands")
        debugger.interact()
    else:
        debugger.run_lines(stdin, echo=True)
    return 0
