"""``soru pvm run`` as a user runs it (a subprocess of ``python -m soru``): the ``--json``
line format, ``--dump-durable``, preimages, the rollup's metadata, stuck kernels, inbox
files that are refused — and determinism: the same kernel and inputs give the same state
hashes twice in a process and in another process."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from pvm_kernels import (
    SCRATCH,
    TICKS,
    build,
    external,
    host_call,
    keyed,
    read_log,
    run_levels,
    write,
)

from soru.crypto.addresses import RollupAddress
from soru.pvm import layout
from soru.tools import pvm_run
from soru.tools.inputs_file import InputsFileError, load_levels
from soru.tools.preimages import prepare_preimages, write_preimages

TESTDATA = Path(__file__).resolve().parents[4] / "shared" / "testdata" / "kernels"
KEYS = ["level", "ticks", "state_hash", "stuck", "outbox", "debug"]


def soru(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SORU_DEBUG": ""}
    return subprocess.run(
        [sys.executable, "-m", "soru", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def pvm_run_cli(kernel: bytes, levels: list, tmp_path: Path, *options: str | Path):
    kernel_path, inputs_path = tmp_path / "kernel.wasm", tmp_path / "inputs.json"
    kernel_path.write_bytes(kernel)
    inputs_path.write_text(json.dumps(levels))
    done = soru(
        "pvm",
        "run",
        "--kernel",
        kernel_path,
        "--inputs",
        inputs_path,
        "--ticks-per-kernel-run",
        str(TICKS),
        *options,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def ext(payload: bytes) -> dict:
    """An inbox-file message: an external message with this payload."""
    return {"external": payload.hex()}


def test_json_lines_have_the_documented_keys_in_order(tmp_path):
    echo = (TESTDATA / "echo.wasm").read_bytes()
    lines = pvm_run_cli(echo, [[ext(b"hello")], [], [ext(b"a"), ext(b"b")]], tmp_path, "--json")
    reports = [json.loads(line) for line in lines]
    assert [list(r) for r in reports] == [KEYS] * 3
    assert [r["level"] for r in reports] == [1, 2, 3]
    assert [r["ticks"] for r in reports] == [5 * TICKS, 9 * TICKS, 15 * TICKS]  # running totals
    assert [r["outbox"] for r in reports] == [[b"hello".hex()], [], [b"a".hex(), b"b".hex()]]
    assert all(r["stuck"] is None and r["debug"] == [] for r in reports)
    assert all(r["state_hash"].startswith("srs1") for r in reports)
    assert len({r["state_hash"] for r in reports}) == 3
    # exactly json.dumps of the dict: ", " and ": " separators, one object per line
    assert lines == [json.dumps(r) for r in reports]


def test_the_cli_agrees_with_the_driver_and_dumps_durable_storage(tmp_path):
    """Determinism across processes: the subprocess prints the state hashes the driver
    computes here, and ``--dump-durable`` prints every durable value as hex."""
    kernel = build("host_calls")
    calls = [write("/a/b", b"value"), keyed("store_create", "/zeros", 3)]
    levels = [[ext(c) for c in calls], [ext(write("/a", b"root"))]]
    lines = pvm_run_cli(kernel, levels, tmp_path, "--json", "--dump-durable")
    *reports, dump = map(json.loads, lines)

    state, _ = run_levels(kernel, [[external(c) for c in calls]])
    first_hash = layout.show_state_hash(layout.state_hash(state))
    run_levels(kernel, [[external(write("/a", b"root"))]], state=state, first_level=2)
    assert [r["state_hash"] for r in reports] == [
        first_hash,
        layout.show_state_hash(layout.state_hash(state)),
    ]
    assert list(dump) == ["durable"]
    assert dump["durable"] == pvm_run.durable_values(state.durable)
    values = dump["durable"]
    assert values["/a/b"] == b"value".hex() and values["/a"] == b"root".hex()
    assert values["/zeros"] == "000000"
    assert values["/kernel/boot.wasm"] == kernel.hex()
    assert values["/readonly/wasm_version"] == b"2.0.0-r3".hex()
    assert values["/readonly/kernel/env/reboot_counter"] == struct.pack("<i", 1001).hex()
    assert list(values) == sorted(values)


def test_text_output_and_debug_lines(tmp_path):
    debug = (TESTDATA / "debug_kernel.wasm").read_bytes()
    lines = pvm_run_cli(debug, [[], []], tmp_path)
    assert len(lines) == 4
    assert lines[0].startswith(f"level 1: {2 * TICKS} ticks, srs1")
    assert lines[2].startswith(f"level 2: {4 * TICKS} ticks, srs1")
    assert lines[1] == lines[3] == "  debug: hello"
    json_lines = pvm_run_cli(debug, [[]], tmp_path, "--json")
    assert json.loads(json_lines[0])["debug"] == ["hello"]


def test_preimages_rollup_and_origination_level(tmp_path):
    data = bytes(range(256)) * 40  # three pages
    tree = prepare_preimages(data)
    directory = write_preimages(tree, tmp_path / "preimages")
    rollup = "sr1RYurGZtN8KNSpkMcCt9CgWeUaNkzsAfXf"
    levels = [[ext(tree.root)]]
    lines = pvm_run_cli(
        build("reveal_tree"), levels, tmp_path, "--json", "--dump-durable", "--preimages", directory
    )
    assert json.loads(lines[-1])["durable"]["/data"] == data.hex()

    metadata = host_call("reveal_metadata", SCRATCH, 24, dump=(SCRATCH, 24))
    lines = pvm_run_cli(
        build("host_calls"),
        [[ext(metadata)]],
        tmp_path,
        "--json",
        "--dump-durable",
        "--rollup",
        rollup,
        "--origination-level",
        "41",
    )
    assert json.loads(lines[0])["level"] == 42
    log = bytes.fromhex(json.loads(lines[-1])["durable"]["/log"])
    assert log[12:] == RollupAddress.of_b58(rollup).digest + struct.pack(">i", 41)


def test_a_stuck_kernel_is_reported(tmp_path):
    lines = pvm_run_cli(build("loop"), [[], [ext(b"x")]], tmp_path, "--json")
    first, second = map(json.loads, lines)
    assert first["stuck"] == second["stuck"] == "too many ticks"
    assert (first["ticks"], second["ticks"]) == (2 * TICKS, 2 * TICKS + 4)


# --- inbox files that are refused --------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        {"external": "aa" * 4096},  # 4097 bytes with its tag
        {"raw": "01" + "aa" * 4096},
        {"payload": "0x" + "aa" * 4090},  # a transfer of more than 4096 bytes
    ],
)
def test_an_oversized_message_is_refused_with_its_level_and_index(tmp_path, message):
    path = tmp_path / "inputs.json"
    path.write_text(json.dumps([[ext(b"fine")], [ext(b"fine"), message]]))
    with pytest.raises(InputsFileError, match=r"^level 1, message 1: "):
        load_levels(path)
    kernel = tmp_path / "echo.wasm"
    kernel.write_bytes((TESTDATA / "echo.wasm").read_bytes())
    done = soru("pvm", "run", "--kernel", kernel, "--inputs", path, "--json")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("InputsFileError: level 1, message 1: ")
    assert "Traceback" not in done.stderr


def test_a_message_of_exactly_4096_bytes_is_accepted(tmp_path):
    path = tmp_path / "inputs.json"
    path.write_text(json.dumps([[{"external": "aa" * 4095}, {"raw": "01" + "bb" * 4095}]]))
    first, second = load_levels(path)[0]
    assert len(first) == len(second) == 4096


def test_the_error_names_the_level_and_message_once(tmp_path):
    path = tmp_path / "inputs.json"
    path.write_text(json.dumps([[{"raw": "01" + "aa" * 4096}]]))
    with pytest.raises(InputsFileError) as error:
        load_levels(path)
    assert str(error.value).count("level 0, message 0") == 1


# --- determinism -------------------------------------------------------------------------------


def scenario_hashes() -> list[str]:
    """State hashes after each level of a run that reboots, traps and writes outputs."""
    kernel = build("host_calls")
    levels = [
        [external(write("/x", b"1")), external(host_call("write_output", SCRATCH, 10))],
        [external(keyed("store_create", "/y", 5000))],
        [],
    ]
    state = None
    hashes = []
    for offset, messages in enumerate(levels):
        state, _ = run_levels(kernel, [messages], state=state, first_level=1 + offset)
        hashes.append(layout.show_state_hash(layout.state_hash(state)))
    assert [e.result for e in read_log(state)] == [0, 0, 0]
    # the same message asks reboot.wat for 117 runs, makes trap.wat trap and upgrade.wat
    # install a kernel that is not wasm
    for name in ("reboot", "trap", "upgrade"):
        state, _ = run_levels(build(name), [[external(b"u" + bytes(3))], []])
        hashes.append(layout.show_state_hash(layout.state_hash(state)))
    return hashes


def test_the_same_kernel_and_inputs_give_the_same_state_hashes():
    first, second = scenario_hashes(), scenario_hashes()
    assert first == second
    assert len(set(first)) == len(first)
    # and in another process, with another string-hash seed
    program = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import test_pvm_run_cli as t; "
        "print(json.dumps(t.scenario_hashes()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == first
