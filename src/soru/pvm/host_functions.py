"""The host functions of module ``smart_rollup_core``: the kernel's only way out of its sandbox.

A kernel imports these functions by name (``../shared/SORU-SPEC.md`` §5.5); names, Wasm
signatures, limits, error codes and the order in which errors are detected follow Octez
(``src/lib_scoru_wasm/host_funcs.ml``, reference PVM) so that kernels built for Tezos run
unmodified. :func:`host_functions` builds them for one PVM version over a
:class:`HostEnvironment` (durable storage, the input queue, the outbox, a debug sink).

Where things are
    :mod:`soru.pvm.host_abi` holds the error codes and limits, the :class:`HostEnvironment`
    and the calling conventions (arguments are unsigned bit patterns; Octez reads sizes,
    offsets and counts as *signed* ``i32`` — the table below says what a negative value
    gives); :mod:`soru.pvm.host_store` holds the durable-storage functions; this module
    holds the others, the reveals, and the table by PVM version. Every public name of the
    three modules can be imported from here.

Errors (``host_funcs.ml Error.code``): −1 key too large (> 240 bytes), −2 invalid key,
−3 not a value, −4 offset outside the value, −5 value size exceeded, −6 memory access out of
bounds, −7 input/output too large, −8 generic invalid access, −9 read-only key, −10 nothing
at the key, −11 outbox full, −12 sub-key index out of range, −13 value already exists.

===============================  =============================================================
function                         checks, in order (first failure wins)
===============================  =============================================================
every keyed function             key length > 240 → −1; negative → −8; key bytes out of
                                 memory → −6; bad syntax → −2
``read_input``                   8 bytes at ``info`` not strictly inside memory → −6;
                                 ``m`` = min(4096, max_bytes) negative, or ``m`` bytes at
                                 ``dst`` not strictly inside memory → −6; no input → 0
``write_output``                 size > 4096 → −7; negative → −8; out of memory → −6;
                                 outbox full → −11
``store_read``                   max_bytes > 2048 → −7; no value → −3; offset ∉ [0, size)
                                 → −4; max_bytes < 0 → −8; destination out of memory → −6
``store_write``                  size + num_bytes overflows i32 (or num_bytes < 0) → −5;
                                 source out of memory → −6; read-only → −9; num_bytes > 2048
                                 → −7; offset > size → −4; offset < 0 → −8
``store_create``                 size < 0 → −5; read-only → −9; value exists → −13
``store_copy``                   both keys; read-only destination → −9; no source → −10
``store_move``                   both keys; read-only source, then destination → −9; no
                                 source → −10
``store_delete[_value]``         read-only → −9 (nothing to delete is not an error)
``store_value_size``             no value → −3
``store_get_nth_key``            nothing at the key → −10; index ∉ [0, list_size) → −12;
                                 destination out of memory → −6
``__internal_store_get_hash``    nothing at the key → −10; destination out of memory → −6
``reveal_preimage``, ``reveal``  size > 4096 → −7; negative → −8; out of memory → −6
===============================  =============================================================

"Strictly inside": Octez's ``read_input`` requires ``address + length < memory size``, so it
refuses a buffer that ends exactly at the end of memory; soru does the same. A store to
memory that runs past its end writes the bytes that fit and returns −6, as the reference
PVM's byte-wise stores do. A zero-length load or store never fails, wherever it points.

Reveals are inputs: ``reveal_preimage``, ``reveal_metadata`` and ``reveal`` return a
:class:`RevealRequest`, a :class:`~soru.wasm.runtime.HostContinuation` that suspends the
machine (``Suspend``) until the PVM's next tick brings the data, which :func:`answer_reveal`
writes to memory; the result of the call is what it returns.

Worst case of one host call (a tick proves one call, so this bounds a proof):
    Wasm memory — read at most 2 × 240 key bytes plus 4096 bytes (``write_output``, a reveal
    payload) or 2049 bytes (``store_write`` reads at most one byte more than it may write; a
    larger size is refused after a bounds check that reads nothing); write at most
    4096 + 8 bytes (``read_input``), 4096 (a reveal answer), 2048 (``store_read``), 239 (a
    key segment) or 32 (a hash). ``write_debug`` reads nothing unless the functions were
    built with ``debug=True`` (the node's logs, the debugger — never a proving PVM), and
    then up to ``num_bytes`` bytes of memory.
    Durable storage — one path walk per key plus what :mod:`soru.pvm.durable` documents:
    the value node and at most two 2048-byte chunks for a read or write; O(path) for
    create, delete, copy and move whatever the size of the subtree; one trie path for
    ``store_get_nth_key``.
    Input and outbox — one message.

Octez behaviours soru cannot reproduce, because Octez fails with an uncaught exception:
``store_get_nth_key`` and ``__internal_store_get_hash`` with a negative ``max_size``, and a
call from a module without exactly one memory (an interpreter crash: terminal Stuck) — soru
raises :class:`HostCrash`, a ``Trap`` the PVM can tell apart; a reveal answer with a
negative ``max_bytes`` or a destination out of memory (the Octez reveal tick itself fails)
— soru reads ``max_bytes`` as unsigned and returns −6. Octez also crashes on a host call
made while the module is being initialised (its start function); these functions cannot
tell initialisation from evaluation, so that rule is the PVM's to enforce.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from soru.base.errors import DecodeError, SoruError
from soru.crypto.hashing import Tag, blake2b_256
from soru.encoding.reader import Reader
from soru.encoding.writer import Writer
from soru.pvm.constants import VERSIONS
from soru.pvm.host_abi import (
    FULL_OUTBOX,
    GENERIC_INVALID_ACCESS,
    HASH_SIZE,
    INPUT_INFO_SIZE,
    INPUT_OUTPUT_TOO_LARGE,
    INVALID_ACCESS,
    INVALID_KEY,
    INVALID_SUBKEY_INDEX,
    KEY_TOO_LARGE,
    MASK32,
    MAX_INPUT_OUTPUT_SIZE,
    MEMORY_INVALID_ACCESS,
    NOT_A_NODE,
    NOT_A_VALUE,
    READONLY_VALUE,
    VALUE_ALREADY_EXISTS,
    VALUE_SIZE_EXCEEDED,
    Args,
    HostCrash,
    HostEnvironment,
    caller_memory,
    load_bytes,
    load_io,
    r32,
    s32,
    store_bytes,
)
from soru.pvm.host_store import (
    store_copy,
    store_create,
    store_delete,
    store_delete_value,
    store_exists,
    store_get_hash,
    store_get_nth_key,
    store_has,
    store_list_size,
    store_move,
    store_read,
    store_value_size,
    store_write,
)
from soru.wasm.exec.machine import Suspend
from soru.wasm.runtime import HostContinuation, HostFunc, Instance
from soru.wasm.syntax import FuncType, ValType

__all__ = [
    "FULL_OUTBOX",
    "GENERIC_INVALID_ACCESS",
    "HASH_SIZE",
    "HOST_FUNCTIONS",
    "INPUT_INFO_SIZE",
    "INPUT_OUTPUT_TOO_LARGE",
    "INVALID_ACCESS",
    "INVALID_KEY",
    "INVALID_SUBKEY_INDEX",
    "KEY_TOO_LARGE",
    "MAX_INPUT_OUTPUT_SIZE",
    "MEMORY_INVALID_ACCESS",
    "NOT_A_NODE",
    "NOT_A_VALUE",
    "READONLY_VALUE",
    "REQUEST_DAL_PAGE",
    "REVEAL_DAL_PARAMETERS",
    "REVEAL_HASH_SIZE",
    "REVEAL_METADATA",
    "REVEAL_RAW_DATA",
    "VALUE_ALREADY_EXISTS",
    "VALUE_SIZE_EXCEEDED",
    "WELL_KNOWN_REVEAL_HASH",
    "WELL_KNOWN_REVEAL_REQUEST",
    "HostCrash",
    "HostEnvironment",
    "HostFunctionSpec",
    "HostImpl",
    "RevealRequest",
    "UnknownVersion",
    "answer_reveal",
    "host_functions",
    "is_well_formed_reveal",
    "normalise_reveal",
    "read_input",
    "reveal",
    "reveal_metadata",
    "reveal_preimage",
    "store_copy",
    "store_create",
    "store_delete",
    "store_delete_value",
    "store_exists",
    "store_get_hash",
    "store_get_nth_key",
    "store_has",
    "store_list_size",
    "store_move",
    "store_read",
    "store_value_size",
    "store_write",
    "write_output",
]


class UnknownVersion(SoruError):
    """A PVM version that has no host-function set."""


# --- reveals -----------------------------------------------------------------------------------

REVEAL_RAW_DATA = 0x00
REVEAL_METADATA = 0x01
REQUEST_DAL_PAGE = 0x02
REVEAL_DAL_PARAMETERS = 0x03
REVEAL_HASH_SIZE = 33
"""A reveal hash: ``0x00`` (Blake2b scheme) ‖ Blake2b-256 of the page."""

WELL_KNOWN_REVEAL_HASH = b"\x00" + blake2b_256(Tag.TEZOS, b"")
"""The reveal hash of the empty preimage, asked for instead of a malformed request."""

WELL_KNOWN_REVEAL_REQUEST = bytes((REVEAL_RAW_DATA,)) + WELL_KNOWN_REVEAL_HASH


def is_well_formed_reveal(payload: bytes) -> bool:
    """Whether ``payload`` decodes as a reveal request (``Sc_rollup_PVM_sig.reveal_encoding``
    of Oxford, the protocol of PVM version 2.0.0-r3), consuming every byte:

    * ``0x00 ‖ 0x00 ‖ 32 bytes`` — raw data (a preimage page) by reveal hash;
    * ``0x01`` — the rollup's metadata;
    * ``0x02 ‖ published_level: int32 ≥ 0 ‖ slot_index: u8 ‖ page_index: int16`` — a DAL page;
    * ``0x03`` — the DAL parameters.

    Whether a well-formed kind is *enabled* is the protocol's decision, not this module's.
    """
    if not payload:
        return False
    tag = payload[0]
    if tag == REVEAL_RAW_DATA:
        return len(payload) == 1 + REVEAL_HASH_SIZE and payload[1] == 0x00
    if tag in (REVEAL_METADATA, REVEAL_DAL_PARAMETERS):
        return len(payload) == 1
    if tag == REQUEST_DAL_PAGE:
        return len(payload) == 8 and payload[1] < 0x80
    return False


def normalise_reveal(payload: bytes) -> bytes:
    """The reveal request the PVM makes for ``payload``: itself when well-formed, otherwise a
    request for the preimage of :data:`WELL_KNOWN_REVEAL_HASH` (the empty string), so that a
    kernel's malformed request does not make the rollup stuck (Octez ``decode_reveal``)."""
    return payload if is_well_formed_reveal(payload) else WELL_KNOWN_REVEAL_REQUEST


_REVEAL_ENCODING_VERSION = 0


@dataclass(frozen=True, slots=True)
class RevealRequest(HostContinuation):
    """A reveal host call waiting for its data.

    ``payload`` is the binary reveal request exactly as the kernel made it
    (``reveal_preimage(h)`` makes ``0x00 ‖ h``, ``reveal_metadata`` makes ``0x01``);
    :attr:`request` is what the PVM asks for. The answer goes to memory at ``dst``, at most
    ``max_bytes`` bytes (the call's arguments, as unsigned bit patterns).
    """

    payload: bytes
    dst: int
    max_bytes: int

    awaits_data = True  # the machine suspends at the end of the call tick

    @property
    def request(self) -> bytes:
        """The well-formed request to answer (see :func:`normalise_reveal`)."""
        return normalise_reveal(self.payload)

    def step(self) -> Sequence[int] | None:
        raise Suspend()

    def encode(self) -> bytes:
        """``version: u8 ‖ dst: u32 BE ‖ max_bytes: u32 BE ‖ payload`` (the rest)."""
        return (
            Writer()
            .u8(_REVEAL_ENCODING_VERSION)
            .uint_be(self.dst, 4)
            .uint_be(self.max_bytes, 4)
            .raw(self.payload)
            .getvalue()
        )

    @classmethod
    def decode(cls, data: bytes) -> RevealRequest:
        """Inverse of :meth:`encode`; raises :class:`~soru.base.errors.DecodeError`."""
        reader = Reader(data)
        version = reader.u8()
        if version != _REVEAL_ENCODING_VERSION:
            raise DecodeError(f"unknown reveal request encoding version {version}", 0)
        dst = reader.uint_be(4)
        max_bytes = reader.uint_be(4)
        payload = reader.rest()
        if len(payload) > MAX_INPUT_OUTPUT_SIZE + 1:
            raise DecodeError("reveal request payload too long", 9)
        return cls(payload, dst, max_bytes)


def answer_reveal(memory, request: RevealRequest, data: bytes) -> int:
    """Write the answer to ``request`` into ``memory``; returns the call's result (a bit
    pattern): the number of bytes written — ``data`` truncated to ``max_bytes`` (read as
    unsigned) and to 4096 — or −6 when the destination runs out of memory (the bytes that
    fit are written)."""
    size = min(len(data), request.max_bytes & MASK32, MAX_INPUT_OUTPUT_SIZE)
    if not store_bytes(memory, request.dst, bytes(data[:size])):
        return MEMORY_INVALID_ACCESS & MASK32
    return size


# --- the functions -----------------------------------------------------------------------------

HostImpl = Callable[[HostEnvironment, "Instance | None", Args], "Sequence[int] | RevealRequest"]


def read_input(env: HostEnvironment, caller: Instance | None, args: Args) -> list[int]:
    """``read_input(info_ptr, dst, max_bytes) -> i32``: the next input's payload (cut to
    ``max_bytes`` ≤ 4096) at ``dst`` and its level and index at ``info_ptr``; its size, or
    0 when no input is left."""
    memory = caller_memory(caller)
    info, dst, max_bits = args
    size = len(memory)
    if not info + INPUT_INFO_SIZE < size:
        return r32(MEMORY_INVALID_ACCESS)
    max_bytes = min(MAX_INPUT_OUTPUT_SIZE, s32(max_bits))
    if max_bytes < 0 or not dst + max_bytes < size:
        return r32(MEMORY_INVALID_ACCESS)
    message = env.next_input()
    if message is None:
        return r32(0)
    level, counter, payload = message
    payload = bytes(payload[:max_bytes])
    store_bytes(memory, dst, payload)
    store_bytes(
        memory,
        info,
        (level & MASK32).to_bytes(4, "little") + (counter & MASK32).to_bytes(4, "little"),
    )
    return r32(len(payload))


def write_output(env: HostEnvironment, caller: Instance | None, args: Args) -> list[int]:
    """``write_output(src, num_bytes) -> i32``: append the bytes to the outbox; 0."""
    memory = caller_memory(caller)
    payload = load_io(memory, args[0], args[1])
    if isinstance(payload, int):
        return r32(payload)
    if not env.write_output(payload):
        return r32(FULL_OUTBOX)
    return r32(0)


def reveal_preimage(
    env: HostEnvironment, caller: Instance | None, args: Args
) -> list[int] | RevealRequest:
    """``reveal_preimage(hash_ptr, hash_len, dst, max_bytes) -> i32``: ask for the page whose
    33-byte reveal hash is at ``hash_ptr``; its size once revealed."""
    hash_bytes = load_io(caller_memory(caller), args[0], args[1])
    if isinstance(hash_bytes, int):
        return r32(hash_bytes)
    return RevealRequest(bytes((REVEAL_RAW_DATA,)) + hash_bytes, args[2], args[3])


def reveal_metadata(
    env: HostEnvironment, caller: Instance | None, args: Args
) -> list[int] | RevealRequest:
    """``reveal_metadata(dst, max_bytes) -> i32``: ask for the 24-byte metadata (rollup
    address ‖ origination level, int32 BE); its size once revealed. (Octez does not look at
    memory before the answer.)"""
    return RevealRequest(bytes((REVEAL_METADATA,)), args[0], args[1])


def reveal(env: HostEnvironment, caller: Instance | None, args: Args) -> list[int] | RevealRequest:
    """``reveal(payload_ptr, payload_len, dst, max_bytes) -> i32``: the generic reveal; the
    payload is a binary reveal request; the size of the answer once revealed."""
    payload = load_io(caller_memory(caller), args[0], args[1])
    if isinstance(payload, int):
        return r32(payload)
    return RevealRequest(payload, args[2], args[3])


def _write_debug(debug: bool) -> HostImpl:
    def write_debug(env: HostEnvironment, caller: Instance | None, args: Args) -> list[int]:
        """``write_debug(src, num_bytes)``: no effect on the state."""
        memory = caller_memory(caller)
        if debug:
            data = load_bytes(memory, args[0], args[1])
            env.debug(data if data is not None else b"Error code: -6")
        return []

    return write_debug


# --- the table -----------------------------------------------------------------------------------

I32, I64 = ValType.I32, ValType.I64


def _type(params: str, results: str) -> FuncType:
    kinds = {"i": I32, "I": I64}
    return FuncType(tuple(kinds[c] for c in params), tuple(kinds[c] for c in results))


@dataclass(frozen=True, slots=True)
class HostFunctionSpec:
    """One host function: its import name, Wasm type, the first PVM version that has it, and
    its implementation (``None`` for ``write_debug``, built per ``debug`` flag)."""

    name: str
    type: FuncType
    since: str
    impl: HostImpl | None


HOST_FUNCTIONS: tuple[HostFunctionSpec, ...] = (
    HostFunctionSpec("read_input", _type("iii", "i"), "2.0.0", read_input),
    HostFunctionSpec("write_output", _type("ii", "i"), "2.0.0", write_output),
    HostFunctionSpec("write_debug", _type("ii", ""), "2.0.0", None),
    HostFunctionSpec("store_has", _type("ii", "i"), "2.0.0", store_has),
    HostFunctionSpec("store_list_size", _type("ii", "I"), "2.0.0", store_list_size),
    HostFunctionSpec("store_get_nth_key", _type("iiIii", "i"), "2.0.0", store_get_nth_key),
    HostFunctionSpec("store_delete", _type("ii", "i"), "2.0.0", store_delete),
    HostFunctionSpec("store_copy", _type("iiii", "i"), "2.0.0", store_copy),
    HostFunctionSpec("store_move", _type("iiii", "i"), "2.0.0", store_move),
    HostFunctionSpec("store_value_size", _type("ii", "i"), "2.0.0", store_value_size),
    HostFunctionSpec("reveal_preimage", _type("iiii", "i"), "2.0.0", reveal_preimage),
    HostFunctionSpec("reveal_metadata", _type("ii", "i"), "2.0.0", reveal_metadata),
    HostFunctionSpec("store_read", _type("iiiii", "i"), "2.0.0", store_read),
    HostFunctionSpec("store_write", _type("iiiii", "i"), "2.0.0", store_write),
    HostFunctionSpec("__internal_store_get_hash", _type("iiii", "i"), "2.0.0-r1", store_get_hash),
    HostFunctionSpec("store_delete_value", _type("ii", "i"), "2.0.0-r1", store_delete_value),
    HostFunctionSpec("store_create", _type("iii", "i"), "2.0.0-r1", store_create),
    HostFunctionSpec("store_exists", _type("ii", "i"), "2.0.0-r2", store_exists),
    HostFunctionSpec("reveal", _type("iiii", "i"), "2.0.0-r3", reveal),
)
"""Every host function of ``smart_rollup_core`` up to version 2.0.0-r3 (Octez
``Host_funcs.lookup_opt``)."""


def host_functions(
    env: HostEnvironment, version: str, *, debug: bool = False
) -> dict[str, HostFunc]:
    """The host functions PVM ``version`` offers, by import name, acting on ``env``.

    With ``debug=False`` (the PVM: Octez's ``Noop``), ``write_debug`` reads nothing; with
    ``debug=True`` it hands the bytes to ``env.debug``. Raises :class:`UnknownVersion`.
    """
    if version not in VERSIONS:
        raise UnknownVersion(f"no host functions for PVM version {version!r}")
    rank = VERSIONS.index(version)
    table: dict[str, HostFunc] = {}
    for spec in HOST_FUNCTIONS:
        if VERSIONS.index(spec.since) > rank:
            continue
        impl = spec.impl if spec.impl is not None else _write_debug(debug)
        table[spec.name] = HostFunc(spec.type, _bind(impl, env), name=spec.name)
    return table


def _bind(impl: HostImpl, env: HostEnvironment):
    def call(caller: Instance | None, args: list):
        return impl(env, caller, args)

    return call
