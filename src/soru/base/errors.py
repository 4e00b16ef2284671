"""The root of soru's error hierarchy.

Every error soru raises on purpose derives from :class:`SoruError`, so a caller (the CLI, an
RPC server) can tell a typed, expected failure — bad input, a trap, an invalid proof — from a
bug. Each layer defines its own subclasses next to the concept they belong to (for example
``soru.wasm.errors``); tests check the class, never the message.
"""


class SoruError(Exception):
    """Base class of every error soru raises deliberately."""


class DecodeError(SoruError):
    """Bytes that do not follow the encoding they claim to follow (any binary format).

    ``offset`` is the byte position where decoding failed, when known.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        where = f" at offset {offset}" if offset is not None else ""
        super().__init__(f"{message}{where}")
