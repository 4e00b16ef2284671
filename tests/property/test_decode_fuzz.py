"""Fuzzing the binary decoder: whatever the bytes, it returns a Module or raises DecodeError.

Seeds are the well-formed binary modules of the WebAssembly spec suite (see
``tests/spec/test_binary_suite.py`` for its source and commit) and the example kernels in
``../shared/testdata/kernels``. Hypothesis mutates them — flipping bits, overwriting,
inserting and deleting bytes, truncating, splicing random bytes — and also feeds random
bytes behind a valid header. No input may escape as ``IndexError``, ``ValueError``,
``UnicodeDecodeError``, ``RecursionError``, ``MemoryError`` or any other exception.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soru.wasm.binary import MAGIC, VERSION, decode_module
from soru.wasm.errors import DecodeError
from soru.wasm.syntax import Module

TESTDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata"
_MAX_SEED_SIZE = 8192  # small seeds keep each example fast; they still cover every section


def _seeds() -> list[bytes]:
    """Well-formed module bytes: the suite's binary ``module`` commands and the kernels."""
    seeds = [p.read_bytes() for p in sorted((TESTDATA / "kernels").glob("*.wasm"))]
    for path in sorted((TESTDATA / "wasm-spec-json").glob("*/*.json")):
        for command in json.loads(path.read_text())["commands"]:
            filename = command.get("filename", "")
            if command["type"] == "module" and filename.endswith(".wasm"):
                data = (path.parent / filename).read_bytes()
                if 8 < len(data) <= _MAX_SEED_SIZE:
                    seeds.append(data)
    return seeds


SEEDS = _seeds()
if not SEEDS:
    pytest.skip(f"no seed modules found under {TESTDATA}", allow_module_level=True)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed module with one to six random edits."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        edit = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "splice"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if edit == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255))]))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif edit == "truncate":
            del data[at:]
        elif edit == "splice":
            chunk = draw(st.binary(min_size=1, max_size=32))
            data[at : at + len(chunk)] = chunk
    return bytes(data)


random_after_header = st.binary(max_size=256).map(lambda tail: MAGIC + VERSION + tail)


def _decode_or_reject(data: bytes, forbid_floats: bool) -> None:
    try:
        result = decode_module(data, forbid_floats=forbid_floats)
    except DecodeError as error:
        assert error.offset is not None and 0 <= error.offset <= len(data)
    else:
        assert isinstance(result, Module)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.booleans())
def test_mutated_modules_decode_or_raise_decode_error(data: bytes, forbid_floats: bool) -> None:
    _decode_or_reject(data, forbid_floats)


@settings(max_examples=500, deadline=None)
@given(st.one_of(random_after_header, st.binary(max_size=64)), st.booleans())
def test_random_bytes_decode_or_raise_decode_error(data: bytes, forbid_floats: bool) -> None:
    _decode_or_reject(data, forbid_floats)
