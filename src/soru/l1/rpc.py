"""The sandbox chain's HTTP RPC server: JSON over HTTP on loopback, paths in the style of
Octez's node RPCs where one exists. Binary values (hashes, operations, messages) are hex.

    GET  /chains/main/blocks/head/header               level, hash, timestamp, predecessor
    GET  /chains/main/blocks/<level|head>/operations   hash, bytes and receipt of each
    GET  /chains/main/operations/<hash>                 one operation's receipt
    GET  /chains/main/blocks/head/context/contracts/<tz1…|KT1…>
                                                       balance, counter, frozen bonds; or a
                                                       contract's parameter type and calls
    GET  /chains/main/blocks/head/context/smart_rollups/smart_rollup/<sr1…>
                                                       kind, origination level, genesis, LCC,
                                                       stakers, commitments, games
    GET  …/smart_rollups/smart_rollup/<sr1…>/boot_sector   the kernel it was originated with
    GET  /chains/main/blocks/head/context/smart_rollups/inbox
                                                       the shared inbox head (level, srib1…)
    GET  /chains/main/blocks/head/context/constants     the rollup constants, the PVM version
    GET  /chains/main/inbox/levels/<level>              that level's messages (SOL … EOL),
                                                       the predecessor's timestamp and hash
    POST /injection/operation                           body: "<hex>" → the operation hash
    POST /sandbox/bake                                  bake the mempool now → the new header

Errors answer with a JSON ``{"error": "<class>", "message": …}`` and status 400 (bad input:
a malformed or unsigned operation) or 404 (nothing there) — ``soru.l1.http`` serves the
table. :class:`RpcServer` serves a :class:`~soru.l1.sandbox.Sandbox` from a thread; with
``block_time`` it also bakes on a clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from soru.crypto.addresses import RollupAddress
from soru.l1 import chain
from soru.l1.http import Call, JsonServer, NotFound, Route
from soru.l1.sandbox import Sandbox
from soru.protocol import game as games
from soru.protocol import staking
from soru.protocol.rollup import Rollup


def _header(sandbox: Sandbox) -> dict:
    s = sandbox.state
    previous = sandbox.blocks[-1].predecessor if sandbox.blocks else bytes(32)
    return {"level": s.level, "hash": s.block_hash.hex(), "timestamp": s.timestamp,
            "predecessor": previous.hex()}  # fmt: skip


def _block_operations(sandbox: Sandbox, parts: list[str]) -> list:
    level = sandbox.state.level if parts[0] == "head" else int(parts[0])
    if not 1 <= level <= len(sandbox.blocks):
        raise NotFound(f"no block at level {parts[0]}")
    found = []
    for operation in sandbox.blocks[level - 1].operations:
        digest = sandbox.by_operation[operation.hash()]
        found.append({"hash": digest.hex(), "bytes": sandbox.signed[digest].encode().hex(),
                      "receipt": _receipt(sandbox.receipts[digest])})  # fmt: skip
    return found


def _receipt(receipt: chain.Receipt) -> dict:
    return {"status": receipt.status, "error": receipt.error, "result": receipt.result}


def _operation(sandbox: Sandbox, parts: list[str]) -> dict:
    receipt = sandbox.receipts.get(bytes.fromhex(parts[0]))
    if receipt is None:
        raise NotFound(f"no operation {parts[0]}")
    return _receipt(receipt)


def _contract(sandbox: Sandbox, parts: list[str]) -> dict:
    key = parts[0]
    account = sandbox.state.accounts.get(key)
    if account is not None:
        return {"balance": account.balance, "counter": account.counter, "frozen": account.frozen}
    contract = sandbox.state.contracts.get(key)
    if contract is None:
        raise NotFound(f"no account or contract {key}")
    from soru.encoding.michelson_text import print_expression

    calls = [{"sender": s, "entrypoint": e, "parameters": print_expression(p)}
             for s, e, p in contract.received]  # fmt: skip
    return {
        "balance": contract.balance,
        "parameter_type": print_expression(contract.parameter_type),
        "received": calls,
    }


def _rollup_view(rollup: Rollup) -> dict:
    stakes = rollup.stakes
    lcc, lcc_level = staking.lcc(stakes)
    commitments = {
        digest.to_b58(): {
            "inbox_level": c.inbox_level,
            "predecessor": c.predecessor.to_b58(),
            "number_of_ticks": c.number_of_ticks,
            "compressed_state": bytes(c.compressed_state).hex(),
            "stakers": list(staking.active_backers(stakes, digest)),
            "added_level": stakes.added_levels.get(digest),
        }
        for digest, c in stakes.commitments.items()
    }
    return {
        "address": str(rollup.address),
        "kind": str(rollup.kind),
        "origination_level": rollup.origination_level,
        "genesis_commitment": rollup.genesis_hash.to_b58(),
        "last_cemented_commitment": {"hash": lcc.to_b58(), "inbox_level": lcc_level},
        "stakers": sorted(stakes.stakers),
        "commitments": commitments,
        "games": [_game_view(g) for g in rollup.games.values()],
    }


def _game_view(game: games.Game) -> dict:
    state: dict[str, Any]
    if isinstance(game.state, games.Dissecting):
        chunks = [[None if c.state_hash is None else bytes(c.state_hash).hex(), c.tick]
                  for c in game.state.dissection]  # fmt: skip
        state = {"dissecting": chunks}
    else:
        state = {"final_move": [game.state.agreed_start.tick, game.state.refuted_stop.tick]}
    return {"alice": game.alice, "bob": game.bob, "turn": game.staker(game.turn),
            "inbox_level": game.inbox_level, "start_level": game.start_level,
            "clocks": [game.clocks.alice, game.clocks.bob, game.clocks.last_turn_level],
            "state": state}  # fmt: skip


def _rollup(sandbox: Sandbox, parts: list[str]) -> dict:
    RollupAddress.of_b58(parts[0])  # a typed error for a malformed address
    found = sandbox.state.rollups.get(parts[0])
    if found is None:
        raise NotFound(f"no rollup {parts[0]}")
    return _rollup_view(found)


def _boot_sector(sandbox: Sandbox, parts: list[str]) -> str:
    found = sandbox.state.rollups.get(parts[0])
    if found is None:
        raise NotFound(f"no rollup {parts[0]}")
    return found.boot_sector.hex()


def _constants(sandbox: Sandbox, parts: list[str]) -> dict:
    from dataclasses import asdict

    return {"smart_rollup": asdict(sandbox.state.constants),
            "pvm_version": sandbox.state.pvm_version}  # fmt: skip


def _inbox(sandbox: Sandbox, parts: list[str]) -> dict:
    inbox = sandbox.state.inbox
    return {"level": inbox.level, "hash": inbox.hash().to_b58(), "bytes": inbox.encode().hex()}


def _inbox_level(sandbox: Sandbox, parts: list[str]) -> dict:
    level = int(parts[0])
    found = sandbox.history.find_level(level)
    if found is None or level < 1 or level > len(sandbox.blocks):
        raise NotFound(f"no inbox level {level}")
    block = sandbox.blocks[level - 1]
    before = sandbox.blocks[level - 2] if level >= 2 else None
    timestamp = before.timestamp if before else sandbox.config.genesis_timestamp
    return {"level": level, "messages": [m.hex() for m in found.payloads],
            "predecessor_timestamp": timestamp, "predecessor": block.predecessor.hex()}  # fmt: skip


_BASE = "/chains/main/blocks/head/context"


def _routes(sandbox: Sandbox) -> list[Route]:
    def get(pattern: str, answer: Callable[[Sandbox, list[str]], Any]) -> Route:
        return Route("GET", pattern, lambda call: answer(sandbox, list(call.args)))

    def inject(call: Call) -> str:
        text = "" if call.body is None else call.body
        if not isinstance(text, str):
            raise ValueError("the body is the operation's hex, as a JSON string")
        return sandbox.inject(bytes.fromhex(text)).hex()

    def bake(call: Call) -> dict:
        sandbox.bake()
        return _header(sandbox)

    return [
        get("/chains/main/blocks/head/header", lambda s, p: _header(s)),
        get("/chains/main/blocks/*/operations", _block_operations),
        get("/chains/main/operations/*", _operation),
        get(f"{_BASE}/contracts/*", _contract),
        get(f"{_BASE}/smart_rollups/smart_rollup/*", _rollup),
        get(f"{_BASE}/smart_rollups/smart_rollup/*/boot_sector", _boot_sector),
        get(f"{_BASE}/smart_rollups/inbox", _inbox),
        get(f"{_BASE}/constants", _constants),
        get("/chains/main/inbox/levels/*", _inbox_level),
        Route("POST", "/injection/operation", inject),
        Route("POST", "/sandbox/bake", bake),
    ]


class RpcServer(JsonServer):
    """Serves ``sandbox`` on ``host:port`` (port 0: any free one) from a background thread,
    each request holding the sandbox's lock; bakes every ``block_time`` seconds when given."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0,
                 block_time: float | None = None) -> None:  # fmt: skip
        super().__init__(_routes(sandbox), host, port, lock=sandbox.lock)
        self.sandbox, self.block_time = sandbox, block_time
        self._stop = threading.Event()

    def start(self) -> RpcServer:
        super().start()
        if self.block_time is not None:
            self.run_beside(self._bake_on_clock)
        return self

    def _bake_on_clock(self) -> None:
        assert self.block_time is not None
        while not self._stop.wait(self.block_time):
            self.sandbox.bake()

    def stop(self) -> None:
        self._stop.set()
        super().stop()
