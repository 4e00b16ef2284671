"""The sandbox chain's RPC server (``soru.l1.rpc``), its client (``soru.l1.client``) and the
``soru sandbox`` / ``soru client`` commands: a real HTTP server on loopback, in-process and
then as a separate ``soru sandbox run`` process baking on a clock, driven by ``soru client``
processes; the chain survives the server's end.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from soru.client.wallet import bootstrap_key
from soru.crypto.keys import SecretKey
from soru.l1 import operations as ops
from soru.l1.client import RpcClient, RpcError
from soru.l1.rpc import RpcServer
from soru.l1.sandbox import Sandbox, SandboxConfig

ALICE = SecretKey.from_seed(bytes(range(32)))
A = ALICE.public_key().hash()
B = SecretKey.from_seed(bytes(range(1, 33))).public_key().hash()


@pytest.fixture
def served():
    sandbox = Sandbox.in_memory(SandboxConfig({str(A): 1_000_000}))
    server = RpcServer(sandbox).start()
    yield sandbox, RpcClient(server.url)
    server.stop()


def test_inject_bake_and_query_over_http(served) -> None:
    sandbox, client = served
    operation = ops.Operation(A, 1, ops.Transfer(B, 400))
    digest = client.inject(ops.SignedOperation.sign(operation, ALICE).encode())
    header = client.bake()
    assert header["level"] == 1 and header["hash"] == sandbox.state.block_hash.hex()
    assert client.receipt(digest) == {"status": "applied", "error": None, "result": {}}
    assert client.contract(str(B)) == {"balance": 400, "counter": 0, "frozen": 0}
    (included,) = client.get("/chains/main/blocks/1/operations")
    assert included["hash"] == digest and included["receipt"]["status"] == "applied"
    level = client.inbox_level(1)
    assert len(level["messages"]) == 3  # SOL, Info_per_level, EOL
    assert client.get("/chains/main/blocks/head/context/smart_rollups/inbox")["level"] == 1


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/injection/operation", "zz", 400, "ValueError"),
        ("/injection/operation", "00", 400, "MalformedOperation"),
        ("/injection/operation", 5, 400, "ValueError"),
        ("/chains/main/operations/00", None, 404, "NotFound"),
        (
            "/chains/main/blocks/head/context/contracts/tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx",
            None,
            404,
            "NotFound",
        ),  # fmt: skip
        ("/chains/main/blocks/7/operations", None, 404, "NotFound"),
        ("/nowhere", None, 404, "NotFound"),
    ],
)
def test_bad_requests_are_typed_errors(served, path, body, status, error) -> None:
    sandbox, client = served
    with pytest.raises(RpcError) as raised:
        client.get(path) if body is None else client.post(path, body)
    assert (raised.value.status, raised.value.error) == (status, error)
    assert not sandbox.mempool and sandbox.state.level == 0


def _soru(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "soru.cli", *args], capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    return json.loads(done.stdout)


def test_a_sandbox_process_and_client_commands(tmp_path: Path) -> None:
    data = tmp_path / "sandbox"
    made = _soru("sandbox", "init", "--data-dir", str(data), "--accounts", "2")
    assert made["accounts"] == ["bootstrap1", "bootstrap2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "soru.cli", "sandbox", "run", "--data-dir", str(data),
         "--rpc-port", "0", "--block-time", "0.2"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("rpc: http://127.0.0.1:")
        endpoint = line.removeprefix("rpc: ")
        client = ["client", "--endpoint", endpoint, "--wallet", str(data / "wallet.json")]
        sent = _soru(*client, "transfer", "12.5", "--from", "bootstrap1", "--to", "bootstrap2")
        receipt = RpcClient(endpoint).wait_for(sent["operation"])
        assert receipt["status"] == "applied"
        second = bootstrap_key("bootstrap2").public_key().hash()
        balance = _soru(*client, "balance", "bootstrap2")
        assert balance["balance"] == 100_000_000_000 + 12_500_000
        assert _soru(*client, "balance", str(second)) == balance
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    reopened = Sandbox.open(data / "chain.db")
    assert reopened.state.accounts[str(second)].balance == 100_000_000_000 + 12_500_000
    assert reopened.state.level >= 1
