"""Properties of the layer-1 sandbox chain (``soru.l1``) over random blocks of random
operations, most of them plausible (right counters, commitments at the right inbox levels,
games between real stakers), some not (wrong counters, amounts beyond the balance, unknown
contracts and rollups, garbage commitments, invalid originations):

1. **tez are conserved**: after every block, the balances and bonds of all accounts plus
   the mutez burned, less the mutez minted as rewards (a game lost by a player still staked
   mints ``stake // 2`` for the winner), are the genesis total; no balance or bond is ever
   negative, and each account's bonds are exactly those the rollups hold for it;
2. **a refusal changes nothing but the counter**: a ``failed`` operation leaves the state
   as it found it except its source's counter, a ``rejected`` one changes nothing at all —
   checked both step by step (the block's prefix before and after the operation) and as
   "the same block without it";
3. **blocks are deterministic and replay**: the same blocks applied twice give the same
   hashes and states; baked by a file-backed ``Sandbox`` from signed, encoded operations and
   reopened, the chain is the same;
4. **operation encodings are strict**: every kind of operation round-trips byte for byte,
   bare and signed; any other bytes (random, truncated, flipped) either decode to an
   operation that re-encodes to exactly those bytes or raise ``MalformedOperation``.
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from soru.base.hashes import Hash
from soru.crypto.addresses import (
    ContractHash,
    Curve,
    PublicKeyHash,
    RollupAddress,
    encode_contract,
)
from soru.crypto.hashing import Tag, blake2b_256
from soru.crypto.keys import PublicKey, SecretKey, Signature
from soru.encoding.micheline import (
    PRIMITIVES,
    Bytes,
    Int,
    Node,
    Prim,
    Seq,
    String,
    encode_expression,
)
from soru.encoding.michelson_text import parse_expression
from soru.encoding.writer import Writer
from soru.l1 import chain
from soru.l1 import operations as ops
from soru.l1.operations import MalformedOperation, Operation, SignedOperation
from soru.l1.sandbox import Sandbox, SandboxConfig
from soru.merkle import Proof
from soru.protocol import game as games
from soru.protocol import staking
from soru.protocol.commitment import MAX_LEVEL, MAX_TICKS, Commitment, CommitmentHash
from soru.protocol.constants import SANDBOX
from soru.protocol.dissection import Chunk, new_dissection
from soru.protocol.inbox_proof import (
    FirstInboxMessage,
    InboxHistory,
    InboxInputProof,
    InboxProof,
)
from soru.protocol.origination import Origination, PvmKind
from soru.protocol.parameters_type import InvalidParametersType, check_parameters_type
from soru.protocol.refutation import Start
from soru.protocol.refutation_proof import InputProof, Metadata, RawData, RefutationProof
from soru.protocol.rollup import Rollup
from soru.pvm import driver, layout
from soru.pvm.proof import TickProof, produce_proof
from soru.pvm.state import InputMessage

ECHO = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata" / "kernels" / "echo.wasm"
if not ECHO.exists():
    pytest.skip(f"{ECHO} is missing (../shared/testdata)", allow_module_level=True)
KERNEL = ECHO.read_bytes()

# --- the network ----------------------------------------------------------------------------

KEYS = tuple(SecretKey.from_seed(bytes([n]) * 32) for n in (1, 2, 3, 4))
ALICE, BOB, CAROL, STRANGER = (key.public_key().hash() for key in KEYS)
SECRETS = {str(key.public_key().hash()): key for key in KEYS}
STAKERS = (ALICE, BOB, CAROL)
"""The bootstrap accounts. ``STRANGER`` is not one: its operations are rejected until a
transfer creates its account."""
BOOTSTRAP = {str(ALICE): 6_000, str(BOB): 3_000, str(CAROL): 1_500}
BRIDGE = ContractHash(bytes(range(20)))
NOWHERE = ContractHash(b"\xee" * 20)
NO_ROLLUP = RollupAddress(b"\x99" * 20)
CONSTANTS = replace(
    SANDBOX,
    commitment_period=1,
    challenge_window=3,
    timeout_period=1,
    max_lookahead=40,
    stake_amount=1_000,
    max_active_outbox_levels=20,
    ticks_per_snapshot=1_000,
).check()
CONFIG = SandboxConfig(BOOTSTRAP, {str(BRIDGE): "unit"}, CONSTANTS)
INITIAL_TOTAL = sum(BOOTSTRAP.values())
_T = TypeVar("_T")

VALID_TYPES = ("unit", "bytes", "pair (nat %amount) (ticket string)", "option (contract mutez)")
INVALID_TYPES = ("mutez", "big_map nat nat", "or (nat %deposit) (unit %withdraw)", "operation")
PARAMETER_TYPES = tuple(parse_expression(text) for text in VALID_TYPES + INVALID_TYPES)
STATE_HASHES = tuple(Hash(blake2b_256(Tag.TEZOS, b"state %d" % n)) for n in range(3))
"""A few PVM state hashes, so that random commitments agree and disagree."""


def _genesis() -> tuple[chain.ChainState, InboxHistory]:
    contracts = {str(BRIDGE): chain.Contract(parse_expression("unit"))}
    return chain.genesis(BOOTSTRAP, CONSTANTS, contracts=contracts)


def _note(text: str) -> None:
    """A hypothesis ``event`` (for ``--hypothesis-show-statistics``), also outside a test."""
    with contextlib.suppress(InvalidArgument):
        event(text)


def _settings(examples: int) -> Callable:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- random blocks ---------------------------------------------------------------------------


class _Drawer:
    """Draws the operations of the block after ``state``: each source's counter is followed
    (mostly right: a replayed or skipped one now and then), contents mostly plausible for
    the state the block starts from."""

    def __init__(self, data: st.DataObject, state: chain.ChainState) -> None:
        self.data, self.state = data, state
        self.rollups = [state.rollups[key] for key in sorted(state.rollups)]
        self.counters = {
            str(key): state.accounts[str(key)].counter if str(key) in state.accounts else 0
            for key in (*STAKERS, STRANGER)
        }

    def draw(self, strategy: st.SearchStrategy[_T], label: str | None = None) -> _T:
        return self.data.draw(strategy, label=label)

    def chance(self, percent: int) -> bool:
        return self.draw(st.integers(0, 99)) < percent

    def pick(self, items: Sequence[_T]) -> _T:
        return items[self.draw(st.integers(0, len(items) - 1))]

    def block(self) -> tuple[list[Operation], int]:
        operations = [self.operation() for _ in range(self.draw(st.integers(0, 6)))]
        return operations, self.state.timestamp + self.draw(st.integers(1, 30))

    def operation(self) -> Operation:
        source = self.pick((ALICE, ALICE, BOB, BOB, CAROL, CAROL, STRANGER))
        key = str(source)
        how = self.draw(st.sampled_from(("next",) * 8 + ("replayed", "skipped")))
        if how == "next":
            self.counters[key] += 1
            counter = self.counters[key]
        elif how == "replayed":
            counter = self.counters[key]
        else:
            counter = self.counters[key] + self.draw(st.integers(2, 4))
        if not self.rollups and self.chance(35):  # a rollup first: the rest is about one
            kind = "originate"
        elif any(rollup.games for rollup in self.rollups) and self.chance(20):  # games end
            kind = self.draw(st.sampled_from(("timeout", "refute")))
        else:
            kind = self.draw(st.sampled_from(sorted(_CONTENTS)))
        return Operation(source, counter, _CONTENTS[kind](self, source))

    # --- what the contents name -------------------------------------------------------------

    def rollup(self) -> Rollup | None:
        """A rollup of the state, most often one with games or stakers (``None``: an
        address no rollup has)."""
        if not self.rollups or self.chance(8):
            return None
        for busy in (
            [r for r in self.rollups if r.games],
            [r for r in self.rollups if r.stakes.stakers],
        ):
            if busy and self.chance(60):
                return self.pick(busy)
        return self.pick(self.rollups)

    def commitments(self, rollup: Rollup, staker: str | None = None) -> list[CommitmentHash]:
        stakes = rollup.stakes
        hashes = sorted(stakes.commitments, key=bytes)
        if staker is not None:
            hashes = [h for h in hashes if staking.staked_on(stakes, staker, h)]
        return hashes

    def commitment_hash(self, rollup: Rollup | None, staker: str | None = None) -> CommitmentHash:
        known = self.commitments(rollup, staker) if rollup is not None else []
        if known and self.chance(85):
            return self.pick(known)
        return CommitmentHash(self.draw(st.binary(min_size=32, max_size=32)))


def _address(rollup: Rollup | None) -> RollupAddress:
    return NO_ROLLUP if rollup is None else rollup.address


def _transfer(d: _Drawer, source: PublicKeyHash) -> ops.Content:
    destinations: tuple[PublicKeyHash | ContractHash, ...] = (ALICE, BOB, CAROL, STRANGER)
    destination = d.pick((*destinations, BRIDGE, NOWHERE))
    balance = d.state.accounts[str(source)].balance if str(source) in d.state.accounts else 0
    amount = d.draw(st.one_of(st.integers(0, 2_000), st.just(balance), st.integers(0, 2**64)))
    return ops.Transfer(destination, amount)


def _add_messages(d: _Drawer, source: PublicKeyHash) -> ops.Content:
    return ops.AddMessages(tuple(d.draw(st.lists(st.binary(max_size=40), max_size=3))))


def _originate(d: _Drawer, source: PublicKeyHash) -> ops.Content:
    kind = PvmKind.WASM_2_0_0 if d.chance(90) else d.pick((PvmKind.ARITH, PvmKind.RISCV))
    kernel = KERNEL if d.chance(92) else b""
    whitelist = None
    if d.chance(20):
        whitelist = d.pick(((ALICE, BOB), (ALICE, BOB, CAROL), (), (CAROL, CAROL)))
    parameters_type = d.pick(PARAMETER_TYPES)
    return ops.OriginateRollup(Origination(kind, kernel, parameters_type, whitelist))


def _publish(d: _Drawer, source: PublicKeyHash) -> ops.Content:
    rollup = d.rollup()
    published = sorted(rollup.stakes.added_levels, key=bytes) if rollup is not None else []
    if (
        rollup is not None and published and d.chance(50)
    ):  # beside a published one: agrees with it, or conflicts
        other = rollup.stakes.commitments[d.pick(published)]
        commitment = Commitment(
            d.pick(STATE_HASHES),
            other.inbox_level,
            other.predecessor,
            d.pick((other.number_of_ticks, 1, 5, 40)),
        )
    elif rollup is not None and d.chance(85):  # extends a stored commitment, one period on
        lcc = rollup.stakes.lcc_hash
        predecessor = lcc if d.chance(60) else d.pick(d.commitments(rollup))
        level = rollup.stakes.commitments[predecessor].inbox_level + CONSTANTS.commitment_period
        level += d.pick((0,) * 8 + (-1, 1))
        commitment = Commitment(
            d.pick(STATE_HASHES), max(level, 0), predecessor, d.pick((1, 1, 5, 40, 0))
        )
    else:
        commitment = Commitment(
            Hash(d.draw(st.binary(min_size=32, max_size=32))),
            d.draw(st.integers(0, 60) | st.just(MAX_LEVEL)),
            d.commitment_hash(rollup),
            d.draw(st.integers(0, MAX_TICKS)),
        )
    return ops.Publish(_address(rollup), commitment)


def _cement(d: _Drawer, source: PublicKeyHash) -> ops.Content:
    return ops.Cement(_address(d.rollup()))


def _recover_bond(d: _Drawer, source: PublicKeyHash) -> ops.Content:
    staker = source if d.chance(60) else d.pick((*STAKERS, STRANGER))
    return ops.RecoverBond(_address(d.rollup()), staker)


def _refute(d: _Drawer, source: PublicKeyHash) -> ops.Content:
    rollup = d.rollup()
    opponent = d.pick([key for key in (*STAKERS, STRANGER) if key != source] + [source])
    stakers = sorted(rollup.stakes.stakers) if rollup is not None else []
    if any(key != str(source) for key in stakers) and d.chance(80):
        opponent = PublicKeyHash.of_b58(d.pick([key for key in stakers if key != str(source)]))
    ours = rollup.games.get(games.game_key(str(source), str(opponent))) if rollup else None
    if ours is not None and isinstance(ours.state, games.Dissecting) and d.chance(80):
        return ops.Refute(_address(rollup), opponent, _dissect(d, ours.state.dissection))
    conflicts = _conflicts(rollup, str(source)) if rollup is not None else []
    if conflicts and d.chance(70):
        theirs, mine, their_commitment = d.pick(conflicts)
        return ops.Refute(_address(rollup), theirs, Start(mine, their_commitment))
    if d.chance(85):
        start = Start(
            d.commitment_hash(rollup, str(source)), d.commitment_hash(rollup, str(opponent))
        )
        return ops.Refute(_address(rollup), opponent, start)
    chunks = d.draw(
        st.lists(
            st.builds(Chunk, st.sampled_from((None, *STATE_HASHES)), st.integers(0, 50)), max_size=4
        )
    )
    return ops.Refute(
        _address(rollup), opponent, games.Dissect(d.draw(st.integers(0, 50)), tuple(chunks))
    )


def _conflicts(
    rollup: Rollup, staker: str
) -> list[tuple[PublicKeyHash, CommitmentHash, CommitmentHash]]:
    """(opponent, ``staker``'s commitment, the opponent's) for each game ``staker`` could
    start: different commitments on one predecessor."""
    stakes, found = rollup.stakes, []
    mine = [
        h for h in sorted(stakes.added_levels, key=bytes) if staking.staked_on(stakes, staker, h)
    ]
    for ours in mine:
        for theirs in sorted(stakes.added_levels, key=bytes):
            same = stakes.commitments[theirs].predecessor == stakes.commitments[ours].predecessor
            if theirs == ours or not same:
                continue
            for opponent in staking.active_backers(stakes, theirs):
                if opponent != staker:
                    found.append((PublicKeyHash.of_b58(opponent), ours, theirs))
    return found


def _dissect(d: _Drawer, dissection: tuple[Chunk, ...]) -> games.Dissect:
    """A dissection of a section of ``dissection`` (of the right shape, random hashes)."""
    sections = list(zip(dissection, dissection[1:], strict=False))
    start, stop = d.pick(sections)
    if start.state_hash is None or stop.tick - start.tick < 2:
        return games.Dissect(start.tick, (start, stop))
    chunks = new_dissection(
        start,
        stop.tick,
        lambda _: d.pick((*STATE_HASHES, None)),
        CONSTANTS.number_of_sections,
        CONSTANTS.ticks_per_snapshot,
    )
    return games.Dissect(start.tick, tuple(chunks))


def _timeout(d: _Drawer, source: PublicKeyHash) -> ops.Content:
    rollup = d.rollup()
    if rollup is not None and rollup.games and d.chance(85):
        alice, bob = d.pick(sorted(rollup.games))
        players = [PublicKeyHash.of_b58(alice), PublicKeyHash.of_b58(bob)]
    else:
        players = [d.pick(STAKERS), d.pick(STAKERS)]
    if d.chance(50):
        players.reverse()
    return ops.Timeout(_address(rollup), *players)


def _execute(d: _Drawer, source: PublicKeyHash) -> ops.Content:
    rollup = d.rollup()
    cemented = d.commitment_hash(rollup)
    if rollup is not None and d.chance(70):
        cemented = d.pick(rollup.stakes.cemented)
    return ops.ExecuteOutboxMessage(_address(rollup), cemented, d.draw(st.binary(max_size=64)))


_CONTENTS: dict[str, Callable[[_Drawer, PublicKeyHash], ops.Content]] = {
    "transfer": _transfer,
    "transfer2": _transfer,
    "add_messages": _add_messages,
    "originate": _originate,
    "publish": _publish,
    "publish2": _publish,
    "publish3": _publish,
    "cement": _cement,
    "recover_bond": _recover_bond,
    "refute": _refute,
    "refute2": _refute,
    "refute3": _refute,
    "timeout": _timeout,
    "timeout2": _timeout,
    "execute": _execute,
}
"""The kinds drawn, a few twice so that the rollup lifecycle goes somewhere."""


def _run(
    data: st.DataObject,
    check: Callable[[chain.ChainState, list[Operation], int, chain.ChainState, tuple], None],
    blocks: tuple[int, int] = (1, 16),
) -> list[tuple[list[Operation], int, bytes]]:
    """Random blocks from genesis, ``check`` ed after each; returns them with their hashes."""
    state, history = _genesis()
    made = []
    for _ in range(data.draw(st.integers(*blocks), label="blocks")):
        operations, timestamp = _Drawer(data, state).block()
        after, block, receipts = chain.apply_block(state, history, operations, timestamp=timestamp)
        for operation, receipt in zip(operations, receipts, strict=True):
            what = (receipt.error or "").split(":")[0] or type(operation.content).__name__
            event(f"{receipt.status} {what}")
            if "game" in receipt.result:
                event(f"game {str(receipt.result['game']).split(' tz')[0]}")
        check(state, operations, timestamp, after, receipts)
        made.append((operations, timestamp, block.hash()))
        state = after
    return made


def _prefix(
    state: chain.ChainState, operations: list[Operation], timestamp: int
) -> chain.ChainState:
    """The state after a block of ``operations`` (its inbox history thrown away): for a
    prefix of a block, what the next operation of the block finds (besides the inbox,
    which a block only changes at its end)."""
    return chain.apply_block(state, InboxHistory(), operations, timestamp=timestamp)[0]


# --- 1. conservation --------------------------------------------------------------------------


def _minted(
    state: chain.ChainState,
    operations: list[Operation],
    timestamp: int,
    receipts: tuple[chain.Receipt, ...],
) -> int:
    """The rewards the block minted: for each game it ended with a loser that still held
    a bond in the rollup when the operation came (the state after the block's operations
    before it), ``stake // 2``."""
    minted = 0
    for index, (operation, receipt) in enumerate(zip(operations, receipts, strict=True)):
        outcome = receipt.result.get("game") if receipt.status == "applied" else None
        if not (isinstance(outcome, str) and outcome.startswith("lost by ")):
            continue
        before = _prefix(state, operations[:index], timestamp)
        rollup = before.rollups[str(operation.content.rollup)]  # type: ignore[union-attr]
        if staking.is_staker(rollup.stakes, outcome.removeprefix("lost by ")):
            minted += rollup.constants.stake_amount // 2
            _note("reward minted")
    return minted


def _total(state: chain.ChainState) -> int:
    """The balances and bonds of the accounts, the contracts' balances, the mutez burned."""
    held = sum(a.balance + a.frozen for a in state.accounts.values())
    return held + sum(c.balance for c in state.contracts.values()) + state.burned


class _Conservation:
    """The check of property 1 after each block, counting the rewards minted so far."""

    def __init__(self) -> None:
        self.minted = 0

    def __call__(self, state, operations, timestamp, after, receipts) -> None:
        self.minted += _minted(state, operations, timestamp, receipts)
        assert _total(after) - self.minted == INITIAL_TOTAL, (_total(after), self.minted)
        bonds: dict[str, int] = {}
        for rollup in after.rollups.values():
            for staker, info in rollup.stakes.stakers.items():
                bonds[staker] = bonds.get(staker, 0) + info.bond
        for key, account in after.accounts.items():
            assert account.balance >= 0 and account.frozen >= 0, (key, account)
            assert account.frozen == bonds.get(key, 0), (key, account, bonds)
        assert all(contract.balance >= 0 for contract in after.contracts.values())
        assert after.burned >= 0


@_settings(300)
@given(st.data())
def test_tez_are_conserved(data: st.DataObject) -> None:
    _run(data, _Conservation(), blocks=(3, 30))


def test_tez_are_conserved_through_a_game_lost_by_timeout() -> None:
    """What the random blocks reach only now and then, every time: two stakers disagree,
    one starts a game and lets its clock run out; its bond is burned, half a stake minted
    for the winner; the winner's commitment is cemented and its bond recovered."""
    check, (state, history) = _Conservation(), _genesis()

    def bake(*operations: Operation) -> tuple[chain.Receipt, ...]:
        nonlocal state
        timestamp = state.timestamp + 1
        after, _, receipts = chain.apply_block(state, history, operations, timestamp=timestamp)
        check(state, list(operations), timestamp, after, receipts)
        state = after
        return receipts

    origination = Origination(PvmKind.WASM_2_0_0, KERNEL, parse_expression("unit"))
    (made,) = bake(Operation(ALICE, 1, ops.OriginateRollup(origination)))
    rollup = state.rollups[str(made.result["rollup"])]
    level = rollup.origination_level + CONSTANTS.commitment_period
    ours, theirs = (
        Commitment(state_hash, level, rollup.genesis_hash, 5) for state_hash in STATE_HASHES[:2]
    )
    bake(Operation(CAROL, 1, ops.Transfer(BRIDGE, 7)))  # tez held by a contract
    published = bake(
        Operation(ALICE, 2, ops.Publish(rollup.address, ours)),
        Operation(BOB, 1, ops.Publish(rollup.address, theirs)),
    )
    (started,) = bake(
        Operation(BOB, 2, ops.Refute(rollup.address, ALICE, Start(theirs.hash(), ours.hash())))
    )
    timeout = ops.Timeout(rollup.address, ALICE, BOB)
    (early,) = bake(Operation(CAROL, 2, timeout))
    (ended,) = bake(Operation(CAROL, 3, timeout))
    assert [r.status for r in (*published, started, early)] == ["applied"] * 3 + ["failed"]
    assert (
        ended.result == {"game": f"lost by {BOB}"} and check.minted == CONSTANTS.stake_amount // 2
    )
    (cemented,) = bake(
        Operation(CAROL, state.accounts[str(CAROL)].counter + 1, ops.Cement(rollup.address))
    )
    assert cemented.result == {"cemented": ours.hash().to_b58()}  # its window is over
    (recovered,) = bake(
        Operation(
            CAROL, state.accounts[str(CAROL)].counter + 1, ops.RecoverBond(rollup.address, ALICE)
        )
    )
    assert recovered.status == "applied" and state.accounts[str(ALICE)].frozen == 0
    assert state.burned == CONSTANTS.stake_amount and state.contracts[str(BRIDGE)].balance == 7


# --- 2. refusals ------------------------------------------------------------------------------


def _same_but_counter(
    a: chain.ChainState, b: chain.ChainState, source: str, counters: tuple[int, int]
) -> None:
    """``a`` and ``b`` agree on everything an operation could change, except that
    ``source``'s counter is ``counters`` (in ``a``, in ``b``)."""
    assert a.accounts[source].counter == counters[0] and b.accounts[source].counter == counters[1]
    assert dict(a.accounts) == {
        **b.accounts,
        source: replace(b.accounts[source], counter=counters[0]),
    }
    assert dict(a.rollups) == dict(b.rollups)
    assert dict(a.contracts) == dict(b.contracts)
    assert (a.burned, a.inbox, a.level) == (b.burned, b.inbox, b.level)


@_settings(200)
@given(st.data())
def test_refusals_change_nothing_but_the_counter(data: st.DataObject) -> None:
    def check(state, operations, timestamp, after, receipts) -> None:
        prefixes = functools.cache(lambda n: _prefix(state, operations[:n], timestamp))
        for index, (operation, receipt) in enumerate(zip(operations, receipts, strict=True)):
            if receipt.status == "applied":
                continue
            source = str(operation.source)
            others = operations[:index] + operations[index + 1 :]
            without = _prefix(state, others, timestamp)
            if receipt.status == "rejected":
                assert prefixes(index + 1) == prefixes(index)
                assert without == after
                continue
            assert receipt.status == "failed" and receipt.error and not receipt.result
            before = prefixes(index)
            counter = before.accounts[source].counter
            assert operation.counter == counter + 1
            _same_but_counter(prefixes(index + 1), before, source, (operation.counter, counter))
            if all(str(later.source) != source for later in operations[index + 1 :]):
                _same_but_counter(after, without, source, (operation.counter, counter))

    _run(data, check, blocks=(3, 24))


# --- 3. determinism and replay ----------------------------------------------------------------


@_settings(60)
@given(st.data())
def test_blocks_are_deterministic_and_a_chain_file_replays(data: st.DataObject) -> None:
    final: list[chain.ChainState] = []
    blocks = _run(data, lambda *args: final.append(args[3]), blocks=(3, 20))

    state, history = _genesis()
    for operations, timestamp, digest in blocks:
        state, block, _ = chain.apply_block(state, history, operations, timestamp=timestamp)
        assert block.hash() == digest
    assert state == final[-1]

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "chain.db"
        sandbox = Sandbox.create(path, CONFIG)
        for operations, timestamp, digest in blocks:
            for operation in operations:
                secret = SECRETS[str(operation.source)]
                sandbox.inject(SignedOperation.sign(operation, secret).encode())
            block, _ = sandbox.bake(timestamp)
            assert block.hash() == digest
        assert sandbox.state == state
        receipts = {k: r for k, r in sandbox.receipts.items() if r.status != "rejected"}
        sandbox.close()
        reopened = Sandbox.open(path)
        try:
            again = reopened.state
            assert (again.level, again.block_hash) == (state.level, state.block_hash)
            assert dict(again.accounts) == dict(state.accounts)
            assert dict(again.rollups) == dict(state.rollups)
            assert again == state and reopened.receipts == receipts
        finally:
            reopened.close()


# --- 4. encodings ------------------------------------------------------------------------------

hashes = st.binary(min_size=32, max_size=32)
accounts = st.builds(
    PublicKeyHash, st.sampled_from(list(Curve)), st.binary(min_size=20, max_size=20)
)
contracts = accounts | st.builds(ContractHash, st.binary(min_size=20, max_size=20))
rollup_addresses = st.builds(RollupAddress, st.binary(min_size=20, max_size=20))
naturals = st.integers(0, 2**70) | st.integers(0, 300)
annotation_texts = st.from_regex(r"[@:$&%!?][a-zA-Z0-9_.%@]{0,8}", fullmatch=True)
micheline: st.SearchStrategy[Node] = st.recursive(
    st.builds(Int, st.integers(-(2**70), 2**70))
    | st.builds(String, st.text(max_size=8))
    | st.builds(Bytes, st.binary(max_size=8))
    | st.builds(Prim, st.sampled_from(PRIMITIVES)),
    lambda children: (
        st.builds(
            Prim,
            st.sampled_from(PRIMITIVES),
            st.lists(children, max_size=4).map(tuple),
            st.lists(annotation_texts, max_size=2).map(tuple),
        )
        | st.builds(Seq, st.lists(children, max_size=3).map(tuple))
    ),
    max_leaves=12,
)
commitments = st.builds(
    Commitment,
    st.builds(Hash, hashes),
    st.integers(0, MAX_LEVEL),
    st.builds(CommitmentHash, hashes),
    st.integers(0, MAX_TICKS),
)


@functools.cache
def _tick_proof_tree() -> Proof:
    """A real Merkle proof of one tick (the echo kernel's first: it reads an input)."""
    state = driver.originate(KERNEL, ticks_per_kernel_run=CONSTANTS.ticks_per_snapshot)
    first = InputMessage(1, 0, b"\x00\x01")
    return produce_proof(layout.state_tree(state), message=first)[0].tree


@functools.cache
def _inbox_proofs() -> tuple[InboxProof, ...]:
    """Real inbox proofs, of messages of a small inbox."""
    history, inbox = InboxHistory.from_genesis()
    for level in range(1, 4):
        inbox = history.add_level(
            inbox,
            predecessor_timestamp=level,
            predecessor=bytes(32),
            messages=[b"\x01message %d" % n for n in range(level)],
        )
    return tuple(
        history.produce_proof(inbox.snapshot(), level, index)[0]
        for level in range(1, 4)
        for index in range(level + 2)
    )


@st.composite
def tick_proofs(draw: st.DrawFn) -> TickProof:
    message = draw(
        st.none()
        | st.builds(
            InputMessage,
            st.integers(0, 2**32 - 1),
            st.integers(0, 2**64 - 1),
            st.binary(max_size=40),
        )
    )
    reveal = None if message is not None else draw(st.none() | st.binary(max_size=40))
    return TickProof(_tick_proof_tree(), message, reveal)


@st.composite
def input_proofs(draw: st.DrawFn) -> InputProof:
    kind = draw(st.integers(0, 4))
    if kind == 1:
        proof = draw(st.sampled_from(_inbox_proofs()))
        return InboxInputProof(draw(st.integers(0, MAX_LEVEL)), draw(st.integers(0, 1000)), proof)
    return (None, None, FirstInboxMessage(), RawData(draw(st.binary(max_size=64))), Metadata())[
        kind
    ]


chunks = st.builds(Chunk, st.none() | st.builds(Hash, hashes), naturals)
refutations = (
    st.builds(Start, st.builds(CommitmentHash, hashes), st.builds(CommitmentHash, hashes))
    | st.builds(games.Dissect, naturals, st.lists(chunks, max_size=64).map(tuple))
    | st.builds(games.Prove, naturals, st.builds(RefutationProof, tick_proofs(), input_proofs()))
)
originations = st.builds(
    Origination,
    st.sampled_from(list(PvmKind)),
    st.binary(max_size=64),
    micheline,
    st.none() | st.lists(accounts, max_size=4).map(tuple),
)
contents = st.one_of(
    st.builds(ops.Transfer, contracts, naturals),
    st.builds(ops.OriginateRollup, originations),
    st.builds(
        ops.AddMessages,
        st.lists(st.binary(max_size=40) | st.binary(min_size=4096, max_size=4096), max_size=4).map(
            tuple
        ),
    ),
    st.builds(ops.Cement, rollup_addresses),
    st.builds(ops.Publish, rollup_addresses, commitments),
    st.builds(ops.Refute, rollup_addresses, accounts, refutations),
    st.builds(ops.Timeout, rollup_addresses, accounts, accounts),
    st.builds(
        ops.ExecuteOutboxMessage,
        rollup_addresses,
        st.builds(CommitmentHash, hashes),
        st.binary(max_size=200),
    ),
    st.builds(ops.RecoverBond, rollup_addresses, accounts),
)
operations = st.builds(Operation, accounts, naturals, contents)
signed_operations = st.builds(
    SignedOperation,
    operations,
    st.builds(PublicKey, hashes),
    st.builds(Signature, st.binary(min_size=64, max_size=64)),
)


def _comparable(operation: Operation) -> bool:
    """Whether ``==`` compares the whole operation (Merkle proofs compare by encoding)."""
    content = operation.content
    return not (isinstance(content, ops.Refute) and isinstance(content.refutation, games.Prove))


@_settings(400)
@given(operations)
def test_operations_round_trip(operation: Operation) -> None:
    event(type(operation.content).__name__)
    data = operation.encode()
    decoded = Operation.decode(data)
    assert decoded.encode() == data
    assert decoded.hash() == operation.hash()
    if _comparable(operation):
        assert decoded == operation


@_settings(150)
@given(signed_operations)
def test_signed_operations_round_trip(signed: SignedOperation) -> None:
    data = signed.encode()
    decoded = SignedOperation.decode(data)
    assert decoded.encode() == data and decoded.hash() == signed.hash()
    if _comparable(signed.operation):
        assert decoded == signed


def test_a_signed_operation_checks_after_its_round_trip() -> None:
    operation = Operation(ALICE, 7, ops.Transfer(BOB, 12))
    decoded = SignedOperation.decode(SignedOperation.sign(operation, KEYS[0]).encode())
    decoded.check()
    assert decoded.operation == operation


def _decode_or_refuse(decode: Callable[[bytes], Operation | SignedOperation], data: bytes) -> None:
    """``data`` decodes to something that encodes back to exactly ``data``, or is refused
    with ``MalformedOperation``; any other exception escapes and fails the test."""
    try:
        decoded = decode(data)
    except MalformedOperation as error:
        assert error.offset is None or 0 <= error.offset <= len(data)
        event("refused")
    else:
        event("decoded")
        assert decoded.encode() == data


@st.composite
def mutated(draw: st.DrawFn, seeds: st.SearchStrategy) -> bytes:
    """A valid encoding with one to four random edits."""
    data = bytearray(draw(seeds).encode())
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(("flip", "set", "insert", "delete", "truncate")))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if edit == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "set" and data:
            data[at] = draw(st.sampled_from((0x00, 0x40, 0x7F, 0x80, 0xFF)))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 4))]
        else:
            del data[at:]
    return bytes(data)


@st.composite
def random_after_header(draw: st.DrawFn) -> bytes:
    """A valid envelope (version, source, counter, a known tag) and random content."""
    out = Writer().u8(ops.VERSION).raw(encode_contract(draw(accounts)))
    out.zarith_n(draw(naturals)).u8(draw(st.sampled_from(sorted(ops.TAGS.values()))))
    return out.getvalue() + draw(st.binary(max_size=120))


@_settings(500)
@given(mutated(operations) | random_after_header() | st.binary(max_size=200))
def test_operation_bytes_decode_exactly_or_are_refused(data: bytes) -> None:
    _decode_or_refuse(Operation.decode, data)


@_settings(200)
@given(mutated(signed_operations) | st.binary(max_size=300))
def test_signed_operation_bytes_decode_exactly_or_are_refused(data: bytes) -> None:
    _decode_or_refuse(SignedOperation.decode, data)


def _loose(node: Node, draw: Callable[[st.SearchStrategy[bool]], bool]) -> bytes:
    """``node`` in a binary form Micheline reads but does not write, now and then: a
    primitive in the generic ``0x09`` form or with an empty annotation string, a zero
    written as "minus zero"."""
    out = Writer()
    if isinstance(node, Int) and node.value == 0 and draw(st.booleans()):
        return b"\x00\x40"
    if isinstance(node, Prim):
        args = b"".join(_loose(arg, draw) for arg in node.args)
        annots = " ".join(node.annots).encode()
        code = PRIMITIVES.index(node.name)
        if draw(st.booleans()):
            out.u8(0x09).u8(code).sized(args).sized(annots)
            return out.getvalue()
        if len(node.args) <= 2 and not annots and draw(st.booleans()):
            return out.u8(0x04 + 2 * len(node.args)).u8(code).raw(args).sized(b"").getvalue()
        if len(node.args) <= 2:
            out.u8(0x03 + 2 * len(node.args) + (1 if annots else 0)).u8(code).raw(args)
            return (out.sized(annots) if annots else out).getvalue()
        return out.u8(0x09).u8(code).sized(args).sized(annots).getvalue()
    if isinstance(node, Seq):
        return out.u8(0x02).sized(b"".join(_loose(item, draw) for item in node.items)).getvalue()
    return encode_expression(node)


@_settings(200)
@given(micheline, st.data())
def test_a_parameters_type_decodes_only_in_its_own_form(node: Node, data: st.DataObject) -> None:
    """Micheline also reads longer forms than it writes; an operation does not: its hash
    and its signature are over the one encoding."""
    loose = _loose(node, data.draw)
    event("loose" if loose != encode_expression(node) else "compact")
    out = Writer().u8(ops.VERSION).raw(encode_contract(ALICE)).zarith_n(1).u8(200)
    out.u8(PvmKind.WASM_2_0_0).sized(KERNEL).sized(loose).u8(0)
    _decode_or_refuse(Operation.decode, out.getvalue())


def test_the_parameter_types_drawn_are_both_valid_and_invalid() -> None:
    for text in VALID_TYPES:
        check_parameters_type(parse_expression(text))
    for text in INVALID_TYPES:
        with pytest.raises(InvalidParametersType):
            check_parameters_type(parse_expression(text))
