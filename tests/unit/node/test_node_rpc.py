"""The rollup node's RPC server (``soru.node.rpc``) over HTTP on loopback, beside a sandbox
chain's (``soru.l1.rpc``): one honest node follows the echo kernel's rollup, whose first
inbox level holds a withdrawal, until layer 1 cements that level, while a thread keeps
reading the node's RPC; every route then answers what the node's replica holds, the outbox
proof it gives is executed on layer 1 by ``soru client execute-outbox`` and the contract
receives the call; a withdrawal of a level not cemented yet is proven against the node's
own commitment that covers it; bad requests are typed errors; ``soru node run --rpc-port 0``
serves the same RPC from a process.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from soru import cli
from soru.client.wallet import Wallet
from soru.crypto.addresses import ContractHash
from soru.crypto.keys import SecretKey
from soru.encoding.michelson_text import parse_expression
from soru.l1 import operations as ops
from soru.l1.client import RpcClient, RpcError
from soru.l1.rpc import RpcServer
from soru.l1.sandbox import Sandbox, SandboxConfig
from soru.node.node import RollupNode
from soru.node.rpc import NodeRpcServer
from soru.protocol.constants import SANDBOX
from soru.protocol.origination import Origination, PvmKind
from soru.pvm import layout
from soru.pvm.constants import DEFAULT_VERSION
from soru.pvm.proof import OutputProof, verify_output_proof

ECHO = Path(__file__).resolve().parents[4] / "shared" / "testdata" / "kernels" / "echo.wasm"
CONSTANTS = replace(
    SANDBOX, commitment_period=2, challenge_window=3, timeout_period=40, max_lookahead=200,
    ticks_per_snapshot=100_000, max_active_outbox_levels=50,
).check()  # fmt: skip
TEZ = 1_000_000
OPERATOR = SecretKey.from_seed(b"o" * 32)
BRIDGE = ContractHash(bytes.fromhex("d1a37c088a1221b636bb5fccb35e05181038ba7c"))
WITHDRAWAL = bytes.fromhex(
    "0000000023030b01d1a37c088a1221b636bb5fccb35e05181038ba7c000000000764656661756c74"
)
HEAD = "/global/block/head"


@dataclass
class Served:
    sandbox: Sandbox
    l1: RpcClient
    rollup: str
    node: RollupNode
    rpc: RpcClient
    first: int  # the inbox level that holds the withdrawal
    second: int  # a later level with another, not cemented when the fixture ends
    polled: list[object]  # what the reading thread got while the node stepped


def _send(client: RpcClient, key: SecretKey, content: ops.Content) -> str:
    return client.sign_and_inject(key, content)


def _originate(client: RpcClient) -> str:
    origination = Origination(PvmKind.WASM_2_0_0, ECHO.read_bytes(), parse_expression("unit"))
    made = _send(client, OPERATOR, ops.OriginateRollup(origination))
    client.bake()
    return client.receipt(made)["result"]["rollup"]


def _poll(rpc: RpcClient, stop: threading.Event, polled: list[object]) -> None:
    while not stop.is_set():
        try:
            polled.append((rpc.get(f"{HEAD}/state_hash"), rpc.get(f"{HEAD}/total_ticks")))
        except RpcError as error:
            polled.append(error)
        stop.wait(0.005)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    if not ECHO.exists():
        pytest.fail(f"{ECHO} is missing (../shared/testdata)")
    config = SandboxConfig({str(OPERATOR.public_key().hash()): 50_000 * TEZ},
                           {str(BRIDGE): "unit"}, CONSTANTS)  # fmt: skip
    sandbox = Sandbox.in_memory(config)
    server = RpcServer(sandbox).start()
    l1 = RpcClient(server.url)
    rollup = _originate(l1)
    for _ in range(2):
        _send(l1, OPERATOR, ops.AddMessages((WITHDRAWAL,)))
        l1.bake()
        l1.bake()  # levels 2 and 4 hold a withdrawal; 3 and 5 are empty
    node = RollupNode(l1, rollup, OPERATOR, CONSTANTS, version=DEFAULT_VERSION)
    node_server = NodeRpcServer(node).start()
    first = l1.rollup(rollup)["origination_level"] + 1
    stop, polled = threading.Event(), []
    reader = threading.Thread(target=_poll, args=(RpcClient(node_server.url), stop, polled))
    reader.start()
    try:
        for _ in range(40):  # stop once layer 1 cements: the node would execute next step
            node.step()
            l1.bake()
            if l1.rollup(rollup)["last_cemented_commitment"]["inbox_level"] >= first:
                break
        stop.set()
        reader.join()
        rpc = RpcClient(node_server.url)
        yield Served(sandbox, l1, rollup, node, rpc, first, first + 2, polled)
    finally:
        stop.set()
        node_server.stop()
        server.stop()


def test_the_routes_answer_what_the_replica_holds(served: Served) -> None:
    node, rpc, first = served.node, served.rpc, served.first
    head = node.replica.level
    assert rpc.get("/global/smart_rollup_address") == served.rollup
    assert rpc.get(f"{HEAD}/level") == head
    for block, level in (("head", head), (str(first), first)):
        state = layout.load_state(node.replica.state_after(level))
        shown = layout.show_state_hash(layout.state_hash(state))
        assert rpc.get(f"/global/block/{block}/state_hash") == shown
        assert rpc.get(f"/global/block/{block}/total_ticks") == node.replica.tick_after(level)
    lcc = served.l1.rollup(served.rollup)["last_cemented_commitment"]
    assert rpc.get("/global/block/cemented/level") == lcc["inbox_level"]
    durable = f"{HEAD}/durable/wasm_2_0_0/value?key="
    assert rpc.get(durable + "/kernel/boot.wasm") == ECHO.read_bytes().hex()
    assert rpc.get(durable + "/readonly/wasm_version") == DEFAULT_VERSION.encode().hex()
    assert rpc.get(durable + "/no/such/key") is None
    published = {str(level): d.to_b58() for level, d in node.published.items()}
    assert rpc.get("/local/commitments") == published and str(lcc["inbox_level"]) in published


def test_the_cemented_outbox_and_its_proof(served: Served) -> None:
    rpc, first = served.rpc, served.first
    (message,) = served.node.replica.outbox(first)
    bridge = {"destination": str(BRIDGE), "entrypoint": "default"}
    assert rpc.get(f"/global/block/cemented/outbox/{first}/messages") == [
        {"index": 0, "message": message.hex(),
         "decoded": {"kind": "untyped_batch", "destinations": [bridge]}}
    ]  # fmt: skip
    assert rpc.get(f"/global/block/cemented/outbox/{first - 1}/messages") == []
    found = rpc.get(f"{HEAD}/helpers/proofs/outbox/{first}/messages?index=0")
    lcc = served.l1.rollup(served.rollup)["last_cemented_commitment"]
    assert found["commitment"] == lcc["hash"] and found["cemented"] is True
    proof = served.node.replica.output_proof(lcc["inbox_level"], first, 0)
    assert found["proof"] == proof.encode().hex()


def test_a_level_not_cemented_is_proven_against_the_nodes_commitment(served: Served) -> None:
    node, rpc, second = served.node, served.rpc, served.second
    found = rpc.get(f"{HEAD}/helpers/proofs/outbox/{second}/messages?index=0")
    at = min(level for level in node.published if level >= second)
    assert found["commitment"] == node.published[at].to_b58() and found["cemented"] is False
    proof = OutputProof.decode(bytes.fromhex(found["proof"]))
    assert verify_output_proof(proof) == node.replica.state_after(at).hash
    assert (proof.level, proof.index, proof.message) == (second, 0, WITHDRAWAL)
    assert len(rpc.get(f"{HEAD}/outbox/{second}/messages")) == 1
    with pytest.raises(RpcError) as raised:  # after the cemented block
        rpc.get(f"/global/block/cemented/outbox/{second}/messages")
    assert raised.value.status == 404


def test_the_reader_never_saw_half_a_step(served: Served) -> None:
    assert served.polled and not [p for p in served.polled if isinstance(p, RpcError)]
    ticks = [p[1] for p in served.polled if isinstance(p, tuple)]
    assert ticks == sorted(ticks)  # the head only moves forward
    states = {
        layout.show_state_hash(served.node.replica.state_after(level).hash)
        for level in range(served.node.origination_level, served.node.replica.level + 1)
    }
    assert {p[0] for p in served.polled if isinstance(p, tuple)} <= states  # fmt: skip


def test_execute_outbox_lands_in_the_contract(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wallet = Wallet(tmp_path / "wallet.json")
    wallet.add("operator", OPERATOR)
    wallet.save()
    status = cli.main([
        "client", "--endpoint", served.l1.url, "--wallet", str(wallet.path), "execute-outbox",
        "--rollup", served.rollup, "--node", served.rpc.url, "--level", str(served.first),
        "--index", "0", "--from", "operator",
    ])  # fmt: skip
    assert status == 0
    operation = json.loads(capsys.readouterr().out)["operation"]
    served.l1.bake()
    assert served.l1.receipt(operation)["status"] == "applied"
    received = served.l1.contract(str(BRIDGE))["received"]
    assert received == [{"sender": served.rollup, "entrypoint": "default", "parameters": "Unit"}]


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/global/nowhere", 404, "NotFound"),
        ("/global/block/999/state_hash", 404, "NotFound"),
        ("/global/block/0/state_hash", 404, "NotFound"),
        ("/global/block/tail/level", 400, "ValueError"),
        (f"{HEAD}/durable/wasm_2_0_0/value", 400, "ValueError"),
        (f"{HEAD}/durable/wasm_2_0_0/value?key=no-slash", 400, "InvalidKey"),
        (f"{HEAD}/outbox/999/messages", 404, "NotFound"),
        (f"{HEAD}/outbox/x/messages", 400, "ValueError"),
        (f"{HEAD}/helpers/proofs/outbox/FIRST/messages", 400, "ValueError"),
        (f"{HEAD}/helpers/proofs/outbox/FIRST/messages?index=x", 400, "ValueError"),
        (f"{HEAD}/helpers/proofs/outbox/FIRST/messages?index=7", 404, "NotFound"),
        (f"{HEAD}/helpers/proofs/outbox/999/messages?index=0", 404, "NotFound"),
    ],
)
def test_bad_requests_are_typed_errors(served: Served, path: str, status: int, error: str) -> None:
    with pytest.raises(RpcError) as raised:
        served.rpc.get(path.replace("FIRST", str(served.first)))
    assert (raised.value.status, raised.value.error) == (status, error)


def test_a_node_process_serves_its_rpc(tmp_path: Path) -> None:
    if not ECHO.exists():
        pytest.fail(f"{ECHO} is missing (../shared/testdata)")
    config = SandboxConfig({str(OPERATOR.public_key().hash()): 50_000 * TEZ}, {}, CONSTANTS)
    server = RpcServer(Sandbox.in_memory(config)).start()
    wallet = Wallet(tmp_path / "wallet.json")
    wallet.add("operator", OPERATOR)
    wallet.save()
    try:
        rollup = _originate(RpcClient(server.url))
        process = subprocess.Popen(
            [sys.executable, "-m", "soru.cli", "node", "run", "--endpoint", server.url,
             "--rollup", rollup, "--operator", "operator", "--wallet", str(wallet.path),
             "--rpc-port", "0"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            assert line.startswith("rpc: http://127.0.0.1:")
            rpc = RpcClient(line.removeprefix("rpc: "))
            assert rpc.get("/global/smart_rollup_address") == rollup
            assert rpc.get(f"{HEAD}/state_hash").startswith("srs1")
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
    finally:
        server.stop()
