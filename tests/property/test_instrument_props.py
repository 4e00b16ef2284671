"""Instrumented random programs count soru's ticks exactly on wasmtime.

The programs are those of the resumability tests (``test_resumable.programs``: nested
blocks, loops and ifs with values, every kind of branch, calls and ``call_indirect`` that
may trap, loads and stores out of bounds, chunked ``memory.fill``/``memory.copy``, active
data segments of several chunks, start functions, and host functions — one a
:class:`HostContinuation` of several ticks, one suspending for an answer from outside).
Each runs on soru's machine and, instrumented, on wasmtime (the harness of
``tests/unit/wasm/test_instrument.py``), and:

* instantiation, then the call of ``main``, end the same way after the same number of
  ticks, leaving the same memory and globals;
* with any budget below the ticks a call needs, both run out of ticks; from that number
  on, both end as without a budget;
* a budget on instantiation itself stops wasmtime's instantiation exactly when soru's
  initialisation program would not finish within it;
* the instrumented module is valid and its encoding round-trips.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from soru.wasm.binary import decode_module
from soru.wasm.encode import encode_module
from soru.wasm.instrument import instrument
from soru.wasm.syntax import Export, ExternKind, Module
from soru.wasm.validate import validate_module

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "wasm"))
from test_instrument import (  # noqa: E402  (the harness lives with the unit tests)
    DONE,
    OUT_OF_TICKS,
    TRAP,
    Compiled,
    Outcome,
    agree,
    normalise,
)
from test_resumable import MEM_MAX_PAGES, host_imports, programs  # noqa: E402


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _exporting_state(module: Module) -> Module:
    """The module with its globals exported too, so both engines' values can be compared."""
    extra = tuple(Export(f"global{i}", ExternKind.GLOBAL, i) for i in range(len(module.globals)))
    return replace(module, exports=(*module.exports, *extra))


def _compile(module: Module, budget: int | None = None) -> Compiled:
    validate_module(module)
    extra = {} if budget is None else {"budget": budget}
    return Compiled(module, host_imports, max_memory_pages=MEM_MAX_PAGES, **extra)


def _state(twin) -> tuple[tuple, tuple]:
    """(memory, globals) on each engine."""
    instance = twin.soru.instance
    soru = (bytes(instance.mems[0].data), tuple(g.value for g in instance.globals))
    store, exports = twin.fast.store, twin.fast.exports
    memory = exports["memory"]
    fast = (
        bytes(memory.read(store, 0, memory.data_len(store))),
        tuple(
            normalise(exports[f"global{i}"].value(store), g.type.valtype)
            for i, g in enumerate(instance.globals)
        ),
    )
    return soru, fast


@_settings(200)
@given(program=programs())
def test_instantiation_and_call_agree_tick_for_tick(program):
    module, args, _depth_limit = program
    compiled = _compile(_exporting_state(module))
    instrumented = compiled.instrumented
    validate_module(instrumented)
    assert decode_module(encode_module(instrumented)) == instrumented
    twin = compiled.twin()  # asserts that instantiation agrees
    if not twin.ready:
        return
    soru, fast = twin.call("main", args)
    assert agree(soru, fast), (soru, fast)
    assert soru.kind in (DONE, TRAP)
    soru_state, fast_state = _state(twin)
    assert soru_state == fast_state


@_settings(120)
@given(program=programs(), data=st.data())
def test_any_budget_below_the_ticks_needed_runs_out_on_both(program, data):
    module, args, _depth_limit = program
    compiled = _compile(module)
    twin = compiled.twin()
    assume(twin.ready)
    full = twin.check("main", args)
    n = full.ticks
    assert n is not None
    budgets = {n, n + 1, data.draw(st.integers(0, n), label="budget")}
    if n:
        budgets.add(n - 1)
    for budget in sorted(budgets):
        outcome = compiled.twin().check("main", args, budget)
        if budget < n:
            assert outcome == Outcome(OUT_OF_TICKS, None, budget)
        else:
            assert outcome == full


@_settings(60)
@given(program=programs(), data=st.data())
def test_a_budget_on_instantiation_stops_it_where_soru_would(program, data):
    module, _args, _depth_limit = program
    init = _compile(module).twin().soru
    assume(init.init.kind == DONE)
    needed = init.init.ticks
    assert needed is not None
    budget = data.draw(st.sampled_from(sorted({0, needed // 2, max(needed - 1, 0), needed})))
    fast = _compile(module, budget).fast()
    if budget >= needed:
        assert fast.init == Outcome(DONE, (), needed)
    else:  # out of ticks in the start function: no instance, so no counter to read
        assert fast.init.kind == TRAP
    instrumented, _info = instrument(module, budget=budget)
    validate_module(instrumented)
