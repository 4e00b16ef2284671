"""The rollup node (``soru.node``) against a sandbox chain served over HTTP on loopback: an
honest node and a node lying from a tick of the first inbox level on follow the same rollup
(Octez's echo kernel, originated through the client operations); both publish their
commitments, the honest node starts the game against the liar and both play it by
themselves, move by move, to a one-tick proof; the liar loses its bond (half burned, half to
the honest operator); the honest commitments are cemented after the challenge window; the
honest node executes the withdrawal the kernel wrote to its outbox, which lands in the
contract on layer 1.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from soru.crypto.addresses import ContractHash
from soru.crypto.keys import SecretKey
from soru.encoding.michelson_text import parse_expression
from soru.l1 import operations as ops
from soru.l1.client import RpcClient
from soru.l1.rpc import RpcServer
from soru.l1.sandbox import Sandbox, SandboxConfig
from soru.node.node import LoserMode, RollupNode
from soru.protocol.constants import SANDBOX
from soru.protocol.origination import Origination, PvmKind
from soru.pvm.constants import DEFAULT_VERSION

ECHO = Path(__file__).resolve().parents[4] / "shared" / "testdata" / "kernels" / "echo.wasm"
CONSTANTS = replace(
    SANDBOX, commitment_period=2, challenge_window=6, timeout_period=40, max_lookahead=200,
    ticks_per_snapshot=100_000, max_active_outbox_levels=50,
).check()  # fmt: skip
TEZ = 1_000_000
HONEST, LIAR = SecretKey.from_seed(b"h" * 32), SecretKey.from_seed(b"l" * 32)
BRIDGE = ContractHash(bytes.fromhex("d1a37c088a1221b636bb5fccb35e05181038ba7c"))
WITHDRAWAL = bytes.fromhex(
    "0000000023030b01d1a37c088a1221b636bb5fccb35e05181038ba7c000000000764656661756c74"
)


def _send(client: RpcClient, key: SecretKey, content: ops.Content) -> str:
    return client.sign_and_inject(key, content)


@contextmanager
def _rollup(constants, contracts: dict | None = None):
    """A sandbox served on loopback with the echo kernel originated: (sandbox, client,
    rollup address, the rollup's first inbox level)."""
    if not ECHO.exists():
        pytest.fail(f"{ECHO} is missing (../shared/testdata)")
    bootstrap = {str(k.public_key().hash()): 50_000 * TEZ for k in (HONEST, LIAR)}
    sandbox = Sandbox.in_memory(SandboxConfig(bootstrap, contracts or {}, constants))
    server = RpcServer(sandbox).start()
    try:
        client = RpcClient(server.url)
        origination = Origination(PvmKind.WASM_2_0_0, ECHO.read_bytes(), parse_expression("unit"))
        made = _send(client, HONEST, ops.OriginateRollup(origination))
        client.bake()
        rollup = client.receipt(made)["result"]["rollup"]
        yield sandbox, client, rollup, client.rollup(rollup)["origination_level"] + 1
    finally:
        server.stop()


def test_an_honest_node_wins_against_a_liar_and_the_withdrawal_lands() -> None:
    with _rollup(CONSTANTS, {str(BRIDGE): "unit"}) as (sandbox, client, rollup, first):
        _send(client, LIAR, ops.AddMessages((WITHDRAWAL,)))
        client.bake()
        honest = RollupNode(client, rollup, HONEST, CONSTANTS, version=DEFAULT_VERSION)
        liar = RollupNode(client, rollup, LIAR, CONSTANTS, version=DEFAULT_VERSION,
                          loser=LoserMode(first, 12_345))  # fmt: skip
        liar_key = str(LIAR.public_key().hash())
        for _ in range(120):
            honest.step()
            liar.step()
            client.bake()
            received = client.contract(str(BRIDGE))["received"]
            if received:
                break
        results = [r.result.get("game") for r in sandbox.receipts.values()]
        assert f"lost by {liar_key}" in results  # the game ended on a one-tick proof
        view = client.rollup(rollup)
        assert not view["games"]
        assert view["last_cemented_commitment"]["inbox_level"] >= first + 1
        assert received == [{"sender": rollup, "entrypoint": "default",
                             "parameters": "Unit"}]  # fmt: skip
        liar_account = client.contract(liar_key)  # (a liar may stake again, with a new bond)
        assert liar_account["balance"] + liar_account["frozen"] == (
            50_000 * TEZ - CONSTANTS.stake_amount
        )
        honest_account = client.contract(str(HONEST.public_key().hash()))
        assert honest_account["balance"] + honest_account["frozen"] == (
            50_000 * TEZ + CONSTANTS.stake_amount // 2
        )
        assert sandbox.state.burned == CONSTANTS.stake_amount


def test_a_node_that_stops_answering_loses_by_timeout() -> None:
    """The liar plays until the game starts, then goes silent: once its clock has run out,
    the honest node claims the timeout and the liar loses its bond."""
    constants = replace(CONSTANTS, timeout_period=5).check()
    with _rollup(constants) as (sandbox, client, rollup, first):
        honest = RollupNode(client, rollup, HONEST, constants, version=DEFAULT_VERSION)
        liar = RollupNode(client, rollup, LIAR, constants, version=DEFAULT_VERSION,
                          loser=LoserMode(first, 777))  # fmt: skip
        liar_key = str(LIAR.public_key().hash())
        silent = staked = False
        for _ in range(80):
            honest.step()
            if not silent:
                liar.step()
                silent = bool(client.rollup(rollup)["games"])
            client.bake()
            stakers = client.rollup(rollup)["stakers"]
            staked = staked or liar_key in stakers
            if staked and liar_key not in stakers:
                break
        results = [r.result.get("game") for r in sandbox.receipts.values()]
        assert f"lost by {liar_key}" in results
        timeouts = [h for h, r in sandbox.receipts.items() if r.status == "applied"
                    and isinstance(sandbox.signed[h].operation.content, ops.Timeout)]  # fmt: skip
        assert len(timeouts) == 1 and sandbox.state.burned == constants.stake_amount


def test_a_restarted_honest_node_takes_up_its_game() -> None:
    """The honest node is replaced by a fresh one (a restart: nothing but layer 1 to go on)
    in the middle of the game; the new one rebuilds its replica, recognises its commitments
    and wins."""
    with _rollup(CONSTANTS) as (sandbox, client, rollup, first):

        def honest_node() -> RollupNode:
            return RollupNode(client, rollup, HONEST, CONSTANTS, version=DEFAULT_VERSION)

        honest = honest_node()
        liar = RollupNode(client, rollup, LIAR, CONSTANTS, version=DEFAULT_VERSION,
                          loser=LoserMode(first, 4321))  # fmt: skip
        liar_key, restarted = str(LIAR.public_key().hash()), False
        for _ in range(80):
            honest.step()
            liar.step()
            client.bake()
            view = client.rollup(rollup)
            if view["games"] and not restarted:
                honest, restarted = honest_node(), True
            if restarted and liar_key not in view["stakers"]:
                break
        assert restarted
        results = [r.result.get("game") for r in sandbox.receipts.values()]
        assert f"lost by {liar_key}" in results
        failed = [r for r in sandbox.receipts.values() if r.status == "failed"
                  and "DoublePublish" in str(r.error)]  # fmt: skip
        assert not failed  # the restarted node knew what it had published
