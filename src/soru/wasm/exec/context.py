"""What a handler factory binds to: the machine state one lowered instruction works on.

A *handler* is a zero-argument closure that performs one tick and returns the next program
counter. A *factory* builds it once, at load time, from the instruction's immediates and a
:class:`Ctx`, binding the very containers it touches (the value stack list, a memory's
bytearray, a table's element list…). Handlers use only a small protocol on those containers:

* value stack: ``append``, ``pop``, ``extend``, ``len``, ``[i]`` / ``[i] = v`` with negative
  ``i``, and ``del [a:b]`` with negative bounds;
* memory bytes: ``len``, slicing ``[a:b]``, slice assignment, ``extend``;
* table elements: ``len``, ``[i]``, ``[i] = v``, slicing, slice assignment, ``extend``;
* frames: ``append``, ``pop``, ``len``.

Any object that honours the protocol can stand in for a Python list or bytearray — this is
how the PVM runs the same handlers on a state read lazily from its Merkle tree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from soru.wasm.exec.machine import Machine
    from soru.wasm.runtime import Instance


class Ctx:
    """Binding context of the handlers of one function (or of an instantiation sequence).

    ``base`` is the program counter of the function's first instruction: lowered targets are
    relative to it.
    """

    __slots__ = ("machine", "stack", "frames", "instance", "base")

    def __init__(self, machine: Machine, instance: Instance | None, base: int) -> None:
        self.machine = machine
        self.stack = machine.stack
        self.frames = machine.frames
        self.instance = instance
        self.base = base
