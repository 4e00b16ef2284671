"""The installer kernel and its config program (``../shared/SORU-SPEC.md`` §6): how a kernel
too large for a layer-1 origination (32 KiB) is installed, the way the Tezos kernel SDK's
``smart-rollup-installer get-reveal-installer`` does it.

The kernel is published as a tree of preimage pages (:mod:`soru.tools.preimages`); the rollup
is originated with the *installer*, a small kernel (``installer.wat`` beside this module)
followed by a config program. At its first kernel_run the installer runs the program —
reveal the tree into a staging path, move it to ``/kernel/boot.wasm`` — and asks for a
reboot, so the installed kernel runs in the same level.

The config program, byte for byte as Octez (tezos/tezos-mirror ``d26a8bef82``) writes it in
``src/kernel_sdk/installer-config/src/binary/bin.rs`` and reads it in ``…/binary/nom.rs``::

    program      instruction* ‖ u32 LE: the size of the instructions
    instruction  u32 LE: its size ‖ tag ‖ fields
      0x00 Reveal  hash: bytes ‖ to: path
      0x01 Move    from: path ‖ to: path
      0x02 Set     value: bytes ‖ to: path
    bytes        u32 LE length ‖ bytes       (at most MAX_FILE_CHUNK_SIZE = 2048)
    path         u8 length ‖ bytes           (at most PATH_MAX_SIZE = 242)

and it is appended to the installer's wasm as a custom section named ``config``
(``installer-client/src/installer.rs``, ``wasm_gen::write_custom_section``), the last
section, so the last 4 bytes of ``/kernel/boot.wasm`` are the program's size — where the
kernel looks for it. The decoder here is what the installer kernel accepts:
:func:`decode_config` refuses (:class:`MalformedConfig`) a program when the kernel would trap
decoding one of its instructions — a path that the SDK's ``RefPath::assert_from``
refuses (empty, not starting with ``/``, an empty step, a byte outside ``[A-Za-z0-9._-]``,
under ``/readonly``), an instruction longer than the kernel's 487-byte buffer
(``RefConfigInstruction::MAX_SIZE``, ``…/binary/size.rs``), a reveal hash that is not 33
bytes, trailing bytes, a size that runs past the program. :func:`encode_config` refuses
to write any of these (:class:`InstallerError`).

The program :func:`build_installer` writes is the client's (``installer-client/src/
config.rs create_installer_config``): Reveal the root hash to ``/installer/kernel/boot.wasm``,
then Move it to ``/kernel/boot.wasm``. (The SDK's library function ``upgrade_reveal_flow``
stages at ``/__sdk/installer/reveal`` instead; :func:`upgrade_program` takes either.)

The installer's WAT lives in the package, so that the tool works wherever soru is installed;
``kernels/installer.wat`` is a link to it, beside the other example kernels. It is compiled
with ``wasmtime.wat2wasm`` (a dependency of soru) once per process.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from soru.base.errors import DecodeError, SoruError
from soru.encoding.reader import Reader
from soru.encoding.writer import encode_uleb
from soru.pvm.reveals import REVEAL_HASH_SIZE
from soru.tools.preimages import Preimages, prepare_preimages, write_preimages

TAG_REVEAL, TAG_MOVE, TAG_SET = 0x00, 0x01, 0x02
MAX_BYTES_SIZE = 2048
"""The longest ``bytes`` field (the SDK's ``MAX_FILE_CHUNK_SIZE``)."""
MAX_PATH_SIZE = 242
"""The longest ``path`` field (the SDK's ``PATH_MAX_SIZE`` = 250 − len("/durable"))."""
MAX_INSTRUCTION_SIZE = 1 + 2 * (1 + MAX_PATH_SIZE)
"""487: the installer kernel's instruction buffer (``RefConfigInstruction::MAX_SIZE``)."""
MAX_LEVELS = 4
"""Levels of pages the installer walks: three of hash pages, then content (``MAX_DAC_LEVELS``)."""

KERNEL_BOOT_PATH = "/kernel/boot.wasm"
STAGING_PATH = "/installer/kernel/boot.wasm"
"""Where ``smart-rollup-installer`` reveals the kernel before moving it into place."""
SDK_STAGING_PATH = "/__sdk/installer/reveal"
"""Where the SDK's ``upgrade_reveal_flow`` reveals it."""
CONFIG_SECTION = "config"

_STEP = re.compile(rb"[A-Za-z0-9._-]+")


class InstallerError(SoruError):
    """A config program, or an installer, that cannot be made."""


class MalformedConfig(InstallerError, DecodeError):
    """Bytes that are not a config program the installer kernel runs."""


# --- instructions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RevealInstruction:
    """Reveal the page tree under ``hash`` (a 33-byte reveal hash) and write its data to
    ``to``, from offset 0."""

    hash: bytes
    to: str


@dataclass(frozen=True, slots=True)
class MoveInstruction:
    """``store_move(source, to)``."""

    source: str
    to: str


@dataclass(frozen=True, slots=True)
class SetInstruction:
    """``store_write(to, 0, value)``."""

    value: bytes
    to: str


ConfigInstruction = RevealInstruction | MoveInstruction | SetInstruction


def path_problem(path: bytes) -> str | None:
    """Why the SDK's ``RefPath::assert_from`` refuses ``path``, or None if it accepts it."""
    if len(path) > MAX_PATH_SIZE:
        return f"a path of {len(path)} bytes (at most {MAX_PATH_SIZE})"
    if not path.startswith(b"/"):
        return f"path {path!r} does not start with '/'"
    if not all(_STEP.fullmatch(step) for step in path[1:].split(b"/")):
        return f"path {path!r} has an empty step or a byte outside [A-Za-z0-9._-]"
    if path == b"/readonly" or path.startswith(b"/readonly/"):
        return f"path {path!r} is read-only"
    return None


def _encode_path(path: str) -> bytes:
    raw = path.encode("utf-8", "surrogateescape")
    problem = path_problem(raw)
    if problem is not None:
        raise InstallerError(problem)
    return bytes((len(raw),)) + raw


def _encode_bytes(value: bytes) -> bytes:
    if len(value) > MAX_BYTES_SIZE:
        raise InstallerError(f"a bytes field of {len(value)} bytes (at most {MAX_BYTES_SIZE})")
    return len(value).to_bytes(4, "little") + value


def encode_instruction(instruction: ConfigInstruction) -> bytes:
    """One instruction: its tag and fields (without the size prefix)."""
    match instruction:
        case RevealInstruction(hash=digest, to=to):
            if len(digest) != REVEAL_HASH_SIZE:
                raise InstallerError(f"a reveal hash of {len(digest)} bytes, not 33")
            out = bytes((TAG_REVEAL,)) + _encode_bytes(digest) + _encode_path(to)
        case MoveInstruction(source=source, to=to):
            out = bytes((TAG_MOVE,)) + _encode_path(source) + _encode_path(to)
        case SetInstruction(value=value, to=to):
            out = bytes((TAG_SET,)) + _encode_bytes(value) + _encode_path(to)
        case _:
            raise TypeError(f"not a config instruction: {instruction!r}")
    if len(out) > MAX_INSTRUCTION_SIZE:
        raise InstallerError(
            f"an instruction of {len(out)} bytes: the installer reads at most "
            f"{MAX_INSTRUCTION_SIZE}"
        )
    return out


def encode_config(program: Iterable[ConfigInstruction]) -> bytes:
    """The program: each instruction prefixed by its size, then the size of them all."""
    out = bytearray()
    for instruction in program:
        encoded = encode_instruction(instruction)
        out += len(encoded).to_bytes(4, "little") + encoded
    return bytes(out) + len(out).to_bytes(4, "little")


def _decode_path(reader: Reader) -> str:
    start = reader.pos
    raw = reader.read(reader.u8())
    problem = path_problem(raw)
    if problem is not None:
        reader.fail(problem, start)
    return raw.decode("ascii")


def _decode_bytes(reader: Reader) -> bytes:
    start = reader.pos
    size = reader.uint_le(4)
    if size > MAX_BYTES_SIZE:
        reader.fail(f"a bytes field of {size} bytes (at most {MAX_BYTES_SIZE})", start)
    return reader.read(size)


def _decode_instruction(reader: Reader) -> ConfigInstruction:
    start = reader.pos
    tag = reader.u8()
    instruction: ConfigInstruction
    if tag == TAG_REVEAL:
        digest = _decode_bytes(reader)
        instruction = RevealInstruction(digest, _decode_path(reader))
        if len(digest) != REVEAL_HASH_SIZE:
            reader.fail(f"a reveal hash of {len(digest)} bytes, not 33", start)
    elif tag == TAG_MOVE:
        instruction = MoveInstruction(_decode_path(reader), _decode_path(reader))
    elif tag == TAG_SET:
        instruction = SetInstruction(_decode_bytes(reader), _decode_path(reader))
    else:
        reader.fail(f"unknown instruction tag {tag}", start)
    reader.expect_end("unexpected bytes after an instruction")
    return instruction


def decode_config(data: bytes) -> tuple[ConfigInstruction, ...]:
    """The program that ``data`` is, exactly; raises :class:`MalformedConfig`."""
    data = bytes(data)
    reader = Reader(data, error=MalformedConfig)
    if len(data) < 4:
        reader.fail("a config program ends with its 4-byte size")
    size = int.from_bytes(data[-4:], "little")
    if size != len(data) - 4:
        reader.fail(f"the program says it has {size} bytes, not {len(data) - 4}", len(data) - 4)
    body = reader.window(size)
    program = []
    while not body.at_end():
        start = body.pos
        length = body.uint_le(4)
        if length > MAX_INSTRUCTION_SIZE:
            body.fail(f"an instruction of {length} bytes (at most {MAX_INSTRUCTION_SIZE})", start)
        program.append(_decode_instruction(body.window(length)))
    return tuple(program)


def read_config(installer: bytes) -> tuple[ConfigInstruction, ...]:
    """The program at the end of an installer's wasm, found as the kernel finds it (the last
    4 bytes are its size); raises :class:`MalformedConfig`."""
    if len(installer) < 4:
        raise MalformedConfig("no config program: fewer than 4 bytes", 0)
    size = int.from_bytes(installer[-4:], "little")
    if size > len(installer) - 4:
        raise MalformedConfig(f"a config program of {size} bytes does not fit", 0)
    return decode_config(installer[len(installer) - 4 - size :])


def upgrade_program(
    root_hash: bytes, *, staging: str = STAGING_PATH
) -> tuple[ConfigInstruction, ...]:
    """Reveal the kernel under ``root_hash`` to ``staging``, then move it into place."""
    return (
        RevealInstruction(root_hash, staging),
        MoveInstruction(staging, KERNEL_BOOT_PATH),
    )


# --- the installer ---------------------------------------------------------------------------


@functools.cache
def installer_kernel() -> bytes:
    """The installer kernel's wasm, without a program."""
    source = importlib.resources.files("soru.tools").joinpath("installer.wat")
    return bytes(wasmtime.wat2wasm(source.read_text(encoding="utf-8")))


def with_config(kernel: bytes, program: Iterable[ConfigInstruction]) -> bytes:
    """``kernel`` followed by a custom section ``config`` holding the encoded program."""
    name = CONFIG_SECTION.encode()
    content = encode_uleb(len(name)) + name + encode_config(program)
    return kernel + b"\x00" + encode_uleb(len(content)) + content


@dataclass(frozen=True, slots=True)
class Installer:
    """An installer for a kernel: the wasm to originate, and the pages to publish."""

    wasm: bytes
    preimages: Preimages


def prepare_installer(kernel: bytes, *, staging: str = STAGING_PATH) -> Installer:
    """The installer that installs ``kernel`` through reveals, and the kernel's pages."""
    preimages = prepare_preimages(kernel)
    if preimages.levels > MAX_LEVELS:
        raise InstallerError(
            f"a kernel of {len(kernel)} bytes needs {preimages.levels} levels of pages; "
            f"the installer walks at most {MAX_LEVELS}"
        )
    program = upgrade_program(preimages.root, staging=staging)
    return Installer(with_config(installer_kernel(), program), preimages)


def build_installer(kernel: bytes, preimages_dir: Path | str) -> bytes:
    """The installer wasm for ``kernel``; its pages are written to ``preimages_dir`` (files
    named by the hex of their hash, as a rollup node reads them)."""
    installer = prepare_installer(kernel)
    write_preimages(installer.preimages, preimages_dir)
    return installer.wasm


def save_installer(path: Path | str, installer: bytes) -> str:
    """Write the installer to ``path``: binary if it ends in ``.wasm``, else hex (what the
    origination operation carries) as ``smart-rollup-installer`` does; returns the format."""
    target = Path(path)
    if target.suffix == ".wasm":
        target.write_bytes(installer)
        return "wasm"
    target.write_text(installer.hex(), encoding="ascii")
    return "hex"
