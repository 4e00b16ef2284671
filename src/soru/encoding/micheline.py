"""Micheline: the tree syntax of Michelson data and types, and its binary form.

A Micheline expression is a tree of five kinds of node (Octez ``lib_micheline``):
:class:`Int` (unbounded integer), :class:`String`, :class:`Bytes`, :class:`Prim` (a primitive
applied to arguments, with annotations, e.g. ``Pair 1 "a"`` or ``pair %p nat string``) and
:class:`Seq` (``{ 1 ; 2 }``). Michelson values travel in this form: the payload of an inbox
Transfer, the parameters of an outbox transaction (SORU-SPEC §2.4–2.6).

**Binary form** (Octez ``Micheline_encoding``, ``Script_repr.expr_encoding``), one tag byte
per node, integers big-endian, lengths on 4 bytes (at most 2^30 - 1)::

    00 z                      Int (Zarith integer)       01 len:4 utf-8   String
    02 len:4 node*            Seq (len = bytes of nodes) 0a len:4 bytes   Bytes
    03 prim                   Prim, no argument, no annotation
    04 prim annots            Prim, no argument
    05 prim node              Prim, 1 argument, no annotation
    06 prim node annots       Prim, 1 argument
    07 prim node node         Prim, 2 arguments, no annotation
    08 prim node node annots  Prim, 2 arguments
    09 prim len:4 node* annots   any other Prim (3+ arguments, or written generically)
    annots = len:4 annotations joined by single spaces (len 0: none)

``prim`` is one byte, the index of the primitive's name in :data:`PRIMITIVES` (the table of
``michelson_v1_primitives.ml``). Encoding picks the most compact tag, as Octez does. Decoding
accepts every form Octez accepts (so ``09`` with two arguments, or ``04`` with an empty
annotation string, decode too and re-encode shorter) and is otherwise strict: unknown tags
or primitive codes, lengths past the end, a Zarith integer ending in a zero byte, malformed
annotations, non-UTF-8 strings and (for :func:`decode_expression`) trailing bytes raise
:class:`soru.base.errors.DecodeError`. Encoding and decoding are iterative, so depth is limited
by memory only (a 4096-byte message can nest 2048 levels).

**Text form** — the concrete syntax (``Pair 1 "a"``, ``{ Elt "k" 1 }``) is parsed and printed
by :mod:`soru.encoding.michelson_text`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from soru.base.errors import DecodeError, SoruError
from soru.encoding.reader import Reader
from soru.encoding.writer import MAX_DYNAMIC_SIZE, Writer

# --- primitives ---------------------------------------------------------------------------

PRIMITIVES: tuple[str, ...] = tuple(
    """
    parameter storage code False Elt Left None Pair Right Some
    True Unit PACK UNPACK BLAKE2B SHA256 SHA512 ABS ADD AMOUNT
    AND BALANCE CAR CDR CHECK_SIGNATURE COMPARE CONCAT CONS CREATE_ACCOUNT CREATE_CONTRACT
    IMPLICIT_ACCOUNT DIP DROP DUP EDIV EMPTY_MAP EMPTY_SET EQ EXEC FAILWITH
    GE GET GT HASH_KEY IF IF_CONS IF_LEFT IF_NONE INT LAMBDA
    LE LEFT LOOP LSL LSR LT MAP MEM MUL NEG
    NEQ NIL NONE NOT NOW OR PAIR PUSH RIGHT SIZE
    SOME SOURCE SENDER SELF STEPS_TO_QUOTA SUB SWAP TRANSFER_TOKENS SET_DELEGATE UNIT
    UPDATE XOR ITER LOOP_LEFT ADDRESS CONTRACT ISNAT CAST RENAME bool
    contract int key key_hash lambda list map big_map nat option
    or pair set signature string bytes mutez timestamp unit operation
    address SLICE DIG DUG EMPTY_BIG_MAP APPLY chain_id CHAIN_ID LEVEL SELF_ADDRESS
    never NEVER UNPAIR VOTING_POWER TOTAL_VOTING_POWER KECCAK SHA3 PAIRING_CHECK bls12_381_g1
    bls12_381_g2 bls12_381_fr sapling_state sapling_transaction_deprecated
    SAPLING_EMPTY_STATE SAPLING_VERIFY_UPDATE ticket TICKET_DEPRECATED READ_TICKET
    SPLIT_TICKET JOIN_TICKETS GET_AND_UPDATE chest chest_key OPEN_CHEST VIEW view constant
    SUB_MUTEZ tx_rollup_l2_address MIN_BLOCK_TIME sapling_transaction EMIT
    Lambda_rec LAMBDA_REC TICKET BYTES NAT
    Ticket IS_IMPLICIT_ACCOUNT INDEX_ADDRESS GET_ADDRESS_INDEX
    """.split()
)
"""Primitive names by binary code, in the order of ``prim_encoding`` in Octez
``michelson_v1_primitives.ml`` (new primitives are only ever appended). Codes 0x00–0x9c
(``NAT``) are Oxford's whole table; ``Ticket`` (0x9d) came with Paris,
``IS_IMPLICIT_ACCOUNT``, ``INDEX_ADDRESS`` and ``GET_ADDRESS_INDEX`` (0x9e–0xa0) later (alpha)."""

PRIMITIVE_CODES: dict[str, int] = {name: code for code, name in enumerate(PRIMITIVES)}
OXFORD_PRIMITIVE_COUNT = PRIMITIVE_CODES["NAT"] + 1


class NodeTag(IntEnum):
    """The tag byte of each binary Micheline node form."""

    INT = 0x00
    STRING = 0x01
    SEQ = 0x02
    PRIM_0 = 0x03
    PRIM_0_ANNOTS = 0x04
    PRIM_1 = 0x05
    PRIM_1_ANNOTS = 0x06
    PRIM_2 = 0x07
    PRIM_2_ANNOTS = 0x08
    PRIM_N = 0x09
    BYTES = 0x0A


# --- errors -------------------------------------------------------------------------------


class MichelineError(SoruError):
    """A Micheline expression that cannot be encoded, or text that cannot be parsed
    (:class:`~soru.encoding.michelson_text.MichelsonSyntaxError`)."""


class UnknownPrimitive(MichelineError):
    """A primitive name that is not in :data:`PRIMITIVES`."""


class InvalidAnnotation(MichelineError):
    """An annotation that is not ``@``, ``:``, ``%``… followed by ``[A-Za-z0-9_.%@]``."""


# --- nodes --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Int:
    value: int


@dataclass(frozen=True, slots=True)
class String:
    value: str


@dataclass(frozen=True, slots=True)
class Bytes:
    value: bytes


@dataclass(frozen=True, slots=True)
class Prim:
    """``name`` applied to ``args``, with ``annots`` (e.g. ``("%amount",)``)."""

    name: str
    args: tuple[Node, ...] = ()
    annots: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.args, tuple):
            object.__setattr__(self, "args", tuple(self.args))
        if not isinstance(self.annots, tuple):
            object.__setattr__(self, "annots", tuple(self.annots))


@dataclass(frozen=True, slots=True)
class Seq:
    items: tuple[Node, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.items, tuple):
            object.__setattr__(self, "items", tuple(self.items))


Node = Int | String | Bytes | Prim | Seq

MAX_ANNOTATION_LENGTH = 255
ANNOTATION_FIRST_CHARS = frozenset("@:$&%!?")
"""The characters an annotation may start with."""
ANNOTATION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.%@")
"""The characters an annotation may continue with."""


def is_valid_annotation(text: str) -> bool:
    """Whether ``text`` is a well-formed annotation (as the Octez tokenizer reads them)."""
    return (
        0 < len(text) <= MAX_ANNOTATION_LENGTH
        and text[0] in ANNOTATION_FIRST_CHARS
        and all(char in ANNOTATION_CHARS for char in text[1:])
    )


# --- binary encoding ----------------------------------------------------------------------


def _code(name: str) -> int:
    code = PRIMITIVE_CODES.get(name)
    if code is None:
        raise UnknownPrimitive(f"unknown Michelson primitive {name!r}")
    return code


def _annots_bytes(annots: tuple[str, ...]) -> bytes:
    for annot in annots:
        if not is_valid_annotation(annot):
            raise InvalidAnnotation(f"malformed annotation {annot!r}")
    return " ".join(annots).encode("ascii")


class _SizeAt(int):
    """Work item of :func:`encode_expression`: the position of a length to patch."""


class _Annots(bytes):
    """Work item of :func:`encode_expression`: annotations to append."""


def encode_expression(node: Node) -> bytes:
    """The binary form of ``node``, most compact tags first (as Octez writes it)."""
    writer = Writer()
    # Work items: nodes to write, and what is left to do once a node's children are written.
    work: list[Node | _SizeAt | _Annots] = [node]
    while work:
        item = work.pop()
        if type(item) is _SizeAt:
            writer.patch_size(item)
        elif type(item) is _Annots:
            writer.sized(item)
        elif isinstance(item, Int):
            writer.u8(NodeTag.INT).zarith_z(item.value)
        elif isinstance(item, String):
            writer.u8(NodeTag.STRING).sized(item.value.encode("utf-8"))
        elif isinstance(item, Bytes):
            writer.u8(NodeTag.BYTES).sized(item.value)
        elif isinstance(item, Seq):
            writer.u8(NodeTag.SEQ)
            work.append(_SizeAt(writer.reserve_size()))
            work.extend(reversed(item.items))
        elif isinstance(item, Prim):
            code, count = _code(item.name), len(item.args)
            annots = _Annots(_annots_bytes(item.annots) if item.annots else b"")
            if count <= 2:
                writer.u8(NodeTag.PRIM_0 + 2 * count + (1 if annots else 0)).u8(code)
                if annots:
                    work.append(annots)
            else:
                writer.u8(NodeTag.PRIM_N).u8(code)
                work.append(annots)
                work.append(_SizeAt(writer.reserve_size()))
            work.extend(reversed(item.args))
        else:
            raise TypeError(f"not a Micheline node: {item!r}")
    return writer.getvalue()


# --- binary decoding ----------------------------------------------------------------------

_SEQ, _FIXED, _ARGS = 0, 1, 2


class _Frame:
    """A node whose children are being read: ``reader`` reads the children, ``parent`` what
    follows the node; a fixed-arity primitive waits for ``need`` children."""

    __slots__ = ("kind", "name", "reader", "parent", "items", "need", "annots")

    def __init__(
        self, kind: int, name: str, reader: Reader, parent: Reader, need: int, annots: bool
    ) -> None:
        self.kind, self.name, self.reader, self.parent = kind, name, reader, parent
        self.items: list[Node] = []
        self.need, self.annots = need, annots


def _sized(reader: Reader) -> Reader:
    start = reader.pos
    size = reader.uint_be(4)
    if size > MAX_DYNAMIC_SIZE:
        reader.fail("length over 2^30 - 1", start)
    return reader.window(size)


def _read_name(reader: Reader) -> str:
    code = reader.u8()
    if code >= len(PRIMITIVES):
        reader.fail(f"unknown primitive code 0x{code:02x}", reader.pos - 1)
    return PRIMITIVES[code]


def _read_annots(reader: Reader) -> tuple[str, ...]:
    window = _sized(reader)
    raw = window.rest()
    if not raw:
        return ()
    annots = tuple(raw.decode("ascii", errors="replace").split(" "))
    if not all(is_valid_annotation(annot) for annot in annots):
        reader.fail("malformed annotation", window.pos - len(raw))
    return annots


def _read_string(reader: Reader) -> String:
    window = _sized(reader)
    raw = window.rest()
    try:
        return String(raw.decode("utf-8"))
    except UnicodeDecodeError:
        reader.fail("string is not UTF-8", window.pos - len(raw))


def decode_expression_at(data: bytes, offset: int = 0) -> tuple[Node, int]:
    """Decode the expression starting at ``offset``; returns it and the offset just past it."""
    current = Reader(data, offset)
    stack: list[_Frame] = []
    while True:
        tag = current.u8()
        node: Node | None = None
        if tag == NodeTag.INT:
            node = Int(current.zarith_z())
        elif tag == NodeTag.STRING:
            node = _read_string(current)
        elif tag == NodeTag.BYTES:
            node = Bytes(bytes(_sized(current).rest()))
        elif tag == NodeTag.PRIM_0:
            node = Prim(_read_name(current))
        elif tag == NodeTag.PRIM_0_ANNOTS:
            name = _read_name(current)
            node = Prim(name, (), _read_annots(current))
        elif NodeTag.PRIM_1 <= tag <= NodeTag.PRIM_2_ANNOTS:
            need = 1 if tag <= NodeTag.PRIM_1_ANNOTS else 2
            annotated = tag in (NodeTag.PRIM_1_ANNOTS, NodeTag.PRIM_2_ANNOTS)
            name = _read_name(current)
            stack.append(_Frame(_FIXED, name, current, current, need, annotated))
        elif tag == NodeTag.SEQ:
            window = _sized(current)
            stack.append(_Frame(_SEQ, "", window, current, 0, False))
            current = window
        elif tag == NodeTag.PRIM_N:
            name = _read_name(current)
            window = _sized(current)
            stack.append(_Frame(_ARGS, name, window, current, 0, True))
            current = window
        else:
            current.fail(f"unknown Micheline node tag 0x{tag:02x}", current.pos - 1)
        # Attach the finished node to its parent; close every parent that is now complete.
        while stack:
            frame = stack[-1]
            if node is not None:
                frame.items.append(node)
                node = None
            if frame.kind == _FIXED:
                if len(frame.items) < frame.need:
                    break
            elif not frame.reader.at_end():
                break
            stack.pop()
            current = frame.parent
            if frame.kind == _SEQ:
                node = Seq(tuple(frame.items))
            else:
                annots = _read_annots(current) if frame.annots else ()
                node = Prim(frame.name, tuple(frame.items), annots)
        if not stack and node is not None:
            return node, current.pos


def decode_expression(data: bytes) -> Node:
    """Decode exactly one expression filling ``data``."""
    node, end = decode_expression_at(data, 0)
    if end != len(data):
        raise DecodeError("trailing bytes after a Micheline expression", end)
    return node


def expression_length(data: bytes, offset: int = 0) -> int:
    """The offset just past the (fully checked) expression that starts at ``offset``."""
    return decode_expression_at(data, offset)[1]
