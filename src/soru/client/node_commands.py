"""``soru node run``: a rollup node as a process, following a sandbox chain over its RPC.

    soru node run --endpoint URL --rollup sr1… --operator ALIAS [--wallet FILE]
                  [--preimages-dir DIR] [--loser-mode LEVEL:TICK] [--poll SECONDS]
                  [--rpc-host H] [--rpc-port P]

It prints one line per action (``[name] injected publish (60,)``…) and runs until
interrupted. With ``--rpc-port`` (0: any free port) it serves the node's RPC
(``soru.node.rpc``) and prints ``rpc: <url>`` first. ``--loser-mode`` makes it lie from
tick TICK of inbox level LEVEL on (to see a refutation game being lost)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from soru.client.wallet import Wallet
from soru.l1.client import RpcClient, RpcError
from soru.node.node import LoserMode, RollupNode
from soru.node.rpc import NodeRpcServer


def _loser(text: str | None) -> LoserMode | None:
    if text is None:
        return None
    level, _, tick = text.partition(":")
    return LoserMode(int(level), int(tick))


def _run(args: Any) -> int:
    client = RpcClient(args.endpoint)
    constants, version = client.constants()
    name = args.name or args.operator
    node = RollupNode(client, args.rollup, Wallet(args.wallet).secret(args.operator), constants,
                      version=version, preimages=args.preimages_dir, loser=_loser(args.loser_mode),
                      log=lambda line: print(f"[{name}] {line}", flush=True))  # fmt: skip
    server = None
    if args.rpc_port is not None:
        server = NodeRpcServer(node, args.rpc_host, args.rpc_port).start()
        print(f"rpc: {server.url}", flush=True)
    print(f"[{name}] following {args.rollup} at {args.endpoint}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        try:
            node.step()
        except RpcError as error:  # the chain went away or is restarting: try again
            print(f"[{name}] {error}", flush=True)
        stop.wait(args.poll)
    if server is not None:
        server.stop()
    return 0


def register(subparsers: Any) -> None:
    node = subparsers.add_parser("node", help="a rollup node: follow a rollup and operate it")
    commands = node.add_subparsers(title="commands", metavar="COMMAND")
    run = commands.add_parser("run", help="run an operator node until interrupted")
    run.add_argument("--endpoint", required=True)
    run.add_argument("--rollup", required=True)
    run.add_argument("--operator", required=True, help="the wallet alias that signs")
    run.add_argument("--wallet", default="wallet.json")
    run.add_argument("--name", default=None, help="how its log lines are tagged")
    run.add_argument("--preimages-dir", default=None)
    run.add_argument("--loser-mode", default=None, metavar="LEVEL:TICK")
    run.add_argument("--poll", type=float, default=0.05)
    run.add_argument("--rpc-host", default="127.0.0.1")
    run.add_argument("--rpc-port", type=int, default=None, help="serve the node's RPC (0: any)")
    run.set_defaults(handler=_run)
