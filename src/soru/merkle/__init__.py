"""Layer `merkle` (see ARCHITECTURE.md): the Merkle tree that holds the whole PVM state.

* :mod:`.nodes` — the objects of a tree (nodes, crit-bit trie branches and leaves, stubs)
  and their hashes; :mod:`.trie` — algorithms on a directory's trie;
* :mod:`.tree` — :class:`Tree`, the immutable, persistent map from paths to values;
* :mod:`.codec` and :mod:`.store` — stored encoding, lazy loading, :class:`MemoryStore` and
  :class:`SQLiteStore`;
* :mod:`.proof` — recording views, proofs and the partial trees that verify them;
* :mod:`.chunked` — values longer than 4 KiB as a directory of chunks;
* :mod:`.errors` — :class:`MerkleError` and its subclasses.
"""

from soru.merkle.errors import (
    CorruptNode,
    InvalidPath,
    MerkleError,
    MissingNode,
    NodeNotStored,
    NotInProof,
    ProofDecodeError,
    ProofError,
    ProofMismatch,
    StoreError,
    UnknownRoot,
    ValueTooLarge,
)
from soru.merkle.nodes import EMPTY_HASH, MAX_NAME_SIZE, MAX_VALUE_SIZE
from soru.merkle.proof import Proof, Recorder, produce_proof, record, verify_proof
from soru.merkle.store import MemoryStore, NodeStore, SQLiteStore
from soru.merkle.tree import Kind, Path, Tree

__all__ = [
    "EMPTY_HASH",
    "MAX_NAME_SIZE",
    "MAX_VALUE_SIZE",
    "CorruptNode",
    "InvalidPath",
    "Kind",
    "MemoryStore",
    "MerkleError",
    "MissingNode",
    "NodeNotStored",
    "NodeStore",
    "NotInProof",
    "Path",
    "Proof",
    "ProofDecodeError",
    "ProofError",
    "ProofMismatch",
    "Recorder",
    "SQLiteStore",
    "StoreError",
    "Tree",
    "UnknownRoot",
    "ValueTooLarge",
    "produce_proof",
    "record",
    "verify_proof",
]
