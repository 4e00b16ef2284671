"""The outbox (``soru.protocol.outbox``, SORU-SPEC §2.6, §7):

1. message encodings byte for byte — the Octez docs' example (``smart_rollup_node.rst``), a
   typed batch and whitelist updates written out by hand — every malformation refused with
   :class:`MalformedOutboxMessage`, random messages round-trip and mutated bytes either
   decode to a message that round-trips or are refused with that class;
2. replay protection: marks, the two replay errors, the encoding of the value;
3. executing with REAL output proofs: Octez's echo kernel writes back, as outbox messages,
   the external messages of inbox level 1 (the docs' batch, a typed batch, a whitelist
   update, bytes that are no message); a staker publishes the state after the level, it is
   cemented, and each message's output proof is executed — once (ok), twice (already
   applied), tampered, against the wrong or a non-cemented commitment, after the level
   left the active window, with its index out of range; every refusal leaves the inputs
   as they were.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soru.base.errors import DecodeError
from soru.base.hashes import Hash
from soru.crypto.addresses import ContractHash, Curve, PublicKeyHash
from soru.encoding.inbox import External
from soru.encoding.micheline import PRIMITIVES, Bytes, Int, Node, Prim, Seq, String
from soru.protocol import staking
from soru.protocol.commitment import Commitment, CommitmentHash, genesis_commitment
from soru.protocol.constants import SANDBOX
from soru.protocol.errors import ProtocolError
from soru.protocol.outbox import (
    AppliedLevel,
    AppliedOutputs,
    InvalidLastCementedCommitment,
    InvalidOutboxLevel,
    InvalidOutboxMessage,
    InvalidOutboxMessageIndex,
    InvalidOutputProof,
    MalformedOutboxMessage,
    OutboxLevelExpired,
    OutboxMessage,
    OutboxMessageAlreadyApplied,
    Transaction,
    TransactionBatch,
    UnsupportedOutboxMessage,
    WhitelistUpdate,
    decode_outbox_message,
    encode_outbox_message,
    execute_outbox_message,
    is_applied,
    mark,
)
from soru.pvm import driver, layout
from soru.pvm.proof import OutputProof, produce_output_proof
from soru.pvm.reveals import RevealProvider
from soru.tools.inputs_file import with_markers

DOCS = bytes.fromhex(
    "0000000023030b01d1a37c088a1221b636bb5fccb35e05181038ba7c000000000764656661756c74"
)
"""The outbox message of ``docs/shell/smart_rollup_node.rst``: ``Unit`` to a KT1's default."""
KT1 = ContractHash(bytes.fromhex("d1a37c088a1221b636bb5fccb35e05181038ba7c"))
UNIT = Prim("Unit")
TYPED = TransactionBatch(
    (
        Transaction(
            KT1,
            "mint",
            Prim("Pair", (Int(1), String("a"))),
            Prim("pair", (Prim("nat"), Prim("string"))),
        ),
    ),
    typed=True,
)
"""``Pair 1 "a"`` typed ``pair nat string`` to entrypoint ``mint``."""

# --- encodings ---------------------------------------------------------------------------


def test_the_docs_example_decodes_and_re_encodes() -> None:
    message = decode_outbox_message(DOCS)
    assert message == TransactionBatch((Transaction(KT1, "default", UNIT),), typed=False)
    assert encode_outbox_message(message) == DOCS


def test_a_typed_batch_byte_for_byte() -> None:
    message = TYPED
    expected = (
        "01" "0000002e"  # tag, 46 bytes of transactions
        "0707" "0001" "0100000001" "61"  # Pair 1 "a"
        "0765" "0362" "0368"  # pair nat string
        "01" "d1a37c088a1221b636bb5fccb35e05181038ba7c" "00"  # KT1…, padding
        "00000004" "6d696e74"  # "mint"
    )  # fmt: skip
    assert encode_outbox_message(message).hex() == expected
    assert decode_outbox_message(bytes.fromhex(expected)) == message


def test_whitelist_updates_byte_for_byte() -> None:
    keys = (
        PublicKeyHash(Curve.ED25519, bytes(range(20))),
        PublicKeyHash(Curve.BLS12_381, bytes(20)),
    )
    some = "02" "ff" "0000002a" "00" + bytes(range(20)).hex() + "03" + "00" * 20  # fmt: skip
    assert encode_outbox_message(WhitelistUpdate(keys)).hex() == some
    assert decode_outbox_message(bytes.fromhex(some)) == WhitelistUpdate(keys)
    assert encode_outbox_message(WhitelistUpdate(None)) == b"\x02\x00"
    assert decode_outbox_message(b"\x02\x00") == WhitelistUpdate(None)
    assert decode_outbox_message(b"\x02\xff\x00\x00\x00\x00") == WhitelistUpdate(())


def test_an_empty_entrypoint_reads_as_default() -> None:
    """As Octez ``Entrypoint_repr.of_string_lax``: ``""`` is the default entrypoint."""
    data = DOCS[:1] + (0x1C).to_bytes(4, "big") + DOCS[5:29] + bytes(4)
    assert decode_outbox_message(data) == decode_outbox_message(DOCS)


def _docs_with_entrypoint(name: bytes) -> bytes:
    body = DOCS[5:29] + len(name).to_bytes(4, "big") + name
    return DOCS[:1] + len(body).to_bytes(4, "big") + body


MALFORMED = {
    "empty": b"",
    "unknown tag": b"\x04",
    "trailing byte": DOCS + b"\x00",
    "truncated": DOCS[:-1],
    "list longer than the message": DOCS[:1] + (0x24).to_bytes(4, "big") + DOCS[5:],
    "list ends inside a transaction": DOCS[:1] + (0x22).to_bytes(4, "big") + DOCS[5:],
    "bad Micheline tag": DOCS[:5] + b"\x0b" + DOCS[6:],
    "implicit destination": DOCS[:7] + b"\x00\x00" + DOCS[9:],
    "unknown contract tag": DOCS[:7] + b"\x02" + DOCS[8:],
    "non-zero padding": DOCS[:28] + b"\x01" + DOCS[29:],
    "entrypoint too long": _docs_with_entrypoint(b"a" * 32),
    "entrypoint with a space": _docs_with_entrypoint(b"do it"),
    "entrypoint with a dash": _docs_with_entrypoint(b"do-it"),
    "entrypoint not ASCII": _docs_with_entrypoint("dé".encode()),
    "typed batch without types": b"\x01" + DOCS[1:],
    "bad option flag": b"\x02\x01",
    "whitelist cut in a key": b"\x02\xff\x00\x00\x00\x14" + bytes(20),
    "unknown curve": b"\x02\xff\x00\x00\x00\x15\x04" + bytes(20),
    "whitelist update trailing": b"\x02\x00\x00",
    "over 4096 bytes": b"\x02\xff" + (21 * 195).to_bytes(4, "big") + bytes(21 * 195),
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_messages_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedOutboxMessage) as caught:
        decode_outbox_message(data)
    assert isinstance(caught.value, DecodeError) and isinstance(caught.value, ProtocolError)


def test_the_largest_whitelist_fits_and_one_more_key_does_not() -> None:
    keys = tuple(PublicKeyHash(Curve.ED25519, i.to_bytes(20, "big")) for i in range(194))
    data = encode_outbox_message(WhitelistUpdate(keys))
    assert len(data) == 2 + 4 + 21 * 194 and decode_outbox_message(data).whitelist == keys
    with pytest.raises(InvalidOutboxMessage):
        encode_outbox_message(WhitelistUpdate((*keys, keys[0])))


def test_canonical_rollup_signals_are_unsupported() -> None:
    with pytest.raises(UnsupportedOutboxMessage):
        decode_outbox_message(b"\x03\x00\x00\x00\x02hi")


@pytest.mark.parametrize("name", ["", "a" * 32, "x y", "é", "do-it"])
def test_bad_entrypoints_are_refused_when_building(name: str) -> None:
    with pytest.raises(InvalidOutboxMessage):
        Transaction(KT1, name, UNIT)


def test_ill_formed_values_are_refused() -> None:
    with pytest.raises(InvalidOutboxMessage):
        Transaction(PublicKeyHash(Curve.ED25519, bytes(20)), "default", UNIT)  # type: ignore[arg-type]
    with pytest.raises(InvalidOutboxMessage):
        TransactionBatch((Transaction(KT1, "default", UNIT),), typed=True)
    with pytest.raises(InvalidOutboxMessage):
        TransactionBatch((Transaction(KT1, "default", UNIT, Prim("unit")),), typed=False)
    with pytest.raises(InvalidOutboxMessage):
        encode_outbox_message(TransactionBatch((Transaction(KT1, "f", Bytes(bytes(4096))),)))
    with pytest.raises(InvalidOutboxMessage):
        encode_outbox_message(TransactionBatch((Transaction(KT1, "f", Prim("nope")),)))


# --- random messages ---------------------------------------------------------------------

_annotations = st.from_regex(r"[@:%][a-zA-Z0-9_.%@]{0,8}", fullmatch=True)
_leaves = st.one_of(
    st.integers().map(Int),
    st.text(st.characters(codec="utf-8"), max_size=8).map(String),
    st.binary(max_size=8).map(Bytes),
    st.builds(Prim, st.sampled_from(PRIMITIVES), st.just(()), st.lists(_annotations, max_size=2)),
)
nodes: st.SearchStrategy[Node] = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda items: Seq(tuple(items))),
        st.builds(
            Prim,
            st.sampled_from(PRIMITIVES),
            st.lists(children, max_size=4).map(tuple),
            st.lists(_annotations, max_size=2).map(tuple),
        ),
    ),
    max_leaves=12,
)
_contracts = st.binary(min_size=20, max_size=20).map(ContractHash)
_entrypoints = st.from_regex(r"[a-zA-Z0-9_.%@]{1,31}", fullmatch=True)


def _batches(typed: bool) -> st.SearchStrategy[TransactionBatch]:
    types = nodes if typed else st.none()
    transaction = st.builds(Transaction, _contracts, _entrypoints, nodes, types)
    return st.lists(transaction, max_size=4).map(lambda txs: TransactionBatch(tuple(txs), typed))


_keys = st.builds(PublicKeyHash, st.sampled_from(list(Curve)), st.binary(min_size=20, max_size=20))
messages: st.SearchStrategy[OutboxMessage] = st.one_of(
    st.booleans().flatmap(_batches),
    st.one_of(st.none(), st.lists(_keys, max_size=6).map(tuple)).map(WhitelistUpdate),
)


def _encoded(message: OutboxMessage) -> bytes | None:
    try:
        return encode_outbox_message(message)
    except InvalidOutboxMessage:
        return None  # over 4096 bytes


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_random_messages_round_trip(message: OutboxMessage) -> None:
    data = _encoded(message)
    if data is None:
        return
    assert len(data) <= 4096
    assert decode_outbox_message(data) == message
    assert encode_outbox_message(decode_outbox_message(data)) == data


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages,
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=3),
    st.integers(0, 10_000),
    st.binary(max_size=3),
)
def test_mutated_bytes_decode_to_a_message_or_are_refused(
    message: OutboxMessage, edits: list[tuple[int, int]], cut: int, tail: bytes
) -> None:
    data = _encoded(message)
    if data is None:
        return
    mutated = bytearray(data)
    for position, value in edits:
        mutated[position % len(mutated)] = value
    mutated = mutated[: max(1, cut % (len(mutated) + 1))] + tail
    try:
        decoded = decode_outbox_message(bytes(mutated))
    except MalformedOutboxMessage:
        return
    again = encode_outbox_message(decoded)
    assert decode_outbox_message(again) == decoded


# --- replay protection -------------------------------------------------------------------

REPLAY = replace(SANDBOX, max_active_outbox_levels=10, max_outbox_messages_per_level=100)


def test_marks_are_remembered_per_level_and_index() -> None:
    applied = mark(AppliedOutputs(), REPLAY, 7, 3)
    applied = mark(applied, REPLAY, 7, 99)
    assert is_applied(applied, REPLAY, 7, 3) and is_applied(applied, REPLAY, 7, 99)
    assert not is_applied(applied, REPLAY, 7, 4) and not is_applied(applied, REPLAY, 17, 3)
    assert applied.slots[7] == AppliedLevel(7, 1 << 3 | 1 << 99)
    newer = mark(applied, REPLAY, 17, 0)  # the same slot: level 7 is forgotten
    assert newer.slots == {7: AppliedLevel(17, 1)} and not is_applied(newer, REPLAY, 7, 3)
    assert applied.slots[7].level == 7  # the old value is unchanged


@pytest.mark.parametrize(
    ("level", "index", "error"),
    [
        (7, 3, OutboxMessageAlreadyApplied),
        (7, 100, InvalidOutboxMessageIndex),
        (7, -1, InvalidOutboxMessageIndex),
        (-3, 0, InvalidOutboxLevel),
        (28, 1, OutboxLevelExpired),
    ],
)
def test_mark_refusals_change_nothing(level: int, index: int, error: type[Exception]) -> None:
    applied = mark(mark(AppliedOutputs(), REPLAY, 7, 3), REPLAY, 38, 0)
    before = applied.encode()
    with pytest.raises(error):
        mark(applied, REPLAY, level, index)
    assert applied.encode() == before


@given(
    st.dictionaries(
        st.integers(0, 2**32 - 1), st.tuples(st.integers(0, 2**31 - 1), st.integers(1, 2**100))
    )
)
def test_applied_outputs_round_trip(entries: dict[int, tuple[int, int]]) -> None:
    applied = AppliedOutputs({slot: AppliedLevel(*entry) for slot, entry in entries.items()})
    assert AppliedOutputs.decode(applied.encode()) == applied


@pytest.mark.parametrize(
    "hex_",
    [
        "",
        "02" "00000000",  # unknown version
        "01" "00000001",  # a missing entry
        "01" "00000000" "00",  # trailing byte
        "01" "00000001" "00000001" "00000001" "00",  # empty bitset
        "01" "00000001" "00000001" "80000000" "01",  # negative level
        "01" "00000002" "00000002" "00000002" "01" "00000001" "00000001" "01",  # out of order
    ],
)  # fmt: skip
def test_applied_outputs_decoding_is_strict(hex_: str) -> None:
    with pytest.raises(DecodeError):
        AppliedOutputs.decode(bytes.fromhex(hex_))


# --- execution with real output proofs ---------------------------------------------------

ECHO = Path(__file__).resolve().parents[4] / "shared" / "testdata" / "kernels" / "echo.wasm"
T = 100_000
CONSTANTS = replace(
    SANDBOX, commitment_period=1, max_active_outbox_levels=3, ticks_per_snapshot=T
).check()
STAKER, STAKE = "tz1staker", CONSTANTS.stake_amount
REVEALS = RevealProvider(None, bytes(20), 0)
WHITELIST = WhitelistUpdate((PublicKeyHash(Curve.ED25519, bytes(range(20))),))
OUTPUTS = (DOCS, encode_outbox_message(TYPED), encode_outbox_message(WHITELIST), b"no message")
"""What the echo kernel writes in the outbox of the level: its external messages."""


def _fake_state(level: int) -> Hash:
    return Hash(hashlib.blake2b(b"state %d" % level, digest_size=32).digest())


def _published_at(inbox_level: int) -> int:
    """The block at which the commitment of ``inbox_level`` is published: each after the
    previous one was cemented."""
    return (inbox_level + 1) * (CONSTANTS.challenge_window + 1)


class World:
    """The echo kernel run over one inbox level whose messages are :data:`OUTPUTS`, at PVM
    level ``pvm_level``; its state after the level committed for inbox level 1, cemented."""

    def __init__(self, pvm_level: int = 1) -> None:
        state = driver.originate(ECHO.read_bytes(), ticks_per_kernel_run=T)
        genesis = genesis_commitment(layout.state_hash(state), 0)
        payloads = [External(output).encode() for output in OUTPUTS]
        result = driver.run_level(state, pvm_level, with_markers(payloads), REVEALS)
        assert result.outbox == OUTPUTS
        self.tree = layout.state_tree(state)
        self.genesis = genesis.hash()
        commitment = Commitment(self.tree.hash, 1, self.genesis, result.ticks)
        self.stakes, self.cemented = self.extend(staking.originate(genesis), commitment)
        self.proofs = [produce_output_proof(self.tree, pvm_level, i) for i in range(len(OUTPUTS))]

    @staticmethod
    def extend(
        stakes: staking.Stakes, commitment: Commitment
    ) -> tuple[staking.Stakes, CommitmentHash]:
        """``stakes`` once ``commitment`` is published and cemented (published at block
        :func:`_published_at` its inbox level, cemented a challenge window later)."""
        now = _published_at(commitment.inbox_level)
        stakes, _ = staking.publish_commitment(stakes, CONSTANTS, STAKER, commitment, now, STAKE)
        return staking.cement(stakes, CONSTANTS, now + CONSTANTS.challenge_window)

    def cement_more(self, count: int) -> staking.Stakes:
        """:attr:`stakes` after ``count`` more levels are cemented (with made-up states)."""
        stakes = self.stakes
        for _ in range(count):
            level = stakes.lcc_level + 1
            commitment = Commitment(_fake_state(level), level, stakes.lcc_hash, 1000)
            stakes, _ = self.extend(stakes, commitment)
        return stakes


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def _refused(
    error: type[ProtocolError],
    stakes: staking.Stakes,
    applied: AppliedOutputs,
    commitment: Hash,
    proof: OutputProof | bytes,
    constants=CONSTANTS,
) -> None:
    """Executing raises ``error`` and leaves every input as it was."""
    before = (applied.encode(), staking.lcc(stakes), stakes.cemented, dict(stakes.commitments))
    proof_bytes = proof if isinstance(proof, bytes) else proof.encode()
    with pytest.raises(error):
        execute_outbox_message(stakes, constants, applied, commitment, proof)
    after = (applied.encode(), staking.lcc(stakes), stakes.cemented, dict(stakes.commitments))
    assert after == before
    assert (proof if isinstance(proof, bytes) else proof.encode()) == proof_bytes


def test_executing_the_docs_message_once(world: World) -> None:
    applied, message, level, index = execute_outbox_message(
        world.stakes, CONSTANTS, AppliedOutputs(), world.cemented, world.proofs[0]
    )
    assert (message, level, index) == (decode_outbox_message(DOCS), 1, 0)
    assert message == TransactionBatch((Transaction(KT1, "default", UNIT),))
    assert is_applied(applied, CONSTANTS, 1, 0) and not is_applied(applied, CONSTANTS, 1, 1)
    # the operation carries the proof as bytes: the same result
    same = execute_outbox_message(
        world.stakes, CONSTANTS, AppliedOutputs(), world.cemented, world.proofs[0].encode()
    )
    assert same == (applied, message, level, index)


def test_every_message_of_the_level_executes_once(world: World) -> None:
    applied = AppliedOutputs()
    for index, expected in enumerate((decode_outbox_message(DOCS), TYPED, WHITELIST)):
        applied, message, level, got = execute_outbox_message(
            world.stakes, CONSTANTS, applied, world.cemented, world.proofs[index]
        )
        assert (message, level, got) == (expected, 1, index)
    assert applied.slots == {1: AppliedLevel(1, 0b111)}
    for index in range(3):
        _refused(
            OutboxMessageAlreadyApplied, world.stakes, applied, world.cemented, world.proofs[index]
        )


def test_an_output_that_is_no_message(world: World) -> None:
    _refused(
        MalformedOutboxMessage, world.stakes, AppliedOutputs(), world.cemented, world.proofs[3]
    )


def test_tampered_proofs(world: World) -> None:
    proof = world.proofs[0]
    for forged in (
        OutputProof(proof.level, proof.index, DOCS[:-1] + b"u", proof.tree),  # other bytes
        OutputProof(proof.level, 1, proof.message, proof.tree),  # another place
        OutputProof(proof.level, proof.index, proof.message, world.proofs[1].tree),
    ):
        _refused(InvalidOutputProof, world.stakes, AppliedOutputs(), world.cemented, forged)
    encoded = proof.encode()
    for position in range(len(encoded)):  # every byte of the operation's proof, flipped
        flipped = encoded[:position] + bytes([encoded[position] ^ 0x5A]) + encoded[position + 1 :]
        _refused(InvalidOutputProof, world.stakes, AppliedOutputs(), world.cemented, flipped)


def test_a_proof_of_another_state(world: World) -> None:
    """The genesis commitment is cemented and stored, but its state has no such output."""
    assert world.genesis in world.stakes.cemented
    _refused(InvalidOutputProof, world.stakes, AppliedOutputs(), world.genesis, world.proofs[0])


def test_commitments_that_are_not_stored_cemented_ones(world: World) -> None:
    published = Commitment(_fake_state(2), 2, world.cemented, 1000)
    now = _published_at(2)
    stakes, _ = staking.publish_commitment(world.stakes, CONSTANTS, STAKER, published, now, STAKE)
    assert staking.find_commitment(stakes, published.hash()) is not None
    _refused(
        InvalidLastCementedCommitment, stakes, AppliedOutputs(), published.hash(), world.proofs[0]
    )
    _refused(
        InvalidLastCementedCommitment,
        world.stakes,
        AppliedOutputs(),
        _fake_state(0),
        world.proofs[0],
    )
    # cemented long ago: its contents are forgotten after 5 newer cemented commitments
    later = world.cement_more(CONSTANTS.max_stored_cemented_commitments)
    assert world.cemented not in later.cemented
    _refused(
        InvalidLastCementedCommitment, later, AppliedOutputs(), world.cemented, world.proofs[0]
    )


def test_the_level_leaves_the_active_window(world: World) -> None:
    window = CONSTANTS.max_active_outbox_levels
    still = world.cement_more(window - 1)  # LCC level 3: (0, 3] holds level 1
    applied, *_ = execute_outbox_message(
        still, CONSTANTS, AppliedOutputs(), world.cemented, world.proofs[0]
    )
    later = world.cement_more(window)  # LCC level 4: (1, 4] does not
    assert world.cemented in later.cemented  # still stored, so only the level is wrong
    _refused(InvalidOutboxLevel, later, AppliedOutputs(), world.cemented, world.proofs[0])
    _refused(InvalidOutboxLevel, later, applied, world.cemented, world.proofs[0])


def test_an_outbox_level_after_the_lcc() -> None:
    """A commitment for inbox level 1 whose state ran its messages as level 5 (nobody
    refuted it): its outputs are at level 5, after the LCC's level."""
    lying = World(pvm_level=5)
    _refused(InvalidOutboxLevel, lying.stakes, AppliedOutputs(), lying.cemented, lying.proofs[0])


def test_an_index_past_the_per_level_limit(world: World) -> None:
    one = replace(CONSTANTS, max_outbox_messages_per_level=1)
    execute_outbox_message(world.stakes, one, AppliedOutputs(), world.cemented, world.proofs[0])
    _refused(
        InvalidOutboxMessageIndex,
        world.stakes,
        AppliedOutputs(),
        world.cemented,
        world.proofs[1],
        one,
    )


def test_a_newer_level_in_the_slot(world: World) -> None:
    """Unreachable while the window and the constant stay as they are (a newer level in the
    slot means an inactive level), but kept as Octez keeps it: as if the slot count had
    changed since level 4 was executed."""
    applied = AppliedOutputs({1 % CONSTANTS.max_active_outbox_levels: AppliedLevel(4, 1)})
    _refused(OutboxLevelExpired, world.stakes, applied, world.cemented, world.proofs[0])
