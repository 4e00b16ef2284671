"""Golden traces: the state hashes of reference kernels at fixed ticks, and after each level
on both engines, as recorded in ``golden_traces.json`` for the layout version named there.

A state hash is the PVM's whole meaning at a tick: the same kernel and inbox must give the
same hashes on every machine and in every later version of the code — unless the tick
semantics or the state layout change on purpose, which is a new PVM version
(``soru.pvm.layout.LAYOUT_VERSION``). So:

* same version, other hashes: a change altered the PVM without a version bump — a bug, or
  a missing bump;
* another version: bump recorded, regenerate the traces with
  ``.venv/bin/python tests/regression/test_golden_traces.py --update`` and review the diff.

The kernels: Octez's ``echo.wasm`` and ``debug_kernel.wasm``, soru's host-call interpreter
(``kernels/host_calls.wat``: durable writes, reads and an output), and the compiled Rust
stack VM (``kernels/rust``: a long body loaded in runs). The ticks cover origination,
loading (Decode, Link, Init), evaluation, inputs and padding.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import wasmtime

from soru.encoding import inbox
from soru.pvm import driver, layout
from soru.pvm.reveals import RevealProvider
from soru.tools.inputs_file import with_markers

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "testdata" / "kernels"
GOLDEN = Path(__file__).with_name("golden_traces.json")
TICKS_PER_KERNEL_RUN = 200_000
TICKS = (0, 1, 2, 3, 5, 10, 100, 400, 1_000, 5_000, 50_000, 199_999, 200_000, 200_001, 450_000)
REVEALS = RevealProvider(None, bytes(range(1, 21)), 0)


def _external(payload: bytes) -> bytes:
    return inbox.External(payload).encode()


def _cases() -> dict[str, tuple[bytes, list[list[bytes]]]]:
    """Each reference kernel with its inbox (levels of messages, markers not included)."""
    sys.path.insert(0, str(ROOT / "tests" / "unit" / "pvm"))
    from pvm_kernels import build, external, keyed, write

    spec = importlib.util.spec_from_file_location("gen_vm", ROOT / "kernels/rust/gen_vm.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    echo_inbox = [[_external(b"hello"), _external(bytes(range(100)))], [_external(b"again")]]
    return {
        "echo.wasm": ((SHARED / "echo.wasm").read_bytes(), echo_inbox),
        "debug_kernel.wasm": ((SHARED / "debug_kernel.wasm").read_bytes(), echo_inbox),
        "host_calls.wat": (
            bytes(build("host_calls")),
            [
                [external(write("/a/b", b"x" * 300)), external(keyed("store_value_size", "/a/b"))],
                [external(write("/a/c", b"y" * 3000, offset=10))],
            ],
        ),
        "stack_vm.wasm (Rust)": (
            (ROOT / "kernels/rust/stack_vm.wasm").read_bytes(),
            [
                [_external(gen.assemble(("push8", 5), ("push8", 7), "add", "dup", "output"))],
                [_external(gen.assemble(("push32", 1000), "dup", "mul", "output", "halt"))],
            ],
        ),
    }


def _hash(state) -> str:
    return layout.show_state_hash(layout.state_hash(state))


def trace(kernel: bytes, levels: list[list[bytes]]) -> dict:
    """The hashes at :data:`TICKS` (as far as the inbox goes), and after each level on each
    engine."""
    state = driver.originate(kernel, ticks_per_kernel_run=TICKS_PER_KERNEL_RUN)
    queue = [
        (level, counter, payload)
        for level, messages in enumerate(levels, 1)
        for counter, payload in enumerate(with_markers(messages))
    ]
    at: dict[str, str] = {}
    for tick in TICKS:
        try:
            driver.advance_to(state, tick, queue, REVEALS)
        except driver.InboxExhausted:
            break
        at[str(tick)] = _hash(state)
    after: dict[str, list[str]] = {}
    for engine in ("interpreter", "wasmtime"):
        state = driver.originate(kernel, ticks_per_kernel_run=TICKS_PER_KERNEL_RUN)
        hashes = []
        for level, messages in enumerate(levels, 1):
            driver.run_level(state, level, with_markers(messages), REVEALS, engine=engine)
            hashes.append(f"{state.tick} {_hash(state)}")
        after[engine] = hashes
    return {"at_tick": at, "after_level": after}


def traces() -> dict:
    return {name: trace(kernel, levels) for name, (kernel, levels) in _cases().items()}


@pytest.fixture(scope="module")
def golden() -> dict:
    recorded = json.loads(GOLDEN.read_text(encoding="utf-8"))
    version = layout.LAYOUT_VERSION.decode()
    if recorded["layout_version"] != version:
        pytest.fail(
            f"the golden traces are for {recorded['layout_version']}, the PVM is {version}: "
            "regenerate them (--update) and review the diff"
        )
    return recorded["traces"]


@pytest.mark.parametrize("name", sorted(_cases()))
def test_state_hashes_match_the_golden_trace(name: str, golden: dict) -> None:
    kernel, levels = _cases()[name]
    got = trace(kernel, levels)
    assert got["after_level"]["interpreter"] == got["after_level"]["wasmtime"]
    assert got == golden[name], (
        f"{name}: the state hashes changed without a PVM version bump "
        f"(soru.pvm.layout.LAYOUT_VERSION is still {layout.LAYOUT_VERSION.decode()})"
    )


def test_the_traces_cover_loading_evaluation_and_padding(golden: dict) -> None:
    for name, recorded in golden.items():
        assert len(recorded["at_tick"]) >= 10, name
        assert len(set(recorded["at_tick"].values())) >= 10, name  # the hashes move
        assert len(recorded["after_level"]["interpreter"]) == 2, name


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: test_golden_traces.py --update   (rewrites golden_traces.json)")
    wasmtime.Engine()  # fail early, as the tests would, if wasmtime is missing
    document = {"layout_version": layout.LAYOUT_VERSION.decode(), "traces": traces()}
    GOLDEN.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")
