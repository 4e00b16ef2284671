"""The one tick-cost table of the WebAssembly machine.

A *tick* is one dispatch of the machine: one lowered instruction (see ``lower``), or one
bounded chunk of a bulk operation, or one step of a multi-tick host call. Every tick does
bounded work, which is what lets the PVM prove any single tick with a small proof.

Lowered code already removes the instructions that do nothing at run time (``block``,
``loop``, ``end``, ``nop``), so a loop iteration costs exactly the instructions that move
data or control. Bulk operations touch at most the chunk sizes below per tick; an operation
on ``n`` bytes (elements) costs ``max(1, ceil(n / CHUNK))`` ticks.

Changing anything here changes tick numbers, and therefore the PVM's state hashes: it needs
a PVM version bump.
"""

TICKS_PER_INSTRUCTION = 1
"""Every lowered instruction — numeric, memory, variable, control, call — costs one tick."""

MEMORY_CHUNK_BYTES = 2048
"""Bytes that one tick of ``memory.copy``/``memory.fill``/``memory.init`` may move."""

TABLE_CHUNK_ELEMENTS = 32
"""Elements that one tick of ``table.copy``/``table.fill``/``table.init`` may move. Each
element read or written is its own node of the PVM's state tree: at 256 a tick's proof was
measured at ~22 KB; at 32 it stays near 3 KB."""

TABLE_GROW_MAX_ELEMENTS = 1 << 20
"""Implementation limit on a table's size; ``table.grow`` beyond it fails (returns -1)."""


def bulk_ticks(n: int, chunk: int) -> int:
    """Ticks taken by a bulk operation over ``n`` bytes or elements."""
    return max(1, -(-n // chunk))
