"""The ``soru`` command, run as a user runs it (a subprocess of ``python -m soru``).

Checks exit statuses and output formats of ``soru wasm validate``, ``soru wasm run`` and
``soru wasm spec``, and that bad input never shows a Python traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

wasmtime = pytest.importorskip("wasmtime")

ADD = """(module
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func (export "add64") (param i64 i64) (result i64) local.get 0 local.get 1 i64.add)
  (func (export "pair") (result i32 i64) i32.const -1 i64.const 7)
  (func (export "none"))
  (func (export "div") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s)
  (func $deep (export "deep") (param i32) (result i32)
    local.get 0 i32.const 1 i32.add call $deep)
  (func (export "spin") (loop $l br $l))
)"""
INVALID = '(module (func (export "f") (result i32) i64.const 0))'
FLOATS = '(module (func (export "f") (result f32) f32.const 1.5))'
IMPORTS = '(module (import "env" "g" (func)) (func (export "f")))'


def soru(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m soru ARGS`` and capture its output."""
    env = {**os.environ, "SORU_DEBUG": ""}
    return subprocess.run(
        [sys.executable, "-m", "soru", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def write_wasm(tmp_path: Path, name: str, wat: str) -> Path:
    path = tmp_path / f"{name}.wasm"
    path.write_bytes(wasmtime.wat2wasm(wat))
    return path


@pytest.fixture
def add_wasm(tmp_path: Path) -> Path:
    return write_wasm(tmp_path, "add", ADD)


def assert_clean_failure(done: subprocess.CompletedProcess[str], error_class: str) -> None:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.startswith(f"{error_class}: "), done.stderr


# --- soru wasm validate -------------------------------------------------------------------


def test_validate_valid(add_wasm: Path) -> None:
    done = soru("wasm", "validate", str(add_wasm))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "valid"


def test_validate_invalid(tmp_path: Path) -> None:
    done = soru("wasm", "validate", str(write_wasm(tmp_path, "bad", INVALID)))
    assert_clean_failure(done, "InvalidModule")


def test_validate_forbid_floats(tmp_path: Path) -> None:
    path = write_wasm(tmp_path, "floats", FLOATS)
    assert soru("wasm", "validate", str(path)).returncode == 0
    assert_clean_failure(soru("wasm", "validate", "--forbid-floats", str(path)), "FloatsForbidden")


def test_validate_garbage(tmp_path: Path) -> None:
    path = tmp_path / "garbage.wasm"
    path.write_bytes(bytes(range(7, 250, 3)))
    assert_clean_failure(soru("wasm", "validate", str(path)), "DecodeError")


@pytest.mark.parametrize("keep", [0, 3, 7, 9, 20, -1])
def test_validate_truncated(add_wasm: Path, tmp_path: Path, keep: int) -> None:
    data = add_wasm.read_bytes()
    path = tmp_path / "cut.wasm"
    path.write_bytes(data[:keep])
    assert_clean_failure(soru("wasm", "validate", str(path)), "DecodeError")


def test_validate_missing_file(tmp_path: Path) -> None:
    done = soru("wasm", "validate", str(tmp_path / "absent.wasm"))
    assert done.returncode == 1
    assert "no such file" in done.stderr and "Traceback" not in done.stderr


# --- soru wasm run ------------------------------------------------------------------------


def last_json(done: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_run_results_json(add_wasm: Path) -> None:
    done = soru("wasm", "run", str(add_wasm), "--invoke", "add", "2", "3", "--json")
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    out = json.loads(line)
    assert out["results"] == [["i32", "5"]]
    assert isinstance(out["ticks"], int) and out["ticks"] > 0
    assert line == f'{{"results": [["i32", "5"]], "ticks": {out["ticks"]}}}'


def test_run_negative_args(add_wasm: Path) -> None:
    done = soru("wasm", "run", str(add_wasm), "--invoke", "add", "-1", "0", "--json")
    assert last_json(done)["results"] == [["i32", "4294967295"]]
    done = soru("wasm", "run", str(add_wasm), "--invoke", "add64", "-2", "1", "--json")
    assert last_json(done)["results"] == [["i64", str(2**64 - 1)]]


def test_run_multi_value_and_none(add_wasm: Path) -> None:
    done = soru("wasm", "run", str(add_wasm), "--invoke", "pair", "--json")
    assert last_json(done)["results"] == [["i32", "4294967295"], ["i64", "7"]]
    done = soru("wasm", "run", str(add_wasm), "--invoke", "none", "--json")
    assert last_json(done)["results"] == []


def test_run_human_readable(add_wasm: Path) -> None:
    done = soru("wasm", "run", str(add_wasm), "--invoke", "add", "-1", "0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "i32 4294967295 (signed -1)"


def test_run_trap(add_wasm: Path) -> None:
    done = soru("wasm", "run", str(add_wasm), "--invoke", "div", "1", "0", "--json")
    assert done.returncode == 1
    out = last_json(done)
    assert out["trap"] == "integer divide by zero" and isinstance(out["ticks"], int)
    assert list(out) == ["trap", "ticks"]
    plain = soru("wasm", "run", str(add_wasm), "--invoke", "div", "1", "0")
    assert plain.returncode == 1 and "integer divide by zero" in plain.stderr


def test_run_exhaustion(add_wasm: Path) -> None:
    done = soru("wasm", "run", str(add_wasm), "--invoke", "deep", "0", "--json")
    assert done.returncode == 1, done.stderr
    assert last_json(done)["trap"] == "call stack exhausted"


def test_run_tick_limit(add_wasm: Path) -> None:
    done = soru("wasm", "run", str(add_wasm), "--invoke", "spin", "--max-ticks", "1000", "--json")
    assert done.returncode == 2, done.stderr
    assert last_json(done) == {"error": "tick limit reached", "ticks": 1000}


def test_run_enough_ticks(add_wasm: Path) -> None:
    done = soru(
        "wasm", "run", str(add_wasm), "--invoke", "add", "1", "1", "--max-ticks", "1000", "--json"
    )
    assert done.returncode == 0 and last_json(done)["results"] == [["i32", "2"]]


def test_run_unlinkable(tmp_path: Path) -> None:
    done = soru("wasm", "run", str(write_wasm(tmp_path, "imp", IMPORTS)), "--invoke", "f")
    assert_clean_failure(done, "LinkError")


def test_run_bad_requests(add_wasm: Path) -> None:
    assert_clean_failure(soru("wasm", "run", str(add_wasm), "--invoke", "nope"), "CliError")
    assert_clean_failure(soru("wasm", "run", str(add_wasm), "--invoke", "add", "1"), "CliError")
    assert_clean_failure(
        soru("wasm", "run", str(add_wasm), "--invoke", "add", "x", "1"), "CliError"
    )
    assert_clean_failure(
        soru("wasm", "run", str(add_wasm), "--invoke", "add", str(2**32), "1"), "CliError"
    )


# --- soru wasm spec -----------------------------------------------------------------------


def make_suite(root: Path) -> Path:
    """A two-file suite: ``good`` passes everything; ``mixed`` has one failure and a skip."""
    for name in ("good", "mixed"):
        folder = root / name
        folder.mkdir(parents=True)
        (folder / f"{name}.0.wasm").write_bytes(wasmtime.wat2wasm(ADD))
        (folder / f"{name}.1.wasm").write_bytes(wasmtime.wat2wasm(INVALID))
        (folder / f"{name}.2.wasm").write_bytes(b"\0asm\x02\0\0\0")

    def add(line: int, a: str, b: str, result: str) -> dict:
        args = [{"type": "i32", "value": a}, {"type": "i32", "value": b}]
        return {
            "type": "assert_return",
            "line": line,
            "action": {"type": "invoke", "field": "add", "args": args},
            "expected": [{"type": "i32", "value": result}],
        }

    def commands(name: str) -> list[dict]:
        return [
            {"type": "module", "line": 1, "filename": f"{name}.0.wasm"},
            add(2, "1", "2", "3"),
            add(3, "4294967295", "1", "0"),
            {
                "type": "assert_trap",
                "line": 4,
                "text": "integer divide by zero",
                "action": {
                    "type": "invoke",
                    "field": "div",
                    "args": [{"type": "i32", "value": "1"}, {"type": "i32", "value": "0"}],
                },
                "expected": [{"type": "i32"}],
            },
            {
                "type": "assert_invalid",
                "line": 5,
                "filename": f"{name}.1.wasm",
                "text": "type mismatch",
                "module_type": "binary",
            },
            {
                "type": "assert_malformed",
                "line": 6,
                "filename": f"{name}.2.wasm",
                "text": "unknown binary version",
                "module_type": "binary",
            },
        ]

    (root / "good" / "good.json").write_text(json.dumps({"commands": commands("good")}))
    mixed = commands("mixed") + [
        add(7, "1", "1", "3"),
        {
            "type": "assert_malformed",
            "line": 8,
            "filename": "mixed.3.wat",
            "text": "unexpected token",
            "module_type": "text",
        },
    ]
    (root / "mixed" / "mixed.json").write_text(json.dumps({"commands": mixed}))
    return root


def test_spec_all_pass(tmp_path: Path) -> None:
    suite = make_suite(tmp_path / "suite")
    done = soru("wasm", "spec", str(suite), "--only", "good")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "good: 5 passed, 0 failed, 0 skipped",
        "5 passed, 0 failed, 0 skipped",
    ]


def test_spec_failures(tmp_path: Path) -> None:
    suite = make_suite(tmp_path / "suite")
    done = soru("wasm", "spec", str(suite), "--verbose")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0] == "good: 5 passed, 0 failed, 0 skipped"
    assert "mixed: 5 passed, 1 failed, 1 skipped" in lines
    assert any("line 7" in line and "wrong result" in line for line in lines)
    assert lines[-1] == "10 passed, 1 failed, 1 skipped"


def test_spec_bad_directory(tmp_path: Path) -> None:
    done = soru("wasm", "spec", str(tmp_path / "nowhere"))
    assert done.returncode == 1 and "is not a directory" in done.stderr
    make_suite(tmp_path / "suite")
    done = soru("wasm", "spec", str(tmp_path / "suite"), "--only", "absent")
    assert done.returncode == 1 and "absent" in done.stderr


def test_no_arguments_prints_usage() -> None:
    done = soru()
    assert done.returncode == 2 and "usage" in done.stderr


def test_spec_broken_script_fails_commands_not_run(tmp_path: Path) -> None:
    """A missing module file, a command without its action and an unknown command each
    fail one command; the run goes on and reports them."""
    folder = tmp_path / "suite" / "broken"
    folder.mkdir(parents=True)
    (folder / "broken.1.wasm").write_bytes(wasmtime.wat2wasm(ADD))
    args = [{"type": "i32", "value": "1"}, {"type": "i32", "value": "2"}]
    invoke = {"type": "invoke", "field": "add", "args": args}
    commands = [
        {"type": "module", "line": 1, "filename": "broken.0.wasm"},
        {
            "type": "assert_return",
            "line": 2,
            "action": invoke,
            "expected": [{"type": "i32", "value": "3"}],
        },
        {"type": "module", "line": 3, "filename": "broken.1.wasm"},
        {"type": "assert_return", "line": 4},
        {"type": "assert_weird", "line": 5},
        {
            "type": "assert_return",
            "line": 6,
            "action": invoke,
            "expected": [{"type": "i32", "value": "3"}],
        },
    ]
    (folder / "broken.json").write_text(json.dumps({"commands": commands}))
    done = soru("wasm", "spec", str(tmp_path / "suite"), "--verbose")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    out = done.stdout
    assert "broken: 1 passed, 3 failed, 0 skipped" in out
    assert "line 1: module: ScriptError: cannot read broken.0.wasm" in out
    assert "line 2: assert_return: script error: no current module" in out
    assert "line 4: assert_return: crash KeyError" in out
    assert "line 5: assert_weird: script error: unknown command type" in out
    assert "1 module(s) failed to load" in out


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        ({"type": "f32", "value": "nan:canonical"}, 0x7FC0_0000, True),
        ({"type": "f32", "value": "nan:canonical"}, 0xFFC0_0000, True),
        ({"type": "f32", "value": "nan:canonical"}, 0x7FC0_0001, False),
        ({"type": "f32", "value": "nan:arithmetic"}, 0x7FC0_0001, True),
        ({"type": "f32", "value": "nan:arithmetic"}, 0x7FA0_0000, False),
        ({"type": "f64", "value": "nan:canonical"}, 0x7FF8 << 48, True),
        ({"type": "f64", "value": "nan:arithmetic"}, (0xFFF8 << 48) | 5, True),
        ({"type": "f64", "value": "nan:arithmetic"}, 0x7FF0 << 48, False),
        ({"type": "f32", "value": "2143289344"}, 0x7FC0_0000, True),
        ({"type": "funcref", "value": "null"}, None, True),
        ({"type": "funcref", "value": "0"}, 17, True),
        ({"type": "funcref", "value": "0"}, None, False),
        ({"type": "externref", "value": "3"}, 3, True),
        ({"type": "externref", "value": "3"}, 4, False),
        ({"type": "externref", "value": "null"}, 0, False),
    ],
)
def test_spec_value_matching(expected: dict, actual: int | None, ok: bool) -> None:
    from soru.tools.wasm_spec import matches

    assert matches(expected, actual) is ok
