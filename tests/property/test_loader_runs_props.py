"""Property: the kernel loader reads a function body in runs (``soru.pvm.loader_body``) to
exactly the code ``lower_function`` gives it whole — for random valid programs (blocks,
loops, ifs with and without else, br/br_if/br_table at every depth, dead code, calls,
locals), cut into runs of random length. Both passes of the run reader must agree with the
one-shot lowering on every forward target, every static height and every pc.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "pvm"))
from test_loader import _check_loaded, _step_all  # noqa: E402
from test_resumable import programs  # noqa: E402

from soru.pvm import loader, loader_body  # noqa: E402
from soru.wasm.encode import encode_module  # noqa: E402


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs(), run_instrs=st.integers(1, 9), run_bytes=st.integers(1, 40))
def test_runs_lower_like_the_whole_body(program, run_instrs: int, run_bytes: int) -> None:
    module, _, _ = program
    kernel = encode_module(module)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loader_body, "SMALL_BODY", -1)
        patch.setattr(loader_body, "RUN_INSTRS", run_instrs)
        patch.setattr(loader_body, "RUN_BYTES", run_bytes)
        patch.setattr(loader_body, "_WINDOWS", (run_bytes + 3, run_bytes + 64, 1 << 16))
        loader._OUTCOMES.clear()
        try:
            assert loader.check_kernel(kernel).error is None
            tree, _ = _step_all(kernel)
        finally:
            loader._OUTCOMES.clear()
    _check_loaded(tree, module)
