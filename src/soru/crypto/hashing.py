"""Blake2b with domain separation: the one place where soru computes a hash.

Every hash in soru names its *domain* — what the hashed bytes mean — with a member of
:class:`Tag`. The tag is passed to Blake2b as its **personalization** parameter (the 16-byte
``person`` field of the Blake2b parameter block, RFC 7693 §2.8), not prepended to the input:
two different domains therefore produce unrelated digests even for identical input, at no
cost per byte hashed.

One domain is special: :attr:`Tag.TEZOS` is the empty personalization, i.e. plain Blake2b.
Hashes that must equal Tezos's byte for byte (commitment hashes, reveal hashes, addresses,
b58check payloads) use it; every hash that soru defines for itself (the Merkle tree of the PVM
state, its proofs) uses a tag of its own. Adding a hash to soru means adding a member here.

A personalization is at most 16 bytes; by convention tags read ``soru.<layer>.<what>``.
"""

from __future__ import annotations

import hashlib
from enum import Enum
from functools import partial

PERSON_SIZE = 16
"""Maximal length of a Blake2b personalization, hence of a tag."""


class Tag(bytes, Enum):
    """The table of hash domains. The value of each member is its Blake2b personalization."""

    TEZOS = b""
    """Plain Blake2b, for hashes that must agree with Tezos (no personalization)."""

    MERKLE_KEY = b"soru.mk.key"
    """Position of a child name inside a directory's binary trie (``soru.merkle``)."""
    MERKLE_VALUE = b"soru.mk.value"
    """A value (at most 4 KiB) stored at a path of the Merkle tree."""
    MERKLE_NODE = b"soru.mk.node"
    """A path node: its value hash (or absence) and the root of its children's trie."""
    MERKLE_LEAF = b"soru.mk.leaf"
    """A trie leaf: one child's name and the hash of the child's node."""
    MERKLE_BRANCH = b"soru.mk.branch"
    """A trie branch: its crit-bit index, its leaf count and its two subtries."""


for _tag in Tag:
    if len(_tag.value) > PERSON_SIZE:  # pragma: no cover - checked at import
        raise ValueError(f"hash tag {_tag.name} longer than {PERSON_SIZE} bytes")

_blake2b = hashlib.blake2b


def blake2b_256(domain: Tag | bytes, *parts: bytes) -> bytes:
    """The 32-byte Blake2b digest of the concatenation of ``parts`` in ``domain``.

    ``domain`` should be a :class:`Tag`; raw bytes (at most 16) are accepted for tests and
    one-off tools.
    """
    if len(parts) == 1:
        return _blake2b(parts[0], digest_size=32, person=domain).digest()
    state = _blake2b(digest_size=32, person=domain)
    for part in parts:
        state.update(part)
    return state.digest()


def blake2b_160(domain: Tag | bytes, *parts: bytes) -> bytes:
    """The 20-byte Blake2b digest of the concatenation of ``parts`` in ``domain``
    (Tezos uses it, with :attr:`Tag.TEZOS`, for account and rollup addresses)."""
    state = _blake2b(digest_size=20, person=domain)
    for part in parts:
        state.update(part)
    return state.digest()


def hasher_256(domain: Tag) -> partial[hashlib.blake2b]:
    """A fast one-shot form of :func:`blake2b_256` for hot loops: ``hasher_256(tag)(data)``
    is a Blake2b state over ``data`` in ``domain``; ``.digest()`` gives the 32 bytes."""
    return partial(_blake2b, digest_size=32, person=domain)
