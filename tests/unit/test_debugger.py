"""``soru debug``: scripted sessions on the reference kernels, in process and as a subprocess.

The sessions step the echo kernel tick by tick through Snapshot, Decode, Link and Init into
Eval, look at its call stack, value stack and memory there, run whole levels and read the
outbox and durable keys, stop at function and tick breakpoints, answer reveals from a
preimage directory, and check that no bad command ends a session or prints a traceback.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import wasmtime

from soru.pvm.loader import check_kernel
from soru.tools import debugger, debugger_show

KERNELS = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "kernels"
ECHO = KERNELS / "echo.wasm"
DEBUG_KERNEL = KERNELS / "debug_kernel.wasm"

pytestmark = pytest.mark.skipif(not ECHO.exists(), reason="shared kernels not present")

ECHO_INBOX = [[{"external": "68656c6c6f"}, {"payload": "0x0102"}]]
"""One level: an external message "hello" and a transfer of the bytes 0x0102."""

TICKS = 1000
DECODE = check_kernel(ECHO.read_bytes()).steps if ECHO.exists() else 0
"""Decode ticks of echo.wasm: one per step of the incremental loader."""
"""Ticks per kernel_run in these sessions: small, so padding is short to read."""


@pytest.fixture
def inbox_file(tmp_path: Path) -> Path:
    path = tmp_path / "inputs.json"
    path.write_text(json.dumps(ECHO_INBOX))
    return path


def debug(tmp_path: Path, script: str, kernel: Path = ECHO, **options) -> tuple[str, int]:
    """Run a scripted session in process; returns the transcript and the exit status."""
    path = tmp_path / "script.txt"
    path.write_text(script)
    out = io.StringIO()
    options.setdefault("ticks_per_kernel_run", TICKS)
    status = debugger.main(str(kernel), script=str(path), out=out, **options)
    return out.getvalue(), status


def after(transcript: str, command: str) -> list[str]:
    """The output lines of the first ``command`` in a transcript."""
    lines = transcript.splitlines()
    start = lines.index(f"> {command}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("> ")), len(lines))
    return lines[start:end]


def status_fields(line: str) -> tuple[int, str, str]:
    """(tick, tick state, phase) from a one-line status."""
    match = re.fullmatch(r"tick (\d+) \| ([a-z ()]+?) \| phase ([a-z -]+) \| srs1\w+…\w+", line)
    assert match, line
    return int(match[1]), match[2], match[3]


# --- stepping -------------------------------------------------------------------------------


def test_tick_by_tick_through_loading_into_eval(tmp_path, inbox_file):
    script = "step kernel_run\n" + "step tick\n" * (DECODE + 40)
    transcript, status = debug(tmp_path, script, inputs=str(inbox_file))
    assert status == 0
    lines = [ln for ln in transcript.splitlines() if ln.startswith("tick ")]
    assert status_fields(lines[0]) == (0, "collect", "-")
    # step kernel_run from genesis: the level is fed, the collect call padded to its boundary
    assert status_fields(lines[1]) == (TICKS, "snapshot", "-")
    seen = [status_fields(ln) for ln in lines[2:]]
    assert [tick for tick, _, _ in seen] == list(range(TICKS + 1, TICKS + DECODE + 41))
    states = [(state, phase) for _, state, phase in seen]
    assert states[:DECODE] == [("decode", "decode")] * DECODE  # one tick per loader step
    assert states[DECODE : DECODE + 3] == [("link", "link")] * 3  # one tick per import
    assert states[DECODE + 3] == ("init", "allocate")
    rest = states[DECODE + 4 :]
    first_eval = rest.index(("eval", "eval"))
    assert set(rest[: first_eval - 1]) == {("init", "init program")}  # the data segments
    assert rest[first_eval - 1] == ("init", "enter")
    assert set(rest[first_eval:]) == {("eval", "eval")}


def test_input_ticks_one_message_each(tmp_path, inbox_file):
    transcript, status = debug(tmp_path, "step tick 2\nshow inbox\n", inputs=str(inbox_file))
    assert status == 0
    assert after(transcript, "step tick 2")[:2] == [
        "input: level 1 message 0: Start_of_level",
        "input: level 1 message 1: Info_per_level",
    ]
    assert status_fields(after(transcript, "step tick 2")[2]) == (2, "collect", "-")
    assert after(transcript, "show inbox") == [
        "level in progress: 1 (2 of 5 messages fed)",
        "queued levels: 0",
        "PVM input buffer: 2 message(s)",
        "  level 1 message 0: Start_of_level",
        "  level 1 message 1: Info_per_level",
    ]


def test_a_kernel_stuck_for_good(tmp_path):
    kernel = tmp_path / "spin.wasm"
    kernel.write_bytes(
        wasmtime.wat2wasm(
            '(module (memory (export "memory") 1) (func $spin (loop br 0))'
            ' (func (export "kernel_run") call $spin))'
        )
    )
    transcript, status = debug(
        tmp_path, "step inbox\nshow status\n", kernel=kernel, inputs=str(empty_inbox(tmp_path))
    )
    assert status == 0
    steps = after(transcript, "step inbox")
    assert (
        steps[1] == f"level 1 done at tick {2 * TICKS}: 0 outbox message(s), stuck: too many ticks"
    )
    shown = after(transcript, "show status")
    assert "stuck           too many ticks" in shown
    assert any(line.startswith("top-level call  none: the PVM is stuck for good") for line in shown)


def test_call_stack_values_and_memory_during_eval(tmp_path, inbox_file):
    script = """
        break function 5          # $write_message: 3 imports, then defined function 2
        continue
        show stack
        show values 3
        show code 2
        show memory 100 18
        show memory at 120 for 2 bytes
        show status
    """
    transcript, status = debug(tmp_path, script, inputs=str(inbox_file))
    assert status == 0, transcript
    stop = after(transcript, "continue")
    assert "breakpoint 1 hit: function 5 entered" in stop
    assert "  at func 5 +0: i32.const 126" in stop
    assert status_fields(stop[-1])[1:] == ("eval", "eval")
    stack = after(transcript, "show stack")
    assert stack[0] == "call stack: 2 frame(s), innermost first"
    assert stack[1] == "  #0 func 5 +0: i32.const 126  (next)"
    assert stack[2] == "  #1 func 6 <kernel_run> +7: call 5  (calls)"
    values = after(transcript, "show values 3")
    assert values[0].startswith("value stack: 8 value(s)")
    assert len(values) == 5 and values[-1] == "  … 5 more"
    code = after(transcript, "show code 2")
    assert code[1] == "  =>    0  i32.const 126"
    assert code[2] == "        1  i32.load8_u offset=0 align=1"
    memory = after(transcript, "show memory 100 18")
    assert memory[0].startswith("  00000064  2f 6b 65 72")
    assert memory[0].endswith("|/kernel/env/rebo|") and memory[1].endswith("|ot|")
    assert after(transcript, "show memory at 120 for 2 bytes")[0].startswith("  00000078  00 01 ")
    status_lines = after(transcript, "show status")
    assert any(re.fullmatch(r"phase +eval, machine tick \d+", ln) for ln in status_lines)
    assert any(re.fullmatch(r"state hash +srs1\w{50}", ln) for ln in status_lines)


def test_host_call_in_progress_and_end_instruction(tmp_path):
    kernel, preimages, _ = reveal_kernel(tmp_path)
    script = """
        break function reveal_preimage
        step inbox
        step tick
        show stack
        show code 1
        step tick 2
    """
    transcript, status = debug(
        tmp_path, script, kernel=kernel, preimages=str(preimages), inputs=str(empty_inbox(tmp_path))
    )
    assert status == 0, transcript
    stop = after(transcript, "step inbox")
    assert "  at func 3 <fetch> +4: call 0 <reveal_preimage>" in stop
    stack = after(transcript, "show stack")
    assert stack[1:] == [
        "  #0 func 0 <reveal_preimage>: host call in progress",
        "  #1 func 3 <fetch> +4: call 0 <reveal_preimage>  (calls)",
        "  #2 func 4 <kernel_run> +1: call 3 <fetch>  (calls)",
    ]
    # the next tick is the reveal tick, answered from the directory
    assert after(transcript, "step tick 2")[0].startswith("reveal: preimage 00")
    code = after(transcript, "show code 1")
    assert code[-1] == "        5  end  [return (keep 1, drop 1)]"  # the lowered form beside


# --- levels, outbox, durable -------------------------------------------------------------


def test_outbox_after_step_inbox(tmp_path, inbox_file):
    script = "step inbox\nshow outbox\nshow outbox 1\nshow outbox at level 1\nshow inbox\n"
    transcript, status = debug(tmp_path, script, inputs=str(inbox_file))
    assert status == 0
    steps = after(transcript, "step inbox")
    assert steps[0] == "level 1: feeding 5 messages from tick 0"
    # the collect call, then one kernel_run per message (the kernel reboots until EOL)
    assert steps[1] == f"level 1 done at tick {6 * TICKS}: 2 outbox message(s)"
    assert status_fields(steps[-1]) == (6 * TICKS, "collect", "-")
    outbox = after(transcript, "show outbox")
    assert outbox == [
        "outbox of level 1: 2 message(s)",
        '  0: 68656c6c6f  "hello"',
        '  1: 0102  ".."',
    ]
    assert after(transcript, "show outbox 1") == outbox
    assert after(transcript, "show outbox at level 1") == outbox
    assert after(transcript, "show inbox") == ["queued levels: 0", "PVM input buffer: 0 message(s)"]


def test_load_inputs_then_step_result(tmp_path, inbox_file):
    script = f"""
        show outbox
        load inputs {inbox_file}
        show inbox
        load inputs
        show inbox
        step result
        step result
        step inbox
    """
    transcript, status = debug(tmp_path, script)
    assert status == 0, transcript
    assert after(transcript, "show outbox") == [
        "no outbox yet (the PVM has read no Start_of_level)"
    ]
    assert after(transcript, f"load inputs {inbox_file}") == [
        f"queued 1 level(s) from {inbox_file}: level 1"
    ]
    queued = after(transcript, "show inbox")
    assert queued[:3] == [
        "queued levels: 1",
        f"  level 1 (5 messages, {inbox_file})",
        "    0: Start_of_level",
    ]
    assert "    2: external, 5 bytes 68656c6c6f" in queued
    fed = after(transcript, "load inputs")
    assert fed[:2] == ["level 1: fed 5 messages", "level 1 is in the input buffer"]
    assert status_fields(fed[2]) == (5, "padding", "-")
    lines = transcript.splitlines()
    buffer_view = lines[lines.index("> load inputs") + 4 :]
    assert "level in progress: 1 (5 of 5 messages fed)" in buffer_view[1]
    assert "  level 1 message 3: internal transfer" in buffer_view
    results = [i for i, ln in enumerate(lines) if ln == "> step result"]
    first = lines[results[0] + 1 : results[1]]
    assert first[0] == f"level 1 done at tick {6 * TICKS}: 2 outbox message(s)"
    second = lines[results[1] + 1 :]
    assert second[0].startswith("no level in progress")
    assert "none is queued" in after(transcript, "step inbox")[0]


def test_key_views(tmp_path, inbox_file):
    script = """
        show key /readonly/wasm_version
        show keys /kernel
        show keys
        show key /kernel/boot.wasm
        show key /kernel
        show key /nothing/here
        step inbox
        show key /kernel/env/reboot
        show key /readonly/kernel/env/reboot_counter
        show keys /readonly/kernel/env
        show key bad!key
        show keys /nothing
    """
    transcript, status = debug(tmp_path, script, inputs=str(inbox_file))
    assert status == 1  # the last two commands fail
    assert after(transcript, "show key /readonly/wasm_version") == [
        "/readonly/wasm_version: 8 byte(s)",
        '  322e302e302d7233  "2.0.0-r3"',
    ]
    assert after(transcript, "show keys /kernel") == [
        "/kernel: 2 entries",
        "  boot.wasm  (value, 408 bytes)",
        "  env/  (1 sub-key(s))",
    ]
    assert after(transcript, "show keys")[1:] == [
        "  kernel/  (2 sub-key(s))",
        "  readonly/  (1 sub-key(s))",  # at origination: only wasm_version
    ]
    boot = after(transcript, "show key /kernel/boot.wasm")
    assert boot[0] == "/kernel/boot.wasm: 408 bytes"
    assert (
        boot[1] == "  00000000  00 61 73 6d 01 00 00 00 01 28 07 60 03 7f 7f 7f  |.asm.....(.`....|"
    )
    assert after(transcript, "show key /kernel") == [
        "no value at /kernel; it has 2 sub-key(s): show keys /kernel"
    ]
    assert after(transcript, "show key /nothing/here") == ["no value at /nothing/here"]
    assert after(transcript, "show key /kernel/env/reboot") == [
        "/kernel/env/reboot: 0 byte(s)",
        "  (empty)",
    ]
    assert after(transcript, "show key /readonly/kernel/env/reboot_counter")[1] == (
        '  e9030000  "...."'  # 1001, little-endian: reset at the last yield
    )
    assert after(transcript, "show keys /readonly/kernel/env") == [
        "/readonly/kernel/env: 1 entry",
        "  reboot_counter  (value, 4 bytes)",
    ]
    assert after(transcript, "show key bad!key")[0].startswith("error: invalid durable key")
    assert after(transcript, "show keys /nothing") == ["error: nothing at /nothing"]


def test_debug_kernel_output(tmp_path, inbox_file):
    transcript, status = debug(
        tmp_path,
        "step inbox\nshow status\n",
        kernel=DEBUG_KERNEL,
        inputs=str(inbox_file),
        ticks_per_kernel_run=None,
    )
    assert status == 0
    steps = after(transcript, "step inbox")
    assert steps.count("debug: hello") == 1  # one kernel_run: it never sets the reboot flag
    assert steps[-2] == "level 1 done at tick 22000000000: 0 outbox message(s)"
    assert "11000000000 ticks per kernel_run" in transcript.splitlines()[0]


# --- breakpoints ---------------------------------------------------------------------------


def test_breakpoints(tmp_path, inbox_file):
    script = f"""
        break
        break tick {TICKS + DECODE + 39}
        break function write_output
        break function kernel_run
        break
        continue
        continue
        delete 3
        continue
        show stack
        continue
        delete 1
        delete 2
        continue
        break tick 5
        continue
    """
    transcript, status = debug(tmp_path, script, inputs=str(inbox_file))
    assert status == 0, transcript
    assert after(transcript, "break") == ["no breakpoints"]
    assert after(transcript, "break function write_output") == [
        "breakpoint 2: function 1 <write_output>: host function called"
    ]
    lines = transcript.splitlines()
    listing = lines[lines.index("> break function kernel_run") + 3 :][:3]
    assert listing == [
        f"1: tick {TICKS + DECODE + 39}",
        "2: function 1 <write_output>: host function called",
        "3: function 6 <kernel_run> entered",
    ]
    stops = [lines[i + 1 :] for i, ln in enumerate(lines) if ln == "> continue"]
    # kernel_run is entered at the first Eval tick of the first kernel_run (SOL)
    assert "breakpoint 3 hit: function 6 <kernel_run> entered" in stops[0][1]
    assert status_fields(stops[0][3])[:2] == (TICKS + DECODE + 32, "eval")
    # the tick breakpoint lands exactly on its tick
    assert stops[1][0] == f"breakpoint 1 hit: tick {TICKS + DECODE + 39}"
    assert status_fields(stops[1][2])[0] == TICKS + DECODE + 39
    # write_output is first called for the external message (the third kernel_run)
    assert stops[2][0] == "breakpoint 2 hit: function 1 <write_output>: host function called"
    assert stops[2][1].startswith("  at func 5 +") and stops[2][1].endswith("call 1 <write_output>")
    assert 3 * TICKS < status_fields(stops[2][2])[0] < 4 * TICKS
    stack = after(transcript, "show stack")
    assert stack[1].endswith("call 1 <write_output>  (next)")
    assert stack[2] == "  #1 func 6 <kernel_run> +7: call 5  (calls)"
    assert stops[3][0] == "breakpoint 2 hit: function 1 <write_output>: host function called"
    assert 4 * TICKS < status_fields(stops[3][2])[0] < 5 * TICKS  # the transfer
    assert stops[4][0] == "level 1 done at tick 6000: 2 outbox message(s)"
    assert stops[4][1].startswith("every queued level is processed")
    assert after(transcript, "break tick 5") == ["breakpoint 4: tick 5 (already past)"]


# --- reveals -------------------------------------------------------------------------------

PAGE = b"hello from a preimage"


def reveal_kernel(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """A kernel that reveals a preimage (through a helper function), prints it with
    write_debug, then reveals the metadata; its preimage directory; the reveal hash."""
    reveal_hash = b"\x00" + hashlib.blake2b(PAGE, digest_size=32).digest()
    preimages = tmp_path / "preimages"
    preimages.mkdir(exist_ok=True)
    (preimages / reveal_hash.hex()).write_bytes(PAGE)
    data = "".join(f"\\{b:02x}" for b in reveal_hash)
    wat = f"""
    (module
      (import "smart_rollup_core" "reveal_preimage"
              (func $reveal_preimage (param i32 i32 i32 i32) (result i32)))
      (import "smart_rollup_core" "reveal_metadata"
              (func $reveal_metadata (param i32 i32) (result i32)))
      (import "smart_rollup_core" "write_debug" (func $write_debug (param i32 i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "{data}")
      (func $fetch (param $dst i32) (result i32)
        (call $reveal_preimage (i32.const 0) (i32.const 33) (local.get $dst) (i32.const 4096)))
      (func (export "kernel_run")
        (local $n i32)
        (local.set $n (call $fetch (i32.const 100)))
        (call $write_debug (i32.const 100) (local.get $n))
        (drop (call $reveal_metadata (i32.const 200) (i32.const 24)))))
    """
    kernel = tmp_path / "reveal.wasm"
    kernel.write_bytes(wasmtime.wat2wasm(wat))
    return kernel, preimages, reveal_hash


def empty_inbox(tmp_path: Path) -> Path:
    path = tmp_path / "empty.json"
    path.write_text("[[]]")
    return path


def test_reveals_are_answered_automatically(tmp_path):
    kernel, preimages, reveal_hash = reveal_kernel(tmp_path)
    transcript, status = debug(
        tmp_path,
        "step inbox\n",
        kernel=kernel,
        preimages=str(preimages),
        inputs=str(empty_inbox(tmp_path)),
    )
    assert status == 0, transcript
    assert f"reveals are answered automatically: preimages from {preimages}" in transcript
    steps = after(transcript, "step inbox")
    assert steps[1:4] == [
        f"reveal: preimage {reveal_hash.hex()} answered from preimage directory (21 bytes)",
        "debug: hello from a preimage",
        "reveal: metadata answered from rollup metadata (24 bytes)",
    ]


def test_a_missing_preimage_stops_the_run_and_can_be_given_by_hand(tmp_path):
    kernel, _, reveal_hash = reveal_kernel(tmp_path)
    script = f"""
        step inbox
        show status
        reveal preimage 00
        reveal preimage {PAGE.hex()}
        step result
        reveal preimage {PAGE.hex()}
    """
    transcript, status = debug(tmp_path, script, kernel=kernel, inputs=str(empty_inbox(tmp_path)))
    assert status == 1
    stop = after(transcript, "step inbox")
    assert stop[1].startswith(f"reveal not answered: no preimage directory for {reveal_hash.hex()}")
    assert f"input needed    reveal of preimage {reveal_hash.hex()}" in after(
        transcript, "show status"
    )
    assert after(transcript, "reveal preimage 00") == [
        f"error: those bytes do not hash to {reveal_hash.hex()}"
    ]
    by_hand = after(transcript, f"reveal preimage {PAGE.hex()}")
    assert by_hand[0] == (
        f"reveal: preimage {reveal_hash.hex()} answered from the command line (21 bytes)"
    )
    assert "debug: hello from a preimage" in after(transcript, "step result")
    assert transcript.splitlines()[-1] == "error: no preimage reveal is pending"


# --- errors ----------------------------------------------------------------------------------

BAD_COMMANDS = {
    "frobnicate": "error: unknown command 'frobnicate' (help lists the commands)",
    "step sideways": "error: usage: step tick [N] | step kernel_run | step result | step inbox",
    "step tick 0": "error: the number of ticks must be at least 1, not 0",
    "step tick many": "error: the number of ticks must be an integer, not 'many'",
    "show": "error: usage: show status|inbox|outbox|key|keys|subkeys|memory|stack|values|code …",
    "show memory 0 16": "error: no kernel memory now (tick state collect): it exists from the "
    "Init tick that allocates it to the end of kernel_run",
    "show memory 0": "error: usage: show memory ADDR LEN (or: show memory at ADDR for LEN bytes)",
    "show stack": "error: no kernel code is running (tick state collect); step into Init or "
    "Eval first",
    "show values": "error: no kernel code is running (tick state collect); step into Init or "
    "Eval first",
    "show outbox 42": "error: no outbox at level 42 (outboxes: none)",
    "break function 99": "error: the kernel has 7 functions (0 to 6), not 99",
    "break function nosuch": "error: no function named 'nosuch'",
    "break tick -1": "error: the tick must be at least 0, not -1",
    "break everything": "error: usage: break function N|NAME | break tick T",
    "delete 7": "error: no breakpoint 7",
    "load inputs": "error: no level queued: load inputs FILE queues some",
    "load inputs /no/such/file.json": "error: cannot read /no/such/file.json: No such file or "
    "directory",
    "load stuff": "error: usage: load inputs [FILE]",
    "continue now": "error: usage: continue",
    "reveal preimage 00": "error: no preimage reveal is pending",
    "show key": "error: usage: show key KEY",
}


def test_bad_commands_print_an_error_and_the_session_goes_on(tmp_path):
    script = "\n".join([*BAD_COMMANDS, "step tick", "show status"])
    transcript, status = debug(tmp_path, script)
    assert status == 1
    for command, error in BAD_COMMANDS.items():
        assert after(transcript, command) == [error], command
    assert status_fields(after(transcript, "step tick")[-1])[0] == 0  # waits for input
    assert after(transcript, "step tick")[0].startswith("the PVM waits for an inbox level")
    assert after(transcript, "show status")[0] == "tick            0"
    assert "Traceback" not in transcript


def test_an_unexpected_exception_is_one_line(tmp_path, monkeypatch):
    def broken(_session, _args):
        raise RuntimeError("boom")

    monkeypatch.setattr(debugger_show, "status", broken)
    transcript, status = debug(tmp_path, "show status\nshow keys /kernel\n")
    assert status == 1
    assert after(transcript, "show status") == ["internal error: RuntimeError: boom"]
    assert after(transcript, "show keys /kernel")[0] == "/kernel: 2 entries"


def test_help_and_quit(tmp_path):
    transcript, status = debug(tmp_path, "help step\nquit\nshow status\n")
    assert status == 0
    assert [ln.split()[:2] for ln in after(transcript, "help step")] == [["step", "tick"]] + [
        ["step", w] for w in ("kernel_run", "result", "inbox")
    ]
    assert "> show status" not in transcript  # quit ends the script


# --- as a command ------------------------------------------------------------------------------


def soru(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "soru", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_soru_debug_script(tmp_path, inbox_file):
    script = tmp_path / "session.txt"
    script.write_text("# run the level\nstep inbox   # all of it\nshow outbox\n")
    done = soru(
        "debug",
        "--kernel",
        str(ECHO),
        "--inputs",
        str(inbox_file),
        "--ticks-per-kernel-run",
        str(TICKS),
        "--script",
        str(script),
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert "> step inbox   # all of it" in lines  # echoed as written, comments skipped
    assert "# run the level" not in done.stdout
    assert '  0: 68656c6c6f  "hello"' in lines


def test_soru_debug_reads_stdin_and_fails_cleanly(tmp_path, inbox_file):
    done = soru(
        "debug",
        "--kernel",
        str(ECHO),
        "--ticks-per-kernel-run",
        str(TICKS),
        stdin=f"load inputs {inbox_file}\nstep inbox\nshow outbox 1\nnonsense\n",
    )
    assert done.returncode == 0 and done.stderr == ""
    assert "> step inbox" in done.stdout and '  1: 0102  ".."' in done.stdout
    assert "error: unknown command 'nonsense'" in done.stdout
    failed = soru("debug", "--kernel", str(tmp_path / "missing.wasm"))
    assert failed.returncode == 1
    assert failed.stderr.startswith("DebuggerError: cannot read kernel")
    assert "Traceback" not in failed.stderr
    script = tmp_path / "bad.txt"
    script.write_text("step tick\nshow memory 0 1\n")
    bad = soru("debug", "--kernel", str(ECHO), "--script", str(script))
    assert bad.returncode == 1 and "error: no kernel memory now" in bad.stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
def test_interactive_session_in_tmux(tmp_path, inbox_file):
    """The prompt, typed commands and their output in a real terminal."""
    name = f"soru-debug-{os.getpid()}"
    command = (
        f"{sys.executable} -m soru debug --kernel {ECHO} --inputs {inbox_file} "
        f"--ticks-per-kernel-run {TICKS}"
    )

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout

    def screen_shows(text: str) -> str:
        deadline = time.monotonic() + 30
        while True:
            screen = tmux("capture-pane", "-p", "-t", name, "-S", "-100")
            if text in screen or time.monotonic() > deadline:
                return screen
            time.sleep(0.1)

    tmux("new-session", "-d", "-s", name, "-x", "160", "-y", "50", command)
    try:
        assert "(soru debug)" in screen_shows("(soru debug)")  # the pane drops trailing blanks
        tmux("send-keys", "-t", name, "step inbox", "Enter")
        assert "level 1 done at tick 6000" in screen_shows("level 1 done")
        tmux("send-keys", "-t", name, "show outbox", "Enter")
        screen = screen_shows("68656c6c6f")
        assert '0: 68656c6c6f  "hello"' in screen
        tmux("send-keys", "-t", name, "bogus", "Enter")
        assert "error: unknown command 'bogus'" in screen_shows("unknown command")
        tmux("send-keys", "-t", name, "quit", "Enter")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
