"""The sandbox chain on disk: one SQLite file (WAL journal) holding the chain's configuration
and the signed operations of every block, in order.

The state is not stored: it is a function of the configuration and the blocks, rebuilt by
replaying them (``soru.l1.sandbox``), and each stored block hash is checked on the way — a
file that does not replay to its own hashes is refused as corrupt. A block is written in
one transaction, so a killed process leaves the chain at its last whole block.

Tables::

    config  (key TEXT PRIMARY KEY, value TEXT)       "chain": the configuration as JSON
    blocks  (level INTEGER PRIMARY KEY, hash BLOB, timestamp INTEGER, operations BLOB)
            operations: n × (u32 length ‖ signed operation)
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from soru.base.errors import SoruError
from soru.encoding.reader import Reader
from soru.encoding.writer import Writer

SCHEMA_VERSION = 1


class StoreError(SoruError):
    """A chain file that cannot be used: missing, of another version, or corrupt."""


@dataclass(frozen=True, slots=True)
class StoredBlock:
    level: int
    hash: bytes
    timestamp: int
    operations: tuple[bytes, ...]
    """The signed operations, encoded."""


def _pack(operations: tuple[bytes, ...]) -> bytes:
    out = Writer()
    for op in operations:
        out.uint_be(len(op), 4).raw(op)
    return out.getvalue()


def _unpack(data: bytes) -> tuple[bytes, ...]:
    reader, found = Reader(data), []
    while not reader.at_end():
        found.append(reader.read(reader.uint_be(4)))
    return tuple(found)


class ChainStore:
    """The chain file at ``path`` (created by :meth:`create`, reopened by :meth:`open`)."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.db, self.path = connection, path

    @classmethod
    def create(cls, path: Path | str, config: dict) -> ChainStore:
        """A new chain file holding ``config``; refuses to overwrite one."""
        path = Path(path)
        if path.exists():
            raise StoreError(f"{path} already exists")
        db = sqlite3.connect(path, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        with db:
            db.execute("CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("CREATE TABLE blocks (level INTEGER PRIMARY KEY, hash BLOB NOT NULL,"
                       " timestamp INTEGER NOT NULL, operations BLOB NOT NULL)")  # fmt: skip
            document = {"schema": SCHEMA_VERSION, "chain": config}
            db.execute("INSERT INTO config VALUES ('chain', ?)", (json.dumps(document),))
        return cls(db, path)

    @classmethod
    def open(cls, path: Path | str) -> ChainStore:
        path = Path(path)
        if not path.exists():
            raise StoreError(f"no chain file at {path}")
        try:
            db = sqlite3.connect(path, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            store = cls(db, path)
            store.config()
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{path} is not a chain file: {error}") from None
        return store

    def config(self) -> dict:
        row = self.db.execute("SELECT value FROM config WHERE key = 'chain'").fetchone()
        if row is None:
            raise StoreError(f"{self.path} has no chain configuration")
        document = json.loads(row[0])
        if document.get("schema") != SCHEMA_VERSION:
            raise StoreError(f"{self.path} is of schema {document.get('schema')}")
        return document["chain"]

    def append(self, block: StoredBlock) -> None:
        with self.db:
            row = (block.level, block.hash, block.timestamp, _pack(block.operations))
            self.db.execute("INSERT INTO blocks VALUES (?, ?, ?, ?)", row)

    def blocks(self) -> Iterator[StoredBlock]:
        """Every block, by level."""
        rows = self.db.execute(
            "SELECT level, hash, timestamp, operations FROM blocks ORDER BY level"
        )
        for level, digest, timestamp, operations in rows:
            try:
                yield StoredBlock(level, bytes(digest), timestamp, _unpack(bytes(operations)))
            except SoruError as error:
                raise StoreError(f"block {level} of {self.path} is corrupt: {error}") from None

    def close(self) -> None:
        self.db.close()
