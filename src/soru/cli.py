"""The ``soru`` command: parse the arguments, call the layers, report the outcome.

Thin on purpose: each subcommand is one ``cmd_*`` function that reads its inputs, calls the
layer that does the work and prints what came of it. Subcommand groups (``soru wasm …``;
later ``soru pvm …``, ``soru demo``) each add their parsers in one ``_add_*`` function.

Exit statuses: 0 success; 1 a failure the input explains (any :class:`SoruError`: malformed
or invalid module, link error, trap, failed spec assertions, unreadable file); 2 bad usage
(argparse) or ``--max-ticks`` reached; 70 an internal error — a bug in soru, reported in
one line (``SORU_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from soru.base.errors import SoruError
from soru.client import commands as client_commands
from soru.client import node_commands

if TYPE_CHECKING:
    from soru.wasm.exec.machine import Machine
    from soru.wasm.runtime import FuncInst
    from soru.wasm.syntax import Module, ValType

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_TICK_LIMIT = 2
EXIT_INTERNAL = 70

#: Ticks run between checks of the tick limit when none is given.
_TICK_CHUNK = 1 << 20


class CliError(SoruError):
    """A request the command line cannot carry out (no such export, wrong argument count)."""


# ---------------------------------------------------------------------------------------
# Shared helpers.


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{path}: is a directory, not a file") from None
    except OSError as error:
        raise CliError(f"{path}: cannot read ({error.strerror})") from None


def _load_module(path: str, *, forbid_floats: bool = False) -> Module:
    """Decode and validate a binary module file."""
    from soru.wasm.binary import decode_module
    from soru.wasm.validate import validate_module

    module = decode_module(_read_file(path), forbid_floats=forbid_floats)
    validate_module(module)
    return module


def _arg_bits(text: str, valtype: ValType) -> int | None:
    """An argument typed on the command line as the bits the machine holds.

    Integers (negatives allowed) become the unsigned bits of the parameter's width; for a
    float parameter, a literal with a point or exponent (``1.5``, ``-2e3``, ``inf``, ``nan``)
    is converted to its IEEE bits, while a plain integer is taken as the bit pattern.
    References take ``null`` or an integer.
    """
    name = valtype.text
    if valtype.is_ref:
        return None if text == "null" else int(text)
    widths = {"i32": 32, "i64": 64, "f32": 32, "f64": 64}
    if name not in widths:
        raise CliError(f"parameters of type {name} are not supported")
    try:
        number = int(text, 0)
    except ValueError:
        if not valtype.is_float:
            raise CliError(f"argument {text!r} is not an integer (parameter type {name})") from None
        try:
            value = float(text)
        except ValueError:
            raise CliError(f"argument {text!r} is not a number (parameter type {name})") from None
        fmt = "<f" if name == "f32" else "<d"
        return int.from_bytes(struct.pack(fmt, value), "little")
    width = widths[name]
    if not -(1 << (width - 1)) <= number < (1 << width):
        raise CliError(f"argument {text} does not fit in {name}")
    return number & ((1 << width) - 1)


def _show_value(valtype: ValType, value: int | None) -> str:
    """A result for people: unsigned bits, with the signed or float reading beside them."""
    name = valtype.text
    if value is None:
        return f"{name} null"
    if name in ("i32", "i64"):
        width = 32 if name == "i32" else 64
        signed = value - (1 << width) if value >> (width - 1) else value
        return f"{name} {value}" + (f" (signed {signed})" if signed != value else "")
    if name in ("f32", "f64"):
        fmt, size = ("<f", 4) if name == "f32" else ("<d", 8)
        number = struct.unpack(fmt, value.to_bytes(size, "little"))[0]
        return f"{name} {value} ({number!r})"
    return f"{name} {value}"


def _run_call(machine: Machine, func: FuncInst, args: list, max_ticks: int | None):
    """Run a call to its end, to a trap, or to ``max_ticks``.

    Returns ``(outcome, ticks)``: outcome is ``"done"`` (results in ``machine.results``),
    ``"limit"`` (not finished after ``max_ticks``) or the Trap/Exhaustion that ended it."""
    from soru.wasm.exec.machine import RunStatus

    machine.start(func, args)
    ticks_before = machine.ticks
    while True:
        spent = machine.ticks - ticks_before
        budget = _TICK_CHUNK if max_ticks is None else min(_TICK_CHUNK, max_ticks - spent)
        if budget <= 0:
            return "limit", spent
        status = machine.run(ticks=budget)
        if status is RunStatus.DONE:
            return "done", machine.ticks - ticks_before
        if status is RunStatus.TRAPPED:
            return machine.trap, machine.ticks - ticks_before


# ---------------------------------------------------------------------------------------
# soru wasm …


def cmd_wasm_validate(args: argparse.Namespace) -> int:
    """``soru wasm validate FILE``: decode and validate; print ``valid``."""
    _load_module(args.file, forbid_floats=args.forbid_floats)
    print("valid")
    return EXIT_OK


def cmd_wasm_run(args: argparse.Namespace) -> int:
    """``soru wasm run FILE --invoke NAME ARG…``: instantiate without imports and call."""
    from soru.wasm.errors import Exhaustion, Trap
    from soru.wasm.exec.machine import Machine
    from soru.wasm.runtime import FuncInst

    name, texts = args.invoke[0], args.invoke[1:]
    module = _load_module(args.file)
    machine = Machine(call_depth_limit=args.call_depth_limit)
    instance = machine.instantiate(module, {})
    func = instance.exports.get(name)
    if not isinstance(func, FuncInst):
        exported = ", ".join(n for n, e in instance.exports.items() if isinstance(e, FuncInst))
        raise CliError(f"no exported function {name!r} (exported: {exported or 'none'})")
    params = func.type.params
    if len(texts) != len(params):
        raise CliError(f"{name} {func.type} takes {len(params)} argument(s), got {len(texts)}")
    values = [_arg_bits(text, t) for text, t in zip(texts, params, strict=True)]
    outcome, ticks = _run_call(machine, func, values, args.max_ticks)
    if outcome == "limit":
        return _report_tick_limit(args, ticks)
    if isinstance(outcome, Exhaustion):
        return _report_trap(args, "call stack exhausted", ticks)
    if isinstance(outcome, Trap):
        return _report_trap(args, outcome.reason, ticks)
    results = list(machine.results)
    if args.json:
        pairs = [
            [t.text, "null" if v is None else str(v)]
            for t, v in zip(func.type.results, results, strict=True)
        ]
        print(json.dumps({"results": pairs, "ticks": ticks}))
    else:
        for t, v in zip(func.type.results, results, strict=True):
            print(_show_value(t, v))
        if not results:
            print("(no results)")
        print(f"ticks: {ticks}")
    return EXIT_OK


def _report_trap(args: argparse.Namespace, reason: str, ticks: int) -> int:
    if args.json:
        print(json.dumps({"trap": reason, "ticks": ticks}))
    else:
        print(f"trap: {reason}", file=sys.stderr)
    return EXIT_FAILURE


def _report_tick_limit(args: argparse.Namespace, ticks: int) -> int:
    if args.json:
        print(json.dumps({"error": "tick limit reached", "ticks": ticks}))
    else:
        print(f"tick limit reached after {ticks} ticks", file=sys.stderr)
    return EXIT_TICK_LIMIT


def cmd_wasm_spec(args: argparse.Namespace) -> int:
    """``soru wasm spec DIR``: run the core test suite (wast2json format) under DIR."""
    from soru.tools import wasm_spec

    def report(result: wasm_spec.FileResult) -> None:
        print(wasm_spec.format_file_line(result), flush=True)
        if args.verbose:
            for finding in result.module_failures + result.failures:
                print(f"  line {finding.line}: {finding.category}: {finding.reason}")

    suite = wasm_spec.run_suite(Path(args.dir), args.only or (), on_file=report)
    if suite.module_failures:
        print(f"{suite.module_failures} module(s) failed to load")
    print(wasm_spec.format_totals(suite))
    return EXIT_OK if suite.failed == 0 and suite.module_failures == 0 else EXIT_FAILURE


def _add_wasm_commands(subparsers) -> None:
    wasm = subparsers.add_parser("wasm", help="WebAssembly engine: validate, run, spec suite")
    commands = wasm.add_subparsers(title="commands", metavar="COMMAND")
    wasm.set_defaults(handler=lambda _args: _usage(wasm))

    validate = commands.add_parser("validate", help="decode and validate a binary module")
    validate.add_argument("file", metavar="FILE.wasm")
    validate.add_argument(
        "--forbid-floats",
        action="store_true",
        help="reject modules using floating-point types or instructions",
    )
    validate.set_defaults(handler=cmd_wasm_validate)

    run = commands.add_parser("run", help="instantiate a module (no imports) and call an export")
    run.add_argument("file", metavar="FILE.wasm")
    run.add_argument(
        "--invoke",
        required=True,
        nargs="+",
        metavar=("NAME", "ARG"),
        help="exported function, then its arguments: integers (negatives allowed; for float "
        "parameters the bit pattern) or float literals such as 1.5 for float parameters",
    )
    run.add_argument("--json", action="store_true", help="print the outcome as JSON")
    run.add_argument(
        "--max-ticks",
        type=_positive_int,
        metavar="N",
        help="stop with exit status 2 when the call is not done after N ticks",
    )
    run.add_argument(
        "--call-depth-limit",
        type=_positive_int,
        default=10_000,
        metavar="N",
        help=argparse.SUPPRESS,
    )
    run.set_defaults(handler=cmd_wasm_run)

    spec = commands.add_parser("spec", help="run the core test suite (wast2json) under DIR")
    spec.add_argument("dir", metavar="DIR")
    spec.add_argument(
        "--only",
        nargs="+",
        action="extend",
        metavar="NAME",
        help="run only these test files (NAME/NAME.json)",
    )
    spec.add_argument("--verbose", "-v", action="store_true", help="list every failure")
    spec.set_defaults(handler=cmd_wasm_spec)


# ---------------------------------------------------------------------------------------
# Entry point.


def cmd_pvm_run(args: argparse.Namespace) -> int:
    from soru.tools import pvm_run

    kernel = _read_file(args.kernel)
    state = None
    for state, report in pvm_run.run(  # noqa: B007 - the last state is used below
        kernel,
        Path(args.inputs),
        preimages=Path(args.preimages) if args.preimages else None,
        rollup=args.rollup,
        origination_level=args.origination_level,
        ticks_per_kernel_run=args.ticks_per_kernel_run,
        engine=args.engine,
    ):
        if args.json:
            print(report.to_json(), flush=True)
        else:
            stuck = f", stuck: {report.stuck}" if report.stuck else ""
            print(f"level {report.level}: {report.ticks} ticks, {report.state_hash}{stuck}")
            for message in report.outbox:
                print(f"  outbox: {message.hex()}")
            for line in report.debug:
                print(f"  debug: {line.decode('utf-8', errors='replace')}")
    if args.dump_durable and state is not None:
        print(json.dumps({"durable": pvm_run.durable_values(state.durable)}))
    return EXIT_OK


def _pvm_state_at(args: argparse.Namespace):
    from soru.tools import pvm_run

    return pvm_run.state_at(
        _read_file(args.kernel),
        Path(args.inputs),
        args.tick,
        preimages=Path(args.preimages) if args.preimages else None,
        rollup=args.rollup,
        origination_level=args.origination_level,
        ticks_per_kernel_run=args.ticks_per_kernel_run,
    )


def cmd_pvm_hash(args: argparse.Namespace) -> int:
    from soru.pvm import layout

    state, _ = _pvm_state_at(args)
    print(layout.show_state_hash(layout.state_hash(state)))
    return EXIT_OK


def cmd_pvm_prove(args: argparse.Namespace) -> int:
    from soru.pvm import layout
    from soru.pvm.proof import produce_proof
    from soru.pvm.state import InputMessage

    state, pending = _pvm_state_at(args)
    message = pending if isinstance(pending, InputMessage) else None
    reveal = pending if isinstance(pending, bytes) else None
    proof, _ = produce_proof(layout.state_tree(state), message=message, reveal=reveal)
    data = proof.encode()
    Path(args.output).write_bytes(data)
    step = f"tick {args.tick} -> {args.tick + 1}"
    print(f"proof of {step}: {len(data)} bytes, written to {args.output}")
    return EXIT_OK


def cmd_pvm_verify(args: argparse.Namespace) -> int:
    from soru.pvm import layout
    from soru.pvm.proof import TickProof, verify_proof

    data = _read_file(args.proof)
    verified = verify_proof(TickProof.decode(data))
    before, after = layout.show_state_hash(verified.before), layout.show_state_hash(verified.after)
    print(json.dumps({"before": before, "after": after, "size": len(data)}))
    return EXIT_OK


def _state_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--kernel", required=True, help="the kernel (.wasm)")
    command.add_argument("--inputs", required=True, help="inbox file (Octez debugger JSON format)")
    command.add_argument("--preimages", help="directory of reveal preimages (files named by hash)")
    command.add_argument("--rollup", default="sr163Lv22CdE8QagCwf48PWDTquk6isQwv57")
    command.add_argument("--origination-level", type=int, default=0)
    command.add_argument("--ticks-per-kernel-run", type=_positive_int, default=None)


def _add_pvm_commands(subparsers) -> None:
    pvm = subparsers.add_parser("pvm", help="the wasm_2_0_0 PVM: run kernels over inboxes")
    commands = pvm.add_subparsers(title="commands", metavar="COMMAND")
    pvm.set_defaults(handler=lambda _args: _usage(pvm))
    run = commands.add_parser("run", help="run a kernel over an inbox file, level by level")
    _state_arguments(run)
    run.add_argument(
        "--engine",
        choices=("interpreter", "wasmtime"),
        default="interpreter",
        help="run each kernel_run tick by tick, or on wasmtime counting the same ticks "
        "(same states; the interpreter where wasmtime cannot decide)",
    )
    run.add_argument("--json", action="store_true", help="one JSON line per level")
    run.add_argument("--dump-durable", action="store_true", help="print every durable value")
    run.set_defaults(handler=cmd_pvm_run)
    hash_ = commands.add_parser("hash", help="the state hash at a tick")
    _state_arguments(hash_)
    hash_.add_argument("--tick", type=int, required=True)
    hash_.set_defaults(handler=cmd_pvm_hash)
    prove = commands.add_parser("prove", help="prove the step from tick T to T+1")
    _state_arguments(prove)
    prove.add_argument("--tick", type=int, required=True)
    prove.add_argument("-o", "--output", required=True, help="file to write the proof to")
    prove.set_defaults(handler=cmd_pvm_prove)
    verify = commands.add_parser("verify", help="check a tick proof; prints before/after/size")
    verify.add_argument("proof")
    verify.set_defaults(handler=cmd_pvm_verify)


def cmd_demo(args: argparse.Namespace) -> int:
    from soru.tools import demo

    return demo.run(suite=not args.no_suite)


def _add_demo_command(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="the end-to-end demonstration")
    demo.add_argument("--no-suite", action="store_true", help="skip the core test suite run")
    demo.set_defaults(handler=cmd_demo)


def cmd_debug(args: argparse.Namespace) -> int:
    """``soru debug --kernel K.wasm …``: the interactive step debugger."""
    from soru.tools import debugger

    return debugger.main(
        args.kernel,
        inputs=args.inputs,
        preimages=args.preimages,
        rollup=args.rollup,
        origination_level=args.origination_level,
        ticks_per_kernel_run=args.ticks_per_kernel_run,
        script=args.script,
    )


def _add_debug_command(subparsers) -> None:
    debug = subparsers.add_parser(
        "debug", help="step a kernel through the PVM interactively (like the Octez wasm debugger)"
    )
    debug.add_argument("--kernel", required=True, help="the kernel (.wasm)")
    debug.add_argument("--inputs", help="inbox file to queue (Octez debugger JSON format)")
    debug.add_argument("--preimages", help="directory of reveal preimages (files named by hash)")
    debug.add_argument("--rollup", default="sr163Lv22CdE8QagCwf48PWDTquk6isQwv57")
    debug.add_argument("--origination-level", type=int, default=0)
    debug.add_argument("--ticks-per-kernel-run", type=_positive_int, default=None)
    debug.add_argument(
        "--script", help="read commands from FILE (one per line, # comments), echoing each"
    )
    debug.set_defaults(handler=cmd_debug)


def cmd_installer(args: argparse.Namespace) -> int:
    """``soru installer --upgrade-to K.wasm --output I.hex --preimages-dir DIR``: the
    installer kernel for K and K's preimage pages (``smart-rollup-installer
    get-reveal-installer``)."""
    from soru.tools import installer
    from soru.tools.preimages import write_preimages

    made = installer.prepare_installer(_read_file(args.upgrade_to))
    try:
        write_preimages(made.preimages, args.preimages_dir)
        form = installer.save_installer(args.output, made.wasm)
    except OSError as error:
        raise CliError(f"{error.filename}: cannot write ({error.strerror})") from None
    print(f"installer: {len(made.wasm)} bytes ({form}), written to {args.output}")
    print(f"root hash: {made.preimages.root.hex()}")
    print(f"preimages: {len(made.preimages.pages)} pages, written to {args.preimages_dir}")
    return EXIT_OK


def _add_installer_command(subparsers) -> None:
    command = subparsers.add_parser(
        "installer", help="an installer kernel that installs a kernel too large to originate"
    )
    command.add_argument("--upgrade-to", required=True, help="the kernel to install (.wasm)")
    command.add_argument(
        "--output", required=True, help="the installer to originate: FILE.wasm, else hex"
    )
    command.add_argument(
        "--preimages-dir", required=True, help="where to write the kernel's preimage pages"
    )
    command.set_defaults(handler=cmd_installer)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not positive")
    return value


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    """The whole ``soru`` command line."""
    parser = argparse.ArgumentParser(
        prog="soru", description="Smart optimistic rollups: WebAssembly PVM, L1 sandbox, node."
    )
    subparsers = parser.add_subparsers(title="command groups", metavar="GROUP")
    _add_wasm_commands(subparsers)
    _add_pvm_commands(subparsers)
    _add_demo_command(subparsers)
    _add_debug_command(subparsers)
    _add_installer_command(subparsers)
    client_commands.register(subparsers)
    node_commands.register(subparsers)
    parser.set_defaults(handler=lambda _args: _usage(parser))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``soru`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except SoruError as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one clear line instead of a traceback
        if os.environ.get("SORU_DEBUG"):
            raise
        print(f"internal error (a bug in soru): {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
