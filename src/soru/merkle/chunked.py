"""Byte strings longer than one value: a directory of chunks.

A path holds at most 4096 bytes (:data:`soru.merkle.nodes.MAX_VALUE_SIZE`). Longer data is
stored under a path ``p`` as::

    p/length            the total length, u64 big-endian (8 bytes)
    p/chunks/<i>        chunk i (decimal, no leading zeros), CHUNK_SIZE bytes except the last

so reading or proving a range touches the length and the chunks covering it only: one 4 KiB
chunk of a 1 MiB value costs about 4.5 KB of proof. Any ``chunk_size`` up to 4096 may be used
(the PVM's durable storage uses its own layout and chunk size); readers infer it from chunk 0.
"""

from __future__ import annotations

from soru.merkle.errors import MerkleError
from soru.merkle.nodes import MAX_VALUE_SIZE
from soru.merkle.tree import Path, Tree

CHUNK_SIZE = 4096
LENGTH = "length"
CHUNKS = "chunks"


class ChunkedValueError(MerkleError):
    """A chunked value whose length or chunks are missing or inconsistent."""


def write_chunked(tree: Tree, path: Path, data: bytes, chunk_size: int = CHUNK_SIZE) -> Tree:
    """The tree in which ``path`` holds exactly ``data`` as a chunked value."""
    if not 0 < chunk_size <= MAX_VALUE_SIZE:
        raise ChunkedValueError(f"chunk size {chunk_size} outside 1..{MAX_VALUE_SIZE}")
    data = bytes(data)
    items = {(LENGTH,): len(data).to_bytes(8, "big")}
    for index, start in enumerate(range(0, len(data), chunk_size)):
        items[(CHUNKS, str(index))] = data[start : start + chunk_size]
    return tree.graft(path, Tree.from_items(items))


def chunked_length(tree: Tree, path: Path) -> int | None:
    """The length of the chunked value at ``path``, or None if there is none."""
    raw = tree.get(tuple(path) + (LENGTH,))
    if raw is None:
        return None
    if len(raw) != 8:
        raise ChunkedValueError(f"a chunked length has 8 bytes, not {len(raw)}")
    return int.from_bytes(raw, "big")


def read_chunked_range(tree: Tree, path: Path, offset: int, size: int) -> bytes:
    """``size`` bytes from ``offset`` of the chunked value at ``path`` (fewer at its end),
    reading only the chunks that cover them."""
    length = chunked_length(tree, path)
    if length is None:
        raise ChunkedValueError(f"no chunked value at {tuple(path)!r}")
    if offset < 0 or size < 0:
        raise ChunkedValueError("negative offset or size")
    end = min(length, offset + size)
    if offset >= end:
        return b""
    base = tuple(path) + (CHUNKS,)
    first = _chunk(tree, base, 0)
    chunk_size = len(first) if length > len(first) else max(len(first), 1)
    out = []
    index = offset // chunk_size
    while index * chunk_size < end:
        chunk = first if index == 0 else _chunk(tree, base, index)
        start = index * chunk_size
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


def _chunk(tree: Tree, base: tuple[str, ...], index: int) -> bytes:
    chunk = tree.get(base + (str(index),))
    if chunk is None:
        raise ChunkedValueError(f"chunk {index} missing")
    return chunk
