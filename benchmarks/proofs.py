"""Single-tick proof sizes: the distribution over many ticks of real kernels.

For each kernel (Octez's echo and debug kernels, soru's host-call interpreter, the Rust
stack VM of ``kernels/rust`` with its 48 KB function loaded in runs), runs one or
two inbox levels tick by tick with a small ``ticks_per_kernel_run`` and proves every tick
except padding, of which it proves a random sample; prints, per kernel and tick
kind, the number of proofs, the median, 90th percentile and maximum size in bytes, against
the 30,000-byte bound, and the time to produce and to verify a proof (the peer: running the
same tick in memory). Every kind of tick is provable; a tick that were refused (``NotLazy``)
would be counted separately.

    .venv/bin/python benchmarks/proofs.py [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import wasmtime

from soru.encoding import inbox
from soru.pvm import driver, layout, vm
from soru.pvm.lazy import NotLazy
from soru.pvm.proof import MAX_PROOF_SIZE, produce_proof, verify_proof
from soru.pvm.state import InputMessage
from soru.tools.inputs_file import with_markers

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "testdata" / "kernels"


def kernels() -> dict[str, tuple[bytes, list[list[bytes]]]]:
    ext = lambda b: inbox.External(b).encode()  # noqa: E731
    levels = [[ext(b"hello"), ext(bytes(range(200)))], [ext(b"again")]]
    found = {}
    for name in ("echo.wasm", "debug_kernel.wasm"):
        if (SHARED / name).exists():
            found[name] = ((SHARED / name).read_bytes(), levels)
    wat = ROOT / "kernels" / "host_calls.wat"
    if wat.exists():
        sys.path.insert(0, str(ROOT / "tests" / "unit" / "pvm"))
        from pvm_kernels import external, keyed, write

        calls = [write("/a/b", b"x" * 3000), keyed("store_value_size", "/a/b")]
        found["host_calls.wat"] = (
            wasmtime.wat2wasm(wat.read_text()),
            [[external(c) for c in calls]],
        )
    rust = ROOT / "kernels" / "rust"
    if (rust / "stack_vm.wasm").exists():  # a kernel compiled by rustc: a 48 KB function
        spec = importlib.util.spec_from_file_location("gen_vm", rust / "gen_vm.py")
        assert spec is not None and spec.loader is not None
        gen = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(gen)
        programs = [
            gen.assemble(("push8", 5), ("push8", 7), "add", "dup", "output", "counter_inc"),
            gen.assemble(("push32", 1000), "dup", "mul", "output", "halt"),
        ]
        found["stack_vm (Rust)"] = (
            (rust / "stack_vm.wasm").read_bytes(),
            [[ext(p) for p in programs]],
        )
    return found


def measure(kernel: bytes, levels: list[list[bytes]], rate: float, ticks: int) -> dict:
    rng = random.Random(1)
    state = driver.originate(kernel, ticks_per_kernel_run=ticks)
    queue = [(lv, i, m) for lv, ms in enumerate(levels, 1) for i, m in enumerate(with_markers(ms))]
    sizes: dict[str, list[int]] = defaultdict(list)
    times = {"produce": 0.0, "verify": 0.0, "in memory": 0.0, "n": 0}
    not_lazy = 0
    while True:
        message = None
        if vm.input_request(state).kind != "none":
            if not queue:
                break
            message = InputMessage(*queue.pop(0))
        kind = (
            "input"
            if message
            else ("boundary" if state.ticks_to_snapshot <= 0 else state.tick_state.value)
        )
        if kind != "padding" or rng.random() < rate:
            tree = layout.state_tree(state)
            try:
                started = time.perf_counter()
                proof, _ = produce_proof(tree, message=message)
                middle = time.perf_counter()
                verify_proof(proof)
                ended = time.perf_counter()
                sizes[kind].append(proof.size)
                times["produce"] += middle - started
                times["verify"] += ended - middle
                times["n"] += 1
            except NotLazy:
                not_lazy += 1
        started = time.perf_counter()
        if message:
            vm.set_input(state, message)
        else:
            vm.compute(state, 1)
        times["in memory"] += time.perf_counter() - started
    return {"sizes": sizes, "times": times, "not_lazy": not_lazy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rate, ticks = (0.02, 1000) if args.quick else (0.2, 3000)
    print(f"soru single-tick proofs; Python {sys.version.split()[0]}; bound {MAX_PROOF_SIZE} bytes")
    print(
        f"sampling: every tick but padding, {rate:.0%} of padding ticks; "
        f"ticks_per_kernel_run={ticks}"
    )
    print(f"{'kernel':18} {'tick kind':10} {'proofs':>7} {'median':>7} {'p90':>7} {'max':>7}")
    worst = 0
    for name, (kernel, levels) in kernels().items():
        result = measure(kernel, levels, rate, ticks)
        for kind, values in sorted(result["sizes"].items()):
            values.sort()
            p90 = values[int(0.9 * (len(values) - 1))]
            worst = max(worst, values[-1])
            print(
                f"{name:18} {kind:10} {len(values):7} {int(statistics.median(values)):7} "
                f"{p90:7} {values[-1]:7}"
            )
        t = result["times"]
        n = max(1, t["n"])
        print(f"{name:18} {'(loading)':10} {result['not_lazy']:7} refused (NotLazy)")
        print(
            f"{'':18} per proof: produce {1e3 * t['produce'] / n:.2f} ms, verify "
            f"{1e3 * t['verify'] / n:.2f} ms"
        )
    print(f"largest proof: {worst} bytes ({worst / MAX_PROOF_SIZE:.1%} of the bound)")


if __name__ == "__main__":
    main()
