"""The sandbox chain's state, and what a block does to it.

A :class:`ChainState` is an immutable value: the head (level, timestamp, block hash), the
accounts (tez, counters, bonds frozen in rollups), the contracts, the rollups
(``soru.protocol.rollup.Rollup``) and the shared inbox head. :func:`apply_block` takes the
operations of the next block, in order, and returns the next state, the block, and one
receipt per operation::

    for each operation:
        rejected  unknown source, or counter ≠ its previous one + 1: left out of the block
        failed    a rule refused it (a typed error, named in the receipt): only the
                  counter moves — nothing else changed
        applied   validated completely, then applied
    then the inbox gets the block's level: SOL, Info_per_level (the previous block's
    timestamp and hash), the messages the operations added, EOL

Rollup operations follow ``soru.protocol.rollup``; their bond movements (freeze, unfreeze,
burn, reward) are applied to the accounts here. Outbox transactions are delivered to their
contract (recorded in its ``received``), atomically: if any destination does not exist, the
whole execution fails. Signatures are checked before a block (``soru.l1.mempool``): a block
holds operations that were signed by their source.

The :class:`~soru.protocol.inbox_proof.InboxHistory` passed along is the store of the
inbox's cells (needed for inbox proofs): :func:`apply_block` adds the block's level to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from soru.base.errors import SoruError
from soru.crypto.addresses import ContractHash, PublicKeyHash
from soru.crypto.hashing import Tag, blake2b_256
from soru.encoding.inbox import External
from soru.encoding.micheline import Node
from soru.encoding.writer import Writer
from soru.l1 import operations as ops
from soru.protocol import outbox, staking
from soru.protocol import rollup as rollups
from soru.protocol.constants import RollupConstants
from soru.protocol.inbox import Inbox
from soru.protocol.inbox_proof import InboxHistory
from soru.pvm.constants import DEFAULT_VERSION


class ChainError(SoruError):
    """An operation the chain itself refuses (not a rollup rule)."""


class BalanceTooLow(ChainError):
    """The source cannot pay the amount (``Balance_too_low``)."""


class UnknownContract(ChainError):
    """A transfer or an outbox transaction to a contract that does not exist."""


class UnknownRollup(ChainError):
    """An operation naming a rollup that does not exist (``Sc_rollup_does_not_exist``)."""


@dataclass(frozen=True, slots=True)
class Account:
    """An implicit account: spendable ``balance`` and ``frozen`` bonds (mutez), and the
    counter of its last operation."""

    balance: int = 0
    counter: int = 0
    frozen: int = 0


@dataclass(frozen=True, slots=True)
class Contract:
    """An originated contract that accepts any parameters of ``parameter_type`` and keeps
    what it received (sender, entrypoint, parameters): where withdrawals land. Tez
    transferred to it are its ``balance`` (mutez)."""

    parameter_type: Node
    received: tuple[tuple[str, str, Node], ...] = ()
    balance: int = 0


@dataclass(frozen=True, slots=True)
class ChainState:
    level: int
    timestamp: int
    block_hash: bytes
    accounts: Mapping[str, Account]
    contracts: Mapping[str, Contract]
    rollups: Mapping[str, rollups.Rollup]
    inbox: Inbox
    constants: RollupConstants
    pvm_version: str = DEFAULT_VERSION
    burned: int = 0
    """Mutez burned so far (lost bonds)."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """What became of one operation: ``applied``, ``failed`` (with the error's class name
    and message) or ``rejected``; ``result`` names what it made (a rollup address, a
    commitment hash, a game's end…)."""

    operation: bytes
    status: str
    error: str | None = None
    result: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Block:
    level: int
    timestamp: int
    predecessor: bytes
    operations: tuple[ops.Operation, ...]

    def hash(self) -> bytes:
        out = Writer().uint_be(self.level, 4).uint_be(self.timestamp, 8).raw(self.predecessor)
        for operation in self.operations:
            out.raw(operation.hash())
        return blake2b_256(Tag.TEZOS, out.getvalue())


def _frozen_map(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


def genesis(
    bootstrap: Mapping[str, int],
    constants: RollupConstants,
    *,
    contracts: Mapping[str, Contract] | None = None,
    timestamp: int = 0,
    pvm_version: str = DEFAULT_VERSION,
) -> tuple[ChainState, InboxHistory]:
    """Level 0: the ``bootstrap`` accounts with their balances (mutez), the given
    contracts, no rollup, the inbox created; new rollups get PVMs of ``pvm_version``."""
    history, inbox = InboxHistory.from_genesis()
    accounts = {key: Account(balance) for key, balance in bootstrap.items()}
    state = ChainState(0, timestamp, bytes(32), _frozen_map(accounts),
                       _frozen_map(contracts or {}), _frozen_map({}), inbox,
                       constants.check(), pvm_version)  # fmt: skip
    return state, history


# --- applying a block -----------------------------------------------------------------------


class _Work:
    """The state being built by one block: plain dictionaries, saved before each operation
    and restored if it fails."""

    def __init__(self, state: ChainState) -> None:
        self.state = state
        self.level = state.level + 1
        self.accounts = dict(state.accounts)
        self.contracts = dict(state.contracts)
        self.rollups = dict(state.rollups)
        self.burned = state.burned
        self.messages: list[bytes] = []

    def save(self) -> tuple:
        return (dict(self.accounts), dict(self.contracts), dict(self.rollups), self.burned,
                len(self.messages))  # fmt: skip

    def restore(self, saved: tuple) -> None:
        self.accounts, self.contracts, self.rollups, self.burned, count = saved
        del self.messages[count:]

    def account(self, key: str) -> Account:
        return self.accounts.get(key, Account())

    def rollup(self, address: object) -> rollups.Rollup:
        found = self.rollups.get(str(address))
        if found is None:
            raise UnknownRollup(f"no rollup {address}")
        return found

    def pay(self, effects: Iterable[staking.Effect]) -> None:
        """Apply bond movements to the accounts."""
        for effect in effects:
            account = self.account(effect.staker)
            if isinstance(effect, staking.Freeze):
                account = replace(account, balance=account.balance - effect.amount,
                                  frozen=account.frozen + effect.amount)  # fmt: skip
            elif isinstance(effect, staking.Unfreeze):
                account = replace(account, balance=account.balance + effect.amount,
                                  frozen=account.frozen - effect.amount)  # fmt: skip
            elif isinstance(effect, staking.Burn):
                account = replace(account, frozen=account.frozen - effect.amount)
                self.burned += effect.amount
            else:
                account = replace(account, balance=account.balance + effect.amount)
            self.accounts[effect.staker] = account


def _transfer(work: _Work, source: str, c: ops.Transfer) -> dict[str, object]:
    account = work.account(source)
    if c.amount > account.balance:
        raise BalanceTooLow(f"{source} has {account.balance} mutez, not {c.amount}")
    destination = str(c.destination)
    if isinstance(c.destination, ContractHash) and destination not in work.contracts:
        raise UnknownContract(f"no contract {destination}")
    work.accounts[source] = replace(account, balance=account.balance - c.amount)
    if isinstance(c.destination, PublicKeyHash):
        target = work.account(destination)
        work.accounts[destination] = replace(target, balance=target.balance + c.amount)
    else:
        contract = work.contracts[destination]
        work.contracts[destination] = replace(contract, balance=contract.balance + c.amount)
    return {}


def _deliver(work: _Work, rollup: str, message: outbox.OutboxMessage) -> dict[str, object]:
    """Carry out an executed outbox message's transactions (all or none)."""
    if not isinstance(message, outbox.TransactionBatch):
        return {"kind": "whitelist_update"}
    for tx in message.transactions:
        if str(tx.destination) not in work.contracts:
            raise UnknownContract(f"no contract {tx.destination}")
    for tx in message.transactions:
        key = str(tx.destination)
        contract = work.contracts[key]
        received = (*contract.received, (rollup, tx.entrypoint, tx.parameters))
        work.contracts[key] = replace(contract, received=received)
    return {"kind": "transactions", "count": len(message.transactions)}


def _rollup_operation(
    work: _Work, source: str, c: ops.Content, operation_hash: bytes
) -> dict[str, object]:
    level, snapshot = work.level, work.state.inbox.snapshot()
    if isinstance(c, ops.OriginateRollup):
        made = rollups.originate(c.origination, operation_hash=operation_hash, index=0,
                                 level=level, constants=work.state.constants,
                                 version=work.state.pvm_version)  # fmt: skip
        work.rollups[str(made.address)] = made
        return {"rollup": str(made.address), "genesis_commitment": made.genesis_hash.to_b58()}
    rollup = work.rollup(getattr(c, "rollup", None))
    key = str(rollup.address)
    result: dict[str, object] = {}
    if isinstance(c, ops.Publish):
        balance = work.account(source).balance
        after, digest, effects = rollups.publish_commitment(
            rollup, source, c.commitment, level=level, balance=balance
        )
        work.pay(effects)
        result = {"commitment": digest.to_b58()}
    elif isinstance(c, ops.Cement):
        after, digest = rollups.cement(rollup, level=level)
        result = {"cemented": digest.to_b58()}
    elif isinstance(c, ops.Refute):
        after, ended, effects = rollups.refute(rollup, source, str(c.opponent), c.refutation,
                                               level=level, inbox_snapshot=snapshot)  # fmt: skip
        work.pay(effects)
        result = {"game": _outcome(ended)}
    elif isinstance(c, ops.Timeout):
        after, ended, effects = rollups.timeout(rollup, str(c.alice), str(c.bob), level=level)
        work.pay(effects)
        result = {"game": _outcome(ended)}
    elif isinstance(c, ops.ExecuteOutboxMessage):
        after, message = rollups.execute_outbox_message(
            rollup, c.cemented_commitment, c.output_proof
        )
        result = _deliver(work, key, message)
    else:
        assert isinstance(c, ops.RecoverBond)
        after, effects = rollups.recover_bond(rollup, str(c.staker))
        work.pay(effects)
    work.rollups[key] = after
    return result


def _outcome(ended: object) -> str:
    if ended is None:
        return "ongoing"
    loser = getattr(ended, "loser", None)
    return "draw" if loser is None else f"lost by {loser}"


def _apply(work: _Work, operation: ops.Operation, digest: bytes) -> dict[str, object]:
    """Apply ``operation`` (whose hash is ``digest``: a rollup's origination nonce)."""
    source, c = str(operation.source), operation.content
    if isinstance(c, ops.Transfer):
        return _transfer(work, source, c)
    if isinstance(c, ops.AddMessages):
        work.messages.extend(External(m).encode() for m in c.messages)
        return {"messages": len(c.messages)}
    return _rollup_operation(work, source, c, digest)


def apply_block(
    state: ChainState,
    history: InboxHistory,
    operations: Sequence[ops.Operation],
    *,
    timestamp: int,
) -> tuple[ChainState, Block, tuple[Receipt, ...]]:
    """The next block made of ``operations`` (see the module docstring)."""
    work = _Work(state)
    included: list[ops.Operation] = []
    receipts: list[Receipt] = []
    for operation in operations:
        digest = operation.hash()
        account = work.accounts.get(str(operation.source))
        if account is None or operation.counter != account.counter + 1:
            receipts.append(Receipt(digest, "rejected", "counter", {}))
            continue
        included.append(operation)
        saved = work.save()
        try:
            result = _apply(work, operation, digest)
        except SoruError as error:  # every refusal of a rule: typed, and named in the receipt
            work.restore(saved)
            receipts.append(Receipt(digest, "failed", f"{type(error).__name__}: {error}"))
        else:
            receipts.append(Receipt(digest, "applied", None, result))
        source = str(operation.source)
        bumped = work.account(source)
        work.accounts[source] = replace(bumped, counter=operation.counter)
    block = Block(work.level, timestamp, state.block_hash, tuple(included))
    inbox = history.add_level(state.inbox, predecessor_timestamp=state.timestamp,
                              predecessor=state.block_hash, messages=work.messages)  # fmt: skip
    after = ChainState(work.level, timestamp, block.hash(), _frozen_map(work.accounts),
                       _frozen_map(work.contracts), _frozen_map(work.rollups), inbox,
                       state.constants, state.pvm_version, work.burned)  # fmt: skip
    return after, block, tuple(receipts)
