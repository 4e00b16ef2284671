"""Origination (SORU-SPEC §1.5, §1.6, §2.1, §2.3): rollup addresses against an independent
computation and real Octez derivations, the parameters-type rules constructor by constructor
(allowed, forbidden, nested, annotations, arities, size), every origination error, and the
genesis of Octez's echo kernel.

**Address vectors.** No published pair (operation hash → ``sr1…``) was found: Octez's tezt
expected outputs mask both hashes (``[OPERATION_HASH]``, ``[SMART_ROLLUP_HASH]``). Originated
contracts hash the very same origination nonce with the same Blake2b-160
(``Contract_repr.originated_contract`` and ``Sc_rollup_storage.new_address`` both hash
``Origination_nonce.encoding``), so real ``KT1…`` derivations pin the rollup derivation down
to the byte; the ``sr1…`` text is then the same 20 bytes under the rollup prefix:

* Octez's liquidity-baking migration (``src/proto_alpha/lib_protocol/
  liquidity_baking_migration.ml``) originates the CPMM then the LQT token from the nonce
  ``Operation_hash.hash_string ["Drip, drip, drip."]``; their mainnet addresses
  ``KT1TxqZ8QtKvLu3V3JH7Gx58n7Co8pgtpQU5`` (index 0) and ``KT1AafHA1C1vk959wvHWBispY9Y2f3fxBUUo``
  (index 1) are asserted in ``src/proto_alpha/lib_protocol/test/integration/
  test_liquidity_baking.ml`` (and the first, "extracted from TzKT", in
  ``test/unit/test_destination_repr.ml``), tezos/tezos-mirror snapshot ``d26a8bef82``.
* The Etherlink MIR interpreter's test ``contract_address_computation``
  (``etherlink/kernel_latest/mir/src/interpreter.rs``, same snapshot): operation
  ``onvsLP3JFZia2mzZKWaFuFkWg2L5p3BDUhzh5Kr6CiDDN3rtQ1D``, index 0 →
  ``KT1UvfyLytrt71jh63YV4Yex5SmbNXpWHxtg``.
"""

from __future__ import annotations

import hashlib
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from soru.base.hashes import ZERO
from soru.crypto import base58
from soru.crypto.addresses import ContractHash, Curve, PublicKeyHash, RollupAddress
from soru.encoding.micheline import Bytes, Int, Node, Prim, Seq, String
from soru.encoding.michelson_text import parse_expression
from soru.protocol.commitment import genesis_commitment
from soru.protocol.constants import InvalidConstants
from soru.protocol.errors import ProtocolError
from soru.protocol.origination import (
    MAX_BOOT_SECTOR_SIZE,
    MAX_WHITELIST_SIZE,
    DuplicatedKeyInWhitelist,
    EmptyKernel,
    EmptyWhitelist,
    InvalidOriginationNonce,
    KernelTooLarge,
    Origination,
    PvmKind,
    UnsupportedPvmKind,
    WhitelistTooLarge,
    check_origination,
    genesis,
    rollup_address,
)
from soru.protocol.parameters_type import (
    MAX_TYPE_SIZE,
    InvalidParametersType,
    check_parameters_type,
)
from soru.pvm import driver, layout

ECHO = Path(__file__).resolve().parents[4] / "shared" / "testdata" / "kernels" / "echo.wasm"
TICKS = 11_000_000_000
VERSION = "2.0.0-r3"
KERNEL = b"\x00asm\x01\x00\x00\x00"
STRING = parse_expression("string")


def _key(n: int) -> PublicKeyHash:
    return PublicKeyHash(Curve.ED25519, hashlib.blake2b(b"key %d" % n, digest_size=20).digest())


def _origination(**changes) -> Origination:
    fields = {"kind": PvmKind.WASM_2_0_0, "kernel": KERNEL, "parameters_type": STRING}
    fields.update(changes)
    return Origination(**fields)


# --- addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1, 7, 255, 256, 2**31 - 1])
def test_address_is_blake2b_160_of_the_nonce(index: int) -> None:
    operation = hashlib.sha256(b"an operation").digest()
    expected = hashlib.blake2b(operation + index.to_bytes(4, "big"), digest_size=20).digest()
    assert rollup_address(operation, index) == RollupAddress(expected)


DRIP = hashlib.blake2b(b"Drip, drip, drip.", digest_size=32).digest()
MIR = base58.decode_as(
    base58.Kind.OPERATION_HASH, "onvsLP3JFZia2mzZKWaFuFkWg2L5p3BDUhzh5Kr6CiDDN3rtQ1D"
)


@pytest.mark.parametrize(
    ("operation", "index", "contract", "rollup"),
    [
        (DRIP, 0, "KT1TxqZ8QtKvLu3V3JH7Gx58n7Co8pgtpQU5", "sr1RRQuP61T2e67fND7tJRrENksvBnz7Z7Bg"),
        (DRIP, 1, "KT1AafHA1C1vk959wvHWBispY9Y2f3fxBUUo", "sr183EdQgK933L9LGq8HDCev8oD9i24jgbTd"),
        (MIR, 0, "KT1UvfyLytrt71jh63YV4Yex5SmbNXpWHxtg", "sr1SPFKbf1yzQCosQxPG62S3g6SiRW8RmjGB"),
    ],
)
def test_address_vectors_from_octez(operation: bytes, index: int, contract: str, rollup: str):
    address = rollup_address(operation, index)
    assert address.digest == ContractHash.of_b58(contract).digest
    assert address.to_b58() == rollup
    assert RollupAddress.of_b58(rollup) == address


@pytest.mark.parametrize(
    ("operation", "index"),
    [(bytes(31), 0), (bytes(33), 0), (b"", 0), (bytes(32), -1), (bytes(32), 2**31)],
)
def test_address_of_a_bad_nonce(operation: bytes, index: int) -> None:
    with pytest.raises(InvalidOriginationNonce):
        rollup_address(operation, index)


# --- PVM kinds ---------------------------------------------------------------------------


def test_pvm_kinds() -> None:
    assert [(int(kind), str(kind)) for kind in PvmKind] == [
        (0, "arith"),
        (1, "wasm_2_0_0"),
        (2, "riscv"),
    ]
    assert PvmKind.of_text("wasm_2_0_0") is PvmKind.WASM_2_0_0
    with pytest.raises(ValueError):
        PvmKind.of_text("WASM_2_0_0")


# --- parameters types --------------------------------------------------------------------

ALLOWED_LEAVES = (
    "unit int nat signature string bytes key_hash key timestamp address bls12_381_g1 "
    "bls12_381_g2 bls12_381_fr bool never chain_id"
).split()

ACCEPTED = [
    *ALLOWED_LEAVES,
    # contract: its argument need only be passable
    "contract unit",
    "contract (ticket nat)",
    "contract mutez",
    "contract (big_map nat (ticket nat))",
    "contract (lambda operation unit)",
    "contract (sapling_state 8)",
    "contract (sapling_transaction 65535)",
    "contract (or (nat %a) (unit %b))",
    "contract (contract nat)",
    "contract (set mutez)",
    # collections of allowed types
    "ticket string",
    "ticket (pair nat (option (or address bytes)))",
    "set nat",
    "set (or int (pair string key_hash))",
    "option nat",
    "option (ticket unit)",
    "option (option never)",
    "list (ticket nat)",
    "list (list bytes)",
    "map string nat",
    "map (pair nat string) (ticket bytes)",
    "map nat (contract unit)",
    "map chain_id (map nat (list bls12_381_g1))",
    # pairs, right combs, ors
    "pair nat string",
    "pair nat string bytes",
    "pair nat int string bytes unit",
    "pair (pair nat int) (pair string bytes)",
    "or nat string",
    "(or (pair nat (ticket string)) (unit))",
    "or (or nat int) (or string (list (set nat)))",
    # annotations: type annotations anywhere, field names where they are not entrypoints
    "nat :t",
    "nat :",
    "pair (nat %a) (string %b)",
    "pair (nat %a :t) string",
    "pair (nat :t %a) string",
    "pair nat (string %b) (bytes %c)",
    "pair (nat %a) (pair %b int string)",
    "or (pair (nat %a) int) unit",
    "pair (or (nat %a) (unit %b)) int",
    "option (or (nat %a) (unit %b))",
    "list (pair (nat %x.y) (nat %_0@%))",
    "map (pair (nat %k) string) (or (nat %l) (unit %r))",
    "or (nat :a) (unit :b)",
    # an entrypoint name longer than 31 characters is no entrypoint: dropped (Octez quirk)
    "nat %" + "a" * 32,
    "or (nat %" + "a" * 32 + ") unit",
]


@pytest.mark.parametrize("text", ACCEPTED)
def test_accepted_parameters_types(text: str) -> None:
    check_parameters_type(parse_expression(text))


FORBIDDEN = [
    "mutez",
    "big_map nat nat",
    "sapling_state 8",
    "sapling_transaction 8",
    "operation",
    "chest",
    "chest_key",
    "lambda unit unit",
]

# (type, its offending node)
REJECTED = [
    *((text, text) for text in FORBIDDEN),
    # forbidden constructors nested anywhere but under contract
    ("option mutez", "mutez"),
    ("list operation", "operation"),
    ("pair nat mutez", "mutez"),
    ("pair nat nat (big_map nat nat)", "big_map nat nat"),
    ("or unit (lambda unit unit)", "lambda unit unit"),
    ("or (or unit (option chest)) unit", "chest"),
    ("map nat mutez", "mutez"),
    ("map mutez nat", "mutez"),
    ("map nat (big_map nat nat)", "big_map nat nat"),
    ("set mutez", "mutez"),
    ("ticket mutez", "mutez"),
    ("ticket (pair nat mutez)", "mutez"),
    ("pair nat (option (list chest_key))", "chest_key"),
    ("list (sapling_state 8)", "sapling_state 8"),
    ("option (sapling_transaction 8)", "sapling_transaction 8"),
    # not passable even under contract
    ("contract operation", "operation"),
    ("contract (pair nat operation)", "operation"),
    # deprecated constructors
    ("sapling_transaction_deprecated 8", "sapling_transaction_deprecated 8"),
    ("tx_rollup_l2_address", "tx_rollup_l2_address"),
    ("contract (sapling_transaction_deprecated 8)", "sapling_transaction_deprecated 8"),
    # comparable arguments
    ("set (list nat)", "list nat"),
    ("set bls12_381_fr", "bls12_381_fr"),
    ("set (contract unit)", "contract unit"),
    ("set (pair nat (set nat))", "set nat"),
    ("ticket (ticket nat)", "ticket nat"),
    ("ticket (option (list nat))", "list nat"),
    ("map (list nat) nat", "list nat"),
    ("map (or nat chest) nat", "chest"),
    ("contract (big_map (list nat) nat)", "list nat"),
    # where some types may not be
    ("contract (big_map nat (contract unit))", "contract unit"),
    ("contract (big_map nat (big_map nat nat))", "big_map nat nat"),
    # arities
    ("nat nat", "nat nat"),
    ("unit unit", "unit unit"),
    ("pair nat", "pair nat"),
    ("pair", "pair"),
    ("or nat", "or nat"),
    ("or nat int string", "or nat int string"),
    ("option", "option"),
    ("option nat int", "option nat int"),
    ("list nat int", "list nat int"),
    ("map nat", "map nat"),
    ("ticket", "ticket"),
    ("contract", "contract"),
    ("contract (lambda unit)", "lambda unit"),
    ("contract (sapling_state)", "sapling_state"),
    ('contract (sapling_state "8")', 'sapling_state "8"'),
    ("contract (sapling_state 65536)", "sapling_state 65536"),
    ("contract (sapling_state -1)", "sapling_state -1"),
    ("contract (sapling_state nat)", "sapling_state nat"),
    # not types
    ("Unit", "Unit"),
    ("Pair nat nat", "Pair nat nat"),
    ("parameter nat", "parameter nat"),
    ("DROP", "DROP"),
    ("pair nat 1", "1"),
    ('option "nat"', '"nat"'),
    ("list { nat }", "{ nat }"),
    ("list 0x00", "0x00"),
    # entrypoints: a field annotation on the root or on the or-tree from the root
    ("nat %a", "nat %a"),
    ("pair %p nat nat", "pair %p nat nat"),
    ("or %r nat unit", "or %r nat unit"),
    ("or (nat %a) unit", "nat %a"),
    ("or nat (unit %default)", "unit %default"),
    ("or (or (nat %a) int) unit", "nat %a"),
    ("or (or nat int) (or unit (string %s))", "string %s"),
    ("or (pair %p nat int) unit", "pair %p nat int"),
    ("or (nat :t %a) unit", "nat :t %a"),
    ("nat %" + "a" * 31, "nat %" + "a" * 31),
    # field annotations where no field is named
    ("option (nat %a)", "nat %a"),
    ("list (nat %a)", "nat %a"),
    ("set (nat %a)", "nat %a"),
    ("ticket (nat %a)", "nat %a"),
    ("map (nat %k) nat", "nat %k"),
    ("map nat (nat %v)", "nat %v"),
    ("contract (nat %a)", "nat %a"),
    ("pair (nat %a %b) nat", "nat %a %b"),
    ("pair (nat %) nat", "nat %"),
    ("nat %", "nat %"),
    # other annotations
    ("nat @v", "nat @v"),
    ("pair (nat @v) nat", "nat @v"),
    ("nat :a :b", "nat :a :b"),
    ("pair (nat :a %f :b) nat", "nat :a %f :b"),
]


@pytest.mark.parametrize(("text", "offending"), REJECTED)
def test_rejected_parameters_types(text: str, offending: str) -> None:
    with pytest.raises(InvalidParametersType) as error:
        check_parameters_type(parse_expression(text))
    assert isinstance(error.value, ProtocolError)
    assert error.value.node == parse_expression(offending)
    assert error.value.reason in str(error.value)


@pytest.mark.parametrize(
    "annotation",
    ["$a", "&a", "!a", "?a", "%.a", ":@a", "@%a", "%@", ":" + "a" * 255, "", "%a-b", "%a b"],
)
def test_malformed_annotations(annotation: str) -> None:
    node = Prim("pair", (Prim("nat", annots=(annotation,)), Prim("nat")))
    with pytest.raises(InvalidParametersType) as error:
        check_parameters_type(node)
    assert error.value.node == Prim("nat", annots=(annotation,))


@pytest.mark.parametrize("node", [Int(1), String("nat"), Bytes(b"\x00"), Seq((Prim("nat"),))])
def test_nodes_that_are_no_type(node: Node) -> None:
    with pytest.raises(InvalidParametersType) as error:
        check_parameters_type(node)
    assert error.value.node == node


def _nest(wrapper: str, depth: int, leaf: Node) -> Node:
    node = leaf
    for _ in range(depth):
        node = Prim(wrapper, (node,))
    return node


def test_type_size_limit() -> None:
    # 2000 options and a nat: 2001 nodes, as deep as a type may be, and accepted
    check_parameters_type(_nest("option", MAX_TYPE_SIZE - 1, Prim("nat")))
    with pytest.raises(InvalidParametersType, match="at most 2001"):
        check_parameters_type(_nest("option", MAX_TYPE_SIZE, Prim("nat")))
    # pair a1 … an counts as n leaves and n - 1 pairs
    check_parameters_type(Prim("pair", (Prim("nat"),) * 1001))
    with pytest.raises(InvalidParametersType, match="at most 2001"):
        check_parameters_type(Prim("pair", (Prim("nat"),) * 1002))
    # a contract's argument counts too
    check_parameters_type(Prim("contract", (_nest("option", MAX_TYPE_SIZE - 2, Prim("nat")),)))
    with pytest.raises(InvalidParametersType, match="at most 2001"):
        check_parameters_type(Prim("contract", (_nest("list", MAX_TYPE_SIZE - 1, Prim("nat")),)))


def test_deep_types_need_no_recursion() -> None:
    with pytest.raises(InvalidParametersType):
        check_parameters_type(_nest("list", 100_000, Prim("nat")))


# --- check_origination -------------------------------------------------------------------


def test_a_valid_public_and_private_origination() -> None:
    check_origination(_origination())
    check_origination(_origination(whitelist=(_key(0),)))
    check_origination(_origination(whitelist=tuple(_key(n) for n in range(MAX_WHITELIST_SIZE))))
    check_origination(_origination(kernel=bytes(MAX_BOOT_SECTOR_SIZE)))
    assert not _origination().is_private and _origination(whitelist=(_key(0),)).is_private


def test_origination_record() -> None:
    origination = Origination(1, bytearray(b"k"), STRING, [_key(1), _key(2)])  # type: ignore[arg-type]
    assert origination.kind is PvmKind.WASM_2_0_0
    assert type(origination.kernel) is bytes
    assert origination.whitelist == (_key(1), _key(2))
    with pytest.raises(FrozenInstanceError):
        origination.kernel = b""  # type: ignore[misc]
    with pytest.raises(ValueError):
        _origination(kind=3)
    assert MAX_WHITELIST_SIZE == 194


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"kind": PvmKind.ARITH}, UnsupportedPvmKind),
        ({"kind": PvmKind.RISCV}, UnsupportedPvmKind),
        ({"kernel": b""}, EmptyKernel),
        ({"kernel": bytes(MAX_BOOT_SECTOR_SIZE + 1)}, KernelTooLarge),
        ({"parameters_type": parse_expression("mutez")}, InvalidParametersType),
        ({"parameters_type": parse_expression("or (nat %a) unit")}, InvalidParametersType),
        ({"whitelist": ()}, EmptyWhitelist),
        ({"whitelist": tuple(_key(n) for n in range(MAX_WHITELIST_SIZE + 1))}, WhitelistTooLarge),
        ({"whitelist": (_key(0), _key(1), _key(0))}, DuplicatedKeyInWhitelist),
        ({"whitelist": (_key(0), _key(0))}, DuplicatedKeyInWhitelist),
    ],
)
def test_origination_errors(changes: dict, error: type[ProtocolError]) -> None:
    with pytest.raises(error):
        check_origination(_origination(**changes))
    assert issubclass(error, ProtocolError)


def test_origination_errors_come_in_order() -> None:
    everything_wrong = {"kernel": b"", "parameters_type": Prim("mutez"), "whitelist": ()}
    with pytest.raises(UnsupportedPvmKind):
        check_origination(_origination(kind=PvmKind.ARITH, **everything_wrong))
    with pytest.raises(EmptyKernel):
        check_origination(_origination(**everything_wrong))
    with pytest.raises(InvalidParametersType):
        check_origination(_origination(parameters_type=Prim("mutez"), whitelist=()))


# --- genesis -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def echo() -> bytes:
    if not ECHO.exists():
        pytest.fail(f"{ECHO} is missing (../shared/testdata)")
    return ECHO.read_bytes()


def test_genesis_of_the_echo_kernel(echo: bytes) -> None:
    origination = _origination(kernel=echo)
    state_hash, commitment = genesis(origination, 42, ticks_per_kernel_run=TICKS, version=VERSION)
    expected = layout.state_hash(
        driver.originate(echo, ticks_per_kernel_run=TICKS, version=VERSION)
    )
    assert state_hash == expected
    assert commitment == genesis_commitment(expected, 42)
    assert commitment.compressed_state == expected
    assert commitment.inbox_level == 42
    assert commitment.predecessor == ZERO
    assert commitment.number_of_ticks == 0
    again = genesis(origination, 42, ticks_per_kernel_run=TICKS, version=VERSION)
    assert again == (state_hash, commitment)
    assert again[1].hash() == commitment.hash()


def test_genesis_depends_on_kernel_version_ticks_and_level(echo: bytes) -> None:
    def run(kernel=echo, level=0, ticks=TICKS, version=VERSION):
        return genesis(
            _origination(kernel=kernel), level, ticks_per_kernel_run=ticks, version=version
        )

    base = run()
    assert run(kernel=echo + b"\x00")[0] != base[0]
    assert run(version="2.0.0")[0] != base[0]
    assert run(ticks=TICKS - 1)[0] != base[0]
    other_level = run(level=1)
    assert other_level[0] == base[0]
    assert other_level[1].hash() != base[1].hash()
    # the parameters type and the whitelist are not part of the PVM state
    private = genesis(
        _origination(kernel=echo, parameters_type=parse_expression("pair nat bytes"),
                     whitelist=(_key(3),)),
        0, ticks_per_kernel_run=TICKS, version=VERSION,
    )  # fmt: skip
    assert private == base


def test_genesis_checks_the_origination_and_the_network(echo: bytes) -> None:
    with pytest.raises(EmptyKernel):
        genesis(_origination(kernel=b""), 0, ticks_per_kernel_run=TICKS, version=VERSION)
    with pytest.raises(UnsupportedPvmKind):
        genesis(_origination(kind=PvmKind.ARITH), 0, ticks_per_kernel_run=TICKS, version=VERSION)
    with pytest.raises(InvalidConstants):
        genesis(_origination(kernel=echo), 0, ticks_per_kernel_run=TICKS, version="9.9.9")
    with pytest.raises(InvalidConstants):
        genesis(_origination(kernel=echo), 0, ticks_per_kernel_run=0, version=VERSION)
