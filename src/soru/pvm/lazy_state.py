"""The PVM state as ``soru.pvm.vm`` sees it, read lazily from the state tree.

:class:`LazyPvmState` stands in for :class:`~soru.pvm.state.PvmState`: its fields are tree
paths (``soru.pvm.layout``), its input buffer and outboxes are views, and its running call
(:class:`LazyKernelRun`) holds the lazily bound machine of ``soru.pvm.lazy``.
:func:`lazy_tick` runs one tick of the unchanged tick state machine on it.
"""

from __future__ import annotations

from typing import Any

from soru.merkle import Tree
from soru.pvm import layout
from soru.pvm.durable import Durable
from soru.pvm.host_functions import host_functions
from soru.pvm.kernel import KERNEL_KEY, Phase, guard_init
from soru.pvm.lazy import Cell, LazyModule, LazyVector, NotLazy, P, _u64, lazy_machine, save_machine
from soru.pvm.state import InputMessage, PvmState, StuckReason, TickState
from soru.wasm.exec.machine import Machine


class LazyKernelRun:
    """The running top-level call as ``vm`` sees it: phase, ticks left, machine, instance."""

    def __init__(self, cell: Cell, state: LazyPvmState) -> None:
        self.cell = cell
        self._machine: Machine | None = None
        self._module: LazyModule | None = None
        self.state = state

    @property
    def phase(self) -> Phase:
        raw = self.cell.get(("wasm", "phase"))
        if raw is None:
            raise layout.LayoutError("missing wasm/phase")
        return Phase(raw.decode("ascii"))

    @phase.setter
    def phase(self, value: Phase) -> None:
        self.cell.set(("wasm", "phase"), value.value.encode("ascii"))

    @property
    def phase_left(self) -> int:
        return self.cell.int(("wasm", "phase_left"))

    @phase_left.setter
    def phase_left(self, value: int) -> None:
        self.cell.set(("wasm", "phase_left"), layout.u64(value))

    @property
    def instance(self) -> LazyModule | None:
        if self._module is None and self.cell.tree.has(("wasm", "machine")):
            hosts = guard_init(host_functions(self.state, self.state.version), lambda: self.phase)
            self._module = LazyModule(self.cell, hosts)
        return self._module

    @property
    def machine(self) -> Machine | None:
        if self._machine is None and self.instance is not None:
            self._machine = lazy_machine(self.cell, self.instance)
        return self._machine

    def allocate(self) -> str | None:
        """The allocation tick (``soru.pvm.lazy_init``)."""
        from soru.pvm import lazy_init

        program = lazy_init.allocate(self.cell)
        self._machine = self._module = None  # the machine now exists: views bind afresh
        self.phase, self.phase_left = (Phase.INIT_PROGRAM, 0) if program else (Phase.ENTER, 1)
        return None

    def enter(self) -> str | None:
        """The entry tick: the export checks, then ``kernel_run`` starts."""
        from soru.pvm import lazy_init
        from soru.pvm.kernel import NoKernelRun

        machine, module = self.machine, self.instance
        if machine is None or module is None:
            raise layout.LayoutError("entering a module that was not allocated")
        try:
            lazy_init.enter(self.cell, machine, module)
        except lazy_init.EntryError as error:
            if error.no_kernel_run:
                raise NoKernelRun(str(error)) from None
            return f"LinkError: {error}"
        self.phase = Phase.EVAL
        return None

    def link(self, env: Any, budget: int) -> tuple[int, str | None]:
        """One Link tick: import k of ``wasm/module/imports`` checked against the host
        functions; see ``KernelRun.link``."""
        from soru.encoding.reader import Reader
        from soru.pvm.kernel import check_import
        from soru.wasm.errors import LinkError

        m: P = ("wasm", "module")
        imports = self.cell.int((*m, "imports"))
        index = max(1, imports) - self.phase_left
        if index < imports:
            reader = Reader(self.cell.get((*m, "imports", str(index))) or b"")
            kind = reader.u8()
            module_name = reader.read(reader.zarith_n()).decode()
            name = reader.read(reader.zarith_n()).decode()
            ftype = None
            if kind == 0:
                raw = self.cell.get((*m, "types", str(reader.zarith_n())))
                ftype = layout.decode_functype(Reader(raw or b""))
            try:
                check_import(module_name, name, kind, ftype, host_functions(env, env.version))
            except LinkError as exc:
                return 1, f"LinkError: {exc}"
        self.phase_left -= 1
        if self.phase_left > 0:
            return 1, None
        self.phase, self.phase_left = Phase.ALLOCATE, 1
        return 1, ""

    def decode(self, env: object, budget: int) -> tuple[int, str | None]:
        """One decode tick: one step of the loader on the tree (``soru.pvm.loader``), reading
        the kernel from the snapshot the call took; see ``KernelRun.decode``."""
        from soru.pvm.loader import load_step
        from soru.wasm.errors import DecodeError, InvalidModule

        steps = self.cell.int(("wasm", "decode_steps"))
        try:
            status = load_step(self.cell, self._read_kernel, root=("wasm",))
        except (DecodeError, InvalidModule) as error:
            return 1, f"{type(error).__name__}: {error}"
        self.cell.set(("wasm", "decode_steps"), layout.u64(steps + 1))
        if not status.done:
            return 1, None
        self.phase = Phase.LINK
        self.phase_left = max(1, self.cell.int(("wasm", "module", "imports")))
        return 1, ""

    def _read_kernel(self, offset: int, size: int) -> bytes:
        """Kernel bytes from the call's snapshot (empty past its end)."""
        snapshot = self.cell.tree.subtree(("wasm", "kernel"))
        if snapshot is None:
            return b""
        durable = Durable(Tree.empty().graft(KERNEL_KEY, snapshot))
        length = durable.find_value_size("/kernel/boot.wasm") or 0
        if offset >= length:
            return b""
        return durable.read("/kernel/boot.wasm", offset, min(size, length - offset))

    @property
    def kernel(self) -> bytes:
        raise NotLazy("this tick reads the whole kernel")


class LazyInputs:
    """The input buffer: unread input j at ``pvm/inputs/<inputs_read + j>``."""

    def __init__(self, cell: Cell, state: LazyPvmState) -> None:
        self.cell, self.state = cell, state

    def __len__(self) -> int:
        return self.cell.int(("pvm", "inputs"))

    def __bool__(self) -> bool:
        return len(self) > 0

    def append(self, message: InputMessage) -> None:
        n = len(self)
        i = str(self.state.inputs_read + n)
        info = message.level.to_bytes(4, "big") + layout.u64(message.counter)
        self.cell.set(("pvm", "inputs", i, "info"), info)
        self.cell.set(("pvm", "inputs", i, "payload"), message.payload)
        self.cell.set(("pvm", "inputs"), layout.u64(n + 1))

    def popleft(self) -> InputMessage:
        n = len(self)
        if n == 0:
            raise IndexError("the input buffer is empty")
        i = str(self.state.inputs_read)
        info = self.cell.get(("pvm", "inputs", i, "info")) or b""
        payload = self.cell.get(("pvm", "inputs", i, "payload"))
        if len(info) != 12 or payload is None:
            raise layout.LayoutError(f"malformed input {i}")
        self.cell.delete(("pvm", "inputs", i))
        self.cell.set(("pvm", "inputs"), layout.u64(n - 1))
        return InputMessage(_u64(info[:4]), _u64(info[4:]), payload)

    def clear(self) -> None:
        self.cell.delete(("pvm", "inputs"))
        self.cell.set(("pvm", "inputs"), layout.u64(0))


class LazyOutboxes:
    """The outboxes by level, each a vector of messages."""

    def __init__(self, cell: Cell) -> None:
        self.cell = cell

    def _path(self, level: int) -> P:
        return ("pvm", "outboxes", str(level))

    def setdefault(self, level: int, _default: object = None) -> LazyVector:
        if self.cell.get(self._path(level)) is None:
            self.cell.set(self._path(level), layout.u64(0))
        return LazyVector(self.cell, self._path(level), bytes, bytes)

    def get(self, level: int, default: object = None) -> object:
        if self.cell.get(self._path(level)) is None:
            return default
        return LazyVector(self.cell, self._path(level), bytes, bytes)

    def pop(self, level: int, default: object = None) -> object:
        found = self.get(level, default)
        self.cell.delete(self._path(level))
        return found


def _scalar(path: P, kind: str) -> property:
    """A state field stored at ``path``: ``int`` (u64), ``text`` (ASCII), or an enum."""

    def get(self: LazyPvmState) -> Any:
        raw = self.cell.get(path)
        if kind == "int":
            if raw is None:
                raise layout.LayoutError(f"missing {'/'.join(path)}")
            return _u64(raw)
        if raw is None:
            return None
        text = raw.decode("ascii")
        return {"text": str, "tick_state": TickState, "stuck": StuckReason}[kind](text)

    def put(self: LazyPvmState, value: Any) -> None:
        if value is None:
            self.cell.delete(path)
        elif kind == "int":
            self.cell.set(path, layout.u64(value))
        else:
            text = value if isinstance(value, str) else value.value
            self.cell.set(path, text.encode("ascii"))

    return property(get, put)


class LazyPvmState:
    """A :class:`~soru.pvm.state.PvmState` whose fields live in the tree of ``cell``."""

    version = _scalar(("pvm", "version"), "text")
    tick = _scalar(("pvm", "tick"), "int")
    tick_state = _scalar(("pvm", "tick_state"), "tick_state")
    stuck = _scalar(("pvm", "stuck"), "stuck")
    last_top_level_call = _scalar(("pvm", "last_top_level_call"), "int")
    max_nb_ticks = _scalar(("pvm", "max_nb_ticks"), "int")
    reboot_counter = _scalar(("pvm", "reboot_counter"), "int")
    inputs_read = _scalar(("pvm", "inputs_read"), "int")
    ticks_to_snapshot = PvmState.ticks_to_snapshot
    next_input = PvmState.next_input
    write_output = PvmState.write_output

    def __init__(self, tree: Tree) -> None:
        if tree.get(("version",)) != layout.LAYOUT_VERSION:
            raise layout.LayoutError(f"not a {layout.LAYOUT_VERSION.decode()} state")
        self.cell = Cell(tree)
        self.durable = Durable(tree.subtree(("durable",)) or Tree.empty())
        self.inputs = LazyInputs(self.cell, self)
        self.outboxes = LazyOutboxes(self.cell)
        self.collect_debug = False
        self.debug_log: list[bytes] = []
        self._kernel: LazyKernelRun | None = None

    def debug(self, data: bytes) -> None:
        self.debug_log.append(bytes(data))

    @property
    def last_input(self) -> tuple[int, int] | None:
        raw = self.cell.get(("pvm", "last_input"))
        return None if raw is None else (_u64(raw[:4]), _u64(raw[4:]))

    @last_input.setter
    def last_input(self, value: tuple[int, int]) -> None:
        self.cell.set(("pvm", "last_input"), value[0].to_bytes(4, "big") + layout.u64(value[1]))

    @property
    def outbox_level(self) -> int | None:
        raw = self.cell.get(("pvm", "outbox_level"))
        return None if raw is None else _u64(raw)

    @outbox_level.setter
    def outbox_level(self, value: int) -> None:
        self.cell.set(("pvm", "outbox_level"), layout.u64(value))

    @property
    def kernel(self) -> LazyKernelRun | None:
        if self._kernel is None and self.cell.tree.has(("wasm",)):
            self._kernel = LazyKernelRun(self.cell, self)
        return self._kernel

    @kernel.setter
    def kernel(self, value: object) -> None:
        if value is not None:
            raise NotLazy("starting a top-level call reads the whole kernel")
        self._kernel = None
        self.cell.delete(("wasm",))

    def start_call(self) -> None:
        """The Snapshot tick: the call starts decoding; the kernel as it stands now is
        grafted into the state (an O(1) copy of its subtree, not a read of it)."""
        self._kernel = None
        self.cell.set(("wasm", "phase"), Phase.DECODE.value.encode("ascii"))
        self.cell.set(("wasm", "decode_steps"), layout.u64(0))
        snapshot = self.durable.tree.subtree(KERNEL_KEY)
        if snapshot is not None:
            self.cell.tree = self.cell.tree.graft(("wasm", "kernel"), snapshot)

    def finish(self) -> Tree:
        """Write back what is not written through, and return the tree after the tick."""
        run = self._kernel
        if run is not None and run._machine is not None and self.cell.tree.has(("wasm",)):
            save_machine(self.cell, run._machine)
        self.cell.tree = self.cell.tree.graft(("durable",), self.durable.tree)
        return self.cell.tree


def lazy_tick(
    tree: Tree, *, message: InputMessage | None = None, reveal: bytes | None = None
) -> Tree:
    """One tick of the state ``tree`` — an input tick if it needs ``message``, a reveal tick
    if it needs ``reveal``, a computation tick otherwise — run lazily; returns the tree after.

    Raises :class:`NotLazy` for the ticks that need the whole kernel, ``ValueError`` when the
    input the tick needs was not given.
    """
    from soru.pvm import vm

    state = LazyPvmState(tree)
    request = vm.input_request(state)  # type: ignore[arg-type]
    if request.kind == "reveal":
        if reveal is None:
            raise ValueError("this tick needs the revealed data")
        vm.reveal_step(state, reveal)  # type: ignore[arg-type]
    elif request.kind != "none":
        if message is None:
            raise ValueError("this tick needs an inbox message")
        vm.set_input(state, message)  # type: ignore[arg-type]
    else:
        vm.compute(state, 1)  # type: ignore[arg-type]
    return state.finish()
