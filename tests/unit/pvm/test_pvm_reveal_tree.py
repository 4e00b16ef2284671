"""Preimage page trees (``soru.tools.preimages``, SORU-SPEC §6) and a kernel that reveals
one (``kernels/reveal_tree.wat``): the pages follow the DAC v0 format at its limits, the
directory layout is what the reveal provider reads, and the kernel reassembles trees of
three and more levels through ``reveal_preimage``."""

from __future__ import annotations

import random

import pytest
from pvm_kernels import ROLLUP, TICKS, build, external, run_levels

from soru.pvm.reveals import RevealError, RevealProvider, reveal_hash
from soru.tools.preimages import (
    CONTENT_PAGE,
    HASH_PAGE,
    MAX_CONTENT_SIZE,
    MAX_HASHES_PER_PAGE,
    PreimageError,
    decode_page,
    prepare_preimages,
    reassemble,
    write_preimages,
)


def noise(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def test_limits():
    assert (MAX_CONTENT_SIZE, MAX_HASHES_PER_PAGE) == (4091, 123)


def test_small_data_is_one_content_page_and_its_own_root():
    tree = prepare_preimages(b"hello")
    page = b"\x00\x00\x00\x00\x05hello"
    assert tree.root == reveal_hash(page) and tree.root[0] == 0 and len(tree.root) == 33
    assert tree.pages == {tree.root: page}
    assert tree.levels == 1


@pytest.mark.parametrize(
    ("size", "levels", "pages"),
    [
        (4091, 1, 1),
        (4092, 2, 3),
        (123 * 4091, 2, 124),
        (123 * 4091 + 1, 3, 124 + 2 + 1),
    ],
)
def test_levels_at_the_page_limits(size, levels, pages):
    tree = prepare_preimages(noise(size))
    assert (tree.levels, len(tree.pages)) == (levels, pages)
    for digest, page in tree.pages.items():
        assert reveal_hash(page) == digest and len(page) <= 4096
        tag, payload = decode_page(page)
        if tag == CONTENT_PAGE:
            assert 0 < len(payload) <= 4091
        else:
            assert tag == HASH_PAGE and 0 < len(payload) // 33 <= 123
            assert all(payload[i : i + 33] in tree.pages for i in range(0, len(payload), 33))


def test_a_hash_page_is_tag_length_and_hashes():
    tree = prepare_preimages(noise(4092))
    root = tree.pages[tree.root]
    assert root[0] == HASH_PAGE and int.from_bytes(root[1:5], "big") == 66
    first, second = root[5:38], root[38:71]
    assert tree.pages[first][5:] == noise(4092)[:4091]
    assert tree.pages[second] == b"\x00\x00\x00\x00\x01" + noise(4092)[4091:]


def test_write_and_reassemble(tmp_path):
    data = noise(123 * 4091 + 5000, seed=1)
    tree = prepare_preimages(data)
    write_preimages(tree, tmp_path / "preimages")
    files = sorted(p.name for p in (tmp_path / "preimages").iterdir())
    assert files == sorted(d.hex() for d in tree.pages)
    provider = RevealProvider(tmp_path / "preimages", ROLLUP, 0)
    assert reassemble(tree.root, provider.preimage) == data


def test_deep_trees_from_small_pages():
    data = noise(3000, seed=2)
    tree = prepare_preimages(data, max_page_size=71)  # 66 bytes of data, 2 hashes per page
    assert tree.levels == 7  # 46 content pages
    assert reassemble(tree.root, tree.pages.__getitem__, max_levels=7) == data
    with pytest.raises(PreimageError):
        reassemble(tree.root, tree.pages.__getitem__)  # the installer's limit is 4


def test_errors():
    with pytest.raises(PreimageError):
        prepare_preimages(b"")
    with pytest.raises(PreimageError):
        prepare_preimages(b"x", max_page_size=70)
    with pytest.raises(PreimageError):
        prepare_preimages(b"x", max_page_size=4097)
    for page in [
        b"\x00\x00\x00",
        b"\x02\x00\x00\x00\x00",
        b"\x00\x00\x00\x00\x02x",
        b"\x01\x00\x00\x00\x01x",
        bytes(4097),
    ]:
        with pytest.raises(PreimageError):
            decode_page(page)


def test_a_tampered_preimage_file_is_refused(tmp_path):
    tree = prepare_preimages(b"hello")
    write_preimages(tree, tmp_path)
    (tmp_path / tree.root.hex()).write_bytes(b"\x00\x00\x00\x00\x05jello")
    with pytest.raises(RevealError):
        RevealProvider(tmp_path, ROLLUP, 0).preimage(tree.root)


# --- through the PVM ---------------------------------------------------------------------------


def reveal_through_the_kernel(tmp_path, data: bytes, **options):
    tree = prepare_preimages(data, **options)
    reveals = RevealProvider(write_preimages(tree, tmp_path / "preimages"), ROLLUP, 0)
    state, (level,) = run_levels(build("reveal_tree"), [[external(tree.root)]], reveals=reveals)
    return tree, state, level


def test_the_kernel_reassembles_a_three_level_tree(tmp_path):
    data = noise(123 * 4091 + 2 * 4091 + 17, seed=3)
    tree, state, level = reveal_through_the_kernel(tmp_path, data)
    assert tree.levels == 3 and len(tree.pages) == 126 + 2 + 1
    assert state.stuck is None and state.durable.read_all("/readonly/kernel/env/stuck") is None
    assert state.durable.read_all("/data") == data
    assert level.ticks == 2 * TICKS  # reveal ticks are inside the kernel_run


def test_the_kernel_reassembles_a_deep_tree_of_small_pages(tmp_path):
    data = noise(2000, seed=4)
    tree, state, _ = reveal_through_the_kernel(tmp_path, data, max_page_size=71)
    assert tree.levels == 6  # 31 content pages, 2 hashes per hash page
    assert state.durable.read_all("/data") == data


def test_the_kernel_reveals_a_single_page(tmp_path):
    _, state, _ = reveal_through_the_kernel(tmp_path, b"one page")
    assert state.durable.read_all("/data") == b"one page"
