"""The ``soru sandbox`` and ``soru client`` commands: make and run a layer-1 sandbox chain,
and talk to it over its RPC.

    soru sandbox init --data-dir D [--accounts N] [--balance TEZ] [--profile P]
    soru sandbox run  --data-dir D [--host H] [--rpc-port P] [--block-time S]
    soru client [--endpoint URL] [--wallet FILE] head | balance NAME | receipt HASH | bake
                | transfer TEZ --from A --to B | originate-rollup --kernel K --type T --from A
                | add-messages --from A HEX… | rollup SR1
                | execute-outbox --rollup SR1 --node URL --level L --index I --from A

``sandbox init`` writes ``D/chain.db`` and ``D/wallet.json`` (the bootstrap accounts'
keys, named ``bootstrap1``…); ``sandbox run`` prints ``rpc: <url>`` once it serves, and
serves until interrupted. ``execute-outbox`` asks a rollup node (``soru node run
--rpc-port``) for the proof of an outbox message and sends it to layer 1, as Octez's
``execute outbox message of smart rollup <sr> from <src> for commitment hash <c> and output
proof <p>`` does. Every client command prints JSON.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

from soru.client.wallet import Wallet, bootstrap_key
from soru.crypto.addresses import RollupAddress, parse_contract
from soru.encoding.michelson_text import parse_expression
from soru.l1 import operations as ops
from soru.l1.client import RpcClient
from soru.l1.rpc import RpcServer
from soru.l1.sandbox import Sandbox, SandboxConfig
from soru.protocol.commitment import CommitmentHash
from soru.protocol.constants import MAINNET, SANDBOX, RollupConstants
from soru.protocol.origination import Origination, PvmKind

DEFAULT_ENDPOINT = "http://127.0.0.1:18731"
TEZ = 1_000_000


def _print(value: object) -> int:
    print(json.dumps(value, indent=1, sort_keys=True))
    return 0


def init_sandbox(data: Path, names: list[str], balance: int, constants: RollupConstants,
                 contracts: dict[str, str] | None = None) -> Wallet:  # fmt: skip
    """Make ``data/chain.db``, whose bootstrap accounts ``names`` hold ``balance`` mutez each
    (their keys derived from their names: :func:`bootstrap_key`), and ``data/wallet.json``
    holding those keys; returns the wallet."""
    data.mkdir(parents=True, exist_ok=True)
    wallet = Wallet(data / "wallet.json")
    bootstrap = {}
    for name in names:
        key = bootstrap_key(name)
        wallet.add(name, key)
        bootstrap[str(key.public_key().hash())] = balance
    config = SandboxConfig(bootstrap, contracts or {}, constants)
    Sandbox.create(data / "chain.db", config).close()
    wallet.save()
    return wallet


def _init(args: Any) -> int:
    data = Path(args.data_dir)
    names = [f"bootstrap{i}" for i in range(1, args.accounts + 1)]
    constants = SANDBOX if args.profile == "sandbox" else MAINNET
    wallet = init_sandbox(data, names, args.balance * TEZ, constants)
    return _print({"chain": str(data / "chain.db"), "accounts": sorted(wallet.keys)})


def _run(args: Any) -> int:
    sandbox = Sandbox.open(Path(args.data_dir) / "chain.db")
    server = RpcServer(sandbox, args.host, args.rpc_port, args.block_time).start()
    print(f"rpc: {server.url}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop()
    sandbox.close()
    return 0


def _sign_and_inject(args: Any, source: str, content: ops.Content) -> int:
    secret = Wallet(args.wallet).secret(source)
    return _print({"operation": RpcClient(args.endpoint).sign_and_inject(secret, content)})


def _transfer(args: Any) -> int:
    wallet = Wallet(args.wallet)
    destination = parse_contract(wallet.address(args.to))
    amount = int(round(float(args.amount) * TEZ)) if "." in args.amount else int(args.amount) * TEZ
    return _sign_and_inject(args, args.source, ops.Transfer(destination, amount))


def _originate(args: Any) -> int:
    kernel = Path(args.kernel).read_bytes()
    if args.kernel.endswith(".hex"):
        kernel = bytes.fromhex(kernel.decode().strip())
    origination = Origination(PvmKind.WASM_2_0_0, kernel, parse_expression(args.type))
    return _sign_and_inject(args, args.source, ops.OriginateRollup(origination))


def _add_messages(args: Any) -> int:
    messages = tuple(bytes.fromhex(m) for m in args.messages)
    return _sign_and_inject(args, args.source, ops.AddMessages(messages))


def outbox_execution(node_url: str, rollup: str, level: int,
                     index: int) -> ops.ExecuteOutboxMessage:  # fmt: skip
    """The operation executing outbox message ``index`` of ``level``, with the commitment and
    output proof the rollup node at ``node_url`` gives (``soru.node.rpc``)."""
    path = f"/global/block/head/helpers/proofs/outbox/{level}/messages?index={index}"
    found = RpcClient(node_url).get(path)
    return ops.ExecuteOutboxMessage(RollupAddress.of_b58(rollup),
                                    CommitmentHash.of_b58(found["commitment"]),
                                    bytes.fromhex(found["proof"]))  # fmt: skip


def _execute_outbox(args: Any) -> int:
    execution = outbox_execution(args.node, args.rollup, args.level, args.index)
    return _sign_and_inject(args, args.source, execution)


def _client_query(args: Any) -> int:
    client = RpcClient(args.endpoint)
    if args.query == "head":
        return _print(client.header())
    if args.query == "bake":
        return _print(client.bake())
    if args.query == "balance":
        return _print(client.contract(Wallet(args.wallet).address(args.name)))
    if args.query == "receipt":
        return _print(client.receipt(args.name))
    return _print(client.rollup(args.name))


def register(subparsers: Any) -> None:
    """Add ``sandbox`` and ``client`` to the ``soru`` command line."""
    sandbox = subparsers.add_parser("sandbox", help="a layer-1 sandbox chain: init, run")
    commands = sandbox.add_subparsers(title="commands", metavar="COMMAND")
    init = commands.add_parser("init", help="make a chain: D/chain.db and D/wallet.json")
    init.add_argument("--data-dir", required=True)
    init.add_argument("--accounts", type=int, default=4)
    init.add_argument("--balance", type=int, default=100_000, help="tez per account")
    init.add_argument("--profile", choices=("sandbox", "mainnet"), default="sandbox")
    init.set_defaults(handler=_init)
    run = commands.add_parser("run", help="serve the chain's RPC (prints 'rpc: <url>')")
    run.add_argument("--data-dir", required=True)
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--rpc-port", type=int, default=18731)
    run.add_argument("--block-time", type=float, default=None, help="bake every S seconds")
    run.set_defaults(handler=_run)
    _register_client(subparsers)


def _register_client(subparsers: Any) -> None:
    client = subparsers.add_parser("client", help="talk to a sandbox chain over its RPC")
    client.add_argument("--endpoint", default=os.environ.get("SORU_ENDPOINT", DEFAULT_ENDPOINT))
    client.add_argument("--wallet", default=os.environ.get("SORU_WALLET", "wallet.json"))
    commands = client.add_subparsers(title="commands", metavar="COMMAND")
    for query in ("head", "bake"):
        commands.add_parser(query).set_defaults(handler=_client_query, query=query)
    for query in ("balance", "receipt", "rollup"):
        parser = commands.add_parser(query)
        parser.add_argument("name")
        parser.set_defaults(handler=_client_query, query=query)
    transfer = commands.add_parser("transfer", help="send tez")
    transfer.add_argument("amount")
    transfer.add_argument("--from", dest="source", required=True)
    transfer.add_argument("--to", required=True)
    transfer.set_defaults(handler=_transfer)
    originate = commands.add_parser("originate-rollup", help="originate a wasm_2_0_0 rollup")
    originate.add_argument("--kernel", required=True, help="KERNEL.wasm or a .hex file")
    originate.add_argument("--type", default="unit", help="Michelson parameters type")
    originate.add_argument("--from", dest="source", required=True)
    originate.set_defaults(handler=_originate)
    add = commands.add_parser("add-messages", help="external messages for the inbox")
    add.add_argument("messages", nargs="+", metavar="HEX")
    add.add_argument("--from", dest="source", required=True)
    add.set_defaults(handler=_add_messages)
    execute = commands.add_parser("execute-outbox", help="execute a cemented outbox message")
    execute.add_argument("--rollup", required=True)
    execute.add_argument("--node", required=True, help="the rollup node's RPC URL")
    execute.add_argument("--level", type=int, required=True, help="the outbox level")
    execute.add_argument("--index", type=int, required=True, help="the message's index")
    execute.add_argument("--from", dest="source", required=True)
    execute.set_defaults(handler=_execute_outbox)
