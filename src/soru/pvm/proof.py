"""Single-tick proofs: the step from tick T to T+1, checked without the rest of the state.

:func:`produce_proof` runs one tick lazily (``soru.pvm.lazy``) on a *recording* view of the
state tree at tick T; the proof is the recorded partial tree, plus the input the tick
consumed (an inbox message or revealed data), if any. :func:`verify_proof` rebuilds the
partial tree and runs the *same* tick on it: its root is the state hash before, the tree
after the tick gives the state hash after, and the state's input request is what layer 1
checks the given input against (an inbox proof for a message, the reveal hash for data).
Anything the tick touches outside the proof raises ``NotInProof``: the proof is invalid.

Encoding, version 1 (strict: trailing bytes, unknown tags, oversized parts are errors)::

    version u8 = 1
    input tag u8: 0 none | 1 message (level u32 ‖ counter u64 ‖ u16 length ‖ payload)
                | 2 reveal (u16 length ‖ data)
    u32 length ‖ the Merkle proof (``soru.merkle.Proof``)

A proof is at most :data:`MAX_PROOF_SIZE` bytes, the bound layer 1 accepts.

Why every tick fits: the worst case of each kind, by design. The sizes below are estimates
from that structure; the measured maxima are in ``benchmarks/proofs.py`` (5.2 KB over the
example kernels) and ``tests/unit/pvm/test_loader.py`` (loader steps). A proof holds the nodes on
the paths a tick reads or writes: about 0.4 KB of PVM fields and counters for any tick, plus
a path of O(log n) trie nodes (~0.5–0.8 KB in a 100,000-entry directory) per item touched:

* input tick — the message (≤ 4,096 B) written to the input buffer;
* padding and boundary ticks — counters and the reboot flags (~0.4–0.8 KB);
* an instruction — the instruction, the top of the stack and the locals it names, and at
  most two 1,024-byte memory chunks for a load or store (≤ 8 bytes) — ~1–2 KB; a
  ``br_table`` reads its head and the one page of ≤ 64 entries it branches through;
* a bulk chunk — ``memory.copy/fill/init`` move ≤ 2,048 bytes (≤ 3 source and ≤ 3
  destination chunks, ~6 KB); table operations ≤ 32 elements (~3–9 KB);
* a host call — at most 4,096 bytes of memory (≤ 5 chunks) and, for the durable store, one
  key path plus at most two 2,048-byte value chunks; copy, move and delete graft or cut
  subtrees without reading them (see ``host_functions``): ≤ ~12 KB;
* a reveal tick — the revealed page (≤ 4,096 B) written to memory;
* a loader step — an item of at most 12 KiB of kernel bytes plus the facts a function body
  names (≤ 4 KiB, gathered beforehand); a longer body is read in runs of ≤ 2 KiB, 128
  instructions and 8 facts, each also reading the pages of the checker's and lowerer's
  stacks its instructions reach (≤ 96 pages a stack) — see ``loader`` and ``loader_body``;
  ≤ 25 KB measured on a 634 KB stress kernel, ≤ 14 KB on a kernel whose long body has
  3,000 locals, 300 nested blocks and a 400-label ``br_table``;
* allocation — heads and counts only: segments are grafted, not copied; entry — two exports.

What stays beyond a step is a ``loader.LoaderLimit`` decode error, which only contrived
kernels meet: one instruction over 8 KiB (a ``br_table`` of thousands of labels), a stored
value over 4 KiB (a block type of ~2,000 parameters, locals alternating types ~1,000
times), a run reaching more than 96 pages of one stack, more than 2**24 lowered
instructions.
"""

from __future__ import annotations

from dataclasses import dataclass

from soru.base.errors import DecodeError, SoruError
from soru.base.hashes import Hash
from soru.encoding.reader import Reader
from soru.encoding.writer import Writer
from soru.merkle import Proof, Tree, record
from soru.merkle.errors import MerkleError
from soru.pvm import vm
from soru.pvm.lazy_state import LazyPvmState, lazy_tick
from soru.pvm.state import InputMessage, InputRequest

PROOF_VERSION = 1
MAX_PROOF_SIZE = 30_000
MAX_INPUT_SIZE = 4096


class InvalidProof(SoruError):
    """A tick proof that does not check: malformed, incomplete, or for another step."""


@dataclass(frozen=True, slots=True)
class TickProof:
    """The proof of one tick: the partial state tree it read, and the input it consumed."""

    tree: Proof
    message: InputMessage | None = None
    reveal: bytes | None = None

    def encode(self) -> bytes:
        out = Writer().u8(PROOF_VERSION)
        if self.message is not None:
            m = self.message
            out.u8(1).uint_be(m.level, 4).uint_be(m.counter, 8)
            out.uint_be(len(m.payload), 2).raw(m.payload)
        elif self.reveal is not None:
            out.u8(2).uint_be(len(self.reveal), 2).raw(self.reveal)
        else:
            out.u8(0)
        body = self.tree.encode()
        return out.uint_be(len(body), 4).raw(body).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> TickProof:
        """Strict inverse of :meth:`encode`; raises :class:`InvalidProof`."""
        if len(data) > MAX_PROOF_SIZE:
            raise InvalidProof(f"a proof of {len(data)} bytes exceeds {MAX_PROOF_SIZE}")
        try:
            reader = Reader(data)
            if reader.u8() != PROOF_VERSION:
                raise InvalidProof("unknown proof version")
            tag = reader.u8()
            message = reveal = None
            if tag == 1:
                level, counter = reader.uint_be(4), reader.uint_be(8)
                message = InputMessage(level, counter, _sized(reader))
            elif tag == 2:
                reveal = _sized(reader)
            elif tag != 0:
                raise InvalidProof(f"unknown input tag {tag}")
            body = reader.read(reader.uint_be(4))
            reader.expect_end("trailing bytes after the proof")
            return cls(Proof.decode(body), message, reveal)
        except (DecodeError, MerkleError) as exc:
            raise InvalidProof(f"malformed proof: {exc}") from exc

    @property
    def size(self) -> int:
        return len(self.encode())


def _sized(reader: Reader) -> bytes:
    size = reader.uint_be(2)
    if size > MAX_INPUT_SIZE:
        raise InvalidProof(f"an input of {size} bytes exceeds {MAX_INPUT_SIZE}")
    return reader.read(size)


def produce_proof(
    tree: Tree, *, message: InputMessage | None = None, reveal: bytes | None = None
) -> tuple[TickProof, Tree]:
    """The proof of the tick from the state ``tree``, and the tree after that tick."""
    recording, recorder = record(tree)
    after = lazy_tick(recording, message=message, reveal=reveal)
    proof = TickProof(recorder.proof(), message, reveal)
    if proof.size > MAX_PROOF_SIZE:
        raise InvalidProof(f"this tick's proof has {proof.size} bytes (over {MAX_PROOF_SIZE})")
    return proof, after


@dataclass(frozen=True, slots=True)
class Verified:
    """What a valid proof establishes: the state hash before and after the tick, and the
    input request of the state before (what the consumed input must answer)."""

    before: Hash
    after: Hash
    input_request: InputRequest


def verify_proof(proof: TickProof) -> Verified:
    """Re-run the tick on the partial tree of ``proof``; raises :class:`InvalidProof`."""
    try:
        partial = proof.tree.tree()
        before = partial.hash
        request = vm.input_request(LazyPvmState(partial))  # type: ignore[arg-type]
        after = lazy_tick(partial, message=proof.message, reveal=proof.reveal)
    except InvalidProof:
        raise
    except Exception as exc:  # noqa: BLE001 - the proven state is untrusted data: whatever
        # it makes the step do (a malformed instruction, a missing node), the proof fails.
        raise InvalidProof(f"the tick does not replay on the proof: {exc!r}") from exc
    wants_input = request.kind in ("initial", "first_after")
    if (proof.message is not None) != wants_input:
        raise InvalidProof(f"the input given does not match the request {request.kind}")
    if (proof.reveal is not None) != (request.kind == "reveal"):
        raise InvalidProof(f"the data given does not match the request {request.kind}")
    return Verified(before, after.hash, request)


# --- output proofs -------------------------------------------------------------------------

OUTPUT_PROOF_VERSION = 1


@dataclass(frozen=True, slots=True)
class OutputProof:
    """That outbox message ``index`` of ``level`` is ``message`` in a state: the partial
    tree of the path ``pvm/outboxes/<level>/<index>`` (its root is the state hash).

    Encoding: ``version u8 = 1 ‖ level u32 ‖ index u16 ‖ u16 length ‖ message ‖ u32 length ‖
    Merkle proof``.
    """

    level: int
    index: int
    message: bytes
    tree: Proof

    def encode(self) -> bytes:
        out = Writer().u8(OUTPUT_PROOF_VERSION).uint_be(self.level, 4).uint_be(self.index, 2)
        out.uint_be(len(self.message), 2).raw(self.message)
        body = self.tree.encode()
        return out.uint_be(len(body), 4).raw(body).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> OutputProof:
        if len(data) > MAX_PROOF_SIZE:
            raise InvalidProof(f"an output proof of {len(data)} bytes exceeds {MAX_PROOF_SIZE}")
        try:
            reader = Reader(data)
            if reader.u8() != OUTPUT_PROOF_VERSION:
                raise InvalidProof("unknown output proof version")
            level, index = reader.uint_be(4), reader.uint_be(2)
            message = _sized(reader)
            body = reader.read(reader.uint_be(4))
            reader.expect_end("trailing bytes after the output proof")
            return cls(level, index, message, Proof.decode(body))
        except (DecodeError, MerkleError) as exc:
            raise InvalidProof(f"malformed output proof: {exc}") from exc


def _output_path(level: int, index: int) -> tuple[str, ...]:
    return ("pvm", "outboxes", str(level), str(index))


def produce_output_proof(tree: Tree, level: int, index: int) -> OutputProof:
    """Prove outbox message ``index`` of ``level`` in the state ``tree``."""
    recording, recorder = record(tree)
    message = recording.get(_output_path(level, index))
    if message is None:
        raise InvalidProof(f"the state has no outbox message {index} at level {level}")
    return OutputProof(level, index, message, recorder.proof())


def verify_output_proof(proof: OutputProof) -> Hash:
    """Check that the proof's tree holds its message at its place; returns the state hash
    it is rooted at (layer 1 compares it with a cemented commitment's state)."""
    try:
        partial = proof.tree.tree()
        found = partial.get(_output_path(proof.level, proof.index))
    except (SoruError, ValueError) as exc:
        raise InvalidProof(f"the output proof does not replay: {exc}") from exc
    if found != proof.message:
        raise InvalidProof("the message is not at that place in the proven state")
    return partial.hash


def proven_request(proof: TickProof) -> tuple[Hash, InputRequest]:
    """The state hash a proof starts from and what that state asks for, without running its
    tick — for a PVM that asks for an input layer 1 says does not exist (it stays blocked)."""
    try:
        partial = proof.tree.tree()
        return partial.hash, vm.input_request(LazyPvmState(partial))  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - untrusted data, as in verify_proof
        raise InvalidProof(f"the proof's state cannot be read: {exc!r}") from exc
