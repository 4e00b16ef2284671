"""A runner for the official WebAssembly core test suite, in wabt's ``wast2json`` format.

A *script* is one ``NAME/NAME.json`` file: a list of commands run in order against one
:class:`~soru.wasm.exec.machine.Machine` (so function addresses and registered modules are
shared within the script, as the reference interpreter shares them). Every module goes
through the path a real engine takes: decode, validate, then instantiate.

Commands and what passing means:

* ``module``        — load it (decode, validate, instantiate); it becomes the *current* module
                      and, when named, can be addressed later. Not counted; a module that fails
                      to load is recorded in ``module_failures`` and every later assertion that
                      uses it fails.
* ``register``      — expose a module's exports under an import name. Not counted.
* ``action``        — invoke an export or read a global; passes when it does not fail.
* ``assert_return`` — the results equal the expected values (floats bit for bit, or any
                      canonical / arithmetic NaN; a non-null ``funcref`` only needs to be
                      non-null).
* ``assert_trap`` / ``assert_exhaustion`` — the action raises :class:`Trap` /
                      :class:`Exhaustion`. A trap whose reason differs in wording from the
                      expected text still passes, and the difference is kept in ``notes``.
* ``assert_malformed`` (binary) — decoding raises :class:`DecodeError`.
* ``assert_invalid``   — decoding succeeds and validation raises :class:`InvalidModule`
                      (a :class:`DecodeError` there is a failure, categorised on its own).
* ``assert_unlinkable`` / ``assert_uninstantiable`` — instantiation raises
                      :class:`LinkError` / :class:`Trap`.

Counting: assertions and actions are counted as passed, failed or skipped; modules are not.
Every skip is listed in :data:`SKIPS` — the one reviewed place. An unexpected Python
exception inside one command fails that command (with a traceback summary) and the run
goes on.
"""

from __future__ import annotations

import json
import struct
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from soru.base.errors import SoruError
from soru.wasm.binary import decode_module
from soru.wasm.errors import DecodeError, Exhaustion, InvalidModule, LinkError, Trap
from soru.wasm.exec.machine import Machine, TickLimit
from soru.wasm.runtime import FuncInst, GlobalInst, HostFunc, Instance, MemInst, TableInst
from soru.wasm.syntax import FuncType, GlobalType, Limits, MemType, Module, TableType, ValType
from soru.wasm.validate import validate_module

Extern = FuncInst | TableInst | MemInst | GlobalInst
Value = int | None
Command = dict[str, Any]

#: Call stack depth at which the machine raises Exhaustion (``assert_exhaustion`` tests).
CALL_DEPTH_LIMIT = 10_000

#: Ticks one action may take before it is failed as a runaway (an engine bug, since no
#: spec test loops forever); generous: the slowest actions of the suite take far fewer.
TICK_BUDGET = 50_000_000

TEXT_FORMAT = "text format not supported"

#: Every skip, reviewed. Keys are ``(file, line)`` for a single command, ``(file, category)``
#: for a category in one file, or ``("*", category)`` for a category everywhere; a category
#: is ``"<command type>:<module type>"`` (for example ``"assert_malformed:text"``).
SKIPS: dict[tuple[str, int | str], str] = {
    # The engine reads the binary format only; text-format tests need a text parser.
    ("*", "assert_malformed:text"): TEXT_FORMAT,
    ("*", "assert_invalid:text"): TEXT_FORMAT,
    ("*", "assert_unlinkable:text"): TEXT_FORMAT,
    ("*", "assert_uninstantiable:text"): TEXT_FORMAT,
    ("*", "module:text"): TEXT_FORMAT,
    # Conversion artefacts: these invalid *text* modules use data.drop / memory.init without
    # data segments, and wast2json wrote their binaries without a data count section. The
    # binary grammar (spec 5.5.16: "m? ≠ ε ∨ dataidx(code) = ∅") makes such a binary
    # malformed, so a conforming decoder rejects it ("data count section required") before
    # validation could report the expected "unknown data segment" / "unknown memory 0".
    ("memory_init", 190): "binary lacks the data count section: malformed before invalid",
    ("memory_init", 227): "binary lacks the data count section: malformed before invalid",
}


class SpecSuiteError(SoruError):
    """The suite itself cannot be read: a missing directory, file, or a broken JSON script."""


class ScriptError(SoruError):
    """A command cannot be carried out for a reason of the script (an unknown module or
    export, a module that failed to load earlier); it fails that command."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One noteworthy command: a failure, a skip, or a note on a passing command.

    ``category`` groups findings across files (for example ``"assert_return: wrong result"``);
    ``reason`` carries the details.
    """

    line: int
    command: str
    category: str
    reason: str


@dataclass(slots=True)
class FileResult:
    """The outcome of one script: counts and the findings behind them."""

    name: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[Finding] = field(default_factory=list)
    skips: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)
    module_failures: list[Finding] = field(default_factory=list)
    modules_loaded: int = 0


@dataclass(slots=True)
class SuiteResult:
    """The outcome of a set of scripts, with totals."""

    files: list[FileResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(f.passed for f in self.files)

    @property
    def failed(self) -> int:
        return sum(f.failed for f in self.files)

    @property
    def skipped(self) -> int:
        return sum(f.skipped for f in self.files)

    @property
    def module_failures(self) -> int:
        return sum(len(f.module_failures) for f in self.files)

    def failure_categories(self) -> Counter[str]:
        """How many failures (including modules that failed to load) fall in each category."""
        counts: Counter[str] = Counter()
        for result in self.files:
            for finding in result.failures + result.module_failures:
                counts[finding.category] += 1
        return counts


class _Failed(Exception):
    """Internal: the command failed, in ``category`` (details in ``reason``)."""

    def __init__(self, category: str, reason: str = "") -> None:
        super().__init__(reason)
        self.category = category
        self.reason = reason


# ---------------------------------------------------------------------------------------
# The spectest host module.


def _float_bits(fmt: str, x: float) -> int:
    return int.from_bytes(struct.pack(fmt, x), "little")


def spectest_exports() -> dict[str, Extern]:
    """A fresh ``spectest`` module as the suite expects it: printing functions that do
    nothing, four immutable globals (666 and 666.6), a funcref table of 10..20 elements and
    a memory of 1..2 pages."""

    def do_nothing(_caller: Instance | None, _args: list[int]) -> Sequence[int]:
        return ()

    i32, i64, f32, f64 = ValType.I32, ValType.I64, ValType.F32, ValType.F64
    signatures: dict[str, tuple[ValType, ...]] = {
        "print": (),
        "print_i32": (i32,),
        "print_i64": (i64,),
        "print_f32": (f32,),
        "print_f64": (f64,),
        "print_i32_f32": (i32, f32),
        "print_f64_f64": (f64, f64),
    }
    exports: dict[str, Extern] = {
        name: HostFunc(FuncType(params, ()), do_nothing, name=f"spectest.{name}")
        for name, params in signatures.items()
    }
    exports["global_i32"] = GlobalInst(GlobalType(i32, False), 666)
    exports["global_i64"] = GlobalInst(GlobalType(i64, False), 666)
    exports["global_f32"] = GlobalInst(GlobalType(f32, False), _float_bits("<f", 666.6))
    exports["global_f64"] = GlobalInst(GlobalType(f64, False), _float_bits("<d", 666.6))
    exports["table"] = TableInst(TableType(Limits(10, 20), ValType.FUNCREF))
    exports["memory"] = MemInst(MemType(Limits(1, 2)))
    return exports


class _Imports(Mapping[tuple[str, str], Extern]):
    """The import view the machine links against: ``(module, field)`` over the modules
    registered so far (``spectest`` and every ``register`` command)."""

    def __init__(self, registry: dict[str, dict[str, Extern]]) -> None:
        self._registry = registry

    def __getitem__(self, key: tuple[str, str]) -> Extern:
        module, name = key
        return self._registry[module][name]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for module, exports in self._registry.items():
            for name in exports:
                yield (module, name)

    def __len__(self) -> int:
        return sum(len(exports) for exports in self._registry.values())


# ---------------------------------------------------------------------------------------
# Values.

_NAN_MASKS = {
    # type: (exponent and quiet bit, sign-free mask)
    "f32": (0x7FC0_0000, 0x7FFF_FFFF),
    "f64": (0x7FF8_0000_0000_0000, 0x7FFF_FFFF_FFFF_FFFF),
}


def parse_value(value: Mapping[str, str]) -> Value:
    """A wast2json argument (``{"type": "i32", "value": "42"}``) as the machine holds it."""
    kind, text = value["type"], value.get("value")
    if text is None:
        raise ScriptError(f"value of type {kind} has no value")
    if kind in ("funcref", "externref"):
        return None if text == "null" else int(text)
    if kind in ("i32", "i64", "f32", "f64"):
        return int(text)
    raise ScriptError(f"unsupported value type {kind}")


def matches(expected: Mapping[str, str], actual: Value) -> bool:
    """Whether a result agrees with an expected wast2json value (see the module docstring)."""
    kind, text = expected["type"], expected.get("value")
    if text in ("nan:canonical", "nan:arithmetic"):
        if kind not in _NAN_MASKS or not isinstance(actual, int):
            return False
        quiet, magnitude = _NAN_MASKS[kind]
        if text == "nan:canonical":
            return actual & magnitude == quiet
        return actual & quiet == quiet
    if kind == "funcref" and text != "null":
        return actual is not None
    return actual == parse_value(expected)


def _show(values: Iterable[Value]) -> str:
    return "[" + ", ".join("null" if v is None else str(v) for v in values) + "]"


def _show_expected(values: Iterable[Mapping[str, str]]) -> str:
    return "[" + ", ".join(f"{v['type']}:{v.get('value')}" for v in values) + "]"


# ---------------------------------------------------------------------------------------
# One script.


class _Script:
    """The state of one running script: the machine, registered and named modules."""

    def __init__(self, directory: Path, name: str, tick_budget: int | None) -> None:
        self.directory = directory
        self.name = name
        self.tick_budget = tick_budget
        self.machine = Machine(call_depth_limit=CALL_DEPTH_LIMIT)
        self.registry: dict[str, dict[str, Extern]] = {"spectest": spectest_exports()}
        self.imports = _Imports(self.registry)
        self.named: dict[str, Instance | None] = {}
        self.named_errors: dict[str, str] = {}
        self.current: Instance | None = None
        self.current_error: str | None = "no module loaded yet"
        self.result = FileResult(name)

    # -- loading -------------------------------------------------------------------------

    def read(self, command: Command) -> bytes:
        path = self.directory / command["filename"]
        try:
            return path.read_bytes()
        except OSError as error:
            raise ScriptError(f"cannot read {path.name}: {error.strerror}") from error

    def decode(self, command: Command) -> Module:
        return decode_module(self.read(command))

    def load(self, command: Command) -> Instance:
        """Decode, validate and instantiate the module a command names."""
        module = self.decode(command)
        validate_module(module)
        return self.machine.instantiate(module, self.imports)

    def instance(self, name: str | None) -> Instance:
        """The current module, or the module loaded under ``name``."""
        if name is None:
            if self.current is None:
                raise ScriptError(f"no current module ({self.current_error})")
            return self.current
        if name not in self.named:
            raise ScriptError(f"unknown module {name}")
        found = self.named[name]
        if found is None:
            raise ScriptError(f"module {name} failed to load ({self.named_errors[name]})")
        return found

    # -- actions -------------------------------------------------------------------------

    def perform(self, action: Command) -> list[Value]:
        """Run an ``invoke`` or ``get`` action and return its results."""
        instance = self.instance(action.get("module"))
        field_name = action["field"]
        export = instance.exports.get(field_name)
        if export is None:
            raise ScriptError(f"unknown export {field_name!r}")
        if action["type"] == "get":
            if not isinstance(export, GlobalInst):
                raise ScriptError(f"export {field_name!r} is not a global")
            return [export.value]
        if action["type"] != "invoke":
            raise ScriptError(f"unknown action type {action['type']}")
        if not isinstance(export, FuncInst):
            raise ScriptError(f"export {field_name!r} is not a function")
        args = [parse_value(arg) for arg in action.get("args", [])]
        return self.call(export, args)

    def call(self, func: FuncInst, args: list[Value]) -> list[Value]:
        try:
            return list(self.machine.invoke(func, args, max_ticks=self.tick_budget))
        except TickLimit as exc:
            raise _Failed("runaway", f"not finished after {exc.ticks} ticks") from exc


# ---------------------------------------------------------------------------------------
# Command handlers. Each returns normally when the command passes (for counted commands)
# or raises _Failed; ``module`` and ``register`` are not counted.


def _do_module(script: _Script, command: Command) -> None:
    name = command.get("name")
    try:
        instance: Instance | None = script.load(command)
        error = None
    except SoruError as exc:
        instance, error = None, f"{type(exc).__name__}: {exc}"
        script.result.module_failures.append(
            Finding(command["line"], "module", f"module: {type(exc).__name__}", str(exc))
        )
    else:
        script.result.modules_loaded += 1
    script.current, script.current_error = instance, error
    if name is not None:
        script.named[name] = instance
        script.named_errors[name] = error or ""


def _do_register(script: _Script, command: Command) -> None:
    instance = script.instance(command.get("name"))
    script.registry[command["as"]] = dict(instance.exports)


def _do_action(script: _Script, command: Command) -> None:
    try:
        script.perform(command["action"])
    except (Trap, Exhaustion) as exc:
        raise _Failed(f"action: unexpected {type(exc).__name__}", exc.reason) from exc


def _do_assert_return(script: _Script, command: Command) -> None:
    try:
        results = script.perform(command["action"])
    except (Trap, Exhaustion) as exc:
        raise _Failed(f"assert_return: unexpected {type(exc).__name__}", exc.reason) from exc
    expected = command["expected"]
    if len(results) != len(expected) or not all(map(matches, expected, results)):
        detail = f"expected {_show_expected(expected)}, got {_show(results)}"
        raise _Failed("assert_return: wrong result", f"{command['action']['field']}: {detail}")


def _expect_raise(script: _Script, command: Command, wanted: type[SoruError]) -> None:
    """Run the action of an ``assert_trap``/``assert_exhaustion`` expecting ``wanted``."""
    kind = command["type"]
    try:
        results = script.perform(command["action"])
    except wanted as exc:
        _note_wording(script, command, exc)
        return
    except (Trap, Exhaustion) as exc:
        raise _Failed(f"{kind}: got {type(exc).__name__}", str(exc)) from exc
    field_name = command["action"]["field"]
    raise _Failed(f"{kind}: returned", f"{field_name}: returned {_show(results)}")


def _note_wording(script: _Script, command: Command, exc: SoruError) -> None:
    """Keep a note when an expected error's message does not start with the expected text
    (the reference interpreter's rule); the command still passes."""
    expected = command.get("text", "")
    actual = str(getattr(exc, "reason", exc))
    if expected and not actual.startswith(expected):
        category = f"{command['type']}: different wording"
        reason = f"expected {expected!r}, got {actual!r}"
        script.result.notes.append(Finding(command["line"], command["type"], category, reason))


def _do_assert_malformed(script: _Script, command: Command) -> None:
    try:
        module = script.decode(command)
    except DecodeError as exc:
        _note_wording(script, command, exc)
        return
    expected = command.get("text", "")
    try:
        validate_module(module)
    except InvalidModule as exc:
        raise _Failed(
            "assert_malformed: decoded (only the validator rejects it)",
            f"expected {expected!r}; validator: {exc}",
        ) from exc
    raise _Failed("assert_malformed: decoded and validated", f"expected {expected!r}")


def _do_assert_invalid(script: _Script, command: Command) -> None:
    expected = command.get("text", "")
    try:
        module = script.decode(command)
    except DecodeError as exc:
        raise _Failed(
            "assert_invalid: rejected by the decoder", f"expected {expected!r}; decoder: {exc}"
        ) from exc
    try:
        validate_module(module)
    except InvalidModule as exc:
        _note_wording(script, command, exc)
        return
    raise _Failed("assert_invalid: validated", f"expected {expected!r}")


def _expect_load_error(script: _Script, command: Command, wanted: type[SoruError]) -> None:
    """Load a module expecting instantiation to raise ``wanted``."""
    kind, expected = command["type"], command.get("text", "")
    try:
        script.load(command)
    except wanted as exc:
        _note_wording(script, command, exc)
        return
    except SoruError as exc:
        raise _Failed(f"{kind}: got {type(exc).__name__}", f"expected {expected!r}; {exc}") from exc
    raise _Failed(f"{kind}: instantiated", f"expected {expected!r}")


_Handler = Callable[[_Script, Command], None]

#: Command type -> (handler, counted as an assertion or action?).
_HANDLERS: dict[str, tuple[_Handler, bool]] = {
    "module": (_do_module, False),
    "register": (_do_register, False),
    "action": (_do_action, True),
    "assert_return": (_do_assert_return, True),
    "assert_trap": (partial(_expect_raise, wanted=Trap), True),
    "assert_exhaustion": (partial(_expect_raise, wanted=Exhaustion), True),
    "assert_malformed": (_do_assert_malformed, True),
    "assert_invalid": (_do_assert_invalid, True),
    "assert_unlinkable": (partial(_expect_load_error, wanted=LinkError), True),
    "assert_uninstantiable": (partial(_expect_load_error, wanted=Trap), True),
}


def find_skip(file_name: str, command: Command) -> str | None:
    """The reason :data:`SKIPS` gives for skipping a command, if any."""
    category = command["type"]
    if command.get("module_type") == "text" or str(command.get("filename", "")).endswith(".wat"):
        category += ":text"
    elif "module_type" in command:
        category += f":{command['module_type']}"
    for key in ((file_name, command.get("line", -1)), (file_name, category), ("*", category)):
        if key in SKIPS:
            return SKIPS[key]
    return None


def _crash_summary(exc: BaseException) -> str:
    """``Type: message (at file:line in function)`` for an unexpected exception."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        where = f" (at {Path(last.filename).name}:{last.lineno} in {last.name})"
    return f"{type(exc).__name__}: {exc}{where}"


def _run_command(script: _Script, command: Command) -> None:
    """Run one command and record its outcome in ``script.result``."""
    result, kind, line = script.result, command.get("type", "?"), command.get("line", 0)
    handler, counted = _HANDLERS.get(kind, (None, True))
    reason = find_skip(script.name, command)
    if reason is not None:
        if counted:
            result.skipped += 1
            result.skips.append(Finding(line, kind, f"{kind}: skipped", reason))
        return
    try:
        if handler is None:
            raise ScriptError(f"unknown command type {kind}")
        handler(script, command)
    except _Failed as failed:
        outcome: Finding | None = Finding(line, kind, failed.category, failed.reason)
    except ScriptError as exc:
        outcome = Finding(line, kind, f"{kind}: script error", str(exc))
    except SoruError as exc:
        outcome = Finding(line, kind, f"{kind}: unexpected {type(exc).__name__}", str(exc))
    except Exception as exc:  # noqa: BLE001 - an engine bug must fail one command, not the run
        outcome = Finding(line, kind, f"{kind}: crash {type(exc).__name__}", _crash_summary(exc))
    else:
        outcome = None
    if not counted:
        if outcome is not None:
            result.module_failures.append(outcome)
    elif outcome is None:
        result.passed += 1
    else:
        result.failed += 1
        result.failures.append(outcome)


# ---------------------------------------------------------------------------------------
# Entry points.


def run_file(path: Path, *, tick_budget: int | None = TICK_BUDGET) -> FileResult:
    """Run one ``NAME.json`` script (its modules beside it) and return its result."""
    try:
        script_json = json.loads(path.read_text(encoding="utf-8"))
        commands = script_json["commands"]
    except OSError as exc:
        raise SpecSuiteError(f"cannot read {path}: {exc.strerror}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise SpecSuiteError(f"{path} is not a wast2json script: {exc}") from exc
    script = _Script(path.parent, path.stem, tick_budget)
    for command in commands:
        _run_command(script, command)
    return script.result


def find_scripts(directory: Path, only: Sequence[str] = ()) -> list[Path]:
    """Every ``NAME/NAME.json`` under ``directory``, sorted by name (or just ``only``)."""
    if not directory.is_dir():
        raise SpecSuiteError(f"{directory} is not a directory")
    if only:
        paths = [directory / name / f"{name}.json" for name in only]
        missing = [p.parent.name for p in paths if not p.is_file()]
        if missing:
            raise SpecSuiteError(f"no test file named {', '.join(missing)} in {directory}")
        return paths
    paths = sorted(p / f"{p.name}.json" for p in directory.iterdir() if p.is_dir())
    found = [p for p in paths if p.is_file()]
    if not found:
        raise SpecSuiteError(f"no NAME/NAME.json test files in {directory}")
    return found


def run_suite(
    directory: Path,
    only: Sequence[str] = (),
    *,
    on_file: Callable[[FileResult], None] | None = None,
    tick_budget: int | None = TICK_BUDGET,
) -> SuiteResult:
    """Run every script under ``directory`` (or only the named ones); ``on_file`` is told of
    each file's result as soon as it is known."""
    suite = SuiteResult()
    for path in find_scripts(directory, only):
        result = run_file(path, tick_budget=tick_budget)
        suite.files.append(result)
        if on_file is not None:
            on_file(result)
    return suite


def format_file_line(result: FileResult) -> str:
    """``name: P passed, F failed, S skipped``."""
    return (
        f"{result.name}: {result.passed} passed, {result.failed} failed, {result.skipped} skipped"
    )


def format_totals(suite: SuiteResult) -> str:
    """``N passed, N failed, N skipped``."""
    return f"{suite.passed} passed, {suite.failed} failed, {suite.skipped} skipped"
