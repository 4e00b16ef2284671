"""The WebAssembly core test suite (2.0 level, no SIMD), pinned in ``../shared/testdata``.

Runs every converted script through :mod:`soru.tools.wasm_spec` and holds the engine to:
failures at most 0.5% of the assertions run, at least 26,000 passed, at most 700 skipped
(the skips are listed in ``wasm_spec.SKIPS``). Prints the per-file table and the failure
categories (``pytest -s`` shows them).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from soru.tools import wasm_spec

SUITE = Path(
    os.environ.get(
        "SORU_WASM_SPEC_DIR",
        Path(__file__).resolve().parents[3] / "shared" / "testdata" / "wasm-spec-json",
    )
)


@pytest.mark.skipif(not SUITE.is_dir(), reason=f"suite not found at {SUITE}")
def test_core_suite() -> None:
    suite = wasm_spec.run_suite(SUITE)
    print()
    for result in suite.files:
        print(wasm_spec.format_file_line(result))
    print(wasm_spec.format_totals(suite))
    for category, count in suite.failure_categories().most_common():
        print(f"  {count:6d}  {category}")
    run = suite.passed + suite.failed
    assert suite.failed <= run * 0.005, wasm_spec.format_totals(suite)
    assert suite.passed >= 26_000, wasm_spec.format_totals(suite)
    assert suite.skipped <= 700, wasm_spec.format_totals(suite)
