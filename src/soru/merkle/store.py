"""Node stores: where Merkle trees live between runs.

A node store maps the hash of a node or branch to its stored encoding (:mod:`.codec`) and
keeps a table of named roots (``commit(name, root)``, ``find_root(name)``). Many versions of
a tree share one store: a version writes only the nodes it does not share with the others.

* :class:`MemoryStore` — a dictionary; for tests, tools and proofs.
* :class:`SQLiteStore` — one SQLite file in WAL mode, two tables::

      nodes(hash BLOB PRIMARY KEY, data BLOB)   content-addressed, WITHOUT ROWID
      roots(name TEXT PRIMARY KEY, hash BLOB)   named versions
      meta(key TEXT PRIMARY KEY, value)         ('format', 1)

  Writes (``put_many``) go into one open transaction that ``commit`` closes after recording
  the root, so a commit is atomic: a process killed at any moment leaves the store as of its
  last commit (nodes written since are rolled back, none of them is referenced by a root).
  ``synchronous=FULL`` (the default) makes a commit durable across power loss too.

``gc(keep_roots)`` deletes every node not reachable from the kept roots (by default all named
roots) and forgets named roots that are not kept. It also deletes nodes written but not yet
committed: commit first.

Every store carries a ``token``: in-memory objects remember the token of the store that holds
them, so persisting a tree skips what the store already has. ``gc`` and ``rollback`` replace
the token, which makes the next persist check again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from soru.base.hashes import Hash
from soru.merkle.codec import references
from soru.merkle.errors import NodeNotStored, StoreError, UnknownRoot

STORE_FORMAT = 1
"""Version of the SQLite schema and of the stored node encoding."""


class NodeStore(Protocol):
    """What a tree needs from a store."""

    token: object
    reads: int

    def get(self, node_hash: bytes) -> bytes:
        """The encoding stored under ``node_hash``; raises :class:`NodeNotStored`."""
        ...

    def has(self, node_hash: bytes) -> bool: ...

    def put_many(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Store ``(hash, encoding)`` pairs (existing ones are left as they are)."""
        ...

    def commit(self, name: str, root: bytes) -> None:
        """Make ``root`` the version called ``name``, atomically with the writes before."""
        ...

    def find_root(self, name: str) -> Hash | None: ...

    def roots(self) -> dict[str, Hash]: ...

    def gc(self, keep_roots: Iterable[bytes] | None = None) -> int: ...


class _Store:
    """What both stores share: root lookups, single puts, reachability."""

    token: object
    reads: int

    def get(self, node_hash: bytes) -> bytes:
        raise NotImplementedError

    def put_many(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        raise NotImplementedError

    def find_root(self, name: str) -> Hash | None:
        raise NotImplementedError

    def put(self, node_hash: bytes, data: bytes) -> None:
        """Store one encoding under its hash."""
        self.put_many([(node_hash, data)])

    def get_root(self, name: str) -> Hash:
        """The root committed as ``name``; raises :class:`UnknownRoot`."""
        found = self.find_root(name)
        if found is None:
            raise UnknownRoot(f"no root named {name!r}")
        return found

    def reachable(self, roots: Iterable[bytes]) -> set[bytes]:
        """Hashes of every stored object reachable from ``roots``."""
        seen: set[bytes] = set()
        todo = [bytes(root) for root in roots]
        while todo:
            node_hash = todo.pop()
            if node_hash in seen:
                continue
            seen.add(node_hash)
            todo.extend(ref for ref in references(self._raw(node_hash)) if ref not in seen)
        return seen

    def _raw(self, node_hash: bytes) -> bytes:
        return self.get(node_hash)


class MemoryStore(_Store):
    """A node store in a dictionary."""

    def __init__(self) -> None:
        self.nodes: dict[bytes, bytes] = {}
        self._roots: dict[str, Hash] = {}
        self.token = object()
        self.reads = 0

    def __len__(self) -> int:
        return len(self.nodes)

    def get(self, node_hash: bytes) -> bytes:
        self.reads += 1
        try:
            return self.nodes[node_hash]
        except KeyError:
            raise NodeNotStored(node_hash) from None

    def _raw(self, node_hash: bytes) -> bytes:
        try:
            return self.nodes[node_hash]
        except KeyError:
            raise NodeNotStored(node_hash) from None

    def has(self, node_hash: bytes) -> bool:
        return node_hash in self.nodes

    def put_many(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        nodes = self.nodes
        for node_hash, data in items:
            if node_hash not in nodes:
                nodes[bytes(node_hash)] = data

    def commit(self, name: str, root: bytes) -> None:
        self._roots[name] = Hash(root)

    def find_root(self, name: str) -> Hash | None:
        return self._roots.get(name)

    def roots(self) -> dict[str, Hash]:
        return dict(self._roots)

    def gc(self, keep_roots: Iterable[bytes] | None = None) -> int:
        """Delete unreachable nodes; returns how many were deleted."""
        kept = list(self._roots.values()) if keep_roots is None else list(keep_roots)
        live = self.reachable(kept)
        dead = [node_hash for node_hash in self.nodes if node_hash not in live]
        for node_hash in dead:
            del self.nodes[node_hash]
        kept_set = {bytes(root) for root in kept}
        self._roots = {name: root for name, root in self._roots.items() if root in kept_set}
        self.token = object()
        return len(dead)


class SQLiteStore(_Store):
    """A node store in one SQLite file (see the module docstring for the schema)."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise StoreError(f"unknown synchronous mode {synchronous!r}")
        self.path = Path(path)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._in_transaction = False
        self.token = object()
        self.reads = 0
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS nodes (hash BLOB PRIMARY KEY, data BLOB NOT NULL)"
                " WITHOUT ROWID"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS roots (name TEXT PRIMARY KEY, hash BLOB NOT NULL)"
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value)")
            row = self._db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('format', ?)", (STORE_FORMAT,))
            elif row[0] != STORE_FORMAT:
                raise StoreError(f"store format {row[0]}, this soru reads {STORE_FORMAT}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            self._db.close()
            raise

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file; writes not yet committed are discarded."""
        if self._in_transaction:
            self.rollback()
        self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _begin(self) -> None:
        if not self._in_transaction:
            self._db.execute("BEGIN IMMEDIATE")
            self._in_transaction = True

    def rollback(self) -> None:
        """Discard the writes since the last commit."""
        if self._in_transaction:
            self._db.execute("ROLLBACK")
            self._in_transaction = False
        self.token = object()

    # --- nodes ----------------------------------------------------------------------------

    def get(self, node_hash: bytes) -> bytes:
        self.reads += 1
        return self._raw(node_hash)

    def _raw(self, node_hash: bytes) -> bytes:
        row = self._db.execute("SELECT data FROM nodes WHERE hash = ?", (node_hash,)).fetchone()
        if row is None:
            raise NodeNotStored(node_hash)
        return row[0]

    def has(self, node_hash: bytes) -> bool:
        query = "SELECT 1 FROM nodes WHERE hash = ?"
        return self._db.execute(query, (node_hash,)).fetchone() is not None

    def put_many(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        self._begin()
        self._db.executemany("INSERT OR IGNORE INTO nodes VALUES (?, ?)", items)

    def __len__(self) -> int:
        return self._db.execute("SELECT count(*) FROM nodes").fetchone()[0]

    # --- roots ----------------------------------------------------------------------------

    def commit(self, name: str, root: bytes) -> None:
        """Record ``root`` as ``name`` and commit every write since the last commit."""
        root = Hash(root)
        self._begin()
        try:
            self._db.execute("INSERT OR REPLACE INTO roots VALUES (?, ?)", (name, bytes(root)))
            self._db.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise
        self._in_transaction = False

    def find_root(self, name: str) -> Hash | None:
        row = self._db.execute("SELECT hash FROM roots WHERE name = ?", (name,)).fetchone()
        return None if row is None else Hash(row[0])

    def roots(self) -> dict[str, Hash]:
        rows = self._db.execute("SELECT name, hash FROM roots ORDER BY name").fetchall()
        return {name: Hash(root) for name, root in rows}

    def gc(self, keep_roots: Iterable[bytes] | None = None) -> int:
        """Delete unreachable nodes in one transaction; returns how many were deleted."""
        kept = list(self.roots().values()) if keep_roots is None else list(keep_roots)
        live = self.reachable(kept)
        self._begin()
        try:
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS live (hash BLOB PRIMARY KEY)")
            self._db.execute("DELETE FROM live")
            self._db.executemany("INSERT INTO live VALUES (?)", ((h,) for h in live))
            deleted = self._db.execute(
                "DELETE FROM nodes WHERE hash NOT IN (SELECT hash FROM live)"
            ).rowcount
            self._db.execute("DELETE FROM roots WHERE hash NOT IN (SELECT hash FROM live)")
            kept_set = {bytes(root) for root in kept}
            for name, root in self.roots().items():
                if bytes(root) not in kept_set:
                    self._db.execute("DELETE FROM roots WHERE name = ?", (name,))
            self._db.execute("DELETE FROM live")
            self._db.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise
        self._in_transaction = False
        self.token = object()
        return deleted
