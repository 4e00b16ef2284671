"""Benchmark of the PVM's two engines, and of wasmtime without the PVM, in one process.

The workload is a kernel doing real work per message (``KERNEL_WAT`` below): each
kernel_run reads one input and asks for a reboot, so a level runs the kernel once per inbox
message (markers included) and once more to yield. For an external message it reads three
durable values (a count, a running digest, a byte total), mixes every payload byte into the
digest ``ROUNDS`` times (an FNV-style multiply and xor-shift per byte), writes the three
values and the payload's first 64 bytes back, and writes the digest to the outbox.

Three measurements over the same levels of messages:

* **interpreter** — ``driver.run_level(engine="interpreter")``: soru's machine, tick by
  tick. Reported as ticks per second, counting the ticks of kernel_runs (from Snapshot to
  Padding; padding is skipped in O(1) and not counted), and as kernel_runs per second;
* **fast engine** — ``driver.run_level(engine="wasmtime")``: the same levels on wasmtime,
  instrumented to count soru's ticks, with soru's host functions over the real durable
  storage (``soru.pvm.fast``). Kernel_runs per second; its ticks are the interpreter's
  (checked: same tick counts and state hash after every level, else ``MISMATCH``);
* **raw wasmtime** — the same kernel module, uninstrumented, with trivial host stubs
  (``read_input`` copies the next message; the store functions do nothing but say "no
  value"), a fresh instance per kernel_run as the PVM makes. Kernel_runs per second.

Timed with ``time.perf_counter`` around each ``run_level`` (state hashing for the check is
outside), the garbage collector off during timed sections, best of ``--repeat`` for the
fast engine and raw wasmtime (the interpreter runs once). Ratios: fast/interpreter and
raw/fast in kernel_runs per second.

Run: ``.venv/bin/python benchmarks/pvm.py [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
from collections import Counter
from importlib import metadata

import wasmtime

from soru.encoding import inbox
from soru.pvm import driver, fast, layout
from soru.pvm.reveals import RevealProvider
from soru.tools.inputs_file import with_markers

ROUNDS = 8
"""Times the digest loop goes over a payload."""

KERNEL_WAT = """
(module
  (import "smart_rollup_core" "read_input" (func $read_input (param i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "write_output" (func $write_output (param i32 i32) (result i32)))
  (import "smart_rollup_core" "store_read"
    (func $store_read (param i32 i32 i32 i32 i32) (result i32)))
  (import "smart_rollup_core" "store_write"
    (func $store_write (param i32 i32 i32 i32 i32) (result i32)))
  (memory 1)
  (export "memory" (memory 0))
  (data (i32.const 0x000) "/kernel/env/reboot")
  (data (i32.const 0x020) "/acc/count")
  (data (i32.const 0x040) "/acc/digest")
  (data (i32.const 0x060) "/acc/bytes")
  (data (i32.const 0x080) "/acc/last")
  ;; 0x100 input info; 0x200 count (i32), 0x208 digest (i64), 0x210 bytes (i64); 0x1000 input
  (func $mix (param $n i32) (result i64)
    (local $h i64) (local $i i32) (local $round i32)
    (local.set $h (i64.load (i32.const 0x208)))
    (loop $rounds
      (local.set $i (i32.const 1))  ;; the payload after the external tag
      (loop $bytes
        (local.set $h (i64.mul
          (i64.xor (local.get $h) (i64.load8_u offset=0x1000 (local.get $i)))
          (i64.const 0x100000001b3)))
        (local.set $h (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 29))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $bytes (i32.lt_u (local.get $i) (local.get $n))))
      (local.set $round (i32.add (local.get $round) (i32.const 1)))
      (br_if $rounds (i32.lt_u (local.get $round) (i32.const ROUNDS))))
    (local.get $h))
  (func (export "kernel_run") (local $n i32)
    (local.set $n (call $read_input (i32.const 0x100) (i32.const 0x1000) (i32.const 4096)))
    (if (i32.le_s (local.get $n) (i32.const 0)) (then (return)))
    ;; one input per run: reboot to read the next
    (drop (call $store_write (i32.const 0x000) (i32.const 18) (i32.const 0) (i32.const 0)
      (i32.const 0)))
    (if (i32.or (i32.lt_s (local.get $n) (i32.const 2))
                (i32.ne (i32.load8_u (i32.const 0x1000)) (i32.const 1)))
      (then (return)))  ;; not an external message with a payload
    (drop (call $store_read (i32.const 0x020) (i32.const 10) (i32.const 0) (i32.const 0x200)
      (i32.const 4)))
    (drop (call $store_read (i32.const 0x040) (i32.const 11) (i32.const 0) (i32.const 0x208)
      (i32.const 8)))
    (drop (call $store_read (i32.const 0x060) (i32.const 10) (i32.const 0) (i32.const 0x210)
      (i32.const 8)))
    (i64.store (i32.const 0x208) (call $mix (local.get $n)))
    (i32.store (i32.const 0x200) (i32.add (i32.load (i32.const 0x200)) (i32.const 1)))
    (i64.store (i32.const 0x210)
      (i64.add (i64.load (i32.const 0x210)) (i64.extend_i32_u (local.get $n))))
    (drop (call $store_write (i32.const 0x020) (i32.const 10) (i32.const 0) (i32.const 0x200)
      (i32.const 4)))
    (drop (call $store_write (i32.const 0x040) (i32.const 11) (i32.const 0) (i32.const 0x208)
      (i32.const 8)))
    (drop (call $store_write (i32.const 0x060) (i32.const 10) (i32.const 0) (i32.const 0x210)
      (i32.const 8)))
    (drop (call $store_write (i32.const 0x080) (i32.const 9) (i32.const 0) (i32.const 0x1001)
      (select (local.get $n) (i32.const 64) (i32.lt_u (local.get $n) (i32.const 64)))))
    (drop (call $write_output (i32.const 0x208) (i32.const 8)))))
""".replace("ROUNDS", str(ROUNDS))

TICKS_PER_KERNEL_RUN = 11_000_000_000
REVEALS = RevealProvider(None, bytes(20), 0)


def inboxes(levels: int, messages: int, size: int) -> list[list[bytes]]:
    """Levels of external messages of ``size`` payload bytes, deterministic."""
    out = []
    for level in range(levels):
        batch = []
        for i in range(messages):
            seed = (level * 1000 + i) * 2654435761 & 0xFFFFFFFF
            payload = bytes((seed >> (j % 24) ^ j) & 0xFF for j in range(size))
            batch.append(inbox.External(payload).encode())
        out.append(with_markers(batch))
    return out


class Run:
    """One engine over every level: time, per-level ticks and state hashes."""

    def __init__(self, kernel: bytes, levels: list[list[bytes]], engine: str) -> None:
        state = driver.originate(kernel, ticks_per_kernel_run=TICKS_PER_KERNEL_RUN)
        before = Counter(fast.STATS)
        self.seconds = 0.0
        self.trace: list[tuple[int, bytes]] = []
        for number, messages in enumerate(levels, 1):
            gc.collect()
            gc.disable()
            start = time.perf_counter()
            result = driver.run_level(state, number, messages, REVEALS, engine=engine)
            self.seconds += time.perf_counter() - start
            gc.enable()
            self.trace.append((result.ticks, bytes(layout.state_hash(state))))
        done = Counter(fast.STATS)
        done.subtract(before)
        self.fast = done
        self.state = state


def raw_wasmtime(kernel: bytes, levels: list[list[bytes]], repeat: int) -> tuple[float, int]:
    """Seconds (best of ``repeat``) to run the kernel once per input, plus once per level to
    yield, on plain wasmtime with stub host functions; and the number of runs."""
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, kernel)
    linker = wasmtime.Linker(engine)
    i32 = wasmtime.ValType.i32()
    pending: list[bytes] = []
    memory: list[wasmtime.Memory] = []
    store_box: list[wasmtime.Store] = []

    def read_input(info: int, dst: int, max_bytes: int) -> int:
        if not pending:
            return 0
        payload = pending.pop()[:max_bytes]
        memory[0].write(store_box[0], payload, dst)
        return len(payload)

    def no_value(*_args: int) -> int:
        return -3

    def done(*_args: int) -> int:
        return 0

    stubs = {
        "read_input": (read_input, 3),
        "write_output": (done, 2),
        "store_read": (no_value, 5),
        "store_write": (done, 5),
    }
    for name, (fn, arity) in stubs.items():
        linker.define_func("smart_rollup_core", name, wasmtime.FuncType([i32] * arity, [i32]), fn)
    pre = linker.instantiate_pre(module)
    best, runs = float("inf"), 0
    for _ in range(repeat):
        runs = 0
        gc.collect()
        gc.disable()
        start = time.perf_counter()
        for messages in levels:
            pending[:] = list(reversed(messages))
            while True:
                store = wasmtime.Store(engine)
                instance = pre.instantiate(store)
                exports = instance.exports(store)
                store_box[:] = [store]
                memory[:] = [exports["memory"]]  # type: ignore[list-item]
                before = len(pending)
                exports["kernel_run"](store)  # type: ignore[operator]
                runs += 1
                if len(pending) == before:  # it read nothing: the level's yield
                    break
        best = min(best, time.perf_counter() - start)
        gc.enable()
    return best, runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--messages", type=int, default=25, help="external messages per level")
    parser.add_argument("--size", type=int, default=256, help="payload bytes per message")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the fast engines")
    args = parser.parse_args(argv)
    if args.quick:
        args.levels, args.messages, args.size, args.repeat = 2, 3, 64, 1

    kernel = wasmtime.wat2wasm(KERNEL_WAT)
    levels = inboxes(args.levels, args.messages, args.size)
    print(f"python {platform.python_version()}, wasmtime {metadata.version('wasmtime')}")
    print(
        f"workload: {args.levels} levels x ({args.messages} external messages of {args.size} "
        f"bytes + 3 markers), {ROUNDS} digest rounds per payload, 4 durable reads/writes each"
    )

    slow = Run(kernel, levels, "interpreter")
    fast_runs = [Run(kernel, levels, "wasmtime") for _ in range(args.repeat)]
    quick = min(fast_runs, key=lambda run: run.seconds)
    runs = sum(quick.fast[outcome] for outcome in ("returned", "trapped", "out of ticks"))
    ticks = quick.fast["ticks"]
    raw_seconds, raw_runs = raw_wasmtime(kernel, levels, max(args.repeat, 3))

    agree = slow.trace == quick.trace
    deferred = quick.fast["deferred"]
    print(f"kernel_runs: {runs} (raw wasmtime: {raw_runs}), ticks in kernel_runs: {ticks}")
    print(f"fast engine deferred {deferred} of {runs + deferred} top-level calls")
    rows = [
        ("interpreter", slow.seconds, runs, ticks),
        ("fast engine", quick.seconds, runs, ticks),
        ("raw wasmtime", raw_seconds, raw_runs, None),
    ]
    print(f"{'engine':<14}{'seconds':>10}{'kernel_runs/s':>16}{'ticks/s':>16}")
    for name, seconds, count, work in rows:
        tick_rate = f"{work / seconds:>16,.0f}" if work is not None else f"{'-':>16}"
        print(f"{name:<14}{seconds:>10.4f}{count / seconds:>16,.1f}{tick_rate}")
    interpreter_rate = runs / slow.seconds
    fast_rate = runs / quick.seconds
    raw_rate = raw_runs / raw_seconds
    print(f"ratio fast/interpreter (kernel_runs/s): {fast_rate / interpreter_rate:.1f}x")
    print(f"ratio raw wasmtime/fast (kernel_runs/s): {raw_rate / fast_rate:.1f}x")
    print("engines agree: same ticks and state hash after every level" if agree else "MISMATCH")
    return 0 if agree and deferred == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
