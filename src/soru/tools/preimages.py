"""Reveal data as a tree of preimage pages, as the Tezos kernel SDK prepares it
(``../shared/SORU-SPEC.md`` §6): data too large for an inbox message or a boot sector is
published as pages of at most 4096 bytes, each named by its 33-byte reveal hash, and a kernel
fetches them one ``reveal_preimage`` at a time starting from the root hash.

Page format (DAC pages, version 0)::

    content page   0x00 ‖ u32 BE length ‖ data           (≤ 4091 bytes of data)
    hash page      0x01 ‖ u32 BE length ‖ hash ‖ hash …   (≤ 123 hashes of 33 bytes)

:func:`prepare_preimages` cuts the data into content pages, then builds hash pages over the
previous level's hashes, level by level, until one hash remains: the root. One content page
is its own root. :func:`write_preimages` stores the pages in a directory, each in a file named
by the hex of its hash — the layout of a rollup node's ``<data-dir>/wasm_2_0_0/`` and of
``soru pvm run --preimages``. :func:`reassemble` walks a tree back to its data (what a kernel
does; the installer kernel accepts at most four levels of pages).

``max_page_size`` exists so that tests can build deep trees from little data; anything
published for a real kernel uses the default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from soru.base.errors import SoruError
from soru.pvm.reveals import REVEAL_HASH_SIZE, reveal_hash

CONTENT_PAGE, HASH_PAGE = 0x00, 0x01
PAGE_HEADER_SIZE = 5
MAX_PAGE_SIZE = 4096
MAX_CONTENT_SIZE = MAX_PAGE_SIZE - PAGE_HEADER_SIZE
"""4091: data bytes in one content page."""
MAX_HASHES_PER_PAGE = MAX_CONTENT_SIZE // REVEAL_HASH_SIZE
"""123: hashes in one hash page."""


class PreimageError(SoruError):
    """Data that cannot be paged, or a page or tree that does not follow the format."""


@dataclass(frozen=True, slots=True)
class Preimages:
    """A page tree: its root hash, every page by hash, and its number of page levels."""

    root: bytes
    pages: dict[bytes, bytes] = field(repr=False)
    levels: int


def _page(tag: int, payload: bytes) -> bytes:
    return bytes((tag,)) + len(payload).to_bytes(4, "big") + payload


def prepare_preimages(data: bytes, *, max_page_size: int = MAX_PAGE_SIZE) -> Preimages:
    """The page tree of ``data`` (not empty: the SDK refuses empty data too)."""
    content_size = max_page_size - PAGE_HEADER_SIZE
    per_page = content_size // REVEAL_HASH_SIZE
    if per_page < 2 or max_page_size > MAX_PAGE_SIZE:
        raise PreimageError(f"page size {max_page_size} outside [71, {MAX_PAGE_SIZE}]")
    if not data:
        raise PreimageError("no data to page")
    pages: dict[bytes, bytes] = {}

    def add(page: bytes) -> bytes:
        digest = reveal_hash(page)
        pages[digest] = page
        return digest

    hashes = [
        add(_page(CONTENT_PAGE, data[start : start + content_size]))
        for start in range(0, len(data), content_size)
    ]
    levels = 1
    while len(hashes) > 1:
        hashes = [
            add(_page(HASH_PAGE, b"".join(hashes[start : start + per_page])))
            for start in range(0, len(hashes), per_page)
        ]
        levels += 1
    return Preimages(hashes[0], pages, levels)


def write_preimages(preimages: Preimages, directory: Path | str) -> Path:
    """Write every page to ``directory/<hex of its hash>``; returns the directory."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    for digest, page in preimages.pages.items():
        (target / digest.hex()).write_bytes(page)
    return target


def decode_page(page: bytes) -> tuple[int, bytes]:
    """The tag and payload of a page; raises :class:`PreimageError`."""
    if len(page) < PAGE_HEADER_SIZE or len(page) > MAX_PAGE_SIZE:
        raise PreimageError(f"a page of {len(page)} bytes")
    tag, length = page[0], int.from_bytes(page[1:5], "big")
    payload = page[PAGE_HEADER_SIZE:]
    if tag not in (CONTENT_PAGE, HASH_PAGE) or length != len(payload):
        raise PreimageError(f"bad page header {page[:PAGE_HEADER_SIZE].hex()}")
    if tag == HASH_PAGE and length % REVEAL_HASH_SIZE:
        raise PreimageError(f"a hash page of {length} bytes")
    return tag, payload


def reassemble(root: bytes, lookup: Callable[[bytes], bytes], *, max_levels: int = 4) -> bytes:
    """The data of the tree under ``root``, fetching pages with ``lookup`` (which must check
    them against their hash, as ``RevealProvider.preimage`` does), depth first."""
    out = bytearray()
    pending = [(root, 1)]
    while pending:
        digest, depth = pending.pop()
        if depth > max_levels:
            raise PreimageError(f"more than {max_levels} levels of pages")
        tag, payload = decode_page(lookup(digest))
        if tag == CONTENT_PAGE:
            out += payload
        else:
            children = [
                payload[at : at + REVEAL_HASH_SIZE]
                for at in range(0, len(payload), REVEAL_HASH_SIZE)
            ]
            pending.extend((child, depth + 1) for child in reversed(children))
    return bytes(out)
