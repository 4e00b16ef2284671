"""Micheline: the tree syntax of Michelson data and types, its binary form and its text form.

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

**Text form** — the concrete syntax the Octez client and the wasm debugger's ``inputs`` use
for Michelson data and types (``Unit``, ``Pair 1 "a"``, ``(Left 0x0a)``, ``{ Elt "k" 1 }``,
``-5``, ``pair (ticket unit) nat``): :func:`parse_expression` follows the tokenizer and
grammar of Octez ``Micheline_parser`` (string escapes ``\\" \\\\ \\n \\t \\r \\b``, ``#`` and
``/* */`` comments, annotations ``%f :t @v``); it does not check indentation. Unknown
primitive names are refused. :func:`print_expression` prints on one line in the style of
Octez (``Pair 1 (Some 0x0a)``, ``{ 1 ; 2 }``); ``parse(print(e)) == e``.
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
    """A Micheline expression that cannot be encoded, or text that cannot be parsed."""


class UnknownPrimitive(MichelineError):
    """A primitive name that is not in :data:`PRIMITIVES`."""


class InvalidAnnotation(MichelineError):
    """An annotation that is not ``@``, ``:``, ``%``… followed by ``[A-Za-z0-9_.%@]``."""


class MichelsonSyntaxError(MichelineError):
    """Text that is not a Micheline expression; ``position`` is the character offset."""

    def __init__(self, message: str, position: int) -> None:
        self.position = position
        super().__init__(f"{message} at character {position}")


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
_ANNOT_FIRST = frozenset("@:$&%!?")
_ANNOT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.%@")


def is_valid_annotation(text: str) -> bool:
    """Whether ``text`` is a well-formed annotation (as the Octez tokenizer reads them)."""
    return (
        0 < len(text) <= MAX_ANNOTATION_LENGTH
        and text[0] in _ANNOT_FIRST
        and all(char in _ANNOT_CHARS for char in text[1:])
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


# --- text: tokens ---------------------------------------------------------------------------

_IDENT, _ANNOT, _INT, _STRING, _BYTES, _PUNCT = range(6)
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")
_IDENT_CHARS = _LETTERS | _DIGITS | {"_"}
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b"}
_PRINT_ESCAPES = {value: "\\" + key for key, value in _ESCAPES.items()}

Token = tuple[int, str, int]
"""(kind, text or value, character offset)."""


def _scan_while(text: str, start: int, allowed: frozenset[str]) -> int:
    end = start
    while end < len(text) and text[end] in allowed:
        end += 1
    return end


def _number(text: str, start: int) -> tuple[Token, int]:
    """An integer (``-12``, ``007``) or a bytes literal (``0x0a``) starting at ``start``."""
    digits = start + 1 if text[start] == "-" else start
    if digits >= len(text) or text[digits] not in _DIGITS:
        raise MichelsonSyntaxError("unterminated integer", start)
    if text.startswith("0x", digits):
        end = _scan_while(text, digits + 2, _HEX)
        hexdigits = text[digits + 2 : end]
        if text[start] == "-" or len(hexdigits) % 2:
            raise MichelsonSyntaxError("invalid bytes literal", start)
        token: Token = (_BYTES, hexdigits, start)
    else:
        end = _scan_while(text, digits, _DIGITS)
        token = (_INT, text[start:end], start)
    if end < len(text) and text[end] in _LETTERS:
        raise MichelsonSyntaxError("missing break after number", end)
    return token, end


def _string(text: str, start: int) -> tuple[Token, int]:
    """A double-quoted string starting at ``start``, escapes resolved."""
    chars: list[str] = []
    position = start + 1
    while True:
        if position >= len(text) or text[position] in "\n\r":
            raise MichelsonSyntaxError("unterminated string", start)
        char = text[position]
        if char == '"':
            return (_STRING, "".join(chars), start), position + 1
        if char == "\\":
            escaped = _ESCAPES.get(text[position + 1 : position + 2])
            if escaped is None:
                raise MichelsonSyntaxError("undefined escape sequence", position)
            chars.append(escaped)
            position += 2
        else:
            chars.append(char)
            position += 1


def _comment_end(text: str, start: int) -> int:
    """The offset after the (nestable) ``/* … */`` comment starting at ``start``."""
    depth, position = 0, start + 2
    while position < len(text):
        if text.startswith("*/", position):
            if depth == 0:
                return position + 2
            depth, position = depth - 1, position + 2
        elif text.startswith("/*", position):
            depth, position = depth + 1, position + 2
        else:
            position += 1
    raise MichelsonSyntaxError("unterminated comment", start)


def _tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char in " \n":
            position += 1
        elif char in "(){};":
            tokens.append((_PUNCT, char, position))
            position += 1
        elif char in _LETTERS:
            end = _scan_while(text, position + 1, _IDENT_CHARS)
            tokens.append((_IDENT, text[position:end], position))
            position = end
        elif char in _ANNOT_FIRST:
            end = _scan_while(text, position + 1, _ANNOT_CHARS)
            if end - position > MAX_ANNOTATION_LENGTH:
                raise MichelsonSyntaxError("annotation longer than 255 characters", position)
            tokens.append((_ANNOT, text[position:end], position))
            position = end
        elif char == "-" or char in _DIGITS:
            token, position = _number(text, position)
            tokens.append(token)
        elif char == '"':
            token, position = _string(text, position)
            tokens.append(token)
        elif char == "#":
            end = text.find("\n", position)
            position = len(text) if end < 0 else end + 1
        elif text.startswith("/*", position):
            position = _comment_end(text, position)
        else:
            raise MichelsonSyntaxError(f"unexpected character {char!r}", position)
    return tokens


# --- text: parsing --------------------------------------------------------------------------

_TOP, _UNWRAPPED, _WRAPPED, _SEQUENCE = range(4)


class _Open:
    """An expression being parsed: the whole input, a primitive application (bare or in
    parentheses) or a sequence; ``items`` are its arguments or elements so far."""

    __slots__ = ("kind", "name", "annots", "items", "position")

    def __init__(self, kind: int, position: int, name: str = "", annots: tuple = ()) -> None:
        if name:
            _check_name(name, position)
        self.kind, self.position, self.name, self.annots = kind, position, name, annots
        self.items: list[Node] = []


def _check_name(name: str, position: int) -> None:
    if name not in PRIMITIVE_CODES:
        raise UnknownPrimitive(f"unknown Michelson primitive {name!r} at character {position}")


def _atom(token: Token) -> Node:
    kind, value, _ = token
    if kind == _INT:
        return Int(int(value))
    if kind == _STRING:
        return String(value)
    return Bytes(bytes.fromhex(value))


def parse_expression(text: str) -> Node:
    """Parse Michelson data or a type written in Micheline concrete syntax."""
    tokens = _tokenize(text)
    count = len(tokens)

    def annotations(index: int) -> tuple[tuple[str, ...], int]:
        end = index
        while end < count and tokens[end][0] == _ANNOT:
            end += 1
        return tuple(token[1] for token in tokens[index:end]), end

    def is_punct(index: int, chars: str) -> bool:
        return index < count and tokens[index][0] == _PUNCT and tokens[index][1] in chars

    stack = [_Open(_TOP, 0)]
    index = 0
    while True:
        frame = stack[-1]
        token = tokens[index] if index < count else None
        kind, value, position = token if token else (-1, "", len(text))
        closed = False
        node: Node | None = None
        if frame.kind == _TOP:
            if frame.items:
                if token is not None:
                    raise MichelsonSyntaxError("unexpected token after the expression", position)
                return frame.items[0]
            if token is None:
                raise MichelsonSyntaxError("empty expression", position)
        elif frame.kind == _SEQUENCE:
            if token is None:
                raise MichelsonSyntaxError("unclosed brace", frame.position)
            if is_punct(index, "}"):
                index, closed = index + 1, True
            elif is_punct(index, ";"):
                if is_punct(index + 1, ";"):
                    raise MichelsonSyntaxError("extra semicolon", tokens[index + 1][2])
                index += 1
                continue
            elif kind in (_INT, _STRING, _BYTES) and not (
                index + 1 == count or is_punct(index + 1, ";}")
            ):
                raise MichelsonSyntaxError("missing semicolon", tokens[index + 1][2])
        elif frame.kind == _WRAPPED:
            if token is None or is_punct(index, "};"):
                raise MichelsonSyntaxError("unclosed parenthesis", frame.position)
            if is_punct(index, ")"):
                index, closed = index + 1, True
        else:  # _UNWRAPPED: ends where its context ends
            in_sequence = stack[-2].kind == _SEQUENCE
            if token is None and in_sequence:
                raise MichelsonSyntaxError("unclosed brace", stack[-2].position)
            if token is None or (in_sequence and is_punct(index, ";}")):
                closed = True
            elif is_punct(index, ";})"):
                raise MichelsonSyntaxError(f"unexpected {value!r}", position)
        if closed:
            stack.pop()
            if frame.kind == _SEQUENCE:
                node = Seq(tuple(frame.items))
            else:
                node = Prim(frame.name, tuple(frame.items), frame.annots)
        elif kind in (_INT, _STRING, _BYTES):
            node, index = _atom(tokens[index]), index + 1
        elif kind == _IDENT and frame.kind in (_UNWRAPPED, _WRAPPED):
            if index + 1 < count and tokens[index + 1][0] == _ANNOT:
                raise MichelsonSyntaxError("unexpected annotation", tokens[index + 1][2])
            _check_name(value, position)
            node, index = Prim(value), index + 1
        elif kind == _IDENT:
            annots, index = annotations(index + 1)
            stack.append(_Open(_UNWRAPPED, position, value, annots))
            continue
        elif is_punct(index, "("):
            if index + 1 >= count or tokens[index + 1][0] != _IDENT or frame.kind == _SEQUENCE:
                raise MichelsonSyntaxError("unexpected parenthesis", position)
            annots, end = annotations(index + 2)
            stack.append(_Open(_WRAPPED, position, tokens[index + 1][1], annots))
            index = end
            continue
        elif is_punct(index, "{"):
            stack.append(_Open(_SEQUENCE, position))
            index += 1
            continue
        else:
            raise MichelsonSyntaxError(f"unexpected {value!r}", position)
        stack[-1].items.append(node)


# --- text: printing -----------------------------------------------------------------------


def _quote(value: str) -> str:
    return '"' + "".join(_PRINT_ESCAPES.get(char, char) for char in value) + '"'


def print_expression(node: Node) -> str:
    """One-line concrete syntax of ``node``; arguments that are applications get parentheses."""
    out: list[str] = []
    work: list[str | tuple[Node, bool]] = [(node, False)]
    while work:
        item = work.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        current, as_argument = item
        if isinstance(current, Int):
            out.append(str(current.value))
        elif isinstance(current, String):
            out.append(_quote(current.value))
        elif isinstance(current, Bytes):
            out.append("0x" + current.value.hex())
        elif isinstance(current, Seq):
            if not current.items:
                out.append("{}")
                continue
            parts: list[str | tuple[Node, bool]] = ["{ "]
            for position, element in enumerate(current.items):
                parts.extend([" ; ", (element, False)] if position else [(element, False)])
            parts.append(" }")
            work.extend(reversed(parts))
        else:
            head = " ".join((current.name, *current.annots))
            if not current.args and not current.annots:
                out.append(head)
                continue
            parts = ["(" + head if as_argument else head]
            for argument in current.args:
                parts.extend((" ", (argument, True)))
            if as_argument:
                parts.append(")")
            work.extend(reversed(parts))
    return "".join(out)
