"""Byte strings longer than one value: a directory of chunks.

A path holds at most 4096 bytes (:data:`soru.merkle.nodes.MAX_VALUE_SIZE`). Longer data is
stored under a path ``p`` as::

    p/header            total length u64 || chunk size u16 (big-endian, 10 bytes)
    p/chunks/<i>        chunk i (decimal, no leading zeros), chunk-size bytes except the last

so reading or proving a range touches the header and the chunks covering it only: one 4 KiB
chunk of a 1 MiB value costs about 5 KB of proof. Any chunk size from 1 to 4096 may be used
(the PVM's durable storage has its own layout and chunk size).
"""

from __future__ import annotations

from soru.merkle.errors import MerkleError
from soru.merkle.nodes import MAX_VALUE_SIZE
from soru.merkle.tree import Path, Tree

CHUNK_SIZE = 4096
HEADER = "header"
CHUNKS = "chunks"


class ChunkedValueError(MerkleError):
    """A chunked value whose length or chunks are missing or inconsistent."""


def write_chunked(tree: Tree, path: Path, data: bytes, chunk_size: int = CHUNK_SIZE) -> Tree:
    """The tree in which ``path`` holds exactly ``data`` as a chunked value."""
    if not 0 < chunk_size <= MAX_VALUE_SIZE:
        raise ChunkedValueError(f"chunk size {chunk_size} outside 1..{MAX_VALUE_SIZE}")
    data = bytes(data)
    header = len(data).to_bytes(8, "big") + chunk_size.to_bytes(2, "big")
    items: dict[tuple[str, ...], bytes] = {(HEADER,): header}
    for index, start in enumerate(range(0, len(data), chunk_size)):
        items[(CHUNKS, str(index))] = data[start : start + chunk_size]
    return tree.graft(path, Tree.from_items(items))


def _header(tree: Tree, path: Path) -> tuple[int, int] | None:
    raw = tree.get(tuple(path) + (HEADER,))
    if raw is None:
        return None
    if len(raw) != 10:
        raise ChunkedValueError(f"a chunked value header has 10 bytes, not {len(raw)}")
    length, chunk_size = int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")
    if not 0 < chunk_size <= MAX_VALUE_SIZE:
        raise ChunkedValueError(f"chunk size {chunk_size} outside 1..{MAX_VALUE_SIZE}")
    return length, chunk_size


def chunked_length(tree: Tree, path: Path) -> int | None:
    """The length of the chunked value at ``path``, or None if there is none."""
    header = _header(tree, path)
    return None if header is None else header[0]


def read_chunked_range(tree: Tree, path: Path, offset: int, size: int) -> bytes:
    """``size`` bytes from ``offset`` of the chunked value at ``path`` (fewer at its end),
    reading only the header and the chunks that cover them."""
    header = _header(tree, path)
    if header is None:
        raise ChunkedValueError(f"no chunked value at {tuple(path)!r}")
    if offset < 0 or size < 0:
        raise ChunkedValueError("negative offset or size")
    length, chunk_size = header
    end = min(length, offset + size)
    base = tuple(path) + (CHUNKS,)
    out = []
    index = offset // chunk_size
    while index * chunk_size < end:
        chunk = tree.get(base + (str(index),))
        start = index * chunk_size
        expected = min(chunk_size, length - start)
        if chunk is None or len(chunk) != expected:
            raise ChunkedValueError(f"chunk {index} missing or of the wrong size")
        out.append(chunk[max(offset - start, 0) : end - start])
        index += 1
    return b"".join(out)


def read_chunked(tree: Tree, path: Path) -> bytes | None:
    """The whole chunked value at ``path``, or None if there is none."""
    length = chunked_length(tree, path)
    if length is None:
        return None
    data = read_chunked_range(tree, path, 0, length)
    if len(data) != length:
        raise ChunkedValueError(f"chunks hold {len(data)} bytes, length says {length}")
    return data
