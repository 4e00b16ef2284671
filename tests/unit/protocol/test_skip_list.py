"""The generic merkelized skip list (``soru.protocol.skip_list``, SORU-SPEC §3.1).

Lists of small integers, hashed with Blake2b over (content, pointers) like the inbox lists
hash theirs, in basis 4 (the inbox's) and a few other bases. Checked: where back pointers
point, that :func:`back_path` is valid, ends on the target and is as short as any path
through the pointers (breadth-first search), that :func:`search` finds the same path, and
that :func:`valid_back_path` rejects every other path; :func:`certified_index` recovers
every index from the pointers alone, and from the certificate cells alone.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import replace
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soru.base.errors import DecodeError
from soru.base.hashes import Hash
from soru.encoding.reader import Reader
from soru.encoding.writer import Writer
from soru.protocol import skip_list
from soru.protocol.skip_list import Cell

BASES = [2, 3, 4, 5, 7]


def hash_cell(cell: Cell[int]) -> Hash:
    state = hashlib.blake2b(cell.content.to_bytes(8, "big"), digest_size=32)
    for pointer in cell.back_pointers:
        state.update(pointer)
    return Hash(state.digest())


class IntList:
    """A skip list whose cell i holds 10 + 2 i (even numbers, so odd ones are absent)."""

    def __init__(self, size: int, basis: int) -> None:
        self.basis = basis
        self.cells: list[Cell[int]] = [skip_list.genesis(10)]
        self.pointers: list[Hash] = [hash_cell(self.cells[0])]
        for index in range(1, size):
            cell = skip_list.next_cell(self.cells[-1], self.pointers[-1], 10 + 2 * index, basis)
            self.cells.append(cell)
            self.pointers.append(hash_cell(cell))
        self.table = dict(zip(self.pointers, self.cells, strict=True))
        self.index_of = {pointer: i for i, pointer in enumerate(self.pointers)}

    def deref(self, pointer: Hash) -> Cell[int] | None:
        return self.table.get(pointer)

    def back_path(self, start: int, target: int) -> list[Hash] | None:
        return skip_list.back_path(self.deref, self.pointers[start], target, self.basis)

    def valid(self, start: int, target: int, path: list[Hash]) -> bool:
        return skip_list.valid_back_path(
            self.deref, self.pointers[start], self.pointers[target], path, self.basis
        )

    def shortest(self, start: int, target: int) -> int:
        """Cells on a shortest path through back pointers (breadth-first)."""
        seen = {start: 1}
        queue = deque([start])
        while queue:
            index = queue.popleft()
            if index == target:
                return seen[index]
            for pointer in self.cells[index].back_pointers:
                j = self.index_of[pointer]
                if j >= target and j not in seen:
                    seen[j] = seen[index] + 1
                    queue.append(j)
        raise AssertionError("no path")


@cache
def int_list(size: int, basis: int) -> IntList:
    return IntList(size, basis)


# --- shape ---------------------------------------------------------------------------------


@pytest.mark.parametrize("basis", BASES)
def test_back_pointers_point_where_the_spec_says(basis: int) -> None:
    """Pointer i of cell n designates cell n - (n mod basis**i) - 1, and a cell has one
    pointer per i with basis**i <= n (SORU-SPEC §3.1)."""
    lst = int_list(600, basis)
    for index, cell in enumerate(lst.cells):
        assert cell.index == index
        expected_count = sum(1 for i in range(32) if basis**i <= index)
        assert len(cell.back_pointers) == expected_count == skip_list.pointer_count(index, basis)
        for position, pointer in enumerate(cell.back_pointers):
            designated = index - index % basis**position - 1
            assert lst.index_of[pointer] == designated
            assert skip_list.pointed_index(index, position, basis) == designated
        assert skip_list.back_pointer(cell, len(cell.back_pointers)) is None
        assert skip_list.back_pointer(cell, -1) is None


def test_basis_four_examples() -> None:
    lst = int_list(70, 4)
    assert lst.cells[0].back_pointers == ()
    designated = [[lst.index_of[p] for p in lst.cells[n].back_pointers] for n in (1, 4, 5, 16, 63)]
    assert designated == [[0], [3, 3], [4, 3], [15, 15, 15], [62, 59, 47]]


@given(st.integers(0, 10**12), st.sampled_from(BASES))
def test_best_skip_is_the_farthest_pointer_not_below_the_target(index: int, basis: int) -> None:
    count = skip_list.pointer_count(index, basis)
    cell = Cell(index, 0, tuple(Hash(i.to_bytes(32, "big")) for i in range(count)))
    for target in {0, index // 2, index - 1, max(0, index - basis**3), index}:
        best = skip_list.best_skip(cell, target, basis)
        landing = [skip_list.pointed_index(index, i, basis) for i in range(count)]
        fitting = [i for i in range(count) if landing[i] >= target]
        if not fitting:
            assert best is None
        else:
            assert best == max(fitting)
            assert landing[best] == min(landing[i] for i in fitting)


# --- paths ---------------------------------------------------------------------------------


@settings(max_examples=300)
@given(st.data())
def test_back_path_is_valid_minimal_and_ends_on_the_target(data: st.DataObject) -> None:
    basis = data.draw(st.sampled_from([4, 4, 4, *BASES]))
    lst = int_list(600, basis)
    start = data.draw(st.integers(0, 599))
    target = data.draw(st.integers(0, start))
    path = lst.back_path(start, target)
    assert path is not None
    assert path[0] == lst.pointers[start] and path[-1] == lst.pointers[target]
    assert lst.valid(start, target, path)
    assert len(path) == lst.shortest(start, target)
    # Octez's bound on the length (test_skip_list.ml): ceil(log_b(distance + 1)) * b.
    distance = start - target + 1
    log = 0
    while basis**log < distance:
        log += 1
    assert len(path) <= max(1, log * basis)
    found = skip_list.find(lst.deref, lst.pointers[start], target, basis)
    assert found is lst.cells[target]


def test_no_path_forward_or_through_unknown_cells() -> None:
    lst = int_list(100, 4)
    assert lst.back_path(10, 11) is None
    assert skip_list.find(lst.deref, lst.pointers[10], 50, 4) is None
    assert skip_list.back_path(lst.deref, Hash(bytes(32)), 0) is None
    partial = {p: c for p, c in lst.table.items() if c.index >= 40}
    assert skip_list.back_path(partial.get, lst.pointers[99], 40) is not None
    assert skip_list.back_path(partial.get, lst.pointers[99], 39) is None


@settings(max_examples=200)
@given(st.data())
def test_search_finds_the_back_path(data: st.DataObject) -> None:
    basis = data.draw(st.sampled_from([4, *BASES]))
    lst = int_list(600, basis)
    start = data.draw(st.integers(0, 599))
    target = data.draw(st.integers(0, start))
    wanted = 10 + 2 * target
    cells = skip_list.search(lst.deref, lst.cells[start], lambda content: content - wanted)
    assert cells is not None
    assert [hash_cell(c) for c in cells] == lst.back_path(start, target)
    # Only the cells from the target up are needed (Octez: deref may be partial).
    partial = {p: c for p, c in lst.table.items() if c.index >= target}
    again = skip_list.search(partial.get, lst.cells[start], lambda content: content - wanted)
    assert again == cells
    # Absent contents (odd numbers, above the start, below genesis) are not found.
    for absent in (wanted + 1, wanted - 1, 10 + 2 * start + 2, 9):

        def compare(content: int, absent: int = absent) -> int:
            return content - absent

        assert skip_list.search(lst.deref, lst.cells[start], compare) is None


@settings(max_examples=200)
@given(st.data())
def test_every_other_path_is_rejected(data: st.DataObject) -> None:
    lst = int_list(400, 4)
    start = data.draw(st.integers(1, 399))
    target = data.draw(st.integers(0, start - 1))
    path = lst.back_path(start, target)
    assert path is not None and lst.valid(start, target, path)
    # Truncated, extended, empty, reversed, or not starting at the start.
    assert not lst.valid(start, target, path[:-1])
    assert not lst.valid(start, target, [])
    if target > 0:
        assert not lst.valid(start, target, [*path, lst.cells[target].back_pointers[0]])
    assert not lst.valid(start, target, list(reversed(path)))
    assert not lst.valid(start, target, path[1:])
    assert not lst.valid(start, target, [lst.pointers[start - 1], *path[1:]])
    # Every hop replaced by another pointer of the same cell (not the best skip).
    for hop in range(1, len(path)):
        cell = lst.table[path[hop - 1]]
        for other in set(cell.back_pointers) - {path[hop]}:
            assert not lst.valid(start, target, [*path[:hop], other, *path[hop + 1 :]])
    # The all-predecessors path is a path, but not the minimal one (when they differ).
    linear = lst.pointers[target : start + 1][::-1]
    assert lst.valid(start, target, linear) == (linear == path)
    # A path to the wrong target, or with a cell missing from deref.
    if target > 0:
        assert not lst.valid(start, target - 1, path)
    missing = {p: c for p, c in lst.table.items() if p != path[len(path) // 2]}
    assert not skip_list.valid_back_path(
        missing.get, lst.pointers[start], lst.pointers[target], path
    )


def test_claimed_indices_must_follow_from_the_start() -> None:
    """Hashes do not cover indices: a cell that claims another index (same hash) must not
    make a path valid (stricter than Octez)."""
    lst = int_list(100, 4)
    path = lst.back_path(99, 40)
    assert path is not None
    for hop in range(1, len(path)):
        cell = lst.table[path[hop]]
        for fake in (cell.index - 1, cell.index + 1):
            table = dict(lst.table)
            table[path[hop]] = replace(cell, index=fake)
            assert not skip_list.valid_back_path(table.get, path[0], path[-1], path), (hop, fake)


def test_a_cell_is_its_own_path() -> None:
    lst = int_list(20, 4)
    for i in range(20):
        assert lst.back_path(i, i) == [lst.pointers[i]]
        assert lst.valid(i, i, [lst.pointers[i]])


# --- certified indices -----------------------------------------------------------------------


@pytest.mark.parametrize("basis", BASES)
def test_certified_index_reads_every_index_off_the_pointers(basis: int) -> None:
    lst = int_list(600, basis)
    longest = 0
    for index, pointer in enumerate(lst.pointers):
        # Claimed indices play no part: every cell claims 0.
        blind = {p: replace(c, index=0) for p, c in lst.table.items()}
        assert skip_list.certified_index(blind.get, pointer, basis) == index
        certificate = skip_list.index_certificate(lst.deref, pointer, basis)
        assert certificate is not None and pointer not in certificate
        longest = max(longest, len(certificate))
        only = {p: lst.table[p] for p in [pointer, *certificate]}
        assert skip_list.certified_index(only.get, pointer, basis) == index
        if certificate:
            fewer = {p: lst.table[p] for p in [pointer, *certificate[1:]]}
            assert skip_list.certified_index(fewer.get, pointer, basis) is None
    digits = skip_list.pointer_count(599, basis)
    assert longest <= (basis - 1) * digits


def test_certified_index_rejects_cells_of_no_skip_list() -> None:
    lst = int_list(50, 4)
    # A cell whose pointers no skip-list cell has (pointer 2 designates 3, not 15).
    bogus = Cell(30, 0, (lst.pointers[29], lst.pointers[29], lst.pointers[3]))
    table = dict(lst.table)
    bogus_pointer = hash_cell(bogus)
    table[bogus_pointer] = bogus
    assert skip_list.certified_index(table.get, bogus_pointer) is None
    assert skip_list.certified_index(table.get, Hash(bytes(32))) is None


# --- encoding ------------------------------------------------------------------------------


def _write_int(out: Writer, content: int) -> None:
    out.uint_be(content, 8)


def _read_int(reader: Reader) -> int:
    return reader.uint_be(8)


@given(st.integers(0, 599))
def test_cell_encoding_round_trips_and_is_octez_shaped(index: int) -> None:
    cell = int_list(600, 4).cells[index]
    out = Writer()
    cell.write(out, _write_int)
    data = out.getvalue()
    reader = Reader(data)
    assert Cell.read(reader, _read_int, max_index=10**6) == cell
    assert reader.at_end()
    # n index, content, then a 4-byte byte size and the pointers.
    zarith = Writer().zarith_n(index).getvalue()
    assert data.startswith(zarith)
    size = int.from_bytes(data[len(zarith) + 8 : len(zarith) + 12], "big")
    assert size == 32 * len(cell.back_pointers) == len(data) - len(zarith) - 12


def test_cell_decoding_is_strict() -> None:
    cell = int_list(20, 4).cells[17]
    out = Writer()
    cell.write(out, _write_int)
    data = out.getvalue()
    with pytest.raises(DecodeError):
        Cell.read(Reader(data), _read_int, max_index=16)
    wrong_count = replace(cell, back_pointers=cell.back_pointers[:-1])
    out = Writer()
    wrong_count.write(out, _write_int)
    with pytest.raises(DecodeError):
        Cell.read(Reader(out.getvalue()), _read_int, max_index=100)
    with pytest.raises(DecodeError):
        Cell.read(Reader(data[:-1]), _read_int, max_index=100)
