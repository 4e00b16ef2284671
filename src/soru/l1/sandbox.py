"""A running sandbox chain: the state, a mempool of signed operations, blocks baked on demand
(or by a clock, ``soru.l1.rpc``), and the chain file they are written to.

    inject(signed bytes) ─▶ decoded, signature checked ─▶ mempool
    bake()               ─▶ apply_block(mempool) ─▶ written (one transaction) ─▶ head

Opening a chain file replays its blocks (``soru.l1.store``): the state and the receipts are
rebuilt exactly, and a block that does not replay to its stored hash is refused. Without a
file the chain lives in memory only. All methods are safe to call from several threads.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from soru.encoding.michelson_text import parse_expression
from soru.l1 import chain
from soru.l1.operations import SignedOperation
from soru.l1.store import ChainStore, StoredBlock, StoreError
from soru.protocol.constants import RollupConstants
from soru.protocol.inbox_proof import InboxHistory
from soru.pvm.constants import DEFAULT_VERSION


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """What a chain starts from: bootstrap accounts (key → mutez), contracts (``KT1…`` →
    Michelson parameter type, as text), the rollup constants, the PVM version of new
    rollups, the genesis timestamp."""

    bootstrap: Mapping[str, int]
    contracts: Mapping[str, str] = field(default_factory=dict)
    constants: RollupConstants = RollupConstants()
    pvm_version: str = DEFAULT_VERSION
    genesis_timestamp: int = 0

    def to_json(self) -> dict:
        return {
            "bootstrap": dict(self.bootstrap),
            "contracts": dict(self.contracts),
            "constants": asdict(self.constants),
            "pvm_version": self.pvm_version,
            "genesis_timestamp": self.genesis_timestamp,
        }

    @classmethod
    def from_json(cls, document: dict) -> SandboxConfig:
        return cls(
            bootstrap={str(k): int(v) for k, v in document["bootstrap"].items()},
            contracts={str(k): str(v) for k, v in document["contracts"].items()},
            constants=RollupConstants(**document["constants"]).check(),
            pvm_version=str(document["pvm_version"]),
            genesis_timestamp=int(document["genesis_timestamp"]),
        )


class Sandbox:
    """A chain (see the module docstring). Use :meth:`create`, :meth:`open` or
    :meth:`in_memory`."""

    def __init__(self, config: SandboxConfig, store: ChainStore | None) -> None:
        self.config, self.store = config, store
        self.lock = threading.RLock()
        contracts = {k: chain.Contract(parse_expression(v)) for k, v in config.contracts.items()}
        self.state, self.history = chain.genesis(
            config.bootstrap, config.constants, contracts=contracts,
            timestamp=config.genesis_timestamp, pvm_version=config.pvm_version,
        )  # fmt: skip
        self.mempool: list[SignedOperation] = []
        self.blocks: list[chain.Block] = []
        self.receipts: dict[bytes, chain.Receipt] = {}
        self.signed: dict[bytes, SignedOperation] = {}
        self.by_operation: dict[bytes, bytes] = {}  # operation hash -> signed operation hash

    @classmethod
    def in_memory(cls, config: SandboxConfig) -> Sandbox:
        return cls(config, None)

    @classmethod
    def create(cls, path: Path | str, config: SandboxConfig) -> Sandbox:
        return cls(config, ChainStore.create(path, config.to_json()))

    @classmethod
    def open(cls, path: Path | str) -> Sandbox:
        store = ChainStore.open(path)
        sandbox = cls(SandboxConfig.from_json(store.config()), store)
        for stored in store.blocks():
            ops = [SignedOperation.decode(data) for data in stored.operations]
            block, _ = sandbox._apply(ops, stored.timestamp)
            if block.hash() != stored.hash or block.level != stored.level:
                raise StoreError(f"block {stored.level} of {path} does not replay to its hash")
        return sandbox

    # --- operations -----------------------------------------------------------------------

    def inject(self, data: bytes) -> bytes:
        """Add a signed operation (its bytes) to the mempool; returns its hash. Raises
        ``MalformedOperation`` or ``InvalidSignature`` (nothing is added)."""
        signed = SignedOperation.decode(data)
        signed.check()
        with self.lock:
            self.mempool.append(signed)
        return signed.hash()

    def bake(self, timestamp: int | None = None) -> tuple[chain.Block, tuple[chain.Receipt, ...]]:
        """The next block, made of the mempool (empty afterwards), written to the file."""
        with self.lock:
            pending, self.mempool = self.mempool, []
            when = self.state.timestamp + 1 if timestamp is None else timestamp
            block, receipts = self._apply(pending, when)
            if self.store is not None:  # what the block holds: no rejected copy of it
                data = tuple(s.encode() for s, receipt in zip(pending, receipts, strict=True)
                             if receipt.status != "rejected")  # fmt: skip
                self.store.append(StoredBlock(block.level, block.hash(), block.timestamp, data))
            return block, receipts

    def _apply(
        self, pending: list[SignedOperation], timestamp: int
    ) -> tuple[chain.Block, tuple[chain.Receipt, ...]]:
        operations = [s.operation for s in pending]
        self.state, block, receipts = chain.apply_block(
            self.state, self.history, operations, timestamp=timestamp
        )
        self.blocks.append(block)
        for signed, receipt in zip(pending, receipts, strict=True):
            if receipt.status == "rejected" and signed.hash() in self.receipts:
                continue  # injected again: the receipt of the copy that counted stands
            self.receipts[signed.hash()] = receipt
            self.signed[signed.hash()] = signed
            self.by_operation[signed.operation.hash()] = signed.hash()
        return block, receipts

    def inbox_history(self) -> InboxHistory:
        """The inbox's cells, for inbox proofs (read-only use)."""
        return self.history

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
