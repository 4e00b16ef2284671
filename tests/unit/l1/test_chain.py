"""The sandbox chain (``soru.l1.chain``) carrying a rollup's whole lifecycle in blocks of
operations — each operation encoded and decoded as it would travel — on the real PVM:

originate Octez's echo kernel; add an external message (a withdrawal the kernel echoes to
its outbox); an honest staker and a liar publish conflicting commitments; the game is
played one move per block down to a one-tick proof; the liar's bond is split (half burned,
half to the honest staker); the honest commitment is cemented after the challenge window;
the withdrawal is executed and lands in the contract; the honest bond is recovered. Then
the chain's own refusals: counters, balances, unknown contracts and rollups, each leaving
the state as it was.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from soru.base.hashes import Hash
from soru.crypto.addresses import ContractHash, PublicKeyHash, RollupAddress
from soru.encoding.micheline import Prim
from soru.encoding.michelson_text import parse_expression
from soru.l1 import chain as c
from soru.l1 import operations as ops
from soru.protocol import game as g
from soru.protocol import staking
from soru.protocol.commitment import Commitment, CommitmentHash
from soru.protocol.constants import SANDBOX
from soru.protocol.dissection import first_disagreement, new_dissection
from soru.protocol.origination import Origination, PvmKind
from soru.protocol.refutation import Start
from soru.protocol.refutation_proof import RefutationProof
from soru.pvm import driver, layout, vm
from soru.pvm.history import LevelTrace
from soru.pvm.proof import produce_output_proof, produce_proof
from soru.pvm.reveals import RevealProvider

ECHO = Path(__file__).resolve().parents[4] / "shared" / "testdata" / "kernels" / "echo.wasm"
T = 100_000
CONSTANTS = replace(
    SANDBOX, commitment_period=1, challenge_window=4, timeout_period=10,
    max_lookahead=100, ticks_per_snapshot=T, max_active_outbox_levels=20,
).check()  # fmt: skip
TEZ = 1_000_000
HONEST = PublicKeyHash.of_b58("tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx")
LIAR = PublicKeyHash.of_b58("tz1gjaF81ZRRvdzjobyfVNsAeSC6PScjfQwN")
BRIDGE = ContractHash(bytes.fromhex("d1a37c088a1221b636bb5fccb35e05181038ba7c"))
WITHDRAWAL = bytes.fromhex(  # SORU-SPEC §2.6: Unit to BRIDGE, entrypoint "default"
    "0000000023030b01d1a37c088a1221b636bb5fccb35e05181038ba7c000000000764656661756c74"
)


class Sandbox:
    """A chain and its blocks, one block per call of :meth:`bake`."""

    def __init__(self) -> None:
        bridge = c.Contract(parse_expression("unit"))
        self.state, self.history = c.genesis(
            {str(HONEST): 20_000 * TEZ, str(LIAR): 20_000 * TEZ}, CONSTANTS,
            contracts={str(BRIDGE): bridge},
        )  # fmt: skip
        self.counters = {str(HONEST): 0, str(LIAR): 0}

    def op(self, source: PublicKeyHash, content: ops.Content) -> ops.Operation:
        self.counters[str(source)] += 1
        operation = ops.Operation(source, self.counters[str(source)], content)
        return ops.Operation.decode(operation.encode())  # as it travels

    def bake(self, *operations: ops.Operation) -> tuple[c.Receipt, ...]:
        self.state, _, receipts = c.apply_block(
            self.state, self.history, operations, timestamp=self.state.timestamp + 1
        )
        return receipts


class Node:
    """What a rollup node computes for the rollup's first inbox level: every tick's hash
    (honest, or lying from ``lie`` on) and the proof of any tick."""

    def __init__(self, sandbox: Sandbox, address: str, level: int, lie: int | None = None):
        rollup = sandbox.state.rollups[address]
        self.sandbox, self.rollup, self.lie = sandbox, rollup, lie
        found = sandbox.history.find_level(level)
        assert found is not None
        reveals = RevealProvider(None, rollup.address.digest, rollup.origination_level)
        state = driver.originate(ECHO.read_bytes(), ticks_per_kernel_run=T)
        self.trace = LevelTrace.run(state, level, list(found.payloads), reveals)
        self.ticks = self.trace.end_tick - self.trace.start_tick
        self.known: dict[int, object] = {}

    def hash_at(self, tick: int):
        if self.lie is not None and tick >= self.lie:
            return Hash(hashlib.blake2b(b"a lie at %d" % tick, digest_size=32).digest())
        if tick > self.ticks:
            return None
        if tick not in self.known:
            self.known[tick] = self.trace.hash_at(self.trace.start_tick + tick)
        return self.known[tick]

    def commitment(self) -> Commitment:
        return Commitment(self.hash_at(self.ticks), self.rollup.origination_level + 1,  # type: ignore[arg-type]
                          self.rollup.genesis_hash, self.ticks)  # fmt: skip

    def proof(self, tick: int, game: g.Game) -> RefutationProof:
        before = self.trace.state_at(self.trace.start_tick + tick)
        request = vm.input_request(before)
        given, message = None, None
        if request.kind in ("initial", "first_after"):
            given, message = self.sandbox.history.produce_input_proof(
                game.inbox_snapshot, request, origination_level=self.rollup.origination_level
            )
        step, _ = produce_proof(layout.state_tree(before), message=message)
        return RefutationProof(step, given)

    def move(self, game: g.Game) -> g.Move:
        if isinstance(game.state, g.FinalMove):
            tick = game.state.agreed_start.tick
            return g.Prove(tick, self.proof(tick, game))
        start, stop = first_disagreement(game.state.dissection, self.hash_at)
        if stop.tick - start.tick == 1:
            return g.Prove(start.tick, self.proof(start.tick, game))
        chunks = new_dissection(start, stop.tick, self.hash_at, CONSTANTS.number_of_sections, T)
        return g.Dissect(start.tick, tuple(chunks))


@pytest.fixture
def sandbox() -> Sandbox:
    if not ECHO.exists():
        pytest.fail(f"{ECHO} is missing (../shared/testdata)")
    return Sandbox()


def _applied(receipts) -> list[dict]:
    assert all(r.status == "applied" for r in receipts), receipts
    return [r.result for r in receipts]


def test_a_rollup_lifecycle_in_blocks(sandbox: Sandbox) -> None:
    origination = Origination(PvmKind.WASM_2_0_0, ECHO.read_bytes(), parse_expression("unit"))
    (made,) = _applied(sandbox.bake(sandbox.op(HONEST, ops.OriginateRollup(origination))))
    address = str(made["rollup"])
    rollup = RollupAddress.of_b58(address)
    _applied(sandbox.bake(sandbox.op(LIAR, ops.AddMessages((WITHDRAWAL,)))))  # level 2

    honest, liar = Node(sandbox, address, 2), Node(sandbox, address, 2, lie=1234)
    ours, theirs = honest.commitment(), liar.commitment()
    _applied(sandbox.bake(sandbox.op(HONEST, ops.Publish(rollup, ours)),
                          sandbox.op(LIAR, ops.Publish(rollup, theirs))))  # fmt: skip
    published = sandbox.state.level
    assert sandbox.state.accounts[str(HONEST)].frozen == CONSTANTS.stake_amount
    (disputed,) = sandbox.bake(sandbox.op(HONEST, ops.Cement(rollup)))
    assert disputed.status == "failed" and str(disputed.error).startswith("Disputed")
    start = Start(theirs.hash(), ours.hash())
    _applied(sandbox.bake(sandbox.op(LIAR, ops.Refute(rollup, HONEST, start))))

    players = {str(HONEST): (HONEST, honest, LIAR), str(LIAR): (LIAR, liar, HONEST)}
    outcome = "ongoing"
    while outcome == "ongoing":
        (game,) = sandbox.state.rollups[address].games.values()
        key, node, opponent = players[game.staker(game.turn)]
        (result,) = _applied(
            sandbox.bake(sandbox.op(key, ops.Refute(rollup, opponent, node.move(game))))
        )
        outcome = str(result["game"])
    assert outcome == f"lost by {LIAR}"
    accounts = sandbox.state.accounts
    liar_account = accounts[str(LIAR)]
    assert (liar_account.balance, liar_account.frozen) == (20_000 * TEZ - CONSTANTS.stake_amount, 0)
    assert accounts[str(HONEST)].balance == 20_000 * TEZ - CONSTANTS.stake_amount // 2
    assert sandbox.state.burned == CONSTANTS.stake_amount

    while sandbox.state.level + 1 < published + CONSTANTS.challenge_window:
        sandbox.bake()
    (cemented,) = _applied(sandbox.bake(sandbox.op(HONEST, ops.Cement(rollup))))
    assert cemented == {"cemented": ours.hash().to_b58()}

    after_level = honest.trace.state_at(honest.trace.end_tick)
    proof = produce_output_proof(layout.state_tree(after_level), 2, 0).encode()
    execute = ops.ExecuteOutboxMessage(rollup, CommitmentHash(ours.hash()), proof)
    (delivered,) = _applied(sandbox.bake(sandbox.op(LIAR, execute)))
    assert delivered == {"kind": "transactions", "count": 1}
    assert sandbox.state.contracts[str(BRIDGE)].received == ((address, "default", Prim("Unit")),)
    (again,) = sandbox.bake(sandbox.op(LIAR, execute))
    assert again.status == "failed" and "AlreadyApplied" in str(again.error)

    _applied(sandbox.bake(sandbox.op(HONEST, ops.RecoverBond(rollup, HONEST))))
    honest_account = sandbox.state.accounts[str(HONEST)]
    assert honest_account.frozen == 0
    assert honest_account.balance == 20_000 * TEZ + CONSTANTS.stake_amount // 2
    assert not staking.is_staker(sandbox.state.rollups[address].stakes, str(HONEST))


def test_refusals_change_nothing(sandbox: Sandbox) -> None:
    before = sandbox.state
    stranger = PublicKeyHash.of_b58("tz1faswCTDciRzE4oJ9jn2Vm2dvjeyA9fUzU")
    forged = ops.Operation(stranger, 1, ops.Transfer(HONEST, 1))
    replayed = ops.Operation(HONEST, 5, ops.Transfer(LIAR, 1))
    too_much = sandbox.op(HONEST, ops.Transfer(LIAR, 10**12 * TEZ))
    nowhere = sandbox.op(HONEST, ops.Transfer(ContractHash(bytes(20)), 1))
    no_rollup = sandbox.op(LIAR, ops.Cement(RollupAddress(bytes(20))))
    receipts = sandbox.bake(forged, replayed, too_much, nowhere, no_rollup)
    assert [r.status for r in receipts] == ["rejected", "rejected", "failed", "failed", "failed"]
    assert [r.error.split(":")[0] for r in receipts[2:]] == [  # type: ignore[union-attr]
        "BalanceTooLow", "UnknownContract", "UnknownRollup",
    ]  # fmt: skip
    after = sandbox.state
    assert after.accounts[str(HONEST)] == replace(before.accounts[str(HONEST)], counter=2)
    assert after.accounts[str(LIAR)] == replace(before.accounts[str(LIAR)], counter=1)
    assert str(stranger) not in after.accounts and after.rollups == before.rollups
    assert after.level == 1 and after.inbox.level == 1


def test_tez_sent_to_a_contract_are_its_balance(sandbox: Sandbox) -> None:
    """Found by ``tests/property/test_l1_props.py`` (conservation): a transfer to an
    existing contract took the tez from its source and gave them to nobody."""
    (receipt,) = sandbox.bake(sandbox.op(HONEST, ops.Transfer(BRIDGE, 7)))
    assert receipt.status == "applied"
    assert sandbox.state.accounts[str(HONEST)].balance == 20_000 * TEZ - 7
    assert sandbox.state.contracts[str(BRIDGE)].balance == 7
