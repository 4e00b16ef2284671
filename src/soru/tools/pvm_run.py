"""``soru pvm run``: run a kernel over an inbox file, level by level, and report each level.

Each level reports the total ticks so far, the state hash (``srs1…``), whether the PVM is
stuck, the outbox messages written at that level and the kernel's debug output; with
``--dump-durable`` a last report lists every durable value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from soru.crypto.addresses import RollupAddress
from soru.pvm import driver, layout
from soru.pvm.durable import Durable
from soru.pvm.reveals import RevealProvider
from soru.pvm.state import PvmState
from soru.tools.inputs_file import DEFAULT_ROLLUP, load_levels, with_markers


@dataclass(frozen=True, slots=True)
class LevelReport:
    level: int
    ticks: int
    state_hash: str
    stuck: str | None
    outbox: tuple[bytes, ...]
    debug: tuple[bytes, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "level": self.level,
                "ticks": self.ticks,
                "state_hash": self.state_hash,
                "stuck": self.stuck,
                "outbox": [m.hex() for m in self.outbox],
                "debug": [d.decode("utf-8", errors="replace") for d in self.debug],
            }
        )


def _prepare(
    kernel: bytes,
    inputs: Path,
    preimages: Path | None,
    rollup: str,
    origination_level: int,
    ticks_per_kernel_run: int | None,
    *,
    debug: bool,
) -> tuple[list[list[bytes]], RevealProvider, PvmState]:
    """The inbox file's levels, the reveal provider and the genesis state of a run."""
    levels = load_levels(inputs, rollup)
    reveals = RevealProvider(preimages, RollupAddress.of_b58(rollup).digest, origination_level)
    options = {} if ticks_per_kernel_run is None else {"ticks_per_kernel_run": ticks_per_kernel_run}
    state = driver.originate(kernel, collect_debug=debug, **options)  # type: ignore[arg-type]
    return levels, reveals, state


def run(
    kernel: bytes,
    inputs: Path,
    *,
    preimages: Path | None = None,
    rollup: str = DEFAULT_ROLLUP,
    origination_level: int = 0,
    ticks_per_kernel_run: int | None = None,
    engine: str = "interpreter",
) -> Iterator[tuple[PvmState, LevelReport]]:
    """Run ``kernel`` over the levels of ``inputs``; yields the state after each level.
    ``engine`` is ``"interpreter"`` or ``"wasmtime"`` (``driver.ENGINES``: same states)."""
    levels, reveals, state = _prepare(
        kernel, inputs, preimages, rollup, origination_level, ticks_per_kernel_run, debug=True
    )
    for offset, messages in enumerate(levels, 1):
        level = origination_level + offset
        result = driver.run_level(state, level, with_markers(messages), reveals, engine=engine)
        report = LevelReport(
            level,
            state.tick,
            layout.show_state_hash(layout.state_hash(state)),
            state.stuck.value if state.stuck else None,
            result.outbox,
            result.debug,
        )
        yield state, report


def durable_values(durable: Durable) -> dict[str, str]:
    """Every durable value, by key, as hex."""
    keys = sorted(
        "/" + "/".join(path[:-1]) for path, _ in durable.tree.items() if path and path[-1] == "@"
    )
    return {key: (durable.read_all(key) or b"").hex() for key in keys}


def state_at(
    kernel: bytes,
    inputs: Path,
    tick: int,
    *,
    preimages: Path | None = None,
    rollup: str = DEFAULT_ROLLUP,
    origination_level: int = 0,
    ticks_per_kernel_run: int | None = None,
) -> tuple[PvmState, object]:
    """The state at ``tick`` of ``kernel`` over the inbox file, and the input its next tick
    needs (an inbox message, revealed data, or None)."""
    levels, reveals, state = _prepare(
        kernel, inputs, preimages, rollup, origination_level, ticks_per_kernel_run, debug=False
    )
    queue = [
        (origination_level + offset, counter, payload)
        for offset, messages in enumerate(levels, 1)
        for counter, payload in enumerate(with_markers(messages))
    ]
    pending = driver.advance_to(state, tick, queue, reveals)
    return state, pending
