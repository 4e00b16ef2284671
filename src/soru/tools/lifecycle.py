"""The rollup lifecycle, live: the first act of ``soru demo``.

Real processes on this machine, talking over HTTP on loopback:

1. a layer-1 sandbox chain (``soru sandbox run``) baking a block every ``block_time``;
2. Octez's echo kernel, originated through the installer (the boot sector is the small
   installer; the kernel itself is revealed from preimage pages);
3. two rollup nodes (``soru node run``): an honest one, and one that lies from a tick of
   the first inbox level on;
4. a user's withdrawal (an outbox transaction to a contract, which the echo kernel writes to
   its outbox when it reads it);
5. the nodes publish conflicting commitments, play the refutation game by themselves move by
   move down to a one-tick proof; the liar's stake is split (half burned, half to the
   honest operator); the honest commitment is cemented after the challenge window; the
   honest node executes the withdrawal, which lands in the contract on layer 1.

:func:`run` narrates it from layer 1's point of view (the chain's RPC) and returns whether
every step happened. Every process is stopped at the end, whatever happens.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from soru.client.commands import init_sandbox
from soru.client.wallet import bootstrap_key
from soru.crypto.addresses import ContractHash
from soru.crypto.keys import SecretKey
from soru.encoding.michelson_text import parse_expression
from soru.l1 import operations as ops
from soru.l1.client import RpcClient
from soru.protocol.constants import SANDBOX
from soru.protocol.origination import Origination, PvmKind
from soru.tools.installer import build_installer

TEZ = 1_000_000
BRIDGE = str(ContractHash(bytes.fromhex("d1a37c088a1221b636bb5fccb35e05181038ba7c")))
"""The contract withdrawals go to (SORU-SPEC §2.6's example destination)."""
WITHDRAWAL = bytes.fromhex(  # SORU-SPEC §2.6: an untyped batch: Unit to BRIDGE, "default"
    "0000000023030b01d1a37c088a1221b636bb5fccb35e05181038ba7c000000000764656661756c74"
)
NAMES = ("honest", "liar", "user")


class Lifecycle:
    """The processes and the chain of one run (see the module docstring)."""

    def __init__(self, workdir: Path, kernel: bytes, block_time: float, say: Callable[[str], None]):
        self.workdir, self.kernel, self.block_time, self.say = workdir, kernel, block_time, say
        self.processes: list[subprocess.Popen] = []
        self.keys: dict[str, SecretKey] = {n: bootstrap_key(n) for n in NAMES}
        self.address = {n: str(k.public_key().hash()) for n, k in self.keys.items()}
        self.client: RpcClient | None = None

    def _spawn(self, *args: str, echo: bool = False) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-m", "soru", *args], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)  # fmt: skip
        self.processes.append(process)
        if echo:
            threading.Thread(target=self._relay, args=(process,), daemon=True).start()
        return process

    def _relay(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if "injected" in line or "refused" in line:
                self.say("      " + line.rstrip())

    def start_chain(self) -> RpcClient:
        data = self.workdir / "chain"
        init_sandbox(data, list(NAMES), 100_000 * TEZ, SANDBOX, {BRIDGE: "unit"})
        sandbox = self._spawn("sandbox", "run", "--data-dir", str(data), "--rpc-port", "0",
                              "--block-time", str(self.block_time))  # fmt: skip
        assert sandbox.stdout is not None
        line = sandbox.stdout.readline().strip()
        if not line.startswith("rpc: "):
            raise RuntimeError(f"the sandbox did not start: {line!r}")
        self.client = RpcClient(line.removeprefix("rpc: "))
        return self.client

    def send(self, name: str, content: ops.Content) -> dict:
        """Sign ``content`` as ``name``, inject it, and wait for its receipt."""
        assert self.client is not None
        return self.client.wait_for(self.client.sign_and_inject(self.keys[name], content))

    def start_node(self, name: str, rollup: str, preimages: Path, loser: str | None) -> None:
        assert self.client is not None
        wallet = str(self.workdir / "chain" / "wallet.json")
        args = ["node", "run", "--endpoint", self.client.url, "--rollup", rollup,
                "--operator", name, "--name", name, "--wallet", wallet,
                "--preimages-dir", str(preimages)]  # fmt: skip
        if loser is not None:
            args += ["--loser-mode", loser]
        self._spawn(*args, echo=True)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait(what: str, check: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def _tez(mutez: int) -> str:
    return f"{mutez / TEZ:,.0f} tez"


def run(workdir: Path, kernel: bytes, *, block_time: float = 0.1,
        say: Callable[[str], None] = print) -> bool:  # fmt: skip
    """Run the lifecycle (see the module docstring); whether every step happened."""
    life = Lifecycle(workdir, kernel, block_time, say)
    try:
        return _narrate(life)
    finally:
        life.stop()


def _narrate(life: Lifecycle) -> bool:
    say = life.say
    client = life.start_chain()
    constants, _ = client.constants()
    say(f"   layer 1 is up at {client.url}: a block every {life.block_time} s; commitments "
        f"every {constants.commitment_period} blocks, a {constants.challenge_window}-block "
        f"challenge window, {_tez(constants.stake_amount)} stakes")  # fmt: skip
    preimages = life.workdir / "preimages"
    installer = build_installer(life.kernel, preimages)
    origination = Origination(PvmKind.WASM_2_0_0, installer, parse_expression("unit"))
    made = life.send("user", ops.OriginateRollup(origination))
    rollup = str(made["result"]["rollup"])
    pages = len(list(preimages.iterdir()))
    say(
        f"   originated {rollup}: the boot sector is a {len(installer):,}-byte installer that "
        f"reveals the {len(life.kernel):,}-byte kernel from {pages} preimage pages"
    )
    origination_level = client.rollup(rollup)["origination_level"]
    life.start_node("honest", rollup, preimages, None)
    life.start_node("liar", rollup, preimages, f"{origination_level + 1}:20000")
    say(
        f"   two rollup nodes follow it: 'honest', and 'liar', which lies from tick 20,000 of "
        f"inbox level {origination_level + 1} on"
    )
    life.send("user", ops.AddMessages((WITHDRAWAL,)))
    say(f"   the user asks for a withdrawal to {BRIDGE} (the kernel writes it to its outbox)")
    _play_out(life, client, rollup, origination_level)
    return True


def _play_out(life: Lifecycle, client: RpcClient, rollup: str, origination_level: int) -> None:
    """From the commitments to the withdrawal, told as layer 1 sees it."""
    say, (constants, _) = life.say, client.constants()
    honest, liar = life.address["honest"], life.address["liar"]
    blocks = 30 + 8 * constants.commitment_period * life.block_time

    def view() -> dict:
        return client.rollup(rollup)

    _wait("two stakers", lambda: {honest, liar} <= set(view()["stakers"]), blocks)
    say("   both nodes published a commitment for the same inbox level, with different states")
    _wait("the game", lambda: view()["games"], blocks)
    say("   the honest node started a refutation game; the moves, each a layer-1 operation:")
    _wait("the end of the game", lambda: liar not in view()["stakers"], blocks)
    lost, won = client.contract(liar), client.contract(honest)
    say(f"   the liar lost on a one-tick proof: its {_tez(constants.stake_amount)} bond is gone, "
        f"half burned and half to the winner — honest operator "
        f"{_tez(won['balance'] + won['frozen'])}, liar {_tez(lost['balance'] + lost['frozen'])}"
        " (both started with 100,000)")  # fmt: skip
    window = 30 + 3 * constants.challenge_window * life.block_time

    def cemented() -> dict | None:
        lcc = view()["last_cemented_commitment"]
        return lcc if lcc["inbox_level"] > origination_level else None

    lcc: dict = _wait("cementation", cemented, window)  # type: ignore[assignment]
    say(
        f"   after the challenge window the honest commitment is cemented: {lcc['hash']} "
        f"(inbox level {lcc['inbox_level']})"
    )
    received: list = _wait("the withdrawal", lambda: client.contract(BRIDGE)["received"], window)  # type: ignore[assignment]
    say(
        f"   the honest node executed the withdrawal from the outbox: {BRIDGE} received "
        f"{received[0]['parameters']} from {received[0]['sender']} on layer 1"
    )
