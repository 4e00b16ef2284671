"""Inbox files: the inputs of ``soru pvm run`` and ``soru debug``, in the Octez debugger's format.

A JSON list of levels; each level a list of messages, each one of::

    {"external": "<hex>"}                          an external message (tag 0x01 added)
    {"payload": "<Michelson data>", "sender": "KT1…", "source": "tz1…", "destination": "sr1…"}
                                                   an internal transfer (sender, source and
                                                   destination optional, with the Octez
                                                   debugger's defaults)
    {"raw": "<hex>"}                               the exact bytes the kernel will read

Each level becomes Start_of_level, Info_per_level, the messages in order, End_of_level.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from soru.base.errors import SoruError
from soru.crypto.addresses import ContractHash, PublicKeyHash, RollupAddress
from soru.encoding import inbox
from soru.encoding.micheline import encode_expression
from soru.encoding.michelson_text import parse_expression

DEFAULT_SENDER = "KT18amZmM5W7qDWVt2pH6uj7sCEd3kbzLrHT"
DEFAULT_SOURCE = "tz1Ke2h7sDdakHJQh8WX4Z372du1KChsksyU"
DEFAULT_ROLLUP = "sr163Lv22CdE8QagCwf48PWDTquk6isQwv57"


class InputsFileError(SoruError):
    """An inbox file that does not follow the format (names the level and message)."""


@dataclass(frozen=True, slots=True)
class Level:
    """The serialized messages of one inbox level, markers included."""

    messages: tuple[bytes, ...]


def _message(entry: object, rollup: str, where: str) -> bytes:
    if not isinstance(entry, dict):
        raise InputsFileError(f"{where}: a message is a JSON object")
    try:
        if "raw" in entry:
            data = bytes.fromhex(entry["raw"])
            if len(data) > inbox.MESSAGE_SIZE_LIMIT:
                raise InputsFileError(f"{where}: {len(data)} bytes exceed 4096")
            return data
        if "external" in entry:
            return inbox.External(bytes.fromhex(entry["external"])).encode()
        if "payload" in entry:
            transfer = inbox.Transfer(
                encode_expression(parse_expression(entry["payload"])),
                ContractHash.of_b58(entry.get("sender", DEFAULT_SENDER)).digest,
                PublicKeyHash.of_b58(entry.get("source", DEFAULT_SOURCE)).encode(),
                RollupAddress.of_b58(entry.get("destination", rollup)).digest,
            )
            return transfer.encode()
    except InputsFileError:
        raise
    except (ValueError, TypeError, SoruError) as exc:
        raise InputsFileError(f"{where}: {exc}") from exc
    raise InputsFileError(f"{where}: expected 'external', 'payload' or 'raw'")


def parse_levels(document: object, rollup: str = DEFAULT_ROLLUP) -> list[list[bytes]]:
    """The user messages of each level (markers not included)."""
    if not isinstance(document, list):
        raise InputsFileError("an inbox file is a JSON list of levels")
    levels = []
    for i, level in enumerate(document):
        if not isinstance(level, list):
            raise InputsFileError(f"level {i}: a level is a JSON list of messages")
        levels.append([_message(m, rollup, f"level {i}, message {j}") for j, m in enumerate(level)])
    return levels


def load_levels(path: Path | str, rollup: str = DEFAULT_ROLLUP) -> list[list[bytes]]:
    """Read and parse an inbox file."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputsFileError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise InputsFileError(f"{path} is not JSON: {exc}") from exc
    return parse_levels(document, rollup)


def with_markers(
    messages: list[bytes], timestamp: int = 0, predecessor: bytes = bytes(32)
) -> list[bytes]:
    """A level's full inbox: SOL, Info_per_level, the messages, EOL."""
    info = inbox.InfoPerLevel(timestamp, predecessor).encode()
    return [inbox.StartOfLevel().encode(), info, *messages, inbox.EndOfLevel().encode()]
