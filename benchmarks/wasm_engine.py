"""Benchmark of soru's WebAssembly engine against pywasm and wasmtime, in one process.

Three workloads, each written once in WAT below and compiled with ``wasmtime.wat2wasm``, run
on the three engines with the same argument:

* ``arith``   — a counted loop of i32/i64 adds, muls, xors and shifts (two LCG-style mixers);
* ``memory``  — loads and stores over a buffer: fill it word by word, copy it with i64
                loads/stores, then checksum it with word and byte loads;
* ``fib``     — naive recursive Fibonacci (calls, an ``if/else``, returns).

What is counted. The number of WebAssembly instructions executed is computed exactly from
the loop structure; the formula sits next to each workload. The convention is the
specification's abstract syntax: every plain instruction counts 1, a structured instruction
(``block``, ``loop``, ``if``) counts 1 each time it is entered, and the ``else``/``end``
delimiters count nothing. soru's own tick counter follows a different model (it elides
``block``/``loop``/``end``/``nop``, and a completed then-arm's ``else`` and a function's
final ``end`` are real ticks), so the script predicts soru's ticks with a second formula and
prints the ratio ticks/instructions as a sanity check.

What is timed (``time.perf_counter``, garbage collector off during timed sections as
``timeit`` does, best of ``--repeat`` runs):

* soru and pywasm: *execution only* (the call of the exported function) and *whole process*
  — decode + validate + instantiate + execute. pywasm has no separate validation step: its
  whole process is decode + instantiate + execute.
* wasmtime: execution only (the call, repeated until ``--wasmtime-min`` seconds have passed,
  divided by the number of calls) and whole process (compile + instantiate + one call).

Ratios: ``soru/pywasm`` is how many times faster soru is than pywasm (pywasm's time divided
by soru's), ``wasmtime/soru`` how many times faster wasmtime is than soru; each with its
geometric mean over the three workloads.

Run: ``.venv/bin/python benchmarks/wasm_engine.py [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import io
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

import pywasm
import wasmtime

from soru.wasm.binary import decode_module
from soru.wasm.exec.machine import Machine
from soru.wasm.validate import validate_module

# --- workloads ------------------------------------------------------------------------------

ARITH_WAT = """
(module
  (func (export "run") (param $n i32) (result i64)
    (local $a i32) (local $b i64)
    i32.const 0x12345678 local.set $a               ;; prologue: 4
    i64.const 0x0123456789abcdef local.set $b
    loop $body                                      ;; entered once: 1
      ;; a = (a * 1664525 + 1013904223) ^ (a >> 13)    10 instructions
      local.get $a i32.const 1664525 i32.mul i32.const 1013904223 i32.add
      local.tee $a local.get $a i32.const 13 i32.shr_u i32.xor
      ;; a = a ^ (a << 5)                              6
      local.tee $a local.get $a i32.const 5 i32.shl i32.xor local.set $a
      ;; b = (b ^ (b << 13) ^ (b >> 7)) + u64(a) * 0x9e3779b97f4a7c15   15
      local.get $b local.get $b i64.const 13 i64.shl i64.xor
      local.get $b i64.const 7 i64.shr_u i64.xor
      local.get $a i64.extend_i32_u i64.const 0x9e3779b97f4a7c15 i64.mul
      i64.add local.set $b
      ;; i32 and i64 subtraction and a wrap, to use both widths again   5
      local.get $a local.get $b i32.wrap_i64 i32.sub local.set $a
      ;; n = n - 1; continue while n != 0                5
      local.get $n i32.const 1 i32.sub local.tee $n br_if $body
    end
    local.get $b local.get $a i64.extend_i32_u i64.xor   ;; epilogue: 4
  )
)
"""
ARITH_BODY = 10 + 6 + 15 + 5 + 5  # instructions of one iteration (br_if included)


def arith_instructions(n: int) -> int:
    """prologue 4 + loop 1 + 41 per iteration + epilogue 4 (n >= 1)."""
    return 4 + 1 + ARITH_BODY * n + 4


def arith_ticks(n: int) -> int:
    """soru: the loop is elided, the final ``end`` is a return tick."""
    return 4 + ARITH_BODY * n + 4 + 1


WORDS = 4096  # the buffer: 4096 i32 words (16 KiB) at 0, its copy at 16384
MEMORY_WAT = """
(module
  (memory 1)
  (func (export "run") (param $rounds i32) (result i32)
    (local $i i32) (local $seed i32) (local $sum i32) (local $v i64)
    i32.const 1 local.set $seed                        ;; prologue: 2
    loop $round                                        ;; entered once: 1
      ;; fill: A[i] = seed = seed * 0x9e3779b1 + i, one i32 word a time   2 + 1 + 15 * 4096
      i32.const 0 local.set $i
      loop $fill
        local.get $i local.get $seed i32.const 0x9e3779b1 i32.mul local.get $i i32.add
        local.tee $seed i32.store
        local.get $i i32.const 4 i32.add local.tee $i i32.const 16384 i32.lt_u br_if $fill
      end
      ;; copy: B[j] = A[j] ^ (A[j] >> 3), 8 bytes a time      2 + 1 + 16 * 2048
      i32.const 0 local.set $i
      loop $copy
        local.get $i local.get $i i64.load local.tee $v local.get $v i64.const 3 i64.shr_u
        i64.xor i64.store offset=16384
        local.get $i i32.const 8 i32.add local.tee $i i32.const 16384 i32.lt_u br_if $copy
      end
      ;; checksum: sum = rotl(sum, 5) ^ B[k] + B.byte[4k+1]    2 + 1 + 21 * 4096
      i32.const 0 local.set $i
      loop $check
        local.get $sum i32.const 5 i32.shl local.get $sum i32.const 27 i32.shr_u i32.or
        local.get $i i32.load offset=16384 i32.xor
        local.get $i i32.load8_u offset=16385 i32.add local.set $sum
        local.get $i i32.const 4 i32.add local.tee $i i32.const 16384 i32.lt_u br_if $check
      end
      local.get $rounds i32.const 1 i32.sub local.tee $rounds br_if $round   ;; 5
    end
    local.get $sum                                     ;; epilogue: 1
  )
)
"""
MEMORY_ROUND = (2 + 1 + 15 * WORDS) + (2 + 1 + 16 * (WORDS // 2)) + (2 + 1 + 21 * WORDS) + 5


def memory_instructions(rounds: int) -> int:
    """prologue 2 + loop 1 + rounds * (three inner loops + 5) + epilogue 1 (rounds >= 1)."""
    return 2 + 1 + MEMORY_ROUND * rounds + 1


def memory_ticks(rounds: int) -> int:
    """soru: the four ``loop`` entries are elided (3 per round, 1 outer), plus a return."""
    return 2 + (MEMORY_ROUND - 3) * rounds + 1 + 1


FIB_WAT = """
(module
  (func $fib (export "run") (param $n i32) (result i32)
    local.get $n i32.const 2 i32.lt_u
    if (result i32)
      local.get $n
    else
      local.get $n i32.const 1 i32.sub call $fib
      local.get $n i32.const 2 i32.sub call $fib
      i32.add
    end
  )
)
"""


def _fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def fib_instructions(n: int) -> int:
    """fib(n) makes L = fib(n+1) leaf calls (n < 2) and I = fib(n+1) - 1 inner ones.

    A leaf runs get, const, lt_u, if, get = 5; an inner call get, const, lt_u, if and the
    9-instruction else-arm = 13. Total 5 L + 13 I.
    """
    leaves = _fib(n + 1)
    return 5 * leaves + 13 * (leaves - 1)


def fib_ticks(n: int) -> int:
    """soru: a leaf adds the then-arm's jump over ``else`` and the return (7); an inner call
    adds the return (14)."""
    leaves = _fib(n + 1)
    return 7 * leaves + 14 * (leaves - 1)


@dataclass(frozen=True)
class Workload:
    name: str
    wat: str
    size: int  # the argument of the exported "run"
    quick_size: int
    size_meaning: str
    instructions: Callable[[int], int]
    soru_ticks: Callable[[int], int]
    result_bits: int  # width of the result, to compare engines' results as bit patterns


WORKLOADS = [
    Workload("arith", ARITH_WAT, 16_000, 2_000, "iterations", arith_instructions, arith_ticks, 64),
    Workload(
        "memory", MEMORY_WAT, 4, 1, "rounds over 16 KiB", memory_instructions, memory_ticks, 32
    ),
    Workload("fib", FIB_WAT, 23, 15, "n of fib(n)", fib_instructions, fib_ticks, 32),
]

ENGINES = ("soru", "pywasm", "wasmtime")


# --- engines --------------------------------------------------------------------------------


@dataclass
class Timing:
    """One engine on one workload: phase times in seconds and the call's result."""

    result: int
    execute: float
    whole: float
    ticks: int | None = None


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        value = fn()
        return value, time.perf_counter() - t0
    finally:
        if gc_was_enabled:
            gc.enable()


def run_soru(wasm: bytes, arg: int) -> Timing:
    module, t_decode = _timed(lambda: decode_module(wasm))
    _, t_validate = _timed(lambda: validate_module(module))
    machine = Machine()
    instance, t_inst = _timed(lambda: machine.instantiate(module))
    func = instance.export("run")
    results, t_exec = _timed(lambda: machine.invoke(func, [arg]))
    return Timing(results[0], t_exec, t_decode + t_validate + t_inst + t_exec, machine.ticks)


def run_pywasm(wasm: bytes, arg: int) -> Timing:
    desc, t_decode = _timed(lambda: pywasm.core.ModuleDesc.from_reader(io.BytesIO(wasm)))
    runtime = pywasm.core.Runtime()
    instance, t_inst = _timed(lambda: runtime.instance(desc))
    results, t_exec = _timed(lambda: runtime.invocate(instance, "run", [arg]))
    return Timing(results[0], t_exec, t_decode + t_inst + t_exec)


def run_wasmtime(wasm: bytes, arg: int, min_seconds: float) -> Timing:
    def whole():
        engine = wasmtime.Engine()
        store = wasmtime.Store(engine)
        instance = wasmtime.Instance(store, wasmtime.Module(engine, wasm), [])
        run = instance.exports(store)["run"]
        return store, run, run(store, arg)

    (store, run, result), t_whole = _timed(whole)
    calls, t_total = 0, 0.0
    while calls == 0 or t_total < min_seconds:
        _, t = _timed(lambda: run(store, arg))
        calls, t_total = calls + 1, t_total + t
    return Timing(result, t_total / calls, t_whole)


def best(runs: list[Timing]) -> Timing:
    """Best execution and best whole-process time over runs (results must agree)."""
    first = runs[0]
    if any(r.result != first.result for r in runs):
        raise RuntimeError("an engine gave different results on the same input")
    return Timing(
        first.result, min(r.execute for r in runs), min(r.whole for r in runs), first.ticks
    )


# --- report ---------------------------------------------------------------------------------


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "?"


def _geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def _rate(instructions: int, seconds: float) -> str:
    return f"{instructions / seconds / 1e6:9.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run: a smoke test")
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine and workload")
    parser.add_argument(
        "--wasmtime-min",
        type=float,
        default=0.2,
        help="seconds of repeated wasmtime calls to average over",
    )
    args = parser.parse_args(argv)
    repeat = 1 if args.quick else args.repeat
    wasmtime_min = 0.0 if args.quick else args.wasmtime_min

    print("WebAssembly engine benchmark: soru vs pywasm vs wasmtime")
    print(f"python   {sys.version.split()[0]} ({platform.python_implementation()})")
    print(f"machine  {platform.machine()}, {_cpu()}, {platform.system()} {platform.release()}")
    print(
        f"engines  soru (this tree), pywasm {_version('pywasm')}, wasmtime {_version('wasmtime')}"
    )
    if hasattr(os, "getloadavg"):
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load     {load} (1, 5, 15 min) on {os.cpu_count()} CPUs before the runs")
    print(
        f"timing   best of {repeat} run(s); wasmtime execution averaged over >= "
        f"{wasmtime_min:g} s of calls; gc off while timing"
    )
    print(f"mode     {'quick (smoke run: numbers are not meaningful)' if args.quick else 'full'}")
    print()

    rows: dict[str, dict[str, Timing]] = {}
    print("workloads")
    for w in WORKLOADS:
        size = w.quick_size if args.quick else w.size
        n_instr = w.instructions(size)
        wasm = bytes(wasmtime.wat2wasm(w.wat))
        runs: dict[str, list[Timing]] = {e: [] for e in ENGINES}
        for _ in range(repeat):  # interleaved, so that a change of machine load hits all three
            runs["soru"].append(run_soru(wasm, size))
            runs["pywasm"].append(run_pywasm(wasm, size))
            runs["wasmtime"].append(run_wasmtime(wasm, size, wasmtime_min))
        timings = {e: best(r) for e, r in runs.items()}
        mask = (1 << w.result_bits) - 1
        results = {e: t.result & mask for e, t in timings.items()}
        agree = "results agree" if len(set(results.values())) == 1 else f"MISMATCH {results}"
        ticks, predicted = timings["soru"].ticks or 0, w.soru_ticks(size)
        check = "= predicted" if ticks == predicted else f"!= predicted {predicted:,}"
        print(
            f"  {w.name:7} size {size:,} {w.size_meaning}: {n_instr:,} instructions; "
            f"soru {ticks:,} ticks ({check}), ticks/instructions "
            f"{ticks / n_instr:.3f}; {agree}"
        )
        rows[w.name] = timings
    print()

    header = (
        f"{'workload':8} {'engine':9} {'instructions':>13} {'exec s':>9} {'Minstr/s':>9} "
        f"{'whole s':>9} {'Minstr/s':>9}"
    )
    print("execution only (exec) and whole process (whole = decode+validate+instantiate+exec)")
    print(header)
    print("-" * len(header))
    for w in WORKLOADS:
        n_instr = w.instructions(w.quick_size if args.quick else w.size)
        for e in ENGINES:
            t = rows[w.name][e]
            print(
                f"{w.name:8} {e:9} {n_instr:13,} {t.execute:9.4f} {_rate(n_instr, t.execute)} "
                f"{t.whole:9.4f} {_rate(n_instr, t.whole)}"
            )
    print()

    print("ratios (x times faster)")
    header = (
        f"{'workload':8} {'soru/pywasm exec':>17} {'soru/pywasm whole':>18} "
        f"{'wasmtime/soru exec':>19} {'wasmtime/soru whole':>20}"
    )
    print(header)
    print("-" * len(header))
    cols: list[list[float]] = [[], [], [], []]
    for w in WORKLOADS:
        s, p, m = rows[w.name]["soru"], rows[w.name]["pywasm"], rows[w.name]["wasmtime"]
        ratios = [
            p.execute / s.execute,
            p.whole / s.whole,
            s.execute / m.execute,
            s.whole / m.whole,
        ]
        for col, r in zip(cols, ratios, strict=True):
            col.append(r)
        print(f"{w.name:8} {ratios[0]:17.2f} {ratios[1]:18.2f} {ratios[2]:19.1f} {ratios[3]:20.1f}")
    g = [_geomean(c) for c in cols]
    print(f"{'geomean':8} {g[0]:17.2f} {g[1]:18.2f} {g[2]:19.1f} {g[3]:20.1f}")
    print()
    target = "meets" if g[1] >= 4 else "does NOT meet"
    print(f"soru is {g[1]:.2f}x pywasm (geometric mean, whole process): {target} the 4x target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
