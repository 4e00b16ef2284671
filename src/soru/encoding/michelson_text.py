"""Michelson text: the concrete syntax of Micheline expressions, parsed and printed.

This is the syntax the Octez client and the wasm debugger's ``inputs`` use for Michelson
data and types (``Unit``, ``Pair 1 "a"``, ``(Left 0x0a)``, ``{ Elt "k" 1 }``, ``-5``,
``pair (ticket unit) nat``); the nodes it builds, and their binary form, are those of
:mod:`soru.encoding.micheline`. :func:`parse_expression` follows the tokenizer and grammar
of Octez ``Micheline_parser`` (string escapes ``\\" \\\\ \\n \\t \\r \\b``, ``#`` and
``/* */`` comments, annotations ``%f :t @v``); it does not check indentation. Unknown
primitive names are refused. :func:`print_expression` prints on one line in the style of
Octez (``Pair 1 (Some 0x0a)``, ``{ 1 ; 2 }``); ``parse(print(e)) == e``. Both are
iterative, so depth is limited by memory only.
"""

from __future__ import annotations

from soru.encoding.micheline import (
    ANNOTATION_CHARS,
    ANNOTATION_FIRST_CHARS,
    MAX_ANNOTATION_LENGTH,
    PRIMITIVE_CODES,
    Bytes,
    Int,
    MichelineError,
    Node,
    Prim,
    Seq,
    String,
    UnknownPrimitive,
)


class MichelsonSyntaxError(MichelineError):
    """Text that is not a Micheline expression; ``position`` is the character offset."""

    def __init__(self, message: str, position: int) -> None:
        self.position = position
        super().__init__(f"{message} at character {position}")


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
        elif char in ANNOTATION_FIRST_CHARS:
            end = _scan_while(text, position + 1, ANNOTATION_CHARS)
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


_ATOMS = (_INT, _STRING, _BYTES)


class _Parser:
    """The state of :func:`parse_expression`: the tokens, the index of the next one, and the
    stack of expressions still open (the whole input at the bottom).

    Each :meth:`step` either closes the innermost open expression (its closing token, or the
    end of its context), reads one complete node into it, or opens a new expression; the
    parse ends when the bottom frame holds one node and no token is left.
    """

    __slots__ = ("text", "tokens", "count", "index", "stack")

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.count = len(self.tokens)
        self.index = 0
        self.stack = [_Open(_TOP, 0)]

    def annotations(self, index: int) -> tuple[tuple[str, ...], int]:
        """The annotations from token ``index`` on, and the index of the token after them."""
        end = index
        while end < self.count and self.tokens[end][0] == _ANNOT:
            end += 1
        return tuple(token[1] for token in self.tokens[index:end]), end

    def is_punct(self, index: int, chars: str) -> bool:
        """Whether token ``index`` exists and is one of the punctuation marks ``chars``."""
        return (
            index < self.count
            and self.tokens[index][0] == _PUNCT
            and self.tokens[index][1] in chars
        )

    def step(self) -> Node | None:
        """One move of the parse; the whole expression once it is complete, else None."""
        frame = self.stack[-1]
        token = self.tokens[self.index] if self.index < self.count else None
        if frame.kind == _TOP:
            if frame.items:
                if token is not None:
                    raise MichelsonSyntaxError("unexpected token after the expression", token[2])
                return frame.items[0]
            if token is None:
                raise MichelsonSyntaxError("empty expression", len(self.text))
            closed: bool | None = False
        else:
            closed = self._closes(frame, token)
        if closed is None:
            return None
        if closed:
            self.stack.pop()
            if frame.kind == _SEQUENCE:
                node: Node | None = Seq(tuple(frame.items))
            else:
                node = Prim(frame.name, tuple(frame.items), frame.annots)
        else:
            assert token is not None  # every frame refuses the end of input unless it closes
            node = self._read(frame, token)
        if node is not None:
            self.stack[-1].items.append(node)
        return None

    def _closes(self, frame: _Open, token: Token | None) -> bool | None:
        """Whether ``token`` (None: the end of input) closes ``frame``, a closing bracket
        being consumed; None when it was a semicolon between elements, consumed. Raises on
        a token the frame cannot take at this point."""
        index = self.index
        if frame.kind == _SEQUENCE:
            if token is None:
                raise MichelsonSyntaxError("unclosed brace", frame.position)
            if self.is_punct(index, "}"):
                self.index += 1
                return True
            if self.is_punct(index, ";"):
                if self.is_punct(index + 1, ";"):
                    raise MichelsonSyntaxError("extra semicolon", self.tokens[index + 1][2])
                self.index += 1
                return None
            if token[0] in _ATOMS and not (
                index + 1 == self.count or self.is_punct(index + 1, ";}")
            ):
                raise MichelsonSyntaxError("missing semicolon", self.tokens[index + 1][2])
            return False
        if frame.kind == _WRAPPED:
            if token is None or self.is_punct(index, "};"):
                raise MichelsonSyntaxError("unclosed parenthesis", frame.position)
            if self.is_punct(index, ")"):
                self.index += 1
                return True
            return False
        # _UNWRAPPED: ends where its context ends
        in_sequence = self.stack[-2].kind == _SEQUENCE
        if token is None and in_sequence:
            raise MichelsonSyntaxError("unclosed brace", self.stack[-2].position)
        if token is None or (in_sequence and self.is_punct(index, ";}")):
            return True
        if self.is_punct(index, ";})"):
            raise MichelsonSyntaxError(f"unexpected {token[1]!r}", token[2])
        return False

    def _read(self, frame: _Open, token: Token) -> Node | None:
        """Read the node that starts at ``token`` inside ``frame``: an atom or a bare
        primitive name, returned; or open an application or a sequence (None)."""
        kind, value, position = token
        index = self.index
        if kind in _ATOMS:
            self.index += 1
            return _atom(token)
        if kind == _IDENT and frame.kind in (_UNWRAPPED, _WRAPPED):
            if index + 1 < self.count and self.tokens[index + 1][0] == _ANNOT:
                raise MichelsonSyntaxError("unexpected annotation", self.tokens[index + 1][2])
            _check_name(value, position)
            self.index += 1
            return Prim(value)
        if kind == _IDENT:
            annots, self.index = self.annotations(index + 1)
            self.stack.append(_Open(_UNWRAPPED, position, value, annots))
        elif self.is_punct(index, "("):
            if (
                index + 1 >= self.count
                or self.tokens[index + 1][0] != _IDENT
                or frame.kind == _SEQUENCE
            ):
                raise MichelsonSyntaxError("unexpected parenthesis", position)
            annots, end = self.annotations(index + 2)
            self.stack.append(_Open(_WRAPPED, position, self.tokens[index + 1][1], annots))
            self.index = end
        elif self.is_punct(index, "{"):
            self.stack.append(_Open(_SEQUENCE, position))
            self.index += 1
        else:
            raise MichelsonSyntaxError(f"unexpected {value!r}", position)
        return None


def parse_expression(text: str) -> Node:
    """Parse Michelson data or a type written in Micheline concrete syntax."""
    parser = _Parser(text)
    while True:
        node = parser.step()
        if node is not None:
            return node


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
