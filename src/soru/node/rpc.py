"""The rollup node's RPC server: what a :class:`~soru.node.node.RollupNode` knows, as JSON
over HTTP on loopback, at the paths of Octez's rollup node (``../shared/SORU-SPEC.md`` §8.4
and §7; Octez's default port is 8932). Binary values are hex; hashes are in base58.

    GET /global/smart_rollup_address              "sr1…"
    GET /global/block/<id>/level                  the inbox level the block is
    GET /global/block/<id>/state_hash             "srs1…": the PVM state after that level
    GET /global/block/<id>/total_ticks            the PVM's ticks from genesis to that state
    GET /global/block/<id>/durable/wasm_2_0_0/value?key=/a/b
                                                  the durable value at the key (hex), or null
    GET /global/block/<id>/outbox/<level>/messages
                                                  the outbox of <level> as that state holds
                                                  it: [{index, message, decoded}]
    GET /global/block/head/helpers/proofs/outbox/<level>/messages?index=<i>
                                                  {commitment: "src1…", proof: hex,
                                                  cemented: bool} — what
                                                  ``execute_outbox_message`` takes
    GET /local/commitments                        {inbox level: "src1…"}: the commitments
                                                  this node published

A block ``<id>`` is ``head`` (the last level the node processed), ``cemented`` (the level
of layer 1's last cemented commitment, when this node agrees with it: it published it, or
its state is the node's) or a level from the rollup's origination to the head. ``decoded``
summarises a message that decodes as an outbox message (``soru.protocol.outbox``): its kind
and destinations, or its whitelist; null otherwise. An outbox proof is made against the
state of the last cemented commitment when the node agrees with it and it covers the level
— layer 1 executes only those — else against the node's first published commitment that
covers the level (``cemented`` false: layer 1 takes it once that commitment is cemented).

Deviation: Octez answers an outbox level after the block with an empty list; soru answers
404, as it does for a level it has not processed. Errors are those of ``soru.l1.http``
(typed JSON, 400 bad input, 404 nothing there). Every answer is computed holding the node's
lock (:attr:`RollupNode.lock`), which :meth:`RollupNode.step` holds too: an answer reads
one whole step's results, never half of one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from soru.base.errors import SoruError
from soru.l1.http import Call, JsonServer, NotFound, Route
from soru.merkle import Tree
from soru.node.node import RollupNode
from soru.protocol.commitment import CommitmentHash
from soru.protocol.outbox import TransactionBatch, decode_outbox_message
from soru.pvm import layout
from soru.pvm.lazy_state import LazyPvmState
from soru.pvm.proof import InvalidProof


def _level(text: str, what: str = "a block") -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{what} is head, cemented or a level, not {text!r}") from None


def agreed_lcc(node: RollupNode) -> tuple[CommitmentHash, int] | None:
    """Layer 1's last cemented commitment and its inbox level, if this node published it or
    computed the state it commits to; else None."""
    view = node.client.rollup(node.rollup)
    lcc = view["last_cemented_commitment"]
    digest, level = CommitmentHash.of_b58(lcc["hash"]), lcc["inbox_level"]
    if node.published.get(level) == digest:
        return digest, level
    stored = view["commitments"].get(lcc["hash"])
    if stored is not None and node.origination_level <= level <= node.replica.level:
        if bytes.fromhex(stored["compressed_state"]) == bytes(node.replica.state_after(level).hash):
            return digest, level
    return None


def block_level(node: RollupNode, block: str) -> int:
    """The inbox level of block ``block`` (``head``, ``cemented`` or a level)."""
    head = node.replica.level
    if block == "head":
        return head
    if block == "cemented":
        found = agreed_lcc(node)
        if found is None:
            raise NotFound("no cemented commitment this node agrees with")
        return found[1]
    level = _level(block)
    if not node.origination_level <= level <= head:
        raise NotFound(f"no block {level}: the node holds {node.origination_level}..{head}")
    return level


def _state(node: RollupNode, block: str) -> Tree:
    return node.replica.state_after(block_level(node, block))


def _durable_value(node: RollupNode, call: Call) -> str | None:
    value = LazyPvmState(_state(node, call.args[0])).durable.read_all(call.param("key"))
    return None if value is None else value.hex()


def _decoded(message: bytes) -> dict | None:
    try:
        decoded = decode_outbox_message(message)
    except SoruError:
        return None
    if isinstance(decoded, TransactionBatch):
        kind = "typed_batch" if decoded.typed else "untyped_batch"
        calls = [{"destination": str(t.destination), "entrypoint": t.entrypoint}
                 for t in decoded.transactions]  # fmt: skip
        return {"kind": kind, "destinations": calls}
    keys = None if decoded.whitelist is None else [str(k) for k in decoded.whitelist]
    return {"kind": "whitelist_update", "whitelist": keys}


def _outbox(node: RollupNode, call: Call) -> list[dict]:
    block = block_level(node, call.args[0])
    level = _level(call.args[1], "an outbox level")
    if level > block:
        raise NotFound(f"outbox level {level} is after block {block}")
    outbox: Any = LazyPvmState(node.replica.state_after(block)).outboxes.get(level, ())
    messages = [bytes(outbox[i]) for i in range(len(outbox))]
    return [{"index": i, "message": m.hex(), "decoded": _decoded(m)}
            for i, m in enumerate(messages)]  # fmt: skip


def covering_commitment(node: RollupNode, level: int) -> tuple[CommitmentHash, int, bool]:
    """The commitment an output proof of outbox ``level`` is made against: (its hash, its
    inbox level, whether it is layer 1's last cemented commitment)."""
    lcc = agreed_lcc(node)
    if lcc is not None and level <= lcc[1]:
        return lcc[0], lcc[1], True
    for at, digest in sorted(node.published.items()):
        if at >= level:
            return digest, at, False
    raise NotFound(f"no commitment of this node covers outbox level {level} yet")


def _outbox_proof(node: RollupNode, call: Call) -> dict:
    level = _level(call.args[0], "an outbox level")
    index = int(call.param("index"))
    if index < 0 or not node.origination_level < level <= node.replica.level:
        raise NotFound(f"no outbox message {index} at level {level}")
    digest, at, cemented = covering_commitment(node, level)
    try:
        proof = node.replica.output_proof(at, level, index)
    except InvalidProof:
        raise NotFound(f"no outbox message {index} at level {level}") from None
    return {"commitment": digest.to_b58(), "proof": proof.encode().hex(), "cemented": cemented}


def _routes(node: RollupNode) -> list[Route]:
    def get(pattern: str, answer: Callable[[RollupNode, Call], Any]) -> Route:
        return Route("GET", pattern, lambda call: answer(node, call))

    def hash_of(n: RollupNode, call: Call) -> str:
        return layout.show_state_hash(_state(n, call.args[0]).hash)

    return [
        get("/global/smart_rollup_address", lambda n, c: n.rollup),
        get("/global/block/*/level", lambda n, c: block_level(n, c.args[0])),
        get("/global/block/*/state_hash", hash_of),
        get("/global/block/*/total_ticks", lambda n, c: LazyPvmState(_state(n, c.args[0])).tick),
        get("/global/block/*/durable/wasm_2_0_0/value", _durable_value),
        get("/global/block/*/outbox/*/messages", _outbox),
        get("/global/block/head/helpers/proofs/outbox/*/messages", _outbox_proof),
        get("/local/commitments", lambda n, c: {str(at): d.to_b58()
                                                for at, d in sorted(n.published.items())}),
    ]  # fmt: skip


class NodeRpcServer(JsonServer):
    """Serves ``node`` on ``host:port`` (port 0: any free one) from a background thread."""

    def __init__(self, node: RollupNode, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(_routes(node), host, port, lock=node.lock)
        self.node = node
