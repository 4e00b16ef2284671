"""The inbox (``soru.protocol.inbox``, SORU-SPEC §3): hashes as Tezos computes them, levels,
genesis, and inbox proofs (every produced proof verifies to exactly the right input; every
altered one is rejected with :class:`InboxProofError`).

Test vectors from Octez. No Octez test or regression output holds a usable inbox hash (the
unit tests compare node and protocol inboxes with each other, tezt regression outputs
replace every ``srib…`` hash with a placeholder). One public output of a real Octez rollup
node does: the example of ``GET /global/block/head?outbox=true`` in the description of
Octez merge request 14140 ("Rollup node: return outbox messages in L2 block RPC",
gitlab.com/tezos/tezos/-/merge_requests/14140), for L1 level 5 of a sandbox:

* the level's four serialized messages (SOL, Info_per_level, a Transfer, EOL), whose
  ``Info_per_level`` carries the block's ``predecessor`` (``BMZUYMWy…``) and a timestamp;
* ``inbox_witness`` = ``srib22s9Ppqe…``: the witness hash of these four messages;
* ``inbox`` = the history cell ``{index 4; content {hash srib22s9…; level 5};
  back_pointers [srib13uhb…; srib13uhb…]}`` and ``inbox_hash`` = ``srib12kCQq…``, its hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soru.base.errors import DecodeError
from soru.base.hashes import Hash
from soru.crypto import base58
from soru.crypto.base58 import Kind
from soru.encoding.inbox import (
    External,
    InfoPerLevel,
    MessageTooLarge,
    ProtocolMigration,
    Transfer,
    decode_message,
)
from soru.protocol import inbox as ib
from soru.protocol import inbox_proof as ibp
from soru.protocol import skip_list
from soru.protocol.inbox import (
    END_OF_LEVEL,
    START_OF_LEVEL,
    GenesisParameters,
    HistoryCell,
    Inbox,
    InboxError,
    InboxHash,
    InboxProofError,
    LevelProof,
    MalformedInboxProof,
    MessageHash,
    MissingHistory,
    WitnessHash,
)
from soru.protocol.inbox_proof import FirstInboxMessage, InboxHistory, InboxInputProof, InboxProof
from soru.protocol.skip_list import Cell
from soru.pvm.state import InputMessage, InputRequest

# --- the Octez vector (MR 14140) -------------------------------------------------------------

VECTOR_MESSAGES = [
    bytes.fromhex(m)
    for m in (
        "0001",
        "00030000000064b4f822f365312802b7c0d926b28c27c6b3ee212921cd4e92011aa59da7099c98af542f",
        "00000a00000024000000001f002501e23f94166aa518a037d11c2af05984c36b08f7cc0000000003617578"
        "b8a8b6f6910862bc7f78be2b459ea1e388f41aad0002298c03ed7d454a101eb7022bc95f7e5f41ac786045"
        "6fdcdd3fa34617540700c8e2ac135ef47327",
        "0002",
    )
]
VECTOR_PREDECESSOR = "BMZUYMWyHfDwvFD8d2ZJnekfkHRRL6Q8TN4KZX8QDiVFqMgPMyq"
VECTOR_TIMESTAMP = 0x64B4F822  # 2023-07-17T08:13:22Z
VECTOR_WITNESS = "srib22s9PpqeSy1GvYUrbBBhVEakbXqpVZdjksQaghniizE8s6cVQXj"
VECTOR_BACK_POINTER = "srib13uhbDHZ5TGjrHokx5T9WHBjsurb2kNDijBFEBLfh3ZveLxJrD6"
VECTOR_INBOX_HASH = "srib12kCQqRh6qSX8tzN1DYxvTkK3jd25aWi7cQeix1mWi3YraaxsBZ"


def test_octez_vector_messages() -> None:
    predecessor = base58.decode_as(Kind.BLOCK_HASH, VECTOR_PREDECESSOR)
    payloads = ib.level_payloads(VECTOR_TIMESTAMP, predecessor, [VECTOR_MESSAGES[2]])
    assert list(payloads) == VECTOR_MESSAGES
    assert payloads[0] == START_OF_LEVEL and payloads[-1] == END_OF_LEVEL
    assert decode_message(payloads[1]) == InfoPerLevel(VECTOR_TIMESTAMP, predecessor)
    assert isinstance(decode_message(payloads[2]), Transfer)


def test_octez_vector_witness_hash() -> None:
    cells = ib.build_witness(VECTOR_MESSAGES)
    assert [c.index for c in cells] == [0, 1, 2, 3]
    assert ib.hash_witness_cell(cells[-1]).to_b58() == VECTOR_WITNESS
    predecessor = base58.decode_as(Kind.BLOCK_HASH, VECTOR_PREDECESSOR)
    inbox, level = ib.add_all_messages(
        ib.genesis(GenesisParameters(level=4)),
        predecessor_timestamp=VECTOR_TIMESTAMP,
        predecessor=predecessor,
        messages=[VECTOR_MESSAGES[2]],
    )
    assert str(level.witness_hash) == VECTOR_WITNESS
    assert str(inbox.current_witness()) == VECTOR_WITNESS
    assert inbox.level == 5 and level.level == 5


def test_octez_vector_inbox_hash() -> None:
    back = InboxHash.of_b58(VECTOR_BACK_POINTER)
    cell = Cell(4, LevelProof(WitnessHash.of_b58(VECTOR_WITNESS), 5), (back, back))
    inbox = Inbox(5, cell)
    assert inbox.hash().to_b58() == VECTOR_INBOX_HASH
    assert str(inbox.hash()) == VECTOR_INBOX_HASH
    # Index 4 has two pointers, both to cell 3 (SORU-SPEC §3.1).
    assert skip_list.pointer_count(4) == 2
    assert Inbox.decode(inbox.encode()) == inbox
    # Octez ``versioned_encoding``: tag 0, int32 level, then the cell (n index, 32-byte
    # witness hash, int32 level, 4-byte size, pointers).
    assert inbox.encode() == (
        b"\x00\x00\x00\x00\x05\x04"
        + WitnessHash.of_b58(VECTOR_WITNESS)
        + b"\x00\x00\x00\x05\x00\x00\x00\x40"
        + back
        + back
    )


def test_hash_kinds_print_with_their_prefixes() -> None:
    for cls, prefix in ((InboxHash, "srib1"), (WitnessHash, "srib2"), (MessageHash, "srib3")):
        for raw in (bytes(32), b"\xff" * 32):
            text = cls(raw).to_b58()
            assert text.startswith(prefix) and len(text) == 55
            assert cls.of_b58(text) == raw
    with pytest.raises(base58.WrongKind):
        InboxHash.of_b58(VECTOR_WITNESS)


# --- hashing as SORU-SPEC §3.1 states it -----------------------------------------------------


def blake2b(*parts: bytes) -> bytes:
    return hashlib.blake2b(b"".join(parts), digest_size=32).digest()


payload_lists = st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=40)


@given(payload_lists)
def test_witness_hash_is_blake2b_of_message_hash_and_pointers(payloads: list[bytes]) -> None:
    cells = ib.build_witness(payloads)
    hashes: list[bytes] = []
    for index, payload in enumerate(payloads):
        pointers = []
        position = 0
        while 4**position <= index:
            pointers.append(hashes[index - index % 4**position - 1])
            position += 1
        hashes.append(blake2b(blake2b(payload), *pointers))
        assert cells[index].content == blake2b(payload) == ib.hash_message(payload)
    assert ib.hash_witness_cell(cells[-1]) == hashes[-1]


@given(st.integers(0, 2**31 - 1), st.binary(min_size=32, max_size=32))
def test_history_hash_uses_the_level_as_decimal_text(level: int, witness: bytes) -> None:
    pointers = (InboxHash(blake2b(b"a")), InboxHash(blake2b(b"b")))
    cell = Cell(5, LevelProof(WitnessHash(witness), level), pointers)
    expected = blake2b(witness, str(level).encode(), *pointers)
    assert ib.hash_history_cell(cell) == expected
    assert ib.hash_history_cell(cell) != blake2b(witness, level.to_bytes(4, "big"), *pointers)


# --- levels and genesis ----------------------------------------------------------------------


def test_genesis_inbox() -> None:
    parameters = GenesisParameters(
        level=7, predecessor_timestamp=1234, predecessor=b"\x01" * 32, protocol="oxford_018"
    )
    inbox = ib.genesis(parameters)
    assert inbox.level == 7
    cell = inbox.snapshot()
    assert cell.index == 0 and cell.back_pointers == () and cell.content.level == 7
    payloads = [
        START_OF_LEVEL,
        InfoPerLevel(1234, b"\x01" * 32).encode(),
        ProtocolMigration("oxford_018").encode(),
        END_OF_LEVEL,
    ]
    assert parameters.payloads() == tuple(payloads)
    assert cell.content.witness_hash == ib.hash_witness_cell(ib.build_witness(payloads)[-1])
    sandbox = ib.genesis()
    assert sandbox.level == ib.SANDBOX_GENESIS.level == 0
    assert ib.SANDBOX_GENESIS.protocol == ib.DEFAULT_PROTOCOL == "alpha_current"
    assert sandbox.hash() != inbox.hash()


levels_strategy = st.lists(
    st.lists(st.binary(min_size=0, max_size=40), max_size=20), min_size=1, max_size=12
)


def external(data: bytes) -> bytes:
    return External(data).encode()


World = tuple[InboxHistory, Inbox, list[HistoryCell]]


def build(levels: list[list[bytes]]) -> World:
    history, inbox = InboxHistory.from_genesis()
    snapshots = []
    for number, messages in enumerate(levels):
        inbox = history.add_level(
            inbox,
            predecessor_timestamp=1_600_000_000 + number,
            predecessor=blake2b(number.to_bytes(4, "big")),
            messages=[external(m) for m in messages],
            protocol_migration="alpha_current" if number == 0 else None,
        )
        snapshots.append(inbox.snapshot())
    return history, inbox, snapshots


@settings(max_examples=40, deadline=None)
@given(levels_strategy)
def test_levels_built_step_by_step_equal_add_all_messages(levels: list[list[bytes]]) -> None:
    _, inbox, _ = build(levels)
    step = ib.genesis()
    for number, messages in enumerate(levels):
        witness = ib.init_witness()
        witness = ib.add_info_per_level(
            witness, 1_600_000_000 + number, blake2b(number.to_bytes(4, "big"))
        )
        if number == 0:
            witness = ib.add_message(witness, ProtocolMigration("alpha_current").encode())
        for message in messages:
            witness = ib.add_message(witness, external(message))
        step, last = ib.finalize_level(step, witness)
        assert last.index == len(messages) + 2 + (1 if number == 0 else 0)
    assert step == inbox
    # History independence: another history with the same levels, same hashes.
    _, again, _ = build(levels)
    assert again.hash() == inbox.hash()
    assert Inbox.decode(inbox.encode()) == inbox


def test_each_message_changes_the_inbox_hash() -> None:
    levels = [[b"a", b"b"], [b"c"], []]
    _, inbox, _ = build(levels)
    for i, level in enumerate(levels):
        for j in range(len(level)):
            changed = [list(lv) for lv in levels]
            changed[i][j] += b"!"
            assert build(changed)[1].hash() != inbox.hash()
    assert build([[b"a", b"b"], [b"c"], [], []])[1].hash() != inbox.hash()
    assert build([[b"b", b"a"], [b"c"], []])[1].hash() != inbox.hash()


def test_archive_links_each_level_to_the_previous() -> None:
    history, inbox, snapshots = build([[b"x"]] * 20)
    assert inbox.level == 20
    for level, cell in enumerate(snapshots, start=1):
        assert cell.index == level and cell.content.level == level
        for position, pointer in enumerate(cell.back_pointers):
            found = history.find_cell(pointer)
            assert found is not None
            assert found.index == skip_list.pointed_index(cell.index, position)
        stored = history.find_level(level)
        assert stored is not None and stored.witness_hash == cell.content.witness_hash
        assert stored.payloads[2] == external(b"x") or level == 1


def test_message_limits() -> None:
    witness = ib.init_witness()
    near_full = Cell(ib.MAX_MESSAGES_PER_LEVEL, witness.content, witness.back_pointers)
    near_full = replace(near_full, back_pointers=(Hash(bytes(32)),) * 10)
    assert ib.add_message(near_full, external(b"ok")).index == ib.MAX_MESSAGES_PER_LEVEL + 1
    full = replace(near_full, index=ib.MAX_MESSAGES_PER_LEVEL + 1)
    with pytest.raises(ib.MessageLimitReached):
        ib.add_message(full, external(b"too many"))
    ib.add_payload(full, END_OF_LEVEL)  # the protocol's own messages are not counted
    with pytest.raises(MessageTooLarge):
        ib.add_message(witness, b"\x01" + bytes(4096))
    with pytest.raises(InboxError):
        ib.build_witness([])


def test_remember_refuses_a_level_of_another_inbox() -> None:
    history, inbox, _ = build([[b"a"]])
    other = ib.genesis_level(GenesisParameters(level=0, protocol="other"))
    with pytest.raises(InboxError):
        history.remember(inbox, other)


# --- proofs: every message of random inboxes --------------------------------------------------


def expected_input(
    levels: list[list[bytes]], history: InboxHistory, snapshot_level: int, level: int, index: int
) -> InputMessage | None:
    stored = history.find_level(level)
    assert stored is not None
    if index < len(stored.payloads):
        return InputMessage(level, index, stored.payloads[index])
    if level == snapshot_level:
        return None
    return InputMessage(level + 1, 0, START_OF_LEVEL)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(levels_strategy, st.data())
def test_every_message_of_random_inboxes_is_proven(
    levels: list[list[bytes]], data: st.DataObject
) -> None:
    history, inbox, snapshots = build(levels)
    snapshot_level = data.draw(st.integers(1, len(levels)))
    snapshot = snapshots[snapshot_level - 1]
    for level in range(1, snapshot_level + 1):
        stored = history.find_level(level)
        assert stored is not None
        # The level's messages: SOL, IPL, migration at level 1, the externals, EOL.
        assert stored.payloads[0] == START_OF_LEVEL and stored.payloads[-1] == END_OF_LEVEL
        assert [p for p in stored.payloads if p[:1] == b"\x01"] == [
            external(m) for m in levels[level - 1]
        ]
        for index in range(len(stored.payloads) + 1):
            proof, produced = history.produce_proof(snapshot, level, index)
            expected = expected_input(levels, history, snapshot_level, level, index)
            assert produced == expected
            decoded = InboxProof.decode(proof.encode())
            assert decoded == proof
            assert ibp.verify_proof(snapshot, level, index, decoded) == expected
            if index > 0:
                request = InputRequest("first_after", level, index - 1)
                input_proof, message = history.produce_input_proof(
                    snapshot, request, origination_level=0
                )
                assert message == expected
                assert isinstance(input_proof, InboxInputProof)
                again = InboxInputProof.decode(input_proof.encode())
                assert again == input_proof
                assert ibp.verify_input(snapshot, request, again, origination_level=0) == expected
    # A level beyond the snapshot cannot be proven against it.
    if snapshot_level < len(levels):
        with pytest.raises(MissingHistory):
            history.produce_proof(snapshot, snapshot_level + 1, 0)


def test_no_more_messages_and_the_next_start_of_level() -> None:
    history, inbox, snapshots = build([[b"a", b"b"], [], [b"c"]])
    snapshot = inbox.snapshot()
    # Level 1 has SOL, IPL, migration, a, b, EOL: indices 0..5.
    proof, message = history.produce_proof(snapshot, 1, 6)
    assert message == InputMessage(2, 0, START_OF_LEVEL)
    assert proof.payload is None and len(proof.message_proof) == 1
    assert ibp.verify_proof(snapshot, 1, 6, proof) == message
    # The snapshot's own level: no more input at all.
    proof, message = history.produce_proof(snapshot, 3, 4)  # SOL, IPL, c, EOL
    assert message is None
    assert ibp.verify_proof(snapshot, 3, 4, proof) is None
    # Against an older snapshot, its last level is exhausted the same way.
    proof, message = history.produce_proof(snapshots[1], 2, 3)
    assert message is None and ibp.verify_proof(snapshots[1], 2, 3, proof) is None
    with pytest.raises(InboxError):
        history.produce_proof(snapshot, 1, 7)
    with pytest.raises(InboxError):
        history.produce_proof(snapshot, 1, -1)


def test_first_inbox_message_and_input_pairing() -> None:
    history, inbox, _ = build([[b"a"], [b"b"]])
    snapshot = inbox.snapshot()
    initial = InputRequest("initial")
    proof, message = history.produce_input_proof(snapshot, initial, origination_level=1)
    assert proof == FirstInboxMessage()
    assert message == InputMessage(2, 0, START_OF_LEVEL)
    assert ibp.verify_input(snapshot, initial, proof, origination_level=1) == message
    after = InputRequest("first_after", 2, 1)
    inbox_proof, message = history.produce_input_proof(snapshot, after, origination_level=1)
    assert message == InputMessage(2, 2, external(b"b"))
    assert ibp.verify_input(snapshot, after, inbox_proof, origination_level=1) == message
    with pytest.raises(InboxProofError):
        ibp.verify_input(snapshot, initial, inbox_proof, origination_level=1)
    with pytest.raises(InboxProofError):
        ibp.verify_input(snapshot, after, FirstInboxMessage(), origination_level=1)
    for other in (InputRequest("first_after", 2, 0), InputRequest("first_after", 1, 1)):
        with pytest.raises(InboxProofError):
            ibp.verify_input(snapshot, other, inbox_proof, origination_level=1)
    for kind in (InputRequest("none"), InputRequest("reveal", reveal=b"\x00" * 33)):
        with pytest.raises(InboxProofError):
            ibp.verify_input(snapshot, kind, inbox_proof, origination_level=1)
        with pytest.raises(InboxError):
            history.produce_input_proof(snapshot, kind, origination_level=1)


def test_cut_at_level() -> None:
    def cut(level: int) -> InputMessage | None:
        message = InputMessage(level, 0, START_OF_LEVEL)
        return ibp.cut_at_level(message, origination_level=10, commit_inbox_level=20)

    assert cut(10) is None and cut(9) is None and cut(21) is None
    assert cut(11) is not None and cut(20) is not None
    assert ibp.cut_at_level(None, origination_level=10, commit_inbox_level=20) is None


def test_a_long_history() -> None:
    """1100 levels: history cells with up to 6 pointers, paths of a few cells."""
    history, inbox = InboxHistory.from_genesis()
    for number in range(1100):
        inbox = history.add_level(
            inbox, predecessor_timestamp=number, predecessor=bytes(32), messages=[]
        )
    snapshot = inbox.snapshot()
    assert len(snapshot.back_pointers) == skip_list.pointer_count(1100) == 6
    for level in (1, 2, 3, 64, 255, 256, 257, 700, 1099, 1100):
        for index in (0, 2, 3):
            proof, message = history.produce_proof(snapshot, level, index)
            assert len(proof.inclusion_proof) <= 4 * 6
            data = proof.encode()
            assert ibp.verify_proof(snapshot, level, index, InboxProof.decode(data)) == message


# --- proofs: every alteration is rejected ----------------------------------------------------


@pytest.fixture(scope="module")
def world() -> World:
    levels = [[bytes([n, i]) * (i % 5) for i in range(n % 23)] for n in range(40)]
    return build(levels)


def produce(world, level: int, index: int) -> tuple[InboxProof, InputMessage | None]:
    history, inbox, _ = world
    return history.produce_proof(inbox.snapshot(), level, index)


def rejected(snapshot: HistoryCell, level: int, index: int, data: bytes) -> bool:
    try:
        ibp.verify_proof(snapshot, level, index, InboxProof.decode(data))
    except InboxProofError:
        return True
    return False


@pytest.mark.parametrize(
    ("level", "index"), [(3, 2), (17, 11), (40, 19), (12, 14), (24, 0), (1, 2)]
)
def test_every_bit_flip_is_rejected(world: World, level: int, index: int) -> None:
    history, inbox, _ = world
    snapshot = inbox.snapshot()
    proof, message = produce(world, level, index)
    data = proof.encode()
    assert ibp.verify_proof(snapshot, level, index, InboxProof.decode(data)) == message
    for position in range(len(data)):
        for bit in range(8):
            altered = bytearray(data)
            altered[position] ^= 1 << bit
            assert rejected(snapshot, level, index, bytes(altered)), (position, bit)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_wrong_level_counter_payload_or_snapshot_is_rejected(
    world: World, data: st.DataObject
) -> None:
    history, inbox, snapshots = world
    snapshot = inbox.snapshot()
    level = data.draw(st.integers(1, 40))
    stored = history.find_level(level)
    assert stored is not None
    last = len(stored.payloads) - 1
    index = data.draw(st.integers(0, last + 1))
    proof, message = history.produce_proof(snapshot, level, index)
    assert ibp.verify_proof(snapshot, level, index, proof) == message

    def fails(snap: HistoryCell, lv: int, ix: int, pr: InboxProof) -> None:
        with pytest.raises(InboxProofError):
            ibp.verify_proof(snap, lv, ix, pr)

    for other_level in {level - 1, level + 1, 0, 41}:
        fails(snapshot, other_level, index, proof)
    for other_index in {index - 1, index + 1, index + 2, last + 2} - {-1}:
        fails(snapshot, level, other_index, proof)
    if proof.payload is not None:
        fails(snapshot, level, index, replace(proof, payload=proof.payload + b"\x00"))
        fails(snapshot, level, index, replace(proof, payload=None))
        other_payload = stored.payloads[(index + 1) % len(stored.payloads)]
        if other_payload != proof.payload:
            fails(snapshot, level, index, replace(proof, payload=other_payload))
    else:
        fails(snapshot, level, index, replace(proof, payload=b"\x01"))
    # Another snapshot: an older one of the same inbox, or one of another inbox.
    older = snapshots[data.draw(st.integers(level - 1, 38))] if level < 40 else snapshots[0]
    if older != snapshot:
        fails(older, level, index, proof)
    _, foreign, _ = build([[b"foreign"]] * 3)
    fails(foreign.snapshot(), level, index, proof)
    # Paths cut short, emptied, or stitched from two proofs (Octez's negative test).
    fails(snapshot, level, index, replace(proof, inclusion_proof=proof.inclusion_proof[:-1]))
    fails(snapshot, level, index, replace(proof, inclusion_proof=()))
    fails(snapshot, level, index, replace(proof, message_proof=()))
    if len(proof.message_proof) > 1:
        fails(snapshot, level, index, replace(proof, message_proof=proof.message_proof[:-1]))
    other_level = level % 40 + 1
    other, _ = history.produce_proof(snapshot, other_level, 1)
    fails(snapshot, level, index, replace(proof, message_proof=other.message_proof))
    fails(snapshot, other_level, 1, replace(other, message_proof=proof.message_proof))


def test_octez_accepts_a_proof_of_another_level_soru_does_not(world: World) -> None:
    """Octez's ``verify_proof (l, n)`` never compares the level of the history cell it
    reaches with ``l``: a valid proof of message n of level 5 would be returned as message n
    of level 6."""
    history, inbox, _ = world
    snapshot = inbox.snapshot()
    proof, message = history.produce_proof(snapshot, 5, 2)
    assert message is not None and message.level == 5
    with pytest.raises(InboxProofError, match="reaches level 5"):
        ibp.verify_proof(snapshot, 6, 2, proof)


def test_octez_accepts_a_rewritten_last_index_soru_does_not(world: World) -> None:
    """Cell hashes do not cover indices. Rewriting the last witness cell's index from 7 to 4
    (same hash, same number of pointers) satisfies every check of Octez's
    ``verify_payloads_proof`` for "no message 5 in this level": the path is that one cell,
    its hash is the level's witness, no payload is given, 5 = 4 + 1. The PVM would skip
    messages 5 to 7. soru certifies the index from the pointers below the cell."""
    history, inbox, _ = world
    snapshot = inbox.snapshot()
    level = 6  # SOL, IPL, 5 externals, EOL: indices 0..7
    stored = history.find_level(level)
    assert stored is not None and len(stored.payloads) == 8
    proof, message = history.produce_proof(snapshot, level, 5)
    assert message == InputMessage(level, 5, stored.payloads[5])
    head = stored.witness[-1]
    forged_head = replace(head, index=4)
    assert ib.hash_witness_cell(forged_head) == stored.witness_hash
    assert skip_list.pointer_count(4) == skip_list.pointer_count(7)
    forged = InboxProof(proof.inclusion_proof, (forged_head,), None, proof.index_certificate)
    with pytest.raises(InboxProofError):
        ibp.verify_proof(snapshot, level, 5, forged)
    honest_end, _ = history.produce_proof(snapshot, level, 8)
    for fake in range(0, 20):
        if fake != 7:
            lying = replace(honest_end, message_proof=(replace(head, index=fake),))
            with pytest.raises(InboxProofError):
                ibp.verify_proof(snapshot, level, fake + 1, lying)
    # Any certificate cell claiming a wrong index, or a missing or extra cell, fails too.
    for i, cell in enumerate(honest_end.index_certificate):
        certificate = list(honest_end.index_certificate)
        certificate[i] = replace(cell, index=cell.index + 1)
        with pytest.raises(InboxProofError):
            ibp.verify_proof(
                snapshot, level, 8, replace(honest_end, index_certificate=tuple(certificate))
            )
        del certificate[i]
        with pytest.raises(InboxProofError):
            ibp.verify_proof(
                snapshot, level, 8, replace(honest_end, index_certificate=tuple(certificate))
            )
    extra = (*honest_end.index_certificate, stored.witness[0])
    with pytest.raises(InboxProofError):
        ibp.verify_proof(snapshot, level, 8, replace(honest_end, index_certificate=extra))


def test_claimed_indices_of_the_inclusion_proof_must_be_true(world: World) -> None:
    history, inbox, _ = world
    snapshot = inbox.snapshot()
    proof, _ = history.produce_proof(snapshot, 3, 1)
    for i, cell in enumerate(proof.inclusion_proof):
        for fake in (cell.index - 1, cell.index + 1):
            cells = list(proof.inclusion_proof)
            cells[i] = replace(cell, index=fake)
            with pytest.raises(InboxProofError):
                ibp.verify_proof(snapshot, 3, 1, replace(proof, inclusion_proof=tuple(cells)))


# --- the encoding ----------------------------------------------------------------------------


def test_encoding_is_octez_proof_encoding_plus_a_certificate(world: World) -> None:
    proof, _ = produce(world, 17, 4)
    data = proof.encode()
    assert data[0] == ib.PROOF_VERSION
    octez = proof.encode_octez()
    assert data[1 : 1 + len(octez)] == octez
    history_size = int.from_bytes(octez[:4], "big")
    cells = octez[4 : 4 + history_size]
    first = proof.inclusion_proof[0]
    # First history cell: n index, witness hash, int32 level, u32 size, pointers.
    assert cells.startswith(bytes([first.index]) + first.content.witness_hash)
    payload = proof.payload
    assert payload is not None
    assert octez.endswith(b"\xff" + len(payload).to_bytes(4, "big") + payload)
    certificate_size = int.from_bytes(data[1 + len(octez) : 5 + len(octez)], "big")
    assert len(data) == 5 + len(octez) + certificate_size


def test_decoding_is_strict(world: World) -> None:
    proof, _ = produce(world, 17, 4)
    data = proof.encode()
    bad = [
        data + b"\x00",  # trailing byte
        data[:-1],  # truncated
        b"\x02" + data[1:],  # unknown version
        b"",
    ]
    octez = proof.encode_octez()
    tag_at = 1 + len(octez) - 4 - len(proof.payload or b"") - 1
    assert data[tag_at] == 0xFF
    bad.append(data[:tag_at] + b"\x07" + data[tag_at + 1 :])  # unknown payload tag
    big_payload = replace(proof, payload=b"\x01" * 4097)
    bad.append(big_payload.encode())  # payload over 4096 bytes
    long_path = replace(proof, message_proof=proof.message_proof * 20)
    bad.append(long_path.encode())  # more than 64 cells
    bad.append(bytes(ib.MAX_PROOF_SIZE + 1))  # oversized
    for data in bad:
        with pytest.raises(MalformedInboxProof):
            InboxProof.decode(data)
    assert issubclass(MalformedInboxProof, InboxProofError)


def test_input_proof_encoding(world: World) -> None:
    proof, _ = produce(world, 17, 4)
    input_proof = InboxInputProof(17, 3, proof)
    data = input_proof.encode()
    assert data[:5] == b"\x00\x00\x00\x11\x03"
    assert InboxInputProof.decode(data) == input_proof
    for bad in (data + b"\x00", data[:-1], b"\x80\x00\x00\x00" + data[4:]):
        with pytest.raises(MalformedInboxProof):
            InboxInputProof.decode(bad)


def test_level_proof_encoding() -> None:
    proof = LevelProof(WitnessHash(bytes(range(32))), 300)
    assert proof.encode() == bytes(range(32)) + b"\x00\x00\x01\x2c"
    assert LevelProof.decode(proof.encode()) == proof
    with pytest.raises(DecodeError):
        LevelProof.decode(bytes(32) + b"\x80\x00\x00\x00")
