"""Loads and stores have two bindings — struct on a real bytearray, slicing on any other
memory object (the PVM's lazily loaded memory) — and they must agree everywhere: the memory
files of the official suite pass with both."""

from pathlib import Path

import pytest

from soru.tools import wasm_spec
from soru.wasm import runtime

SPEC = Path(__file__).resolve().parents[3].parent / "shared" / "testdata" / "wasm-spec-json"
FILES = ["address", "align", "endianness", "load", "store", "memory", "memory_trap",
         "memory_grow", "float_memory", "memory_copy", "memory_fill", "memory_init"]  # fmt: skip


class ProtocolBytes(bytearray):
    """A bytearray that is not one for the handlers' fast-path check."""


@pytest.mark.skipif(not SPEC.exists(), reason="the spec suite is not present")
def test_memory_files_pass_with_both_bindings(monkeypatch) -> None:
    fast = wasm_spec.run_suite(SPEC, FILES)
    original = runtime.MemInst.__init__

    def init(self, type):  # noqa: A002 - the spec's name
        original(self, type)
        self.data = ProtocolBytes(self.data)

    monkeypatch.setattr(runtime.MemInst, "__init__", init)
    slow = wasm_spec.run_suite(SPEC, FILES)
    assert fast.failed == 0 and slow.failed == 0
    assert fast.passed == slow.passed > 5000
