"""Answering the PVM's reveal requests (``../shared/SORU-SPEC.md`` §5.5, §6).

A reveal request is the binary ``reveal`` encoding: ``0x00 ‖ 33-byte reveal hash`` asks for a
preimage page, ``0x01`` for the rollup's metadata (its 20-byte address ‖ origination level as
int32 big-endian). Preimages are files named by the hex of the 33-byte hash in a directory,
as the Octez rollup node keeps them (``<data-dir>/wasm_2_0_0/<hex>``); each file is checked
against its hash before use.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from soru.base.errors import SoruError

REVEAL_HASH_SIZE = 33
TAG_RAW_DATA, TAG_METADATA = 0x00, 0x01
MAX_PAGE_SIZE = 4096


class RevealError(SoruError):
    """A reveal that cannot be answered: unknown preimage, wrong hash, unsupported kind."""


def reveal_hash(page: bytes) -> bytes:
    """The 33-byte reveal hash of a page: ``0x00`` (Blake2b) ‖ Blake2b-256(page)."""
    return b"\x00" + hashlib.blake2b(page, digest_size=32).digest()


@dataclass(frozen=True, slots=True)
class RevealProvider:
    """Answers reveal requests from a preimage directory and the rollup's metadata."""

    preimages: Path | None
    rollup_address: bytes  # 20 bytes
    origination_level: int

    def metadata(self) -> bytes:
        return self.rollup_address + self.origination_level.to_bytes(4, "big")

    def preimage(self, hash33: bytes) -> bytes:
        if len(hash33) != REVEAL_HASH_SIZE or hash33[0] != 0:
            raise RevealError(f"not a Blake2b reveal hash: {hash33.hex()}")
        if hash33 == reveal_hash(b""):  # the well-known hash: no file needed (as Octez)
            return b""
        if self.preimages is None:
            raise RevealError(f"no preimage directory for {hash33.hex()}")
        path = self.preimages / hash33.hex()
        try:
            page = path.read_bytes()
        except OSError as exc:
            raise RevealError(f"preimage {hash33.hex()} not found in {self.preimages}") from exc
        if reveal_hash(page) != hash33:
            raise RevealError(f"preimage file {path} does not match its hash")
        return page

    def answer(self, request: bytes) -> bytes:
        """The data that answers a binary reveal request."""
        if request[:1] == bytes((TAG_RAW_DATA,)) and len(request) == 1 + REVEAL_HASH_SIZE:
            return self.preimage(request[1:])
        if request == bytes((TAG_METADATA,)):
            return self.metadata()
        raise RevealError(f"unsupported reveal request {request[:1].hex()}")
