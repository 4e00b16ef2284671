"""Typed errors of the WebAssembly engine, kept apart as the specification keeps them.

* :class:`DecodeError`  — the bytes are not a well-formed binary module ("malformed").
* :class:`FloatsForbidden` — a well-formed module uses floats while the decoder bans them.
* :class:`InvalidModule` — the module is well-formed but does not type-check ("invalid").
* :class:`LinkError`    — imports cannot be satisfied ("unlinkable").
* :class:`Trap`         — the guest faulted at run time (its own fault, not the engine's).
* :class:`Exhaustion`   — a resource limit of the engine was hit (call stack depth).
"""

from soru.base.errors import DecodeError as _BaseDecodeError
from soru.base.errors import SoruError


class WasmError(SoruError):
    """Base class of every WebAssembly engine error."""


class DecodeError(_BaseDecodeError, WasmError):
    """A malformed binary module; names the section and byte offset where decoding failed."""

    def __init__(self, message: str, offset: int | None = None, section: str | None = None):
        self.section = section
        prefix = f"{section} section: " if section else ""
        super().__init__(prefix + message, offset)
        self.reason = message


class FloatsForbidden(DecodeError):
    """The module uses a floating-point type or instruction and floats are forbidden."""


class InvalidModule(WasmError):
    """A well-formed module that fails validation (type checking)."""


class LinkError(WasmError):
    """An import is missing or does not match the type the module expects."""


class Trap(WasmError):
    """A WebAssembly trap; ``reason`` uses the specification's wording
    (for example ``"integer divide by zero"``, ``"out of bounds memory access"``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Exhaustion(WasmError):
    """An engine resource limit was reached (the call stack is deeper than allowed)."""

    def __init__(self, reason: str = "call stack exhausted") -> None:
        super().__init__(reason)
        self.reason = reason
