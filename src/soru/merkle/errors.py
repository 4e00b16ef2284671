"""Errors of the Merkle layer.

::

    MerkleError(SoruError)
    ├── InvalidPath          a path segment that is not a non-empty name of <= 255 UTF-8 bytes
    ├── ValueTooLarge        a value longer than MAX_VALUE_SIZE (callers chunk big values)
    ├── MissingNode          a node that is not available where it was looked up
    │   ├── NodeNotStored    ... in a node store
    │   └── NotInProof       ... in a partial tree rebuilt from a proof (also a ProofError)
    ├── ProofError           a proof that does not prove what is asked
    │   ├── NotInProof
    │   ├── ProofDecodeError bytes that are not a well-formed proof (also a DecodeError)
    │   └── ProofMismatch    a proof whose root hash is not the expected one
    ├── CorruptNode          a stored node encoding that does not decode (also a DecodeError)
    └── StoreError           a node store that cannot do what is asked
        └── UnknownRoot      no root under that name
"""

from __future__ import annotations

from soru.base.errors import DecodeError, SoruError
from soru.base.hashes import Hash


class MerkleError(SoruError):
    """Base class of the errors of ``soru.merkle``."""


class InvalidPath(MerkleError):
    """A path segment that is not a name: names are non-empty ``str`` of at most 255 bytes
    in UTF-8."""


class ValueTooLarge(MerkleError):
    """A value longer than :data:`soru.merkle.nodes.MAX_VALUE_SIZE` bytes."""


class MissingNode(MerkleError):
    """A node (or a value) known only by its hash is needed but not available."""

    def __init__(self, node_hash: bytes, message: str | None = None) -> None:
        self.hash = Hash(node_hash)
        super().__init__(message or f"node {self.hash.hex()} is not available")


class NodeNotStored(MissingNode):
    """A node store does not hold the node with that hash."""


class ProofError(MerkleError):
    """A proof does not prove what is asked of it."""


class NotInProof(MissingNode, ProofError):
    """A partial tree rebuilt from a proof was asked for a node the proof leaves out."""


class ProofDecodeError(ProofError, DecodeError):
    """Bytes that are not a well-formed proof encoding."""


class ProofMismatch(ProofError):
    """A proof whose root hash differs from the hash it must prove against."""


class CorruptNode(MerkleError, DecodeError):
    """A node read from a store does not follow the node encoding."""


class StoreError(MerkleError):
    """A node store cannot do what is asked (wrong format version, closed, ...)."""


class UnknownRoot(StoreError):
    """No root is committed under the requested name."""
