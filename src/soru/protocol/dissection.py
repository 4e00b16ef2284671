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

soru's PVM pads every kernel_run to a fixed tick count; Octez then requires cut points
aligned to kernel_run boundaries when a section spans several of them (its WASM override).
That refinement is not implemented here yet: the generic rule is applied at any distance.
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


def check_dissection(
    start: Chunk, stop: Chunk, dissection: Sequence[Chunk], sections: int = DEFAULT_SECTIONS
) -> None:
    """Raise :class:`InvalidDissection` unless ``dissection`` is a valid answer to the
    disputed section ``(start, stop)``."""
    distance = stop.tick - start.tick
    if len(dissection) - 1 != expected_sections(distance, sections):
        raise InvalidDissection(f"expected {expected_sections(distance, sections)} sections")
    first, last = dissection[0], dissection[-1]
    if first.state_hash is None or first != start:
        raise InvalidDissection("the first chunk must repeat the agreed start")
    if last.tick != stop.tick:
        raise InvalidDissection("the last chunk must be at the disputed stop tick")
    if last.state_hash == stop.state_hash:
        raise InvalidDissection("the last chunk must disagree with the disputed stop")
    limit = distance // 2
    for before, after in zip(dissection, dissection[1:], strict=False):
        if after.tick <= before.tick:
            raise InvalidDissection("ticks must strictly increase")
        if after.tick - before.tick > limit:
            raise InvalidDissection(f"a section is longer than {limit} ticks")
        if before.state_hash is None and after.state_hash is not None:
            raise InvalidDissection("a blocked machine cannot unblock")


def new_dissection(
    start: Chunk,
    stop_tick: int,
    hash_at: Callable[[int], Hash | None],
    sections: int = DEFAULT_SECTIONS,
) -> list[Chunk]:
    """The honest dissection of ``[start.tick, stop_tick]`` with its own hashes."""
    distance = stop_tick - start.tick
    count = expected_sections(distance, sections)
    size, extra = divmod(distance, count)
    ticks, tick = [start.tick], start.tick
    for i in range(count):
        tick += size + (1 if i < extra else 0)
        ticks.append(tick)
    return [start] + [Chunk(hash_at(t), t) for t in ticks[1:]]


def first_disagreement(
    dissection: Sequence[Chunk], hash_at: Callable[[int], Hash | None]
) -> tuple[Chunk, Chunk]:
    """The first section whose start this player agrees with and whose stop it does not."""
    for before, after in zip(dissection, dissection[1:], strict=False):
        if hash_at(after.tick) != after.state_hash:
            return before, after
    raise InvalidDissection("no section to dispute: every chunk agrees")
