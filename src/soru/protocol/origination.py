"""Originating a rollup (``../shared/SORU-SPEC.md`` §1.5, §1.6, §2.1, §2.3): what the
``smart_rollup_originate`` operation carries, when layer 1 accepts it, the address it gives
the new rollup and the rollup's genesis.

An :class:`Origination` names the PVM kind, the **boot sector** (the kernel, installed at
``/kernel/boot.wasm`` — often a small installer that reveals the real kernel, §6), the
Michelson **parameters type** of what contracts may send the rollup, and, for a private
rollup, the **whitelist** of the keys that may publish commitments. Layer 1 then:

1. checks it completely (:func:`check_origination`), changing nothing if it fails;
2. names the rollup (:func:`rollup_address`): Blake2b-160 of the **origination nonce**, the
   hash of the operation that carries the origination and the origination's index in it;
3. builds the genesis (:func:`genesis`): the PVM state with the boot sector installed, its
   state hash, and the **genesis commitment** over it at the origination level — the first
   last cemented commitment, which every later commitment extends.

These are pure rules; storing the rollup is the business of the context module. Errors are
:class:`~soru.protocol.errors.ProtocolError` subclasses named after the Octez errors (id in
each docstring); parameters-type errors are in :mod:`soru.protocol.parameters_type`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from soru.base.hashes import Hash
from soru.crypto.addresses import PUBLIC_KEY_HASH_SIZE, PublicKeyHash, RollupAddress
from soru.crypto.hashing import Tag, blake2b_160
from soru.encoding.micheline import Node
from soru.protocol.commitment import Commitment, genesis_commitment
from soru.protocol.constants import InvalidConstants
from soru.protocol.errors import ProtocolError
from soru.protocol.parameters_type import InvalidParametersType, check_parameters_type
from soru.pvm import constants as pvm_constants
from soru.pvm import driver, layout

__all__ = [
    "MAX_ORIGINATION_INDEX",
    "MAX_BOOT_SECTOR_SIZE",
    "MAX_WHITELIST_BYTES",
    "MAX_WHITELIST_SIZE",
    "OPERATION_HASH_SIZE",
    "DuplicatedKeyInWhitelist",
    "EmptyKernel",
    "EmptyWhitelist",
    "InvalidOriginationNonce",
    "InvalidParametersType",
    "KernelTooLarge",
    "Origination",
    "PvmKind",
    "UnsupportedPvmKind",
    "WhitelistTooLarge",
    "check_origination",
    "check_parameters_type",
    "check_whitelist",
    "genesis",
    "rollup_address",
]

OPERATION_HASH_SIZE = 32
MAX_ORIGINATION_INDEX = 2**31 - 1
"""The origination index is an ``int32`` (Octez ``Origination_nonce``); it starts at 0."""

MAX_BOOT_SECTOR_SIZE = 32 * 1024
"""Octez ``max_operation_data_length``: the largest binary layer-1 operation (the shell
refuses bigger ones, ``Oversized_operation``). Octez has no limit of its own on the boot
sector: it is bounded by the operation that carries it. A boot sector can therefore never
be larger than this, and soru checks exactly that here; the operation's other bytes (its
header, the parameters type, the whitelist, the signature) are counted where the whole
operation is checked, so the practical limit is lower (about 24 KiB, SORU-SPEC §6); bigger
kernels are originated as a small installer that reveals them."""

MAX_WHITELIST_BYTES = 4096 - 2
"""Octez ``Sc_rollup_whitelist_repr.encoding`` is ``check_size (4096 - 2)`` over the list of
21-byte keys, so that any whitelist fits a ``Whitelist_update`` outbox message."""

MAX_WHITELIST_SIZE = MAX_WHITELIST_BYTES // PUBLIC_KEY_HASH_SIZE
"""194 keys."""


class PvmKind(IntEnum):
    """The PVM a rollup runs; the value is its binary tag (Octez ``Sc_rollups.Kind``, a
    ``string_enum`` encoded on one byte). Only :attr:`WASM_2_0_0` is enabled in soru."""

    ARITH = 0
    WASM_2_0_0 = 1
    RISCV = 2

    def __str__(self) -> str:
        """The Octez name: ``arith``, ``wasm_2_0_0`` or ``riscv``."""
        return self.name.lower()

    @classmethod
    def of_text(cls, text: str) -> PvmKind:
        """Parse the Octez name (``ValueError`` if unknown)."""
        for kind in cls:
            if str(kind) == text:
                return kind
        raise ValueError(f"unknown PVM kind {text!r}")


# --- errors ------------------------------------------------------------------------------


class InvalidOriginationNonce(ProtocolError):
    """An operation hash that is not 32 bytes, or an origination index outside ``int32``
    (Octez ``Sc_rollup_address_generation``, id ``smart_rollup_address_generation``)."""


class UnsupportedPvmKind(ProtocolError):
    """A PVM kind other than ``wasm_2_0_0`` (Octez ``Sc_rollup_arith_pvm_disabled``, id
    ``operation.arith_pvm_disabled``, and ``Sc_rollup_riscv_pvm_disabled``, id
    ``operation.riscv_pvm_disabled``: both are disabled on mainnet)."""


class EmptyKernel(ProtocolError):
    """An empty boot sector. soru's own rule (Octez accepts it; the rollup could never run a
    kernel and would be stuck from its first input)."""


class KernelTooLarge(ProtocolError):
    """A boot sector larger than :data:`MAX_BOOT_SECTOR_SIZE`: no layer-1 operation could
    carry it (Octez refuses the whole operation, ``Oversized_operation``)."""


class EmptyWhitelist(ProtocolError):
    """A private rollup whose whitelist is empty (Octez ``Sc_rollup_empty_whitelist``, id
    ``smart_rollup_empty_whitelist``); a public rollup has no whitelist at all."""


class WhitelistTooLarge(ProtocolError):
    """A whitelist of more than :data:`MAX_WHITELIST_SIZE` keys. Octez has no error id for it:
    the whitelist encoding's ``check_size`` fails, so the operation does not even decode."""


class DuplicatedKeyInWhitelist(ProtocolError):
    """A key listed twice in a whitelist (Octez ``Sc_rollup_duplicated_key_in_whitelist``, id
    ``smart_rollup_duplicated_key_in_whitelist``, raised when the whitelist is stored)."""


# --- the address ---------------------------------------------------------------------------


def rollup_address(operation_hash: bytes, origination_index: int) -> RollupAddress:
    """The address of the rollup originated by the ``origination_index``-th origination (from
    0) of the operation whose hash is ``operation_hash`` (Octez ``Sc_rollup_storage.
    new_address``): Blake2b-160 of the binary origination nonce, ``operation_hash (32 bytes)
    ‖ origination_index (int32, big-endian)``. Originated contracts (``KT1…``) hash the same
    nonce the same way, so a rollup and a contract with the same nonce share their 20 bytes."""
    if len(operation_hash) != OPERATION_HASH_SIZE:
        raise InvalidOriginationNonce(
            f"an operation hash has {OPERATION_HASH_SIZE} bytes, not {len(operation_hash)}"
        )
    if not 0 <= origination_index <= MAX_ORIGINATION_INDEX:
        raise InvalidOriginationNonce(f"origination index {origination_index} is not an int32")
    nonce = bytes(operation_hash) + origination_index.to_bytes(4, "big")
    return RollupAddress(blake2b_160(Tag.TEZOS, nonce))


# --- the operation -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Origination:
    """The payload of a ``smart_rollup_originate`` operation (SORU-SPEC §1.6).

    ``kernel`` is the boot sector (raw bytes; the operation's JSON shows them in hex);
    ``parameters_type`` the Michelson type of what contracts may send the rollup;
    ``whitelist`` None for a public rollup, or the keys that may publish commitments of a
    private one. The binary form belongs to the layer-1 operation encoding, not here.
    """

    kind: PvmKind
    kernel: bytes
    parameters_type: Node
    whitelist: tuple[PublicKeyHash, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", PvmKind(self.kind))
        object.__setattr__(self, "kernel", bytes(self.kernel))
        if self.whitelist is not None and not isinstance(self.whitelist, tuple):
            whitelist: Iterable[PublicKeyHash] = self.whitelist
            object.__setattr__(self, "whitelist", tuple(whitelist))

    @property
    def is_private(self) -> bool:
        """Whether only whitelisted keys may publish commitments."""
        return self.whitelist is not None


def check_whitelist(whitelist: tuple[PublicKeyHash, ...]) -> None:
    """Raise unless ``whitelist`` may be a private rollup's (at origination, or replacing it
    by an outbox message): non-empty, at most MAX_WHITELIST_SIZE keys, no key twice."""
    if not whitelist:
        raise EmptyWhitelist("a private rollup needs at least one key in its whitelist")
    if len(whitelist) > MAX_WHITELIST_SIZE:
        raise WhitelistTooLarge(
            f"a whitelist has at most {MAX_WHITELIST_SIZE} keys, not {len(whitelist)}"
        )
    seen: set[PublicKeyHash] = set()
    for key in whitelist:
        if key in seen:
            raise DuplicatedKeyInWhitelist(f"{key} is twice in the whitelist")
        seen.add(key)


def check_origination(origination: Origination) -> None:
    """Raise the first reason layer 1 refuses ``origination``, in this order: its PVM kind,
    its boot sector (empty, too large), its parameters type
    (:class:`~soru.protocol.parameters_type.InvalidParametersType`), its whitelist (empty, too
    large, a key twice). Private rollups are always enabled in soru (Octez's
    ``private_enable``, on since Oxford), so ``Sc_rollup_whitelist_disabled`` never arises."""
    if origination.kind is not PvmKind.WASM_2_0_0:
        raise UnsupportedPvmKind(f"the {origination.kind} PVM is disabled; only wasm_2_0_0 runs")
    if not origination.kernel:
        raise EmptyKernel("the boot sector is empty")
    if len(origination.kernel) > MAX_BOOT_SECTOR_SIZE:
        raise KernelTooLarge(
            f"a boot sector of {len(origination.kernel)} bytes does not fit in an operation "
            f"of at most {MAX_BOOT_SECTOR_SIZE} bytes"
        )
    check_parameters_type(origination.parameters_type)
    if origination.whitelist is not None:
        check_whitelist(origination.whitelist)


# --- the genesis ---------------------------------------------------------------------------


def genesis(
    origination: Origination,
    origination_level: int,
    *,
    ticks_per_kernel_run: int,
    version: str,
) -> tuple[Hash, Commitment]:
    """The genesis state hash of the rollup and its genesis commitment (SORU-SPEC §2.3):
    the state of a PVM of ``version`` with the boot sector installed, whose kernel runs get
    ``ticks_per_kernel_run`` ticks (both set by the network, checked:
    :class:`~soru.protocol.constants.InvalidConstants`), and the commitment to that state at
    ``origination_level`` with no predecessor and no ticks. Checks ``origination`` first
    (:func:`check_origination`)."""
    if version not in pvm_constants.VERSIONS:
        raise InvalidConstants(f"unknown PVM version {version!r}")
    if ticks_per_kernel_run <= 0:
        raise InvalidConstants("ticks_per_kernel_run must be positive")
    check_origination(origination)
    state = driver.originate(
        origination.kernel, ticks_per_kernel_run=ticks_per_kernel_run, version=version
    )
    state_hash = layout.state_hash(state)
    return state_hash, genesis_commitment(state_hash, origination_level)
