"""A client of the sandbox chain's RPC server (``soru.l1.rpc``): JSON over HTTP, with the
server's typed errors turned into :class:`RpcError` (``error`` names the server's class). It
lives beside the server, in the layer-1 layer, so that the rollup node (``soru.node``) and
the user's commands (``soru.client``) both build on it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from soru.base.errors import SoruError
from soru.crypto.keys import SecretKey
from soru.l1 import operations as ops
from soru.protocol.constants import RollupConstants


class RpcError(SoruError):
    """The server refused a request (``error`` is its error class) or could not be reached."""

    def __init__(self, message: str, error: str = "Unreachable", status: int = 0) -> None:
        super().__init__(message)
        self.error, self.status = error, status


class RpcClient:
    """Requests to the server at ``url`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout

    def _request(self, path: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method="GET" if data is None else "POST"
        )
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            try:
                detail = json.loads(error.read())
            except ValueError:
                detail = {"error": "HTTPError", "message": str(error)}
            raise RpcError(f"{detail.get('error')}: {detail.get('message')}",
                           str(detail.get("error")), error.code) from None  # fmt: skip
        except (urllib.error.URLError, OSError) as error:
            raise RpcError(f"cannot reach {self.url}: {error}") from None

    def get(self, path: str) -> Any:
        return self._request(path)

    def post(self, path: str, body: object = "") -> Any:
        return self._request(path, body)

    # --- the server's RPCs ----------------------------------------------------------------

    def header(self) -> dict:
        return self.get("/chains/main/blocks/head/header")

    def contract(self, key: str) -> dict:
        return self.get(f"/chains/main/blocks/head/context/contracts/{key}")

    def rollup(self, address: str) -> dict:
        return self.get(f"/chains/main/blocks/head/context/smart_rollups/smart_rollup/{address}")

    def boot_sector(self, address: str) -> bytes:
        path = f"/chains/main/blocks/head/context/smart_rollups/smart_rollup/{address}/boot_sector"
        return bytes.fromhex(self.get(path))

    def constants(self) -> tuple[RollupConstants, str]:
        """The chain's rollup constants and the PVM version of its rollups."""
        found = self.get("/chains/main/blocks/head/context/constants")
        return RollupConstants(**found["smart_rollup"]).check(), str(found["pvm_version"])

    def inbox(self) -> dict:
        return self.get("/chains/main/blocks/head/context/smart_rollups/inbox")

    def inbox_level(self, level: int) -> dict:
        return self.get(f"/chains/main/inbox/levels/{level}")

    def receipt(self, operation: str) -> dict:
        return self.get(f"/chains/main/operations/{operation}")

    def inject(self, signed: bytes) -> str:
        """Inject a signed operation; its hash (hex)."""
        return str(self.post("/injection/operation", signed.hex()))

    def sign_and_inject(
        self, secret: SecretKey, content: ops.Content, counter: int | None = None
    ) -> str:
        """Sign ``content`` as ``secret``'s account and inject it; its hash (hex). The
        counter is the account's next one on layer 1 unless given."""
        account = secret.public_key().hash()
        if counter is None:
            counter = self.contract(str(account))["counter"] + 1
        signed = ops.SignedOperation.sign(ops.Operation(account, counter, content), secret)
        return self.inject(signed.encode())

    def bake(self) -> dict:
        return self.post("/sandbox/bake")

    def wait_for(self, operation: str, timeout: float = 60.0) -> dict:
        """The receipt of ``operation`` once it is in a block."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.receipt(operation)
            except RpcError as error:
                if error.status != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)
