"""Dissections of a refutation game (``../shared/SORU-SPEC.md`` §4.6), as pure functions.

A *chunk* is a claim: the state hash at a tick (``None``: the machine is blocked). A player
who disagrees with a section ``(start, stop)`` of the current dissection answers with a new
dissection of it; :func:`check_dissection` is the rule layer 1 applies (Octez
``Sc_rollup_dissection_chunk_repr.default_check``): ``k`` sections, where ``k`` is 32 when the
section spans at least 32 ticks and its length otherwise; the first chunk repeats the start,
the last chunk is at the stop tick and *differs* from the claimed stop; ticks strictly
increase; no section is longer than half the distance; a blocked chunk is never followed by
an unblocked one.

:func:`new_dissection` is the honest player's move (Octez ``default_new_dissection``): cut
``[start, stop]`` into ``min(32, distance)`` sections and state its own hash at each cut;
:func:`first_disagreement` finds, in the opponent's dissection, the section to dispute.

Why the honest player always wins: it only ever disputes a section whose start it agrees
with and whose stop it disagrees with, so every accepted dissection keeps that property;
sections shrink at least by half, so after O(log distance) moves the section is one tick
long, and the honest player can then prove that tick (``soru.protocol.refutation_proof``) —
its proof's stop is its own hash, which differs from the opponent's claim.

The WASM rule (Octez ``Sc_rollup_wasm.check_dissection``, given ``ticks_per_snapshot`` T —
every kernel_run is padded to exactly T ticks): a section longer than T is cut at kernel_run
boundaries only — every inner chunk at a multiple of T, ``min(32, ceil(distance / T))``
sections, none longer than ``max(T, d / 2)`` where d is the distance to the last boundary —
so the game first finds the guilty kernel_run, then bisects inside it with the generic rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from soru.base.errors import SoruError
from soru.base.hashes import Hash

DEFAULT_SECTIONS = 32


class InvalidDissection(SoruError):
    """A dissection layer 1 refuses (names the rule it breaks)."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """A claimed state hash at a tick (``None``: the machine is blocked there)."""

    state_hash: Hash | None
    tick: int


def expected_sections(distance: int, sections: int = DEFAULT_SECTIONS) -> int:
    """How many sections a dissection of ``distance`` ticks must have."""
    if distance <= 1:
        raise InvalidDissection("a section of one tick is settled by a proof, not dissected")
    return sections if distance >= sections else distance


def _wasm_expectations(start: int, stop: int, snapshot: int, sections: int) -> tuple[int, int]:
    """(sections, longest section) the WASM rule allows for a section longer than T."""
    distance = stop - start
    if distance % snapshot == 0:
        return min(sections, distance // snapshot), max(snapshot, distance // 2)
    considered = stop // snapshot * snapshot - start
    return min(sections, distance // snapshot + 1), max(snapshot, considered // 2)


def check_dissection(
    start: Chunk,
    stop: Chunk,
    dissection: Sequence[Chunk],
    sections: int = DEFAULT_SECTIONS,
    ticks_per_snapshot: int | None = None,
) -> None:
    """Raise :class:`InvalidDissection` unless ``dissection`` is a valid answer to the
    disputed section ``(start, stop)`` (the WASM rule when ``ticks_per_snapshot`` is given
    and the section is longer than it)."""
    distance = stop.tick - start.tick
    wasm = ticks_per_snapshot is not None and distance > ticks_per_snapshot
    if wasm:
        assert ticks_per_snapshot is not None
        count, limit = _wasm_expectations(start.tick, stop.tick, ticks_per_snapshot, sections)
        inner = dissection[1:-1]
        if any(chunk.tick % ticks_per_snapshot for chunk in inner):
            raise InvalidDissection("inner chunks must be at kernel_run boundaries")
    else:
        count, limit = expected_sections(distance, sections), distance // 2
    if len(dissection) - 1 != count:
        raise InvalidDissection(f"expected {count} sections")
    first, last = dissection[0], dissection[-1]
    if first.state_hash is None or first != start:
        raise InvalidDissection("the first chunk must repeat the agreed start")
    if last.tick != stop.tick:
        raise InvalidDissection("the last chunk must be at the disputed stop tick")
    if last.state_hash == stop.state_hash:
        raise InvalidDissection("the last chunk must disagree with the disputed stop")
    for before, after in zip(dissection, dissection[1:], strict=False):
        if after.tick <= before.tick:
            raise InvalidDissection("ticks must strictly increase")
        if after.tick - before.tick > limit:
            raise InvalidDissection(f"a section is longer than {limit} ticks")
        if before.state_hash is None and after.state_hash is not None:
            raise InvalidDissection("a blocked machine cannot unblock")


def _spread(first: int, count: int, parts: int, unit: int) -> list[int]:
    """``parts`` cut points after ``first`` spreading ``count`` units of ``unit`` ticks."""
    size, extra = divmod(count, parts)
    ticks, tick = [], first
    for i in range(parts):
        tick += (size + (1 if i < extra else 0)) * unit
        ticks.append(tick)
    return ticks


def new_dissection(
    start: Chunk,
    stop_tick: int,
    hash_at: Callable[[int], Hash | None],
    sections: int = DEFAULT_SECTIONS,
    ticks_per_snapshot: int | None = None,
) -> list[Chunk]:
    """The honest dissection of ``[start.tick, stop_tick]`` with its own hashes (cut at
    kernel_run boundaries when the WASM rule applies; the unaligned tail, if any, is the
    last section)."""
    distance = stop_tick - start.tick
    if ticks_per_snapshot is not None and distance > ticks_per_snapshot:
        t = ticks_per_snapshot
        if start.tick % t:  # sections longer than T always start at a boundary in a game
            raise InvalidDissection("a section longer than a kernel_run starts at a boundary")
        snaps = (stop_tick // t * t - start.tick) // t
        count, _ = _wasm_expectations(start.tick, stop_tick, t, sections)
        tail = stop_tick % t != 0
        ticks = _spread(start.tick, snaps, count - tail, t) + ([stop_tick] if tail else [])
    else:
        ticks = _spread(start.tick, distance, expected_sections(distance, sections), 1)
    return [start] + [Chunk(hash_at(t), t) for t in ticks]


def first_disagreement(
    dissection: Sequence[Chunk], hash_at: Callable[[int], Hash | None]
) -> tuple[Chunk, Chunk]:
    """The first section whose start this player agrees with and whose stop it does not."""
    for before, after in zip(dissection, dissection[1:], strict=False):
        if hash_at(after.tick) != after.state_hash:
            return before, after
    raise InvalidDissection("no section to dispute: every chunk agrees")
