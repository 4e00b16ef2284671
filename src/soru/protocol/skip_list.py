"""Merkelized skip lists: the structure behind both levels of the inbox (SORU-SPEC §3.1).

A skip list is a chain of *cells*, each holding a ``content`` and a few *back pointers*: the
hashes of earlier cells. A cell is known by its hash (a "pointer"), so the latest cell alone
commits to the whole chain, and a short *back path* of cells proves that an earlier cell is
in it. This module is the generic list of Octez's ``src/lib_base/skip_list.ml``, written
anew as pure functions; what a pointer is (which hash of which bytes) is decided by the
user of the list, ``soru.protocol.inbox``, which hashes its two kinds of cells the way
Tezos does.

Shape (basis ``b``, 4 for both inbox lists)::

    cell.index          0 for the genesis cell, then +1 per cell
    cell.back_pointers  one pointer per i >= 0 with b**i <= index; pointer i designates
                        the cell of index  index - (index mod b**i) - 1

so pointer 0 is always the predecessor and pointer i jumps back to just before the last
multiple of ``b**i``. :func:`next_cell` builds a cell from its predecessor alone: pointer i
is the predecessor itself when ``b**i`` divides the new index, else the predecessor's own
pointer i.

Walking back from a cell to an earlier *target* index, the **best skip** is the pointer
that lands on the lowest index not below the target (the farthest jump that does not
overshoot). A back path is *valid* (:func:`valid_back_path`) only if it starts at the
given cell, takes the best skip at every hop and ends on the target: the path is then
unique, so a verifier can insist on it, and it has O(b · log_b distance) cells.

A cell's hash covers its content and pointers but **not its index**, so an index read from
a proof is only a claim. :func:`valid_back_path` (stricter than Octez here) makes each cell's
index follow from its predecessor's, and :func:`certified_index` reads a cell's true index
off the hashed pointer structure below it, from the few cells :func:`index_certificate`
names; together they let a verifier trust every index of a path.

Dereferencing is the caller's business: functions that walk the list take ``deref``, a
function from a pointer to the cell (or None when it is not known), so the same code runs
over a full history (a node) or over the few cells carried by a proof (a verifier).

The binary encoding of a cell is Octez's ``obj3 (index: n) (content) (back_pointers: list
ptr)``: Zarith index, content, then a 4-byte byte length and the 32-byte pointers
(:meth:`Cell.write`, :meth:`Cell.read`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from soru.base.hashes import Hash
from soru.encoding.reader import Reader
from soru.encoding.writer import Writer

BASIS = 4
"""The basis of both inbox skip lists (``Skip_list_parameters.basis`` in Octez)."""

C = TypeVar("C")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Cell(Generic[C]):
    """One cell: its position in the list, what it holds, and the hashes of earlier cells
    (pointer i designates index ``index - index mod basis**i - 1``)."""

    index: int
    content: C
    back_pointers: tuple[Hash, ...]

    def write(self, out: Writer, write_content: Callable[[Writer, C], object]) -> None:
        """Append the Octez binary form: ``n`` index, content, 4-byte length, pointers."""
        out.zarith_n(self.index)
        write_content(out, self.content)
        out.uint_be(len(self.back_pointers) * Hash.SIZE, 4)
        for pointer in self.back_pointers:
            out.raw(pointer)

    @classmethod
    def read(
        cls,
        reader: Reader,
        read_content: Callable[[Reader], T],
        *,
        max_index: int,
        pointer: Callable[[bytes], Hash] = Hash,
        basis: int = BASIS,
    ) -> Cell[T]:
        """Read what :meth:`write` writes, building pointers with ``pointer`` (a typed hash
        class). Strict: the index must not exceed ``max_index`` and the cell must carry
        exactly the number of pointers its index implies."""
        start = reader.pos
        index = reader.zarith_n()
        if index > max_index:
            reader.fail(f"cell index {index} exceeds {max_index}", start)
        content = read_content(reader)
        size = reader.uint_be(4)
        if size != pointer_count(index, basis) * Hash.SIZE:
            reader.fail(f"a cell of index {index} has {pointer_count(index, basis)} pointers")
        pointers = reader.read(size)
        return Cell(
            index,
            content,
            tuple(pointer(pointers[i : i + Hash.SIZE]) for i in range(0, size, Hash.SIZE)),
        )


Deref = Callable[[Hash], "Cell[C] | None"]
"""Finds a cell by its pointer; None when the cell is not known."""


# --- shape ----------------------------------------------------------------------------------


def pointer_count(index: int, basis: int = BASIS) -> int:
    """How many back pointers the cell of ``index`` has: the number of i with
    ``basis**i <= index`` (0 for the genesis cell)."""
    count, power = 0, 1
    while power <= index:
        count += 1
        power *= basis
    return count


def pointed_index(index: int, position: int, basis: int = BASIS) -> int:
    """The index of the cell that back pointer ``position`` of the cell of ``index``
    designates."""
    power = basis**position
    return index - index % power - 1


def genesis(content: C) -> Cell[C]:
    """The first cell: index 0, no back pointers."""
    return Cell(0, content, ())


def next_cell(prev: Cell[C], prev_pointer: Hash, content: C, basis: int = BASIS) -> Cell[C]:
    """The cell that follows ``prev`` (whose hash is ``prev_pointer``) and holds
    ``content``. Pointer i is ``prev_pointer`` when ``basis**i`` divides the new index,
    else ``prev``'s pointer i (which designates the same cell)."""
    index = prev.index + 1
    pointers: list[Hash] = []
    power = 1
    position = 0
    while power <= index:
        pointers.append(prev_pointer if index % power == 0 else prev.back_pointers[position])
        power *= basis
        position += 1
    return Cell(index, content, tuple(pointers))


def back_pointer(cell: Cell[C], position: int) -> Hash | None:
    """Pointer ``position`` of ``cell``, None if it has no such pointer."""
    if 0 <= position < len(cell.back_pointers):
        return cell.back_pointers[position]
    return None


def best_skip(cell: Cell[C], target_index: int, basis: int = BASIS) -> int | None:
    """The position of the back pointer of ``cell`` to take towards ``target_index``: the
    one landing on the lowest index that is still ``>= target_index`` (the highest such
    position when several pointers designate the same cell). None when no pointer lands at
    or above the target (the target is the cell itself, above it, or the cell is genesis).

    Pointed indices never increase with the position, so the answer is the last position
    before they drop below the target."""
    best = None
    for position in range(len(cell.back_pointers)):
        if pointed_index(cell.index, position, basis) < target_index:
            break
        best = position
    return best


# --- walking back ---------------------------------------------------------------------------


def back_path(
    deref: Deref[C], start: Hash, target_index: int, basis: int = BASIS
) -> list[Hash] | None:
    """The pointers of the minimal path from the cell ``start`` back to the cell of
    ``target_index``, both included, taking the best skip at each hop. None if the target
    is above the start or a needed cell cannot be dereferenced."""
    cell = deref(start)
    if cell is None:
        return None
    path = [start]
    while cell.index != target_index:
        position = best_skip(cell, target_index, basis)
        if position is None:
            return None
        pointer = cell.back_pointers[position]
        found = deref(pointer)
        if found is None:
            return None
        path.append(pointer)
        cell = found
    return path


def find(deref: Deref[C], start: Hash, target_index: int, basis: int = BASIS) -> Cell[C] | None:
    """The cell of ``target_index`` reached back from ``start``, or None."""
    path = back_path(deref, start, target_index, basis)
    return None if path is None else deref(path[-1])


def search(deref: Deref[C], start: Cell[C], compare: Callable[[C], int]) -> list[Cell[C]] | None:
    """The cells of the path from ``start`` back to the cell whose content ``compare``
    maps to 0, or None if there is none.

    ``compare(content)`` is positive for cells after the target, negative for cells before
    it (contents grow along the list, like inbox levels). At each cell the back pointers
    are tried nearest first and the farthest one not past the target is taken, which is
    the best skip of :func:`best_skip` when contents and indices grow together: the path
    found is the one :func:`valid_back_path` accepts.

    Like Octez, ``deref`` may know only the cells from the target up: if a pointer cannot
    be dereferenced after a usable one was seen, the usable one is taken (the unknown cell
    is older, so it would overshoot the target anyway)."""
    order = compare(start.content)
    if order == 0:
        return [start]
    if order < 0:
        return None
    path = [start]
    cell = start
    while True:
        candidate: Cell[C] | None = None
        for pointer in cell.back_pointers:
            found = deref(pointer)
            if found is None:
                break
            order = compare(found.content)
            if order == 0:
                path.append(found)
                return path
            if order < 0:
                break
            candidate = found
        if candidate is None:
            return None
        path.append(candidate)
        cell = candidate


def valid_back_path(
    deref: Deref[C],
    start: Hash,
    target: Hash,
    path: Sequence[Hash],
    basis: int = BASIS,
) -> bool:
    """Whether ``path`` is *the* minimal back path from the cell ``start`` to the cell
    ``target``: it begins with ``start``, each next pointer is the best skip of the cell
    before it towards the target's index, every cell dereferences, and it ends on
    ``target`` (at the target's index).

    Stricter than Octez: each cell's index must also be the one its predecessor's pointer
    designates (:func:`pointed_index`). Cell hashes do not cover indices, so this is what
    makes the indices of a path as trustworthy as the index of its start."""
    target_cell = deref(target)
    start_cell = deref(start)
    if target_cell is None or start_cell is None or not path or path[0] != start:
        return False
    target_index = target_cell.index
    pointer, cell = start, start_cell
    for next_pointer in path[1:]:
        position = best_skip(cell, target_index, basis)
        if position is None or cell.back_pointers[position] != next_pointer:
            return False
        found = deref(next_pointer)
        if found is None or found.index != pointed_index(cell.index, position, basis):
            return False
        pointer, cell = next_pointer, found
    return pointer == target and cell.index == target_index


# --- certified indices ----------------------------------------------------------------------
#
# A cell's hash covers its content and back pointers but not its index, so the index a cell
# claims proves nothing. The index of a cell I can instead be read off the (hashed) pointer
# structure below it. Write I in base b with digits d_{m-1} … d_0, m = the number of its
# back pointers, and let A_k be the cell its pointer k designates (index I - I mod b**k - 1,
# whose k lowest digits are all b - 1):
#
# * for k < m - 1, following pointer k from A_k subtracts exactly b**k per hop (exactly 1
#   for k = 0), so A_{k+1} is reached after exactly d_k hops;
# * from A_{m-1} (index d_{m-1} * b**(m-1) - 1), following pointer m - 1 reaches the first
#   cell with fewer than m pointers (index b**(m-1) - 1) after exactly d_{m-1} - 1 hops.
#
# Every cell on these walks is reached through a hashed pointer, and a walk is forced, so
# the hop counts are facts of the list, not claims: they give every digit of I. The walks
# visit sum(d_k) cells, at most (b - 1) * m.


def certify(deref: Deref[C], start: Hash, basis: int = BASIS) -> dict[Hash, int] | None:
    """The true index of the cell ``start`` and of every cell read to find it (see the
    comment above), by pointer, in reading order with ``start`` first; None if ``deref``
    lacks a cell the reading needs or the cells are not those of a skip list."""
    cell = deref(start)
    if cell is None:
        return None
    pointers = cell.back_pointers
    count = len(pointers)
    index = 0
    walks: list[tuple[int, list[Hash]]] = []  # per position: the cells read, nearest first
    for position in range(count):
        pointer = pointers[position]
        read: list[Hash] = []
        if position + 1 < count:
            stop = pointers[position + 1]
            while pointer != stop:
                found = deref(pointer)
                if len(read) == basis - 1 or found is None:
                    return None
                if len(found.back_pointers) <= position:
                    return None
                read.append(pointer)
                pointer = found.back_pointers[position]
            digit = len(read)
        else:
            while True:
                found = deref(pointer)
                if found is None:
                    return None
                read.append(pointer)
                if len(found.back_pointers) <= position:
                    break
                if len(read) == basis - 1:
                    return None
                pointer = found.back_pointers[position]
            digit = len(read)
        index += digit * basis**position
        walks.append((position, read))
    indices = {start: index}
    for position, read in walks:
        # The walk at ``position`` starts on the cell that pointer designates and steps
        # down by exactly basis**position (by 1 for position 0).
        landing = pointed_index(index, position, basis)
        for pointer in read:
            indices.setdefault(pointer, landing)
            landing -= basis**position
    return indices


def certified_index(deref: Deref[C], start: Hash, basis: int = BASIS) -> int | None:
    """The true index of the cell ``start``, read off the pointer structure below it (see
    the comment above), or None if ``deref`` lacks a cell the reading needs or the cells
    are not those of a skip list."""
    indices = certify(deref, start, basis)
    return None if indices is None else indices[start]


def index_certificate(deref: Deref[C], start: Hash, basis: int = BASIS) -> list[Hash] | None:
    """The pointers of the cells :func:`certified_index` reads for ``start`` (besides
    ``start`` itself), each once, in reading order; None if some cannot be dereferenced."""
    indices = certify(deref, start, basis)
    return None if indices is None else [p for p in indices if p != start]
