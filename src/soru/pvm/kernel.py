"""Loading and running a kernel: the Snapshot, Decode, Link, Init and Eval tick states.

A top-level call starts from the kernel bytes at ``/kernel/boot.wasm``:

* **Decode** takes one tick per step of the incremental loader (``soru.pvm.loader``): each
  step decodes, validates and lowers one bounded item of the kernel into the state tree, so
  any decode tick can be proven. The outcome — a valid module with floats forbidden, or the
  error of the step that rejects it — is known at the last decode tick. Here the number of
  steps and the outcome are computed once per kernel (``loader.check_kernel``), and the
  interpreter's own module is decoded in one go; ``soru.pvm.layout`` rebuilds the loader's
  tree for any decode tick when a state hash is asked for.
* **Link** takes ``max(1, number of imports)`` ticks; every import must be a host function
  of ``smart_rollup_core`` that the PVM version has, with the exact type. The outcome is
  known at the last link tick.
* **Init** takes one allocation tick, then the ticks of the module's initialisation program
  (element and data segments, start function) on the machine, then one tick that finds the
  ``kernel_run`` export (a function ``[] -> []``), checks the module has exactly one memory,
  and saves the kernel as the fallback kernel.
* **Eval** runs ``kernel_run`` on the machine, one machine tick per PVM tick.

Decoding and validating a kernel is a pure function of its bytes, so the results are cached
by content: a kernel that reboots a thousand times is decoded once.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from soru.merkle import Tree
from soru.pvm import constants
from soru.pvm.durable import Durable
from soru.pvm.host_functions import host_functions
from soru.wasm.binary import decode_module
from soru.wasm.errors import LinkError, Trap
from soru.wasm.exec.machine import Machine
from soru.wasm.runtime import HostFunc, Instance
from soru.wasm.syntax import ExternKind, FuncType, Module
from soru.wasm.validate import validate_module


class Phase(Enum):
    """Where a top-level call is in loading the kernel."""

    DECODE = "decode"
    LINK = "link"
    ALLOCATE = "allocate"
    INIT_PROGRAM = "init program"
    ENTER = "enter"
    EVAL = "eval"


KERNEL_KEY = ("kernel", "boot.wasm")
"""Where ``/kernel/boot.wasm`` lives in the durable tree (its value and any sub-keys)."""


@dataclass(frozen=True, slots=True)
class DecodedKernel:
    """The outcome of decoding kernel bytes: a valid module, or the error that rejects it."""

    module: Module | None
    error: str | None
    decode_ticks: int


_CACHE: OrderedDict[bytes, DecodedKernel] = OrderedDict()
_CACHE_SIZE = 8


def decode_kernel(kernel: bytes) -> DecodedKernel:
    """Decode and validate kernel bytes with floats forbidden (cached by content hash)."""
    key = hashlib.blake2b(kernel, digest_size=32).digest()
    cached = _CACHE.get(key)
    if cached is not None:
        _CACHE.move_to_end(key)
        return cached
    from soru.pvm.loader import check_kernel  # the loader binds the lazy state: import late

    outcome = check_kernel(kernel)
    if outcome.error is not None:
        error = outcome.error
        result = DecodedKernel(None, f"{type(error).__name__}: {error}", outcome.steps)
    else:
        module = decode_module(kernel, forbid_floats=True)  # what the loader accepted
        validate_module(module)
        result = DecodedKernel(module, None, outcome.steps)
    _CACHE[key] = result
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return result


def link_ticks(module: Module) -> int:
    return max(1, len(module.imports))


def check_import(
    module_name: str, name: str, kind: int, ftype: FuncType | None, hosts: dict[str, HostFunc]
) -> HostFunc:
    """One Link tick's check: the import is a host function of ``smart_rollup_core`` that this
    PVM version has, with exactly its type; returns it or raises LinkError."""
    if module_name != constants.HOST_MODULE or kind != ExternKind.FUNC:
        raise LinkError(f"unknown import {module_name}.{name}")
    host = hosts.get(name)
    if host is None:
        raise LinkError(f"unknown host function {name}")
    if host.type != ftype:
        raise LinkError(f"host function {name} has type {host.type}")
    return host


def _import_type(module: Module, index: int) -> FuncType | None:
    desc = module.imports[index].desc
    return module.types[desc] if isinstance(desc, int) else None


def link_imports(module: Module, hosts: dict[str, HostFunc]) -> dict[tuple[str, str], HostFunc]:
    """Resolve every import against the PVM's host functions; raises LinkError."""
    resolved = {}
    for index, imp in enumerate(module.imports):
        host = check_import(imp.module, imp.name, imp.kind, _import_type(module, index), hosts)
        resolved[(imp.module, imp.name)] = host
    return resolved


class NoKernelRun(LinkError):
    """The module exports no function ``kernel_run`` of type ``[] -> []``: the PVM is stuck
    for good, fallback kernel or not (Octez's ``Invalid_module``)."""


def check_entry(module: Module, instance: Instance) -> None:
    """The Init checks: exactly one memory, exported as memory 0 (an init error otherwise),
    and ``kernel_run`` a function ``[] -> []`` (:class:`NoKernelRun` otherwise)."""
    if len(instance.mems) != 1:
        raise LinkError(f"a kernel needs exactly one memory, it has {len(instance.mems)}")
    if not any(e.kind == ExternKind.MEMORY and e.index == 0 for e in module.exports):
        raise LinkError("the module must export memory 0")
    entry = next((e for e in module.exports if e.name == constants.KERNEL_ENTRY), None)
    if entry is None or entry.kind != ExternKind.FUNC:
        raise NoKernelRun("no kernel_run function exported")
    if instance.funcs[entry.index].type != FuncType((), ()):
        raise NoKernelRun("kernel_run must have type [] -> []")


class HostCallDuringInit(Trap):
    """A host function called while the module initialises (its start function): an init
    error, as in Octez ("host functions must not access memory during initialisation")."""


def guard_init(hosts: dict[str, HostFunc], phase: Callable[[], Phase]) -> dict[str, HostFunc]:
    """The host functions, refusing to run while ``phase()`` is the init program."""

    def guarded(host: HostFunc) -> HostFunc:
        fn = host.fn

        def call(caller, args):
            if phase() is Phase.INIT_PROGRAM:
                raise HostCallDuringInit("host functions must not run during initialisation")
            return fn(caller, args)

        return HostFunc(host.type, call, host.name)

    return {name: guarded(host) for name, host in hosts.items()}


@dataclass(slots=True)
class KernelRun:
    """A top-level call in progress: the loading phase, ticks left in it, and the machine."""

    kernel: bytes
    decoded: DecodedKernel | None = None
    phase: Phase = Phase.DECODE
    phase_left: int = 0
    machine: Machine | None = None
    instance: Instance | None = None
    imports: dict = field(default_factory=dict)
    snapshot: Tree | None = None  # the durable subtree of the kernel when the call started

    @classmethod
    def start(cls, durable: Durable) -> KernelRun:
        """The Snapshot tick: the kernel the call will load, as it stands now."""
        kernel = durable.read_all(constants.KERNEL_BOOT_PATH) or b""
        decoded = decode_kernel(kernel)
        snapshot = durable.tree.subtree(KERNEL_KEY)
        return cls(kernel, decoded, Phase.DECODE, decoded.decode_ticks, snapshot=snapshot)

    @property
    def decode_steps(self) -> int:
        """Loader steps made so far (during Decode), or all of them (after)."""
        assert self.decoded is not None
        if self.phase is Phase.DECODE:
            return self.decoded.decode_ticks - self.phase_left
        return self.decoded.decode_ticks

    def decode(self, env, budget: int) -> tuple[int, str | None]:
        """Up to ``budget`` decode ticks: (ticks made, outcome), the outcome being None while
        decoding goes on, ``""`` once the module is loaded (Link begins), else the error."""
        assert self.decoded is not None
        if self.phase_left > 1:  # the interpreter decoded the kernel once, at Snapshot
            n = min(budget, self.phase_left - 1)
            self.phase_left -= n
            return n, None
        self.phase_left = 0
        if self.decoded.error is not None:
            return 1, self.decoded.error
        assert self.decoded.module is not None
        self.phase, self.phase_left = Phase.LINK, link_ticks(self.decoded.module)
        return 1, ""

    def link(self, env, budget: int) -> tuple[int, str | None]:
        """Up to ``budget`` Link ticks, one import each: (ticks made, outcome) — None while
        linking goes on, ``""`` once every import resolved (Init begins), else the error."""
        assert self.decoded is not None and self.decoded.module is not None
        module = self.decoded.module
        hosts = host_functions(env, env.version)
        count, made = link_ticks(module), 0
        while made < budget:
            index = count - self.phase_left
            made += 1
            if index < len(module.imports):
                imp = module.imports[index]
                try:
                    check_import(imp.module, imp.name, imp.kind, _import_type(module, index), hosts)
                except LinkError as exc:
                    return made, f"LinkError: {exc}"
            self.phase_left -= 1
            if self.phase_left == 0:
                error = self.finish_link(env, env.version)
                return made, "" if error is None else error
        return made, None

    def finish_link(self, env, version: str) -> str | None:
        assert self.decoded is not None and self.decoded.module is not None
        try:
            hosts = guard_init(
                host_functions(env, version, debug=env.collect_debug), lambda: self.phase
            )
            self.imports = link_imports(self.decoded.module, hosts)
        except LinkError as exc:
            return f"LinkError: {exc}"
        self.phase, self.phase_left = Phase.ALLOCATE, 1
        return None

    def allocate(self) -> str | None:
        """The allocation tick: create the machine, load the module and its init program."""
        assert self.decoded is not None and self.decoded.module is not None
        self.machine = Machine(call_depth_limit=constants.CALL_STACK_LIMIT)
        try:
            self.instance, entry = self.machine.allocate(self.decoded.module, self.imports)
        except (LinkError, Trap) as exc:
            return f"{type(exc).__name__}: {exc}"
        if entry is None:
            self.phase, self.phase_left = Phase.ENTER, 1
        else:
            self.machine.begin_code(entry)
            self.phase, self.phase_left = Phase.INIT_PROGRAM, 0
        return None

    def enter(self) -> str | None:
        """The last Init tick: check the entry point and start ``kernel_run``."""
        assert self.decoded is not None and self.decoded.module is not None
        assert self.machine is not None and self.instance is not None
        try:
            check_entry(self.decoded.module, self.instance)
        except NoKernelRun:
            raise
        except LinkError as exc:
            return f"LinkError: {exc}"
        self.machine.start(self.instance.exports[constants.KERNEL_ENTRY], [])  # type: ignore[arg-type]
        self.phase = Phase.EVAL
        return None
