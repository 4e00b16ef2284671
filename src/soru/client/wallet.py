"""The client's wallet: named secret keys in a JSON file ``{"alias": "edsk…"}``, and the
sandbox's bootstrap accounts, whose keys are derived from their names so that every
sandbox made with the same names has the same accounts."""

from __future__ import annotations

import json
from pathlib import Path

from soru.base.errors import SoruError
from soru.crypto.addresses import PublicKeyHash
from soru.crypto.hashing import Tag, blake2b_256
from soru.crypto.keys import SecretKey


class WalletError(SoruError):
    """An unknown alias, or a wallet file that cannot be read."""


def bootstrap_key(name: str) -> SecretKey:
    """The key of bootstrap account ``name`` (a sandbox convenience: public by design)."""
    return SecretKey.from_seed(blake2b_256(Tag.TEZOS, b"soru sandbox account " + name.encode()))


class Wallet:
    """The keys of ``path`` (created empty if absent when saved)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.keys: dict[str, str] = {}
        if self.path.exists():
            try:
                self.keys = {str(k): str(v) for k, v in json.loads(self.path.read_text()).items()}
            except (ValueError, AttributeError) as error:
                raise WalletError(f"{self.path} is not a wallet: {error}") from None

    def add(self, alias: str, key: SecretKey) -> None:
        self.keys[alias] = key.to_b58()

    def save(self) -> None:
        self.path.write_text(json.dumps(self.keys, indent=1, sort_keys=True) + "\n")

    def secret(self, alias: str) -> SecretKey:
        found = self.keys.get(alias)
        if found is None:
            raise WalletError(f"no key {alias!r} in {self.path}")
        return SecretKey.of_b58(found)

    def address(self, name: str) -> str:
        """``name``'s account: an alias of the wallet, or an address as it is."""
        if name in self.keys:
            return str(self.secret(name).public_key().hash())
        return str(PublicKeyHash.of_b58(name)) if name.startswith("tz") else name
